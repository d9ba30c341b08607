"""Cells parallel in time: minGRU, minLSTM (Feng et al. 2024) and causal attention.

Their gates read x only, never h, so nothing but a cheap elementwise
recurrence is sequential:

* minGRU (rows of ``w_ih``: z, h~): ``z_t = sigmoid(W_z x_t + b_z)``,
  ``h~_t = W_h x_t + b_h``, ``h_t = (1 - z_t) * h_{t-1} + z_t * h~_t``.
* minLSTM (rows: f, i, h~): ``f_t, i_t = sigmoid(...)``,
  ``h_t = f_t/(f_t+i_t) * h_{t-1} + i_t/(f_t+i_t) * h~_t``.
* attention (rows: q, k, v), causal, single head:
  ``out_t = sum_{s<=t} softmax_s(q_t . k_s / sqrt(H)) v_s``; ``h = out_T``.

Both min cells are the linear recurrence ``h_t = a_t * h_{t-1} + b_t``, so a
scan can split T over threads (see :mod:`lstm_numba._scan`). This module
holds the checks of their arguments, which backend runs which cell
(:data:`SUPPORT`, the one table), the dispatch, and the ``numpy`` float64
oracle, written from the equations above and sequential in t.
"""
from __future__ import annotations

import importlib

import numpy as np

from .backends import BackendUnavailable, get as get_backend
from .cells import PARALLEL_CELLS, input_only_weights, spec
from .validation import Prepared, _array, _contiguous, _expect_shape

_MIN = ("mingru", "minlstm")

#: Which backend runs which parallel cell, and where: ``name -> (module,
#: function, cells)``. The function takes a validated ``Prepared`` and returns
#: ``(outputs (T,B,H), h (B,H), None)``. Registry names keep their meaning:
#: ``numba`` is the sequential kernel, ``numba-parallel`` the threaded one.
SUPPORT: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "numpy": (".parallel_cells", "forward_numpy", PARALLEL_CELLS),
    "numba": ("._scan", "forward_numba", PARALLEL_CELLS),
    "numba-parallel": ("._scan", "forward_numba_parallel", PARALLEL_CELLS),
    "cuda": ("._cuda_scan", "forward_cuda", _MIN),
    "torch": (".peers_parallel", "forward_torch", PARALLEL_CELLS),
}


def supports(backend: str, cell: str) -> bool:
    """True when ``backend`` has a kernel for parallel cell ``cell``."""
    return backend in SUPPORT and cell in SUPPORT[backend][2]


def backends_for(cell: str) -> list[str]:
    """Backends (registry order) with a kernel for ``cell``, usable here."""
    from .backends import REGISTRY

    return [n for n, b in REGISTRY.items() if supports(n, cell) and b.unavailable() is None]


def load(backend: str, cell: str):
    """The forward function of ``backend`` for ``cell``.

    ValueError when the backend has no kernel for the cell;
    BackendUnavailable (with the reason) when it cannot run here.
    """
    entry = get_backend(backend)
    if not supports(backend, cell):
        raise ValueError(f"{cell} is not supported on backend {backend}; backends with "
                         f"a {cell} kernel: {[n for n in SUPPORT if supports(n, cell)]}")
    reason = entry.unavailable()
    if reason:
        raise BackendUnavailable(f"backend {backend!r} is unavailable: {reason}")
    module, function, _ = SUPPORT[backend]
    return getattr(importlib.import_module(module, __package__), function)


def reject_training(cell: str) -> None:
    """ValueError: the parallel cells have no training path (issue 12 is inference)."""
    raise ValueError(f"training not supported for cell {cell!r} (train=True works for "
                     "rnn, lstm, gru; the parallel cells are forward only)")


# ------------------------------------------------------------------ checks

def check_weights(cell: str, weights):
    """Check ``Weights(w_ih (G*H, I), None, b_ih (G*H,), None)`` of a parallel cell."""
    s = spec(cell)
    g = s.n_gates
    if not isinstance(weights, tuple) or len(weights) != 4:
        raise TypeError("weights must be lstm_numba.Weights(w_ih, None, b_ih, None); "
                        f"got {type(weights).__name__}")
    w_ih, w_hh, b_ih, b_hh = weights
    for name, a in (("w_hh", w_hh), ("b_hh", b_hh)):
        if a is not None:
            raise ValueError(f"weights.{name} must be None for a {cell} (it has no "
                             f"recurrent weights); got {type(a).__name__} of shape "
                             f"{getattr(a, 'shape', '?')}")
    _array("weights.w_ih", w_ih, 2, f"({g}*H, I)")
    rows, n_in = w_ih.shape
    if rows < g or rows % g or n_in < 1:
        raise ValueError(f"weights.w_ih has shape {w_ih.shape}; expected ({g}*H, I) "
                         f"with H, I >= 1 for a {cell} (gates {s.gates})")
    _array("weights.b_ih", b_ih, 1, f"({g}*H,)")
    _expect_shape("weights.b_ih", b_ih, (rows,), f"({g}*H,)")
    if b_ih.dtype != w_ih.dtype:
        raise TypeError(f"weights.b_ih has dtype {b_ih.dtype} but weights.w_ih has "
                        f"{w_ih.dtype}: all weights must share one dtype")
    return input_only_weights(g, _contiguous(w_ih), None, _contiguous(b_ih), None)


