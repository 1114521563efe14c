"""Trained word vectors: the query class and the files it reads and writes. Needs numpy alone.

Formats:

* a **model directory** (what the train step writes): ``vectors.npy`` (float32, row = word id), ``words.txt``
  (one word per line, row = id), the same vectors as ``vectors.txt`` and ``vectors.bin``, ``metadata.json``,
  and the output matrices (``syn1neg.npy``, ``syn1.npy``: what continued training starts from);
* word2vec.c's **text** and **binary** formats (:mod:`w2v.word2vec_format`), which gensim reads and writes
  too (``KeyedVectors.load_word2vec_format``).
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Sequence

import numpy as np

from w2v.errors import DamagedFileError, W2VError
from w2v.portable_linalg import cosines, unit_rows
from w2v.word2vec_format import (
    read_word2vec_binary,
    read_word2vec_text,
    write_word2vec_binary,
    write_word2vec_text,
)

VECTORS_NPY = "vectors.npy"
WORDS_TXT = "words.txt"
VECTORS_TXT = "vectors.txt"
VECTORS_BIN = "vectors.bin"
METADATA_JSON = "metadata.json"


def save_model(directory: Path | str, words: Sequence[str], vectors: np.ndarray,
               outputs: dict[str, np.ndarray] | None = None) -> None:
    """Write every format of the model into ``directory`` (which the caller swaps in atomically); ``outputs``:
    the output matrices by name (``syn1neg.npy``, ``syn1.npy``), which training can start from again
    (``train.init_from``)."""
    directory = Path(directory)
    np.save(directory / VECTORS_NPY, vectors.astype(np.float32, copy=False))
    for name, matrix in (outputs or {}).items():
        np.save(directory / f"{name}.npy", matrix.astype(np.float32, copy=False))
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

    ``query_form`` (``{"lowercase": bool, "normalize": "NFKC" | ... | "none", "phrase_delimiter": "_"}``, read
    from a model directory's metadata) is how the corpus was put into words: a query word not found as typed is
    looked up again in that form, so ``King`` finds ``king`` in a lower-cased model, and ``New York`` finds
    ``new_york`` in a model trained on phrases.
    """

    def __init__(self, words: list[str], vectors: np.ndarray, query_form: dict | None = None) -> None:
        if len(words) != len(vectors):
            raise ValueError(f"{len(words)} words but {len(vectors)} vectors")
        self.query_form = query_form
        self.words = list(words)
        self.vectors = np.asarray(vectors, dtype=np.float32)
        self.key_to_index = {word: i for i, word in enumerate(self.words)}
        self.unit = unit_rows(self.vectors)

    @classmethod
    def load(cls, directory: Path | str) -> "Embeddings":
        """A model directory (``vectors.npy`` + ``words.txt``)."""
        directory = Path(directory)
        for name in (VECTORS_NPY, WORDS_TXT):
            if not (directory / name).is_file():
                raise W2VError(f"{directory / name}: not found; is {directory} a model directory?")
        try:
            words = (directory / WORDS_TXT).read_text(encoding="utf-8").split("\n")[:-1]
        except UnicodeDecodeError as exc:
            raise DamagedFileError(directory / WORDS_TXT, f"cannot be read ({exc}): the file is damaged") from None
        try:
            vectors = np.load(directory / VECTORS_NPY)
        except (OSError, ValueError, EOFError) as exc:
            reason = " ".join(str(exc).split())[:200]
            raise DamagedFileError(directory / VECTORS_NPY, f"cannot be read ({reason}): the file is damaged or "
                                                            f"truncated") from None
        if vectors.ndim != 2 or len(vectors) != len(words):
            raise DamagedFileError(directory, f"{VECTORS_NPY} holds {vectors.shape} vectors for {len(words)} words "
                                              f"in {WORDS_TXT}: the model is damaged")
        query_form = None
        if (directory / METADATA_JSON).is_file():
            try:
                query_form = json.loads((directory / METADATA_JSON).read_text(encoding="utf-8")).get("tokenize")
            except (ValueError, AttributeError) as exc:
                raise DamagedFileError(directory / METADATA_JSON, f"cannot be read ({exc})") from None
        return cls(words, vectors, query_form)

    @classmethod
    def load_word2vec_format(cls, path: Path | str, binary: bool | None = None,
                             limit: int | None = None) -> "Embeddings":
        """A word2vec text or binary file (``binary=None``: binary unless the name ends in .txt); ``limit`` keeps
        the first (most frequent) words only."""
        path = Path(path)
        if not path.is_file():
            raise W2VError(f"{path}: not found")
        if binary is None:
            binary = path.suffix.lower() != ".txt"
        try:
            words, vectors = (read_word2vec_binary if binary else read_word2vec_text)(path, limit)
        except UnicodeDecodeError as exc:
            raise DamagedFileError(path, f"a word is not valid UTF-8 ({exc})") from None
        except ValueError as exc:  # a number that does not parse
            raise DamagedFileError(path, f"not a word2vec {'binary' if binary else 'text'} file ({exc})") from None
        return cls(words, vectors)

    def save(self, directory: Path | str) -> None:
        """Write a model directory: ``vectors.npy``, ``words.txt``, ``vectors.txt``, ``vectors.bin``."""
        Path(directory).mkdir(parents=True, exist_ok=True)
        save_model(directory, self.words, self.vectors)

    def save_word2vec_format(self, path: Path | str, binary: bool = False) -> None:
        """Write word2vec.c's text format (or, with ``binary``, its binary one), as gensim writes and reads it."""
        (write_word2vec_binary if binary else write_word2vec_text)(path, self.words, self.vectors)

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return self._find(word) is not None

    def in_query_form(self, word: str) -> str:
        """The word as the corpus would have been tokenised: normalised, lower-cased, and a phrase's words joined
        by the phrases stage's delimiter (``New York`` → ``new_york``), per ``query_form``."""
        form = self.query_form or {}
        if form.get("normalize", "none") != "none":
            word = unicodedata.normalize(form["normalize"], word)
        if form.get("phrase_delimiter"):
            word = form["phrase_delimiter"].join(word.split())
        return word.lower() if form.get("lowercase") else word

    def _find(self, word: str) -> int | None:
        found = self.key_to_index.get(word)
        return self.key_to_index.get(self.in_query_form(word)) if found is None and self.query_form else found

    def index(self, word: str) -> int:
        found = self._find(word)
        if found is None:
            raise UnknownWord(word, self.suggest(word))
        return found

    def suggest(self, word: str, n: int = 3, search: int = 50_000) -> list[str]:
        """Close spellings among the ``search`` most frequent words (difflib ratio)."""
        import difflib

        lowered = word.lower()
        if lowered != word and lowered in self.key_to_index:
            return [lowered]
        return difflib.get_close_matches(word, self.words[:search], n=n, cutoff=0.75)

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of two words."""
        return float(cosines(self.unit[self.index(a)], self.unit[[self.index(b)]])[0, 0])

    def _top(self, scores: np.ndarray, exclude: set[int], topn: int) -> list[tuple[str, float]]:
        count = min(len(scores), topn + len(exclude))
        best = np.argpartition(-scores, count - 1)[:count] if count < len(scores) else np.arange(len(scores))
        best = best[np.argsort(-scores[best], kind="stable")]
        return [(self.words[i], float(scores[i])) for i in best if i not in exclude][:topn]

    def _search(self, positive: Sequence[str] | str, negative: Sequence[str] | str, topn: int,
                restrict_vocab: int | None, method: str) -> list[tuple[str, float]]:
        plus = [self.index(w) for w in ([positive] if isinstance(positive, str) else positive)]
        minus = [self.index(w) for w in ([negative] if isinstance(negative, str) else negative)]
        scores = query_scores(self.unit, self.unit[:restrict_vocab], np.array([plus]),
                              np.array([minus], dtype=np.int64).reshape(1, -1), method)[0]
        return self._top(scores, set(plus + minus), topn)

    def most_similar(self, positive: Sequence[str] | str, negative: Sequence[str] | str = (), topn: int = 10,
                     restrict_vocab: int | None = None) -> list[tuple[str, float]]:
        """Nearest words to the mean of the positive unit vectors minus the negative ones (3CosAdd)."""
        return self._search(positive, negative, topn, restrict_vocab, "3cosadd")

    def most_similar_cosmul(self, positive: Sequence[str] | str, negative: Sequence[str] | str = (), topn: int = 10,
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
    """(n, candidates) scores of n queries, by gensim's formulas in float32 (every product by
    :func:`w2v.portable_linalg.cosines`, the same bits on every CPU and BLAS). ``positive`` (n, k) and ``negative``
    (n, m) are rows of ``unit``; ``candidates`` are the unit vectors searched.

    3CosAdd: cosine with the unit-normalised mean of the positive and negated negative unit vectors.
    3CosMul (Levy & Goldberg 2014): Π (1 + cos(x, p))/2 / (Π (1 + cos(x, n))/2 + 1e-6).
    """
    if method == "3cosadd":
        mean = (unit[positive].sum(axis=1) - unit[negative].sum(axis=1)) / (positive.shape[1] + negative.shape[1])
        return cosines(unit_rows(mean), candidates)

    def shifted_product(rows: np.ndarray) -> np.ndarray:
        return np.prod([(1 + cosines(unit[rows[:, j]], candidates)) / 2 for j in range(rows.shape[1])], axis=0)

    return shifted_product(positive) / (shifted_product(negative) + 1e-6)
