"""lstm_numba._simd (the register tile as vector IR: tile_fma, vfma, vmove) against NumPy."""
import numpy as np
import pytest
from numba import njit
from numba.core.errors import TypingError

from lstm_numba._gemm import _stack, full_width, pack_transposed, packed_shape, panel_width
from lstm_numba._simd import ROW_STRIDE, tile_fma, vfma, vmove


@njit
def _tile8_on_stack(init, a, r, k_len, wp, p, res):
    # The kernels' case: the tile in a stack array that LLVM keeps in registers.
    full_width()
    acc = _stack(256, wp)
    for j in range(256):
        acc[j] = init[j]
    tile_fma(acc, a, r, k_len, wp, p, 8)
    for j in range(256):
        res[j] = acc[j]


@njit
def _tile4(acc, a, r, k_len, wp, p):
    tile_fma(acc, a, r, k_len, wp, p, 4)


@njit
def _tile_rows_not_constant(acc, a, r, k_len, wp, p, rows):
    tile_fma(acc, a, r, k_len, wp, p, rows)


def _problem(dtype, k_len, n_panels=3, m=13, seed=0):
    rng = np.random.default_rng(seed)
    nc = panel_width(dtype)
    n = n_panels * nc - 5                       # last panel padded with zeros
    a = rng.standard_normal((m, k_len)).astype(dtype)
    w = rng.standard_normal((n, k_len)).astype(dtype)    # PyTorch's (N, K)
    wp = np.full(packed_shape(n, k_len, dtype), np.nan, dtype)
    pack_transposed(w, wp)
    acc0 = rng.standard_normal(256).astype(dtype)
    wt = np.zeros((k_len, n_panels * nc))
    wt[:, :n] = w.T.astype(np.float64)
    return a, wt, wp, acc0, nc


def _expected(acc0, a, r, rows, wt, p, nc):
    ref = acc0.astype(np.float64).copy()
    for i in range(rows):
        s = ROW_STRIDE * i
        ref[s:s + nc] += a[r + i].astype(np.float64) @ wt[:, p * nc:(p + 1) * nc]
    return ref


def _tile_mask(rows, nc):
    mask = np.zeros(256, bool)
    for i in range(rows):
        mask[ROW_STRIDE * i:ROW_STRIDE * i + nc] = True
    return mask


@pytest.mark.parametrize("k_len", [1, 37])
def test_eight_rows_match_numpy(dtype, k_len):
    a, wt, wp, acc0, nc = _problem(dtype, k_len)
    r, p = 3, 2                     # rows 3..10 of a, the zero-padded last panel
    got = np.empty_like(acc0)
    _tile8_on_stack(acc0, a, r, k_len, wp, p, got)
    ref = _expected(acc0, a, r, 8, wt, p, nc)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * max(1.0, np.abs(ref).max()))
    mask = _tile_mask(8, nc)
    # Between the tile's rows (float64: 16 elements after each row) nothing is written.
    np.testing.assert_array_equal(got[~mask], acc0[~mask])


@pytest.mark.parametrize("k_len", [1, 37])
def test_four_rows_match_numpy(dtype, k_len):
    a, wt, wp, acc0, nc = _problem(dtype, k_len)
    r, p = 9, 1                     # the last 4 rows of a
    acc = acc0.copy()
    _tile4(acc, a, r, k_len, wp, p)
    ref = _expected(acc0, a, r, 4, wt, p, nc)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(acc, ref, rtol=tol, atol=tol * max(1.0, np.abs(ref).max()))
    mask = _tile_mask(4, nc)
    np.testing.assert_array_equal(acc[~mask], acc0[~mask])


def test_empty_k_leaves_the_tile(dtype):
    a, _, wp, acc0, _ = _problem(dtype, 5)
    got = np.empty_like(acc0)
    _tile8_on_stack(acc0, a, 0, 0, wp, 0, got)
    np.testing.assert_array_equal(got, acc0)


def test_rows_must_be_a_constant():
    a, _, wp, acc0, _ = _problem(np.float32, 3)
    with pytest.raises(TypingError):
        _tile_rows_not_constant(acc0.copy(), a, 0, 3, wp, 0, np.int64(8))


@njit
def _vfma_vmove_row(acc, a0, wp, p, k, out, o, n0):
    vfma(acc, 0, a0, wp, p, k)
    vmove(out, (o, n0), acc, (0,))


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_vfma_and_vmove_move_one_panel_row(dt):
    """vfma adds x * panel row (NC elements) to acc; vmove copies NC elements, no more."""
    rng = np.random.default_rng(3)
    nc = 32 if dt == np.float32 else 16
    wp = rng.standard_normal((3, 5, nc)).astype(dt)
    acc = rng.standard_normal(nc + 7).astype(dt)
    out = np.zeros((4, 3 * nc), dt)
    want_acc = acc.copy()
    want_acc[:nc] += dt(0.5) * wp[2, 4]
    _vfma_vmove_row(acc, dt(0.5), wp, 2, 4, out, 1, nc)
    np.testing.assert_allclose(acc, want_acc, rtol=1e-6 if dt == np.float32 else 1e-14)
    want_out = np.zeros_like(out)
    want_out[1, nc:2 * nc] = acc[:nc]
    np.testing.assert_array_equal(out, want_out)
