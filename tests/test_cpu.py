"""Tests specific to the Numba CPU kernels (cpu.py, _gemm.py, _activations.py).

The generic backend contract (shapes, validation, every cell against the
oracle) is tested in test_forward.py; here are the pieces that are easy to get
subtly wrong: the float32 activation approximation's stated error, the packed
micro-kernel's remainder paths (rows not a multiple of 4, panels not a
multiple of 4, N not a multiple of the panel width), the batch and hidden
splits of ``numba-parallel``, and NaN through the fast paths.
"""
import numpy as np
import pytest
from numba import njit

import lstm_numba as ln
from lstm_numba import _activations as act
from lstm_numba import cpu
from lstm_numba._gemm import (compile_gemm, gemm_rows, gemm_rows2, pack_transposed,
                              packed_shape, panel_width)
from lstm_numba.backends import get
from lstm_numba.threads import max_threads

from helpers import TOL, assert_close, make_inputs, oracle64

NUMBA_BACKENDS = ("numba", "numba-parallel")


# ------------------------------------------------------------- activations

@njit(error_model="numpy", fastmath=act.FASTMATH)
def _tanh_all(v, out):
    for i in range(v.size):
        out[i] = act.tanh(v[i])


@njit(error_model="numpy", fastmath=act.FASTMATH)
def _sigmoid_all(v, out):
    for i in range(v.size):
        out[i] = act.sigmoid(v[i])


def _dense_f32():
    """Every float32 step of 1e-5 over [-12, 12], plus extremes and tiny values."""
    half = np.linspace(0.0, 12.0, 1_200_001).astype(np.float32)
    grid = np.concatenate([-half[:0:-1], half])        # exactly symmetric
    tiny = np.float32([1e-38, -1e-38, 1e-30, 1e-8, -1e-8, 0.0004, -0.0004])
    big = np.float32([20, -20, 88, -88, 1e10, -1e10, 3.4e38, -3.4e38])
    return np.concatenate([grid, tiny, big])


def test_tanh_f32_max_error_is_the_stated_bound():
    v = _dense_f32()
    out = np.empty_like(v)
    _tanh_all(v, out)
    err = np.abs(out.astype(np.float64) - np.tanh(v.astype(np.float64)))
    assert err.max() <= act.TANH_F32_MAX_ABS_ERR
    # Odd function (the grid is symmetric), and |tanh| <= 1 everywhere.
    n = 2_400_001
    np.testing.assert_array_equal(out[:n], -out[:n][::-1])
    assert np.all(np.abs(out) <= 1.0)
    # Small arguments keep their relative accuracy (no absolute-only fit).
    small = np.float32([1e-30, 1e-8, -1e-8])
    o = np.empty_like(small)
    _tanh_all(small, o)
    np.testing.assert_allclose(o, small, rtol=1e-6)


def test_sigmoid_f32_max_error_is_the_stated_bound():
    v = _dense_f32()
    out = np.empty_like(v)
    _sigmoid_all(v, out)
    v64 = v.astype(np.float64)
    ref = np.where(v64 >= 0, 1 / (1 + np.exp(-np.abs(v64))),
                   np.exp(-np.abs(v64)) / (1 + np.exp(-np.abs(v64))))
    assert np.abs(out - ref).max() <= act.SIGMOID_F32_MAX_ABS_ERR
    assert np.all((out >= 0) & (out <= 1))


@pytest.mark.parametrize("fn, inf_value", [(_tanh_all, (1.0, -1.0)), (_sigmoid_all, (1.0, 0.0))])
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_activation_nan_and_inf(fn, inf_value, dt):
    v = np.array([np.nan, np.inf, -np.inf, 0.0], dtype=dt)
    out = np.empty_like(v)
    fn(v, out)
    assert np.isnan(out[0])
    tol = 2 * act.TANH_F32_MAX_ABS_ERR if dt == np.float32 else 0.0
    np.testing.assert_allclose(out[1:3], inf_value, rtol=0, atol=tol)


def test_float64_activations_are_exact():
    v = np.linspace(-30, 30, 100_001)
    out = np.empty_like(v)
    _tanh_all(v, out)
    np.testing.assert_allclose(out, np.tanh(v), rtol=1e-15, atol=1e-300)
    _sigmoid_all(v, out)
    np.testing.assert_allclose(out, 0.5 + 0.5 * np.tanh(0.5 * v), rtol=1e-15, atol=2e-16)


