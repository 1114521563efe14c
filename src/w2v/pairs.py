"""Training pairs: the encoded corpus → shuffled (center, context) pair shards, one set per epoch.

For each epoch, with its own random stream derived from ``pairs.seed``:

1. **subsample** frequent words with word2vec's keep probability (:func:`w2v.frequencies.keep_probabilities`);
2. give each kept center a **dynamic window** ``b`` drawn uniformly from 1..``pairs.window`` and pair it with
   every kept word within distance ``b`` on both sides, never across a document boundary;
3. cut the stream into shards of exactly ``pairs.shard_size`` pairs (the last one shorter), **shuffle** each
   shard, and list the shards in a random order in the manifest (the order the trainer reads them).

Everything is vectorised numpy over one id batch at a time (about 1.5M tokens), so memory is bounded by the
batch and shard sizes, not the corpus. Epochs are independent and are built in parallel processes.

Outputs in ``data/pairs/``: ``epoch-NN/shard-NNN.arrow`` (Arrow IPC, int32 ``center`` and ``context``,
memory-mappable), ``keep_prob.npy`` (float64, row = word id) and ``manifest.json`` (params, seeds, and per
shard its pairs, bytes and sha256). Stats go to ``metrics/pairs.json``.
"""

from __future__ import annotations

import logging
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
from tqdm import tqdm

from w2v.arrow_io import iter_id_batches
from w2v.frequencies import keep_probabilities
from w2v.params import PairsParams, worker_count
from w2v.shards import EpochInfo, PairManifest, ShardInfo, write_pair_shard

log = logging.getLogger(__name__)

SHUFFLE_BUCKET = 4096  # pairs per bucket of the two-level shuffle: small enough to stay in cache


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    """Each epoch's own stream: independent of the others, and of how many processes build them."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(epoch,))))


def subsample(ids: np.ndarray, offsets: np.ndarray, keep_prob: np.ndarray,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Keep each token with its word's probability; return (kept ids, document index of each kept id)."""
    document = np.repeat(np.arange(len(offsets) - 1, dtype=np.int32), np.diff(offsets))
    keep = rng.random(len(ids)) < keep_prob[ids]
    return ids[keep], document[keep]


def window_pairs(ids: np.ndarray, document: np.ndarray, window: int, rng: np.random.Generator) -> np.ndarray:
    """All (center, context) pairs of the dynamic window, as an (n, 2) int32 array.

    Center i draws b_i in 1..window; it pairs with i-d and i+d for every d <= b_i in the same document.
    One vectorised pass per distance d and side, so the cost is O(window * tokens) with no Python per token.
    """
    reach = rng.integers(1, window + 1, size=len(ids), dtype=np.int16)
    centers, contexts = [], []
    for d in range(1, min(window, len(ids) - 1) + 1):
        same_document = document[d:] == document[:-d]
        right = same_document & (reach[:-d] >= d)  # center i, context i+d
        centers.append(ids[:-d][right])
        contexts.append(ids[d:][right])
        left = same_document & (reach[d:] >= d)  # center i+d, context i
        centers.append(ids[d:][left])
        contexts.append(ids[:-d][left])
    pairs = np.empty((sum(map(len, centers)), 2), dtype=np.int32)
    if len(pairs):
        pairs[:, 0] = np.concatenate(centers)
        pairs[:, 1] = np.concatenate(contexts)
    return pairs


