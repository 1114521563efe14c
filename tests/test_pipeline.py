"""The DVC pipeline end to end, in a throw-away git copy of the project: cached re-runs and granular params."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

PROJECT_FILES = ["dvc.yaml", "params.yaml", "stages", "data/sample", "data/benchmarks", "data/.gitignore",
                 ".dvc/config", ".dvcignore"]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A git repository holding the project's tracked pipeline files, outputs not yet built."""
    work = tmp_path_factory.mktemp("project")
    for name in PROJECT_FILES:
        source, target = ROOT / name, work / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["pairs"]["epochs"] = 1  # keeps the test quick; the stage logic is the same
    params["train"]["dim"] = 16
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git(work, "init", "-q")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "project")
    return work


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def dvc(cwd: Path, *args: str) -> str:
    """Run DVC from this interpreter's environment, with its `python` first on PATH (the stages' cmd)."""
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""), "DVC_NO_ANALYTICS": "1"}
    run = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout + run.stderr


def ran(output: str) -> list[str]:
    return re.findall(r"Running stage '(\w+)'", output)


def set_param(project: Path, section: str, key: str, value) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params[section][key] = value
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.mark.slow
def test_repro_caches_and_reruns_only_what_a_param_touches(project):
    assert ran(dvc(project, "repro")) == ["download", "tokenize", "vocab", "pairs", "train", "evaluate"]
    metrics = json.loads((project / "metrics/vocab.json").read_text())
    assert metrics["tokens"] == 1_171_945 and metrics["vocab_size"] > 10_000

    second = dvc(project, "repro")
    assert ran(second) == []
    assert all(f"Stage '{s}' didn't change, skipping" in second
               for s in ("download", "tokenize", "vocab", "pairs", "train", "evaluate"))

    set_param(project, "vocab", "min_count", 10)
    status = dvc(project, "status")
    assert "vocab.min_count" in status and "download:" not in status and "tokenize:" not in status
    assert ran(dvc(project, "repro")) == ["vocab", "pairs", "train", "evaluate"]
    assert json.loads((project / "metrics/vocab.json").read_text())["vocab_size"] < metrics["vocab_size"]

    set_param(project, "vocab", "max_vocab_size", 10_000_000)  # above the vocabulary: same bytes out
    assert ran(dvc(project, "repro")) == ["vocab"]  # ...so pairs is not re-run

    set_param(project, "pairs", "window", 3)
    assert ran(dvc(project, "repro")) == ["pairs", "train", "evaluate"]

    set_param(project, "train", "negative", 3)
    assert ran(dvc(project, "repro")) == ["train", "evaluate"]
    assert json.loads((project / "metrics/train.json").read_text())["loss"] > 0

    set_param(project, "tokenize", "workers", 1)  # speed only: not a dependency
    assert ran(dvc(project, "repro")) == []

    set_param(project, "pairs", "workers", 1)
    assert ran(dvc(project, "repro")) == []

    set_param(project, "train", "checkpoint_minutes", 1)
    assert ran(dvc(project, "repro")) == []

    set_param(project, "evaluate", "topn", 3)
    assert ran(dvc(project, "repro")) == ["evaluate"]

    set_param(project, "tokenize", "max_sequence_length", 1000)
    assert ran(dvc(project, "repro")) == ["tokenize", "vocab", "pairs", "train", "evaluate"]
    shown = dvc(project, "metrics", "show")
    assert "metrics/vocab.json" in shown and "metrics/train.json" in shown
    assert "analogy.3cosadd.accuracy" in shown and "wordsim353.spearman" in shown


@pytest.mark.slow
def test_bad_param_stops_the_pipeline_with_one_line(project):
    set_param(project, "vocab", "min_count", 0)
    bin_dir = str(Path(sys.executable).parent)
    run = subprocess.run([sys.executable, "-m", "dvc", "repro", "vocab", "--force"], cwd=project,
                         env={**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"]},
                         capture_output=True, text=True)
    assert run.returncode != 0
    assert "params.yaml: vocab.min_count = 0 is out of range: must be an integer >= 1" in run.stderr + run.stdout
    assert "Traceback" not in run.stderr + run.stdout
