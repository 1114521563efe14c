"""pairs stage: reproducibility, the statistical laws of subsampling and dynamic windows, the window shards, and the
disk they need."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from w2v.arrow_io import write_id_file
from w2v.errors import W2VError
from w2v.frequencies import keep_probabilities
from w2v.pairs import build_pairs, draw_windows, make_shard, shard_bounds, subsample, unit_rng
from w2v.params import PairsParams
from w2v.shards import PairManifest, WindowShard, read_window_shard


def write_ids(path: Path, documents: list[np.ndarray], per_batch: int = 3) -> Path:
    """An id file with ``per_batch`` documents per record batch (so batch boundaries are exercised)."""
    batches = [pa.array([d.tolist() for d in documents[i:i + per_batch]], pa.list_(pa.int32()))
               for i in range(0, len(documents), per_batch)]
    write_id_file(path, batches)
    return path


def all_pairs(out: Path, manifest: PairManifest, epoch: int) -> np.ndarray:
    """Every (center, context) pair of an epoch, in training order."""
    shards = [read_window_shard(out / s.file, expect=s) for s in manifest.epochs[epoch].shards]
    return np.concatenate([np.stack(shard.pairs(), axis=1) for shard in shards]) if shards else np.zeros((0, 2))


@pytest.fixture
def corpus(tmp_path) -> tuple[Path, np.ndarray]:
    """20 documents of a Zipf-like vocabulary of 50 words, and the counts of each word."""
    rng = np.random.default_rng(0)
    weights = 1.0 / np.arange(1, 51)
    documents = [rng.choice(50, size=n, p=weights / weights.sum()).astype(np.int32)
                 for n in rng.integers(1, 400, size=20)]
    counts = np.bincount(np.concatenate(documents), minlength=50)
    return write_ids(tmp_path / "ids.arrow", documents), counts


def build(tmp_path: Path, ids: Path, counts: np.ndarray, name: str, **params) -> tuple[Path, PairManifest]:
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
    assert Counter(map(tuple, epoch0)) != Counter(map(tuple, epoch1))  # other subsample/windows, not just order
    assert Counter(map(tuple, epoch0)) != Counter(map(tuple, all_pairs(other, other_manifest, 0)))


def test_shards_of_about_shard_size_pairs_in_a_checked_manifest(tmp_path, corpus):
    ids, counts = corpus
    out, manifest = build(tmp_path, ids, counts, "a", epochs=2, shard_size=700)
    for epoch in manifest.epochs:
        assert all(s.pairs <= 700 + 2 * 2 * 5 for s in epoch.shards)  # cut within a window of each 700 pairs
        assert sum(s.pairs for s in epoch.shards) == epoch.pairs == len(all_pairs(out, manifest, epoch.epoch))
        assert sum(s.windows for s in epoch.shards) == epoch.windows and epoch.words == counts.sum()
    manifest.write(out)
    assert PairManifest.read(out) == manifest  # written and read back whole
    manifest.check_files(out)
    shard = read_window_shard(out / manifest.epochs[0].shards[0].file)
    assert shard.tokens.dtype == np.uint16 and shard.center.dtype == np.uint32 and shard.left.dtype == np.uint8
    assert not shard.tokens.flags.owndata  # memory-mapped, zero copy


def test_a_wide_vocabulary_takes_uint32_ids(tmp_path):
    ids = write_ids(tmp_path / "ids.arrow", [np.array([0, 70_000, 1, 69_999], dtype=np.int32)])
    out, manifest = build(tmp_path, ids, np.ones(70_001, np.int64), "a", epochs=1, sample=0.0)
    shard = read_window_shard(out / manifest.epochs[0].shards[0].file)
    assert shard.tokens.dtype == np.uint32 and manifest.token_dtype == "uint32"
    assert set(map(tuple, np.stack(shard.pairs(), axis=1))) >= {(0, 70_000), (70_000, 0)}


def test_every_id_in_range_and_no_pair_crosses_a_document(tmp_path):
    # Word ids equal to positions make both checks exact: document k holds ids [start_k, end_k).
    lengths = [1, 2, 7, 30, 3, 50, 1, 11]
    starts = np.concatenate([[0], np.cumsum(lengths)])
    documents = [np.arange(starts[k], starts[k + 1], dtype=np.int32) for k in range(len(lengths))]
    ids = write_ids(tmp_path / "ids.arrow", documents)
    counts = np.ones(starts[-1], dtype=np.int64)
    out, manifest = build(tmp_path, ids, counts, "a", epochs=3, sample=0.0, window=4, shard_size=20)
    document_of = np.repeat(np.arange(len(lengths)), lengths)
    for epoch in range(3):
        pairs = all_pairs(out, manifest, epoch)
        assert pairs.min() >= 0 and pairs.max() < len(counts)
        assert np.all(document_of[pairs[:, 0]] == document_of[pairs[:, 1]])
        assert np.all(np.abs(pairs[:, 0] - pairs[:, 1]) <= 4) and np.all(pairs[:, 0] != pairs[:, 1])
        # Without subsampling every word of a document of two or more words is a center once per epoch.
        assert Counter(pairs[:, 0].tolist()).keys() == set(np.flatnonzero(np.repeat(lengths, lengths) > 1))


def test_window_distance_follows_the_dynamic_window_law():
    # Without subsampling, distance d appears with weight (window - d + 1) / window, on each side.
    window, n = 5, 400_000
    position, left, right = draw_windows(np.array([0, n]), window, unit_rng(3, 0, 0))
    shard = WindowShard(np.arange(n, dtype=np.uint32), position.astype(np.uint32), left, right)
    center, context = shard.pairs()
    distance = context - center
    observed = np.array([np.sum(distance == d) for d in range(1, window + 1)]) / n
    expected = np.array([(window - d + 1) / window for d in range(1, window + 1)])
    assert observed == pytest.approx(expected, abs=0.005)
    assert np.sum(distance == -2) / n == pytest.approx(expected[1], abs=0.005)  # left side alike
    inner = (position >= window) & (position < n - window)  # the reach is one draw per center:
    assert np.array_equal(left[inner], right[inner])  # both sides take the same reach away from the edges


def test_empirical_keep_rate_matches_keep_probability():
    counts = np.array([60_000, 30_000, 9_000, 1_000])  # word 0 is very frequent
    keep = keep_probabilities(counts, sample=1e-2)
    ids = np.repeat(np.arange(4, dtype=np.int32), counts)
    kept, kept_offsets = subsample(ids, np.array([0, len(ids)]), keep, unit_rng(5, 0, 0))
    rate = np.bincount(kept, minlength=4) / counts
    tolerance = 4 * np.sqrt(keep * (1 - keep) / counts) + 1e-12  # 4 binomial standard errors
    assert np.all(np.abs(rate - keep) <= tolerance), (rate, keep)
    assert rate[0] < 0.5 and rate[3] == 1.0 and kept_offsets.tolist() == [0, len(kept)]


def test_windows_are_shuffled_within_a_shard_and_shards_cut_by_pairs():
    shard_rng = unit_rng(0, 0, 0)
    position, left, right = draw_windows(np.array([0, 50_000]), 5, shard_rng)
    bounds = shard_bounds(left.astype(np.int64) + right, 10_000)
    pairs = np.add.reduceat(left.astype(np.int64) + right, bounds[:-1])
    assert bounds[0] == 0 and bounds[-1] == len(position)
    assert np.all(np.abs(pairs[:-1] - 10_000) <= 10)  # cut where the running total passes each 10,000 pairs
    kept = np.arange(50_000)
    shard = make_shard(kept, position[: bounds[1]], left[: bounds[1]], right[: bounds[1]], np.dtype(np.uint16),
                       "shuffled", shard_rng)
    assert sorted(shard.tokens[shard.center].tolist()) == position[: bounds[1]].tolist()  # a permutation
    assert abs(np.corrcoef(shard.center.astype(float), np.arange(shard.windows))[0, 1]) < 0.05


def windows_of(out: Path, manifest: PairManifest, epoch: int) -> np.ndarray:
    """An epoch's windows in training order: (shard, its center's position in the shard's text, left, right) rows,
    the shard numbered by its place in the corpus (batch, piece)."""
    rows = []
    for info in manifest.epochs[epoch].shards:
        shard = read_window_shard(out / info.file, expect=info)
        batch, piece = (int(x) for x in Path(info.file).stem.split("-")[1:])
        rows.append(np.stack([np.full(shard.windows, batch * 1000 + piece), shard.center.astype(np.int64),
                              shard.left, shard.right], axis=1))
    return np.concatenate(rows)


def test_window_order_text_blocks_or_shuffled_orders_the_same_windows(tmp_path, corpus):
    ids, counts = corpus
    built = {order: build(tmp_path, ids, counts, order, epochs=2, shard_size=600, seed=3, order=order)
             for order in ("shuffled", "blocks", "text")}
    for epoch in range(2):
        windows = {order: windows_of(out, manifest, epoch) for order, (out, manifest) in built.items()}
        same = {order: sorted(map(tuple, w)) for order, w in windows.items()}
        assert same["shuffled"] == same["blocks"] == same["text"]  # the same windows, only their order differs
        text = windows["text"]
        files = [s.file for s in built["text"][1].epochs[epoch].shards]
        assert files == sorted(files)  # shards in the corpus's order
        # Shard after shard, and within a shard the centers advance through the text.
        assert np.all(np.diff(text[:, 0]) >= 0)
        assert all(np.all(np.diff(text[text[:, 0] == s][:, 1]) > 0) for s in np.unique(text[:, 0]))
        for order in ("shuffled", "blocks"):
            assert not np.array_equal(windows[order], text)
    centers = np.random.default_rng(0)
    position = np.sort(centers.choice(100_000, 3000, replace=False))
    shard = make_shard(np.arange(100_000), position, np.ones(3000, np.uint8), np.ones(3000, np.uint8),
                       np.dtype(np.uint32), "blocks", unit_rng(0, 0, 0))
    steps = np.diff(shard.center.astype(np.int64))
    assert sorted(shard.center.tolist()) == (position - (position - 1).min()).tolist()
    # 12 blocks (11 of 256 windows, one of 184) in a random order: the text runs on inside each, jumps between.
    assert np.count_nonzero(steps < 0) in range(4, 12) and np.count_nonzero(steps > 0) >= 3000 - 12


def test_tiny_corpora_still_give_a_manifest(tmp_path):
    ids = write_ids(tmp_path / "ids.arrow", [np.array([0], dtype=np.int32)])
    out, manifest = build(tmp_path, ids, np.array([1]), "a", epochs=1)
    assert manifest.epochs[0].pairs == 0 and manifest.epochs[0].shards == ()


def test_a_disk_without_room_for_the_shards_stops_before_writing(tmp_path, corpus, monkeypatch):
    import shutil

    ids, counts = corpus
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(W2VError, match=r"the pair shards need about 0\.00 GB and the disk has 0\.00 GB free"):
        build(tmp_path, ids, counts, "a", epochs=2)
    assert list((tmp_path / "a").iterdir()) == []


def test_a_disk_that_fills_up_mid_write_is_a_clear_error_and_leaves_nothing(tmp_path):
    """A real limit from the OS (RLIMIT_FSIZE: files may not grow past 1 MB), hit while the shards are written by
    the pairs stage, in a child process: one line, exit 2, no output left behind."""
    from tests.dvc_project import make_project

    project = make_project(tmp_path / "project")
    for stage in ("download", "tokenize", "phrases", "vocab"):
        assert subprocess.run([sys.executable, "-m", f"stages.{stage}"], cwd=project,
                              capture_output=True).returncode == 0

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))

    run = subprocess.run([sys.executable, "-m", "stages.pairs"], cwd=project, capture_output=True, text=True,
                         preexec_fn=limit_file_size)
    assert run.returncode == 2, run.stderr
    assert "the disk filled up while writing the pair shards (File too large); nothing was kept" in run.stderr
    assert "Traceback" not in run.stderr
    assert not (project / "data/pairs").exists() and not list((project / "data").glob(".pairs.tmp-*"))
