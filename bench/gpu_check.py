"""One command for a GPU machine: the CUDA tests, then speed, quality and determinism of the torch trainer on the
sample and on a 30M-token Zipf corpus, written to ``bench/results/gpu-<device>.json``.

    python bench/gpu_check.py [--device cuda|cpu] [--batch-sizes 4096,16384,65536] [--zipf-tokens 30000000]
                              [--sample-words N] [--epochs 5] [--out bench/results]

Made for a machine that is lent for minutes and has no package registry, no dvc, gensim or datasets: it drives
the stage modules directly (``python -m stages.NAME`` in scratch project directories, as ``dvc repro`` would run
them), makes its corpora on the spot (the embedded sample, and ``bench/zipf_corpus.py``), trains in this process
with :func:`bench.torch_bench.train_all` and scores with our own evaluators (analogy 3CosAdd restricted to 30,000
words, WordSim-353, SimLex-999). Needs only what the repository's own code imports: torch, numba, pyarrow, numpy,
pyyaml, tqdm (and pytest for the tests). The JSON holds a list of runs, each with ``device_name`` as torch reports
it, ``words_per_second`` (raw corpus words × epochs ÷ training seconds), its settings, its quality and, for the
deterministic runs made twice, whether the two gave the same bytes; and the versions that differ from
``constraints.txt`` (e.g. the machine's torch). Steps (about 5 minutes on an H200 with 16 cores):

1. ``pytest tests/test_train.py -k cuda`` (on CUDA: the trainer learns, and gives the same bytes twice);
2. the sample (5 epochs): the CPU kernel as the reference row, then the torch trainer at each ``--batch-sizes``
   in deterministic mode (the middle size twice, for the same-bytes check) and once not deterministic;
3. the Zipf corpus (1 epoch, 361k words at 30M tokens): the torch trainer at the middle batch size,
   deterministic and not, with its peak device memory.

``--device cpu --sample-words 30000 --zipf-tokens 20000`` runs every step in a minute on a laptop: the test
suite does that, so the script is known to work before a GPU is at hand.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT), str(ROOT / "bench")]  # the repository need not be installed

from torch_bench import scores, train_all  # noqa: E402

from w2v.fsio import atomic_file  # noqa: E402
from w2v.huffman import huffman_tree  # noqa: E402
from w2v.matrices import init_matrices, output_names  # noqa: E402
from w2v.params import load_params  # noqa: E402
from w2v.sgns import Schedule, alias_table, noise_distribution  # noqa: E402
from w2v.shards import PairManifest, read_window_shard  # noqa: E402

PREPARE = ("download", "tokenize", "phrases", "vocab", "pairs")


def stage_env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])}


def prepare(corpus: Path, project: Path, epochs: int) -> Path:
    """Run the stages up to pairs on ``corpus`` in ``project`` (default params otherwise); return the project."""
    project.mkdir(parents=True, exist_ok=True)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["download"].update(source="file", path=str(corpus))
    params["pairs"]["epochs"] = epochs
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for stage in PREPARE:
        done = subprocess.run([sys.executable, "-m", f"stages.{stage}"], cwd=project, env=stage_env(),
                              capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"stages.{stage} failed in {project} ({done.returncode}):\n{done.stderr[-3000:]}")
    return project


def sample_corpus(directory: Path, words: int | None) -> Path:
    """The embedded sample, or its first ``words`` words."""
    text = gzip.decompress((ROOT / "data/sample/text8-head.txt.gz").read_bytes())
    if words:
        text = b" ".join(text.split()[:words])
    corpus = directory / "sample.txt"
    corpus.write_bytes(text + b"\n")
    return corpus


def zipf_corpus(directory: Path, tokens: int) -> Path:
    corpus = directory / f"zipf-{tokens}.txt"
    subprocess.run([sys.executable, str(ROOT / "bench/zipf_corpus.py"), str(corpus), "--tokens", str(tokens)],
                   check=True, capture_output=True)
    return corpus


class Project:
    """A prepared project's inputs to training: vocabulary, pair shards and the train params."""

    def __init__(self, root: Path) -> None:
        import pyarrow.parquet as pq

        self.root = root
        self.params = load_params(root / "params.yaml")["train"]
        self.pairs = root / "data/pairs"
        self.manifest = PairManifest.read(self.pairs)
        vocab = pq.read_table(root / "data/vocab/vocab.parquet", columns=["word", "count"])
        self.words, self.counts = vocab.column("word").to_pylist(), vocab.column("count").to_numpy()

    def trainer(self, name: str, device: str, batch_size: int, deterministic: bool):
        """A fresh trainer of the default params (negative sampling; hierarchical softmax if params.yaml asks)."""
        p = self.params
        matrices = init_matrices(len(self.counts), p.dim, np.random.default_rng(p.seed), output_names(p.hs, p.negative))
        noise = alias_table(noise_distribution(self.counts, p.ns_exponent))
        tree = huffman_tree(self.counts) if p.hs else None
        schedule = Schedule(p.learning_rate, p.min_alpha, self.manifest.total_pairs)
        if name == "numba":
            from w2v.cpu_trainer import CpuTrainer

            return CpuTrainer(matrices, noise, p.negative, schedule, 2, True, p.shared_negatives, p.merge_pairs,
                              cbow=p.cbow_mode, tree=tree)
        from w2v.torch_trainer import TorchTrainer

        return TorchTrainer(matrices, noise, p.negative, schedule, device, batch_size, deterministic,
                            p.shared_negatives, cbow=p.cbow_mode, tree=tree)


