"""The model's state: named float32 matrices, as word2vec.c and gensim name them.

* ``syn0``: the input vectors, the embeddings users keep, initialised uniform(-0.5/dim, 0.5/dim);
* ``syn1``: the output vectors of hierarchical softmax (``train.hs``), one row per inner node of the Huffman tree
  (:mod:`w2v.huffman`; V - 1 of the V rows are used, as in word2vec.c and gensim), zeros;
* ``syn1neg``: the output vectors of negative sampling (``train.negative`` > 0), one row per word, zeros.

A model is one value, a dict of these in this order (``syn0`` first, then the output matrices of the objectives
the params ask for, in the order the trainers train them): the trainers take it and give it back
(:meth:`w2v.training.Trainer.matrices`), a checkpoint saves it, the processes of a group merge it, and the stage
starts it here. The input vectors are drawn before anything else, so the same seed gives the same ``syn0``
whatever the output layers.
"""

from __future__ import annotations

import numpy as np

Matrices = dict[str, np.ndarray]

INPUT = "syn0"
HIERARCHICAL = "syn1"
NEGATIVE = "syn1neg"


def output_names(hs: bool, negative: int) -> tuple[str, ...]:
    """The output matrices the params call for, in the order the trainers train them (word2vec.c's: the path
    first, then the noise words)."""
    return ((HIERARCHICAL,) if hs else ()) + ((NEGATIVE,) if negative > 0 else ())


def init_matrices(vocab_size: int, dim: int, rng: np.random.Generator, outputs: tuple[str, ...]) -> Matrices:
    """``syn0`` uniform(-0.5/dim, 0.5/dim) and each output matrix zeros, float32."""
    syn0 = (rng.random((vocab_size, dim), dtype=np.float32) - np.float32(0.5)) / np.float32(dim)
    return {INPUT: syn0, **{name: np.zeros((vocab_size, dim), dtype=np.float32) for name in outputs}}


def check_objectives(matrices: Matrices, negative: int, tree) -> None:
    """A trainer's matrices must be those of its objectives: a programming error otherwise."""
    want = (INPUT,) + output_names(tree is not None, negative)
    if tuple(matrices) != want:
        raise ValueError(f"matrices {tuple(matrices)} for hs={tree is not None}, negative={negative}: want {want}")


def describe_objectives(hs: bool, negative: int) -> str:
    """In words, for the log: 'hierarchical softmax', 'negative sampling (5 noise words)' or both."""
    parts = (["hierarchical softmax"] if hs else []) + ([f"negative sampling ({negative} noise words)"]
                                                         if negative else [])
    return " + ".join(parts)
