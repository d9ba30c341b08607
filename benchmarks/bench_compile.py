"""Question: what does Numba's JIT cost before the first result?

For each Numba entry point (backend x cell x dtype) two fresh Python
processes run one tiny forward pass with ``NUMBA_CACHE_DIR`` pointing at a new
empty folder: the first compiles every kernel the call reaches (cold JIT)
and writes them to that cache; the second, with the same folder, loads them
(``cache=True``), which is what a user's second run pays.

- ``track_cold_compile``: first-call time minus a second, warm call's time
  in the cold process (the compile cost alone).
- ``track_cold_compile_cpu``: the same in CPU seconds of the process (on a
  shared, loaded machine wall time overstates the compile several-fold;
  Numba compiles on one thread, so on an idle machine the two agree).
- ``track_cached_first_call``: the first call's time in the second process
  (cache lookup, loading, and one tiny forward pass).
- ``track_numba_startup``: Numba's own start-up, paid once per process by
  any Numba program before its first compile or cache load (its target
  context loads every registered implementation and, for its BLAS check,
  imports scipy.linalg): timed apart, before the first call, so that the
  two figures above are the package's own cost.
- ``CompileKernels.track_kernel_compile``: per ``@njit`` kernel of the
  package, the seconds Numba spent compiling it (all signatures reached,
  callees compiled on the way included), from Numba's ``numba:compile``
  events in the cold processes; the largest over the entry points measured.

Imports (numba, the backend module) are outside both figures. All subprocesses run once, in asv's
``setup_cache`` (one function shared by both classes, so asv runs it once);
the ``track_`` benchmarks read its results.
"""
import json
import os
import subprocess
import sys
import tempfile

import lstm_numba as ln

from .common import pick, reads_cache

BACKENDS = ["numba", "numba-parallel"]
DTYPES = pick(fast=["float32"], full=["float32", "float64"], smoke=["float32"])
CELLS = pick(fast=list(ln.CELLS), full=list(ln.CELLS), smoke=["rnn"])

_SCRIPT = r"""
import json, sys, time
import numpy as np
from numba.core import event
import lstm_numba as ln
cell, backend, dtype = sys.argv[1:4]
from lstm_numba.backends import get
get(backend).load()  # import the backend module (and numba) outside the timing
from numba.core.registry import cpu_target
s0 = time.perf_counter()
cpu_target.target_context.refresh()
cpu_target.typing_context.refresh()
startup = time.perf_counter() - s0
w = ln.init_weights(cell, 5, 7, dtype=dtype, seed=0)
x = np.random.default_rng(0).standard_normal((3, 2, 5)).astype(dtype)
with event.install_recorder("numba:compile") as rec:
    c0 = time.process_time(); t0 = time.perf_counter()
    ln.forward(cell, x, w, backend=backend)
    t1 = time.perf_counter(); c1 = time.process_time()
ln.forward(cell, x, w, backend=backend)
t2 = time.perf_counter(); c2 = time.process_time()
starts, kernels = {}, {}
for ts, ev in rec.buffer:
    f = ev.data["dispatcher"].py_func
    if not f.__module__.startswith("lstm_numba."):
        continue
    name = f.__module__[len("lstm_numba."):] + "." + f.__qualname__
    key = (name, str(ev.data["args"]))
    if ev.is_start:
        starts[key] = ts
    elif key in starts:
        kernels[name] = kernels.get(name, 0.0) + ts - starts.pop(key)
print(json.dumps({"first": t1 - t0, "second": t2 - t1, "first_cpu": c1 - c0,
                  "second_cpu": c2 - c1, "startup": startup, "kernels": kernels}))
"""


def _run_once(cell, backend, dtype, cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", _SCRIPT, cell, backend, dtype],
                         env=env, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"compile probe failed for {cell}/{backend}/{dtype}:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _kernel_names():
    """``module.function`` of every ``@njit`` kernel the CPU backends' modules define."""
    try:
        import lstm_numba.cpu  # noqa: F401  (imports the kernel modules)
        from numba.core.registry import CPUDispatcher
    except ImportError:  # pragma: no cover - numba is a dependency
        return []
    names = set()
    for mod_name, mod in list(sys.modules.items()):
        if mod is None or not mod_name.startswith("lstm_numba."):
            continue
        for value in list(vars(mod).values()):
            if isinstance(value, CPUDispatcher) and value.py_func.__module__ == mod_name:
                names.add(mod_name[len("lstm_numba."):] + "." + value.py_func.__qualname__)
    return sorted(names)


def _measure(self):
    """Cold and cached subprocesses for every entry point (asv's setup_cache)."""
    results, kernels = {}, {}
    for cell in CELLS:
        for backend in BACKENDS:
            for dtype in DTYPES:
                with tempfile.TemporaryDirectory(prefix="lstm-numba-jit-") as d:
                    cold = _run_once(cell, backend, dtype, d)
                    warm = _run_once(cell, backend, dtype, d)
                results[f"{cell}/{backend}/{dtype}"] = {
                    "cold_compile": max(cold["first"] - cold["second"], 0.0),
                    "cold_compile_cpu": max(cold["first_cpu"] - cold["second_cpu"], 0.0),
                    "cached_first_call": warm["first"],
                    "numba_startup": warm["startup"],
                }
                for name, sec in cold.get("kernels", {}).items():
                    kernels[name] = max(kernels.get(name, 0.0), sec)
    return {"entry": results, "kernels": kernels}


_measure.timeout = pick(fast=900.0, full=2400.0, smoke=300.0)
_ReadsMeasure = reads_cache(_measure)


def _entry_track(field, doc):
    """``Compile``'s ``track_<field>``: that figure of the entry point's row, in seconds.

    The four figures of an entry point sit in one row of ``_measure``'s result
    (cold compile, its CPU seconds, cached first call, Numba's start-up), so
    one function reads them all; ``doc`` is the benchmark's description.
    """
    def track(self, results, cell, backend, dtype):
        return results["entry"][f"{cell}/{backend}/{dtype}"][field]

    track.__name__ = track.__qualname__ = f"track_{field}"
    track.__doc__ = doc
    track.unit = "seconds"
    return track


class Compile(_ReadsMeasure):
    """Cold JIT compile time and cached first call, per Numba entry point."""

    params = [list(CELLS), BACKENDS, DTYPES]
    param_names = ["cell", "backend", "dtype"]

    track_cold_compile = _entry_track(
        "cold_compile", "Seconds of JIT compilation on the first call with an empty cache.")
    track_cached_first_call = _entry_track(
        "cached_first_call", "Seconds of the first call in a new process with the cache filled.")
    track_cold_compile_cpu = _entry_track(
        "cold_compile_cpu",
        "CPU seconds of JIT compilation on the first call with an empty cache.")
    track_numba_startup = _entry_track(
        "numba_startup",
        "Seconds of Numba's own start-up in the cached process (before the first call).")


class CompileKernels(_ReadsMeasure):
    """Compile seconds per @njit kernel (inclusive of callees compiled on the way)."""

    params = [_kernel_names() or ["none"]]
    param_names = ["kernel"]

    def setup(self, results, kernel):
        if kernel not in results["kernels"]:
            raise NotImplementedError(f"{kernel} is not compiled by the entry points measured "
                                      f"({', '.join(BACKENDS)}, {', '.join(DTYPES)})")

    def track_kernel_compile(self, results, kernel):
        """Seconds compiling this kernel, all signatures, in the coldest entry point."""
        return results["kernels"][kernel]

    track_kernel_compile.unit = "seconds"
