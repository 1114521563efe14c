"""bench/gpu_check.py, the one command a lent GPU machine runs, works end to end on the CPU with tiny corpora."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT


def test_gpu_check_runs_every_step_on_the_cpu_and_writes_its_report(tmp_path):
    # As on the GPU machine: the repository not installed, so the script finds its own code.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run([sys.executable, str(ROOT / "bench/gpu_check.py"), "--device", "cpu", "--sample-words",
                           "30000", "--epochs", "1", "--batch-sizes", "256,1024", "--zipf-tokens", "20000", "--out",
                           str(tmp_path)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "gpu-cpu.json").read_text())
    assert report["versions"]["torch"] and "differ_from_constraints" in report["versions"]
    assert report["tests"]["skipped"] == "--device cpu"
    runs = report["runs"]
    assert [(r["corpus"], r["trainer"], r["settings"]["batch_size"], r["settings"]["deterministic"]) for r in runs] \
        == [("sample", "numba", None, True), ("sample", "torch", 256, True), ("sample", "torch", 1024, True),
            ("sample", "torch", 1024, False), ("zipf", "torch", 1024, True), ("zipf", "torch", 1024, False)]
    for run in runs:
        assert run["device_name"] and run["words_per_second"] > 0 and run["settings"]["pairs"] > 0
    assert all(set(run["quality"]) == {"analogy", "wordsim353", "simlex999"} for run in runs[:4])
    assert runs[2]["same_bytes_twice"] is True  # the deterministic middle step size, trained twice
