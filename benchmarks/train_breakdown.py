"""Where the time of a Numba training step goes, and how it compares with torch.

Two tables (float32, the harness's seeded problem, I = H):

1. Breakdown of the Numba backward, microseconds per time step, by phase
   (``cpu_train.backward_train(profile=...)``): ``recurrence`` = the
   per-step loop (elementwise pass + ``dh = dG_t @ W_hh``), of which
   ``dh product`` is the product alone (the same micro-kernel calls timed
   on their own), ``elementwise`` the rest; ``batched`` = the products done
   once per block (``dW_ih``, ``dW_hh``, ``dX``, bias sums); ``recompute``
   = the checkpointed segments' forward (0 without checkpointing);
   ``forward`` = the training forward. Median of a few calls.
2. Side by side: a training step (forward + backward) of ``numba``,
   ``numba-parallel`` and torch autograd (``peers_train.TorchTrainer``, the
   same weights), interleaved (``measure.measure_interleaved``, the minimum
   of the calls), with the ratio best-Numba/torch, GFLOP/s (3x the
   forward's FLOPs, ``ln.flops``) and the fraction of the same process's
   sgemm rate (``measure.sgemm_gflops``), and tape bytes (Numba vs torch's
   saved tensors).

Run timings one at a time on the shared machine:

    flock /tmp/lstm-measure.lock .venv/bin/python benchmarks/train_breakdown.py
    flock /tmp/lstm-measure.lock .venv/bin/python benchmarks/train_breakdown.py \\
        --cells lstm --hidden 256 --batch 16 --seq 128 --threads 2
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lstm_numba as ln  # noqa: E402
from lstm_numba import cpu_train  # noqa: E402
from lstm_numba._gemm import aligned_empty, compile_gemm, gemm_rows, panel_width  # noqa: E402
from lstm_numba.machine import describe_cpu  # noqa: E402
from lstm_numba.cells import spec  # noqa: E402
from lstm_numba.measure import make_problem, measure, measure_interleaved, sgemm_gflops  # noqa: E402
from lstm_numba.validation import prepare  # noqa: E402
from numba import njit  # noqa: E402


@njit(cache=True, nogil=True)
def _dh_products(dG, nb, whhq, zb, hp, t_len):
    """The recurrence's products alone: t_len calls of dG_t @ W_hh on nb rows."""
    for t in range(t_len):
        gemm_rows(dG, (t % (dG.shape[0] // nb)) * nb, nb, whhq, zb, hp, 0, 0, whhq.shape[0],
                  t % 2 == 1)


def _grads(cell, t, b, h, dtype, seed=7):
    rng = np.random.default_rng(seed)
    go = rng.standard_normal((t, b, h)).astype(dtype)
    gh = np.zeros((b, h), dtype)
    gc = np.zeros((b, h), dtype) if cell == "lstm" else None
    return go, gh, gc


def breakdown(cell, hidden, batch, seq_len, name="numba", checkpoint=None, calls=3):
    """Median seconds per phase of one training step (see the module docstring)."""
    pr = make_problem(cell, seq_len, batch, hidden)
    p = prepare(cell, pr.x, pr.w, pr.h0, pr.c0)
    go, gh, gc = _grads(cell, seq_len, batch, hidden, pr.x.dtype)
    cpu_train.backward_train(cpu_train.forward_train(p, checkpoint, name)[3], go, gh, gc)
    phases: dict[str, list[float]] = {}
    for _ in range(calls):
        t0 = time.perf_counter()
        tape = cpu_train.forward_train(p, checkpoint, name)[3]
        fwd = time.perf_counter() - t0
        prof: dict[str, float] = {"forward": fwd}
        cpu_train.backward_train(tape, go, gh, gc, profile=prof)
        for k, v in prof.items():
            phases.setdefault(k, []).append(v)
    out = {k: statistics.median(v) for k, v in phases.items()}
    # The dh products alone, on the recurrence's shapes.
    dt = pr.x.dtype
    g = spec(cell).n_gates
    nc = panel_width(dt)
    n_pad = -(-g * hidden // nc) * nc
    h_pad = -(-hidden // nc) * nc
    steps = max(1, -(-cpu_train.BLOCK_ROWS // batch))
    dG = np.random.default_rng(0).standard_normal((steps * batch, n_pad)).astype(dt)
    whhq = aligned_empty((h_pad // nc, n_pad, nc), dt, zero=True)   # as cpu_train packs it
    zb = np.zeros(h_pad, dt)
    hp = np.zeros((batch, h_pad), dt)
    compile_gemm(dG, 0, 1, whhq, zb, hp, 0, 0, 1, False)
    _dh_products(dG, batch, whhq, zb, hp, 2)           # compile, untimed
    out["dh product"] = measure(lambda: _dh_products(dG, batch, whhq, zb, hp, seq_len),
                                stat="median", warmup=0, min_calls=calls, max_calls=calls,
                                budget_s=0.0).value
    return out


def side_by_side(cell, hidden, batch, seq_len, checkpoint=None, budget_s=2.0):
    """Interleaved Measurements of a training step: numba, numba-parallel, torch."""
    from lstm_numba.peers_train import TorchTrainer, backward_train as torch_bwd

    pr = make_problem(cell, seq_len, batch, hidden)
    p = prepare(cell, pr.x, pr.w, pr.h0, pr.c0)
    go, gh, gc = _grads(cell, seq_len, batch, hidden, pr.x.dtype)
    trainer = TorchTrainer(cell, pr.w, measure_tape=False)

    def numba_step(name):
        def step():
            tape = cpu_train.forward_train(p, checkpoint, name)[3]
            cpu_train.backward_train(tape, go, gh, gc)
        return step

    def torch_step():
        tape = trainer.forward(pr.x, pr.h0, pr.c0)[3]
        torch_bwd(tape, go, gh, gc)

    fns = {"numba": numba_step("numba"), "numba-parallel": numba_step("numba-parallel"),
           "torch": torch_step}
    if ln.get_num_threads() == 1:
        del fns["numba-parallel"]
    res = measure_interleaved(fns, stat="min", warmup=2, min_calls=3, max_calls=20,
                              budget_s=budget_s, settle_s=0.01)
    tape_numba = cpu_train.forward_train(p, checkpoint, "numba")[3].nbytes
    tape_torch = TorchTrainer(cell, pr.w).forward(pr.x, pr.h0, pr.c0)[3].nbytes
    return res, tape_numba, tape_torch


def checkpoint_cost(cell, hidden, batch, seq_len, name="numba", budget_s=3.0):
    """(time ratio, tape ratio) of checkpoint='sqrt' over keeping every step."""
    pr = make_problem(cell, seq_len, batch, hidden)
    p = prepare(cell, pr.x, pr.w, pr.h0, pr.c0)
    go, gh, gc = _grads(cell, seq_len, batch, hidden, pr.x.dtype)
    k = ln.training.check_checkpoint("sqrt", seq_len)

    def step(ck):
        def run():
            tape = cpu_train.forward_train(p, ck, name)[3]
            cpu_train.backward_train(tape, go, gh, gc)
        return run

    res = measure_interleaved({"full": step(None), "sqrt": step(k)}, stat="min", warmup=1,
                              min_calls=3, max_calls=10, budget_s=budget_s)
    full = cpu_train.forward_train(p, None, name)[3].nbytes
    sq = cpu_train.forward_train(p, k, name)[3].nbytes
    return k, res["sqrt"].value / res["full"].value, sq / full, res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cells", default="lstm,gru,rnn")
    ap.add_argument("--hidden", default="128,256,512")
    ap.add_argument("--batch", default="1,16,64")
    ap.add_argument("--seq", default="128")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--checkpoint", default=None, help="k or 'sqrt' (breakdown and race)")
    ap.add_argument("--skip-breakdown", action="store_true")
    ap.add_argument("--skip-race", action="store_true")
    ap.add_argument("--checkpoint-table", action="store_true",
                    help="also: numba with checkpoint='sqrt' against numba without (time, tape)")
    a = ap.parse_args(argv)
    ln.set_num_threads(a.threads)
    cells = a.cells.split(",")
    sizes = [(int(h), int(b), int(t)) for h in a.hidden.split(",")
             for b in a.batch.split(",") for t in a.seq.split(",")]
    print(f"CPU: {describe_cpu()}; threads {a.threads}; float32; I = H")

    def ckpt(t):
        if a.checkpoint is None:
            return None
        return ln.training.check_checkpoint(a.checkpoint if a.checkpoint == "sqrt"
                                            else int(a.checkpoint), t)

    if not a.skip_breakdown:
        name = "numba" if a.threads == 1 else "numba-parallel"
        print(f"\nBackward breakdown ({name}), microseconds per time step, median of 3:")
        cols = ("forward", "recompute", "recurrence", "dh product", "elementwise",
                "batched", "setup")
        print(f"{'cell':5} {'H':>4} {'B':>3} {'T':>5} " + " ".join(f"{c:>11}" for c in cols))
        for cell in cells:
            for h, b, t in sizes:
                r = breakdown(cell, h, b, t, name, ckpt(t))
                r["elementwise"] = r["recurrence"] - r["dh product"]
                print(f"{cell:5} {h:>4} {b:>3} {t:>5} "
                      + " ".join(f"{1e6 * r.get(c, 0.0) / t:>11.1f}" for c in cols), flush=True)
    if not a.skip_race:
        sg = sgemm_gflops()
        print(f"\nTraining step side by side (min of interleaved calls); sgemm {sg:.0f} GFLOP/s")
        print(f"{'cell':5} {'H':>4} {'B':>3} {'T':>5} {'numba ms':>9} {'par ms':>9} "
              f"{'torch ms':>9} {'best/torch':>10} {'GFLOP/s':>8} {'% sgemm':>8} "
              f"{'tape/torch':>10} {'calls':>5}")
        for cell in cells:
            for h, b, t in sizes:
                res, tn, tt = side_by_side(cell, h, b, t, ckpt(t))
                best = min(res[n].value for n in res if n != "torch")
                gf = 3 * ln.flops(cell, t, b, h, h) / best / 1e9
                par = res["numba-parallel"].value * 1e3 if "numba-parallel" in res else float("nan")
                print(f"{cell:5} {h:>4} {b:>3} {t:>5} {res['numba'].value * 1e3:>9.2f} "
                      f"{par:>9.2f} {res['torch'].value * 1e3:>9.2f} "
                      f"{best / res['torch'].value:>10.2f} {gf:>8.1f} {100 * gf / sg:>7.0f}% "
                      f"{tn / tt:>10.2f} {res['torch'].n:>5}", flush=True)
    if a.checkpoint_table:
        name = "numba" if a.threads == 1 else "numba-parallel"
        print(f"\nCheckpoint 'sqrt' vs every step ({name}; min of interleaved calls)")
        print(f"{'cell':5} {'H':>4} {'B':>3} {'T':>5} {'k':>4} {'time ratio':>10} "
              f"{'tape ratio':>10} {'full ms':>9}")
        for cell in cells:
            for h, b, t in sizes:
                k, tr, br, res = checkpoint_cost(cell, h, b, t, name)
                print(f"{cell:5} {h:>4} {b:>3} {t:>5} {k:>4} {tr:>10.2f} {br:>10.4f} "
                      f"{res['full'].value * 1e3:>9.1f}", flush=True)


if __name__ == "__main__":
    main()
