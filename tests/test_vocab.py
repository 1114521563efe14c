"""vocab stage: counts, ordering, thresholds, and the encoded corpus."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from w2v.arrow_io import iter_id_batches, write_id_file, write_token_file
from w2v.errors import W2VError
from w2v.vocab import WordIndex, build_vocab, count_words, encode_batches, hashes, vocab_stats

DOCS = [["b", "a", "c", "a"], ["zz", "b", "a"], ["zz"], ["c", "b", "rare"]]


@pytest.fixture
def token_file(tmp_path):
    path = tmp_path / "tokens.parquet"
    # Two row groups, so counting and encoding must combine batches.
    write_token_file(path, [pa.array(DOCS[:2], pa.list_(pa.string())), pa.array(DOCS[2:], pa.list_(pa.string()))])
    return path


@pytest.mark.parametrize("workers", [1, 2])
def test_counts_and_order_by_count_then_word(token_file, workers):
    vocab = build_vocab(count_words(token_file, 1, workers), min_count=1, max_vocab_size=0)
    # a:3, b:3 (tie broken by word), c:2, zz:2, rare:1
    assert vocab.column("word").to_pylist() == ["a", "b", "c", "zz", "rare"]
    assert vocab.column("count").to_pylist() == [3, 3, 2, 2, 1]
    assert vocab.column("frequency").to_pylist() == pytest.approx([3 / 11, 3 / 11, 2 / 11, 2 / 11, 1 / 11])


def test_min_count_and_max_vocab_size(token_file):
    counts = count_words(token_file, 1, 1)
    assert build_vocab(counts, min_count=2, max_vocab_size=0).column("word").to_pylist() == ["a", "b", "c", "zz"]
    assert build_vocab(counts, min_count=1, max_vocab_size=3).column("word").to_pylist() == ["a", "b", "c"]
    kept = build_vocab(counts, min_count=3, max_vocab_size=0)
    assert kept.column("word").to_pylist() == ["a", "b"]
    assert kept.column("frequency").to_pylist() == [0.5, 0.5]  # relative to kept tokens


def test_empty_vocabulary_is_a_clear_error(token_file):
    with pytest.raises(W2VError, match=r"vocab.min_count = 4 leaves an empty vocabulary: the most frequent "
                                        r"word, a, occurs 3 times"):
        build_vocab(count_words(token_file, 4, 1), min_count=4, max_vocab_size=0)


@pytest.mark.parametrize("workers", [1, 2])
def test_encoding_drops_oov_and_keeps_document_boundaries(token_file, tmp_path, workers):
    counts = count_words(token_file, 2, workers)
    vocab = build_vocab(counts, min_count=2, max_vocab_size=0)
    out = tmp_path / "ids.arrow"
    documents, ids = write_id_file(out, encode_batches(token_file, vocab.column("word"), workers))
    batches = list(iter_id_batches(out))
    docs = [ids_[offsets[i]:offsets[i + 1]].tolist() for offsets, ids_ in batches for i in range(len(offsets) - 1)]
    # a=0 b=1 c=2 zz=3; "rare" dropped; no document is empty
    assert docs == [[1, 0, 2, 0], [3, 1, 0], [3], [2, 1]]
    assert (documents, ids) == (4, 10)
    assert all(b[1].dtype == np.int32 and not b[1].flags.owndata for b in batches)  # memory-mapped views
    stats = vocab_stats(counts, vocab, documents, ids)
    assert stats == {"tokens": 11, "types": 5, "vocab_size": 4, "kept_tokens": 10, "dropped_tokens": 1,
                     "dropped_ratio": round(1 / 11, 6), "documents": 4}


def test_documents_left_empty_are_dropped(tmp_path):
    path = tmp_path / "tokens.parquet"
    write_token_file(path, [pa.array([["x", "y"], ["rare"], ["x"]], pa.list_(pa.string()))])
    words = pa.array(["x", "y"])
    encoded = [row for batch in encode_batches(path, words) for row in batch.to_pylist()]
    assert encoded == [[0, 1], [0]]


@pytest.mark.parametrize("workers", [1, 2])
def test_counting_many_blocks_in_partitions_agrees_with_a_plain_count(tmp_path, workers):
    """20 blocks, 3000 words over 16 partitions, summed on disk: the sums are exact and nothing is left behind."""
    rng = np.random.default_rng(0)
    words = np.array([f"w{i}" for i in range(3000)])
    docs = [words[rng.zipf(1.3, rng.integers(1, 40)) % 3000].tolist() for _ in range(2000)]
    path = tmp_path / "tokens.parquet"
    write_token_file(path, [pa.array(docs[i:i + 100], pa.list_(pa.string())) for i in range(0, 2000, 100)])
    counts = count_words(path, 3, workers, scratch=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tokens.parquet"]
    from collections import Counter

    plain = Counter(w for d in docs for w in d)
    assert dict(zip(counts.kept.column("word").to_pylist(), counts.kept.column("count").to_pylist())) == \
        {w: c for w, c in plain.items() if c >= 3}
    assert (counts.tokens, counts.types) == (sum(plain.values()), len(plain))
    assert counts.top == min(plain.items(), key=lambda item: (-item[1], item[0]))


def test_word_index_confirms_a_hash_match_byte_by_byte(monkeypatch):
    import w2v.vocab

    words = pa.array(["naïve", "café", "a", "b", "日本語"])
    index = WordIndex(words)
    assert index.ids(pa.array(["café", "x", "日本語", "a", "naïve", "caf"])).tolist() == [1, -1, 4, 2, 0, -1]
    # "a" and "b" made to share b's hash, "a" first in the table: looking up "b" meets "a" first, whose bytes
    # differ, and goes on to "b".
    shared = hashes(pa.array(["b"]))[0]
    monkeypatch.setattr(w2v.vocab, "hashes", lambda strings: np.full(len(strings), shared, np.uint64))
    colliding = WordIndex(pa.array(["a", "b"]))
    assert colliding.ids(pa.array(["b"])).tolist() == [1]
