"""Command line: ``python -m lstm_numba {compare,backends,report,costmodel,gradient-flow,adding}``."""
from __future__ import annotations

import argparse
import sys

import numpy as np


def _compare(argv) -> int:
    from .backends import BACKEND_NAMES
    from .cells import CELLS
    from .compare import format_table, run_compare

    ap = argparse.ArgumentParser(prog="python -m lstm_numba compare",
                                 description="Run every available backend on one problem "
                                             "and print time (the median of repeated calls "
                                             "after the first), throughput, GFLOP/s and error.")
    ap.add_argument("--cell", choices=CELLS + ("all",), default="lstm")
    ap.add_argument("--hidden", type=int, default=256, help="H (default 256)")
    ap.add_argument("--batch", type=int, default=16, help="B (default 16)")
    ap.add_argument("--seq-len", type=int, default=128, help="T (default 128)")
    ap.add_argument("--input", type=int, default=None, help="I (default: H)")
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    ap.add_argument("--threads", type=int, default=None,
                    help="threads for BLAS, Numba and torch alike (default: all cores)")
    ap.add_argument("--backends", default=None,
                    help=f"comma-separated subset of {', '.join(BACKEND_NAMES)}")
    args = ap.parse_args(argv)
    names = args.backends.split(",") if args.backends else None
    cells = CELLS if args.cell == "all" else (args.cell,)
    for i, cell in enumerate(cells):
        try:
            rows, skipped, used = run_compare(cell, args.hidden, args.batch, args.seq_len,
                                        args.input, np.dtype(args.dtype), args.threads, names)
        except (ValueError, TypeError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        if i:
            print()
        print(format_table(rows, skipped, used, cell, args.hidden, args.batch, args.seq_len,
                           args.input or args.hidden, args.dtype), flush=True)
    return 0


def _list_backends(argv) -> int:
    from .backends import REGISTRY

    argparse.ArgumentParser(prog="python -m lstm_numba backends",
                            description="List every backend and whether it runs here."
                            ).parse_args(argv)
    for name, b in REGISTRY.items():
        why = b.unavailable()
        state = "available" if why is None else f"unavailable: {why}"
        print(f"{name:16} {b.device:4} {b.kind:9} {state}\n{'':31}{b.summary}")
    return 0


def _report(argv) -> int:
    from .report import main

    return main(argv)


def _costmodel(argv) -> int:
    from .costmodel import main

    return main(argv)


def _gradient_flow(argv) -> int:
    from .experiments.gradient_flow import main

    return main(argv)


def _adding(argv) -> int:
    from .experiments.adding import main

    return main(argv)


COMMANDS = {"compare": _compare, "backends": _list_backends, "report": _report,
            "costmodel": _costmodel, "gradient-flow": _gradient_flow, "adding": _adding}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print("usage: python -m lstm_numba {compare,backends,report,costmodel,gradient-flow,adding} [options]\n"
              "  compare   time every available backend on one problem (a table)\n"
              "  backends  list the backends and why any is unavailable here\n"
              "  report    asv results -> plots and reports/index.html\n"
              "  costmodel measured peak/bandwidth/sync and the lower bound per cell\n"
              "  gradient-flow  ||dh_T/dh_t|| vs distance per cell, the gradient horizon\n"
              "  adding    train a cell on the adding problem, test MSE vs steps",
              file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
