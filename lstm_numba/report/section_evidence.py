"""The report's first section: the notes' five claims, each with a verdict.

Every number here is computed from the results (asv rows, the committed
gpu_check record); nothing is typed. A claim whose key results are missing
gets no verdict: the page names the benchmark to run instead. The verdict
rules are written next to each claim below, so a reader can check them.

Sources: ``benchmarks/bench_claims.py`` (gradient flow, adding problem, cost
per cell), ``bench_seq_len`` (inference time per cell), ``bench_threads``
(threads at batch 1 and 64), ``bench_limits`` (scan, attention, sync floor),
``bench_train`` (tape vs torch) and ``benchmarks/results/gpu_check-*.json``.
"""
from __future__ import annotations

import math

from ..cells import CELLS, flops_per_step
from . import style
from .bench_names import (ADDING, CELL_INFER, CELL_TAPE, CELL_TRAIN, FLOW, HORIZON, LIMITS,
                          LIMITS_THREADS, SEQ_TIME, SYNC_THREADS, TAPE, THREADS)
from .page import Issue, KeyNumber, SectionResult, Table
from .sections import Section

#: The constant predictor's test MSE on the adding problem (Var(U1 + U2) = 2/12).
CONSTANT_MSE = 1.0 / 6.0
#: A run "solves" T when its final test MSE is at most this (as experiments.adding).
SOLVED_MSE = 0.01

RUN = "LSTM_NUMBA_PROFILE=fast .venv/bin/asv run --python=same --launch-method spawn --bench "
CMD = {
    1: RUN + "bench_claims.GradientFlow --bench bench_claims.Adding  "
         "(or: python -m lstm_numba gradient-flow --plot flow.png; "
         "python -m lstm_numba adding --cell all --seq-len 50 100 200 --plot adding.png)",
    2: RUN + "bench_claims.CellCost --bench bench_seq_len.SeqLen",
    3: RUN + "bench_claims.CellCost --bench bench_seq_len.SeqLen",
    4: RUN + "bench_threads --bench bench_limits",
    5: RUN + "bench_claims.CellCost --bench bench_claims.Adding --bench bench_limits.Limits",
}
TITLES = {
    1: "A plain RNN's gradients vanish over long spans; LSTM and GRU keep them",
    2: "An LSTM is computationally expensive",
    3: "A GRU is cheaper than an LSTM",
    4: "LSTMs are hard to parallelize",
    5: "LSTMs need more memory; attention handles long range better",
}


def _x(v: float) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:.2f}×"


def _ratio(a, b):
    return a / b if a and b and math.isfinite(a) and math.isfinite(b) and b > 0 else None


def _value(d, **where):
    """The single value of the rows matching ``where`` (the least if several), or None."""
    for k, v in where.items():
        if k not in d.columns:
            return None
        d = d[d[k] == v]
    return float(d["value"].min()) if len(d) else None


def _bytes(v) -> str:
    for unit, f in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if v >= f:
            return f"{v / f:.3g} {unit}"
    return f"{v:.0f} B"


class _Claim:
    """What one claim collects: verdict, numbers, figures, tables, notes."""

    def __init__(self, n: int):
        self.n, self.verdict, self.numbers = n, None, []
        self.res = SectionResult()

    def missing(self, what: str, run: str) -> None:
        self.res.issues.append(Issue("missing", f"claim {self.n}: {what}: run {run}"))

    def key(self, what: str, value: str, source: str) -> None:
        self.res.key_numbers.append(KeyNumber(what, value, source))
        self.numbers.append(f"{what}: {value}")


