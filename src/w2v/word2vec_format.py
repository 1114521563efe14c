"""word2vec.c's text and binary vector formats, read and written in blocks of rows. Needs numpy alone (numba, when
installed, makes the text writer several times faster, to the same bytes).

* **text**: a "count dim" header, then "word v1 ... vdim" per line. Each number is written with 9 significant
  digits in exponent form (``-1.25730224e-02``), which reads back to exactly the same float32 (9 digits always
  suffice for float32), whatever the reader: gensim, word2vec.c, ``float()``. Every row therefore costs the same
  to write, with no per-number formatting call: 354k × 100 numbers in well under the seconds pandas took.
* **binary**: the header, then per word "word " + dim little-endian float32 + newline.

A file without the header (as GloVe writes its text files) reads too.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Sequence, no_type_check

import numpy as np

from w2v.errors import DamagedFileError

BLOCK_ROWS = 16_384
NUMBER_WIDTH = 15  # d.dddddddde±XX, plus a leading "-" when negative
# 10**k as float64, each correctly rounded (Python parses "1e-30" the same on every platform).
POWERS_OF_TEN = np.array([float(f"1e{k}") for k in range(-60, 61)])
DIGITS = np.frombuffer(b"0123456789", dtype=np.uint8)


def _decimal_digits(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(9-digit significand as int64, decimal exponent) of each float32: |x| = s · 10**(e - 8), rounded to
    nearest. A first guess of e (log10 here, the binary exponent in the compiled writer) is corrected until the
    significand has 9 digits, so the result does not depend on how the guess was made."""
    a = np.abs(values.astype(np.float64))
    nonzero = a > 0
    exponent = np.zeros(len(a), dtype=np.int64)
    exponent[nonzero] = np.floor(np.log10(a[nonzero])).astype(np.int64)
    significand = np.rint(a * POWERS_OF_TEN[68 - exponent])
    while True:  # until every significand has exactly 9 digits: e is then the one exponent that gives that
        high, low = significand >= 1e9, nonzero & (significand < 1e8)
        fix = high | low
        if not fix.any():
            return significand.astype(np.int64), exponent
        exponent += high.astype(np.int64) - low
        significand[fix] = np.rint(a[fix] * POWERS_OF_TEN[68 - exponent[fix]])


