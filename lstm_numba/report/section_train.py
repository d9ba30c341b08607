"""The report's training section: time and memory of a training step (forward
keeping the tape + backward) vs T, beside the inference forward, and the
bytes each backend keeps for the backward (benchmarks/bench_train.py)."""
from __future__ import annotations

from . import style
from .bench_names import TAPE, TRAIN_BASE, TRAIN_EFF, TRAIN_GFLOPS, TRAIN_PEAK, TRAIN_TIME
# the inference forward that training is set beside, under this section's names
from .bench_names import PEAK as INF_PEAK, PEAK_BASE as INF_BASE, SEQ_TIME as INF_TIME
from .page import Issue, KeyNumber, SectionResult, Table
from .sections import Section

_KEY = ("cell", "backend", "seq_len", "batch", "hidden", "threads")


def _same_sizes(train, inf):
    """Inference rows at the training rows' B, H and thread count (else none)."""
    for col in ("batch", "hidden", "threads"):
        if col in train.columns and col in inf.columns and len(train):
            inf = inf[inf[col].isin(set(train[col]))]
    return inf


def _time_plot(ctx, res):
    import matplotlib.pyplot as plt

    tr = ctx.rows(TRAIN_TIME)
    if tr.empty:
        res.issues.append(Issue("missing", "training time vs T: no bench_train.TrainSeqLen "
                                           "results"))
        return
    inf = _same_sizes(tr, ctx.rows(INF_TIME))
    cells = [c for c in ("lstm", "gru", "rnn") if c in set(tr["cell"])]
    fig, axes = plt.subplots(1, len(cells), figsize=(max(8, 4.5 * len(cells)), 4), squeeze=False)
    rows = []
    for ax, cell in zip(axes[0], cells):
        t = tr[tr["cell"] == cell].assign(us=lambda d: d["value"] / d["seq_len"] * 1e6)
        i = inf[inf["cell"] == cell].assign(us=lambda d: d["value"] / d["seq_len"] * 1e6)
        for b in style.order(t["backend"]):
            style.line(ax, t[t["backend"] == b], "seq_len", "us", b, " train")
            ib = i[i["backend"] == b]
            if not ib.empty:
                style.line(ax, ib, "seq_len", "us", b, " inference", style="--")
                for _, r in t[t["backend"] == b].iterrows():
                    m = ib[ib["seq_len"] == r["seq_len"]]
                    if len(m):
                        rows.append((cell, b, style.num(r["seq_len"]), style.fmt_time(r["value"]),
                                     style.fmt_time(m["value"].iloc[0]),
                                     f"{r['value'] / m['value'].iloc[0]:.1f}×"))
        ax.set(xscale="log", yscale="log", xlabel="sequence length T",
               ylabel="µs per time step", title=cell.upper())
        style.legend(ax)
    style.plain_log_labels(fig)
    fig.tight_layout()
    res.figures.append(ctx.save(
        fig, "train_time", "Training step vs inference: time per step",
        "Solid: a training step (forward keeping the tape, then backward through time); "
        "dashed: the inference forward at the same sizes (bench_seq_len). "
        + style.shape_note(tr, ("batch", "hidden", "threads"))))
    if rows:
        res.tables.append(Table("Training step / inference forward",
                                ("cell", "backend", "T", "train step", "inference", "ratio"),
                                tuple(rows)))
        lstm = [r for r in rows if r[0] == "lstm" and r[1] == "numba"]
        if lstm:
            res.key_numbers.append(KeyNumber(f"LSTM training step / inference (numba, "
                                             f"T={lstm[-1][2]})", lstm[-1][5], TRAIN_TIME))


def _added(ctx, peak, base, keys):
    p, b = ctx.rows(peak), ctx.rows(base)
    if p.empty or b.empty:
        return p.iloc[0:0]
    keys = [k for k in keys if k in p.columns and k in b.columns]
    m = p.merge(b[keys + ["value"]], on=keys, suffixes=("", "_base"))
    return m.assign(mb=(m["value"] - m["value_base"]) / 1e6)


