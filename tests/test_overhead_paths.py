"""The cheap paths of ln.forward and Layer: they must never cost correctness.

ln.forward checks its arguments on a fast path (identity and shape
comparisons only), fingerprints the weights in one compiled call to find
their packed panels, and reuses scratch buffers between calls. These tests
pin what that must not change: weights changed in place are seen; inputs
that do not fit the fast path (non-contiguous, misaligned, a subclass, the
wrong dtype or shape) are still copied or refused with the same errors;
results are new arrays on every call; the inputs are left as they were;
threads calling at once do not share scratch.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest

import lstm_numba as ln
from lstm_numba import cpu
from lstm_numba._packing import fingerprint, fingerprint_many
from lstm_numba.validation import prepare, prepare_inputs

from helpers import assert_close, make_inputs, oracle64

CPU_BACKENDS = ("numba", "numba-parallel")
_Q = 0x9E3779B97F4A7C15


def _reference_fingerprint(arrays) -> int:
    """The documented sum over the concatenated, zero-padded 64-bit words."""
    raw = b"".join(a.tobytes() + b"\0" * (-a.nbytes % 8) for a in arrays)
    words = np.frombuffer(raw, dtype=np.uint64)
    return sum(int(v) * (2 * i + 1) * _Q for i, v in enumerate(words)) % 2**64


@pytest.mark.parametrize("shapes", [[(37, 11), (37, 37), (37,), (37,)],     # odd float32 counts
                                    [(4, 2), (3,), (1,), (5, 3)]])
def test_fingerprint_many_is_the_documented_sum(shapes, dtype):
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(s).astype(dtype) for s in shapes]
    want = _reference_fingerprint(arrays)
    assert fingerprint_many(arrays) == want
    assert fingerprint_many(arrays[:3]) == _reference_fingerprint(arrays[:3])
    assert fingerprint(arrays[0]) == _reference_fingerprint(arrays[:1])
    # Moving a value from one array's tail to the next one's head changes it.
    b = [a.copy() for a in arrays]
    b[0].reshape(-1)[-1], b[1].reshape(-1)[0] = b[1].reshape(-1)[0], b[0].reshape(-1)[-1]
    if b[0].reshape(-1)[-1] != b[1].reshape(-1)[0]:
        assert fingerprint_many(b) != want


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("which", ["w_ih", "w_hh", "b_ih", "b_hh"])
def test_forward_sees_weights_changed_in_place(backend, which, dtype):
    """Each weight, changed in place between calls (a middle element, through a
    view), gives the new weights' result, not the cached pack's."""
    cell = "lstm"
    x, w, h0, c0 = make_inputs(cell, 5, 3, 11, 37, dtype, seed=41)
    first = ln.forward(cell, x, w, h0, c0, backend=backend)
    again = ln.forward(cell, x, w, h0, c0, backend=backend)
    np.testing.assert_array_equal(again.outputs, first.outputs)
    flat = getattr(w, which).reshape(-1)          # a view: the user's own memory
    old = flat[flat.size // 2].copy()
    flat[flat.size // 2] = old + 0.75
    changed = ln.forward(cell, x, w, h0, c0, backend=backend)
    fresh = ln.Layer(cell, w, backend=backend)(x, h0, c0)    # packs the new weights
    np.testing.assert_array_equal(changed.outputs, fresh.outputs)
    np.testing.assert_array_equal(changed.c, fresh.c)
    assert_close(changed, oracle64(cell, x, w, h0, c0), dtype, cell)
    assert np.abs(changed.outputs - first.outputs).max() > 1e-5
    flat[flat.size // 2] = old                    # back as it was: the first result again
    back = ln.forward(cell, x, w, h0, c0, backend=backend)
    np.testing.assert_array_equal(back.outputs, first.outputs)


def _misaligned(a: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of ``a`` whose data starts one byte off alignment."""
    buf = np.zeros(a.nbytes + 1, dtype=np.uint8)
    out = buf[1:].view(a.dtype).reshape(a.shape)
    out[...] = a
    assert not out.flags.aligned and out.flags.c_contiguous
    return out


