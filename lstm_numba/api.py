"""The public forward pass: validate, dispatch to a backend, wrap the result."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

# Not ``from . import backends``: the package re-exports the function
# ``backends()`` under that name, shadowing the module.
from .backends import get as get_backend
from .cells import PARALLEL_CELLS
from .validation import prepare


class ForwardResult(NamedTuple):
    """What :func:`forward` returns.

    outputs : (T, B, H) hidden state after every step
    h : (B, H) last hidden state
    c : (B, H) last cell state for the LSTM, else None
    """

    outputs: np.ndarray
    h: np.ndarray
    c: np.ndarray | None


def forward(cell, x, weights, h0=None, c0=None, backend="numba", train=False,
            checkpoint=None):
    """Run one recurrent layer over a sequence.

    Parameters
    ----------
    cell : {"rnn", "lstm", "gru"} or one of :data:`lstm_numba.PARALLEL_CELLS`
        ("mingru", "minlstm", "attention": weights ``Weights(w_ih, None,
        b_ih, None)``, no c0, no h0 for attention, inference only; see
        :mod:`lstm_numba.parallel_cells`).
    x : ndarray, shape (T, B, I)
        Time-major input, float32 or float64 (the weights' dtype). A
        non-contiguous array is copied, never misread.
    weights : Weights
        ``w_ih (G*H, I)``, ``w_hh (G*H, H)``, ``b_ih (G*H,)``, ``b_hh (G*H,)``
        in PyTorch's layout and gate order.
    h0 : ndarray, shape (B, H), optional
        Initial hidden state; zeros when None.
    c0 : ndarray, shape (B, H), optional
        Initial cell state, LSTM only; zeros when None.
    backend : str
        A name from :data:`lstm_numba.BACKEND_NAMES`; see :func:`backends`.
    train : bool
        Keep a tape for :func:`lstm_numba.backward` (backends numpy, numba,
        numba-parallel, torch); see :mod:`lstm_numba.training`.
    checkpoint : None, int >= 1 or "sqrt"
        With ``train=True`` only: keep the state every k steps and recompute
        the rest in the backward ("sqrt": k = ceil(sqrt(T))); None keeps all.

    Returns
    -------
    ForwardResult
        ``outputs (T, B, H)``, ``h (B, H)``, ``c (B, H)`` or None.
        With ``train=True`` a :class:`~lstm_numba.training.TrainForward`:
        the same three (read-only) and ``tape``.

    Raises
    ------
    ValueError, TypeError
        Unknown cell or backend, or an argument of the wrong rank, size or
        dtype; the message names the argument and the shapes.
    BackendUnavailable
        The backend cannot run here (no GPU, torch not installed).

    See Also
    --------
    Layer : the same call with the backend's set-up done once, for many calls.
        (The Numba backends already reuse packed weights between ``forward``
        calls while the weights' contents are unchanged; see
        :mod:`lstm_numba._packing`.)
    """
    if train and cell in PARALLEL_CELLS:
        from .parallel_cells import reject_training
        reject_training(cell)
    if train:
        from .training import forward_train
        return forward_train(cell, x, weights, h0, c0, backend, checkpoint)
    if checkpoint is not None:
        raise ValueError(f"checkpoint={checkpoint!r} needs train=True (it says what "
                         "the training forward keeps for the backward)")
    entry = get_backend(backend)          # unknown name: ValueError first
    p = prepare(cell, x, weights, h0, c0)   # then the arguments, before any import
    if not p.spec.recurrent_weights:      # minGRU, minLSTM, attention
        from .parallel_cells import load
        return ForwardResult(*load(entry.name, p.spec.name)(p))
    fn = entry.load()
    outputs, h, c = fn(p)
    return ForwardResult(outputs, h, c)
