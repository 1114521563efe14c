"""Recipes: ready sets of params for setups users know (captions, reviews, pre-tokenised news, text8,
WikiText-103), one YAML file each in ``recipes/``, applied as a DVC experiment (``w2v recipe NAME --run`` runs
``dvc exp run -n NAME -S key=value ...``), so the workspace's params.yaml stays the baseline's.

A recipe file holds ``description``, ``needs`` (network, disk, time) and ``params``: sections of params.yaml,
only the keys that differ from the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from w2v.errors import W2VError

RECIPES = Path(__file__).resolve().parent.parent / "recipes"


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    needs: str
    params: dict

    def settings(self) -> list[str]:
        """``section.key=value`` for each param, values in YAML (as ``dvc exp run -S`` reads them)."""
        return [f"{section}.{key}={yaml_value(value)}" for section, values in self.params.items()
                for key, value in values.items()]

    def command(self) -> list[str]:
        return ["dvc", "exp", "run", "-n", self.name] + [part for s in self.settings() for part in ("-S", s)]

    def applied_to(self, params: dict) -> dict:
        """``params`` (a params.yaml mapping) with the recipe's keys set."""
        merged = {section: dict(values or {}) for section, values in params.items()}
        for section, values in self.params.items():
            merged.setdefault(section, {}).update(values)
        return merged


def yaml_value(value) -> str:
    """A value as one line of YAML: ``true``, ``2``, ``lmms-lab/flickr30k``."""
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def names() -> list[str]:
    return sorted(path.stem for path in RECIPES.glob("*.yaml"))


def load_recipe(name: str) -> Recipe:
    """The recipe ``recipes/NAME.yaml``, its params validated against every rule params.yaml follows."""
    from w2v.params import SECTIONS

    path = RECIPES / f"{name}.yaml"
    if not path.is_file():
        raise W2VError(f"no recipe {name!r}; recipes: {', '.join(names())}")
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict) or set(raw) != {"description", "needs", "params"}:
        raise W2VError(f"{path}: a recipe holds description, needs and params")
    for section, values in raw["params"].items():
        if section not in SECTIONS:
            raise W2VError(f"{path}: unknown section {section!r}; params.yaml has {', '.join(SECTIONS)}")
        SECTIONS[section].from_mapping(section, values)  # raises ParamError naming the key and value
    return Recipe(name, raw["description"], raw["needs"], raw["params"])