# ------------------------------------------------- packing and micro-kernel

@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("n, k", [(1, 1), (37, 5), (148, 37), (260, 65), (64, 64), (520, 17)])
def test_pack_transposed(dt, n, k):
    w = np.random.default_rng(n * k).standard_normal((n, k)).astype(dt)
    wp = np.full(packed_shape(n, k, dt), np.nan, dtype=dt)
    pack_transposed(w, wp)
    nc = panel_width(dt)
    flat = wp.transpose(1, 0, 2).reshape(k, -1)      # (K, P*NC) = w.T, zero-padded
    np.testing.assert_array_equal(flat[:, :n], w.T)
    np.testing.assert_array_equal(flat[:, n:], 0)
    assert flat.shape[1] == -(-n // nc) * nc


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("m", [1, 3, 4, 5, 9])
@pytest.mark.parametrize("k, n", [(1, 37), (37, 148), (65, 260), (20, 9 * 64)])
def test_gemm_rows_remainders(dt, m, k, n, reverse):
    """Rows m % 4 != 0 and panel counts % 4 != 0 go through the remainder tiles."""
    rng = np.random.default_rng(m + 10 * k + n)
    w = rng.standard_normal((n, k)).astype(dt)
    wp = np.empty(packed_shape(n, k, dt), dtype=dt)
    pack_transposed(w, wp)
    npan, _, nc = wp.shape
    a = rng.standard_normal((m + 3, k)).astype(dt)
    bias = np.zeros(npan * nc, dtype=dt)
    bias[:n] = rng.standard_normal(n)
    out = np.full((m + 4, npan * nc), np.nan, dtype=dt)
    r0, o0 = 2, 1
    compile_gemm(a, r0, m, wp, bias, out, o0, 0, npan, reverse)
    gemm_rows(a, r0, m, wp, bias, out, o0, 0, npan, reverse)
    ref = a[r0:r0 + m].astype(np.float64) @ w.T.astype(np.float64) + bias[:n]
    tol = 1e-5 * np.sqrt(k) if dt == np.float32 else 1e-12
    np.testing.assert_allclose(out[o0:o0 + m, :n], ref, rtol=0, atol=tol)
    np.testing.assert_array_equal(out[o0:o0 + m, n:], 0)      # zero padding
    assert np.isnan(out[:o0]).all() and np.isnan(out[o0 + m:]).all()   # untouched
    # A sub-range of panels writes only its own columns.
    if npan >= 2:
        first = out.copy()
        out[:] = np.nan
        gemm_rows(a, r0, m, wp, bias, out, o0, 1, npan, reverse)
        assert np.isnan(out[o0:o0 + m, :nc]).all()
        np.testing.assert_allclose(out[o0:o0 + m, nc:n], ref[:, nc:], rtol=0, atol=tol)
        # The walk's direction changes nothing in the result, bit for bit.
        gemm_rows(a, r0, m, wp, bias, out, o0, 0, npan, not reverse)
        np.testing.assert_array_equal(out, first)


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("m", [1, 4, 5, 11])
@pytest.mark.parametrize("k1, k2, n", [(3, 37, 148), (65, 20, 260), (16, 16, 9 * 64)])
def test_gemm_rows2_sums_both_products(dt, m, k1, k2, n, reverse):
    """The fused step product: a1 @ W1 + a2 @ W2 + bias, remainder rows included."""
    rng = np.random.default_rng(m + k1 + k2 + n)
    w1 = rng.standard_normal((n, k1)).astype(dt)
    w2 = rng.standard_normal((n, k2)).astype(dt)
    wp1 = np.empty(packed_shape(n, k1, dt), dtype=dt)
    wp2 = np.empty(packed_shape(n, k2, dt), dtype=dt)
    pack_transposed(w1, wp1)
    pack_transposed(w2, wp2)
    npan, _, nc = wp1.shape
    a1 = rng.standard_normal((m + 2, k1)).astype(dt)
    a2 = rng.standard_normal((m + 5, k2)).astype(dt)
    bias = np.zeros(npan * nc, dtype=dt)
    bias[:n] = rng.standard_normal(n)
    out = np.full((m + 1, npan * nc), np.nan, dtype=dt)
    args = (a1, 1, wp1, a2, 4, wp2, m, bias, out, 1, 0, npan, reverse)
    compile_gemm(*args, kernel=gemm_rows2)
    gemm_rows2(*args)
    ref = (a1[1:1 + m].astype(np.float64) @ w1.T + a2[4:4 + m].astype(np.float64) @ w2.T
           + bias[:n])
    tol = 1e-5 * np.sqrt(k1 + k2) if dt == np.float32 else 1e-12
    np.testing.assert_allclose(out[1:, :n], ref, rtol=0, atol=tol)
    np.testing.assert_array_equal(out[1:, n:], 0)
    assert np.isnan(out[0]).all()


# ---------------------------------------------------------- whole forward

@pytest.fixture(autouse=True)
def _always_split(monkeypatch):
    """Exercise numba-parallel's hidden split at test sizes too (in production
    it is used only for a w_hh of at least cpu.HIDDEN_SPLIT_MIN_BYTES)."""
    monkeypatch.setattr(cpu, "HIDDEN_SPLIT_MIN_BYTES", 0)


def _threads(n):
    if n > max_threads():
        pytest.skip(f"needs {n} cores, this process may use {max_threads()}")
    return ln.num_threads(n)


SIZES = [  # (T, B, I, H): odd H around the panel width, B around the 4-row tile
    (3, 1, 20, 37),
    (2, 3, 37, 65),
    (5, 5, 7, 37),
    (70, 1, 9, 17),     # B=1: two input-projection chunks (64 rows each)
    (15, 5, 11, 20),    # B=5: chunks of 13 steps, the last one short
    (4, 13, 30, 130),   # B=13: LSTM/RNN fused steps (3 tiles + 1 row); at 2 threads
                        # batch split 8 (fused) + 5 (hoisted) rows
    (1, 16, 65, 65),    # T=1
    (6, 10, 37, 65),    # B=10: fused steps, 2 leftover rows
]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("backend", NUMBA_BACKENDS)
@pytest.mark.parametrize("size", SIZES, ids=lambda s: "T%dB%dI%dH%d" % s)
def test_forward_vs_oracle64(cell, dtype, backend, threads, size):
    t, b, i, h = size
    x, w, h0, c0 = make_inputs(cell, t, b, i, h, dtype, seed=t * b + h)
    with _threads(threads):
        res = ln.forward(cell, x, w, h0, c0, backend=backend)
    assert_close(res, oracle64(cell, x, w, h0, c0), dtype, cell)


@pytest.mark.parametrize("backend", NUMBA_BACKENDS)
def test_forward_vs_torch(cell, dtype, backend):
    pytest.importorskip("torch")
    t, b, i, h = 6, 5, 33, 65
    x, w, h0, c0 = make_inputs(cell, t, b, i, h, dtype, seed=11)
    with _threads(2):
        res = ln.forward(cell, x, w, h0, c0, backend=backend)
        ref = ln.forward(cell, x, w, h0, c0, backend="torch")
    tol = 2 * TOL[dtype] if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(res.outputs, ref.outputs, rtol=0, atol=tol)
    np.testing.assert_allclose(res.h, ref.h, rtol=0, atol=tol)
    if cell == "lstm":
        np.testing.assert_allclose(res.c, ref.c, rtol=0, atol=4 * tol)


@pytest.mark.parametrize("size, path", [((9, 1, 8, 130), "_steps_hidden_split"),
                                        ((5, 3, 8, 65), "_steps_hidden_split"),
                                        ((4, 16, 8, 37), "_steps_batch_split")],
                         ids=["B1-hidden-split", "B3-hidden-split", "B16-batch-split"])
def test_parallel_paths_match_serial(cell, size, path, monkeypatch):
    """Both numba-parallel paths (hidden split below 8 rows, batch split above)."""
    t, b, i, h = size
    x, w, h0, c0 = make_inputs(cell, t, b, i, h, np.float32, seed=5)
    serial = ln.forward(cell, x, w, h0, c0, backend="numba")
    calls = []
    kernel = getattr(cpu, path)
    monkeypatch.setattr(cpu, path, lambda *a: calls.append(1) or kernel(*a))
    with _threads(2):
        par = ln.forward(cell, x, w, h0, c0, backend="numba-parallel")
    assert calls == [1]                       # the path named above really ran
    np.testing.assert_allclose(par.outputs, serial.outputs, rtol=0, atol=1e-6)


def test_small_recurrent_product_is_not_split(monkeypatch):
    """Under HIDDEN_SPLIT_MIN_BYTES the per-step fork/join is not worth it."""
    monkeypatch.setattr(cpu, "HIDDEN_SPLIT_MIN_BYTES", 1 << 40)
    monkeypatch.setattr(cpu, "_steps_hidden_split", None)   # would raise if called
    x, w, h0, c0 = make_inputs("lstm", 3, 1, 8, 37, np.float32, seed=6)
    with _threads(2):
        res = ln.forward("lstm", x, w, h0, c0, backend="numba-parallel")
    assert_close(res, oracle64("lstm", x, w, h0, c0), np.float32, "lstm")


@pytest.mark.parametrize("backend", NUMBA_BACKENDS)
def test_nan_propagates_through_the_fast_path(cell, dtype, backend):
    t, b, i, h = 6, 9, 10, 37
    x, w, h0, c0 = make_inputs(cell, t, b, i, h, dtype, seed=2)
    x[2, 1, 3] = np.nan          # row 1 turns NaN from step 2 on
    h0[4, 0] = np.nan            # row 4 is NaN from step 0 on
    with _threads(2):
        res = ln.forward(cell, x, w, h0, c0, backend=backend)
    out = res.outputs
    assert np.isnan(out[2:, 1]).all() and np.isfinite(out[:2, 1]).all()
    assert np.isnan(out[:, 4]).all()
    clean = [r for r in range(b) if r not in (1, 4)]
    assert np.isfinite(out[:, clean]).all()
    ref = oracle64(cell, x, w, h0, c0)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref.outputs))


