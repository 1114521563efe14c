"""Start training from vectors a user already has (``train.init_from``): continue a model of this project, adapt
it to another corpus, or begin from pretrained word2vec/fastText vectors.

The vocabulary is always the current corpus's. Every matrix starts as a fresh model's would (the seeded draw of
:func:`w2v.matrices.init_matrices`); then each word the init model also has takes its rows from it:

* from a **model directory** of this project (``vectors.npy``, ``words.txt`` and the output matrices beside them)
  ``syn0`` and ``syn1neg`` by word. ``syn1`` (hierarchical softmax) has a row per inner node of the Huffman tree,
  not per word, so it is taken only when the init model was trained on the same vocabulary (same words, same
  counts: :func:`vocabulary_sha256`, kept in its metadata); otherwise it starts at zero;
* from a **word2vec text or binary file** (word2vec.c, gensim's ``save_word2vec_format``, fastText's ``.vec``)
  ``syn0`` alone; the output matrices start at zero.

Words of the init model that the corpus lacks take no part in training; :func:`extra_rows` gives them back, as
they were, to a caller that keeps them in the exported model (``train.keep_init_words``). Nothing here draws a
random number, so a run from the same params and the same init file gives the same bytes on every trainer.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from w2v.errors import DamagedFileError, W2VError
from w2v.fsio import sha256_file
from w2v.matrices import HIERARCHICAL, INPUT, NEGATIVE, Matrices

log = logging.getLogger(__name__)

MODEL_DIRECTORY = "model directory"
WORD2VEC_BINARY = "word2vec binary"
WORD2VEC_TEXT = "word2vec text"
# The bytes a word2vec text file holds after its header: the first record's numbers are made of these.
_TEXT_NUMBER_BYTES = frozenset(b"0123456789.-+eEnaifNAIF \t\r\n")


@dataclass
class InitModel:
    """Vectors to start from, as read: their words (in the file's order) and matrices by name."""

    path: Path
    kind: str  # MODEL_DIRECTORY, WORD2VEC_BINARY or WORD2VEC_TEXT
    words: pa.Array
    matrices: Matrices  # syn0, and from a model directory its output matrices
    sha256: str  # of the bytes read: a file's, or a directory's files' (each named with its hash)
    vocab_sha256: str | None = None  # a model directory's: the vocabulary its syn1 rows belong to

    @property
    def dim(self) -> int:
        return self.matrices[INPUT].shape[1]


@dataclass
class WarmStart:
    """What a run took from its init model: recorded in the model's metadata and the log."""

    init: InitModel
    found: np.ndarray  # per corpus word: its row in the init model, -1 if the init model lacks it
    taken: tuple[str, ...]  # the matrices whose rows came from the init model
    notes: list[str] = field(default_factory=list)  # why a matrix was not taken

    @property
    def words_from_init(self) -> int:
        return int((self.found >= 0).sum())

    @property
    def init_only(self) -> np.ndarray:
        """Rows of the init model whose word the corpus lacks, in the init model's order."""
        unused = np.ones(len(self.init.words), dtype=bool)
        unused[self.found[self.found >= 0]] = False
        return np.flatnonzero(unused)

    def record(self, kept: int) -> dict:
        return {"path": str(self.init.path), "kind": self.init.kind, "sha256": self.init.sha256,
                "init_words": len(self.init.words), "words_from_init": self.words_from_init,
                "matrices_from_init": list(self.taken), "init_words_kept": kept}


def vocabulary_sha256(words: pa.Array, counts: np.ndarray) -> str:
    """A vocabulary's identity: its words in order and their counts (which fix the Huffman tree)."""
    digest = hashlib.sha256()
    digest.update("\n".join(words.to_pylist()).encode("utf-8"))
    digest.update(np.asarray(counts, dtype="<i8").tobytes())
    return digest.hexdigest()


def read_init(path: Path | str) -> InitModel:
    """Read a model directory or a word2vec text/binary vector file; a clear error for anything else."""
    path = Path(path)
    where = f"train.init_from = {str(path)!r}"
    if not path.exists():
        raise W2VError(f"{where}: no such file or directory")
    if path.is_dir():
        return _read_model_directory(path, where)
    head = path.open("rb").read(4096)
    if head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00" or head[:4] == b"PK\x03\x04":
        raise W2VError(f"{where} is compressed: decompress it first (word2vec text or binary vectors are read as "
                       f"they are)")
    from w2v.word2vec_format import read_word2vec_binary, read_word2vec_text

    kind = WORD2VEC_BINARY if _looks_binary(head) else WORD2VEC_TEXT
    try:
        words, vectors = (read_word2vec_binary if kind == WORD2VEC_BINARY else read_word2vec_text)(path)
    except (DamagedFileError, ValueError, UnicodeDecodeError, IndexError) as exc:
        reason = str(exc).removeprefix(f"{path}: ")
        raise W2VError(f"{where} is not a word2vec {kind.split()[1]} vector file ({reason}): give a model "
                       f"directory of this project, or vectors in word2vec's text or binary format") from None
    if not len(words) or not vectors.shape[1]:
        raise W2VError(f"{where} holds no vectors")
    return InitModel(path, kind, pa.array(words, pa.string()), {INPUT: vectors}, sha256_file(path))


def _looks_binary(head: bytes) -> bool:
    """word2vec binary: a 'count dim' header, then a word, a space and raw float32 bytes (almost never all of
    them digits, signs and spaces, which is what a text file has there)."""
    lines = head.split(b"\n", 1)
    fields = lines[0].split()
    if len(lines) < 2 or len(fields) != 2 or not all(f.isdigit() for f in fields):
        return False  # no header: only text files (GloVe's) go without one
    record = lines[1]
    space = record.find(b" ")
    numbers = record[space + 1:space + 1 + min(4 * int(fields[1]), 256)] if space >= 0 else b""
    return not set(numbers) <= _TEXT_NUMBER_BYTES


def _read_model_directory(path: Path, where: str) -> InitModel:
    from w2v.embeddings import METADATA_JSON, VECTORS_NPY, WORDS_TXT

    if not (path / VECTORS_NPY).is_file() or not (path / WORDS_TXT).is_file():
        raise W2VError(f"{where} is a directory without a model of this project ({VECTORS_NPY} and {WORDS_TXT}): "
                       f"give a model directory (as the train stage writes data/model) or a word2vec vector file")
    metadata = {}
    if (path / METADATA_JSON).is_file():
        try:
            metadata = json.loads((path / METADATA_JSON).read_text(encoding="utf-8"))
        except ValueError:
            raise W2VError(f"{where}: {METADATA_JSON} is not valid JSON (damaged?)") from None
    names = [INPUT] + [name for name in (HIERARCHICAL, NEGATIVE) if (path / f"{name}.npy").is_file()]
    files = {name: path / (VECTORS_NPY if name == INPUT else f"{name}.npy") for name in names}
    try:
        matrices = {name: np.load(file, allow_pickle=False) for name, file in files.items()}
    except (ValueError, OSError) as exc:
        raise W2VError(f"{where}: cannot read its matrices ({exc})") from None
    words = (path / WORDS_TXT).read_text(encoding="utf-8").split("\n")[:-1]
    syn0 = matrices[INPUT]
    if syn0.ndim != 2 or syn0.dtype != np.float32 or len(syn0) != len(words):
        raise W2VError(f"{where}: {VECTORS_NPY} ({syn0.dtype} {syn0.shape}) is not one float32 row per word of "
                       f"{WORDS_TXT} ({len(words)} words)")
    for name, matrix in matrices.items():
        if matrix.shape[1:] != syn0.shape[1:] or matrix.dtype != np.float32:
            raise W2VError(f"{where}: {files[name].name} ({matrix.dtype} {matrix.shape}) does not match "
                           f"{VECTORS_NPY} ({syn0.shape})")
    listing = "".join(f"{file.name} {sha256_file(file)}\n" for file in [path / WORDS_TXT, *files.values()])
    return InitModel(path, MODEL_DIRECTORY, pa.array(words, pa.string()), matrices,
                     hashlib.sha256(listing.encode()).hexdigest(), metadata.get("vocab_sha256"))


def check_dimension(init: InitModel, dim: int) -> None:
    if init.dim != dim:
        raise W2VError(f"train.init_from = {str(init.path)!r} holds {init.dim}-dimensional vectors but train.dim = "
                       f"{dim}: set train.dim to {init.dim}, or start from vectors of {dim} dimensions")


def start_from(init: InitModel, words: pa.Array, vocab_sha256: str, matrices: Matrices) -> WarmStart:
    """Overwrite, in place, the rows of the corpus words the init model has, in every matrix it can give."""
    check_dimension(init, matrices[INPUT].shape[1])
    found = pc.fill_null(pc.index_in(words.cast(pa.string()), value_set=init.words), -1).to_numpy()
    found = found.astype(np.int64)
    rows = np.flatnonzero(found >= 0)
    taken, notes = [], []
    for name, matrix in matrices.items():
        source = init.matrices.get(name)
        if source is None:
            notes.append(f"{name} starts as a fresh model's: the init model has none")
        elif name == HIERARCHICAL:  # rows are tree nodes: meaningful only for the very same vocabulary
            if init.vocab_sha256 == vocab_sha256 and len(source) == len(matrix):
                matrix[:] = source
                taken.append(name)
            else:
                notes.append(f"{name} starts at zero: the init model's vocabulary (hence its Huffman tree) is not "
                             f"this corpus's")
        else:
            matrix[rows] = source[found[rows]]
            taken.append(name)
    return WarmStart(init, found, tuple(taken), notes)


def extra_rows(start: WarmStart, names: tuple[str, ...]) -> tuple[list[str], Matrices]:
    """The init model's words the corpus lacks and their rows as the init model has them (zeros for an output
    matrix it lacks; ``syn1``, a tree's rows, has none per word): for ``train.keep_init_words``."""
    rows = start.init_only
    words = start.init.words.take(pa.array(rows, pa.int64())).to_pylist()
    dim = start.init.dim
    extra = {name: start.init.matrices[name][rows] if name in start.init.matrices
             else np.zeros((len(rows), dim), dtype=np.float32) for name in names if name != HIERARCHICAL}
    return words, extra
