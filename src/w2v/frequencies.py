"""Tables derived from word counts, computed in one place for every step that needs them."""

from __future__ import annotations

import numpy as np


def keep_probabilities(counts: np.ndarray, sample: float) -> np.ndarray:
    """word2vec's subsampling: keep each occurrence of word w with p(w) = (sqrt(f/s) + 1) * s / f, capped at 1.

    ``f`` is the word's share of all counted tokens and ``s`` the ``sample`` threshold (0 keeps everything).
    This is the formula of word2vec.c and gensim, so frequent words like "the" are mostly dropped while words
    rarer than ``s`` are always kept.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if sample == 0:
        return np.ones_like(counts)
    frequency = counts / counts.sum()
    return np.minimum((np.sqrt(frequency / sample) + 1.0) * sample / frequency, 1.0)
