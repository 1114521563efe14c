"""evaluate stage: the trained vectors → benchmark scores, a neighbours report and two pictures.

* word similarity (WordSim-353, SimLex-999): Spearman and Pearson against human scores, with the pairs
  skipped as out of vocabulary;
* Google analogies with 3CosAdd and 3CosMul over the ``evaluate.restrict_vocab`` most frequent words:
  overall, semantic, syntactic, per section, and coverage;
* the nearest neighbours of ``evaluate.probe_words`` (Markdown), a 2-D PCA map of the probe words and their
  neighbours, and a cosine heatmap of the probe words (PNG).

The scores are gensim's (:mod:`w2v.evaluation`; a test checks them against gensim on the same vectors).
Outputs: ``metrics/eval.json`` (the three headline scores, DVC metrics), ``metrics/eval_details.json`` (every
score, coverage and count), ``metrics/neighbours.md``, ``plots/embedding_map.png`` and
``plots/similarity_heatmap.png`` (DVC image plots).
"""

from __future__ import annotations

import logging

from stages import pipeline
from w2v.embeddings import VECTORS_NPY, Embeddings
from w2v.errors import W2VError
from w2v.evaluation import BenchmarkError
from w2v.fsio import atomic_file, write_json
from w2v.plots import draw_heatmap, draw_map
from w2v.report import benchmark_metrics, neighbours, report

log = logging.getLogger("w2v.evaluate")

WORD_PAIRS = {"wordsim353": pipeline.BENCHMARKS / "wordsim353.tsv", "simlex999": pipeline.BENCHMARKS / "simlex999.txt"}
ANALOGIES = pipeline.BENCHMARKS / "questions-words.txt"


@pipeline.stage
def main() -> None:
    params = pipeline.stage_params("evaluate")
    pipeline.require(pipeline.MODEL / VECTORS_NPY)
    emb = Embeddings.load(pipeline.MODEL)
    try:
        metrics, analogies = benchmark_metrics(emb, WORD_PAIRS, ANALOGIES, params.restrict_vocab)
    except FileNotFoundError as exc:
        raise W2VError(f"{exc.filename}: not found; the benchmark files ship with the repository "
                       f"(restore them with `git checkout -- {pipeline.BENCHMARKS}`)") from None
    except (BenchmarkError, UnicodeDecodeError) as exc:
        raise W2VError(str(exc)) from None
    found, missing = neighbours(emb, params.probe_words, params.topn)
    if missing:
        log.warning("probe words not in the vocabulary (left out of the report and plots): %s", ", ".join(missing))
    # The three scores a user compares between runs (`dvc metrics show`); every detail beside them.
    write_json(pipeline.EVAL_METRICS, {"analogy": metrics["analogy"]["3cosadd"]["accuracy"],
                                       "wordsim353": metrics["wordsim353"]["spearman"],
                                       "simlex999": metrics["simlex999"]["spearman"]})
    write_json(pipeline.EVAL_DETAILS, metrics)
    with atomic_file(pipeline.NEIGHBOURS, "w", encoding="utf-8") as handle:
        handle.write(report(found, missing, metrics, analogies))
    if found:
        draw_map(pipeline.EMBEDDING_MAP, emb, found, params.map_neighbours)
        draw_heatmap(pipeline.SIMILARITY_HEATMAP, emb, list(found))
    log.info("analogy 3CosAdd %.4f, 3CosMul %.4f (coverage %.1f%%); WordSim-353 %.4f, SimLex-999 %.4f",
             metrics["analogy"]["3cosadd"]["accuracy"], metrics["analogy"]["3cosmul"]["accuracy"],
             100 * metrics["analogy"]["coverage"], metrics["wordsim353"]["spearman"],
             metrics["simlex999"]["spearman"])


if __name__ == "__main__":
    main()
