"""Helpers shared by the test modules (import them from here, not from conftest).

conftest.py holds only pytest's set-up and fixtures; these are plain functions.
Tolerances come from the one table in :mod:`lstm_numba.measure`.
"""
import contextlib

import numpy as np

import lstm_numba as ln
from lstm_numba.backends import REGISTRY
from lstm_numba.cells import spec
from lstm_numba.measure import tolerance
from lstm_numba.reference import oracle64  # noqa: F401  (the float64 oracle)

CPU_BACKENDS = [n for n, b in REGISTRY.items() if b.device == "cpu"]
GPU_BACKENDS = [n for n, b in REGISTRY.items() if b.device == "gpu"]

# Max abs error allowed against the float64 oracle, per dtype of the backend.
TOL = {np.float32: tolerance(np.float32).atol, np.float64: tolerance(np.float64).atol}


def make_inputs(cell, t, b, i, h, dtype, seed, with_state=True):
    """Seeded ``(x, weights, h0, c0)``; states U(-1, 1) when ``with_state``.

    Wider states than :func:`lstm_numba.measure.make_problem` on purpose:
    tests want saturated gates too, benchmarks a stable recipe.
    """
    rng = np.random.default_rng(seed)
    w = ln.init_weights(cell, i, h, dtype=dtype, seed=seed + 1)
    x = rng.standard_normal((t, b, i)).astype(dtype)
    if not with_state:
        return x, w, None, None
    h0 = rng.uniform(-1, 1, (b, h)).astype(dtype)
    c0 = rng.uniform(-1, 1, (b, h)).astype(dtype) if spec(cell).has_cell_state else None
    return x, w, h0, c0


def assert_close(res, ref, dtype, cell, tol=None):
    """Compare a ForwardResult with the float64 oracle: shapes, dtype, values."""
    tol = TOL[np.dtype(dtype).type] if tol is None else tol
    t, b, h = ref.outputs.shape
    assert res.outputs.shape == (t, b, h) and res.outputs.dtype == dtype
    assert res.h.shape == (b, h) and res.h.dtype == dtype
    np.testing.assert_allclose(res.outputs, ref.outputs, rtol=0, atol=tol)
    np.testing.assert_allclose(res.h, ref.h, rtol=0, atol=tol)
    np.testing.assert_array_equal(res.h, res.outputs[-1])
    if spec(cell).has_cell_state:
        assert res.c.shape == (b, h) and res.c.dtype == dtype
        np.testing.assert_allclose(res.c, ref.c, rtol=0, atol=tol * 4)
    else:
        assert res.c is None


# ------------------------------------------------------------ the asv suite in tests

BENCH_PREFIXES = ("time_", "track_", "peakmem_", "mem_", "timeraw_")


def _forget_benchmarks():
    import sys

    for name in [m for m in sys.modules if m == "benchmarks" or m.startswith("benchmarks.")]:
        del sys.modules[name]


@contextlib.contextmanager
def benchmark_modules(names, profile="smoke"):
    """``{name: module}`` of ``benchmarks/<name>.py`` imported under ``LSTM_NUMBA_PROFILE``
    = ``profile``; afterwards the modules are forgotten, the variable restored and
    every thread pool set back to all cores."""
    import importlib
    import os
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[1])
    old = os.environ.get("LSTM_NUMBA_PROFILE")
    os.environ["LSTM_NUMBA_PROFILE"] = profile
    _forget_benchmarks()
    sys.path.insert(0, root)
    try:
        yield {m: importlib.import_module(f"benchmarks.{m}") for m in names}
    finally:
        sys.path.remove(root)
        _forget_benchmarks()
        if old is None:
            os.environ.pop("LSTM_NUMBA_PROFILE", None)
        else:
            os.environ["LSTM_NUMBA_PROFILE"] = old
        ln.set_num_threads(ln.threads.max_threads())


def bench_classes(mod):
    """The benchmark classes asv finds in ``mod`` (defined there, public, with benchmarks)."""
    import inspect

    return [c for n, c in inspect.getmembers(mod, inspect.isclass)
            if c.__module__ == mod.__name__ and not n.startswith("_")
            and any(m.startswith(BENCH_PREFIXES) for m in dir(c))]


def bench_methods(cls):
    """The names of the benchmark methods of ``cls`` (asv's prefixes), sorted."""
    return [n for n in dir(cls) if n.startswith(BENCH_PREFIXES) and callable(getattr(cls, n))]


def _setup_cache(inst, caches):
    """``inst.setup_cache()``, or its result kept in ``caches`` under the function's
    name (asv runs a ``setup_cache`` shared by several classes once); None without one."""
    if not hasattr(inst, "setup_cache"):
        return None
    if caches is None:
        return inst.setup_cache()
    key = inst.setup_cache.__func__.__name__
    if key not in caches:
        caches[key] = inst.setup_cache()
    return caches[key]


def drive(cls, skip_reasons, caches=None):
    """Run every benchmark of ``cls`` on every parameter set as asv does
    (``setup_cache`` once, then ``setup(*params)`` and the method).

    A NotImplementedError from ``setup`` is asv's skip and is accepted only when
    its message contains one of ``skip_reasons``. ``caches``: a dict the caller
    keeps across classes, so that a ``setup_cache`` function the classes share
    runs once (keyed by its name; read it there afterwards). Returns
    ``(results, skipped)``: ``[(params, method, value)]`` and
    ``[(params, method, reason)]``.
    """
    import itertools

    inst = cls()
    cache = _setup_cache(inst, caches)
    params = getattr(cls, "params", [])
    combos = list(itertools.product(*params)) if params else [()]
    assert len(cls.param_names) == len(params)
    out, skipped = [], []
    for combo in combos:
        for name in bench_methods(cls):
            args = ((cache,) if cache is not None else ()) + tuple(combo)
            if hasattr(inst, "setup"):
                try:
                    inst.setup(*args)
                except NotImplementedError as e:
                    assert any(r in str(e) for r in skip_reasons), str(e)
                    skipped.append((combo, name, str(e)))
                    continue
            out.append((combo, name, getattr(inst, name)(*args)))
    return out, skipped
