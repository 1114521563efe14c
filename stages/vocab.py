"""vocab stage: count words (phrases among them, when the phrases stage joins some), choose the vocabulary, and
encode the corpus as int32 ids.

Outputs, in ``data/vocab/``:

* ``vocab.parquet`` -- ``word``, ``count``, ``frequency`` (count / kept tokens); row number = word id, sorted by
  count descending, ties by word (:mod:`w2v.vocab`);
* ``corpus_ids.arrow`` -- the corpus as ``ids: list<int32>``, one row per document, out-of-vocabulary words
  dropped (documents left empty are dropped too). This is what the pairs stage reads.

Stats go to ``metrics/vocab.json``.
"""

from __future__ import annotations

import logging

from stages import pipeline
from w2v.arrow_io import tokenize_rules, write_id_file, write_vocab
from w2v.fsio import atomic_dir, write_json
from w2v.vocab import build_vocab, count_words, encode_batches, vocab_stats

log = logging.getLogger("w2v.vocab")


@pipeline.stage
def main() -> None:
    params = pipeline.stage_params("vocab")
    pipeline.require(pipeline.PHRASE_FILE)
    with atomic_dir(pipeline.VOCAB) as tmp:
        counts = count_words(pipeline.PHRASE_FILE, params.min_count, params.workers, scratch=tmp)
        vocab = build_vocab(counts, params.min_count, params.max_vocab_size)
        write_vocab(tmp / pipeline.VOCAB_TABLE.name, vocab, rules=tokenize_rules(pipeline.PHRASE_FILE))
        encoded = encode_batches(pipeline.PHRASE_FILE, vocab.column("word"), params.workers)
        documents, kept_tokens = write_id_file(tmp / pipeline.CORPUS_IDS.name, encoded)
    stats = vocab_stats(counts, vocab, documents, kept_tokens)
    write_json(pipeline.VOCAB_METRICS, stats)
    log.info("%s words kept of %s types; %s of %s tokens encoded (%.2f%% dropped)", f"{stats['vocab_size']:,}",
             f"{stats['types']:,}", f"{kept_tokens:,}", f"{stats['tokens']:,}", 100 * stats["dropped_ratio"])


if __name__ == "__main__":
    main()
