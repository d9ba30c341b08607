"""Training: the forward pass that keeps a tape, and backpropagation through time.

The public side of training (``ln.forward(..., train=True)`` and
``ln.backward``): argument checks, the choice of the training module of a
backend, and the result types. The arithmetic lives in the backends'
training modules, named by ``Backend.train_module`` in the registry:

==================  ==============================  ========================
backend             module                          what it is
==================  ==============================  ========================
numpy               lstm_numba.reference_train      the float64-exact oracle
numba, numba-par.   lstm_numba.cpu_train            the fast Numba kernels
torch               lstm_numba.peers_train          PyTorch autograd, the peer
==================  ==============================  ========================

A training module provides::

    forward_train(p: Prepared, checkpoint: int | None, name: str)
        -> (outputs (T,B,H), h (B,H), c (B,H) or None, tape)
    backward_train(tape, grad_outputs (T,B,H), grad_h (B,H), grad_c (B,H) or None)
        -> (dx, dh0, dc0 or None, dw_ih, dw_hh, db_ih, db_hh)

It receives validated, C-contiguous, writable arrays of the data's dtype
(``grad_h``/``grad_c`` zero-filled, never None where the cell has them), a
``checkpoint`` that is None (keep every step) or an int k >= 1 ("sqrt" is
resolved here to ceil(sqrt(T))), and must not write into its arguments. The
tape is any object with an int ``nbytes`` (the bytes the forward allocated
and kept for the backward; the caller's own x, h0, c0 and weights, which the
tape may reference, are not counted), and it is never changed by
``backward_train``: a second backward gives the same answer.

The gradients are those of ``L = sum(grad_outputs * outputs) + sum(grad_h * h_T)
+ sum(grad_c * c_T)``.
"""
from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np

from ._checks import read_only
from .backends import REGISTRY, BackendUnavailable
from .backends import get as get_backend
from .validation import DTYPES, check_weights, prepare


class TrainingUnsupported(BackendUnavailable, ValueError):
    """The backend exists but has no training path (e.g. the CUDA backends)."""


@runtime_checkable
class Tape(Protocol):
    """What a training forward keeps for the backward (opaque, immutable)."""

    nbytes: int


class Gradients(NamedTuple):
    """What :func:`backward` returns: gradients of L, shaped and typed as the inputs.

    x : (T, B, I); h0 : (B, H); c0 : (B, H) for the LSTM, else None;
    w_ih : (G*H, I); w_hh : (G*H, H); b_ih, b_hh : (G*H,)
    """

    x: np.ndarray
    h0: np.ndarray
    c0: np.ndarray | None
    w_ih: np.ndarray
    w_hh: np.ndarray
    b_ih: np.ndarray
    b_hh: np.ndarray


@dataclass(frozen=True, eq=False)
class TrainForward:
    """What ``forward(..., train=True)`` returns.

    ``outputs (T,B,H)``, ``h (B,H)``, ``c (B,H)`` or None as an inference
    forward (read-only: the tape may share their memory), and ``tape``, what
    :func:`backward` needs (``tape.nbytes``: bytes kept for it). Unpacks as
    ``outputs, h, c = fw`` like :class:`~lstm_numba.api.ForwardResult`.
    """

    outputs: np.ndarray
    h: np.ndarray
    c: np.ndarray | None
    tape: Tape
    cell: str
    backend: str
    shape: tuple[int, int, int, int]     # (T, B, I, H)
    dtype: np.dtype
    checkpoint: int | None               # resolved: None or k >= 1

    def __iter__(self):
        return iter((self.outputs, self.h, self.c))


def training_backends() -> list[str]:
    """Registry names of the backends that have a training path, in registry order."""
    return [n for n, b in REGISTRY.items() if b.train_module is not None]


