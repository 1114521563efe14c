"""The training loop: pair shards → word vectors, with exact resume, a loss curve and one interface for every
trainer.

The window shards are read in the manifest's order, epoch after epoch, in *chunks* of windows (about as many
pairs as the trainer asks for: the lanes' merge interval on CPU, about 1M pairs of whole steps on CUDA). The
learning rate decays linearly over every pair of every epoch. Each chunk's random draws come from (seed, epoch,
shard, start), so a run can stop at any chunk boundary and resume to the same bytes: :func:`train` calls
``save_checkpoint`` at every epoch end, every ``checkpoint_minutes`` and on Ctrl-C.

A trainer is any class with the :class:`Trainer` interface, and carries its own facts: its name, the packages
that compute its bytes, the params it does not use. :data:`TRAINERS` names the class of each, so adding one
(another architecture, several GPUs) is adding a class and a line there; :func:`trainer_name` says which one
a run uses.
"""

from __future__ import annotations

import importlib
import json
import logging
import math
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar, Protocol

import numpy as np

from w2v.errors import W2VError
from w2v.huffman import HuffmanTree
from w2v.matrices import Matrices
from w2v.params import CBOW_ALPHA, SKIPGRAM_ALPHA, TrainParams
from w2v.sgns import Schedule
from w2v.shards import PairManifest, WindowShard, read_window_shard

log = logging.getLogger(__name__)


class Trainer(Protocol):
    """What the loop and the stage need of a trainer. ``lanes`` is how many independent random streams a chunk
    gets, ``chunk_size`` how many pairs it wants per chunk."""

    name: ClassVar[str]
    packages: ClassVar[tuple[str, ...]]  # the packages whose code computes its bytes (the model's metadata)
    unused_params: ClassVar[frozenset[str]]  # train.* keys it never reads: not part of its result
    lanes: int
    chunk_size: int

    @classmethod
    def from_params(cls, params: TrainParams, device: str, matrices: Matrices, noise: tuple[np.ndarray, np.ndarray],
                    schedule: Schedule, group=None, tree: HuffmanTree | None = None) -> "Trainer":
        """``noise``: negative sampling's alias table; ``tree``: hierarchical softmax's (when ``train.hs``);
        ``group``: this process's :class:`w2v.distributed.Group` when training runs in several."""

    def describe(self) -> str: ...

    def prepare(self, shard: WindowShard) -> None:
        """Get ready to train this shard (compile for its id type): kept out of the timed training."""

    def train_chunk(self, shard: WindowShard, start: int, end: int, first_pair: int, seeds: np.ndarray) -> float:
        """Train windows start..end-1 of the shard in place; return their summed loss (a float64 sum of every
        pair's loss)."""

    def agree(self, stop: bool) -> bool:
        """Whether to stop after this chunk, given this process's wish: all processes of a group stop together."""

    def matrices(self) -> Matrices:
        """The model as it is now: every matrix, named (:mod:`w2v.matrices`)."""


# Imported only when chosen: the torch trainer needs torch, which the CPU kernel's runs never load.
TRAINERS = {"numba": "w2v.cpu_trainer:CpuTrainer", "torch": "w2v.torch_trainer:TorchTrainer"}


def trainer_name(device: str, processes: int = 1) -> str:
    """The compiled kernel on CPU, in one process or in each of a group (its merges through torch.distributed);
    torch on CUDA. (The torch trainer also runs on a CPU where a caller asks for it by name: the tests do.)"""
    return "numba" if device == "cpu" else "torch"


def trainer_class(name: str) -> type[Trainer]:
    module, attribute = TRAINERS[name].split(":")
    return getattr(importlib.import_module(module), attribute)


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
        raise W2VError("train.device = 'cuda' but torch sees no CUDA GPU (torch "
                       f"{torch.__version__}, built for CUDA {torch.version.cuda}): set train.device to 'auto' or "
                       "'cpu', or install a CUDA build of torch")
    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True)
class Chunk:
    """Windows ``start``..``end``-1 of one shard: the unit of work, of seeding and of resuming."""

    epoch: int
    shard: int  # the shard's place in training order (all epochs)
    start: int
    end: int
    pairs: int
    first_pair: int  # global index of the chunk's first pair, for the learning rate
    epoch_end: bool  # the last chunk of its epoch


