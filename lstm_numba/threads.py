"""One place that sets the three thread pools a forward pass can touch.

NumPy's BLAS (OpenBLAS here), Numba's parallel pool and PyTorch's intra-op
pool each start their own threads. On a 2-core machine two busy pools
oversubscribe the cores; a threaded BLAS beside a Numba ``prange`` was
measured 7-300x slower than either alone. So the count is set for all three
together, and each backend uses at most one pool at a time (numba-parallel
calls no BLAS at all; see cpu.py).
"""
from __future__ import annotations

import contextlib
import os

_requested: int | None = None


def max_threads() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def set_num_threads(n: int) -> int:
    """Use ``n`` threads in BLAS, Numba and (if imported) PyTorch.

    Parameters
    ----------
    n : int
        1 <= n <= :func:`max_threads`.

    Returns
    -------
    int
        The previous setting (as returned by :func:`get_num_threads`).
    """
    from .validation import check_size

    global _requested
    n = check_size("n", n)
    if n > max_threads():
        raise ValueError(f"n={n} threads requested but this process may use only "
                         f"{max_threads()} cores")
    previous = get_num_threads()
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n, user_api="blas")
    try:
        import numba

        # Numba's pool may not exceed NUMBA_NUM_THREADS, fixed when it starts.
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    except ImportError:  # pragma: no cover - numba is a dependency
        pass
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    _requested = n
    return previous


def get_num_threads() -> int:
    """The count last given to :func:`set_num_threads` (all cores before that)."""
    return _requested if _requested is not None else max_threads()


@contextlib.contextmanager
def num_threads(n: int):
    """Context manager: ``with num_threads(1): ...`` then restore the old count."""
    previous = set_num_threads(n)
    try:
        yield n
    finally:
        set_num_threads(previous)

