"""Training: ln.forward(train=True) and ln.backward against the float64 oracle,
the oracle against finite differences and torch autograd, checkpointing, the
tape, validation and NaN isolation.

Every registered training backend whose training module imports here is
tested (numpy, torch, and numba/numba-parallel once lstm_numba/cpu_train.py
exists); ``test_numba_backends_train`` fails until it does.
"""
import numpy as np
import pytest

import lstm_numba as ln
from lstm_numba import training
from lstm_numba.backends import REGISTRY, BackendUnavailable
from lstm_numba.measure import tolerance
from helpers import make_inputs


def _trains_here(name):
    try:
        training._train_module(REGISTRY[name])
        return True
    except BackendUnavailable:
        return False


TRAINERS = [n for n in training.training_backends() if _trains_here(n)]
CHECKPOINTERS = TRAINERS
FAST = [n for n in TRAINERS if n != "numpy"]


def up(a):
    return None if a is None else np.asarray(a, dtype=np.float64)


def grads_in(cell, t, b, h, dtype, seed, with_grad_state=True):
    """Seeded ``(grad_outputs, grad_h, grad_c)``; the last two None unless asked."""
    rng = np.random.default_rng(seed + 100)
    go = rng.standard_normal((t, b, h)).astype(dtype)
    if not with_grad_state:
        return go, None, None
    gh = rng.standard_normal((b, h)).astype(dtype)
    gc = rng.standard_normal((b, h)).astype(dtype) if cell == "lstm" else None
    return go, gh, gc


def oracle_grads(cell, x, w, h0, c0, go, gh, gc):
    """Gradients from the numpy backend on float64 copies of everything."""
    fw = ln.forward(cell, up(x), w.astype(np.float64), up(h0), up(c0),
                    backend="numpy", train=True)
    return ln.backward(fw, up(go), up(gh), up(gc))


def assert_grads_close(g, ref, dtype, cell, shapes, what=""):
    tol = tolerance(dtype, "gradient")
    assert isinstance(g, ln.Gradients)
    for name, got, want in zip(ln.Gradients._fields, g, ref):
        if name == "c0" and cell != "lstm":
            assert got is None, f"{what}: g.c0 must be None for a {cell}"
            continue
        assert isinstance(got, np.ndarray), (what, name)
        assert got.shape == shapes[name] and got.dtype == dtype, (what, name, got.shape,
                                                                  got.dtype)
        np.testing.assert_allclose(got, want, rtol=tol.rtol, atol=tol.atol,
                                   err_msg=f"{what}: g.{name}")


def shapes_of(cell, t, b, i, h):
    gh = ln.cells.spec(cell).n_gates * h
    return {"x": (t, b, i), "h0": (b, h), "c0": (b, h), "w_ih": (gh, i),
            "w_hh": (gh, h), "b_ih": (gh,), "b_hh": (gh,)}


# ------------------------------------------------------------ the registry

def test_training_backends_in_the_registry():
    assert training.training_backends() == ["numpy", "numba", "numba-parallel", "torch"]
    for name in ("numpy-seed", "cuda", "cuda-persistent", "torch-cuda"):
        x, w, h0, c0 = make_inputs("lstm", 2, 1, 3, 4, np.float32, seed=0)
        with pytest.raises(training.TrainingUnsupported,
                           match=f"training is not supported on backend '{name}'"):
            ln.forward("lstm", x, w, backend=name, train=True)


@pytest.mark.parametrize("backend", ["numba", "numba-parallel"])
def test_numba_backends_train(backend):
    """The project's own kernels train (fails until lstm_numba/cpu_train.py exists)."""
    cell, t, b, i, h = "lstm", 5, 3, 4, 9
    x, w, h0, c0 = make_inputs(cell, t, b, i, h, np.float64, seed=3)
    go, gh, gc = grads_in(cell, t, b, h, np.float64, seed=3)
    fw = ln.forward(cell, x, w, h0, c0, backend=backend, train=True)
    g = ln.backward(fw, go, gh, gc)
    assert_grads_close(g, oracle_grads(cell, x, w, h0, c0, go, gh, gc), np.float64, cell,
                       shapes_of(cell, t, b, i, h), backend)


