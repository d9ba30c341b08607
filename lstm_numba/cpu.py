"""Numba CPU kernels (backends ``numba`` and ``numba-parallel``).

Shape of every kernel (Appleyard et al. 2016, DeepBench): the input
projections of all T steps are one large product done up front, since they do
not depend on h; then, per step, one recurrent product ``h @ w_hh.T`` and one
fused pass over the gates. The whole time loop runs in compiled code and
writes into preallocated outputs.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .threads import blas_threads

_JIT = dict(cache=True, error_model="numpy", nogil=True)


def unavailable(name: str) -> str | None:
    return None


@njit(**_JIT)
def _sigmoid(v):
    return 0.5 + 0.5 * np.tanh(0.5 * v)


@njit(**_JIT)
def _lstm_steps(xp, w_hh_t, b_hh, h, c, out, hp):
    """xp (T,B,4H) holds x@w_ih.T + b_ih; h, c (B,H) updated in place."""
    t_len, b_len, _ = xp.shape
    hid = h.shape[1]
    for t in range(t_len):
        np.dot(h, w_hh_t, hp)
        for b in range(b_len):
            for j in range(hid):
                gi = _sigmoid(xp[t, b, j] + hp[b, j] + b_hh[j])
                gf = _sigmoid(xp[t, b, hid + j] + hp[b, hid + j] + b_hh[hid + j])
                gg = np.tanh(xp[t, b, 2 * hid + j] + hp[b, 2 * hid + j] + b_hh[2 * hid + j])
                go = _sigmoid(xp[t, b, 3 * hid + j] + hp[b, 3 * hid + j] + b_hh[3 * hid + j])
                cc = gf * c[b, j] + gi * gg
                c[b, j] = cc
                h[b, j] = go * np.tanh(cc)
        out[t] = h


@njit(**_JIT)
def _gru_steps(xp, w_hh_t, b_hh, h, out, hp):
    t_len, b_len, _ = xp.shape
    hid = h.shape[1]
    for t in range(t_len):
        np.dot(h, w_hh_t, hp)
        for b in range(b_len):
            for j in range(hid):
                r = _sigmoid(xp[t, b, j] + hp[b, j] + b_hh[j])
                z = _sigmoid(xp[t, b, hid + j] + hp[b, hid + j] + b_hh[hid + j])
                n = np.tanh(xp[t, b, 2 * hid + j] + r * (hp[b, 2 * hid + j] + b_hh[2 * hid + j]))
                h[b, j] = (1.0 - z) * n + z * h[b, j]
        out[t] = h


@njit(**_JIT)
def _rnn_steps(xp, w_hh_t, b_hh, h, out, hp):
    t_len, b_len, _ = xp.shape
    hid = h.shape[1]
    for t in range(t_len):
        np.dot(h, w_hh_t, hp)
        for b in range(b_len):
            for j in range(hid):
                h[b, j] = np.tanh(xp[t, b, j] + hp[b, j] + b_hh[j])
        out[t] = h


def _run(p):
    x, (w_ih, w_hh, b_ih, b_hh) = p.x, p.weights
    t_len, b_len, _ = x.shape
    hid = w_hh.shape[1]
    xp = (x.reshape(t_len * b_len, -1) @ w_ih.T + b_ih).reshape(t_len, b_len, -1)
    w_hh_t = np.ascontiguousarray(w_hh.T)
    h = p.h0.copy()
    out = np.empty((t_len, b_len, hid), dtype=x.dtype)
    hp = np.empty((b_len, w_hh.shape[0]), dtype=x.dtype)
    if p.spec.name == "lstm":
        c = p.c0.copy()
        _lstm_steps(xp, w_hh_t, b_hh, h, c, out, hp)
        return out, h, c
    kernel = _gru_steps if p.spec.name == "gru" else _rnn_steps
    kernel(xp, w_hh_t, b_hh, h, out, hp)
    return out, h, None


def forward_numba(p):
    """Backend ``numba``: ``(outputs (T,B,H), h (B,H), c (B,H) or None)``."""
    return _run(p)


def forward_numba_parallel(p):
    """Backend ``numba-parallel`` (placeholder: serial until tuned)."""
    with blas_threads(1):
        return _run(p)
