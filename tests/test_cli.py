"""The first main job: ``python -m lstm_numba compare`` and ``backends``."""
import doctest
import subprocess
import sys

import pytest

import lstm_numba as ln
from lstm_numba.__main__ import main
from lstm_numba.compare import format_table, run_compare
from lstm_numba.measure import make_problem, max_abs_err
from lstm_numba.reference import oracle64


def _table_rows(out):
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.split()[:1] == ["backend"])
    return lines[head].split(), {line.split()[0]: line.split() for line in lines[head + 1:]
                                 if line.split() and line.split()[0] in ln.BACKEND_NAMES}


def test_compare_prints_a_row_per_available_backend(capsys):
    rc = main(["compare", "--cell", "gru", "--hidden", "9", "--batch", "2",
               "--seq-len", "3", "--threads", "1"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "gru  H=9  B=2  T=3  I=9  float32  threads=1" in out
    head, rows = _table_rows(out)
    # the table names its statistic and how many calls it was taken over
    assert head[1:4] == ["median", "ms", "calls"]
    assert "time: median of the calls after the first" in out
    assert set(ln.backends(device="cpu")) <= set(rows)
    for name in set(ln.backends(device="gpu")) - set(rows):     # simulator: not timed
        assert f"skipped {name}: numba-cuda's simulator is on" in out
    for name, cols in rows.items():
        assert float(cols[1]) > 0                           # time ms
        assert int(cols[2]) >= 3                            # calls
        assert float(cols[-1]) < 1e-5                       # max err vs float64 oracle
    for name in ln.why_unavailable():
        if name not in rows:
            assert f"skipped {name}:" in out


def test_compare_rows_measure_what_they_say():
    rows, skipped, threads = run_compare("lstm", hidden=8, batch=3, seq_len=4,
                                         backends=["numpy", "numba"], threads=1)
    assert threads == 1 and not skipped
    for r in rows:
        assert r.repeats >= 3 and r.time.stat == "median"
        assert r.time_s == r.time.median
        assert r.first_call_s >= r.time.first_s > 0          # set-up + first call, apart
        assert r.steps_per_s == pytest.approx(4 * 3 / r.time_s)
        assert r.gflops == pytest.approx(ln.flops("lstm", 4, 3, 8, 8) / r.time_s / 1e9)
        assert r.max_err < 1e-5


def test_compare_uses_the_harness_problem_and_statistic():
    """The min statistic, a call cap, and the error against the oracle of make_problem's inputs."""
    rows, _, _ = run_compare("rnn", hidden=5, batch=2, seq_len=3, backends=["numpy"],
                             threads=1, stat="min", min_repeats=2, max_repeats=2, seed=4)
    (r,) = rows
    assert r.repeats == 2 and r.time_s == r.time.min
    x, w, h0, c0 = make_problem("rnn", 3, 2, 5, seed=4)
    ref = oracle64("rnn", x, w, h0, c0)
    got = ln.forward("rnn", x, w, h0, backend="numpy")
    assert r.max_err == max_abs_err(got, ref) > 0      # float32 vs float64: not exactly 0
    text = format_table(rows, {}, 1, "rnn", 5, 2, 3, 5, "float32")
    assert "min ms" in text and "time: min of the calls" in text


def test_compare_bad_arguments_exit_nonzero(capsys):
    assert main(["compare", "--hidden", "0", "--input", "4"]) == 2
    assert "hidden must be >= 1; got 0" in capsys.readouterr().err
    assert main(["compare", "--backends", "numpy,nope", "--hidden", "4"]) == 2
    assert "unknown backend 'nope'" in capsys.readouterr().err
    assert main(["frobnicate"]) == 2


def test_backends_command_lists_every_name(capsys):
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    for name in ln.BACKEND_NAMES:
        assert name in out


def test_module_entry_point_runs():
    r = subprocess.run([sys.executable, "-m", "lstm_numba", "backends"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "numba-parallel" in r.stdout


def test_package_docstring_example():
    res = doctest.testmod(ln, verbose=False)
    assert res.attempted >= 3 and res.failed == 0
