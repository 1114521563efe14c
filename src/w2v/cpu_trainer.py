"""The CPU trainer: skip-gram and CBOW over window shards, compiled with numba.

Orientation as in word2vec.c and gensim: each context word's input vector (``syn0``) predicts the center word's
output vector (``syn1neg``) against ``negative`` noise words. The window routines take a window's *targets*
(rows of an output matrix) and their *labels* (1 for the word to predict, 0 for a noise word), so they do not
know which objective chose them. A window (one center and its m context words) is trained in one of two ways:

* **shared noise** (``train.shared_negatives``, the default): one draw of K noise words serves all m contexts,
  so the window is a small dense problem, as in Intel's pWord2Vec ("HogBatch"): the m × (K+1) scores
  ``X·Yᵀ`` of the m context rows X and the K+1 target rows Y, one gradient matrix G, then ``Y += Gᵀ·X`` and
  ``X += G·Y`` from the rows as they were. Each row is loaded once per window instead of once per pair, and
  there are K draws per window instead of K per pair;
* **per-pair noise**: word2vec.c's loop, a fresh draw of K noise words and one SGD step per (context, center).

A noise word equal to the center is skipped. The learning rate decays linearly with the global pair index
(:class:`w2v.sgns.Schedule`), taken at each window's first pair.

The windows of a chunk are split into ``threads`` *lanes* of about equal pairs. Each lane first draws its noise
words (a 64-bit LCG, seeded per chunk from (seed, epoch, shard, chunk start), so a resumed run replays them), so
that every row each lane will touch is known before any is trained:

* **deterministic** (the default): a row that one lane alone touches in the chunk is trained in place; a row
  that several lanes touch (the frequent words) is trained by each lane on a private copy, and at the end of
  the chunk the lanes' changes to it are added in lane order. The result depends on the params and the number
  of lanes, never on timing (word2vec.c and gensim are reproducible with one thread only), and a lane never
  copies more than the shared rows it uses. The lanes mark what they touch in bit sets, the shared rows are
  numbered in row order, and each lane makes its copies before it trains: copies and merges then run through
  memory front to back (bench/NOTES.md, "The lanes at full speed");
* **hogwild**: the lanes share both matrices without locks, as word2vec.c does; never bit-reproducible.

One lane is plain sequential SGD, the same bytes in both modes. All arithmetic goes through
:mod:`w2v.portable_math`: the same bytes on every CPU. The matrices are kept with their rows padded to a
multiple of ``LANES`` floats (zeros that stay zero), so that no dot product or update has a ragged end, and start
on a cache line, so that a row fills whole lines and two lanes never share one through neighbouring rows.

The kernels take their arguments in a few named bundles (:class:`Windows`, :class:`Split`, :class:`Settings`,
one :class:`Rows` per matrix, :class:`Scratch`): numba passes a tuple's arrays by reference, at no cost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from w2v.huffman import MAX_EXP as HUFFMAN_MAX_EXP
from w2v.huffman import HuffmanTree
from w2v.matrices import HIERARCHICAL, INPUT, NEGATIVE, Matrices, check_objectives, describe_objectives
from w2v.params import TrainParams, worker_count
from w2v.portable_math import FASTMATH, LANES, accumulate, dot, dot_rows, forget_stale_compilations, sigmoid_softplus32
from w2v.sgns import Schedule
from w2v.shards import MAX_WINDOW, WindowShard
from w2v.training import chunk_ends, equal_pair_bounds

if TYPE_CHECKING:  # a group's merge hands tensors over; a one-process run never imports torch
    import torch

LCG_MUL = np.uint64(6364136223846793005)
LCG_INC = np.uint64(1442695040888963407)
MAX_CONTEXT = 2 * MAX_WINDOW
MERGE_PAIRS_PER_WORD = 50
MIN_MERGE_PAIRS = 256  # the fewest pairs between merges of many lanes: a lane's bookkeeping then outweighs its work
CACHE_LINE = 64
SEPARATE = 16  # 8-byte items: 128 bytes, two cache lines
# The label bit SKIP_SATURATED marks the targets of hierarchical softmax, which are not trained while their score is
# saturated (w2v.huffman.MAX_EXP). Negative sampling has no such rule (word2vec.c's table clips the sigmoid, which
# the exact one matches to 0.25%).
MAX_EXP = np.float32(HUFFMAN_MAX_EXP)
SKIP_SATURATED = 2
PREFETCH = 2  # windows ahead whose rows are brought into the cache (measured: 2 beats 1 with 354k words)
ROWS_AHEAD = 8  # shared rows fetched ahead by the lanes' copies and the merge


@njit(fastmath=FASTMATH, inline="always")
def _noise_word(state, vocab, accept, alias):  # pragma: no cover - compiled
    """One LCG step per draw: the top 32 bits pick an alias bucket, the next 24 the coin. Returns (word, state)."""
    state = state * LCG_MUL + LCG_INC
    bucket = np.int64(((state >> np.uint64(32)) * np.uint64(vocab)) >> np.uint64(32))
    if np.float32(((state >> np.uint64(8)) & np.uint64(0xFFFFFF)) * (1.0 / 16777216.0)) < accept[bucket]:
        return bucket, state
    return np.int64(alias[bucket]), state


@njit(fastmath=FASTMATH, inline="always")
def _axpy(a, x, y):  # pragma: no cover - compiled
    """y += a * x, elementwise (each element its own multiply and add: vectorised in any width, same bits)."""
    for d in range(len(y)):
        y[d] += a * x[d]


@njit(fastmath=FASTMATH, inline="always")
def _step_target(g, x, y, grad):  # pragma: no cover - compiled
    """grad += g·y, then y += g·x, in one pass over y (its old value read once): the bits of the two passes."""
    for d in range(len(y)):
        grad[d] += g * y[d]
        y[d] += g * x[d]


@intrinsic
def _prefetch_row(typingctx, matrix, row):
    """Ask the CPU to bring matrix[row] into its cache (a hint: no effect on any result)."""
    if not (isinstance(matrix, types.Array) and matrix.ndim == 2 and matrix.layout == "C"):
        return None

    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        i8, i32, i64 = ir.IntType(8), ir.IntType(32), ir.IntType(64)
        width = builder.extract_value(array.shape, 1)
        start = builder.gep(array.data, [builder.mul(context.cast(builder, args[1], signature.args[1], types.int64),
                                                     width)])
        start = builder.bitcast(start, i8.as_pointer())
        prefetch = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [
            i8.as_pointer(), i32, i32, i32]), "llvm.prefetch.p0")
        size = builder.mul(width, ir.Constant(i64, context.get_abi_sizeof(context.get_data_type(matrix.dtype))))
        with cgutils.for_range_slice(builder, ir.Constant(i64, 0), size, ir.Constant(i64, 64)) as (offset, _):
            # For writing (the row is updated), into every cache level.
            builder.call(prefetch, [builder.gep(start, [offset]), ir.Constant(i32, 1), ir.Constant(i32, 3),
                                    ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.void(matrix, row), codegen


class Windows(NamedTuple):
    """A shard's windows (:class:`w2v.shards.WindowShard`): the tokens, and each window's center position and
    reach to the left and right."""

    tokens: np.ndarray
    center: np.ndarray
    left: np.ndarray
    right: np.ndarray


class Split(NamedTuple):
    """A chunk cut into lanes: lane t trains windows bounds[t]..bounds[t+1]-1, whose first pair has global index
    first_pairs[t], with the noise stream seeds[t]."""

    bounds: np.ndarray
    first_pairs: np.ndarray
    seeds: np.ndarray


class Settings(NamedTuple):
    """What the params make of the kernel: the objective, the noise table and the learning-rate schedule."""

    vocab: int
    negative: int
    shared: bool  # one noise draw per window (always for CBOW)
    cbow: int  # 0 skip-gram, 1 CBOW with the sum of the contexts, 2 with their mean
    merge: bool  # deterministic lanes: rows several lanes touch are trained on private copies, then merged
    alpha: float
    alpha_step: float
    min_alpha: float
    accept: np.ndarray  # the noise words' alias table
    alias: np.ndarray
    hs: bool  # hierarchical softmax: the center's path in the Huffman tree (w2v.huffman)
    path_start: np.ndarray
    points: np.ndarray
    codes: np.ndarray


class Rows(NamedTuple):
    """A trained matrix and the lanes' bookkeeping of it: ``matrix`` holds the model's rows, then ``capacity``
    private rows per lane; ``touch`` a bit set per lane of the rows it touches in the chunk; ``slot`` the private
    slot of a row several lanes touch (-1 for the others) and ``words`` the row of each slot."""

    matrix: np.ndarray
    touch: np.ndarray
    slot: np.ndarray
    words: np.ndarray
    capacity: int


class Scratch(NamedTuple):
    """Each lane's working memory (the first axis is the lane): its noise words, then for one window the rows of
    its contexts (rows0) and targets (rows1, labels: bit 1 set for the word to predict, clear for a noise word;
    bit 2 :data:`SKIP_SATURATED`), the scores' gains (m × targets), sigmoids and softpluses (m·targets), the
    contexts' changes (m × dim) and one vector."""

    noise: np.ndarray
    rows0: np.ndarray
    rows1: np.ndarray
    labels: np.ndarray
    gain: np.ndarray
    sigma: np.ndarray
    softplus: np.ndarray
    delta: np.ndarray
    grad: np.ndarray