def check_checkpoint(checkpoint, seq_len: int) -> int | None:
    """None, or the segment length k >= 1 (``"sqrt"``: ceil(sqrt(T))).

    TypeError for a bool, float or other non-integer; ValueError for k < 1
    or a string other than "sqrt".
    """
    if checkpoint is None:
        return None
    if isinstance(checkpoint, str):
        if checkpoint != "sqrt":
            raise ValueError(f"checkpoint must be None, an int >= 1 or 'sqrt'; "
                             f"got {checkpoint!r}")
        return math.isqrt(seq_len - 1) + 1 if seq_len > 1 else 1
    if isinstance(checkpoint, (bool, np.bool_)) or not isinstance(
            checkpoint, (int, np.integer)):
        raise TypeError(f"checkpoint must be None, an int >= 1 or 'sqrt'; got "
                        f"{type(checkpoint).__name__} {checkpoint!r}")
    if checkpoint < 1:
        raise ValueError(f"checkpoint must be an int >= 1 (steps per segment) or "
                         f"'sqrt'; got {int(checkpoint)}")
    return int(checkpoint)


def _train_module(entry):
    """The training module of a registry entry; the reason as an exception if none."""
    if entry.train_module is None:
        raise TrainingUnsupported(
            f"training is not supported on backend {entry.name!r} (it has a forward "
            f"pass only); backends that train: {', '.join(training_backends())}")
    reason = entry.unavailable()
    if reason:
        raise BackendUnavailable(f"backend {entry.name!r} is unavailable: {reason}")
    try:
        return importlib.import_module(entry.train_module, __package__)
    except ImportError as e:
        raise BackendUnavailable(
            f"backend {entry.name!r} cannot train here: its training module "
            f"lstm_numba{entry.train_module} cannot be imported ({e})") from e


def forward_train(cell, x, weights, h0=None, c0=None, backend="numba",
                  checkpoint=None) -> TrainForward:
    """``forward(..., train=True)``: the forward pass that keeps a tape.

    Parameters are those of :func:`lstm_numba.forward`; ``checkpoint`` is
    None (keep every step), an int k >= 1 (keep the state every k steps,
    recompute each segment in the backward: O(T/k + k) states), or "sqrt".
    """
    entry = get_backend(backend)              # unknown name: ValueError first
    if entry.train_module is None:
        _train_module(entry)                  # raises TrainingUnsupported
    p = prepare(cell, x, weights, h0, c0)
    k = check_checkpoint(checkpoint, p.x.shape[0])
    mod = _train_module(entry)
    return _finish(mod.forward_train(p, k, entry.name), p, entry, k)


def _finish(result, p, entry, k) -> TrainForward:
    outputs, h, c, tape = result
    if not isinstance(getattr(tape, "nbytes", None), (int, np.integer)):
        raise TypeError(f"{entry.name}: forward_train returned a tape without an int "
                        "nbytes")  # pragma: no cover - a backend bug
    # Read-only views for the caller: the tape may hold the arrays themselves.
    return TrainForward(read_only(outputs), read_only(h), read_only(c), tape, p.spec.name,
                        entry.name, p.shape, p.x.dtype, k)


def _grad(name: str, a, shape: tuple, expected: str, dtype: np.dtype) -> np.ndarray:
    """Check one incoming gradient; a C-contiguous writable array (zeros if None)."""
    if a is None:
        return np.zeros(shape, dtype=dtype)
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray of shape {expected} = {shape}; "
                        f"got {type(a).__name__}")
    if a.ndim != len(shape):
        raise ValueError(f"{name} must have shape {expected} = {shape} ({len(shape)}-D); "
                         f"got shape {a.shape} ({a.ndim}-D)")
    if a.shape != shape:
        raise ValueError(f"{name} has shape {a.shape}; expected {expected} = {shape}")
    if a.dtype not in DTYPES or a.dtype != dtype:
        raise TypeError(f"{name} has dtype {a.dtype}; expected {dtype}, the dtype of "
                        "the forward pass")
    # Copies keep kernels on one specialisation (writable, C order) and the
    # caller's array (perhaps a read-only fw.outputs) untouched.
    if not (a.flags.c_contiguous and a.flags.aligned and a.flags.writeable):
        a = np.array(a, order="C", copy=True)
    return a


