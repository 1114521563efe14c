"""train stage: pair shards → word vectors by skip-gram with negative sampling (SGNS).

Reads the shards in the manifest's order, epoch after epoch, in chunks (``train.sync_every`` pairs on CPU,
about 1M pairs of whole ``train.batch_size`` steps on CUDA):

* on **CPU**, a compiled kernel (``stages.sgns``) runs plain per-pair SGD in ``train.threads`` lanes,
  deterministic by default (same params → same bytes, at full speed) or Hogwild;
* on **CUDA**, one batched torch step per chunk (``stages.sgns_torch``).

The learning rate decays linearly over every pair of every epoch. Each chunk's random draws come from
(seed, epoch, shard, chunk), so a run can stop at any chunk boundary and resume to the same bytes: a
checkpoint is written at every epoch end and every ``train.checkpoint_minutes``, in ``checkpoints/train``
(outside DVC's outputs, which DVC deletes before a run), and removed once the model is written. Ctrl-C
saves one before exiting.

Outputs: ``data/model/`` (``vectors.npy``, ``words.txt``, ``vectors.txt`` and ``vectors.bin`` in word2vec's
text and binary formats, ``metadata.json`` with the params, seeds and software the bytes depend on),
``metrics/train.json``, the loss curve ``plots/train_loss.tsv`` and ``runs/train.json`` (machine, start time,
durations, resume points: what differs between two otherwise identical runs).
"""

from __future__ import annotations

import json
import logging
import math
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from stages import checkpoint, runinfo
from stages.arrow_io import read_pair_shard, read_vocab, verify_pair_shards
from stages.console import UserError, entry_point
from stages.embeddings import save_model
from stages.fsio import atomic_dir, atomic_file, sha256_file, write_json
from stages.params import TrainParams, load_params, worker_count
from stages.sgns import Schedule, alias_table, init_vectors, noise_distribution

log = logging.getLogger("w2v.train")

PAIRS_DIR = Path("data/pairs")
VOCAB_PATH = Path("data/vocab/vocab.parquet")
OUT_DIR = Path("data/model")
CHECKPOINT_DIR = Path("checkpoints/train")
METRICS_PATH = Path("metrics/train.json")
CURVE_PATH = Path("plots/train_loss.tsv")
RUN_PATH = Path("runs/train.json")
CUDA_CHUNK_PAIRS = 1 << 20


@dataclass(frozen=True)
class Chunk:
    """``pairs`` pairs of one shard, from ``start``: the unit of work, of seeding and of resuming."""

    epoch: int
    shard: int
    path: Path
    start: int
    pairs: int
    first_pair: int  # global index of the chunk's first pair, for the learning rate


def plan_chunks(manifest: dict, pairs_dir: Path, batch_size: int) -> list[Chunk]:
    """Every chunk of every epoch, in training order (epochs in order, shards in the manifest's order)."""
    chunks, first = [], 0
    for epoch in manifest["epochs"]:
        for shard_index, shard in enumerate(epoch["shards"]):
            for start in range(0, shard["pairs"], batch_size):
                size = min(batch_size, shard["pairs"] - start)
                chunks.append(Chunk(epoch["epoch"], shard_index, pairs_dir / shard["file"], start, size, first))
                first += size
    return chunks


def chunk_seeds(seed: int, chunk: Chunk, lanes: int) -> np.ndarray:
    """One 64-bit seed per lane, from (seed, epoch, shard, start): independent of where a run resumed."""
    sequence = np.random.SeedSequence(seed, spawn_key=(chunk.epoch, chunk.shard, chunk.start))
    return sequence.generate_state(lanes, np.uint64)


def gpu_driver_present() -> bool:
    """Whether an NVIDIA (or ROCm) driver is loaded: checked first so that CPU-only machines never import
    torch (about 2 s, and its OpenMP runtime beside numba's), which the CPU path does not use."""
    if sys.platform == "darwin":
        return False
    if sys.platform.startswith("linux"):
        return any(Path(p).exists() for p in ("/proc/driver/nvidia", "/dev/nvidia0", "/dev/kfd"))
    return True  # elsewhere, let torch decide


