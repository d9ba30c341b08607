"""The CPU training race: a training step (forward + backward) of the Numba
kernels against PyTorch autograd, side by side (``race.py --train`` runs this).

Per thread count, the grid of the training issue (cell x H x B x T, float32,
I = H): milliseconds of a step for ``numba``, ``numba-parallel`` (above one
thread) and ``torch`` (module built once, as a torch user has it; autograd
with the graph kept for the backward), the ratio best-Numba/torch, GFLOP/s
(3x the forward's DeepBench FLOPs) and the fraction of the same process's
sgemm rate, and the tape: bytes the numba forward keeps over what torch's
autograd saves (its saved tensors, measured; inputs and weights left out on
both sides). Then ``checkpoint="sqrt"`` at T=4096: tape fraction and step
time ratio against the full tape. ``--breakdown`` prints where a step's time
goes instead (inference forward, training forward, backward; per step).

Honesty rules as in race.py: one process, the same inputs, compile in a
warm-up call before any timing, thread pools set together
(``ln.set_num_threads``), calls interleaved and repeated
(``lstm_numba.measure.measure_interleaved``), the minimum reported.

Examples
--------
    python benchmarks/race_train.py              # the full grid, 1 and 2 threads
    python benchmarks/race_train.py --quick      # H=256, B in {1, 16}, T=128; sqrt: LSTM
    python benchmarks/race_train.py --cells lstm --hidden 256 --batch 16 --seq 128 --threads 1
    python benchmarks/race_train.py --breakdown --quick
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lstm_numba as ln  # noqa: E402
from lstm_numba.measure import make_problem, measure_interleaved, sgemm_gflops  # noqa: E402
from lstm_numba.training import train_runner  # noqa: E402

NUMBA = ("numba", "numba-parallel")
TARGET = {"lstm": 0.8, "gru": 0.5, "rnn": 0.5}       # max time ratio best-Numba / torch
EFFICIENCY_TARGET = 0.80                             # B >= 16 and H >= 256
TAPE_TARGET = 0.5                                    # LSTM H=256 B=16: numba / torch bytes
CKPT_TAPE_TARGET, CKPT_TIME_TARGET = 0.10, 1.4       # sqrt at T=4096 vs full tape


def _problem(cell, seq_len, batch, hidden):
    x, w, h0, c0 = make_problem(cell, seq_len, batch, hidden)
    go = np.random.default_rng(7).standard_normal((seq_len, batch, hidden)).astype(np.float32)
    return x, w, h0, c0, go


def _steps(names, cell, w, x, h0, c0, go, checkpoint=None):
    """``{label: step()}``; each called once here (compile, warm-up)."""
    fns = {}
    for label, (name, ck) in names.items():
        run = train_runner(name, cell, w, checkpoint=ck if checkpoint is None else checkpoint)
        fns[label] = (lambda run=run: run(x, h0, c0, go))
        fns[label]()
    return fns


def tape_bytes(backend, cell, x, w, h0, c0, checkpoint=None) -> int:
    """``fw.tape.nbytes`` of one training forward (torch: its saved tensors, measured)."""
    return ln.forward(cell, x, w, h0, c0, backend=backend, train=True,
                      checkpoint=checkpoint).tape.nbytes


def race_cell(cell, hidden, batch, seq_len, threads, budget_s=1.5, settle_s=0.0):
    """``({backend: Measurement}, {backend: tape bytes})`` for one grid cell."""
    x, w, h0, c0, go = _problem(cell, seq_len, batch, hidden)
    names = {n: (n, None) for n in (NUMBA if threads > 1 else NUMBA[:1])}
    names["torch"] = ("torch", None)
    fns = _steps(names, cell, w, x, h0, c0, go)
    m = measure_interleaved(fns, stat="min", warmup=1, budget_s=budget_s, settle_s=settle_s)
    tapes = {n: tape_bytes(n, cell, x, w, h0, c0) for n in ("numba", "torch")}
    return m, tapes


def checkpoint_cell(cell, hidden, batch, seq_len, budget_s=3.0):
    """numba, full tape vs ``checkpoint="sqrt"``: (times, tape bytes)."""
    x, w, h0, c0, go = _problem(cell, seq_len, batch, hidden)
    fns = _steps({"full": ("numba", None), "sqrt": ("numba", "sqrt")}, cell, w, x, h0, c0, go)
    m = measure_interleaved(fns, stat="min", warmup=1, budget_s=budget_s)
    tapes = {"full": tape_bytes("numba", cell, x, w, h0, c0),
             "sqrt": tape_bytes("numba", cell, x, w, h0, c0, "sqrt")}
    return m, tapes


def breakdown(cell, hidden, batch, seq_len, budget_s=1.5):
    """Microseconds per time step: inference forward, training forward, backward.

    For ``numba`` and ``torch``, interleaved, minimum of repeats; the backward
    is the whole step less the training forward (both measured).
    """
    from lstm_numba.backends import get

    x, w, h0, c0, go = _problem(cell, seq_len, batch, hidden)
    fns = {}
    for name in ("numba", "torch"):
        inf = get(name).runner(cell, w)
        run = train_runner(name, cell, w)
        fns[f"{name} inference"] = (lambda inf=inf: inf(x, h0, c0))
        fns[f"{name} train fwd"] = (lambda run=run: run.forward(x, h0, c0))
        fns[f"{name} step"] = (lambda run=run: run(x, h0, c0, go))
    for f in fns.values():
        f()
    m = measure_interleaved(fns, stat="min", warmup=1, budget_s=budget_s)
    us = {k: v.value / seq_len * 1e6 for k, v in m.items()}
    for name in ("numba", "torch"):
        us[f"{name} backward"] = us[f"{name} step"] - us[f"{name} train fwd"]
    return us


def _print_breakdown(args):
    ln.set_num_threads(args.threads[0])
    print(f"# where a training step's time goes, {args.threads[0]} thread(s), float32, "
          f"I = H; microseconds per time step (minimum of interleaved repeats); CPU: "
          f"{_cpu()}\n")
    print("| cell | H | B | T | backend | inference fwd | train fwd | backward | step | "
          "step / inference |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for cell in args.cells:
        for hid in args.hidden:
            for b in args.batch:
                for t in args.seq:
                    us = breakdown(cell, hid, b, t, args.budget)
                    for n in ("numba", "torch"):
                        print(f"| {cell} | {hid} | {b} | {t} | {n} | {us[n + ' inference']:.1f} | "
                              f"{us[n + ' train fwd']:.1f} | {us[n + ' backward']:.1f} | "
                              f"{us[n + ' step']:.1f} | "
                              f"{us[n + ' step'] / us[n + ' inference']:.2f} |", flush=True)
    _kernel_breakdown(args)


def _kernel_breakdown(args):
    """The numba backward by phase, from the kernels' own profile hook
    (``cpu_train.backward_train(profile=...)``, via benchmarks/train_breakdown.py)."""
    try:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from train_breakdown import breakdown as phases
    except ImportError as e:
        print(f"\n(no per-phase breakdown of the numba backward: {e})")
        return
    order = ("forward", "setup", "recompute", "recurrence", "dh product", "batched")
    print("\n# the numba training step by phase, microseconds per time step (median of 3; "
          "'dh product' is the part of 'recurrence' spent in dh = dG_t W_hh, timed alone; "
          "'batched' = dW_ih, dW_hh, dX, bias sums per block)\n")
    print("| cell | H | B | T | " + " | ".join(order) + " | elementwise (recurrence - dh) |")
    print("|---" * (5 + len(order)) + "|")
    for cell in args.cells:
        for hid in args.hidden:
            for b in args.batch:
                for t in args.seq:
                    ph = phases(cell, hid, b, t)
                    us = {k: ph.get(k, 0.0) / t * 1e6 for k in order}
                    print(f"| {cell} | {hid} | {b} | {t} | "
                          + " | ".join(f"{us[k]:.1f}" for k in order)
                          + f" | {us['recurrence'] - us['dh product']:.1f} |", flush=True)


def _cpu() -> str:
    describe = getattr(ln, "describe_cpu", None)
    return describe() if describe else "unknown"


def main(argv=None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from race import add_grid_arguments, parse_grid   # the forward race's grid and options

    ap = add_grid_arguments(argparse.ArgumentParser(description=__doc__.split("\n\n")[0]),
                            quick=([256], [1, 16], [128]),
                            quick_note="; sqrt comparison LSTM only")
    ap.add_argument("--checkpoint-seq", type=int, default=4096,
                    help="T of the checkpoint='sqrt' comparison (0: skip it)")
    ap.add_argument("--breakdown", action="store_true",
                    help="instead of the race: where a step's time goes (first thread count)")
    args = parse_grid(ap, argv)
    from lstm_numba import training
    from lstm_numba.backends import BackendUnavailable, get

    for n in (*NUMBA, "torch"):
        try:
            training._train_module(get(n))
        except BackendUnavailable as e:
            print(f"cannot race: {e}", file=sys.stderr)
            return 2
    if args.breakdown:
        _print_breakdown(args)
        return 0
    import numba
    import torch

    print(f"# lstm-numba training race: numba {numba.__version__}, torch {torch.__version__}, "
          f"numpy {np.__version__}; CPU: {_cpu()}; float32 training step (forward keeping "
          "the tape + backward), I = H; times are the minimum of interleaved repeats, "
          "compile excluded; GFLOP/s = 3x the forward's DeepBench FLOPs / time; tape = "
          "numba tape bytes / torch saved-tensor bytes")
    for nt in args.threads:
        ln.set_num_threads(nt)
        gemm = sgemm_gflops()
        print(f"\n## {nt} thread(s): same-process sgemm 1024^3 = {gemm:.0f} GFLOP/s\n")
        par = "numba-par ms | " if nt > 1 else ""
        print(f"| cell | H | B | T | numba ms | {par}torch ms | ratio | numba GF/s | "
              "torch GF/s | numba/sgemm | tape vs torch | target | met |")
        print("|---" * (14 if nt > 1 else 13) + "|")
        for cell in args.cells:
            for hid in args.hidden:
                for b in args.batch:
                    for t in args.seq:
                        m, tapes = race_cell(cell, hid, b, t, nt, args.budget,
                                             args.settle if nt > 1 else 0.0)
                        fl = 3 * ln.flops(cell, t, b, hid, hid)
                        nb = min(m[n].value for n in NUMBA if n in m)
                        tt = m["torch"].value
                        ratio, eff = nb / tt, fl / nb / 1e9 / gemm
                        tape = tapes["numba"] / tapes["torch"]
                        ok = ratio <= TARGET[cell]
                        note = f"<= {TARGET[cell]:.2f}"
                        if b >= 16 and hid >= 256:
                            ok = ok and eff >= EFFICIENCY_TARGET
                            note += f", >= {EFFICIENCY_TARGET:.0%} sgemm"
                        if cell == "lstm" and hid == 256 and b == 16:
                            ok = ok and tape <= TAPE_TARGET
                            note += f", tape <= {TAPE_TARGET}"
                        cols = f"{m['numba'].value * 1e3:.2f} | "
                        if nt > 1:
                            cols += f"{m['numba-parallel'].value * 1e3:.2f} | "
                        print(f"| {cell} | {hid} | {b} | {t} | {cols}{tt * 1e3:.2f} | "
                              f"{ratio:.2f} | {fl / nb / 1e9:.0f} | {fl / tt / 1e9:.0f} | "
                              f"{eff:.0%} | {tape:.2f} | {note} | {'yes' if ok else 'NO'} |",
                              flush=True)
    if args.checkpoint_seq:
        ln.set_num_threads(args.threads[0])
        t = args.checkpoint_seq
        print(f"\n## checkpoint='sqrt' at T={t} (k = {int(np.ceil(np.sqrt(t)))}), numba, "
              f"{args.threads[0]} thread(s), H=256, B=16: against the full tape\n")
        print("| cell | full ms | sqrt ms | time ratio | full tape MB | sqrt tape MB | "
              "tape fraction | target | met |")
        print("|---|---|---|---|---|---|---|---|---|")
        for cell in (["lstm"] if args.quick else args.cells):
            m, tapes = checkpoint_cell(cell, 256, 16, t)
            tr = m["sqrt"].value / m["full"].value
            frac = tapes["sqrt"] / tapes["full"]
            ok = tr <= CKPT_TIME_TARGET and frac <= CKPT_TAPE_TARGET
            print(f"| {cell} | {m['full'].value * 1e3:.1f} | {m['sqrt'].value * 1e3:.1f} | "
                  f"{tr:.2f} | {tapes['full'] / 1e6:.1f} | {tapes['sqrt'] / 1e6:.2f} | "
                  f"{frac:.1%} | time <= {CKPT_TIME_TARGET}x, tape <= "
                  f"{CKPT_TAPE_TARGET:.0%} | {'yes' if ok else 'NO'} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
