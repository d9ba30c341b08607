"""benchmarks/bench_limits.py on the smoke grid: every class driven as asv drives
it (setup_cache once, then setup and the benchmark per parameter set), and the
fast profile's process count kept small (each parameter set is a process)."""
from pathlib import Path

import numpy as np
import pytest

from helpers import bench_classes, bench_methods, benchmark_modules, drive

ROOT = Path(__file__).resolve().parents[1]
SKIP_REASONS = ("unavailable", "runs on one thread", "capped at", "not implemented",
                "needs 2 threads", "one-thread figure", "torch is not installed")


@pytest.fixture(scope="module")
def smoke():
    with benchmark_modules(["bench_limits"]) as mods:
        yield mods["bench_limits"]


#: setup_cache results by function name: the track classes share one, run once here.
_CACHE = {}


def _drive(cls):
    return drive(cls, SKIP_REASONS, caches=_CACHE)


def test_smoke_grid_is_tiny_and_classes_are_parameterized(smoke):
    assert max(smoke.SEQ_LENS) <= 32 and smoke.HIDDEN <= 16
    names = {c.__name__ for c in bench_classes(smoke)}
    assert names == {"Limits", "LimitsThreads", "LimitsBatch", "Bounds", "BoundsThreads",
                     "Peak", "Bandwidth", "Caches", "Sync", "SyncThreads"}
    for cls in bench_classes(smoke):
        assert len(cls.param_names) == len(cls.params)
        for m in bench_methods(cls):
            if m.startswith("track_"):
                assert getattr(getattr(cls, m), "unit", None), f"{cls.__name__}.{m} unit"
    # the track classes share one setup_cache (asv runs it once: same source line)
    caches = {c.setup_cache for c in bench_classes(smoke) if hasattr(c, "setup_cache")}
    assert len(caches) == 1


@pytest.mark.parametrize("name", ["Limits", "LimitsThreads", "LimitsBatch"])
def test_time_classes_run(smoke, name):
    cls = getattr(smoke, name)
    results, skipped = _drive(cls)
    assert results, skipped
    for combo, _, why in skipped:
        # the project's own backends run every cell; numba is skipped only at 2 threads
        params = dict(zip(cls.param_names, combo))
        assert params["backend"] not in ("numba-parallel",) or "unavailable" in why, why
    for combo, name_, value in results:
        assert value is None
    cells = {c[0] for c, _, _ in results}
    assert cells == {"lstm", "mingru", "minlstm", "attention"}


@pytest.mark.parametrize("name", ["Bounds", "BoundsThreads"])
def test_bounds_and_percent_of_bound(smoke, name):
    results, skipped = _drive(getattr(smoke, name))
    assert results
    assert all("unavailable" in why for _, _, why in skipped)
    vals = {(c, n): v for c, n, v in results}
    for (combo, name), v in vals.items():
        assert np.isfinite(v) and v > 0, (combo, name, v)
    # the same case's bound is the same whichever benchmark reads it
    import lstm_numba.costmodel as cm
    m = cm.Machine(**_CACHE["_limits_cache"]["machine"])
    for (combo, name), v in vals.items():
        if name == "track_bound":
            cell, backend, t_len, b, h, p = combo
            assert v == pytest.approx(cm.bound(cell, backend, t_len, b, h, p, m=m).seconds)


@pytest.mark.parametrize("name", ["Peak", "Bandwidth", "Caches", "Sync", "SyncThreads"])
def test_micro_benchmark_tracks(smoke, name):
    results, skipped = _drive(getattr(smoke, name))
    assert results and not skipped
    for combo, _, value in results:
        assert np.isfinite(value) and value > 0, (combo, value)


def test_fast_profile_stays_small():
    """Each parameter set of each benchmark is one process: count them."""
    with benchmark_modules(["bench_limits"], profile="fast") as mods:
        mod = mods["bench_limits"]
    total = timed = 0
    for cls in bench_classes(mod):
        n = int(np.prod([len(p) for p in cls.params])) * len(bench_methods(cls))
        total += n
        if any(m.startswith("time_") for m in bench_methods(cls)):
            timed += n
    assert timed <= 64, timed          # the processes that time forward passes
    assert total <= 150, total         # plus the cheap track processes
    assert max(mod.SEQ_LENS) == 4096 and mod.TARGET_T == 4096


