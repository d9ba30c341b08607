"""Launching numba-cuda kernels cheaply: checks, prepared launches, CUDA graphs.

numba-cuda's public launch (``dispatcher[grid, block](*args)``) types every
argument and marshals every array on every call: ~30 us with one array,
~84 us with six on an H100 (DESIGN.md), more than a fast step kernel runs.
The runners therefore do that work once per shape:

:class:`PreparedLaunch`
    The kernel compiled for the argument types, its ``cuda.core``
    ``LaunchConfig`` (cooperative when it uses a grid barrier) and the
    marshalled kernel parameters, all built once; a call is one
    ``cuda.core.launch``. Only a trailing integer (the step ``t``) may vary.
:func:`build_graph`
    The T step launches captured once into a CUDA graph through a
    ``cuda.core`` GraphBuilder (numba-cuda >= 0.29 launches onto one,
    NVIDIA/numba-cuda PR #836); a call replays it with one
    ``graph.launch``. Nothing allocates, copies to the host or synchronises
    inside the capture.
:class:`Launcher`
    The public path (``dispatch``), used for one-off kernels and by the
    simulator, which has no compiled kernels.

Plus the argument checks every launch is preceded by (kernels do none).
"""
from __future__ import annotations

import ctypes
import os
import warnings

import numpy as np

from ._cuda_env import simulator

LAUNCH_MODES = ("graph", "direct", "dispatch")
"""``graph``: the step launches replayed from a CUDA graph (``cuda`` only);
``direct``: prepared launches (:class:`PreparedLaunch`); ``dispatch``:
numba-cuda's public launch path, which re-types every argument."""
LAUNCH_ENV = "LSTM_NUMBA_CUDA_LAUNCH"


def launch_mode(launch: str | None, default: str = "graph") -> str:
    """The launch mode asked for (argument, else ``$LSTM_NUMBA_CUDA_LAUNCH``, else default)."""
    mode = launch or os.environ.get(LAUNCH_ENV, default).strip().lower() or default
    if mode not in LAUNCH_MODES:
        raise ValueError(f"launch must be one of {LAUNCH_MODES} (or ${LAUNCH_ENV}); got {mode!r}")
    return mode


# ---------------------------------------------------------------- arguments

def check(name, a, shape, dtype):
    """ValueError/TypeError naming ``name`` unless ``a`` has ``shape`` and ``dtype``."""
    if tuple(a.shape) != tuple(shape):
        raise ValueError(f"{name} has shape {tuple(a.shape)}; expected {tuple(shape)}")
    if np.dtype(a.dtype) != np.dtype(dtype):
        raise TypeError(f"{name} has dtype {a.dtype}; expected {np.dtype(dtype)}")


def is_device(a) -> bool:
    # Device arrays (Numba's, CuPy's, the simulator's) are not ndarrays;
    # the simulator's have no __cuda_array_interface__, hence copy_to_host.
    return not isinstance(a, np.ndarray) and (
        hasattr(a, "__cuda_array_interface__") or hasattr(a, "copy_to_host"))


def to_device(a, name="array"):
    """``a`` if it is a device array, else a device copy of the ndarray ``a``."""
    from numba import cuda

    if is_device(a):
        return a
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy array or a CUDA device array; "
                        f"got {type(a).__name__}")
    return cuda.to_device(np.ascontiguousarray(a))


def copy_d2d(dst, src) -> None:
    """``dst[...] = src`` on the device (same shape and dtype, checked by the caller).

    On a GPU a raw ``cuMemcpyDtoD`` on the legacy default stream (ordered
    with the kernels, no host synchronisation, none of ``copy_to_device``'s
    per-call checks); in the simulator ``copy_to_device``.
    """
    if simulator() or not hasattr(src, "device_ctypes_pointer"):   # e.g. a CuPy array
        dst.copy_to_device(src)
        return
    from numba.cuda.cudadrv import driver

    driver.device_to_device(dst, src, dst.nbytes)


# ---------------------------------------------------------------- launching

def _quiet_config(dispatcher, grid, block, stream, shared):
    with warnings.catch_warnings():
        # Small grids are the subject here (B=1, H=256), not a mistake.
        warnings.simplefilter("ignore", category=Warning)
        return dispatcher[grid, block, stream, shared]


