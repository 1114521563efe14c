"""Trained word vectors on disk: the model directory and word2vec's text and binary formats.

A model directory (``data/model``) holds ``vectors.npy`` (float32, row = word id), ``words.txt`` (one word per
line, row = id), and the same vectors as ``vectors.txt`` / ``vectors.bin`` in the formats of word2vec.c, which
gensim reads with ``KeyedVectors.load_word2vec_format(path, binary=...)``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

VECTORS_NPY = "vectors.npy"
WORDS_TXT = "words.txt"
VECTORS_TXT = "vectors.txt"
VECTORS_BIN = "vectors.bin"


def write_word2vec_text(path: Path, words: list[str], vectors: np.ndarray) -> None:
    """word2vec text format: a "count dim" header, then "word v1 ... vdim" per line. %.9g keeps every float32
    bit, so the text file loads to exactly the binary one."""
    frame = pd.DataFrame(vectors)
    frame.insert(0, "word", words)
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(f"{len(words)} {vectors.shape[1]}\n")
        frame.to_csv(handle, sep=" ", header=False, index=False, float_format="%.9g", quoting=csv.QUOTE_NONE,
                     lineterminator="\n")


def write_word2vec_binary(path: Path, words: list[str], vectors: np.ndarray) -> None:
    """word2vec.c binary format: a "count dim" header line, then per word "word " + dim little-endian
    float32 + newline."""
    rows = np.ascontiguousarray(vectors, dtype="<f4")
    with open(path, "wb") as handle:
        handle.write(f"{len(words)} {vectors.shape[1]}\n".encode())
        handle.write(b"".join(word.encode("utf-8") + b" " + row.tobytes() + b"\n" for word, row in zip(words, rows)))


def save_model(directory: Path, words: list[str], vectors: np.ndarray) -> None:
    """Write every format of the model into ``directory`` (which the caller swaps in atomically)."""
    np.save(directory / VECTORS_NPY, vectors.astype(np.float32, copy=False))
    (directory / WORDS_TXT).write_text("".join(word + "\n" for word in words), encoding="utf-8")
    write_word2vec_text(directory / VECTORS_TXT, words, vectors)
    write_word2vec_binary(directory / VECTORS_BIN, words, vectors)
