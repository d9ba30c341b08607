"""Argument checks run before any kernel launch.

Numba and CUDA kernels do no bounds checks, so a wrong shape that reached them
would read or write out of bounds. Every public entry point runs these checks
first; each error names the argument, what it got and what was expected.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

# The two lowest-level checks live in _checks (cells uses them too); re-exported here.
from ._checks import DTYPES, check_dtype, check_size  # noqa: F401
from .cells import CellSpec, Weights, input_only_weights, spec


_F32, _F64 = DTYPES


def _array(name: str, a, ndim: int, expected: str) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray of shape {expected}; "
                        f"got {type(a).__name__}")
    if a.ndim != ndim:
        raise ValueError(f"{name} must have shape {expected} ({ndim}-D); "
                         f"got shape {a.shape} ({a.ndim}-D)")
    dt = a.dtype
    # ``is`` first: NumPy's native float32/float64 dtypes are single objects,
    # and every forward call checks five to seven arrays here.
    if dt is not _F32 and dt is not _F64 and dt not in DTYPES:
        raise TypeError(f"{name} must be float32 or float64; got dtype {dt}")
    return a


def _expect_shape(name: str, a: np.ndarray, shape: tuple, expected: str) -> None:
    if a.shape != shape:
        raise ValueError(f"{name} has shape {a.shape}; expected {expected} = {shape}")


def _contiguous(a: np.ndarray) -> np.ndarray:
    # Kernels index raw memory as C order: copy anything else rather than misread
    # it. (np.ascontiguousarray would return a C-contiguous but misaligned array
    # as it is; np.array copies it to an aligned one.)
    f = a.flags
    return a if f.c_contiguous and f.aligned else np.array(a, order="C")


class Prepared(NamedTuple):
    """Validated, C-contiguous arguments of one forward call."""

    spec: CellSpec
    x: np.ndarray            # (T, B, I)
    weights: Weights         # PyTorch layout, same dtype as x
    h0: np.ndarray           # (B, H), zeros when not given
    c0: np.ndarray | None    # (B, H) for the LSTM, else None

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(T, B, I, H)."""
        t, b, i = self.x.shape
        return t, b, i, self.weights.hidden_size


def check_weights(cell: str, weights) -> Weights:
    """Check a :class:`Weights` (or 4-tuple) against ``cell``'s layout."""
    s = spec(cell)
    if not s.recurrent_weights:     # minGRU, minLSTM, attention: w_hh, b_hh None
        return check_input_only_weights(cell, weights)
    if not isinstance(weights, tuple) or len(weights) != 4:
        raise TypeError("weights must be lstm_numba.Weights(w_ih, w_hh, b_ih, b_hh); "
                        f"got {type(weights).__name__}")
    w_ih, w_hh, b_ih, b_hh = weights
    g = s.n_gates
    _array("weights.w_hh", w_hh, 2, f"({g}*H, H)")
    h = w_hh.shape[1]
    if h < 1:
        raise ValueError(f"weights.w_hh has shape {w_hh.shape}: hidden size H must be >= 1")
    gh = g * h
    _expect_shape("weights.w_hh", w_hh, (gh, h), f"({g}*H, H) for a {cell} with H={h}")
    _array("weights.w_ih", w_ih, 2, f"({g}*H, I)")
    if w_ih.shape[0] != gh or w_ih.shape[1] < 1:
        raise ValueError(f"weights.w_ih has shape {w_ih.shape}; expected ({g}*H, I) = "
                         f"({gh}, I >= 1) for a {cell} with H={h}")
    _array("weights.b_ih", b_ih, 1, f"({g}*H,)")
    _expect_shape("weights.b_ih", b_ih, (gh,), f"({g}*H,)")
    _array("weights.b_hh", b_hh, 1, f"({g}*H,)")
    _expect_shape("weights.b_hh", b_hh, (gh,), f"({g}*H,)")
    dt = w_ih.dtype
    if not (w_hh.dtype is dt and b_ih.dtype is dt and b_hh.dtype is dt):
        for name, a in zip(Weights._fields, weights):
            if a.dtype != dt:
                raise TypeError(f"weights.{name} has dtype {a.dtype} but weights.w_ih "
                                f"has {dt}: all weights must share one dtype")
    c_ih, c_hh, cb_ih, cb_hh = (_contiguous(w_ih), _contiguous(w_hh), _contiguous(b_ih),
                                _contiguous(b_hh))
    if (type(weights) is Weights and c_ih is w_ih and c_hh is w_hh and cb_ih is b_ih
            and cb_hh is b_hh):
        return weights                  # nothing copied: the caller's tuple as it is
    return Weights(c_ih, c_hh, cb_ih, cb_hh)


