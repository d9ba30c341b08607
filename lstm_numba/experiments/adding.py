"""The adding problem (Hochreiter & Schmidhuber 1997), trained with the project's backward.

Data
----
Each sample is T steps of two channels: channel 0 holds numbers drawn from
U(0, 1); channel 1 is a marker, 1 at exactly two positions and 0 elsewhere.
As in the literature since Hochreiter & Schmidhuber (and Le et al. 2015,
Arjovsky et al. 2016) one marker lies in the first half of the sequence
(``[0, T//2)``) and the other in the second half (``[T//2, T)``), so the two
numbers to remember are on average ~T/2 apart and the first one is at least
~T/2 steps before the end. The target is the sum of the two marked numbers.
The best constant prediction (1, the mean) scores MSE = Var(u1 + u2) =
2/12 = 1/6 ~ 0.167: a model must beat that to have learned anything.

Model and training
------------------
One recurrent layer (rnn, lstm or gru, PyTorch's default init, I = 2) and a
linear read-out of the last state, ``y = h_T . w_o + b_o``; loss = mean
squared error. Gradients: the read-out's by hand, the layer's by
``lstm_numba.backward(fw, None, grad_h=dL/dh_T)`` (backend ``numba`` by
default); all parameters updated by Adam (Kingma & Ba 2015), written here in
NumPy, after clipping the global gradient norm to ``clip`` (1.0), seeded.
Each step draws a fresh batch; the test MSE is measured on a fixed seeded
test set of ``test_size`` samples with an inference forward.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from ._plot import CELL_COLOURS, saved_plot

#: MSE of the best constant prediction: Var(U1 + U2) = 2/12.
CONSTANT_MSE = 1.0 / 6.0
#: Test MSE at or under which a run counts as solving the task (~6% of the
#: constant predictor's error; the rule we use, not a literature constant).
SOLVED_MSE = 0.01


def adding_data(seq_len: int, batch: int, rng, dtype=np.float32):
    """One batch of the adding problem.

    Parameters
    ----------
    seq_len : int
        T >= 2 (one marker in each half).
    batch : int
        B >= 1.
    rng : numpy.random.Generator
    dtype : float32 or float64

    Returns
    -------
    x : ndarray, shape (T, B, 2)
        Channel 0 U(0, 1) numbers, channel 1 the markers (two 1s per sample).
    y : ndarray, shape (B,)
        The sum of the two marked numbers.
    """
    if not isinstance(seq_len, (int, np.integer)) or seq_len < 2:
        raise ValueError(f"seq_len must be an int >= 2 (one marker in each half); got {seq_len!r}")
    if not isinstance(batch, (int, np.integer)) or batch < 1:
        raise ValueError(f"batch must be an int >= 1; got {batch!r}")
    half = seq_len // 2
    x = np.zeros((seq_len, batch, 2), dtype=dtype)
    x[:, :, 0] = rng.random((seq_len, batch))
    first = rng.integers(0, half, size=batch)
    second = rng.integers(half, seq_len, size=batch)
    cols = np.arange(batch)
    x[first, cols, 1] = 1
    x[second, cols, 1] = 1
    y = (x[first, cols, 0].astype(np.float64) + x[second, cols, 0]).astype(dtype)
    return x, y


class Adam:
    """Adam (Kingma & Ba 2015) over a list of arrays, updated in place.

    ``m = b1 m + (1-b1) g``; ``v = b2 v + (1-b2) g^2``;
    ``p -= lr * m_hat / (sqrt(v_hat) + eps)`` with the bias corrections
    ``m_hat = m / (1 - b1^t)``, ``v_hat = v / (1 - b2^t)``.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.params = list(params)
        self.lr, (self.b1, self.b2), self.eps = lr, betas, eps
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.t = 0

    def step(self, grads) -> None:
        self.t += 1
        c1 = 1.0 - self.b1 ** self.t
        c2 = 1.0 - self.b2 ** self.t
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= self.b1
            m += (1.0 - self.b1) * g
            v *= self.b2
            v += (1.0 - self.b2) * (g * g)
            p -= (self.lr / c1 * m / (np.sqrt(v / c2) + self.eps)).astype(p.dtype)


