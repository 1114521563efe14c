"""The torch trainer (the CUDA path) alone, in this process, on the workspace's pair shards: speed and quality for
a sweep of step sizes, beside the CPU kernel's quality measured in the same run.

    python bench/torch_bench.py [--device cuda] [--batch-sizes 16384,65536,262144] [--per-pair] [--no-reference]

Needs `dvc repro pairs` (the default params: the embedded sample, 5 epochs). For each ``train.batch_size`` it
trains every shard with :class:`w2v.torch_trainer.TorchTrainer` (deterministic mode), timing from the first
chunk to a device sync after the last (the shards' reading included, compile time none: torch's kernels are
built already), then scores the vectors with our evaluators (analogy 3CosAdd with restrict_vocab 30000,
WordSim-353, SimLex-999). The reference row is the CPU kernel (:mod:`w2v.cpu_trainer`, deterministic, 2
lanes) on the same shards, so that the issue's quality goal (within 0.01 analogy and 0.02 WordSim-353 of the
CPU trainer) is read off one run. words/s = raw corpus words × epochs / training seconds, as everywhere.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from w2v.embeddings import Embeddings
from w2v.matrices import init_matrices, output_names
from w2v.params import load_params
from w2v.report import benchmark_metrics
from w2v.sgns import Schedule, alias_table, noise_distribution
from w2v.shards import PairManifest, read_window_shard
from w2v.training import Chunk, chunk_ends, chunk_seeds

ROOT = Path(__file__).resolve().parent.parent

BENCHMARKS = ROOT / "data/benchmarks"


def train_all(trainer, manifest: PairManifest, pairs_dir: Path, seed: int, sync=lambda: None) -> float:
    """Every chunk of every shard in order, as the train stage cuts them; returns training seconds."""
    done = 0
    started = time.perf_counter()
    for index, (epoch, info) in enumerate(manifest.shards_in_order()):
        shard = read_window_shard(pairs_dir / info.file, expect=info)
        trainer.prepare(shard)
        counts = shard.pair_counts()
        cumulative = np.concatenate([[0], np.cumsum(counts)])
        start = 0
        for end in chunk_ends(counts, trainer.chunk_size):
            pairs = int(cumulative[end] - cumulative[start])
            chunk = Chunk(epoch, index, start, int(end), pairs, done, False)
            trainer.train_chunk(shard, start, int(end), done, chunk_seeds(seed, chunk, trainer.lanes))
            done += pairs
            start = int(end)
    sync()
    return time.perf_counter() - started


def scores(words: list[str], syn0: np.ndarray) -> dict:
    emb = Embeddings(words, syn0)
    metrics, _ = benchmark_metrics(emb, {"wordsim353": BENCHMARKS / "wordsim353.tsv",
                                         "simlex999": BENCHMARKS / "simlex999.txt"},
                                   {"analogy": BENCHMARKS / "questions-words.txt"}, 30000)
    return {"analogy": metrics["analogy"]["3cosadd"]["accuracy"], "wordsim353": metrics["wordsim353"]["spearman"],
            "simlex999": metrics["simlex999"]["spearman"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="torch device (default cuda)")
    parser.add_argument("--batch-sizes", default="16384,65536,262144", help="train.batch_size values, comma-separated")
    parser.add_argument("--per-pair", action="store_true", help="train.shared_negatives: false")
    parser.add_argument("--no-reference", action="store_true", help="skip the CPU kernel's row")
    args = parser.parse_args()

    import torch

    from w2v.torch_trainer import TorchTrainer

    params = load_params(ROOT / "params.yaml")["train"]
    pairs_dir = ROOT / "data/pairs"
    manifest = PairManifest.read(pairs_dir)
    vocab = pq.read_table(ROOT / "data/vocab/vocab.parquet", columns=["word", "count"])
    words, counts = vocab.column("word").to_pylist(), vocab.column("count").to_numpy()
    noise = alias_table(noise_distribution(counts, params.ns_exponent))
    schedule = Schedule(params.learning_rate, params.min_alpha, manifest.total_pairs)
    word_epochs = manifest.total_words

    def fresh():
        return init_matrices(len(counts), params.dim, np.random.default_rng(params.seed), output_names(params.negative))

    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (torch)"
    print(f"{manifest.total_pairs:,} pairs, {word_epochs:,} words x epochs, {len(counts):,} words, dim {params.dim}, "
          f"on {name}", flush=True)
    print(f"{'trainer':<34} {'seconds':>8} {'M words/s':>10} {'M pairs/s':>10} {'analogy':>8} {'WS-353':>7} "
          f"{'SimLex':>7}")
    rows = []
    if not args.no_reference:
        from w2v.cpu_trainer import CpuTrainer

        trainer = CpuTrainer(fresh(), noise, params.negative, schedule, 2, True, not args.per_pair,
                             chunk_pairs=params.merge_pairs)
        trainer.prepare(read_window_shard(pairs_dir / manifest.shards_in_order()[0][1].file))
        rows.append(("CPU kernel, 2 lanes", train_all(trainer, manifest, pairs_dir, params.seed),
                     trainer.matrices()["syn0"]))
        print_row(*rows[-1], word_epochs, manifest.total_pairs, words)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for batch_size in (int(b) for b in args.batch_sizes.split(",")):
        trainer = TorchTrainer(fresh(), noise, params.negative, schedule, args.device, batch_size, True,
                               not args.per_pair)
        seconds = train_all(trainer, manifest, pairs_dir, params.seed, sync)
        rows.append((f"torch, batch_size {batch_size}", seconds, trainer.matrices()["syn0"]))
        print_row(*rows[-1], word_epochs, manifest.total_pairs, words)
        del trainer


def print_row(label: str, seconds: float, syn0: np.ndarray, words_epochs: int, pairs: int, words: list[str]) -> None:
    s = scores(words, syn0)
    print(f"{label:<34} {seconds:8.2f} {words_epochs / seconds / 1e6:10.3f} {pairs / seconds / 1e6:10.3f} "
          f"{s['analogy']:8.4f} {s['wordsim353']:7.4f} {s['simlex999']:7.4f}", flush=True)


if __name__ == "__main__":
    main()
