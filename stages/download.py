"""download stage: put the raw corpus at ``data/raw/corpus.txt`` (UTF-8, one document per line).

``download.source`` picks the embedded sample (``data/sample``, no network), a local file, a URL (verified
against ``download.sha256``) or a Hugging Face dataset; :mod:`w2v.corpus` does the work. ``manifest.json``
beside the text records the source, the byte count and the sha256 of what was written.
"""

from __future__ import annotations

import logging

from stages import pipeline
from w2v.corpus import fetch_corpus
from w2v.fsio import atomic_dir, write_json

log = logging.getLogger("w2v.download")


@pipeline.stage
def main() -> None:
    params = pipeline.stage_params("download")
    with atomic_dir(pipeline.RAW) as tmp:
        manifest = fetch_corpus(params, tmp / pipeline.CORPUS.name, sample=pipeline.SAMPLE)
        write_json(tmp / "manifest.json", manifest)
    log.info("%s: %s bytes of text from %s (sha256 %s)", pipeline.CORPUS, f"{manifest['bytes']:,}",
             manifest["origin"], manifest["sha256"][:12])


if __name__ == "__main__":
    main()
