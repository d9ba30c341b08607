"""numba.cuda scan for minGRU and minLSTM (backend ``cuda``).

The recurrence ``h_t = a_t * h_{t-1} + b_t`` is independent per channel
(batch row b, hidden unit j) and linear in h, so the GPU gets
``channels x chunks`` threads instead of the ``channels`` a sequential loop
would give (256 at B=1, H=256: 2 of an H100's 132 SMs):

1. :func:`_project` -- ``g = x @ w_ih.T + b_ih`` for all T*B rows, a tiled
   shared-memory product (16 x 16 tiles).
2. :func:`_local_scan` -- thread (channel, chunk q) scans its chunk of T
   from zero (chunk 0 from h0), writing the local outputs, its chunk's end
   state and the product of its a's.
3. :func:`_carry` -- per channel, over the chunks in order: the true start
   state of each chunk (``chunks`` steps, not T).
4. :func:`_fix` -- thread (channel, q >= 1) adds ``P_t * start_q`` to its
   chunk's outputs, recomputing ``a_t`` from g (cheaper than storing P).

Four launches, no grid-wide barrier, so numba-cuda's simulator (which runs
one block at a time) runs it exactly as a GPU would. Threads of a warp take
consecutive hidden units: every load and store of g and of the outputs is
coalesced. Attention has no kernel here (see parallel_cells.SUPPORT).
"""
from __future__ import annotations

import math

import numpy as np

from ._cuda_env import cupy_or_none
from .gpu import unavailable  # noqa: F401  (the registry asks it)

_TILE = 16
_TILE_PAD = 17               # shared tiles one column wider: no bank conflicts
_THREADS = 128
_MINGRU = 3                  # cells.spec("mingru").code

_kernels: dict = {}
cuda = None                  # numba.cuda, imported by _build on first use


def _build(dtype):
    """The four kernels for ``dtype``, compiled on first use (numba.cuda imported here)."""
    key = np.dtype(dtype)
    if key in _kernels:
        return _kernels[key]
    global cuda
    import numba.cuda as cuda    # a global: the simulator swaps a kernel's ``cuda``
    from numba import float32, float64

    nbt = float32 if key == np.float32 else float64
    one = nbt(1.0)
    zero = nbt(0.0)

    @cuda.jit(device=True, inline=True)
    def coef(cell, g, bias, r, j, hid):
        """(a, b) of channel j at projection row r."""
        if cell == _MINGRU:
            z = one / (one + math.exp(-(g[r, j] + bias[j])))
            return one - z, z * (g[r, hid + j] + bias[hid + j])
        f = one / (one + math.exp(-(g[r, j] + bias[j])))
        i = one / (one + math.exp(-(g[r, hid + j] + bias[hid + j])))
        s = one / (f + i)
        return f * s, (i * s) * (g[r, 2 * hid + j] + bias[2 * hid + j])

    @cuda.jit
    def project(x2, w, g):
        """g (M, N) = x2 (M, K) @ w (N, K).T, one 16 x 16 output tile per block."""
        sa = cuda.shared.array((_TILE, _TILE_PAD), dtype=nbt)
        sw = cuda.shared.array((_TILE, _TILE_PAD), dtype=nbt)
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        n0 = cuda.blockIdx.x * _TILE
        m = cuda.blockIdx.y * _TILE + ty
        acc = zero
        for k0 in range(0, x2.shape[1], _TILE):
            k = k0 + tx
            sa[ty, tx] = x2[m, k] if (m < x2.shape[0] and k < x2.shape[1]) else zero
            nw = n0 + ty          # stage w's rows n0.. as columns: sw[k, n]
            sw[tx, ty] = w[nw, k] if (nw < w.shape[0] and k < w.shape[1]) else zero
            cuda.syncthreads()
            for kk in range(_TILE):
                acc += sa[ty, kk] * sw[kk, tx]
            cuda.syncthreads()
        n = n0 + tx
        if m < g.shape[0] and n < g.shape[1]:
            g[m, n] = acc

    @cuda.jit
    def local_scan(cell, g, bias, h0, chunk, out, ends, prods):
        """Thread (channel c, chunk q): its chunk from zero (q = 0: from h0)."""
        c = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
        q = cuda.blockIdx.y
        batch, hid = h0.shape
        if c >= batch * hid:
            return
        b, j = c // hid, c % hid
        t_len = out.shape[0] // batch
        h = h0[b, j] if q == 0 else zero
        p = one
        for t in range(q * chunk, min(t_len, (q + 1) * chunk)):
            r = t * batch + b
            a, v = coef(cell, g, bias, r, j, hid)
            h = a * h + v
            p *= a
            out[r, j] = h
        ends[q, c] = h
        prods[q, c] = p

    @cuda.jit
    def carry(ends, prods, starts):
        """Per channel: starts[q] = true end of chunk q-1, in chunk order."""
        c = cuda.grid(1)
        if c >= ends.shape[1]:
            return
        s = ends[0, c]
        for q in range(1, ends.shape[0]):
            starts[q, c] = s
            s = prods[q, c] * s + ends[q, c]

    @cuda.jit
    def fix(cell, g, bias, starts, chunk, batch, out):
        """Thread (channel c, chunk q >= 1): out_t += P_t * start_q over its chunk."""
        c = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
        q = cuda.blockIdx.y + 1
        hid = out.shape[1]
        if c >= batch * hid:
            return
        b, j = c // hid, c % hid
        t_len = out.shape[0] // batch
        s = starts[q, c]
        p = one
        for t in range(q * chunk, min(t_len, (q + 1) * chunk)):
            r = t * batch + b
            a, v = coef(cell, g, bias, r, j, hid)
            p *= a
            out[r, j] += p * s

    _kernels[key] = (project, local_scan, carry, fix)
    return _kernels[key]


