"""Backend ``cuda-persistent``: one cooperative launch for the whole sequence.

Persistent RNNs (Diamos et al. 2016): block ``x`` owns ``units`` hidden
units (all G gates) and keeps their rows of ``w_hh`` in shared memory for
all T steps (read from L2 every step when they do not fit: ``weights``
is then ``"global"``). Per step the block's 8 warps work through *items*
-- (unit, tile of ``bt`` batch rows) -- with ``kw`` warps per item when
there are fewer items than warps, each lane reading consecutive k of the
weights (shared memory, conflict-free) and of ``h_{t-1}`` (global memory:
it was written by other blocks, and lives in L2), partial sums in
registers, reduced by warp shuffles; the gates are applied in registers;
then the grid meets at one ``this_grid().sync()``. Items of a round share
their batch tile, so the h rows they read are reused from L1.

Everything that depends only on the shape is done once per (T, B) and
cached on the runner: the plan, the compiled kernel and its marshalled
parameters, the occupancy check (``max_cooperative_grid_blocks``), the
shared-memory attribute and the workspace; a call is the projection, two
device copies and one ``cuda.core.launch``.

Where every item keeps its own warp(s) for the whole sequence (at most 8
items per block: B <= 8 and few units per block) and a lane's share is
small (G * ceil(H / (32 kw)) <= 32 words), the weights stay in registers
instead: a kernel compiled per that count, its k loop unrolled (on 132
SMs: H=256 and 512 at B <= 8). Otherwise shared memory: per step a block
reads its slice once (at B=1 H=1024 LSTM, 128 KiB per SM = ~1000 cycles at
128 B/clock, ~0.6 us), below the grid barrier's ~1.3 us.

:func:`barrier_probe_kernel` is an empty persistent loop (a grid barrier
per step, nothing else): ``gpu_check`` times it to say what fraction of a
step the barrier is.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numba import cuda

from ._cuda_env import device_limits, simulator
from ._cuda_kernels import WARP, recurrent_parts, use_shuffles
from ._cuda_launch import Launcher, allow_dynamic_shared
from ._cuda_runner import CudaRunnerBase, Shape
from .backends import BackendUnavailable

NT = 256               # threads per block
NW = NT // WARP        # warps per block
REG_WORDS = 32         # most 32-bit registers a lane gives to weights
K_SPLITS = (1, 2, 4, 8)


def _pow2_at_least(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def plan_persistent(cell_gates: int, hidden: int, batch: int, itemsize: int,
                    blocks: int, shared_limit: int, registers: bool = True) -> dict:
    """Geometry of a persistent launch (no launch, no device query).

    Returns ``units`` (hidden units per block), ``blocks``, ``bt``, ``kw``,
    ``items`` (per block and step), ``weights`` ("registers", "shared" or
    "global"), ``nk`` (k-iterations of a lane: its weights per gate when
    they are in registers, else 0), ``dynamic_shared`` and ``static_shared``
    bytes. Weights go to registers when every item has its own warp(s) for
    the whole sequence (at most 8 items) and a lane's share is at most
    :data:`REG_WORDS` 32-bit words; else to shared memory when they fit;
    else they are read from L2 every step.
    """
    units = max(1, math.ceil(hidden / blocks))
    nblocks = math.ceil(hidden / units)
    bt = min(8, _pow2_at_least(batch))
    items = units * math.ceil(batch / bt)
    kw = NW // min(NW, _pow2_at_least(items))      # warps per item when items < warps
    gb = cell_gates * bt
    static = itemsize * NW * gb
    dyn = cell_gates * units * hidden * itemsize
    nk = math.ceil(hidden / (WARP * kw))
    if registers and items <= NW and cell_gates * nk * itemsize // 4 <= REG_WORDS:
        weights = "registers"
    elif static + dyn <= shared_limit:
        weights = "shared"
    else:
        weights = "global"
    return {"units": units, "blocks": nblocks, "bt": bt, "kw": kw, "items": items,
            "weights": weights, "nk": nk if weights == "registers" else 0,
            "dynamic_shared": dyn if weights == "shared" else 0,
            "static_shared": static, "shared_limit": shared_limit}


@lru_cache(maxsize=None)
def persistent_kernel(cell: str, dtype, bt: int, kw: int, weights: str, shuffles: bool,
                      nk: int = 0):
    """Kernel ``(xp, w_hh, b_ih, b_hh, hbuf, c, units)`` for a whole sequence.

    Block ``blockIdx.x`` owns hidden units ``[blockIdx.x*units, +units)``
    (the last block may own fewer). ``weights``: ``"shared"``, its ``G*units``
    rows of ``w_hh`` copied once into dynamic shared memory (row
    ``g*units+u``, stride H); ``"registers"``, each lane keeps the ``G*nk``
    weights it multiplies (a compile-time count: the k loop unrolls) for
    the whole sequence -- only with one round of items; ``"global"``, read
    from L2 every step. Launch: block (256,), grid ``ceil(H/units)`` <=
    max_cooperative_grid_blocks (:func:`plan_persistent`).
    """
    if weights not in ("registers", "shared", "global"):
        raise ValueError(f"weights must be registers, shared or global; got {weights!r}")
    w_shared = weights == "shared"
    w_regs = weights == "registers"
    if w_regs and nk < 1:
        raise ValueError(f"weights in registers need nk >= 1; got {nk!r}")
    (dt, zero, G, GB, load, finish, red_shape, scr_len,
     kstep) = recurrent_parts(cell, dtype, bt, kw, NW, shuffles)
    wr_len = max(1, G * nk)
    IPR = NW // kw                   # items per round

    @cuda.jit
    def persistent(xp, w_hh, b_ih, b_hh, hbuf, c, units):
        sm = cuda.shared.array(0, dt)
        red = cuda.shared.array(red_shape, dt)
        scr = cuda.shared.array(scr_len, dt)
        t_len = xp.shape[0]
        bsz = hbuf.shape[1]
        hid = w_hh.shape[1]
        tid = cuda.threadIdx.x
        warp = tid // WARP
        lane = tid - warp * WARP
        j0 = cuda.blockIdx.x * units
        if w_shared:                     # this block's rows, once for the sequence
            for e in range(tid, G * units * hid, NT):
                row = e // hid
                k = e - row * hid
                g = row // units
                j = j0 + row - g * units
                v = zero
                if j < hid:
                    v = w_hh[g * hid + j, k]
                sm[e] = v
            cuda.syncthreads()
        grid = cuda.cg.this_grid()
        n_items = units * ((bsz + bt - 1) // bt)
        slot = warp // kw
        kq = warp - slot * kw
        acc = cuda.local.array(GB, dt)
        hv = cuda.local.array(bt, dt)
        wr = cuda.local.array(wr_len, dt)
        if w_regs:                       # one round: this warp's item all along
            jw = j0 + slot - (slot // units) * units
            for g in range(G):
                for i in range(nk):
                    k = (i * kw + kq) * WARP + lane
                    v = zero
                    if slot < n_items and jw < hid and k < hid:
                        v = w_hh[g * hid + jw, k]
                    wr[g * nk + i] = v
        for t in range(t_len):
            for r0 in range(0, n_items, IPR):
                # the gate thread of (item r0 + s_, row q) loads its inputs
                # first: their latency hides behind the dot products
                s_ = tid // bt
                q = tid - s_ * bt
                it = r0 + s_
                tl = it // units
                jj = j0 + it - tl * units
                b = tl * bt + q
                gate = tid < IPR * bt and it < n_items and jj < hid and b < bsz
                x0 = x1 = x2 = x3 = e0 = e1 = zero
                if gate:
                    x0, x1, x2, x3, e0, e1 = load(xp, b_ih, b_hh, hbuf, c, t, b, jj, hid)
                item = r0 + slot
                tile = item // units
                u = item - tile * units
                b0 = tile * bt
                j = j0 + u
                for v in range(GB):
                    acc[v] = zero
                if w_regs and item < n_items and j < hid:
                    for i in range(nk):          # unrolled: wr stays in registers
                        k = (i * kw + kq) * WARP + lane
                        if k < hid:
                            for r in range(bt):
                                hv[r] = hbuf[t, min(b0 + r, bsz - 1), k]
                            for g in range(G):
                                w = wr[g * nk + i]
                                for r in range(bt):
                                    acc[g * bt + r] += w * hv[r]
                elif item < n_items and j < hid:     # uniform over the warp
                    for k in range(kq * WARP + lane, hid, kstep):
                        for r in range(bt):     # rows past B repeat the last one (unused)
                            hv[r] = hbuf[t, min(b0 + r, bsz - 1), k]
                        for g in range(G):
                            if w_shared:
                                w = sm[(g * units + u) * hid + k]
                            else:
                                w = w_hh[g * hid + j, k]
                            for r in range(bt):
                                acc[g * bt + r] += w * hv[r]
                finish(acc, red, scr, warp, lane, gate, s_, q, x0, x1, x2, x3, e0, e1,
                       hbuf, c, t, b, jj)
                cuda.syncthreads()          # red is reused by the next round
            grid.sync()

    return persistent


@lru_cache(maxsize=None)
def barrier_probe_kernel():
    """Kernel ``(steps)``: ``steps`` grid barriers and nothing else (launch cooperatively)."""

    @cuda.jit
    def probe(steps):
        grid = cuda.cg.this_grid()
        for _ in range(steps):
            grid.sync()

    return probe


class PersistentRunner(CudaRunnerBase):
    """Backend ``cuda-persistent``: one cooperative launch per sequence.

    Parameters as :class:`~lstm_numba._cuda_runner.CudaRunnerBase`, plus:

    blocks : int, optional
        Blocks to aim for (each owns ``ceil(H / blocks)`` hidden units).
        Default: the GPU's SM count (one block per SM), 1 in the simulator
        (the only correct count there).
    shared_limit : int, optional
        Bytes of shared memory a block may use; default the device's opt-in
        maximum (227 KiB in the simulator, as on an H100). Above it the
        weights are read from L2 every step (``weights="global"``).
    registers : bool
        Keep the weights in registers where :func:`plan_persistent` allows
        (default); False keeps them in shared memory (for comparison).
    """

    name = "cuda-persistent"
    persistent = True
    default_launch = "direct"

    def __init__(self, cell, weights, projection="auto", launch=None,
                 blocks: int | None = None, shared_limit: int | None = None,
                 registers: bool = True):
        if blocks is not None and (not isinstance(blocks, (int, np.integer)) or blocks < 1):
            raise ValueError(f"blocks must be an int >= 1; got {blocks!r}")
        if shared_limit is not None and (not isinstance(shared_limit, (int, np.integer))
                                         or shared_limit < 1):
            raise ValueError(f"shared_limit must be an int >= 1; got {shared_limit!r}")
        if launch == "graph":
            launch = "direct"     # one launch per sequence: nothing for a graph to save
        super().__init__(cell, weights, projection, launch)
        self.blocks_requested = blocks
        self.shared_limit = shared_limit
        self.registers = bool(registers)

    def _plan(self, batch: int) -> dict:
        limit, sms = device_limits()
        if self.shared_limit is not None:
            limit = min(limit, int(self.shared_limit))
        target = self.blocks_requested or (1 if simulator() else sms)
        return plan_persistent(self.spec.n_gates, self.hidden, batch, self.dtype.itemsize,
                               target, limit, self.registers)

    def persistent_plan(self, batch: int) -> dict:
        """The geometry :meth:`forward_device` would use for ``batch`` (no launch)."""
        return self.plan(batch)

    def _prepare(self, sh: Shape) -> None:
        p = sh.plan
        kern = persistent_kernel(self.cell, self.dtype, p["bt"], p["kw"], p["weights"],
                                 use_shuffles(), p["nk"])
        args = self._kernel_args(sh, p["units"])
        grid, block, dyn = (p["blocks"],), (NT,), p["dynamic_shared"]
        la = {"path": "dispatch", "direct_error": None}
        prep = None
        if not simulator() and self.launch != "dispatch":
            from ._cuda_launch import PreparedLaunch

            try:
                prep = PreparedLaunch(kern, args, grid, block, dyn)
                la.update(prepared=prep, path="direct")
            except Exception as e:   # an API change in numba-cuda: the public path
                la["direct_error"] = f"{type(e).__name__}: {e}"
        if prep is None:
            la["dispatch"] = (Launcher(kern), grid, block, dyn)
        if simulator():
            max_blocks = kern.overloads[None].max_cooperative_grid_blocks(NT)
        else:   # the attribute first: the occupancy depends on it
            compiled = prep.kernel if prep is not None else kern.compile(
                tuple(kern.typeof_pyval(a) for a in args))
            allow_dynamic_shared(compiled, dyn)
            max_blocks = compiled.max_cooperative_grid_blocks(NT, dyn)
        if p["blocks"] > max_blocks:
            raise BackendUnavailable(
                f"cuda-persistent: the grid needs {p['blocks']} blocks "
                f"({p['units']} hidden units each, {dyn} bytes of dynamic shared "
                f"memory) but at most {max_blocks} can be co-resident for a "
                f"cooperative launch on this device (max_cooperative_grid_blocks); "
                f"pass blocks=<= {max_blocks}")
        p["max_cooperative_blocks"] = int(max_blocks)
        sh.launch = la

    def _recur(self, sh: Shape) -> None:
        la = sh.launch
        if la["path"] == "direct":
            la["prepared"].launch()
        else:
            launch, grid, block, dyn = la["dispatch"]
            launch(grid, block, self._kernel_args(sh, sh.plan["units"]), shared=dyn)
        self.last_launch = {**sh.plan, "grid": (sh.plan["blocks"],), "block": (NT,),
                            "launches": 1, "path": la["path"],
                            "direct_error": la["direct_error"]}


def time_barrier(blocks: int, steps: int = 2000, repeat: int = 5) -> dict:
    """GPU time of ``steps`` grid barriers with ``blocks`` x 256 threads (CUDA events).

    Returns ``{"blocks", "threads", "steps", "us_per_barrier"}`` (median of
    ``repeat`` launches after a warm-up). Real GPU only.
    """
    import statistics

    from ._cuda_launch import PreparedLaunch

    kern = barrier_probe_kernel()
    prep = PreparedLaunch(kern, (steps,), (blocks,), (NT,))
    prep.launch()                        # compile and warm up
    cuda.synchronize()
    e0, e1 = cuda.event(), cuda.event()
    samples = []
    for _ in range(repeat):
        e0.record()
        prep.launch()
        e1.record()
        e1.synchronize()
        samples.append(e0.elapsed_time(e1) * 1e3 / steps)
    return {"blocks": blocks, "threads": NT, "steps": steps,
            "us_per_barrier": statistics.median(samples)}
