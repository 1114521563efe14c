"""phrases stage: ``data/tokens/tokens.parquet`` → ``data/phrases/tokens.parquet``, collocations joined
(``new york`` → ``new_york``) in ``phrases.passes`` passes, as gensim's ``Phrases(...).freeze()`` or word2vec's
``word2phrase`` (:mod:`w2v.phrases`). With ``passes: 0`` (the default) the token file goes through unchanged.

The tokenizer's rules travel on in the file's metadata, with the delimiter added, so a model trained on phrases
finds ``new_york`` when asked for ``new york``. What each pass did (phrases formed, tokens before and after, the
most frequent phrases) goes to ``metrics/phrases.json`` and the log.
"""

from __future__ import annotations

import logging
import os
import shutil

from stages import pipeline
from w2v.arrow_io import tokenize_rules
from w2v.fsio import atomic_dir, write_json

log = logging.getLogger("w2v.phrases")


@pipeline.stage
def main() -> None:
    params = pipeline.stage_params("phrases")
    pipeline.require(pipeline.TOKEN_FILE)
    if params.passes == 0:
        with atomic_dir(pipeline.PHRASES) as tmp:
            link_or_copy(pipeline.TOKEN_FILE, tmp / pipeline.PHRASE_FILE.name)
        write_json(pipeline.PHRASES_METRICS, {"passes": 0, "phrases": 0})
        log.info("phrases.passes = 0: %s goes on unchanged", pipeline.TOKEN_FILE)
        return
    from w2v.phrases import check_delimiter, find_phrases, phrase_metrics  # compiled kernels: only when used

    rules = tokenize_rules(pipeline.TOKEN_FILE)
    check_delimiter(params.delimiter, None if rules is None or rules.get("pretokenized") else rules["token_pattern"])
    with atomic_dir(pipeline.PHRASES) as tmp:
        reports = find_phrases(pipeline.TOKEN_FILE, tmp / pipeline.PHRASE_FILE.name, thresholds=params.thresholds(),
                               scoring=params.scoring, min_count=params.min_count, delimiter=params.delimiter,
                               connectors=frozenset(params.connector_words),
                               rules={**(rules or {}), "phrase_delimiter": params.delimiter}, workers=params.workers)
    write_json(pipeline.PHRASES_METRICS, phrase_metrics(reports))
    for number, report in enumerate(reports, 1):
        log.info("pass %d, the most frequent of its phrases: %s", number,
                 ", ".join(f"{phrase} ({count:,})" for phrase, count in report.top))


def link_or_copy(source, target) -> None:
    """A hard link where the file system allows one (instant, no space), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


if __name__ == "__main__":
    main()
