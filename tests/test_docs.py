"""The front page and the manual say what the code does: a short README, every output of dvc.yaml in the
manual's pipeline table, and no param named anywhere that the code does not define. (`make docs` builds the
manual with warnings as errors, so broken links fail there.)"""

from __future__ import annotations

import dataclasses
import re

import pytest
import yaml

from tests.conftest import ROOT
from w2v.params import SECTIONS

PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
EXAMPLE_TYPOS = {"vocab.min_cout"}  # the failure-modes page shows the error a misspelt key gets
FILE_SUFFIXES = {"json", "yaml", "py", "tsv", "md", "html", "png", "txt", "npy", "bin", "parquet", "arrow", "gz"}


def test_the_readme_is_a_front_door():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines: details belong in the manual (docs/)"
    quick_start = "\n".join(lines[lines.index("## Quick start"):][:12])
    assert "make run" in quick_start and "make test" in quick_start


def test_the_pipeline_page_names_every_output_of_every_stage():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    page = (ROOT / "docs/pipeline.md").read_text(encoding="utf-8")
    table = page[:page.index("\n## ")]
    for name, stage in stages.items():
        row = next((line for line in table.splitlines() if line.startswith(f"| `{name}` |")), None)
        assert row is not None, f"docs/pipeline.md: no row for the {name} stage"
        for out in stage["outs"]:
            path = next(iter(out)) if isinstance(out, dict) else out
            assert path.rstrip("/") in row or path.split("/")[-1] in row, f"{name}: {path} is not in its row"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_param_a_page_names_exists(page):
    text = page.read_text(encoding="utf-8")
    keys = {f"{section}.{f.name}" for section, cls in SECTIONS.items() for f in dataclasses.fields(cls)}
    named = set(re.findall(r"(?<![\w/.-])((?:%s)\.[a-z_]+)(?![\w(])" % "|".join(SECTIONS), text))
    unknown = {key for key in named - EXAMPLE_TYPOS if key not in keys and key.rsplit(".", 1)[1] not in FILE_SUFFIXES}
    assert not unknown, f"{page.name} names params the code does not define: {sorted(unknown)}"
