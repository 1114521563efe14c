"""evaluate stage: the trained vectors → benchmark scores, a neighbours report and two pictures.

* word similarity (WordSim-353, SimLex-999): Spearman and Pearson against human scores, with the pairs
  skipped as out of vocabulary;
* analogies in the Google format with 3CosAdd and 3CosMul over the ``evaluate.restrict_vocab`` most frequent
  words: overall, semantic, syntactic, per section, and coverage, for each file of ``evaluate.analogies`` (the
  Google set by default; word2vec's phrase analogies ship beside it for models trained on phrases);
* the nearest neighbours of ``evaluate.probe_words`` (Markdown), a 2-D PCA map of the probe words and their
  neighbours, and a cosine heatmap of the probe words (PNG); without any probe word in the vocabulary, the most
  frequent words stand in;
* an interactive page (``plots/embedding_map.html``, Plotly, works offline) with the same words, or the
  ``evaluate.map_words`` most frequent, in 2-D and 3-D by PCA, t-SNE or UMAP (``evaluate.map_projection``),
  hover showing each word's neighbours; and the ``evaluate.projector_words`` most frequent words as the TSV pair
  of the TensorFlow Embedding Projector (``data/projector/``).

Params choose the benchmark files (``evaluate.word_pairs``, ``evaluate.analogies``: the bundled English ones by
default, the user's own in the same formats, or none). A benchmark the vocabulary does not cover (another
language, a domain) is a result, not an error: it is left out of the headline scores and its coverage is in the
details.

The scores are gensim's (:mod:`w2v.evaluation`; a test checks them against gensim on the same vectors).
Outputs: ``metrics/eval.json`` (the three headline scores, DVC metrics), ``metrics/eval_details.json`` (every
score, coverage and count), ``metrics/neighbours.md``, ``plots/embedding_map.png`` and
``plots/similarity_heatmap.png`` (DVC image plots), ``plots/embedding_map.html`` and ``data/projector/``.
"""

from __future__ import annotations

import logging

from stages import pipeline
from w2v.embeddings import VECTORS_NPY, Embeddings
from w2v.errors import W2VError
from w2v.evaluation import BenchmarkError
from w2v.fsio import atomic_dir, atomic_file, write_json
from w2v.maps import map_groups, write_map_page, write_projector_tsv
from w2v.plots import draw_heatmap, draw_map
from w2v.report import benchmark_metrics, headline, neighbours, report

log = logging.getLogger("w2v.evaluate")


@pipeline.stage
def main() -> None:
    params = pipeline.stage_params("evaluate")
    pipeline.require(pipeline.MODEL / VECTORS_NPY)
    emb = Embeddings.load(pipeline.MODEL)
    word_pairs, analogy_files = params.word_pair_files(), params.analogy_files()
    for path in [*word_pairs.values(), *analogy_files.values()]:
        if not path.resolve().is_relative_to(pipeline.BENCHMARKS.resolve()):
            log.warning("%s is outside %s, so not a DVC dependency: `dvc repro` will not notice when it changes "
                        "(put your benchmark files in %s)", path, pipeline.BENCHMARKS, pipeline.BENCHMARKS)
    try:
        metrics, analogies = benchmark_metrics(emb, word_pairs, analogy_files, params.restrict_vocab)
    except FileNotFoundError as exc:
        raise W2VError(f"{exc.filename}: not found (evaluate.word_pairs / evaluate.analogies); the bundled "
                       f"benchmark files ship with the repository (restore them with `git checkout -- "
                       f"{pipeline.BENCHMARKS}`)") from None
    except (BenchmarkError, UnicodeDecodeError) as exc:
        raise W2VError(str(exc)) from None
    found, missing = neighbours(emb, params.probe_words, params.topn)
    if missing:
        log.warning("probe words not in the vocabulary (left out of the report and plots): %s", ", ".join(missing))
    scores = headline(metrics)
    # The headline scores a user compares between runs (`dvc metrics show`); every detail beside them.
    write_json(pipeline.EVAL_METRICS, scores)
    write_json(pipeline.EVAL_DETAILS, metrics)
    with atomic_file(pipeline.NEIGHBOURS, "w", encoding="utf-8") as handle:
        handle.write(report(found, missing, metrics, analogies))
    draw_map(pipeline.EMBEDDING_MAP, emb, found, params.map_neighbours)
    draw_heatmap(pipeline.SIMILARITY_HEATMAP, emb, list(found))
    groups = map_groups(emb, found, params.map_neighbours, params.map_words)
    write_map_page(pipeline.INTERACTIVE_MAP, emb, groups, params.map_projection, params.seed)
    with atomic_dir(pipeline.PROJECTOR) as tmp:
        write_projector_tsv(tmp, emb, params.projector_words)
    log.info("%s", ", ".join(f"{name} {value:.4f}" for name, value in scores.items()) or "no benchmark measured")


if __name__ == "__main__":
    main()
