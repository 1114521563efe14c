"""Training speed and quality, ours against gensim, side by side in one run.

    python bench/train_bench.py [--threads 2] [--mode deterministic|hogwild] [--device cpu|cuda] [--against REV]
                                [--word2vec BIN]
                                [--set KEY=VALUE ...]   (train params; --set model=cbow compares with gensim's sg=0,
                                                         --set hs=true --set negative=0 with its hs=1, negative=0)

Needs the pairs stage's output for the default params (`dvc repro pairs`): the embedded 1.17M-word sample,
skip-gram, dim 100, window 5, negative 5, sample 1e-3, min_count 5, 5 epochs. Both systems get the same
tokens (data/tokens, as rows of at most 10,000 words) and the same thread count.

* gensim 4.x: `Word2Vec(sg=1, ...)`, vocabulary built first, `train()` timed.
* ours: the train stage run in a scratch directory on the workspace's pair shards (`python -m stages.train`,
  training time as the stage measures it, compile cache warm), plus the pairs stage's time for the same
  epochs, because gensim subsamples and windows inside its training loop.

``--word2vec BIN`` runs word2vec.c too (a binary built from its public sources: ``gcc word2vec.c -o word2vec
-lm -pthread -O3 -march=native -funroll-loops``) on the same rows written one per line, with the same settings
(``-alpha``: the learning rate our run uses, as for gensim); it has no seed option and
no separate training time, so its whole process is timed (its vocabulary count is about 0.3 s of the sample).

``--against REV`` times the train stage of another git revision (checked out in a scratch worktree) in the
same alternating rounds, for a before/after of our own code.

words/s = raw corpus words × epochs / wall time, for both. Quality of both, by gensim's own evaluators on
the exported vectors: `evaluate_word_analogies` (questions-words, restrict_vocab=30000) and
`evaluate_word_pairs` (WordSim-353, SimLex-999). Run it on an idle machine: a busy core halves the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import yaml
from child import ROOT, train_project

BENCHMARKS = ROOT / "data/benchmarks"
if not BENCHMARKS.is_dir():  # before the evaluate stage ships its copies
    BENCHMARKS = ROOT.parent / "shared/data/benchmarks"


def quality(vectors) -> dict:
    analogy, _ = vectors.evaluate_word_analogies(str(BENCHMARKS / "questions-words.txt"), restrict_vocab=30000)
    ws = vectors.evaluate_word_pairs(str(BENCHMARKS / "wordsim353.tsv"))[1][0]
    simlex = vectors.evaluate_word_pairs(str(BENCHMARKS / "simlex999.txt"))[1][0]
    return {"analogy": analogy, "wordsim353": ws, "simlex999": simlex}


def learning_rate(overrides: dict) -> float:
    """The initial learning rate our run uses (train.alpha, ``auto`` resolved for the model), which gensim and
    word2vec.c get too."""
    sys.path.insert(0, str(ROOT / "src"))
    from w2v.params import TrainParams

    train = {**yaml.safe_load((ROOT / "params.yaml").read_text())["train"], **overrides}
    return TrainParams.from_mapping("train", train).learning_rate


def gensim_settings(overrides: dict) -> dict:
    """gensim's names for the train params we compare on: model, cbow_mean, hs, negative, alpha."""
    return {"sg": 0 if overrides.get("model") == "cbow" else 1, "cbow_mean": int(overrides.get("cbow_mean", True)),
            "hs": int(overrides.get("hs", False)), "negative": overrides.get("negative", 5),
            "alpha": learning_rate(overrides)}


