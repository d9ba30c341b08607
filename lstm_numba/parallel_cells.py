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
from .validation import Prepared, check_input_only_weights, prepare_parallel

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
# The argument checks of these cells live in validation.py (with every other
# check), so that validation never imports this module, which imports the
# backend registry: lower layers do not reach upper ones (tests/test_layers.py).
check_weights = check_input_only_weights
prepare = prepare_parallel


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
