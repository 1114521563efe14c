"""The whole pipeline on a large Zipf corpus, stage by stage, with gensim's training beside ours.

    python bench/scale_bench.py [--tokens 30000000] [--corpus PATH | --sample-times N] [--epochs 1] [--threads 2]
                                [--device cpu|cuda] [--set train|pairs.KEY=VALUE ...] [--keep DIR] [--skip-gensim]

Makes the corpus with bench/zipf_corpus.py (its defaults: 30M tokens, about 360k words kept at min_count 5; the
same arguments give the same bytes) unless ``--corpus`` names one (or ``--sample-times N``: the embedded sample,
1.17M words, N times over), then runs download → train in a scratch project as DVC would (``python -m
stages.NAME``, default params but ``download.source: file``, ``pairs.epochs`` and ``train.threads``; ``--device``
and ``--set`` for the train and pairs sections, e.g. ``--set pairs.order=text``, a GPU with ``--device cuda --set
train.batch_size=65536``, or ``--set train.processes=2``). Prints per stage: wall time, throughput (corpus tokens
per second), peak RSS of its largest process (the stage or one of its workers) and the disk its outputs take. Then
gensim (``corpus_file`` mode, its fastest; same window, negative, sample, min_count, dim, epochs and threads) on
the same file: vocabulary and training timed apart, peak RSS. Training speed is compared as the issue states it:
raw corpus tokens × epochs ÷ training seconds, for both. Ends with a projection to 1B and 10B words, labelled as
one. The evaluate stage is left out: at this scale it measures the benchmarks, not the pipeline.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("download", "tokenize", "phrases", "vocab", "pairs", "train")
OUTPUTS = {"download": "data/raw", "tokenize": "data/tokens", "phrases": "data/phrases", "vocab": "data/vocab",
           "pairs": "data/pairs", "train": "data/model"}

GENSIM = """
import json, resource, sys, time
from gensim.models import Word2Vec
corpus, epochs, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sg, cbow_mean, hs, negative = (int(x) for x in sys.argv[4:8])
model = Word2Vec(sg=sg, cbow_mean=cbow_mean, hs=hs, negative=negative, vector_size=100, window=5, sample=1e-3,
                 min_count=5, workers=threads, seed=1)
start = time.perf_counter()
model.build_vocab(corpus_file=corpus)
vocab_seconds = time.perf_counter() - start
start = time.perf_counter()
model.train(corpus_file=corpus, total_words=model.corpus_total_words, total_examples=model.corpus_count,
            epochs=epochs)
print(json.dumps({"vocab_seconds": vocab_seconds, "train_seconds": time.perf_counter() - start,
                  "words": model.corpus_total_words, "vocab_size": len(model.wv)}))
"""


def run_measured(command: list[str], cwd: Path, env: dict | None = None) -> tuple[float, float, str]:
    """Run ``command``; return (wall seconds, peak RSS in MiB of its largest process, stdout).

    ``wait4`` reports the child's own peak or that of a descendant it reaped (its worker processes), whichever is
    larger."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        child = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        child.returncode = code = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        out.seek(0)
        err.seek(0)
        if code != 0:
            sys.exit(f"{' '.join(command)} failed ({code}):\n{err.read()[-3000:]}")
        return seconds, usage.ru_maxrss / 1024, out.read()


