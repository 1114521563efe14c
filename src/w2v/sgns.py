"""Negative sampling and the learning-rate schedule: the maths every trainer shares.

The model is named float32 matrices (:mod:`w2v.matrices`). For one (context o, center c) pair and K noise words
k drawn from count^ns_exponent, negative sampling's loss is

    -log σ(syn1neg[c]·syn0[o]) - Σ_k log σ(-syn1neg[k]·syn0[o])

and each pair takes one SGD step on the rows it touches, with a learning rate that decays linearly with the
global pair index (:class:`Schedule`). Noise words come from Walker's alias table (two array reads per draw,
no 1e8-slot table).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from w2v.portable_math import exact_sum, power


def noise_distribution(counts: np.ndarray, ns_exponent: float) -> np.ndarray:
    """P(noise word = i) ∝ count_i^ns_exponent (float64, sums to 1), the same bits on every CPU."""
    weights = power(counts, ns_exponent)
    return weights / exact_sum(weights)


def alias_table(prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker/Vose alias table of a distribution: draw bucket b uniformly, keep it with probability
    ``accept[b]``, else take ``alias[b]``."""
    n = len(prob)
    scaled = prob * n
    accept = np.ones(n, dtype=np.float64)
    alias = np.arange(n, dtype=np.int32)
    _fill_alias(scaled, accept, alias)
    return accept.astype(np.float32), alias


@njit(cache=True)
def _fill_alias(scaled, accept, alias):  # pragma: no cover - compiled
    n = len(scaled)
    small = np.empty(n, dtype=np.int64)
    large = np.empty(n, dtype=np.int64)
    ns = 0
    nl = 0
    for i in range(n):
        if scaled[i] < 1.0:
            small[ns] = i
            ns += 1
        else:
            large[nl] = i
            nl += 1
    while ns > 0 and nl > 0:
        ns -= 1
        s = small[ns]
        l_ = large[nl - 1]
        accept[s] = scaled[s]
        alias[s] = l_
        scaled[l_] = scaled[l_] + scaled[s] - 1.0
        if scaled[l_] < 1.0:
            nl -= 1
            small[ns] = l_
            ns += 1
    # What is left is 1 up to rounding: those buckets always keep themselves.


@dataclass(frozen=True)
class Schedule:
    """Linear learning-rate decay from ``alpha`` to ``min_alpha`` over ``total_pairs`` (word2vec's)."""

    alpha: float
    min_alpha: float
    total_pairs: int

    @property
    def step(self) -> float:
        return (self.alpha - self.min_alpha) / max(self.total_pairs, 1)

    def at(self, pair_index: int | np.ndarray) -> float | np.ndarray:
        return np.maximum(self.alpha - self.step * pair_index, self.min_alpha)