def run_gensim(threads: int, epochs: int, seed: int = 1, settings: dict | None = None) -> dict:
    from gensim.models import Word2Vec

    tokens = pq.read_table(ROOT / "data/tokens/tokens.parquet").column("tokens").to_pylist()
    sentences = [row[i:i + 10_000] for row in tokens for i in range(0, len(row), 10_000)]
    words = sum(len(s) for s in sentences)
    model = Word2Vec(**{**gensim_settings({}), **(settings or {})}, vector_size=100, window=5, sample=1e-3,
                     min_count=5, workers=threads, seed=seed)
    model.build_vocab(sentences)
    start = time.perf_counter()
    model.train(sentences, total_examples=len(sentences), epochs=epochs)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "words_per_second": words * epochs / seconds, **quality(model.wv)}


GENSIM_PROCESS = """
import ast, sys
import pyarrow.parquet as pq
from gensim.models import Word2Vec
rows = pq.read_table(sys.argv[1]).column("tokens").to_pylist()
sentences = [row[i:i + 10_000] for row in rows for i in range(0, len(row), 10_000)]
settings = ast.literal_eval(sys.argv[2])
model = Word2Vec(sentences, **settings)
model.wv.save_word2vec_format(sys.argv[3], binary=True)
"""


def gensim_process_seconds(threads: int, epochs: int, seed: int, settings: dict) -> float:
    """gensim as a user runs it: a fresh process that imports it, reads the tokens, builds the vocabulary, trains
    and saves the vectors (what our train stage's process does after the pairs stage)."""
    arguments = {**settings, "vector_size": 100, "window": 5, "sample": 1e-3, "min_count": 5, "workers": threads,
                 "seed": seed, "epochs": epochs}
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", GENSIM_PROCESS, str(ROOT / "data/tokens/tokens.parquet"),
                        repr(arguments), str(Path(scratch) / "vectors.bin")], check=True)
        return time.perf_counter() - start


def run_word2vec_c(binary: Path, corpus: Path, threads: int, epochs: int, settings: dict, alpha: float) -> dict:
    from gensim.models import KeyedVectors

    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "vectors.bin"
        command = [str(binary), "-train", str(corpus), "-output", str(out), "-binary", "1", "-size", "100",
                   "-window", "5", "-sample", "1e-3", "-min-count", "5", "-iter", str(epochs), "-threads",
                   str(threads), "-alpha", str(alpha), "-cbow", str(1 - settings["sg"]), "-hs", str(settings["hs"]),
                   "-negative", str(settings["negative"])]
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        vectors = KeyedVectors.load_word2vec_format(str(out), binary=True)
    words = sum(1 for line in corpus.open(encoding="utf-8") for _ in line.split())
    return {"seconds": seconds, "words_per_second": words * epochs / seconds, **quality(vectors)}


def run_ours(threads: int, mode: str, device: str, words: int, code: Path = ROOT, seed: int = 1,
             overrides: dict | None = None) -> dict:
    """The train stage of the checkout at ``code`` (default: this one) on this workspace's pair shards."""
    from gensim.models import KeyedVectors

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"].update(threads=threads, deterministic=mode == "deterministic", device=device, seed=seed,
                           **(overrides or {}))
    manifest = json.loads((ROOT / "data/pairs/manifest.json").read_text())
    epochs = len(manifest["epochs"])
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        train_project(scratch, ROOT, params)
        env = {"PYTHONPATH": f"{code}{os.pathsep}{code / 'src'}", "PATH": str(Path(sys.executable).parent)}
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "stages.train"], cwd=scratch, env=env, check=True,
                       stderr=subprocess.DEVNULL)
        process_seconds = time.perf_counter() - start
        metrics = {**json.loads((scratch / "metrics/train.json").read_text()),
                   **json.loads((scratch / "runs/train.json").read_text())}
        vectors = KeyedVectors.load_word2vec_format(str(scratch / "data/model/vectors.bin"), binary=True)
    # The pairs stage's time for these epochs, measured in-process on the same shards' inputs.
    sys.path.insert(0, str(ROOT))
    from w2v.pairs import build_pairs
    from w2v.params import PairsParams

    counts = pq.read_table(ROOT / "data/vocab/vocab.parquet", columns=["count"]).column("count").to_numpy()
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        build_pairs(ROOT / "data/vocab/corpus_ids.arrow", counts,
                    PairsParams(**{**params["pairs"], "workers": threads}), Path(out))
        pairs_seconds = time.perf_counter() - start
    seconds = metrics["train_seconds"]
    return {"seconds": seconds, "words_per_second": words * epochs / seconds, "pairs_seconds": pairs_seconds,
            "with_pairs_words_per_second": words * epochs / (seconds + pairs_seconds),
            "process_seconds": process_seconds, "loss": metrics["loss"], **quality(vectors)}


