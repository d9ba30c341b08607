"""The report's section registry and its expected-benchmarks logic.

Sections are plug-ins (``lstm_numba/report/sections.py``): a module named in
``MODULES`` that does not exist is skipped, the page follows ``MODULES``'
order, and the benchmarks the report expects come from asv's own
``benchmarks.json``, not from a list typed into the report.
"""
import json
import shutil
import sys
import types
from pathlib import Path

import pytest

pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

from lstm_numba import report  # noqa: E402
from lstm_numba.report import sections  # noqa: E402
from lstm_numba.report.bench_names import SEQ_TIME  # noqa: E402

ASV = Path(__file__).parent / "data" / "asv_results"
PKG = "lstm_numba.report"


def _fake_module(monkeypatch, name, anchor, fail=False):
    """A section module ``lstm_numba.report.<name>`` that exists only in this test."""
    def build(ctx):
        if fail:
            raise RuntimeError("boom")
        rows = ctx.rows(SEQ_TIME)
        return report.SectionResult(
            notes=[f"{anchor}: {len(rows)} rows on {ctx.machine}"],
            key_numbers=[report.KeyNumber(f"{anchor} rows", str(len(rows)), SEQ_TIME)],
            tables=[report.Table(f"{anchor} table", ("a", "b"), (("1", "x|y"),))])

    mod = types.ModuleType(f"{PKG}.{name}")
    mod.SECTIONS = [report.Section(anchor, f"Title of {anchor}", build, needs=(SEQ_TIME,))]
    monkeypatch.setitem(sys.modules, f"{PKG}.{name}", mod)
    return mod


def _absent(monkeypatch, *names):
    """Make sure the other engineers' modules count as not written in this test."""
    real = sections.importlib.import_module

    def fake(name, *a, **k):
        if name.rpartition(".")[2] in names and name not in sys.modules:
            e = ModuleNotFoundError(f"No module named {name!r}")
            e.name = name
            raise e
        return real(name, *a, **k)

    monkeypatch.setattr(sections.importlib, "import_module", fake)


def test_registry_names_the_planned_modules_in_page_order():
    assert sections.MODULES == ("section_evidence", "section_core", "section_train",
                                "section_limits", "section_gpu")


def test_missing_section_modules_are_skipped(monkeypatch):
    _absent(monkeypatch, "section_evidence", "section_train", "section_limits")
    for name in ("section_evidence", "section_train", "section_limits"):
        monkeypatch.delitem(sys.modules, f"{PKG}.{name}", raising=False)
    found, issues = sections.load_sections()
    assert issues == []
    anchors = [s.anchor for s in found]
    assert anchors[0] == "steps" and anchors[-1] == "gpu"
    assert "seq-len" in anchors and "accuracy" in anchors
    found, issues = sections.load_sections(("section_no_such_thing", "section_gpu"))
    assert [s.anchor for s in found] == ["gpu"] and issues == []


def test_sections_follow_the_registry_order(monkeypatch):
    _fake_module(monkeypatch, "section_evidence", "evidence")
    _fake_module(monkeypatch, "section_train", "train")
    _fake_module(monkeypatch, "section_limits", "limits")
    found, issues = sections.load_sections()
    anchors = [s.anchor for s in found]
    assert issues == []
    assert anchors[0] == "evidence"
    assert anchors.index("accuracy") < anchors.index("train") < anchors.index("limits") \
        < anchors.index("gpu") == len(anchors) - 1


def test_page_order_evidence_first_then_other_results_and_issues_last(monkeypatch, tmp_path):
    _fake_module(monkeypatch, "section_evidence", "evidence")
    _fake_module(monkeypatch, "section_train", "train")
    _fake_module(monkeypatch, "section_limits", "limits")
    # the built-in plots are tested elsewhere: keep this page small
    monkeypatch.setattr(sections, "MODULES", ("section_evidence", "section_train",
                                              "section_limits", "section_gpu"))
    out = tmp_path / "out"
    page = report.build_report(ASV, out, records_dir=tmp_path / "none")
    assert [s.anchor for s in page.sections] == ["evidence", "train", "limits", "gpu", "other"]
    ev = page.section("evidence").result
    assert ev.notes == ["evidence: 24 rows on vm"] and ev.key_numbers[0].value == "24"
    html = (out / "index.html").read_text()
    pos = [html.index(f"id='{a}'") for a in ("evidence", "train", "limits", "gpu",
                                                      "other", "issues")]
    assert pos == sorted(pos)
    md = (out / "summary.md").read_text()
    pos = [md.index(f"## {t}") for t in ("Title of evidence", "Title of train",
                                         "Title of limits", "Other benchmarks",
                                         "Missing, partial or suspect")]
    assert pos == sorted(pos)
    assert "| 1 | x\\|y |" in md                   # a '|' in a cell does not break the table


