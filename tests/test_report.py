"""The report: asv results -> DataFrame -> plots, index.html and summary.md.

The fixture ``tests/data/asv_results`` is a real asv run of the whole suite
under the ``smoke`` profile (``LSTM_NUMBA_PROFILE=smoke asv run
--python=same --set-commit-hash HEAD``), copied from ``.asv/results``;
the bench_compile entries come from a second such run (``-b bench_compile``).
"""
import itertools
import json
import os
import re
import shutil
from pathlib import Path

import pytest

pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

from lstm_numba import report  # noqa: E402
from lstm_numba.backends import REGISTRY  # noqa: E402
from lstm_numba.report.bench_names import SEQ_TIME, THREADS  # noqa: E402

FIXTURE = Path(__file__).parent / "data" / "asv_results"
PLOTS = ["seq_len_time_per_step", "seq_len_throughput", "memory_vs_seq_len",
         "gflops_vs_batch", "heatmap_speedup_vs_numpy_seed", "heatmap_ratio_to_torch",
         "thread_scaling", "compile_time", "accuracy"]


def _result_file(root: Path) -> Path:
    files = [f for f in root.glob("*/*.json") if f.name != "machine.json"]
    assert len(files) == 1
    return files[0]


def _only(monkeypatch, *anchors):
    """Build only these built-in sections (each test draws just the plots it checks)."""
    from lstm_numba.report import section_core, sections

    monkeypatch.setattr(section_core, "SECTIONS",
                        [s for s in section_core.SECTIONS if s.anchor in anchors])
    monkeypatch.setattr(sections, "MODULES", ("section_core",))


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
    seq = df[df["benchmark"] == SEQ_TIME]
    assert set(seq["cell"]) == {"rnn", "lstm", "gru"}
    assert {"numba", "numpy-seed", "torch"} <= set(seq["backend"])
    assert (seq["value"].dropna() > 0).all()
    assert seq["unit"].iloc[0] == "seconds"
    assert df["machine"].nunique() == 1 and df["commit"].nunique() == 1
    assert res.has_suite and SEQ_TIME in res.benchmarks


