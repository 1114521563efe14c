"""Floating-point arithmetic that gives the same bits on every CPU, for the compiled training kernels.

A compiler may sum a dot product in whatever order the SIMD width of the machine suits (fastmath's
*reassociation*), fuse a multiply and an add into one FMA instruction where the CPU has one (*contraction*),
and call the C library's ``exp`` and ``log``, whose last bit differs between their SSE2, AVX2 and AVX-512
builds. Each of these makes the trained vectors depend on the machine. Here:

* :func:`dot` sums ``LANES`` fixed partial sums held in one explicit ``<16 x float>`` vector, then adds the
  lanes in a fixed tree: LLVM splits the vector into 4, 2 or 1 registers (SSE2, AVX2, AVX-512) without
  changing any lane's order of additions;
* the kernels compile with :data:`FASTMATH` only (no reassociation, no contraction, no approximate
  functions), so every other multiply and add is its own IEEE operation;
* :func:`exp32` (the kernels' σ and softplus, :func:`sigmoid_softplus32`), :func:`exp` and :func:`log` (the noise
  distribution's powers) are polynomials in plain multiplies and adds, with powers of two built from their
  bits, so no library function is called;
* :func:`accumulate` (``y += Σ c_k·x_k``) keeps ``LANES`` elements of y in registers across the k rows, each
  element still summed in k order.

Every step is an IEEE-754 operation in a fixed order, so x86-64 (any SIMD width) and arm64 give the same bits.
``tests/test_portable_math.py`` compiles and runs the kernels for several code targets and compares the bytes.
"""

from __future__ import annotations

import hashlib
import math
import sys
from pathlib import Path

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

# What the kernels may assume: no NaN, no infinity (a diverging run is caught from its returned loss). Nothing
# that lets the compiler change the order or the rounding of an operation.
FASTMATH = {"nnan", "ninf"}
LANES = 16
UNROLL = 4  # blocks of LANES that accumulate() keeps in registers at once

LN2_HI = 6.93147180369123816490e-01  # ln 2 split so that k * LN2_HI is exact for |k| < 2**11
LN2_LO = 1.90821492927058770002e-10
INV_LN2 = 1.44269504088896338700e+00
SQRT_HALF = 0.70710678118654752440
EXP_LIMIT = 700.0  # exp is evaluated on [-700, 700]: far outside any score a converging run reaches


def _array(a, ndim: int, dtype, contiguous: bool = True) -> bool:
    """Whether the numba type ``a`` is an array the intrinsics below can read (C order where they load vectors)."""
    return (isinstance(a, types.Array) and a.ndim == ndim and a.dtype == dtype
            and (a.layout == "C" or not contiguous))


def _rows_of(matrix, rows) -> bool:
    """A float32 matrix in C order and an int64 vector of its row numbers."""
    return _array(matrix, 2, types.float32) and _array(rows, 1, types.int64, contiguous=False)


def _arguments(context, builder, signature, args) -> list:
    """An intrinsic's arguments as its code uses them: each array as numba's array structure (data, shape, strides),
    each integer as an i64."""
    return [context.make_array(kind)(context, builder, value) if isinstance(kind, types.Array)
            else context.cast(builder, value, kind, types.int64) for kind, value in zip(signature.args, args)]


@intrinsic
def dot(typingctx, x, y):
    """x·y of two contiguous float32 vectors of the same length, summed in ``LANES`` fixed partial sums."""
    if not (_array(x, 1, types.float32) and _array(y, 1, types.float32)):
        return None

    def codegen(context, builder, signature, args):
        xa, ya = _arguments(context, builder, signature, args)
        n = builder.extract_value(xa.shape, 0)
        f32, i64 = ir.FloatType(), ir.IntType(64)
        vector = ir.VectorType(f32, LANES)
        partial = cgutils.alloca_once_value(builder, ir.Constant(vector, [0.0] * LANES))
        blocks = builder.udiv(n, ir.Constant(i64, LANES))
        xv, yv = builder.bitcast(xa.data, vector.as_pointer()), builder.bitcast(ya.data, vector.as_pointer())
        with cgutils.for_range(builder, blocks) as loop:
            a = builder.load(builder.gep(xv, [loop.index]), align=4)
            b = builder.load(builder.gep(yv, [loop.index]), align=4)
            builder.store(builder.fadd(builder.load(partial), builder.fmul(a, b)), partial)
        sums = builder.load(partial)
        lane = [builder.extract_element(sums, ir.Constant(ir.IntType(32), k)) for k in range(LANES)]
        while len(lane) > 1:  # (0+1) + (2+3), ...: a fixed tree
            lane = [builder.fadd(lane[k], lane[k + 1]) for k in range(0, len(lane), 2)]
        total = cgutils.alloca_once_value(builder, lane[0])
        start = builder.mul(blocks, ir.Constant(i64, LANES))
        with cgutils.for_range_slice(builder, start, n, ir.Constant(i64, 1)) as (index, _):
            a = builder.load(builder.gep(xa.data, [index]))
            b = builder.load(builder.gep(ya.data, [index]))
            builder.store(builder.fadd(builder.load(total), builder.fmul(a, b)), total)
        return builder.load(total)

    return types.float32(x, y), codegen


