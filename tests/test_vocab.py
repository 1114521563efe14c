"""vocab stage: counts, ordering, thresholds, and the encoded corpus."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from w2v.arrow_io import iter_id_batches, write_id_file, write_token_file
from w2v.errors import W2VError
from w2v.vocab import build_vocab, count_words, encode_batches, vocab_stats

DOCS = [["b", "a", "c", "a"], ["zz", "b", "a"], ["zz"], ["c", "b", "rare"]]


@pytest.fixture
def token_file(tmp_path):
    path = tmp_path / "tokens.parquet"
    # Two row groups, so counting and encoding must combine batches.
    write_token_file(path, [pa.array(DOCS[:2], pa.list_(pa.string())), pa.array(DOCS[2:], pa.list_(pa.string()))])
    return path


def test_counts_and_order_by_count_then_word(token_file):
    vocab = build_vocab(count_words(token_file), min_count=1, max_vocab_size=0)
    # a:3, b:3 (tie broken by word), c:2, zz:2, rare:1
    assert vocab.column("word").to_pylist() == ["a", "b", "c", "zz", "rare"]
    assert vocab.column("count").to_pylist() == [3, 3, 2, 2, 1]
    assert vocab.column("frequency").to_pylist() == pytest.approx([3 / 11, 3 / 11, 2 / 11, 2 / 11, 1 / 11])


def test_min_count_and_max_vocab_size(token_file):
    counts = count_words(token_file)
    assert build_vocab(counts, min_count=2, max_vocab_size=0).column("word").to_pylist() == ["a", "b", "c", "zz"]
    assert build_vocab(counts, min_count=1, max_vocab_size=3).column("word").to_pylist() == ["a", "b", "c"]
    kept = build_vocab(counts, min_count=3, max_vocab_size=0)
    assert kept.column("word").to_pylist() == ["a", "b"]
    assert kept.column("frequency").to_pylist() == [0.5, 0.5]  # relative to kept tokens


def test_empty_vocabulary_is_a_clear_error(token_file):
    with pytest.raises(W2VError, match=r"vocab.min_count = 4 leaves an empty vocabulary: the most frequent "
                                        r"word, a, occurs 3 times"):
        build_vocab(count_words(token_file), min_count=4, max_vocab_size=0)


def test_encoding_drops_oov_and_keeps_document_boundaries(token_file, tmp_path):
    vocab = build_vocab(count_words(token_file), min_count=2, max_vocab_size=0)
    out = tmp_path / "ids.arrow"
    documents, ids = write_id_file(out, encode_batches(token_file, vocab.column("word").combine_chunks()))
    batches = list(iter_id_batches(out))
    docs = [ids_[offsets[i]:offsets[i + 1]].tolist() for offsets, ids_ in batches for i in range(len(offsets) - 1)]
    # a=0 b=1 c=2 zz=3; "rare" dropped; no document is empty
    assert docs == [[1, 0, 2, 0], [3, 1, 0], [3], [2, 1]]
    assert (documents, ids) == (4, 10)
    assert all(b[1].dtype == np.int32 and not b[1].flags.owndata for b in batches)  # memory-mapped views
    stats = vocab_stats(count_words(token_file), vocab, documents, ids)
    assert stats == {"tokens": 11, "types": 5, "vocab_size": 4, "kept_tokens": 10, "dropped_tokens": 1,
                     "dropped_ratio": round(1 / 11, 6), "documents": 4}


def test_documents_left_empty_are_dropped(tmp_path):
    path = tmp_path / "tokens.parquet"
    write_token_file(path, [pa.array([["x", "y"], ["rare"], ["x"]], pa.list_(pa.string()))])
    words = pa.array(["x", "y"])
    encoded = [row for batch in encode_batches(path, words) for row in batch.to_pylist()]
    assert encoded == [[0, 1], [0]]
