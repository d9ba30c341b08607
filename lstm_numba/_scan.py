"""Numba CPU kernels for minGRU and minLSTM (backends ``numba``, ``numba-parallel``).

Both cells are the linear recurrence ``h_t = a_t * h_{t-1} + b_t`` with
``a_t``, ``b_t`` functions of ``x_t`` only (see
:mod:`lstm_numba.parallel_cells`). Almost all the work is the input
projection ``x_t @ w_ih.T + b_ih`` (``2*G*H*I`` FLOPs per step and row); the
recurrence is ~5 elementwise operations per hidden unit.

``numba`` runs it in order: the projection of a block of
:data:`BLOCK_ROWS` rows (steps x batch rows) at once with the
register-blocked kernel of :mod:`lstm_numba._gemm`, then the elementwise
recurrence over those steps, then the next block (a whole-sequence
projection would be ``T*B*G*H`` values: 2 GB at T=65,536, B=16, H=256).

``numba-parallel`` is the parallel scan over T (a chunked scan, as in
Martin & Cundy 2018 with one level): T is cut into one chunk per thread.

1. Each thread runs the sequential kernel over its chunk -- projection
   included, so the FLOPs split evenly -- chunk 0 from ``h0``, every other
   chunk from a zero state, and keeps ``P_t``, the product of the ``a`` since
   its chunk began (``h_t = local_t + P_t * start`` for the true ``start``).
2. One carry pass (serial, ``chunks x B x H`` operations): the true start of
   chunk q is the end of chunk q-1, ``end_q = local_end_q + P_end_q * start_q``.
3. The fix-up ``out_t += P_t * start_q`` for every step past chunk 0, split
   evenly over the threads by time. A product that has reached exactly zero
   (``a`` is below 1, so ``P_t`` underflows after some hundred steps) adds
   nothing: a step whose whole row of ``P`` is zero ends that chunk's
   fix-up, unless the start state is not finite (NaN must still spread).

Kernels do no bounds checks; the wrappers size every array.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from ._activations import FASTMATH_GATES, sigmoid
from ._gemm import JIT, aligned_empty, compile_gemm, gemm_rows, pack_transposed, packed_shape

_KERNEL = dict(JIT, fastmath=FASTMATH_GATES)
_KERNEL_PAR = dict(_KERNEL, parallel=True)

#: Rows (time steps x batch rows) projected per block: enough for the 4-row
#: tiles of gemm_rows to run at full speed, small enough that the block
#: (BLOCK_ROWS x G*H) stays in L2 until the recurrence reads it.
BLOCK_ROWS = 64

#: Below this many steps per chunk numba-parallel does not split T (the carry
#: and fix-up would cost more than the split saves).
MIN_CHUNK_STEPS = 64

_MINGRU, _MINLSTM = 3, 4          # cells.spec(...).code


def unavailable(name: str) -> str | None:
    return None


# ------------------------------------------------------------- row updates
# One step of one batch row: g is the projection row (biases in), h the state
# row (updated in place), out the output row. Unsigned indices, as in cpu.py,
# so LLVM sees the gate offsets as plain adds (no negative-index wraparound).

@njit(inline="always", **_KERNEL)
def _put(h, out, j, v, track, pa, pout, a):
    """Unit j's new state v to h and out; with ``track``, also pa *= a, stored in pout."""
    h[j] = v
    out[j] = v
    if track:
        pv = pa[j] * a
        pa[j] = pv
        pout[j] = pv


@njit(inline="always", **_KERNEL)
def _mingru_units(g, h, out, h1, track, pa, pout):
    """minGRU: h = (1 - z) h + z h~ on units [0, h1); ``track``: pa *= (1 - z), to pout."""
    one = out.dtype.type(1.0)
    for j in range(np.uint64(0), h1):
        z = sigmoid(g[j])
        a = one - z
        v = a * h[j] + z * g[h1 + j]
        _put(h, out, j, v, track, pa, pout, a)


@njit(inline="always", **_KERNEL)
def _minlstm_units(g, h, out, h1, track, pa, pout):
    """minLSTM: h = f' h + i' h~ (f', i' normalised); ``track``: pa *= f', to pout."""
    one = out.dtype.type(1.0)
    h2 = h1 + h1
    for j in range(np.uint64(0), h1):
        f = sigmoid(g[j])
        i = sigmoid(g[h1 + j])
        r = one / (f + i)
        a = f * r
        v = a * h[j] + (i * r) * g[h2 + j]
        _put(h, out, j, v, track, pa, pout, a)


