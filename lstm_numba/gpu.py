"""numba.cuda backends ``cuda`` and ``cuda-persistent`` and their host side.

Two designs of the same forward pass (kernels in :mod:`._cuda_kernels`):

``cuda``
    Weights and state stay on the device. The input projections of all T
    steps are one large product ``x (T*B, I) @ w_ih.T`` -- through cuBLAS
    (via CuPy) when CuPy is importable on a real GPU, else through the
    project's own tiled shared-memory kernel (``projection="kernel"``; the
    choice is explicit, see :data:`PROJECTIONS`). Then one kernel launch per
    step computes the recurrent product for a tile of 32 hidden units across
    all gates and applies the gates in registers. Each step is a launch, so
    at small batch the time per step is launch latency, not arithmetic.
``cuda-persistent``
    The same projection, then ONE cooperative launch for the whole sequence
    (Persistent RNNs, Diamos et al. 2016): each block loads its slice of
    ``w_hh`` into shared memory once and keeps it for all T steps; the grid
    meets at ``cuda.cg.this_grid().sync()`` between steps. A step costs a
    grid barrier instead of a launch, but every block's slice must fit in
    shared memory and every block must be resident at once (the grid may not
    exceed ``max_cooperative_grid_blocks``); otherwise a
    :class:`~lstm_numba.BackendUnavailable` says which limit was hit.

Every launch is preceded by shape checks in Python (the kernels do none);
results are copied back after an explicit ``cuda.synchronize()``.

Under numba-cuda's simulator (``NUMBA_ENABLE_CUDASIM=1``) both backends run
on the CPU, one block after another; a grid-wide barrier is then only
correct with a single block, so there the persistent kernel defaults to one.
"""
from __future__ import annotations

import importlib.util
import math
import os
import time
import warnings

import numpy as np

from .backends import BackendUnavailable
from .cells import Weights, spec
from .validation import check_weights, prepare

PROJECTIONS = ("auto", "cublas", "kernel")
"""How the input projection is computed: ``cublas`` (CuPy's matmul, needs
CuPy and a real GPU), ``kernel`` (the project's tiled kernel) or ``auto``
(``cublas`` when possible, else ``kernel``)."""

_NUMBA_CUDA_MISSING = ("numba-cuda is not installed (pip install 'lstm-numba[cuda]'); "
                       "Numba's built-in CUDA target is deprecated and not used")


def _numba_cuda_installed() -> bool:
    return importlib.util.find_spec("numba_cuda") is not None


def simulator() -> bool:
    """True when numba-cuda's CUDA simulator is active (NUMBA_ENABLE_CUDASIM=1)."""
    try:
        from numba import config
    except ImportError:  # pragma: no cover - numba is a dependency
        return False
    return bool(getattr(config, "ENABLE_CUDASIM", False))


def unavailable(name: str) -> str | None:
    """None when backend ``name`` can run here, else the reason as a sentence."""
    if not _numba_cuda_installed():
        return _NUMBA_CUDA_MISSING
    from numba import cuda

    if simulator():
        return None
    try:
        ok = cuda.is_available()
    except Exception as e:  # a broken driver install must not crash a listing
        return f"numba.cuda could not initialise the CUDA driver: {e}"
    if not ok:
        return "no CUDA GPU found (numba.cuda.is_available() is False)"
    if name == "cuda-persistent":
        dev = cuda.get_current_device()
        if not dev.COOPERATIVE_LAUNCH:
            return f"the GPU {dev.name!r} does not support cooperative launches"
    return None


def _require(name: str) -> None:
    reason = unavailable(name)
    if reason:
        raise BackendUnavailable(f"backend {name!r} is unavailable: {reason}")


def cupy_or_none():
    """The ``cupy`` module when importable and usable here (never in the simulator)."""
    if simulator():
        return None
    try:
        import cupy
    except Exception:  # ImportError, or a CuPy built for another CUDA
        return None
    return cupy


