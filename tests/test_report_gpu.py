"""The report's GPU section, from committed gpu_check records.

``tests/data/gpu_records/gpu_check-2026-11-26-fixture.json`` is a TEST
FIXTURE, not a run: the H100 figures of ``DESIGN.md`` ("Figures measured",
LSTM, float32, T=1024, µs per step) written in ``benchmarks/gpu_check.py``'s
record format, with the in-kernel time and host cost per call that DESIGN.md
quotes for ``cuda-persistent`` in the fields the reworked script writes.
"""
import csv
import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

from lstm_numba import report  # noqa: E402
from lstm_numba.report import gpu_record, section_gpu  # noqa: E402

DATA = Path(__file__).parent / "data"
ASV = DATA / "asv_results"
RECORDS = DATA / "gpu_records"
FIXTURE = RECORDS / "gpu_check-2026-11-26-fixture.json"


def _gpu(tmp_path, records):
    page = report.build_report(ASV, tmp_path / "out", sections=section_gpu.SECTIONS,
                               records_dir=records)
    return page, page.section("gpu").result


def test_gpu_section_from_the_fixture(tmp_path):
    page, res = _gpu(tmp_path, RECORDS)
    assert not [i for i in res.issues if i.kind == "error"]
    note = " ".join(res.notes)
    assert "NVIDIA H100 80GB HBM3" in note and "2026-11-26" in note and "TF32 off" in note
    assert "TEST FIXTURE" in note
    main = res.tables[0]
    assert main.header == ("cell", "B", "H", "T", "torch-cuda[fp32] µs/step",
                           "cuda µs/step (× cuDNN)", "cuda-persistent µs/step (× cuDNN)")
    rows = {(r[1], r[2]): r for r in main.rows}
    assert len(rows) == 5
    assert rows[("1", "256")][4:] == ("11.5", "45 (0.26×)", "5.7 (2.02×)")
    assert rows[("64", "1024")][4:] == ("43.5", "223 (0.20×)", "556 (0.08×)")
    split = res.tables[1]
    assert split.header[-2:] == ("in-kernel µs/step", "host µs/call")
    assert ("lstm", "1", "256", "cuda-persistent", "5.7", "4.85", "470") in split.rows
    keys = {k.what: k.value for k in res.key_numbers}
    assert keys["cuda-persistent throughput over cuDNN, range"].startswith("0.08× (B=64 H=1024")
    assert keys["per-step floor at B=1, cuda-persistent"].startswith("5.7 µs (H=256")
    stems = [f.stem for f in res.figures]
    assert stems == ["gpu_us_per_step_vs_batch", "gpu_us_per_step_vs_hidden"]
    for s in stems:
        assert (tmp_path / "out" / f"{s}.png").stat().st_size > 5000
    html = (tmp_path / "out" / "index.html").read_text()
    assert "id='gpu'" in html and "src='gpu_us_per_step_vs_batch.png'" in html
    assert "5.7 (2.02×)" in (tmp_path / "out" / "summary.md").read_text()


def test_the_newest_record_by_the_date_in_its_name(tmp_path):
    for name in ("gpu_check-2026-11-20.json", "gpu_check-2026-11-26-h100.json",
                 "gpu_check-2026-11-24.csv", "gpu_check.md", "race-2026-12-01.md"):
        (tmp_path / name).write_text("{}")
    assert gpu_record.newest_record(tmp_path).name == "gpu_check-2026-11-26-h100.json"
    assert gpu_record.newest_record(tmp_path / "none") is None