class Launcher:
    """Launch through numba-cuda's public path, configurations cached.

    Used where a launch happens once per call (the projection kernel) and
    everywhere in the simulator, which has no compiled kernels.
    """

    mode = "dispatch"

    def __init__(self, dispatcher):
        self.dispatcher = dispatcher
        self._configs = {}

    def __call__(self, grid, block, args, shared=0):
        key = (grid, block, shared)
        cfg = self._configs.get(key)
        if cfg is None:
            cfg = self._configs[key] = _quiet_config(self.dispatcher, grid, block, 0, shared)
        cfg(*args)


def _launch_config(grid, block, shared, cooperative):
    from cuda.core import LaunchConfig

    try:    # cuda.core >= 1.0
        return LaunchConfig(grid=grid, block=block, shmem_size=shared,
                            is_cooperative=cooperative)
    except TypeError:
        return LaunchConfig(grid=grid, block=block, shmem_size=shared,
                            cooperative_launch=cooperative)


class PreparedLaunch:
    """One compiled kernel, one grid, parameters marshalled once (GPU only).

    Parameters
    ----------
    dispatcher : numba-cuda dispatcher
    args : sequence
        Arguments of a first launch; their types select the compiled kernel
        and their values are marshalled now. Device arrays are referenced by
        pointer: they must outlive this object (the runner's workspace does).
    grid, block : tuple of int
    shared : int
        Dynamic shared memory bytes.

    ``params_with_last(v)`` gives the parameter list with the trailing
    int64 argument replaced (the step index); ``launch(params, stream)``
    launches on a ``cuda.core`` stream or GraphBuilder.
    """

    def __init__(self, dispatcher, args, grid, block, shared=0):
        types = tuple(dispatcher.typeof_pyval(a) for a in args)
        self.kernel = dispatcher.compile(types)
        self.cooperative = bool(getattr(self.kernel, "cooperative", False))
        self.config = _launch_config(tuple(grid), tuple(block), int(shared), self.cooperative)
        self.func = self.kernel._codelibrary.get_cufunc().kernel
        # The dispatcher's own (cached) configuration holds the cuda.core
        # stream for the legacy default stream, where CuPy and the copies run.
        self.stream = _quiet_config(dispatcher, grid, block, 0, shared).stream
        retr, params = [], []
        for ty, val in zip(self.kernel.argument_types, args):
            self.kernel._prepare_args(ty, val, 0, retr, params)
        self.params = params

    def params_with_last(self, value: int) -> list:
        return self.params[:-1] + [ctypes.c_int64(int(value))]

    def launch(self, params=None, stream=None):
        from cuda.core import launch

        launch(self.stream if stream is None else stream, self.config, self.func,
               *(self.params if params is None else params))


def build_graph(prepared: PreparedLaunch, param_lists):
    """Capture one launch of ``prepared`` per parameter list into a CUDA graph.

    Returns the executable ``cuda.core`` Graph; replay it with
    ``graph.launch(prepared.stream)``. Raises whatever capture raised.
    """
    try:
        from cuda.core import Device
    except ImportError:  # cuda.core < 0.4
        from cuda.core.experimental import Device

    dev = Device()
    dev.set_current()
    gb = dev.create_graph_builder()
    gb.begin_building()
    # numba-cuda launches onto a builder through its capturing stream
    # (driver._to_core_stream): do the same
    target = getattr(gb, "stream", gb)
    try:
        for params in param_lists:
            prepared.launch(params, stream=target)
    except BaseException:
        try:
            gb.end_building()
        finally:
            raise
    return gb.end_building().complete()


def allow_dynamic_shared(kernel, nbytes: int) -> None:
    """Let compiled ``kernel`` use ``nbytes`` of dynamic shared memory.

    CUDA caps dynamic shared memory at 48 KiB per block unless the kernel's
    MAX_DYNAMIC_SHARED_SIZE_BYTES attribute is raised (up to the device's
    opt-in maximum, 227 KiB on an H100). numba-cuda has no API for it, so it
    is set through the driver binding, as numba-cuda sets the carveout.
    """
    if nbytes <= 48 * 1024:
        return
    from numba.cuda.cudadrv.driver import binding, driver

    from .backends import BackendUnavailable

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
