"""The CPU kernel's variants side by side in one process, and where the deterministic lanes' time goes.

    python bench/lanes_bench.py [--project DIR] [--rounds 7] [--set KEY=VALUE ...] [--phases] VARIANT [VARIANT ...]

    python bench/lanes_bench.py deterministic=true deterministic=false             # the lanes against Hogwild
    python bench/lanes_bench.py --set model=cbow sync_every=65536 sync_every=131072
    python bench/lanes_bench.py --phases --rounds 2 deterministic=true deterministic=false

On a project's pair shards (default: this workspace's; ``dvc repro pairs`` first), trains with the library's loop
in-process (:func:`w2v.training.train`) once per variant per round, the variants alternating so that a busy
minute hits all of them; a first round warms the kernels up and is not counted. A VARIANT is train params,
comma-separated (``model=cbow,deterministic=false``), over the project's params and ``--set``. Prints each
variant's median training seconds and every round's, and the per-round ratio to the first variant.

``--phases`` times the parts of every kernel call (a copy of ``train_chunk_lanes`` made of its compiled parts):
drawing the noise words (and, deterministic, marking the rows each lane touches), finding the rows several lanes
share, copying them and training, merging; and counts the shared rows per call.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT), str(ROOT / "bench")]

from order_bench import train_once  # noqa: E402

import w2v.cpu_trainer as kernel  # noqa: E402
from w2v.arrow_io import numeric_column, read_vocab  # noqa: E402
from w2v.params import TrainParams  # noqa: E402

PHASES: collections.Counter = collections.Counter()


def timed_chunk(windows, split, settings, syn0, syn1, syn1neg, scratch):
    """train_chunk_lanes, phase by phase (the same compiled parts in the same order: the same bytes)."""
    t0 = time.perf_counter()
    kernel.draw_lanes(windows, split, settings, syn0, syn1, syn1neg, scratch)
    t1 = time.perf_counter()
    shared = np.zeros(3, dtype=np.int64)
    if settings.merge:
        for k, rows in enumerate((syn0, syn1, syn1neg)):
            if len(rows.slot):
                shared[k] = kernel.find_shared_rows(rows.touch, rows.slot, rows.words)
    t2 = time.perf_counter()
    losses = kernel.train_lanes(windows, split, settings, syn0, syn1, syn1neg, scratch, shared)
    t3 = time.perf_counter()
    if settings.merge:
        for k, rows in enumerate((syn0, syn1, syn1neg)):
            if len(rows.slot):
                kernel.merge_lanes(rows, settings.vocab, shared[k])
    t4 = time.perf_counter()
    PHASES.update({"draw and mark": t1 - t0, "find shared": t2 - t1, "copy and train": t3 - t2, "merge": t4 - t3,
                   "calls": 1, "shared syn0": int(shared[0]), "shared syn1neg": int(shared[2])})
    return losses


def parse(pairs: list[str]) -> dict:
    return {key: yaml.safe_load(value) for key, value in (p.split("=", 1) for p in pairs if p)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="+", help="train params of a variant, comma-separated")
    parser.add_argument("--project", type=Path, default=ROOT)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--phases", action="store_true", help="time the parts of every kernel call")
    args = parser.parse_args()
    if args.phases:
        kernel.train_chunk_lanes = timed_chunk
        kernel.CpuTrainer.prepare = lambda self, shard: None  # the parts compile on their first call instead
    project = yaml.safe_load((args.project / "params.yaml").read_text())
    counts = numeric_column(read_vocab(args.project / "data/vocab/vocab.parquet", ["count"]), "count")
    variants = [{**project["train"], **parse(args.overrides), **parse(v.split(","))} for v in args.variants]
    seconds: list[list[float]] = [[] for _ in variants]
    phases: list[collections.Counter] = [collections.Counter() for _ in variants]
    for round_ in range(args.rounds + 1):
        for k, variant in enumerate(variants):
            PHASES.clear()
            taken, _ = train_once(args.project / "data/pairs", counts, TrainParams.from_mapping("train", variant),
                                  "numba")
            if round_:  # the first round loads (or compiles) the kernels
                seconds[k].append(taken)
                phases[k].update(PHASES)
    print(f"{len(counts):,} words; {args.rounds} rounds after a warm-up; training seconds")
    for name, times, parts in zip(args.variants, seconds, phases):
        ratios = [t / first for t, first in zip(times, seconds[0])]
        print(f"{name:40} median {statistics.median(times):7.3f} s  per round "
              f"{' '.join(f'{t:.2f}' for t in times)}  vs the first: median {statistics.median(ratios):.2f}x")
        if parts:
            calls = parts.pop("calls")
            shared = {key: parts.pop(key) / calls for key in ("shared syn0", "shared syn1neg")}
            print("    " + ", ".join(f"{key} {value / args.rounds:.3f} s" for key, value in parts.items())
                  + f"; per call {shared['shared syn0']:,.0f} + {shared['shared syn1neg']:,.0f} shared rows")


if __name__ == "__main__":
    main()
