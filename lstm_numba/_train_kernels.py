"""Numba kernels of the training backends (see :mod:`lstm_numba.cpu_train`).

Three kinds of kernel:

* the forward that keeps a tape (:func:`fwd_range`): the inference kernel's
  loop (:mod:`lstm_numba.cpu`: hoisted or fused input projection, the same
  micro-kernel, the same gate arithmetic, so the outputs are the same), with
  gate passes that also store what the backward needs;
* the recurrence of the backward (:func:`bwd_range`): per step a fused
  elementwise pass per batch row and one product ``dh_prev = dG_t @ W_hh``;
* the batched products after each block of steps (:func:`batched`):
  ``dW += dG^T [X | H_prev]`` by :func:`lstm_numba._gemm.gemm_acc` (gemm_rows'
  register tiles accumulating onto dW, on dG transposed and X / H_prev packed
  per block, compiled with SLP on), bias sums, and
  ``dX = dG @ W_ih`` by :func:`lstm_numba._gemm.gemm_rows`.

Gate rows hold G*H values padded to a whole number of panels (the
micro-kernel writes whole panels); the padding of every dG row is zero.
Kernels do no bounds checks: :mod:`lstm_numba.cpu_train` sizes every array.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._activations import FASTMATH_GATES, sigmoid, tanh
# _stack (a scratch row on the stack) is _gemm's own helper; gemm_acc is
# re-exported here because the backward's callers name it as one of its kernels.
from ._gemm import JIT, _stack, full_width, gemm_acc, gemm_rows, gemm_rows2  # noqa: F401
from .cpu import _lstm_units, _rnn_row, _rnn_row1

_KERNEL = dict(JIT, fastmath=FASTMATH_GATES)
_KERNEL_PAR = dict(_KERNEL, parallel=True)

#: Batch rows (per thread) from which the LSTM forward fuses both products
#: of a step (as lstm_numba.cpu.FUSE_MIN_ROWS, so the outputs match).
FUSE_MIN_ROWS = 8


# ------------------------------------------------------------------ packing

# ---------------------------------------------------- dW = dG^T @ B, batched
# dW (M, N) += dG^T (M, K) @ B (K, N), K = the block's rows. Read straight
# from their row-major arrays, 4 columns of dG sit 4 KiB apart from one k to
# the next (rows of 1024 floats): every load a new cache line and page, all
# in the same cache sets (measured 4x slower than sgemm). So each block's dG
# is transposed (dG^T rows contiguous in k, like the ``a`` of gemm_rows) and
# B packed into panels, and the product is gemm_rows' register tile,
# accumulating into dW.

@njit(**JIT)
def pack_rows(src, r0, k0, k1, wp):
    """wp[p, k, c] = src[r0 + k - k0, p*NC + c] for k in [k0, k1) (zero past N)."""
    full_width()
    n_len = src.shape[1]
    npan, _, nc = wp.shape
    for p in range(npan):
        nv = min(nc, n_len - p * nc)
        for k in range(k0, k1):
            for c in range(nv):
                wp[p, k, c] = src[r0 + k - k0, p * nc + c]
            for c in range(nv, nc):
                wp[p, k, c] = 0.0


@njit(**JIT)
def pack_plain(w, wp):
    """wp[p, k, c] = w[k, p*NC + c]: ``w (K, N)`` itself (not transposed) in panels.

    Zero past N and for k >= K (``wp`` may have more rows than ``w``: the
    padded gate width of the dG rows it multiplies).
    """
    k_len = w.shape[0]
    npan, kp, nc = wp.shape
    pack_rows(w, 0, 0, k_len, wp)
    for p in range(npan):
        for k in range(k_len, kp):
            for c in range(nc):
                wp[p, k, c] = 0.0


@njit(**JIT)
def transpose_cols(src, k_len, m0, m1, dst):
    """dst[m, k] = src[k, m] for m in [m0, m1), k < k_len, in 16 x 16 blocks."""
    full_width()
    for mb in range(m0, m1, 16):
        me = min(m1, mb + 16)
        for kb in range(0, k_len, 16):
            ke = min(k_len, kb + 16)
            for m in range(mb, me):
                for k in range(kb, ke):
                    dst[m, k] = src[k, m]


@njit(**_KERNEL)
def _colsum(a, r0, r1, out, j0, j1):
    full_width()
    for r in range(r0, r1):
        for j in range(j0, j1):
            out[j] += a[r, j]


# -------------------------------------------------------- forward gate rows
# lstm_numba.cpu's arithmetic (its _lstm_units; the RNN's rows themselves,
# whose outputs are their tape), plus the stores of the tape.

@njit(**_KERNEL)
def _lstm_fwd_row(g, hg, cprev, cnew, out, hid):
    """Hoisted path: g holds x W_ih^T + b, hg h W_hh^T; g becomes (i, f, g, o)."""
    full_width()
    h1 = np.uint64(hid)
    _lstm_units(g, hg, False, cprev, cnew, True, out, h1, np.uint64(0), h1)


@njit(**_KERNEL)
def _lstm_fwd_row1(g, cprev, cnew, out, hid):
    """Fused path: g holds both products and the biases already."""
    full_width()
    h1 = np.uint64(hid)
    _lstm_units(g, g, True, cprev, cnew, True, out, h1, np.uint64(0), h1)


@njit(inline="always", **_KERNEL)
def _gru_frame(like, hid):
    """What both GRU rows start with: 1, H and 2H (unsigned), the stack buffer
    of five w-wide slots (see :func:`_spill`) and w = 64; and the full vector
    width for the row function it is inlined into."""
    full_width()
    h1 = np.uint64(hid)
    return like.dtype.type(1.0), h1, h1 + h1, _stack(320, like), np.uint64(64)


@njit(inline="always", **_KERNEL)
def _spill(tmp, w, n, dst, at, slots):
    """dst[at[q] + jj] = tmp[slots[q]*w + jj] for jj < n: one array from the stack buffer.

    The GRU rows compute 64 units at a time into a stack buffer of w-wide
    slots (which aliases nothing) and then copy each output array from it
    in its own loop: stored straight from one loop, three or more arrays
    gave LLVM's runtime alias checks (one per pair) more than its limit and
    the loop ran scalar (11 ns per unit instead of ~1).
    """
    for jj in range(np.uint64(0), n):
        for q in range(len(at)):
            dst[at[q] + jj] = tmp[slots[q] * w + jj]


@njit(**_KERNEL)
def _gru_fwd_row(g, hg, b_hn, hprev, hn, out, hid):
    """g holds x W_ih^T + b (b_hr, b_hz folded in); g becomes (r, z, n), hn W_hn h + b_hn.

    Three arrays are written, so through a stack buffer (see :func:`_spill`).
    """
    one, h1, h2, tmp, w = _gru_frame(out, hid)
    for j0 in range(np.uint64(0), h1, w):
        n_j = min(w, h1 - j0)
        for jj in range(np.uint64(0), n_j):
            j = j0 + jj
            r = sigmoid(g[j] + hg[j])
            z = sigmoid(g[h1 + j] + hg[h1 + j])
            hh = hg[h2 + j] + b_hn[j]
            n = tanh(g[h2 + j] + r * hh)
            tmp[jj] = r
            tmp[w + jj] = z
            tmp[2 * w + jj] = n
            tmp[3 * w + jj] = hh
            tmp[4 * w + jj] = (one - z) * n + z * hprev[j]
        _spill(tmp, w, n_j, g, (j0, h1 + j0, h2 + j0), (0, 1, 2))
        _spill(tmp, w, n_j, hn, (j0,), (3,))
        _spill(tmp, w, n_j, out, (j0,), (4,))


# ------------------------------------------------------------ the forward

@njit(**_KERNEL)
def fwd_range(cell, x2, batch, wih, bx, whh, zb, b_hn, h0, c0, out2, G, HN, CS, CK, kck,
              pc, b0, b1, hp):
    """Forward of batch rows [b0, b1) over all steps of ``x2``, keeping the tape.

    cell 0 rnn (nothing stored: the outputs are its tape), 1 lstm, 2 gru.
    x2 (T*B, I), out2 (T*B, H). Gate rows of step t go to G (and HN, GRU)
    at row (t % tg)*B + b, tg = G rows / B: tg = T keeps every step, tg = pc
    (steps per projection chunk) only the current chunk.
    LSTM c_t goes to CS row ((t+1) % tcs)*B + b, tcs = T+1 (every step; row
    b holds c0) or 2 (the last two); when kck > 0, c_t is also copied to
    CK row ((t+1)/kck - 1)*B + b at the end of every kck-step segment.
    """
    nb = b1 - b0
    t_len = x2.shape[0] // batch
    tg = G.shape[0] // batch
    tcs = CS.shape[0] // batch
    npi = wih.shape[0]
    npan = whh.shape[0]
    hid = out2.shape[1]
    if cell == 1:
        for i in range(nb):
            for j in range(hid):
                CS[b0 + i, j] = c0[b0 + i, j]
    fused = cell != 2 and nb >= FUSE_MIN_ROWS
    # Constants passed to the micro-kernels as variables, not literals: a
    # literal argument would make Numba compile another version of them
    # (here, without SLP). See compile_gemm.
    zero = nb - nb
    fwd = nb < 0
    for t0 in range(0, t_len, pc):
        t1 = min(t_len, t0 + pc)
        if not fused:       # the input projection of the chunk, into the gate rows
            if nb == batch:
                gemm_rows(x2, t0 * batch, (t1 - t0) * batch, wih, bx, G,
                          (t0 % tg) * batch, zero, npi, fwd)
            else:
                for t in range(t0, t1):
                    gemm_rows(x2, t * batch + b0, nb, wih, bx, G, (t % tg) * batch + b0,
                              zero, npi, fwd)
        for t in range(t0, t1):
            if t == 0:
                hprev, rp0 = h0, b0
            else:
                hprev, rp0 = out2, (t - 1) * batch + b0
            grow = (t % tg) * batch + b0
            if fused:
                gemm_rows2(x2, t * batch + b0, wih, hprev, rp0, whh, nb, bx, G, grow, zero,
                           npan, t % 2 == 1)
            else:
                gemm_rows(hprev, rp0, nb, whh, zb, hp, zero, zero, npan, t % 2 == 1)
            for i in range(nb):
                o = t * batch + b0 + i
                if cell == 1:
                    cp = (t % tcs) * batch + b0 + i
                    cn = ((t + 1) % tcs) * batch + b0 + i
                    if fused:
                        _lstm_fwd_row1(G[grow + i], CS[cp], CS[cn], out2[o], hid)
                    else:
                        _lstm_fwd_row(G[grow + i], hp[i], CS[cp], CS[cn], out2[o], hid)
                    if kck > 0 and (t + 1) % kck == 0 and t + 1 < t_len:
                        ck = ((t + 1) // kck - 1) * batch + b0 + i
                        for j in range(hid):
                            CK[ck, j] = CS[cn, j]
                elif cell == 2:
                    _gru_fwd_row(G[grow + i], hp[i], b_hn, hprev[rp0 + i], HN[grow + i],
                                 out2[o], hid)
                elif fused:
                    _rnn_row1(G[grow + i], out2[o], hid)
                else:
                    _rnn_row(G[grow + i], hp[i], out2[o], hid, 0, hid)


@njit(**_KERNEL_PAR)
def fwd_split(cell, x2, batch, wih, bx, whh, zb, b_hn, h0, c0, out2, G, HN, CS, CK, kck,
              pc, bounds, hps):
    """:func:`fwd_range` for each chunk [bounds[q], bounds[q+1]) of batch rows, in parallel."""
    for q in prange(bounds.shape[0] - 1):
        fwd_range(cell, x2, batch, wih, bx, whh, zb, b_hn, h0, c0, out2, G, HN, CS, CK, kck,
                  pc, bounds[q], bounds[q + 1], hps[q])


# ------------------------------------------------------- backward gate rows

@njit(**_KERNEL)
def _lstm_bwd_row(a, ct, cp, hp, go, dc, dg, hid):
    """dG of one step of one row from the stored (i, f, g, o), c_t, c_{t-1}.

    dh = hp + go (what step t+1 sent back + grad_outputs[t]); dc is carried
    in place (dc_t in, dc_{t-1} out).
    """
    full_width()
    one = dg.dtype.type(1.0)
    h1 = np.uint64(hid)
    h2 = h1 + h1
    h3 = h2 + h1
    for j in range(np.uint64(0), h1):
        gi = a[j]
        gf = a[h1 + j]
        gg = a[h2 + j]
        go_ = a[h3 + j]
        tc = tanh(ct[j])
        dh = hp[j] + go[j]
        dct = dc[j] + dh * go_ * (one - tc * tc)
        dg[j] = dct * gg * gi * (one - gi)
        dg[h1 + j] = dct * cp[j] * gf * (one - gf)
        dg[h2 + j] = dct * gi * (one - gg * gg)
        dg[h3 + j] = dh * tc * go_ * (one - go_)
        dc[j] = dct * gf


@njit(**_KERNEL)
def _gru_bwd_row(a, hn, hprev, hp, go, carry, dgx, dgh, hid):
    """dG of one GRU step: dgx for the input side, dgh for the recurrent side.

    The recurrent side sees r * dn in place of dn (r scales W_hn h + b_hn);
    carry holds dh * z, the direct path to h_{t-1}, in and out. Through a
    stack buffer, 64 units at a time (three arrays written: see _gru_fwd_row).
    """
    one, h1, h2, tmp, w = _gru_frame(dgx, hid)
    for j0 in range(np.uint64(0), h1, w):
        n_j = min(w, h1 - j0)
        for jj in range(np.uint64(0), n_j):
            j = j0 + jj
            r = a[j]
            z = a[h1 + j]
            n = a[h2 + j]
            dh = hp[j] + go[j] + carry[j]
            dn = dh * (one - z) * (one - n * n)
            tmp[jj] = dn * hn[j] * r * (one - r)
            tmp[w + jj] = dh * (hprev[j] - n) * z * (one - z)
            tmp[2 * w + jj] = dn
            tmp[3 * w + jj] = dn * r
            tmp[4 * w + jj] = dh * z
        _spill(tmp, w, n_j, dgx, (j0, h1 + j0, h2 + j0), (0, 1, 2))
        _spill(tmp, w, n_j, dgh, (j0, h1 + j0, h2 + j0), (0, 1, 3))
        _spill(tmp, w, n_j, carry, (j0,), (4,))


@njit(**_KERNEL)
def _rnn_bwd_row(h, hp, go, dg, hid):
    full_width()
    one = dg.dtype.type(1.0)
    for j in range(np.uint64(0), np.uint64(hid)):
        dh = hp[j] + go[j]
        dg[j] = dh * (one - h[j] * h[j])


# ----------------------------------------------------------- the backward

@njit(**_KERNEL)
def bwd_range(cell, s0, s1, tbase, hbase, t_len, batch, G, HN, CS, hfirst, Hs, go2, whhq,
              zbh, dGx, dGh, hp, dc, carry, b0, b1):
    """Steps s1-1 .. s0 of the backward for batch rows [b0, b1).

    Tape rows of step t: G/HN/CS row (t - tbase)*B + b (CS: c_t, with c_{t-1}
    one block of B rows before); h_t at Hs row (t - hbase)*B + b, h_{s0-1}
    at hfirst row b. dG of step t to dGx/dGh row (t - s0)*B + b (dGh is dGx
    but for the GRU). hp (B, Hpad): dh from the step after, in; after step
    s0 it holds dG_{s0} @ W_hh. dc (LSTM), carry (GRU): carried per row.
    """
    nb = b1 - b0
    zero = nb - nb      # not a literal (see fwd_range)
    hid = Hs.shape[1]
    nph = whhq.shape[0]
    for t in range(s1 - 1, s0 - 1, -1):
        for i in range(nb):
            b = b0 + i
            gr = (t - tbase) * batch + b
            dr = (t - s0) * batch + b
            o = t * batch + b
            if cell == 1:
                _lstm_bwd_row(G[gr], CS[gr + batch], CS[gr], hp[b], go2[o], dc[b], dGx[dr],
                              hid)
            elif cell == 2:
                if t == s0:
                    hprev = hfirst[b]
                else:
                    hprev = Hs[(t - 1 - hbase) * batch + b]
                _gru_bwd_row(G[gr], HN[gr], hprev, hp[b], go2[o], carry[b], dGx[dr],
                             dGh[dr], hid)
            else:
                _rnn_bwd_row(Hs[(t - hbase) * batch + b], hp[b], go2[o], dGx[dr], hid)
        gemm_rows(dGh, (t - s0) * batch + b0, nb, whhq, zbh, hp, b0, zero, nph,
                  (t_len - 1 - t) % 2 == 1)


@njit(**_KERNEL_PAR)
def bwd_split(cell, s0, s1, tbase, hbase, t_len, batch, G, HN, CS, hfirst, Hs, go2, whhq,
              zbh, dGx, dGh, hp, dc, carry, bounds):
    """:func:`bwd_range` for each chunk of batch rows, in parallel (rows never meet)."""
    for q in prange(bounds.shape[0] - 1):
        bwd_range(cell, s0, s1, tbase, hbase, t_len, batch, G, HN, CS, hfirst, Hs, go2,
                  whhq, zbh, dGx, dGh, hp, dc, carry, bounds[q], bounds[q + 1])


@njit(**_KERNEL_PAR)
def batched(dGx, dGh, rows, x2, xr0, hfirst, n_first, Hs, hr0, wihq, zbi, dxp, dxr0,
            dwih, dwhh, dbx, dbh, same, xp, hpk, dGxT, dGhT, gbounds, rbounds):
    """The products of a block of ``rows`` dG rows that wait for no step.

    First the block's X rows (x2 from row xr0) and H_prev rows (the first
    ``n_first`` from hfirst, the rest from Hs at row hr0) are packed into
    panels xp, hpk (worker q: rows [rbounds[q], rbounds[q+1])). Then worker
    q: dG^T rows [16*gbounds[q], 16*gbounds[q+1]) (transposed into dGxT,
    dGhT), dW_ih += dGx^T X and dW_hh += dGh^T H_prev for those rows of dW,
    the bias sums of those columns, then dX rows [rbounds[q], rbounds[q+1])
    of the block = dGx @ W_ih, into dxp at row dxr0. No worker writes what
    another reads. ``same``: dGh is dGx (LSTM, RNN).
    """
    npi = wihq.shape[0]
    zero = npi - npi    # not a literal (see fwd_range)
    fwd = npi < 0
    nw = gbounds.shape[0] - 1
    for q in prange(nw):
        r0 = rbounds[q]
        r1 = rbounds[q + 1]
        pack_rows(x2, xr0 + r0, r0, r1, xp)
        if r0 < n_first:
            pack_rows(hfirst, r0, r0, min(r1, n_first), hpk)
        if r1 > n_first:
            k0 = max(r0, n_first)
            pack_rows(Hs, hr0 + k0 - n_first, k0, r1, hpk)
    for q in prange(nw):
        m0 = 16 * gbounds[q]
        m1 = 16 * gbounds[q + 1]
        transpose_cols(dGx, rows, m0, m1, dGxT)
        gemm_acc(dGxT, m0, m1, rows, xp, dwih)
        if same:
            gemm_acc(dGxT, m0, m1, rows, hpk, dwhh)
        else:
            transpose_cols(dGh, rows, m0, m1, dGhT)
            gemm_acc(dGhT, m0, m1, rows, hpk, dwhh)
            _colsum(dGh, 0, rows, dbh, m0, m1)
        _colsum(dGx, 0, rows, dbx, m0, m1)
        r0 = rbounds[q]
        r1 = rbounds[q + 1]
        if r1 > r0:
            gemm_rows(dGx, r0, r1 - r0, wihq, zbi, dxp, dxr0 + r0, zero, npi, fwd)