# ------------------------------------------------- the report's limits section

FIXTURE = ROOT / "tests" / "data" / "limits_asv_results"


def test_crossover_of_power_laws():
    from lstm_numba.report.section_limits import crossover

    ts = np.array([10.0, 50.0, 200.0, 1000.0])
    att, lstm = 1e-6 * ts ** 2, 1e-4 * ts            # equal at T = 100
    t, how = crossover(ts, att, ts, lstm)
    assert how == "measured" and t == pytest.approx(100.0)
    t, how = crossover(ts[:2], att[:2], ts[:2], lstm[:2])
    assert how == "extrapolated" and t == pytest.approx(100.0)
    # extrapolated by work functions instead of the last two points' power law
    t, how = crossover(ts[:2], att[:2], ts[:2], lstm[:2], lambda t: t * t, lambda t: t)
    assert how == "extrapolated" and t == pytest.approx(100.0)
    slow_start = np.array([1e-5, 2e-5])             # looks linear so far, is T^2 underneath
    t, how = crossover(ts[:2], slow_start, ts[:2], lstm[:2], lambda t: t * t, lambda t: t)
    # 2e-5 * (T/50)^2 = 1e-4 * T  ->  T = 12,500
    assert how == "extrapolated" and t == pytest.approx(12_500.0, rel=1e-6)
    assert crossover(ts, 1e-2 * ts ** 2, ts, lstm)[1] == "a is already slower"
    assert crossover(ts, 1e-6 * ts, ts, 1e-4 * ts ** 2) == (None, "no crossover")


def test_limits_section_from_a_smoke_run(tmp_path):
    from lstm_numba.report.build import build_report
    from lstm_numba.report.sections import load_sections

    sections, issues = load_sections(["section_limits"])
    assert not issues and [s.anchor for s in sections] == ["limits"]
    page = build_report(FIXTURE, tmp_path, sections=sections, records_dir=tmp_path)
    sec = page.section("limits").result
    stems = {f.stem for f in sec.figures}
    assert stems == {"limits_time_vs_T", "limits_time_vs_T_batch16", "limits_thread_speedup"}
    for s in stems:
        assert (tmp_path / f"{s}.png").stat().st_size > 10_000
    pct = next(t for t in sec.tables if t.title.startswith("% of the cost model's bound"))
    assert len(pct.rows) == 12 + 8                    # 1 thread: 12 cases, 2 threads: 8
    assert all(r[6].startswith(("chain (", "compute", "memory", "sync")) for r in pct.rows)
    assert {r[7] for r in pct.rows if r[1] in ("numba", "numba-parallel")} <= {"meets", "below"}
    assert any(t.title.startswith("The machine's limits") for t in sec.tables)
    whats = " | ".join(k.what for k in sec.key_numbers)
    assert "attention slower than LSTM" in whats and "speedup on 2 threads" in whats
    assert "lowest % of bound" in whats
    assert not [i for i in page.issues if i.kind == "error"]


def test_limits_section_says_what_is_missing(tmp_path):
    """Without the machine's tracks the time plots are drawn without bounds, and said."""
    import json
    import shutil

    from lstm_numba.report.build import build_report
    from lstm_numba.report.sections import load_sections

    shutil.copytree(FIXTURE, tmp_path / "res")
    for f in (tmp_path / "res" / "vm").glob("*-existing*.json"):
        d = json.loads(f.read_text())
        d["results"] = {k: v for k, v in d["results"].items() if ".Limits." in k}
        f.write_text(json.dumps(d))
    sections, _ = load_sections(["section_limits"])
    page = build_report(tmp_path / "res", tmp_path, sections=sections, records_dir=tmp_path)
    sec = page.section("limits").result
    assert [f.stem for f in sec.figures] == ["limits_time_vs_T"]
    text = " ".join(i.text for i in sec.issues)
    assert "no bound lines" in text and "% of bound" in text and "batch 16" in text
