"""Training windows: the encoded corpus → shuffled window shards, one set per epoch.

For each epoch and each batch of documents of the id file (a *unit*), with its own random stream derived from
(``pairs.seed``, epoch, batch):

1. **subsample** frequent words with word2vec's keep probability (:func:`w2v.frequencies.keep_probabilities`);
2. give each kept word a **dynamic window**: a reach ``b`` drawn uniformly from 1..``pairs.window``; its context
   is every kept word within distance ``b`` on either side, never across a document boundary (word2vec.c's and
   gensim's law: ``b`` is drawn per center, the text is the subsampled one);
3. cut the windows, in text order, into shards of about ``pairs.shard_size`` pairs, and put them in training
   order (``pairs.order``): ``shuffled`` **shuffles** each shard's windows, ``blocks`` shuffles runs of
   :data:`BLOCK_WINDOWS` consecutive windows, and both list the epoch's shards in a random order in the
   manifest (the order the trainer reads them); ``text`` keeps both in the corpus's order.

Units are independent, so they run in parallel processes (``pairs.workers``) and a one-epoch run still uses
every core; the output does not depend on how many there are. Memory is bounded by one batch of the id file.
The format of a shard is described in :mod:`w2v.shards`.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from w2v.arrow_io import count_id_batches, iter_id_batches
from w2v.errors import W2VError
from w2v.frequencies import keep_probabilities
from w2v.params import PairsParams, worker_count
from w2v.shards import FORMAT, EpochInfo, PairManifest, ShardInfo, WindowShard, token_dtype, write_window_shard

log = logging.getLogger(__name__)

NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
WINDOW_BYTES = 4 + 1 + 1  # center, left, right
BLOCK_WINDOWS = 256  # pairs.order: blocks (about 1,500 words of text: measured in bench/NOTES.md, "Window order")


def unit_rng(seed: int, epoch: int, batch: int | None = None) -> np.random.Generator:
    """The random stream of one epoch (shard order) or of one (epoch, batch) unit: independent of the others,
    and of how many processes build them."""
    key = (epoch,) if batch is None else (epoch, batch)
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


def subsample(ids: np.ndarray, offsets: np.ndarray, keep_prob: np.ndarray,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Keep each token with its word's probability; return (kept ids, document offsets into the kept ids)."""
    keep = rng.random(len(ids)) < keep_prob[ids]
    document = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    kept_offsets = np.zeros(len(offsets), dtype=np.int64)
    np.cumsum(np.bincount(document[keep], minlength=len(offsets) - 1), out=kept_offsets[1:])
    return ids[keep], kept_offsets


