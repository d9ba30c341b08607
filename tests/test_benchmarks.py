"""The asv suite imports, and every benchmark's setup and body run on a tiny grid.

The modules are imported under the ``smoke`` profile (tiny sizes), then each
class is driven the way asv drives it: ``setup_cache`` once, then for every
parameter combination ``setup(*params)`` and the benchmark method. A
``NotImplementedError`` from ``setup`` is asv's "skip" and is accepted only
for the documented reasons (backend unavailable here, numpy-seed over its
size cap, torch in the tracemalloc benchmark).
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import bench_classes, bench_methods, benchmark_modules, drive
from lstm_numba import measure
from lstm_numba.measure import tolerance

ROOT = Path(__file__).resolve().parents[1]
MODULES = ["bench_seq_len", "bench_batch_hidden", "bench_threads", "bench_memory",
           "bench_compile", "bench_accuracy", "bench_race"]
SKIP_REASONS = ("unavailable", "cannot be imported", "capped at", "tracemalloc",
                "is not compiled by the entry points",
                "not implemented", "no GPU", "torch is not installed")


@pytest.fixture(scope="module")
def smoke():
    """The suite's modules imported with LSTM_NUMBA_PROFILE=smoke (then forgotten)."""
    with benchmark_modules(MODULES) as mods:
        yield mods


def _drive(cls):
    """Run every benchmark of ``cls`` on every parameter set; ``[(params, method, value)]``."""
    return drive(cls, SKIP_REASONS)


def test_smoke_profile_gives_tiny_grids(smoke):
    common = sys.modules["benchmarks.common"]
    assert common.profile() == "smoke"
    assert max(smoke["bench_seq_len"].SeqLen.params[2]) <= 16
    # the profile is read in one place and an unknown value is an error
    os.environ["LSTM_NUMBA_PROFILE"] = "huge"
    try:
        with pytest.raises(ValueError, match="LSTM_NUMBA_PROFILE"):
            common.profile()
    finally:
        os.environ["LSTM_NUMBA_PROFILE"] = "smoke"


def test_every_module_has_parameterized_benchmarks(smoke):
    for name, mod in smoke.items():
        classes = bench_classes(mod)
        assert classes, f"{name} defines no benchmark class"
        for cls in classes:
            assert bench_methods(cls)
            if cls.__name__ != "Sgemm":
                assert cls.params and (len(cls.params) >= 2 or len(cls.params[0]) >= 2), \
                    f"{cls.__name__} is not parameterized"
            for m in bench_methods(cls):
                if m.startswith("track_"):
                    assert getattr(getattr(cls, m), "unit", None), f"{cls.__name__}.{m} unit"


@pytest.mark.parametrize("module", ["bench_seq_len", "bench_batch_hidden", "bench_threads",
                                    "bench_accuracy"])
def test_time_and_rate_benchmarks_run(smoke, module):
    for cls in bench_classes(smoke[module]):
        results, skipped = _drive(cls)
        assert results, f"{cls.__name__}: every parameter set was skipped: {skipped}"
        # the project's own CPU backends never skip
        for combo, name, why in skipped:
            assert not {"numba", "numba-parallel"} & set(combo), why
        for combo, name, value in results:
            names = dict(zip(cls.param_names, combo))
            if name.startswith("time_"):
                assert value is None
            elif name == "track_max_abs_error":
                # the harness's table; c is allowed 4x, as in helpers.assert_close
                tol = 4 * tolerance(names["dtype"]).atol
                assert 0 <= value < tol, (combo, value)
            elif name == "track_threads_in_use":
                assert value == names["threads"], (combo, value)
            elif name == "track_efficiency":
                assert 0 < value < 5, (combo, value)
            else:
                assert np.isfinite(value) and value > 0, (combo, name, value)


def test_rates_are_consistent(smoke):
    """Throughput and GFLOP/s of one problem describe the same timing."""
    m = smoke["bench_seq_len"]
    b = m.SeqLenRates()
    args = ("lstm", "numba", 16, m.BATCH, m.HIDDEN, 1)
    b.setup(*args)
    gflops = b.track_gflops(*args)
    thr = b.track_throughput(*args)
    import lstm_numba as ln
    per_sample_step = ln.flops("lstm", 1, 1, m.HIDDEN, m.HIDDEN) / 1e9
    assert thr > 0 and gflops > 0
    # Both are best-of timings of the same call: they agree within noise.
    assert 0.2 < (thr * per_sample_step) / gflops < 5


def test_numpy_seed_cap_skips(smoke):
    common = sys.modules["benchmarks.common"]
    with pytest.raises(NotImplementedError, match="capped"):
        common.require_seed_cap("numpy-seed", common.SEED_CAP + 1, 1)
    common.require_seed_cap("numpy", common.SEED_CAP + 1, 1)  # only numpy-seed is capped


def test_memory_benchmarks(smoke):
    mod = smoke["bench_memory"]
    for cls in (mod.Memory, mod.MemoryTraced):
        results, skipped = _drive(cls)
        assert results
        for combo, name, value in results:
            names = dict(zip(cls.param_names, combo))
            out_bytes = names["seq_len"] * names["batch"] * names["hidden"] * 4
            if name == "track_traced_bytes":
                # numpy and numpy-seed allocate at least the outputs through NumPy
                if names["backend"] in ("numpy", "numpy-seed"):
                    assert value >= out_bytes, (combo, value)
        assert all("torch" in c for c, n, _ in skipped if n == "track_traced_bytes")


