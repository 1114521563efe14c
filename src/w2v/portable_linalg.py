"""The linear algebra of evaluation and maps, with the same bits on every CPU, BLAS kernel and thread count.

numpy hands a matrix product to its BLAS (OpenBLAS in the wheels), which picks a kernel by CPU
(``OPENBLAS_CORETYPE``: Prescott, Haswell, SkylakeX, Zen, ...) and splits the work by thread: each kernel sums a
dot product in its own order, so a cosine's last bit, a PCA's coordinates and with them a map's picture moved
from one machine to the next. Here every number the evaluate stage writes comes from operations in a fixed
order, compiled as the training kernels are (:mod:`w2v.portable_math`: no reassociation, no fused multiply-add,
no C library call), and parallel only over independent outputs:

* :func:`unit_rows`: each row divided by its norm, summed in float64 in index order;
* :func:`cosines` and :func:`row_dots`: every query row against every candidate row by
  :func:`w2v.portable_math.dot` (16 fixed partial sums, a fixed tree);
* :func:`principal_components`: the covariance in float64, its eigenvectors by cyclic Jacobi rotations (plain
  multiplies, adds, divisions and square roots, all correctly rounded in IEEE-754), the coordinates summed in
  index order;
* :func:`pearson`: correlations from :func:`math.fsum`, which is exact.

The query class (:class:`w2v.Embeddings`) needs numpy alone, so :func:`unit_rows` and :func:`cosines` are
written in numpy too, as the same IEEE operations in the same order (numpy never fuses a multiply into an add):
small products run there, without loading numba, and large ones (the analogy benchmark) in the compiled loop.
``tests/test_portable_math.py`` checks that both give the same bits.
"""

from __future__ import annotations

import math

import numpy as np

DOT_LANES = 16  # portable_math.LANES: the partial sums of a dot product, which the numpy version repeats
COMPILED_FROM = 20_000_000  # multiply-adds from which a product is worth loading numba (about 1 s the first time)
NUMPY_BLOCK = 1 << 22  # floats of partial sums the numpy version holds at once (16 MB)
NORM_BLOCK = 1 << 18  # floats of a block of rows whose norms are summed column by column (2 MB in float64: in cache
# across the column passes; 16 times that ran 2.6x slower at 1.58M x 100)
JACOBI_SWEEPS = 60  # a 300 x 300 covariance settles in about 10 sweeps; the cap only bounds a pathological input
JACOBI_TOLERANCE = 1e-24  # stop when the off-diagonal mass is this small a fraction of the whole


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """float32 rows of length 1 (a zero row stays zero): each norm summed in float64 in column order."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    out = np.empty_like(vectors)
    step = max(1, NORM_BLOCK // max(vectors.shape[1], 1))
    for lo in range(0, len(vectors), step):
        block = vectors[lo:lo + step].astype(np.float64)
        total = np.zeros(len(block))
        for k in range(block.shape[1]):  # one column at a time: the order of the sum is fixed
            total += block[:, k] * block[:, k]
        norm = np.sqrt(total)
        norm[total == 0.0] = 1.0
        out[lo:lo + step] = block / norm[:, None]
    return out


def _lane_dots(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """:func:`w2v.portable_math.dot` in numpy, over the last axis of two broadcastable float32 arrays:
    ``DOT_LANES`` partial sums over whole blocks, added in a fixed tree ((0+1) + (2+3), ...), then the tail
    element by element."""
    d = x.shape[-1]
    blocks = d // DOT_LANES
    partial = np.zeros((*np.broadcast_shapes(x.shape[:-1], y.shape[:-1]), DOT_LANES), dtype=np.float32)
    for b in range(blocks):
        lanes = slice(b * DOT_LANES, (b + 1) * DOT_LANES)
        partial += x[..., lanes] * y[..., lanes]
    while partial.shape[-1] > 1:
        partial = partial[..., 0::2] + partial[..., 1::2]
    total = partial[..., 0]
    for k in range(blocks * DOT_LANES, d):
        total += x[..., k] * y[..., k]
    return total


def _cosines_numpy(queries: np.ndarray, candidates: np.ndarray, out: np.ndarray) -> None:
    """:func:`cosines` in numpy, a block of candidates at a time (``NUMPY_BLOCK`` partial sums held at once)."""
    step = max(1, NUMPY_BLOCK // (len(queries) * DOT_LANES))
    for lo in range(0, len(candidates), step):
        out[:, lo:lo + step] = _lane_dots(queries[:, None, :], candidates[None, lo:lo + step, :])


def cosines(queries: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """(n, m) float32 dot products of n query rows with m candidate rows (``queries @ candidates.T``)."""
    queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
    candidates = np.ascontiguousarray(candidates, dtype=np.float32)
    out = np.empty((len(queries), len(candidates)), dtype=np.float32)
    if out.size and out.size * queries.shape[1] >= COMPILED_FROM and _kernels() is not None:
        _kernels().cosines(queries, candidates, out)
    elif out.size:
        _cosines_numpy(queries, candidates, out)
    return out


def row_dots(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """float32 dot product of each row of ``x`` with the same row of ``y`` (as :func:`cosines` computes it)."""
    return _lane_dots(np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.float32))


def principal_components(vectors: np.ndarray, dims: int) -> np.ndarray:
    """(n, dims) float64 coordinates on the first ``dims`` principal axes, each axis's sign fixed so that its
    largest coordinate (in absolute value) is positive. Needs numba (the maps need the pipeline's packages)."""
    kernels = _kernels()
    if kernels is None:
        raise ImportError("principal_components needs numba (pip install 'w2v-dvc[train]')")
    centred, cov = kernels.covariance(np.ascontiguousarray(vectors, dtype=np.float32))
    values, axes = kernels.jacobi_eigen(cov, JACOBI_SWEEPS, JACOBI_TOLERANCE)
    order = np.argsort(-values, kind="stable")[:dims]
    coords = kernels.project(centred, np.ascontiguousarray(axes[:, order]))
    if len(coords):
        coords *= np.where(coords[np.abs(coords).argmax(axis=0), np.arange(coords.shape[1])] < 0, -1.0, 1.0)
    return coords


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's correlation of two float64 sequences, every sum exact (``math.fsum``) and so the same bits on
    every machine; nan when either is constant."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    dx, dy = x - math.fsum(x) / len(x), y - math.fsum(y) / len(y)
    sxx, syy = math.fsum(dx * dx), math.fsum(dy * dy)
    if sxx == 0.0 or syy == 0.0:
        return math.nan
    return math.fsum(dx * dy) / math.sqrt(sxx * syy)


def _kernels():
    """The compiled kernels (:mod:`w2v.portable_linalg_kernels`), or None where numba is not installed."""
    try:
        from w2v import portable_linalg_kernels
    except ImportError:
        return None
    return portable_linalg_kernels
