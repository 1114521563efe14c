"""Vocabulary: count every token, keep the frequent words, and encode the corpus as int32 ids.

The vocabulary table is sorted by count descending, ties by word (code-point order), so ids are the same on
every machine; ``frequency`` is the count divided by the tokens kept, the ``f(w)`` of word2vec's subsampling.

Both passes over the token file run on ``workers`` processes, one row group (a block of the corpus) at a time,
and memory follows the number of distinct words, not the corpus:

* **count**: each block's counts are split by a hash of the word into ``PARTS`` partitions and spilled to disk;
  then each partition is summed by word once, in parallel too. No process ever holds more than a block's
  counts or a partition's (a sixteenth of the distinct words). Words under ``min_count`` are dropped partition
  by partition.
* **encode**: each worker builds a hash table of the vocabulary once (word → id, compiled with numba) and looks
  every token up in it; a match is confirmed byte for byte, so two words that share a hash are never confused.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
from numba import njit
from tqdm import tqdm

from w2v.arrow_io import count_token_batches, drop_empty_rows, keep_values, lists_from_lengths, read_token_batch
from w2v.errors import W2VError
from w2v.parallel import in_order
from w2v.params import worker_count

log = logging.getLogger(__name__)

PARTS = 16  # hash partitions of the counts
FNV_OFFSET = np.uint64(14695981039346656037)
FNV_PRIME = np.uint64(1099511628211)


def string_buffers(strings: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(UTF-8 bytes, offsets) of a string array, as numpy views (offsets rebased to the bytes)."""
    if isinstance(strings, pa.ChunkedArray):
        strings = strings.combine_chunks()
    strings = strings.cast(pa.large_string()) if strings.type != pa.large_string() else strings
    _, offsets_buffer, data_buffer = strings.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64)[strings.offset:strings.offset + len(strings) + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    return data, offsets


@njit(cache=True)
def _fnv1a(data, offsets, out):  # pragma: no cover - compiled
    """64-bit FNV-1a of each string."""
    for i in range(len(offsets) - 1):
        h = FNV_OFFSET
        for k in range(offsets[i], offsets[i + 1]):
            h = (h ^ np.uint64(data[k])) * FNV_PRIME
        out[i] = h


def hashes(strings: pa.Array) -> np.ndarray:
    data, offsets = string_buffers(strings)
    out = np.empty(len(strings), dtype=np.uint64)
    _fnv1a(data, offsets, out)
    return out


def count_block(token_path: Path, group: int, spill_dir: Path) -> None:
    """One row group's word counts, split by hash into the ``PARTS`` partitions and spilled to disk as one Arrow
    file holding one record batch per partition."""
    counts = pc.value_counts(pc.list_flatten(read_token_batch(token_path, group)))
    words, numbers = counts.field("values"), counts.field("counts")
    part = (hashes(words) % np.uint64(PARTS)).astype(np.int64)
    order = np.argsort(part, kind="stable")
    bounds = np.searchsorted(part[order], np.arange(PARTS + 1))
    table = pa.table({"word": words, "count": numbers}).take(pa.array(order))
    with pa.OSFile(str(spill_dir / f"{group:06d}.arrow"), "wb") as sink, ipc.new_file(sink, table.schema) as writer:
        for p in range(PARTS):
            writer.write_batch(table.slice(bounds[p], bounds[p + 1] - bounds[p]).combine_chunks().to_batches()[0]
                               if bounds[p + 1] > bounds[p] else pa.record_batch([[], []], schema=table.schema))


def sum_partition(spill_dir: Path, blocks: int, part: int, min_count: int) -> tuple[pa.Table, int, int, list]:
    """One partition's counts from every block, summed by word: (words kept, tokens, types, [most frequent])."""
    pieces = [ipc.open_file(pa.memory_map(str(spill_dir / f"{block:06d}.arrow"))).get_batch(part)
              for block in range(blocks)]
    summed = pa.Table.from_batches(pieces).group_by("word").aggregate([("count", "sum")])
    summed = pa.table({"word": summed.column("word"), "count": summed.column("count_sum")})
    count = summed.column("count")
    top = summed.sort_by([("count", "descending"), ("word", "ascending")]).slice(0, 1).to_pylist()
    return (summed.filter(pc.greater_equal(count, min_count)), int(pc.sum(count).as_py() or 0), summed.num_rows,
            top)


@dataclass(frozen=True)
class Counts:
    """The words seen at least ``min_count`` times, and the totals of every word."""

    kept: pa.Table  # word, count (unsorted)
    tokens: int
    types: int
    top: tuple[str, int] | None  # the most frequent word and its count


def count_words(token_path: Path, min_count: int, workers: int = 0, scratch: Path | None = None) -> Counts:
    """Count every token of the token file, spilling each block's partial counts under ``scratch`` (a new
    temporary directory if None; removed before returning)."""
    blocks = count_token_batches(token_path)
    workers = min(worker_count(workers), max(blocks, 1))
    with tempfile.TemporaryDirectory(dir=scratch, prefix=".counts-") as spill, \
            (ProcessPoolExecutor(max_workers=workers) if workers > 1 else contextlib.nullcontext()) as pool:
        spill_dir = Path(spill)
        run = pool.map if pool is not None else map
        list(tqdm(run(count_block, [token_path] * blocks, range(blocks), [spill_dir] * blocks), total=blocks,
                  desc="count", unit="block", disable=None, leave=False))
        results = list(run(sum_partition, [spill_dir] * PARTS, [blocks] * PARTS, range(PARTS),
                           [min_count] * PARTS)) if blocks else []
    top = min((t for r in results for t in r[3]), key=lambda t: (-t["count"], t["word"]), default=None)
    empty = pa.table({"word": pa.array([], pa.string()), "count": pa.array([], pa.int64())})
    return Counts(pa.concat_tables([r[0] for r in results]) if results else empty, sum(r[1] for r in results),
                  sum(r[2] for r in results), (top["word"], top["count"]) if top else None)


def build_vocab(counts: Counts, min_count: int, max_vocab_size: int) -> pa.Table:
    """Keep words seen at least ``min_count`` times, the ``max_vocab_size`` most frequent (0 = all).

    Returns (word, count, frequency) sorted by count descending then word; frequency is relative to the
    tokens kept, which is the ``f(w)`` word2vec's subsampling formula uses.
    """
    kept = counts.kept.filter(pc.greater_equal(counts.kept.column("count"), min_count))
    kept = kept.sort_by([("count", "descending"), ("word", "ascending")])
    if max_vocab_size:
        kept = kept.slice(0, max_vocab_size)
    if kept.num_rows == 0:
        top = (f"the most frequent word, {counts.top[0]}, occurs {counts.top[1]} times" if counts.top
               else "the corpus has no tokens")
        raise W2VError(f"vocab.min_count = {min_count} leaves an empty vocabulary: {top}; lower vocab.min_count")
    word = kept.column("word").combine_chunks().cast(pa.string())
    count = kept.column("count").combine_chunks()
    frequency = pc.divide(pc.cast(count, pa.float64()), float(pc.sum(count).as_py()))
    return pa.table({"word": word, "count": count, "frequency": frequency})


@njit(cache=True, inline="always")
def same_bytes(a, a_start, b, b_start, length):  # pragma: no cover - compiled
    """Whether a[a_start:a_start + length] and b[b_start:b_start + length] hold the same bytes."""
    for k in range(length):
        if a[a_start + k] != b[b_start + k]:
            return False
    return True


@njit(cache=True)
def slot_table(word_hashes, size):  # pragma: no cover - compiled
    """Open addressing: slot → word id (-1 empty), probed linearly from the hash."""
    table = np.full(size, -1, dtype=np.int64)
    mask = np.uint64(size - 1)
    for word in range(len(word_hashes)):
        slot = word_hashes[word] & mask
        while table[slot] >= 0:
            slot = (slot + np.uint64(1)) & mask
        table[slot] = word
    return table


@njit(cache=True)
def _look_up(table, word_hashes, word_data, word_offsets, data, offsets, out):  # pragma: no cover - compiled
    """The id of each string (-1 if it is not a word): a slot whose hash matches is confirmed byte by byte."""
    mask = np.uint64(len(table) - 1)
    for i in range(len(offsets) - 1):
        h = FNV_OFFSET
        for k in range(offsets[i], offsets[i + 1]):
            h = (h ^ np.uint64(data[k])) * FNV_PRIME
        slot = h & mask
        out[i] = -1
        while table[slot] >= 0:
            word = table[slot]
            if word_hashes[word] == h:
                length = offsets[i + 1] - offsets[i]
                start = word_offsets[word]
                if word_offsets[word + 1] - start == length and same_bytes(word_data, start, data, offsets[i],
                                                                          length):
                    out[i] = word
                    break
            slot = (slot + np.uint64(1)) & mask


class WordIndex:
    """word → id for a vocabulary of any size, built once (the hash table of pyarrow's index_in is rebuilt on
    every call, which for 2M words costs more than encoding a block)."""

    def __init__(self, words: pa.Array) -> None:
        self.data, self.offsets = (np.ascontiguousarray(a) for a in string_buffers(words))
        self.hashes = hashes(words)
        self.table = slot_table(self.hashes, 1 << int(2 * len(words) + 1).bit_length())

    def ids(self, strings: pa.Array) -> np.ndarray:
        data, offsets = string_buffers(strings)
        out = np.empty(len(strings), dtype=np.int64)
        _look_up(self.table, self.hashes, self.data, self.offsets, data, offsets, out)
        return out


_INDEX: WordIndex | None = None  # the worker process's own index


def _start_worker(words: pa.Array) -> None:
    global _INDEX
    _INDEX = WordIndex(words)


def encode_block(token_path: Path, group: int, index: WordIndex | None = None) -> pa.ListArray:
    """One row group as lists of int32 ids, out-of-vocabulary words dropped, empty rows dropped."""
    lists = read_token_batch(token_path, group)
    index = index or _INDEX
    assert index is not None, "encode_block runs in a worker started by _start_worker, or is given the index"
    ids = index.ids(pc.list_flatten(lists))
    lengths = pc.list_value_length(lists).to_numpy(zero_copy_only=False)
    known = ids >= 0
    encoded = keep_values(lists_from_lengths(lengths, pa.array(ids.astype(np.int32))), pa.array(known))
    return drop_empty_rows(encoded)


def encode_batches(token_path: Path, words: pa.Array, workers: int = 0) -> Iterator[pa.ListArray]:
    """Yield each block of the token file encoded, in order."""
    blocks = count_token_batches(token_path)
    workers = min(worker_count(workers), blocks)
    if workers <= 1:
        index = WordIndex(words)
        for block in range(blocks):
            yield encode_block(token_path, block, index)
        return
    with ProcessPoolExecutor(max_workers=workers, initializer=_start_worker, initargs=(words,)) as pool:
        calls = ((token_path, block) for block in range(blocks))
        yield from tqdm(in_order(pool, encode_block, calls, ahead=2 * workers), total=blocks, desc="encode",
                        unit="block", disable=None, leave=False)


def vocab_stats(counts: Counts, vocab: pa.Table, documents: int, kept_tokens: int) -> dict:
    tokens = counts.tokens
    return {"tokens": tokens, "types": counts.types, "vocab_size": vocab.num_rows,
            "kept_tokens": kept_tokens, "dropped_tokens": tokens - kept_tokens,
            "dropped_ratio": round((tokens - kept_tokens) / tokens, 6) if tokens else 0.0,
            "documents": documents}