def _bars(ctx, claim, stem, title, caption, groups, series, ylabel, log=False, ref=None):
    """Grouped bars: ``series`` {label: [value per group]} over ``groups``."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.6))
    n = max(len(series), 1)
    width = 0.8 / n
    for i, (label, vals) in enumerate(series.items()):
        xs = [g + (i - (n - 1) / 2) * width for g in range(len(groups))]
        ys = [v if v is not None and math.isfinite(v) else 0.0 for v in vals]
        ax.bar(xs, ys, width, label=label)
        for x, y in zip(xs, ys):
            if y:
                ax.annotate(f"{y:.3g}", (x, y), ha="center", va="bottom", fontsize=7)
    if ref is not None:
        ax.axhline(ref, color="grey", ls=":", lw=1)
    ax.set_xticks(range(len(groups)), groups)
    ax.set(ylabel=ylabel, yscale="log" if log else "linear")
    ax.legend(fontsize=8)
    fig.tight_layout()
    claim.res.figures.append(ctx.save(fig, stem, title, caption))


# ------------------------------------------------------------------ claim 1

def _flow_plot(ctx, claim, curve, horizons):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    colours = {"rnn": "tab:red", "lstm": "tab:blue", "lstm+fb1": "tab:cyan", "gru": "tab:green"}
    curve = curve.assign(distance=curve["distance"].astype(int))
    for cell in [c for c in colours if c in set(curve["cell"])]:
        g = curve[curve["cell"] == cell].sort_values("distance")
        # A norm that underflowed to 0 cannot be drawn on a log axis: drawn at 1e-40.
        ax.plot(list(g["distance"]), [max(v, 1e-40) for v in g["value"]], "o-",
                color=colours[cell], label=f"{cell} (horizon {horizons.get(cell, '–')})")
        zero = g[g["value"] <= 0]
        if len(zero):     # underflowed to 0: drawn at 1e-40 with a cross, not a dot
            ax.plot(zero["distance"], [1e-40] * len(zero), "x", color="black", ms=9)
    ax.axhline(1e-3, color="grey", ls=":", lw=1)
    ax.set(xscale="log", yscale="log", xlabel="distance d = T − t (steps)",
           ylabel="‖∂h_T/∂h_t‖_F / √H", title="Gradient flow at initialisation")
    ax.legend(fontsize=8)
    fig.tight_layout()
    claim.res.figures.append(ctx.save(
        fig, "evidence_gradient_flow", "Claim 1: gradient norm vs distance",
        "Relative Frobenius norm of ∂h_T/∂h_(T−d) (unit-sphere probes through the project's "
        "backward, PyTorch's init, x ~ N(0,1)); 1 at d = 0 by definition; dotted: the 1e-3 "
        "horizon threshold; ×: the norm underflowed to 0 (drawn at 1e-40). "
        "lstm+fb1: +1 on the forget gate's b_ih. " + style.shape_note(curve, ())))


def _adding_plot(ctx, claim, add):
    import matplotlib.pyplot as plt

    colours = {"rnn": "tab:red", "lstm": "tab:blue", "gru": "tab:green"}
    lens = sorted(set(add["seq_len"]))
    fig, ax = plt.subplots(figsize=(8, 4))
    for cell in [c for c in CELLS if c in set(add["cell"])]:
        for i, t in enumerate(lens):
            g = add[(add["cell"] == cell) & (add["seq_len"] == t)].sort_values("step")
            if len(g):
                ax.plot(g["step"], g["value"], ("-", "--", ":", "-.")[i % 4], marker="o",
                        color=colours.get(cell), label=f"{cell} T={t}")
    ax.axhline(CONSTANT_MSE, color="grey", ls="--", lw=1)
    ax.axhline(SOLVED_MSE, color="grey", ls=":", lw=1)
    ax.set(yscale="log", xlabel="Adam steps", ylabel="test MSE",
           title="Adding problem: test MSE vs steps (grey: constant 1/6, solved 0.01)")
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    claim.res.figures.append(ctx.save(
        fig, "evidence_adding", "Claim 1 and 5: the adding problem",
        "One layer + linear read-out trained with the numba backward and Adam "
        "(bench_claims.Adding), test MSE at the tracked steps; the LSTM starts with +1 on "
        "its forget bias. " + style.shape_note(add, ())))


def _longest_solved(final, cell):
    ok = [t for (c, t), v in final.items() if c == cell and v <= SOLVED_MSE]
    return max(ok) if ok else 0


def claim_gradients(ctx) -> _Claim:
    cl = _Claim(1)
    hz, add = ctx.rows(HORIZON), ctx.rows(ADDING)
    if hz.empty:
        cl.missing("no gradient horizon", RUN + "bench_claims.GradientFlow")
    if add.empty:
        cl.missing("no adding-problem results", RUN + "bench_claims.Adding")
    if hz.empty or add.empty:
        return cl
    horizons = {r["cell"]: r["value"] for _, r in hz.iterrows()}
    flow = ctx.rows(FLOW)
    fmt = {c: f"{v:.0f}" for c, v in horizons.items()}
    if not flow.empty:
        _flow_plot(ctx, cl, flow, fmt)
    add = add.assign(step=add["step"].astype(int))
    last = add.groupby(["cell", "seq_len"])["step"].transform("max")
    fin = add[add["step"] == last]
    final = {(r["cell"], int(r["seq_len"])): r["value"] for _, r in fin.iterrows()}
    lens = sorted({t for _, t in final})
    cl.res.tables.append(Table(
        "Adding problem: final test MSE (constant predictor 0.167; solved ≤ 0.01)",
        ("cell",) + tuple(f"T={t}" for t in lens),
        tuple((c,) + tuple(f"{final[(c, t)]:.4f}" if (c, t) in final else "–" for t in lens)
              for c in CELLS if any((c, t) in final for t in lens)),
        f"after {int(fin['step'].max())} steps"))
    _adding_plot(ctx, cl, add)
    for c in ("rnn", "lstm", "lstm+fb1", "gru"):
        if c in horizons:
            cl.key(f"gradient horizon, {c} (steps; relative norm < 1e-3)", fmt[c], HORIZON)
    if not flow.empty:
        # The horizon only says where 1e-3 is crossed; the norm further out says how
        # fast each cell keeps losing it (orders of magnitude apart).
        mid = sorted(set(flow["distance"].astype(int)))[len(set(flow["distance"])) // 2]
        for _, r in flow[flow["distance"].astype(int) == mid].iterrows():
            cl.key(f"relative ‖∂h_T/∂h_t‖ at d={mid}, {r['cell']}", f"{r['value']:.1e}", FLOW)
    solved = {c: _longest_solved(final, c) for c in CELLS}
    for c in CELLS:
        cl.key(f"adding problem, longest T solved, {c}", str(solved[c]) if solved[c] else "none",
               ADDING)
    gated = max(solved["lstm"], solved["gru"])
    gated_h = max(horizons.get(c, 0) for c in ("lstm", "gru"))
    init_ratio = _ratio(gated_h, horizons.get("rnn"))
    fb = _ratio(horizons.get("lstm+fb1"), horizons.get("rnn"))
    fb_txt = f"; with +1 on the LSTM's forget bias {_x(fb)}" if fb else ""
    rnn_txt = f"at T={solved['rnn']}" if solved["rnn"] else "at no T tried"
    # Rule: supported when a gated cell solves a longer adding problem than the RNN AND
    # the gated horizon at PyTorch's default init is >= 2x the RNN's; if only training
    # separates them, "it depends"; if the RNN solves as long a T as any gated cell, refuted.
    if gated > solved["rnn"] and init_ratio and init_ratio >= 2:
        cl.verdict = (f"supported: at initialisation the gated horizon is {_x(init_ratio)} "
                      f"the RNN's{fb_txt}; trained, a gated cell solves the adding problem at "
                      f"T={gated}, the RNN {rnn_txt}")
    elif gated > solved["rnn"]:
        cl.verdict = (f"it depends — on training: at PyTorch's default init the best gated "
                      f"horizon is only {_x(init_ratio)} the RNN's (the gates do not keep "
                      f"gradients by themselves{fb_txt}), but trained, a gated cell solves the "
                      f"adding problem at T={gated}, the RNN {rnn_txt}")
    elif gated == 0 and solved["rnn"] == 0:
        cl.verdict = ("it depends — on the training budget: no cell solved the adding "
                      "problem in the steps run; horizons at init: "
                      + ", ".join(f"{c} {v}" for c, v in fmt.items()))
    else:
        cl.verdict = (f"refuted here: the RNN solves T={solved['rnn']}, as long as any "
                      "gated cell")
    return cl


# ------------------------------------------------------------------ claims 2, 3

def _per_cell(d, **where):
    return {c: _value(d, cell=c, **where) for c in CELLS}


def _inference_times(ctx):
    """Per cell, numba inference seconds at the largest T of bench_seq_len (else CellCost)."""
    seq = ctx.rows(SEQ_TIME)
    if not seq.empty:
        s = seq[seq["backend"] == "numba"]
        if len(s):
            t = int(s["seq_len"].max())
            return _per_cell(s, seq_len=t), SEQ_TIME, f"numba, T={t}, " + style.shape_note(
                s, ("batch", "hidden", "threads"))
    return _per_cell(ctx.rows(CELL_INFER)), CELL_INFER, "numba, CellCost sizes"


def _gpu_frame(ctx):
    """The newest committed gpu_check record's cuDNN (torch-cuda) rows and its name."""
    try:
        from .gpu_record import frame, newest_record, read_record

        path = newest_record(ctx.records_dir)
        if path is None:
            return None, None
        rec = read_record(path)
        df, _ = frame(rec.timings, rec.env)
    except Exception:  # noqa: BLE001 -- an unreadable record only drops the GPU numbers
        return None, None
    if df is None or df.empty or "backend" not in df.columns:
        return None, None
    d = df[df["backend"] == "torch-cuda"]
    return (d, path.name) if len(d) else (None, None)


