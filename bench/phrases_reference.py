"""Record what word2vec's word2phrase.c writes for the phrase tests' corpora (tests/test_phrases.py checks the
phrases stage against these hashes; word2phrase.c is not available to CI, so its output is recorded here).

    python bench/phrases_reference.py --word2phrase /path/to/word2phrase [--commit <word2vec commit>]

``word2phrase`` is the binary built from word2vec's public sources (``gcc -O2 word2phrase.c -o word2phrase -lm
-pthread``). Each case writes the corpus one row per line, runs the tool once per pass, and records the sha256 of
its output as rows of tokens (:func:`tests.test_phrases.rows_sha256`) in tests/data/word2phrase_reference.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.test_phrases import REFERENCE, WORD2PHRASE_CASES, case_rows, rows_sha256  # noqa: E402


def run_word2phrase(binary: Path, rows: list[list[str]], thresholds: list[float], min_count: int) -> list[list[str]]:
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        (work / "pass-0.txt").write_text("".join(" ".join(row) + "\n" for row in rows), encoding="utf-8")
        for number, threshold in enumerate(thresholds, 1):
            subprocess.run([str(binary), "-train", str(work / f"pass-{number - 1}.txt"), "-output",
                            str(work / f"pass-{number}.txt"), "-min-count", str(min_count), "-threshold",
                            str(threshold), "-debug", "0"], check=True, capture_output=True)
        lines = (work / f"pass-{len(thresholds)}.txt").read_text(encoding="utf-8").split("\n")
    return [line.split() for line in lines if line.split()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--word2phrase", type=Path, required=True, help="the word2phrase binary")
    parser.add_argument("--commit", default="", help="the word2vec commit it was built from, for the record")
    args = parser.parse_args()
    cases = {}
    for name, (corpus, thresholds, min_count) in WORD2PHRASE_CASES.items():
        rows = run_word2phrase(args.word2phrase, case_rows(corpus), thresholds, min_count)
        cases[name] = rows_sha256(rows)
        print(f"{name}: {sum(len(r) for r in rows):,} tokens, sha256 {cases[name][:16]}")
    REFERENCE.write_text(json.dumps({"tool": f"word2phrase.c (word2vec {args.commit})".replace(" ()", ""),
                                     "cases": cases}, indent=2) + "\n")


if __name__ == "__main__":
    main()
