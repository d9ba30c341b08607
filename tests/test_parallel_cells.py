"""minGRU, minLSTM and causal attention (issue 12): every backend against the
float64 oracle, the chunked scan's seams, attention against a naive T x T
softmax, bad input, NaN containment, and the contract's names.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lstm_numba as ln
from lstm_numba import _attention, _scan
from lstm_numba.backends import REGISTRY
from lstm_numba.measure import make_problem, tolerance
from lstm_numba.parallel_cells import SUPPORT, prepare, supports


def oracle64(cell, x, w, h0=None):
    """The ``numpy`` oracle in float64 on upcast copies (reference.oracle64's recipe)."""
    up = (lambda a: None if a is None else np.asarray(a, dtype=np.float64))  # noqa: E731
    return ln.forward(cell, up(x), w.astype(np.float64), up(h0), backend="numpy")

MIN_CELLS = ("mingru", "minlstm")
ROWS = {"mingru": 2, "minlstm": 3, "attention": 3}

# (cell, backend) pairs with a kernel that can run here (cuda: the simulator).
PAIRS = [(c, b) for c in ln.PARALLEL_CELLS for b in SUPPORT
         if supports(b, c) and b != "numpy" and REGISTRY[b].unavailable() is None]


def inputs(cell, t, b, i, h, dtype, seed=0, with_h0=True):
    rng = np.random.default_rng(seed)
    w = ln.init_weights(cell, i, h, dtype=dtype, seed=seed + 1)
    x = rng.standard_normal((t, b, i)).astype(dtype)
    h0 = (rng.uniform(-1, 1, (b, h)).astype(dtype)
          if with_h0 and cell != "attention" else None)
    return x, w, h0


def check(res, ref, dtype, tol=None):
    tol = tolerance(dtype).atol if tol is None else tol
    t, b, h = ref.outputs.shape
    assert res.outputs.shape == (t, b, h) and res.outputs.dtype == dtype
    assert res.h.shape == (b, h) and res.h.dtype == dtype
    assert res.c is None
    np.testing.assert_allclose(res.outputs, ref.outputs, rtol=0, atol=tol)
    np.testing.assert_array_equal(res.h, res.outputs[-1])


# ---------------------------------------------------------------- contract

def test_contract_names():
    assert ln.PARALLEL_CELLS == ("mingru", "minlstm", "attention")
    assert ln.CELLS == ("rnn", "lstm", "gru")
    assert "PARALLEL_CELLS" in ln.__all__


@pytest.mark.parametrize("cell", ln.PARALLEL_CELLS)
def test_init_weights_has_no_recurrent_weights(cell, dtype):
    w = ln.init_weights(cell, 5, 7, dtype, seed=3)
    assert isinstance(w, ln.Weights)
    assert w.w_ih.shape == (ROWS[cell] * 7, 5) and w.b_ih.shape == (ROWS[cell] * 7,)
    assert w.w_hh is None and w.b_hh is None
    assert w.w_ih.dtype == dtype and w.b_ih.dtype == dtype
    assert w.hidden_size == 7 and w.input_size == 5
    assert w.astype(np.float64).hidden_size == 7
    assert np.all(np.abs(w.w_ih) <= 1 / np.sqrt(7))
    assert repr(w).startswith("Weights(")
    w2 = ln.init_weights(cell, 5, 7, dtype, seed=3)
    np.testing.assert_array_equal(w.w_ih, w2.w_ih)


def test_hidden_size_of_hand_made_weights_needs_the_cell():
    w = ln.init_weights("mingru", 4, 6)
    plain = ln.Weights(w.w_ih, None, w.b_ih, None)
    with pytest.raises(ValueError, match="depends on the cell"):
        plain.hidden_size
    # ... but forward knows the cell, so plain Weights work there.
    x = np.ones((2, 1, 4), np.float32)
    assert ln.forward("mingru", x, plain, backend="numpy").outputs.shape == (2, 1, 6)


def test_flops_conventions():
    b, i, h, t = 3, 5, 7, 11
    assert ln.flops_per_step("mingru", b, i, h) == 2 * b * 2 * h * i
    assert ln.flops_per_step("minlstm", b, i, h) == 2 * b * 3 * h * i
    assert ln.flops("minlstm", t, b, i, h) == t * 2 * b * 3 * h * i
    att = 2 * t * b * 3 * h * i + 2 * b * h * t * (t + 1)
    assert ln.flops("attention", t, b, i, h) == att
    assert ln.flops_per_step("attention", b, i, h, seq_len=t) == att // t
    with pytest.raises(ValueError, match="seq_len is required"):
        ln.flops_per_step("attention", b, i, h)
    assert ln.flops_per_step("lstm", b, i, h) == 2 * b * 4 * h * (i + h)   # unchanged


def test_make_problem_for_parallel_cells():
    p = make_problem("attention", 4, 2, 8)
    assert p.h0 is None and p.c0 is None and p.w.w_hh is None
    p = make_problem("mingru", 4, 2, 8, input_size=3)
    assert p.h0.shape == (2, 8) and p.c0 is None
    res = ln.forward("mingru", p.x, p.w, p.h0, backend="numpy")
    assert res.outputs.shape == (4, 2, 8)


# --------------------------------------------------------- oracle equations

@pytest.mark.parametrize("cell", MIN_CELLS)
def test_oracle_follows_the_equations_step_by_step(cell):
    x, w, h0 = inputs(cell, 4, 2, 3, 5, np.float64)
    res = ln.forward(cell, x, w, h0, backend="numpy")
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    h = h0
    for t in range(4):
        g = x[t] @ w.w_ih.T + w.b_ih
        if cell == "mingru":
            z, ht = sig(g[:, :5]), g[:, 5:]
            h = (1 - z) * h + z * ht
        else:
            f, i, ht = sig(g[:, :5]), sig(g[:, 5:10]), g[:, 10:]
            h = f / (f + i) * h + i / (f + i) * ht
        np.testing.assert_allclose(res.outputs[t], h, rtol=0, atol=1e-14)


def naive_attention(x, w):
    """Full T x T scores, causal mask, softmax: the definition, in float64."""
    x, w_ih, b_ih = (np.asarray(a, np.float64) for a in (x, w.w_ih, w.b_ih))
    h = w_ih.shape[0] // 3
    t_len = x.shape[0]
    out = np.empty((t_len, x.shape[1], h))
    for b in range(x.shape[1]):
        q, k, v = np.split(x[:, b] @ w_ih.T + b_ih, 3, axis=1)
        s = q @ k.T / np.sqrt(h)
        s[np.triu_indices(t_len, 1)] = -np.inf
        p = np.exp(s - s.max(axis=1, keepdims=True))
        out[:, b] = (p / p.sum(axis=1, keepdims=True)) @ v
    return out


@pytest.mark.parametrize("backend", ["numpy"] + [b for c, b in PAIRS if c == "attention"])
def test_attention_matches_naive_softmax(backend, dtype):
    x, w, _ = inputs("attention", 70, 2, 6, 9, dtype, seed=5)
    x *= 3                                  # peaked softmax: the online max matters
    res = ln.forward("attention", x, w, backend=backend)
    np.testing.assert_allclose(res.outputs, naive_attention(x, w), rtol=0,
                               atol=tolerance(dtype).atol)


# ------------------------------------------------------ backends vs oracle

SHAPES = {"T1": (1, 1, 3, 5), "H37B3": (37, 3, 5, 37), "T130": (130, 2, 37, 16),
          "small": (9, 3, 5, 37)}
# The simulator runs a block at a time (slow): cuda gets the small shapes.
CASES = [(c, b, s) for c, b in PAIRS for s in SHAPES
         if (s in ("T1", "small")) == (b == "cuda") or s == "T1"]


@pytest.mark.parametrize("cell,backend,shape", CASES, ids=[f"{c}-{b}-{s}" for c, b, s in CASES])
def test_backend_matches_oracle(cell, backend, shape, dtype):
    t, b, i, h = SHAPES[shape]
    x, w, h0 = inputs(cell, t, b, i, h, dtype)
    check(ln.forward(cell, x, w, h0, backend=backend), oracle64(cell, x, w, h0), dtype)
    if cell != "attention":                 # h0 = None means zeros
        check(ln.forward(cell, x, w, backend=backend), oracle64(cell, x, w), dtype)


@pytest.mark.parametrize("cell", ln.PARALLEL_CELLS)
def test_long_sequence_float32(cell):
    # T = 10,000 in float32: the scan's products underflow, the torch peer's
    # log-space sums grow, attention sums 10,000 weights; every CPU backend
    # must stay within the long-sequence tolerance (one oracle for all).
    b = 1 if cell == "attention" else 2      # the float64 oracle is O(T^2) there
    x, w, h0 = inputs(cell, 10_000, b, 12, 8, np.float32, seed=2)
    ref = oracle64(cell, x, w, h0)
    for backend in [bk for c, bk in PAIRS if c == cell and bk != "cuda"]:
        with ln.num_threads(min(2, ln.threads.max_threads())):
            res = ln.forward(cell, x, w, h0, backend=backend)
        check(res, ref, np.float32, tol=tolerance(np.float32, "long").atol)


def test_runner_packs_once_and_matches_forward():
    x, w, h0 = inputs("minlstm", 20, 2, 4, 6, np.float32)
    run = REGISTRY["numba-parallel"].runner("minlstm", w)
    a = run(x, h0)
    b = ln.forward("minlstm", x, w, h0, backend="numba-parallel")
    np.testing.assert_array_equal(a[0], b.outputs)
    run = REGISTRY["numba"].runner("attention", ln.init_weights("attention", 4, 6))
    assert run(x)[0].shape == (20, 2, 6)


# ------------------------------------------------------------ scan seams

@pytest.mark.parametrize("cell", MIN_CELLS)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("chunks", [1, 2, 3, 7])
def test_scan_chunks_and_threads(cell, threads, chunks, dtype):
    # T = 50 is divisible by neither 3 nor 7: uneven chunks and fix-up pieces.
    x, w, h0 = inputs(cell, 50, 3, 5, 11, dtype, seed=chunks)
    p = prepare(cell, x, w, h0)
    with ln.num_threads(min(threads, ln.threads.max_threads())):
        out, h, c = _scan.scan(_scan.Packed(cell, p.weights), p.x, p.h0, chunks, threads)
    ref = oracle64(cell, x, w, h0)
    np.testing.assert_allclose(out, ref.outputs, rtol=0, atol=tolerance(dtype).atol)
    np.testing.assert_array_equal(h, out[-1])


def test_scan_fixup_past_an_underflowed_product():
    # Gates saturated so that a = 1 - z ~ 0: the products reach exactly zero
    # early in a chunk and the fix-up stops there; the result must not change.
    x, w, h0 = inputs("mingru", 400, 2, 3, 6, np.float32)
    w.b_ih[:6] = 30.0                       # z ~ 1
    w.b_ih[:3] = 0.0                        # ... but not for every unit
    p = prepare("mingru", x, w, h0)
    out, _, _ = _scan.scan(_scan.Packed("mingru", p.weights), p.x, p.h0, 4, 2)
    np.testing.assert_allclose(out, oracle64("mingru", x, w, h0).outputs, rtol=0,
                               atol=tolerance(np.float32).atol)


def test_plan_chunks():
    assert _scan.plan_chunks(10, 2) == 1           # too short to split
    assert _scan.plan_chunks(16_384, 2) == 2
    assert _scan.plan_chunks(16_384, 1) == 1


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cell=st.sampled_from(ln.PARALLEL_CELLS), t=st.integers(1, 80), b=st.integers(1, 4),
       i=st.integers(1, 9), h=st.integers(1, 40), chunks=st.integers(1, 6),
       f64=st.booleans(), seed=st.integers(0, 1000))