def _gpu_times(ctx):
    """Per cell, cuDNN (torch-cuda) µs per step at the largest B, H in the GPU record."""
    d, name = _gpu_frame(ctx)
    if d is None:
        return None, None
    # The (B, H) measured for the most cells, then the largest.
    sizes = d.groupby(["B", "H"])["cell"].nunique().reset_index()
    sizes = sizes.assign(work=sizes["B"] * sizes["H"]).sort_values(["cell", "work"])
    b, h = int(sizes["B"].iloc[-1]), int(sizes["H"].iloc[-1])
    d = d[(d["B"] == b) & (d["H"] == h)]
    out = {c: float(d[d["cell"] == c]["us_per_step"].min()) if (d["cell"] == c).any() else None
           for c in CELLS}
    return out, f"torch-cuda (cuDNN), B={b}, H={h}, {name}"


def claim_cost(ctx, n: int) -> _Claim:
    """Claim 2 (n=2: LSTM vs FLOPs) or claim 3 (n=3: GRU vs LSTM)."""
    cl = _Claim(n)
    inf, inf_src, inf_where = _inference_times(ctx)
    train = _per_cell(ctx.rows(CELL_TRAIN))
    tape = _per_cell(ctx.rows(CELL_TAPE))
    if not any(inf.values()):
        cl.missing("no inference time per cell", RUN + "bench_seq_len.SeqLen")
    if not any(train.values()):
        cl.missing("no training time per cell", RUN + "bench_claims.CellCost")
    if not any(inf.values()) or not any(train.values()):
        return cl
    gpu, gpu_where = _gpu_times(ctx)
    hh = 256
    fl = {c: flops_per_step(c, 1, hh, hh) for c in CELLS}
    rows = []
    for c in CELLS:
        rows.append((c, f"{fl[c] / fl['rnn']:.0f}", _x(_ratio(inf[c], inf["rnn"])),
                     _x(_ratio(train[c], train["rnn"])),
                     _x(_ratio(gpu[c], gpu["rnn"])) if gpu else "–",
                     _bytes(tape[c]) if tape[c] else "–"))
    if n == 2:
        cl.res.tables.append(Table(
          "Cost per cell relative to the RNN", ("cell", "FLOPs", "inference time",
                                                "training step", "GPU (cuDNN)", "tape / step"),
          tuple(rows),
          f"FLOPs: DeepBench's 2·B·G·H·(I+H) at I=H. Inference: {inf_where} ({inf_src}). "
          "Training: bench_claims.CellCost (numba, one thread, interleaved). "
          + (f"GPU: {gpu_where}." if gpu else "GPU: no committed gpu_check record.")))
        series = {"FLOPs": [fl[c] / fl["rnn"] for c in CELLS],
                  "inference": [_ratio(inf[c], inf["rnn"]) for c in CELLS],
                  "training step": [_ratio(train[c], train["rnn"]) for c in CELLS]}
        if gpu:
            series["GPU (cuDNN)"] = [_ratio(gpu[c], gpu["rnn"]) for c in CELLS]
        _bars(ctx, cl, "evidence_cost", "Claims 2 and 3: cost per cell relative to the RNN",
              "FLOPs (DeepBench's count) against measured time, each ÷ the RNN's; if time "
              "followed FLOPs the bars of a cell would be equal. Inference: " + inf_where,
              list(CELLS), series, "× RNN", ref=1.0)
        r_inf, r_tr = _ratio(inf["lstm"], inf["rnn"]), _ratio(train["lstm"], train["rnn"])
        r_fl = fl["lstm"] / fl["rnn"]
        cl.key("FLOPs LSTM : GRU : RNN",
               " : ".join(f"{fl[c] / fl['rnn']:.0f}" for c in ("lstm", "gru", "rnn")), "cells.py")
        cl.key("LSTM / RNN time, inference", _x(r_inf), inf_src)
        cl.key("LSTM / RNN time, training step", _x(r_tr), CELL_TRAIN)
        if gpu and gpu.get("lstm") and gpu.get("rnn"):
            cl.key("LSTM / RNN time, GPU (cuDNN)", _x(_ratio(gpu["lstm"], gpu["rnn"])),
                   "gpu_check")
        else:
            cl.missing("no GPU times per cell", "benchmarks/gpu_check.py on a CUDA machine")
        # Rule: supported when the LSTM costs >= 2x the RNN in inference and training;
        # otherwise the time does not follow the FLOPs (fixed costs dominate).
        lo = min(v for v in (r_inf, r_tr) if v) if (r_inf or r_tr) else None
        if lo and lo >= 2:
            cl.verdict = (f"supported: {_x(r_inf)} the RNN's inference time and {_x(r_tr)} "
                          f"its training step, against {r_fl:.0f}× the FLOPs")
        else:
            cl.verdict = (f"it depends — on the size: here {_x(r_inf)} (inference) and "
                          f"{_x(r_tr)} (training) the RNN's time, not the {r_fl:.0f}× the "
                          "FLOPs predict: per-step fixed costs weigh as much as the gates")
    else:
        r_inf, r_tr = _ratio(inf["gru"], inf["lstm"]), _ratio(train["gru"], train["lstm"])
        r_mem = _ratio(tape["gru"], tape["lstm"])
        cl.key("GRU / LSTM time, inference", _x(r_inf), inf_src)
        cl.key("GRU / LSTM time, training step", _x(r_tr), CELL_TRAIN)
        cl.key("GRU / LSTM tape bytes per step", _x(r_mem), CELL_TAPE)
        if gpu and gpu.get("gru") and gpu.get("lstm"):
            cl.key("GRU / LSTM time, GPU (cuDNN)", _x(_ratio(gpu["gru"], gpu["lstm"])),
                   "gpu_check")
        ratios = [v for v in (r_inf, r_tr) if v]
        # Rule: supported when GRU is faster (< 0.95x) in both; refuted when slower
        # (>= 1.0x) in both; otherwise it depends on inference vs training.
        if ratios and max(ratios) < 0.95:
            cl.verdict = (f"supported: {_x(r_inf)} the LSTM's inference time, {_x(r_tr)} its "
                          f"training step, {_x(r_mem)} its tape (FLOPs: 0.75×)")
        elif ratios and min(ratios) >= 1.0:
            cl.verdict = (f"refuted here: GRU takes {_x(r_inf)} (inference) and {_x(r_tr)} "
                          "(training) the LSTM's time")
        else:
            cl.verdict = (f"it depends — on inference vs training: {_x(r_inf)} the LSTM's "
                          f"inference time, {_x(r_tr)} its training step, {_x(r_mem)} its "
                          "tape")
    return cl


