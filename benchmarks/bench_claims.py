"""Question: do the notes' claims hold? (issue 13; read by the report's evidence section)

* ``GradientFlow.track_horizon``: the distance at which ``||dh_T/dh_t||_F``
  falls below 1e-3 of its value at distance 0, per curve (rnn, lstm, lstm
  with +1 on the forget gate's ``b_ih``, gru; PyTorch's init, x ~ N(0,1),
  I = H); ``GradientFlowCurve.track_relative_norm``: the relative norm at a
  few distances (the report's plot). See
  :mod:`lstm_numba.experiments.gradient_flow`.
* ``Adding.track_test_mse``: test MSE on the adding problem after ``step``
  Adam steps, per cell and T (one layer + linear read-out, trained with the
  ``numba`` backward; a constant prediction scores 1/6). The largest step is
  the final MSE. See :mod:`lstm_numba.experiments.adding`.
* ``CellCost``: for rnn, lstm, gru at one size (numba, one thread), the
  inference forward and the training step (forward + backward) timed side by
  side in one process (least of interleaved calls), and the tape bytes per
  step the training forward keeps.

Every class reads a ``setup_cache`` computed once (asv pickles it to each
parameter process), so a track costs a process start only.

Sizes (fast profile): gradient flow H=64, T=400, 8 samples x 2 probes;
adding H=32, B=32, 600 steps (a fresh batch per step), T in {50, 100, 200},
test MSE after 300 and 600 steps -- a smaller layer than the CLI's default
(H=64, B=64) to keep ``make bench`` short: an LSTM that plateaus here may
learn with more steps (full profile: H=64, B=64, 1500 steps, T up to 400).
The same runs from the command line:
``python -m lstm_numba adding --cell all --seq-len 50 100 200 --hidden 32
--batch 32 --steps 600 --eval-every 300 --test-size 256``.
Processes: 4 + 12 + 18 + 9 = 43 (fast).
"""
import math

import numpy as np

from .common import max_threads, pick, reads_cache, set_threads

FLOW_VARIANTS = ["rnn", "lstm", "lstm+fb1", "gru"]
FLOW_H = pick(fast=64, full=64, smoke=8)
FLOW_T = pick(fast=400, full=1000, smoke=16)
FLOW_BATCH = pick(fast=8, full=16, smoke=2)
FLOW_DISTANCES = pick(fast=[4, 32, 256], full=[4, 16, 64, 256, 1000], smoke=[2, 8])

ADD_CELLS = ["rnn", "lstm", "gru"]
ADD_T = pick(fast=[50, 100, 200], full=[50, 100, 200, 400], smoke=[6])
ADD_H = pick(fast=32, full=64, smoke=4)
ADD_B = pick(fast=32, full=64, smoke=4)
ADD_STEPS = pick(fast=600, full=1500, smoke=4)
ADD_EVAL = pick(fast=[300, 600], full=[250, 500, 1000, 1500], smoke=[2, 4])
ADD_LR = 1e-2

COST_H = pick(fast=256, full=256, smoke=8)
COST_B = pick(fast=8, full=8, smoke=2)
COST_T = pick(fast=64, full=128, smoke=4)


def _flow_cache(self):
    """Every gradient-flow curve once: ``{label: (distances, norm_h, horizon)}``."""
    from lstm_numba.experiments import gradient_flow as gf

    set_threads(1)
    variants = [v for v in gf.VARIANTS if v[0] in FLOW_VARIANTS]
    out = {}
    # the tracked distances are measured exactly (added to the log-spaced set)
    for r in gf.run_all(FLOW_H, FLOW_T, FLOW_BATCH, "numba", variants, probes=2,
                        n_distances=pick(fast=10, full=16, smoke=4),
                        extra_distances=FLOW_DISTANCES):
        at = {int(d): float(n) for d, n in zip(r.distances, r.norm_h)}
        out[r.label] = {"horizon": r.horizon, "at": {d: at[d] for d in FLOW_DISTANCES}}
    set_threads(max_threads())
    return out


_flow_cache.timeout = pick(fast=300, full=1800, smoke=120)
_ReadsFlow = reads_cache(_flow_cache)


class GradientFlow(_ReadsFlow):
    """Gradient horizon per cell (steps; T + 1 means it never fell below 1e-3 within T)."""

    params = [FLOW_VARIANTS]
    param_names = ["cell"]

    def track_horizon(self, cache, cell):
        """Distance where ||dh_T/dh_t||_F / ||I||_F first falls below 1e-3 (steps)."""
        h = cache[cell]["horizon"]
        return float(FLOW_T + 1) if math.isinf(h) else float(h)

    track_horizon.unit = "steps"