def test_shapes_hypothesis(cell, t, b, i, h, chunks, f64, seed):
    dtype = np.float64 if f64 else np.float32
    x, w, h0 = inputs(cell, t, b, i, h, dtype, seed)
    ref = oracle64(cell, x, w, h0)
    p = prepare(cell, x, w, h0)
    pk = _scan.Packed(cell, p.weights)
    if cell == "attention":
        out = _attention.attention(pk, p.x, 1 + chunks % 2)[0]
    else:
        out = _scan.scan(pk, p.x, p.h0, chunks)[0]
    np.testing.assert_allclose(out, ref.outputs, rtol=0, atol=tolerance(dtype).atol)


# ---------------------------------------------------------------- NaN

@pytest.mark.parametrize("cell,backend", [("mingru", "numpy")] + PAIRS,
                         ids=["mingru-numpy"] + [f"{c}-{b}" for c, b in PAIRS])
def test_nan_stays_in_its_sample_and_after_its_step(cell, backend):
    t_len, t0 = (12, 5) if backend == "cuda" else (300, 170)
    x, w, h0 = inputs(cell, t_len, 3, 4, 6, np.float32, seed=9)
    x[t0, 1, 2] = np.nan
    with ln.num_threads(min(2, ln.threads.max_threads())):
        res = ln.forward(cell, x, w, h0, backend=backend)
    clean = [0, 2]
    ref = oracle64(cell, x[:, clean], w, None if h0 is None else h0[clean])
    np.testing.assert_allclose(res.outputs[:, clean], ref.outputs, rtol=0,
                               atol=tolerance(np.float32).atol)
    assert np.all(np.isnan(res.outputs[t0:, 1]))
    if (cell, backend) != ("attention", "torch"):
        # Causal: nothing before the NaN's step sees it. (PyTorch's fused
        # kernel multiplies masked zero weights by v, so 0 * NaN reaches the
        # earlier steps of that sample: torch's behaviour, not checked.)
        assert np.all(np.isfinite(res.outputs[:t0, 1]))


