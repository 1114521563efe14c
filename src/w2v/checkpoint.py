"""Training checkpoints: the two matrices plus the loop's progress, written atomically with checksums.

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

log = logging.getLogger("w2v.train")

MATRICES = ("syn0.npy", "syn1.npy")


def save(directory: Path, fingerprint: str, syn0: np.ndarray, syn1: np.ndarray, state: dict) -> None:
    with atomic_dir(directory) as tmp:
        np.save(tmp / MATRICES[0], syn0)
        np.save(tmp / MATRICES[1], syn1)
        record = {"fingerprint": fingerprint, "state": state,
                  "sha256": {name: sha256_file(tmp / name) for name in MATRICES}}
        (tmp / "state.json").write_text(json.dumps(record), encoding="utf-8")


def load(directory: Path, fingerprint: str) -> tuple[np.ndarray, np.ndarray, dict] | None:
    """(syn0, syn1, state) of a valid checkpoint made with the same fingerprint, else None."""
    state_path = directory / "state.json"
    if not state_path.is_file():
        return None
    try:
        record = json.loads(state_path.read_text(encoding="utf-8"))
        if record["fingerprint"] != fingerprint:
            log.info("%s was made with other params or input: starting from scratch", directory)
            return None
        for name in MATRICES:
            if sha256_file(directory / name) != record["sha256"][name]:
                raise ValueError(f"{name} does not match its sha256")
        return np.load(directory / MATRICES[0]), np.load(directory / MATRICES[1]), record["state"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s is damaged (%s): starting from scratch", directory, exc)
        return None


def remove(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
