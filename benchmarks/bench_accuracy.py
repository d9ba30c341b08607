"""Question: does every backend still compute the same thing?

``track_max_abs_error`` is the largest absolute difference, over the outputs
(T, B, H), the last h and (LSTM) the last c, between a backend and the
``numpy`` oracle run in float64 on the same inputs (the harness's
``max_abs_err`` against ``reference.oracle64``; the tests' bounds are the
harness's ``TOLERANCES``). The tests assert a bound;
this puts the number itself in the report, so a drift (a faster kernel that
rounds more) shows as a step in asv's graph. Odd sizes on purpose: T=50,
B=3, I=45, H=61, float32 (fast); longer T and float64 too in full.
"""
import numpy as np

import lstm_numba as ln
from lstm_numba.measure import make_problem, max_abs_err
from lstm_numba.reference import oracle64

from .common import cpu_backends, make_runner, pick, require_backend, set_threads

BACKENDS = cpu_backends()
T, B, I, H = pick(fast=(50, 3, 45, 61), full=(1000, 3, 45, 61), smoke=(5, 3, 4, 7))


class Accuracy:
    """Max |error| against the float64 oracle, per cell, backend and dtype."""

    params = [list(ln.CELLS), BACKENDS,
              pick(fast=["float32"], full=["float32", "float64"], smoke=["float32", "float64"])]
    param_names = ["cell", "backend", "dtype"]

    def setup(self, cell, backend, dtype):
        require_backend(backend)
        set_threads(1)
        x, w, h0, c0 = make_problem(cell, T, B, H, I, dtype=np.dtype(dtype), seed=7)
        self.ref = oracle64(cell, x, w, h0, c0)
        self.got = make_runner(backend, cell, w)(x, h0, c0)

    def track_max_abs_error(self, cell, backend, dtype):
        """max |backend - float64 oracle| over outputs, h and c."""
        return max_abs_err(self.got, self.ref)

    track_max_abs_error.unit = "abs error"