def _memory_plot(ctx, res):
    import matplotlib.pyplot as plt

    keys = ["cell", "backend", "checkpoint", "seq_len", "batch", "hidden", "threads"]
    tr = _added(ctx, TRAIN_PEAK, TRAIN_BASE, keys)
    if tr.empty:
        res.issues.append(Issue("missing", "training memory vs T: no bench_train.TrainMemory "
                                           "results"))
        return
    inf = _same_sizes(tr, _added(ctx, INF_PEAK, INF_BASE, keys))
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for b in style.order(tr["backend"]):
        for ck, ls in (("none", "-"), ("sqrt", ":")):
            g = tr[(tr["backend"] == b) & (tr["checkpoint"] == ck)]
            if not g.empty:
                style.line(ax, g, "seq_len", "mb", b,
                           " train" + (" checkpoint=sqrt" if ck == "sqrt" else ""), style=ls)
        g = inf[inf["backend"] == b]
        if not g.empty:
            style.line(ax, g, "seq_len", "mb", b, " inference", style="--")
    ax.set(xscale="log", yscale="symlog", xlabel="sequence length T",
           ylabel="peak RSS added (MB)", title="Memory of a training step vs T")
    style.legend(ax)
    style.plain_log_labels(fig)
    fig.tight_layout()
    res.figures.append(ctx.save(
        fig, "train_memory", "Training step vs inference: memory",
        "Peak resident memory a call adds over its baseline process (asv peakmem, baseline "
        "subtracted). Solid: training step; dotted: with checkpoint='sqrt' (states every "
        "ceil(sqrt T) steps, segments recomputed in the backward); dashed: inference "
        "(bench_memory). " + style.shape_note(tr, ("cell", "batch", "hidden", "threads"))))
    if (tr["mb"] < 0).any():
        res.issues.append(Issue("suspect", "training memory: a step added less than its "
                                           "baseline (noise in peak RSS)"))


def _tape_table(ctx, res):
    d = ctx.rows(TAPE)
    if d.empty:
        res.issues.append(Issue("missing", "tape bytes: no bench_train.TrainTape results"))
        return
    rows = []
    for cell in ("lstm", "gru", "rnn"):
        c = d[d["cell"] == cell]
        torch = c[(c["backend"] == "torch") & (c["checkpoint"] == "none")]["value"]
        for b in style.order(c["backend"]):
            for ck in ("none", "sqrt"):
                v = c[(c["backend"] == b) & (c["checkpoint"] == ck)]["value"]
                if v.empty:
                    continue
                h = c["hidden"].iloc[0] * c["batch"].iloc[0]
                vs = f"{v.iloc[0] / torch.iloc[0]:.2f}" if len(torch) else "–"
                rows.append((cell, b, ck, f"{v.iloc[0] / 1024:.1f} KiB",
                             f"{v.iloc[0] / h:.1f}", vs))
                if cell == "lstm" and b == "numba" and ck == "none" and len(torch):
                    res.key_numbers.append(KeyNumber("LSTM tape bytes, numba / torch", vs, TAPE))
    res.tables.append(Table(
        "Bytes kept for the backward per time step", ("cell", "backend", "checkpoint",
                                                      "per step", "bytes per B·H", "vs torch"),
        tuple(rows), note=style.shape_note(d, ("seq_len", "batch", "hidden"))
        + " torch: its saved tensors, measured with saved_tensors_hooks (inputs and "
          "weights left out, as for the others)."))


def _rates_table(ctx, res):
    g, e = ctx.rows(TRAIN_GFLOPS), ctx.rows(TRAIN_EFF)
    if g.empty:
        return
    rows = []
    for _, r in g.sort_values(["cell", "backend"]).iterrows():
        m = e[(e["cell"] == r["cell"]) & (e["backend"] == r["backend"])]
        rows.append((r["cell"], r["backend"], f"{r['value']:.0f}",
                     f"{m['value'].iloc[0]:.0%}" if len(m) else "–"))
    res.tables.append(Table("Training-step GFLOP/s (3× the forward's FLOPs)",
                            ("cell", "backend", "GFLOP/s", "of sgemm"), tuple(rows),
                            note=style.shape_note(g, ("seq_len", "batch", "hidden", "threads"))))


def build(ctx) -> SectionResult:
    res = SectionResult()
    for part in (_time_plot, _memory_plot, _tape_table, _rates_table):
        part(ctx, res)
    return res


SECTIONS = [Section(
    "train", "Training: forward + backward", build,
    needs=(TRAIN_TIME, INF_TIME, TRAIN_PEAK, TRAIN_BASE, TAPE, TRAIN_GFLOPS, TRAIN_EFF),
    intro="What a training step costs (bench_train): backpropagation through time "
          "walks the sequence again in reverse, with two products with w_hh per step, and "
          "keeps a tape of every step for it unless checkpointed.")]