def shuffle_pairs(pairs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random permutation of the rows of an (n, 2) int32 array.

    Two levels (Rao-Sandelius): deal the pairs into random buckets with a stable radix sort, then shuffle each
    small bucket in cache. The result is uniform, and ~1.5x faster than one shuffle of the whole array, whose
    random accesses miss the cache.
    """
    flat = np.ascontiguousarray(pairs).view(np.int64).reshape(-1)  # one 8-byte unit per pair
    buckets = int(min(256, max(1, len(flat) // SHUFFLE_BUCKET)))
    keys = rng.integers(0, buckets, size=len(flat), dtype=np.uint8)
    shuffled = flat[np.argsort(keys, kind="stable")]
    start = 0
    for end in np.cumsum(np.bincount(keys, minlength=buckets)):
        rng.shuffle(shuffled[start:end])
        start = end
    return shuffled.view(np.int32).reshape(-1, 2)


def write_shard(out_dir: Path, path: Path, pairs: np.ndarray, rng: np.random.Generator) -> ShardInfo:
    shuffled = shuffle_pairs(pairs, rng)
    write_pair_shard(path, np.ascontiguousarray(shuffled[:, 0]), np.ascontiguousarray(shuffled[:, 1]))
    return ShardInfo.of(out_dir, path, len(pairs))


def build_epoch(ids_path: Path, keep_prob: np.ndarray, window: int, shard_size: int, seed: int, epoch: int,
                out_dir: Path) -> EpochInfo:
    """Write one epoch's shards under ``out_dir/epoch-NN``; return its manifest entry."""
    rng = epoch_rng(seed, epoch)
    epoch_dir = out_dir / f"epoch-{epoch:02d}"
    epoch_dir.mkdir()
    shards: list[ShardInfo] = []
    pending = np.empty((0, 2), dtype=np.int32)
    words = kept_words = 0

    def flush(pairs: np.ndarray) -> None:
        shards.append(write_shard(out_dir, epoch_dir / f"shard-{len(shards):03d}.arrow", pairs, rng))

    for offsets, ids in iter_id_batches(ids_path):
        kept, document = subsample(ids, offsets, keep_prob, rng)
        words += len(ids)
        kept_words += len(kept)
        pending = np.concatenate([pending, window_pairs(kept, document, window, rng)])
        start = 0
        while len(pending) - start >= shard_size:
            flush(pending[start:start + shard_size])
            start += shard_size
        pending = pending[start:].copy()  # drop the reference to the large array
    if len(pending) or not shards:
        flush(pending)
    order = rng.permutation(len(shards))
    return EpochInfo(epoch, {"entropy": seed, "spawn_key": [epoch]}, words, kept_words, sum(s.pairs for s in shards),
                     tuple(shards[i] for i in order))


def build_pairs(ids_path: Path, counts: np.ndarray, params: PairsParams, out_dir: Path) -> PairManifest:
    """Write keep_prob.npy and every epoch's shards into ``out_dir``; return the manifest (not yet written)."""
    keep_prob = keep_probabilities(counts, params.sample)
    np.save(out_dir / "keep_prob.npy", keep_prob)
    workers = min(worker_count(params.workers), params.epochs)
    job = (ids_path, keep_prob, params.window, params.shard_size, params.seed)
    epochs: list[EpochInfo] = []
    with tqdm(total=params.epochs, desc="pairs", unit="epoch", disable=None) as bar:
        if workers == 1:
            for epoch in range(params.epochs):
                epochs.append(build_epoch(*job, epoch, out_dir))
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures = [pool.submit(build_epoch, *job, epoch, out_dir) for epoch in range(params.epochs)]
                for future in as_completed(futures):
                    epochs.append(future.result())
                    bar.update()
    epochs.sort(key=lambda e: e.epoch)
    return PairManifest(params.to_dict() | {"workers": None}, len(counts), "int32", ("center", "context"),
                        tuple(epochs))


def pair_stats(manifest: PairManifest) -> dict:
    epochs = manifest.epochs
    pairs = manifest.total_pairs
    size = sum(s.bytes for e in epochs for s in e.shards)
    words = epochs[0].words
    kept = sum(e.kept_words for e in epochs) / len(epochs)
    return {"words": words, "kept_words_per_epoch": round(kept, 1), "kept_ratio": round(kept / words, 6),
            "pairs": pairs, "pairs_per_epoch": round(pairs / len(epochs), 1),
            "shards": sum(len(e.shards) for e in epochs), "bytes": size,
            "bytes_per_million_pairs": round(size / pairs * 1e6) if pairs else 0}
