"""Where the CUDA backends can run: numba-cuda present, a GPU or the simulator, CuPy.

The lowest layer of the CUDA side: imports nothing else of the package but
:mod:`.backends` (for the exception), so every other ``_cuda_*`` module and
:mod:`.gpu` can use it without an import cycle.
"""
from __future__ import annotations

import importlib.util

from .backends import BackendUnavailable

PROJECTIONS = ("auto", "cublas", "kernel")
"""How the input projection is computed: ``cublas`` (CuPy's matmul, needs
CuPy and a real GPU), ``kernel`` (the project's tiled kernel) or ``auto``
(``cublas`` when possible, else ``kernel``)."""

NUMBA_CUDA_MISSING = ("numba-cuda is not installed (pip install 'lstm-numba[cuda]'); "
                      "Numba's built-in CUDA target is deprecated and not used")


def numba_cuda_installed() -> bool:
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
    if not numba_cuda_installed():
        return NUMBA_CUDA_MISSING
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


def require(name: str) -> None:
    """Raise BackendUnavailable saying why backend ``name`` cannot run here."""
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


def resolve_projection(projection: str) -> str:
    """``projection`` with ``auto`` resolved; errors name what is missing."""
    if projection not in PROJECTIONS:
        raise ValueError(f"projection must be one of {PROJECTIONS}; got {projection!r}")
    have = cupy_or_none() is not None
    if projection == "auto":
        return "cublas" if have else "kernel"
    if projection == "cublas" and not have:
        raise BackendUnavailable("projection='cublas' needs CuPy on a real GPU "
                                 "(pip install cupy-cuda12x); use projection='kernel'")
    return projection


def device_limits() -> tuple[int, int]:
    """(opt-in shared bytes per block, SM count) of the current device.

    The simulator has no limit of its own; it is given an H100's opt-in
    maximum (227 KiB) and one SM, so plans look like a real GPU's and a
    cooperative grid there is one block (the only correct count).
    """
    if simulator():
        return 227 * 1024, 1
    from numba import cuda

    dev = cuda.get_current_device()
    return int(dev.MAX_SHARED_MEMORY_PER_BLOCK_OPTIN), int(dev.MULTIPROCESSOR_COUNT)
