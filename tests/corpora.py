"""Small window shards for the trainer tests: planted structure, random text, and a loop that trains them in chunks
as the train stage does."""

from __future__ import annotations

import numpy as np

from w2v.pairs import draw_windows, unit_rng
from w2v.shards import WindowShard
from w2v.training import chunk_ends


def shard_of(documents: list[np.ndarray], window: int = 5, seed: int = 0) -> WindowShard:
    """The windows of the given documents (no subsampling), shuffled as the pairs stage does."""
    tokens = np.concatenate(documents)
    offsets = np.concatenate([[0], np.cumsum([len(d) for d in documents])])
    rng = unit_rng(seed, 0, 0)
    position, left, right = draw_windows(offsets, window, rng)
    order = rng.permutation(len(position))
    dtype = np.uint16 if tokens.max(initial=0) < 1 << 16 else np.uint32
    return WindowShard(tokens.astype(dtype), position[order].astype(np.uint32), left[order], right[order])


def planted_shard(rng: np.random.Generator, documents: int = 4000, length: int = 12, group: int = 20) -> WindowShard:
    """Words 0..group-1 appear only with each other, as do words group..2*group-1 (one group per document)."""
    sides = rng.integers(0, 2, documents)
    return shard_of([rng.integers(0, group, length) + side * group for side in sides])


def random_shard(rng: np.random.Generator, vocab: int, tokens: int, documents: int = 50) -> WindowShard:
    cuts = np.sort(rng.choice(np.arange(1, tokens), documents - 1, replace=False))
    return shard_of(np.split(rng.integers(0, vocab, tokens), cuts))


def within_minus_across(vectors: np.ndarray, group: int = 20) -> float:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cos = unit @ unit.T
    same = np.add.outer(np.arange(2 * group) < group, np.arange(2 * group) < group) != 1
    off_diagonal = ~np.eye(2 * group, dtype=bool)
    return cos[same & off_diagonal].mean() - cos[~same].mean()


def train_shard(trainer, shard: WindowShard, chunk_pairs: int = 7_000, first_pair: int = 0,
                seed_shift: int = 0) -> list[float]:
    """Train a whole shard chunk by chunk; return each chunk's mean loss per pair."""
    counts = shard.pair_counts()
    cumulative = np.concatenate([[0], np.cumsum(counts)])
    losses, start = [], 0
    for end in chunk_ends(counts, chunk_pairs):
        pairs = int(cumulative[end] - cumulative[start])
        seeds = (np.arange(1, trainer.lanes + 1) * 1_000 + start + seed_shift).astype(np.uint64)
        losses.append(trainer.train_chunk(shard, start, int(end), first_pair + int(cumulative[start]), seeds) / pairs)
        start = int(end)
    return losses


PLANTED_PHRASES = ("new york", "new york times", "bank of america", "united states", "prime minister",
                   "air canada", "city of new york", "eye of the beholder", "york", "times", "new")


def phrase_rows(seed: int = 0, rows: int = 3000, types: int = 2000) -> list[list[str]]:
    """Rows of Zipf-distributed words (w0, w1, ...) and connector words, with the planted phrases scattered in
    them (and their words alone too), so that each pass of a phrase detector has something to join."""
    rng = np.random.default_rng(seed)
    connectors = ["the", "of", "a", "in", "and"]
    weights = 1.0 / np.arange(1, types + 1) ** 1.1
    weights /= weights.sum()
    out = []
    for _ in range(rows):
        length = int(rng.integers(3, 40))
        row = [f"w{r}" for r in rng.choice(types, size=length, p=weights)]
        for _ in range(int(rng.integers(0, 4))):
            at = int(rng.integers(0, len(row) + 1))
            piece = (PLANTED_PHRASES[int(rng.integers(0, len(PLANTED_PHRASES)))] if rng.random() < 0.7
                     else connectors[int(rng.integers(0, len(connectors)))]).split()
            row[at:at] = piece
        out.append(row)
    return out