def _check_x(x, w: Weights) -> np.ndarray:
    """``x (T, B, I)`` checked against the weights' I and dtype; C-contiguous."""
    x = _array("x", x, 3, "(T, B, I)")
    t, b, i = x.shape
    if t == 0 or b == 0:
        raise ValueError(f"x has shape {x.shape}: sequence length T and batch B "
                         "must be >= 1 (an empty sequence or batch has no output)")
    if i != w.input_size:
        raise ValueError(f"x has shape {x.shape} (T, B, I) with I={i}, but weights.w_ih "
                         f"has shape {w.w_ih.shape} (G*H, I) with I={w.input_size}")
    if x.dtype is not w.w_ih.dtype and x.dtype != w.w_ih.dtype:
        raise TypeError(f"x has dtype {x.dtype} but the weights are {w.dtype}: "
                        "convert one (e.g. weights.astype(x.dtype))")
    return _contiguous(x)


def _state(name: str, a, x: np.ndarray, w: Weights) -> np.ndarray:
    """An initial state ``(B, H)`` checked against x and the weights; zeros if None."""
    b, h = x.shape[1], w.hidden_size
    if a is None:
        return np.zeros((b, h), dtype=x.dtype)
    a = _array(name, a, 2, "(B, H)")
    _expect_shape(name, a, (b, h), "(B, H)")
    if a.dtype is not x.dtype and a.dtype != x.dtype:
        raise TypeError(f"{name} has dtype {a.dtype} but x is {x.dtype}")
    return _contiguous(a)


def prepare(cell: str, x, weights, h0=None, c0=None) -> Prepared:
    """Validate the arguments of :func:`lstm_numba.forward` and normalise them.

    Returns C-contiguous arrays, with ``h0`` (and for the LSTM ``c0``) filled
    with zeros when not given. Raises ValueError/TypeError naming the argument.
    """
    s = spec(cell)
    if not s.recurrent_weights:     # minGRU, minLSTM, attention: own rules for h0, c0
        return prepare_parallel(cell, x, weights, h0, c0)
    if type(weights) is Weights and _weights_fit(s.n_gates, *weights):
        p = _inputs_fit(s, x, weights, h0, c0)
        if p is not None:
            return p
    return _prepare_checked(s, x, check_weights(cell, weights), h0, c0)


def prepare_inputs(cell: str, x, weights: Weights, h0=None, c0=None) -> Prepared:
    """:func:`prepare` for weights already checked by :func:`check_weights`.

    For runners that check (and copy or pack) their weights once: only
    ``x``, ``h0`` and ``c0`` are checked, with the same errors as
    :func:`prepare`.
    """
    s = spec(cell)
    if not s.recurrent_weights:
        return prepare_parallel(cell, x, weights, h0, c0)
    p = _inputs_fit(s, x, weights, h0, c0)
    return p if p is not None else _prepare_checked(s, x, weights, h0, c0)


# The fast path of prepare: the same conditions as the checks above, tested
# with identity and tuple comparisons only (no message built, no copy made).
# Anything it does not accept -- a wrong argument, but also a subclass of
# ndarray, a non-contiguous array, a dtype equal to float32 but not NumPy's
# own object -- goes through the checks above, which accept or explain it.


def _c_array(a, dt) -> bool:
    if type(a) is not np.ndarray or a.dtype is not dt:
        return False
    f = a.flags
    return f.c_contiguous and f.aligned


def _weights_fit(g: int, w_ih, w_hh, b_ih, b_hh) -> bool:
    dt = w_ih.dtype if type(w_ih) is np.ndarray else None
    if (dt is not _F32 and dt is not _F64) or not (
            _c_array(w_ih, dt) and _c_array(w_hh, dt) and _c_array(b_ih, dt)
            and _c_array(b_hh, dt)):
        return False
    sh = w_hh.shape
    if len(sh) != 2:
        return False
    gh = g * sh[1]
    si = w_ih.shape
    return (sh[1] >= 1 and sh[0] == gh and len(si) == 2 and si[0] == gh and si[1] >= 1
            and b_ih.shape == (gh,) and b_hh.shape == (gh,))


