"""The training benchmarks (benchmarks/bench_train.py) run on the smoke grid.

Driven the way asv drives them: ``setup(*params)`` then the method, for every
parameter set. ``NotImplementedError`` from setup is asv's skip, accepted only
for the documented reasons (numpy's size cap, torch without checkpointing, a
backend that cannot train here).
"""
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import bench_classes, benchmark_modules, drive

ROOT = Path(__file__).resolve().parents[1]
SKIP_REASONS = ("capped at", "cannot train here",
                "unavailable", "cannot be imported")


@pytest.fixture(scope="module")
def bench():
    with benchmark_modules(["bench_train"]) as mods:
        yield mods["bench_train"]


def _drive(cls):
    """helpers.drive, each parameter set given as ``{name: value}``."""
    results, skipped = drive(cls, SKIP_REASONS)
    return [(dict(zip(cls.param_names, combo)), name, value)
            for combo, name, value in results], skipped


def test_classes_and_units(bench):
    classes = bench_classes(bench)
    assert {c.__name__ for c in classes} == {"TrainSeqLen", "TrainBatchHidden", "TrainRates",
                                             "TrainMemory", "TrainTape"}
    for cls in classes:
        for n in dir(cls):
            if n.startswith("track_"):
                assert getattr(getattr(cls, n), "unit", None), (cls.__name__, n)


@pytest.mark.parametrize("name", ["TrainSeqLen", "TrainBatchHidden", "TrainRates",
                                  "TrainMemory"])
def test_timed_benchmarks_run(bench, name):
    results, skipped = _drive(getattr(bench, name))
    assert any(r[0]["backend"] == "torch" for r in results) or "torch" not in bench.BACKENDS
    assert results, skipped
    for params, method, value in results:
        if method.startswith(("time_", "peakmem_")):
            assert value is None
        elif method == "track_efficiency":
            assert 0 < value < 5, (params, value)
        else:
            assert np.isfinite(value) and value > 0, (params, method, value)


def test_tape_bytes(bench):
    results, skipped = _drive(bench.TrainTape)
    got = {(p["cell"], p["backend"], p["checkpoint"]): v for p, _, v in results}
    assert ("lstm", "numpy", "none") in got and ("lstm", "numpy", "sqrt") in got
    b, h = bench.TrainTape.params[4][0], bench.TrainTape.params[5][0]
    # the oracle keeps gate activations and c: 5 float32 values per hidden unit
    assert got[("lstm", "numpy", "none")] == 5 * b * h * 4
    assert got[("rnn", "numpy", "none")] == b * h * 4
    for (cell, backend, ck), v in got.items():
        assert v > 0
        if ck == "sqrt":
            assert v < got[(cell, backend, "none")], (cell, backend)
    for combo, _, why in skipped:
        assert "cannot train here" in why, why      # only a backend without its module


def test_race_train_runs(capsys):
    """race_train.py end to end on a tiny grid: the table rows and the sqrt comparison."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import race_train
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    rc = race_train.main(["--cells", "gru", "--hidden", "8", "--batch", "2", "--seq", "4",
                          "--threads", "1", "--checkpoint-seq", "16", "--budget", "0.01"])
    out = capsys.readouterr().out
    assert rc == 0
    row = [ln for ln in out.splitlines() if ln.startswith("| gru | 8 | 2 | 4 |")]
    assert len(row) == 1, out
    cells = row[0].strip("|").split("|")
    assert len(cells) == 13 and float(cells[6]) > 0      # ratio numba / torch
    ck = [ln for ln in out.splitlines() if ln.startswith("| gru |") and "%" in ln.split("|")[7]]
    assert ck, out


def test_report_section_draws_training_beside_inference(tmp_path):
    """The report's training section on a small table of results in the loader's shape."""
    import pandas as pd

    from lstm_numba.report import section_train as st
    from lstm_numba.report.sections import Context
    from lstm_numba.report.style import FigureWriter

    rows = []

    def add(bench, value, **p):
        rows.append(dict(benchmark=bench, value=value, **p))

    size = dict(batch=8, hidden=256, threads=1)
    for b in ("numba", "torch"):
        for t in (16, 128):
            add(st.TRAIN_TIME, 3e-5 * t, cell="lstm", backend=b, seq_len=t, **size)
            add(st.INF_TIME, 1e-5 * t, cell="lstm", backend=b, seq_len=t, **size)
            add(st.INF_PEAK, 1e8 + t * 1e3, cell="lstm", backend=b, seq_len=t, **size)
            add(st.INF_BASE, 1e8, cell="lstm", backend=b, seq_len=t, **size)
            for ck in ("none", "sqrt"):
                add(st.TRAIN_PEAK, 1e8 + t * 1e4, cell="lstm", backend=b, checkpoint=ck,
                    seq_len=t, **size)
                add(st.TRAIN_BASE, 1e8, cell="lstm", backend=b, checkpoint=ck, seq_len=t, **size)
                add(st.TAPE, 6e4 if b == "numba" else 1.6e5, cell="lstm", backend=b,
                    checkpoint=ck, seq_len=128, batch=16, hidden=256)
    df = pd.DataFrame(rows)
    ctx = Context(df=df, machine="m", results=None, figures=FigureWriter(tmp_path, "foot"))
    res = st.build(ctx)
    assert [f.stem for f in res.figures] == ["train_time", "train_memory"]
    assert (tmp_path / "train_time.png").exists() and (tmp_path / "train_memory.svg").exists()
    ratio = {r[:3]: r[5] for r in res.tables[0].rows}
    assert ratio[("lstm", "numba", "128")] == "3.0×"
    keys = {k.what: k.value for k in res.key_numbers}
    assert keys["LSTM tape bytes, numba / torch"] == "0.38"
    assert not res.issues
    # no results at all: each part says what is missing instead of failing
    empty = st.build(Context(df=df.iloc[0:0], machine="m", results=None,
                             figures=FigureWriter(tmp_path, "foot")))
    assert {i.kind for i in empty.issues} == {"missing"} and not empty.figures


def test_race_quick_picks_each_scripts_subset():
    """race.py and race_train.py share the grid options; --quick sets each one's subset."""
    import argparse

    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import race
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    ap = race.add_grid_arguments(argparse.ArgumentParser(), quick=([256], [1, 16], [128]),
                                 quick_note="; sqrt comparison LSTM only")
    args = race.parse_grid(ap, ["--quick", "--cells", "gru"])
    assert (args.hidden, args.batch, args.seq, args.cells) == ([256], [1, 16], [128], ["gru"])
    assert race.parse_grid(ap, ["--hidden", "8"]).hidden == [8]     # no --quick: as given
    assert "H=256, B in {1, 16}, T=128; sqrt comparison LSTM only" in " ".join(
        ap.format_help().split())
    assert race.parse_grid(race.parser(), ["--quick"]).batch == [1, 64]
    assert "--quick" not in race.add_grid_arguments(argparse.ArgumentParser()).format_help()
