"""Helpers shared by the test modules (import them from here, not from conftest).

conftest.py holds only pytest's set-up and fixtures; these are plain functions.
Tolerances come from the one table in :mod:`lstm_numba.measure`.
"""
import numpy as np

import lstm_numba as ln
from lstm_numba.backends import REGISTRY
from lstm_numba.cells import spec
from lstm_numba.measure import tolerance
from lstm_numba.reference import oracle64  # noqa: F401  (the float64 oracle)

CPU_BACKENDS = [n for n, b in REGISTRY.items() if b.device == "cpu"]
GPU_BACKENDS = [n for n, b in REGISTRY.items() if b.device == "gpu"]

# Max abs error allowed against the float64 oracle, per dtype of the backend.
TOL = {np.float32: tolerance(np.float32).atol, np.float64: tolerance(np.float64).atol}


def make_inputs(cell, t, b, i, h, dtype, seed, with_state=True):
    """Seeded ``(x, weights, h0, c0)``; states U(-1, 1) when ``with_state``.

    Wider states than :func:`lstm_numba.measure.make_problem` on purpose:
    tests want saturated gates too, benchmarks a stable recipe.
    """
    rng = np.random.default_rng(seed)
    w = ln.init_weights(cell, i, h, dtype=dtype, seed=seed + 1)
    x = rng.standard_normal((t, b, i)).astype(dtype)
    if not with_state:
        return x, w, None, None
    h0 = rng.uniform(-1, 1, (b, h)).astype(dtype)
    c0 = rng.uniform(-1, 1, (b, h)).astype(dtype) if spec(cell).has_cell_state else None
    return x, w, h0, c0


def assert_close(res, ref, dtype, cell, tol=None):
    """Compare a ForwardResult with the float64 oracle: shapes, dtype, values."""
    tol = TOL[np.dtype(dtype).type] if tol is None else tol
    t, b, h = ref.outputs.shape
    assert res.outputs.shape == (t, b, h) and res.outputs.dtype == dtype
    assert res.h.shape == (b, h) and res.h.dtype == dtype
    np.testing.assert_allclose(res.outputs, ref.outputs, rtol=0, atol=tol)
    np.testing.assert_allclose(res.h, ref.h, rtol=0, atol=tol)
    np.testing.assert_array_equal(res.h, res.outputs[-1])
    if spec(cell).has_cell_state:
        assert res.c.shape == (b, h) and res.c.dtype == dtype
        np.testing.assert_allclose(res.c, ref.c, rtol=0, atol=tol * 4)
    else:
        assert res.c is None