def prepare(cell: str, x, weights, h0=None, c0=None) -> Prepared:
    """:func:`lstm_numba.validation.prepare` for a parallel cell.

    ``h0`` defaults to zeros for the min cells and must be None for
    attention; ``c0`` must be None (no cell state). ``Prepared.h0`` is None
    for attention.
    """
    s = spec(cell)
    w = check_weights(cell, weights)
    x = _array("x", x, 3, "(T, B, I)")
    t, b, i = x.shape
    if t == 0 or b == 0:
        raise ValueError(f"x has shape {x.shape}: sequence length T and batch B "
                         "must be >= 1 (an empty sequence or batch has no output)")
    h = w.hidden_size
    if i != w.input_size:
        raise ValueError(f"x has shape {x.shape} (T, B, I) with I={i}, but weights.w_ih "
                         f"has shape {w.w_ih.shape} (G*H, I) with I={w.input_size}")
    if x.dtype != w.dtype:
        raise TypeError(f"x has dtype {x.dtype} but the weights are {w.dtype}: "
                        "convert one (e.g. weights.astype(x.dtype))")
    if c0 is not None:
        raise ValueError(f"c0 was given, but a {cell} has no cell state (only the lstm does)")
    if cell == "attention":
        if h0 is not None:
            raise ValueError("h0 was given, but attention has no initial state: "
                             "h0 must be None for cell 'attention'")
        return Prepared(s, _contiguous(x), w, None, None)
    if h0 is None:
        h0 = np.zeros((b, h), dtype=x.dtype)
    else:
        h0 = _array("h0", h0, 2, "(B, H)")
        _expect_shape("h0", h0, (b, h), "(B, H)")
        if h0.dtype != x.dtype:
            raise TypeError(f"h0 has dtype {h0.dtype} but x is {x.dtype}")
    return Prepared(s, _contiguous(x), w, _contiguous(h0), None)


def forward(cell, x, weights, h0=None, c0=None, backend="numba"):
    """:func:`lstm_numba.forward` for a parallel cell: ``(outputs, h, None)``."""
    get_backend(backend)                     # unknown name: ValueError first
    p = prepare(cell, x, weights, h0, c0)
    return load(backend, cell)(p)


def runner(backend: str, cell: str, weights):
    """``run(x, h0=None, c0=None) -> (outputs, h, None)`` for repeated calls.

    Weights are checked (and for the Numba backends packed) once.
    """
    fn = load(backend, cell)
    w = check_weights(cell, weights)
    module = importlib.import_module(SUPPORT[backend][0], __package__)
    make = getattr(module, "make_runner", None)
    inner = make(backend, cell, w) if make is not None else None

    def run(x, h0=None, c0=None):
        p = prepare(cell, x, w, h0, c0)
        return inner(p) if inner is not None else fn(p)
    run.backend = backend
    return run


# ------------------------------------------------------------ numpy oracle

def _sigmoid(v):
    return 0.5 * (1.0 + np.tanh(0.5 * v))


def scan_coefficients(cell: str, g: np.ndarray, hid: int):
    """``(a, b)`` of ``h_t = a * h_{t-1} + b`` from the projections ``g (..., G*H)``."""
    if cell == "mingru":
        z = _sigmoid(g[..., :hid])
        return 1.0 - z, z * g[..., hid:]
    f = _sigmoid(g[..., :hid])
    i = _sigmoid(g[..., hid:2 * hid])
    s = f + i
    return f / s, (i / s) * g[..., 2 * hid:]


def _rows_per_block(t_len: int, per_row: int) -> int:
    # Blocks of time steps so that no temporary exceeds ~16 M elements.
    return max(1, min(t_len, (1 << 24) // max(1, per_row)))


def forward_numpy(p: Prepared):
    """Backend ``numpy``: the oracle, sequential in t, in the input dtype.

    Returns ``(outputs (T,B,H), h (B,H), None)``.
    """
    x, w = p.x, p.weights
    t_len, b, _ = x.shape
    hid = w.hidden_size
    out = np.empty((t_len, b, hid), dtype=x.dtype)
    if p.spec.name == "attention":
        _attention_numpy(x, w, out)
        return out, out[-1].copy(), None
    h = p.h0.copy()
    step = _rows_per_block(t_len, b * w.w_ih.shape[0])
    for t0 in range(0, t_len, step):       # projections of a block of steps at once
        t1 = min(t_len, t0 + step)
        g = x[t0:t1] @ w.w_ih.T + w.b_ih
        a, bb = scan_coefficients(p.spec.name, g, hid)
        for t in range(t1 - t0):
            h = a[t] * h + bb[t]
            out[t0 + t] = h
    return out, out[-1].copy(), None


def _attention_numpy(x, w, out):
    """Causal softmax attention, a block of queries at a time (exact softmax)."""
    t_len, b, _ = x.shape
    hid = out.shape[2]
    qkv = x @ w.w_ih.T + w.b_ih                      # (T, B, 3H)
    q = qkv[..., :hid] * (1.0 / np.sqrt(hid))
    k, v = qkv[..., hid:2 * hid], qkv[..., 2 * hid:]
    blk = _rows_per_block(t_len, t_len)
    for b_ in range(b):
        qb, kb, vb = (np.ascontiguousarray(a[:, b_]) for a in (q, k, v))
        for t0 in range(0, t_len, blk):
            t1 = min(t_len, t0 + blk)
            s = qb[t0:t1] @ kb[:t1].T                              # (blk, t1)
            s[np.arange(t1)[None, :] > np.arange(t0, t1)[:, None]] = -np.inf
            s = np.exp(s - s.max(axis=1, keepdims=True))
            s /= s.sum(axis=1, keepdims=True)
            out[t0:t1, b_] = s @ vb[:t1]
