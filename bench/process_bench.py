"""Several CPU training processes against one: speed, merge cost and quality, side by side in one run.

    python bench/process_bench.py [--project DIR] [--layouts 1x2,2x1,4x1] [--rounds 3] [--set KEY=VALUE ...]
                                  [--sync-every N,N,...]

Runs the train stage (``python -m stages.train``, as DVC does) on a project's pair shards (default: this
workspace's; ``--project`` takes another, e.g. one kept by ``bench/scale_bench.py --keep DIR``) once per layout
``PxT`` (P processes under torchrun, T lanes each: ``train.processes``, ``train.threads``), the layouts
alternating in every round with the seed of the round (``train.seed``). Reports per layout the median training
seconds, words/s and its ratio to the first layout, and from the run record the merges of the processes:
how many, their seconds (waiting included), rows and bytes per merge; with the project's benchmarks, quality
(analogy, WordSim-353) as the mean over the rounds. ``--sync-every`` repeats the multi-process layouts for each
``train.process_sync_every``. The cores are shared: 4 processes on 2 cores measure the bookkeeping, not a speed-up.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from child import ROOT, train_project

sys.path[:0] = [str(ROOT / "src"), str(ROOT)]


def quality(model_dir: Path) -> dict:
    from w2v.embeddings import Embeddings
    from w2v.evaluation import evaluate_word_analogies, evaluate_word_pairs

    benchmarks = ROOT / "data/benchmarks"
    model = Embeddings.load(model_dir)
    return {"analogy": evaluate_word_analogies(model, benchmarks / "questions-words.txt", 30000,
                                               ("3cosadd",))["3cosadd"]["accuracy"],
            "wordsim353": evaluate_word_pairs(model, benchmarks / "wordsim353.tsv")["spearman"]}


def run_layout(project: Path, processes: int, threads: int, seed: int, overrides: dict, evaluate: bool) -> dict:
    params = yaml.safe_load((project / "params.yaml").read_text()) if (project / "params.yaml").exists() \
        else yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"].update(processes=processes, threads=threads, seed=seed, device="cpu", **overrides)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        train_project(scratch, project, params)
        env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}"}
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "stages.train"], cwd=scratch, env=env, check=True,
                       stderr=subprocess.DEVNULL)
        record = json.loads((scratch / "runs/train.json").read_text())
        record["process_seconds"] = time.perf_counter() - started
        if evaluate:
            record.update(quality(scratch / "data/model"))
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, default=ROOT)
    parser.add_argument("--layouts", default="1x2,2x1,4x1")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sync-every", default="", help="train.process_sync_every values to try (comma-separated)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    overrides = {key: yaml.safe_load(value) for key, value in (o.split("=", 1) for o in args.overrides)}
    evaluate = args.project.resolve() == ROOT  # the benchmarks mean something on the real-text sample only
    layouts = []
    for layout in args.layouts.split(","):
        processes, threads = (int(x) for x in layout.split("x"))
        intervals = [int(x) for x in args.sync_every.split(",")] if args.sync_every and processes > 1 else [None]
        layouts += [(processes, threads, interval) for interval in intervals]
    results: dict[tuple, list[dict]] = {layout: [] for layout in layouts}
    for seed in range(1, args.rounds + 1):
        for processes, threads, interval in layouts:
            extra = {**overrides, **({"process_sync_every": interval} if interval else {})}
            record = run_layout(args.project.resolve(), processes, threads, seed, extra, evaluate)
            results[processes, threads, interval].append(record)
            merges = record.get("processes", {})
            print(json.dumps({"layout": f"{processes}x{threads}", "sync_every": interval, "seed": seed,
                              "train_seconds": record["train_seconds"], **merges,
                              **{k: round(record[k], 4) for k in ("analogy", "wordsim353") if k in record}}),
                  flush=True)
    first = None
    print(f"\n{'layout':8} {'interval':>10} {'train s':>8} {'words/s':>9} {'ratio':>6} {'merges':>7} {'merge s':>8} "
          f"{'rows/merge':>11} {'MB/merge':>9} {'analogy':>8} {'WS-353':>7}")
    for (processes, threads, interval), runs in results.items():
        median = sorted(runs, key=lambda r: r["train_seconds"])[len(runs) // 2]
        first = first or median
        merges = median.get("processes", {})
        mean = {k: statistics.mean(r[k] for r in runs) for k in ("analogy", "wordsim353") if k in runs[0]}
        print(f"{processes}x{threads:<6} {interval or '':>10} {median['train_seconds']:8.2f} "
              f"{median['words_per_second'] / 1e6:8.3f}M "
              f"{median['words_per_second'] / first['words_per_second']:5.2f}x "
              f"{merges.get('merges', 0):7} {merges.get('merge_seconds', 0):8.2f} "
              f"{merges.get('rows_merged_per_merge', 0):11,} {merges.get('bytes_per_merge', 0) / 1e6:9.2f} "
              + " ".join(f"{mean[k]:8.4f}" for k in mean))


if __name__ == "__main__":
    main()