# ------------------------------------------------------------- bad input

def _w(cell="mingru", **over):
    w = ln.init_weights(cell, 5, 7)
    return ln.Weights(*(over.get(n, getattr(w, n)) for n in ln.Weights._fields))


X = np.zeros((4, 3, 5), np.float32)
BAD = [
    ("w_hh given", dict(cell="mingru", weights=_w(w_hh=np.zeros((14, 7), np.float32))),
     ValueError, r"weights.w_hh must be None for a mingru"),
    ("b_hh given", dict(cell="minlstm", weights=_w("minlstm", b_hh=np.zeros(21, np.float32))),
     ValueError, r"weights.b_hh must be None for a minlstm"),
    ("lstm weights", dict(cell="mingru", weights=ln.init_weights("lstm", 5, 7)),
     ValueError, r"weights.w_hh must be None"),
    ("c0 given", dict(cell="mingru", c0=np.zeros((3, 7), np.float32)),
     ValueError, r"c0 was given, but a mingru has no cell state"),
    ("h0 for attention", dict(cell="attention", weights=_w("attention"),
                              h0=np.zeros((3, 7), np.float32)),
     ValueError, r"h0 was given.*h0 must be None for cell 'attention'"),
    ("w_ih rows", dict(cell="minlstm", weights=_w("minlstm", w_ih=np.zeros((20, 5), np.float32))),
     ValueError, r"weights.w_ih has shape \(20, 5\); expected \(3\*H, I\)"),
    ("b_ih length", dict(cell="mingru", weights=_w(b_ih=np.zeros(13, np.float32))),
     ValueError, r"weights.b_ih has shape \(13,\); expected \(2\*H,\) = \(14,\)"),
    ("b_ih dtype", dict(cell="mingru", weights=_w(b_ih=np.zeros(14, np.float64))),
     TypeError, r"weights.b_ih has dtype float64 but weights.w_ih has float32"),
    ("x input size", dict(cell="mingru", x=np.zeros((4, 3, 6), np.float32)),
     ValueError, r"x has shape \(4, 3, 6\) \(T, B, I\) with I=6"),
    ("x dtype", dict(cell="mingru", x=X.astype(np.float64)),
     TypeError, r"x has dtype float64 but the weights are float32"),
    ("x rank", dict(cell="attention", weights=_w("attention"), x=X[0]),
     ValueError, r"x must have shape \(T, B, I\)"),
    ("empty T", dict(cell="minlstm", weights=_w("minlstm"), x=X[:0]),
     ValueError, r"must be >= 1"),
    ("h0 shape", dict(cell="mingru", h0=np.zeros((3, 8), np.float32)),
     ValueError, r"h0 has shape \(3, 8\); expected \(B, H\) = \(3, 7\)"),
    ("h0 dtype", dict(cell="mingru", h0=np.zeros((3, 7), np.float64)),
     TypeError, r"h0 has dtype float64 but x is float32"),
    ("weights not Weights", dict(cell="mingru", weights={"w_ih": 1}),
     TypeError, r"weights must be lstm_numba.Weights\(w_ih, None, b_ih, None\)"),
]


