"""The compiled loops of :mod:`w2v.portable_linalg` (numba, :data:`w2v.portable_math.FASTMATH`: every multiply and
add its own IEEE operation, in the order written; parallel only over independent outputs)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from w2v import portable_math as pm


@njit(fastmath=pm.FASTMATH, cache=True, parallel=True)
def cosines(queries, candidates, out):  # pragma: no cover - compiled
    # Candidates outside, queries inside: each candidate row is read once while the queries stay in cache.
    for j in prange(candidates.shape[0]):
        row = candidates[j]
        for i in range(queries.shape[0]):
            out[i, j] = pm.dot(queries[i], row)


@njit(fastmath=pm.FASTMATH, cache=True)
def covariance(vectors):  # pragma: no cover - compiled
    n, d = vectors.shape
    mean = np.zeros(d)
    for i in range(n):
        for k in range(d):
            mean[k] += np.float64(vectors[i, k])
    for k in range(d):
        mean[k] /= n
    centred = np.empty((n, d))
    for i in range(n):
        for k in range(d):
            centred[i, k] = np.float64(vectors[i, k]) - mean[k]
    cov = np.zeros((d, d))
    for i in range(n):
        for p in range(d):
            x = centred[i, p]
            for q in range(p, d):
                cov[p, q] += x * centred[i, q]
    for p in range(d):
        for q in range(p + 1, d):
            cov[q, p] = cov[p, q]
    return centred, cov


@njit(fastmath=pm.FASTMATH, cache=True)
def jacobi_eigen(a, sweeps, tolerance):  # pragma: no cover - compiled
    """Eigenvalues (the diagonal left) and eigenvectors (columns) of the symmetric matrix ``a``, which is
    overwritten: cyclic sweeps of rotations that each zero one off-diagonal entry."""
    d = a.shape[0]
    v = np.zeros((d, d))
    whole = 0.0
    for p in range(d):
        v[p, p] = 1.0
        for q in range(d):
            whole += a[p, q] * a[p, q]
    for _ in range(sweeps):
        off = 0.0
        for p in range(d):
            for q in range(p + 1, d):
                off += a[p, q] * a[p, q]
        if off <= tolerance * whole:
            break
        for p in range(d - 1):
            for q in range(p + 1, d):
                apq = a[p, q]
                if apq == 0.0:
                    continue
                theta = (a[q, q] - a[p, p]) / (2.0 * apq)
                if abs(theta) > 1e150:  # θ² would overflow: t ≈ 1/(2θ)
                    t = 0.5 / abs(theta)
                else:
                    t = 1.0 / (abs(theta) + np.sqrt(theta * theta + 1.0))  # the smaller root: rotations under 45°
                if theta < 0.0:
                    t = -t
                c = 1.0 / np.sqrt(t * t + 1.0)
                s = t * c
                for k in range(d):  # A ← A·J
                    akp, akq = a[k, p], a[k, q]
                    a[k, p] = c * akp - s * akq
                    a[k, q] = s * akp + c * akq
                for k in range(d):  # A ← Jᵀ·A
                    apk, aqk = a[p, k], a[q, k]
                    a[p, k] = c * apk - s * aqk
                    a[q, k] = s * apk + c * aqk
                for k in range(d):  # V ← V·J
                    vkp, vkq = v[k, p], v[k, q]
                    v[k, p] = c * vkp - s * vkq
                    v[k, q] = s * vkp + c * vkq
    values = np.empty(d)
    for p in range(d):
        values[p] = a[p, p]
    return values, v


@njit(fastmath=pm.FASTMATH, cache=True)
def project(centred, axes):  # pragma: no cover - compiled
    n, d = centred.shape
    out = np.zeros((n, axes.shape[1]))
    for i in range(n):
        for c in range(axes.shape[1]):
            total = 0.0
            for k in range(d):
                total += centred[i, k] * axes[k, c]
            out[i, c] = total
    return out
