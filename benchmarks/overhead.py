"""What the public ``ln.forward`` costs on top of the same work done through a ``Layer``.

``ln.forward(cell, x, w, backend=...)`` validates its arguments, finds the
backend, finds the weights' packed panels (for the Numba backends: a
fingerprint of every byte of the weights, then a cache look-up; see
``lstm_numba/_packing.py``) and allocates its outputs on every call. An
``ln.Layer`` packs the weights once; each call only validates ``x``, ``h0``
and ``c0`` and runs the same kernel. Both are timed here side by side in one
process, one call of each in turn (``lstm_numba.measure.measure_interleaved``,
two warm-up rounds first, so JIT compile and cache loads are never timed),
on the harness's seeded problem (``make_problem``). The table gives

* ``forward`` and ``Layer``: milliseconds per call (the statistic is named
  in the header: the minimum of interleaved calls by default, the least
  disturbed call on a shared machine; ``--stat median`` for the median);
* ``set-up``: forward - Layer in microseconds, and as a percentage of the
  forward call (issue 9's target: <= 5 % at B=1, H=256, T=128);
* ``same``: whether both returned bit-identical outputs (they run the same
  kernel on the same packed weights; anything else is a bug).

``--repeat K`` makes each timed sample K calls in a row (the table gives
time per call): with K = 1 each call follows one of the other kind, whose
kernel left *its own* packed weights in the caches, so both sides start
cold; with K >= 2 most calls follow one of their own kind, as in a user's
loop, and the set-up then includes what reading the weights for the
fingerprint evicts from L2 (the packed weights the next kernel needs).

Examples
--------
    python benchmarks/overhead.py                        # lstm, gru, rnn; numba:1, numba-parallel:2
    python benchmarks/overhead.py --cells lstm --runs numba:1 --budget 4
    python benchmarks/overhead.py --hidden 512 --batch 16 --seq 1024 --dtype float64
    python benchmarks/overhead.py --repeat 4               # calls in a row, as in a loop
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lstm_numba as ln  # noqa: E402
from lstm_numba.machine import describe_cpu  # noqa: E402
from lstm_numba.measure import make_problem, measure_interleaved  # noqa: E402

#: Issue 9's target for ln.forward's per-call set-up, in % of the call.
TARGET_PCT = 5.0


def parse_run(text: str) -> tuple[str, int]:
    """``"numba-parallel:2"`` -> ``("numba-parallel", 2)`` (threads default 1)."""
    name, _, threads = text.partition(":")
    if name not in ln.BACKEND_NAMES:
        raise argparse.ArgumentTypeError(f"unknown backend {name!r}; valid: {ln.BACKEND_NAMES}")
    try:
        n = int(threads) if threads else 1
    except ValueError:
        raise argparse.ArgumentTypeError(f"threads in {text!r} must be an int") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"threads in {text!r} must be >= 1")
    return name, n


def overhead(cell, backend, threads, seq_len, batch, hidden, input_size, dtype,
             budget_s, max_calls, stat, settle_s, repeat=1):
    """One row: interleaved Measurements of ``ln.forward`` and the ``Layer``.

    Returns ``(forward, layer, same)`` where ``same`` says whether both
    returned bit-identical outputs, h and c.
    """
    ln.set_num_threads(threads)
    x, w, h0, c0 = make_problem(cell, seq_len, batch, hidden, input_size, dtype=dtype)
    layer = ln.Layer(cell, w, backend=backend)
    a = ln.forward(cell, x, w, h0, c0, backend=backend)
    b = layer(x, h0, c0)
    same = all(np.array_equal(p, q) for p, q in zip(a, b)
               if not (p is None and q is None))
    calls = range(repeat)

    def fwd():
        for _ in calls:
            ln.forward(cell, x, w, h0, c0, backend=backend)

    def lay():
        for _ in calls:
            layer(x, h0, c0)

    r = measure_interleaved({"forward": fwd, "layer": lay}, stat=stat, warmup=2,
                            min_calls=5, max_calls=max_calls, budget_s=budget_s,
                            settle_s=settle_s)
    return r["forward"], r["layer"], same


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--cells", nargs="+", default=list(ln.CELLS), choices=ln.CELLS)
    ap.add_argument("--runs", nargs="+", type=parse_run,
                    default=[("numba", 1), ("numba-parallel", 2)],
                    metavar="BACKEND[:THREADS]",
                    help="backends with their thread count (default: numba:1 "
                         "numba-parallel:2; threads are set with ln.set_num_threads)")
    ap.add_argument("--seq", type=int, default=128, help="T (default 128)")
    ap.add_argument("--batch", type=int, default=1, help="B (default 1)")
    ap.add_argument("--hidden", type=int, default=256, help="H (default 256)")
    ap.add_argument("--input", type=int, default=None, help="I (default H)")
    ap.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    ap.add_argument("--budget", type=float, default=3.0,
                    help="seconds of timed calls per row (default 3)")
    ap.add_argument("--max-calls", type=int, default=400,
                    help="most interleaved rounds per row (default 400)")
    ap.add_argument("--stat", default="min", choices=("min", "median"),
                    help="statistic of the table (default min)")
    ap.add_argument("--repeat", type=int, default=1, metavar="K",
                    help="calls in a row per timed sample (default 1; see above)")
    ap.add_argument("--settle", type=float, default=0.0,
                    help="seconds of pause before each timed call (OpenMP pools "
                         "spin after a parallel region; default 0)")
    return ap


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    dtype = np.dtype(args.dtype)
    n_in = args.hidden if args.input is None else args.input
    rows = []
    for backend, threads in args.runs:
        for cell in args.cells:
            f, lay, same = overhead(cell, backend, threads, args.seq, args.batch,
                                    args.hidden, n_in, dtype, args.budget,
                                    args.max_calls, args.stat, args.settle, args.repeat)
            rows.append((cell, backend, threads, f, lay, same))
    print(f"CPU: {describe_cpu()}")
    print(f"T={args.seq}, B={args.batch}, H={args.hidden}, I={n_in}, {dtype.name}; "
          f"{rows[0][3].describe()} per row, {args.repeat} call(s) in a row per sample "
          f"(ms per call); set-up = forward - Layer\n")
    print("| cell | backend | threads | forward ms | Layer ms | set-up us | set-up % "
          "| same |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for cell, backend, threads, f, lay, same in rows:
        fv, lv = f.value / args.repeat, lay.value / args.repeat
        d = fv - lv
        pct = 100 * d / fv
        mark = "**" if pct > TARGET_PCT else ""
        print(f"| {cell} | {backend} | {threads} | {fv * 1e3:.3f} | "
              f"{lv * 1e3:.3f} | {d * 1e6:.1f} | {mark}{pct:.1f}{mark} | "
              f"{'yes' if same else '**no**'} |")
    print(f"\n**Bold**: over the {TARGET_PCT:g} % target (or results differ).")
    return 0 if all(r[5] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
