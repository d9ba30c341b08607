"""Causal single-head attention in Numba (backends ``numba``, ``numba-parallel``).

``out_t = sum_{s<=t} softmax_s(q_t . k_s / sqrt(H)) v_s`` computed as
FlashAttention does (Dao et al. 2022): tiles of :data:`BLOCK` queries x
:data:`BLOCK` keys, an online softmax (a running max ``m`` and sum ``l`` per
query; earlier partial sums rescaled by ``exp(m_old - m_new)`` when the max
grows), so memory is O(T*H): q, k, v and a few BLOCK-sized tiles, never a
T x T matrix. Both products of a tile (``S = Q K^T`` and ``P V``) run on the
register-blocked kernel of :mod:`lstm_numba._gemm` (K and V are packed into its
panel layout once per call); the softmax uses :func:`fexp`, a vectorizable
float32 exp (libm's exp is a scalar call here, no SVML).

``numba-parallel`` runs the projections by row ranges, then the query blocks
in parallel, pairing block k with block n-1-k so that every work item has
the same number of key tiles (causal: a late block sees more keys).
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from ._activations import by_dtype
from ._gemm import JIT, aligned_empty, compile_gemm, gemm_rows, panel_width

#: Queries and keys per tile (a multiple of both panel widths, 32 and 16).
BLOCK = 64

# The softmax loops may reorder their sums (reassoc: vector sums); NaN is kept.
_FM = {"contract", "nsz", "arcp", "afn", "reassoc"}
_KERNEL = dict(JIT, fastmath=_FM)
_KERNEL_PAR = dict(_KERNEL, parallel=True)


def unavailable(name: str) -> str | None:
    return None


# ------------------------------------------------------------------- exp

@intrinsic
def _bits_to_f32(typingctx, i):
    """Reinterpret an int32's bits as a float32 (vectorizes to a no-op)."""
    if i != types.int32:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


@njit(fastmath=_FM, error_model="numpy", inline="always", cache=True)
def exp_f32(v):
    """exp for float32 v <= 0 (Cephes' expf): max relative error ~2e-7 there.

    Range reduction ``v = n ln2 + r``, a degree-6 polynomial for ``exp(r)``,
    ``2^n`` built from its exponent bits. Below -87.3 it returns ~1e-38
    (not 0): a softmax weight that small changes no sum. NaN gives NaN.
    """
    x = v
    if x < np.float32(-87.3):
        x = np.float32(-87.3)
    fx = np.floor(x * np.float32(1.44269504088896341) + np.float32(0.5))
    x = x - fx * np.float32(0.693359375) - fx * np.float32(-2.12194440e-4)
    z = x * x
    y = np.float32(1.9875691500e-4) * x + np.float32(1.3981999507e-3)
    y = y * x + np.float32(8.3334519073e-3)
    y = y * x + np.float32(4.1665795894e-2)
    y = y * x + np.float32(1.6666665459e-1)
    y = y * x + np.float32(5.0000001201e-1)
    y = y * z + x + np.float32(1.0)
    n = np.int32(fx)
    return y * _bits_to_f32(np.int32((n + np.int32(127)) << np.int32(23)))


def fexp(v):  # pragma: no cover - replaced by the overload inside @njit
    """exp: :func:`exp_f32` for float32 (v <= 0), libm's for float64 (in @njit code)."""
    return np.exp(v)


by_dtype(fexp, exp_f32, np.exp)


# ---------------------------------------------------------------- kernels

@njit(**_KERNEL)
def _pack_qkv(qkv, batch, hid, scale, qb, kp, vp, t0, t1):
    """Steps [t0, t1) of the projections into the tile layouts.

    qb (B, T, H) = q / sqrt(H); kp (B, nk, H, NC) panels of K^T
    (``kp[b, p, k, c] = K[p*NC + c, k]``); vp (B, nkb, PH, BLOCK, NC) per key
    block the panels of V (``vp[b, kb, p, k, c] = V[kb*BLOCK + k, p*NC + c]``).
    Padding (keys past T, columns past H) is zeroed by the caller.
    """
    nc = kp.shape[3]
    nph = vp.shape[2]
    for t in range(t0, t1):
        p, c = t // nc, t % nc
        kb, kk = t // BLOCK, t % BLOCK
        for b in range(batch):
            r = t * batch + b
            for j in range(hid):
                qb[b, t, j] = qkv[r, j] * scale
                kp[b, p, j, c] = qkv[r, hid + j]
            for pv in range(nph):
                for cc in range(nc):
                    j = pv * nc + cc
                    if j < hid:
                        vp[b, kb, pv, kk, cc] = qkv[r, 2 * hid + j]


@njit(fastmath=_FM, error_model="numpy", inline="always", cache=True)
def _max2(m, v):
    """``v if v > m else m``: the running max ``m`` skips a NaN ``v``."""
    return v if v > m else m


