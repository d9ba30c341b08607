"""The host side both CUDA designs share: weights, uploads, projection, workspace.

:class:`CudaRunnerBase` holds the weights on the device, validates and
uploads inputs, computes the input projection of all T steps, and keeps,
per (T, B), everything a forward pass needs -- the plan (geometry), the
device buffers and the prepared launches -- so that a repeated call does
no planning, allocation, typing or marshalling. A design subclasses it with
``_plan`` (the geometry for a batch), ``_prepare`` (launch objects for a
shape) and ``_recur`` (the recurrence on the prepared shape):
:class:`~lstm_numba._cuda_step.StepRunner` (``cuda``) and
:class:`~lstm_numba._cuda_persistent.PersistentRunner` (``cuda-persistent``).

:class:`CudaRun` and :class:`TorchCudaRun` are the harness's
:class:`~lstm_numba.measure.DeviceRun` for the two designs and for cuDNN.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ._cuda_env import require, resolve_projection, simulator, cupy_or_none
from ._cuda_launch import Launcher, check, copy_d2d, launch_mode
from .cells import CELLS, Weights, spec
from .measure import DeviceRun, measure
from .validation import check_weights, prepare

MAX_SHAPES = 2
"""Shapes (T, B) whose buffers a runner keeps: benchmarks sweep sizes, and
one LSTM workspace at T=1024, B=64, H=1024 float32 is over 1 GiB."""


@dataclass
class Shape:
    """Everything one (T, B) needs, built on its first call and reused."""

    seq_len: int
    batch: int
    plan: dict
    xp: object                 # (T, B, G*H) input projection
    hbuf: object               # (T+1, B, H): h0 at row 0, h_t at row t+1
    c: object                  # (B, H) LSTM cell state, else (1, 1)
    h0_row: object             # hbuf[0], the view h0 is copied into
    outputs: object            # hbuf[1:]
    h_last: object             # hbuf[T]
    launch: dict = field(default_factory=dict)   # the design's prepared launches
    proj: tuple | None = None  # (d_x it was built for, callable) of the projection


class CudaRunnerBase:
    """Weights on the device once, then repeated forward passes.

    Parameters
    ----------
    cell : {"rnn", "lstm", "gru"}
    weights : Weights
        ``w_ih (G*H, I)``, ``w_hh (G*H, H)``, ``b_ih (G*H,)``, ``b_hh (G*H,)``.
    projection : {"auto", "cublas", "kernel"}
        How ``x @ w_ih.T`` is computed (see :data:`lstm_numba.gpu.PROJECTIONS`);
        ``self.projection`` holds the resolved choice.
    launch : {"graph", "direct", "dispatch"}, optional
        How kernels are launched (see :data:`lstm_numba._cuda_launch.LAUNCH_MODES`);
        default ``$LSTM_NUMBA_CUDA_LAUNCH`` or the design's best. The
        simulator always dispatches; ``self.last_launch["path"]`` says what ran.

    Calling ``runner(x, h0, c0)`` validates, uploads, runs and returns NumPy
    ``(outputs (T,B,H), h (B,H), c (B,H) or None)``. For timing, upload once
    with :meth:`upload` and call :meth:`forward_device` + :meth:`synchronize`
    (or use :meth:`device_run` with the harness), which move nothing between
    host and device.
    """

    name = "cuda"
    persistent = False
    default_launch = "direct"

    def __init__(self, cell: str, weights: Weights, projection: str = "auto",
                 launch: str | None = None):
        require(self.name)
        from numba import cuda

        self.spec = spec(cell)
        if cell not in CELLS:     # the parallel cells have no recurrent kernel here
            raise ValueError(f"cell {cell!r} has no {self.name} kernel; the CUDA "
                             f"backends run the recurrent cells {CELLS}")
        self.cell = cell
        self.weights = check_weights(cell, weights)
        self.dtype = np.dtype(self.weights.dtype)
        self.hidden = self.weights.hidden_size
        self.input_size = self.weights.input_size
        self.projection = resolve_projection(projection)
        self.launch = launch_mode(launch, self.default_launch)
        self.d_w_ih, self.d_w_hh, self.d_b_ih, self.d_b_hh = (
            cuda.to_device(a) for a in self.weights)
        self._shapes: dict = {}
        self.plans_made = 0          # planning runs (a repeated shape makes none)
        self.record_events = False   # CUDA events around projection and recurrence
        self.last_times: dict = {}   # ms of the last call's parts (record_events)
        self.last_launch: dict = {}  # geometry and launch path of the last forward

    # -- memory ---------------------------------------------------------------
    @property
    def weight_bytes(self) -> int:
        """Device bytes of the four weight arrays."""
        return int(sum(a.nbytes for a in self.weights))

    def workspace_bytes(self, seq_len: int, batch: int) -> int:
        """Device bytes of one forward's buffers: x, xp, hbuf, h0/c0 copies, c."""
        g, h, i, it = self.spec.n_gates, self.hidden, self.input_size, self.dtype.itemsize
        n = seq_len * batch * (i + g * h) + (seq_len + 1) * batch * h + batch * h
        if self.spec.has_cell_state:
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

    def device_run(self, x, h0=None, c0=None) -> "CudaRun":
        """A :class:`~lstm_numba.measure.DeviceRun` of this runner on uploaded inputs."""
        return CudaRun(self, self.upload(x, h0, c0))

    def time(self, d_x, d_h0, d_c0=None, repeat: int = 5, warmup: int = 1):
        """The harness's :func:`~lstm_numba.measure.measure` of :meth:`forward_device`,
        each call ended by a device synchronisation; ``warmup`` untimed calls
        first (compile, planning). Returns a Measurement."""
        return measure(lambda: self.forward_device(d_x, d_h0, d_c0), warmup=warmup,
                       min_calls=repeat, max_calls=repeat, budget_s=0.0,
                       sync=self.synchronize)

    # -- per-shape state -------------------------------------------------------
    def plan(self, batch: int) -> dict:
        """The design's geometry for ``batch`` (no launch); raises
        BackendUnavailable naming the limit when it cannot run here."""
        self.plans_made += 1
        return self._plan(batch)

    def _plan(self, batch: int) -> dict:  # pragma: no cover - interface
        raise NotImplementedError

    def _prepare(self, sh: Shape) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def _recur(self, sh: Shape) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def _kernel_args(self, sh: Shape, last: int) -> list:
        """The recurrent kernels' arguments ``(xp, w_hh, b_ih, b_hh, hbuf, c, last)``.

        Both designs' kernels take these six arrays; ``last`` is the step
        ``t`` (``cuda``) or the hidden units per block (``cuda-persistent``).
        A list, so a per-step launch can set ``last`` in place.
        """
        return [sh.xp, self.d_w_hh, self.d_b_ih, self.d_b_hh, sh.hbuf, sh.c, last]

    def _shape(self, t_len: int, bsz: int) -> Shape:
        sh = self._shapes.get((t_len, bsz))
        if sh is not None:
            return sh
        from numba import cuda

        plan = self.plan(bsz)           # fails here, before any allocation
        h, gh = self.hidden, self.spec.n_gates * self.hidden
        hbuf = cuda.device_array((t_len + 1, bsz, h), dtype=self.dtype)
        c = cuda.device_array((bsz, h) if self.spec.has_cell_state else (1, 1),
                              dtype=self.dtype)
        sh = Shape(t_len, bsz, plan, cuda.device_array((t_len, bsz, gh), dtype=self.dtype),
                   hbuf, c, hbuf[0], hbuf[1:], hbuf[t_len])
        self._check_buffers(sh)
        self._prepare(sh)
        while len(self._shapes) >= MAX_SHAPES:
            self._shapes.pop(next(iter(self._shapes)))
        self._shapes[(t_len, bsz)] = sh
        return sh

    def _check_buffers(self, sh: Shape) -> None:
        """Shapes and dtypes of every array a launch indexes (kernels do no bounds checks).

        Checked once per shape: every later launch uses these same arrays.
        """
        t_len, bsz, h = sh.seq_len, sh.batch, self.hidden
        gh = self.spec.n_gates * h
        check("xp", sh.xp, (t_len, bsz, gh), self.dtype)
        check("hbuf", sh.hbuf, (t_len + 1, bsz, h), self.dtype)
        check("w_hh", self.d_w_hh, (gh, h), self.dtype)
        check("b_ih", self.d_b_ih, (gh,), self.dtype)
        check("b_hh", self.d_b_hh, (gh,), self.dtype)
        if self.spec.has_cell_state:
            check("c", sh.c, (bsz, h), self.dtype)

    # -- device API ------------------------------------------------------------
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
        shape = d_x.shape
        if len(shape) != 3:
            raise ValueError(f"x must have shape (T, B, I); got {tuple(shape)}")
        t_len, bsz, _ = shape
        if t_len < 1 or bsz < 1:
            raise ValueError(f"x has shape {tuple(shape)}: T and B must be >= 1")
        check("x", d_x, (t_len, bsz, self.input_size), self.dtype)
        check("h0", d_h0, (bsz, self.hidden), self.dtype)
        lstm = self.spec.has_cell_state
        if lstm:
            if d_c0 is None:
                raise ValueError(f"c0 is required by the {self.cell} runner's forward_device")
            check("c0", d_c0, (bsz, self.hidden), self.dtype)
        sh = self._shape(t_len, bsz)
        ev = self._events() if self.record_events else None
        if ev:
            ev[0].record()
        self._project(d_x, sh)
        if ev:
            ev[1].record()
        copy_d2d(sh.h0_row, d_h0)
        if lstm:
            copy_d2d(sh.c, d_c0)
        if ev:
            ev[2].record()
        self._recur(sh)
        if ev:
            ev[3].record()
            self._pending_events = ev
        return sh.outputs, sh.h_last, (sh.c if lstm else None)

    def _events(self):
        from numba import cuda

        if getattr(self, "_ev", None) is None:
            self._ev = tuple(cuda.event() for _ in range(4))
        return self._ev

    def read_events(self) -> dict:
        """After a synchronised call with ``record_events``: ms of its parts.

        ``projection_ms`` (the input product), ``copy_ms`` (h0/c0 into the
        workspace), ``recurrence_ms`` (the step kernels / graph / the
        persistent kernel): GPU time between CUDA events, host cost excluded.
        """
        ev = getattr(self, "_pending_events", None)
        if ev is None:
            return {}
        self._pending_events = None
        self.last_times = {"projection_ms": ev[0].elapsed_time(ev[1]),
                           "copy_ms": ev[1].elapsed_time(ev[2]),
                           "recurrence_ms": ev[2].elapsed_time(ev[3])}
        return self.last_times

    def _project(self, d_x, sh: Shape) -> None:
        """``xp = x @ w_ih.T`` (cuBLAS or the project's kernel); wrappers cached per x."""
        if sh.proj is None or sh.proj[0] is not d_x:
            sh.proj = (d_x, self._projector(d_x, sh))
        sh.proj[1]()

    def _projector(self, d_x, sh: Shape):
        t_len, bsz, i = d_x.shape
        gh = sh.xp.shape[2]
        x2 = d_x.reshape(t_len * bsz, i)
        xp2 = sh.xp.reshape(t_len * bsz, gh)
        if self.projection == "cublas":
            cp = cupy_or_none()
            # CuPy and Numba both use the legacy default stream here, so the
            # product is ordered before the recurrent kernels.
            a, w, out = cp.asarray(x2), cp.asarray(self.d_w_ih).T, cp.asarray(xp2)
            return lambda: cp.matmul(a, w, out=out)
        from . import _cuda_kernels as K

        grid = (math.ceil(gh / K.MM_T), math.ceil(t_len * bsz / K.MM_T))
        args = (x2, self.d_w_ih, xp2)
        kern = K.matmul_nt_kernel(self.dtype)
        if not simulator():
            from ._cuda_launch import PreparedLaunch

            try:
                return PreparedLaunch(kern, args, grid, K.MM_THREADS).launch
            except Exception:   # an API change in numba-cuda: use the public path
                pass
        launch = Launcher(kern)
        return lambda: launch(grid, K.MM_THREADS, args)