def _format_numbers(values: np.ndarray) -> np.ndarray:
    """Each float32 as 16 bytes: " ", "-" (0 when positive, dropped later), d.dddddddde±XX (numpy; the numba
    kernel writes the same bytes)."""
    significand, exponent = _decimal_digits(values)
    out = np.empty((len(values), NUMBER_WIDTH + 1), dtype=np.uint8)
    out[:, 0] = ord(" ")
    out[:, 1] = np.where(np.signbit(values), ord("-"), 0)
    for k in range(9):
        out[:, 2 + k + (k > 0)] = DIGITS[(significand // 10 ** (8 - k)) % 10]
    out[:, 3], out[:, 12] = ord("."), ord("e")
    out[:, 13] = np.where(exponent < 0, ord("-"), ord("+"))
    out[:, 14], out[:, 15] = DIGITS[np.abs(exponent) // 10], DIGITS[np.abs(exponent) % 10]
    return out


def _text_rows_numpy(words: list[bytes], vectors: np.ndarray) -> bytes:
    numbers = _format_numbers(vectors.reshape(-1)).reshape(len(words), -1)
    return b"".join(word + row[row != 0].tobytes() + b"\n" for word, row in zip(words, numbers))


@functools.cache
def _text_rows_kernel():
    """The same formatting, compiled (None without numba)."""
    try:
        from numba import njit, prange
    except ImportError:
        return None
    import math

    @njit(parallel=True, cache=True)
    @no_type_check  # numba types it; mypy would read its numpy scalars as objects
    def fill(word_bytes, word_ends, vectors, bits, row_ends, powers, out):  # pragma: no cover - compiled
        for row in prange(len(row_ends)):
            at = row_ends[row - 1] if row > 0 else 0
            start = word_ends[row - 1] if row > 0 else 0
            for k in range(start, word_ends[row]):
                out[at] = word_bytes[k]
                at += 1
            for column in range(vectors.shape[1]):
                value = vectors[row, column]
                out[at] = 32  # " "
                at += 1
                if math.copysign(1.0, value) < 0:  # -0.0 too, as numpy's signbit
                    out[at] = 45  # "-"
                    at += 1
                a = abs(np.float64(value))
                # log10(2**(binary exponent)), close enough for a first guess
                exponent = np.int64(((bits[row, column] >> 23) & 0xFF) - 127) * 30103 // 100000 if a > 0 else 0
                significand = np.rint(a * powers[68 - exponent])
                while significand >= 1e9 or (a > 0 and significand < 1e8):
                    exponent += 1 if significand >= 1e9 else -1
                    significand = np.rint(a * powers[68 - exponent])
                digits = np.int64(significand)
                for k in range(9):
                    out[at + k + (k > 0)] = 48 + (digits // 10 ** (8 - k)) % 10
                out[at + 1] = 46  # "."
                out[at + 10] = 101  # "e"
                out[at + 11] = 45 if exponent < 0 else 43
                out[at + 12] = 48 + abs(exponent) // 10
                out[at + 13] = 48 + abs(exponent) % 10
                at += 14
            out[at] = 10  # "\n"

    return fill


def _text_rows(words: list[bytes], vectors: np.ndarray) -> bytes | memoryview:
    kernel = _text_rows_kernel()
    if kernel is None:
        return _text_rows_numpy(words, vectors)
    word_lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
    negatives = np.signbit(vectors).sum(axis=1)
    row_lengths = word_lengths + vectors.shape[1] * (NUMBER_WIDTH - 1 + 1) + negatives + 1
    out = np.empty(int(row_lengths.sum()), dtype=np.uint8)
    kernel(np.frombuffer(b"".join(words), dtype=np.uint8), np.cumsum(word_lengths), vectors,
           vectors.view(np.uint32), np.cumsum(row_lengths), POWERS_OF_TEN, out)
    return out.data  # written as it is: no copy into bytes


def write_word2vec_text(path: Path | str, words: Sequence[str], vectors: np.ndarray) -> None:
    rows = np.ascontiguousarray(vectors, dtype=np.float32)
    with open(path, "wb") as handle:
        handle.write(f"{len(words)} {rows.shape[1]}\n".encode())
        for lo in range(0, len(rows), BLOCK_ROWS):
            handle.write(_text_rows([w.encode("utf-8") for w in words[lo:lo + BLOCK_ROWS]], rows[lo:lo + BLOCK_ROWS]))


def write_word2vec_binary(path: Path | str, words: Sequence[str], vectors: np.ndarray) -> None:
    rows = np.ascontiguousarray(vectors, dtype="<f4")
    with open(path, "wb") as handle:
        handle.write(f"{len(words)} {rows.shape[1]}\n".encode())
        for lo in range(0, len(rows), BLOCK_ROWS):
            handle.write(b"".join(word.encode("utf-8") + b" " + row.tobytes() + b"\n"
                                  for word, row in zip(words[lo:lo + BLOCK_ROWS], rows[lo:lo + BLOCK_ROWS])))


def _header(line: bytes) -> tuple[int, int] | None:
    fields = line.split()
    if len(fields) == 2 and all(f.isdigit() for f in fields):
        return int(fields[0]), int(fields[1])
    return None


def read_word2vec_binary(path: Path | str, limit: int | None = None) -> tuple[list[str], np.ndarray]:
    """(words, float32 vectors) of a word2vec.c binary file."""
    path = Path(path)
    data = path.read_bytes()
    end = data.find(b"\n")
    shape = _header(data[:end]) if end > 0 else None
    if shape is None:
        raise DamagedFileError(path, "not a word2vec binary file: its first line is not 'count dim'")
    count, dim = shape
    count = min(count, limit) if limit is not None else count
    words, vectors = [], np.empty((count, dim), dtype=np.float32)
    pos, row_bytes = end + 1, 4 * dim
    for i in range(count):
        while data[pos:pos + 1] in (b"\n", b" "):  # the newline after the previous vector (word2vec.c writes it)
            pos += 1
        space = data.find(b" ", pos)
        if space < 0 or space + 1 + row_bytes > len(data):
            raise DamagedFileError(path, f"ends after {i} of {count} vectors (truncated?)")
        words.append(data[pos:space].decode("utf-8"))
        vectors[i] = np.frombuffer(data, dtype="<f4", count=dim, offset=space + 1)
        pos = space + 1 + row_bytes
    return words, vectors


def read_word2vec_text(path: Path | str, limit: int | None = None) -> tuple[list[str], np.ndarray]:
    """(words, float32 vectors) of a word2vec text file, with or without the "count dim" header line."""
    path = Path(path)
    with open(path, "rb") as handle:
        lines = handle.read().split(b"\n")
    shape = _header(lines[0]) if lines else None
    body = [line for line in lines[1 if shape else 0:] if line.strip()]
    if limit is not None:
        body = body[:limit]
    words, numbers = [], []
    for line in body:
        word, _, rest = line.strip().partition(b" ")
        words.append(word.decode("utf-8"))
        numbers.append(rest)
    flat = np.array(b" ".join(numbers).split(), dtype=np.float64).astype(np.float32)
    dim = shape[1] if shape else (len(numbers[0].split()) if numbers else 0)
    if shape and limit is None and len(words) != shape[0]:
        raise DamagedFileError(path, f"holds {len(words)} vectors where its header says {shape[0]} (truncated?)")
    if len(flat) != len(words) * dim:
        raise DamagedFileError(path, f"{len(flat)} numbers for {len(words)} words of {dim} dimensions: a line "
                                     f"has the wrong number of values")
    return words, flat.reshape(len(words), dim)