def test_every_plot_and_the_index_are_written(tmp_path, capsys):
    out = tmp_path / "reports"
    page = report.build_report(FIXTURE, out, html_dir=tmp_path / "asvhtml",
                               records_dir=tmp_path / "no-records")
    core = {s.anchor for s in report.load_sections(("section_core",))[0]}
    written = [f.stem for s in page.sections if s.anchor in core for f in s.result.figures]
    assert sorted(written) == sorted(PLOTS)
    assert not page.section("gpu").result.figures
    for stem in PLOTS:
        for ext in ("png", "svg"):
            f = out / f"{stem}.{ext}"
            assert f.stat().st_size > 5000, f
    assert (out / "seq_len_time_per_step.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (out / "index.html").read_text()
    for stem in PLOTS:
        assert f"src='{stem}.png'" in html
    assert "../asvhtml/index.html" in html          # asv's HTML, by relative path
    assert "http://" not in html and "https://" not in html  # nothing from the network
    assert "<table>" in html and "time per step" in html
    summary = (out / "summary.md").read_text()
    assert "| what | value | from |" in summary
    keys = {k.what: k.value for k in page.key_numbers}
    assert any(k.startswith("LSTM numba / torch time") for k in keys)
    assert "**LSTM**" in summary and "| backend | T=4 | T=16 |" in summary
    assert any(k.startswith("thread speedup") for k in keys)
    # the race is not plotted: its values are listed under "other benchmarks"
    other = page.section("other").result.tables
    assert "bench_race.Race.track_ratio_to_torch" in {t.title for t in other}
    assert "bench_seq_len.SeqLen.time_forward" not in {t.title for t in other}
    # no GPU record: the GPU section says which command writes one
    gpu = page.section("gpu")
    assert gpu is not None and any("benchmarks/gpu_check.py" in n for n in gpu.result.notes)
    assert "benchmarks/gpu_check.py" in html


def test_step_table_rows_follow_the_registry_order(tmp_path):
    page = report.build_report(FIXTURE, tmp_path, sections=[
        s for s in report.load_sections()[0] if s.anchor == "steps"], records_dir=tmp_path)
    tables = page.section("steps").result.tables
    assert [t.title for t in tables] == ["RNN", "LSTM", "GRU"]
    order = [r[0] for r in tables[1].rows]
    assert order == [b for b in REGISTRY if b in order]
    us = dict((r[0], float(r[1])) for r in tables[1].rows)
    assert all(v > 0 for v in us.values())


def test_colours_and_markers_come_from_the_backend_registry():
    for name, b in REGISTRY.items():
        assert report.color(name) == b.colour and report.marker(name) == b.marker
    assert len({b.colour for b in REGISTRY.values()}) == len(REGISTRY)
    assert report.color("new-backend") == report.color("new-backend")
    assert report.color("new-backend") not in {b.colour for b in REGISTRY.values()}
    assert report.order(["torch", "zzz", "numba", "numpy"]) == ["numpy", "numba", "torch", "zzz"]


def test_partial_results_say_what_is_missing_and_plot_the_rest(results, tmp_path, capsys,
                                                               monkeypatch):
    _only(monkeypatch, "seq-len", "threads")
    f = _result_file(results)
    raw = json.loads(f.read_text())
    for name in list(raw["results"]):
        if name.startswith("bench_threads."):
            del raw["results"][name]
    # one parameter set of the seq-len benchmark failed
    seq = raw["results"][SEQ_TIME]
    seq[0] = [None] + seq[0][1:]
    f.write_text(json.dumps(raw))
    out = tmp_path / "out"
    assert report.main(["--results-dir", str(results), "--out", str(out),
                        "--records-dir", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "missing: vm: bench_threads.Threads.time_forward: no results" in err
    assert "partial: vm: bench_seq_len.SeqLen.time_forward: 1 of" in err
    assert not (out / "thread_scaling.png").exists()
    assert (out / "seq_len_time_per_step.png").exists()
    html = (out / "index.html").read_text()
    assert "Missing, partial or suspect results" in html
    assert "bench_threads.Threads.time_forward: no results" in html
    assert "bench_threads.Threads.time_forward: no results" in (out / "summary.md").read_text()


def test_thread_scaling_disturbed_by_load_is_flagged(results, tmp_path, capsys, monkeypatch):
    _only(monkeypatch, "threads")
    f = _result_file(results)
    raw = json.loads(f.read_text())
    row = raw["results"][THREADS]
    names = json.loads((results / "benchmarks.json").read_text())[THREADS]["param_names"]
    combos = list(itertools.product(*row[1]))
    k = names.index("threads")
    # every run on more than one thread 50x slower: what a busy second core does
    row[0] = [v * 50 if c[k] != "1" else v for v, c in zip(row[0], combos)]
    f.write_text(json.dumps(raw))
    report.main(["--results-dir", str(results), "--out", str(tmp_path / "o"),
                 "--records-dir", str(tmp_path)])
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


def test_several_machines_get_their_own_plots(results, tmp_path, monkeypatch):
    _only(monkeypatch, "steps", "key-numbers", "seq-len", "threads")
    f = _result_file(results)
    other = results / "other-box"
    other.mkdir()
    (other / "machine.json").write_text(json.dumps({"machine": "other-box", "num_cpu": "16"}))
    shutil.copy(f, other / f.name)
    page = report.build_report(results, tmp_path / "out", html_dir=tmp_path,
                               records_dir=tmp_path)
    stems = {f.stem for f in page.figures}
    machine = f.parent.name
    assert f"seq_len_time_per_step-{machine}" in stems
    assert "seq_len_time_per_step-other-box" in stems
    assert (tmp_path / "out" / "thread_scaling-other-box.png").exists()
    assert any(k.what.startswith("other-box: ") for k in page.key_numbers)
    steps = [t.title for t in page.section("steps").result.tables]
    assert f"{machine} · LSTM" in steps and "other-box · LSTM" in steps


def test_missing_results_dir_is_a_clear_error(tmp_path, capsys):
    assert report.main(["--results-dir", str(tmp_path / "nope"), "--out",
                        str(tmp_path / "o")]) == 2
    assert "no results folder" in capsys.readouterr().err


def test_command_line_entry_point_runs_the_report(tmp_path, capsys, monkeypatch):
    _only(monkeypatch, "steps")
    from lstm_numba.__main__ import main

    out = tmp_path / "o"
    assert main(["report", "--results-dir", str(FIXTURE), "--out", str(out),
                 "--records-dir", str(tmp_path)]) == 0
    assert (out / "index.html").exists() and (out / "summary.md").exists()
    assert "plots (PNG + SVG)" in capsys.readouterr().out
