"""Pair shards and their manifest: the training pairs of every epoch, as the trainer reads them.

A shard is an Arrow IPC file of one uncompressed record batch with int32 columns ``center`` and ``context``, so
the trainer memory-maps it. ``manifest.json`` beside the ``epoch-NN/`` folders lists, per epoch, its shards in
training order with the pairs, bytes and sha256 of each: :class:`PairManifest` writes it, reads it back and
verifies the shards against it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from w2v.arrow_io import reading
from w2v.errors import DamagedFileError
from w2v.fsio import sha256_file, write_json

PAIRS_SCHEMA = pa.schema([pa.field("center", pa.int32()), pa.field("context", pa.int32())])
MANIFEST = "manifest.json"


def write_pair_shard(path: Path | str, center: np.ndarray, context: np.ndarray) -> None:
    """Write one shard: an Arrow IPC file of one uncompressed record batch, so readers can memory-map it."""
    batch = pa.record_batch([pa.array(center), pa.array(context)], schema=PAIRS_SCHEMA)
    with pa.OSFile(str(path), "wb") as sink, ipc.new_file(sink, PAIRS_SCHEMA) as writer:
        writer.write_batch(batch)


def read_pair_shard(path: Path | str) -> tuple[np.ndarray, np.ndarray]:
    """(center, context) as int32 numpy views of the memory-mapped shard: no copy, no read until touched."""
    with reading(path):
        reader = ipc.open_file(pa.memory_map(str(path), "r"))
        batch = reader.get_batch(0)
        return (batch.column(0).to_numpy(zero_copy_only=True), batch.column(1).to_numpy(zero_copy_only=True))


@dataclass(frozen=True)
class ShardInfo:
    file: str  # relative to the pairs directory
    pairs: int
    bytes: int
    sha256: str

    @classmethod
    def of(cls, pairs_dir: Path, path: Path, pairs: int) -> "ShardInfo":
        return cls(str(path.relative_to(pairs_dir)), pairs, path.stat().st_size, sha256_file(path))


@dataclass(frozen=True)
class EpochInfo:
    epoch: int
    seed: dict  # the numpy SeedSequence of the epoch: {"entropy": ..., "spawn_key": [...]}
    words: int  # corpus words read
    kept_words: int  # after subsampling
    pairs: int
    shards: tuple[ShardInfo, ...]  # in training order


@dataclass(frozen=True)
class PairManifest:
    params: dict
    vocab_size: int
    dtype: str
    columns: tuple[str, ...]
    epochs: tuple[EpochInfo, ...]

    @property
    def total_pairs(self) -> int:
        return sum(e.pairs for e in self.epochs)

    @property
    def total_words(self) -> int:
        return sum(e.words for e in self.epochs)

    def write(self, pairs_dir: Path) -> None:
        write_json(Path(pairs_dir) / MANIFEST, dataclasses.asdict(self))

    @classmethod
    def read(cls, pairs_dir: Path) -> "PairManifest":
        path = Path(pairs_dir) / MANIFEST
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            epochs = tuple(EpochInfo(**{**e, "shards": tuple(ShardInfo(**s) for s in e["shards"])})
                           for e in raw["epochs"])
            return cls(**{**raw, "columns": tuple(raw["columns"]), "epochs": epochs})
        except (ValueError, KeyError, TypeError) as exc:
            raise DamagedFileError(path, f"damaged or from an older version ({type(exc).__name__}: {exc})") from None

    def verify(self, pairs_dir: Path) -> None:
        """Check every shard against its recorded size and sha256 before training reads it, so a truncated or
        altered shard stops the run with its name instead of a crash (or silent garbage) later."""
        for epoch in self.epochs:
            for shard in epoch.shards:
                path = Path(pairs_dir) / shard.file
                if not path.is_file():
                    raise DamagedFileError(path, f"missing, though {Path(pairs_dir) / MANIFEST} lists it")
                size = path.stat().st_size
                if size != shard.bytes:
                    raise DamagedFileError(path, f"damaged: {size:,} bytes where the manifest records "
                                                 f"{shard.bytes:,} (truncated?)")
                if sha256_file(path) != shard.sha256:
                    raise DamagedFileError(path, "damaged: its sha256 differs from the one in the manifest")