# ------------------------------------------------------------------ claim 4

def _speedup(d, backend, batch):
    g = d[(d["backend"] == backend) & (d["batch"] == batch)]
    if g.empty or 1 not in set(g["threads"]):
        return None, None
    p = int(g["threads"].max())
    return _ratio(_value(g, threads=1), _value(g, threads=p)), p


def claim_parallel(ctx) -> _Claim:
    cl = _Claim(4)
    g, name = _gpu_frame(ctx)
    gpu = None      # (largest B's samples-per-µs gain over B=1, B, µs per step at B=1)
    if g is not None:
        g = g[g["cell"] == "lstm"]
        for h in sorted(set(g["H"])):
            gh = g[g["H"] == h]
            if 1 in set(gh["B"]) and gh["B"].max() > 1:
                bm = int(gh["B"].max())
                one = float(gh[gh["B"] == 1]["us_per_step"].min())
                many = float(gh[gh["B"] == bm]["us_per_step"].min())
                gain = _ratio(bm / many, 1 / one)
                cl.key(f"GPU (cuDNN) LSTM H={h}: samples per µs, B={bm} ÷ B=1",
                       _x(gain), name)
                if gain and (gpu is None or gain < gpu[0]):
                    gpu = (gain, bm, one)
                cl.key(f"GPU (cuDNN) LSTM H={h}, B=1: µs per step", f"{one:.3g}", name)
    th = ctx.rows(THREADS)
    if th.empty:
        cl.missing("no thread sweep", RUN + "bench_threads")
        return cl
    th = th[th["cell"] == "lstm"]
    rows = []
    for b in style.order(th["backend"]):
        s1, p = _speedup(th, b, 1)
        s64, _ = _speedup(th, b, int(th["batch"].max()))
        if p and p > 1:
            rows.append((b, str(p), _x(s1), _x(s64)))
    best1 = max((_speedup(th, b, 1)[0] or 0) for b in set(th["backend"]))
    bmax = int(th["batch"].max())
    best64 = max((_speedup(th, b, bmax)[0] or 0) for b in set(th["backend"]))
    if rows:
        cl.res.tables.append(Table(
            "LSTM thread speed-up (bench_threads)",
            ("backend", "threads", "speed-up, B=1", f"speed-up, B={bmax}"), tuple(rows),
            "A 2-thread figure on a busy shared machine is suspect."))
    if rows:
        _bars(ctx, cl, "evidence_threads", "Claim 4: LSTM thread speed-up, batch 1 vs batch "
              f"{bmax}", "Time on 1 thread ÷ time on the most threads (bench_threads, LSTM); "
              "dotted: no gain. " + style.shape_note(th, ("hidden",)),
              [r[0] for r in rows], {"B=1": [_speedup(th, r[0], 1)[0] for r in rows],
                                      f"B={bmax}": [_speedup(th, r[0], bmax)[0] for r in rows]},
              "speed-up (×)", ref=1.0)
    cl.key("LSTM best thread speed-up at B=1", _x(best1), THREADS)
    cl.key(f"LSTM best thread speed-up at B={bmax}", _x(best64), THREADS)
    lim, limt = ctx.rows(LIMITS), ctx.rows(LIMITS_THREADS)
    scan = None
    if lim.empty:
        cl.missing("no scan/attention times", RUN + "bench_limits.Limits")
    else:
        t = int(lim["seq_len"].max())
        lstm = _value(lim, cell="lstm", backend="numba", seq_len=t)
        mg = _value(lim, cell="mingru", backend="numba-parallel", seq_len=t)
        att = _value(lim, cell="attention", backend="numba", seq_len=t)
        if lstm:
            cl.key(f"LSTM time per step, B=1, T={t} (numba): the sequential floor",
                   style.fmt_time(lstm / t), LIMITS)
        if lstm and mg:
            cl.key(f"minGRU scan / LSTM time, B=1, T={t}", _x(_ratio(mg, lstm)), LIMITS)
        if lstm and att:
            cl.key(f"attention / LSTM time, B=1, T={t}", _x(_ratio(att, lstm)), LIMITS)
        if not limt.empty:
            both = lim[(lim["cell"] == "mingru") & (lim["backend"] == "numba-parallel")]
            two = limt[(limt["cell"] == "mingru") & (limt["backend"] == "numba-parallel")]
            if len(both) and len(two):
                tt = int(two["seq_len"].max())
                scan = _ratio(_value(both, seq_len=tt), _value(two, seq_len=tt))
                cl.key(f"minGRU scan thread speed-up, B=1, T={tt}", _x(scan), LIMITS_THREADS)
    sync = ctx.rows(SYNC_THREADS)
    if not sync.empty and (sync["mode"] == "pingpong").any():
        cl.key("two-thread ping-pong (the per-step sync floor)",
               f"{_value(sync, mode='pingpong'):.0f} ns", SYNC_THREADS)
    # Rule: supported when the LSTM gains < 1.5x from threads at B=1 (and, if measured,
    # less than the scan does); it depends on the batch when B=max gains >= 1.5x.
    # When 2 cores do split a B=1 step >= 1.5x: it depends on the machine's width if
    # the GPU record shows B=1 using under a tenth of what B=max moves per µs (at
    # every H measured), else refuted.
    if best1 and best1 < 1.5:
        tail = f" (the minGRU scan: {_x(scan)})" if scan else ""
        if best64 >= 1.5:
            cl.verdict = (f"it depends — on the batch: at B=1 threads buy the LSTM "
                          f"{_x(best1)}{tail}, at B={bmax} {_x(best64)}")
        else:
            cl.verdict = (f"supported: threads buy {_x(best1)} at B=1 and {_x(best64)} at "
                          f"B={bmax}{tail}")
    elif best1 and gpu and gpu[0] >= 10:
        # Two cores can split one step's work; the question is whether a wide
        # machine can: on the GPU a B=1 step costs about what a B=64 step does.
        cl.verdict = (f"it depends — on how wide the machine is: {int(th['threads'].max())} "
                      f"CPU threads split a step {_x(best1)} at B=1, but on the GPU a B=1 step still takes "
                      f"{gpu[2]:.3g} µs and B={gpu[1]} moves {_x(gpu[0])} more samples "
                      "per µs: the chain of steps, not the arithmetic, sets the time")
    elif best1:
        cl.verdict = f"refuted here: threads buy {_x(best1)} at B=1"
    return cl