def chunk_ends(pairs_per_window: np.ndarray, chunk_pairs: int) -> np.ndarray:
    """Window indices where the chunks of a shard end: after every ``chunk_pairs`` cumulative pairs, and at the
    shard's end. A function of the shard and the param alone, so a resumed run cuts the same chunks."""
    cumulative = np.cumsum(pairs_per_window)
    total = int(cumulative[-1]) if len(cumulative) else 0
    ends = np.searchsorted(cumulative, np.arange(chunk_pairs, total, chunk_pairs), side="left") + 1
    return np.unique(np.concatenate([ends, [len(pairs_per_window)]]))


def equal_pair_bounds(cumulative: np.ndarray, parts: int) -> np.ndarray:
    """Cut a run of windows into ``parts`` runs of about equal pairs (the lanes of a chunk, or the processes'
    shares): ``cumulative`` is the pairs before each window and after the last (a leading 0), the result the
    parts + 1 window bounds, relative to the run."""
    inner = np.searchsorted(cumulative, np.linspace(0, cumulative[-1], parts + 1)[1:-1])
    return np.concatenate([[0], inner, [len(cumulative) - 1]]).astype(np.int64)


def chunk_seeds(seed: int, chunk: Chunk, lanes: int) -> np.ndarray:
    """One 64-bit seed per lane, from (seed, epoch, shard, start): independent of where a run resumed."""
    sequence = np.random.SeedSequence(seed, spawn_key=(chunk.epoch, chunk.shard, chunk.start))
    return sequence.generate_state(lanes, np.uint64)


@dataclass
class Progress:
    """What a checkpoint must carry besides the two matrices to resume exactly."""

    next_shard: int = 0  # in training order, all epochs
    next_window: int = 0
    pairs_done: int = 0
    epoch_loss: list[float] = field(default_factory=list)  # summed loss of each epoch so far (float64)
    epoch_pairs: list[int] = field(default_factory=list)
    curve: list[list[float]] = field(default_factory=list)  # [pairs done, epoch (fractional), mean loss]
    curve_loss: float = 0.0  # loss and pairs since the last curve point
    curve_pairs: int = 0
    train_seconds: float = 0.0
    resumed_from: list[list[int]] = field(default_factory=list)  # [shard, window] where earlier runs stopped


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


class Stopped(KeyboardInterrupt):
    """Training stopped on request after saving a checkpoint."""


def check_finite(loss: float, chunk: Chunk, alpha: float) -> None:
    if not math.isfinite(loss):
        raise W2VError(f"training diverged: the loss became {loss} in epoch {chunk.epoch + 1} near pair "
                       f"{chunk.first_pair:,}; the learning rate is the likely cause: lower train.alpha "
                       f"(now {alpha}; word2vec uses {SKIPGRAM_ALPHA} for skip-gram, {CBOW_ALPHA} for CBOW) and re-run")


