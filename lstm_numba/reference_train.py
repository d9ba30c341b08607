"""The NumPy training oracle (backend ``numpy``): BPTT written from the equations.

Readable rather than fast, computed in the data's dtype (float64: exact to
rounding); every other training backend is tested against it, and it is
tested against central finite differences and PyTorch autograd.

Forward, with ``a = x W_ih^T + b_ih + h W_hh^T + b_hh`` split into gate blocks
in PyTorch's order:

* RNN:  ``h = tanh(a)``
* LSTM: ``i, f, o = sigma(a_i, a_f, a_o)``, ``g = tanh(a_g)``,
  ``c = f c_prev + i g``, ``h = o tanh(c)``
* GRU:  ``r, z = sigma(a_r, a_z)``, ``hn = W_hn h_prev + b_hn``,
  ``n = tanh(W_in x + b_in + r hn)``, ``h = (1 - z) n + z h_prev``

Backward, one step, from ``dh`` (= grad_outputs[t] + what step t+1 sent back)
and, for the LSTM, ``dc``:

* RNN:  ``da = dh (1 - h^2)``
* LSTM: ``dc += dh o (1 - tanh(c)^2)``; ``da_i = dc g i (1-i)``,
  ``da_f = dc c_prev f (1-f)``, ``da_g = dc i (1 - g^2)``,
  ``da_o = dh tanh(c) o (1-o)``; ``dc_prev = dc f``
* GRU:  ``dn = dh (1-z)``, ``da_n = dn (1 - n^2)``, ``da_r = da_n hn r (1-r)``,
  ``da_z = dh (h_prev - n) z (1-z)``; the recurrent side sees ``r da_n`` in
  place of ``da_n`` (r scales ``W_hn h + b_hn``); ``dh_prev`` gets ``dh z``.

then ``dh_prev += da_h W_hh`` and ``dW_hh += da_h^T h_prev`` per step. What
does not depend on the recurrence is batched over all T steps after the loop:
``dW_ih = dA^T X``, ``dX = dA W_ih``, ``db_ih = sum dA``, ``db_hh = sum da_h``.

The tape keeps the least the backward needs, in the data's dtype: LSTM the
gate activations and c (h_prev is ``o tanh(c)`` of the step before); GRU r,
z, n, ``W_hn h + b_hn`` and h; RNN h. With ``checkpoint=k`` it keeps only the
state at the start of every k-step segment and recomputes each segment's
tape during the backward (O(T/k + k) states).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .reference import sigmoid
from .validation import Prepared


@dataclass(frozen=True, eq=False)
class OracleTape:
    """What the forward keeps. ``saved``: per-step arrays (full tape) or None;
    ``states``: (h, c) at each segment start (checkpointed) or None.

    ``x``, ``h0``, ``c0`` and ``weights`` are the caller's (not counted in
    :attr:`nbytes`); everything else was allocated by the forward.
    """

    cell: str
    x: np.ndarray
    weights: object
    h0: np.ndarray
    c0: np.ndarray | None
    checkpoint: int | None
    saved: dict | None
    states: tuple | None

    @property
    def nbytes(self) -> int:
        arrays = list(self.saved.values()) if self.saved else []
        arrays += [a for a in (self.states or ()) if a is not None]
        return int(sum(a.nbytes for a in arrays))


def _segment(cell, xp, h, c, w_hh, b_hh, keep):
    """Run the recurrence over ``xp`` (k, B, G*H): input projections with b_ih.

    Returns ``(out (k,B,H), h, c, saved)``; ``saved`` (if ``keep``) holds the
    step tape: LSTM ``act`` (k,B,4H) and ``c`` (k,B,H); GRU ``act`` (k,B,3H)
    = r, z, n, ``hn`` (k,B,H) and ``h`` (the outputs); RNN ``h``.
    """
    k, b, gh = xp.shape
    hid = w_hh.shape[1]
    out = np.empty((k, b, hid), dtype=xp.dtype)
    saved = {}
    if keep and cell == "lstm":
        saved = {"act": np.empty((k, b, gh), xp.dtype), "c": np.empty((k, b, hid), xp.dtype)}
    elif keep and cell == "gru":
        saved = {"act": np.empty((k, b, gh), xp.dtype), "hn": np.empty((k, b, hid), xp.dtype)}
    for t in range(k):
        hp = h @ w_hh.T + b_hh
        if cell == "rnn":
            h = np.tanh(xp[t] + hp)
        elif cell == "lstm":
            a = xp[t] + hp
            i, f = sigmoid(a[:, :hid]), sigmoid(a[:, hid:2 * hid])
            g, o = np.tanh(a[:, 2 * hid:3 * hid]), sigmoid(a[:, 3 * hid:])
            c = f * c + i * g
            h = o * np.tanh(c)
            if keep:
                saved["act"][t] = np.concatenate([i, f, g, o], axis=1)
                saved["c"][t] = c
        else:
            r = sigmoid(xp[t, :, :hid] + hp[:, :hid])
            z = sigmoid(xp[t, :, hid:2 * hid] + hp[:, hid:2 * hid])
            hn = hp[:, 2 * hid:]
            n = np.tanh(xp[t, :, 2 * hid:] + r * hn)
            h = (1 - z) * n + z * h
            if keep:
                saved["act"][t] = np.concatenate([r, z, n], axis=1)
                saved["hn"][t] = hn
        out[t] = h
    if keep and cell != "lstm":
        saved["h"] = out
    return out, h, c, saved


def forward_train(p: Prepared, checkpoint: int | None, name: str = "numpy"):
    """Training forward: ``(outputs (T,B,H), h (B,H), c (B,H) or None, OracleTape)``."""
    cell = p.spec.name
    x, (w_ih, w_hh, b_ih, b_hh) = p.x, p.weights
    t_len, b, i_size = x.shape
    xp = (x.reshape(t_len * b, i_size) @ w_ih.T + b_ih).reshape(t_len, b, -1)
    c0 = p.c0
    if checkpoint is None:
        out, h, c, saved = _segment(cell, xp, p.h0, c0, w_hh, b_hh, keep=True)
        states = None
    else:
        n_seg = -(-t_len // checkpoint)
        hs = np.empty((n_seg,) + p.h0.shape, x.dtype)
        cs = np.empty_like(hs) if c0 is not None else None
        out = np.empty((t_len, b, w_hh.shape[1]), x.dtype)
        h, c = p.h0, c0
        for s in range(n_seg):
            t0, t1 = s * checkpoint, min(t_len, (s + 1) * checkpoint)
            hs[s] = h
            if cs is not None:
                cs[s] = c
            out[t0:t1], h, c, _ = _segment(cell, xp[t0:t1], h, c, w_hh, b_hh, keep=False)
        saved, states = None, (hs, cs)
    tape = OracleTape(cell, x, p.weights, p.h0, c0, checkpoint, saved, states)
    h_last = out[-1].copy()
    return out, h_last, (None if c is None else np.array(c)), tape


def _backward_segment(tape, saved, t0, h_in, c_in, go, dh, dc, da_x, da_h, dw_hh):
    """BPTT over one segment's steps (reversed), starting at global step ``t0``.

    ``saved``: the segment's step tape; ``h_in``/``c_in``: the state before
    its first step. Writes ``da_x``/``da_h`` (dL/d pre-activations, input and
    recurrent side) for its steps, accumulates ``dw_hh``; returns ``dh, dc``
    flowing into the step before the segment.
    """
    cell = tape.cell
    w_hh = tape.weights.w_hh
    hid = w_hh.shape[1]
    k = saved["act"].shape[0] if "act" in saved else saved["h"].shape[0]

    def h_prev(t):                     # t: index within the segment
        if t == 0:
            return h_in
        if cell == "lstm":
            return saved["act"][t - 1, :, 3 * hid:] * np.tanh(saved["c"][t - 1])
        return saved["h"][t - 1]

    for t in range(k - 1, -1, -1):
        dh = dh + go[t0 + t]
        hp = h_prev(t)
        if cell == "rnn":
            h = saved["h"][t]
            da = dh * (1 - h * h)
            da_x[t0 + t] = da_h[t0 + t] = da
            dh_prev = da @ w_hh
        elif cell == "lstm":
            act, c = saved["act"][t], saved["c"][t]
            i, f = act[:, :hid], act[:, hid:2 * hid]
            g, o = act[:, 2 * hid:3 * hid], act[:, 3 * hid:]
            c_prev = c_in if t == 0 else saved["c"][t - 1]
            tc = np.tanh(c)
            dc = dc + dh * o * (1 - tc * tc)
            da = np.concatenate([dc * g * i * (1 - i), dc * c_prev * f * (1 - f),
                                 dc * i * (1 - g * g), dh * tc * o * (1 - o)], axis=1)
            da_x[t0 + t] = da_h[t0 + t] = da
            dc = dc * f
            dh_prev = da @ w_hh
        else:
            act, hn = saved["act"][t], saved["hn"][t]
            r, z, n = act[:, :hid], act[:, hid:2 * hid], act[:, 2 * hid:]
            da_n = dh * (1 - z) * (1 - n * n)
            da_r = da_n * hn * r * (1 - r)
            da_z = dh * (hp - n) * z * (1 - z)
            da_x[t0 + t] = np.concatenate([da_r, da_z, da_n], axis=1)
            da_h[t0 + t] = np.concatenate([da_r, da_z, r * da_n], axis=1)
            dh_prev = dh * z + da_h[t0 + t] @ w_hh
        dw_hh += da_h[t0 + t].T @ hp
        dh = dh_prev
    return dh, dc


def backward_train(tape: OracleTape, grad_outputs, grad_h, grad_c):
    """BPTT: ``(dx, dh0, dc0 or None, dw_ih, dw_hh, db_ih, db_hh)`` in the data's dtype."""
    x, (w_ih, w_hh, b_ih, b_hh) = tape.x, tape.weights
    t_len, b, i_size = x.shape
    gh = w_hh.shape[0]
    da_x = np.empty((t_len, b, gh), x.dtype)
    da_h = np.empty_like(da_x)
    dw_hh = np.zeros_like(w_hh)
    dh = grad_h.copy()
    dc = None if grad_c is None else grad_c.copy()
    k = tape.checkpoint
    if k is None:
        dh, dc = _backward_segment(tape, tape.saved, 0, tape.h0, tape.c0, grad_outputs,
                                   dh, dc, da_x, da_h, dw_hh)
    else:
        hs, cs = tape.states
        # The segment's input projections and step tape are recomputed from
        # its first state, then dropped: O(k) memory at a time.
        for s in range(hs.shape[0] - 1, -1, -1):
            t0, t1 = s * k, min(t_len, (s + 1) * k)
            xp = (x[t0:t1].reshape(-1, i_size) @ w_ih.T + b_ih).reshape(t1 - t0, b, gh)
            c_in = None if cs is None else cs[s]
            _, _, _, saved = _segment(tape.cell, xp, hs[s], c_in, w_hh, b_hh, keep=True)
            dh, dc = _backward_segment(tape, saved, t0, hs[s], c_in, grad_outputs,
                                       dh, dc, da_x, da_h, dw_hh)
    # What does not depend on the recurrence: one product over all T*B rows.
    dx_rows = da_x.reshape(t_len * b, gh)
    dx = (dx_rows @ w_ih).reshape(t_len, b, i_size)
    dw_ih = dx_rows.T @ x.reshape(t_len * b, i_size)
    db_ih = dx_rows.sum(axis=0)
    db_hh = da_h.reshape(t_len * b, gh).sum(axis=0)
    return dx, dh, dc, dw_ih, dw_hh, db_ih, db_hh