def resolve_device(requested: str) -> str:
    """``auto`` → cuda if torch sees a GPU, else cpu; ``cuda`` without a GPU is an error, not a silent fallback."""
    if requested == "cpu" or (requested == "auto" and not gpu_driver_present()):
        return "cpu"
    import torch

    if requested == "cuda" and not torch.cuda.is_available():
        raise UserError("train.device = 'cuda' but torch sees no CUDA GPU (torch "
                        f"{torch.__version__}, built for CUDA {torch.version.cuda}): set train.device to 'auto' or "
                        "'cpu', or install a CUDA build of torch")
    return "cuda" if torch.cuda.is_available() else "cpu"


def make_trainer(params: TrainParams, device: str, syn0: np.ndarray, syn1: np.ndarray, counts: np.ndarray,
                 schedule: Schedule):
    accept, alias = alias_table(noise_distribution(counts, params.ns_exponent))
    if device == "cpu":
        from stages.sgns import CpuTrainer

        return CpuTrainer(syn0, syn1, accept, alias, params.negative, schedule, worker_count(params.threads),
                          params.deterministic)
    from stages.sgns_torch import TorchTrainer

    return TorchTrainer(syn0, syn1, accept, alias, params.negative, schedule, device, params.batch_size,
                        params.deterministic)


