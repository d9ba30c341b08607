"""Test set-up shared by every test module.

The CUDA kernels run in numba-cuda's simulator when no real GPU is present:
the simulator must be chosen before numba is first imported, so it is set here,
at collection time, before any test module imports lstm_numba.
"""
import ctypes.util
import os

if "NUMBA_ENABLE_CUDASIM" not in os.environ and ctypes.util.find_library("cuda") is None:
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import lstm_numba as ln  # noqa: E402


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dtype(request):
    return request.param


@pytest.fixture(params=ln.CELLS)
def cell(request):
    return request.param
