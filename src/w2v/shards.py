"""Window shards and their manifest: the training examples of every epoch, as the trainer reads them.

A *window* is one kept center word with the context words around it: ``left`` words before it and ``right``
after it in the subsampled text, within its drawn reach and its document. A shard stores a stretch of the
subsampled text once (``tokens``) and its windows as positions into it, in training (shuffled) order:

* ``tokens``: the word ids of the stretch, uint16 when the vocabulary has at most 65,536 words, else uint32;
* ``center``: uint32, where each window's center is in ``tokens``;
* ``left``, ``right``: uint8, how many context words the window takes on each side.

Window ``w`` therefore gives the pairs (``tokens[center[w]]``, ``tokens[center[w] + k]``) for ``k`` in
``-left[w]..-1`` and ``1..right[w]``: about 1.5-2 bytes per pair, where a (center, context) list of int32 takes 8.
The file is Arrow IPC with one record batch of one row (one list per column), uncompressed, so the trainer
memory-maps it and any Arrow reader can open it.

``manifest.json`` beside the ``epoch-NN/`` folders lists, per epoch, its shards in training order with their
windows, pairs, bytes and sha256: :class:`PairManifest` writes it and reads it back; the trainer checks each
shard's size up front and its sha256 as it opens it (:func:`read_window_shard`), so a damaged shard stops the
run with its name before any of it is trained on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from w2v.arrow_io import array_view, reading
from w2v.errors import DamagedFileError
from w2v.fsio import CHUNK, write_json

MANIFEST = "manifest.json"
FORMAT = "windows-1"
MAX_WINDOW = 255  # left and right are uint8


def token_dtype(vocab_size: int) -> np.dtype:
    """The narrowest unsigned integer type that holds every word id."""
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.uint32)


@dataclass(frozen=True)
class WindowShard:
    """One shard's arrays (memory-mapped views when read from disk)."""

    tokens: np.ndarray
    center: np.ndarray
    left: np.ndarray
    right: np.ndarray

    @property
    def windows(self) -> int:
        return len(self.center)

    def pair_counts(self, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """Pairs of each window ``lo..hi-1`` (default: all) (left + right), as int64."""
        return self.left[lo:hi].astype(np.int64) + self.right[lo:hi]

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Every (center, context) pair of the shard as two int64 arrays, window by window: the expanded form,
        for tests and for trainers that take pairs."""
        counts = self.pair_counts()
        window = np.repeat(np.arange(self.windows), counts)
        first = np.cumsum(counts) - counts
        k = np.arange(len(window)) - first[window]  # 0 .. left+right-1 within each window
        left = self.left[window].astype(np.int64)
        offset = np.where(k < left, k - left, k - left + 1)  # -left..-1, then 1..right
        position = self.center[window].astype(np.int64)
        return self.tokens[position].astype(np.int64), self.tokens[position + offset].astype(np.int64)


def write_window_shard(path: Path | str, shard: WindowShard) -> None:
    columns = {name: getattr(shard, name) for name in ("tokens", "center", "left", "right")}
    arrays = [pa.ListArray.from_arrays(pa.array([0, len(values)], pa.int32()), pa.array(values))
              for values in columns.values()]
    batch = pa.record_batch(arrays, names=list(columns))
    with pa.OSFile(str(path), "wb") as sink, ipc.new_file(sink, batch.schema) as writer:
        writer.write_batch(batch)


@dataclass(frozen=True)
class ShardInfo:
    file: str  # relative to the pairs directory
    windows: int
    pairs: int
    tokens: int
    bytes: int
    sha256: str

    @classmethod
    def of(cls, pairs_dir: Path, path: Path, shard: WindowShard) -> "ShardInfo":
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
        return cls(str(path.relative_to(pairs_dir)), shard.windows, int(shard.pair_counts().sum()),
                   len(shard.tokens), path.stat().st_size, digest.hexdigest())


def read_window_shard(path: Path | str, expect: ShardInfo | None = None) -> WindowShard:
    """Memory-map a shard; with ``expect``, first check its size and sha256 (reading it once, which brings it into
    the page cache for training anyway)."""
    path = Path(path)
    if expect is not None:
        if not path.is_file():
            raise DamagedFileError(path, "missing, though the manifest lists it")
        size = path.stat().st_size
        if size != expect.bytes:
            raise DamagedFileError(path, f"damaged: {size:,} bytes where the manifest records {expect.bytes:,} "
                                         f"(truncated?)")
    with reading(path):
        source = pa.memory_map(str(path), "r")
        if expect is not None and hashlib.sha256(source.read_buffer()).hexdigest() != expect.sha256:
            raise DamagedFileError(path, "damaged: its sha256 differs from the one in the manifest")
        batch = ipc.open_file(source).get_batch(0)
        arrays = {name: array_view(batch.column(name).values)
                  for name in ("tokens", "center", "left", "right")}
    shard = WindowShard(**arrays)
    if len(shard.left) != shard.windows or len(shard.right) != shard.windows:
        raise DamagedFileError(path, "damaged: its window columns have different lengths")
    return shard


@dataclass(frozen=True)
class EpochInfo:
    epoch: int
    words: int  # corpus words read
    kept_words: int  # after subsampling
    windows: int
    pairs: int
    shards: tuple[ShardInfo, ...]  # in training order


@dataclass(frozen=True)
class PairManifest:
    format: str
    params: dict
    vocab_size: int
    token_dtype: str
    epochs: tuple[EpochInfo, ...]

    @property
    def total_pairs(self) -> int:
        return sum(e.pairs for e in self.epochs)

    @property
    def total_words(self) -> int:
        return sum(e.words for e in self.epochs)

    def shards_in_order(self) -> list[tuple[int, ShardInfo]]:
        """(epoch, shard) in training order."""
        return [(epoch.epoch, shard) for epoch in self.epochs for shard in epoch.shards]

    def write(self, pairs_dir: Path) -> None:
        write_json(Path(pairs_dir) / MANIFEST, dataclasses.asdict(self))

    @classmethod
    def read(cls, pairs_dir: Path) -> "PairManifest":
        path = Path(pairs_dir) / MANIFEST
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            if raw.get("format") != FORMAT:
                raise ValueError(f"format {raw.get('format')!r}, this version reads {FORMAT!r}")
            epochs = tuple(EpochInfo(**{**e, "shards": tuple(ShardInfo(**s) for s in e["shards"])})
                           for e in raw["epochs"])
            return cls(**{**raw, "epochs": epochs})
        except (ValueError, KeyError, TypeError) as exc:
            raise DamagedFileError(path, f"damaged or from an older version ({type(exc).__name__}: {exc})") from None

    def check_files(self, pairs_dir: Path) -> None:
        """Every shard there with its recorded size (a stat each; the sha256 is checked as a shard is read)."""
        for _, shard in self.shards_in_order():
            path = Path(pairs_dir) / shard.file
            if not path.is_file():
                raise DamagedFileError(path, f"missing, though {Path(pairs_dir) / MANIFEST} lists it")
            if path.stat().st_size != shard.bytes:
                raise DamagedFileError(path, f"damaged: {path.stat().st_size:,} bytes where the manifest records "
                                             f"{shard.bytes:,} (truncated?)")
