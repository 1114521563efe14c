"""tokenize stage: ``data/raw/corpus.txt`` → ``data/tokens/tokens.parquet`` (one row of tokens per document).

Normalised (``tokenize.normalize``), lower-cased and split by ``tokenize.token_pattern`` in worker processes,
in bounded memory (:mod:`w2v.tokenize`); the token counts go to ``metrics/tokenize.json``.
"""

from __future__ import annotations

import logging

from stages import pipeline
from w2v.fsio import atomic_dir, write_json
from w2v.tokenize import tokenize_file

log = logging.getLogger("w2v.tokenize")


@pipeline.stage
def main() -> None:
    params = pipeline.stage_params("tokenize")
    pipeline.require(pipeline.CORPUS)
    with atomic_dir(pipeline.TOKENS) as tmp:
        stats = tokenize_file(pipeline.CORPUS, tmp / pipeline.TOKEN_FILE.name, params)
    write_json(pipeline.TOKENIZE_METRICS, stats)
    log.info("%s: %s tokens in %s rows", pipeline.TOKEN_FILE, f"{stats['tokens']:,}", f"{stats['documents']:,}")


if __name__ == "__main__":
    main()