def clip_global_norm(grads, max_norm: float) -> float:
    """Scale ``grads`` in place so their joint L2 norm is at most ``max_norm``;
    return the norm before clipping."""
    total = math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads))
    if max_norm and total > max_norm:
        for g in grads:
            g *= max_norm / total
    return total


@dataclass
class AddingResult:
    """One training run: test MSE after each evaluation."""

    cell: str
    seq_len: int
    hidden: int
    batch: int
    steps: list = field(default_factory=list)       # steps done at each evaluation
    test_mse: list = field(default_factory=list)    # test MSE there
    train_loss: list = field(default_factory=list)  # mean training loss since the last one
    seconds: float = 0.0

    @property
    def final_mse(self) -> float:
        return self.test_mse[-1]

    @property
    def solved(self) -> bool:
        return self.final_mse <= SOLVED_MSE


def _predict(cell, x, w, w_o, b_o, backend):
    import lstm_numba as ln

    h = ln.forward(cell, x, w, backend=backend).h
    return h @ w_o + b_o


def train_adding(cell: str = "gru", seq_len: int = 100, steps: int = 1000, hidden: int = 64,
                 batch: int = 64, lr: float = 3e-3, clip: float = 1.0, backend: str = "numba",
                 eval_every: int | None = None, test_size: int = 512, seed: int = 0,
                 forget_bias: float = 0.0, dtype=np.float32, log=None) -> AddingResult:
    """Train one cell + a linear read-out on the adding problem.

    Parameters
    ----------
    cell : {"rnn", "lstm", "gru"}
    seq_len, steps, hidden, batch : int
        T, Adam steps, H and B (a fresh batch per step).
    lr, clip : float
        Adam's learning rate; the global gradient norm clip (0: none).
    backend : str
        A training backend (numba by default).
    eval_every : int, optional
        Steps between test evaluations (default: steps // 20).
    test_size : int
        Samples in the fixed test set.
    forget_bias : float
        LSTM only: added to the forget gate's ``b_ih[H:2H]`` at init
        (Gers et al. 2000; Jozefowicz et al. 2015); 0 keeps PyTorch's init.
    log : callable, optional
        Called with one formatted line per evaluation (e.g. ``print``).

    Returns
    -------
    AddingResult
        Test MSE at step 0 and after every ``eval_every`` steps.
    """
    import lstm_numba as ln

    if not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be an int >= 0; got {steps!r}")
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    test_x, test_y = adding_data(seq_len, test_size, np.random.default_rng(10_000 + seed), dtype)
    from .gradient_flow import with_forget_bias

    if forget_bias and cell != "lstm":
        raise ValueError(f"forget_bias is for the lstm only; got cell={cell!r}")
    w = with_forget_bias(ln.init_weights(cell, 2, hidden, dtype=dtype, seed=seed), forget_bias)
    w = type(w)(*(a.copy() for a in w))     # our own arrays: Adam updates them in place
    k = 1.0 / math.sqrt(hidden)      # nn.Linear's init
    w_o = rng.uniform(-k, k, size=hidden).astype(dtype)
    b_o = np.array([0.0], dtype=dtype)
    params = [w.w_ih, w.w_hh, w.b_ih, w.b_hh, w_o, b_o]   # updated in place
    opt = Adam(params, lr=lr)
    every = eval_every or max(1, steps // 20)
    res = AddingResult(cell, seq_len, hidden, batch)
    zeros_out = None
    t0 = time.perf_counter()

    def evaluate(step, losses):
        mse = float(np.mean((_predict(cell, test_x, w, w_o, b_o, backend) - test_y) ** 2))
        res.steps.append(step)
        res.test_mse.append(mse)
        res.train_loss.append(float(np.mean(losses)) if losses else math.nan)
        if log:
            log(f"{cell:4} T={seq_len:<4} step {step:6d}  test MSE {mse:.4f}"
                f"  ({mse / CONSTANT_MSE:.3f} of the constant predictor's)")

    evaluate(0, [])
    losses = []
    for step in range(1, steps + 1):
        x, y = adding_data(seq_len, batch, rng, dtype)
        fw = ln.forward(cell, x, w, backend=backend, train=True)
        pred = fw.h @ w_o + b_o[0]
        err = pred - y
        losses.append(float(np.mean(err.astype(np.float64) ** 2)))
        dpred = (2.0 / batch) * err                      # dL/dy, (B,)
        g_wo = fw.h.T @ dpred
        g_bo = np.array([dpred.sum()], dtype=dtype)
        dh = np.ascontiguousarray(np.outer(dpred, w_o).astype(dtype))
        if zeros_out is None or zeros_out.shape != fw.outputs.shape:
            zeros_out = np.zeros_like(fw.outputs)
        g = ln.backward(fw, zeros_out, grad_h=dh)
        grads = [g.w_ih.copy(), g.w_hh.copy(), g.b_ih.copy(), g.b_hh.copy(),
                 g_wo.astype(dtype), g_bo]
        clip_global_norm(grads, clip)
        opt.step(grads)
        if step % every == 0 or step == steps:
            evaluate(step, losses)
            losses = []
    res.seconds = time.perf_counter() - t0
    return res


def plot(results, path, title: str | None = None) -> None:
    """Test MSE vs steps, one line per (cell, T); the constant predictor dashed."""
    styles = ["-", "--", ":", "-."]
    lens = sorted({r.seq_len for r in results})
    r0 = results[0]
    with saved_plot(path, title or f"Adding problem, H={r0.hidden}, B={r0.batch}") as ax:
        for r in results:
            ax.plot(r.steps, r.test_mse, styles[lens.index(r.seq_len) % 4],
                    color=CELL_COLOURS.get(r.cell), marker="o", ms=2,
                    label=f"{r.cell} T={r.seq_len} (final {r.final_mse:.3f})")
        ax.axhline(CONSTANT_MSE, color="grey", ls="--", lw=1)
        ax.text(0, CONSTANT_MSE * 1.08, "constant predictor 1/6", color="grey", fontsize=8)
        ax.axhline(SOLVED_MSE, color="grey", ls=":", lw=1)
        ax.set_yscale("log")
        ax.set_xlabel("Adam steps")
        ax.set_ylabel("test MSE")
        ax.legend(fontsize=7, ncol=2)


def main(argv=None) -> int:
    """``python -m lstm_numba adding``: train, print test MSE against steps."""
    import argparse
    import sys

    from ..cells import CELLS

    ap = argparse.ArgumentParser(
        prog="python -m lstm_numba adding",
        description="The adding problem (Hochreiter & Schmidhuber 1997): one layer + a "
                    "linear read-out trained with lstm_numba.backward and Adam; prints the "
                    "test MSE against steps (a constant predictor scores 1/6 ~ 0.167).")
    ap.add_argument("--cell", choices=CELLS + ("all",), default="gru")
    ap.add_argument("--seq-len", type=int, nargs="+", default=[100], help="T (one or more)")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--clip", type=float, default=1.0, help="global gradient-norm clip")
    ap.add_argument("--forget-bias", type=float, default=1.0,
                    help="LSTM: added to b_ih[H:2H] at init (default 1.0)")
    ap.add_argument("--eval-every", type=int, default=None,
                    help="steps between test evaluations (default steps/20)")
    ap.add_argument("--test-size", type=int, default=512, help="test samples (default 512)")
    ap.add_argument("--backend", default="numba")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plot", default=None, help="write test MSE vs steps here (PNG)")
    a = ap.parse_args(argv)
    cells = CELLS if a.cell == "all" else (a.cell,)
    out = []
    try:
        for cell in cells:
            for t in a.seq_len:
                r = train_adding(cell, t, a.steps, a.hidden, a.batch, a.lr, a.clip, a.backend,
                                 a.eval_every, a.test_size, seed=a.seed,
                                 forget_bias=a.forget_bias if cell == "lstm" else 0.0,
                                 log=lambda s: print(s, flush=True))
                print(f"-> {cell} T={t}: final test MSE {r.final_mse:.4f} "
                      f"({'solved' if r.solved else 'not solved'}: <= {SOLVED_MSE}) "
                      f"in {r.seconds:.0f} s", flush=True)
                out.append(r)
    except (ValueError, TypeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if a.plot:
        plot(out, a.plot)
        print(f"plot: {a.plot}")
    return 0