@pytest.mark.parametrize("backend", NUMBA_BACKENDS)
def test_runner_packs_once_and_matches_forward(cell, backend):
    x, w, h0, c0 = make_inputs(cell, 5, 3, 12, 37, np.float32, seed=4)
    run = get(backend).runner(cell, w)
    a = run(x, h0, c0)
    ref = ln.forward(cell, x, w, h0, c0, backend=backend)
    np.testing.assert_array_equal(a[0], ref.outputs)
    # A second call on other inputs reuses the packed weights correctly.
    x2 = x[::-1].copy()
    np.testing.assert_array_equal(run(x2, h0, c0)[0],
                                  ln.forward(cell, x2, w, h0, c0, backend=backend).outputs)


def test_readonly_inputs(cell):
    """Read-only arrays compile their own kernel variant and give the same result."""
    x, w, h0, c0 = make_inputs(cell, 4, 3, 6, 37, np.float32, seed=8)
    ref = ln.forward(cell, x, w, h0, c0, backend="numba")
    for a in (x, h0, c0, *w):
        if a is not None:
            a.setflags(write=False)
    res = ln.forward(cell, x, w, h0, c0, backend="numba")
    np.testing.assert_array_equal(res.outputs, ref.outputs)
    assert x.flags.writeable is False


def test_long_float32_sequence_stays_within_tolerance():
    """The approximation's error does not accumulate past the float32 bound."""
    x, w, h0, c0 = make_inputs("lstm", 200, 2, 64, 256, np.float32, seed=9)
    res = ln.forward("lstm", x, w, h0, c0, backend="numba")
    assert_close(res, oracle64("lstm", x, w, h0, c0), np.float32, "lstm")