def _resolve_projection(projection: str) -> str:
    if projection not in PROJECTIONS:
        raise ValueError(f"projection must be one of {PROJECTIONS}; got {projection!r}")
    have = cupy_or_none() is not None
    if projection == "auto":
        return "cublas" if have else "kernel"
    if projection == "cublas" and not have:
        raise BackendUnavailable("projection='cublas' needs CuPy on a real GPU "
                                 "(pip install cupy-cuda12x); use projection='kernel'")
    return projection


# ---------------------------------------------------------------------------
# launching: a compiled kernel object on a GPU, the dispatcher in the simulator
# ---------------------------------------------------------------------------

LAUNCH_MODES = ("direct", "dispatch")
LAUNCH_ENV = "LSTM_NUMBA_CUDA_LAUNCH"


def _launch_mode(launch: str | None) -> str:
    mode = launch or os.environ.get(LAUNCH_ENV, "direct").strip().lower() or "direct"
    if mode not in LAUNCH_MODES:
        raise ValueError(f"launch must be one of {LAUNCH_MODES} (or ${LAUNCH_ENV}); got {mode!r}")
    return mode


class _Launcher:
    """Launch one kernel many times with the same argument types.

    ``dispatch``: ``dispatcher[grid, block, stream, shared](*args)``, Numba's
    public path, which re-types every argument on every call. ``direct``:
    the kernel is compiled once for the argument types and each launch calls
    the compiled kernel's ``launch`` with the dispatcher's own (cached)
    launch configuration -- what ``dispatcher.call`` does, minus the typing;
    a per-step loop pays the host overhead T times, so this is the cheaper
    per-step path. If a direct launch fails on first use, the launcher falls
    back to ``dispatch`` (with a warning) and says so in ``self.mode``.
    The simulator has no compiled kernels: it always dispatches.
    """

    def __init__(self, dispatcher, args, launch: str | None = None):
        self.dispatcher = dispatcher
        self.kernel = None
        self.mode = "dispatch"
        self._configs = {}
        self._tried = False
        if not simulator():
            types = tuple(dispatcher.typeof_pyval(a) for a in args)
            self.kernel = dispatcher.compile(types)
            self.mode = _launch_mode(launch)

    def _config(self, grid, block, shared):
        key = (grid, block, shared)
        cfg = self._configs.get(key)
        if cfg is None:
            with warnings.catch_warnings():
                # Small grids are the subject here (B=1, H=256), not a mistake.
                warnings.simplefilter("ignore", category=Warning)
                cfg = self.dispatcher[grid, block, 0, shared]
            self._configs[key] = cfg
        return cfg

    def __call__(self, grid, block, args, shared=0):
        cfg = self._config(grid, block, shared)
        if self.mode == "direct":
            if self._tried:
                self.kernel.launch(args, cfg.griddim, cfg.blockdim, cfg.stream, cfg.sharedmem)
                return
            self._tried = True
            try:
                self.kernel.launch(args, cfg.griddim, cfg.blockdim, cfg.stream, cfg.sharedmem)
                return
            except Exception as e:  # an API change in numba-cuda: use the public path
                warnings.warn(f"direct kernel launch failed ({type(e).__name__}: {e}); "
                              "falling back to the dispatcher", RuntimeWarning, stacklevel=2)
                self.mode = "dispatch"
        cfg(*args)


def _check(name, a, shape, dtype):
    if tuple(a.shape) != tuple(shape):
        raise ValueError(f"{name} has shape {tuple(a.shape)}; expected {tuple(shape)}")
    if np.dtype(a.dtype) != np.dtype(dtype):
        raise TypeError(f"{name} has dtype {a.dtype}; expected {np.dtype(dtype)}")


def _is_device(a) -> bool:
    # Device arrays (Numba's, CuPy's, the simulator's) are not ndarrays;
    # the simulator's have no __cuda_array_interface__, hence copy_to_host.
    return not isinstance(a, np.ndarray) and (
        hasattr(a, "__cuda_array_interface__") or hasattr(a, "copy_to_host"))


