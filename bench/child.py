"""Run a benchmark's measured step in a fresh interpreter, so its peak memory can be read on its own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent

# Appended to each child's code: its own peak RSS and that of its worker processes (reaped by then), in MiB.
PEAK_RSS = """
import json as _json, resource as _resource
print(_json.dumps({"rss": _resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss / 1024,
                   "workers_rss": _resource.getrusage(_resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def run_child(code: str, *args: str) -> tuple[dict, str]:
    """Run ``code`` (which prints one JSON line last) from the repository root; return it and its peak memory."""
    out = subprocess.run([sys.executable, "-c", code + PEAK_RSS, *args], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.splitlines()
    result, memory = json.loads(out[-2]), json.loads(out[-1])
    workers = f" + {memory['workers_rss']:.0f} MiB per worker" if memory["workers_rss"] > 50 else ""
    return result, f"peak RSS {memory['rss']:.0f} MiB{workers}"


def train_project(scratch: Path, project: Path, params: dict) -> None:
    """Make ``scratch`` a project for the train stage alone: ``project``'s vocabulary and pair shards (linked, not
    copied) and ``params`` as its params.yaml."""
    (scratch / "data").mkdir()
    for name in ("pairs", "vocab"):
        (scratch / "data" / name).symlink_to(project / "data" / name)
    (scratch / "params.yaml").write_text(yaml.safe_dump(params))
