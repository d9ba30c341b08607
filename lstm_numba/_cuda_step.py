"""Backend ``cuda``: one step kernel per time step, replayed from a CUDA graph.

The kernel spreads a step over the whole GPU: a *work unit* is one warp
computing, for one hidden unit ``j`` and a tile of ``bt`` batch rows, the G
dot products ``w_hh[g*H + j, :] . h[b, :]`` over a ``1/kw`` slice of K. Its
lanes read consecutive k, so every load of ``w_hh`` (straight from L2:
16 MiB at H=1024 float32 fits the H100's 50 MB) and of ``h`` is coalesced;
the G x bt partial sums live in registers and are reduced with warp
shuffles; the ``kw`` warps of a unit then meet in shared memory and the
gates are applied in registers, one thread per (j, b).

Geometry (:func:`plan_step`): ``bt`` = the batch rounded up to a power of
two, at most 8 (a warp reuses each weight for bt rows); ``kw`` doubles (to
8) while the grid has fewer than ~16 warps per SM and each warp still has
>= 2 k-iterations; blocks of ``max(4, kw)`` warps hold ``upb = max(1,
4 // kw)`` units. E.g. on 132 SMs: B=1 H=256 -> 1024 warps (kw=4);
B=64 H=1024 -> 8192 warps (bt=8, kw=1).

The T launches of a sequence are captured once per shape into a CUDA
graph (``launch="graph"``) and replayed with one call; the per-step
parameters are marshalled once (``direct``), so a call's host cost does not
grow with T beyond the replay. If capture fails, the runner falls back to
``direct`` and says why in ``last_launch["graph_error"]``.
"""
from __future__ import annotations

import math
from functools import lru_cache

from numba import cuda

from ._cuda_env import simulator
from ._cuda_kernels import WARP, recurrent_parts, use_shuffles
from ._cuda_launch import Launcher
from ._cuda_runner import CudaRunnerBase, Shape

BATCH_TILES = (1, 2, 4, 8)
K_SPLITS = (1, 2, 4, 8)
WARPS_PER_SM = 16      # grid size the K split aims for (latency hiding)
MIN_K_ITERS = 2        # a warp keeps at least this many 32-wide k-iterations


