"""Kill every stage at a random point, with SIGINT (Ctrl-C) and with SIGKILL, while `dvc repro` runs it: no
output path may then hold a half-written file, and the next `dvc repro` must finish with outputs identical to an
uninterrupted run (CPU, deterministic mode)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stages import pipeline
from stages.reprocheck import VOLATILE, locked_hashes
from tests.dvc_project import built_project, dvc, dvc_env, git, ran
from w2v.fsio import remove_stale_temporaries

pytestmark = pytest.mark.slow

STAGES = ["download", "tokenize", "vocab", "pairs", "train", "evaluate"]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return built_project(tmp_path_factory.mktemp("interrupt"))  # the uninterrupted run


def output_hashes(project: Path) -> dict[str, str]:
    """The md5 dvc.lock records for every output, less the run record's clock-bearing files."""
    return {path: md5 for path, md5 in locked_hashes(project / "dvc.lock").items() if path not in VOLATILE}


def stage_process_started(session: int, stage: str) -> bool:
    """Whether the stage's own python (`python -m stages.NAME`) runs in the given session."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            if os.getsid(int(entry.name)) == session and f"stages.{stage}".encode() in cmdline:
                return True
        except (OSError, ProcessLookupError):
            continue
    return False


def interrupt_stage(project: Path, stage: str, signum: int, delay: float) -> int:
    """Run `dvc repro --force -s STAGE` in its own session; ``delay`` s after the stage's process starts, send
    ``signum`` to the whole session (as Ctrl-C in a terminal does, or an OOM killer would). Return the exit code."""
    # A shell starts background jobs with SIGINT ignored, and children inherit that: restore the default, as a
    # terminal's foreground job has it, or Ctrl-C would never reach the stage.
    process = subprocess.Popen([sys.executable, "-m", "dvc", "repro", "--force", "-s", stage], cwd=project,
                               env=dvc_env(), start_new_session=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not stage_process_started(process.pid, stage) and process.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(delay)
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass
    return process.wait(timeout=120)


def repair_dvc_state(project: Path, monkeypatch) -> None:
    """The signal reaches DVC too; killed while it rewrites dvc.lock or its run lock, it leaves the file empty or
    cut off, and every dvc command then fails. `w2v check` (which `make run` runs first) must say so with the fix,
    and the fix must work."""
    monkeypatch.chdir(project)
    problems = pipeline.project_problems()
    if not problems:
        return
    check = subprocess.run([sys.executable, "-m", "stages.cli", "check"], cwd=project, capture_output=True, text=True)
    assert check.returncode == 2 and "a dvc process was killed while writing it" in check.stderr, check.stderr
    for problem in problems:
        if "git checkout dvc.lock" in problem:
            # The committed lock, and the committed run record and timings it hashes (else train re-runs).
            git(project, "checkout", "dvc.lock", *VOLATILE)
        else:
            (project / pipeline.DVC_RWLOCK).unlink()
    assert pipeline.project_problems() == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
@pytest.mark.parametrize("stage", STAGES)
def test_killed_stage_is_redone_or_resumed_to_identical_outputs(project, stage, signum, monkeypatch):
    want = output_hashes(project)
    rng = random.Random(f"{stage}-{signum}")
    delay = rng.uniform(0.1, 1.5)
    while (code := interrupt_stage(project, stage, signum, delay)) == 0:  # finished before the signal: sooner
        assert delay > 0.01, f"{stage} always finished before the signal"
        delay /= 3
    assert code != 0
    repair_dvc_state(project, monkeypatch)

    # A signal that hits DVC while it rewrites dvc.lock can cut the file exactly between two stages or two outputs,
    # leaving a lock DVC could have written (`lock_is_whole`): the stages whose hashes it lost must run again.
    locked_now = locked_hashes(project / "dvc.lock")
    lost = {pipeline.producer(path) for path in want if path not in locked_now}

    # Whatever the signal left at an output path is absent or complete, never half-written: DVC finds no
    # output of the stage modified (only the run record, which holds the clock, may be). Where the lock lost the
    # stage's hashes DVC cannot tell; the re-run below must then rebuild the same outputs.
    if stage not in lost:
        status = dvc(project, "status", stage)
        modified = [line.split()[-1] for line in status.splitlines() if line.strip().startswith("modified:")]
        assert set(modified) <= set(VOLATILE), status

    rerun = dvc(project, "repro")
    # The stage is redone, or, if the signal came after its outputs were complete, found unchanged; either way
    # its outputs equal the uninterrupted run's, so nothing downstream re-runs.
    assert set(ran(rerun)) <= {stage} | lost, rerun
    assert "Data and pipelines are up to date" in dvc(project, "status")
    got = output_hashes(project)
    assert got == want
    leftovers = list(project.rglob(".*.tmp-*"))
    if leftovers:  # only when DVC restored the stage from its run cache, so none of its code ran since the kill
        assert stage not in ran(rerun), leftovers
        monkeypatch.chdir(project)
        every_output = [path for outputs in pipeline.OUTPUTS.values() for path in outputs]
        assert sorted(remove_stale_temporaries(every_output)) == sorted(p.relative_to(project) for p in leftovers)
    assert not (project / "checkpoints/train").exists()


def test_lock_cut_between_stages_costs_only_the_stages_it_lost(project, monkeypatch):
    # The one cut of dvc.lock `w2v check` cannot tell from a lock DVC wrote (see `lock_is_whole`): DVC then re-runs
    # the stages whose entries are gone, to the same outputs, and nothing else.
    want = output_hashes(project)
    text = (project / "dvc.lock").read_text()
    (project / "dvc.lock").write_text(text[:text.index("\n  train:\n") + 1])
    monkeypatch.chdir(project)
    assert pipeline.project_problems() == []

    rerun = dvc(project, "repro")
    assert ran(rerun) == ["train", "evaluate"], rerun
    got = output_hashes(project)
    assert got == want