@njit(**_KERNEL)
def _row_max(s, i, nv, m):
    """max(m, s[i, :nv]) with eight independent chains.

    LLVM will not vectorize a float max reduction without assuming no NaN,
    and one chain waits on each compare. A NaN score is skipped here, but
    it still spreads: its weight exp(NaN - max) is NaN.
    """
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = m
    n8 = nv - nv % 8
    for c in range(0, n8, 8):
        m0 = _max2(m0, s[i, c])
        m1 = _max2(m1, s[i, c + 1])
        m2 = _max2(m2, s[i, c + 2])
        m3 = _max2(m3, s[i, c + 3])
        m4 = _max2(m4, s[i, c + 4])
        m5 = _max2(m5, s[i, c + 5])
        m6 = _max2(m6, s[i, c + 6])
        m7 = _max2(m7, s[i, c + 7])
    for c in range(n8, nv):
        m0 = _max2(m0, s[i, c])
    # the chains pairwise, in a tree
    return _max2(_max2(_max2(m0, m1), _max2(m2, m3)), _max2(_max2(m4, m5), _max2(m6, m7)))


@njit(**_KERNEL)
def _pv_causal(pt, vpk, m, pv):
    """pv[i] = sum_{c <= i} pt[i, c] * V[c] on a diagonal tile (vpk: its V panels)."""
    nph, _, nc = vpk.shape
    for i in range(m):
        for p in range(nph):
            for cc in range(nc):
                pv[i, p * nc + cc] = 0.0
        for c in range(i + 1):
            wgt = pt[i, c]
            for p in range(nph):
                for cc in range(nc):
                    pv[i, p * nc + cc] += wgt * vpk[p, c, cc]


