"""Every CPU backend against the float64 NumPy oracle, and against PyTorch.

GPU backends get the same checks in test_gpu.py (simulator sizes).
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lstm_numba as ln
from lstm_numba.cells import spec
from helpers import CPU_BACKENDS, assert_close, make_inputs, oracle64

# (T, B, I, H): odd sizes nobody chose for speed; T=1 and B=1 edges; I != H.
SHAPES = [(1, 1, 1, 1), (1, 3, 5, 37), (7, 3, 5, 37), (5, 2, 11, 8), (4, 1, 37, 64),
          (3, 5, 16, 65)]


def require(name):
    reason = ln.why_unavailable().get(name)
    if reason:
        pytest.skip(f"{name}: {reason}")


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T{}B{}I{}H{}".format(*s))
def test_matches_oracle(backend, shape, cell, dtype):
    require(backend)
    x, w, h0, c0 = make_inputs(cell, *shape, dtype=dtype, seed=sum(shape))
    res = ln.forward(cell, x, w, h0, c0, backend=backend)
    assert_close(res, oracle64(cell, x, w, h0, c0), dtype, cell)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_zero_initial_state_by_default(backend, cell, dtype):
    require(backend)
    x, w, _, _ = make_inputs(cell, 6, 3, 5, 37, dtype, seed=7, with_state=False)
    res = ln.forward(cell, x, w, backend=backend)
    assert_close(res, oracle64(cell, x, w), dtype, cell)
    zeros = np.zeros((3, 37), dtype)
    c_zeros = zeros if spec(cell).has_cell_state else None
    again = ln.forward(cell, x, w, zeros, c_zeros, backend=backend)
    np.testing.assert_array_equal(res.outputs, again.outputs)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_inputs_untouched_and_outputs_fresh(backend, cell):
    require(backend)
    x, w, h0, c0 = make_inputs(cell, 4, 3, 6, 9, np.float32, seed=11)
    copies = [a.copy() for a in (x, h0, *w)] + ([c0.copy()] if c0 is not None else [])
    res = ln.forward(cell, x, w, h0, c0, backend=backend)
    after = [x, h0, *w] + ([c0] if c0 is not None else [])
    assert all(np.array_equal(a, b) for a, b in zip(copies, after))
    for out in (res.outputs, res.h, res.c):
        if out is not None:
            assert not np.shares_memory(out, x) and not np.shares_memory(out, h0)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_batch_rows_are_independent(backend, cell):
    """Running B samples together equals running each alone (no cross-talk)."""
    require(backend)
    x, w, h0, c0 = make_inputs(cell, 5, 4, 7, 33, np.float64, seed=5)
    full = ln.forward(cell, x, w, h0, c0, backend=backend)
    for b in range(4):
        one = ln.forward(cell, x[:, b:b + 1], w, h0[b:b + 1],
                         None if c0 is None else c0[b:b + 1], backend=backend)
        np.testing.assert_allclose(one.outputs[:, 0], full.outputs[:, b], rtol=0, atol=1e-12)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_non_contiguous_inputs_are_copied_not_misread(backend, cell):
    require(backend)
    x, w, h0, c0 = make_inputs(cell, 6, 4, 5, 10, np.float64, seed=2)
    ref = ln.forward(cell, x, w, h0, c0, backend="numpy")
    fortran = [np.asfortranarray(a) for a in w]
    strided_x = np.repeat(x, 2, axis=1)[:, ::2]            # a view with a step
    assert not strided_x.flags.c_contiguous
    res = ln.forward(cell, strided_x, ln.Weights(*fortran), np.asfortranarray(h0),
                     None if c0 is None else c0.T.copy().T, backend=backend)
    np.testing.assert_allclose(res.outputs, ref.outputs, rtol=0, atol=1e-12)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_nan_in_gives_nan_out_only_where_it_flows(backend, cell, dtype):
    require(backend)
    x, w, h0, c0 = make_inputs(cell, 6, 3, 5, 20, dtype, seed=9)
    x[2, 1, 0] = np.nan                                    # step 2 of sample 1
    res = ln.forward(cell, x, w, h0, c0, backend=backend)
    assert np.isnan(res.outputs[2:, 1]).all()              # NaN flows forward in time
    assert np.isnan(res.h[1]).all()
    assert np.isfinite(res.outputs[:2]).all()              # not backwards
    assert np.isfinite(res.outputs[:, [0, 2]]).all()       # nor into other samples
    if spec(cell).has_cell_state:
        assert np.isnan(res.c[1]).all() and np.isfinite(res.c[[0, 2]]).all()


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_saturating_inputs_stay_finite(backend, cell, dtype):
    """Huge pre-activations must saturate gates at 0/1, not overflow to NaN."""
    require(backend)
    x, w, h0, c0 = make_inputs(cell, 3, 2, 4, 6, dtype, seed=1)
    x = (x * 1e4).astype(dtype)
    res = ln.forward(cell, x, w, h0, c0, backend=backend)
    assert np.isfinite(res.outputs).all()
    assert np.abs(res.outputs).max() <= 1.0
    assert_close(res, oracle64(cell, x, w, h0, c0), dtype, cell)


@pytest.mark.parametrize("backend", [b for b in CPU_BACKENDS if b != "numpy-seed"])
def test_long_sequence_float32_stays_near_float64(backend, cell):
    """T=10,000 in float32: rounding must not accumulate past a stated bound.

    The cells are contractive for these weights (|w| <= 1/sqrt(H)), so errors
    do not grow with T; the bound 1e-4 is ~1000 ulps of values in (-1, 1).
    """
    require(backend)
    x, w, h0, c0 = make_inputs(cell, 10_000, 2, 8, 32, np.float32, seed=4)
    res = ln.forward(cell, x, w, h0, c0, backend=backend)
    ref = oracle64(cell, x, w, h0, c0)
    err = np.abs(res.outputs - ref.outputs).max()
    assert err < 1e-4, f"max error {err:.2e} after 10,000 steps"


settings.register_profile("lstm", deadline=None, max_examples=25,
                          suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("backend", [b for b in CPU_BACKENDS if b != "numpy"])
@settings(settings.get_profile("lstm"))
@given(cell=st.sampled_from(ln.CELLS), t=st.integers(1, 6), b=st.integers(1, 6),
       i=st.integers(1, 40), h=st.integers(1, 70), f64=st.booleans(),
       seed=st.integers(0, 2**16))
def test_any_shape_matches_oracle(backend, cell, t, b, i, h, f64, seed):
    require(backend)
    dtype = np.float64 if f64 else np.float32
    x, w, h0, c0 = make_inputs(cell, t, b, i, h, dtype, seed)
    res = ln.forward(cell, x, w, h0, c0, backend=backend)
    assert_close(res, oracle64(cell, x, w, h0, c0), dtype, cell)
