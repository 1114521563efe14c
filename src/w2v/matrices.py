"""The model's state: named float32 matrices, as word2vec.c and gensim name them.

* ``syn0``: the input vectors, the embeddings users keep, initialised uniform(-0.5/dim, 0.5/dim);
* ``syn1neg``: the output vectors of negative sampling, one row per word, zeros.

A model is one value, a dict of these in this order (``syn0`` first, then the output matrices of the objectives
the params ask for): the trainers take it and give it back (:meth:`w2v.training.Trainer.matrices`), a
checkpoint saves it, the processes of a group merge it, and the stage starts it here. The input vectors are
drawn before anything else, so the same seed gives the same ``syn0`` whatever the output layers.
"""

from __future__ import annotations

import numpy as np

Matrices = dict[str, np.ndarray]

INPUT = "syn0"
NEGATIVE = "syn1neg"


def output_names(negative: int) -> tuple[str, ...]:
    """The output matrices the params call for, in the order the trainers train them."""
    return (NEGATIVE,) if negative > 0 else ()


def init_matrices(vocab_size: int, dim: int, rng: np.random.Generator, outputs: tuple[str, ...]) -> Matrices:
    """``syn0`` uniform(-0.5/dim, 0.5/dim) and each output matrix zeros, float32."""
    syn0 = (rng.random((vocab_size, dim), dtype=np.float32) - np.float32(0.5)) / np.float32(dim)
    return {INPUT: syn0, **{name: np.zeros((vocab_size, dim), dtype=np.float32) for name in outputs}}