@njit(fastmath=FASTMATH, inline="always")
def _row(word, lane, vocab, rows):  # pragma: no cover - compiled
    """The row to train for ``word``: its own row, or, for a row several lanes touch, the lane's private copy
    (after the last row of the model)."""
    s = rows.slot[word]
    return word if s < 0 else vocab + lane * rows.capacity + s


@njit(fastmath=FASTMATH, inline="always")
def _prefetch_window(windows, w, noise, drawn, settings, syn0, syn1, syn1neg, lane):  # pragma: no cover - compiled
    """Bring the rows window w will use (the lane's copies of shared rows) into the cache while the window before
    it is trained: with a large vocabulary most rows come from main memory, and this hides that wait."""
    vocab = settings.vocab
    p = np.int64(windows.center[w])
    c = np.int64(windows.tokens[p])
    for q in range(p - np.int64(windows.left[w]), p + np.int64(windows.right[w]) + 1):
        if q != p:
            _prefetch_row(syn0.matrix, _row(np.int64(windows.tokens[q]), lane, vocab, syn0))
    if settings.hs:
        for k in range(settings.path_start[c], settings.path_start[c + 1]):
            _prefetch_row(syn1.matrix, _row(np.int64(settings.points[k]), lane, vocab, syn1))
    if settings.negative:
        _prefetch_row(syn1neg.matrix, _row(c, lane, vocab, syn1neg))
        if settings.shared:
            for k in range(settings.negative):
                _prefetch_row(syn1neg.matrix, _row(noise[drawn + k], lane, vocab, syn1neg))


@njit(fastmath=FASTMATH, inline="always")
def _touched(touch, word):  # pragma: no cover - compiled
    """Whether ``word``'s bit is set in the bit set ``touch`` (64 words per uint64)."""
    return (touch[word >> 6] >> np.uint64(word & 63)) & np.uint64(1)


@njit(fastmath=FASTMATH, inline="always")
def _mark(word, touch):  # pragma: no cover - compiled
    touch[word >> 6] |= np.uint64(1) << np.uint64(word & 63)


