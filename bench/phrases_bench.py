"""The phrases stage against gensim's Phrases, side by side: learn + apply, the same rows, the same settings.

    python bench/phrases_bench.py [--corpus sample10 zipf] [--rounds 3] [--passes 2] [--threshold 10]
                                  [--workers 0] [--keep DIR]

Corpora: ``sample10`` is the bundled sample repeated 10 times (11.7M tokens, rows of 10,000 as the tokenize stage
cuts text8); ``zipf`` is bench/zipf_corpus.py's 30M-token corpus (361k words seen 5 times or more, about 8M
distinct words). Each round runs both in fresh child processes, in alternating order, and reports wall seconds
and peak memory (the child's max RSS); the table gives medians and the ratio.

* **ours**: :func:`w2v.phrases.find_phrases`, from the token file (Parquet, as the tokenize stage writes it) to the
  token file of phrases, every pass, written;
* **gensim**: its documented recipe, streaming the same rows from a text file (``LineSentence``): ``Phrases`` on
  the sentences, ``freeze()``, again on the first model's output for the second pass, then the frozen models
  applied to every sentence (counted, not written).

Both must end with the same number of tokens (the exactness itself is the tests' business).
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def prepare(corpus: str, directory: Path) -> Path:
    """corpus.txt (one row per line) and tokens.parquet (the same rows, tokenized) in ``directory``."""
    sys.path.insert(0, str(ROOT / "src"))
    from w2v.params import TokenizeParams
    from w2v.tokenize import tokenize_file

    directory.mkdir(parents=True, exist_ok=True)
    text = directory / "corpus.txt"
    if not text.exists():
        if corpus == "sample10":
            words = gzip.open(ROOT / "data/sample/text8-head.txt.gz", "rt").read().split()
            lines = "".join(" ".join(words[i:i + 10_000]) + "\n" for i in range(0, len(words), 10_000))
            text.write_text(lines * 10)
        else:
            subprocess.run([sys.executable, str(ROOT / "bench/zipf_corpus.py"), str(text)], check=True)
    tokens = directory / "tokens.parquet"
    if not tokens.exists():
        tokenize_file(text, tokens, TokenizeParams())
    return directory


def child(which: str, directory: Path, passes: int, threshold: float, workers: int) -> None:
    started = time.perf_counter()
    if which == "ours":
        sys.path.insert(0, str(ROOT / "src"))
        from w2v.phrases import find_phrases

        reports = find_phrases(directory / "tokens.parquet", directory / "phrases.parquet",
                               thresholds=(threshold,) * passes, scoring="default", min_count=5, delimiter="_",
                               connectors=frozenset(), rules=None, workers=workers)
        tokens, phrases = reports[-1].tokens_out, sum(r.phrases for r in reports)
    else:
        from gensim.models.phrases import Phrases
        from gensim.models.word2vec import LineSentence

        sentences = LineSentence(str(directory / "corpus.txt"))
        models = []
        for _ in range(passes):
            stream = sentences
            for model in models:
                stream = model[stream]
            models.append(Phrases(stream, min_count=5, threshold=threshold).freeze())
        stream = sentences
        for model in models:
            stream = model[stream]
        tokens = sum(len(sentence) for sentence in stream)
        phrases = sum(len(model.phrasegrams) for model in models)
    print(json.dumps({"seconds": time.perf_counter() - started, "tokens": tokens, "phrases": phrases,
                      "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def run_child(which: str, directory: Path, args) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", which, "--dir", str(directory), "--passes",
                          str(args.passes), "--threshold", str(args.threshold), "--workers", str(args.workers)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", nargs="+", default=["sample10", "zipf"], choices=["sample10", "zipf"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--threshold", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=0, help="our threads (0 = all cores); gensim has one")
    parser.add_argument("--keep", type=Path, default=Path("/tmp/w2v-phrases-bench"), help="corpora kept here")
    parser.add_argument("--child", choices=["ours", "gensim"], help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.dir, args.passes, args.threshold, args.workers)
        return
    rows = []
    for corpus in args.corpus:
        directory = prepare(corpus, args.keep / corpus)
        run_child("ours", directory, argparse.Namespace(**{**vars(args), "passes": 1}))  # numba's cache warm
        results = {"ours": [], "gensim": []}
        for round_number in range(args.rounds):
            order = ["ours", "gensim"] if round_number % 2 == 0 else ["gensim", "ours"]
            for which in order:
                results[which].append(run_child(which, directory, args))
                print(f"{corpus} round {round_number + 1} {which}: {results[which][-1]}", file=sys.stderr)
        ours, theirs = results["ours"], results["gensim"]
        assert ours[0]["tokens"] == theirs[0]["tokens"], (ours[0], theirs[0])
        seconds = {k: statistics.median(r["seconds"] for r in v) for k, v in results.items()}
        memory = {k: max(r["max_rss_mb"] for r in v) for k, v in results.items()}
        rows.append((corpus, ours[0]["tokens"], seconds["ours"], seconds["gensim"], memory["ours"],
                     memory["gensim"]))
    print(f"{args.passes} pass(es), threshold {args.threshold}, min_count 5, default scoring; medians of "
          f"{args.rounds} alternating rounds")
    print(f"{'corpus':10} {'tokens out':>12} {'ours s':>8} {'gensim s':>9} {'speed-up':>9} {'ours MB':>8} "
          f"{'gensim MB':>10}")
    for corpus, tokens, ours_s, gensim_s, ours_mb, gensim_mb in rows:
        print(f"{corpus:10} {tokens:>12,} {ours_s:>8.2f} {gensim_s:>9.2f} {gensim_s / ours_s:>8.1f}x "
              f"{ours_mb:>8.0f} {gensim_mb:>10.0f}")


if __name__ == "__main__":
    main()