def chunk_size(params: TrainParams, device: str) -> int:
    """Pairs per chunk. CPU: the lanes' merge interval. CUDA: whole steps adding up to about 1M pairs, so the
    per-chunk bookkeeping (seeding, progress, one device sync) costs nothing next to the steps."""
    if device == "cpu":
        return params.sync_every
    return params.batch_size * max(1, CUDA_CHUNK_PAIRS // params.batch_size)


@dataclass
class Progress:
    """What a checkpoint must carry besides the two matrices to resume exactly."""

    next_chunk: int = 0
    epoch_loss: list[float] = field(default_factory=list)  # summed loss of each epoch so far (float64)
    epoch_pairs: list[int] = field(default_factory=list)
    curve: list[list[float]] = field(default_factory=list)  # [pairs done, epoch (fractional), mean loss]
    curve_loss: float = 0.0  # loss and pairs since the last curve point
    curve_pairs: int = 0
    train_seconds: float = 0.0
    resumed_from: list[int] = field(default_factory=list)  # chunk indices at which earlier runs stopped


class Interrupt:
    """Turn SIGINT/SIGTERM into a flag the loop checks between chunks, so a checkpoint is never half a step."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def __enter__(self) -> "Interrupt":
        self.previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _handle(self, signum, frame) -> None:
        if self.signal is not None:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.signal = signum

    def __exit__(self, *exc) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def check_finite(loss: float, chunk: Chunk, alpha: float) -> None:
    if not math.isfinite(loss):
        raise UserError(f"training diverged: the loss became {loss} in epoch {chunk.epoch + 1} near pair "
                        f"{chunk.first_pair:,}; the learning rate is the likely cause: lower train.alpha "
                        f"(now {alpha}; word2vec uses 0.025) and re-run")


def train(trainer, chunks: list[Chunk], manifest: dict, params: TrainParams, progress: Progress,
          save_checkpoint) -> Progress:
    """Train every chunk from ``progress.next_chunk`` on; checkpoint at epoch ends, every few minutes and on
    Ctrl-C. Returns the final progress (losses, curve, time)."""
    epochs = len(manifest["epochs"])
    words_per_pair = sum(e["words"] for e in manifest["epochs"]) / max(1, sum(e["pairs"] for e in manifest["epochs"]))
    total = chunks[-1].first_pair + chunks[-1].pairs if chunks else 0
    while len(progress.epoch_loss) < epochs:
        progress.epoch_loss.append(0.0)
        progress.epoch_pairs.append(0)
    last_checkpoint = time.monotonic()
    shard_path, shard = None, None
    done = chunks[progress.next_chunk].first_pair if progress.next_chunk < len(chunks) else total
    bar = tqdm(total=total, initial=done, unit="pair", unit_scale=True, desc="train", smoothing=0.05,
               mininterval=1.0, dynamic_ncols=True)
    with Interrupt() as interrupt, bar:
        for index in range(progress.next_chunk, len(chunks)):
            chunk = chunks[index]
            if chunk.path != shard_path:
                shard_path, shard = chunk.path, read_pair_shard(chunk.path)
            center = shard[0][chunk.start:chunk.start + chunk.pairs]
            context = shard[1][chunk.start:chunk.start + chunk.pairs]
            started = time.perf_counter()
            loss = trainer.train_chunk(center, context, chunk.first_pair, chunk_seeds(params.seed, chunk,
                                                                                       trainer.lanes))
            progress.train_seconds += time.perf_counter() - started
            check_finite(loss, chunk, params.alpha)
            progress.epoch_loss[chunk.epoch] += loss
            progress.epoch_pairs[chunk.epoch] += chunk.pairs
            progress.curve_loss += loss
            progress.curve_pairs += chunk.pairs
            progress.next_chunk = index + 1
            end = chunk.first_pair + chunk.pairs
            epoch_end = index + 1 == len(chunks) or chunks[index + 1].epoch != chunk.epoch
            if progress.curve_pairs >= params.curve_every or epoch_end:
                progress.curve.append([end, round(chunk.epoch + progress.epoch_pairs[chunk.epoch]
                                                  / manifest["epochs"][chunk.epoch]["pairs"], 6),
                                       progress.curve_loss / progress.curve_pairs])
                progress.curve_loss, progress.curve_pairs = 0.0, 0
            bar.update(chunk.pairs)
            words_per_second = words_per_pair * end / max(progress.train_seconds, 1e-9)
            bar.set_postfix_str(f"epoch {chunk.epoch + 1}/{epochs}, loss "
                                f"{progress.epoch_loss[chunk.epoch] / progress.epoch_pairs[chunk.epoch]:.4f}, "
                                f"{words_per_second / 1e3:,.0f}k words/s", refresh=False)
            if epoch_end:
                log.info("epoch %d/%d: mean loss %.6f", chunk.epoch + 1, epochs,
                         progress.epoch_loss[chunk.epoch] / progress.epoch_pairs[chunk.epoch])
            due = time.monotonic() - last_checkpoint > 60 * params.checkpoint_minutes
            if interrupt.signal is not None or (index + 1 < len(chunks) and (epoch_end or due)):
                save_checkpoint(trainer, progress)
                last_checkpoint = time.monotonic()
            if interrupt.signal is not None:
                log.warning("stopped after pair %s of %s; checkpoint saved in %s: re-run to resume", f"{end:,}",
                            f"{total:,}", CHECKPOINT_DIR)
                raise KeyboardInterrupt
    return progress


def train_metrics(progress: Progress, manifest: dict, wall_seconds: float) -> dict:
    words = sum(e["words"] for e in manifest["epochs"])
    pairs = sum(e["pairs"] for e in manifest["epochs"])
    epoch_loss = [s / max(n, 1) for s, n in zip(progress.epoch_loss, progress.epoch_pairs)]
    return {
        "loss": round(epoch_loss[-1], 6),
        "epoch_loss": {f"epoch_{i + 1}": round(value, 6) for i, value in enumerate(epoch_loss)},
        "pairs": pairs,
        "words": words,
        "train_seconds": round(progress.train_seconds, 3),
        "wall_seconds": round(wall_seconds, 3),
        "words_per_second": round(words / max(progress.train_seconds, 1e-9)),
        "pairs_per_second": round(pairs / max(progress.train_seconds, 1e-9)),
    }


def write_curve(path: Path, curve: list[list[float]]) -> None:
    with atomic_file(path, "w", encoding="utf-8") as handle:
        handle.write("pairs\tepoch\tloss\n")
        for pairs, epoch, loss in curve:
            handle.write(f"{int(pairs)}\t{epoch:.6f}\t{loss:.6f}\n")


def fingerprint(params: TrainParams, lanes: int, device: str, manifest_sha256: str, vocab_size: int) -> str:
    """What a checkpoint must match to be resumed: every param that changes the bytes, and the input."""
    ignored = {"checkpoint_minutes", "threads"} | ({"batch_size"} if device == "cpu" else {"sync_every"})
    key = {k: v for k, v in params.to_dict().items() if k not in ignored}
    key.update(lanes=lanes, device=device, pairs_manifest=manifest_sha256, vocab_size=vocab_size)
    return json.dumps(key, sort_keys=True)


def read_manifest(path: Path) -> dict:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if not all({"file", "pairs", "bytes", "sha256"} <= set(shard) for epoch in manifest["epochs"]
                   for shard in epoch["shards"]):
            raise KeyError("shards")
        return manifest
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: damaged or from an older version ({type(exc).__name__}: {exc}); rebuild it with "
                        f"`dvc repro --force pairs`") from None


def check_vocabulary(vocab_size: int, manifest: dict, negative: int) -> None:
    """SGNS draws ``negative`` noise words other than the context: fewer than negative + 1 words cannot work."""
    if vocab_size < negative + 1:
        raise UserError(f"{VOCAB_PATH}: only {vocab_size} word(s) in the vocabulary, fewer than train.negative + 1 "
                        f"= {negative + 1}: lower vocab.min_count (or train.negative), or use a larger corpus")
    if manifest.get("vocab_size") != vocab_size:
        raise UserError(f"{PAIRS_DIR / 'manifest.json'} was built for a vocabulary of {manifest.get('vocab_size')} "
                        f"words, {VOCAB_PATH} has {vocab_size}: run `dvc repro` to rebuild the pairs")


@entry_point
def main() -> None:
    params = load_params()["train"]
    manifest_path = PAIRS_DIR / "manifest.json"
    for path in (manifest_path, VOCAB_PATH):
        if not path.is_file():
            raise UserError(f"{path}: not found; run the pairs stage first (dvc repro pairs)")
    manifest = read_manifest(manifest_path)
    vocab = read_vocab(VOCAB_PATH, ["word", "count"])
    counts = vocab.column("count").to_numpy()
    check_vocabulary(len(counts), manifest, params.negative)
    verify_pair_shards(manifest, PAIRS_DIR)
    device = resolve_device(params.device)
    lanes = worker_count(params.threads) if device == "cpu" else 1
    key = fingerprint(params, lanes, device, sha256_file(manifest_path), len(counts))
    chunks = plan_chunks(manifest, PAIRS_DIR, chunk_size(params, device))
    schedule = Schedule(params.alpha, params.min_alpha, sum(c.pairs for c in chunks))

    resumed = checkpoint.load(CHECKPOINT_DIR, key)
    if resumed is None:
        syn0, syn1 = init_vectors(len(counts), params.dim, np.random.default_rng(params.seed))
        progress = Progress()
    else:
        syn0, syn1, state = resumed
        progress = Progress(**state)
        progress.resumed_from.append(progress.next_chunk)
        log.info("resuming from the checkpoint in %s at chunk %d of %d", CHECKPOINT_DIR, progress.next_chunk,
                 len(chunks))
    trainer = make_trainer(params, device, syn0, syn1, counts, schedule)
    log.info("%s pairs in %d epochs on %s (%s), %d-dim vectors for %s words", f"{schedule.total_pairs:,}",
             len(manifest["epochs"]), device, trainer.describe(), params.dim, f"{len(counts):,}")

    run_record = {"host": runinfo.host(device)}
    started = time.perf_counter()
    progress = train(trainer, chunks, manifest, params, progress,
                     lambda t, p: checkpoint.save(CHECKPOINT_DIR, key, *t.vectors(), vars(p)))
    wall = time.perf_counter() - started
    syn0, _ = trainer.vectors()
    metrics = train_metrics(progress, manifest, wall)
    # Only what the vectors' bytes depend on goes beside them, so an identical re-run gives an identical
    # model (and DVC stops the cascade there); the clock and the machine go to the run record.
    result_params = {k: v for k, v in params.to_dict().items() if k != "checkpoint_minutes"}
    metadata = {"params": result_params, "lanes": lanes, "device": device,
                "seeds": {"train.seed": params.seed, "pairs.seed": manifest["params"]["seed"]},
                "vocab_size": len(counts), "pairs": metrics["pairs"], "words": metrics["words"],
                "loss": metrics["loss"], "epoch_loss": metrics["epoch_loss"],
                "software": runinfo.software(device)}
    run_record.update(device=device, lanes=lanes, resumed_from_chunks=progress.resumed_from,
                      **{k: metrics[k] for k in ("train_seconds", "wall_seconds", "words_per_second")})
    with atomic_dir(OUT_DIR) as tmp:
        save_model(tmp, vocab.column("word").to_pylist(), syn0)
        write_json(tmp / "metadata.json", metadata)
    write_json(METRICS_PATH, metrics)
    write_json(RUN_PATH, run_record)
    write_curve(CURVE_PATH, progress.curve)
    checkpoint.remove(CHECKPOINT_DIR)
    log.info("final loss %.6f; %s words/s, %s pairs/s (%.1f s of training)", metrics["loss"],
             f"{metrics['words_per_second']:,}", f"{metrics['pairs_per_second']:,}", progress.train_seconds)


if __name__ == "__main__":
    main()