def test_csv_record_without_ratios_or_extra_fields(tmp_path):
    """The CSV gpu_check writes beside the JSON: no env, empty cells; ratios computed."""
    rows = json.loads(FIXTURE.read_text())["timings"]
    fields = ["cell", "B", "H", "T", "backend", "variant", "ms", "us_per_step", "gflops",
              "proj_ms", "repeats", "note"]
    with open(tmp_path / "gpu_check-2026-11-27.csv", "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        wr.writeheader()
        for r in rows:
            wr.writerow({k: r.get(k) for k in fields})
    _, res = _gpu(tmp_path, tmp_path)
    rows = {(r[1], r[2]): r for r in res.tables[0].rows}
    assert rows[("1", "256")][4:] == ("11.5", "45 (0.26×)", "5.7 (2.02×)")
    assert len(res.tables) == 1                  # no split fields, no table for them
    assert "an unnamed GPU" in res.notes[0]
    assert len(res.figures) == 2


def test_reworked_record_fields_are_read_when_present(tmp_path):
    """Variants by launch path, in-kernel and host fields on every row, string fields,
    the barrier list, a simulator run (flagged), rows without a value (skipped)."""
    timings = []
    for h in (256, 512):
        for b in (1, 8):
            base = 10.0 + b
            for backend, variant, us in (("cuda", "graph", 5.0 + h / 256), ("cuda", "direct", 30),
                                         ("cuda", "dispatch", 60), ("cuda-persistent", "direct",
                                                                    2.0 * b),
                                         ("torch-cuda", "fp32", base), ("torch-cuda", "tf32", 8)):
                if variant in ("direct", "dispatch") and backend == "cuda" and b != 1:
                    continue
                timings.append({"cell": "gru", "B": b, "H": h, "T": 128, "backend": backend,
                                "variant": variant, "ms": us * 0.128, "us_per_step": us,
                                "x_cudnn": None, "kernel_us_per_step": us * 0.8,
                                "host_us": 25.0, "stat": "median of 15 calls",
                                "launch_path": "graph", "note": ""})
    timings.append({"cell": "gru", "B": 64, "H": 256, "T": 128, "backend": "cuda",
                    "variant": "graph", "ms": None, "us_per_step": None,
                    "note": "skipped: time budget spent"})
    rec = {"env": {"simulator": True, "gpu": "Some GPU"}, "checks": [{"ok": True}, {"ok": False}],
           "barrier": [{"blocks": 132, "threads": 256, "us_per_barrier": 1.45}],
           "timings": timings}
    (tmp_path / "gpu_check-2026-12-01.json").write_text(json.dumps(rec))
    page, res = _gpu(tmp_path, tmp_path)
    main, split, barrier = res.tables
    assert main.header[4:] == ("torch-cuda[fp32] µs/step", "cuda[graph] µs/step (× cuDNN)",
                               "cuda[direct] µs/step (× cuDNN)",
                               "cuda-persistent µs/step (× cuDNN)")
    first = {(r[1], r[2]): r for r in main.rows}[("1", "256")]
    assert first[4:] == ("11", "6 (1.83×)", "30 (0.37×)", "2 (5.50×)")
    assert {r[3] for r in split.rows} == {"cuda[graph]", "cuda[direct]", "cuda-persistent",
                                          "torch-cuda[fp32]"}
    assert split.header[5:] == ("in-kernel µs/step", "host µs/call")
    assert barrier.rows == (("132", "256", "1.45"),)
    assert "1 of 2 passed" in " ".join(res.notes)
    kinds = {(i.kind, i.text.split(":")[0]) for i in res.issues}
    assert ("suspect", "gpu_check-2026-12-01.json was run in numba-cuda's simulator") in kinds
    assert ("suspect", "gpu_check-2026-12-01.json") in kinds      # the failed check
    assert [f.stem for f in res.figures] == ["gpu_us_per_step_vs_batch",
                                             "gpu_us_per_step_vs_hidden"]


def test_no_record_says_which_command_writes_one(tmp_path):
    page, res = _gpu(tmp_path, tmp_path / "empty")
    assert not res.figures and not res.tables
    assert "benchmarks/gpu_check.py" in res.notes[0]
    assert any(i.kind == "missing" and "gpu_check" in i.text for i in page.issues)


def test_a_corrupt_record_is_named_and_the_page_still_written(tmp_path):
    shutil.copy(FIXTURE, tmp_path / "gpu_check-2026-11-26.json")
    (tmp_path / "gpu_check-2026-11-27.json").write_text("{not json")
    page, res = _gpu(tmp_path, tmp_path)
    assert any(i.kind == "error" and "gpu_check-2026-11-27.json" in i.text for i in res.issues)
    assert (tmp_path / "out" / "index.html").exists()
