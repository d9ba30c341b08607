"""PyTorch as an independent oracle: its modules hold our weights unchanged.

torch is an optional extra; CI installs it (make test installs ``.[all]``), so
these tests run there. Where it is absent they skip, and say so.
"""
import numpy as np
import pytest

import lstm_numba as ln
from helpers import CPU_BACKENDS, make_inputs

torch = pytest.importorskip("torch", reason="torch not installed (pip install '.[peers]')")


def torch_forward(cell, x, w, h0, c0):
    """Run torch's own module directly, not through our backend wrapper."""
    m = ln.to_torch(cell, w)
    with torch.inference_mode():
        hx = torch.from_numpy(h0)[None]
        if cell == "lstm":
            out, (h, c) = m(torch.from_numpy(x), (hx, torch.from_numpy(c0)[None]))
            return out.numpy(), h[0].numpy(), c[0].numpy()
        out, h = m(torch.from_numpy(x), hx)
        return out.numpy(), h[0].numpy(), None


@pytest.mark.parametrize("backend", [b for b in CPU_BACKENDS if b != "torch"])
@pytest.mark.parametrize("shape", [(1, 3, 5, 37), (9, 3, 7, 37), (4, 1, 16, 64)],
                         ids=lambda s: "T{}B{}I{}H{}".format(*s))
def test_backend_matches_torch(backend, shape, cell, dtype):
    reason = ln.why_unavailable().get(backend)
    if reason:
        pytest.skip(reason)
    x, w, h0, c0 = make_inputs(cell, *shape, dtype=dtype, seed=shape[0] + 40)
    out, h, c = torch_forward(cell, x, w, h0, c0)
    res = ln.forward(cell, x, w, h0, c0, backend=backend)
    tol = 3e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(res.outputs, out, rtol=0, atol=tol)
    np.testing.assert_allclose(res.h, h, rtol=0, atol=tol)
    if cell == "lstm":
        np.testing.assert_allclose(res.c, c, rtol=0, atol=tol)


def test_weights_round_trip_through_torch(cell, dtype):
    w = ln.init_weights(cell, 6, 13, dtype=dtype, seed=8)
    back_cell, back = ln.from_torch(ln.to_torch(cell, w))
    assert back_cell == cell
    for a, b in zip(w, back):
        assert b.dtype == dtype
        np.testing.assert_array_equal(a, b)


def test_a_trained_torch_module_loads_directly(cell):
    """Weights made by torch itself (its own init), read with from_torch."""
    torch.manual_seed(0)
    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    m = cls(7, 19).double()
    got_cell, w = ln.from_torch(m)
    x, _, h0, c0 = make_inputs(cell, 5, 2, 7, 19, np.float64, seed=3)
    with torch.inference_mode():
        hx = torch.from_numpy(h0)[None]
        state = (hx, torch.from_numpy(c0)[None]) if cell == "lstm" else hx
        out = m(torch.from_numpy(x), state)[0].numpy()
    res = ln.forward(got_cell, x, w, h0, c0, backend="numba")
    np.testing.assert_allclose(res.outputs, out, rtol=0, atol=1e-12)


@pytest.mark.parametrize("make,words", [
    (lambda: torch.nn.LSTM(3, 4, num_layers=2), "num_layers=2"),
    (lambda: torch.nn.GRU(3, 4, bidirectional=True), "bidirectional=True"),
    (lambda: torch.nn.RNN(3, 4, bias=False), "bias=False"),
    (lambda: torch.nn.RNN(3, 4, nonlinearity="relu"), "nonlinearity='relu'"),
    (lambda: torch.nn.LSTM(3, 4, proj_size=2), "proj_size=2"),
])
def test_from_torch_refuses_what_it_cannot_model(make, words):
    with pytest.raises(ValueError, match=words):
        ln.from_torch(make())


def test_from_torch_rejects_other_modules():
    with pytest.raises(TypeError, match="torch.nn.RNN, LSTM or GRU"):
        ln.from_torch(torch.nn.Linear(3, 4))
