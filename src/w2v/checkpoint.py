"""Training checkpoints: the model's matrices (one ``NAME.npy`` each, :mod:`w2v.matrices`) plus the loop's
progress, written atomically with checksums.

A checkpoint is only resumed when its fingerprint (every param that changes the result, and the input
manifest's sha256) equals the current run's; a checkpoint of other params, or one whose files do not match
their sha256 (truncated by a full disk, edited by hand), is set aside with a log line and training starts
over, so a bad checkpoint can cost time but never a wrong model.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np

from w2v.fsio import atomic_dir, sha256_file
from w2v.matrices import Matrices

log = logging.getLogger("w2v.train")


def save(directory: Path, fingerprint: str, matrices: Matrices, state: dict) -> None:
    with atomic_dir(directory) as tmp:
        for name, matrix in matrices.items():
            np.save(tmp / f"{name}.npy", matrix)
        record = {"fingerprint": fingerprint, "state": state,
                  "sha256": {f"{name}.npy": sha256_file(tmp / f"{name}.npy") for name in matrices}}
        (tmp / "state.json").write_text(json.dumps(record), encoding="utf-8")


def load(directory: Path, fingerprint: str) -> tuple[Matrices, dict] | None:
    """(matrices, state) of a valid checkpoint made with the same fingerprint, else None."""
    state_path = directory / "state.json"
    if not state_path.is_file():
        return None
    try:
        record = json.loads(state_path.read_text(encoding="utf-8"))
        if record["fingerprint"] != fingerprint:
            log.info("%s was made with other params or input: starting from scratch", directory)
            return None
        for file, sha256 in record["sha256"].items():
            if sha256_file(directory / file) != sha256:
                raise ValueError(f"{file} does not match its sha256")
        return {file.removesuffix(".npy"): np.load(directory / file) for file in record["sha256"]}, record["state"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s is damaged (%s): starting from scratch", directory, exc)
        return None


def remove(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