# ------------------------------------------------------------- the oracle

@pytest.mark.parametrize("cell", ln.CELLS)
def test_oracle_against_finite_differences(cell):
    """Every element of all 7 gradients against central differences of L (float64)."""
    t, b, i, h = 3, 2, 3, 4
    x, w, h0, c0 = make_inputs(cell, t, b, i, h, np.float64, seed=11)
    go, gh, gc = grads_in(cell, t, b, h, np.float64, seed=11)
    fw = ln.forward(cell, x, w, h0, c0, backend="numpy", train=True)
    g = ln.backward(fw, go, gh, gc)

    def loss(x, w, h0, c0):
        r = ln.forward(cell, x, w, h0, c0, backend="numpy")
        out = np.sum(go * r.outputs) + np.sum(gh * r.h)
        return out + (np.sum(gc * r.c) if cell == "lstm" else 0.0)

    inputs = {"x": x, "h0": h0, "c0": c0, **w._asdict()}
    eps = 1e-6
    for name, grad in zip(ln.Gradients._fields, g):
        if inputs[name] is None:
            assert grad is None
            continue
        num = np.empty_like(inputs[name])
        for idx in np.ndindex(num.shape):
            vals = []
            for sign in (1, -1):
                arrays = {k: (None if v is None else v.copy()) for k, v in inputs.items()}
                arrays[name][idx] += sign * eps
                ww = ln.Weights(*(arrays[k] for k in ln.Weights._fields))
                vals.append(loss(arrays["x"], ww, arrays["h0"], arrays["c0"]))
            num[idx] = (vals[0] - vals[1]) / (2 * eps)
        np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-8, err_msg=f"g.{name}")


@pytest.mark.skipif("torch" not in TRAINERS, reason="torch is not installed")
@pytest.mark.parametrize("cell", ln.CELLS)
def test_oracle_against_torch_autograd(cell):
    """The oracle against torch.autograd directly (not through the torch backend)."""
    import torch

    t, b, i, h = 6, 3, 5, 37
    x, w, h0, c0 = make_inputs(cell, t, b, i, h, np.float64, seed=5)
    go, gh, gc = grads_in(cell, t, b, h, np.float64, seed=5)
    g = oracle_grads(cell, x, w, h0, c0, go, gh, gc)
    m = ln.to_torch(cell, w).train()
    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0[None], requires_grad=True)
    if cell == "lstm":
        c0t = torch.tensor(c0[None], requires_grad=True)
        out, (hh, cc) = m(xt, (h0t, c0t))
        loss = ((out * torch.tensor(go)).sum() + (hh[0] * torch.tensor(gh)).sum()
                + (cc[0] * torch.tensor(gc)).sum())
    else:
        out, hh = m(xt, h0t)
        loss = (out * torch.tensor(go)).sum() + (hh[0] * torch.tensor(gh)).sum()
    loss.backward()
    tol = tolerance(np.float64, "gradient")
    want = {"x": xt.grad, "h0": h0t.grad[0], "w_ih": m.weight_ih_l0.grad,
            "w_hh": m.weight_hh_l0.grad, "b_ih": m.bias_ih_l0.grad, "b_hh": m.bias_hh_l0.grad}
    if cell == "lstm":
        want["c0"] = c0t.grad[0]
    for name, v in want.items():
        np.testing.assert_allclose(getattr(g, name), v.numpy(), rtol=tol.rtol, atol=tol.atol,
                                   err_msg=f"g.{name}")


# -------------------------------------------- every backend vs the oracle

SIZES = [  # (T, B, I, H): odd sizes, T=1, I != H
    (1, 3, 5, 37),
    (7, 3, 5, 37),
    (5, 1, 8, 4),
]