def backward(fw, grad_outputs, grad_h=None, grad_c=None) -> Gradients:
    """Backpropagation through time over the tape of a training forward.

    Parameters
    ----------
    fw : TrainForward
        The result of ``lstm_numba.forward(..., train=True)``.
    grad_outputs : ndarray, shape (T, B, H), or None
        dL/d outputs; None for zeros.
    grad_h : ndarray, shape (B, H), optional
        dL/d h_T (added to ``grad_outputs[-1]``); zeros when None.
    grad_c : ndarray, shape (B, H), optional
        dL/d c_T, LSTM only; zeros when None.

    Returns
    -------
    Gradients
        ``x (T,B,I)``, ``h0 (B,H)``, ``c0 (B,H)`` or None, ``w_ih``, ``w_hh``,
        ``b_ih``, ``b_hh``: the gradients of ``L = sum(grad_outputs*outputs)
        + sum(grad_h*h_T) + sum(grad_c*c_T)``, in the dtype of the forward.
        The tape is not changed: calling again gives the same result.

    Raises
    ------
    TypeError
        ``fw`` is not a training forward (run ``forward`` with ``train=True``),
        or a gradient is not an ndarray of the forward's dtype.
    ValueError
        A gradient of the wrong rank or shape, or ``grad_c`` for a cell
        without a cell state.
    """
    if not isinstance(fw, TrainForward):
        hint = (" (a ForwardResult has no tape: call lstm_numba.forward(..., train=True))"
                if type(fw).__name__ == "ForwardResult" else "")
        raise TypeError("fw must be the result of lstm_numba.forward(..., train=True); "
                        f"got {type(fw).__name__}{hint}")
    t, b, _, h = fw.shape
    go = _grad("grad_outputs", grad_outputs, (t, b, h), "(T, B, H)", fw.dtype)
    gh = _grad("grad_h", grad_h, (b, h), "(B, H)", fw.dtype)
    if fw.c is None:
        if grad_c is not None:
            raise ValueError(f"grad_c was given, but a {fw.cell} has no cell state "
                             "(only the lstm does)")
        gc = None
    else:
        gc = _grad("grad_c", grad_c, (b, h), "(B, H)", fw.dtype)
    mod = _train_module(get_backend(fw.backend))
    return Gradients(*mod.backward_train(fw.tape, go, gh, gc))


def train_runner(backend: str, cell: str, weights, checkpoint=None):
    """A training step ``step(x, h0=None, c0=None, grad_outputs=None, grad_h=None,
    grad_c=None) -> Gradients`` for repeated calls (benchmarks, race).

    The same validation and kernels as ``backward(forward(..., train=True))``;
    a training module may do costly set-up once through
    ``make_train_runner(name, cell, weights)``, returning a callable with the
    signature of its ``forward_train`` (the torch peer builds its module once,
    as a torch user would). ``step.forward(x, h0, c0)`` runs the training
    forward alone (a TrainForward).
    """
    entry = get_backend(backend)
    mod = _train_module(entry)
    weights = check_weights(cell, weights)
    make = getattr(mod, "make_train_runner", None)
    fwd = make(entry.name, cell, weights) if make is not None else mod.forward_train

    def forward(x, h0=None, c0=None):
        p = prepare(cell, x, weights, h0, c0)
        k = check_checkpoint(checkpoint, p.x.shape[0])
        return _finish(fwd(p, k, entry.name), p, entry, k)

    def step(x, h0=None, c0=None, grad_outputs=None, grad_h=None, grad_c=None):
        return backward(forward(x, h0, c0), grad_outputs, grad_h, grad_c)

    step.forward = forward
    step.backend = entry.name
    return step
