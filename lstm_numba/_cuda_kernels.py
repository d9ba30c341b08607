"""The numba.cuda kernels behind the ``cuda`` and ``cuda-persistent`` backends.

Three kernels, each built by a factory per (cell, dtype) so the gate count,
the gate math and the scalar type are compile-time constants (a float64
literal in a float32 kernel would silently promote the arithmetic):

``matmul_nt``  out (M, N) = a (M, K) @ w (N, K).T -- the input projection of
               all T steps as one product (used when CuPy/cuBLAS is absent).
               64x64 output tile per block, 4x4 outputs per thread in
               registers, K in tiles of 16 through shared memory.
``step``       one time step: the recurrent product for a tile of 32 hidden
               units across all G gates and the gate math applied in
               registers; one launch per step.
``persistent`` the whole sequence in one cooperative launch: each block keeps
               its slice of w_hh in shared memory for all T steps and the
               grid meets at ``this_grid().sync()`` between steps.

The kernels do no bounds checks on their arguments' shapes: the launchers in
:mod:`lstm_numba.gpu` check every shape before launching. Inside, every
index that depends on a size (H, B, K not multiples of a tile) is guarded.
No warp shuffles are used, so that numba-cuda's simulator (which has none)
runs the very same code; the reductions go through shared memory.

State layout shared by ``step`` and ``persistent``: ``hbuf (T+1, B, H)``
holds h0 at row 0 and h_t at row t+1; step t reads row t and writes row t+1.
So no block ever overwrites an h another block may still read (this is the
double buffer, unrolled over time), and a row is never read before the step
that wrote it, so no stale L1 line can exist for it. The LSTM's ``c (B, H)``
is updated in place: each element is read and written by one thread only.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numba import cuda
from numba.np import numpy_support

CELL_CODES = {"rnn": 0, "lstm": 1, "gru": 2}
N_GATES = {"rnn": 1, "lstm": 4, "gru": 3}

# ---- step kernel geometry --------------------------------------------------
STEP_TU = 32       # hidden units per block (threadIdx.x)
STEP_TY = 8        # threadIdx.y: batch lanes x k-slices (TY == lanes * ks)
STEP_RB = 2        # batch rows per thread, held in registers

# ---- persistent kernel geometry --------------------------------------------
PERSIST_NT = 256   # threads per block
PERSIST_KS = (8, 16, 32)   # threads sharing one dot product (k-slices), by need
PERSIST_BC = 4     # batch rows per item, held in registers
# The partial-sum buffer holds (NT // KS) items x BC rows x KS slices = NT*BC
# values whatever KS is.
PERSIST_RED = PERSIST_NT * PERSIST_BC


def persistent_k_slices(n_items: int) -> int:
    """Threads per dot product for a block with ``n_items`` (row, batch-chunk) items.

    The most threads per product (8, 16 or 32) that still fit every item
    in one pass of the 256 threads: with few items (small H per block,
    small B) up to 32 threads share each product, so the per-step chain of
    k-iterations is shorter instead of most threads idling; with many
    items, 8.
    """
    ks = PERSIST_KS[0]
    while ks < PERSIST_KS[-1] and n_items * ks * 2 <= PERSIST_NT:
        ks *= 2
    return ks

# ---- projection kernel geometry ---------------------------------------------
MM_T = 64          # output tile (rows and columns)
MM_TK = 16         # K tile
MM_THREADS = (16, 16)


def step_k_tile(dtype) -> int:
    """K tile of the step kernel: 32 for float32, 16 for float64 (48 KiB static shared)."""
    return 32 if np.dtype(dtype) == np.float32 else 16


def step_static_shared_bytes(cell: str, dtype) -> int:
    """Bytes of static shared memory the step kernel declares."""
    g, kt, it = N_GATES[cell], step_k_tile(dtype), np.dtype(dtype).itemsize
    return it * (g * STEP_TU * (kt + 1) + STEP_TY * STEP_RB * kt + STEP_TY * g * STEP_RB * STEP_TU)


def persistent_static_shared_bytes(dtype) -> int:
    return np.dtype(dtype).itemsize * PERSIST_RED


def persistent_row_stride(hidden: int, dtype, ks: int) -> int:
    """Row stride (elements) of the w_hh slice in shared memory.

    Rows are padded so that the ``ks`` threads of one item and the rows of
    the neighbouring items in a warp fall in different banks (stride = ks
    mod 32 words for float32; float64 spans two words per element).
    """
    words = np.dtype(dtype).itemsize // 4
    period = 32 // words
    target = ks % period
    return hidden + (target - hidden) % period


def persistent_dynamic_shared_bytes(cell: str, hidden: int, batch: int, units: int,
                                    dtype, stage_h: bool, ks: int) -> int:
    """Dynamic shared memory of one persistent block owning ``units`` hidden units.

    w_hh slice (G*units rows, padded) + gate pre-activations (B, G*units)
    + h_{t-1} staged (B, H) when ``stage_h``.
    """
    g = N_GATES[cell]
    n = g * units * persistent_row_stride(hidden, dtype, ks) + batch * g * units
    if stage_h:
        n += batch * hidden
    return n * np.dtype(dtype).itemsize


def _nbtype(dtype):
    return numpy_support.from_dtype(np.dtype(dtype))


# ---------------------------------------------------------------------------
# gate math, shared by both recurrent kernels
# ---------------------------------------------------------------------------

@lru_cache(maxsize=None)
def _gate_function(cell: str, dtype):
    """``apply(xp, b_ih, b_hh, pre, hbuf, c, t, b, j, H)``: one (b, j) of step t.

    ``pre(g)`` is not expressible as a callable in a device function, so the
    pre-activations arrive as the G values ``a0..a3`` (unused ones are zero).
    Writes ``hbuf[t+1, b, j]`` and, for the LSTM, ``c[b, j]``.
    """
    one = np.dtype(dtype).type(1.0)
    code = CELL_CODES[cell]

    @cuda.jit(device=True)
    def sig(v):
        return one / (one + math.exp(-v))

    @cuda.jit(device=True)
    def apply(xp, b_ih, b_hh, hbuf, c, t, b, j, hid, a0, a1, a2, a3):
        if code == 1:      # lstm: i, f, g, o
            gi = sig(xp[t, b, j] + b_ih[j] + a0 + b_hh[j])
            gf = sig(xp[t, b, hid + j] + b_ih[hid + j] + a1 + b_hh[hid + j])
            gg = math.tanh(xp[t, b, 2 * hid + j] + b_ih[2 * hid + j] + a2 + b_hh[2 * hid + j])
            go = sig(xp[t, b, 3 * hid + j] + b_ih[3 * hid + j] + a3 + b_hh[3 * hid + j])
            cc = gf * c[b, j] + gi * gg
            c[b, j] = cc
            hbuf[t + 1, b, j] = go * math.tanh(cc)
        elif code == 2:    # gru: r, z, n with n = tanh(x_n + r * (W_hn h + b_hn))
            r = sig(xp[t, b, j] + b_ih[j] + a0 + b_hh[j])
            z = sig(xp[t, b, hid + j] + b_ih[hid + j] + a1 + b_hh[hid + j])
            n = math.tanh(xp[t, b, 2 * hid + j] + b_ih[2 * hid + j]
                          + r * (a2 + b_hh[2 * hid + j]))
            hbuf[t + 1, b, j] = (one - z) * n + z * hbuf[t, b, j]
        else:              # rnn (tanh)
            hbuf[t + 1, b, j] = math.tanh(xp[t, b, j] + b_ih[j] + a0 + b_hh[j])

    return apply


# ---------------------------------------------------------------------------
# input projection: out = a @ w.T
# ---------------------------------------------------------------------------

@lru_cache(maxsize=None)
def matmul_nt_kernel(dtype):
    """Kernel ``(a (M,K), w (N,K), out (M,N))``; launch with grid
    ``(ceil(N/64), ceil(M/64))`` and block ``(16, 16)``."""
    dt = _nbtype(dtype)
    zero = np.dtype(dtype).type(0.0)
    T, TK = MM_T, MM_TK
    ty_n, tx_n = MM_THREADS
    nthreads = tx_n * ty_n
    per = T // tx_n       # 4 outputs per thread along each axis
    # Array shapes must be compile-time literals: plain ints/tuples from here.
    tile_shape = (TK, T + 1)
    acc_shape = (per, per)

    @cuda.jit
    def matmul_nt(a, w, out):
        a_s = cuda.shared.array(tile_shape, dt)
        w_s = cuda.shared.array(tile_shape, dt)
        m_len, k_len = a.shape
        n_len = w.shape[0]
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        tid = ty * tx_n + tx
        m0 = cuda.blockIdx.y * T
        n0 = cuda.blockIdx.x * T
        acc = cuda.local.array(acc_shape, dt)
        for i in range(per):
            for jj in range(per):
                acc[i, jj] = zero
        for k0 in range(0, k_len, TK):
            # T*TK elements of each tile; consecutive threads read consecutive k.
            for e in range(tid, T * TK, nthreads):
                row = e // TK
                kk = e - row * TK
                k = k0 + kk
                v = zero
                if m0 + row < m_len and k < k_len:
                    v = a[m0 + row, k]
                a_s[kk, row] = v
                v = zero
                if n0 + row < n_len and k < k_len:
                    v = w[n0 + row, k]
                w_s[kk, row] = v
            cuda.syncthreads()
            for kk in range(TK):
                for i in range(per):
                    av = a_s[kk, ty + ty_n * i]
                    for jj in range(per):
                        acc[i, jj] += av * w_s[kk, tx + tx_n * jj]
            cuda.syncthreads()
        for i in range(per):
            m = m0 + ty + ty_n * i
            if m < m_len:
                for jj in range(per):
                    n = n0 + tx + tx_n * jj
                    if n < n_len:
                        out[m, n] = acc[i, jj]

    return matmul_nt


# ---------------------------------------------------------------------------
# one launch per step
# ---------------------------------------------------------------------------

@lru_cache(maxsize=None)
def step_kernel(cell: str, dtype, ks: int):
    """Kernel ``(xp, w_hh, b_ih, b_hh, hbuf, c, t)`` for one step.

    xp (T, B, G*H)   input projection x @ w_ih.T (no bias)
    w_hh (G*H, H), b_ih (G*H,), b_hh (G*H,)
    hbuf (T+1, B, H) reads row t, writes row t+1
    c (B, H)         LSTM cell state, in place (any (1, 1) array otherwise)
    t                the step

    ``ks``, the k-slices per batch lane (1, 2, 4 or 8), is a compile-time
    constant so the k-loop over a tile unrolls: at small batch the 8
    threadIdx.y lanes split the k-loop instead of idling, then add their
    partial sums in shared memory.

    Launch: block (32, 8); grid (ceil(H/32), ceil(B / (8/ks * 2))).
    """
    if ks not in (1, 2, 4, 8):
        raise ValueError(f"ks must be 1, 2, 4 or 8; got {ks!r}")
    dt = _nbtype(dtype)
    zero = np.dtype(dtype).type(0.0)
    G = N_GATES[cell]
    TU, TY, RB = STEP_TU, STEP_TY, STEP_RB
    KT = step_k_tile(dtype)
    nthreads = TU * TY
    apply = _gate_function(cell, dtype)
    w_shape = (G * TU, KT + 1)
    h_shape = (TY * RB, KT)
    red_shape = (TY, G * RB, TU)
    acc_shape = (4, RB)

    @cuda.jit
    def step(xp, w_hh, b_ih, b_hh, hbuf, c, t):
        w_s = cuda.shared.array(w_shape, dt)
        h_s = cuda.shared.array(h_shape, dt)
        red = cuda.shared.array(red_shape, dt)
        hid = w_hh.shape[1]
        bsz = hbuf.shape[1]
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        tid = ty * TU + tx
        lanes = TY // ks              # batch lanes in this block
        bl = ty // ks                 # this thread's lane
        kl = ty - bl * ks             # and k-slice
        rows = lanes * RB             # batch rows per block
        b0 = cuda.blockIdx.y * rows
        u0 = cuda.blockIdx.x * TU
        j = u0 + tx
        acc = cuda.local.array(acc_shape, dt)
        for g in range(4):
            for r in range(RB):
                acc[g, r] = zero
        for k0 in range(0, hid, KT):
            # The w_hh tile: G gate blocks of TU rows, KT columns.
            for e in range(tid, G * TU * KT, nthreads):
                row = e // KT
                col = e - row * KT
                g = row // TU
                jj = u0 + row - g * TU
                k = k0 + col
                v = zero
                if jj < hid and k < hid:
                    v = w_hh[g * hid + jj, k]
                w_s[row, col] = v
            for e in range(tid, rows * KT, nthreads):
                r = e // KT
                col = e - r * KT
                b = b0 + r
                k = k0 + col
                v = zero
                if b < bsz and k < hid:
                    v = hbuf[t, b, k]
                h_s[r, col] = v
            cuda.syncthreads()
            for kk in range(kl, KT, ks):
                for g in range(G):
                    wv = w_s[g * TU + tx, kk]
                    for r in range(RB):
                        acc[g, r] += wv * h_s[bl + r * lanes, kk]
            cuda.syncthreads()
        if ks > 1:                    # add the k-slices' partial sums
            for g in range(G):
                for r in range(RB):
                    red[ty, g * RB + r, tx] = acc[g, r]
            cuda.syncthreads()
            if kl == 0:
                for s in range(1, ks):
                    for g in range(G):
                        for r in range(RB):
                            acc[g, r] += red[ty + s, g * RB + r, tx]
        if kl == 0 and j < hid:
            for r in range(RB):
                b = b0 + bl + r * lanes
                if b < bsz:
                    apply(xp, b_ih, b_hh, hbuf, c, t, b, j, hid,
                          acc[0, r], acc[1, r], acc[2, r], acc[3, r])

    return step


# ---------------------------------------------------------------------------
# one cooperative launch per sequence
# ---------------------------------------------------------------------------

@lru_cache(maxsize=None)
def persistent_kernel(cell: str, dtype, ks: int = 8):
    """Kernel ``(xp, w_hh, b_ih, b_hh, hbuf, c, units, stride, stage_h)``.

    Block ``blockIdx.x`` owns hidden units ``[blockIdx.x*units, +units)``
    (the last block may own fewer). Dynamic shared memory, in elements:
    ``[0, G*units*stride)`` its rows of w_hh (loaded once),
    then ``B*G*units`` gate pre-activations, then ``B*H`` for h_{t-1} when
    ``stage_h`` (see :func:`persistent_dynamic_shared_bytes`).

    Launch: block (256,), grid ceil(H/units) <= max_cooperative_grid_blocks.
    Per step: the B*G*units dot products of length H are spread over the
    block, ``ks`` threads per product (4 batch rows per thread; ``ks`` from
    :func:`persistent_k_slices`, a compile-time constant), partial sums
    added in shared memory; then the gates; then the grid-wide barrier.
    """
    if ks not in PERSIST_KS:
        raise ValueError(f"ks must be one of {PERSIST_KS}; got {ks!r}")
    dt = _nbtype(dtype)
    zero = np.dtype(dtype).type(0.0)
    G = N_GATES[cell]
    NT, KS, BC = PERSIST_NT, ks, PERSIST_BC
    R = NT // KS
    apply = _gate_function(cell, dtype)
    red_len = PERSIST_RED

    @cuda.jit
    def persistent(xp, w_hh, b_ih, b_hh, hbuf, c, units, stride, stage_h):
        sm = cuda.shared.array(0, dt)
        red = cuda.shared.array(red_len, dt)
        t_len = xp.shape[0]
        bsz = hbuf.shape[1]
        hid = w_hh.shape[1]
        gu = G * units
        acc_off = gu * stride
        h_off = acc_off + bsz * gu
        tid = cuda.threadIdx.x
        j0 = cuda.blockIdx.x * units
        # This block's rows of w_hh, once for the whole sequence.
        for e in range(tid, gu * hid, NT):
            row = e // hid
            k = e - row * hid
            g = row // units
            j = j0 + row - g * units
            v = zero
            if j < hid:
                v = w_hh[g * hid + j, k]
            sm[row * stride + k] = v
        grid = cuda.cg.this_grid()
        item_l = tid // KS
        ks = tid - item_l * KS
        n_items = gu * ((bsz + BC - 1) // BC)
        part = cuda.local.array(BC, dt)
        for t in range(t_len):
            if stage_h != 0:
                for e in range(tid, bsz * hid, NT):
                    sm[h_off + e] = hbuf[t, e // hid, e - (e // hid) * hid]
            cuda.syncthreads()
            for it0 in range(0, n_items, R):
                item = it0 + item_l
                row = item % gu
                b0 = (item // gu) * BC
                nb = min(BC, bsz - b0)
                for q in range(BC):
                    part[q] = zero
                if item < n_items:
                    base = row * stride
                    if stage_h != 0:
                        for k in range(ks, hid, KS):
                            wv = sm[base + k]
                            for q in range(BC):
                                if q < nb:
                                    part[q] += wv * sm[h_off + (b0 + q) * hid + k]
                    else:
                        for k in range(ks, hid, KS):
                            wv = sm[base + k]
                            for q in range(BC):
                                if q < nb:
                                    part[q] += wv * hbuf[t, b0 + q, k]
                for q in range(BC):
                    red[(item_l * BC + q) * KS + ks] = part[q]
                cuda.syncthreads()
                if ks == 0 and item < n_items:
                    for q in range(BC):
                        if q < nb:
                            s = zero
                            for p in range(KS):
                                s += red[(item_l * BC + q) * KS + p]
                            sm[acc_off + (b0 + q) * gu + row] = s
                cuda.syncthreads()
            for e in range(tid, bsz * units, NT):
                b = e // units
                u = e - b * units
                j = j0 + u
                if j < hid:
                    a = acc_off + b * gu + u
                    a0 = sm[a]
                    a1 = zero
                    a2 = zero
                    a3 = zero
                    if G > 1:
                        a1 = sm[a + units]
                        a2 = sm[a + 2 * units]
                    if G > 3:
                        a3 = sm[a + 3 * units]
                    apply(xp, b_ih, b_hh, hbuf, c, t, b, j, hid, a0, a1, a2, a3)
            grid.sync()

    return persistent


# ---------------------------------------------------------------------------
# ahead-of-time check without a GPU
# ---------------------------------------------------------------------------

def compile_ptx_all(cc=(9, 0)) -> dict:
    """Compile every kernel of every (cell, dtype) to PTX for ``cc``; no GPU needed.

    The simulator runs kernels as Python, so it cannot catch what only the
    real compiler rejects (a non-literal array shape, a float64 leak into a
    float32 kernel). This runs Numba's CUDA pipeline through NVVM instead
    (needs libnvvm, e.g. the nvidia-cuda-nvcc wheel, not a driver) and
    returns ``{name: ptx}``. Device functions are compiled for "the current
    device", so without a driver a stand-in device with ``cc`` is used.
    """
    from numba import types
    from numba.cuda import dispatcher as _disp

    class _Device:
        compute_capability = cc

    saved = _disp.get_current_device
    try:
        if not cuda.is_available():
            _disp.get_current_device = lambda: _Device()
        out = {}
        for dtype in (np.float32, np.float64):
            nb = _nbtype(dtype)
            a1, a2, a3 = (types.Array(nb, n, "C") for n in (1, 2, 3))
            i64 = types.int64
            jobs = [("matmul_nt", matmul_nt_kernel(dtype), (a2, a2, a2))]
            for cell in CELL_CODES:
                for ks in (1, 8):
                    jobs.append((f"step{ks}_{cell}", step_kernel(cell, dtype, ks),
                                 (a3, a2, a1, a1, a3, a2, i64)))
                for ks in (8, 32):
                    jobs.append((f"persistent{ks}_{cell}", persistent_kernel(cell, dtype, ks),
                                 (a3, a2, a1, a1, a3, a2, i64, i64, i64)))
            for name, kern, sig in jobs:
                ptx, _ = cuda.compile_ptx(kern.py_func, sig, cc=cc)
                out[f"{name}_{np.dtype(dtype).name}"] = ptx
        return out
    finally:
        _disp.get_current_device = saved
