"""dvc.yaml tells the truth: each stage's code dependencies are exactly the project modules its command imports,
its params are exactly the keys it reads (less the speed-only ones), and its data dependencies and outputs are
the file layout of ``stages.pipeline``. A gap here means DVC skips a stage whose result a change would alter,
or re-runs one for nothing."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from stages import pipeline
from tests.conftest import ROOT
from w2v.params import SECTIONS, result_keys, speed_only_keys

PACKAGES = {"w2v": ROOT / "src/w2v", "stages": ROOT / "stages"}
DVC_YAML = yaml.safe_load((ROOT / "dvc.yaml").read_text())
STAGES = list(DVC_YAML["stages"])
# A string "w2v.module:Name" names a class that is imported when needed (the trainer registry).
LAZY_REFERENCE = re.compile(r"((?:w2v|stages)(?:\.\w+)+):\w+")


def module_file(name: str) -> Path | None:
    head, *rest = name.split(".")
    if head not in PACKAGES:
        return None
    base = PACKAGES[head].joinpath(*rest)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def lazy_names(package: str) -> dict[str, str]:
    """A package's ``_LAZY`` map (name → module), for the names it loads on first use (PEP 562)."""
    init = PACKAGES[package] / "__init__.py"
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "_LAZY" for t in node.targets):
            return ast.literal_eval(node.value)
    return {}


def imported_files(path: Path) -> set[Path]:
    """Project files a module imports, at the top or inside functions (a lazy import still runs). Imports in a
    package's own ``__getattr__`` are left out: they run only for the name asked for, which the importing
    module names."""
    tree = ast.parse(path.read_text())
    skip = {id(n) for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == "__getattr__"
            for n in ast.walk(f)}
    names = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            for alias in node.names:
                names.add(f"{node.module}.{alias.name}")
                if node.module in PACKAGES and alias.name in lazy_names(node.module):
                    names.add(lazy_names(node.module)[alias.name])
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if match := LAZY_REFERENCE.fullmatch(node.value):
                names.add(match[1])
    files = set()
    for name in names:
        parts = name.split(".")
        for end in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ first
            if found := module_file(".".join(parts[:end])):
                files.add(found)
    return files


def import_closure(path: Path) -> set[str]:
    seen: set[Path] = set()
    todo = [path]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(imported_files(current))
    return {str(p.relative_to(ROOT)) for p in seen}


def declared(stage: str, kind: str) -> list:
    return DVC_YAML["stages"][stage].get(kind, [])


def paths_of(entries: list) -> set[str]:
    return {next(iter(e)) if isinstance(e, dict) else e for e in entries}


def sections_read(stage: str) -> set[str]:
    """The params sections a stage module asks for with ``pipeline.stage_params("...")``."""
    tree = ast.parse((ROOT / f"stages/{stage}.py").read_text())
    return {node.args[0].value for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) ==
            "stage_params"}


def test_every_stage_module_has_a_dvc_stage():
    helpers = {"__init__", "pipeline", "cli", "reprocheck", "recipes"}
    modules = {p.stem for p in (ROOT / "stages").glob("*.py")} - helpers
    assert set(STAGES) == modules == set(pipeline.OUTPUTS)


def code_dependencies(stage: str) -> list[str]:
    """The stage's own module first, then the rest of stages/, then the library, each alphabetically."""
    return sorted(import_closure(ROOT / f"stages/{stage}.py"),
                  key=lambda p: (p != f"stages/{stage}.py", not p.startswith("stages/"), p))


def write_code_dependencies(path: Path = ROOT / "dvc.yaml") -> None:
    """Rewrite the ``*.py`` entries of every stage's deps in ``dvc.yaml`` from the import closures (run by
    ``make dvc-deps``; the rest of the file, comments included, is kept)."""
    lines, out, stage = path.read_text().splitlines(), [], None
    for line in lines:
        if line.startswith("  ") and not line.startswith("   ") and line.rstrip().endswith(":"):
            stage = line.strip().rstrip(":")
        if stage in STAGES and line.startswith("      - ") and line.strip().endswith(".py"):
            if not out[-1].strip().endswith(".py"):  # the first code dependency: write them all here
                out.extend(f"      - {dep}" for dep in code_dependencies(stage))
            continue
        out.append(line)
    path.write_text("\n".join(out) + "\n")


@pytest.mark.parametrize("stage", STAGES)
def test_code_dependencies_are_the_import_closure(stage):
    code = {d for d in paths_of(declared(stage, "deps")) if d.endswith(".py")}
    assert code == import_closure(ROOT / f"stages/{stage}.py"), "run `make dvc-deps` to rewrite dvc.yaml's lists"
    assert DVC_YAML["stages"][stage]["cmd"] == f"python -m stages.{stage}"


def test_the_closure_finds_lazy_and_registered_imports():
    train = import_closure(ROOT / "stages/train.py")
    assert {"src/w2v/cpu_trainer.py", "src/w2v/torch_trainer.py"} <= train  # named in the trainer registry
    assert "src/w2v/embeddings.py" not in import_closure(ROOT / "stages/download.py")  # w2v's lazy names


@pytest.mark.parametrize("stage", STAGES)
def test_params_are_the_keys_the_stage_reads_less_the_speed_only_ones(stage):
    sections = sections_read(stage)
    assert len(sections) == 1, f"stages/{stage}.py should read its params with pipeline.stage_params(...)"
    want = {f"{s}.{key}" for s in sections for key in result_keys(SECTIONS[s])}
    assert set(declared(stage, "params")) == want
    assert not {f"{s}.{key}" for s in sections for key in speed_only_keys(SECTIONS[s])} & set(declared(stage,
                                                                                                        "params"))
    assert "load_params" not in (ROOT / f"stages/{stage}.py").read_text()


@pytest.mark.parametrize("stage", STAGES)
def test_data_dependencies_and_outputs_are_the_pipeline_layout(stage):
    data = {d for d in paths_of(declared(stage, "deps")) if not d.endswith(".py")}
    want = {str(p) for p in pipeline.INPUTS[stage]} | ({"${download.path}"} if stage == "download" else set())
    assert data == want
    outputs = paths_of(declared(stage, "outs") + declared(stage, "metrics") + declared(stage, "plots"))
    assert outputs == {str(p) for p in pipeline.OUTPUTS[stage]}


def test_the_model_is_a_dvc_artifact():
    artifact = DVC_YAML["artifacts"]["sgns-model"]
    assert artifact["path"] == str(pipeline.MODEL) and artifact["type"] == "model"