def _inputs_fit(s: CellSpec, x, w: Weights, h0, c0) -> Prepared | None:
    dt = w.w_ih.dtype
    if not _c_array(x, dt):
        return None
    sx = x.shape
    if len(sx) != 3 or sx[0] < 1 or sx[1] < 1 or sx[2] != w.w_ih.shape[1]:
        return None
    state = (sx[1], w.w_hh.shape[1])
    if h0 is None:
        h0 = np.zeros(state, dtype=dt)
    elif not (_c_array(h0, dt) and h0.shape == state):
        return None
    if s.has_cell_state:
        if c0 is None:
            c0 = np.zeros(state, dtype=dt)
        elif not (_c_array(c0, dt) and c0.shape == state):
            return None
    elif c0 is not None:
        return None
    return Prepared(s, x, w, h0, c0)


def _prepare_checked(s: CellSpec, x, w: Weights, h0, c0) -> Prepared:
    """The checks of :func:`prepare` on checked weights ``w``, with their messages."""
    cell = s.name
    x = _check_x(x, w)
    h0 = _state("h0", h0, x, w)
    if s.has_cell_state:
        c0 = _state("c0", c0, x, w)
    elif c0 is not None:
        raise ValueError(f"c0 was given, but a {cell} has no cell state (only the lstm does)")
    return Prepared(s, x, w, h0, c0)


# ------------------------------------------- parallel-in-time cells (issue 12)


def check_input_only_weights(cell: str, weights) -> Weights:
    """Check ``Weights(w_ih (G*H, I), None, b_ih (G*H,), None)`` of a parallel cell."""
    s = spec(cell)
    g = s.n_gates
    if not isinstance(weights, tuple) or len(weights) != 4:
        raise TypeError("weights must be lstm_numba.Weights(w_ih, None, b_ih, None); "
                        f"got {type(weights).__name__}")
    w_ih, w_hh, b_ih, b_hh = weights
    for name, a in (("w_hh", w_hh), ("b_hh", b_hh)):
        if a is not None:
            raise ValueError(f"weights.{name} must be None for a {cell} (it has no "
                             f"recurrent weights); got {type(a).__name__} of shape "
                             f"{getattr(a, 'shape', '?')}")
    _array("weights.w_ih", w_ih, 2, f"({g}*H, I)")
    rows, n_in = w_ih.shape
    if rows < g or rows % g or n_in < 1:
        raise ValueError(f"weights.w_ih has shape {w_ih.shape}; expected ({g}*H, I) "
                         f"with H, I >= 1 for a {cell} (gates {s.gates})")
    _array("weights.b_ih", b_ih, 1, f"({g}*H,)")
    _expect_shape("weights.b_ih", b_ih, (rows,), f"({g}*H,)")
    if b_ih.dtype != w_ih.dtype:
        raise TypeError(f"weights.b_ih has dtype {b_ih.dtype} but weights.w_ih has "
                        f"{w_ih.dtype}: all weights must share one dtype")
    return input_only_weights(g, _contiguous(w_ih), None, _contiguous(b_ih), None)


def prepare_parallel(cell: str, x, weights, h0=None, c0=None) -> Prepared:
    """:func:`prepare` for a parallel cell (minGRU, minLSTM, attention).

    ``h0`` defaults to zeros for the min cells and must be None for
    attention; ``c0`` must be None (no cell state). ``Prepared.h0`` is None
    for attention.
    """
    s = spec(cell)
    w = check_input_only_weights(cell, weights)
    x = _check_x(x, w)
    if c0 is not None:
        raise ValueError(f"c0 was given, but a {cell} has no cell state (only the lstm does)")
    if cell == "attention":
        if h0 is not None:
            raise ValueError("h0 was given, but attention has no initial state: "
                             "h0 must be None for cell 'attention'")
        return Prepared(s, x, w, None, None)
    return Prepared(s, x, w, _state("h0", h0, x, w), None)
