"""The report's evidence section (lstm_numba/report/section_evidence.py).

The fixture ``tests/data/evidence_results`` is a real asv run, smoke profile,
of the benchmarks the section reads (bench_claims, bench_seq_len.SeqLen,
bench_threads, bench_limits.Limits*/SyncThreads, bench_train.TrainTape):

    LSTM_NUMBA_PROFILE=smoke asv --config <copy with results_dir elsewhere> run \
        --python=same --launch-method spawn --bench 'bench_claims|bench_seq_len.SeqLen$|...'
"""
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

from lstm_numba.report import build_report  # noqa: E402
from lstm_numba.report import bench_names as bn  # noqa: E402
from lstm_numba.report import section_evidence as ev  # noqa: E402
from lstm_numba.report.load import load_results, rows  # noqa: E402
from lstm_numba.report.page import Figure  # noqa: E402

DATA = Path(__file__).parent / "data"
FIXTURE = DATA / "evidence_results"
NO_CLAIMS = DATA / "asv_results"     # the report's fixture: no bench_claims results


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("evidence")
    page = build_report(FIXTURE, out, sections=ev.SECTIONS, records_dir=out / "none")
    return page, out


def test_every_claim_gets_a_verdict_from_the_fixture(built):
    page, _ = built
    res = page.section("evidence").result
    overview = res.tables[0]
    assert overview.header == ("#", "claim", "verdict", "reproduce")
    assert [r[0] for r in overview.rows] == ["1", "2", "3", "4", "5"]
    for n, title, verdict, cmd in overview.rows:
        assert verdict.split(" ")[0].rstrip(":") in ("supported", "refuted", "it"), verdict
        assert "asv run" in cmd
    assert len(res.notes) == 5


def test_key_numbers_are_computed_from_the_results(built):
    page, _ = built
    df = load_results(FIXTURE).df
    keys = {k.what: k.value for k in page.section("evidence").result.key_numbers}
    hz = rows(df, bn.HORIZON)
    for _, r in hz.iterrows():
        assert keys[f"[1] gradient horizon, {r['cell']} (steps; relative norm < 1e-3)"] == \
            f"{r['value']:.0f}"
    tape = {r["cell"]: r["value"] for _, r in rows(df, bn.CELL_TAPE).iterrows()}
    assert keys["[3] GRU / LSTM tape bytes per step"] == f"{tape['gru'] / tape['lstm']:.2f}×"
    tr = {r["cell"]: r["value"] for _, r in rows(df, bn.CELL_TRAIN).iterrows()}
    assert keys["[2] LSTM / RNN time, training step"] == f"{tr['lstm'] / tr['rnn']:.2f}×"
    assert keys["[2] FLOPs LSTM : GRU : RNN"] == "4 : 3 : 1"


def test_plots_and_pages_are_written_evidence_first(built):
    page, out = built
    stems = [f.stem for f in page.section("evidence").result.figures]
    assert {"evidence_gradient_flow", "evidence_adding"} <= set(stems)
    for s in stems:
        assert (out / f"{s}.png").stat().st_size > 5000
    html = (out / "index.html").read_text()
    assert "The notes&#x27; claims, measured" in html or "The notes' claims, measured" in html
    md = (out / "summary.md").read_text()
    assert "Claim 1" in md and "Verdict:" in md


def test_full_page_puts_evidence_first(tmp_path):
    page = build_report(FIXTURE, tmp_path, records_dir=tmp_path / "none")
    assert page.sections[0].anchor == "evidence"


def test_missing_results_name_the_benchmark_to_run(tmp_path):
    page = build_report(NO_CLAIMS, tmp_path, sections=ev.SECTIONS, records_dir=tmp_path / "no")
    res = page.section("evidence").result
    verdicts = {r[0]: r[2] for r in res.tables[0].rows}
    assert verdicts["1"].startswith("no verdict")
    assert "bench_claims.GradientFlow" in verdicts["1"]
    assert "bench_claims.Adding" in verdicts["1"]
    texts = [i.text for i in page.issues if i.kind == "missing"]
    assert any("claim 1" in t and "bench_claims" in t for t in texts)
    assert "no verdict" in (tmp_path / "summary.md").read_text()


class _Ctx:
    """Just what the claim functions read: rows(name), save(...), records_dir."""

    def __init__(self, records, tmp):
        self.df = pd.DataFrame(records)
        self.records_dir = Path(tmp)

    def rows(self, name):
        return rows(self.df, name)

    def save(self, fig, stem, title, caption, foot=None):
        import matplotlib.pyplot as plt
        plt.close(fig)
        return Figure(stem, title, caption)


