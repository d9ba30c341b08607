"""Side-by-side check of issue 12's CPU targets for the parallel cells.

    flock /tmp/lstm-measure.lock .venv/bin/python benchmarks/limits_check.py [--quick]

Prints one table per target, every row timed in ONE process with
:func:`lstm_numba.measure.measure_interleaved` (contenders alternate call by
call; the statistic is named in the header), float32, H = I = 256:

1. minGRU scan (``numba-parallel``) on 2 threads vs 1 thread, B=1,
   T=16,384 (target >= 1.7x; the LSTM's is ~1.2x), beside the sequential
   ``numba`` kernel.
2. minGRU and minLSTM ``numba-parallel`` vs the ``torch`` peer (chunked
   log-space scan), B=1, T >= 1024, 2 threads (target <= 0.5x torch's time).
3. attention ``numba`` / ``numba-parallel`` vs ``torch`` SDPA
   (``is_causal=True``), B=1, T in 256..4096, at 1 and 2 threads (target
   <= 1.0x torch's time at the same thread count).

``--gpu`` (a real GPU): the ``cuda`` scan against the oracle and against
cuDNN's LSTM, B=1 T=16,384 and B=16 T=4096 (target >= 50x faster at B=1).

Each row also gives the max abs error against the float64 oracle. The
machine is shared: only the ratios mean anything; absolute times are
printed for scale. Name the CPU (``ln.describe_cpu()``) with any record.
"""
from __future__ import annotations

import argparse
import sys

import numba
import numpy as np

import lstm_numba as ln
from lstm_numba.backends import REGISTRY
from lstm_numba.measure import make_problem, max_abs_err, measure_interleaved

H = 256


def _oracle(cell, pr):
    up = (lambda a: None if a is None else a.astype(np.float64))  # noqa: E731
    return ln.forward(cell, up(pr.x), pr.w.astype(np.float64), up(pr.h0), backend="numpy")


def _run(backend, cell, pr, threads=None):
    run = REGISTRY[backend].runner(cell, pr.w)
    if threads is None:
        return lambda: run(pr.x, pr.h0)

    def call():
        old = numba.get_num_threads()
        numba.set_num_threads(threads)
        try:
            return run(pr.x, pr.h0)
        finally:
            numba.set_num_threads(old)
    return call


def _table(title, rows, budget):
    print(f"\n{title}")
    print(f"{'case':<34}{'contender':<26}{'ms':>9}{'ratio':>8}{'max err':>10}  statistic")
    for case, fns, base, cell, pr, check in rows:
        ref = _oracle(cell, pr) if check else None
        m = measure_interleaved(fns, budget_s=budget, settle_s=0.005, warmup=2)
        for name, meas in m.items():
            err = max_abs_err(fns[name]()[:1], ref[:1]) if ref is not None else float("nan")
            ratio = meas.value / m[base].value
            print(f"{case:<34}{name:<26}{meas.value * 1e3:9.2f}{ratio:8.2f}{err:10.1e}"
                  f"  {meas.describe()}")
        sys.stdout.flush()


def gpu_check():
    """On a real GPU: the cuda scan vs the float64 oracle, and its time vs cuDNN's LSTM.

    Times are medians of device-resident calls (inputs uploaded once,
    ``measure(run.call, sync=run.sync)``), TF32 off, H = I = 256.
    """
    import torch

    from lstm_numba._cuda_scan import ScanRun
    from lstm_numba.cells import spec
    from lstm_numba.measure import measure

    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    print("device:", torch.cuda.get_device_name(0), "torch", torch.__version__)
    for cell in ("mingru", "minlstm"):
        pr = make_problem(cell, 16_384, 1, H)
        ref = _oracle(cell, pr)
        for proj in ("cublas", "kernel"):
            run = ScanRun(spec(cell).code, pr.x, pr.w.w_ih, pr.w.b_ih, pr.h0, projection=proj)
            run.call()
            err = max_abs_err(run.result()[:1], ref[:1])
            print(f"{cell} T=16384 B=1 {proj}: max err {err:.1e}")
    for t, b in ((16_384, 1), (4096, 16), (1024, 1)):
        rows = {}
        for cell in ("mingru", "minlstm"):
            pr = make_problem(cell, t, b, H)
            for proj in ("cublas", "kernel"):
                run = ScanRun(spec(cell).code, pr.x, pr.w.w_ih, pr.w.b_ih, pr.h0, projection=proj)
                rows[f"{cell} scan ({proj} projection)"] = measure(
                    run.call, sync=run.sync, warmup=2, min_calls=5, max_calls=50, budget_s=2).median
        lstm = torch.nn.LSTM(H, H).cuda().eval()
        x = torch.randn(t, b, H, device="cuda")
        with torch.inference_mode():
            rows["cuDNN LSTM"] = measure(lambda: lstm(x), sync=torch.cuda.synchronize, warmup=2,
                                         min_calls=3, max_calls=10, budget_s=5).median
        for k, v in rows.items():
            print(f"T={t} B={b} {k:<32}{v * 1e3:9.3f} ms {rows['cuDNN LSTM'] / v:8.1f}x "
                  "faster than cuDNN LSTM (median)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer sizes, shorter budget")
    ap.add_argument("--gpu", action="store_true",
                    help="only the GPU check (a real GPU): cuda scan vs cuDNN LSTM")
    args = ap.parse_args(argv)
    if args.gpu:
        return gpu_check()
    budget = 1.5 if args.quick else 4.0
    ln.set_num_threads(min(2, ln.threads.max_threads()))
    try:
        print(ln.describe_cpu())
    except AttributeError:  # pragma: no cover - older checkouts
        pass
    print(f"float32, H = I = {H}, B = 1; ratio = time / the first contender's")

    pr = make_problem("mingru", 16_384, 1, H)
    _table("1. minGRU scan, thread speed-up (target: 1 thread / 2 threads >= 1.7)", [
        ("minGRU T=16384", {
            "numba-parallel 1 thread": _run("numba-parallel", "mingru", pr, 1),
            "numba-parallel 2 threads": _run("numba-parallel", "mingru", pr, 2),
            "numba (sequential)": _run("numba", "mingru", pr)},
         "numba-parallel 1 thread", "mingru", pr, True)], budget)

    seq = (1024, 16_384) if args.quick else (1024, 4096, 16_384)
    rows = []
    for cell in ("mingru", "minlstm"):
        for t in seq:
            pr = make_problem(cell, t, 1, H)
            rows.append((f"{cell} T={t}", {"torch": _run("torch", cell, pr),
                                           "numba-parallel": _run("numba-parallel", cell, pr),
                                           "numba": _run("numba", cell, pr)},
                         "torch", cell, pr, t <= 4096))
    _table("2. scan vs the torch peer, 2 threads (target: numba-parallel <= 0.50)", rows, budget)

    seq = (256, 1024, 4096) if args.quick else (256, 512, 1024, 2048, 4096)
    for threads in (1, 2):
        ln.set_num_threads(threads)
        rows = []
        for t in seq:
            pr = make_problem("attention", t, 1, H)
            fns = {"torch SDPA": _run("torch", "attention", pr)}
            fns["numba" if threads == 1 else "numba-parallel"] = _run(
                "numba" if threads == 1 else "numba-parallel", "attention", pr)
            rows.append((f"attention T={t}", fns, "torch SDPA", "attention", pr, t <= 1024))
        _table(f"3. attention vs torch SDPA, {threads} thread(s) (target <= 1.00)", rows, budget)


if __name__ == "__main__":
    main()
