"""Hierarchical softmax's Huffman tree: a valid prefix code, as short as gensim's, the same on every machine."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from w2v.huffman import huffman_tree

COUNTS = {
    "zipf": np.sort(np.random.default_rng(0).zipf(1.4, 3000) + 4)[::-1],
    "ties": np.repeat([50, 20, 20, 7, 5, 5, 5, 1], [1, 3, 5, 10, 40, 2, 30, 100]),
    "equal": np.full(1000, 9),
    "two": np.array([3, 1]),
}


@pytest.mark.parametrize("name", list(COUNTS))
def test_paths_are_a_prefix_code_rooted_at_the_last_inner_node(name):
    counts = COUNTS[name]
    tree = huffman_tree(counts)
    n = len(counts)
    codes = ["".join(map(str, tree.path(w)[1])) for w in range(n)]
    assert all(codes) and len(set(codes)) == n
    ordered = sorted(codes)
    assert not any(b.startswith(a) for a, b in zip(ordered, ordered[1:]))  # no code is the start of another
    assert (tree.points[tree.start[:-1]] == n - 2).all()  # every path starts at the root
    assert tree.points.min() >= 0 and tree.points.max() == n - 2  # inner nodes are syn1's rows 0..V-2
    # A node's two children are told apart by the code: the same prefix of nodes, then 0 or 1.
    for w in range(min(n, 200)):
        nodes, bits = tree.path(w)
        for other in range(min(n, 200)):
            other_nodes, other_bits = tree.path(other)
            k = min(len(bits), len(other_bits))
            same = np.flatnonzero(bits[:k] != other_bits[:k])
            first = same[0] if len(same) else k
            assert (nodes[:first + (first < k)] == other_nodes[:first + (first < k)]).all()


@pytest.mark.parametrize("name", list(COUNTS))
def test_count_weighted_path_length_equals_gensims(name):
    gensim_models = pytest.importorskip("gensim.models")
    counts = COUNTS[name]
    model = gensim_models.Word2Vec(vector_size=4, hs=1, negative=0, min_count=1, sample=0)
    model.build_vocab_from_freq({f"w{i}": int(c) for i, c in enumerate(counts)})
    theirs = sum(int(model.wv.get_vecattr(f"w{i}", "count")) * len(model.wv.get_vecattr(f"w{i}", "code"))
                 for i in range(len(counts)))
    tree = huffman_tree(counts)
    assert int((np.diff(tree.start) * counts).sum()) == theirs


def test_frequent_words_get_paths_no_longer_than_rare_ones():
    counts = COUNTS["zipf"]
    lengths = np.diff(huffman_tree(counts).start)
    assert (np.diff(lengths[np.argsort(-counts, kind="stable")]) >= 0).all()


def test_the_tree_is_a_function_of_the_counts_pinned():
    # The tie rule is fixed (a leaf goes first only when strictly smaller; equal leaves by id, highest first), so
    # the codes are the same on every machine; pinned here for a vocabulary with many ties.
    tree = huffman_tree(COUNTS["ties"])
    digest = hashlib.md5(tree.start.tobytes() + tree.points.tobytes() + tree.codes.tobytes()).hexdigest()
    assert digest == "8fbd103ded7fe62e1d271d53d7211963"


def test_fewer_than_two_words_is_refused():
    with pytest.raises(ValueError, match="at least two words"):
        huffman_tree(np.array([4]))
