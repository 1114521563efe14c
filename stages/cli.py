"""``w2v``: the user-facing command line, on top of the library (:mod:`w2v`) and the pipeline (:mod:`stages`).

The stages themselves run through DVC (``dvc repro``, or ``python -m stages.NAME``); this command gathers what a
user asks of the pipeline directly. The query commands need numpy alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

from stages import pipeline
from w2v.errors import W2VError

log = logging.getLogger("w2v.cli")


PARAMS_HEADER = """\
# Parameters of the word2vec pipeline: one section per DVC stage.
# Each stage declares in dvc.yaml only the keys it reads, so changing a key re-runs only the stages that
# depend on it (and their downstream stages). Every key is validated when a stage starts.
# The comments are the code's own words (w2v/params.py): `w2v params --yaml > params.yaml` rewrites them.
"""
COMMENT_COLUMN = 24  # where the comments of params.yaml start, unless a key and its value reach further
LINE_WIDTH = 120


def yaml_value(value) -> str:
    """A value as params.yaml writes it on one line: sample, true, 0.001, [10], '' ."""
    import yaml

    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=1 << 30).strip()
    return text.removesuffix("\n...").strip()


def params_yaml(raw: dict) -> str:
    """params.yaml holding the values of ``raw`` (the file as YAML loaded it; a missing key gets its default),
    each key commented with what it does."""
    import textwrap

    from w2v.params import SECTIONS, meaning

    lines = [PARAMS_HEADER.rstrip("\n")]
    for section, cls in SECTIONS.items():
        lines += ["", f"{section}:"]
        values = raw.get(section) or {}
        for f in dataclasses.fields(cls):
            default = list(f.default) if isinstance(f.default, tuple) else f.default
            entry = f"  {f.name}: {yaml_value(values.get(f.name, default))}"
            column = max(COMMENT_COLUMN, len(entry) + 1)
            width = LINE_WIDTH - COMMENT_COLUMN - 2
            first, *rest = textwrap.wrap(meaning(f), max(width - (column - COMMENT_COLUMN), 40))
            lines.append(f"{entry.ljust(column - 1)} # {first}")
            lines += [f"{' ' * COMMENT_COLUMN}# {line}"
                      for line in textwrap.wrap(" ".join(rest), width)] if rest else []
    return "\n".join(lines) + "\n"


def key_rows(section: str, values=None) -> list[tuple[str, str, str, str]]:
    """(key, value as params.yaml writes it, what it accepts, what it does) for every key of a params section,
    with the values of ``values`` (a loaded section) or the code's defaults: what `w2v params` and the manual's
    parameters page show."""
    from w2v.params import SECTIONS, describe, meaning

    rows = []
    for f in dataclasses.fields(SECTIONS[section]):
        value = getattr(values, f.name) if values is not None else f.default
        rows.append((f"{section}.{f.name}", yaml_value(list(value) if isinstance(value, tuple) else value),
                     describe(dict(f.metadata), type(f.default)), meaning(f)))
    return rows


def params_table(markdown: bool) -> str:
    """Every key with its current value, what it accepts and what it does."""
    from w2v.params import PARAMS_FILE, SECTIONS, load_params

    current = load_params(PARAMS_FILE)
    lines = ["| key | value | allowed | meaning |", "|---|---|---|---|"] if markdown else []
    for section in SECTIONS:
        for key, value, allowed, meaning in key_rows(section, current[section]):
            lines.append(f"| `{key}` | `{value}` | {allowed} | {meaning} |" if markdown
                         else f"{key} = {value}\n    {meaning} ({allowed})")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="w2v", description="Reproducible word2vec pipeline on DVC. Run the pipeline with `dvc repro`.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    show = commands.add_parser("params", help="validate params.yaml and list every key with its meaning",
                               description="Validate params.yaml (exit 2 with one clear line if a value is "
                                           "wrong) and list every key, its value, what it accepts and what it "
                                           "does.")
    form = show.add_mutually_exclusive_group()
    form.add_argument("--markdown", action="store_true", help="print a Markdown table (as the manual's parameters "
                                                              "page)")
    form.add_argument("--yaml", action="store_true", help="print params.yaml with its current values and every key "
                                                          "commented with its meaning (`> params.yaml` restores "
                                                          "the comments after an edit)")

    def query(name: str, help: str, words: list[tuple[str, str]]) -> argparse.ArgumentParser:
        command = commands.add_parser(name, help=help, description=help + ". Reads the model of the current "
                                      "workspace (data/model, written by `dvc repro`) unless --model is given.")
        for word, meaning in words:
            command.add_argument(word, help=meaning)
        command.add_argument("--model", type=Path, default=pipeline.MODEL,
                             help="model directory (vectors.npy + words.txt; default: %(default)s)")
        return command

    similar = query("similar", "the words closest to WORD by cosine similarity", [("word", "the query word")])
    similar.add_argument("-n", "--topn", type=int, default=10, help="how many neighbours (default: %(default)s)")
    query("similarity", "cosine similarity of two words", [("a", "first word"), ("b", "second word")])
    analogy = query("analogy", "A is to B as C is to ?", [("a", "A"), ("b", "B"), ("c", "C")])
    analogy.add_argument("-n", "--topn", type=int, default=5, help="how many answers (default: %(default)s)")
    analogy.add_argument("--method", choices=("3cosadd", "3cosmul"), default="3cosadd",
                         help="3CosAdd (b - a + c) or 3CosMul (Levy & Goldberg); default: %(default)s")
    compare = commands.add_parser(
        "compare", help="experiments side by side: headline metrics and the params that differ",
        description="Show `dvc exp show` with the columns that tell experiments apart: the headline metrics (loss, "
                    "words/s, analogy, WordSim-353, SimLex-999) and only the params whose values differ, without the "
                    "dependency hashes and dates; it fits a 120-column terminal. Arguments after -- go to dvc exp "
                    "show (e.g. -- --md, or -- -A for every commit).")
    compare.add_argument("dvc_args", nargs="*", help="more arguments for dvc exp show (after --)")
    commands.add_parser(
        "check", help="check params.yaml and DVC's lock files before a run (make run does this first)",
        description="Validate params.yaml, and check that dvc.lock and DVC's run lock are intact: a dvc process "
                    "killed while writing one leaves it empty or cut off, and every dvc command then fails. "
                    "Prints each problem with its fix; exit 2 if there is one.")
    recipe = commands.add_parser(
        "recipe", help="ready params for known setups (captions, reviews, news, text8, wikitext103)",
        description="Without NAME: list the recipes with what each needs (network, disk, time). With NAME: show its "
                    "params and the `dvc exp run` command that applies them as an experiment; with --run, run it.")
    recipe.add_argument("name", nargs="?", help="recipe name (a file in recipes/)")
    recipe.add_argument("--run", action="store_true", help="run it: dvc exp run -n NAME -S key=value ...")
    check = commands.add_parser(
        "repro-check", help="run the pipeline twice from clean copies and compare every output's hash",
        description="Copy the project's git-tracked files twice into a temporary directory, run `dvc repro "
                    "--force` in each with an empty cache, and compare the hash of every output in the two "
                    "dvc.lock files (and with this workspace's dvc.lock). Exit 1 if two runs of the same params "
                    "differ. Takes about twice a full `dvc repro`.")
    check.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                       help="override a param in both copies, e.g. --set pairs.epochs=1 (repeatable)")
    check.add_argument("--keep", action="store_true", help="keep the two copies (their path is logged)")
    commands.add_parser(
        "digest", help="the fingerprint of the results dvc.lock records, as CHANGELOG.md records it per version",
        description="Print one short hash of every output hash in dvc.lock, the files that hold timings left "
                    "out. Two workspaces with the same digest hold the same results; a change of it is a change "
                    "of result bytes, which bumps the version (CONTRIBUTING.md).")
    return parser


def load_embeddings(model: Path):
    from w2v.embeddings import VECTORS_NPY, WORDS_TXT, Embeddings

    missing = [name for name in (VECTORS_NPY, WORDS_TXT) if not (model / name).is_file()]
    if missing:
        raise W2VError(f"{model / missing[0]}: not found; train a model first (dvc repro train) or pass --model DIR")
    return Embeddings.load(model)


def run_query(args: argparse.Namespace) -> str:
    from w2v.embeddings import UnknownWord

    emb = load_embeddings(args.model)
    try:
        if args.command == "similar":
            results = emb.most_similar(args.word, topn=args.topn)
        elif args.command == "analogy":
            results = emb.analogy(args.a, args.b, args.c, topn=args.topn, method=args.method)
        else:
            return f"{emb.similarity(args.a, args.b):.4f}"
    except UnknownWord as exc:
        raise W2VError(str(exc)) from None
    return "\n".join(f"{word:20} {score:.4f}" for word, score in results)


COMPARE_DROP = r"Created|Executor|.*/"  # dvc exp show's date, executor and dependency (path) columns


def compare_experiments(dvc_args: list[str]) -> int:
    import subprocess

    command = [sys.executable, "-m", "dvc", "exp", "show", "--no-pager", "--only-changed", "--drop", COMPARE_DROP,
               *dvc_args]
    if not sys.stdout.isatty() and "--md" not in dvc_args and "--json" not in dvc_args and "--csv" not in dvc_args:
        command.append("--md")  # piped, dvc's table would assume 80 columns and hide some behind "…"
    return subprocess.run(command).returncode


def show_recipe(name: str | None, run_it: bool) -> int:
    import shlex
    import subprocess

    from stages.recipes import load_recipe, names

    if name is None:
        for each in names():
            recipe = load_recipe(each)
            sys.stdout.write(f"{each}: {recipe.description}\n    needs: {recipe.needs}\n")
        return 0
    recipe = load_recipe(name)
    if run_it:
        return subprocess.run(recipe.command()).returncode
    sys.stdout.write(f"{recipe.description}\nneeds: {recipe.needs}\n\n" + "\n".join(recipe.settings())
                     + f"\n\nrun it as an experiment:\n  {shlex.join(recipe.command())}\n")
    return 0


def check_project() -> None:
    from w2v.params import load_params

    load_params()
    problems = pipeline.project_problems()
    for problem in problems[1:]:
        log.error("error: %s", problem)
    if problems:
        raise W2VError(problems[0])
    log.info("params.yaml, %s and DVC's run lock are fine", pipeline.DVC_LOCK)


def run(args: argparse.Namespace) -> None:
    if args.command == "params" and args.yaml:
        import yaml

        from w2v.params import PARAMS_FILE, load_params

        load_params(PARAMS_FILE)  # validated first: a wrong value is named, not written back
        sys.stdout.write(params_yaml(yaml.safe_load(PARAMS_FILE.read_text(encoding="utf-8"))))
    elif args.command == "params":
        sys.stdout.write(params_table(args.markdown) + "\n")
    elif args.command == "check":
        check_project()
    elif args.command == "compare":
        sys.exit(compare_experiments(args.dvc_args))
    elif args.command == "recipe":
        sys.exit(show_recipe(args.name, args.run))
    elif args.command == "digest":
        from stages.reprocheck import results_digest

        if not Path("dvc.lock").is_file():
            raise W2VError("dvc.lock: not found; run `w2v digest` in the project's root, after `dvc repro`")
        sys.stdout.write(results_digest(Path("dvc.lock")) + "\n")
    elif args.command == "repro-check":
        from stages.reprocheck import repro_check

        if repro_check(Path.cwd(), args.overrides, args.keep):
            sys.exit(1)
    else:
        sys.stdout.write(run_query(args) + "\n")


def main() -> None:
    """The console script. Unlike a stage, it touches no output folder: it runs from any directory."""
    args = build_parser().parse_args()
    pipeline.setup_logging()
    pipeline.one_line_errors(log, lambda: run(args))


if __name__ == "__main__":
    main()