@njit(inline="always", **_KERNEL)
def _units(cell, g, h, out, hid, track, pa, pout):
    """The cell's row update (``track``, a constant here: with the running product)."""
    if cell == _MINGRU:
        _mingru_units(g, h, out, np.uint64(hid), track, pa, pout)
    else:
        _minlstm_units(g, h, out, np.uint64(hid), track, pa, pout)


@njit(**_KERNEL)
def _step_row(cell, g, h, out, hid):
    _units(cell, g, h, out, hid, False, h, out)


@njit(**_KERNEL)
def _step_row_prod(cell, g, h, out, pa, pout, hid):
    """:func:`_step_row` that also keeps ``pa *= a`` and stores it in ``pout``."""
    _units(cell, g, h, out, hid, True, pa, pout)


@njit(**_KERNEL)
def _scan_range(cell, x2, batch, wp, bias, h, out2, t0, t1, xp, pa, pout, track):
    """Steps [t0, t1) from state ``h (B, H)`` (updated in place).

    x2 (T*B, I) and out2 (T*B, H) are x and the outputs with rows t*B + b;
    xp (>= BLOCK_ROWS-ish rows, P*NC) is this thread's projection block. With
    ``track``, ``pa (B, H)`` accumulates the product of the a's and each step's
    value is stored in ``pout`` (rows like out2).
    """
    hid = h.shape[1]
    npan = wp.shape[0]
    tc = max(1, xp.shape[0] // batch)
    for s0 in range(t0, t1, tc):
        s1 = min(t1, s0 + tc)
        gemm_rows(x2, s0 * batch, (s1 - s0) * batch, wp, bias, xp, 0, 0, npan, False)
        for t in range(s0, s1):
            for b in range(batch):
                r = (t - s0) * batch + b
                o = t * batch + b
                if track:
                    _step_row_prod(cell, xp[r], h[b], out2[o], pa[b], pout[o], hid)
                else:
                    _step_row(cell, xp[r], h[b], out2[o], hid)


@njit(**_KERNEL)
def _fix_rows(out2, pout, start, batch, hid, r0, r1):
    """out2[r] += pout[r] * start[r % B] for rows [r0, r1); stop at an all-zero step.

    Returns the first row not fixed (r1, or where the products reached zero).
    """
    nz = False
    for r in range(r0, r1):
        b = r % batch
        if b == 0:
            nz = False
        for j in range(hid):
            p = pout[r, j]
            out2[r, j] += p * start[b, j]
            nz |= p != 0.0
        if not nz and b == batch - 1:
            # Every row of this step has P = 0: later steps add 0 * start.
            return r + 1
    return r1


@njit(**_KERNEL_PAR)
def _scan_chunks(cell, x2, batch, wp, bias, h0, out2, bounds, xps, hs, pas, pout,
                 starts, finite, pieces):
    """The chunked scan: local scans in parallel, a carry pass, a parallel fix-up.

    bounds (Q+1,) step bounds of the chunks; xps (Q, rows, P*NC) projection
    blocks; hs, pas, starts (Q, B, H) states, products, true start states;
    finite (Q,) whether starts[q] is all finite; pieces (N+1,) step bounds
    cutting [bounds[1], T) evenly for the fix-up.
    """
    nq = bounds.shape[0] - 1
    hid = h0.shape[1]
    for q in prange(nq):
        if q == 0:
            hs[0, :, :] = h0
        else:
            hs[q, :, :] = 0.0
            pas[q, :, :] = 1.0
        _scan_range(cell, x2, batch, wp, bias, hs[q], out2, bounds[q], bounds[q + 1],
                    xps[q], pas[q], pout, q > 0)
    # Carry: chunk q starts where chunk q-1 truly ended.
    for q in range(1, nq):
        fin = True
        for b in range(batch):
            for j in range(hid):
                s = hs[q - 1, b, j]
                starts[q, b, j] = s
                hs[q, b, j] += pas[q, b, j] * s
                fin &= np.isfinite(s)
        finite[q] = fin
    # Fix-up, by pieces of time: each piece walks the chunks it overlaps.
    for k in prange(pieces.shape[0] - 1):
        for q in range(1, nq):
            t0 = max(pieces[k], bounds[q])
            t1 = min(pieces[k + 1], bounds[q + 1])
            if t0 >= t1:
                continue
            # A piece starting inside chunk q past a zero product must still
            # check: P is only known zero from where it first became zero.
            r = _fix_rows(out2, pout, starts[q], batch, hid, t0 * batch, t1 * batch)
            if r < t1 * batch and not finite[q]:
                for rr in range(r, t1 * batch):
                    b = rr % batch
                    for j in range(hid):
                        out2[rr, j] += pout[rr, j] * starts[q, b, j]


# ---------------------------------------------------------------- wrappers

class Packed:
    """``w_ih`` in the gemm kernel's panels and the padded bias, packed once."""

    def __init__(self, cell: str, weights):
        from .cells import spec

        w_ih, b_ih = weights.w_ih, weights.b_ih
        self.code = spec(cell).code
        self.hid = weights.hidden_size
        self.wp = aligned_empty(packed_shape(w_ih.shape[0], w_ih.shape[1], w_ih.dtype),
                                w_ih.dtype)
        pack_transposed(w_ih, self.wp)
        self.bias = np.zeros(self.wp.shape[0] * self.wp.shape[2], dtype=w_ih.dtype)
        self.bias[:w_ih.shape[0]] = b_ih


def _bounds(n: int, parts: int) -> np.ndarray:
    return np.array([round(q * n / parts) for q in range(parts + 1)], dtype=np.int64)


def scan(pk: Packed, x, h0, chunks: int, threads: int | None = None):
    """minGRU/minLSTM on validated ``x (T,B,I)``, ``h0 (B,H)``: ``(outputs, h, None)``.

    ``chunks`` pieces of T (1: the sequential kernel). ``threads`` sizes the
    fix-up's pieces (default: Numba's thread count).
    """
    t_len, batch, n_in = x.shape
    hid, dt = pk.hid, x.dtype
    chunks = max(1, min(chunks, t_len))
    out = np.empty((t_len, batch, hid), dtype=dt)
    x2 = x.reshape(t_len * batch, n_in)
    out2 = out.reshape(t_len * batch, hid)
    tc = max(1, min(t_len, -(-BLOCK_ROWS // batch)))
    xps = aligned_empty((chunks, tc * batch, pk.bias.shape[0]), dt)
    compile_gemm(x2, 0, 1, pk.wp, pk.bias, xps[0], 0, 0, 1, False)
    hs = np.empty((chunks, batch, hid), dtype=dt)
    if chunks == 1:
        dummy = np.empty((1, 1), dtype=dt)
        h = h0.copy()
        _scan_range(pk.code, x2, batch, pk.wp, pk.bias, h, out2, 0, t_len, xps[0],
                    dummy, dummy, False)
        return out, h, None
    bounds = _bounds(t_len, chunks)
    pas = np.empty_like(hs)
    starts = np.zeros_like(hs)
    pout = np.empty((t_len * batch, hid), dtype=dt)   # rows of chunk 0 unused
    finite = np.ones(chunks, dtype=np.bool_)
    threads = numba.get_num_threads() if threads is None else threads
    pieces = bounds[1] + _bounds(t_len - int(bounds[1]), max(1, threads))
    _scan_chunks(pk.code, x2, batch, pk.wp, pk.bias, h0, out2, bounds, xps, hs, pas, pout,
                 starts, finite, pieces)
    return out, out[-1].copy(), None


def plan_chunks(t_len: int, threads: int) -> int:
    """Chunks numba-parallel cuts T into: one per thread, none below MIN_CHUNK_STEPS."""
    return max(1, min(threads, t_len // MIN_CHUNK_STEPS))


def _run(name, pk, p):
    if p.spec.name == "attention":
        from ._attention import attention
        return attention(pk, p.x, 1 if name == "numba" else numba.get_num_threads())
    if name == "numba":
        return scan(pk, p.x, p.h0, 1)
    threads = numba.get_num_threads()
    return scan(pk, p.x, p.h0, plan_chunks(p.x.shape[0], threads), threads)


def forward_numba(p):
    """Backend ``numba`` for a parallel cell: one thread, in order.

    Returns ``(outputs (T,B,H), h (B,H), None)``.
    """
    return _run("numba", Packed(p.spec.name, p.weights), p)


def forward_numba_parallel(p):
    """Backend ``numba-parallel``: the chunked scan over T (attention: query blocks)."""
    return _run("numba-parallel", Packed(p.spec.name, p.weights), p)


def make_runner(name: str, cell: str, weights):
    """``run(prepared)`` with the weights packed once (see parallel_cells.runner)."""
    pk = Packed(cell, weights)
    return lambda p: _run(name, pk, p)
