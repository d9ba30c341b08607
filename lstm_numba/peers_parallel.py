"""PyTorch peers of the parallel cells (backend ``torch``): what a user would write.

* minGRU, minLSTM: the log-space scan of Feng et al. 2024 (Heinsen 2023):
  with ``A_t = cumsum(log a)_t``,
  ``h_t = exp(A_t) h_0 + sum_{s<=t} exp(A_t - A_s) b_s``, the sum as
  ``exp(A_t + logcumsumexp(log b_s - A_s))``. Two departures from the
  paper's code, both forced by the equations of issue 12: ``h~`` (and so
  ``b``) may be negative -- the paper keeps it positive with its ``g``
  activation -- so the sum is taken twice, over the positive and the
  negative parts of ``b``; and in float32 ``A_t`` grows like ``0.7 t``
  (|A| ~ 7,000 at T = 10,000, where one ulp is 5e-4), so the scan runs in
  chunks of :data:`CHUNK` steps with a carry between chunks (|A| < ~100
  inside a chunk), as :mod:`lstm_numba._scan` does.
* attention: ``torch.nn.functional.scaled_dot_product_attention(q, k, v,
  is_causal=True)`` (PyTorch's fused CPU flash-attention kernel).

The projections are one ``torch.addmm`` over all T*B rows. Runs under
``torch.inference_mode()`` at the thread count of :func:`lstm_numba.set_num_threads`.
"""
from __future__ import annotations

import numpy as np

from .peers import torch, unavailable  # noqa: F401  (the registry asks unavailable)

#: Steps per chunk of the log-space scan (see the module docstring).
CHUNK = 64


def _tensors(p):
    x = torch.from_numpy(p.x)
    w = torch.from_numpy(p.weights.w_ih)
    b = torch.from_numpy(p.weights.b_ih)
    return x, w, b


def _min_cell(cell, g, h0, hid):
    """The chunked log-space scan. g (T, B, G*H) projections; returns (T, B, H)."""
    F = torch.nn.functional
    t_len, batch, _ = g.shape
    if cell == "mingru":
        k, ht = g[..., :hid], g[..., hid:]
        log_a = -F.softplus(k)                 # log(1 - sigmoid(k))
        log_c = -F.softplus(-k)                # log z
    else:
        kf, ki, ht = g[..., :hid], g[..., hid:2 * hid], g[..., 2 * hid:]
        log_f, log_i = -F.softplus(-kf), -F.softplus(-ki)
        log_s = torch.logaddexp(log_f, log_i)
        log_a, log_c = log_f - log_s, log_i - log_s
    # b = c * h~ = b+ - b-, each a log-magnitude (-inf where the sign differs).
    log_abs = log_c + torch.log(ht.abs())
    neg_inf = torch.tensor(-float("inf"), dtype=g.dtype)
    log_bp = torch.where(ht > 0, log_abs, neg_inf)
    log_bn = torch.where(ht < 0, log_abs, neg_inf)
    n_chunks = -(-t_len // CHUNK)
    pad = n_chunks * CHUNK - t_len
    if pad:  # a = 1, b = 0 past the end
        def padded(v, fill):
            return torch.cat([v, v.new_full((pad, batch, hid), fill)])
        log_a, log_bp, log_bn = padded(log_a, 0.0), padded(log_bp, -float("inf")), \
            padded(log_bn, -float("inf"))
    shape = (n_chunks, CHUNK, batch, hid)
    big_a = torch.cumsum(log_a.reshape(shape), dim=1)          # A within each chunk
    local = (torch.exp(big_a + torch.logcumsumexp(log_bp.reshape(shape) - big_a, dim=1))
             - torch.exp(big_a + torch.logcumsumexp(log_bn.reshape(shape) - big_a, dim=1)))
    prod = torch.exp(big_a)                                     # P_t within each chunk
    starts = torch.empty((n_chunks, batch, hid), dtype=g.dtype)
    s = h0
    for q in range(n_chunks):                                   # the carry
        starts[q] = s
        s = local[q, -1] + prod[q, -1] * s
    out = local + prod * starts[:, None]
    return out.reshape(n_chunks * CHUNK, batch, hid)[:t_len]


def forward_torch(p):
    """Backend ``torch`` for a parallel cell: ``(outputs (T,B,H), h (B,H), None)``."""
    if torch is None:
        raise ImportError(unavailable("torch"))
    from .threads import get_num_threads

    torch.set_num_threads(get_num_threads())
    t_len, batch, n_in = p.x.shape
    hid = p.weights.hidden_size
    with torch.inference_mode():
        x, w, b = _tensors(p)
        g = torch.addmm(b, x.reshape(t_len * batch, n_in), w.t()).reshape(t_len, batch, -1)
        if p.spec.name == "attention":
            # (T, B, H) -> (B, 1 head, T, H); the default scale is 1/sqrt(H).
            q, k, v = (g[..., j * hid:(j + 1) * hid].permute(1, 0, 2).unsqueeze(1)
                       for j in range(3))
            o = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
            out = o.squeeze(1).permute(1, 0, 2)
        else:
            out = _min_cell(p.spec.name, g, torch.from_numpy(p.h0), hid)
        out = np.ascontiguousarray(out.numpy())
    return out, out[-1].copy(), None
