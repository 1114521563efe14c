"""The CPU trainer: SGNS per pair, compiled with numba, in ``threads`` parallel *lanes*.

* **deterministic** (the default): lane t trains only the pairs whose center id is ≡ t (mod lanes), so each
  input row has one writer; each lane updates its own copy of ``syn1``, and at the end of every chunk the
  lanes' changes to ``syn1`` are summed into the model in a fixed order. The result depends on the params and
  the number of lanes, never on timing: the same bytes at full speed (word2vec.c and gensim are reproducible
  only with one thread).
* **hogwild**: lane t trains a contiguous slice of the chunk on the shared matrices without locks, as
  word2vec.c does; a little faster, never bit-reproducible.

Noise words are drawn by a 64-bit LCG per lane that is re-seeded at every chunk from (seed, epoch, shard,
chunk, lane), so a run resumed at a chunk boundary replays exactly the same draws.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from w2v.params import TrainParams, worker_count
from w2v.portable_math import FASTMATH, dot, forget_stale_compilations, sigmoid_softplus
from w2v.sgns import Schedule

LCG_MUL = np.uint64(6364136223846793005)
LCG_INC = np.uint64(1442695040888963407)


@njit(nogil=True, fastmath=FASTMATH, error_model="numpy", cache=True)
def _train_lane(center, context, lo, hi, lanes, lane, syn0, syn1, accept, alias, negative,
                alpha, alpha_step, min_alpha, first_pair, state, grad, touched):  # pragma: no cover - compiled
    """SGD over pairs lo..hi-1 (those whose center ≡ lane mod lanes; all when lanes == 1).

    Returns the summed loss. ``first_pair`` is the global index of pair 0 of the arrays, for the learning
    rate. ``state`` is this lane's LCG state, ``grad`` a scratch row; rows of syn1 it updates are marked in
    ``touched`` when that has one entry per word (pass an empty array to skip the marking).
    """
    mark = len(touched) > 0
    vocab = np.uint64(syn0.shape[0])
    dim = syn0.shape[1]
    loss = 0.0
    for i in range(lo, hi):
        c = center[i]
        if lanes > 1 and c % lanes != lane:
            continue
        o = context[i]
        lr = np.float32(max(alpha - alpha_step * (first_pair + i), min_alpha))
        v = syn0[c]
        for d in range(dim):
            grad[d] = 0.0
        for k in range(negative + 1):
            if k == 0:
                target = o
                label = np.float32(1.0)
            else:
                # One LCG step per draw: the top 32 bits pick the bucket, the next 24 the coin of the alias table.
                state = state * LCG_MUL + LCG_INC
                bucket = np.int64(((state >> np.uint64(32)) * vocab) >> np.uint64(32))
                if np.float32(((state >> np.uint64(8)) & np.uint64(0xFFFFFF)) * (1.0 / 16777216.0)) < accept[bucket]:
                    target = bucket
                else:
                    target = alias[bucket]
                if target == o:
                    continue
                label = np.float32(0.0)
            u = syn1[target]
            # One exp serves the gradient and the loss: -log σ(f) = softplus(-f), -log σ(-f) = softplus(f).
            sigma, softplus_f, softplus_minus_f = sigmoid_softplus(np.float64(dot(v, u)))
            loss += softplus_minus_f if k == 0 else softplus_f
            g = (label - np.float32(sigma)) * lr
            for d in range(dim):
                grad[d] += g * u[d]
            for d in range(dim):
                u[d] += g * v[d]
            if mark:
                touched[target] = 1
        for d in range(dim):
            v[d] += grad[d]
    return loss


@njit(parallel=True, nogil=True, fastmath=FASTMATH, error_model="numpy", cache=True)
def train_chunk_hogwild(center, context, syn0, syn1, accept, alias, negative, alpha, alpha_step, min_alpha,
                        first_pair, seeds, grads):  # pragma: no cover - compiled
    """Lane t trains slice t of the chunk on the shared matrices (no locks). Returns per-lane losses."""
    lanes = len(seeds)
    n = len(center)
    span = (n + lanes - 1) // lanes
    losses = np.zeros(lanes)
    for t in prange(lanes):
        lo = min(n, t * span)
        hi = min(n, lo + span)
        losses[t] = _train_lane(center, context, lo, hi, 1, 0, syn0, syn1, accept, alias, negative, alpha,
                                alpha_step, min_alpha, first_pair, seeds[t], grads[t], grads[t][:0])
    return losses


@njit(parallel=True, nogil=True, fastmath=FASTMATH, error_model="numpy", cache=True)
def train_chunk_deterministic(center, context, syn0, syn1, syn1_lanes, touched, accept, alias, negative, alpha,
                              alpha_step, min_alpha, first_pair, seeds, grads):  # pragma: no cover - compiled
    """Lane t trains the chunk's pairs whose center ≡ t (mod lanes) on its own copy of syn1; then the lanes'
    syn1 changes are summed into ``syn1`` in lane order and every copy is reset to it. Only rows some lane
    touched (``touched[lane, row]``) are merged, so the merge costs what the chunk used, not the vocabulary.
    Returns per-lane losses."""
    lanes = len(seeds)
    n = len(center)
    losses = np.zeros(lanes)
    for t in prange(lanes):
        losses[t] = _train_lane(center, context, 0, n, lanes, t, syn0, syn1_lanes[t], accept, alias, negative,
                                alpha, alpha_step, min_alpha, first_pair, seeds[t], grads[t], touched[t])
    vocab, dim = syn1.shape
    for r in prange(vocab):
        hit = False
        for t in range(lanes):
            if touched[t, r]:
                hit = True
                touched[t, r] = 0
        if not hit:
            continue
        for d in range(dim):
            base = syn1[r, d]
            total = base
            for t in range(lanes):
                total += syn1_lanes[t, r, d] - base
            syn1[r, d] = total
            for t in range(lanes):
                syn1_lanes[t, r, d] = total
    return losses


class CpuTrainer:
    """Trains chunks of pairs in place on (syn0, syn1) with the compiled kernels above."""

    @classmethod
    def from_params(cls, params: TrainParams, device: str, syn0: np.ndarray, syn1: np.ndarray,
                    noise: tuple[np.ndarray, np.ndarray], schedule: Schedule) -> "CpuTrainer":
        return cls(syn0, syn1, *noise, params.negative, schedule, worker_count(params.threads), params.deterministic)

    @staticmethod
    def chunk_pairs(params: TrainParams) -> int:
        """Pairs per chunk: the lanes' merge interval."""
        return params.sync_every

    def __init__(self, syn0: np.ndarray, syn1: np.ndarray, accept: np.ndarray, alias: np.ndarray, negative: int,
                 schedule: Schedule, lanes: int, deterministic: bool) -> None:
        import numba

        numba.set_num_threads(min(lanes, numba.config.NUMBA_NUM_THREADS))
        self.syn0, self.syn1 = syn0, syn1
        self.accept, self.alias, self.negative, self.schedule = accept, alias, negative, schedule
        self.lanes = lanes
        self.deterministic = deterministic
        self.grads = np.zeros((lanes, syn0.shape[1]), dtype=np.float32)
        self.merging = deterministic and lanes > 1  # one lane is sequential SGD: nothing to merge
        if self.merging:
            self.syn1_lanes = np.repeat(syn1[None], lanes, axis=0)
            self.touched = np.zeros((lanes, syn1.shape[0]), dtype=np.uint8)

    def describe(self) -> str:
        mode = "deterministic" if self.deterministic else "Hogwild"
        return f"{mode}, {self.lanes} lane{'s' if self.lanes > 1 else ''}"

    def train_chunk(self, center: np.ndarray, context: np.ndarray, first_pair: int, seeds: np.ndarray) -> float:
        """Train the pairs in place; return their summed loss."""
        s = self.schedule
        if self.merging:
            losses = train_chunk_deterministic(center, context, self.syn0, self.syn1, self.syn1_lanes, self.touched,
                                               self.accept, self.alias, self.negative, s.alpha, s.step,
                                               s.min_alpha, first_pair, seeds, self.grads)
        else:
            losses = train_chunk_hogwild(center, context, self.syn0, self.syn1, self.accept, self.alias,
                                         self.negative, s.alpha, s.step, s.min_alpha, first_pair, seeds, self.grads)
        return float(losses.sum())

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        return self.syn0, self.syn1


forget_stale_compilations(__name__)
