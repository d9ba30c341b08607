#!/usr/bin/env python
"""Cold compile time per entry point in two source trees, side by side.

Each figure is one fresh process with an empty ``NUMBA_CACHE_DIR`` running
one tiny ``ln.forward`` (``benchmarks.bench_compile._run_once``: first call
minus a warm call, in CPU seconds of the process). The two trees alternate
within each round, so a slow moment of a shared machine lands on both;
the table gives the minimum over the rounds and every run::

    git worktree add /tmp/before <commit>
    python benchmarks/compile_ab.py /tmp/before . --rounds 3 \\
        --entries lstm/numba/float32,gru/numba/float32

The trees' own ``benchmarks/bench_compile.py`` does the measuring, so both
must have it (any commit since issue 9 does).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

_CODE = ("import sys, json; sys.path.insert(0, '.'); "
         "from benchmarks.bench_compile import _run_once; "
         "print(json.dumps(_run_once(*sys.argv[1:5])))")


def cold_compile(tree: str, cell: str, backend: str, dtype: str) -> float:
    """CPU seconds of one cold compile of ``cell/backend/dtype`` in ``tree``."""
    with tempfile.TemporaryDirectory(prefix="lstm-numba-jit-") as d:
        out = subprocess.run([sys.executable, "-c", _CODE, cell, backend, dtype, d],
                             cwd=tree, capture_output=True, text=True,
                             env=dict(os.environ, PYTHONPATH=os.path.abspath(tree)))
    if out.returncode != 0:
        raise RuntimeError(f"{tree}: {cell}/{backend}/{dtype} failed:\n{out.stderr[-3000:]}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return max(r["first_cpu"] - r["second_cpu"], 0.0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", help="source tree measured first in each round")
    ap.add_argument("after", help="source tree measured second")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--entries", default="lstm/numba/float32,gru/numba/float32,"
                    "rnn/numba/float32,lstm/numba-parallel/float32,lstm/numba/float64",
                    help="comma-separated cell/backend/dtype")
    args = ap.parse_args(argv)
    entries = [tuple(e.split("/")) for e in args.entries.split(",")]
    runs: dict = {}
    for _ in range(args.rounds):
        for entry in entries:
            for tag, tree in (("before", args.before), ("after", args.after)):
                runs.setdefault((entry, tag), []).append(cold_compile(tree, *entry))
    print(f"| entry point | before s (CPU, min of {args.rounds}) | after s | runs before | runs after |")
    print("|---|---|---|---|---|")
    for entry in entries:
        b, a = runs[(entry, "before")], runs[(entry, "after")]
        print(f"| {'/'.join(entry)} | {min(b):.2f} | {min(a):.2f} | "
              f"{' '.join(f'{x:.1f}' for x in b)} | {' '.join(f'{x:.1f}' for x in a)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
