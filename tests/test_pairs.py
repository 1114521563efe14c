"""pairs stage: reproducibility, the statistical laws of subsampling and dynamic windows, and the shard files."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from w2v.arrow_io import write_id_file
from w2v.frequencies import keep_probabilities
from w2v.pairs import build_pairs, epoch_rng, shuffle_pairs, subsample, window_pairs
from w2v.params import PairsParams
from w2v.shards import PairManifest, read_pair_shard


def write_ids(path: Path, documents: list[np.ndarray], per_batch: int = 3) -> Path:
    """An id file with ``per_batch`` documents per record batch (so batch boundaries are exercised)."""
    batches = [pa.array([d.tolist() for d in documents[i:i + per_batch]], pa.list_(pa.int32()))
               for i in range(0, len(documents), per_batch)]
    write_id_file(path, batches)
    return path


def all_pairs(out: Path, manifest: PairManifest, epoch: int) -> np.ndarray:
    shards = manifest.epochs[epoch].shards
    return np.concatenate([np.stack(read_pair_shard(out / s.file), axis=1) for s in shards])


@pytest.fixture
def corpus(tmp_path) -> tuple[Path, np.ndarray]:
    """20 documents of a Zipf-like vocabulary of 50 words, and the counts of each word."""
    rng = np.random.default_rng(0)
    weights = 1.0 / np.arange(1, 51)
    documents = [rng.choice(50, size=n, p=weights / weights.sum()).astype(np.int32)
                 for n in rng.integers(1, 400, size=20)]
    counts = np.bincount(np.concatenate(documents), minlength=50)
    return write_ids(tmp_path / "ids.arrow", documents), counts


def build(tmp_path: Path, ids: Path, counts: np.ndarray, name: str, **params) -> tuple[Path, dict]:
    out = tmp_path / name
    out.mkdir()
    return out, build_pairs(ids, counts, PairsParams(**{"workers": 1, **params}), out)


def test_keep_probabilities_follow_word2vec():
    counts = np.array([500, 100, 10, 1, 389])  # frequencies 0.5, 0.1, 0.01, 0.001, 0.389
    keep = keep_probabilities(counts, sample=1e-3)
    f = counts / counts.sum()
    assert keep == pytest.approx(np.minimum((np.sqrt(f / 1e-3) + 1) * 1e-3 / f, 1))
    assert keep[2] == pytest.approx((np.sqrt(10) + 1) * 0.1)
    assert keep[3] == 1.0  # at f = s, (1 + 1) * 1 caps at 1
    assert np.all(keep_probabilities(counts, sample=0) == 1)


def test_same_seed_same_bytes_and_workers_do_not_matter(tmp_path, corpus):
    ids, counts = corpus
    one, first = build(tmp_path, ids, counts, "a", epochs=3, shard_size=500, seed=7)
    two, second = build(tmp_path, ids, counts, "b", epochs=3, shard_size=500, seed=7, workers=3)
    assert first == second
    for epoch in first.epochs:
        for shard in epoch.shards:
            assert (one / shard.file).read_bytes() == (two / shard.file).read_bytes()
    assert (one / "keep_prob.npy").read_bytes() == (two / "keep_prob.npy").read_bytes()


def test_other_seed_or_epoch_gives_other_pairs(tmp_path, corpus):
    ids, counts = corpus
    out, manifest = build(tmp_path, ids, counts, "a", epochs=2, seed=1)
    other, other_manifest = build(tmp_path, ids, counts, "b", epochs=1, seed=2)
    epoch0, epoch1 = all_pairs(out, manifest, 0), all_pairs(out, manifest, 1)
    assert not np.array_equal(epoch0, epoch1)
    assert Counter(map(tuple, epoch0)) != Counter(map(tuple, epoch1))  # other subsample/windows, not just order
    assert Counter(map(tuple, epoch0)) != Counter(map(tuple, all_pairs(other, other_manifest, 0)))


def test_shards_have_exactly_shard_size_pairs_and_a_checked_manifest(tmp_path, corpus):
    ids, counts = corpus
    out, manifest = build(tmp_path, ids, counts, "a", epochs=2, shard_size=700)
    for epoch in manifest.epochs:
        sizes = sorted((s.pairs for s in epoch.shards), reverse=True)
        assert sizes[:-1] == [700] * (len(sizes) - 1) and 0 < sizes[-1] <= 700
        assert sum(sizes) == epoch.pairs == len(all_pairs(out, manifest, epoch.epoch))
        assert epoch.words == counts.sum()
    manifest.write(out)
    assert PairManifest.read(out) == manifest  # written and read back whole
    manifest.verify(out)
    center, context = read_pair_shard(out / manifest.epochs[0].shards[0].file)
    assert center.dtype == np.int32 and not center.flags.owndata  # memory-mapped, zero copy


def test_every_id_in_range_and_no_pair_crosses_a_document(tmp_path):
    # Word ids equal to positions make both checks exact: document k holds ids [start_k, end_k).
    lengths = [1, 2, 7, 30, 3, 50, 1, 11]
    starts = np.concatenate([[0], np.cumsum(lengths)])
    documents = [np.arange(starts[k], starts[k + 1], dtype=np.int32) for k in range(len(lengths))]
    ids = write_ids(tmp_path / "ids.arrow", documents)
    counts = np.ones(starts[-1], dtype=np.int64)
    out, manifest = build(tmp_path, ids, counts, "a", epochs=3, sample=0.0, window=4)
    document_of = np.repeat(np.arange(len(lengths)), lengths)
    for epoch in range(3):
        pairs = all_pairs(out, manifest, epoch)
        assert pairs.min() >= 0 and pairs.max() < len(counts)
        assert np.all(document_of[pairs[:, 0]] == document_of[pairs[:, 1]])
        assert np.all(np.abs(pairs[:, 0] - pairs[:, 1]) <= 4) and np.all(pairs[:, 0] != pairs[:, 1])


def test_window_distance_follows_the_dynamic_window_law():
    # Without subsampling, distance d appears with weight (window - d + 1) / window, on each side.
    window, n = 5, 400_000
    ids = np.arange(n, dtype=np.int32)
    pairs = window_pairs(ids, np.zeros(n, dtype=np.int32), window, epoch_rng(3, 0))
    distance = pairs[:, 1] - pairs[:, 0]
    observed = np.array([np.sum(distance == d) for d in range(1, window + 1)]) / n
    expected = np.array([(window - d + 1) / window for d in range(1, window + 1)])
    assert observed == pytest.approx(expected, abs=0.005)
    assert np.sum(distance == -2) / n == pytest.approx(expected[1], abs=0.005)  # left side alike


def test_empirical_keep_rate_matches_keep_probability():
    counts = np.array([60_000, 30_000, 9_000, 1_000])  # word 0 is very frequent
    keep = keep_probabilities(counts, sample=1e-2)
    ids = np.repeat(np.arange(4, dtype=np.int32), counts)
    kept, _ = subsample(ids, np.array([0, len(ids)]), keep, epoch_rng(5, 0))
    rate = np.bincount(kept, minlength=4) / counts
    tolerance = 4 * np.sqrt(keep * (1 - keep) / counts) + 1e-12  # 4 binomial standard errors
    assert np.all(np.abs(rate - keep) <= tolerance), (rate, keep)
    assert rate[0] < 0.5 and rate[3] == 1.0


def test_shuffle_is_a_permutation_that_mixes():
    pairs = np.stack([np.arange(100_000, dtype=np.int32), np.arange(100_000, dtype=np.int32) * 2], axis=1)
    shuffled = shuffle_pairs(pairs, epoch_rng(0, 0))
    assert np.array_equal(np.sort(shuffled[:, 0]), pairs[:, 0])
    assert np.all(shuffled[:, 1] == shuffled[:, 0] * 2)  # rows stay whole
    assert abs(np.corrcoef(shuffled[:, 0], np.arange(100_000))[0, 1]) < 0.02


def test_tiny_corpora_still_give_a_manifest(tmp_path):
    ids = write_ids(tmp_path / "ids.arrow", [np.array([0], dtype=np.int32)])
    out, manifest = build(tmp_path, ids, np.array([1]), "a", epochs=1)
    assert manifest.epochs[0].pairs == 0 and len(manifest.epochs[0].shards) == 1
