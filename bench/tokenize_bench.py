"""Tokenize (and vocab) throughput on a >= 100 MB single-line corpus, like text8.

    python bench/tokenize_bench.py [--mb 100] [--workers 0]

Builds the corpus by repeating the embedded sample (one line, no newline), then runs, each in a child process
so that its peak RSS can be read:
  * ours: the tokenize stage's ``tokenize_file`` (default params), then the vocab stage's count + encode;
  * reference: the obvious pure-Python tokeniser, ``re.findall(r"[^\\W\\d_]+", block.lower())`` over the same
    blocks (what a script would do), counting tokens only.
Prints MB/s, peak RSS and the ratio ours / reference; the goal for tokenize is >= 20 MB/s on 2 cores.
"""

from __future__ import annotations

import argparse
import gzip
import tempfile
from pathlib import Path

from child import ROOT, run_child

SAMPLE = ROOT / "data/sample/text8-head.txt.gz"

OURS = """
import json, sys, time
from pathlib import Path
from w2v.params import TokenizeParams
from w2v.tokenize import tokenize_file
start = time.perf_counter()
stats = tokenize_file(Path(sys.argv[1]), Path(sys.argv[2]), TokenizeParams(workers=int(sys.argv[3])))
print(json.dumps({"seconds": time.perf_counter() - start, **stats}))
"""

VOCAB = """
import json, sys, time
from pathlib import Path
from w2v.arrow_io import write_id_file
from w2v.vocab import build_vocab, count_words, encode_batches
start = time.perf_counter()
vocab = build_vocab(count_words(Path(sys.argv[1]), 5), 5, 0)
rows, ids = write_id_file(Path(sys.argv[2]), encode_batches(Path(sys.argv[1]), vocab.column("word").combine_chunks()))
print(json.dumps({"seconds": time.perf_counter() - start, "vocab_size": vocab.num_rows, "ids": ids}))
"""

REFERENCE = """
import json, re, sys, time
from pathlib import Path
from w2v.tokenize import block_bounds, read_block
began = time.perf_counter()
pattern = re.compile(r"[^\\W\\d_]+")
corpus = Path(sys.argv[1])
tokens = sum(len(pattern.findall(read_block(corpus, start, stop).decode().lower()))
             for start, stop, _ in block_bounds(corpus))
print(json.dumps({"seconds": time.perf_counter() - began, "tokens": tokens}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=100, help="corpus size in MB (default 100)")
    parser.add_argument("--workers", type=int, default=0, help="tokenize workers (default 0 = all cores)")
    args = parser.parse_args()

    sample = gzip.open(SAMPLE, "rb").read().strip() + b" "
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        with open(corpus, "wb") as handle:
            for _ in range(-(-args.mb * 1_000_000 // len(sample))):
                handle.write(sample)
        size_mb = corpus.stat().st_size / 1e6
        print(f"corpus: {size_mb:.1f} MB in one line ({corpus.stat().st_size // len(sample)} copies of the sample)")

        ref, ref_rss = run_child(REFERENCE, str(corpus))
        ours, ours_rss = run_child(OURS, str(corpus), str(Path(tmp) / "tokens.parquet"), str(args.workers))
        vocab, vocab_rss = run_child(VOCAB, str(Path(tmp) / "tokens.parquet"), str(Path(tmp) / "ids.arrow"))
        assert ours["tokens"] == ref["tokens"], (ours["tokens"], ref["tokens"])

        ours_mbs, ref_mbs = size_mb / ours["seconds"], size_mb / ref["seconds"]
        print(f"reference re.findall : {ref_mbs:6.1f} MB/s  ({ref['seconds']:.2f} s, {ref_rss})")
        print(f"tokenize (ours)      : {ours_mbs:6.1f} MB/s  ({ours['seconds']:.2f} s, {ours_rss}, "
              f"{ours['tokens']:,} tokens in {ours['documents']:,} rows)")
        print(f"ratio ours/reference : {ours_mbs / ref_mbs:.2f}x   goal >= 20 MB/s: "
              f"{'met' if ours_mbs >= 20 else 'NOT met'}")
        print(f"vocab count+encode   : {ours['tokens'] / vocab['seconds'] / 1e6:6.1f} M tokens/s  "
              f"({vocab['seconds']:.2f} s, {vocab_rss}, {vocab['vocab_size']:,} words)")


if __name__ == "__main__":
    main()
