"""ln.Layer: set-up once, validated calls, same results as ln.forward."""
import numpy as np
import pytest

import lstm_numba as ln
from lstm_numba.backends import REGISTRY

from helpers import assert_close, make_inputs, oracle64

CPU_LAYER_BACKENDS = [n for n in ("numpy", "numba", "numba-parallel", "torch")
                      if REGISTRY[n].unavailable() is None]


@pytest.mark.parametrize("backend", CPU_LAYER_BACKENDS)
def test_layer_equals_forward(backend, cell, dtype):
    x, w, h0, c0 = make_inputs(cell, 5, 3, 11, 37, dtype, seed=21)
    layer = ln.Layer(cell, w, backend=backend)
    got = layer(x, h0, c0)
    ref = ln.forward(cell, x, w, h0, c0, backend=backend)
    assert isinstance(got, ln.ForwardResult)
    np.testing.assert_array_equal(got.outputs, ref.outputs)
    np.testing.assert_array_equal(got.h, ref.h)
    if cell == "lstm":
        np.testing.assert_array_equal(got.c, ref.c)
    assert_close(got, oracle64(cell, x, w, h0, c0), dtype, cell)


def test_layer_runs_again_with_other_inputs(cell):
    """Several calls, other batch sizes and T=1, default states."""
    _, w, _, _ = make_inputs(cell, 1, 1, 11, 37, np.float32, seed=22)
    layer = ln.Layer(cell, w)
    for t, b in ((1, 3), (7, 1), (4, 16)):
        x, _, h0, c0 = make_inputs(cell, t, b, 11, 37, np.float32, seed=23 + b)
        assert_close(layer(x, h0, c0), oracle64(cell, x, w, h0, c0), np.float32, cell)
        res = layer(x)
        zeros = np.zeros((b, 37), np.float32)
        assert_close(res, oracle64(cell, x, w, zeros, zeros if cell == "lstm" else None),
                     np.float32, cell)


def test_layer_properties_and_repr():
    w = ln.init_weights("gru", 11, 37, dtype=np.float64, seed=0)
    layer = ln.Layer("gru", w, backend="numba")
    assert (layer.cell, layer.backend, layer.input_size, layer.hidden_size) == ("gru", "numba",
                                                                                 11, 37)
    assert layer.dtype == np.float64
    assert "gru" in repr(layer) and "hidden_size=37" in repr(layer)


def test_layer_keeps_its_weights_when_the_arrays_change():
    """A Layer snapshots its weights (every backend alike); ln.forward sees changes."""
    x, w, h0, c0 = make_inputs("lstm", 6, 3, 11, 37, np.float32, seed=24)
    before = ln.forward("lstm", x, w, h0, c0)
    for backend in ("numpy", "numba"):
        layer = ln.Layer("lstm", w, backend=backend)
        w.w_hh[5, 7] += 1.0
        w.b_ih[:] += 0.25
        got = layer(x, h0, c0)
        np.testing.assert_allclose(got.outputs, before.outputs, rtol=0, atol=2e-6)
        w.w_hh[5, 7] -= 1.0
        w.b_ih[:] -= 0.25
    w.w_hh[5, 7] += 1.0
    after = ln.forward("lstm", x, w, h0, c0)
    assert np.abs(after.outputs - before.outputs).max() > 1e-3
    assert_close(after, oracle64("lstm", x, w, h0, c0), np.float32, "lstm")


def test_layer_weights_property_is_a_copy():
    w = ln.init_weights("rnn", 4, 6, seed=0)
    layer = ln.Layer("rnn", w, backend="numpy")
    x = np.ones((2, 1, 4), np.float32)
    before = layer(x).outputs
    layer.weights.w_hh[:] = 0
    np.testing.assert_array_equal(layer(x).outputs, before)
    np.testing.assert_array_equal(layer.weights.w_hh, w.w_hh)


def test_layer_rejects_bad_construction():
    w = ln.init_weights("lstm", 5, 7, seed=0)
    with pytest.raises(ValueError, match="backend"):
        ln.Layer("lstm", w, backend="fortran")
    with pytest.raises(ValueError, match="cell"):
        ln.Layer("transformer", w)
    with pytest.raises((ValueError, TypeError), match="w_hh"):
        ln.Layer("gru", w)                         # lstm weights for a gru
    with pytest.raises(TypeError, match="weights"):
        ln.Layer("lstm", "not weights")


def test_layer_validates_every_call():
    w = ln.init_weights("lstm", 5, 7, seed=0)
    layer = ln.Layer("lstm", w)
    x = np.zeros((3, 2, 5), np.float32)
    with pytest.raises(ValueError, match="x"):
        layer(np.zeros((3, 2, 6), np.float32))     # wrong I
    with pytest.raises(ValueError, match="x"):
        layer(np.zeros((3, 5), np.float32))        # wrong rank
    with pytest.raises(TypeError, match="dtype"):
        layer(x.astype(np.float64))
    with pytest.raises(ValueError, match="h0"):
        layer(x, np.zeros((3, 7), np.float32))     # wrong B
    with pytest.raises(ValueError, match="c0"):
        layer(x, None, np.zeros((2, 8), np.float32))
    rnn = ln.Layer("rnn", ln.init_weights("rnn", 5, 7, seed=0))
    with pytest.raises(ValueError, match="c0"):
        rnn(x, None, np.zeros((2, 7), np.float32))


@pytest.mark.parametrize("cell", ln.PARALLEL_CELLS)
def test_layer_runs_the_parallel_cells_too(cell):
    w = ln.init_weights(cell, 5, 7, seed=0)
    x = np.random.default_rng(1).standard_normal((4, 3, 5)).astype(np.float32)
    layer = ln.Layer(cell, w)
    np.testing.assert_array_equal(layer(x).outputs, ln.forward(cell, x, w).outputs)
    assert layer.hidden_size == 7 and layer.input_size == 5
