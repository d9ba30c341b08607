"""Cell specifications: gate count and order, FLOPs per step, weight init.

Every other module takes its facts about a cell from here, so the gate order
and the FLOP convention are written down exactly once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ._checks import check_dtype, check_size

CELLS = ("rnn", "lstm", "gru")


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
    """

    name: str
    gates: tuple[str, ...]
    has_cell_state: bool
    code: int
    torch_module: str | None

    @property
    def n_gates(self) -> int:
        """G: the number of H-row blocks in ``w_ih`` and ``w_hh``."""
        return len(self.gates)


SPECS = {
    # PyTorch's gate order, so a trained torch module loads without reordering.
    "rnn": CellSpec("rnn", ("h",), False, 0, "RNN"),
    "lstm": CellSpec("lstm", ("i", "f", "g", "o"), True, 1, "LSTM"),
    "gru": CellSpec("gru", ("r", "z", "n"), False, 2, "GRU"),
}


#: The integer code of each cell in the compiled kernels (``spec(c).code``).
CELL_CODES = {name: s.code for name, s in SPECS.items()}


def spec(cell: str) -> CellSpec:
    """Return the :class:`CellSpec` of ``cell``; ValueError naming the valid cells."""
    if not isinstance(cell, str):
        raise TypeError(f"cell must be a str, one of {CELLS}; got {type(cell).__name__}")
    try:
        return SPECS[cell]
    except KeyError:
        raise ValueError(f"unknown cell {cell!r}; valid cells are {CELLS}") from None


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
        return int(self.w_hh.shape[1])

    @property
    def input_size(self) -> int:
        return int(self.w_ih.shape[1])

    @property
    def dtype(self) -> np.dtype:
        return self.w_ih.dtype

    def astype(self, dtype) -> "Weights":
        """A copy of every array converted to ``dtype`` (C-contiguous)."""
        return Weights(*(np.ascontiguousarray(a, dtype=dtype) for a in self))


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

    return Weights(draw(gh, input_size), draw(gh, hidden_size), draw(gh), draw(gh))


def flops_per_step(cell: str, batch: int, input_size: int, hidden_size: int) -> int:
    """FLOPs of one time step, DeepBench's convention: ``2*B*G*H*(I+H)``.

    Only the two matrix products count (a multiply-add is 2 FLOPs); the
    elementwise gate math is ignored, as DeepBench and the cuDNN papers do.
    """
    g = spec(cell).n_gates
    return 2 * batch * g * hidden_size * (input_size + hidden_size)


def flops(cell: str, seq_len: int, batch: int, input_size: int, hidden_size: int) -> int:
    """FLOPs of a whole forward pass: ``seq_len * flops_per_step(...)``."""
    return seq_len * flops_per_step(cell, batch, input_size, hidden_size)
