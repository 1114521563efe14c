"""Reproducing and comparing runs with DVC, end to end in throw-away git repositories: the committed baseline
seen from a fresh clone, a local-directory remote, experiments and a queued sweep, and `w2v repro-check`."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stages import reprocheck
from tests.dvc_project import built_project, dvc, git, ran, set_param

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> Path:
    return built_project(tmp_path_factory.mktemp("baseline"))


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def output_files(project: Path) -> dict[str, str]:
    return {str(p.relative_to(project)): md5(p) for p in sorted((project / "data").rglob("*"))
            if p.is_file() and p.relative_to(project).parts[1] in ("raw", "tokens", "vocab", "pairs", "model")}


def test_fresh_clone_compares_a_param_change_with_the_committed_baseline(baseline, tmp_path):
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(baseline), str(clone))
    shown = dvc(clone, "metrics", "show")  # straight from git: nothing pulled, nothing run
    assert "analogy" in shown and "wordsim353" in shown and "words_per_second" in shown

    set_param(clone, "train", "negative", 3)
    assert ran(dvc(clone, "repro"))[-2:] == ["train", "evaluate"]
    params_diff = dvc(clone, "params", "diff")
    assert re.search(r"train\.negative\s+5\s+3", params_diff)
    metrics_diff = dvc(clone, "metrics", "diff")
    assert re.search(r"metrics/train\.json\s+loss\s+[\d.]+\s+[\d.]+\s+-?[\d.]+", metrics_diff)
    assert re.search(r"metrics/eval\.json\s+analogy\s", metrics_diff)

    # The loss curves of HEAD and the workspace on one offline page, with the evaluation pictures.
    dvc(clone, "plots", "diff", "-o", "plots-page")
    page = (clone / "plots-page/index.html").read_text()
    assert "<script src" not in page and "/* vega 5.20.2 */" in page and "/* vega-embed 6.18.2 */" in page
    spec = json.loads(re.search(r"var spec = (\{.*?\});\n", page, re.S)[1])
    assert {point["rev"] for point in spec["data"]["values"]} == {"HEAD", "workspace"}
    assert {"pairs", "loss"} <= set(spec["data"]["values"][0])
    assert re.search(r'<img src="static/HEAD_plots_embedding_map.png"', page)


def test_push_to_a_local_remote_and_pull_in_a_fresh_clone(baseline, tmp_path):
    dvc(baseline, "remote", "add", "-d", "store", str(tmp_path / "remote"))
    git(baseline, "commit", "-qam", "remote")
    assert "pushed" in dvc(baseline, "push")

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(baseline), str(clone))
    dvc(clone, "pull")
    assert "Data and pipelines are up to date" in dvc(clone, "status")
    assert output_files(clone) == output_files(baseline)
    assert ran(dvc(clone, "repro")) == []


def test_repro_check_finds_every_output_identical(baseline, capsys):
    differ = reprocheck.repro_check(baseline, [], keep=False)
    table = capsys.readouterr().out
    assert differ == 0
    rows = {line.split()[0]: line.split()[1:] for line in table.splitlines()[2:]}
    assert set(rows) >= {"data/raw", "data/tokens", "data/vocab", "data/pairs", "data/model", "metrics/eval.json",
                         "plots/train_loss.tsv", "plots/embedding_map.png"}
    # Same machine, same params as the committed dvc.lock: the committed results are reproduced bit for bit.
    assert all(row[:2] == ["yes", "yes"] for path, row in rows.items() if path.startswith("data/"))


def test_repro_check_reports_a_difference(tmp_path):
    for run, model_md5 in (("run-1", "aaa.dir"), ("run-2", "bbb.dir")):
        (tmp_path / run / "metrics").mkdir(parents=True)
        (tmp_path / run / "dvc.lock").write_text(
            "schema: '2.0'\nstages:\n  train:\n    outs:\n    - path: data/model\n      md5: " + model_md5 +
            "\n    - path: metrics/train.json\n      md5: x\n")
        (tmp_path / run / "metrics/train.json").write_text(json.dumps({"loss": 2.5, "words_per_second": len(run)}))
    rows, differ = reprocheck.compare(tmp_path / "run-1", tmp_path / "run-2", {"data/model": "aaa.dir"})
    assert differ == 1
    assert rows[0][:3] == ["data/model", "NO", "yes"] and rows[1][:2] == ["metrics/train.json", "yes"]


def test_experiments_and_a_queued_sweep_show_side_by_side(baseline):
    assert ran(dvc(baseline, "exp", "run", "-S", "train.dim=24")) == ["train", "evaluate"]
    queued = dvc(baseline, "exp", "run", "-S", "train.negative=5,10", "--queue")
    assert queued.count("Queued experiment") == 2
    dvc(baseline, "queue", "start")
    deadline = time.monotonic() + 600
    while re.search(r"Queued|Running", status := dvc(baseline, "queue", "status")):
        assert time.monotonic() < deadline, status
        time.sleep(2)
    assert status.count("Success") == 2, status

    # `w2v compare`, piped: the whole table as Markdown, headline metrics and only the params that differ.
    table = subprocess.run([str(Path(sys.executable).parent / "w2v"), "compare"], cwd=baseline, check=True,
                           capture_output=True, text=True).stdout
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in table.splitlines()
            if line.startswith("|") and "---" not in line]
    header = rows[0]
    # State (Success, Failed, ...) appears once an experiment was queued.
    assert set(header) - {"State"} == {"Experiment", "loss", "words_per_second", "analogy", "wordsim353",
                                       "simlex999", "train.dim", "train.negative"}, header
    experiments = {row[0].split("[")[-1].rstrip("]"): dict(zip(header, row)) for row in rows[1:]
                   if "[" in row[0]}
    assert len(experiments) == 3
    # `exp run` applies its result to the workspace, so the sweep starts from train.dim=24.
    settings = sorted((e["train.dim"], e["train.negative"]) for e in experiments.values())
    assert settings == [("24", "10"), ("24", "5"), ("24", "5")]
    # The queued run of the same params as the first experiment got the same scores: runs are deterministic.
    same = [e["analogy"] for e in experiments.values() if e["train.negative"] == "5"]
    assert same[0] == same[1]