class _Sub(np.ndarray):
    pass


@pytest.mark.parametrize("cell", ln.CELLS)
def test_inputs_off_the_fast_path_give_the_same_result(cell, dtype):
    x, w, h0, c0 = make_inputs(cell, 4, 3, 11, 37, dtype, seed=43)
    ref = ln.forward(cell, x, w, h0, c0)
    # Non-contiguous x (every other feature of a wider array), Fortran-order
    # weights, misaligned states, a plain tuple of weights, an ndarray subclass.
    wide = np.zeros((4, 3, 22), dtype=dtype)
    wide[:, :, ::2] = x
    fw = ln.Weights(*(np.asfortranarray(a) for a in w))
    variants = {
        "strided x": (wide[:, :, ::2], w, h0, c0),
        "fortran weights": (x, fw, h0, c0),
        "misaligned": (_misaligned(x), ln.Weights(*map(_misaligned, w)), _misaligned(h0),
                       None if c0 is None else _misaligned(c0)),
        "tuple weights": (x, tuple(w), h0, c0),
        "subclass x": (x.view(_Sub), w, h0, c0),
    }
    for name, (xv, wv, hv, cv) in variants.items():
        res = ln.forward(cell, xv, wv, hv, cv)
        np.testing.assert_array_equal(res.outputs, ref.outputs, err_msg=name)
        p = prepare(cell, xv, wv, hv, cv)
        for a in (p.x, *p.weights, p.h0, p.c0):
            if a is not None:
                assert a.flags.c_contiguous and a.flags.aligned, name


def test_prepare_fast_path_agrees_with_the_checked_path(cell, dtype):
    x, w, h0, c0 = make_inputs(cell, 3, 2, 5, 7, dtype, seed=44)
    for args in ((x, w, h0, c0), (x, w, None, None)):
        fast = prepare(cell, *args)
        checked = prepare(cell, args[0], tuple(args[1]), *args[2:])   # not a Weights
        assert fast.spec is checked.spec
        for a, b in zip((fast.x, *fast.weights, fast.h0, fast.c0),
                        (checked.x, *checked.weights, checked.h0, checked.c0)):
            if a is None:
                assert b is None
            else:
                np.testing.assert_array_equal(a, b)
                assert a.dtype == b.dtype and a.shape == b.shape
        assert fast.x is x                          # nothing copied when nothing needs it
        assert all(a is b for a, b in zip(fast.weights, w))


@pytest.mark.parametrize("prep", [prepare, prepare_inputs], ids=["prepare", "prepare_inputs"])
def test_bad_inputs_still_refused_with_their_names(prep):
    cell = "lstm"
    x, w, h0, c0 = make_inputs(cell, 3, 2, 5, 7, np.float32, seed=45)
    cases = [
        ((x.astype(np.float64), w, h0, c0), TypeError, "x has dtype float64"),
        ((x[:, :, :4], w, h0, c0), ValueError, "x has shape"),
        ((x[0], w, h0, c0), ValueError, "x must have shape"),
        ((x[:, :0], w, h0, c0), ValueError, "batch B"),
        ((x.tolist(), w, h0, c0), TypeError, "x must be a numpy.ndarray"),
        ((x, w, h0[:1], c0), ValueError, "h0 has shape"),
        ((x, w, h0, c0.astype(np.float64)), TypeError, "c0 has dtype"),
        ((x, w, h0, c0.astype(np.int32)), TypeError, "c0 must be float32 or float64"),
        ((x.astype(">f4"), w, h0, c0), TypeError, "x"),       # not native byte order
    ]
    for args, err, text in cases:
        with pytest.raises(err, match=text):
            prep(cell, *args)
    with pytest.raises(ValueError, match="c0 was given"):
        prep("gru", x, ln.init_weights("gru", 5, 7, seed=1), None, c0)


