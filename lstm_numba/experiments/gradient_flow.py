"""Gradient flow: the norm of the Jacobian ``dh_T/dh_{T-d}`` against the distance d.

Method (public API only)
------------------------
1. One inference forward over ``x`` (T, B, I) gives every state ``h_t``
   (and ``c_t`` for the LSTM: the forward's ``res.c`` after a prefix run).
2. For each distance d of a log-spaced set, a training forward from
   ``h0 = h_{T-d}`` (``c0 = c_{T-d}``) over ``x[T-d:]`` and a backward with
   ``grad_h = v`` give ``g.h0 = J^T v`` where ``J = dh_T/dh_{T-d}`` (per
   sample; samples of a batch do not interact). For the LSTM the same
   backward gives ``g.c0 = K^T v`` with ``K = dh_T/dc_{T-d}``: the c path,
   reported separately (``J`` holds ``c_{T-d}`` fixed, ``K`` holds
   ``h_{T-d}`` fixed).

The estimator
-------------
For ``v`` uniform on the unit sphere of R^H, ``E[v v^T] = I/H`` (by symmetry
the covariance is a multiple of I, and its trace is ``E||v||^2 = 1``), so

    E ||J^T v||^2 = E[v^T J J^T v] = tr(J J^T E[v v^T]) = ||J||_F^2 / H.

Each sample gets ``probes`` independent unit vectors (the batch is tiled
``probes`` times, so one backward serves all of them) and the reported norm is

    n(d) = sqrt( H * mean over samples and probes of ||J^T v||^2 ),

an unbiased estimate of ``mean_b ||J_b||_F^2`` under the square root (the
RMS over samples of the Frobenius norm). At d = 0, ``J = I`` and
``n(0) = sqrt(H)`` exactly, so ``n(d)/n(0)`` is the relative norm.

The *gradient horizon* is the distance at which ``n(d)/n(0)`` first falls
below ``1e-3`` (log-linear interpolation between the two measured distances
around the crossing; ``inf`` when it never does within T).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ._plot import CELL_COLOURS, saved_plot

#: Relative norm below which the gradient counts as gone.
HORIZON_THRESHOLD = 1e-3

#: The curves the experiment draws: (label, cell, forget-gate bias added).
VARIANTS = (("rnn", "rnn", 0.0), ("lstm", "lstm", 0.0), ("lstm+fb1", "lstm", 1.0),
            ("gru", "gru", 0.0))


def distances(seq_len: int, n: int = 16) -> np.ndarray:
    """About ``n`` log-spaced whole distances in ``[1, seq_len]`` (1 and T included)."""
    if seq_len < 1:
        raise ValueError(f"seq_len must be >= 1; got {seq_len}")
    d = np.unique(np.round(np.geomspace(1, seq_len, max(n, 2))).astype(int))
    return d[(d >= 1) & (d <= seq_len)]


def unit_probes(rng, n: int, hidden: int, dtype) -> np.ndarray:
    """``n`` vectors uniform on the unit sphere of R^hidden (normalised Gaussians)."""
    v = rng.standard_normal((n, hidden))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v.astype(dtype)


def frobenius_estimate(jtv: np.ndarray, hidden: int) -> float:
    """``sqrt(H * mean ||J^T v||^2)`` over the rows of ``jtv`` (n, H): see the module doc."""
    sq = np.sum(np.asarray(jtv, dtype=np.float64) ** 2, axis=1)
    return float(math.sqrt(hidden * sq.mean()))


def with_forget_bias(weights, bias: float):
    """LSTM weights with ``bias`` added to the forget gate's ``b_ih[H:2H]``
    (gate order i, f, g, o; ``b_hh`` untouched, so the effective bias
    ``b_ih + b_hh`` moves by exactly ``bias``)."""
    if not bias:
        return weights
    from ..cells import Weights

    h = weights.w_hh.shape[1]
    b_ih = weights.b_ih.copy()
    b_ih[h:2 * h] += bias
    return Weights(weights.w_ih, weights.w_hh, b_ih, weights.b_hh)


def jacobian_vector(cell, x, weights, h0, c0, v, backend="numba"):
    """``(J^T v, K^T v)`` per sample, ``J = dh_T/dh0``, ``K = dh_T/dc0`` (None but for
    the LSTM), by one training forward from ``(h0, c0)`` over ``x`` (T, B, I)
    and one backward with ``grad_h = v`` (B, H): the backward of
    ``L = sum(v * h_T)`` gives ``dL/dh0 = J^T v`` and ``dL/dc0 = K^T v``."""
    import lstm_numba as ln

    fw = ln.forward(cell, x, weights, h0=h0, c0=c0, backend=backend, train=True)
    g = ln.backward(fw, None, grad_h=v)
    return g.h0, g.c0


@dataclass
class FlowResult:
    """One curve: relative Jacobian norm vs distance for one cell."""

    label: str
    cell: str
    forget_bias: float
    hidden: int
    seq_len: int
    distances: np.ndarray           # d, ascending, starting at 0
    norm_h: np.ndarray              # n(d) / n(0) for J = dh_T/dh_{T-d}
    norm_c: np.ndarray | None = None  # the same for K = dh_T/dc_{T-d} (LSTM), / sqrt(H)
    extra: dict = field(default_factory=dict)

    @property
    def horizon(self) -> float:
        return horizon(self.distances, self.norm_h)


def horizon(d, rel, threshold: float = HORIZON_THRESHOLD) -> float:
    """First distance where ``rel`` falls below ``threshold`` (log-linear
    interpolation between measured points); ``inf`` if it never does."""
    d = np.asarray(d, dtype=float)
    rel = np.asarray(rel, dtype=float)
    for i in range(len(d)):
        if not rel[i] >= threshold:       # NaN counts as gone
            if i == 0 or not rel[i] > 0 or not np.isfinite(rel[i]):
                return float(d[i])
            la, lb = math.log(rel[i - 1]), math.log(rel[i])
            f = (la - math.log(threshold)) / (la - lb)
            return float(d[i - 1] + f * (d[i] - d[i - 1]))
    return math.inf


def gradient_flow(cell: str, hidden: int = 64, seq_len: int = 1000, batch: int = 8,
                  input_size: int | None = None, forget_bias: float = 0.0,
                  backend: str = "numba", probes: int = 4, n_distances: int = 16,
                  dtype=np.float32, seed: int = 0, label: str | None = None,
                  extra_distances=()) -> FlowResult:
    """Relative ``||dh_T/dh_{T-d}||_F`` vs d for one cell, PyTorch's default init.

    Parameters
    ----------
    cell : {"rnn", "lstm", "gru"}
    hidden, seq_len, batch : int
        H, T and B (samples the norm is averaged over).
    input_size : int, optional
        I (default H); inputs ``x ~ N(0, 1)``, shape (T, B, I), seeded.
    forget_bias : float
        LSTM only: added to ``b_ih[H:2H]`` (see :func:`with_forget_bias`).
    backend : str
        A training backend (numpy, numba, numba-parallel, torch).
    probes : int
        Unit vectors per sample (the batch is tiled ``probes`` times).
    n_distances : int
        About how many log-spaced distances in [1, T] (plus d = 0).
    extra_distances : iterable of int
        Distances in [1, T] measured as well (e.g. those a benchmark tracks).

    Returns
    -------
    FlowResult
        ``distances`` (n,), ``norm_h`` (n,) relative to d = 0, and for the
        LSTM ``norm_c`` (n,): ``||dh_T/dc_{T-d}||_F / sqrt(H)``.
    """
    import lstm_numba as ln
    from ..cells import spec

    if forget_bias and cell != "lstm":
        raise ValueError(f"forget_bias is for the lstm only; got cell={cell!r}, "
                         f"forget_bias={forget_bias}")
    for name, val in (("hidden", hidden), ("seq_len", seq_len), ("batch", batch),
                      ("probes", probes)):
        if not isinstance(val, (int, np.integer)) or val < 1:
            raise ValueError(f"{name} must be an int >= 1; got {val!r}")
    i_size = hidden if input_size is None else input_size
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    w = with_forget_bias(ln.init_weights(cell, i_size, hidden, dtype=dtype, seed=seed),
                         forget_bias)
    x = rng.standard_normal((seq_len, batch, i_size)).astype(dtype)
    has_c = spec(cell).has_cell_state

    ds = np.union1d(distances(seq_len, n_distances),
                    [int(d) for d in extra_distances if 1 <= int(d) <= seq_len]).astype(int)
    # The states h_{T-d}, c_{T-d}: one inference pass gives every h_t; c_t (LSTM)
    # is not among the outputs, so it is read from a prefix run at each start.
    outs = ln.forward(cell, x, w, backend=backend).outputs
    zeros = np.zeros((batch, hidden), dtype)
    norm_h = [1.0]
    norm_c = [0.0] if has_c else None    # K = dh_T/dc_T at d = 0 is 0 (h_T is given)
    for d in ds:
        start = seq_len - d
        h0 = outs[start - 1] if start > 0 else zeros
        c0 = None
        if has_c:
            c0 = ln.forward(cell, x[:start], w, backend=backend).c if start > 0 else zeros
        # Tile the batch: each copy of a sample gets its own probe.
        xs = np.ascontiguousarray(np.tile(x[start:], (1, probes, 1)))
        h0t = np.ascontiguousarray(np.tile(h0, (probes, 1)))
        c0t = np.ascontiguousarray(np.tile(c0, (probes, 1))) if has_c else None
        v = unit_probes(rng, batch * probes, hidden, dtype)
        jv, kv = jacobian_vector(cell, xs, w, h0t, c0t, v, backend)
        norm_h.append(frobenius_estimate(jv, hidden) / math.sqrt(hidden))
        if has_c:
            norm_c.append(frobenius_estimate(kv, hidden) / math.sqrt(hidden))
    return FlowResult(label or (cell if not forget_bias else f"{cell}+fb{forget_bias:g}"),
                      cell, forget_bias, hidden, seq_len,
                      np.concatenate([[0], ds]), np.array(norm_h),
                      None if norm_c is None else np.array(norm_c))


def run_all(hidden: int = 64, seq_len: int = 1000, batch: int = 8, backend: str = "numba",
            variants=VARIANTS, **kw) -> list[FlowResult]:
    """:func:`gradient_flow` for every (label, cell, forget bias) in ``variants``."""
    return [gradient_flow(cell, hidden, seq_len, batch, forget_bias=fb, backend=backend,
                          label=label, **kw) for label, cell, fb in variants]


def format_table(results) -> str:
    """Per curve: the horizon and the relative norm at a few distances."""
    lines = [f"{'curve':10} {'horizon':>9}   relative ||dh_T/dh_(T-d)||_F at d = ..."]
    for r in results:
        hz = "> T" if math.isinf(r.horizon) else f"{r.horizon:.0f}"
        pts = "  ".join(f"{int(d)}:{n:.1e}" for d, n in zip(r.distances[1::3], r.norm_h[1::3]))
        lines.append(f"{r.label:10} {hz:>9}   {pts}")
        if r.norm_c is not None:
            ptc = "  ".join(f"{int(d)}:{n:.1e}"
                            for d, n in zip(r.distances[1::3], r.norm_c[1::3]))
            lines.append(f"{'  c path':10} {'':>9}   {ptc}   (||dh_T/dc_(T-d)||_F / sqrt(H))")
    return "\n".join(lines)


def plot(results, path, title: str | None = None) -> None:
    """Relative norm vs distance, log y (and the horizon threshold dashed)."""
    colours = {**CELL_COLOURS, "lstm+fb1": "tab:cyan"}
    r0 = results[0]
    with saved_plot(path, title or f"Gradient flow, H={r0.hidden}, T={r0.seq_len}, "
                                   "PyTorch default init") as ax:
        for r in results:
            col = colours.get(r.label)
            d, n = r.distances[1:], np.maximum(r.norm_h[1:], 1e-300)
            hz = "> T" if math.isinf(r.horizon) else f"{r.horizon:.0f}"
            ax.plot(d, n, "o-", color=col, ms=3, label=f"{r.label}: dh_T/dh_t (horizon {hz})")
            if r.norm_c is not None:
                ax.plot(d, np.maximum(r.norm_c[1:], 1e-300), "--", color=col, lw=1,
                        label=f"{r.label}: dh_T/dc_t")
        ax.axhline(HORIZON_THRESHOLD, color="grey", ls=":", lw=1)
        ax.text(1, HORIZON_THRESHOLD * 1.5, "horizon threshold 1e-3", color="grey", fontsize=8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        lo = min(float(np.min(r.norm_h[1:][r.norm_h[1:] > 0], initial=1e-3)) for r in results)
        ax.set_ylim(max(lo / 3, 1e-30), 3)
        ax.set_xlabel("distance d = T - t (steps)")
        ax.set_ylabel("||dh_T/dh_t||_F / sqrt(H)")
        ax.legend(fontsize=7, loc="lower left")


def main(argv=None) -> int:
    """``python -m lstm_numba gradient-flow``: print the horizons, optionally plot."""
    import argparse
    import sys

    from ..cells import CELLS

    ap = argparse.ArgumentParser(
        prog="python -m lstm_numba gradient-flow",
        description="Relative ||dh_T/dh_(T-d)||_F vs the distance d (PyTorch's default "
                    "init, x ~ N(0,1), I = H), from the project's backward; prints the "
                    "gradient horizon (relative norm < 1e-3). --cell all draws rnn, lstm, "
                    "lstm with forget bias, gru.")
    ap.add_argument("--cell", choices=CELLS + ("all",), default="all")
    ap.add_argument("--hidden", type=int, default=64, help="H (default 64)")
    ap.add_argument("--seq-len", type=int, default=1000, help="T (default 1000)")
    ap.add_argument("--batch", type=int, default=8, help="samples averaged over (default 8)")
    ap.add_argument("--probes", type=int, default=4, help="unit vectors per sample (default 4)")
    ap.add_argument("--backend", default="numba", help="training backend (default numba)")
    ap.add_argument("--forget-bias", type=float, default=1.0,
                    help="LSTM: also run with this added to b_ih[H:2H] (default 1.0; 0: skip)")
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                    help="float32 (default: the kernels the suite compiles anyway); float64 "
                         "resolves norms below ~1e-38")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plot", default=None, help="write the log-norm plot here (PNG)")
    a = ap.parse_args(argv)
    variants = [v for v in VARIANTS if a.cell in ("all", v[1]) and v[2] == 0.0]
    if a.forget_bias and a.cell in ("all", "lstm"):
        i = next(j for j, v in enumerate(variants) if v[1] == "lstm") + 1
        variants.insert(i, (f"lstm+fb{a.forget_bias:g}", "lstm", a.forget_bias))
    try:
        res = run_all(a.hidden, a.seq_len, a.batch, a.backend, variants, probes=a.probes,
                      dtype=np.dtype(a.dtype), seed=a.seed)
    except (ValueError, TypeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"gradient flow: H={a.hidden} T={a.seq_len} B={a.batch} probes={a.probes} "
          f"backend={a.backend} {a.dtype}; forget bias added to b_ih[H:2H]")
    print(format_table(res))
    if a.plot:
        plot(res, a.plot)
        print(f"plot: {a.plot}")
    return 0
