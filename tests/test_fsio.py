"""Atomic outputs: a failed or killed stage never leaves a half-written output that looks complete."""

import pytest

from stages.fsio import atomic_dir, atomic_file


def test_atomic_dir_replaces_only_on_success(tmp_path):
    target = tmp_path / "out"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("first")
    assert (target / "a.txt").read_text() == "first"
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "a.txt").write_text("half")
            raise RuntimeError("killed mid-way")
    assert (target / "a.txt").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_atomic_dir_clears_leftovers_of_a_killed_run(tmp_path):
    leftover = tmp_path / ".out.tmp-abc123"
    leftover.mkdir()
    (leftover / "partial.arrow").write_bytes(b"\0" * 10)
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "done").write_text("ok")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_atomic_file(tmp_path):
    target = tmp_path / "metrics.json"
    with atomic_file(target) as handle:
        handle.write("{}")
    with pytest.raises(ValueError):
        with atomic_file(target) as handle:
            handle.write('{"half": ')
            raise ValueError
    assert target.read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
