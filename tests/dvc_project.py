"""A throw-away git copy of the project for the end-to-end DVC tests, and helpers to drive DVC and git in it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import ROOT

PROJECT_FILES = ["dvc.yaml", "params.yaml", "stages", "src", "data/sample", "data/benchmarks", "data/init",
                 "data/.gitignore", ".dvc/config", ".dvc/.gitignore", ".dvc/plots", ".dvcignore", ".gitignore"]
GIT_IDENTITY = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                "GIT_COMMITTER_EMAIL": "t@t"}


def make_project(work: Path, **overrides) -> Path:
    """Copy the pipeline's tracked files into ``work`` (outputs not built), shrink the run so tests stay quick
    (1 epoch, 16-dim vectors: the stage logic is the same), apply ``section.key`` overrides, commit."""
    for name in PROJECT_FILES:
        source, target = ROOT / name, work / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(source, target)
    set_params(work, {"pairs.epochs": 1, "train.dim": 16, **overrides})
    git(work, "init", "-q")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "project")
    return work


def built_project(work: Path) -> Path:
    """``make_project``, then ``dvc repro`` with dvc.lock and the metrics/plot files committed, as on main."""
    make_project(work)
    dvc(work, "repro")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "baseline: dvc repro")
    return work


def git(cwd: Path, *args: str) -> str:
    run = subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **GIT_IDENTITY}, capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def dvc_env() -> dict:
    """This interpreter's environment first on PATH (the stages' cmd is `python -m stages.NAME`)."""
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, **GIT_IDENTITY, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
            "DVC_NO_ANALYTICS": "1"}


def dvc(cwd: Path, *args: str, check: bool = True) -> str:
    run = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, env=dvc_env(), capture_output=True,
                         text=True)
    if check:
        assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout + run.stderr


def ran(output: str) -> list[str]:
    """The stages a `dvc repro` ran, in order."""
    return re.findall(r"Running stage '(\w+)'", output)


def set_params(project: Path, values: dict) -> None:
    """Set ``{"section.key": value}`` in the project's params.yaml."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    for dotted, value in values.items():
        section, key = dotted.split(".")
        params[section][key] = value
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def set_param(project: Path, section: str, key: str, value) -> None:
    set_params(project, {f"{section}.{key}": value})