@pytest.mark.parametrize("backend", ["numpy", "numba", "numba-parallel", "torch", "cuda"])
@pytest.mark.parametrize("label,kwargs,exc,words", BAD, ids=[c[0] for c in BAD])
def test_bad_input(backend, label, kwargs, exc, words):
    args = dict(x=X, weights=_w(), h0=None, c0=None)
    args.update(kwargs)
    with pytest.raises(exc, match=words):
        ln.forward(backend=backend, **args)


def test_non_contiguous_input_is_copied():
    x, w, h0 = inputs("minlstm", 9, 4, 5, 6, np.float32)
    xf = np.asfortranarray(x)
    res = ln.forward("minlstm", xf, w, h0, backend="numba")
    check(res, oracle64("minlstm", x, w, h0), np.float32)


def test_unsupported_backend_and_training_say_so():
    x, w, _ = inputs("attention", 3, 1, 5, 7, np.float32)
    with pytest.raises(ValueError, match="attention is not supported on backend cuda"):
        ln.forward("attention", x, w, backend="cuda")
    with pytest.raises(ValueError, match="attention is not supported on backend numpy-seed"):
        ln.forward("attention", x, w, backend="numpy-seed")
    with pytest.raises(ValueError, match="training not supported for cell 'mingru'"):
        ln.forward("mingru", x, ln.init_weights("mingru", 5, 7), train=True)