def plan_chunks(t_len: int, channels: int) -> int:
    """Chunks of T: about sqrt(T) (the three passes then walk ~sqrt(T) steps
    each), more while the GPU has fewer than ~64K threads to run."""
    q = max(1, int(round(math.sqrt(t_len))))
    while q * channels < 65536 and q * 2 <= t_len // 4:
        q *= 2
    return min(q, t_len)


class ScanRun:
    """One shape's device buffers and launches; :meth:`call` runs on device inputs.

    ``x (T,B,I)``, ``w_ih (G*H, I)``, ``b_ih (G*H,)``, ``h0 (B,H)`` are
    validated host arrays, uploaded once. ``projection``: "cublas" (CuPy,
    real GPU only) or "kernel" (the tiled kernel here); None picks cuBLAS
    when CuPy is usable. :meth:`call` is asynchronous; :meth:`sync` waits;
    :meth:`result` copies ``(outputs, h)`` back.
    """

    def __init__(self, code, x, w_ih, b_ih, h0, chunks=None, projection=None):
        t_len, batch, n_in = x.shape
        hid = h0.shape[1]
        self.code, self.t_len, self.batch, self.hid = code, t_len, batch, hid
        self.kernels = _build(x.dtype)
        channels = batch * hid
        chunks = plan_chunks(t_len, channels) if chunks is None else max(1, min(chunks, t_len))
        self.chunk = -(-t_len // chunks)
        self.chunks = -(-t_len // self.chunk)                # no empty chunk
        cp = cupy_or_none()
        if projection is None:
            projection = "cublas" if cp is not None else "kernel"
        if projection == "cublas" and cp is None:
            raise ValueError("projection='cublas' needs CuPy on a real GPU")
        self.cp = cp if projection == "cublas" else None
        dt = x.dtype
        self.d_x = cuda.to_device(np.ascontiguousarray(x.reshape(t_len * batch, n_in)))
        self.d_w, self.d_b = cuda.to_device(w_ih), cuda.to_device(b_ih)
        self.d_h0 = cuda.to_device(h0)
        self.d_g = cuda.device_array((t_len * batch, w_ih.shape[0]), dtype=dt)
        self.d_out = cuda.device_array((t_len * batch, hid), dtype=dt)
        self.d_ends = cuda.device_array((self.chunks, channels), dtype=dt)
        self.d_prods = cuda.device_array((self.chunks, channels), dtype=dt)
        self.d_starts = cuda.device_array((self.chunks, channels), dtype=dt)
        self.cblocks = -(-channels // _THREADS)

    def call(self):
        project, local_scan, carry, fix = self.kernels
        rows, gh = self.d_g.shape
        if self.cp is not None:         # cuBLAS; the bias is added in coef
            cp = self.cp
            cp.matmul(cp.asarray(self.d_x), cp.asarray(self.d_w).T, out=cp.asarray(self.d_g))
        else:
            project[(-(-gh // _TILE), -(-rows // _TILE)), (_TILE, _TILE)](
                self.d_x, self.d_w, self.d_g)
        local_scan[(self.cblocks, self.chunks), _THREADS](
            self.code, self.d_g, self.d_b, self.d_h0, self.chunk, self.d_out, self.d_ends,
            self.d_prods)
        if self.chunks > 1:
            carry[self.cblocks, _THREADS](self.d_ends, self.d_prods, self.d_starts)
            fix[(self.cblocks, self.chunks - 1), _THREADS](
                self.code, self.d_g, self.d_b, self.d_starts, self.chunk, self.batch, self.d_out)

    def sync(self):
        cuda.synchronize()

    def result(self):
        self.sync()
        out = self.d_out.copy_to_host().reshape(self.t_len, self.batch, self.hid)
        return out, out[-1].copy()


def scan_cuda(code: int, x, w_ih, b_ih, h0, chunks: int | None = None, projection=None):
    """minGRU/minLSTM on the GPU: validated host arrays in, ``(outputs, h)`` out.

    ``x (T,B,I)``, ``w_ih (G*H, I)``, ``b_ih (G*H,)``, ``h0 (B,H)``; ``chunks``
    of T (default :func:`plan_chunks`). See :class:`ScanRun`.
    """
    _build(x.dtype)
    run = ScanRun(code, x, w_ih, b_ih, h0, chunks, projection)
    run.call()
    return run.result()


def forward_cuda(p):
    """Backend ``cuda`` for minGRU/minLSTM: ``(outputs (T,B,H), h (B,H), None)``."""
    if p.spec.name == "attention":
        raise ValueError("attention is not supported on backend cuda")
    w = p.weights
    out, h = scan_cuda(p.spec.code, p.x, w.w_ih, w.b_ih, p.h0)
    return out, h, None
