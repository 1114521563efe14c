"""The Huffman tree of hierarchical softmax: each word's path from the root to its leaf.

Hierarchical softmax (``train.hs``) predicts a word as a walk down a binary tree whose leaves are the
vocabulary: at each inner node on the word's path, a logistic unit (a row of ``syn1``) says left or right. The
tree is Huffman's for the word counts, as in word2vec.c and gensim, so frequent words have short paths and a
pair costs about the entropy of the vocabulary in dot products (≈ 12-20 at real sizes) rather than V.

Built as word2vec.c builds it, in O(V) after one sort: the leaves in ascending count order and the inner nodes
in the order they are made are two queues already sorted, and each step joins the two smallest fronts. Ties
are broken by a fixed rule (a leaf before an inner node only if its count is strictly smaller; equal leaves
by their ids, highest first), so the codes depend on the counts alone: the same tree on every machine.
Any Huffman tree has the least count-weighted path length, which is what the tests compare with gensim.

A word's path is stored root first, as in word2vec.c: ``points`` (inner node ids 0..V-2, the rows of ``syn1``
they train; the root is V-2) and ``codes`` (0 or 1: which child the path takes; the unit is trained towards
the label ``1 - code``), for word w at ``start[w]..start[w+1]-1``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

# A unit whose |score| reaches MAX_EXP takes no step: word2vec.c's and gensim's rule (their sigmoid table ends
# there), which both trainers follow.
MAX_EXP = 6.0


class HuffmanTree(NamedTuple):
    start: np.ndarray  # int64 (V + 1): word w's path is points[start[w]:start[w + 1]]
    points: np.ndarray  # int32: inner nodes, root first
    codes: np.ndarray  # uint8: 0 or 1 per node of a path

    def path(self, word: int) -> tuple[np.ndarray, np.ndarray]:
        """(inner nodes, codes) of a word, root first."""
        lo, hi = self.start[word], self.start[word + 1]
        return self.points[lo:hi], self.codes[lo:hi]

    @property
    def longest(self) -> int:
        return int(np.diff(self.start).max(initial=0))


def huffman_tree(counts: np.ndarray) -> HuffmanTree:
    """The Huffman tree of the word counts (any order; at least two words)."""
    counts = np.asarray(counts, dtype=np.int64)
    if len(counts) < 2:
        raise ValueError(f"a Huffman tree needs at least two words, got {len(counts)}")
    # Ascending counts; equal counts by id, highest first (the order word2vec.c reads a count-sorted vocabulary).
    leaves = np.lexsort((-np.arange(len(counts)), counts)).astype(np.int64)
    parent, branch = _join(counts, leaves)
    lengths = _depths(parent, len(counts))
    start = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    points = np.empty(start[-1], dtype=np.int32)
    codes = np.empty(start[-1], dtype=np.uint8)
    _paths(parent, branch, start, points, codes)
    return HuffmanTree(start, points, codes)


@njit(cache=True)
def _join(counts, leaves):  # pragma: no cover - compiled
    """Join the two smallest of (next leaf, next inner node) V - 1 times. Nodes 0..V-1 are the words, V + a the
    a-th inner node; returns each node's parent and which of its children it is (1 for the second taken)."""
    n = len(counts)
    weight = np.empty(2 * n - 1, dtype=np.int64)
    weight[:n] = counts
    parent = np.full(2 * n - 1, -1, dtype=np.int64)
    branch = np.zeros(2 * n - 1, dtype=np.uint8)
    leaf, inner = 0, n  # fronts of the two queues (leaves by position in ``leaves``, inner nodes by id)
    for a in range(n - 1):
        first, leaf, inner = _smallest(weight, leaves, leaf, inner, n + a)
        second, leaf, inner = _smallest(weight, leaves, leaf, inner, n + a)
        weight[n + a] = weight[first] + weight[second]
        parent[first] = n + a
        parent[second] = n + a
        branch[second] = 1
    return parent, branch


@njit(inline="always")
def _smallest(weight, leaves, leaf, inner, made):  # pragma: no cover - compiled
    """The smaller front of the two queues (a leaf only if strictly smaller), and the fronts after taking it."""
    if leaf < len(leaves) and (inner >= made or weight[leaves[leaf]] < weight[inner]):
        return leaves[leaf], leaf + 1, inner
    return np.int64(inner), leaf, inner + 1


@njit(cache=True)
def _depths(parent, n):  # pragma: no cover - compiled
    """Each word's path length: inner nodes are made in order, so a node's parent comes after it and one pass
    from the root down gives every depth."""
    depth = np.zeros(2 * n - 1, dtype=np.int64)
    for node in range(2 * n - 3, -1, -1):  # the root (2n - 2) has depth 0
        depth[node] = depth[parent[node]] + 1
    return depth[:n]


@njit(cache=True)
def _paths(parent, branch, start, points, codes):  # pragma: no cover - compiled
    """Write each word's path root first: walk up from the leaf, filling its slice from the end."""
    n = len(start) - 1
    for word in range(n):
        k = start[word + 1]
        node = word
        while parent[node] >= 0:
            k -= 1
            codes[k] = branch[node]
            points[k] = parent[node] - n
            node = parent[node]
