"""The CPU speed race of record: Numba kernels against PyTorch, side by side.

Prints, per thread count, the grid of issue 4 (cell x H x B x T, float32
inference) as a table: milliseconds of ``numba``, ``numba-parallel`` and
``torch``, the time ratio best-Numba/torch, GFLOP/s (DeepBench's FLOP count,
``ln.flops``) and the fraction of the same process's sgemm rate (NumPy
1024^3 matmul, measured at the same thread count just before the grid).

Honesty rules kept here: every figure comes from the harness
(:mod:`lstm_numba.measure`): one seeded problem (``make_problem``), one
timing function (``measure_interleaved``), one sgemm yardstick. Every
backend runs in this one process on the same inputs; compile happens in
two warm-up rounds before any timing; thread pools (BLAS, Numba, PyTorch) are set
together with ``ln.set_num_threads``; calls of the three backends are
interleaved, repeated, and the minimum is reported (the machine is shared
and noisy: the minimum is the least disturbed run); the ``calls`` column
says over how many interleaved calls.

Examples
--------
    python benchmarks/race.py                  # the full grid, 1 and 2 threads
    python benchmarks/race.py --quick          # H=256, B in {1, 64}, T=128
    python benchmarks/race.py --cells lstm --hidden 512 --batch 1 --seq 128 --threads 2
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lstm_numba as ln  # noqa: E402
from lstm_numba.backends import REGISTRY, get  # noqa: E402
from lstm_numba.measure import make_problem, measure, measure_interleaved, sgemm_gflops  # noqa: E402,E501

#: The project's CPU backends and the peer they race (registry order).
NUMBA = tuple(n for n, b in REGISTRY.items() if b.device == "cpu" and b.kind == "project")
PEERS = tuple(n for n, b in REGISTRY.items() if b.device == "cpu" and b.kind == "peer")
CONTENDERS = (*NUMBA, *PEERS)
TARGET = {"lstm": 1.0, "gru": 0.67, "rnn": 0.67}   # issue 4: max time ratio
EFFICIENCY_TARGET = 0.90                             # B >= 16 and H >= 256


def race_cell(cell, hidden, batch, seq_len, budget_s=1.5, min_rep=4, max_rep=31, settle_s=0.0,
              forward=None):
    """Interleaved :class:`~lstm_numba.measure.Measurement` (min) per backend, one grid cell.

    Two warm-up rounds (JIT compile, torch's first call; the second sizes the
    number of rounds), then ``min_rep`` to ``max_rep`` rounds within
    ``budget_s`` (4 to 31: the samples the race had before the harness,
    whose first timed call doubled as the estimate of the round).

    ``settle_s``: pause before each timed call. Numba's and PyTorch's OpenMP
    pools each spin-wait a few milliseconds after a parallel region; without
    a pause, the pool of the backend that ran last steals cores from the next
    one (both sides lose, whichever runs second loses most).

    ``forward``: a backend name; also time the public ``ln.forward`` with it
    (its per-call set-up included), as the extra contender ``"forward"``.
    """
    x, w, h0, c0 = make_problem(cell, seq_len, batch, hidden)
    runners = {n: get(n).runner(cell, w) for n in CONTENDERS}
    fns = {n: (lambda run=run: run(x, h0, c0)) for n, run in runners.items()}
    if forward:
        fns["forward"] = lambda: ln.forward(cell, x, w, h0, c0, backend=forward)
    return measure_interleaved(fns, stat="min", warmup=2, min_calls=min_rep, max_calls=max_rep,
                               budget_s=budget_s, settle_s=settle_s)


def breakdown(cell, hidden, batch, seq_len, repeat=5):
    """Microseconds per step of the serial ``numba`` kernel, split in parts.

    Times the whole forward pass (weights packed once), then the same input
    projections and recurrent products alone (the same compiled micro-kernel,
    looped in compiled code); the gate pass and the rest are the difference.
    (From 8 rows on, the LSTM and RNN kernels compute both products in one
    pass per step; the parts are then those products done apart, so "gate
    pass + rest" slightly undercounts.) Returns a dict of per-step
    microseconds plus the recurrent product's GFLOP/s and the rate at which
    it streams w_hh (meaningful at batch 1, where w_hh is read once per step).
    """
    from numba import njit

    from lstm_numba import cpu
    from lstm_numba._gemm import aligned_empty, compile_gemm, gemm_rows

    @njit
    def rec_loop(h, whh, zb, hp, t_len):
        for t in range(t_len):
            gemm_rows(h, 0, h.shape[0], whh, zb, hp, 0, 0, whh.shape[0], t % 2 == 1)

    @njit
    def in_loop(x2, batch, wih, bx, xp, t_len, tc):
        for t0 in range(0, t_len, tc):
            t1 = min(t_len, t0 + tc)
            gemm_rows(x2, t0 * batch, (t1 - t0) * batch, wih, bx, xp, 0, 0, wih.shape[0], False)

    x, w, h0, c0 = make_problem(cell, seq_len, batch, hidden)
    pk = cpu.pack(cell, w)
    run = get("numba").runner(cell, w)
    x2 = x.reshape(seq_len * batch, hidden)
    tc = min(seq_len, max(1, -(-cpu.CHUNK_ROWS // batch)))
    xp = aligned_empty((tc * batch, pk.zb.shape[0]), x.dtype)    # as the kernels' own scratch
    hp = aligned_empty((batch, pk.zb.shape[0]), x.dtype)
    compile_gemm(x2, 0, 1, pk.wih, pk.bx, xp, 0, 0, 1, False)
    compile_gemm(h0, 0, 1, pk.whh, pk.zb, hp, 0, 0, 1, False)
    parts = {
        "total": lambda: run(x, h0, c0),
        "input projection": lambda: in_loop(x2, batch, pk.wih, pk.bx, xp, seq_len, tc),
        "recurrent product": lambda: rec_loop(h0, pk.whh, pk.zb, hp, seq_len),
    }
    for f in parts.values():
        f()                       # compile / warm up, untimed
    best = {k: measure(f, stat="min", warmup=0, min_calls=repeat, max_calls=repeat,
                       budget_s=0.0).value for k, f in parts.items()}
    us = {k: v / seq_len * 1e6 for k, v in best.items()}
    us["gate pass + rest"] = us["total"] - us["input projection"] - us["recurrent product"]
    g = ln.cells.spec(cell).n_gates
    rec_flops = 2 * batch * g * hidden * hidden
    t_rec = us["recurrent product"] * 1e-6
    return us, rec_flops / t_rec / 1e9, w.w_hh.nbytes / t_rec / 1e9


def _machine() -> str:
    """Versions and the CPU, for every table's header (a record names its machine)."""
    import numba
    import torch

    try:
        from lstm_numba.machine import describe_cpu

        cpu = describe_cpu()
    except Exception as e:      # naming the CPU must never cost the race
        cpu = f"CPU unknown ({e})"
    return (f"numba {numba.__version__}, torch {torch.__version__}, numpy {np.__version__}; "
            f"cpu: {cpu}")


def grid(args):
    """(cell, H, B, T) in table order."""
    for cell in args.cells:
        for hid in args.hidden:
            for b in args.batch:
                for t in args.seq:
                    yield cell, hid, b, t


def run_breakdown(args) -> int:
    """``--breakdown``: where the serial numba kernel's time goes, per step."""
    ln.set_num_threads(1)
    print(f"# numba kernel, 1 thread, microseconds per step (min of 5 calls); sgemm "
          f"1024^3 = {sgemm_gflops():.0f} GFLOP/s; {_machine()}\n")
    print("| cell | H | B | T | total | input projection | recurrent product | "
          "gate pass + rest | recurrent GF/s | w_hh GB/s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for cell, hid, b, t in grid(args):
        us, gf, gbs = breakdown(cell, hid, b, t)
        print(f"| {cell} | {hid} | {b} | {t} | {us['total']:.1f} | "
              f"{us['input projection']:.1f} | {us['recurrent product']:.1f} | "
              f"{us['gate pass + rest']:.1f} | {gf:.0f} | {gbs:.0f} |", flush=True)
    return 0


def race_row(cell, hid, b, t, gemm, args, nt) -> str:
    """One table row: time each contender on (cell, H, B, T), compare with the targets."""
    fwd = getattr(args, "forward", False)
    res = race_cell(cell, hid, b, t, budget_s=args.budget,
                    settle_s=args.settle if nt > 1 else 0.0,
                    forward=("numba" if nt == 1 else "numba-parallel") if fwd else None)
    best = {n: m.value for n, m in res.items()}
    fl = ln.flops(cell, t, b, hid, hid)
    nb = min(best[n] for n in NUMBA)
    peer = best[PEERS[0]]
    ratio = nb / peer
    eff = fl / nb / 1e9 / gemm
    ok = ratio <= TARGET[cell]
    note = f"<= {TARGET[cell]:.2f}"
    if b >= 16 and hid >= 256:
        ok = ok and eff >= EFFICIENCY_TARGET
        note += f", >= {EFFICIENCY_TARGET:.0%} sgemm"
    ms = " | ".join(f"{best[n] * 1e3:.2f}" for n in CONTENDERS)
    if fwd:             # ln.forward's time and ratio; the target holds for it too
        ms += f" | {best['forward'] * 1e3:.2f} | {best['forward'] / peer:.2f}"
        ok = ok and best["forward"] / peer <= TARGET[cell]
    return (f"| {cell} | {hid} | {b} | {t} | {ms} | {ratio:.2f} | {fl / nb / 1e9:.0f} | "
            f"{fl / peer / 1e9:.0f} | {eff:.0%} | {note} | {'yes' if ok else 'NO'} | "
            f"{min(m.n for m in res.values())} |")


def run_race(args) -> int:
    """The race of record: a table per thread count."""
    print(f"# lstm-numba race: {_machine()}; float32 inference, I = H; times are the "
          "min of N interleaved calls per backend (N: the calls column), compile excluded")
    for nt in args.threads:
        ln.set_num_threads(nt)
        gemm = sgemm_gflops()
        print(f"\n## {nt} thread(s): same-process sgemm 1024^3 = {gemm:.0f} GFLOP/s\n")
        fwd = " | ln.forward ms | forward ratio" if getattr(args, "forward", False) else ""
        print("| cell | H | B | T | " + " | ".join(f"{n} ms" for n in CONTENDERS) + fwd
              + f" | ratio | numba GF/s | {PEERS[0]} GF/s | numba/sgemm | target | met | calls |")
        print("|---" * (11 + len(CONTENDERS) + (2 if fwd else 0)) + "|")
        for cell, hid, b, t in grid(args):
            print(race_row(cell, hid, b, t, gemm, args, nt), flush=True)
    return 0


def add_grid_arguments(ap: argparse.ArgumentParser, quick=None,
                       quick_note: str = "") -> argparse.ArgumentParser:
    """The grid and timing options every race mode shares (cells, H, B, T, threads,
    budget, settle); other race scripts add theirs on top.

    ``quick``: ``(hidden, batch, seq)``, the small subset a ``--quick`` option
    selects (the option is added only when given; :func:`parse_grid` applies
    it); ``quick_note`` ends that option's help (what else it trims).
    """
    ap.add_argument("--cells", nargs="+", default=list(ln.CELLS), choices=ln.CELLS)
    ap.add_argument("--hidden", nargs="+", type=int, default=[128, 256, 512])
    ap.add_argument("--batch", nargs="+", type=int, default=[1, 16, 64])
    ap.add_argument("--seq", nargs="+", type=int, default=[128, 1024])
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--budget", type=float, default=1.5,
                    help="seconds of repeats per grid cell (default 1.5)")
    ap.add_argument("--settle", type=float, default=0.03,
                    help="seconds of pause before each timed call at > 1 thread, so "
                         "the other backend's spinning OpenMP pool goes idle (default 0.03)")
    if quick is not None:
        subset = ", ".join(_values(name, v) for name, v in zip("HBT", quick))
        ap.add_argument("--quick", action="store_true",
                        help=f"a small subset: {subset}{quick_note}")
        ap.set_defaults(quick_grid=tuple(list(v) for v in quick))
    return ap


def _values(name: str, values) -> str:
    """``H=256`` for one value, ``B in {1, 64}`` for several (the --quick help)."""
    values = list(values)
    if len(values) == 1:
        return f"{name}={values[0]}"
    return f"{name} in {{{', '.join(map(str, values))}}}"


def parse_grid(ap: argparse.ArgumentParser, argv) -> argparse.Namespace:
    """``ap.parse_args(argv)``, with ``--quick``'s subset put in hidden, batch and seq."""
    args = ap.parse_args(argv)
    if getattr(args, "quick", False):
        args.hidden, args.batch, args.seq = (list(v) for v in args.quick_grid)
    return args


def parser() -> argparse.ArgumentParser:
    ap = add_grid_arguments(argparse.ArgumentParser(description=__doc__.split("\n\n")[0]),
                            quick=([256], [1, 64], [128]))
    ap.add_argument("--breakdown", action="store_true",
                    help="instead of the race: where the numba kernel's time goes per step")
    ap.add_argument("--forward", action="store_true",
                    help="also time the public ln.forward (numba at 1 thread, numba-parallel "
                         "above), set-up per call included; the target then holds for it too")
    ap.add_argument("--train", action="store_true",
                    help="the training race instead (benchmarks/race_train.py: forward + "
                         "backward vs torch autograd; the other options go to it)")
    return ap


def mode(args):
    """The function that runs what ``args`` asks for (one per mode)."""
    return run_breakdown if args.breakdown else run_race


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--train" in argv:           # the training race has options of its own
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from race_train import main as train_main
        return train_main([a for a in argv if a != "--train"])
    args = parse_grid(parser(), argv)
    for n in CONTENDERS:
        reason = get(n).unavailable()
        if reason:
            print(f"cannot race: {n}: {reason}", file=sys.stderr)
            return 2
    return mode(args)(args)


if __name__ == "__main__":
    raise SystemExit(main())
