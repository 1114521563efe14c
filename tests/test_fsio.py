"""Atomic outputs: a failed or killed stage never leaves a half-written output that looks complete."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from w2v.fsio import atomic_dir, atomic_file, remove_stale_temporaries


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


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_atomic_dir_clears_leftovers_of_a_killed_run(tmp_path):
    leftover = tmp_path / f".out.tmp-{dead_pid()}-abc123"
    leftover.mkdir()
    (leftover / "partial.arrow").write_bytes(b"\0" * 10)
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "done").write_text("ok")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_sweep_removes_only_temporaries_whose_writer_is_gone(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "metrics").mkdir()
    dead = [tmp_path / f"data/.pairs.tmp-{dead_pid()}-x1", tmp_path / "data/.vocab.tmp-oldstyle",
            tmp_path / f"metrics/.eval.json.tmp-{dead_pid()}-y2"]
    alive = tmp_path / f"data/.model.tmp-{os.getppid()}-z3"  # a live process (pytest's parent) writes it
    for path in dead[:2] + [alive]:
        path.mkdir()
    dead[2].write_text("{")
    removed = remove_stale_temporaries([Path("data/pairs"), Path("data/vocab"), Path("data/model"),
                                        Path("metrics/eval.json")])
    assert sorted(removed) == sorted(Path(p.relative_to(tmp_path)) for p in dead)
    assert alive.exists() and not any(p.exists() for p in dead)


def test_a_stage_sweeps_only_its_own_outputs_and_the_cli_none(tmp_path, monkeypatch, write_params, capsys):
    from stages import vocab

    write_params({})
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    own, other = tmp_path / f"data/.vocab.tmp-{dead_pid()}-a", tmp_path / f"data/.pairs.tmp-{dead_pid()}-b"
    own.mkdir()
    other.mkdir()
    query = subprocess.run([sys.executable, "-m", "stages.cli", "similar", "x", "--model", "nowhere"],
                           cwd=tmp_path, capture_output=True, text=True)
    assert query.returncode == 2 and own.exists() and other.exists()  # a query touches no pipeline folder
    with pytest.raises(SystemExit):
        vocab.main()  # no tokens yet: it stops, after its sweep
    assert not own.exists() and other.exists()
    assert f"removed data/{own.name}, left by a killed run" in capsys.readouterr().err


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


def test_outputs_get_the_usual_permissions(tmp_path):
    previous = os.umask(0o022)
    try:
        with atomic_file(tmp_path / "metrics.json") as handle:
            handle.write("{}")
        with atomic_dir(tmp_path / "out") as tmp:
            (tmp / "a").write_text("x")
    finally:
        os.umask(previous)
    assert (tmp_path / "metrics.json").stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o755


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_killed_writer_nobody_reaped_and_a_reused_pid_do_not_count_as_alive(tmp_path):
    from w2v.fsio import _writer_token

    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    while open(f"/proc/{zombie.pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
        pass  # exited, not yet reaped: os.kill(pid, 0) would still succeed
    try:
        temporaries = [tmp_path / f".a.tmp-{_writer_token(zombie.pid)}-x",  # its writer is a zombie
                       tmp_path / f".b.tmp-{os.getpid()}.1-y",  # our pid, but another process's start time
                       tmp_path / f".c.tmp-{_writer_token(os.getpid())}-z"]  # really ours
        for path in temporaries:
            path.mkdir()
        removed = remove_stale_temporaries([tmp_path / "a", tmp_path / "b", tmp_path / "c"])
    finally:
        zombie.wait()
    assert sorted(removed) == temporaries[:2] and temporaries[2].exists()
