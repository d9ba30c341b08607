"""Cell specifications: gate count and order, FLOPs per step, weight init.

Every other module takes its facts about a cell from here, so the gate order
and the FLOP convention are written down exactly once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ._checks import check_dtype, check_size, lookup

CELLS = ("rnn", "lstm", "gru")

#: Cells parallel in time (issue 12): no recurrent weights, so the sequence
#: can be split over threads. minGRU and minLSTM (Feng et al. 2024) have gates
#: from x only and a linear recurrence ``h_t = a_t * h_{t-1} + b_t`` (a parallel
#: scan); attention is causal single-head self-attention. Kernels: parallel_cells.py.
PARALLEL_CELLS = ("mingru", "minlstm", "attention")


@dataclass(frozen=True)
class CellSpec:
    """Static facts about one recurrent cell.

    Attributes
    ----------
    name : str
        One of :data:`CELLS`.
    gates : tuple of str
        Gate names in PyTorch's row order inside ``w_ih``/``w_hh``.
    has_cell_state : bool
        True for the LSTM, whose state is the pair (h, c).
    code : int
        The integer the compiled kernels (CPU and CUDA) branch on.
    torch_module : str or None
        The ``torch.nn`` class that computes the same layer (None if none).
    recurrent_weights : bool
        False for :data:`PARALLEL_CELLS`: only ``w_ih``/``b_ih`` (rows: the
        gates), ``w_hh``/``b_hh`` are None.
    """

    name: str
    gates: tuple[str, ...]
    has_cell_state: bool
    code: int
    torch_module: str | None
    recurrent_weights: bool = True

    @property
    def n_gates(self) -> int:
        """G: the number of H-row blocks in ``w_ih`` and ``w_hh``."""
        return len(self.gates)


SPECS = {
    # PyTorch's gate order, so a trained torch module loads without reordering.
    "rnn": CellSpec("rnn", ("h",), False, 0, "RNN"),
    "lstm": CellSpec("lstm", ("i", "f", "g", "o"), True, 1, "LSTM"),
    "gru": CellSpec("gru", ("r", "z", "n"), False, 2, "GRU"),
    # Rows of w_ih; no w_hh. h_tilde is the candidate state (no activation).
    "mingru": CellSpec("mingru", ("z", "h_tilde"), False, 3, None, False),
    "minlstm": CellSpec("minlstm", ("f", "i", "h_tilde"), False, 4, None, False),
    "attention": CellSpec("attention", ("q", "k", "v"), False, 5, None, False),
}


#: The integer code of each cell in the compiled kernels (``spec(c).code``).
CELL_CODES = {name: s.code for name, s in SPECS.items()}


def spec(cell: str) -> CellSpec:
    """Return the :class:`CellSpec` of ``cell``; ValueError naming the valid cells."""
    return lookup("cell", cell, SPECS, f"{CELLS} or the parallel cells {PARALLEL_CELLS}")


class Weights(NamedTuple):
    """One layer's parameters in PyTorch's layout and names.

    ``w_ih (G*H, I)``, ``w_hh (G*H, H)``, ``b_ih (G*H,)``, ``b_hh (G*H,)`` with
    G = 1 (rnn), 4 (lstm: i, f, g, o), 3 (gru: r, z, n).
    """

    w_ih: np.ndarray
    w_hh: np.ndarray
    b_ih: np.ndarray
    b_hh: np.ndarray

    @property
    def hidden_size(self) -> int:
        if self.w_hh is None:       # a parallel cell: H = rows of w_ih / G
            g = getattr(self, "n_gates", None)
            if g is None:
                raise ValueError("weights have no w_hh, so H depends on the cell "
                                 "(w_ih is (G*H, I)): use lstm_numba.init_weights or "
                                 "validation.check_weights(cell, weights)")
            return int(self.w_ih.shape[0]) // g
        return int(self.w_hh.shape[1])

    @property
    def input_size(self) -> int:
        return int(self.w_ih.shape[1])

    @property
    def dtype(self) -> np.dtype:
        return self.w_ih.dtype

    def astype(self, dtype) -> "Weights":
        """A copy of every array converted to ``dtype`` (C-contiguous)."""
        return type(self)(*(None if a is None else np.ascontiguousarray(a, dtype=dtype)
                            for a in self))


class _InputOnlyWeights(Weights):
    """:class:`Weights` of a parallel cell (``w_hh``, ``b_hh`` None) that knows G.

    A subclass only so that :attr:`Weights.hidden_size` can divide the rows
    of ``w_ih`` by the cell's gate count; it compares, unpacks and prints as
    ``Weights``. Made by :func:`input_only_weights`.
    """

    __slots__ = ()
    n_gates = 0

    def __repr__(self):
        return "Weights" + super().__repr__()[len(type(self).__name__):]

    def __reduce__(self):
        return (input_only_weights, (self.n_gates, *self))


_INPUT_ONLY = {g: type(f"_InputOnlyWeights{g}", (_InputOnlyWeights,),
                       {"__slots__": (), "n_gates": g, "__module__": __name__})
               for g in (2, 3)}


def input_only_weights(n_gates: int, w_ih, w_hh, b_ih, b_hh) -> Weights:
    """``Weights(w_ih, w_hh, b_ih, b_hh)`` of a cell with ``n_gates`` row blocks."""
    return _INPUT_ONLY[n_gates](w_ih, w_hh, b_ih, b_hh)


def init_weights(cell: str, input_size: int, hidden_size: int,
                 dtype=np.float32, seed: int | None = 0) -> Weights:
    """Random weights drawn as PyTorch draws them: U(-1/sqrt(H), 1/sqrt(H)).

    Parameters
    ----------
    cell : {"rnn", "lstm", "gru"}
    input_size, hidden_size : int
        I and H, both >= 1.
    dtype : np.float32 or np.float64
    seed : int or None
        Seed of ``numpy.random.default_rng``; the same seed gives the same
        weights in both dtypes (drawn in float64, then cast).

    Returns
    -------
    Weights
        ``w_ih (G*H, I)``, ``w_hh (G*H, H)``, ``b_ih (G*H,)``, ``b_hh (G*H,)``.
    """
    s = spec(cell)
    check_size("input_size", input_size)
    check_size("hidden_size", hidden_size)
    dtype = check_dtype("dtype", dtype)
    rng = np.random.default_rng(seed)
    k = 1.0 / np.sqrt(hidden_size)
    gh = s.n_gates * hidden_size

    def draw(*shape):
        return np.ascontiguousarray(rng.uniform(-k, k, size=shape).astype(dtype))

    if not s.recurrent_weights:     # parallel cells: Weights(w_ih, None, b_ih, None)
        w_ih = draw(gh, input_size)
        return input_only_weights(s.n_gates, w_ih, None, draw(gh), None)
    return Weights(draw(gh, input_size), draw(gh, hidden_size), draw(gh), draw(gh))


def flops_per_step(cell: str, batch: int, input_size: int, hidden_size: int,
                   seq_len: int | None = None) -> int:
    """FLOPs of one time step, DeepBench's convention: ``2*B*G*H*(I+H)``.

    Only the matrix products count (a multiply-add is 2 FLOPs); the
    elementwise gate math is ignored, as DeepBench and the cuDNN papers do.
    minGRU/minLSTM have only the input product: ``2*B*G*H*I``. Attention's
    step t costs more as t grows, so its figure is the mean over a sequence
    of ``seq_len`` steps (required): ``flops("attention", ...) // seq_len``.
    """
    s = spec(cell)
    g = s.n_gates
    if s.name == "attention":
        if seq_len is None:
            raise ValueError("seq_len is required for attention: the work of a step "
                             "grows with t (see lstm_numba.flops)")
        return flops(cell, seq_len, batch, input_size, hidden_size) // seq_len
    if not s.recurrent_weights:
        return 2 * batch * g * hidden_size * input_size
    return 2 * batch * g * hidden_size * (input_size + hidden_size)


def flops(cell: str, seq_len: int, batch: int, input_size: int, hidden_size: int) -> int:
    """FLOPs of a whole forward pass: ``seq_len * flops_per_step(...)``.

    Attention (causal, single head): the q, k, v projections
    ``2*T*B*3H*I``, plus the scores ``q_t . k_s`` and the weighted sum of
    ``v_s`` over ``s <= t``, ``2*H`` each per pair, over ``T(T+1)/2`` pairs:
    ``2*T*B*3H*I + 2*B*H*T*(T+1)`` (the softmax's exp ignored, like the gates).
    """
    if spec(cell).name == "attention":
        t = seq_len
        return 2 * t * batch * 3 * hidden_size * input_size + 2 * batch * hidden_size * t * (t + 1)
    return seq_len * flops_per_step(cell, batch, input_size, hidden_size)
