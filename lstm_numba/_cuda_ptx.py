"""Every CUDA kernel of both designs through NVVM to PTX, without a GPU.

The ahead-of-time check the tests run (``tests/test_gpu.py``): the simulator
cannot see what only the real compiler rejects or degrades.
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from . import _cuda_persistent as P
from . import _cuda_step as S
from ._cuda_kernels import matmul_nt_kernel, nbtype
from .cells import CELLS


def compile_ptx_all(cc=(9, 0)) -> dict:
    """Compile every kernel of every (cell, dtype) to PTX for ``cc``; no GPU needed.

    The simulator runs kernels as Python, so it cannot catch what only the
    real compiler rejects (a non-literal array shape, a float64 leak into a
    float32 kernel, a per-thread array left in local memory). This runs
    Numba's CUDA pipeline through NVVM instead (needs libnvvm, e.g. the
    nvidia-cuda-nvcc wheel, not a driver) and returns ``{name: ptx}``.
    Device functions are compiled for "the current device", so without a
    driver a stand-in device with ``cc`` is used. The recurrent kernels are
    compiled with warp shuffles, as on a GPU.
    """
    from numba import types
    from numba.cuda import dispatcher as _disp

    class _Device:
        compute_capability = cc

    saved = _disp.get_current_device
    try:
        if not cuda.is_available():
            _disp.get_current_device = lambda: _Device()
        out = {}
        for dtype in (np.float32, np.float64):
            nb = nbtype(dtype)
            a1, a2, a3 = (types.Array(nb, n, "C") for n in (1, 2, 3))
            i64 = types.int64
            jobs = [("matmul_nt", matmul_nt_kernel(dtype), (a2, a2, a2))]
            # the tiles the planners pick at B=1 (K split) and B=64 (8-row
            # batch tiles, the most registers); float64 at the largest only
            steps = ((1, 4, 1), (8, 1, 4)) if dtype == np.float32 else ((8, 1, 4),)
            pers = (((1, 4, "registers", 8), (8, 1, "global", 0)) if dtype == np.float32
                    else ((8, 1, "shared", 0),))
            for cell in CELLS:
                for bt, kw, upb in steps:
                    jobs.append((f"step_b{bt}k{kw}_{cell}",
                                 S.step_kernel(cell, dtype, bt, kw, upb, True),
                                 (a3, a2, a1, a1, a3, a2, i64)))
                for bt, kw, wh, nk in pers:
                    jobs.append((f"persistent_b{bt}k{kw}{wh[0]}_{cell}",
                                 P.persistent_kernel(cell, dtype, bt, kw, wh, True, nk),
                                 (a3, a2, a1, a1, a3, a2, i64)))
            if dtype == np.float32:
                jobs.append(("barrier_probe", P.barrier_probe_kernel(), (i64,)))
            for name, kern, sig in jobs:
                ptx, _ = cuda.compile_ptx(kern.py_func, sig, cc=cc)
                out[f"{name}_{np.dtype(dtype).name}"] = ptx
        return out
    finally:
        _disp.get_current_device = saved