def test_bad_weights_still_refused_with_their_names():
    x, w, h0, c0 = make_inputs("gru", 3, 2, 5, 7, np.float32, seed=46)
    cases = [
        (w._replace(b_hh=w.b_hh.astype(np.float64)), TypeError, "weights.b_hh has dtype"),
        (w._replace(w_hh=w.w_hh[:, :6]), ValueError, "weights.w_hh has shape"),
        (w._replace(w_ih=w.w_ih[:-1]), ValueError, "weights.w_ih has shape"),
        (w._replace(b_ih=w.b_ih[:-1]), ValueError, "weights.b_ih has shape"),
        (w._replace(w_ih=w.w_ih.astype(np.float16)), TypeError, "weights.w_ih must be float32"),
        (w._replace(w_ih=w.w_ih.tolist()), TypeError, "weights.w_ih must be a numpy.ndarray"),
        (list(w), TypeError, "weights must be lstm_numba.Weights"),
    ]
    for bad, err, text in cases:
        with pytest.raises(err, match=text):
            ln.forward("gru", x, bad, h0)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_results_are_new_arrays_and_inputs_unchanged(backend):
    cell = "lstm"
    x, w, h0, c0 = make_inputs(cell, 4, 3, 11, 37, np.float32, seed=47)
    saved = [a.copy() for a in (x, h0, c0, *w)]
    layer = ln.Layer(cell, w, backend=backend)
    results = [ln.forward(cell, x, w, h0, c0, backend=backend) for _ in range(2)]
    results += [layer(x, h0, c0) for _ in range(2)]
    arrays = [a for r in results for a in r]
    for i, a in enumerate(arrays):
        for b in arrays[i + 1:]:
            assert not np.shares_memory(a, b)
        for inp in (x, h0, c0, *w):
            assert not np.shares_memory(a, inp)
    first = results[0].outputs.copy()
    results[0].outputs[...] = 0                 # the user writes into a result ...
    results[0].h[...] = 0
    np.testing.assert_array_equal(ln.forward(cell, x, w, h0, c0, backend=backend).outputs,
                                  first)         # ... the next call does not see it
    for a, b in zip(saved, (x, h0, c0, *w)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_threads_calling_at_once_do_not_share_scratch(backend):
    """The kernels release the GIL and the scratch is reused between calls:
    concurrent calls (different inputs, same shapes) must each get their own."""
    cell = "gru"
    x, w, h0, _ = make_inputs(cell, 300, 2, 16, 96, np.float32, seed=48)
    inputs = [x * (1 + k / 4) for k in range(4)]
    want = [ln.forward(cell, xi, w, h0, backend=backend).outputs for xi in inputs]
    got: dict = {}
    errors = []

    def work(k):
        try:
            for _ in range(10):
                out = ln.forward(cell, inputs[k], w, h0, backend=backend).outputs
                if not np.array_equal(out, want[k]):
                    got[k] = out
        except Exception as e:          # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert not got, f"threads {sorted(got)} got another call's result"


def test_scratch_is_per_thread_and_bounded():
    a = cpu._scratch("test-slot", (3, 5), np.dtype(np.float32))
    assert cpu._scratch("test-slot", (3, 5), np.dtype(np.float32)) is a
    assert a.ctypes.data % 64 == 0
    b = cpu._scratch("test-slot", (4, 5), np.dtype(np.float32))     # new shape: new buffer
    assert b is not a and b.shape == (4, 5)
    other = []
    t = threading.Thread(target=lambda: other.append(
        cpu._scratch("test-slot", (4, 5), np.dtype(np.float32))))
    t.start()
    t.join()
    assert other[0] is not b
    n = cpu.SCRATCH_KEEP_BYTES // 8 + 1                  # too big to keep
    big = cpu._scratch("test-big", (n,), np.dtype(np.float64))
    assert cpu._scratch("test-big", (n,), np.dtype(np.float64)) is not big
