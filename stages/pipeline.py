"""What the DVC stages share: where every file of the pipeline lives, which stage writes it, and the wrapper that
turns a stage's ``main`` into a command (logging, clean-up of its own killed runs, one-line errors).

The paths here are the one statement of the pipeline's file layout; ``dvc.yaml`` repeats them because DVC needs
them, and ``tests/test_dvc_yaml.py`` checks that it does so faithfully.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sys
from pathlib import Path
from typing import Callable

from w2v.errors import DamagedFileError, W2VError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130

# Inputs shipped with the repository.
SAMPLE = Path("data/sample/text8-head.txt.gz")
BENCHMARKS = Path("data/benchmarks")
# Where a user puts the vectors training starts from (train.init_from): the train stage's DVC dependency.
INIT = Path("data/init")

# Each stage's outputs: cached directories under data/, and small files kept in git (cache: false).
RAW = Path("data/raw")
CORPUS = RAW / "corpus.txt"
TOKENS = Path("data/tokens")
TOKEN_FILE = TOKENS / "tokens.parquet"
PHRASES = Path("data/phrases")
PHRASE_FILE = PHRASES / "tokens.parquet"
VOCAB = Path("data/vocab")
VOCAB_TABLE = VOCAB / "vocab.parquet"
CORPUS_IDS = VOCAB / "corpus_ids.arrow"
PAIRS = Path("data/pairs")
MODEL = Path("data/model")
TOKENIZE_METRICS = Path("metrics/tokenize.json")
PHRASES_METRICS = Path("metrics/phrases.json")
VOCAB_METRICS = Path("metrics/vocab.json")
PAIRS_METRICS = Path("metrics/pairs.json")
TRAIN_METRICS = Path("metrics/train.json")
TRAIN_CURVE = Path("plots/train_loss.tsv")
RUN_RECORD = Path("runs/train.json")
EVAL_METRICS = Path("metrics/eval.json")
EVAL_DETAILS = Path("metrics/eval_details.json")
NEIGHBOURS = Path("metrics/neighbours.md")
EMBEDDING_MAP = Path("plots/embedding_map.png")
INTERACTIVE_MAP = Path("plots/embedding_map.html")
PROJECTOR = Path("data/projector")
SIMILARITY_HEATMAP = Path("plots/similarity_heatmap.png")

# Training checkpoints: outside DVC's outputs, which DVC deletes before it runs a stage.
CHECKPOINTS = Path("checkpoints/train")
# DVC's own state, which a dvc process killed at the wrong moment leaves half-written.
DVC_LOCK = Path("dvc.lock")
DVC_RWLOCK = Path(".dvc/tmp/rwlock")

# What each stage reads that another stage (or the repository) provides; DVC's data dependencies.
INPUTS: dict[str, tuple[Path, ...]] = {
    "download": (SAMPLE.parent,),  # and the file download.path names (a templated dependency in dvc.yaml)
    "tokenize": (RAW,),
    "phrases": (TOKENS,),
    "vocab": (PHRASES,),
    "pairs": (VOCAB,),
    "train": (PAIRS, VOCAB, INIT),
    "evaluate": (MODEL, BENCHMARKS),
}
OUTPUTS: dict[str, tuple[Path, ...]] = {
    "download": (RAW,),
    "tokenize": (TOKENS, TOKENIZE_METRICS),
    "phrases": (PHRASES, PHRASES_METRICS),
    "vocab": (VOCAB, VOCAB_METRICS),
    "pairs": (PAIRS, PAIRS_METRICS),
    "train": (MODEL, RUN_RECORD, TRAIN_METRICS, TRAIN_CURVE),
    "evaluate": (EVAL_METRICS, EVAL_DETAILS, NEIGHBOURS, EMBEDDING_MAP, SIMILARITY_HEATMAP, INTERACTIVE_MAP,
                 PROJECTOR),
}
SCRATCH: dict[str, tuple[Path, ...]] = {"train": (CHECKPOINTS,)}


def producer(path: Path | str) -> str | None:
    """The stage that writes ``path`` (or the output directory that holds it); an absolute path is matched by
    its tail (``/tmp/x/data/vocab/vocab.parquet`` is the vocab stage's)."""
    parts = Path(path).parts
    for start in range(len(parts)):
        tail = Path(*parts[start:])
        for stage, outputs in OUTPUTS.items():
            if any(tail == output or output in tail.parents for output in outputs):
                return stage
    return None


def rebuild_hint(path: Path | str) -> str:
    """How to rebuild a file some stage wrote, e.g. "rebuild it with `dvc repro --force vocab`"."""
    stage = producer(path)
    return f"rebuild it with `dvc repro --force {stage}`" if stage else "rebuild it with `dvc repro --force`"


def require(*paths: Path) -> None:
    """Stop with one line if an input another stage writes is missing."""
    for path in paths:
        if not path.exists():
            stage = producer(path)
            raise W2VError(f"{path}: not found; run the {stage} stage first (dvc repro {stage})")


def project_problems() -> list[str]:
    """What stops DVC, or misleads it, before any stage runs, each with its fix: DVC rewrites dvc.lock and its run
    lock in place, so a dvc process killed while writing one (Ctrl-C, SIGKILL, power loss) leaves it empty or cut
    off. Every later dvc command then fails with a schema or JSON error, or, where the cut left valid YAML, takes
    the lost hashes for changes and re-runs stages for nothing."""
    import json

    problems = []
    if DVC_LOCK.is_file():
        text = DVC_LOCK.read_text(encoding="utf-8", errors="replace")
        if not lock_is_whole(text):
            what = "empty (0 bytes)" if not text else "cut off"
            problems.append(f"{DVC_LOCK} is {what}: a dvc process was killed while writing it; restore the committed "
                            f"one with `git checkout {DVC_LOCK}`, and `dvc repro` then redoes what changed since")
    if DVC_RWLOCK.is_file():
        try:
            json.loads(DVC_RWLOCK.read_text(encoding="utf-8", errors="replace"))
        except ValueError:
            problems.append(f"{DVC_RWLOCK} is cut off: a dvc process was killed while writing it; when no dvc "
                            f"command is running, remove it with `rm {DVC_RWLOCK}`")
    return problems


_LOCKED_HASH = re.compile(r"[0-9a-f]{32}(\.dir)?")


def lock_is_whole(text: str) -> bool:
    """Whether ``text`` is a dvc.lock as DVC writes it, not the start of one. DVC dumps the whole file in one go,
    ending in a newline, each stage as cmd, deps, params, outs and each file as path, hash, md5, size (and nfiles
    for a directory); a cut therefore loses the newline, or ends the last stage before its outs, or leaves a file
    without its size. A cut exactly between two stages, or two outputs, leaves a lock DVC could have written: that
    one is not caught, and costs only the re-run of the stages it lost."""
    import yaml

    if not text.endswith("\n"):
        return False
    try:
        lock = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return False
    if not (isinstance(lock, dict) and "schema" in lock and isinstance(lock.get("stages"), dict)):
        return False
    stages = lock["stages"]
    for entry in stages.values():
        if not (isinstance(entry, dict) and entry.get("cmd")):
            return False
        if not all(_locked_file_is_whole(file) for file in (entry.get("deps") or []) + (entry.get("outs") or [])):
            return False
    last_stage, last_entry = list(stages.items())[-1] if stages else (None, {})
    return not (OUTPUTS.get(last_stage) and not last_entry.get("outs"))


def _locked_file_is_whole(file) -> bool:
    if not (isinstance(file, dict) and "path" in file and len(file) > 1):
        return False
    if file.get("hash") != "md5" and "md5" not in file:
        return True  # hashed otherwise (a URL's etag): DVC's own check is left to DVC
    md5 = str(file.get("md5"))
    return bool(_LOCKED_HASH.fullmatch(md5)) and isinstance(file.get("size"), int) and (
        not md5.endswith(".dir") or isinstance(file.get("nfiles"), int))


def stage_params(section: str):
    """The stage's own section of params.yaml, after validating the whole file."""
    from w2v.params import load_params

    return load_params()[section]


def setup_logging(verbose: bool = False) -> None:
    level = logging.DEBUG if verbose or os.environ.get("W2V_DEBUG") else logging.INFO
    logging.basicConfig(level=level, format="%(name)s: %(message)s", stream=sys.stderr, force=True)


def one_line_errors(log: logging.Logger, main: Callable[[], None]) -> None:
    """Run ``main``: a W2VError exits 2 with its message (and, for a damaged file, how to rebuild it), Ctrl-C
    exits 130. Set W2V_DEBUG=1 to see the traceback behind an error."""
    try:
        main()
    except DamagedFileError as exc:
        log.debug("traceback", exc_info=True)
        log.error("error: %s; %s", exc, rebuild_hint(exc.path))
        sys.exit(EXIT_USER_ERROR)
    except W2VError as exc:
        log.debug("traceback", exc_info=True)
        log.error("error: %s", exc)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        log.error("interrupted: no output was written (partial files are removed); re-run to start again")
        sys.exit(EXIT_INTERRUPTED)


def stage(main: Callable[[], None]) -> Callable[[], None]:
    """Make a stage's ``main`` a command: logging, removal of what killed runs of *this* stage left behind
    (SIGKILL skips every clean-up, and DVC may restore the outputs from its run cache without running us), then
    :func:`one_line_errors`."""
    spec = main.__globals__.get("__spec__")  # run as `python -m stages.vocab`, __module__ is "__main__"
    name = (spec.name if spec else main.__module__).rsplit(".", 1)[-1]
    log = logging.getLogger(f"w2v.{name}")

    @functools.wraps(main)
    def run() -> None:
        from w2v.fsio import remove_stale_temporaries

        setup_logging()
        for temporary in remove_stale_temporaries(OUTPUTS[name] + SCRATCH.get(name, ())):
            log.info("removed %s, left by a killed run", temporary)
        one_line_errors(log, main)

    return run