# ---------------------------------------------------------------- device runs

class CudaRun(DeviceRun):
    """A CUDA runner on device-resident inputs: ``call()`` launches, ``sync()`` waits."""

    def __init__(self, runner: CudaRunnerBase, args):
        super().__init__(name=runner.name)
        self.runner = runner
        self.args = args
        self.extra = {"projection": runner.projection}

    def call(self) -> None:
        self.runner.forward_device(*self.args)

    def sync(self) -> None:
        self.runner.synchronize()

    def result(self):
        out, h, c = self.runner.forward_device(*self.args)
        self.runner.synchronize()
        return out.copy_to_host(), h.copy_to_host(), None if c is None else c.copy_to_host()

    def project_only(self) -> None:
        """The input projection alone, on the same buffers (not synchronised)."""
        d_x = self.args[0]
        self.runner._project(d_x, self.runner._shape(d_x.shape[0], d_x.shape[1]))


class TorchCudaRun(DeviceRun):
    """``torch.nn.RNN/LSTM/GRU`` (cuDNN) on device-resident inputs.

    ``tf32`` sets cuDNN's and cuBLAS's TF32 switches before every call (off:
    both sides compute in float32, the fair comparison).
    """

    def __init__(self, cell, w, x, h0, c0=None, tf32: bool = False):
        import torch

        from .peers import to_torch

        super().__init__(name="torch-cuda", extra={"tf32": bool(tf32)})
        self.torch = torch
        self.tf32 = bool(tf32)
        self.cell = cell
        self._set_tf32()
        self.module = to_torch(cell, w, "cuda")
        self.x = torch.from_numpy(np.ascontiguousarray(x)).to("cuda")
        self.h0 = torch.from_numpy(np.ascontiguousarray(h0)).to("cuda")[None]
        self.c0 = (None if c0 is None
                   else torch.from_numpy(np.ascontiguousarray(c0)).to("cuda")[None])
        self.weight_bytes = sum(a.nbytes for a in w)
        self.input_bytes = x.nbytes + h0.nbytes + (0 if c0 is None else c0.nbytes)

    def _set_tf32(self):
        self.torch.backends.cudnn.allow_tf32 = self.tf32
        self.torch.backends.cuda.matmul.allow_tf32 = self.tf32

    def _run(self):
        self._set_tf32()
        with self.torch.inference_mode():
            if self.c0 is not None:
                out, (h, c) = self.module(self.x, (self.h0, self.c0))
            else:
                out, h = self.module(self.x, self.h0)
                c = None
        return out, h, c

    def call(self) -> None:
        self._run()

    def sync(self) -> None:
        self.torch.cuda.synchronize()

    def result(self):
        out, h, c = self._run()
        self.sync()
        return (out.cpu().numpy(), h[0].cpu().numpy(),
                None if c is None else c[0].cpu().numpy())

    def device_bytes(self) -> int:
        """Peak bytes PyTorch's allocator took during one call, plus weights and inputs."""
        torch = self.torch
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        self.call()
        self.sync()
        return torch.cuda.max_memory_allocated() - base + self.weight_bytes + self.input_bytes