def _to_device(a, name="array"):
    from numba import cuda

    if _is_device(a):
        return a
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy array or a CUDA device array; "
                        f"got {type(a).__name__}")
    return cuda.to_device(np.ascontiguousarray(a))


def matmul_nt(a, w, out=None):
    """``out (M, N) = a (M, K) @ w (N, K).T`` with the project's tiled kernel.

    Parameters
    ----------
    a : ndarray or device array, shape (M, K)
    w : ndarray or device array, shape (N, K), same dtype as ``a``
    out : device array, shape (M, N), optional
        Written in place; allocated when None.

    Returns
    -------
    device array, shape (M, N)
        Not synchronised: call ``numba.cuda.synchronize()`` (or
        ``copy_to_host()``, which waits) before reading it on the host.
    """
    from numba import cuda

    from . import _cuda_kernels as K

    if len(a.shape) != 2 or len(w.shape) != 2:
        raise ValueError(f"a and w must be 2-D; got shapes {tuple(a.shape)} and {tuple(w.shape)}")
    m, k = a.shape
    n = w.shape[0]
    if w.shape[1] != k:
        raise ValueError(f"w has shape {tuple(w.shape)}; expected (N, K) with K={k} "
                         f"to match a {tuple(a.shape)}")
    if m < 1 or n < 1 or k < 1:
        raise ValueError(f"empty product: a {tuple(a.shape)}, w {tuple(w.shape)}")
    dtype = np.dtype(a.dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"a must be float32 or float64; got {dtype}")
    _check("w", w, (n, k), dtype)
    d_a, d_w = _to_device(a, "a"), _to_device(w, "w")
    if out is None:
        out = cuda.device_array((m, n), dtype=dtype)
    _check("out", out, (m, n), dtype)
    grid = (math.ceil(n / K.MM_T), math.ceil(m / K.MM_T))
    kern = K.matmul_nt_kernel(dtype)
    args = (d_a, d_w, out)
    _Launcher(kern, args, "dispatch")(grid, K.MM_THREADS, args)
    return out


def _step_ks(batch: int) -> int:
    """k-slices per batch lane of the step kernel: idle y-threads split k instead."""
    from . import _cuda_kernels as K

    lanes = 1
    while lanes < K.STEP_TY and lanes * K.STEP_RB < batch:
        lanes *= 2
    return K.STEP_TY // lanes


# ---------------------------------------------------------------------------
# the runner: weights uploaded once, forward passes on device arrays
# ---------------------------------------------------------------------------