@pytest.mark.parametrize("backend", TRAINERS)
@pytest.mark.parametrize("size", SIZES, ids=lambda s: "T%d-B%d-I%d-H%d" % s)
def test_backend_against_oracle(backend, cell, dtype, size):
    t, b, i, h = size
    x, w, h0, c0 = make_inputs(cell, t, b, i, h, dtype, seed=sum(size))
    go, gh, gc = grads_in(cell, t, b, h, dtype, seed=sum(size))
    fw = ln.forward(cell, x, w, h0, c0, backend=backend, train=True)
    ref_fw = ln.forward(cell, up(x), w.astype(np.float64), up(h0), up(c0), backend="numpy")
    ftol = tolerance(dtype).atol
    np.testing.assert_allclose(fw.outputs, ref_fw.outputs, rtol=0, atol=ftol)
    np.testing.assert_allclose(fw.h, ref_fw.h, rtol=0, atol=ftol)
    assert (fw.c is None) == (cell != "lstm")
    g = ln.backward(fw, go, gh, gc)
    assert_grads_close(g, oracle_grads(cell, x, w, h0, c0, go, gh, gc), dtype, cell,
                       shapes_of(cell, t, b, i, h), backend)


@pytest.mark.parametrize("backend", TRAINERS)
def test_without_states_and_state_gradients(backend, cell, dtype):
    """h0/c0 None (zeros) and grad_h/grad_c None (zeros), and grad_h alone."""
    t, b, i, h = 4, 3, 6, 37
    x, w, _, _ = make_inputs(cell, t, b, i, h, dtype, seed=7, with_state=False)
    go, gh, _ = grads_in(cell, t, b, h, dtype, seed=7)
    shapes = shapes_of(cell, t, b, i, h)
    fw = ln.forward(cell, x, w, backend=backend, train=True)
    for args in ((go,), (go, gh)):
        g = ln.backward(fw, *args)
        full = args + (None,) * (3 - len(args))
        assert_grads_close(g, oracle_grads(cell, x, w, None, None, *full), dtype, cell,
                           shapes, f"{backend} {len(args)} grads")
    # grad_outputs None: only the final state carries a gradient
    g = ln.backward(fw, None, gh)
    ref = oracle_grads(cell, x, w, None, None, np.zeros_like(go), gh, None)
    assert_grads_close(g, ref, dtype, cell, shapes, f"{backend} grad_outputs=None")


@pytest.mark.parametrize("backend", TRAINERS)
def test_backward_twice_gives_the_same_answer(backend, cell):
    x, w, h0, c0 = make_inputs(cell, 6, 2, 3, 8, np.float32, seed=9)
    go, gh, gc = grads_in(cell, 6, 2, 8, np.float32, seed=9)
    fw = ln.forward(cell, x, w, h0, c0, backend=backend, train=True)
    nbytes = fw.tape.nbytes
    g1 = ln.backward(fw, go, gh, gc)
    g2 = ln.backward(fw, go, gh, gc)
    for a, b in zip(g1, g2):
        if a is None:
            assert b is None
        else:
            np.testing.assert_array_equal(a, b)
    assert fw.tape.nbytes == nbytes
    # other incoming gradients on the same tape: the gradient is linear in them
    g3 = ln.backward(fw, 2 * go, 2 * gh, None if gc is None else 2 * gc)
    for a, b in zip(g1, g3):
        if a is not None:
            np.testing.assert_allclose(b, 2 * a, rtol=1e-5, atol=1e-6)


def test_train_forward_is_the_inference_forward(cell):
    x, w, h0, c0 = make_inputs(cell, 5, 3, 4, 6, np.float64, seed=2)
    fw = ln.forward(cell, x, w, h0, c0, backend="numpy", train=True)
    res = ln.forward(cell, x, w, h0, c0, backend="numpy")
    assert isinstance(res, ln.ForwardResult) and not hasattr(res, "tape")
    assert isinstance(fw, ln.TrainForward) and isinstance(fw.tape, training.Tape)
    outputs, h, c = fw
    np.testing.assert_array_equal(outputs, res.outputs)
    np.testing.assert_array_equal(h, res.h)
    if cell == "lstm":
        np.testing.assert_array_equal(c, res.c)
    # the tape may share the outputs' memory: the caller gets read-only views
    with pytest.raises(ValueError, match="read-only"):
        fw.outputs[0, 0, 0] = 1.0


# ----------------------------------------------------------- checkpointing

