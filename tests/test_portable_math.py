"""Same bytes on every CPU: the kernels' arithmetic is exact to its definition, and training gives identical
vectors whatever SIMD width the code is compiled for (SSE2, AVX, AVX2 with FMA, AVX-512)."""

from __future__ import annotations

import math
import os
import platform
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from numba import njit

from tests.conftest import ROOT
from w2v import portable_math as pm

SSE4 = "+sse,+sse2,+sse3,+ssse3,+sse4.1,+sse4.2,+popcnt,+cx16,+sahf"
AVX = SSE4 + ",+avx,+xsave"
AVX2 = AVX + ",+avx2,+fma,+bmi,+bmi2,+f16c,+lzcnt,+movbe"
AVX512 = AVX2 + ",+avx512f,+avx512bw,+avx512cd,+avx512dq,+avx512vl"
# x86-64 code targets, from the SSE2 baseline to AVX-512: (numba CPU name, feature string, host flags it needs).
TARGETS = {
    "generic": ("generic", "", set()),
    "sandybridge": ("sandybridge", AVX, {"avx"}),
    "haswell": ("haswell", AVX2, {"avx2", "fma"}),
    "skylake-avx512": ("skylake-avx512", AVX512, {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}),
}

# A small but complete training: noise distribution (power, sum), alias table, Huffman tree, initial vectors, 3
# chunks of deterministic SGD in 2 lanes and in 1 lane, negative sampling and hierarchical softmax. Prints the md5
# of every model.
TRAIN = textwrap.dedent("""
    import hashlib, sys
    import numpy as np
    from tests.corpora import random_shard, train_shard
    from w2v.cpu_trainer import CpuTrainer
    from w2v.huffman import huffman_tree
    from w2v.matrices import init_matrices
    from w2v.sgns import Schedule, alias_table, noise_distribution

    rng = np.random.default_rng(5)
    vocab, dim = 500, 37  # 37: padded to 48, three blocks of 16
    counts = np.sort(rng.zipf(1.3, vocab))[::-1] + 5
    shard = random_shard(rng, vocab, 8_000)
    digests = []
    tree = huffman_tree(counts)
    # (lanes, shared noise, hierarchical softmax, noise words, CBOW)
    for lanes, shared, hs, negative, cbow in ((2, True, False, 5, 0), (1, True, False, 5, 0), (2, False, False, 5, 0),
                                              (2, True, True, 0, 0), (2, True, True, 3, 2)):
        outputs = (("syn1",) if hs else ()) + (("syn1neg",) if negative else ())
        matrices = init_matrices(vocab, dim, np.random.default_rng(1), outputs)
        noise = alias_table(noise_distribution(counts, 0.75))
        trainer = CpuTrainer(matrices, noise, negative, Schedule(0.025, 0.0001, 40_000), lanes, True, shared,
                             cbow=cbow, tree=tree if hs else None)
        loss = sum(train_shard(trainer, shard, chunk_pairs=10_000))
        model = np.concatenate(list(trainer.matrices().values()))
        digests.append(hashlib.md5(model.tobytes() + repr(loss).encode()).hexdigest())
    print(" ".join(digests))
""")

# Compile (do not run) the training kernel for a target and print its machine code.
COMPILE = textwrap.dedent("""
    import numba, numpy as np
    from w2v.cpu_trainer import CpuTrainer, train_chunk_lanes, train_windows
    from w2v.sgns import Schedule
    from w2v.shards import WindowShard
    shard = WindowShard(np.array([1, 0, 2], np.uint16), np.array([1], np.uint32), np.ones(1, np.uint8),
                        np.ones(1, np.uint8))
    for shared in (True, False):  # compiled, never run: this CPU may not have the target's instructions
        trainer = CpuTrainer({"syn0": np.zeros((3, 37), np.float32), "syn1neg": np.zeros((3, 37), np.float32)},
                             (np.ones(3, np.float32), np.arange(3, dtype=np.int32)), 2, Schedule(0.025, 0.0001, 2), 2,
                             True, shared)
        arguments = trainer.kernel_arguments(shard, 0, 1, 0, np.ones(2, np.uint64))
        train_chunk_lanes.compile(tuple(numba.typeof(argument) for argument in arguments))
    print(chr(10).join(train_windows.inspect_asm(signature) for signature in train_windows.signatures))
""")


def host_flags() -> set[str]:
    try:
        text = open("/proc/cpuinfo", encoding="utf-8").read()
    except OSError:
        return set()
    match = re.search(r"^flags\s*:(.*)$", text, re.M)
    return set(match[1].split()) if match else set()


def in_target(script: str, target: str, cache_dir: Path | None = None) -> str:
    """Run ``script`` with numba compiling for ``target`` (in ``cache_dir``, if given: code loaded from a cache
    cannot be inspected)."""
    name, features, _ = TARGETS[target]
    env = {**os.environ, "NUMBA_CPU_NAME": name, "NUMBA_CPU_FEATURES": features}
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = str(cache_dir)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


x86 = pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 code targets")