@njit(fastmath=FASTMATH, nogil=True, cache=True)
def draw_noise(windows, lo, hi, settings, state, noise, mark, touch0, touch_hs, touch1):  # pragma: no cover
    """Draw the noise words of windows lo..hi-1 in the order training uses them (K per window, or K per pair);
    with ``mark``, also mark in bit sets every row the windows touch (``touch0`` contexts, ``touch_hs`` the inner
    nodes on the centers' paths, ``touch1`` centers and noise words): a bit per word keeps a large vocabulary's
    marks in the core's own cache."""
    tokens, center, left, right = windows
    negative = settings.negative
    drawn = 0
    for w in range(lo, hi):
        p = np.int64(center[w])
        c = np.int64(tokens[p])
        draws = negative if settings.shared else negative * (np.int64(left[w]) + np.int64(right[w]))
        for _ in range(draws):
            noise[drawn], state = _noise_word(state, settings.vocab, settings.accept, settings.alias)
            if mark:
                _mark(noise[drawn], touch1)
            drawn += 1
        if mark:
            if negative:
                _mark(c, touch1)
            if settings.hs:
                for k in range(settings.path_start[c], settings.path_start[c + 1]):
                    _mark(np.int64(settings.points[k]), touch_hs)
            for q in range(p - np.int64(left[w]), p + np.int64(right[w]) + 1):
                if q != p:
                    _mark(np.int64(tokens[q]), touch0)


@njit(fastmath=FASTMATH, nogil=True, cache=True)
def copy_shared_rows(rows, vocab, lane, shared):  # pragma: no cover - compiled
    """Make the lane's private copies of the shared rows it touches, all before training, in the order of the
    rows: both the model's rows and the copies are read and written front to back, which the CPU streams, where
    copying each row on first touch stalled the training loop on every copy."""
    matrix, touch = rows.matrix, rows.touch[lane]
    for s in range(shared):
        if s + ROWS_AHEAD < shared:  # the shared rows are scattered over the model: fetch ahead
            _prefetch_row(matrix, rows.words[s + ROWS_AHEAD])
        word = rows.words[s]
        if _touched(touch, word):
            private, source = matrix[vocab + lane * rows.capacity + s], matrix[word]
            for d in range(len(private)):
                private[d] = source[d]


@njit(fastmath=FASTMATH, inline="always")
def _gain(label, score, sigma, lr):  # pragma: no cover - compiled
    """The step of a score: (1 - σ)·lr towards a word to predict (label bit 1), -σ·lr away from a noise word; none
    for a unit of hierarchical softmax (label bit 2) whose score is saturated, as word2vec.c and gensim skip it."""
    if label & SKIP_SATURATED and (score >= MAX_EXP or score <= -MAX_EXP):
        return np.float32(0.0)
    return (np.float32(1.0) - sigma) * lr if label & 1 else -sigma * lr


@njit(fastmath=FASTMATH, inline="always")
def _shared_window(m0, m1, rows0, rows1, labels, m, targets, lr, gain, sigma, softplus, delta):  # pragma: no cover
    """The window's m contexts (rows0 of m0) against its targets (rows1 of m1, with their labels), all from the
    rows as they were: scores, gains G, then Y += Gᵀ·X now and X's change G·Y added to ``delta`` (the caller
    applies it once every output matrix has been trained). Returns the loss."""
    width = gain.shape[1]
    for i in range(m):
        dot_rows(m0[rows0[i]], m1, rows1, targets, gain[i])
    scores = gain[:m].reshape(m * width)
    softplus_f, softplus_minus_f = softplus[0], softplus[1]
    for e in range(m * width):  # a flat loop of independent evaluations: vectorised, same bits per element
        sigma[e], softplus_f[e], softplus_minus_f[e] = sigmoid_softplus32(scores[e])
    loss = 0.0
    for i in range(m):  # -log σ(f) for a word to predict, -log σ(-f) for a noise word
        for j in range(targets):
            e = i * width + j
            loss += softplus_minus_f[e] if labels[j] & 1 else softplus_f[e]
            gain[i, j] = _gain(labels[j], scores[e], sigma[e], lr)  # the score's slot: read, then overwritten
    for i in range(m):
        accumulate(delta[i], gain[i, :targets], m1, rows1, targets)
    for j in range(targets):
        accumulate(m1[rows1[j]], gain[:m, j], m0, rows0, m)
    return loss


ONES = np.ones(512, dtype=np.float32)  # coefficients of a plain sum of rows: a window has at most 2 x 255 contexts


@njit(fastmath=FASTMATH, inline="always")
def _cbow_hidden(m0, rows0, m, mean, h):  # pragma: no cover - compiled
    """h = the sum (or, with ``mean``, the mean) of the m context rows, summed in context order with h held in
    registers across the rows (1·x is x exactly: the sum of m separate passes, bit for bit)."""
    h[:] = 0.0
    accumulate(h, ONES, m0, rows0, m)
    if mean:
        inverse = np.float32(1.0) / np.float32(m)
        for d in range(len(h)):
            h[d] *= inverse


@njit(fastmath=FASTMATH, inline="always")
def _score_targets(h, m1, rows1, targets, scores, sigma, softplus):  # pragma: no cover - compiled
    """The score h·y of each target, then its σ and softpluses in one pass of independent evaluations."""
    dot_rows(h, m1, rows1, targets, scores)
    for j in range(targets):
        sigma[j], softplus[0][j], softplus[1][j] = sigmoid_softplus32(scores[j])


@njit(fastmath=FASTMATH, inline="always")
def _targets_in_turn(h, m1, rows1, labels, targets, lr, grad, scores, sigma, softplus, loss):  # pragma: no cover
    """h (CBOW's hidden vector, or one context row for per-pair noise) predicts the targets (rows1 of m1, with
    their labels) one after the other, as word2vec.c does: each target moves now, h's error is added to ``grad``.
    Returns ``loss`` plus each target's loss, added in turn.

    h does not change while the targets are trained, so a target's score is the same before and after the targets
    ahead of it have moved, unless it is one of them again (a noise word drawn twice): all scores and their
    sigmoids are computed first, in one pass of independent evaluations, and only a repeated target's is redone."""
    _score_targets(h, m1, rows1, targets, scores, sigma, softplus)
    softplus_f, softplus_minus_f = softplus[0], softplus[1]
    for j in range(targets):
        y = m1[rows1[j]]
        for k in range(j):
            if rows1[k] == rows1[j]:  # moved since its score was taken
                scores[j] = dot(h, y)
                sigma[j], softplus_f[j], softplus_minus_f[j] = sigmoid_softplus32(scores[j])
                break
        loss += softplus_minus_f[j] if labels[j] & 1 else softplus_f[j]
        _step_target(_gain(labels[j], scores[j], sigma[j], lr), h, y, grad)
    return loss


