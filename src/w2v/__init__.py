"""w2v: word2vec (skip-gram with negative sampling) that gives the same bytes for the same settings.

The query class needs numpy alone::

    >>> from w2v import Embeddings
    >>> emb = Embeddings.load_word2vec_format("vectors.bin")   # ours, gensim's or word2vec.c's
    >>> emb.most_similar("king", topn=3)
    >>> emb.similarity("cat", "dog")

Training and the corpus steps live in submodules with heavier needs (pyarrow, numba, torch), imported only
when used: ``w2v.corpus`` (sources), ``w2v.tokenize``, ``w2v.vocab``, ``w2v.pairs``, ``w2v.training``,
``w2v.evaluation``.
"""

import importlib

from w2v.errors import DamagedFileError, ParamError, W2VError

# Loaded on first use (PEP 562): a program that never touches the query class does not import it.
_LAZY = {"Embeddings": "w2v.embeddings", "UnknownWord": "w2v.embeddings"}

__all__ = ["Embeddings", "UnknownWord", "W2VError", "ParamError", "DamagedFileError"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'w2v' has no attribute {name!r}")