def _claim1_rows(rnn_mse, gated_mse, horizons):
    recs = [{"benchmark": bn.HORIZON, "cell": c, "value": v} for c, v in horizons.items()]
    for c in ("rnn", "lstm", "gru"):
        for t in (50, 100):
            mse = rnn_mse if c == "rnn" else gated_mse
            recs.append({"benchmark": bn.ADDING, "cell": c, "seq_len": t, "step": 10,
                         "value": mse.get(t, 0.16)})
    return recs


def test_claim1_rules(tmp_path):
    hz = {"rnn": 9.0, "lstm": 10.0, "lstm+fb1": 22.0, "gru": 13.0}
    cl = ev.claim_gradients(_Ctx(_claim1_rows({}, {50: 0.003, 100: 0.005}, hz), tmp_path))
    assert cl.verdict.startswith("it depends — on training") and "T=100" in cl.verdict
    hz2 = dict(hz, gru=40.0)
    cl = ev.claim_gradients(_Ctx(_claim1_rows({}, {50: 0.003}, hz2), tmp_path))
    assert cl.verdict.startswith("supported") and "4.44×" in cl.verdict
    cl = ev.claim_gradients(_Ctx(_claim1_rows({50: 0.001, 100: 0.001}, {50: 0.003}, hz),
                                 tmp_path))
    assert cl.verdict.startswith("refuted")
    cl = ev.claim_gradients(_Ctx(_claim1_rows({}, {}, hz), tmp_path))
    assert "training budget" in cl.verdict


def test_claim3_rules(tmp_path):
    def recs(gru_over_lstm):
        out = []
        for c, t in (("rnn", 1.0), ("lstm", 4.0), ("gru", 4.0 * gru_over_lstm)):
            for b in (bn.CELL_INFER, bn.CELL_TRAIN):
                out.append({"benchmark": b, "cell": c, "value": t})
            out.append({"benchmark": bn.CELL_TAPE, "cell": c, "value": 100.0 * t,
                        "batch": 8, "hidden": 16})
        return out

    assert ev.claim_cost(_Ctx(recs(0.7), tmp_path), 3).verdict.startswith("supported")
    assert ev.claim_cost(_Ctx(recs(1.1), tmp_path), 3).verdict.startswith("refuted")
    v2 = ev.claim_cost(_Ctx(recs(0.7), tmp_path), 2).verdict
    assert v2.startswith("supported") and "4.00×" in v2


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_page_renders_in_headless_chromium(built, tmp_path):
    _, out = built
    shot = tmp_path / "e.png"
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                    f"--screenshot={shot}", "--window-size=1300,3000",
                    (out / "index.html").as_uri()],
                   check=True, capture_output=True, timeout=120)
    from matplotlib.image import imread

    img = imread(shot)
    assert img.shape[0] >= 1000 and img.shape[1] >= 1000
    assert np.std(img[..., :3]) > 0.01      # not a blank page


def test_gpu_numbers_come_from_the_committed_record(tmp_path):
    from lstm_numba.report.gpu_record import frame, newest_record, read_record

    recs = DATA / "gpu_records"
    page = build_report(FIXTURE, tmp_path, sections=ev.SECTIONS, records_dir=recs)
    keys = {k.what: k.value for k in page.section("evidence").result.key_numbers}
    rec = read_record(newest_record(recs))
    df, _ = frame(rec.timings, rec.env)
    one = df[(df["backend"] == "torch-cuda") & (df["cell"] == "lstm") & (df["B"] == 1)
             & (df["H"] == 256)]["us_per_step"].min()
    assert keys["[4] GPU (cuDNN) LSTM H=256, B=1: µs per step"] == f"{one:.3g}"
    assert not any("no GPU" in i.text for i in page.issues if i.kind == "missing"
                   and "claim 4" in i.text)


def test_claim4_rules(tmp_path):
    """Threads at B=1: < 1.5x supports the claim; a 2-core split that does reach it
    refutes it, unless the GPU record shows B=1 using under a tenth of the GPU."""
    def recs(t1, t2):
        return [{"benchmark": bn.THREADS, "cell": "lstm", "backend": "numba-parallel",
                 "batch": b, "hidden": 256, "threads": n, "value": v}
                for b in (1, 64) for n, v in ((1, t1), (2, t2))]

    assert ev.claim_parallel(_Ctx(recs(1.0, 0.9), tmp_path)).verdict.startswith("supported")
    cl = ev.claim_parallel(_Ctx(recs(1.0, 0.52), tmp_path))          # no GPU record
    assert cl.verdict.startswith("refuted here") and "1.92×" in cl.verdict
    gpu = Path(__file__).parent / "data" / "gpu_records"
    cl = ev.claim_parallel(_Ctx(recs(1.0, 0.52), gpu))
    assert cl.verdict.startswith("it depends — on how wide the machine is"), cl.verdict
    assert "2 CPU threads" in cl.verdict and "B=64" in cl.verdict
