"""Sphinx configuration of the manual (`make docs`: docs/_build/html/index.html). Pages are Markdown (MyST);
the parameters page and the API page are generated from the code at build time."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "src"), str(Path(__file__).parent / "_ext")]

project = "w2v-dvc"
author = "the w2v-dvc authors"
copyright = "the w2v-dvc authors, Apache-2.0"
extensions = ["myst_parser", "sphinx.ext.autodoc", "w2v_docs"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3  # `page.md#a-heading` links are checked: a broken one is a warning, and warnings fail
html_theme = "furo"
html_title = "w2v-dvc manual"
html_static_path: list[str] = []
autodoc_member_order = "bysource"
autodoc_typehints = "description"
suppress_warnings: list[str] = []