def test_split_bounds():
    np.testing.assert_array_equal(cpu._split(16, 2, 4), [0, 8, 16])
    np.testing.assert_array_equal(cpu._split(13, 2, 4), [0, 8, 13])
    np.testing.assert_array_equal(cpu._split(9, 4, 1), [0, 2, 4, 7, 9])
    for n, parts, unit in [(64, 2, 4), (13, 3, 4), (5, 2, 1)]:
        b = cpu._split(n, parts, unit)
        assert b[0] == 0 and b[-1] == n and np.all(np.diff(b) >= 0)


# ------------------------------------------- full vector width, packing, the pack cache

def test_gemm_kernels_ask_for_the_full_vector_width():
    """gemm_rows carries the prefer-vector-width attribute; on AVX-512, zmm FMAs.

    Compiled afresh (uncached: Numba cannot inspect code loaded from its cache).
    """
    from numba import typeof

    from lstm_numba import machine
    from lstm_numba._activations import FASTMATH
    from lstm_numba._gemm import JIT, slp_vectorize
    a = np.zeros((5, 16), np.float32)
    wp = np.zeros(packed_shape(70, 16, np.float32), np.float32)
    bias = np.zeros(wp.shape[0] * wp.shape[2], np.float32)
    out = np.zeros((5, bias.size), np.float32)
    fresh = njit(**dict(JIT, cache=False, fastmath=FASTMATH))(gemm_rows.py_func)
    sig = tuple(typeof(v) for v in (a, 0, 5, wp, bias, out, 0, 0, 2, False))
    with slp_vectorize():
        fresh.compile(sig)
    attr = machine.kernel_fn_attribute()
    if attr:
        assert attr in fresh.inspect_llvm(sig)
    if ln.cpu_info()["isa"] == "AVX-512":
        fmas = [line for line in fresh.inspect_asm(sig).splitlines() if "vfmadd" in line]
        assert fmas and all("zmm" in f for f in fmas), fmas[:4]