def _pow2_at_least(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def plan_step(hidden: int, batch: int, sms: int, batch_tile: int | None = None,
              k_split: int | None = None) -> dict:
    """Geometry of the step kernel for (H, B) on a GPU with ``sms`` SMs.

    Returns ``bt`` (batch rows per warp), ``kw`` (warps splitting K),
    ``upb`` (hidden units per block), ``warps`` (in the grid), ``grid``
    and ``block``. ``batch_tile``/``k_split`` force a tile (tests, tuning).
    """
    bt = batch_tile or min(8, _pow2_at_least(batch))
    if bt not in BATCH_TILES:
        raise ValueError(f"batch_tile must be one of {BATCH_TILES}; got {bt!r}")
    nb = math.ceil(batch / bt)
    if k_split is None:
        kw = 1
        while (kw < K_SPLITS[-1] and hidden * nb * kw < WARPS_PER_SM * sms
               and hidden >= 2 * kw * WARP * MIN_K_ITERS):
            kw *= 2
    else:
        kw = k_split
    if kw not in K_SPLITS:
        raise ValueError(f"k_split must be one of {K_SPLITS}; got {kw!r}")
    upb = max(1, 4 // kw)
    grid = (math.ceil(hidden / upb), nb)
    return {"bt": bt, "kw": kw, "upb": upb, "warps": hidden * nb * kw,
            "grid": grid, "block": (upb * kw * WARP,)}


@lru_cache(maxsize=None)
def step_kernel(cell: str, dtype, bt: int, kw: int, upb: int, shuffles: bool):
    """Kernel ``(xp, w_hh, b_ih, b_hh, hbuf, c, t)`` for one step.

    xp (T, B, G*H)   input projection x @ w_ih.T (no bias)
    w_hh (G*H, H), b_ih (G*H,), b_hh (G*H,)
    hbuf (T+1, B, H) reads row t, writes row t+1
    c (B, H)         LSTM cell state, in place (any (1, 1) array otherwise)
    t                the step

    Launch: block ``(upb*kw*32,)``, grid ``(ceil(H/upb), ceil(B/bt))``
    (:func:`plan_step`). Warp w of block (x, y) serves unit
    ``x*upb + w // kw``, K slice ``w % kw``, batch rows ``[y*bt, +bt)``.
    """
    (dt, zero, G, GB, load, finish, red_shape, scr_len,
     kstep) = recurrent_parts(cell, dtype, bt, kw, upb * kw, shuffles)

    @cuda.jit
    def step(xp, w_hh, b_ih, b_hh, hbuf, c, t):
        red = cuda.shared.array(red_shape, dt)
        scr = cuda.shared.array(scr_len, dt)
        hid = w_hh.shape[1]
        bsz = hbuf.shape[1]
        tid = cuda.threadIdx.x
        warp = tid // WARP
        lane = tid - warp * WARP
        u = warp // kw
        kq = warp - u * kw
        j = cuda.blockIdx.x * upb + u
        b0 = cuda.blockIdx.y * bt
        # the gate thread of (unit uu, row q) loads its inputs first: their
        # latency hides behind the dot products
        gate = tid < upb * bt
        uu = tid // bt
        q = tid - uu * bt
        jj = cuda.blockIdx.x * upb + uu
        b = b0 + q
        gate = gate and jj < hid and b < bsz
        x0 = x1 = x2 = x3 = e0 = e1 = zero
        if gate:
            x0, x1, x2, x3, e0, e1 = load(xp, b_ih, b_hh, hbuf, c, t, b, jj, hid)
        acc = cuda.local.array(GB, dt)
        hv = cuda.local.array(bt, dt)
        for v in range(GB):
            acc[v] = zero
        if j < hid:                       # uniform over the warp
            for k in range(kq * WARP + lane, hid, kstep):
                for r in range(bt):       # rows past B repeat the last one (unused)
                    hv[r] = hbuf[t, min(b0 + r, bsz - 1), k]
                for g in range(G):
                    w = w_hh[g * hid + j, k]
                    for r in range(bt):
                        acc[g * bt + r] += w * hv[r]
        finish(acc, red, scr, warp, lane, gate, uu, q, x0, x1, x2, x3, e0, e1,
               hbuf, c, t, b, jj)

    return step


class StepRunner(CudaRunnerBase):
    """Backend ``cuda``: the step kernel, T launches per sequence from a CUDA graph.

    Parameters as :class:`~lstm_numba._cuda_runner.CudaRunnerBase`, plus
    ``batch_tile`` / ``k_split`` to force the tile (default: :func:`plan_step`)
    and ``sms`` to plan for another SM count (default: this device's).
    ``launch``: ``graph`` (default), ``direct`` or ``dispatch``.
    """

    name = "cuda"
    persistent = False
    default_launch = "graph"

    def __init__(self, cell, weights, projection="auto", launch=None,
                 batch_tile: int | None = None, k_split: int | None = None,
                 sms: int | None = None):
        super().__init__(cell, weights, projection, launch)
        plan_step(1, 1, 1, batch_tile, k_split)          # validate the overrides now
        self.batch_tile, self.k_split = batch_tile, k_split
        if sms is None:
            from ._cuda_env import device_limits

            sms = 132 if simulator() else device_limits()[1]
        self.sms = int(sms)

    def _plan(self, batch: int) -> dict:
        return plan_step(self.hidden, batch, self.sms, self.batch_tile, self.k_split)

    def _prepare(self, sh: Shape) -> None:
        p = sh.plan
        shuffles = use_shuffles()
        kern = step_kernel(self.cell, self.dtype, p["bt"], p["kw"], p["upb"], shuffles)
        grid, block = p["grid"], p["block"]
        la = {"path": "dispatch", "graph_error": None, "direct_error": None}
        sh.launch = la
        if simulator() or self.launch == "dispatch":
            la["dispatch"] = (Launcher(kern), grid, block)
            return
        from ._cuda_launch import PreparedLaunch, build_graph

        try:
            prep = PreparedLaunch(kern, self._kernel_args(sh, 0), grid, block)
            la["params"] = [prep.params_with_last(t) for t in range(sh.seq_len)]
            la["prepared"] = prep
            la["path"] = "direct"
        except Exception as e:   # an API change in numba-cuda: the public path still works
            la["direct_error"] = f"{type(e).__name__}: {e}"
            la["dispatch"] = (Launcher(kern), grid, block)
            return
        if self.launch == "graph":
            try:
                la["graph"] = build_graph(prep, la["params"])
                la["path"] = "graph"
            except Exception as e:
                la["graph_error"] = f"{type(e).__name__}: {e}"

    def _recur(self, sh: Shape) -> None:
        la = sh.launch
        path = la["path"]
        if path == "graph":
            la["graph"].launch(la["prepared"].stream)
        elif path == "direct":
            prep = la["prepared"]
            for params in la["params"]:
                prep.launch(params)
        else:
            launch, grid, block = la["dispatch"]
            args = self._kernel_args(sh, 0)
            for t in range(sh.seq_len):
                args[6] = t
                launch(grid, block, args)
        self.last_launch = {**sh.plan, "launches": sh.seq_len, "path": path,
                            "graph_error": la["graph_error"],
                            "direct_error": la["direct_error"]}
