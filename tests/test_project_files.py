"""The project's own files say what the code does: the licence pyproject.toml names, a CHANGELOG entry for the
committed results, a typed library, and make targets that exist wherever the documentation names one."""

from __future__ import annotations

import re
import tomllib

from stages.reprocheck import results_digest
from tests.conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def changelog_entries() -> list[tuple[str, str]]:
    """(version, its text), newest first."""
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    parts = re.split(r"^## (\d+\.\d+\.\d+)\b.*$", text, flags=re.M)
    return list(zip(parts[1::2], parts[2::2]))


def test_the_licence_is_the_one_pyproject_names():
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert PYPROJECT["project"]["license"] == {"text": "Apache-2.0"}
    assert "Apache License\n                           Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_the_newest_changelog_entry_is_this_version_and_records_the_committed_results():
    """A change of result bytes without a new version and entry fails here (the rule in CHANGELOG.md)."""
    entries = changelog_entries()
    versions = [tuple(map(int, v.split("."))) for v, _ in entries]
    assert versions == sorted(set(versions), reverse=True), "versions newest first, each once"
    version, text = entries[0]
    assert version == PYPROJECT["project"]["version"]
    digest = results_digest(ROOT / "dvc.lock")
    assert f"Results digest `{digest}`" in text, (
        f"dvc.lock's results (w2v digest: {digest}) are not the ones CHANGELOG.md records for {version}: a change "
        f"of result bytes bumps the version and adds an entry (CONTRIBUTING.md)")


def test_the_library_ships_its_type_annotations():
    assert (ROOT / "src/w2v/py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["w2v"]
    assert PYPROJECT["tool"]["mypy"]["files"] == ["src/w2v"]


def test_every_make_target_the_documentation_names_exists():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([\w-]+):", makefile, flags=re.M))
    pages = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").rglob("*.md"))]
    named = {(page.name, target) for page in pages
             for target in re.findall(r"`make ([\w-]+)", page.read_text(encoding="utf-8"))}
    assert named and not {(page, t) for page, t in named if t not in targets}