def run(project: Project, corpus: str, name: str, device: str, batch_size: int = 0, deterministic: bool = True,
        quality: bool = True) -> dict:
    """Train once; return the run's record (speed, settings, quality, md5 of the input vectors)."""
    import torch

    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    if name == "torch":
        torch.use_deterministic_algorithms(deterministic)  # global: a deterministic run before set it on
    trainer = project.trainer(name, device, batch_size, deterministic)
    if name == "numba":  # compile (or load from numba's cache) before the clock starts
        trainer.prepare(read_window_shard(project.pairs / project.manifest.shards_in_order()[0][1].file))
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    seconds = train_all(trainer, project.manifest, project.pairs, project.params.seed, sync)
    syn0 = trainer.matrices()["syn0"]
    words = project.manifest.total_words
    record = {
        "corpus": corpus, "trainer": name,
        "device_name": torch.cuda.get_device_name(device) if cuda else (platform.processor() or "CPU"),
        "device": device if name == "torch" else "cpu",
        "settings": {"batch_size": batch_size if name == "torch" else None, "deterministic": deterministic,
                     "lanes": trainer.lanes, "epochs": len(project.manifest.epochs), "dim": project.params.dim,
                     "vocab_size": len(project.counts), "pairs": project.manifest.total_pairs},
        "seconds": round(seconds, 3), "words_per_second": round(words / seconds),
        "pairs_per_second": round(project.manifest.total_pairs / seconds),
        "vectors_md5": hashlib.md5(syn0.tobytes()).hexdigest(),
    }
    if cuda:
        record["peak_device_memory_mib"] = round(torch.cuda.max_memory_allocated() / 2**20)
    if quality:
        record["quality"] = {k: (round(v, 4) if v is not None else None)
                             for k, v in scores(project.words, syn0).items()}
    del trainer
    return record


def cuda_tests(device: str) -> dict:
    """The CUDA tests of the trainer (they skip on a machine without a GPU)."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_train.py", "-k", "cuda"]
    if not device.startswith("cuda"):
        return {"command": " ".join(command[1:]), "skipped": f"--device {device}"}
    done = subprocess.run(command, cwd=ROOT, env=stage_env(), capture_output=True, text=True)
    summary = (done.stdout.strip().splitlines() or [""])[-1]
    return {"command": " ".join(command[1:]), "returncode": done.returncode, "summary": summary,
            "output_tail": done.stdout[-2000:] + done.stderr[-1000:]}


def versions() -> dict:
    """Python, torch, CUDA and every package whose version differs from constraints.txt."""
    from importlib import metadata

    import torch

    pinned = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", line.strip())
        if match:
            pinned[match[1].lower()] = match[2]
    differ = {}
    for name, want in pinned.items():
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            have = None
        if have is None or have.split("+")[0] != want:
            differ[name] = {"pinned": want, "here": have}
    return {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "cpu_count": os.cpu_count(), "platform": platform.platform(), "differ_from_constraints": differ}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="torch device (default cuda; cpu to try the script)")
    parser.add_argument("--batch-sizes", default="4096,16384,65536", help="train.batch_size values")
    parser.add_argument("--zipf-tokens", type=int, default=30_000_000, help="Zipf corpus size (0: skip it)")
    parser.add_argument("--sample-words", type=int, default=0, help="only the sample's first N words (0: all)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs on the sample (the Zipf corpus gets 1)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results")
    args = parser.parse_args()
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit(f"--device {args.device}: torch {torch.__version__} sees no CUDA GPU; --device cpu tries the script")
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    middle = sizes[len(sizes) // 2]
    started = time.perf_counter()
    report = {"versions": versions(), "device": args.device, "tests": cuda_tests(args.device), "runs": []}
    print(f"tests: {report['tests'].get('summary', report['tests'].get('skipped'))}", flush=True)

    def keep(record: dict) -> None:
        report["runs"].append(record)
        q = record.get("quality", {})
        print(f"{record['corpus']:>6} {record['trainer']:>5} batch {record['settings']['batch_size']} "
              f"det {record['settings']['deterministic']}: {record['words_per_second'] / 1e6:.3f}M words/s, "
              f"analogy {q.get('analogy')}, WS-353 {q.get('wordsim353')}", flush=True)

    with tempfile.TemporaryDirectory(prefix="gpu-check-") as scratch:
        scratch = Path(scratch)
        sample = Project(prepare(sample_corpus(scratch, args.sample_words), scratch / "sample", args.epochs))
        keep(run(sample, "sample", "numba", "cpu"))
        for size in sizes:
            keep(run(sample, "sample", "torch", args.device, size))
        again = run(sample, "sample", "torch", args.device, middle)
        first = next(r for r in report["runs"] if r["trainer"] == "torch" and r["settings"]["batch_size"] == middle)
        first["same_bytes_twice"] = again["vectors_md5"] == first["vectors_md5"]
        keep(run(sample, "sample", "torch", args.device, middle, deterministic=False))
        if args.zipf_tokens:
            zipf = Project(prepare(zipf_corpus(scratch, args.zipf_tokens), scratch / "zipf", 1))
            keep(run(zipf, "zipf", "torch", args.device, middle, quality=False))
            keep(run(zipf, "zipf", "torch", args.device, middle, deterministic=False, quality=False))
    report["seconds"] = round(time.perf_counter() - started, 1)
    name = re.sub(r"[^a-z0-9]+", "-", (report["runs"][-1]["device_name"] if args.device != "cpu" else "cpu").lower())
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"gpu-{name.strip('-')}.json"
    with atomic_file(path, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=1)
    print(f"wrote {path} ({report['seconds']} s)")


if __name__ == "__main__":
    main()
