"""What the evaluation reports: benchmark scores as metrics, and nearest neighbours as Markdown."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from w2v.embeddings import Embeddings
from w2v.evaluation import evaluate_word_analogies, evaluate_word_pairs

log = logging.getLogger(__name__)


def benchmark_metrics(emb: Embeddings, word_pairs: dict[str, Path], analogies_file: Path,
                      restrict_vocab: int) -> tuple[dict, dict]:
    """(metrics, the analogy result with its sections for the report). The metrics nest one level per benchmark
    (``wordsim353.spearman``, ``analogy.3cosadd.accuracy``), as tools that show metrics flat expect."""
    metrics = {}
    for name, path in word_pairs.items():
        scores = evaluate_word_pairs(emb, path)
        metrics[name] = {key: round(value, 6) if isinstance(value, float) else value for key, value in scores.items()}
    started = time.perf_counter()
    analogies = evaluate_word_analogies(emb, analogies_file, restrict_vocab)
    log.info("%s analogy questions answered in %.2f s", f"{analogies['answered']:,}", time.perf_counter() - started)
    metrics["analogy"] = {"questions": analogies["questions"], "answered": analogies["answered"],
                          "coverage": round(analogies["coverage"], 6), "restrict_vocab": restrict_vocab,
                          "malformed_lines": analogies["malformed_lines"]}
    for name, path in {**word_pairs, "analogy": analogies_file}.items():
        if metrics[name]["malformed_lines"]:
            log.warning("%s: %d malformed line(s) skipped (counted in the metrics as %s.malformed_lines)",
                        path, metrics[name]["malformed_lines"], name)
    for method in ("3cosadd", "3cosmul"):
        metrics["analogy"][method] = {k: round(analogies[method][k], 6)
                                      for k in ("accuracy", "semantic", "syntactic")}
    return metrics, analogies


def neighbours(emb: Embeddings, words: tuple[str, ...], topn: int) -> tuple[dict[str, list], list[str]]:
    """Nearest neighbours of each probe word in the vocabulary; and the probe words that are not."""
    found = {w: emb.most_similar(w, topn=topn) for w in words if w in emb}
    return found, [w for w in words if w not in emb]


def report(found: dict[str, list], missing: list[str], metrics: dict, analogies: dict) -> str:
    lines = ["# Evaluation", "", "| benchmark | score | coverage |", "|---|---|---|"]
    for name in (name for name, m in metrics.items() if "spearman" in m):
        m = metrics[name]
        lines.append(f"| {name} Spearman (Pearson) | {m['spearman']:.4f} ({m['pearson']:.4f}) | "
                     f"{m['pairs'] - m['oov']}/{m['pairs']} pairs |")
    a = metrics["analogy"]
    for method in ("3cosadd", "3cosmul"):
        lines.append(f"| analogy {method} (semantic / syntactic) | {a[method]['accuracy']:.4f} "
                     f"({a[method]['semantic']:.4f} / {a[method]['syntactic']:.4f}) | "
                     f"{a['answered']}/{a['questions']} questions, restrict_vocab {a['restrict_vocab']} |")
    lines += ["", "## Analogy sections", "", "| section | 3CosAdd | 3CosMul | answered / questions |",
              "|---|---|---|---|"]
    for name, add in analogies["3cosadd"]["sections"].items():
        mul = analogies["3cosmul"]["sections"][name]
        lines.append(f"| {name} | {add['accuracy']:.4f} | {mul['accuracy']:.4f} | "
                     f"{add['answered']}/{add['questions']} |")
    lines += ["", "## Nearest neighbours (cosine)", ""]
    for word, near in found.items():
        lines.append(f"**{word}**: " + ", ".join(f"{w} ({s:.3f})" for w, s in near))
        lines.append("")
    if missing:
        lines.append(f"Not in the vocabulary: {', '.join(missing)}")
    return "\n".join(lines).rstrip() + "\n"
