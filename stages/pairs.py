"""pairs stage: the encoded corpus → window shards in training order, one set per epoch.

Each epoch subsamples frequent words, draws a dynamic window per center and orders the windows
(``pairs.order``) with its own random stream derived from ``pairs.seed`` (:mod:`w2v.pairs`). Outputs in
``data/pairs/``: ``epoch-NN/shard-NNN.arrow``, ``keep_prob.npy`` and ``manifest.json``; stats in
``metrics/pairs.json``.
"""

from __future__ import annotations

import logging

from stages import pipeline
from w2v.arrow_io import numeric_column, read_vocab
from w2v.fsio import atomic_dir, write_json
from w2v.pairs import build_pairs, pair_stats

log = logging.getLogger("w2v.pairs")


@pipeline.stage
def main() -> None:
    params = pipeline.stage_params("pairs")
    pipeline.require(pipeline.VOCAB_TABLE, pipeline.CORPUS_IDS)
    counts = numeric_column(read_vocab(pipeline.VOCAB_TABLE, ["count"]), "count")
    with atomic_dir(pipeline.PAIRS) as tmp:
        manifest = build_pairs(pipeline.CORPUS_IDS, counts, params, tmp)
        manifest.write(tmp)
    stats = pair_stats(manifest)
    write_json(pipeline.PAIRS_METRICS, stats)
    log.info("%s pairs in %d shards over %d epochs (%s MB); %.1f%% of %s words kept after subsampling",
             f"{stats['pairs']:,}", stats["shards"], params.epochs, f"{stats['bytes'] / 1e6:,.0f}",
             100 * stats["kept_ratio"], f"{stats['words']:,}")


if __name__ == "__main__":
    main()
