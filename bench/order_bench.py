"""Window order: text order against shuffled windows, speed and quality, side by side in one run.

    python bench/order_bench.py [--seeds 3] [--first-seed 1] [--models skipgram,cbow] [--trainers numba,torch]
                                [--threads 2] [--orders shuffled,text] [--set KEY=VALUE ...]

On this workspace's corpus (``dvc repro vocab`` first: data/vocab), for every model, trainer and seed, builds
the pairs once per order (``pairs.seed`` = ``train.seed`` = the seed) in a scratch directory and trains on
them in-process with the library's loop (:func:`w2v.training.train`), the orders alternating so that a busy
minute hits both. Reports training seconds (median over seeds, and the per-seed ratios text ÷ shuffled) and
quality by the project's own evaluators (analogy on questions-words with restrict_vocab 30000, WordSim-353 and
SimLex-999 Spearman), as means over the seeds with their spread. ``torch`` is the torch trainer on the CPU
(the CUDA path's code; on CPU a slow engine, so its seconds say little), ``numba`` the CPU kernel.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from w2v.arrow_io import read_vocab  # noqa: E402
from w2v.embeddings import Embeddings  # noqa: E402
from w2v.evaluation import evaluate_word_analogies, evaluate_word_pairs  # noqa: E402
from w2v.huffman import huffman_tree  # noqa: E402
from w2v.matrices import INPUT, init_matrices, output_names  # noqa: E402
from w2v.pairs import build_pairs  # noqa: E402
from w2v.params import PairsParams, TrainParams  # noqa: E402
from w2v.sgns import Schedule, alias_table, noise_distribution  # noqa: E402
from w2v.training import Progress, train, trainer_class  # noqa: E402

BENCHMARKS = ROOT / "data/benchmarks"


def quality(words: list[str], vectors: np.ndarray) -> dict:
    model = Embeddings(words, vectors)
    result = {"analogy": evaluate_word_analogies(model, BENCHMARKS / "questions-words.txt", 30000,
                                                 ("3cosadd",))["3cosadd"]["accuracy"]}
    for name, file in (("wordsim353", "wordsim353.tsv"), ("simlex999", "simlex999.txt")):
        result[name] = evaluate_word_pairs(model, BENCHMARKS / file)["spearman"]
    return result


def train_once(pairs_dir: Path, counts: np.ndarray, params: TrainParams, trainer: str) -> tuple[float, np.ndarray]:
    from w2v.shards import PairManifest

    manifest = PairManifest.read(pairs_dir)
    schedule = Schedule(params.learning_rate, params.min_alpha, manifest.total_pairs)
    tree = huffman_tree(counts) if params.hs else None
    matrices = init_matrices(len(counts), params.dim, np.random.default_rng(params.seed),
                             output_names(params.hs, params.negative))
    model = trainer_class(trainer).from_params(params, "cpu", matrices,
                                               alias_table(noise_distribution(counts, params.ns_exponent)),
                                               schedule, tree=tree)
    progress = train(model, manifest, pairs_dir, params, Progress(), lambda t, p: None, show_progress=False)
    return progress.train_seconds, model.matrices()[INPUT]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--models", default="skipgram,cbow")
    parser.add_argument("--trainers", default="numba")
    parser.add_argument("--orders", default="shuffled,text")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="a train param, e.g. --set hs=true (repeatable)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    overrides = {key: yaml.safe_load(value) for key, value in (o.split("=", 1) for o in args.overrides)}
    project = yaml.safe_load((ROOT / "params.yaml").read_text())
    vocab = read_vocab(ROOT / "data/vocab/vocab.parquet", ["word", "count"])
    words, counts = vocab.column("word").to_pylist(), vocab.column("count").to_numpy()
    orders = args.orders.split(",")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    print(f"{len(counts):,} words; seeds {seeds.start}..{seeds.stop - 1}; {args.threads} threads; orders {orders}")
    results: dict[tuple, list[dict]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for seed in seeds:
            pairs_dirs = {}
            for order in orders:
                pairs_params = PairsParams(**{**project["pairs"], "seed": seed, "order": order})
                out = Path(scratch) / f"{order}-{seed}"
                out.mkdir()
                build_pairs(ROOT / "data/vocab/corpus_ids.arrow", counts, pairs_params, out).write(out)
                pairs_dirs[order] = out
            for model in args.models.split(","):
                for trainer in args.trainers.split(","):
                    for order in orders if seed % 2 else orders[::-1]:  # alternate who goes first
                        params = TrainParams(**{**project["train"], "model": model, "seed": seed, "device": "cpu",
                                                "threads": args.threads, **overrides})
                        seconds, vectors = train_once(pairs_dirs[order], counts, params, trainer)
                        run = {"seconds": seconds, **quality(words, vectors)}
                        results.setdefault((model, trainer, order), []).append(run)
                        print(json.dumps({"model": model, "trainer": trainer, "order": order, "seed": seed,
                                          **{k: round(v, 4) for k, v in run.items()}}), flush=True)
            for out in pairs_dirs.values():
                shutil.rmtree(out)
    print(f"\n{'model':9} {'trainer':7} {'order':9} {'train s':>8} {'analogy':>22} {'WS-353':>22} {'SimLex':>22}")
    for (model, trainer, order), runs in results.items():
        cells = []
        for key in ("analogy", "wordsim353", "simlex999"):
            values = [r[key] for r in runs]
            cells.append(f"{statistics.mean(values):.4f} [{min(values):.4f}-{max(values):.4f}]")
        print(f"{model:9} {trainer:7} {order:9} {statistics.median(r['seconds'] for r in runs):8.2f} "
              + " ".join(f"{c:>22}" for c in cells))
    if len(orders) == 2:
        for model in args.models.split(","):
            for trainer in args.trainers.split(","):
                a, b = (results[model, trainer, o] for o in orders)
                ratios = sorted(x["seconds"] / y["seconds"] for x, y in zip(a, b))
                print(f"{model} {trainer}: speed {orders[1]} ÷ {orders[0]} per seed: "
                      + ", ".join(f"{r:.2f}x" for r in ratios))


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"({time.perf_counter() - started:.0f} s)")