@x86
def test_training_gives_the_same_bytes_for_every_code_target_this_cpu_runs():
    runnable = [t for t, (_, _, needs) in TARGETS.items() if needs <= host_flags()]
    assert len(runnable) >= 3, f"only {runnable} run here"
    digests = {target: in_target(TRAIN, target).split() for target in runnable}
    assert len({tuple(d) for d in digests.values()}) == 1, digests


@x86
@pytest.mark.parametrize("target", ["haswell", "skylake-avx512"])
def test_code_for_wide_simd_has_no_fused_multiply_add_and_no_libm_call(target, tmp_path):
    """For a target this CPU may not run (AVX-512 here): the compiled kernel uses the target's registers, yet
    never fuses a multiply into an add and never calls the C library's exp/log, the two things that would
    make its bytes differ from narrower code."""
    asm = in_target(COMPILE, target, cache_dir=tmp_path)
    assert ("%zmm" in asm) if target == "skylake-avx512" else ("%ymm" in asm)
    assert not re.search(r"\bv?f(n?)madd|\bv?f(n?)msub", asm)
    assert not re.search(r"\$(exp|expf|log|logf|log1p|pow|powf)\b", asm)


@njit(fastmath=pm.FASTMATH)
def _dot(x, y):
    return pm.dot(x, y)


@pytest.mark.parametrize("n", [0, 1, 15, 16, 37, 100, 300])
def test_dot_is_sixteen_fixed_partial_sums_then_a_fixed_tree(n):
    rng = np.random.default_rng(n)
    x, y = rng.normal(size=(2, n)).astype(np.float32)
    # The same order of float32 operations, spelled out.
    blocks = n // pm.LANES
    lanes = np.zeros(pm.LANES, np.float32)
    for b in range(blocks):
        lanes = lanes + x[b * pm.LANES:(b + 1) * pm.LANES] * y[b * pm.LANES:(b + 1) * pm.LANES]
    while len(lanes) > 1:
        lanes = lanes[0::2] + lanes[1::2]
    total = lanes[0]
    for d in range(blocks * pm.LANES, n):
        total = np.float32(total + x[d] * y[d])
    assert np.float32(_dot(x, y)).tobytes() == np.float32(total).tobytes()


@njit(fastmath=pm.FASTMATH)
def _dot_rows(x, matrix, rows, n, out):
    pm.dot_rows(x, matrix, rows, n, out)


@pytest.mark.parametrize("dim", [1, 15, 16, 37, 112, 300])
def test_dot_rows_gives_dots_bits(dim):
    """The batched products (8 at a time, their trees added as whole vectors) are dot's, bit for bit, whatever
    their count: a partial group, exactly one, several; rows repeated; values of very different sizes."""
    rng = np.random.default_rng(dim)
    matrix = (rng.normal(size=(40, dim)) * rng.choice([1e-4, 1.0, 1e4], size=(40, 1))).astype(np.float32)
    x = rng.normal(size=dim).astype(np.float32)
    rows = rng.integers(0, 40, size=30)
    rows[3] = rows[1]
    for n in (0, 1, 6, 8, 9, 16, 23, 30):
        out = np.full(30, 7.0, np.float32)
        _dot_rows(x, matrix, rows, n, out)
        expected = [_dot(x, matrix[r]) for r in rows[:n]]
        assert out[:n].tobytes() == np.array(expected, np.float32).tobytes()
        assert (out[n:] == 7.0).all()


@njit(fastmath=pm.FASTMATH)
def _accumulate(y, coefs, matrix, rows, n):
    pm.accumulate(y, coefs, matrix, rows, n)


@pytest.mark.parametrize("dim", [1, 16, 32, 48, 64, 100, 112, 300])
def test_accumulate_is_one_multiply_and_add_per_row_in_row_order(dim):
    """y += Σ c_k·x_k with y's blocks in registers (4 at a time, then the last 1-3 together) gives the bits of n
    separate passes y += c_k·x_k."""
    rng = np.random.default_rng(dim)
    matrix = (rng.normal(size=(20, dim)) * rng.choice([1e-4, 1.0, 1e4], size=(20, 1))).astype(np.float32)
    coefs = rng.normal(size=20).astype(np.float32)
    rows = rng.integers(0, 20, size=20)
    for n in (0, 1, 6, 20):
        y = rng.normal(size=dim).astype(np.float32)
        expected = y.copy()
        for k in range(n):
            expected = (expected + (coefs[k] * matrix[rows[k]]).astype(np.float32)).astype(np.float32)
        _accumulate(y, coefs, matrix, rows, n)
        assert y.tobytes() == expected.tobytes()


@njit(fastmath=pm.FASTMATH)
def _elementwise(xs, exp_out, log_out, exp32_out, sigmoid_out, softplus_out, softplus_minus_out):
    for i in range(len(xs)):
        exp_out[i] = pm.exp(xs[i])
        log_out[i] = pm.log(abs(xs[i]) + 1e-300)
        exp32_out[i] = pm.exp32(np.float32(xs[i]))
        sigmoid_out[i], softplus_out[i], softplus_minus_out[i] = pm.sigmoid_softplus32(np.float32(xs[i]))