@contextlib.contextmanager
def worktree(rev: str):
    """A scratch checkout of ``rev`` (its code only; the data stays this workspace's)."""
    path = Path(tempfile.mkdtemp(prefix="bench-worktree-"))
    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(path), rev], cwd=ROOT, check=True)
    try:
        yield path
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, check=True)


def median_run(runs: list[dict]) -> dict:
    """The run with the median time, its quality replaced by the mean over all runs (each round uses another
    seed: one seed's analogy score on the sample varies by about ±0.005, more than the systems differ)."""
    middle = dict(sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2])
    for key in ("analogy", "wordsim353", "simlex999"):
        values = [r[key] for r in runs]
        middle[key], middle[key + "_spread"] = sum(values) / len(values), (min(values), max(values))
    return middle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mode", choices=("deterministic", "hogwild"), default="deterministic")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--skip-gensim", action="store_true", help="ours only (e.g. on a GPU machine)")
    parser.add_argument("--against", metavar="REV", help="also time the train stage of this git revision")
    parser.add_argument("--word2vec", type=Path, metavar="BIN", help="also run word2vec.c (this binary)")
    parser.add_argument("--whole-process", action="store_true",
                        help="also time gensim as a fresh process (import, vocabulary, training, save) against our "
                             "train stage's process")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="a train param for our runs, e.g. --set shared_negatives=false (repeatable)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternate gensim and ours this many times; report the median of each (this "
                             "2-core VM's timings vary by ±25%% from minute to minute)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    words = json.loads((ROOT / "metrics/vocab.json").read_text())["tokens"]
    epochs = len(json.loads((ROOT / "data/pairs/manifest.json").read_text())["epochs"])
    print(f"corpus: {words:,} raw words x {epochs} epochs; {args.threads} threads")

    overrides = {key: yaml.safe_load(value) for key, value in (o.split("=", 1) for o in args.overrides)}
    ours_runs, reference_runs, before_runs, c_runs = [], [], [], []
    with contextlib.ExitStack() as stack:
        if args.word2vec:  # the same rows, one per line (word2vec.c cuts its sentences at 1,000 words)
            corpus = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "corpus.txt"
            rows = pq.read_table(ROOT / "data/tokens/tokens.parquet").column("tokens").to_pylist()
            corpus.write_text("".join(" ".join(row) + "\n" for row in rows), encoding="utf-8")
            alpha = learning_rate(overrides)
        before_code = stack.enter_context(worktree(args.against)) if args.against else None
        # Untimed warm-up: numba compiles the kernels once and caches them (a user's first run pays it once).
        run_ours(args.threads, args.mode, args.device, words, overrides=overrides)
        if before_code:
            run_ours(args.threads, args.mode, args.device, words, before_code, overrides=overrides)
        for seed in range(1, args.rounds + 1):
            if not args.skip_gensim:
                reference_runs.append(run_gensim(args.threads, epochs, seed, gensim_settings(overrides)))
                if args.whole_process:
                    reference_runs[-1]["process_seconds"] = gensim_process_seconds(
                        args.threads, epochs, seed, gensim_settings(overrides))
            if before_code:
                before_runs.append(run_ours(args.threads, args.mode, args.device, words, before_code, seed,
                                            overrides))
            ours_runs.append(run_ours(args.threads, args.mode, args.device, words, seed=seed, overrides=overrides))
            if args.word2vec:
                c_runs.append(run_word2vec_c(args.word2vec, corpus, args.threads, epochs, gensim_settings(overrides),
                                             alpha))
    ours = median_run(ours_runs)
    rows = [(f"ours ({args.device}, {args.mode})", ours)]
    if before_runs:
        rows.insert(0, (f"ours at {args.against}", median_run(before_runs)))
        ratios = sorted(o["words_per_second"] / b["words_per_second"] for o, b in zip(ours_runs, before_runs))
        print(f"per-round ratios ours/{args.against}: " + ", ".join(f"{x:.2f}" for x in ratios))
    if not args.skip_gensim:
        import gensim

        reference = median_run(reference_runs)
        rows.insert(0, (f"gensim {gensim.__version__}", reference))
        ratios = sorted(o["words_per_second"] / r["words_per_second"] for o, r in zip(ours_runs, reference_runs))
        print("per-round ratios ours/gensim: " + ", ".join(f"{x:.2f}" for x in ratios))
    if c_runs:
        rows.insert(0, ("word2vec.c (whole process)", median_run(c_runs)))
        ratios = sorted(o["words_per_second"] / c["words_per_second"] for o, c in zip(ours_runs, c_runs))
        print("per-round ratios ours/word2vec.c: " + ", ".join(f"{x:.2f}" for x in ratios))
    print(f"median time of {args.rounds} rounds; quality: mean over the rounds (seeds 1..{args.rounds}) [min-max]")
    print(f"{'':28} {'train s':>8} {'words/s':>10} {'analogy':>24} {'WS-353':>24} {'SimLex':>24}")
    for name, r in rows:
        quality = " ".join(f"{r[k]:.4f} [{r[k + '_spread'][0]:.4f}-{r[k + '_spread'][1]:.4f}]"
                           for k in ("analogy", "wordsim353", "simlex999"))
        print(f"{name:28} {r['seconds']:8.2f} {r['words_per_second'] / 1e6:9.3f}M {quality}")
    print(f"ours: final loss {ours['loss']:.4f}; pairs stage {ours['pairs_seconds']:.2f} s, so train + pairs "
          f"{ours['with_pairs_words_per_second'] / 1e6:.3f}M words/s; stage process {ours['process_seconds']:.1f} s")
    if before_runs:
        before = median_run(before_runs)
        print(f"ratio ours/{args.against}: {ours['words_per_second'] / before['words_per_second']:.2f}x training")
    if not args.skip_gensim:
        print(f"ratio ours/gensim: {ours['words_per_second'] / reference['words_per_second']:.2f}x training, "
              f"{ours['with_pairs_words_per_second'] / reference['words_per_second']:.2f}x with the pairs stage; "
              f"analogy {ours['analogy'] - reference['analogy']:+.4f}, "
              f"WordSim-353 {ours['wordsim353'] - reference['wordsim353']:+.4f}")
    if args.whole_process and not args.skip_gensim:
        ours_process = sorted(r["process_seconds"] for r in ours_runs)[len(ours_runs) // 2]
        gensim_process = sorted(r["process_seconds"] for r in reference_runs)[len(reference_runs) // 2]
        print(f"whole processes (medians): our train stage {ours_process:.2f} s (+ pairs stage "
              f"{ours['pairs_seconds']:.2f} s), gensim import + vocabulary + training + save {gensim_process:.2f} s: "
              f"{gensim_process / ours_process:.2f}x, {gensim_process / (ours_process + ours['pairs_seconds']):.2f}x "
              f"with the pairs stage")
    if c_runs:
        c = median_run(c_runs)
        print(f"ratio ours/word2vec.c: {ours['words_per_second'] / c['words_per_second']:.2f}x training "
              f"({ours['process_seconds'] / c['seconds']:.2f} of its time as whole processes); "
              f"analogy {ours['analogy'] - c['analogy']:+.4f}, WordSim-353 {ours['wordsim353'] - c['wordsim353']:+.4f}")


if __name__ == "__main__":
    main()