class CudaRunner:
    """Weights on the device once, then repeated forward passes (for timing).

    Parameters
    ----------
    cell : {"rnn", "lstm", "gru"}
    weights : Weights
        ``w_ih (G*H, I)``, ``w_hh (G*H, H)``, ``b_ih (G*H,)``, ``b_hh (G*H,)``.
    persistent : bool
        False: backend ``cuda`` (a launch per step). True: ``cuda-persistent``.
    projection : {"auto", "cublas", "kernel"}
        How ``x @ w_ih.T`` is computed; see :data:`PROJECTIONS`.
        ``self.projection`` holds the resolved choice.
    blocks : int, optional
        Persistent only: the number of blocks to aim for (each then owns
        ``ceil(H / blocks)`` hidden units). Default: the GPU's SM count (one
        block per SM), 1 in the simulator (the only correct count there).
    shared_limit : int, optional
        Persistent only: bytes of shared memory a block may use; default
        the device's opt-in maximum (227 KiB in the simulator, as on an H100). Tests lower
        it to reach the "does not fit" error cheaply.
    launch : {"direct", "dispatch"}, optional
        How the per-step kernels are launched (see :class:`_Launcher`);
        default ``$LSTM_NUMBA_CUDA_LAUNCH`` or ``direct``.

    Calling ``runner(x, h0, c0)`` validates, uploads, runs and returns NumPy
    ``(outputs (T,B,H), h (B,H), c (B,H) or None)``. For timing, upload once
    with :meth:`upload` and call :meth:`forward_device` + :meth:`synchronize`
    (or :meth:`time`), which move nothing between host and device.
    """

    def __init__(self, cell: str, weights: Weights, persistent: bool = False,
                 projection: str = "auto", blocks: int | None = None,
                 shared_limit: int | None = None, launch: str | None = None):
        name = "cuda-persistent" if persistent else "cuda"
        _require(name)
        from numba import cuda

        self.spec = spec(cell)
        self.cell = cell
        self.name = name
        self.persistent = bool(persistent)
        self.weights = check_weights(cell, weights)
        self.dtype = np.dtype(self.weights.dtype)
        self.hidden = self.weights.hidden_size
        self.input_size = self.weights.input_size
        self.projection = _resolve_projection(projection)
        self.launch = _launch_mode(launch)
        if blocks is not None and (not isinstance(blocks, (int, np.integer)) or blocks < 1):
            raise ValueError(f"blocks must be an int >= 1; got {blocks!r}")
        self.blocks_requested = blocks
        self.shared_limit = shared_limit
        self.d_w_ih, self.d_w_hh, self.d_b_ih, self.d_b_hh = (
            cuda.to_device(a) for a in self.weights)
        # The projection kernel reads w_ih (G*H, I) as is: out = x @ w_ih.T.
        self._work = {}          # (T, B) -> device buffers, reused across calls
        self.last_launch = {}    # geometry of the last forward (for reports/tests)

    # -- memory ---------------------------------------------------------------
    @property
    def weight_bytes(self) -> int:
        """Device bytes of the four weight arrays."""
        return int(sum(a.nbytes for a in self.weights))

    def workspace_bytes(self, seq_len: int, batch: int) -> int:
        """Device bytes of one forward's buffers: x, xp, hbuf, h0/c0 copies, c."""
        g, h, i, it = self.spec.n_gates, self.hidden, self.input_size, self.dtype.itemsize
        n = seq_len * batch * (i + g * h) + (seq_len + 1) * batch * h + batch * h
        if self.cell == "lstm":
            n += 2 * batch * h
        return int(n * it)

    def device_bytes(self, seq_len: int, batch: int) -> int:
        """Total device bytes one forward of (T, B) holds: weights + workspace."""
        return self.weight_bytes + self.workspace_bytes(seq_len, batch)

    # -- host API --------------------------------------------------------------
    def upload(self, x, h0=None, c0=None):
        """Validate and copy inputs to the device: ``(d_x, d_h0, d_c0 or None)``."""
        from numba import cuda

        p = prepare(self.cell, x, self.weights, h0, c0)
        return (cuda.to_device(p.x), cuda.to_device(p.h0),
                None if p.c0 is None else cuda.to_device(p.c0))

    def __call__(self, x, h0=None, c0=None, to_host: bool = True):
        """Forward pass from NumPy inputs.

        Returns NumPy ``(outputs (T,B,H), h (B,H), c (B,H) or None)``, or
        the device arrays when ``to_host`` is False (synchronised either way).
        """
        d_x, d_h0, d_c0 = self.upload(x, h0, c0)
        out, h, c = self.forward_device(d_x, d_h0, d_c0)
        self.synchronize()
        if not to_host:
            return out, h, c
        outputs = out.copy_to_host()
        return outputs, outputs[-1].copy(), None if c is None else c.copy_to_host()

    @staticmethod
    def synchronize():
        from numba import cuda

        cuda.synchronize()

    def time(self, d_x, d_h0, d_c0=None, repeat: int = 5, warmup: int = 1) -> list[float]:
        """Seconds of ``repeat`` forward passes on device inputs, each ended by
        a device synchronisation; ``warmup`` untimed passes first (compiles)."""
        for _ in range(warmup):
            self.forward_device(d_x, d_h0, d_c0)
            self.synchronize()
        out = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            self.forward_device(d_x, d_h0, d_c0)
            self.synchronize()
            out.append(time.perf_counter() - t0)
        return out

    # -- device API ------------------------------------------------------------
    def _workspace(self, t_len, bsz):
        from numba import cuda

        key = (t_len, bsz)
        ws = self._work.get(key)
        if ws is None:
            gh = self.spec.n_gates * self.hidden
            ws = {
                "xp": cuda.device_array((t_len, bsz, gh), dtype=self.dtype),
                "hbuf": cuda.device_array((t_len + 1, bsz, self.hidden), dtype=self.dtype),
                "c": cuda.device_array((bsz, self.hidden) if self.cell == "lstm" else (1, 1),
                                       dtype=self.dtype),
            }
            self._work = {key: ws}      # keep one shape: benchmarks sweep sizes
        return ws

    def forward_device(self, d_x, d_h0, d_c0=None):
        """One forward pass on device arrays, NOT synchronised.

        Parameters
        ----------
        d_x : device array (T, B, I); d_h0 : (B, H); d_c0 : (B, H) for the LSTM.

        Returns
        -------
        (outputs (T,B,H), h (B,H), c (B,H) or None) as device arrays (views of
        the runner's workspace: the next call overwrites them).
        """
        if len(d_x.shape) != 3:
            raise ValueError(f"x must have shape (T, B, I); got {tuple(d_x.shape)}")
        t_len, bsz, i = d_x.shape
        if t_len < 1 or bsz < 1:
            raise ValueError(f"x has shape {tuple(d_x.shape)}: T and B must be >= 1")
        h = self.hidden
        _check("x", d_x, (t_len, bsz, self.input_size), self.dtype)
        _check("h0", d_h0, (bsz, h), self.dtype)
        if self.cell == "lstm":
            if d_c0 is None:
                raise ValueError("c0 is required by the lstm runner's forward_device")
            _check("c0", d_c0, (bsz, h), self.dtype)
        # A persistent launch that cannot run fails here, before any work.
        plan = self.persistent_plan(bsz) if self.persistent else None
        ws = self._workspace(t_len, bsz)
        xp, hbuf, c = ws["xp"], ws["hbuf"], ws["c"]
        self._project(d_x, xp)
        hbuf[0].copy_to_device(d_h0)
        if self.cell == "lstm":
            c.copy_to_device(d_c0)
        if self.persistent:
            self._run_persistent(xp, hbuf, c, plan)
        else:
            self._run_steps(xp, hbuf, c)
        return hbuf[1:], hbuf[t_len], (c if self.cell == "lstm" else None)

    def _project(self, d_x, xp):
        t_len, bsz, i = d_x.shape
        gh = xp.shape[2]
        x2 = d_x.reshape(t_len * bsz, i)
        xp2 = xp.reshape(t_len * bsz, gh)
        if self.projection == "cublas":
            cp = cupy_or_none()
            # CuPy and Numba both use the legacy default stream here, so the
            # product is ordered before the recurrent kernels.
            cp.matmul(cp.asarray(x2), cp.asarray(self.d_w_ih).T, out=cp.asarray(xp2))
        else:
            matmul_nt(x2, self.d_w_ih, xp2)

    def _check_buffers(self, xp, hbuf, c):
        """Shapes and dtypes of every array a launch indexes (kernels do no bounds checks).

        Checked once per sequence: all T launches (or the one persistent
        launch) use these same arrays.
        """
        t_len, bsz, gh = xp.shape
        h = self.hidden
        _check("xp", xp, (t_len, bsz, gh), self.dtype)
        _check("hbuf", hbuf, (t_len + 1, bsz, h), self.dtype)
        _check("w_hh", self.d_w_hh, (gh, h), self.dtype)
        _check("b_ih", self.d_b_ih, (gh,), self.dtype)
        _check("b_hh", self.d_b_hh, (gh,), self.dtype)
        if self.cell == "lstm":
            _check("c", c, (bsz, h), self.dtype)

    def _run_steps(self, xp, hbuf, c):
        from . import _cuda_kernels as K

        t_len, bsz, gh = xp.shape
        h = self.hidden
        self._check_buffers(xp, hbuf, c)
        ks = _step_ks(bsz)
        rows = (K.STEP_TY // ks) * K.STEP_RB
        grid = (math.ceil(h / K.STEP_TU), math.ceil(bsz / rows))
        block = (K.STEP_TU, K.STEP_TY)
        kern = K.step_kernel(self.cell, self.dtype, ks)
        args = [xp, self.d_w_hh, self.d_b_ih, self.d_b_hh, hbuf, c, 0]
        launch = _Launcher(kern, args, self.launch)
        for t in range(t_len):
            args[6] = t
            launch(grid, block, args)
        self.last_launch = {"grid": grid, "block": block, "ks": ks, "launches": t_len,
                            "path": launch.mode}

    # -- persistent geometry --------------------------------------------------
    def _device_limits(self):
        """(shared bytes a block may use, SM count) for this device."""
        from numba import cuda

        if simulator():
            # The simulator has no limit of its own; it is given an H100's
            # opt-in maximum (227 KiB) so that plans look like a real GPU's.
            return 227 * 1024, 1
        dev = cuda.get_current_device()
        return int(dev.MAX_SHARED_MEMORY_PER_BLOCK_OPTIN), int(dev.MULTIPROCESSOR_COUNT)

    def persistent_plan(self, batch: int) -> dict:
        """Geometry of a persistent launch for batch ``batch`` (no launch).

        Returns a dict with ``units`` (hidden units per block), ``blocks``,
        ``ks`` (threads per dot product), ``stride``, ``stage_h``,
        ``dynamic_shared`` and ``static_shared`` bytes. Raises BackendUnavailable naming the limit when this (H, B,
        dtype) cannot run persistently on this device.
        """
        from . import _cuda_kernels as K

        h, cell, dt = self.hidden, self.cell, self.dtype
        limit, sms = self._device_limits()
        if self.shared_limit is not None:
            limit = min(limit, int(self.shared_limit))
        static = K.persistent_static_shared_bytes(dt)
        target = self.blocks_requested or (1 if simulator() else sms)
        units = max(1, math.ceil(h / target))
        ks = K.persistent_k_slices(self.spec.n_gates * units * math.ceil(batch / K.PERSIST_BC))
        stride = K.persistent_row_stride(h, dt, ks)

        def need(stage):
            return K.persistent_dynamic_shared_bytes(cell, h, batch, units, dt, stage, ks)

        stage_h = static + need(True) <= limit
        dyn = need(stage_h)
        if static + dyn > limit:
            g, it = self.spec.n_gates, dt.itemsize
            total = g * h * h * it
            raise BackendUnavailable(
                f"cuda-persistent: the weights do not fit on chip: a block owning {units} "
                f"hidden unit(s) of H={h} ({cell}, {dt}) needs {static + dyn} bytes of "
                f"shared memory ({g}*{units} rows of w_hh, each {stride} x {it} bytes, "
                f"plus B={batch} x {g * units} pre-activations), over the limit of "
                f"{limit} bytes per block. w_hh is {total} bytes in all, so it needs at "
                f"least {math.ceil(total / limit)} co-resident blocks (asked for "
                f"{target}); use more blocks, float32, a smaller H or batch, or the "
                f"'cuda' backend")
        blocks = math.ceil(h / units)
        return {"units": units, "blocks": blocks, "stride": stride, "ks": ks,
                "stage_h": bool(stage_h), "dynamic_shared": dyn,
                "static_shared": static, "shared_limit": limit}

    def _run_persistent(self, xp, hbuf, c, plan):
        from . import _cuda_kernels as K

        plan = dict(plan)
        self._check_buffers(xp, hbuf, c)
        kern = K.persistent_kernel(self.cell, self.dtype, plan["ks"])
        args = (xp, self.d_w_hh, self.d_b_ih, self.d_b_hh, hbuf, c,
                plan["units"], plan["stride"], int(plan["stage_h"]))
        launch = _Launcher(kern, args, self.launch)
        block = (K.PERSIST_NT,)
        dyn = plan["dynamic_shared"]
        if launch.kernel is not None:
            _allow_dynamic_shared(launch.kernel, dyn)
            max_blocks = launch.kernel.max_cooperative_grid_blocks(block[0], dyn)
        else:
            max_blocks = kern.overloads[None].max_cooperative_grid_blocks(block[0])
        if plan["blocks"] > max_blocks:
            raise BackendUnavailable(
                f"cuda-persistent: the grid needs {plan['blocks']} blocks "
                f"({plan['units']} hidden units each, {dyn} bytes of dynamic shared "
                f"memory) but at most {max_blocks} can be co-resident for a "
                f"cooperative launch on this device (max_cooperative_grid_blocks); "
                f"pass blocks=<= {max_blocks}")
        plan["max_cooperative_blocks"] = int(max_blocks)
        launch((plan["blocks"],), block, args, shared=dyn)
        self.last_launch = {"grid": (plan["blocks"],), "block": block, "launches": 1,
                            "path": launch.mode, **plan}


def _allow_dynamic_shared(kernel, nbytes: int) -> None:
    """Let ``kernel`` use ``nbytes`` of dynamic shared memory.

    CUDA caps dynamic shared memory at 48 KiB per block unless the kernel's
    MAX_DYNAMIC_SHARED_SIZE_BYTES attribute is raised (up to the device's
    opt-in maximum, 227 KiB on an H100). numba-cuda has no API for it, so it
    is set through the driver binding, as numba-cuda sets the carveout.
    """
    if nbytes <= 48 * 1024:
        return
    from numba.cuda.cudadrv.driver import binding, driver

    try:
        fn = kernel._codelibrary.get_cufunc()
        attr = binding.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
        try:   # library-based kernels (numba-cuda >= 0.2x, as the carveout setter)
            driver.cuKernelSetAttribute(attr, int(nbytes), fn.handle, fn.device.id)
        except Exception:   # a CUfunction handle (older numba-cuda)
            driver.cuFuncSetAttribute(fn.handle, attr, int(nbytes))
    except Exception as e:
        raise BackendUnavailable(
            f"cuda-persistent: could not allow {nbytes} bytes of dynamic shared memory "
            f"per block (CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES): "
            f"{type(e).__name__}: {e}") from e


# ---------------------------------------------------------------------------
# backends
# ---------------------------------------------------------------------------

def _forward(p, persistent):
    runner = CudaRunner(p.spec.name, p.weights, persistent=persistent)
    return runner(p.x, p.h0, p.c0)


def forward_cuda(p):
    """Backend ``cuda``: ``(outputs (T,B,H), h (B,H), c (B,H) or None)``.

    One launch per step after one input-projection product; see the module
    docstring. Uses ``projection="auto"``.
    """
    return _forward(p, False)


def forward_cuda_persistent(p):
    """Backend ``cuda-persistent``: ``(outputs (T,B,H), h (B,H), c (B,H) or None)``.

    One cooperative launch for the sequence. Raises BackendUnavailable when
    the weights do not fit in the blocks' shared memory.
    """
    return _forward(p, True)


def make_runner(name: str, cell: str, weights: Weights) -> CudaRunner:
    """A :class:`CudaRunner` for backend ``name`` (used by ``Backend.runner``)."""
    return CudaRunner(cell, weights, persistent=(name == "cuda-persistent"))


__all__ = ["CudaRunner", "PROJECTIONS", "forward_cuda", "forward_cuda_persistent",
           "make_runner", "matmul_nt", "simulator", "unavailable"]