@njit(fastmath=FASTMATH, inline="always")
def _distinct_targets(h, m1, rows1, labels, targets, lr, grad, scores, sigma, softplus, loss):  # pragma: no cover
    """:func:`_targets_in_turn` for targets known to be distinct (a path's inner nodes): no target's score changes
    before its turn, so the gains are all known first and h's error is gathered in one pass over the rows
    (:func:`w2v.portable_math.accumulate`, the same sums in the same order). Returns ``loss`` plus theirs."""
    _score_targets(h, m1, rows1, targets, scores, sigma, softplus)
    softplus_f, softplus_minus_f = softplus[0], softplus[1]
    for j in range(targets):
        loss += softplus_minus_f[j] if labels[j] & 1 else softplus_f[j]
        scores[j] = _gain(labels[j], scores[j], sigma[j], lr)  # the score's slot now holds its gain
    accumulate(grad, scores[:targets], m1, rows1, targets)
    for j in range(targets):
        _axpy(scores[j], h, m1[rows1[j]])
    return loss


@njit(fastmath=FASTMATH, inline="always")
def _cbow_apply(m0, rows0, m, mean, grad):  # pragma: no cover - compiled
    """Each context row gets h's summed error: as it is for the mean, divided by m for the sum (as gensim does
    with cbow_mean=0)."""
    if not mean:
        inverse = np.float32(1.0) / np.float32(m)
        for d in range(len(grad)):
            grad[d] *= inverse
    for i in range(m):
        _axpy(np.float32(1.0), grad, m0[rows0[i]])


@njit(fastmath=FASTMATH, inline="always")
def _negative_targets(c, noise, drawn, settings, rows, lane, rows1, labels):  # pragma: no cover - compiled
    """Negative sampling's targets of one (window or pair) step: the center (label 1), then the noise words drawn
    for it from ``drawn`` on, less any equal to the center. Returns how many."""
    rows1[0], labels[0] = _row(c, lane, settings.vocab, rows), 1
    targets = 1
    for k in range(drawn, drawn + settings.negative):
        if noise[k] != c:  # a noise word equal to the center is skipped, for every context
            rows1[targets], labels[targets] = _row(noise[k], lane, settings.vocab, rows), 0
            targets += 1
    return targets


@njit(fastmath=FASTMATH, inline="always")
def _path_targets(c, settings, rows, lane, rows1, labels):  # pragma: no cover - compiled
    """Hierarchical softmax's targets for center c: the inner nodes on its path, each trained towards the label
    1 - code, and left alone while its score is saturated (word2vec.c's and gensim's rules). Returns how many."""
    first = settings.path_start[c]
    targets = settings.path_start[c + 1] - first
    for j in range(targets):
        rows1[j] = _row(np.int64(settings.points[first + j]), lane, settings.vocab, rows)
        labels[j] = (1 - settings.codes[first + j]) | SKIP_SATURATED
    return targets


@njit(fastmath=FASTMATH, nogil=True, cache=True)
def train_windows(windows, lo, hi, first_pair, settings, syn0, syn1, syn1neg, lane, scratch):  # pragma: no cover
    """Train windows lo..hi-1 of a shard with the noise words the lane drew for them; return their summed loss
    (float64). A CBOW window's loss counts once per context word, so that the mean loss per pair weighs windows
    as skip-gram does.

    The output layers (hierarchical softmax on ``syn1``, then negative sampling on ``syn1neg``, as word2vec.c
    orders them) are trained one after the other from the contexts as they were; the contexts' change from both
    is applied last. ``first_pair`` is the global index of window lo's first pair (for the learning rate). A row
    several lanes touch is trained on the lane's private copy (:func:`copy_shared_rows`).
    """
    tokens, center, left, right = windows
    m0, m_hs, m_neg = syn0.matrix, syn1.matrix, syn1neg.matrix
    noise, rows0, rows1, labels = scratch.noise[lane], scratch.rows0[lane], scratch.rows1[lane], scratch.labels[lane]
    gain, sigma, softplus = scratch.gain[lane], scratch.sigma[lane], scratch.softplus[lane]
    delta, grad = scratch.delta[lane], scratch.grad[lane, :m0.shape[1]]
    negative, vocab, hs = settings.negative, settings.vocab, settings.hs
    pair = first_pair
    drawn = 0
    loss = 0.0
    for w in range(lo, hi):
        if w + PREFETCH < hi:
            _prefetch_window(windows, w + PREFETCH, noise, drawn + PREFETCH * negative, settings, syn0, syn1, syn1neg,
                             lane)
        p = np.int64(center[w])
        m = np.int64(left[w]) + np.int64(right[w])
        lr = np.float32(max(settings.alpha - settings.alpha_step * pair, settings.min_alpha))
        pair += m
        c = np.int64(tokens[p])
        k = 0
        for q in range(p - np.int64(left[w]), p + np.int64(right[w]) + 1):
            if q != p:
                rows0[k] = _row(np.int64(tokens[q]), lane, vocab, syn0)
                k += 1
        if settings.shared:
            if settings.cbow:
                if m == 0:
                    drawn += negative
                    continue
                mean = settings.cbow == 2
                h = delta[0]
                _cbow_hidden(m0, rows0, m, mean, h)
                grad[:] = 0.0
                if hs:
                    targets = _path_targets(c, settings, syn1, lane, rows1, labels)
                    loss += m * _distinct_targets(h, m_hs, rows1, labels, targets, lr, grad, gain[0], sigma, softplus,
                                                  0.0)
                if negative:
                    targets = _negative_targets(c, noise, drawn, settings, syn1neg, lane, rows1, labels)
                    drawn += negative
                    loss += m * _targets_in_turn(h, m_neg, rows1, labels, targets, lr, grad, gain[0], sigma, softplus,
                                                  0.0)
                _cbow_apply(m0, rows0, m, mean, grad)
            else:
                for i in range(m):
                    delta[i][:] = 0.0
                if hs:
                    targets = _path_targets(c, settings, syn1, lane, rows1, labels)
                    loss += _shared_window(m0, m_hs, rows0, rows1, labels, m, targets, lr, gain, sigma, softplus,
                                           delta)
                if negative:
                    targets = _negative_targets(c, noise, drawn, settings, syn1neg, lane, rows1, labels)
                    drawn += negative
                    loss += _shared_window(m0, m_neg, rows0, rows1, labels, m, targets, lr, gain, sigma, softplus,
                                           delta)
                for i in range(m):
                    _axpy(np.float32(1.0), delta[i], m0[rows0[i]])
        else:  # word2vec.c's loop: each context in turn, through the path, then against its own noise words
            for i in range(m):
                x = m0[rows0[i]]
                grad[:] = 0.0
                if hs:
                    targets = _path_targets(c, settings, syn1, lane, rows1, labels)
                    loss = _distinct_targets(x, m_hs, rows1, labels, targets, lr, grad, gain[0], sigma, softplus, loss)
                if negative:
                    targets = _negative_targets(c, noise, drawn, settings, syn1neg, lane, rows1, labels)
                    drawn += negative
                    loss = _targets_in_turn(x, m_neg, rows1, labels, targets, lr, grad, gain[0], sigma, softplus, loss)
                _axpy(np.float32(1.0), grad, x)
    return loss


