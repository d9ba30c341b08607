"""Question: what does Numba's JIT cost before the first result?

For each Numba entry point (backend x cell x dtype) two fresh Python
processes run one tiny forward pass with ``NUMBA_CACHE_DIR`` pointing at a new
empty folder: the first compiles every kernel the call reaches (cold JIT)
and writes them to that cache; the second, with the same folder, loads them
(``cache=True``), which is what a user's second run pays.

- ``track_cold_compile``: first-call time minus a second, warm call's time
  in the cold process (the compile cost alone).
- ``track_cached_first_call``: the first call's time in the second process
  (cache lookup, loading, and one tiny forward pass).

Imports (numba, the backend module) are outside both figures. All subprocesses run once, in asv's
``setup_cache``; the ``track_`` benchmarks read its results.
"""
import json
import os
import subprocess
import sys
import tempfile

import lstm_numba as ln

from .common import pick

BACKENDS = ["numba", "numba-parallel"]
DTYPES = pick(fast=["float32"], full=["float32", "float64"], smoke=["float32"])
CELLS = pick(fast=list(ln.CELLS), full=list(ln.CELLS), smoke=["rnn"])

_SCRIPT = r"""
import json, sys, time
import numpy as np
import lstm_numba as ln
cell, backend, dtype = sys.argv[1:4]
from lstm_numba.backends import get
get(backend).load()  # import the backend module (and numba) outside the timing
w = ln.init_weights(cell, 5, 7, dtype=dtype, seed=0)
x = np.random.default_rng(0).standard_normal((3, 2, 5)).astype(dtype)
t0 = time.perf_counter(); ln.forward(cell, x, w, backend=backend)
t1 = time.perf_counter(); ln.forward(cell, x, w, backend=backend)
t2 = time.perf_counter()
print(json.dumps({"first": t1 - t0, "second": t2 - t1}))
"""


def _run_once(cell, backend, dtype, cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", _SCRIPT, cell, backend, dtype],
                         env=env, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"compile probe failed for {cell}/{backend}/{dtype}:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


class Compile:
    """Cold JIT compile time and cached first call, per Numba entry point."""

    params = [list(CELLS), BACKENDS, DTYPES]
    param_names = ["cell", "backend", "dtype"]
    timeout = pick(fast=600.0, full=1800.0, smoke=300.0)

    def setup_cache(self):
        results = {}
        for cell in CELLS:
            for backend in BACKENDS:
                for dtype in DTYPES:
                    with tempfile.TemporaryDirectory(prefix="lstm-numba-jit-") as d:
                        cold = _run_once(cell, backend, dtype, d)
                        warm = _run_once(cell, backend, dtype, d)
                    results[f"{cell}/{backend}/{dtype}"] = {
                        "cold_compile": max(cold["first"] - cold["second"], 0.0),
                        "cached_first_call": warm["first"],
                    }
        return results

    setup_cache.timeout = pick(fast=600.0, full=1800.0, smoke=300.0)

    def track_cold_compile(self, results, cell, backend, dtype):
        """Seconds of JIT compilation on the first call with an empty cache."""
        return results[f"{cell}/{backend}/{dtype}"]["cold_compile"]

    track_cold_compile.unit = "seconds"

    def track_cached_first_call(self, results, cell, backend, dtype):
        """Seconds of the first call in a new process with the cache filled."""
        return results[f"{cell}/{backend}/{dtype}"]["cached_first_call"]

    track_cached_first_call.unit = "seconds"