@njit(**_KERNEL)
def _query_block(qb, kp, vp, zb, b, q0, q1, out2, batch, hid, s, pt, pv, o, mrow, lrow, arow):
    """Outputs of queries [q0, q1) of sample b (q0 a multiple of BLOCK).

    s, pt (BLOCK, BLOCK) scores and weights; pv, o (BLOCK, PH*NC) the
    tile's P V and the running output; mrow, lrow, arow (BLOCK,) running max,
    sum and rescale factor. Key tiles 0 .. (q1-1)//BLOCK.
    """
    nc = kp.shape[3]
    nph = vp.shape[2]
    ppb = BLOCK // nc                      # panels of K^T per key tile
    m = q1 - q0
    neg_inf = -np.inf
    for i in range(m):
        mrow[i] = neg_inf
        lrow[i] = 0.0
        for j in range(o.shape[1]):
            o[i, j] = 0.0
    for kb in range((q1 - 1) // BLOCK + 1):
        k0 = kb * BLOCK
        gemm_rows(qb[b], q0, m, kp[b, kb * ppb:(kb + 1) * ppb], zb, s, 0, 0, ppb, False)
        for i in range(m):
            nv = min(BLOCK, q0 + i - k0 + 1)          # keys k0 .. t of this row
            mx = _row_max(s, i, nv, mrow[i])
            acc = s.dtype.type(0.0)
            for c in range(nv):
                e = fexp(s[i, c] - mx)
                pt[i, c] = e
                acc += e
            for c in range(nv, BLOCK):
                pt[i, c] = 0.0
            al = fexp(mrow[i] - mx)
            arow[i] = al
            lrow[i] = lrow[i] * al + acc
            mrow[i] = mx
        if k0 == q0:
            # The diagonal tile: row i may only touch keys <= q0 + i. A tile
            # product would add 0 * v_s for the later keys, and 0 * NaN is
            # NaN: a NaN entering at step s would reach the outputs before s.
            _pv_causal(pt, vp[b, kb], m, pv)
        else:
            gemm_rows(pt, 0, m, vp[b, kb], zb, pv, 0, 0, nph, False)
        for i in range(m):
            al = arow[i]
            for j in range(hid):
                o[i, j] = o[i, j] * al + pv[i, j]
    for i in range(m):
        inv = lrow.dtype.type(1.0) / lrow[i]
        r = (q0 + i) * batch + b
        for j in range(hid):
            out2[r, j] = o[i, j] * inv


@njit(**_KERNEL)
def _attend_items(qb, kp, vp, zb, items, k0, k1, out2, batch, hid):
    """Work items [k0, k1): item = (sample b, query block), run one after another."""
    nq = qb.shape[1]
    npad = vp.shape[2] * kp.shape[3]
    dt = qb.dtype
    s = np.empty((BLOCK, BLOCK), dtype=dt)
    pt = np.empty((BLOCK, BLOCK), dtype=dt)
    pv = np.empty((BLOCK, npad), dtype=dt)
    o = np.empty((BLOCK, npad), dtype=dt)
    mrow = np.empty(BLOCK, dtype=dt)
    lrow = np.empty(BLOCK, dtype=dt)
    arow = np.empty(BLOCK, dtype=dt)
    for it in range(k0, k1):
        b, qblk = items[it, 0], items[it, 1]
        q0 = qblk * BLOCK
        _query_block(qb, kp, vp, zb, b, q0, min(nq, q0 + BLOCK), out2, batch, hid,
                     s, pt, pv, o, mrow, lrow, arow)


@njit(**_KERNEL)
def _attention_serial(x2, wp, bias, qkv, batch, hid, scale, qb, kp, vp, zb, items, out2):
    t_len = qb.shape[1]
    gemm_rows(x2, 0, t_len * batch, wp, bias, qkv, 0, 0, wp.shape[0], False)
    _pack_qkv(qkv, batch, hid, scale, qb, kp, vp, 0, t_len)
    _attend_items(qb, kp, vp, zb, items, 0, items.shape[0], out2, batch, hid)


@njit(**_KERNEL_PAR)
def _attention_parallel(x2, wp, bias, qkv, batch, hid, scale, qb, kp, vp, zb, items,
                        out2, rows, steps, parts):
    """rows (N+1,): projection row bounds; steps (N+1,): packing step bounds;
    parts (N+1,): item bounds (items are ordered so that equal counts balance)."""
    t_len = qb.shape[1]
    n = rows.shape[0] - 1
    for k in prange(n):
        gemm_rows(x2, rows[k], rows[k + 1] - rows[k], wp, bias, qkv, rows[k], 0,
                  wp.shape[0], False)
    for k in prange(n):
        _pack_qkv(qkv, batch, hid, scale, qb, kp, vp, steps[k], min(t_len, steps[k + 1]))
    for k in prange(parts.shape[0] - 1):
        _attend_items(qb, kp, vp, zb, items, parts[k], parts[k + 1], out2, batch, hid)


# ---------------------------------------------------------------- wrapper

def _items(batch: int, nblk: int) -> np.ndarray:
    """(b, query block) work items, blocks paired k, n-1-k so neighbours balance."""
    order = []
    for k in range((nblk + 1) // 2):
        order.append(k)
        if nblk - 1 - k != k:
            order.append(nblk - 1 - k)
    return np.array([(b, q) for q in order for b in range(batch)], dtype=np.int64).reshape(-1, 2)


def _cuts(n: int, parts: int, unit: int = 1) -> np.ndarray:
    c = [min(n, int(round(k * n / parts / unit)) * unit) for k in range(parts)]
    return np.array(c + [n], dtype=np.int64)


def attention(pk, x, threads: int):
    """Attention on validated ``x (T,B,I)`` with packed weights ``pk`` (_scan.Packed).

    Returns ``(outputs (T,B,H), h (B,H), None)``; one thread runs in order.
    """
    t_len, batch, n_in = x.shape
    hid, dt = pk.hid, x.dtype
    nc = panel_width(dt)
    nblk = -(-t_len // BLOCK)
    nph = -(-hid // nc)
    qkv = np.empty((t_len * batch, pk.bias.shape[0]), dtype=dt)
    qb = np.empty((batch, t_len, hid), dtype=dt)
    kp = aligned_empty((batch, nblk * BLOCK // nc, hid, nc), dt, zero=True)
    vp = aligned_empty((batch, nblk, nph, BLOCK, nc), dt, zero=True)
    zb = np.zeros(max(nph * nc, BLOCK), dtype=dt)
    out = np.empty((t_len, batch, hid), dtype=dt)
    x2 = x.reshape(t_len * batch, n_in)
    out2 = out.reshape(t_len * batch, hid)
    scale = dt.type(1.0 / np.sqrt(hid))
    items = _items(batch, nblk)
    s = np.empty((BLOCK, BLOCK), dtype=dt)
    pv = np.empty((BLOCK, nph * nc), dtype=dt)
    compile_gemm(x2, 0, 1, pk.wp, pk.bias, qkv, 0, 0, 1, False)
    compile_gemm(qb[0], 0, 1, kp[0, :1], zb, s, 0, 0, 1, False)
    compile_gemm(s, 0, 1, vp[0, 0], zb, pv, 0, 0, 1, False)
    if threads <= 1:
        _attention_serial(x2, pk.wp, pk.bias, qkv, batch, hid, scale, qb, kp, vp, zb, items,
                          out2)
    else:
        rows = _cuts(t_len * batch, threads, 4)
        steps = _cuts(t_len, threads)
        # Items come in balanced pairs: cut at even counts.
        parts = _cuts(items.shape[0], threads, 2 * batch)
        _attention_parallel(x2, pk.wp, pk.bias, qkv, batch, hid, scale, qb, kp, vp, zb,
                            items, out2, rows, steps, parts)
    return out, out[-1].copy(), None