@intrinsic
def accumulate(typingctx, y, coefs, matrix, rows, n):
    """y += Σ_{k<n} coefs[k] · matrix[rows[k]]: each element of y gets its n products added in k order (one IEEE
    multiply and one add each, as n separate ``y += c·x`` loops would), with ``LANES`` elements kept in registers
    across the n rows instead of being stored and reloaded for each."""
    if not (_array(y, 1, types.float32) and _array(coefs, 1, types.float32, contiguous=False)
            and _rows_of(matrix, rows) and isinstance(n, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        _, coefs_type, _, rows_type, _ = signature.args
        ya, ca, ma, ra, n = _arguments(context, builder, signature, args)
        f32, i64 = ir.FloatType(), ir.IntType(64)
        vector = ir.VectorType(f32, LANES)
        dim = builder.extract_value(ya.shape, 0)
        row_floats = builder.extract_value(ma.shape, 1)

        def coef(k):
            return builder.load(cgutils.get_item_pointer(context, builder, coefs_type, ca, [k]))

        def row_start(k):
            row = builder.load(cgutils.get_item_pointer(context, builder, rows_type, ra, [k]))
            return builder.gep(ma.data, [builder.mul(row, row_floats)])

        blocks = builder.udiv(dim, ir.Constant(i64, LANES))
        yv = builder.bitcast(ya.data, vector.as_pointer())

        def run(first_block, count):
            """Blocks first_block..first_block+count-1 together: count independent chains of additions, so the
            latency of one add is hidden behind the others."""
            totals = [cgutils.alloca_once(builder, vector) for _ in range(count)]
            for b, total in enumerate(totals):
                index = builder.add(first_block, ir.Constant(i64, b))
                builder.store(builder.load(builder.gep(yv, [index]), align=4), total)
            with cgutils.for_range(builder, n) as k:
                c = builder.insert_element(ir.Constant(vector, ir.Undefined), coef(k.index), ir.Constant(i64, 0))
                c = builder.shuffle_vector(c, ir.Constant(vector, ir.Undefined),
                                           ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES))
                xv = builder.bitcast(row_start(k.index), vector.as_pointer())
                for b, total in enumerate(totals):
                    x = builder.load(builder.gep(xv, [builder.add(first_block, ir.Constant(i64, b))]), align=4)
                    builder.store(builder.fadd(builder.load(total), builder.fmul(c, x)), total)
            for b, total in enumerate(totals):
                index = builder.add(first_block, ir.Constant(i64, b))
                builder.store(builder.load(total), builder.gep(yv, [index]), align=4)

        groups = builder.udiv(blocks, ir.Constant(i64, UNROLL))
        with cgutils.for_range(builder, groups) as group:
            run(builder.mul(group.index, ir.Constant(i64, UNROLL)), UNROLL)
        # The last blocks (fewer than UNROLL) together too: 100 floats are 7 blocks, and 3 chains one after the
        # other cost as much as the 4 before them.
        first = builder.mul(groups, ir.Constant(i64, UNROLL))
        after = builder.append_basic_block("accumulate.after")
        switch = builder.switch(builder.sub(blocks, first), after)
        for count in range(1, UNROLL):
            case = builder.append_basic_block(f"accumulate.{count}")
            switch.add_case(ir.Constant(i64, count), case)
            builder.position_at_end(case)
            run(first, count)
            builder.branch(after)
        builder.position_at_end(after)
        scalar = cgutils.alloca_once(builder, f32)
        start = builder.mul(blocks, ir.Constant(i64, LANES))
        with cgutils.for_range_slice(builder, start, dim, ir.Constant(i64, 1)) as (d, _):
            builder.store(builder.load(builder.gep(ya.data, [d])), scalar)
            with cgutils.for_range(builder, n) as k:
                x = builder.load(builder.gep(row_start(k.index), [d]))
                builder.store(builder.fadd(builder.load(scalar), builder.fmul(coef(k.index), x)), scalar)
            builder.store(builder.load(scalar), builder.gep(ya.data, [d]))
        return context.get_dummy_value()

    return types.void(y, coefs, matrix, rows, n), codegen


ROWS_AT_ONCE = 8  # dot products whose lane sums dot_rows adds up together


def _pairwise_sums(builder, a, b):
    """[a0+a1, a2+a3, ..., b0+b1, b2+b3, ...]: the same pairs as dot's tree, of two vectors in one vector."""
    width = a.type.count
    i32 = ir.IntType(32)
    evens = builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(i32, width), list(range(0, 2 * width, 2))))
    odds = builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(i32, width), list(range(1, 2 * width, 2))))
    return builder.fadd(evens, odds)


