"""Tests of the Numba training kernels (lstm_numba.cpu_train, _train_kernels).

Called directly with a Prepared (the public path is tested in test_train.py):
against torch autograd and the float64 NumPy oracle, on the sizes that reach
the kernels' edge paths (H=37 and H=65: a partial last panel; B=5 and B=9:
rows left over from the 4-row tiles, the fused forward from 8 rows; I != H;
T=1), with and without h0/c0 and grad_h/grad_c, checkpointing k in {1, 3,
T+5}, numba-parallel's batch split against numba, an immutable tape, NaN
isolation, and the training forward against the inference kernel.
"""
import numpy as np
import pytest

import lstm_numba as ln
from lstm_numba import cpu, cpu_train, reference_train
from lstm_numba._gemm import panel_width
from lstm_numba.measure import Tolerance, tolerance
from lstm_numba.threads import max_threads, num_threads
from lstm_numba.validation import prepare

from helpers import make_inputs

NAMES = ("numba", "numba-parallel")
FIELDS = ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh")


def _problem(cell, t, b, i, h, dtype, seed=0, with_state=True, with_grad_state=True):
    x, w, h0, c0 = make_inputs(cell, t, b, i, h, dtype, seed, with_state)
    p = prepare(cell, x, w, h0, c0)
    rng = np.random.default_rng(seed + 100)
    go = rng.standard_normal((t, b, h)).astype(dtype)
    gh = (rng.standard_normal((b, h)) if with_grad_state else np.zeros((b, h))).astype(dtype)
    gc = None
    if cell == "lstm":
        gc = (rng.standard_normal((b, h)) if with_grad_state else np.zeros((b, h))).astype(dtype)
    return p, go, gh, gc


def _numba(p, go, gh, gc, name="numba", checkpoint=None):
    out, h, c, tape = cpu_train.forward_train(p, checkpoint, name)
    return (out, h, c), cpu_train.backward_train(tape, go, gh, gc), tape


def _oracle(p, go, gh, gc):
    f64 = lambda a: None if a is None else a.astype(np.float64)  # noqa: E731
    p64 = prepare(p.spec.name, f64(p.x), p.weights.astype(np.float64), f64(p.h0), f64(p.c0))
    out, h, c, tape = reference_train.forward_train(p64, None)
    return (out, h, c), reference_train.backward_train(tape, f64(go), f64(gh), f64(gc))


def _assert_grads(got, ref, dtype, tol=None):
    tol = tolerance(dtype, "gradient") if tol is None else tol
    for name, g, r in zip(FIELDS, got, ref):
        if r is None:
            assert g is None, name
            continue
        assert g.shape == r.shape and g.dtype == dtype, name
        np.testing.assert_allclose(g, r, rtol=tol.rtol, atol=tol.atol * max(1.0, np.abs(r).max()),
                                   err_msg=name)


SIZES = [  # (T, B, I, H): edge paths of the kernels
    (5, 3, 7, 37),     # odd H (partial panel), B < 4 (leftover rows only)
    (6, 9, 4, 65),     # H past one panel, B=9: fused forward, one leftover row
    (1, 5, 37, 16),    # T=1, I > H
]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: "T%dB%dI%dH%d" % s)
def test_against_oracle(cell, dtype, size):
    p, go, gh, gc = _problem(cell, *size, dtype)
    (out, h, c), got, _ = _numba(p, go, gh, gc)
    (rout, rh, rc), ref = _oracle(p, go, gh, gc)
    ftol = tolerance(dtype).atol
    np.testing.assert_allclose(out, rout, rtol=0, atol=ftol)
    np.testing.assert_array_equal(h, out[-1])
    if cell == "lstm":
        np.testing.assert_allclose(c, rc, rtol=0, atol=4 * ftol)
    else:
        assert c is None
    _assert_grads(got, ref, dtype)


@pytest.mark.parametrize("cell_", ["rnn", "lstm", "gru"])
def test_against_torch_autograd(cell_, dtype):
    pytest.importorskip("torch")
    from lstm_numba import peers_train

    p, go, gh, gc = _problem(cell_, 7, 5, 6, 37, dtype, seed=3)
    _, got, _ = _numba(p, go, gh, gc, "numba-parallel")
    _, _, _, tape = peers_train.forward_train(p, None, "torch")
    ref = peers_train.backward_train(tape, go, gh, gc)
    _assert_grads(got, ref, dtype)


@pytest.mark.parametrize("with_state, with_grad_state", [(False, False), (True, False),
                                                         (False, True)])
def test_states_and_state_gradients_optional(cell, with_state, with_grad_state):
    p, go, gh, gc = _problem(cell, 4, 5, 3, 20, np.float64, 1, with_state, with_grad_state)
    _, got, _ = _numba(p, go, gh, gc)
    _, ref = _oracle(p, go, gh, gc)
    _assert_grads(got, ref, np.float64)