# ------------------------------------------------------------------ claim 5

def claim_memory(ctx) -> _Claim:
    cl = _Claim(5)
    tape = _per_cell(ctx.rows(CELL_TAPE))
    if not any(tape.values()):
        cl.missing("no tape bytes per cell", RUN + "bench_claims.CellCost")
        return cl
    d = ctx.rows(CELL_TAPE)
    b, h = int(d["batch"].iloc[0]), int(d["hidden"].iloc[0])
    # Counted, not measured (no attention training backend): a flash-attention backward
    # keeps q, k, v, the output and one softmax statistic per query: (4H + 1) B floats.
    att = (4 * h + 1) * b * 4
    rows = [(c, _bytes(tape[c]), _x(_ratio(tape[c], tape["rnn"]))) for c in CELLS if tape[c]]
    rows.append(("attention (counted)", _bytes(att), _x(_ratio(att, tape["rnn"]))))
    cl.res.tables.append(Table(
        f"Bytes kept for the backward per time step (B={b}, H={h}, float32)",
        ("cell", "bytes / step", "× RNN"), tuple(rows),
        "Measured: numba training forward's tape.nbytes / T (bench_claims.CellCost). "
        "Attention: counted, (4H+1)·B floats per step, as a flash-attention backward keeps; "
        "but its time grows as T²."))
    _bars(ctx, cl, "evidence_memory", "Claim 5: bytes kept for the backward per time step",
          f"numba's training tape ÷ T per cell (B={b}, H={h}); attention counted, not measured.",
          [r[0] for r in rows], {"bytes / step": [tape[c] for c in CELLS if tape[c]] + [att]},
          "bytes per step", log=True)
    for c in CELLS:
        if tape[c]:
            cl.key(f"tape bytes per step, {c}", _bytes(tape[c]), CELL_TAPE)
    tt = ctx.rows(TAPE)
    if not tt.empty and (tt["backend"] == "torch").any():
        sub = tt[(tt["cell"] == "lstm") & (tt["checkpoint"] == "none")] if "checkpoint" in \
            tt.columns else tt[tt["cell"] == "lstm"]
        r = _ratio(_value(sub, backend="numba"), _value(sub, backend="torch"))
        if r:
            cl.key("LSTM tape, numba / torch autograd (bench_train)", _x(r), TAPE)
    add = ctx.rows(ADDING)
    solved = {}
    if not add.empty:
        add = add.assign(step=add["step"].astype(int))
        fin = add[add["step"] == add.groupby(["cell", "seq_len"])["step"].transform("max")]
        final = {(r["cell"], int(r["seq_len"])): r["value"] for _, r in fin.iterrows()}
        solved = {c: _longest_solved(final, c) for c in CELLS}
    lim = ctx.rows(LIMITS)
    att_r = None
    if not lim.empty:
        t = int(lim["seq_len"].max())
        att_r = _ratio(_value(lim, cell="attention", backend="numba", seq_len=t),
                       _value(lim, cell="lstm", backend="numba", seq_len=t))
        if att_r:
            cl.key(f"attention / LSTM forward time, B=1, T={t}", _x(att_r), LIMITS)
    r_lr = _ratio(tape["lstm"], tape["rnn"])
    solved_txt = (", ".join(f"{c} {v or 'none'}" for c, v in solved.items())
                  if solved else "adding problem not run")
    # Rule: "more memory" is supported when the LSTM keeps > 1.5x the RNN's bytes; the
    # attention half is not trained here, so the verdict says it depends.
    more = r_lr and r_lr > 1.5
    cl.verdict = (f"it depends — the LSTM keeps {_x(r_lr)} the RNN's bytes per step "
                  f"({'more memory: supported' if more else 'not much more'}), but attention "
                  f"is not trained here (counted, it keeps {_x(_ratio(att, tape['lstm']))} the "
                  f"LSTM's bytes per step and its time grows as T²"
                  + (f"; {_x(att_r)} the LSTM's forward at the longest T measured" if att_r
                     else "") + f"); longest adding-problem T solved: {solved_txt}")
    return cl


