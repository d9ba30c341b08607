"""Test set-up shared by every test module.

The CUDA kernels run in numba-cuda's simulator when no real GPU is present:
the simulator must be chosen before numba is first imported, so it is set here,
at collection time, before any test module imports lstm_numba.
"""
import ctypes.util
import os

if "NUMBA_ENABLE_CUDASIM" not in os.environ and ctypes.util.find_library("cuda") is None:
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import lstm_numba as ln  # noqa: E402
from lstm_numba.backends import REGISTRY  # noqa: E402

CPU_BACKENDS = [n for n, b in REGISTRY.items() if b.device == "cpu"]
GPU_BACKENDS = [n for n, b in REGISTRY.items() if b.device == "gpu"]

# Max abs error allowed against the float64 oracle, per dtype of the backend.
# float32: a few hundred ulps of values in (-1, 1) after many steps.
TOL = {np.float32: 2e-5, np.float64: 1e-12}


def make_inputs(cell, t, b, i, h, dtype, seed, with_state=True):
    """Seeded ``(x, weights, h0, c0)``; states random when ``with_state``."""
    rng = np.random.default_rng(seed)
    w = ln.init_weights(cell, i, h, dtype=dtype, seed=seed + 1)
    x = rng.standard_normal((t, b, i)).astype(dtype)
    if not with_state:
        return x, w, None, None
    h0 = rng.uniform(-1, 1, (b, h)).astype(dtype)
    c0 = rng.uniform(-1, 1, (b, h)).astype(dtype) if cell == "lstm" else None
    return x, w, h0, c0


from lstm_numba.reference import oracle64  # noqa: E402,F401  (the float64 oracle)


def assert_close(res, ref, dtype, cell, tol=None):
    """Compare a ForwardResult with the float64 oracle: shapes, dtype, values."""
    tol = TOL[np.dtype(dtype).type] if tol is None else tol
    t, b, h = ref.outputs.shape
    assert res.outputs.shape == (t, b, h) and res.outputs.dtype == dtype
    assert res.h.shape == (b, h) and res.h.dtype == dtype
    np.testing.assert_allclose(res.outputs, ref.outputs, rtol=0, atol=tol)
    np.testing.assert_allclose(res.h, ref.h, rtol=0, atol=tol)
    np.testing.assert_array_equal(res.h, res.outputs[-1])
    if cell == "lstm":
        assert res.c.shape == (b, h) and res.c.dtype == dtype
        np.testing.assert_allclose(res.c, ref.c, rtol=0, atol=tol * 4)
    else:
        assert res.c is None


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dtype(request):
    return request.param


@pytest.fixture(params=ln.CELLS)
def cell(request):
    return request.param