def test_one_harness(smoke):
    """The suite measures with the harness's functions, not copies of them."""
    common = sys.modules["benchmarks.common"]
    assert common.sgemm_gflops is measure.sgemm_gflops
    assert common.make_problem is measure.make_problem
    assert smoke["bench_memory"].make_problem is measure.make_problem
    assert smoke["bench_batch_hidden"].sgemm_gflops is measure.sgemm_gflops
    r1 = common.sgemm_gflops()
    assert 0.5 < r1 < 1e5
    assert common.sgemm_gflops() == r1  # cached per process and thread count


def test_one_recipe_one_yardstick_in_the_tree():
    """grep finds one make_problem and one sgemm_gflops: the harness's."""
    defs = {}
    for path in [*(ROOT / "lstm_numba").rglob("*.py"), *(ROOT / "benchmarks").glob("*.py")]:
        for line in path.read_text().splitlines():
            for name in ("make_problem", "sgemm_gflops"):
                if line.lstrip().startswith(f"def {name}("):
                    defs.setdefault(name, []).append(path.relative_to(ROOT).as_posix())
    assert defs == {"make_problem": ["lstm_numba/measure.py"],
                    "sgemm_gflops": ["lstm_numba/measure.py"]}


def test_best_time_is_the_harness_minimum(smoke):
    common = sys.modules["benchmarks.common"]
    calls = []
    t = common.best_time(lambda: calls.append(1), budget=0.0, min_calls=4)
    assert len(calls) == 4 and 0 <= t < 0.1


def test_compile_benchmark(smoke):
    mod = smoke["bench_compile"]
    results, skipped = _drive(mod.Compile)
    assert not skipped
    vals = {(c, n): v for c, n, v in results}
    for (combo, name), v in vals.items():
        assert 0 < v < 120, (combo, name, v)
    # a filled cache makes the first call cheaper than compiling from scratch
    for combo in {c for c, _ in vals}:
        assert vals[(combo, "track_cached_first_call")] < vals[(combo, "track_cold_compile")] + 1.0
    # per kernel: the package's kernels are discovered, and those the entry points reach
    # have a positive compile time
    names = mod.CompileKernels.params[0]
    assert any(n.startswith("cpu.") for n in names), names
    kresults, kskipped = _drive(mod.CompileKernels)
    assert kresults, kskipped
    assert all(v > 0 for _, _, v in kresults)


def test_asv_check_discovers_the_suite(tmp_path):
    """``asv check`` imports every benchmark file and validates its definitions."""
    asv = Path(sys.executable).with_name("asv")
    if not asv.exists():
        pytest.skip("asv is not installed (pip install 'lstm-numba[bench]')")
    env = dict(os.environ, LSTM_NUMBA_PROFILE="smoke")
    r = subprocess.run([str(asv), "check", "--python=same"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr, r.stdout + r.stderr


def test_race_script_table(smoke, capsys):
    """race.py prints what it measured: the statistic, the calls, the CPU, a row per cell."""
    race = sys.modules["benchmarks.race"]
    rc = race.main(["--cells", "gru", "rnn", "--hidden", "8", "--batch", "2", "--seq", "3",
                    "--threads", "1", "--budget", "0.01"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "min of N interleaved calls per backend (N: the calls column)" in out
    assert "cpu: " in out
    head = next(line for line in out.splitlines() if line.startswith("| cell"))
    cols = [c.strip() for c in head.strip("|").split("|")]
    assert cols[4:4 + len(race.CONTENDERS)] == [f"{n} ms" for n in race.CONTENDERS]
    rows = [line for line in out.splitlines() if line.startswith("| gru") or
            line.startswith("| rnn")]
    assert len(rows) == 2
    for row in rows:
        vals = dict(zip(cols, (c.strip() for c in row.strip("|").split("|"))))
        assert int(vals["calls"]) >= 3 and float(vals["ratio"]) > 0
    res = race.race_cell("lstm", 8, 2, 3, budget_s=0.0, min_rep=2, max_rep=2)
    assert list(res) == list(race.CONTENDERS)
    assert all(m.stat == "min" and m.n == 2 and m.interleaved for m in res.values())


def test_race_benchmark_runs(smoke):
    """The asv twin of race.py: ratio and rates of every smoke parameter set."""
    results, skipped = _drive(smoke["bench_race"].Race)
    assert results and not skipped
    for combo, name, value in results:
        assert np.isfinite(value) and value > 0, (combo, name, value)
        if name == "track_ratio_to_torch":
            assert value < 100, (combo, value)     # the same problem, not another size


def test_compile_ab_prints_both_trees(capsys):
    """compile_ab.py measures a cold compile in each tree and tabulates min and runs."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("compile_ab", ROOT / "benchmarks" / "compile_ab.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main([str(ROOT), str(ROOT), "--rounds", "1", "--entries", "rnn/numba/float32"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("| entry point | before s (CPU, min of 1)")
    row = [c.strip() for c in lines[2].strip("|").split("|")]
    assert row[0] == "rnn/numba/float32"
    before, after = float(row[1]), float(row[2])
    assert 0.0 < before < 300 and 0.0 < after < 300