def train(trainer: Trainer, manifest: PairManifest, pairs_dir: Path, params: TrainParams, progress: Progress,
          save_checkpoint: Callable[[Trainer, Progress], None], show_progress: bool = True) -> Progress:
    """Train every chunk from ``progress``'s position on; checkpoint at epoch ends, every few minutes and on
    Ctrl-C (then raise :class:`Stopped`). Each shard's sha256 is checked as it is opened. Returns the final
    progress (losses, curve, time)."""
    from tqdm import tqdm

    epochs = len(manifest.epochs)
    words_per_pair = manifest.total_words / max(1, manifest.total_pairs)
    total = manifest.total_pairs
    shards = manifest.shards_in_order()
    while len(progress.epoch_loss) < epochs:
        progress.epoch_loss.append(0.0)
        progress.epoch_pairs.append(0)
    if progress.next_shard < len(shards):  # compile (or load) the kernel before the bar's clock starts
        trainer.prepare(read_window_shard(Path(pairs_dir) / shards[progress.next_shard][1].file))
    last_checkpoint = time.monotonic()
    bar = tqdm(total=total, initial=progress.pairs_done, unit="pair", unit_scale=True, desc="train",
               smoothing=0.05, mininterval=1.0, dynamic_ncols=True, disable=not show_progress)
    with Interrupt() as interrupt, bar:
        for index in range(progress.next_shard, len(shards)):
            epoch, info = shards[index]
            shard = read_window_shard(Path(pairs_dir) / info.file, expect=info)
            trainer.prepare(shard)
            pairs_per_window = shard.pair_counts()
            cumulative = np.concatenate([[0], np.cumsum(pairs_per_window)])
            last_of_epoch = index + 1 == len(shards) or shards[index + 1][0] != epoch
            start = progress.next_window
            for end in chunk_ends(pairs_per_window, trainer.chunk_size):
                if end <= start:
                    continue
                pairs = int(cumulative[end] - cumulative[start])
                chunk = Chunk(epoch, index, start, int(end), pairs, progress.pairs_done,
                              last_of_epoch and end == shard.windows)
                started = time.perf_counter()
                loss = trainer.train_chunk(shard, chunk.start, chunk.end, chunk.first_pair,
                                           chunk_seeds(params.seed, chunk, trainer.lanes))
                progress.train_seconds += time.perf_counter() - started
                check_finite(loss, chunk, params.learning_rate)
                progress.epoch_loss[epoch] += loss
                progress.epoch_pairs[epoch] += pairs
                progress.curve_loss += loss
                progress.curve_pairs += pairs
                progress.pairs_done += pairs
                progress.next_shard, progress.next_window = (index, chunk.end) if chunk.end < shard.windows \
                    else (index + 1, 0)
                start = chunk.end
                if progress.curve_pairs >= params.curve_every or chunk.epoch_end:
                    progress.curve.append([progress.pairs_done, round(epoch + progress.epoch_pairs[epoch]
                                                                      / manifest.epochs[epoch].pairs, 6),
                                           progress.curve_loss / progress.curve_pairs])
                    progress.curve_loss, progress.curve_pairs = 0.0, 0
                bar.update(pairs)
                words_per_second = words_per_pair * progress.pairs_done / max(progress.train_seconds, 1e-9)
                bar.set_postfix_str(f"epoch {epoch + 1}/{epochs}, loss "
                                    f"{progress.epoch_loss[epoch] / max(progress.epoch_pairs[epoch], 1):.4f}, "
                                    f"{words_per_second / 1e3:,.0f}k words/s", refresh=False)
                if chunk.epoch_end:
                    log.info("epoch %d/%d: mean loss %.6f", epoch + 1, epochs,
                             progress.epoch_loss[epoch] / progress.epoch_pairs[epoch])
                due = time.monotonic() - last_checkpoint > 60 * params.checkpoint_minutes
                last = progress.pairs_done == total
                stop = trainer.agree(interrupt.signal is not None)
                if stop or (not last and (chunk.epoch_end or due)):
                    save_checkpoint(trainer, progress)
                    last_checkpoint = time.monotonic()
                if stop:
                    raise Stopped(f"stopped after pair {progress.pairs_done:,} of {total:,}")
            progress.next_window = 0
    return progress


def train_metrics(progress: Progress, manifest: PairManifest, wall_seconds: float) -> dict:
    words, pairs = manifest.total_words, manifest.total_pairs
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


def write_loss_curve(handle, curve: list[list[float]]) -> None:
    """The loss curve as tab-separated text: pairs done, epoch (fractional), mean loss since the last point."""
    handle.write("pairs\tepoch\tloss\n")
    for pairs, epoch, loss in curve:
        handle.write(f"{int(pairs)}\t{epoch:.6f}\t{loss:.6f}\n")


def fingerprint(params: TrainParams, trainer: type[Trainer], lanes: int, device: str, manifest_sha256: str,
                vocab_size: int, init_sha256: str = "") -> str:
    """What a checkpoint must match to be resumed: every param that changes the trainer's bytes, and the inputs
    (the vectors training started from among them)."""
    ignored = set(trainer.unused_params)
    if params.processes == 1:
        ignored.add("process_sync_every")
    key = {k: v for k, v in params.result_dict().items() if k not in ignored}
    key.update(lanes=lanes, device=device, pairs_manifest=manifest_sha256, vocab_size=vocab_size)
    if init_sha256:
        key.update(init_sha256=init_sha256)
    return json.dumps(key, sort_keys=True)


def check_vocabulary(vocab_path: Path, vocab_size: int, manifest: PairManifest, negative: int, hs: bool) -> None:
    """Negative sampling draws ``negative`` noise words other than the center: fewer than negative + 1 words cannot
    work; a Huffman tree needs two words."""
    if hs and vocab_size < 2:
        raise W2VError(f"{vocab_path}: only {vocab_size} word(s) in the vocabulary, fewer than the 2 a Huffman tree "
                       f"needs (train.hs): lower vocab.min_count, or use a larger corpus")
    if negative and vocab_size < negative + 1:
        raise W2VError(f"{vocab_path}: only {vocab_size} word(s) in the vocabulary, fewer than train.negative + 1 = "
                       f"{negative + 1}: lower vocab.min_count (or train.negative), or use a larger corpus")
    if manifest.vocab_size != vocab_size:
        raise W2VError(f"the pair shards were built for a vocabulary of {manifest.vocab_size} words, "
                       f"{vocab_path} has {vocab_size}: rebuild the pairs")
