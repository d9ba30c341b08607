"""Two atomic operations on int64 arrays for @njit code (Numba has none on CPU).

Used by ``numba-parallel``'s hidden split (cpu.py) to hand out work items
and count finished ones between threads that stay inside one parallel region
for a whole sequence, instead of a fork and join per step. Both are
sequentially consistent, so the plain stores a thread made before
:func:`fetch_add` are visible to a thread that then sees the count through
:func:`load`.
"""
from __future__ import annotations

from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.arrayobj import make_array


def _pointer(context, builder, aryty, ary, idx):
    a = make_array(aryty)(context, builder, ary)
    return cgutils.get_item_pointer(context, builder, aryty, a, [idx])


@intrinsic
def fetch_add(typingctx, arr, idx, val):
    """``old = arr[idx]; arr[idx] += val; return old``, atomically (int64 1-D C)."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64 and arr.ndim == 1):
        return None
    sig = types.int64(arr, types.intp, types.int64)

    def codegen(context, builder, sig, args):
        ptr = _pointer(context, builder, sig.args[0], args[0], args[1])
        return builder.atomic_rmw("add", ptr, args[2], "seq_cst")

    return sig, codegen


@intrinsic
def load(typingctx, arr, idx):
    """``arr[idx]`` read atomically (seq_cst): never hoisted out of a spin loop."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64 and arr.ndim == 1):
        return None
    sig = types.int64(arr, types.intp)

    def codegen(context, builder, sig, args):
        ptr = _pointer(context, builder, sig.args[0], args[0], args[1])
        return builder.load_atomic(ptr, "seq_cst", 8)

    return sig, codegen


# Resolved by name in the C library at link time (so kernels stay cacheable).
_sched_yield = types.ExternalFunction("sched_yield", types.int32())

#: Polls of a counter before a waiting thread starts yielding its core (about
#: 10-20 microseconds): long enough to cover a step's wait on an idle machine,
#: short enough that on a busy one a descheduled partner gets the core back.
SPIN_POLLS = 4000


@njit(inline="always")
def wait_at_least(arr, idx, n):
    """Spin until ``arr[idx] >= n`` (atomic loads), then yield between polls."""
    polls = 0
    while load(arr, idx) < n:
        polls += 1
        if polls > SPIN_POLLS:
            _sched_yield()