@intrinsic
def dot_rows(typingctx, x, matrix, rows, n, out):
    """out[k] = x·matrix[rows[k]] for k < n, each the bits of :func:`dot`: the same ``LANES`` partial sums, then
    the same tree of additions, done for ``ROWS_AT_ONCE`` products at a time with whole-vector shuffles and adds
    (a product's 15 lane additions one by one cost as much as its multiplies)."""
    if not (_array(x, 1, types.float32) and _rows_of(matrix, rows) and isinstance(n, types.Integer)
            and _array(out, 1, types.float32, contiguous=False)):
        return None

    def codegen(context, builder, signature, args):
        _, _, rows_type, _, out_type = signature.args
        xa, ma, ra, n, oa = _arguments(context, builder, signature, args)
        f32, i64 = ir.FloatType(), ir.IntType(64)
        vector = ir.VectorType(f32, LANES)
        dim = builder.extract_value(xa.shape, 0)
        row_floats = builder.extract_value(ma.shape, 1)
        blocks = builder.udiv(dim, ir.Constant(i64, LANES))
        xv = builder.bitcast(xa.data, vector.as_pointer())
        # Each product's LANES partial sums (as dot sums them), the group's products side by side in one pass over
        # the blocks: independent chains of additions, so that one's latency hides behind the others'.
        partials = cgutils.alloca_once(builder, vector, size=ROWS_AT_ONCE)
        accumulators = [cgutils.alloca_once(builder, vector) for _ in range(ROWS_AT_ONCE)]
        sums = cgutils.alloca_once(builder, f32, size=ROWS_AT_ONCE)
        groups = builder.udiv(builder.add(n, ir.Constant(i64, ROWS_AT_ONCE - 1)), ir.Constant(i64, ROWS_AT_ONCE))
        with cgutils.for_range(builder, groups) as group:
            first = builder.mul(group.index, ir.Constant(i64, ROWS_AT_ONCE))
            count = builder.sub(n, first)
            count = builder.select(builder.icmp_signed("<", count, ir.Constant(i64, ROWS_AT_ONCE)), count,
                                   ir.Constant(i64, ROWS_AT_ONCE))
            for k in range(ROWS_AT_ONCE):  # products past n add up zeros
                builder.store(ir.Constant(vector, [0.0] * LANES), builder.gep(partials, [ir.Constant(i64, k)]))
            after = builder.append_basic_block("dot_rows.after")
            switch = builder.switch(count, after)
            for c in range(1, ROWS_AT_ONCE + 1):
                case = builder.append_basic_block(f"dot_rows.{c}")
                switch.add_case(ir.Constant(i64, c), case)
                builder.position_at_end(case)
                starts = []
                for k in range(c):
                    row = builder.load(cgutils.get_item_pointer(context, builder, rows_type, ra,
                                                                [builder.add(first, ir.Constant(i64, k))]))
                    starts.append(builder.bitcast(builder.gep(ma.data, [builder.mul(row, row_floats)]),
                                                  vector.as_pointer()))
                    builder.store(ir.Constant(vector, [0.0] * LANES), accumulators[k])
                with cgutils.for_range(builder, blocks) as block:
                    a = builder.load(builder.gep(xv, [block.index]), align=4)
                    for k in range(c):
                        b = builder.load(builder.gep(starts[k], [block.index]), align=4)
                        builder.store(builder.fadd(builder.load(accumulators[k]), builder.fmul(a, b)), accumulators[k])
                for k in range(c):
                    builder.store(builder.load(accumulators[k]), builder.gep(partials, [ir.Constant(i64, k)]))
                builder.branch(after)
            builder.position_at_end(after)
            level = [builder.load(builder.gep(partials, [ir.Constant(i64, k)])) for k in range(ROWS_AT_ONCE)]
            while len(level) > 1:  # 8 vectors of 16 lanes -> 4 of (2 products x 8) -> 2 of (4 x 4) -> 1 of (8 x 2)
                level = [_pairwise_sums(builder, level[k], level[k + 1]) for k in range(0, len(level), 2)]
            last = _pairwise_sums(builder, level[0], level[0])  # lanes 0..7: each product's last addition
            for k in range(ROWS_AT_ONCE):
                builder.store(builder.extract_element(last, ir.Constant(ir.IntType(32), k)),
                              builder.gep(sums, [ir.Constant(i64, k)]))
            start = builder.mul(blocks, ir.Constant(i64, LANES))
            with cgutils.for_range(builder, count) as k:
                total = builder.gep(sums, [k.index])
                row = builder.load(cgutils.get_item_pointer(context, builder, rows_type, ra,
                                                            [builder.add(first, k.index)]))
                y = builder.gep(ma.data, [builder.mul(row, row_floats)])
                with cgutils.for_range_slice(builder, start, dim, ir.Constant(i64, 1)) as (d, _):  # a ragged end
                    a = builder.load(builder.gep(xa.data, [d]))
                    b = builder.load(builder.gep(y, [d]))
                    builder.store(builder.fadd(builder.load(total), builder.fmul(a, b)), total)
                builder.store(builder.load(total), cgutils.get_item_pointer(context, builder, out_type, oa,
                                                                            [builder.add(first, k.index)]))
        return context.get_dummy_value()

    return types.void(x, matrix, rows, n, out), codegen