# ------------------------------------------------------------------ the page

CLAIMS = {1: claim_gradients, 2: lambda ctx: claim_cost(ctx, 2),
          3: lambda ctx: claim_cost(ctx, 3), 4: claim_parallel, 5: claim_memory}


def build(ctx) -> SectionResult:
    """The overview table of verdicts, then every claim's numbers, plots and tables."""
    res = SectionResult()
    rows = []
    for n, fn in CLAIMS.items():
        cl = fn(ctx)
        verdict = cl.verdict or ("no verdict: results missing — run " +
                                 "; ".join(i.text.split(": run ", 1)[-1] for i in cl.res.issues
                                           if i.kind == "missing") or CMD[n])
        rows.append((str(n), TITLES[n], verdict, CMD[n]))
        res.notes.append(f"Claim {n} — {TITLES[n]}. Verdict: {verdict}.")
        res.figures += cl.res.figures
        res.tables += [Table(f"Claim {n}: {t.title}", t.header, t.rows, t.note)
                       for t in cl.res.tables]
        res.key_numbers += [KeyNumber(f"[{n}] {k.what}", k.value, k.source)
                            for k in cl.res.key_numbers]
        res.issues += cl.res.issues
    res.tables.insert(0, Table("The notes' claims, measured",
                               ("#", "claim", "verdict", "reproduce"), tuple(rows)))
    return res


SECTIONS = [Section(
    "evidence", "The notes' claims, measured", build,
    needs=(HORIZON, FLOW, ADDING, CELL_INFER, CELL_TRAIN, CELL_TAPE, SEQ_TIME, THREADS, LIMITS,
           LIMITS_THREADS, SYNC_THREADS, TAPE),
    intro="The notes (an LSTM/GRU explainer) make five claims. Each gets a verdict computed "
          "from this machine's results by the rule written in section_evidence.py, its key "
          "numbers, its plot and the command that reproduces it.")]
