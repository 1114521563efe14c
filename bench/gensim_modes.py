"""Why gensim's CBOW scores higher through ``corpus_file`` than through a sentence iterator (issue 25, point 7).

    python bench/gensim_modes.py [--seeds 3] [--workers 2] [--sg 0] [--alpha 0.025]

Trains gensim's Word2Vec on the embedded sample's tokens (data/tokens; the same rows as the train bench) in three
ways, each over the same seeds: the sentence iterator, ``corpus_file`` with ``workers`` threads, and
``corpus_file`` with one thread; then prints the mean quality (gensim's evaluators) over the seeds.

What it shows: in ``corpus_file`` mode each worker reads its own 1/workers of the file but computes its
progress through the epoch as its own word count over the *whole* epoch's words (word2vec_corpusfile.pyx,
``get_next_alpha``), so within an epoch the learning rate decays only 1/workers of the way it should, and jumps
down at the next epoch's start: a sawtooth above the linear schedule that ends at about alpha/ (2·epochs)
instead of min_alpha. With one worker the mode trains as the iterator does.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
from child import ROOT
from train_bench import quality


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sg", type=int, default=0)
    parser.add_argument("--alpha", type=float, default=0.025)
    parser.add_argument("--line-words", type=int, default=10_000,
                        help="words per line of the corpus file and per sentence of the iterator")
    args = parser.parse_args()
    from gensim.models import Word2Vec

    rows = pq.read_table(ROOT / "data/tokens/tokens.parquet").column("tokens").to_pylist()
    n = args.line_words
    sentences = [row[i:i + n] for row in rows for i in range(0, len(row), n)]
    words = sum(len(s) for s in sentences)
    common = dict(sg=args.sg, vector_size=100, window=5, negative=5, sample=1e-3, min_count=5, epochs=5,
                  alpha=args.alpha, min_alpha=0.0001)
    with tempfile.TemporaryDirectory() as scratch:
        corpus = Path(scratch) / "corpus.txt"
        corpus.write_text("".join(" ".join(s) + "\n" for s in sentences), encoding="utf-8")
        modes = {"iterator": {"sentences": sentences, "workers": args.workers},
                 f"corpus_file, {args.workers} workers": {"corpus_file": str(corpus), "workers": args.workers},
                 "corpus_file, 1 worker": {"corpus_file": str(corpus), "workers": 1}}
        print(f"gensim sg={args.sg}, alpha {args.alpha}, {words:,} words in lines of {n:,}, seeds 1..{args.seeds}")
        for name, how in modes.items():
            scores = [quality(Word2Vec(**common, **how, seed=seed).wv) for seed in range(1, args.seeds + 1)]
            mean = {k: statistics.mean(s[k] for s in scores) for k in scores[0]}
            spread = {k: (min(s[k] for s in scores), max(s[k] for s in scores)) for k in scores[0]}
            print(f"{name:28} " + "  ".join(f"{k} {mean[k]:.4f} [{spread[k][0]:.4f}-{spread[k][1]:.4f}]"
                                            for k in ("analogy", "wordsim353", "simlex999")))


if __name__ == "__main__":
    main()