@pytest.mark.parametrize("k", [1, 3, 12], ids=lambda k: f"k{k}")
@pytest.mark.parametrize("name", NAMES)
def test_checkpointing_gives_the_same_gradients(cell, name, k):
    # T=7: k=3 leaves a short last segment; k=12 is T+5 (one segment).
    p, go, gh, gc = _problem(cell, 7, 9, 5, 37, np.float64, 2)
    fw_full, g_full, tape_full = _numba(p, go, gh, gc, name)
    fw_k, g_k, tape_k = _numba(p, go, gh, gc, name, checkpoint=k)
    for a, b in zip(fw_full, fw_k):
        if a is not None:
            np.testing.assert_array_equal(a, b)
    _assert_grads(g_k, g_full, np.float64)
    assert tape_k.nbytes < tape_full.nbytes


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_parallel_split_equals_serial(cell, dt):
    # B=16 with 2 threads: two chunks of 8 rows (each on the fused path).
    p, go, gh, gc = _problem(cell, 6, 16, 9, 40, dt, 4)
    with num_threads(min(2, max_threads())):
        fw_par, g_par, _ = _numba(p, go, gh, gc, "numba-parallel")
    fw_ser, g_ser, _ = _numba(p, go, gh, gc, "numba")
    for a, b in zip(fw_par, fw_ser):
        if a is not None:
            np.testing.assert_array_equal(a, b)
    tight = Tolerance(1e-6 if dt == np.float32 else 1e-13, 1e-5 if dt == np.float32
                                 else 1e-12)
    _assert_grads(g_par, g_ser, dt, tight)


def test_forward_is_the_inference_forward(cell):
    for b in (3, 9):        # hoisted and fused input projection
        p, _, _, _ = _problem(cell, 6, b, 5, 70, np.float32, 5)
        out, h, c, _ = cpu_train.forward_train(p, None, "numba")
        ref = cpu.forward_numba(p)
        np.testing.assert_array_equal(out, ref.outputs if hasattr(ref, "outputs") else ref[0])
        np.testing.assert_array_equal(h, ref[1])
        if cell == "lstm":
            np.testing.assert_array_equal(c, ref[2])


def test_tape_is_read_only_and_backward_repeats(cell):
    p, go, gh, gc = _problem(cell, 5, 5, 4, 24, np.float32, 6)
    for k in (None, 2):
        _, _, _, tape = cpu_train.forward_train(p, k, "numba")
        arrays = [getattr(tape, f) for f in ("outputs", "G", "HN", "CS", "hk", "ck")]
        arrays = [a for a in arrays if a is not None]
        assert arrays and all(not a.flags.writeable for a in arrays)
        before = [a.copy() for a in arrays]
        g1 = cpu_train.backward_train(tape, go, gh, gc)
        g2 = cpu_train.backward_train(tape, go, gh, gc)
        for a, b in zip(g1, g2):
            if a is not None:
                np.testing.assert_array_equal(a, b)
        for a, b in zip(arrays, before):
            np.testing.assert_array_equal(a, b)
        with pytest.raises(ValueError):
            arrays[0][...] = 0


def test_tape_bytes():
    t, b, h = 10, 4, 32
    for cell, per_row in (("lstm", 4 * h + h + h), ("gru", 3 * h + h + h), ("rnn", h)):
        p, _, _, _ = _problem(cell, t, b, 8, h, np.float32, 7)
        tape = cpu_train.forward_train(p, None, "numba")[3]
        # Gates padded to whole panels (of the micro-kernel's panel width) + c (LSTM:
        # one row more, c0) + outputs.
        nc = panel_width(np.float32)
        g_cols = -(-(len(p.spec.gates) * h) // nc) * nc if cell != "rnn" else 0
        expect = t * b * h + t * b * g_cols + (t + 1) * b * h * (cell == "lstm") \
            + t * b * h * (cell == "gru")
        assert tape.nbytes == 4 * expect, cell
        assert per_row > 0
        # Checkpointed every 5 steps: the state at the start of segment 2 only.
        tk = cpu_train.forward_train(p, 5, "numba")[3]
        assert tk.nbytes == 4 * b * h * (2 if cell == "lstm" else 1)


@pytest.mark.parametrize("name", NAMES)
def test_nan_stays_in_its_sample(cell, name):
    p, go, gh, gc = _problem(cell, 5, 9, 6, 37, np.float32, 8)
    x = p.x.copy()
    x[2, 4, 1] = np.nan
    p = p._replace(x=x)
    dx, dh0, dc0, *dw = _numba(p, go, gh, gc, name)[1]
    others = [i for i in range(9) if i != 4]
    assert np.isnan(dx[:, 4]).any() and np.isnan(dh0[4]).any()
    assert np.isfinite(dx[:, others]).all()
    assert np.isfinite(dh0[others]).all()
    if cell == "lstm":
        assert np.isnan(dc0[4]).any() and np.isfinite(dc0[others]).all()


def test_through_the_public_api(cell):
    x, w, h0, c0 = make_inputs(cell, 6, 5, 7, 37, np.float64, 9)
    go = np.random.default_rng(1).standard_normal((6, 5, 37))
    fw = ln.forward(cell, x, w, h0, c0, backend="numba", train=True, checkpoint=2)
    g = ln.backward(fw, go)
    p = prepare(cell, x, w, h0, c0)
    _, ref = _oracle(p, go, np.zeros((5, 37)), np.zeros((5, 37)) if cell == "lstm" else None)
    _assert_grads(tuple(g), ref, np.float64)
