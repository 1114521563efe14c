"""Pair materialisation throughput: pairs/s written to disk, and peak RSS.

    python bench/pairs_bench.py [--copies 10] [--epochs 2] [--workers 0]

Needs the vocab stage's output (`dvc repro vocab`). Builds an id file of ``--copies`` repetitions of the
encoded corpus (10 copies of the sample = 11M tokens), then, in a child process so its peak memory can be
read, runs the pairs stage's ``build_pairs`` with window 5, sample 1e-3. The reference, measured in the same
run, is the textbook Python loop (subsample, draw a window, emit pairs per center) on a 200k-token slice.
Goal: >= 10M pairs/s on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from child import ROOT, run_child

sys.path.insert(0, str(ROOT))

from w2v.arrow_io import iter_id_batches, write_id_file  # noqa: E402
from w2v.frequencies import keep_probabilities  # noqa: E402

OURS = """
import json, sys, time
from pathlib import Path
import pyarrow.parquet as pq
from w2v.params import PairsParams
from w2v.pairs import build_pairs, pair_stats
counts = pq.read_table("data/vocab/vocab.parquet", columns=["count"]).column("count").to_numpy()
params = PairsParams(epochs=int(sys.argv[3]), workers=int(sys.argv[4]))
start = time.perf_counter()
manifest = build_pairs(Path(sys.argv[1]), counts, params, Path(sys.argv[2]))
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, **pair_stats(manifest)}))
"""


def python_reference(ids: np.ndarray, keep_prob: np.ndarray, window: int, seed: int) -> tuple[int, float]:
    """The per-token loop a tutorial writes; returns (pairs, seconds)."""
    import random

    rnd = random.Random(seed)
    start = time.perf_counter()
    kept = [int(w) for w in ids if rnd.random() < keep_prob[w]]
    pairs = []
    for i, center in enumerate(kept):
        b = rnd.randint(1, window)
        for j in range(max(0, i - b), min(len(kept), i + b + 1)):
            if j != i:
                pairs.append((center, kept[j]))
    array = np.array(pairs, dtype=np.int32)
    return len(array), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=10, help="repetitions of the encoded sample (default 10)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs to build (default 2)")
    parser.add_argument("--workers", type=int, default=0, help="parallel epochs (default 0 = all cores)")
    args = parser.parse_args()
    ids_path = ROOT / "data/vocab/corpus_ids.arrow"
    if not ids_path.is_file():
        sys.exit("run `dvc repro vocab` first")

    batches = [pa.ListArray.from_arrays(offsets, ids) for offsets, ids in iter_id_batches(ids_path)]
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "ids.arrow"
        _, tokens = write_id_file(big, (b for _ in range(args.copies) for b in batches))
        out = Path(tmp) / "pairs"
        out.mkdir()
        ours, memory = run_child(OURS, str(big), str(out), str(args.epochs), str(args.workers))

    counts = pq.read_table(ROOT / "data/vocab/vocab.parquet", columns=["count"]).column("count").to_numpy()
    first = next(iter_id_batches(ids_path))[1][:200_000]
    ref_pairs, ref_seconds = python_reference(first, keep_probabilities(counts, 1e-3), 5, 1)

    ours_rate = ours["pairs"] / ours["seconds"]
    ref_rate = ref_pairs / ref_seconds
    print(f"corpus: {tokens:,} tokens ({args.copies} copies of the encoded sample), {args.epochs} epochs, "
          f"window 5, sample 1e-3")
    print(f"reference Python loop : {ref_rate / 1e6:7.2f} M pairs/s ({ref_pairs:,} pairs from 200,000 tokens)")
    print(f"pairs stage (ours)    : {ours_rate / 1e6:7.2f} M pairs/s ({ours['pairs']:,} pairs in "
          f"{ours['seconds']:.2f} s, {ours['shards']} shards, {ours['bytes'] / 1e6:,.0f} MB on disk)")
    print(f"ratio ours/reference  : {ours_rate / ref_rate:.0f}x   goal >= 10M pairs/s: "
          f"{'met' if ours_rate >= 10e6 else 'NOT met'}")
    print(f"disk                  : {ours['bytes_per_million_pairs'] / 1e6:.3f} MB per million pairs")
    print(f"memory                : {memory}")


if __name__ == "__main__":
    main()
