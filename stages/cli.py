"""``w2v``: the user-facing command line.

The stages themselves run through DVC (``dvc repro``, or ``python -m stages.NAME``); this command gathers what a
user asks of the pipeline directly.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from stages.console import entry_point
from stages.params import PARAMS_FILE, SECTIONS, describe, load_params


def params_table(markdown: bool) -> str:
    """Every key with its current value, what it accepts and what it does."""
    current = load_params(PARAMS_FILE)
    lines = ["| key | value | allowed | meaning |", "|---|---|---|---|"] if markdown else []
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            value = getattr(current[section], f.name)
            allowed = describe(dict(f.metadata), type(f.default))
            if markdown:
                lines.append(f"| `{section}.{f.name}` | `{value!r}` | {allowed} | {f.metadata['help']} |")
            else:
                lines.append(f"{section}.{f.name} = {value!r}\n    {f.metadata['help']} ({allowed})")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="w2v", description="Reproducible word2vec pipeline on DVC. Run the pipeline with `dvc repro`.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    show = commands.add_parser("params", help="validate params.yaml and list every key with its meaning",
                               description="Validate params.yaml (exit 2 with one clear line if a value is "
                                           "wrong) and list every key, its value, what it accepts and what it "
                                           "does.")
    show.add_argument("--markdown", action="store_true", help="print a Markdown table (as in the README)")
    return parser


@entry_point
def main() -> None:
    args = build_parser().parse_args()
    if args.command == "params":
        sys.stdout.write(params_table(args.markdown) + "\n")


if __name__ == "__main__":
    main()