@pytest.mark.parametrize("backend", CHECKPOINTERS)
@pytest.mark.parametrize("k", [1, 3, "sqrt", 50])
def test_checkpointing_gives_the_same_gradients(backend, cell, dtype, k):
    t, b, i, h = 10, 3, 5, 37
    x, w, h0, c0 = make_inputs(cell, t, b, i, h, dtype, seed=13)
    go, gh, gc = grads_in(cell, t, b, h, dtype, seed=13)
    full = ln.forward(cell, x, w, h0, c0, backend=backend, train=True)
    fw = ln.forward(cell, x, w, h0, c0, backend=backend, train=True, checkpoint=k)
    assert fw.checkpoint == (4 if k == "sqrt" else k)
    # (torch's segments batch their input products differently: rounding differs)
    np.testing.assert_allclose(fw.outputs, full.outputs, rtol=0, atol=tolerance(dtype).atol)
    g = ln.backward(fw, go, gh, gc)
    assert_grads_close(g, oracle_grads(cell, x, w, h0, c0, go, gh, gc), dtype, cell,
                       shapes_of(cell, t, b, i, h), f"{backend} checkpoint={k}")
    g2 = ln.backward(fw, go, gh, gc)
    for a, b2 in zip(g, g2):
        if a is not None:
            np.testing.assert_array_equal(a, b2)
    if k != 1:
        # (k > T: one segment, whose start is the caller's h0/c0: may keep nothing)
        assert 0 <= fw.tape.nbytes < full.tape.nbytes, (fw.tape.nbytes, full.tape.nbytes)


@pytest.mark.parametrize("backend", CHECKPOINTERS)
def test_checkpoint_tape_is_sublinear(backend):
    """sqrt checkpointing at T=400 keeps <= 15% of the full tape (O(sqrt T) states)."""
    cell, t, b, h = "lstm", 400, 2, 16
    x, w, h0, c0 = make_inputs(cell, t, b, h, h, np.float32, seed=1)
    full = ln.forward(cell, x, w, h0, c0, backend=backend, train=True).tape.nbytes
    ck = ln.forward(cell, x, w, h0, c0, backend=backend, train=True,
                    checkpoint="sqrt").tape.nbytes
    assert full >= t * b * h * 4        # at least one value per hidden unit and step
    assert ck <= 0.15 * full, (ck, full)


def test_oracle_tape_keeps_the_least():
    """The oracle's tape: LSTM 5H, GRU 5H (r, z, n, W_hn h + b_hn, h), RNN H per sample-step."""
    t, b, h = 6, 2, 8
    for cell, per in (("lstm", 5), ("gru", 5), ("rnn", 1)):
        x, w, h0, c0 = make_inputs(cell, t, b, 3, h, np.float32, seed=0)
        fw = ln.forward(cell, x, w, h0, c0, backend="numpy", train=True)
        assert fw.tape.nbytes == per * t * b * h * 4, cell
        fw = ln.forward(cell, x, w, h0, c0, backend="numpy", train=True, checkpoint=3)
        assert fw.tape.nbytes == (2 if cell == "lstm" else 1) * 2 * b * h * 4, cell


