"""Shared fixtures: tests call stage functions directly, from the repository root, without DVC."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def at_repo_root(monkeypatch):
    """Stages resolve their paths from the repository root, as DVC runs them."""
    monkeypatch.chdir(ROOT)


@pytest.fixture
def write_params(tmp_path):
    """Write a params.yaml holding the given sections (merged over the repository's) and return its path."""

    def write(overrides: dict) -> Path:
        params = yaml.safe_load((ROOT / "params.yaml").read_text())
        for section, values in overrides.items():
            if isinstance(values, dict) and isinstance(params.get(section), dict):
                params[section].update(values)
            else:
                params[section] = values
        path = tmp_path / "params.yaml"
        path.write_text(yaml.safe_dump(params))
        return path

    return write
