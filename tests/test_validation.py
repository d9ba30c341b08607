"""Bad input: a clear ValueError/TypeError naming the argument and the shapes,
raised before any kernel runs, for every backend."""
import numpy as np
import pytest

import lstm_numba as ln
from lstm_numba.backends import BACKEND_NAMES
from helpers import make_inputs

T, B, I, H = 4, 3, 5, 7


def args(cell="lstm", dtype=np.float32):
    x, w, h0, c0 = make_inputs(cell, T, B, I, H, dtype, seed=0)
    return dict(cell=cell, x=x, weights=w, h0=h0, c0=c0)


def replace(d, **kw):
    d = dict(d)
    d.update(kw)
    return d


def w_with(w, **kw):
    return w._replace(**kw)


A = args()
W = A["weights"]

CASES = [
    # (label, kwargs, exception, regex the message must contain)
    ("x rank", replace(A, x=A["x"][0]), ValueError, r"x must have shape \(T, B, I\).*got shape \(3, 5\)"),
    ("x list", replace(A, x=A["x"].tolist()), TypeError, r"x must be a numpy.ndarray"),
    ("x int", replace(A, x=A["x"].astype(np.int64)), TypeError, r"x must be float32 or float64; got dtype int64"),
    ("x float16", replace(A, x=A["x"].astype(np.float16)), TypeError, r"x must be float32 or float64"),
    ("x I mismatch", replace(A, x=np.zeros((T, B, I + 1), np.float32)), ValueError,
     r"x has shape \(4, 3, 6\).*I=6.*weights.w_ih has shape \(28, 5\).*I=5"),
    ("x dtype vs weights", replace(A, x=A["x"].astype(np.float64)), TypeError,
     r"x has dtype float64 but the weights are float32"),
    ("empty T", replace(A, x=np.zeros((0, B, I), np.float32)), ValueError,
     r"x has shape \(0, 3, 5\).*must be >= 1"),
    ("empty B", replace(A, x=np.zeros((T, 0, I), np.float32)), ValueError,
     r"x has shape \(4, 0, 5\).*must be >= 1"),
    ("h0 shape", replace(A, h0=np.zeros((B, H + 1), np.float32)), ValueError,
     r"h0 has shape \(3, 8\); expected \(B, H\) = \(3, 7\)"),
    ("h0 rank", replace(A, h0=np.zeros((1, B, H), np.float32)), ValueError,
     r"h0 must have shape \(B, H\)"),
    ("h0 dtype", replace(A, h0=A["h0"].astype(np.float64)), TypeError,
     r"h0 has dtype float64 but x is float32"),
    ("c0 shape", replace(A, c0=np.zeros((B + 1, H), np.float32)), ValueError,
     r"c0 has shape \(4, 7\); expected \(B, H\) = \(3, 7\)"),
    ("c0 to gru", replace(args("gru"), c0=np.zeros((B, H), np.float32)), ValueError,
     r"c0 was given, but a gru has no cell state"),
    ("c0 to rnn", replace(args("rnn"), c0=np.zeros((B, H), np.float32)), ValueError,
     r"c0 was given, but a rnn has no cell state"),
    ("unknown cell", replace(A, cell="transformer"), ValueError,
     r"unknown cell 'transformer'; valid cells are \('rnn', 'lstm', 'gru'"),
    ("cell not str", replace(A, cell=4), TypeError, r"cell must be a str"),
    ("weights of another cell", replace(A, weights=ln.init_weights("gru", I, H)), ValueError,
     r"weights.w_hh has shape \(21, 7\); expected \(4\*H, H\)"),
    ("w_ih rows", replace(A, weights=w_with(W, w_ih=W.w_ih[:-1].copy())), ValueError,
     r"weights.w_ih has shape \(27, 5\); expected \(4\*H, I\) = \(28, I >= 1\)"),
    ("b_hh length", replace(A, weights=w_with(W, b_hh=W.b_hh[:-2].copy())), ValueError,
     r"weights.b_hh has shape \(26,\); expected \(4\*H,\) = \(28,\)"),
    ("b_ih rank", replace(A, weights=w_with(W, b_ih=W.b_ih[None])), ValueError,
     r"weights.b_ih must have shape"),
    ("mixed weight dtypes", replace(A, weights=w_with(W, b_hh=W.b_hh.astype(np.float64))),
     TypeError, r"weights.b_hh has dtype float64 but weights.w_ih has float32"),
    ("weights not a tuple", replace(A, weights={"w_ih": W.w_ih}), TypeError,
     r"weights must be lstm_numba.Weights"),
    ("weights too short", replace(A, weights=tuple(W)[:3]), TypeError,
     r"weights must be lstm_numba.Weights"),
]


@pytest.mark.parametrize("backend", BACKEND_NAMES)
@pytest.mark.parametrize("label,kwargs,exc,words", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_rejected_by_every_backend(backend, label, kwargs, exc, words):
    # Checked before the backend loads: the same error whether or not it runs here.
    with pytest.raises(exc, match=words):
        ln.forward(backend=backend, **kwargs)


def test_unknown_backend_lists_the_valid_names():
    with pytest.raises(ValueError, match=r"unknown backend 'numbaa'; valid backends are .*"
                                         r"'numba-parallel'.*'torch-cuda'"):
        ln.forward(**A, backend="numbaa")


def test_unavailable_backend_says_why(monkeypatch):
    import lstm_numba.peers as peers

    monkeypatch.setattr(peers, "torch", None)
    monkeypatch.setattr(peers, "_IMPORT_ERROR", "No module named 'torch'", raising=False)
    assert "torch" not in ln.backends()
    assert "torch is not installed" in ln.why_unavailable()["torch"]
    with pytest.raises(ln.BackendUnavailable, match=r"backend 'torch' is unavailable: "
                                                    r"torch is not installed"):
        ln.forward(**A, backend="torch")


def test_backends_lists_cpu_backends_in_registry_order():
    names = ln.backends()
    assert names[:4] == ["numpy", "numpy-seed", "numba", "numba-parallel"]
    assert set(names) <= set(BACKEND_NAMES)
    assert set(ln.backends(device="cpu")) <= {"numpy", "numpy-seed", "numba",
                                              "numba-parallel", "torch"}


@pytest.mark.parametrize("n,exc", [(0, ValueError), (10_000, ValueError), (1.5, TypeError)])
def test_set_num_threads_rejects(n, exc):
    with pytest.raises(exc, match="n"):
        ln.set_num_threads(n)


def test_num_threads_context_restores():
    before = ln.get_num_threads()
    with ln.num_threads(1):
        assert ln.get_num_threads() == 1
        import numba
        assert numba.get_num_threads() == 1
    assert ln.get_num_threads() == before