def disk_bytes(path: Path) -> int:
    """Bytes allocated on disk under ``path`` (as du counts them)."""
    return sum(p.stat().st_blocks * 512 for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def make_corpus(tokens: int, directory: Path) -> Path:
    corpus = directory / f"zipf-{tokens}.txt"
    if not corpus.exists():
        print(f"making a {tokens:,}-token Zipf corpus (bench/zipf_corpus.py) ...", flush=True)
        subprocess.run([sys.executable, str(ROOT / "bench/zipf_corpus.py"), str(corpus), "--tokens", str(tokens)],
                       check=True)
    return corpus


def sample_times(times: int, directory: Path) -> Path:
    """The embedded sample corpus, ``times`` times over (one file)."""
    import gzip

    text = gzip.decompress((ROOT / "data/sample/text8-head.txt.gz").read_bytes())
    corpus = directory / f"sample-x{times}.txt"
    with open(corpus, "wb") as out:
        for _ in range(times):
            out.write(text.rstrip(b"\n") + b"\n")
    return corpus


def section_overrides(settings: list[str], section: str) -> dict:
    """The ``SECTION.KEY=VALUE`` settings (train or pairs) of one section as a dict of YAML-typed values."""
    overrides = {}
    for setting in settings:
        key, _, value = setting.partition("=")
        prefix, _, name = key.partition(".")
        if prefix not in ("train", "pairs") or not name or not _:
            raise SystemExit(f"--set {setting!r}: expected train.KEY=VALUE or pairs.KEY=VALUE")
        if prefix == section:
            overrides[name] = yaml.safe_load(value)
    return overrides


def run_pipeline(corpus: Path, project: Path, epochs: int, threads: int, quiet: bool = False,
                 min_count: int | None = None, device: str = "cpu", train: dict | None = None,
                 pairs: dict | None = None) -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["download"].update(source="file", path=str(corpus))
    if min_count is not None:
        params["vocab"]["min_count"] = min_count
    params["pairs"].update(epochs=epochs, **(pairs or {}))
    params["train"].update(threads=threads, device=device, **(train or {}))
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    results = {}
    for stage in STAGES:
        if not quiet:
            print(f"  {stage} ...", end=" ", flush=True)
        seconds, rss, _ = run_measured([sys.executable, "-m", f"stages.{stage}"], project, env)
        results[stage] = {"seconds": seconds, "rss_mib": rss, "disk": disk_bytes(project / OUTPUTS[stage])}
        if not quiet:
            print(f"{seconds:.1f} s", flush=True)
    results["tokens"] = json.loads((project / "metrics/tokenize.json").read_text())["tokens"]
    results["vocab_size"] = json.loads((project / "data/model/metadata.json").read_text())["vocab_size"]
    results["run"] = json.loads((project / "runs/train.json").read_text())
    manifest = json.loads((project / "data/pairs/manifest.json").read_text())
    results["total_pairs"] = sum(epoch["pairs"] for epoch in manifest["epochs"])
    return results


def warm_up(corpus: Path, scratch: Path, threads: int) -> None:
    """Run the pipeline once on the corpus's first lines, so numba's compile cache is filled before timing (a
    one-time cost per installation and CPU, about 20 s per kernel). min_count 1 gives more than 65,536 words, so
    the trainer is compiled for 32-bit ids, as a large vocabulary needs."""
    head = scratch / "head.txt"
    with open(corpus, "rb") as source, open(head, "wb") as out:
        for _, line in zip(range(20_000), source):
            out.write(line)
    (scratch / "warm-up").mkdir()
    print("warming up (compiling kernels on the corpus's first 20,000 lines) ...", flush=True)
    run_pipeline(head, scratch / "warm-up", 1, threads, quiet=True, min_count=1)


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=30_000_000, help="corpus size to generate (default 30M)")
    parser.add_argument("--corpus", type=Path, help="use this corpus file instead of generating one")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2, help="training threads, ours and gensim's (default 2)")
    parser.add_argument("--keep", type=Path, help="run in (and keep) this project directory")
    parser.add_argument("--sample-times", type=int, metavar="N", help="the embedded sample N times over as corpus")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="train.device (default cpu)")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="another train or pairs param, e.g. pairs.order=text (repeatable)")
    parser.add_argument("--skip-gensim", action="store_true")
    args = parser.parse_args()
    train, pairs = section_overrides(args.settings, "train"), section_overrides(args.settings, "pairs")

    with tempfile.TemporaryDirectory(prefix="scale-bench-") as scratch:
        scratch = Path(scratch)
        corpus = args.corpus or (sample_times(args.sample_times, scratch) if args.sample_times
                                 else make_corpus(args.tokens, scratch))
        project = args.keep or scratch / "project"
        project.mkdir(parents=True, exist_ok=True)
        warm_up(corpus, scratch, args.threads)
        print(f"pipeline on {corpus} ({corpus.stat().st_size / 1e6:,.0f} MB), {args.epochs} epoch(s), "
              f"{args.threads} threads, {os.cpu_count()} cores, train on {args.device} {train or ''} {pairs or ''}",
              flush=True)
        ours = run_pipeline(corpus, project, args.epochs, args.threads, device=args.device, train=train, pairs=pairs)
        gensim = None
        if not args.skip_gensim:
            print("  gensim ...", end=" ", flush=True)
            # --set train.model=cbow / train.hs=true / train.negative=0: gensim's same objective beside ours
            settings = (0 if train.get("model") == "cbow" else 1, int(train.get("cbow_mean", True)),
                        int(train.get("hs", False)), train.get("negative", 5))
            seconds, rss, out = run_measured([sys.executable, "-c", GENSIM, str(corpus), str(args.epochs),
                                              str(args.threads), *map(str, settings)], ROOT)
            gensim = {**json.loads(out.splitlines()[-1]), "seconds": seconds, "rss_mib": rss}
            print(f"{seconds:.1f} s", flush=True)

    tokens, epochs = ours["tokens"], args.epochs
    print(f"\n{tokens:,} corpus tokens, {ours['vocab_size']:,} words kept, {ours['total_pairs']:,} pairs "
          f"({ours['pairs']['disk'] / ours['total_pairs']:.2f} bytes per pair on disk)\n")
    print("| stage | wall | throughput | peak RSS (largest process) | disk of outputs |")
    print("|---|---|---|---|---|")
    for stage in STAGES:
        r = ours[stage]
        passes = epochs if stage in ("pairs", "train") else 1
        print(f"| {stage} | {r['seconds']:.1f} s | {tokens * passes / r['seconds'] / 1e6:.2f}M tokens/s | "
              f"{r['rss_mib']:,.0f} MiB | {gib(r['disk'])} |")
    total = sum(ours[s]["seconds"] for s in STAGES)
    print(f"| all | {total:.1f} s | {tokens / total / 1e6:.2f}M tokens/s | | "
          f"{gib(sum(ours[s]['disk'] for s in STAGES))} |")
    train_seconds = ours["run"]["train_seconds"]
    ours_wps = tokens * epochs / train_seconds
    print(f"\ntraining (ours): {train_seconds:.1f} s of training, {ours_wps / 1e3:,.0f}k raw words/s, "
          f"{ours['run']['pairs_per_second'] / 1e6:.2f}M pairs/s on {ours['run']['host'].get('gpu', 'the CPU')}")
    if "processes" in ours["run"]:
        p = ours["run"]["processes"]
        print(f"processes: {p['world']} ({p['backend']}), {p['merges']} merges, {p['merge_seconds']:.1f} s merging "
              f"({100 * p['merge_seconds'] / train_seconds:.0f}% of training), {p['rows_merged_per_merge']:,} rows "
              f"per merge")
    if gensim:
        gensim_wps = gensim["words"] * epochs / gensim["train_seconds"]
        print(f"training (gensim): {gensim['train_seconds']:.1f} s of training, {gensim_wps / 1e3:,.0f}k raw "
              f"words/s; build_vocab {gensim['vocab_seconds']:.1f} s; {gensim['vocab_size']:,} words; "
              f"peak RSS {gensim['rss_mib']:,.0f} MiB; whole run {gensim['seconds']:.1f} s")
        print(f"ratio ours/gensim, training: {ours_wps / gensim_wps:.2f}x; whole pipeline vs gensim's whole run: "
              f"{gensim['seconds'] / total:.2f}x")

    print("\nprojection (not a measurement): stage times scaled linearly in tokens from this run (pairs and train "
          "per epoch); 16 cores: 2-core times x 2/16, as every stage runs on all cores (a best case: memory "
          "bandwidth and a larger vocabulary slow training); disk: window shards at this run's bytes per token and "
          "epoch, 5 epochs")
    shard_bytes_per_token = ours["pairs"]["disk"] / tokens / epochs
    for target in (1e9, 1e10):
        scale = target / tokens
        hours = {s: ours[s]["seconds"] * scale * (5 if s in ("pairs", "train") else 1) / epochs / 3600
                 for s in STAGES}
        print(f"  {target / 1e9:.0f}B words, 5 epochs: {sum(hours.values()):.1f} h on 2 cores, about "
              f"{sum(hours.values()) * 2 / 16:.1f} h on 16; pair shards {gib(shard_bytes_per_token * target * 5)}, "
              f"tokens {gib(ours['tokenize']['disk'] * scale)}")


if __name__ == "__main__":
    main()