@njit(fastmath=FASTMATH, inline="always")
def _touched_twice(touch, i):  # pragma: no cover - compiled
    """The bits of words i*64..i*64+63 that two or more lanes' bit sets have."""
    once, twice = np.uint64(0), np.uint64(0)
    for t in range(touch.shape[0]):
        twice |= once & touch[t, i]
        once |= touch[t, i]
    return twice


@njit(fastmath=FASTMATH, inline="always")
def _bit_count(x):  # pragma: no cover - compiled
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int64((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@njit(parallel=True, nogil=True, fastmath=FASTMATH, cache=True)
def find_shared_rows(touch, slot, words):  # pragma: no cover - compiled
    """Give every row that two or more lanes touch (``touch``: a bit set per lane) a private slot, in the order of
    the rows; return how many. Two parallel passes over the bit sets (count per block, then number): work in
    proportion to vocabulary × lanes ÷ threads per chunk."""
    block = 512
    blocks = -(-touch.shape[1] // block)
    found = np.zeros(blocks + 1, dtype=np.int64)
    for b in prange(blocks):
        for i in range(b * block, min((b + 1) * block, touch.shape[1])):
            found[b + 1] += _bit_count(_touched_twice(touch, i))
    first = np.cumsum(found)
    for b in prange(blocks):
        shared = first[b]
        for i in range(b * block, min((b + 1) * block, touch.shape[1])):
            twice, bit = _touched_twice(touch, i), 0
            while twice != 0:
                if twice & np.uint64(1):
                    word = i * 64 + bit
                    slot[word] = shared
                    words[shared] = word
                    shared += 1
                twice >>= np.uint64(1)
                bit += 1
    return first[blocks]


MERGE_BLOCK = 64  # shared rows per task of the merge (each task keeps one row's value at the last merge)


@njit(parallel=True, nogil=True, fastmath=FASTMATH, cache=True)
def merge_shared_rows(matrix, vocab, capacity, words, shared, touch, slot):  # pragma: no cover - compiled
    """Add each lane's change of each shared row (its copy minus the row) to the model, lane after lane, and
    forget the private copies (a lane has a copy of the shared rows it touched). One pass: the row is read and
    written once, each copy read once (the row's old value is kept aside for the lanes' changes)."""
    lanes = touch.shape[0]
    for b in prange(-(-shared // MERGE_BLOCK)):
        base = np.empty(matrix.shape[1], dtype=matrix.dtype)
        end = min((b + 1) * MERGE_BLOCK, shared)
        for s in range(b * MERGE_BLOCK, end):
            if s + ROWS_AHEAD < end:  # the shared rows are scattered over the model (the copies are contiguous)
                _prefetch_row(matrix, words[s + ROWS_AHEAD])
            word = words[s]
            row = matrix[word]
            base[:] = row
            for t in range(lanes):
                if _touched(touch[t], word):
                    private = matrix[vocab + t * capacity + s]
                    for d in range(len(row)):
                        row[d] += private[d] - base[d]
            slot[word] = -1


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def merge_lanes(rows, vocab, shared):  # pragma: no cover - compiled
    """Merge the lanes' copies of a matrix's shared rows and clear their marks for the next chunk."""
    # The arrays go to the parallel loops themselves, not in the tuple: numba's parallel loops lost writes made
    # through a tuple's fields (measured: the slots and marks were not always reset).
    merge_shared_rows(rows.matrix, vocab, rows.capacity, rows.words, shared, rows.touch, rows.slot)
    rows.touch[:] = 0


@njit(parallel=True, nogil=True, fastmath=FASTMATH, cache=True)
def draw_lanes(windows, split, settings, syn0, syn1, syn1neg, scratch):  # pragma: no cover - compiled
    """Each lane draws its noise words and, for the deterministic merge, marks the rows it will touch."""
    for t in prange(len(split.seeds)):
        draw_noise(windows, split.bounds[t], split.bounds[t + 1], settings, split.seeds[t], scratch.noise[t],
                   settings.merge, syn0.touch[t], syn1.touch[t], syn1neg.touch[t])


@njit(parallel=True, nogil=True, fastmath=FASTMATH, cache=True)
def train_lanes(windows, split, settings, syn0, syn1, syn1neg, scratch, shared):  # pragma: no cover - compiled
    """Each lane copies the shared rows it touches (``shared``: how many of each matrix), then trains its windows;
    returns the lanes' losses."""
    lanes = len(split.seeds)
    losses = np.zeros(lanes)
    for t in prange(lanes):
        copy_shared_rows(syn0, settings.vocab, t, shared[0])
        copy_shared_rows(syn1, settings.vocab, t, shared[1])
        copy_shared_rows(syn1neg, settings.vocab, t, shared[2])
        losses[t] = train_windows(windows, split.bounds[t], split.bounds[t + 1], split.first_pairs[t], settings,
                                  syn0, syn1, syn1neg, t, scratch)
    return losses


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def mark_trained_rows(windows, split, settings, noise, marks0, marks_hs, marks1):  # pragma: no cover - compiled
    """Set the byte of every row the chunk's lanes trained (``marks0`` contexts, ``marks_hs`` the inner nodes on the
    centers' paths, ``marks1`` centers and the noise words each lane drew in ``noise``): what a process of a group
    sends at its next merge. A row marked but left unchanged is merged exactly (its change is zero)."""
    tokens, center, left, right = windows
    negative = settings.negative
    for t in range(len(split.seeds)):
        drawn = 0
        for w in range(split.bounds[t], split.bounds[t + 1]):
            p = np.int64(center[w])
            c = np.int64(tokens[p])
            draws = negative if settings.shared else negative * (np.int64(left[w]) + np.int64(right[w]))
            for k in range(drawn, drawn + draws):
                marks1[noise[t, k]] = 1
            drawn += draws
            if negative:
                marks1[c] = 1
            if settings.hs:
                for k in range(settings.path_start[c], settings.path_start[c + 1]):
                    marks_hs[settings.points[k]] = 1
            for q in range(p - np.int64(left[w]), p + np.int64(right[w]) + 1):
                marks0[tokens[q]] = 1  # the center's own row too: one branch less, and exact all the same


@njit(parallel=True, nogil=True, cache=True)
def row_changes(matrix, base, rows, out):  # pragma: no cover - compiled
    """out[i] = matrix[rows[i]] - base[rows[i]] over out's columns: what this process changed in each row."""
    for i in prange(len(rows)):
        for d in range(out.shape[1]):
            out[i, d] = matrix[rows[i], d] - base[rows[i], d]


@njit(parallel=True, nogil=True, cache=True)
def apply_changes(matrix, base, rows, change):  # pragma: no cover - compiled
    """matrix[rows[i]] = base[rows[i]] + change[i], and the base follows: the merged rows."""
    for i in prange(len(rows)):
        for d in range(change.shape[1]):
            value = base[rows[i], d] + change[i, d]
            matrix[rows[i], d] = value
            base[rows[i], d] = value


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def train_chunk_lanes(windows, split, settings, syn0, syn1, syn1neg, scratch):  # pragma: no cover - compiled
    """Lane t trains windows split.bounds[t]..split.bounds[t+1]-1. With ``settings.merge``, rows that several lanes
    touch are trained on private copies, whose changes are then added to the model in lane order. ``syn1`` (hs)
    or ``syn1neg`` (negative) is an empty matrix when its objective is off. Returns per-lane losses."""
    draw_lanes(windows, split, settings, syn0, syn1, syn1neg, scratch)
    shared = np.zeros(3, dtype=np.int64)
    # A matrix whose objective is off has no rows: no parallel pass is started for it.
    if settings.merge:
        shared[0] = find_shared_rows(syn0.touch, syn0.slot, syn0.words)
        if settings.hs:
            shared[1] = find_shared_rows(syn1.touch, syn1.slot, syn1.words)
        if settings.negative:
            shared[2] = find_shared_rows(syn1neg.touch, syn1neg.slot, syn1neg.words)
    losses = train_lanes(windows, split, settings, syn0, syn1, syn1neg, scratch, shared)
    if settings.merge:
        merge_lanes(syn0, settings.vocab, shared[0])
        if settings.hs:
            merge_lanes(syn1, settings.vocab, shared[1])
        if settings.negative:
            merge_lanes(syn1neg, settings.vocab, shared[2])
    return losses


def merge_interval(sync_every: int, vocab: int, lanes: int) -> int:
    """Pairs between two merges of ``lanes`` deterministic lanes (``train.sync_every`` for 2 lanes, see
    :class:`CpuTrainer`)."""
    pairs = min(sync_every, MERGE_PAIRS_PER_WORD * vocab)
    return max(MIN_MERGE_PAIRS, pairs * 4 // (lanes * lanes)) if lanes > 2 else pairs


def padded(dim: int) -> int:
    return -(-dim // LANES) * LANES


def cache_aligned_zeros(shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
    """np.zeros whose first byte starts a cache line. numpy's large arrays start 16 bytes past one, so a row of
    whole cache lines would straddle one more line than it fills and share its end lines with the rows beside it
    (two lanes training neighbouring rows would then fight over those lines)."""
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    raw = np.zeros(size + CACHE_LINE, dtype=np.uint8)
    offset = -raw.ctypes.data % CACHE_LINE
    return raw[offset:offset + size].view(dtype).reshape(shape)


class CpuTrainer:
    """Trains chunks of windows on the model's matrices with the compiled kernels above, in ``lanes`` threads.

    In a group of processes (``group``, :mod:`w2v.distributed`: gloo on CPU machines) each process runs this
    kernel with its own lanes: a chunk of ``train.process_sync_every`` pairs is cut into one share per process
    (about equal pairs), a process trains its share in steps of the lanes' merge interval, marking the rows it
    trains, and then the processes add up every marked row's change (:meth:`w2v.distributed.Group.merge`). The
    run's lanes are then processes × lanes per process, and its bytes depend on both."""

    name = "numba"
    packages = ("numpy", "numba", "llvmlite", "w2v-dvc")  # what computes its bytes (a group adds torch's gloo)
    # Params that never reach this trainer (the lanes, which do, are recorded apart from train.threads).
    unused_params = frozenset({"threads", "batch_size"})

    @classmethod
    def from_params(cls, params: TrainParams, device: str, matrices: Matrices, noise: tuple[np.ndarray, np.ndarray],
                    schedule: Schedule, group=None, tree: HuffmanTree | None = None) -> "CpuTrainer":
        return cls(matrices, noise, params.negative, schedule, worker_count(params.threads), params.deterministic,
                   params.shared_negatives, params.merge_pairs, cbow=params.cbow_mode, tree=tree, group=group,
                   group_pairs=params.process_sync_every)

    def __init__(self, matrices: Matrices, noise: tuple[np.ndarray, np.ndarray], negative: int, schedule: Schedule,
                 lanes: int, deterministic: bool, shared_negatives: bool = True, chunk_pairs: int = 65536,
                 cbow: int = 0, tree: HuffmanTree | None = None, group=None, group_pairs: int = 1 << 20) -> None:
        import numba

        check_objectives(matrices, negative, tree)
        numba.set_num_threads(min(lanes, numba.config.NUMBA_NUM_THREADS))
        self.names = tuple(matrices)
        self.process_lanes, self.deterministic, self.cbow = lanes, deterministic, cbow
        self.group = group
        self.lanes = lanes * (group.world if group is not None else 1)  # the run's random streams per chunk
        self.shared = shared_negatives or cbow > 0  # CBOW draws its noise per window
        merge = deterministic and lanes > 1  # one lane is sequential SGD: nothing to merge
        self.vocab, self.dim = matrices[INPUT].shape
        self.tree = tree if tree is not None else HuffmanTree(np.zeros(1, np.int64), np.zeros(0, np.int32),
                                                              np.zeros(0, np.uint8))
        self.settings = Settings(self.vocab, negative, self.shared, cbow, merge, schedule.alpha, schedule.step,
                                 schedule.min_alpha, *noise, tree is not None, *self.tree)
        # Pairs per call of the kernel: how often the lanes' copies of shared rows are merged. The lanes' changes of
        # a row are summed, which overshoots once each lane has moved a row many times on its own, and the more so
        # the more lanes add theirs: a small vocabulary is merged more often (measured: 40 words diverge at 20,000
        # pairs per merge, train well at 2,000), and beyond 2 lanes the interval shrinks with the square of the
        # lanes (measured on the sample: 4 lanes merging every 65,536 pairs collapsed to analogy 0.003, every
        # 16,384 scored 0.054; bench/NOTES.md, "Many lanes").
        self.lane_pairs = merge_interval(chunk_pairs, self.vocab, lanes) if merge else chunk_pairs
        # A chunk of the loop: one kernel call, or in a group one merge of the processes.
        self.chunk_size = group_pairs if group is not None else self.lane_pairs
        width = padded(self.dim)
        # A kernel call ends within one window past lane_pairs: that bounds what a lane can touch and draw (sized
        # for the 2-lanes interval, so that a caller's chunks of sync_every pairs fit whatever the lanes).
        capacity = min(chunk_pairs, MERGE_PAIRS_PER_WORD * self.vocab) if merge else chunk_pairs
        self.max_pairs = max_pairs = capacity + MAX_CONTEXT
        # The most rows of each matrix one lane can touch in a chunk: its private copies of shared rows.
        touched = {INPUT: max_pairs, HIERARCHICAL: max_pairs * self.tree.longest, NEGATIVE: max_pairs * (negative + 1)}
        self.rows = {name: self._rows(matrices[name], min(self.vocab, touched[name]) if merge else 0, width)
                     if name in matrices else self._rows(np.zeros((0, self.dim), np.float32), 0, width)
                     for name in (INPUT, HIERARCHICAL, NEGATIVE)}
        # The most targets of one step: a path, or the center and its noise words.
        targets = max(self.tree.longest, negative + 1 if negative else 0)
        # Per-lane scratch: each lane's part padded to its own cache lines (two lanes writing one line would make it
        # bounce between their cores on every write).
        self.scratch = Scratch(
            noise=np.zeros((lanes, max_pairs * negative), dtype=np.int64),
            rows0=np.zeros((lanes, MAX_CONTEXT), dtype=np.int64),
            rows1=np.zeros((lanes, targets + SEPARATE), dtype=np.int64),
            labels=np.zeros((lanes, targets + 8 * SEPARATE), dtype=np.uint8),
            gain=np.zeros((lanes, MAX_CONTEXT, targets), dtype=np.float32),
            sigma=np.zeros((lanes, MAX_CONTEXT * targets), dtype=np.float32),
            softplus=np.zeros((lanes, 2, MAX_CONTEXT * targets), dtype=np.float32),
            delta=cache_aligned_zeros((lanes, MAX_CONTEXT, width)),
            grad=cache_aligned_zeros((lanes, width + 2 * SEPARATE)))
        if group is not None:
            # The model as at the last merge (every process has the same), and the group's marks of trained rows,
            # which the kernel sets through numpy views of them.
            self.base = {name: self.rows[name].matrix[:self.vocab].copy() for name in self.names}
            group.track({name: self.vocab for name in self.names})
            empty = np.zeros(0, dtype=np.uint8)
            self.marks = tuple(group.touched[name].numpy() if name in group.touched else empty
                               for name in (INPUT, HIERARCHICAL, NEGATIVE))

    def _rows(self, matrix: np.ndarray, capacity: int, width: int) -> Rows:
        """The matrix padded to ``width`` floats a row, followed by ``capacity`` private rows per lane, with the
        lanes' bookkeeping (np.zeros commits memory only for the rows used; the padding stays zero)."""
        rows = len(matrix)  # the vocabulary, or 0 for the matrix of an objective that is off
        padded_matrix = cache_aligned_zeros((rows + self.process_lanes * capacity, width))
        padded_matrix[:rows, :self.dim] = matrix
        # A bit per word and lane, each lane's set on cache lines of its own.
        marks = -(-rows // 512) * 8 if self.settings.merge else 0
        return Rows(padded_matrix, cache_aligned_zeros((self.process_lanes, marks), np.uint64),
                    np.full(rows, -1, dtype=np.int64), np.zeros(capacity, dtype=np.int64), capacity)

    def describe(self) -> str:
        mode = "deterministic" if self.deterministic else "Hogwild"
        noise = "noise shared per window" if self.shared else "noise per pair"
        model = ("CBOW, " + ("mean" if self.cbow == 2 else "sum") + " of the contexts, ") if self.cbow else ""
        objective = describe_objectives(self.settings.hs, self.settings.negative)
        if self.settings.negative:
            objective += f", {noise}"
        lanes = self.process_lanes
        text = f"{model}{objective}, {mode}, {lanes} lane{'s' if lanes > 1 else ''}"
        if self.group is not None:
            text += f" in {self.group.describe()}, merged every {self.chunk_size:,} pairs"
        return text

    def prepare(self, shard: WindowShard) -> None:
        """Compile (or load from numba's cache) the kernel for this shard's id type before the clock starts."""
        import numba

        arguments = self.kernel_arguments(shard, 0, 0, 0, np.zeros(self.process_lanes, dtype=np.uint64))
        train_chunk_lanes.compile(tuple(numba.typeof(a) for a in arguments))
        if self.group is not None:
            mark_trained_rows.compile(tuple(numba.typeof(a) for a in (*arguments[:3], self.scratch.noise,
                                                                      *self.marks)))
            matrix, base, rows = self.rows[INPUT].matrix, self.base[INPUT], np.zeros(0, dtype=np.int64)
            change = np.zeros((1, self.dim), dtype=np.float32)[:0]
            for kernel in (row_changes, apply_changes):
                kernel.compile(tuple(numba.typeof(a) for a in (matrix, base, rows, change)))

    def train_chunk(self, shard: WindowShard, lo: int, hi: int, first_pair: int, seeds: np.ndarray) -> float:
        """Train windows lo..hi-1 of the shard in place; return their summed loss (in a group: this process's share,
        then the merge, and every process's loss)."""
        if self.group is None:
            return float(train_chunk_lanes(*self.kernel_arguments(shard, lo, hi, first_pair, seeds)).sum())
        import torch

        cumulative = np.concatenate([[0], np.cumsum(shard.pair_counts(lo, hi))])
        rank, lanes = self.group.rank, self.process_lanes
        start, end = lo + equal_pair_bounds(cumulative, self.group.world)[rank:rank + 2]
        own_seeds = [int(s) for s in seeds[rank * lanes:(rank + 1) * lanes]]
        pairs = shard.pair_counts(start, end)
        before = np.concatenate([[0], np.cumsum(pairs)])
        loss, step_start = 0.0, 0
        for step, step_end in enumerate(chunk_ends(pairs, self.lane_pairs)):
            if step_end <= step_start:
                continue
            # Each kernel call of the share gets its lanes' streams from this process's seeds and the call's place.
            step_seeds = np.random.SeedSequence(own_seeds, spawn_key=(step,)).generate_state(lanes, np.uint64)
            arguments = self.kernel_arguments(shard, start + step_start, start + int(step_end),
                                              first_pair + int(cumulative[start - lo] + before[step_start]),
                                              step_seeds)
            loss += float(train_chunk_lanes(*arguments).sum())
            mark_trained_rows(*arguments[:3], self.scratch.noise, *self.marks)
            step_start = int(step_end)
        return self.group.exchange(torch.tensor(loss, dtype=torch.float64), self._changes, self._apply)

    def _changes(self, rows: dict) -> "torch.Tensor":
        """This process's change of the rows since the last merge, matrix after matrix (for the group's sum)."""
        import torch

        indices = {name: r.numpy() for name, r in rows.items()}
        change = np.empty((sum(len(r) for r in indices.values()), self.dim), dtype=np.float32)
        at = 0
        for name, r in indices.items():
            row_changes(self.rows[name].matrix, self.base[name], r, change[at:at + len(r)])
            at += len(r)
        return torch.from_numpy(change)

    def _apply(self, rows: dict, change: "torch.Tensor") -> None:
        """Set the merged rows: their value at the last merge plus the group's change."""
        values, at = change.numpy(), 0
        for name, r in rows.items():
            apply_changes(self.rows[name].matrix, self.base[name], r.numpy(), values[at:at + len(r)])
            at += len(r)

    def kernel_arguments(self, shard: WindowShard, lo: int, hi: int, first_pair: int, seeds: np.ndarray) -> tuple:
        """What :func:`train_chunk_lanes` is called with for a chunk (also what compiles it, for a given CPU)."""
        cumulative = np.concatenate([[0], np.cumsum(shard.pair_counts(lo, hi))])
        if cumulative[-1] > self.max_pairs:
            raise ValueError(f"a chunk of {cumulative[-1]} pairs: this trainer takes at most {self.max_pairs}")
        # Lane boundaries at equal shares of the chunk's pairs.
        bounds = lo + equal_pair_bounds(cumulative, self.process_lanes)
        split = Split(bounds, first_pair + cumulative[bounds - lo], seeds)
        windows = Windows(shard.tokens, shard.center, shard.left, shard.right)
        return windows, split, self.settings, *self.rows.values(), self.scratch

    def agree(self, stop: bool) -> bool:
        """Whether to stop: in a group, all processes stop at the same chunk, or their merges would wait forever."""
        return self.group.any(stop) if self.group is not None else stop

    def matrices(self) -> Matrices:
        """The model (copies of its rows, without the padding)."""
        return {name: np.ascontiguousarray(self.rows[name].matrix[:self.vocab, :self.dim]) for name in self.names}


forget_stale_compilations(__name__)
