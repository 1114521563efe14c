"""A reproducible synthetic corpus with a realistic vocabulary: Zipf-distributed words, letters only, one sentence
of 10-40 words per line.

    python bench/zipf_corpus.py OUT.txt [--tokens 30000000] [--types 4000000] [--exponent 1.07] [--seed 0]

Word ranks follow p(r) ∝ 1 / (r + 2.7)^exponent over ``--types`` possible words (Zipf-Mandelbrot, the law of
natural text), drawn by inverting its continuous distribution function, so no table of all words is needed even
for hundreds of millions of possible words. The word of rank r is the (r + 27)-th string of lower-case letters in
length-then-alphabetical order ("aa", "ab", ..., so frequent words are short). With the defaults, 30M tokens hold
about 360k words seen at least 5 times, as a Wikipedia dump of that size does; ``--tokens 150000000 --types
200000000 --exponent 1.0`` gives a web-like tail of about 19M distinct words. The same arguments give the same
bytes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

BLOCK = 1_000_000  # tokens generated and written at a time
SHIFT = 2.7  # the Mandelbrot offset q


def draw_ranks(rng: np.random.Generator, n: int, types: int, exponent: float) -> np.ndarray:
    """Ranks 0..types-1 with P(r) ∝ (r + q)^-exponent: the inverse of the continuous CDF at uniform draws."""
    u = rng.random(n)
    q, top = SHIFT, types + SHIFT
    if abs(exponent - 1.0) < 1e-12:
        ranks = q * (top / q) ** u - q
    else:
        k = 1.0 - exponent
        ranks = (q ** k + u * (top ** k - q ** k)) ** (1.0 / k) - q
    return np.minimum(ranks.astype(np.int64), types - 1)


def words_of(ranks: np.ndarray) -> np.ndarray:
    """The letters word of each rank (bijective base 26 of rank + 27: 27 = "aa"), as a numpy string array."""
    n = ranks + 27
    columns = []
    while np.any(n > 0):
        n = n - 1
        columns.append(np.where(n >= 0, n % 26, -1))
        n = np.where(n >= 0, n // 26, 0)
    digits = np.array(columns)  # (width, n), least significant first; -1 past a word's length
    length = (digits >= 0).sum(axis=0)
    letters = np.zeros((len(ranks), len(columns)), dtype=np.uint8)
    everyone = np.arange(len(ranks))
    for position in range(len(columns)):  # most significant digit first
        index = length - 1 - position
        valid = index >= 0
        letters[valid, position] = 97 + digits[index[valid], everyone[valid]]
    return letters.view(f"S{len(columns)}").reshape(-1)  # trailing zero bytes pad the short words: numpy drops them


def generate(out: Path, tokens: int, types: int, exponent: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    with open(out, "wb") as handle:
        written = 0
        while written < tokens:
            n = min(BLOCK, tokens - written)
            words = words_of(draw_ranks(rng, n, types, exponent))
            lengths = rng.integers(10, 41, size=n // 10 + 2)
            ends = np.cumsum(lengths)
            ends = ends[ends < n]
            separator = np.full(n, b" ", dtype="S1")
            separator[ends - 1] = b"\n"
            separator[-1] = b"\n"
            handle.write(b"".join(np.char.add(words, separator).tolist()))
            written += n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--tokens", type=int, default=30_000_000)
    parser.add_argument("--types", type=int, default=4_000_000, help="possible words (the Zipf law's support)")
    parser.add_argument("--exponent", type=float, default=1.07)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    generate(args.out, args.tokens, args.types, args.exponent, args.seed)
    print(f"{args.out}: {args.tokens:,} tokens, {args.out.stat().st_size / 1e6:,.0f} MB in "
          f"{time.perf_counter() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
