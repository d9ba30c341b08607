"""The report: asv results -> DataFrame -> plots, index.html and summary.md.

The fixture ``tests/data/asv_results`` is a real asv run of the whole suite
under the ``smoke`` profile (``LSTM_NUMBA_PROFILE=smoke asv run
--python=same --set-commit-hash HEAD``), copied from ``.asv/results``;
the bench_compile entries come from a second such run (``-b bench_compile``).
"""
import json
import re
import shutil
from pathlib import Path

import pytest

pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

from lstm_numba import report  # noqa: E402

FIXTURE = Path(__file__).parent / "data" / "asv_results"
PLOTS = ["seq_len_time_per_step", "seq_len_throughput", "memory_vs_seq_len",
         "gflops_vs_batch", "heatmap_speedup_vs_numpy_seed", "heatmap_ratio_to_torch",
         "thread_scaling", "compile_time", "accuracy"]


def _result_file(root: Path) -> Path:
    files = [f for f in root.glob("*/*.json") if f.name != "machine.json"]
    assert len(files) == 1
    return files[0]


@pytest.fixture
def results(tmp_path):
    """A writable copy of the fixture."""
    dst = tmp_path / "results"
    shutil.copytree(FIXTURE, dst)
    return dst


def test_dataframe_one_row_per_benchmark_and_params():
    res = report.load_results(FIXTURE)
    df = res.df
    raw = json.loads(_result_file(FIXTURE).read_text())
    expected_rows = 0
    for row in raw["results"].values():
        n = 1
        for p in row[1]:
            n *= len(p)
        expected_rows += n
    assert len(df) == expected_rows
    seq = df[df["benchmark"] == report.EXPECTED["seq_len"]]
    assert set(seq["cell"]) == {"rnn", "lstm", "gru"}
    assert {"numba", "numpy-seed", "torch"} <= set(seq["backend"])
    assert (seq["value"].dropna() > 0).all()
    assert seq["unit"].iloc[0] == "seconds"
    assert df["machine"].nunique() == 1 and df["commit"].nunique() == 1


