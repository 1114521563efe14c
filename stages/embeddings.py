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

from stages.arrow_io import reading
from stages.console import UserError

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


class UnknownWord(KeyError):
    """A query word that is not in the vocabulary; carries close matches to suggest."""

    def __init__(self, word: str, suggestions: list[str]) -> None:
        super().__init__(word)
        self.word, self.suggestions = word, suggestions

    def __str__(self) -> str:
        hint = f"; did you mean {', '.join(self.suggestions)}?" if self.suggestions else ""
        return f"{self.word!r} is not in the vocabulary{hint}"


class Embeddings:
    """Word vectors with gensim ``KeyedVectors``-style queries, unit-normalised once.

    >>> emb = Embeddings.load("data/model")
    >>> emb.most_similar("king", topn=3)
    >>> emb.similarity("cat", "dog")
    >>> emb.analogy("man", "king", "woman")     # man is to king as woman is to ?

    Rows are in vocabulary order (most frequent first), so ``restrict_vocab=N`` means the N most frequent words.
    Scores follow gensim's formulas (float32, mean of unit vectors for 3CosAdd, Levy & Goldberg's shifted
    3CosMul), so both tools give the same answers on the same vectors.
    """

    def __init__(self, words: list[str], vectors: np.ndarray) -> None:
        if len(words) != len(vectors):
            raise ValueError(f"{len(words)} words but {len(vectors)} vectors")
        self.words = list(words)
        self.vectors = np.asarray(vectors, dtype=np.float32)
        self.key_to_index = {word: i for i, word in enumerate(self.words)}
        norms = np.linalg.norm(self.vectors, axis=1)
        self.unit = self.vectors / np.where(norms > 0, norms, 1).astype(np.float32)[:, None]

    @classmethod
    def load(cls, directory: Path | str) -> "Embeddings":
        directory = Path(directory)
        with reading(directory / WORDS_TXT):
            words = (directory / WORDS_TXT).read_text(encoding="utf-8").split("\n")[:-1]
        with reading(directory / VECTORS_NPY):
            vectors = np.load(directory / VECTORS_NPY)
        if vectors.ndim != 2 or len(vectors) != len(words):
            raise UserError(f"{directory}: {VECTORS_NPY} holds {vectors.shape} vectors for {len(words)} words in "
                            f"{WORDS_TXT}: the model is damaged; rebuild it with `dvc repro --force train`")
        return cls(words, vectors)

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.key_to_index

    def index(self, word: str) -> int:
        try:
            return self.key_to_index[word]
        except KeyError:
            raise UnknownWord(word, self.suggest(word)) from None

    def suggest(self, word: str, n: int = 3, search: int = 50_000) -> list[str]:
        """Close spellings among the ``search`` most frequent words (difflib ratio)."""
        import difflib

        lowered = word.lower()
        if lowered != word and lowered in self.key_to_index:
            return [lowered]
        return difflib.get_close_matches(word, self.words[:search], n=n, cutoff=0.75)

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of two words."""
        return float(self.unit[self.index(a)] @ self.unit[self.index(b)])

    def _top(self, scores: np.ndarray, exclude: set[int], topn: int) -> list[tuple[str, float]]:
        count = min(len(scores), topn + len(exclude))
        best = np.argpartition(-scores, count - 1)[:count] if count < len(scores) else np.arange(len(scores))
        best = best[np.argsort(-scores[best], kind="stable")]
        return [(self.words[i], float(scores[i])) for i in best if i not in exclude][:topn]

    def _search(self, positive: list[str] | str, negative: list[str] | str, topn: int, restrict_vocab: int | None,
                method: str) -> list[tuple[str, float]]:
        positive = [self.index(w) for w in ([positive] if isinstance(positive, str) else positive)]
        negative = [self.index(w) for w in ([negative] if isinstance(negative, str) else negative)]
        scores = query_scores(self.unit, self.unit[:restrict_vocab], np.array([positive]),
                              np.array([negative], dtype=np.int64).reshape(1, -1), method)[0]
        return self._top(scores, set(positive + negative), topn)

    def most_similar(self, positive: list[str] | str, negative: list[str] | str = (), topn: int = 10,
                     restrict_vocab: int | None = None) -> list[tuple[str, float]]:
        """Nearest words to the mean of the positive unit vectors minus the negative ones (3CosAdd)."""
        return self._search(positive, negative, topn, restrict_vocab, "3cosadd")

    def most_similar_cosmul(self, positive: list[str] | str, negative: list[str] | str = (), topn: int = 10,
                            restrict_vocab: int | None = None) -> list[tuple[str, float]]:
        """3CosMul (Levy & Goldberg 2014), as gensim's ``most_similar_cosmul``."""
        return self._search(positive, negative, topn, restrict_vocab, "3cosmul")

    def analogy(self, a: str, b: str, c: str, topn: int = 1, method: str = "3cosadd",
                restrict_vocab: int | None = None) -> list[tuple[str, float]]:
        """a is to b as c is to ?: the words closest to b - a + c."""
        search = self.most_similar if method == "3cosadd" else self.most_similar_cosmul
        return search([b, c], [a], topn=topn, restrict_vocab=restrict_vocab)


def query_scores(unit: np.ndarray, candidates: np.ndarray, positive: np.ndarray, negative: np.ndarray,
                 method: str = "3cosadd") -> np.ndarray:
    """(n, candidates) scores of n queries, by gensim's formulas in float32. ``positive`` (n, k) and ``negative``
    (n, m) are rows of ``unit``; ``candidates`` are the unit vectors searched.

    3CosAdd: cosine with the unit-normalised mean of the positive and negated negative unit vectors.
    3CosMul (Levy & Goldberg 2014): Π (1 + cos(x, p))/2 / (Π (1 + cos(x, n))/2 + 1e-6).
    """
    if method == "3cosadd":
        mean = (unit[positive].sum(axis=1) - unit[negative].sum(axis=1)) / (positive.shape[1] + negative.shape[1])
        mean /= np.linalg.norm(mean, axis=1, keepdims=True)
        return mean @ candidates.T

    def shifted_product(rows: np.ndarray) -> np.ndarray | float:
        return np.prod([(1 + unit[rows[:, j]] @ candidates.T) / 2 for j in range(rows.shape[1])], axis=0)

    return shifted_product(positive) / (shifted_product(negative) + 1e-6)