def test_a_failing_section_is_an_error_not_a_lost_page(monkeypatch, tmp_path, capsys):
    _fake_module(monkeypatch, "section_train", "train", fail=True)
    _fake_module(monkeypatch, "section_limits", "limits")
    monkeypatch.setattr(sections, "MODULES", ("section_train", "section_limits"))
    assert report.main(["--results-dir", str(ASV), "--out", str(tmp_path / "o"),
                        "--records-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "error: section 'Title of train' failed: RuntimeError: boom" in err
    html = (tmp_path / "o" / "index.html").read_text()
    assert "limits: 24 rows on vm" in html and "RuntimeError: boom" in html


def test_a_broken_module_is_reported(monkeypatch):
    mod = types.ModuleType(f"{PKG}.section_train")          # no SECTIONS
    monkeypatch.setitem(sys.modules, f"{PKG}.section_train", mod)
    real = sections.importlib.import_module

    def fake(name, *a, **k):
        if name.endswith(".section_limits"):
            e = ModuleNotFoundError("No module named 'scipy'")
            e.name = "scipy"                 # a dependency missing, not the module itself
            raise e
        return real(name, *a, **k)

    monkeypatch.setattr(sections.importlib, "import_module", fake)
    found, issues = sections.load_sections(("section_train", "section_limits", "section_gpu"))
    assert [s.anchor for s in found] == ["gpu"]
    text = " ".join(i.text for i in issues)
    assert "section_train defines no SECTIONS" in text and "'scipy'" in text
    assert all(i.kind == "error" for i in issues)


def test_duplicate_anchor_is_refused(monkeypatch):
    _fake_module(monkeypatch, "section_train", "gpu")
    found, issues = sections.load_sections(("section_train", "section_gpu"))
    assert len(found) == 1 and "anchor 'gpu' is already used" in issues[0].text


# ---------------------------------------------------------------- expected benchmarks

@pytest.fixture
def results(tmp_path):
    dst = tmp_path / "results"
    shutil.copytree(ASV, dst)
    return dst


def _issues(results, needs):
    res = report.load_results(results)
    df, _ = report.select(res)
    return [i.line() for i in report.missing_issues(df, res, needs)]


def test_expected_benchmarks_come_from_benchmarks_json(results):
    bj = results / "benchmarks.json"
    meta = json.loads(bj.read_text())
    # a benchmark the suite defines (say a new one) without results is missing ...
    meta["bench_new.New.track_thing"] = dict(meta[SEQ_TIME], name="bench_new.New.track_thing")
    bj.write_text(json.dumps(meta))
    lines = _issues(results, {"Seq": (SEQ_TIME,)})
    assert "missing: vm: bench_new.New.track_thing: no results" in lines
    # ... though no section reads it; benchmarks with results are not
    assert not any(SEQ_TIME + ": no results" in x for x in lines)


def test_a_section_reading_a_benchmark_the_suite_no_longer_defines(results):
    bj = results / "benchmarks.json"
    meta = json.loads(bj.read_text())
    meta["bench_seq_len.SeqLen.time_forward_renamed"] = meta.pop(SEQ_TIME)
    bj.write_text(json.dumps(meta))
    lines = _issues(results, {"Sequence length": (SEQ_TIME,)})
    assert (f"missing: section 'Sequence length' reads {SEQ_TIME}, which benchmarks.json "
            "does not define (renamed or removed?)") in lines
    assert "missing: vm: bench_seq_len.SeqLen.time_forward_renamed: no results" in lines


def test_without_benchmarks_json_the_sections_needs_stand_in(results):
    (results / "benchmarks.json").unlink()
    f = next(p for p in results.glob("*/*.json") if p.name != "machine.json")
    raw = json.loads(f.read_text())
    del raw["results"][SEQ_TIME]
    f.write_text(json.dumps(raw))
    lines = _issues(results, {"Seq": (SEQ_TIME, "bench_accuracy.Accuracy.track_max_abs_error")})
    assert any("no benchmarks.json" in x for x in lines)
    assert f"missing: vm: {SEQ_TIME}: no results" in lines
    assert not any("track_max_abs_error: no results" in x for x in lines)


def test_other_results_are_the_benchmarks_no_section_reads(tmp_path, monkeypatch):
    monkeypatch.setattr(sections, "MODULES", ())
    page = report.build_report(ASV, tmp_path, records_dir=tmp_path)
    titles = {t.title for t in page.section("other").result.tables}
    # no section: every benchmark with a value is listed, the race and the sweeps alike
    assert {SEQ_TIME, "bench_race.Race.track_ratio_to_torch"} <= titles
    assert "bench_gpu.GpuForward.time_forward" not in titles       # no value at all


def test_an_empty_results_folder_still_gives_a_page(tmp_path, monkeypatch):
    monkeypatch.setattr(sections, "MODULES", ("section_core", "section_gpu"))
    (tmp_path / "results").mkdir()
    page = report.build_report(tmp_path / "results", tmp_path / "out",
                               records_dir=tmp_path / "none")
    assert page.figures == [] and page.footnote == "no results"
    lines = [i.line() for i in page.issues]
    assert "missing: no results at all" in lines
    assert any("no benchmarks.json" in x for x in lines)
    html = (tmp_path / "out" / "index.html").read_text()
    assert "id='accuracy'" in html and "Nothing to show" in html


def test_rows_or_missing_gives_rows_or_says_what_is_missing():
    """One benchmark: its rows; several: a tuple; all empty: None and one 'missing' issue."""
    import pandas as pd

    df = pd.DataFrame({"benchmark": [SEQ_TIME, SEQ_TIME, "b.C.other"],
                       "value": [1.0, None, 3.0], "seq_len": [8.0, 16.0, 8.0]})
    ctx = sections.Context(df=df, machine="m", results=None, figures=None)
    res = report.SectionResult()
    d = ctx.rows_or_missing(res, "time per step", SEQ_TIME)
    assert list(d["value"]) == [1.0] and list(d["seq_len"]) == [8] and not res.issues
    a, b = ctx.rows_or_missing(res, "pair", "b.C.absent", "b.C.other", label="bench b")
    assert a.empty and list(b["value"]) == [3.0] and not res.issues
    assert ctx.rows_or_missing(res, "pair", "b.C.absent", "b.C.gone", label="bench b") is None
    assert ctx.rows_or_missing(res, "thread scaling", "b.C.absent") is None
    assert [i.line() for i in res.issues] == ["missing: pair: no bench b results",
                                              "missing: thread scaling: no b.C.absent results"]