def test_constant_arguments_do_not_add_specialisations():
    """unliteral_calls: a jitted caller passing constants reuses the typed version."""
    @njit
    def caller(a, wp, bias, out):
        gemm_rows(a, 0, 1, wp, bias, out, 0, 0, 1, False)

    a = np.ones((3, 9), np.float64)
    wp = np.zeros(packed_shape(40, 9, np.float64), np.float64)
    bias = np.zeros(wp.shape[0] * wp.shape[2])
    out = np.zeros((3, bias.size))
    caller(a, wp, bias, out)
    assert not any("Literal" in str(s) for s in gemm_rows.signatures), gemm_rows.signatures


@pytest.mark.parametrize("n, k", [(256, 64), (37 * 4, 29), (3, 5), (65, 1)])
def test_pack_panels_matches_pack_transposed(n, k, dtype):
    from lstm_numba._packing import pack_panels
    w = np.random.default_rng(n + k).standard_normal((n, k)).astype(dtype)
    wp = np.full(packed_shape(n, k, dtype), np.nan, dtype)
    pack_transposed(w, wp)
    np.testing.assert_array_equal(pack_panels(w), wp)


@pytest.mark.parametrize("shape", [(37, 11), (3,), (4, 64)])
def test_fingerprint_sees_every_single_change(shape, dtype):
    from lstm_numba._packing import fingerprint
    rng = np.random.default_rng(3)
    a = rng.standard_normal(shape).astype(dtype)
    f = fingerprint(a)
    assert fingerprint(a.copy()) == f
    flat = a.reshape(-1)
    for idx in {0, flat.size // 2, flat.size - 1}:
        old = flat[idx]
        flat[idx] = np.nextafter(old, dtype(np.inf))     # the smallest change there is
        assert fingerprint(a) != f, idx
        flat[idx] = -old if old != 0 else dtype(1)
        assert fingerprint(a) != f, idx
        flat[idx] = old
    assert fingerprint(a) == f
    b = a.reshape(-1).copy()
    if b.size > 1:                    # a swap of two values
        b[0], b[-1] = b[-1], b[0]
        if b[0] != b[-1]:
            assert fingerprint(b.reshape(shape)) != f


@pytest.mark.parametrize("which", ["w_ih", "w_hh", "b_ih", "b_hh"])
def test_forward_packs_again_after_in_place_changes(which, dtype):
    """ln.forward's pack cache is keyed on contents: a mutated weight is never stale."""
    cell = "gru"                                      # b_hh's n block is kept apart
    x, w, h0, _ = make_inputs(cell, 4, 3, 11, 37, dtype, seed=31)
    first = ln.forward(cell, x, w, h0)
    hits = cpu.PACKS.hits
    again = ln.forward(cell, x, w, h0)
    assert cpu.PACKS.hits == hits + 1                 # unchanged weights: reused
    np.testing.assert_array_equal(again.outputs, first.outputs)
    arr = getattr(w, which)
    arr.reshape(-1)[-1] += 0.5                       # the last element: odd sizes' tail
    changed = ln.forward(cell, x, w, h0)
    assert_close(changed, oracle64(cell, x, w, h0, None), dtype, cell)
    assert np.abs(changed.outputs - first.outputs).max() > 1e-4


def test_pack_cache_is_bounded_in_bytes():
    from lstm_numba._packing import PackCache
    cache = PackCache(max_bytes=1000)
    built = []

    def build(n):
        built.append(n)
        return (np.zeros(n, np.uint8),)

    assert cache.get("a", lambda: build(600))[0].size == 600
    cache.get("a", lambda: build(600))
    assert built == [600]                             # a hit
    cache.get("b", lambda: build(600))                # evicts "a"
    assert len(cache) == 1
    cache.get("a", lambda: build(600))
    assert built == [600, 600, 600]
    cache.get("big", lambda: build(5000))             # too big to keep
    assert len(cache) == 1