def test_every_plot_and_the_index_are_written(tmp_path, capsys):
    out = tmp_path / "reports"
    figs = report.build_report(FIXTURE, out, html_dir=tmp_path / "asvhtml")
    written = [s for s, _, _ in figs.written]
    assert sorted(written) == sorted(PLOTS)
    for stem in PLOTS:
        for ext in ("png", "svg"):
            f = out / f"{stem}.{ext}"
            assert f.stat().st_size > 5000, f
    assert (out / "seq_len_time_per_step.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "index.html").read_text()
    for stem in PLOTS:
        assert f"src='{stem}.png'" in page
    assert "../asvhtml/index.html" in page          # asv's HTML, by relative path
    assert "http://" not in page and "https://" not in page  # nothing from the network
    assert "<table>" in page and "time per step" in page
    summary = (out / "summary.md").read_text()
    assert "| what | value | from |" in summary
    keys = dict((a, b) for a, b, _ in figs.keys)
    assert any(k.startswith("LSTM numba / torch time") for k in keys)
    assert "**LSTM**" in summary and "| backend | T=4 | T=16 |" in summary
    assert any(k.startswith("thread speedup") for k in keys)


def test_palette_is_keyed_by_backend_name():
    assert report.color("numba") == report.PALETTE["numba"]
    assert report.color("torch") != report.color("numba")
    assert len(set(report.PALETTE.values())) == len(report.PALETTE)
    assert report.color("new-backend") == report.color("new-backend")


def test_partial_results_say_what_is_missing_and_plot_the_rest(results, tmp_path, capsys):
    f = _result_file(results)
    raw = json.loads(f.read_text())
    for name in list(raw["results"]):
        if name.startswith("bench_threads."):
            del raw["results"][name]
    # one parameter set of the seq-len benchmark failed
    seq = raw["results"][report.EXPECTED["seq_len"]]
    seq[0] = [None] + seq[0][1:]
    f.write_text(json.dumps(raw))
    out = tmp_path / "out"
    assert report.main(["--results-dir", str(results), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "bench_threads.Threads.time_forward: no results" in err
    assert "bench_seq_len.SeqLen.time_forward: 1 of" in err
    assert not (out / "thread_scaling.png").exists()
    assert (out / "seq_len_time_per_step.png").exists()
    page = (out / "index.html").read_text()
    assert "Missing, partial or suspect results" in page
    assert "bench_threads.Threads.time_forward: no results" in page


def test_thread_scaling_disturbed_by_load_is_flagged(results, tmp_path, capsys):
    f = _result_file(results)
    raw = json.loads(f.read_text())
    row = raw["results"][report.EXPECTED["threads"]]
    names = json.loads((results / "benchmarks.json").read_text())[
        report.EXPECTED["threads"]]["param_names"]
    import itertools
    combos = list(itertools.product(*row[1]))
    k = names.index("threads")
    # every run on more than one thread 50x slower: what a busy second core does
    row[0] = [v * 50 if c[k] != "1" else v for v, c in zip(row[0], combos)]
    f.write_text(json.dumps(raw))
    report.main(["--results-dir", str(results), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert re.search(r"suspect: thread scaling, \S+ at batch \d+ is \d+x slower on 2 threads", err)
    assert "suspect: thread scaling" in (tmp_path / "o" / "index.html").read_text()


def test_corrupt_results_file_is_named(results, tmp_path, capsys):
    f = _result_file(results)
    f.write_text(f.read_text()[:200])
    with pytest.raises(report.ReportError, match=f.name):
        report.load_results(results)
    assert report.main(["--results-dir", str(results), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert str(f) in err and "not valid JSON" in err


def test_results_file_without_asv_keys_is_named(results, capsys):
    f = _result_file(results)
    f.write_text(json.dumps({"hello": 1}))
    with pytest.raises(report.ReportError, match="not an asv results file"):
        report.load_results(results)


def test_machine_and_commit_choice(results, tmp_path):
    f = _result_file(results)
    raw = json.loads(f.read_text())
    # a second, older commit on the same machine: the latest is chosen by default
    old = dict(raw, commit_hash="0" * 40, date=raw["date"] - 1000)
    (f.parent / f"00000000-{raw['env_name']}.json").write_text(json.dumps(old))
    res = report.load_results(results)
    assert res.df["commit"].nunique() == 2
    df, notes = report.select(res)
    assert set(df["commit"]) == {raw["commit_hash"]}
    df, _ = report.select(res, commit="0000")
    assert set(df["commit"]) == {"0" * 40}
    machine = f.parent.name
    with pytest.raises(report.ReportError, match="no results for machine"):
        report.select(res, machine="no-such-machine")
    df, _ = report.select(res, machine=machine)
    assert set(df["machine"]) == {machine}


def test_one_environment_per_commit(results):
    """Two environments for one commit (asv's virtualenv and --python=same): the newest."""
    import os

    f = _result_file(results)
    raw = json.loads(f.read_text())
    other = dict(raw, env_name="virtualenv-py3.11")
    g = f.parent / f"{raw['commit_hash'][:8]}-virtualenv-py3.11.json"
    g.write_text(json.dumps(other))
    os.utime(f, (1, 1))  # the original file is older
    res = report.load_results(results)
    df, notes = report.select(res)
    assert set(df["env"]) == {"virtualenv-py3.11"}
    assert "using the newest" in notes[0]


def test_several_machines_get_their_own_plots(results, tmp_path):
    f = _result_file(results)
    other = results / "other-box"
    other.mkdir()
    (other / "machine.json").write_text(json.dumps({"machine": "other-box", "num_cpu": "16"}))
    shutil.copy(f, other / f.name)
    figs = report.build_report(results, tmp_path / "out", html_dir=tmp_path)
    stems = {s for s, _, _ in figs.written}
    machine = f.parent.name
    assert f"seq_len_time_per_step-{machine}" in stems
    assert "seq_len_time_per_step-other-box" in stems
    assert (tmp_path / "out" / "thread_scaling-other-box.png").exists()
    assert any(k.startswith("other-box: ") for k, _, _ in figs.keys)


def test_missing_results_dir_is_a_clear_error(tmp_path, capsys):
    assert report.main(["--results-dir", str(tmp_path / "nope"), "--out",
                        str(tmp_path / "o")]) == 2
    assert "no results folder" in capsys.readouterr().err
