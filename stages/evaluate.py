"""evaluate stage: the trained vectors → benchmark scores, a neighbours report and two pictures.

* word similarity (WordSim-353, SimLex-999): Spearman and Pearson against human scores, with the pairs
  skipped as out of vocabulary;
* Google analogies with 3CosAdd and 3CosMul over the ``evaluate.restrict_vocab`` most frequent words:
  overall, semantic, syntactic, per section, and coverage;
* the nearest neighbours of ``evaluate.probe_words`` (Markdown), a 2-D PCA map of the probe words and their
  neighbours, and a cosine heatmap of the probe words (PNG).

The scores are gensim's (``stages.benchmarks``; a test checks them against gensim on the same vectors).
Outputs: ``metrics/eval.json`` (DVC metrics), ``metrics/neighbours.md``, ``plots/embedding_map.png`` and
``plots/similarity_heatmap.png`` (DVC image plots).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from stages.benchmarks import BenchmarkError, evaluate_word_analogies, evaluate_word_pairs
from stages.console import UserError, entry_point
from stages.embeddings import VECTORS_NPY, Embeddings
from stages.fsio import atomic_file, write_json
from stages.params import load_params

log = logging.getLogger("w2v.evaluate")

MODEL_DIR = Path("data/model")
BENCHMARK_DIR = Path("data/benchmarks")
WORD_PAIRS = {"wordsim353": "wordsim353.tsv", "simlex999": "simlex999.txt"}
ANALOGIES = "questions-words.txt"
METRICS_PATH = Path("metrics/eval.json")
REPORT_PATH = Path("metrics/neighbours.md")
MAP_PATH = Path("plots/embedding_map.png")
HEATMAP_PATH = Path("plots/similarity_heatmap.png")


def benchmark_metrics(emb: Embeddings, benchmark_dir: Path, restrict_vocab: int) -> tuple[dict, dict]:
    """(flat-ish metrics for DVC, the analogy result with its sections for the report)."""
    metrics = {}
    for name, file in WORD_PAIRS.items():
        scores = evaluate_word_pairs(emb, benchmark_dir / file)
        metrics[name] = {key: round(value, 6) if isinstance(value, float) else value for key, value in scores.items()}
    started = time.perf_counter()
    analogies = evaluate_word_analogies(emb, benchmark_dir / ANALOGIES, restrict_vocab)
    log.info("%s analogy questions answered in %.2f s", f"{analogies['answered']:,}", time.perf_counter() - started)
    metrics["analogy"] = {"questions": analogies["questions"], "answered": analogies["answered"],
                          "coverage": round(analogies["coverage"], 6), "restrict_vocab": restrict_vocab,
                          "malformed_lines": analogies["malformed_lines"]}
    for name, file in {**WORD_PAIRS, "analogy": ANALOGIES}.items():
        if metrics[name]["malformed_lines"]:
            log.warning("%s: %d malformed line(s) skipped (counted in metrics/eval.json as %s.malformed_lines)",
                        benchmark_dir / file, metrics[name]["malformed_lines"], name)
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
    for name in WORD_PAIRS:
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


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    centred = vectors - vectors.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    coords = centred @ components[:2].T
    return coords * np.sign(coords[np.abs(coords).argmax(axis=0), [0, 1]])  # fix the SVD's sign freedom


def draw_map(path: Path, emb: Embeddings, found: dict[str, list], per_word: int) -> None:
    """Probe words and their neighbours on the first two principal components, one colour per probe word."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [(probe, [probe] + [w for w, _ in near[:per_word]]) for probe, near in found.items()]
    words = [w for _, members in groups for w in members]
    coords = pca_2d(emb.unit[[emb.index(w) for w in words]])
    fig, ax = plt.subplots(figsize=(11, 8), dpi=110)
    colours = plt.get_cmap("tab20")
    at = 0
    for k, (probe, members) in enumerate(groups):
        xy = coords[at:at + len(members)]
        at += len(members)
        ax.scatter(xy[1:, 0], xy[1:, 1], s=18, color=colours(k % 20), alpha=0.7)
        ax.scatter(xy[:1, 0], xy[:1, 1], s=70, color=colours(k % 20), edgecolor="black", label=probe)
        for (x, y), word in zip(xy, members):
            ax.annotate(word, (x, y), fontsize=10 if word == probe else 8, xytext=(3, 3), textcoords="offset points",
                        fontweight="bold" if word == probe else "normal")
    ax.set_title(f"Probe words and their {per_word} nearest neighbours (PCA of unit vectors)")
    ax.legend(loc="best", fontsize=8, ncol=2)
    fig.tight_layout()
    with atomic_file(path, "wb") as handle:
        fig.savefig(handle, format="png")
    plt.close(fig)


def draw_heatmap(path: Path, emb: Embeddings, words: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    unit = emb.unit[[emb.index(w) for w in words]]
    cos = unit @ unit.T
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(words), 0.6 + 0.55 * len(words)), dpi=110)
    image = ax.imshow(cos, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(len(words)), words, rotation=45, ha="right")
    ax.set_yticks(range(len(words)), words)
    for i in range(len(words)):
        for j in range(len(words)):
            ax.text(j, i, f"{cos[i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if abs(cos[i, j]) > 0.6 else "black")
    fig.colorbar(image, ax=ax, label="cosine similarity")
    ax.set_title("Cosine similarity of the probe words")
    fig.tight_layout()
    with atomic_file(path, "wb") as handle:
        fig.savefig(handle, format="png")
    plt.close(fig)


@entry_point
def main() -> None:
    params = load_params()["evaluate"]
    if not (MODEL_DIR / VECTORS_NPY).is_file():
        raise UserError(f"{MODEL_DIR / VECTORS_NPY}: not found; run the train stage first (dvc repro train)")
    emb = Embeddings.load(MODEL_DIR)
    try:
        metrics, analogies = benchmark_metrics(emb, BENCHMARK_DIR, params.restrict_vocab)
    except FileNotFoundError as exc:
        raise UserError(f"{exc.filename}: not found; the benchmark files ship with the repository "
                        f"(restore them with `git checkout -- {BENCHMARK_DIR}`)") from None
    except (BenchmarkError, UnicodeDecodeError) as exc:
        raise UserError(str(exc)) from None
    found, missing = neighbours(emb, params.probe_words, params.topn)
    if missing:
        log.warning("probe words not in the vocabulary (left out of the report and plots): %s", ", ".join(missing))
    write_json(METRICS_PATH, metrics)
    with atomic_file(REPORT_PATH, "w", encoding="utf-8") as handle:
        handle.write(report(found, missing, metrics, analogies))
    if found:
        draw_map(MAP_PATH, emb, found, params.map_neighbours)
        draw_heatmap(HEATMAP_PATH, emb, list(found))
    log.info("analogy 3CosAdd %.4f, 3CosMul %.4f (coverage %.1f%%); WordSim-353 %.4f, SimLex-999 %.4f",
             metrics["analogy"]["3cosadd"]["accuracy"], metrics["analogy"]["3cosmul"]["accuracy"],
             100 * metrics["analogy"]["coverage"], metrics["wordsim353"]["spearman"],
             metrics["simlex999"]["spearman"])


if __name__ == "__main__":
    main()
