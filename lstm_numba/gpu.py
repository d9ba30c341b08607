"""numba.cuda backends ``cuda`` and ``cuda-persistent``: the public host side.

Two designs of the same forward pass, each its own runner over a shared
base (:class:`~lstm_numba._cuda_runner.CudaRunnerBase`: weights uploaded
once, validation, the input projection, per-shape workspace):

``cuda`` -- :class:`StepRunner` (:mod:`._cuda_step`)
    The input projections of all T steps are one product
    ``x (T*B, I) @ w_ih.T`` -- through cuBLAS (via CuPy) when CuPy is
    importable on a real GPU, else through the project's own tiled kernel
    (``projection="kernel"``; the choice is explicit, see
    :data:`PROJECTIONS`). Then a step kernel per time step that spreads the
    step over the whole GPU (one warp per hidden unit x batch tile x K
    slice, coalesced loads of ``w_hh`` from L2, warp-shuffle reductions,
    gates in registers); the T launches are captured once per shape into a
    CUDA graph and replayed with one call.
``cuda-persistent`` -- :class:`PersistentRunner` (:mod:`._cuda_persistent`)
    The same projection, then ONE cooperative launch for the whole sequence
    (Persistent RNNs, Diamos et al. 2016): each block keeps its hidden
    units' rows of ``w_hh`` in shared memory for all T steps, ``h`` goes
    through L2, and the grid meets at one ``this_grid().sync()`` per step.
    Everything per shape (plan, compiled kernel, marshalled parameters,
    occupancy check, shared-memory attribute, buffers) is computed once.
    A grid larger than can be co-resident raises
    :class:`~lstm_numba.BackendUnavailable` saying so.

Every launch is preceded by shape checks in Python (the kernels do none);
results are copied back after an explicit ``cuda.synchronize()``.

Under numba-cuda's simulator (``NUMBA_ENABLE_CUDASIM=1``) both backends run
on the CPU, one block after another, through numba-cuda's public launch
path and with shared-memory reductions instead of warp shuffles (the
simulator has none); a grid-wide barrier is then only correct with a single
block, so there the persistent kernel defaults to one.
"""
from __future__ import annotations

import math
import os

import numpy as np

from ._cuda_env import (NUMBA_CUDA_MISSING as _NUMBA_CUDA_MISSING, PROJECTIONS,  # noqa: F401
                        cupy_or_none, simulator, unavailable)
from ._cuda_launch import LAUNCH_ENV, LAUNCH_MODES, Launcher, check, to_device
from .cells import Weights


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
    check("w", w, (n, k), dtype)
    d_a, d_w = to_device(a, "a"), to_device(w, "w")
    if out is None:
        out = cuda.device_array((m, n), dtype=dtype)
    check("out", out, (m, n), dtype)
    grid = (math.ceil(n / K.MM_T), math.ceil(m / K.MM_T))
    Launcher(K.matmul_nt_kernel(dtype))(grid, K.MM_THREADS, (d_a, d_w, out))
    return out


def __getattr__(name):
    # The runner classes import numba.cuda: load them on first use, so that
    # ``import lstm_numba`` stays cheap where no CUDA backend is used.
    if name == "StepRunner":
        from ._cuda_step import StepRunner
        return StepRunner
    if name == "PersistentRunner":
        from ._cuda_persistent import PersistentRunner
        return PersistentRunner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def CudaRunner(cell: str, weights: Weights, persistent: bool = False, **options):
    """A runner for ``cuda`` (``persistent=False``) or ``cuda-persistent``.

    Kept for callers of the one-class API: returns a :class:`StepRunner` or
    a :class:`PersistentRunner` (their docstrings list ``options``:
    ``projection``, ``launch``; ``blocks``, ``shared_limit`` for the
    persistent design; ``batch_tile``, ``k_split``, ``sms`` for the step
    design).
    """
    if persistent:
        from ._cuda_persistent import PersistentRunner
        return PersistentRunner(cell, weights, **options)
    from ._cuda_step import StepRunner
    return StepRunner(cell, weights, **options)


def make_runner(name: str, cell: str, weights: Weights):
    """The runner of backend ``name`` (used by ``Backend.runner``)."""
    return CudaRunner(cell, weights, persistent=(name == "cuda-persistent"))


def _forward(p, persistent):
    # A one-shot runner: capturing a graph of T launches to replay it once
    # costs more than launching them, so ``cuda`` launches directly here
    # (unless $LSTM_NUMBA_CUDA_LAUNCH says otherwise); runners kept for
    # repeated calls (make_runner) replay a graph.
    launch = None if os.environ.get(LAUNCH_ENV) or persistent else "direct"
    runner = CudaRunner(p.spec.name, p.weights, persistent=persistent, launch=launch)
    return runner(p.x, p.h0, p.c0)


def forward_cuda(p):
    """Backend ``cuda``: ``(outputs (T,B,H), h (B,H), c (B,H) or None)``.

    A step kernel per time step after one input-projection product; see the
    module docstring. ``projection="auto"``; launched directly (a one-shot
    call: a runner from :func:`make_runner` replays a CUDA graph instead).
    """
    return _forward(p, False)


def forward_cuda_persistent(p):
    """Backend ``cuda-persistent``: ``(outputs (T,B,H), h (B,H), c (B,H) or None)``.

    One cooperative launch for the sequence. Raises BackendUnavailable when
    the grid cannot be co-resident on this device.
    """
    return _forward(p, True)


__all__ = ["CudaRunner", "LAUNCH_MODES", "PROJECTIONS", "PersistentRunner", "StepRunner",
           "forward_cuda", "forward_cuda_persistent", "make_runner", "matmul_nt",
           "simulator", "unavailable", "cupy_or_none"]
