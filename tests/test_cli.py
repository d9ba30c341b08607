"""The first main job: ``python -m lstm_numba compare`` and ``backends``."""
import doctest
import subprocess
import sys

import pytest

import lstm_numba as ln
from lstm_numba.__main__ import main
from lstm_numba.compare import run_compare


def test_compare_prints_a_row_per_available_backend(capsys):
    rc = main(["compare", "--cell", "gru", "--hidden", "9", "--batch", "2",
               "--seq-len", "3", "--threads", "1"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "gru  H=9  B=2  T=3  I=9  float32  threads=1" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:]
            if line.split() and line.split()[0] in ln.BACKEND_NAMES}
    assert set(ln.backends(device="cpu")) <= set(rows)
    for name in set(ln.backends(device="gpu")) - set(rows):     # simulator: not timed
        assert f"skipped {name}: numba-cuda's simulator is on" in out
    for name, cols in rows.items():
        assert float(cols[1]) > 0                           # time ms
        assert float(cols[-1]) < 1e-5                       # max err vs float64 oracle
    for name in ln.why_unavailable():
        if name not in rows:
            assert f"skipped {name}:" in out


def test_compare_rows_measure_what_they_say():
    rows, skipped, threads = run_compare("lstm", hidden=8, batch=3, seq_len=4,
                                         backends=["numpy", "numba"], threads=1)
    assert threads == 1 and not skipped
    for r in rows:
        assert r.repeats >= 3
        assert r.steps_per_s == pytest.approx(4 * 3 / r.median_s)
        assert r.gflops == pytest.approx(ln.flops("lstm", 4, 3, 8, 8) / r.median_s / 1e9)
        assert r.max_err < 1e-5


def test_compare_bad_arguments_exit_nonzero(capsys):
    assert main(["compare", "--hidden", "0", "--input", "4"]) == 2
    assert "hidden_size must be >= 1" in capsys.readouterr().err
    assert main(["compare", "--backends", "nope", "--hidden", "4"]) == 2
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
