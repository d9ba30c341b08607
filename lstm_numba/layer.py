"""A recurrent layer set up once and run many times: :class:`Layer`."""
from __future__ import annotations

import numpy as np

from .api import ForwardResult
from .backends import get as get_backend
from .cells import spec
from .validation import check_weights


class Layer:
    """One recurrent layer whose set-up is done once, for many forward calls.

    ``ln.forward(cell, x, weights, ...)`` redoes the backend's set-up on
    every call (checking the weights and, for the Numba backends, finding
    their packed panels; building a torch module; uploading weights to a
    GPU). A ``Layer`` does it once, at construction; each call then only
    validates its arguments (cheap) and runs the forward pass.

    Parameters
    ----------
    cell : str
        One of :data:`lstm_numba.CELLS` (or :data:`lstm_numba.PARALLEL_CELLS`).
    weights : Weights
        ``w_ih (G*H, I)``, ``w_hh (G*H, H)``, ``b_ih (G*H,)``, ``b_hh (G*H,)``
        in PyTorch's layout and gate order, float32 or float64. The layer
        keeps its own copy: changing these arrays afterwards does not change
        the layer (build a new ``Layer`` for new weights; ``ln.forward``
        always uses the weights as they are at the call).
    backend : str
        A name from :data:`lstm_numba.BACKEND_NAMES` (default ``"numba"``).

    Raises
    ------
    ValueError, TypeError
        Unknown cell or backend, or weights of the wrong rank, size or dtype.
    BackendUnavailable
        The backend cannot run here (no GPU, torch not installed).

    Examples
    --------
    >>> import numpy as np, lstm_numba as ln
    >>> w = ln.init_weights("lstm", input_size=8, hidden_size=16, seed=0)
    >>> layer = ln.Layer("lstm", w, backend="numpy")
    >>> x = np.zeros((5, 3, 8), dtype=np.float32)
    >>> res = layer(x)
    >>> res.outputs.shape, res.h.shape, res.c.shape
    ((5, 3, 16), (3, 16), (3, 16))
    """

    def __init__(self, cell, weights, backend="numba"):
        entry = get_backend(backend)            # unknown name: ValueError first
        spec(cell)                              # unknown cell: ValueError
        checked = check_weights(cell, weights)
        # A private copy, so the user's later in-place changes cannot reach
        # backends that read the weights on every call (numpy, numpy-seed)
        # while others (packed panels, a torch module, GPU copies) would not
        # see them: one meaning for every backend.
        own = type(checked)(*(None if a is None else np.array(a, copy=True, order="C")
                              for a in checked))
        self._cell = cell
        self._backend = backend
        self._weights = own
        self._run = entry.runner(cell, own)

    @property
    def cell(self) -> str:
        """The cell name."""
        return self._cell

    @property
    def backend(self) -> str:
        """The backend name."""
        return self._backend

    @property
    def weights(self):
        """A copy of the layer's weights (changing it does not change the layer)."""
        return type(self._weights)(*(None if a is None else a.copy() for a in self._weights))

    @property
    def input_size(self) -> int:
        """I, the number of input features."""
        return self._weights.input_size

    @property
    def hidden_size(self) -> int:
        """H, the number of hidden units."""
        return self._weights.hidden_size

    @property
    def dtype(self) -> np.dtype:
        """The weights' dtype; inputs must have it."""
        return self._weights.dtype

    def __call__(self, x, h0=None, c0=None) -> ForwardResult:
        """Run the layer over a sequence.

        Parameters
        ----------
        x : ndarray, shape (T, B, I)
            Time-major input of the layer's dtype (non-contiguous arrays are
            copied, never misread).
        h0 : ndarray, shape (B, H), optional
            Initial hidden state; zeros when None.
        c0 : ndarray, shape (B, H), optional
            Initial cell state, LSTM only; zeros when None.

        Returns
        -------
        ForwardResult
            ``outputs (T, B, H)``, ``h (B, H)``, ``c (B, H)`` or None; equal to
            ``ln.forward(cell, x, weights, h0, c0, backend)`` with the
            weights the layer was built with.

        Raises
        ------
        ValueError, TypeError
            An argument of the wrong rank, size or dtype (before any kernel runs).
        """
        outputs, h, c = self._run(x, h0, c0)
        return ForwardResult(outputs, h, c)

    def __repr__(self) -> str:
        return (f"Layer({self._cell!r}, input_size={self.input_size}, "
                f"hidden_size={self.hidden_size}, dtype={self.dtype}, "
                f"backend={self._backend!r})")