@pytest.mark.skipif("torch" not in TRAINERS, reason="torch is not installed")
def test_torch_tape_is_measured():
    """torch's tape bytes come from its saved tensors: positive, growing with T."""
    sizes = []
    for t in (8, 32):
        x, w, h0, c0 = make_inputs("lstm", t, 4, 16, 16, np.float32, seed=0)
        sizes.append(ln.forward("lstm", x, w, h0, c0, backend="torch", train=True).tape.nbytes)
    assert 0 < sizes[0] < sizes[1]
    assert sizes[1] >= 32 * 4 * 16 * 4        # at least the outputs' worth
    # checkpointed: the states at segment starts, less the caller's h0/c0 (2 tensors)
    ck = ln.forward("lstm", x, w, h0, c0, backend="torch", train=True, checkpoint=8).tape.nbytes
    assert ck == (32 // 8 - 1) * 2 * 4 * 16 * 4


# ------------------------------------------------------------ long sequence

@pytest.mark.parametrize("backend", FAST or ["numpy"])
def test_long_sequence_float32_against_float64(backend, cell):
    """T=2,000 in float32 against the float64 oracle (gradient tolerance)."""
    t, b, i, h = 2000, 2, 8, 16
    x, w, h0, c0 = make_inputs(cell, t, b, i, h, np.float32, seed=21)
    x *= 0.5                                  # keep the gates off their rails
    go, gh, gc = grads_in(cell, t, b, h, np.float32, seed=21)
    fw = ln.forward(cell, x, w, h0, c0, backend=backend, train=True)
    g = ln.backward(fw, go, gh, gc)
    ref = oracle_grads(cell, x, w, h0, c0, go, gh, gc)
    assert_grads_close(g, ref, np.float32, cell, shapes_of(cell, t, b, i, h), backend)


# --------------------------------------------------------------- validation

T, B, I, H = 4, 3, 5, 7


def _fw(cell="lstm", dtype=np.float32, backend="numpy"):
    x, w, h0, c0 = make_inputs(cell, T, B, I, H, dtype, seed=0)
    return ln.forward(cell, x, w, h0, c0, backend=backend, train=True)


GO = np.zeros((T, B, H), np.float32)
S = np.zeros((B, H), np.float32)

BACKWARD_CASES = [
    # (label, cell, args, kwargs, exception, message regex)
    ("grad_outputs list", "lstm", (GO.tolist(),), {}, TypeError,
     r"grad_outputs must be a numpy.ndarray of shape \(T, B, H\) = \(4, 3, 7\); got list"),
    ("grad_outputs rank", "lstm", (GO[0],), {}, ValueError,
     r"grad_outputs must have shape \(T, B, H\) = \(4, 3, 7\) \(3-D\); got shape \(3, 7\)"),
    ("grad_outputs shape", "lstm", (np.zeros((T, B, H + 1), np.float32),), {}, ValueError,
     r"grad_outputs has shape \(4, 3, 8\); expected \(T, B, H\) = \(4, 3, 7\)"),
    ("grad_outputs dtype", "lstm", (GO.astype(np.float64),), {}, TypeError,
     r"grad_outputs has dtype float64; expected float32"),
    ("grad_outputs int", "lstm", (GO.astype(np.int32),), {}, TypeError,
     r"grad_outputs has dtype int32"),
    ("grad_h shape", "lstm", (GO,), {"grad_h": np.zeros((B + 1, H), np.float32)}, ValueError,
     r"grad_h has shape \(4, 7\); expected \(B, H\) = \(3, 7\)"),
    ("grad_h rank", "gru", (GO,), {"grad_h": np.zeros((1, B, H), np.float32)}, ValueError,
     r"grad_h must have shape \(B, H\)"),
    ("grad_h dtype", "rnn", (GO,), {"grad_h": S.astype(np.float64)}, TypeError,
     r"grad_h has dtype float64; expected float32"),
    ("grad_c shape", "lstm", (GO,), {"grad_c": np.zeros((B, H - 1), np.float32)}, ValueError,
     r"grad_c has shape \(3, 6\); expected \(B, H\) = \(3, 7\)"),
    ("grad_c type", "lstm", (GO,), {"grad_c": 0.0}, TypeError,
     r"grad_c must be a numpy.ndarray"),
    ("grad_c to gru", "gru", (GO,), {"grad_c": S}, ValueError,
     r"grad_c was given, but a gru has no cell state"),
    ("grad_c to rnn", "rnn", (GO,), {"grad_c": S}, ValueError,
     r"grad_c was given, but a rnn has no cell state"),
]


@pytest.mark.parametrize("backend", TRAINERS)
@pytest.mark.parametrize("label,cell,args,kwargs,exc,msg", BACKWARD_CASES,
                         ids=[c[0] for c in BACKWARD_CASES])
def test_backward_rejects_bad_gradients(backend, label, cell, args, kwargs, exc, msg):
    fw = _fw(cell, backend=backend)
    with pytest.raises(exc, match=msg):
        ln.backward(fw, *args, **kwargs)


def test_backward_needs_a_training_forward():
    x, w, h0, c0 = make_inputs("lstm", T, B, I, H, np.float32, seed=0)
    res = ln.forward("lstm", x, w, h0, c0, backend="numpy")
    with pytest.raises(TypeError, match=r"fw must be the result of .*train=True.*ForwardResult"):
        ln.backward(res, GO)
    with pytest.raises(TypeError, match=r"fw must be .*got tuple"):
        ln.backward(tuple(res), GO)


CHECKPOINT_CASES = [
    (0, ValueError, r"checkpoint must be an int >= 1.*got 0"),
    (-3, ValueError, r"checkpoint must be an int >= 1.*got -3"),
    (True, TypeError, r"checkpoint must be None, an int >= 1 or 'sqrt'; got bool True"),
    (2.0, TypeError, r"checkpoint must be .*got float 2.0"),
    ("log", ValueError, r"checkpoint must be None, an int >= 1 or 'sqrt'; got 'log'"),
    ([2], TypeError, r"checkpoint must be .*got list"),
]


@pytest.mark.parametrize("backend", CHECKPOINTERS)
@pytest.mark.parametrize("value,exc,msg", CHECKPOINT_CASES, ids=[repr(c[0]) for c in CHECKPOINT_CASES])
def test_forward_rejects_bad_checkpoint(backend, value, exc, msg):
    x, w, h0, c0 = make_inputs("lstm", T, B, I, H, np.float32, seed=0)
    with pytest.raises(exc, match=msg):
        ln.forward("lstm", x, w, h0, c0, backend=backend, train=True, checkpoint=value)


def test_checkpoint_needs_train():
    x, w, h0, c0 = make_inputs("gru", T, B, I, H, np.float32, seed=0)
    with pytest.raises(ValueError, match=r"checkpoint=3 needs train=True"):
        ln.forward("gru", x, w, h0, backend="numpy", checkpoint=3)


def test_training_forward_validates_like_the_forward():
    x, w, h0, c0 = make_inputs("lstm", T, B, I, H, np.float32, seed=0)
    with pytest.raises(ValueError, match=r"h0 has shape \(3, 8\); expected \(B, H\)"):
        ln.forward("lstm", x, w, np.zeros((B, H + 1), np.float32), backend="numpy", train=True)
    with pytest.raises(ValueError, match="unknown backend"):
        ln.forward("lstm", x, w, backend="jax", train=True)


def test_gradients_may_be_non_contiguous_or_read_only():
    """A strided or read-only grad (say fw.outputs itself) is copied, not misread."""
    cell = "gru"
    x, w, h0, _ = make_inputs(cell, T, B, I, H, np.float64, seed=4)
    fw = ln.forward(cell, x, w, h0, backend="numpy", train=True)
    go = np.asfortranarray(fw.outputs)              # L = sum(outputs^2) / 2
    g1 = ln.backward(fw, fw.outputs)
    g2 = ln.backward(fw, go)
    for a, b in zip(g1, g2):
        if a is not None:
            np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------- NaN

@pytest.mark.parametrize("backend", TRAINERS)
def test_nan_stays_in_its_sample(backend, cell):
    t, b, i, h = 5, 4, 3, 9
    x, w, h0, c0 = make_inputs(cell, t, b, i, h, np.float32, seed=17)
    go, gh, gc = grads_in(cell, t, b, h, np.float32, seed=17)
    clean = ln.backward(ln.forward(cell, x, w, h0, c0, backend=backend, train=True), go, gh, gc)
    bad = 2
    x[1, bad, 0] = np.nan
    g = ln.backward(ln.forward(cell, x, w, h0, c0, backend=backend, train=True), go, gh, gc)
    keep = [s for s in range(b) if s != bad]
    tol = tolerance(np.float32, "gradient")
    for name in ("x", "h0", "c0"):
        got = getattr(g, name)
        if got is None:
            continue
        rows = got[:, keep] if name == "x" else got[keep]
        want = getattr(clean, name)
        want = want[:, keep] if name == "x" else want[keep]
        assert np.all(np.isfinite(rows)), name
        np.testing.assert_allclose(rows, want, rtol=tol.rtol, atol=tol.atol, err_msg=name)
    # the poisoned sample's gradient is NaN where the NaN flows (step 1 and before)
    assert np.isnan(g.x[:2, bad]).any() and np.isnan(g.h0[bad]).all()
