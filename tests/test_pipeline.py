"""The DVC pipeline end to end, in a throw-away git copy of the project: cached re-runs and granular params."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.dvc_project import dvc, dvc_env, make_project, ran, set_param


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return make_project(tmp_path_factory.mktemp("project"))


@pytest.mark.slow
def test_repro_caches_and_reruns_only_what_a_param_touches(project):
    assert ran(dvc(project, "repro")) == ["download", "tokenize", "phrases", "vocab", "pairs", "train", "evaluate"]
    metrics = json.loads((project / "metrics/vocab.json").read_text())
    assert metrics["tokens"] == 1_171_945 and metrics["vocab_size"] > 10_000

    second = dvc(project, "repro")
    assert ran(second) == []
    assert all(f"Stage '{s}' didn't change, skipping" in second
               for s in ("download", "tokenize", "phrases", "vocab", "pairs", "train", "evaluate"))

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

    # A warm start from the model just trained: what train.init_from names lies in data/init, a dependency, so
    # changing the init model re-runs training too.
    shutil.copytree(project / "data/model", project / "data/init/base")
    set_param(project, "train", "init_from", "data/init/base")
    assert ran(dvc(project, "repro")) == ["train", "evaluate"]
    warm = json.loads((project / "metrics/train.json").read_text())
    assert warm["init_words"] == json.loads((project / "metrics/vocab.json").read_text())["vocab_size"]
    assert ran(dvc(project, "repro")) == []
    vectors = np.load(project / "data/init/base/vectors.npy")
    np.save(project / "data/init/base/vectors.npy", vectors * np.float32(0.5))
    assert ran(dvc(project, "repro")) == ["train", "evaluate"]
    shutil.rmtree(project / "data/init/base")
    set_param(project, "train", "init_from", "")
    dvc(project, "repro")  # back to the fresh start (DVC's run cache may restore it)
    assert "init_words" not in json.loads((project / "metrics/train.json").read_text())

    set_param(project, "tokenize", "workers", 1)  # speed only: not a dependency
    assert ran(dvc(project, "repro")) == []

    set_param(project, "pairs", "workers", 1)
    assert ran(dvc(project, "repro")) == []

    set_param(project, "train", "checkpoint_minutes", 1)
    assert ran(dvc(project, "repro")) == []

    set_param(project, "evaluate", "topn", 3)
    assert ran(dvc(project, "repro")) == ["evaluate"]

    # The same corpus named as a local file: data/raw's manifest changes, the tokens do not, so the cascade
    # stops after tokenize.
    set_param(project, "download", "source", "file")
    assert "download.source" in dvc(project, "status")
    assert ran(dvc(project, "repro")) == ["download", "tokenize"]

    set_param(project, "tokenize", "max_sequence_length", 1000)
    assert ran(dvc(project, "repro")) == ["tokenize", "phrases", "vocab", "pairs", "train", "evaluate"]
    shown = dvc(project, "metrics", "show")
    # The default table holds the headline figures only, and fits a 120-column terminal.
    headline = {"Path", "analogy", "loss", "simlex999", "wordsim353", "words_per_second"}
    assert set(shown.splitlines()[0].split()) == headline
    assert max(map(len, shown.splitlines())) <= 120 and "metrics/vocab.json" not in shown
    details = dvc(project, "metrics", "show", "metrics/vocab.json", "metrics/eval_details.json")
    assert "vocab_size" in details and "analogy.3cosadd.accuracy" in details

    # Phrases: a new stage in the cascade, its report a metrics file; the vocabulary then holds phrases.
    set_param(project, "phrases", "passes", 1)
    assert ran(dvc(project, "repro")) == ["phrases", "vocab", "pairs", "train", "evaluate"]
    report = json.loads((project / "metrics/phrases.json").read_text())
    assert report["passes"] == 1 and report["phrases"] > 1000 and "one_nine" in report["per_pass"][0]["top"]
    set_param(project, "phrases", "workers", 1)  # speed only
    assert ran(dvc(project, "repro")) == []


@pytest.mark.slow
def test_bad_param_stops_the_pipeline_with_one_line(project):
    set_param(project, "vocab", "min_count", 0)
    run = subprocess.run([sys.executable, "-m", "dvc", "repro", "vocab", "--force"], cwd=project, env=dvc_env(),
                         capture_output=True, text=True)
    assert run.returncode != 0
    assert "params.yaml: vocab.min_count = 0 is out of range: must be an integer >= 1" in run.stderr + run.stdout
    assert "Traceback" not in run.stderr + run.stdout
