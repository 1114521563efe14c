"""What the evaluation reports: benchmark scores as metrics, and nearest neighbours as Markdown."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from w2v.embeddings import Embeddings
from w2v.evaluation import evaluate_word_analogies, evaluate_word_pairs

log = logging.getLogger(__name__)


def _rounded(value):
    return round(value, 6) if isinstance(value, float) else value


def benchmark_metrics(emb: Embeddings, word_pairs: dict[str, Path], analogy_files: dict[str, Path],
                      restrict_vocab: int) -> tuple[dict, dict[str, dict]]:
    """(metrics, each analogy file's result with its sections for the report, by name). The metrics nest one
    level per benchmark (``wordsim353.spearman``, ``analogy.3cosadd.accuracy``), as tools that show metrics flat
    expect. A benchmark none of whose items the vocabulary covers scores None, with its coverage: a result, not an
    error."""
    metrics = {name: {key: _rounded(value) for key, value in evaluate_word_pairs(emb, path).items()}
               for name, path in word_pairs.items()}
    analogies = {}
    for name, path in analogy_files.items():
        started = time.perf_counter()
        result = analogies[name] = evaluate_word_analogies(emb, path, restrict_vocab)
        log.info("%s: %s analogy questions answered in %.2f s", path, f"{result['answered']:,}",
                 time.perf_counter() - started)
        metrics[name] = {"questions": result["questions"], "answered": result["answered"],
                         "coverage": round(result["coverage"], 6), "restrict_vocab": restrict_vocab,
                         "malformed_lines": result["malformed_lines"]}
        for method in ("3cosadd", "3cosmul"):
            metrics[name][method] = {k: _rounded(result[method][k]) for k in ("accuracy", "semantic", "syntactic")}
    measured = headline(metrics)
    for name, path in {**word_pairs, **analogy_files}.items():
        if metrics[name]["malformed_lines"]:
            log.warning("%s: %d malformed line(s) skipped (counted in the metrics as %s.malformed_lines)",
                        path, metrics[name]["malformed_lines"], name)
        if name not in measured:
            log.warning("%s: not measured: the vocabulary covers %s of it (coverage in metrics/eval_details.json)",
                        path, "none" if name in analogy_files else "fewer than 2 pairs")
    return metrics, analogies


def headline(metrics: dict) -> dict:
    """The scores a user compares between runs (`dvc metrics show`): each analogy file's accuracy (3CosAdd) and
    each word-similarity Spearman; a benchmark that measured nothing is left out rather than shown as 0."""
    analogy = {name: m["3cosadd"]["accuracy"] for name, m in metrics.items() if "3cosadd" in m}
    scores = {**analogy, **{name: m["spearman"] for name, m in metrics.items() if "spearman" in m}}
    return {name: value for name, value in scores.items() if value is not None}


def neighbours(emb: Embeddings, words: tuple[str, ...], topn: int) -> tuple[dict[str, list], list[str]]:
    """Nearest neighbours of each probe word in the vocabulary; and the probe words that are not. When none is
    (a corpus in another language), as many of the most frequent words stand in, so the report and the maps still
    show the space."""
    found = {w: emb.most_similar(w, topn=topn) for w in words if w in emb}
    missing = [w for w in words if w not in emb]
    if not found:
        stand_in = emb.words[:max(len(words), 1)]
        log.warning("no probe word is in the vocabulary: the %d most frequent words stand in", len(stand_in))
        found = {w: emb.most_similar(w, topn=topn) for w in stand_in}
    return found, missing


def _score(value) -> str:
    return "not measured" if value is None else f"{value:.4f}"


def report(found: dict[str, list], missing: list[str], metrics: dict, analogies: dict[str, dict]) -> str:
    lines = ["# Evaluation", ""]
    if metrics:
        lines += ["| benchmark | score | coverage |", "|---|---|---|"]
    else:
        lines += ["No benchmark chosen (`evaluate.word_pairs`, `evaluate.analogies`)."]
    for name in (name for name, m in metrics.items() if "spearman" in m):
        m = metrics[name]
        lines.append(f"| {name} Spearman (Pearson) | {_score(m['spearman'])} ({_score(m['pearson'])}) | "
                     f"{m['pairs'] - m['oov']}/{m['pairs']} pairs |")
    for name in analogies:
        a = metrics[name]
        for method in ("3cosadd", "3cosmul"):
            lines.append(f"| {name} {method} (semantic / syntactic) | {_score(a[method]['accuracy'])} "
                         f"({_score(a[method]['semantic'])} / {_score(a[method]['syntactic'])}) | "
                         f"{a['answered']}/{a['questions']} questions, restrict_vocab {a['restrict_vocab']} |")
    for name, result in analogies.items():
        title = "Analogy sections" if name == "analogy" else f"Analogy sections: {name}"
        lines += ["", f"## {title}", "", "| section | 3CosAdd | 3CosMul | answered / questions |",
                  "|---|---|---|---|"]
        for section, add in result["3cosadd"]["sections"].items():
            mul = result["3cosmul"]["sections"][section]
            lines.append(f"| {section} | {_score(add['accuracy'])} | {_score(mul['accuracy'])} | "
                         f"{add['answered']}/{add['questions']} |")
    lines += ["", "## Nearest neighbours (cosine)", ""]
    for word, near in found.items():
        lines.append(f"**{word}**: " + ", ".join(f"{w} ({s:.3f})" for w, s in near))
        lines.append("")
    if missing:
        lines.append(f"Not in the vocabulary: {', '.join(missing)}")
    return "\n".join(lines).rstrip() + "\n"