class GradientFlowCurve(_ReadsFlow):
    """Relative ||dh_T/dh_(T-d)||_F at a few distances d (the report's plot)."""

    params = [FLOW_VARIANTS, FLOW_DISTANCES]
    param_names = ["cell", "distance"]

    def track_relative_norm(self, cache, cell, distance):
        """||dh_T/dh_(T-d)||_F / sqrt(H), the mean over samples (unit-sphere probes)."""
        return cache[cell]["at"][distance]

    track_relative_norm.unit = "ratio"


def _adding_cache(self):
    """Every adding-problem run once: ``{(cell, T): {step: test MSE}}`` and seconds."""
    from lstm_numba.experiments.adding import train_adding

    set_threads(1)
    out = {}
    for cell in ADD_CELLS:
        for t in ADD_T:
            r = train_adding(cell, t, ADD_STEPS, ADD_H, ADD_B, lr=ADD_LR,
                             eval_every=ADD_EVAL[0] if len(ADD_EVAL) == 2 else
                             math.gcd(*ADD_EVAL), test_size=pick(fast=256, full=512, smoke=16),
                             forget_bias=1.0 if cell == "lstm" else 0.0)
            out[(cell, t)] = {"mse": dict(zip(r.steps, r.test_mse)), "seconds": r.seconds}
    set_threads(max_threads())
    return out


_adding_cache.timeout = pick(fast=900, full=7200, smoke=120)
_ReadsAdding = reads_cache(_adding_cache)


class Adding(_ReadsAdding):
    """Adding problem: test MSE after ``step`` Adam steps (constant predictor: 1/6)."""

    params = [ADD_CELLS, ADD_T, ADD_EVAL]
    param_names = ["cell", "seq_len", "step"]

    def track_test_mse(self, cache, cell, seq_len, step):
        """Mean squared error on the fixed test set (the last step: the final MSE)."""
        return cache[(cell, seq_len)]["mse"][step]

    track_test_mse.unit = "mse"


def _cost_cache(self):
    """Inference and training-step time (s) and tape bytes/step per cell, one process."""
    import lstm_numba as ln
    from lstm_numba.measure import make_problem, measure_interleaved
    from lstm_numba.training import train_runner

    set_threads(1)
    fns, tape = {}, {}
    for cell in ADD_CELLS:
        x, w, h0, c0 = _problem(make_problem, cell)
        step = train_runner("numba", cell, w)
        go = np.ones((COST_T, COST_B, COST_H), dtype=x.dtype)
        fns[("infer", cell)] = (lambda c=cell, x=x, w=w: ln.forward(c, x, w, backend="numba"))
        fns[("train", cell)] = (lambda s=step, x=x, go=go: s(x, grad_outputs=go))
        tape[cell] = ln.forward(cell, x, w, backend="numba", train=True).tape.nbytes / COST_T
    ms = measure_interleaved(fns, stat="min", warmup=2,
                             budget_s=pick(fast=3.0, full=10.0, smoke=0.0),
                             max_calls=pick(fast=15, full=40, smoke=3))
    set_threads(max_threads())
    return {"time": {k: m.value for k, m in ms.items()}, "tape": tape}


def _problem(make_problem, cell):
    p = make_problem(cell, COST_T, COST_B, COST_H, dtype=np.float32, seed=0)
    return p.x, p.w, p.h0, p.c0


_cost_cache.timeout = pick(fast=300, full=1200, smoke=120)
_ReadsCost = reads_cache(_cost_cache)


class CellCost(_ReadsCost):
    """rnn, lstm, gru side by side: numba, one thread, H=256, B=8, T=64 (fast)."""

    params = [ADD_CELLS, [COST_T], [COST_B], [COST_H]]
    param_names = ["cell", "seq_len", "batch", "hidden"]

    def track_infer_seconds(self, cache, cell, seq_len, batch, hidden):
        """Inference forward (least of interleaved calls)."""
        return cache["time"][("infer", cell)]

    track_infer_seconds.unit = "seconds"

    def track_train_seconds(self, cache, cell, seq_len, batch, hidden):
        """Training step: forward keeping the tape + backward (least of interleaved calls)."""
        return cache["time"][("train", cell)]

    track_train_seconds.unit = "seconds"

    def track_tape_bytes_per_step(self, cache, cell, seq_len, batch, hidden):
        """Bytes the numba training forward keeps for the backward, per time step."""
        return cache["tape"][cell]

    track_tape_bytes_per_step.unit = "bytes"