@intrinsic
def _float32_from_bits(typingctx, bits):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


@intrinsic
def _bits(typingctx, x):
    """The IEEE-754 bits of a float64, as an int64."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def _from_bits(typingctx, bits):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@njit(fastmath=FASTMATH, inline="always")
def exp(x: float) -> float:
    """e**x in float64 (relative error below 4e-16), for x clipped to [-700, 700]."""
    x = min(max(x, -EXP_LIMIT), EXP_LIMIT)
    k = math.floor(x * INV_LN2 + 0.5)
    r = (x - k * LN2_HI) - k * LN2_LO  # |r| <= ln(2)/2
    p = 1.0 / 479001600.0  # Taylor series to r**12 / 12!
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    return p * _from_bits((np.int64(k) + 1023) << 52)


ROUND32 = np.float32(12582912.0)  # 1.5 * 2**23: x + ROUND32 - ROUND32 rounds x to an integer (|x| < 2**22)
INV_LN2_32 = np.float32(1.44269504)
LN2_HI_32 = np.float32(0.693145752)  # ln 2 split so that k * LN2_HI_32 is exact for |k| < 2**9
LN2_LO_32 = np.float32(1.42860677e-06)
EXP_LIMIT_32 = np.float32(80.0)


@njit(fastmath=FASTMATH, inline="always")
def exp32(x):
    """e**x in float32 (relative error about 2e-7) for x clipped to [-80, 80]: no branch, no call."""
    x = min(max(x, -EXP_LIMIT_32), EXP_LIMIT_32)
    k = (x * INV_LN2_32 + ROUND32) - ROUND32
    r = (x - k * LN2_HI_32) - k * LN2_LO_32  # |r| <= ln(2)/2
    p = np.float32(1.0 / 5040.0)
    p = p * r + np.float32(1.0 / 720.0)
    p = p * r + np.float32(1.0 / 120.0)
    p = p * r + np.float32(1.0 / 24.0)
    p = p * r + np.float32(1.0 / 6.0)
    p = p * r + np.float32(0.5)
    p = p * r + np.float32(1.0)
    p = p * r + np.float32(1.0)
    return p * _float32_from_bits((np.int32(k) + np.int32(127)) << np.int32(23))


@njit(fastmath=FASTMATH, inline="always")
def sigmoid_softplus32(f):
    """(σ(f), softplus(f), softplus(-f)) in float32 from one exp and one division."""
    t = exp32(-abs(f))  # in (0, 1]
    s = t / (np.float32(2.0) + t)  # log1p(t) = 2 atanh(s), 0 < s <= 1/3
    s2 = s * s
    p = np.float32(1.0 / 15.0)
    p = p * s2 + np.float32(1.0 / 13.0)
    p = p * s2 + np.float32(1.0 / 11.0)
    p = p * s2 + np.float32(1.0 / 9.0)
    p = p * s2 + np.float32(1.0 / 7.0)
    p = p * s2 + np.float32(1.0 / 5.0)
    p = p * s2 + np.float32(1.0 / 3.0)
    p = p * s2 + np.float32(1.0)
    log1p_t = np.float32(2.0) * s * p
    q = np.float32(1.0) / (np.float32(1.0) + t)  # σ(|f|)
    sigma = q if f >= 0 else t * q
    plus = max(f, np.float32(0.0)) + log1p_t
    minus = max(-f, np.float32(0.0)) + log1p_t
    return sigma, plus, minus


@njit(fastmath=FASTMATH, inline="always")
def _atanh_series(s: float) -> float:
    """2 atanh(s) = log((1 + s) / (1 - s)) for |s| <= 1/3, to about 1e-17 relative."""
    s2 = s * s
    p = 1.0 / 35.0
    p = p * s2 + 1.0 / 33.0
    p = p * s2 + 1.0 / 31.0
    p = p * s2 + 1.0 / 29.0
    p = p * s2 + 1.0 / 27.0
    p = p * s2 + 1.0 / 25.0
    p = p * s2 + 1.0 / 23.0
    p = p * s2 + 1.0 / 21.0
    p = p * s2 + 1.0 / 19.0
    p = p * s2 + 1.0 / 17.0
    p = p * s2 + 1.0 / 15.0
    p = p * s2 + 1.0 / 13.0
    p = p * s2 + 1.0 / 11.0
    p = p * s2 + 1.0 / 9.0
    p = p * s2 + 1.0 / 7.0
    p = p * s2 + 1.0 / 5.0
    p = p * s2 + 1.0 / 3.0
    p = p * s2 + 1.0
    return 2.0 * s * p


@njit(fastmath=FASTMATH, inline="always")
def log(x: float) -> float:
    """Natural log of a positive, normal float64."""
    bits = _bits(x)
    k = (bits >> 52) - 1023
    m = _from_bits((bits & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000)  # x = m * 2**k, 1 <= m < 2
    if m > 2.0 * SQRT_HALF:
        m *= 0.5
        k += 1
    kf = float(k)
    return (_atanh_series((m - 1.0) / (m + 1.0)) + kf * LN2_LO) + kf * LN2_HI


@njit(fastmath=FASTMATH, cache=True)
def _power(base, exponent, out):  # pragma: no cover - compiled
    for i in range(len(base)):
        b = base[i]
        if b > 0.0:
            out[i] = exp(exponent * log(b))
        elif exponent > 0.0:
            out[i] = 0.0
        elif exponent == 0.0:
            out[i] = 1.0
        else:
            out[i] = math.inf


def power(base: np.ndarray, exponent: float) -> np.ndarray:
    """base ** exponent elementwise (float64), the same bits on every CPU; numpy's own power picks a SIMD
    implementation by CPU (AVX-512 machines use another one), whose last bit can differ."""
    base = np.ascontiguousarray(base, dtype=np.float64)
    out = np.empty_like(base)
    _power(base, float(exponent), out)
    return out


def exact_sum(values: np.ndarray) -> float:
    """The correctly rounded sum (math.fsum): independent of the order numpy's SIMD code would add in."""
    return math.fsum(np.asarray(values, dtype=np.float64).tolist())


def forget_stale_compilations(module_name: str) -> None:
    """Clear numba's on-disk cache of a module's compiled functions when this module has changed since they were
    compiled. numba notices only edits of the file a function is defined in, not of the functions it inlines
    from here, and a stale cache would compute with the old arithmetic: other bytes, same source. Call it at
    the end of a module whose kernels use this one."""
    module = sys.modules[module_name]
    assert module.__file__ is not None  # a module of this package, loaded from its file
    sources = hashlib.sha256(Path(module.__file__).read_bytes() + Path(__file__).read_bytes()).hexdigest()
    for kernel in vars(module).values():
        cache = getattr(kernel, "_cache", None)  # numba's per-function cache (a private attribute)
        path = getattr(cache, "_cache_path", None)
        if path is None or cache is None or not hasattr(cache, "flush"):
            continue
        stamp = Path(path) / f"{module_name.rsplit('.', 1)[-1]}.{kernel.__name__}.sources"
        try:
            if stamp.read_text() == sources:
                continue
        except OSError:
            pass
        cache.flush()
        try:
            stamp.write_text(sources)
        except OSError:
            pass  # a read-only cache directory: numba would not write its cache there either