def test_exp_log_sigmoid_softplus_are_accurate():
    xs = np.concatenate([np.random.default_rng(0).uniform(-50, 50, 100_000), [0.0, -0.0, 1e-300, 70.0]])
    out = [np.empty_like(xs) for _ in range(2)] + [np.empty(len(xs), np.float32) for _ in range(4)]
    _elementwise(xs, *out)
    np.testing.assert_allclose(out[0], np.exp(xs), rtol=5e-16)  # float64: the noise distribution's powers
    np.testing.assert_allclose(out[1], np.log(np.abs(xs) + 1e-300), rtol=5e-16, atol=5e-16)
    x32 = xs.astype(np.float32).astype(np.float64)  # float32: the kernels' scores
    np.testing.assert_allclose(out[2], np.exp(x32), rtol=3e-7)
    np.testing.assert_allclose(out[3], 1 / (1 + np.exp(-x32)), rtol=3e-7)
    np.testing.assert_allclose(out[4], np.logaddexp(0, x32), rtol=5e-7, atol=1e-30)
    np.testing.assert_allclose(out[5], np.logaddexp(0, -x32), rtol=5e-7, atol=1e-30)


def test_power_and_sum_match_numpy_to_rounding():
    counts = np.arange(0, 200_000, dtype=np.float64)
    for exponent in (0.75, 1.0, -0.5, 0.0):
        got = pm.power(counts[1:], exponent)
        np.testing.assert_allclose(got, np.power(counts[1:], exponent), rtol=4e-15)
    assert pm.power(np.array([0.0]), 0.75)[0] == 0.0 and math.isinf(pm.power(np.array([0.0]), -1.0)[0])
    rng = np.random.default_rng(1)
    values = rng.uniform(0, 1, 100_000) * 10.0 ** rng.integers(-12, 12, 100_000)
    assert pm.exact_sum(values) == pm.exact_sum(rng.permutation(values))  # no order to depend on


# The evaluate stage's arithmetic (w2v.portable_linalg): unit rows, the compiled cosines and the numpy ones, PCA.
LINALG = textwrap.dedent("""
    import hashlib
    import numpy as np
    from w2v import portable_linalg, portable_linalg_kernels

    rng = np.random.default_rng(3)
    vectors = portable_linalg.unit_rows(rng.normal(size=(400, 37)).astype(np.float32))
    compiled = np.empty((50, 400), np.float32)
    portable_linalg_kernels.cosines(vectors[:50], vectors, compiled)
    parts = [vectors, compiled, portable_linalg.cosines(vectors[:50], vectors),
             portable_linalg.principal_components(vectors, 3)]
    print(hashlib.md5(b"".join(part.tobytes() for part in parts)).hexdigest())
""")


@x86
def test_evaluation_arithmetic_gives_the_same_bytes_for_every_code_target_this_cpu_runs():
    runnable = [t for t, (_, _, needs) in TARGETS.items() if needs <= host_flags()]
    digests = {target: in_target(LINALG, target).split() for target in runnable}
    assert len(runnable) >= 3 and len({tuple(d) for d in digests.values()}) == 1, digests


@pytest.mark.parametrize("dim", [1, 7, 16, 37, 100, 300])
def test_numpy_and_compiled_cosines_give_the_same_bits(dim):
    """The query class computes small products in numpy, the evaluate stage large ones compiled: one answer."""
    from w2v import portable_linalg, portable_linalg_kernels

    rng = np.random.default_rng(dim)
    queries, candidates = (rng.normal(size=(n, dim)).astype(np.float32) for n in (9, 1_000))
    compiled = np.empty((9, 1_000), np.float32)
    portable_linalg_kernels.cosines(queries, candidates, compiled)
    in_numpy = np.empty_like(compiled)
    portable_linalg._cosines_numpy(queries, candidates, in_numpy)
    assert np.array_equal(compiled, in_numpy)
    np.testing.assert_allclose(compiled, queries @ candidates.T, rtol=1e-5, atol=1e-5)
    assert np.array_equal(portable_linalg.row_dots(queries, candidates[:9]), np.diagonal(compiled[:, :9]))


def test_principal_components_are_numpys_up_to_rounding_with_the_sign_rule():
    from w2v.portable_linalg import pearson, principal_components, unit_rows

    rng = np.random.default_rng(4)
    vectors = (rng.normal(size=(300, 40)) * np.linspace(3, 0.1, 40)).astype(np.float32)
    coords = principal_components(vectors, 3)
    centred = vectors.astype(np.float64) - vectors.astype(np.float64).mean(axis=0)
    reference = centred @ np.linalg.svd(centred, full_matrices=False)[2][:3].T
    np.testing.assert_allclose(np.abs(coords), np.abs(reference), atol=1e-9)
    assert all(coords[np.abs(coords[:, c]).argmax(), c] > 0 for c in range(3))
    unit = unit_rows(vectors)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1, rtol=1e-6)
    x, y = rng.normal(size=100), rng.normal(size=100)
    assert math.isclose(pearson(x, x + y), np.corrcoef(x, x + y)[0, 1], rel_tol=1e-12)
    assert math.isnan(pearson(x, np.ones(100)))
