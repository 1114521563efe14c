"""Word-similarity and analogy benchmarks, computed as gensim computes them, but batched. Needs numpy alone.

* :func:`evaluate_word_pairs` = gensim's ``KeyedVectors.evaluate_word_pairs`` (tab-separated ``word1 word2
  score``, ``#`` comments, case-insensitive, pairs with an unknown word skipped and counted): Spearman and
  Pearson correlation of cosine similarity with the human scores.
* :func:`evaluate_word_analogies` = gensim's ``evaluate_word_analogies`` (``: section`` headers, ``a b c d``
  lines, case-insensitive, vocabulary restricted to the ``restrict_vocab`` most frequent words, the question
  words excluded from the answers) for 3CosAdd, plus the same protocol with 3CosMul. All questions of the
  file are answered with a few matrix products on unit vectors instead of one query at a time.

Malformed lines (wrong number of fields, a score that is not a number) are skipped and counted, as gensim does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from w2v.embeddings import Embeddings, query_scores
from w2v.portable_linalg import pearson, row_dots

QUERY_BATCH = 512  # analogy queries per matrix product: 512 x 30k float32 scores = 61 MB


class BenchmarkError(ValueError):
    """A benchmark file that cannot be used at all."""


def _upper_index(emb: Embeddings, restrict_vocab: int) -> dict[str, int]:
    """UPPER-cased word → row, among the first ``restrict_vocab`` rows; the most frequent spelling wins."""
    return {word.upper(): i for i, word in reversed(list(enumerate(emb.words[:restrict_vocab])))}


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing the mean of their ranks (as pandas' and scipy's default)."""
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    mean_rank = (starts + ends + 1) / 2.0  # ranks starts+1 .. ends, averaged
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    return pearson(average_ranks(x), average_ranks(y))


def evaluate_word_pairs(emb: Embeddings, path: Path | str, restrict_vocab: int = 300_000) -> dict:
    """Spearman/Pearson of cosine similarity against the human scores of a word-pair file."""
    path = Path(path)
    vocab = _upper_index(emb, restrict_vocab)
    gold: list[float] = []
    model: list[tuple[int, int]] = []
    oov = malformed = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        fields = line.split("\t")
        try:
            a, b, text = fields
            score = float(text)
        except ValueError:
            malformed += 1
            continue
        a, b = a.upper(), b.upper()
        if a not in vocab or b not in vocab:
            oov += 1
            continue
        gold.append(score)
        model.append((vocab[a], vocab[b]))
    total = len(gold) + oov
    if total == 0:
        raise BenchmarkError(f"{path}: no word pairs ({malformed} malformed lines): expected 'word TAB word TAB "
                             f"score' lines")
    coverage = {"pairs": total, "oov": oov, "oov_ratio": oov / total, "malformed_lines": malformed}
    if len(gold) < 2:  # a corpus the benchmark does not cover (another language, a domain): a result, not an error
        return {"spearman": None, "pearson": None, **coverage}
    rows = np.array(model)
    gold_a, model_a = np.array(gold), row_dots(emb.unit[rows[:, 0]], emb.unit[rows[:, 1]]).astype(np.float64)
    return {"spearman": _spearman(gold_a, model_a), "pearson": pearson(gold_a, model_a),
            **coverage}


@dataclass
class Section:
    name: str
    correct: int = 0
    answered: int = 0
    questions: int = 0
    # Filled by evaluate: (a, b, c, expected) as rows of the restricted vocabulary, for the answered ones.
    rows: list[tuple[int, int, int, int]] = field(default_factory=list)

    @property
    def semantic(self) -> bool:
        return not self.name.startswith("gram")  # Google's 9 syntactic sections are gram1-..gram9-


def read_analogies(path: Path, vocab: dict[str, int]) -> tuple[list[Section], int]:
    sections: list[Section] = []
    malformed = 0
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith(": "):
            sections.append(Section(line[2:].strip()))
            continue
        if not line.strip():
            continue
        if not sections:
            raise BenchmarkError(f"{path}:{line_no}: a question before the first ': section' line")
        words = line.upper().split()
        if len(words) != 4:
            malformed += 1
            continue
        section = sections[-1]
        section.questions += 1
        if all(w in vocab for w in words):
            section.rows.append((vocab[words[0]], vocab[words[1]], vocab[words[2]], vocab[words[3]]))
    return sections, malformed


def answer(unit: np.ndarray, questions: np.ndarray, method: str, words_upper: list[str]) -> np.ndarray:
    """The predicted row for each (a, b, c, expected) question: best-scoring row that is not a, b or c (nor a
    spelling of them, as gensim's check on the upper-cased top 5), by 3CosAdd or 3CosMul."""
    predicted = np.empty(len(questions), dtype=np.int64)
    for lo in range(0, len(questions), QUERY_BATCH):
        batch = questions[lo:lo + QUERY_BATCH]
        scores = query_scores(unit, unit, batch[:, 1:3], batch[:, :1], method)  # b - a + c
        rows = np.arange(len(batch))
        for col in range(3):
            scores[rows, batch[:, col]] = -np.inf
        top = np.argpartition(-scores, 4, axis=1)[:, :5] if scores.shape[1] > 5 else np.argsort(-scores, axis=1)
        order = np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, 1), axis=1, kind="stable"), 1)
        for i, candidates in enumerate(order):
            ignore = {words_upper[j] for j in batch[i, :3]}
            choice = candidates[-1]
            for j in candidates:
                if words_upper[j] not in ignore:
                    choice = j
                    break
            predicted[lo + i] = choice
    return predicted


def evaluate_word_analogies(emb: Embeddings, path: Path | str, restrict_vocab: int = 30_000,
                            methods: tuple[str, ...] = ("3cosadd", "3cosmul")) -> dict:
    """Accuracy per method overall, semantic/syntactic and per section, with coverage."""
    path = Path(path)
    vocab = _upper_index(emb, restrict_vocab)
    sections, malformed = read_analogies(path, vocab)
    total = sum(s.questions for s in sections)
    if total == 0:
        raise BenchmarkError(f"{path}: no analogy questions ('a b c d' lines under ': section' headers)")
    unit = emb.unit[:restrict_vocab]
    words_upper = [w.upper() for w in emb.words[:restrict_vocab]]
    questions = np.array([row for s in sections for row in s.rows], dtype=np.int64).reshape(-1, 4)
    owner = np.repeat(np.arange(len(sections)), [len(s.rows) for s in sections])
    result: dict[str, object] = {"questions": total, "answered": len(questions), "coverage": len(questions) / total,
              "restrict_vocab": restrict_vocab, "malformed_lines": malformed}
    for method in methods:
        hit = (answer(unit, questions, method, words_upper) == questions[:, 3]) if len(questions) else np.zeros(0, bool)
        per_section = {s.name: {"correct": int(hit[owner == k].sum()), "answered": len(s.rows),
                                "questions": s.questions,
                                "accuracy": float(hit[owner == k].mean()) if len(s.rows) else None}
                       for k, s in enumerate(sections)}
        semantic = np.isin(owner, [k for k, s in enumerate(sections) if s.semantic])
        result[method] = {
            "accuracy": float(hit.mean()) if len(hit) else None,  # None: no question answerable
            "correct": int(hit.sum()),
            "semantic": float(hit[semantic].mean()) if semantic.any() else None,
            "syntactic": float(hit[~semantic].mean()) if (~semantic).any() else None,
            "sections": per_section,
        }
    return result
