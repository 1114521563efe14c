"""``w2v repro-check``: run the whole pipeline twice from clean copies of the project and compare every output.

Each run gets a fresh copy of the git-tracked files (as they are in the working tree, so uncommitted edits
count), an empty DVC cache and ``dvc repro --force``, so nothing is reused between the runs. Every output that
``dvc.lock`` lists is then compared by the hash DVC recorded for it. Two files hold the clock and the machine
by design and are compared without those fields: ``metrics/train.json`` (durations, throughput) and
``runs/train.json`` (host, start time). The copies' hashes are also compared with the workspace's
``dvc.lock``: a match there means this machine reproduces the committed results, bit for bit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from w2v.errors import W2VError

log = logging.getLogger("w2v.repro-check")

# Outputs that record how long a run took and where it ran: compared without these fields (None = whole file).
VOLATILE = {
    "metrics/train.json": ("words_per_second",),
    "runs/train.json": None,
}


def tracked_files(root: Path) -> list[str]:
    try:
        listing = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        raise W2VError(f"{root}: not a git repository; repro-check copies the git-tracked files of the "
                        f"project") from None
    return [name for name in listing.decode().split("\0") if name and (root / name).is_file()]


def set_params(params_path: Path, overrides: list[str]) -> None:
    """Apply ``section.key=value`` overrides (values parsed as YAML, as ``dvc exp run -S`` does)."""
    params = yaml.safe_load(params_path.read_text(encoding="utf-8"))
    for override in overrides:
        match = re.fullmatch(r"(\w+)\.(\w+)=(.*)", override)
        if not match or not isinstance(params.get(match[1]), dict):
            raise W2VError(f"--set {override!r}: expected SECTION.KEY=VALUE with a section of params.yaml, "
                            f"e.g. pairs.epochs=1")
        params[match[1]][match[2]] = yaml.safe_load(match[3])
    params_path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")


def clean_copy(root: Path, target: Path, overrides: list[str]) -> None:
    """The project's tracked files in a new git repository: no outputs, no DVC cache, no run cache."""
    for name in tracked_files(root):
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, target / name)
    if overrides:
        set_params(target / "params.yaml", overrides)
    env = {**os.environ, "GIT_AUTHOR_NAME": "repro-check", "GIT_AUTHOR_EMAIL": "repro-check@localhost",
           "GIT_COMMITTER_NAME": "repro-check", "GIT_COMMITTER_EMAIL": "repro-check@localhost"}
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "repro-check copy"]):
        subprocess.run(["git", *command], cwd=target, env=env, check=True, capture_output=True)


def run_pipeline(workdir: Path) -> None:
    """``dvc repro --force`` with this interpreter's environment first on PATH; stage names are logged live."""
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""), "DVC_NO_ANALYTICS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "dvc", "repro", "--force"], cwd=workdir, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail: list[str] = []
    for line in process.stdout:
        tail = (tail + [line])[-30:]
        if line.startswith("Running stage"):
            log.info("  %s", line.strip())
    if process.wait() != 0:
        raise W2VError(f"dvc repro failed in {workdir} (exit {process.returncode}):\n{''.join(tail)}")


def locked_hashes(lock_path: Path) -> dict[str, str]:
    """Every output path in a dvc.lock and the md5 DVC recorded for it."""
    lock = yaml.safe_load(lock_path.read_text(encoding="utf-8")) or {}
    return {out["path"]: out.get("md5", "") for stage in lock.get("stages", {}).values()
            for out in stage.get("outs", [])}


def results_digest(lock_path: Path) -> str:
    """One short hash of every result ``dvc.lock`` records (the outputs in :data:`VOLATILE` left out): the
    committed baseline's fingerprint, which CHANGELOG.md records for each version."""
    hashes = locked_hashes(lock_path)
    listing = "".join(f"{path} {md5}\n" for path, md5 in sorted(hashes.items()) if path not in VOLATILE)
    return hashlib.sha256(listing.encode()).hexdigest()[:16]


def stable_hash(workdir: Path, path: str) -> str:
    """The md5 of a volatile JSON output without its clock/machine fields."""
    fields = VOLATILE[path]
    if fields is None:
        return "(not compared: machine and clock)"
    data = json.loads((workdir / path).read_text(encoding="utf-8"))
    kept = {key: value for key, value in data.items() if key not in fields}
    return hashlib.md5(json.dumps(kept, sort_keys=True).encode()).hexdigest()


def compare(first: Path, second: Path, baseline: dict[str, str] | None) -> tuple[list[list[str]], int]:
    """Rows of (output, same in both runs, same as the baseline), and the number of outputs that differ."""
    hashes = [locked_hashes(run / "dvc.lock") for run in (first, second)]
    rows, differ = [], 0
    for path in sorted(set(hashes[0]) | set(hashes[1])):
        if path in VOLATILE:
            a, b = stable_hash(first, path), stable_hash(second, path)
            same = "yes" if a == b else "NO"
            note = "clock/machine fields left out" if VOLATILE[path] else "not compared (machine, clock)"
            rows.append([path, same if VOLATILE[path] else "-", "-", note])
        else:
            a, b = hashes[0].get(path), hashes[1].get(path)
            same = "yes" if a == b and a else "NO"
            base = "-" if baseline is None else ("yes" if baseline.get(path) == a else "no")
            rows.append([path, same, base, a or "missing"])
        differ += same == "NO"
    return rows, differ


def format_table(rows: list[list[str]]) -> str:
    header = ["output", "run 1 = run 2", "= workspace dvc.lock", "md5 (run 1), or note"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
                     for row in [header, ["-" * w for w in widths], *rows])


def repro_check(root: Path, overrides: list[str], keep: bool) -> int:
    """Run the check; print the table; return the number of outputs that differ between the two runs."""
    if not (root / "dvc.yaml").is_file():
        raise W2VError(f"{root}: no dvc.yaml here; run repro-check from the project's root")
    workdir = Path(tempfile.mkdtemp(prefix="w2v-repro-check-"))
    try:
        runs = [workdir / "run-1", workdir / "run-2"]
        for index, run in enumerate(runs, 1):
            run.mkdir()
            clean_copy(root, run, overrides)
            log.info("run %d of 2: dvc repro --force in %s", index, run)
            run_pipeline(run)
        lock = root / "dvc.lock"
        baseline = locked_hashes(lock) if lock.is_file() and not overrides else None
        rows, differ = compare(runs[0], runs[1], baseline)
        sys.stdout.write(format_table(rows) + "\n")
        if differ:
            log.error("%d output(s) differ between two runs of the same params", differ)
        else:
            log.info("every output is byte-identical in both runs")
        if baseline is not None and any(row[2] == "no" for row in rows):
            log.info("outputs marked 'no' differ from the workspace's dvc.lock: see README, 'What is "
                     "bit-reproducible'")
        return differ
    finally:
        if keep:
            log.info("copies kept in %s", workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
