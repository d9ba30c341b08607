"""Plain NumPy forward passes: the batched oracle and the notes' per-sample LSTM.

``numpy`` (:func:`forward_numpy`) is the oracle every other backend is tested
against: the textbook equations in PyTorch's gate order, batched, computed in
the input dtype (exact to rounding in float64). It imports no Numba.

``numpy-seed`` (:func:`forward_seed`) is the from-scratch algorithm of the
notes the project grew from, generalised to the three cells: one sample at a
time, column vectors, one matrix per gate applied to the concatenation
``[h_prev; x_t]``. It is the "before" of every speedup figure.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .validation import Prepared, check_weights, prepare


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function written through tanh: no overflow warning for large |z|."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def forward_numpy(p: Prepared):
    """Batched oracle. Returns ``(outputs (T,B,H), h (B,H), c (B,H) or None)``."""
    x, (w_ih, w_hh, b_ih, b_hh), h, c = p.x, p.weights, p.h0.copy(), p.c0
    t_len, b, _ = x.shape
    hid = w_hh.shape[1]
    dt = x.dtype
    # Input projections of every step at once: they do not depend on h.
    xp = (x.reshape(t_len * b, -1) @ w_ih.T + b_ih).reshape(t_len, b, -1)
    out = np.empty((t_len, b, hid), dtype=dt)
    if c is not None:
        c = c.copy()
    for t in range(t_len):
        hp = h @ w_hh.T + b_hh
        gx = xp[t]
        if p.spec.name == "rnn":
            h = np.tanh(gx + hp)
        elif p.spec.name == "lstm":
            g = gx + hp
            i = sigmoid(g[:, 0 * hid:1 * hid])
            f = sigmoid(g[:, 1 * hid:2 * hid])
            gg = np.tanh(g[:, 2 * hid:3 * hid])
            o = sigmoid(g[:, 3 * hid:4 * hid])
            c = f * c + i * gg
            h = o * np.tanh(c)
        else:  # gru: the reset gate scales the recurrent part of n only
            r = sigmoid(gx[:, :hid] + hp[:, :hid])
            z = sigmoid(gx[:, hid:2 * hid] + hp[:, hid:2 * hid])
            n = np.tanh(gx[:, 2 * hid:] + r * hp[:, 2 * hid:])
            h = (1 - z) * n + z * h
        out[t] = h
    return out, out[-1].copy(), c


class OracleResult(NamedTuple):
    """What :func:`oracle64` returns (the fields of ``lstm_numba.ForwardResult``)."""

    outputs: np.ndarray     # (T, B, H)
    h: np.ndarray           # (B, H)
    c: np.ndarray | None    # (B, H) for the LSTM, else None


def oracle64(cell, x, weights, h0=None, c0=None) -> OracleResult:
    """The ``numpy`` oracle in float64 on upcast copies of the inputs.

    What every backend is compared with, whatever its dtype: float32 results
    are judged against the exact (to float64 rounding) answer, not against
    another float32 computation. Validates like :func:`lstm_numba.forward`
    (calls :func:`~lstm_numba.validation.prepare` and :func:`forward_numpy`
    directly: the oracle sits below the public API, never above it).

    Returns
    -------
    OracleResult
        ``outputs (T, B, H)``, ``h (B, H)``, ``c (B, H)`` or None, all float64.
    """
    up = (lambda a: None if a is None else np.asarray(a, dtype=np.float64))  # noqa: E731
    w = check_weights(cell, weights).astype(np.float64)
    return OracleResult(*forward_numpy(prepare(cell, up(x), w, up(h0), up(c0))))


def _seed_params(p: Prepared):
    """Split PyTorch-layout weights into the notes' one-matrix-per-gate form.

    Each gate k gets ``W_k = [W_hh_k | W_ih_k]`` of shape (H, H+I), applied to
    the column ``[h_prev; x_t]``, and a column bias ``b_k`` (H, 1). The GRU's
    candidate n cannot be written that way (r multiplies only its recurrent
    part), so it keeps its two halves and two biases apart.
    """
    w_ih, w_hh, b_ih, b_hh = p.weights
    hid = w_hh.shape[1]
    gates = {}
    for k, name in enumerate(p.spec.gates):
        rows = slice(k * hid, (k + 1) * hid)
        if p.spec.name == "gru" and name == "n":
            gates["n_x"] = (w_ih[rows].copy(), b_ih[rows][:, None].copy())
            gates["n_h"] = (w_hh[rows].copy(), b_hh[rows][:, None].copy())
        else:
            gates[name] = (np.hstack([w_hh[rows], w_ih[rows]]),
                           (b_ih[rows] + b_hh[rows])[:, None])
    return gates


def forward_seed(p: Prepared):
    """The notes' algorithm: per sample, per step, column vectors.

    Returns ``(outputs (T,B,H), h (B,H), c (B,H) or None)``.
    """
    x = p.x
    t_len, b, _ = x.shape
    hid = p.weights.hidden_size
    gates = _seed_params(p)
    out = np.empty((t_len, b, hid), dtype=x.dtype)
    c_last = None if p.c0 is None else np.empty_like(p.c0)
    for s in range(b):
        h = p.h0[s][:, None].copy()
        c = None if p.c0 is None else p.c0[s][:, None].copy()
        for t in range(t_len):
            xt = x[t, s][:, None]
            z = np.vstack([h, xt])              # the notes' concatenation
            if p.spec.name == "rnn":
                w, bias = gates["h"]
                h = np.tanh(w @ z + bias)
            elif p.spec.name == "lstm":
                i = sigmoid(gates["i"][0] @ z + gates["i"][1])
                f = sigmoid(gates["f"][0] @ z + gates["f"][1])
                g = np.tanh(gates["g"][0] @ z + gates["g"][1])
                o = sigmoid(gates["o"][0] @ z + gates["o"][1])
                c = f * c + i * g
                h = o * np.tanh(c)
            else:
                r = sigmoid(gates["r"][0] @ z + gates["r"][1])
                u = sigmoid(gates["z"][0] @ z + gates["z"][1])
                n = np.tanh(gates["n_x"][0] @ xt + gates["n_x"][1]
                            + r * (gates["n_h"][0] @ h + gates["n_h"][1]))
                h = (1 - u) * n + u * h
            out[t, s] = h[:, 0]
        if c is not None:
            c_last[s] = c[:, 0]
    return out, out[-1].copy(), c_last