def draw_windows(kept_offsets: np.ndarray, window: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each kept word's window: (position, left, right), for the words with at least one context word.

    The reach b is drawn per word in 1..window; ``left``/``right`` are b clipped to the word's document.
    """
    n = int(kept_offsets[-1])
    reach = rng.integers(1, window + 1, size=n, dtype=np.int64)
    document = np.repeat(np.arange(len(kept_offsets) - 1), np.diff(kept_offsets))
    position = np.arange(n, dtype=np.int64)
    left = np.minimum(reach, position - kept_offsets[:-1][document])
    right = np.minimum(reach, kept_offsets[1:][document] - 1 - position)
    used = (left + right) > 0
    return position[used], left[used].astype(np.uint8), right[used].astype(np.uint8)


def shard_bounds(pairs_per_window: np.ndarray, shard_size: int) -> np.ndarray:
    """Window indices where shards start and end (a new shard every ``shard_size`` cumulative pairs)."""
    cumulative = np.cumsum(pairs_per_window)
    total = int(cumulative[-1]) if len(cumulative) else 0
    cuts = np.searchsorted(cumulative, np.arange(shard_size, total, shard_size), side="left") + 1
    return np.unique(np.concatenate([[0], cuts, [len(pairs_per_window)]]))


def window_order(windows: int, order: str, rng: np.random.Generator) -> np.ndarray:
    """The training order of a shard's windows (given in text order): ``pairs.order``."""
    if order == "shuffled":
        return rng.permutation(windows)
    if order == "blocks":  # consecutive windows share most of their rows: a block keeps them in the cache
        blocks = rng.permutation(-(-windows // BLOCK_WINDOWS))
        positions = (blocks[:, None] * BLOCK_WINDOWS + np.arange(BLOCK_WINDOWS)).ravel()
        return positions[positions < windows]  # the last block may be short
    return np.arange(windows)


def make_shard(kept: np.ndarray, position: np.ndarray, left: np.ndarray, right: np.ndarray, dtype: np.dtype,
               order: str, rng: np.random.Generator) -> WindowShard:
    """A shard of the given windows (in text order): the stretch of text they read, and the windows in training
    order (``pairs.order``)."""
    start = int((position - left).min())
    end = int((position + right).max()) + 1
    trained = window_order(len(position), order, rng)
    return WindowShard(kept[start:end].astype(dtype), (position - start)[trained].astype(np.uint32), left[trained],
                       right[trained])


def build_unit(ids_path: Path, batch: int, keep_prob: np.ndarray, params: PairsParams, epoch: int,
               out_dir: Path) -> tuple[list[ShardInfo], int, int]:
    """Write the shards of one (epoch, batch) unit; return (their infos, words read, words kept)."""
    offsets, ids = next(iter_id_batches(ids_path, start=batch, stop=batch + 1))
    rng = unit_rng(params.seed, epoch, batch)
    kept, kept_offsets = subsample(ids, offsets, keep_prob, rng)
    position, left, right = draw_windows(kept_offsets, params.window, rng)
    dtype = token_dtype(len(keep_prob))
    bounds = shard_bounds(left.astype(np.int64) + right, params.shard_size)
    epoch_dir = out_dir / f"epoch-{epoch:02d}"
    epoch_dir.mkdir(exist_ok=True)
    infos = []
    for piece, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        shard = make_shard(kept, position[lo:hi], left[lo:hi], right[lo:hi], dtype, params.order, rng)
        path = epoch_dir / f"shard-{batch:05d}-{piece:03d}.arrow"
        write_window_shard(path, shard)
        infos.append(ShardInfo.of(out_dir, path, shard))
    return infos, len(ids), len(kept)


def save_npy(path: Path, array: np.ndarray) -> None:
    """np.save through a plain write, so that a full disk raises OSError with its errno (numpy's own writer
    reports a short write without one)."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    path.write_bytes(buffer.getvalue())


def estimate_bytes(counts: np.ndarray, keep_prob: np.ndarray, params: PairsParams) -> int:
    """About what the shards take on disk: every kept word once in the text and (at most) once as a window."""
    kept_per_epoch = float(np.dot(counts.astype(np.float64), keep_prob))
    per_word = token_dtype(len(counts)).itemsize + WINDOW_BYTES
    return int(params.epochs * kept_per_epoch * per_word * 1.02) + (1 << 20)


def check_free_space(out_dir: Path, needed: int) -> None:
    free = shutil.disk_usage(out_dir).free
    if needed > free:
        raise W2VError(f"{out_dir.parent}: the pair shards need about {needed / 1e9:.2f} GB and the disk has "
                       f"{free / 1e9:.2f} GB free; free some space, or lower pairs.epochs, or raise pairs.sample "
                       f"(fewer frequent words kept)")


def build_pairs(ids_path: Path, counts: np.ndarray, params: PairsParams, out_dir: Path) -> PairManifest:
    """Write keep_prob.npy and every epoch's shards into ``out_dir``; return the manifest (not yet written)."""
    keep_prob = keep_probabilities(counts, params.sample)
    needed = estimate_bytes(counts, keep_prob, params)
    check_free_space(out_dir, needed)
    batches = count_id_batches(ids_path)
    units = [(epoch, batch) for epoch in range(params.epochs) for batch in range(batches)]
    workers = min(worker_count(params.workers), len(units))
    results: dict[tuple[int, int], tuple] = {}
    try:
        save_npy(out_dir / "keep_prob.npy", keep_prob)
        with tqdm(total=len(units), desc="pairs", unit="batch", disable=None) as bar:
            if workers <= 1:
                for epoch, batch in units:
                    results[epoch, batch] = build_unit(ids_path, batch, keep_prob, params, epoch, out_dir)
                    bar.update()
            else:
                with ProcessPoolExecutor(max_workers=workers) as pool:
                    futures = {unit: pool.submit(build_unit, ids_path, unit[1], keep_prob, params, unit[0], out_dir)
                               for unit in units}
                    for unit, future in futures.items():
                        results[unit] = future.result()
                        bar.update()
    except OSError as exc:
        if exc.errno in NO_SPACE:
            raise W2VError(f"{out_dir.parent}: the disk filled up while writing the pair shards "
                           f"({os.strerror(exc.errno)}); "
                           f"nothing was kept. They need about {needed / 1e9:.2f} GB: free some space, or lower "
                           f"pairs.epochs") from None
        raise
    epochs = []
    for epoch in range(params.epochs):
        shards = [info for batch in range(batches) for info in results[epoch, batch][0]]
        order = range(len(shards)) if params.order == "text" else unit_rng(params.seed, epoch).permutation(len(shards))
        epochs.append(EpochInfo(epoch, sum(results[epoch, b][1] for b in range(batches)),
                                sum(results[epoch, b][2] for b in range(batches)), sum(s.windows for s in shards),
                                sum(s.pairs for s in shards), tuple(shards[i] for i in order)))
    return PairManifest(FORMAT, params.result_dict(), len(counts), token_dtype(len(counts)).name, tuple(epochs))


def pair_stats(manifest: PairManifest) -> dict:
    epochs = manifest.epochs
    pairs = manifest.total_pairs
    size = sum(s.bytes for e in epochs for s in e.shards)
    words = epochs[0].words
    kept = sum(e.kept_words for e in epochs) / len(epochs)
    return {"words": words, "kept_words_per_epoch": round(kept, 1), "kept_ratio": round(kept / words, 6),
            "windows": sum(e.windows for e in epochs), "pairs": pairs,
            "pairs_per_epoch": round(pairs / len(epochs), 1),
            "shards": sum(len(e.shards) for e in epochs), "bytes": size,
            "bytes_per_pair": round(size / pairs, 4) if pairs else 0.0}
