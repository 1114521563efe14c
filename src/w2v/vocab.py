"""Vocabulary: count every token, keep the frequent words, and encode the corpus as int32 ids.

The vocabulary table is sorted by count descending, ties by word (code-point order), so ids are the same on
every machine; ``frequency`` is the count divided by the tokens kept, the ``f(w)`` of word2vec's subsampling.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from w2v.arrow_io import count_token_batches, drop_empty_rows, iter_token_batches, keep_values, lists_from_lengths
from w2v.errors import W2VError

log = logging.getLogger(__name__)

MERGE_ROWS = 4_000_000  # merge partial counts past this many rows, to bound memory on huge vocabularies


def _merge_counts(tables: list[pa.Table]) -> pa.Table:
    merged = pa.concat_tables(tables).group_by("word").aggregate([("count", "sum")])
    return pa.table({"word": merged.column("word"), "count": merged.column("count_sum")})


def count_words(token_path: Path) -> pa.Table:
    """Count every token of the token file; return an unsorted table (word, count)."""
    partial: list[pa.Table] = []
    rows = 0
    for lists in tqdm(iter_token_batches(token_path), total=count_token_batches(token_path), desc="count",
                      unit="batch", disable=None, leave=False):
        counts = pc.value_counts(pc.list_flatten(lists))
        partial.append(pa.table({"word": counts.field("values"), "count": counts.field("counts")}))
        rows += len(counts)
        if rows > MERGE_ROWS:
            partial = [_merge_counts(partial)]
            rows = partial[0].num_rows
    if not partial:
        return pa.table({"word": pa.array([], pa.string()), "count": pa.array([], pa.int64())})
    return _merge_counts(partial)


def build_vocab(counts: pa.Table, min_count: int, max_vocab_size: int) -> pa.Table:
    """Keep words seen at least ``min_count`` times, the ``max_vocab_size`` most frequent (0 = all).

    Returns (word, count, frequency) sorted by count descending then word; frequency is relative to the
    tokens kept, which is the ``f(w)`` word2vec's subsampling formula uses.
    """
    ranked = counts.sort_by([("count", "descending"), ("word", "ascending")])
    kept = ranked.filter(pc.greater_equal(ranked.column("count"), min_count))
    if max_vocab_size:
        kept = kept.slice(0, max_vocab_size)
    if kept.num_rows == 0:
        top = (f"the most frequent word, {ranked.column('word')[0]!s}, occurs {ranked.column('count')[0]} times"
               if ranked.num_rows else "the corpus has no tokens")
        raise W2VError(f"vocab.min_count = {min_count} leaves an empty vocabulary: {top}; lower vocab.min_count")
    count = kept.column("count")
    frequency = pc.divide(pc.cast(count, pa.float64()), float(pc.sum(count).as_py()))
    return pa.table({"word": kept.column("word"), "count": count, "frequency": frequency})


def encode_batches(token_path: Path, words: pa.Array) -> Iterator[pa.ListArray]:
    """Yield each token batch as lists of int32 ids (row number in ``words``), OOV dropped, empty rows dropped."""
    for lists in iter_token_batches(token_path):
        ids = pc.index_in(pc.list_flatten(lists), value_set=words)
        lengths = pc.list_value_length(lists).to_numpy(zero_copy_only=False)
        encoded = keep_values(lists_from_lengths(lengths, ids), pc.is_valid(ids))
        yield drop_empty_rows(encoded)


def vocab_stats(counts: pa.Table, vocab: pa.Table, documents: int, kept_tokens: int) -> dict:
    tokens = int(pc.sum(counts.column("count")).as_py() or 0)
    return {"tokens": tokens, "types": counts.num_rows, "vocab_size": vocab.num_rows,
            "kept_tokens": kept_tokens, "dropped_tokens": tokens - kept_tokens,
            "dropped_ratio": round((tokens - kept_tokens) / tokens, 6) if tokens else 0.0,
            "documents": documents}
