"""PyTorch peers (optional: ``pip install lstm-numba[peers]``).

``torch`` and ``torch-cuda`` run ``torch.nn.RNN/LSTM/GRU`` with the very same
weights under ``torch.inference_mode()``. PyTorch's layout and gate order are
the project's, so weights copy across unchanged in both directions; that also
makes PyTorch an independent oracle for the tests.
"""
from __future__ import annotations

import numpy as np

from .cells import CELLS, Weights, spec
from .threads import get_num_threads

try:
    import torch
except ImportError as _e:  # optional dependency
    torch = None
    _IMPORT_ERROR = str(_e)

def unavailable(name: str) -> str | None:
    if torch is None:
        return ("torch is not installed (pip install 'lstm-numba[peers]', "
                f"which pins torch==2.13.0): {_IMPORT_ERROR}")
    if name == "torch-cuda" and not torch.cuda.is_available():
        return "torch sees no CUDA GPU (torch.cuda.is_available() is False)"
    return None


def _require_torch():
    if torch is None:
        raise ImportError(unavailable("torch"))


def to_torch(cell: str, weights: Weights, device: str = "cpu"):
    """A single-layer, time-major ``torch.nn.RNN/LSTM/GRU`` holding ``weights``.

    Parameters
    ----------
    cell : {"rnn", "lstm", "gru"}
    weights : Weights
        ``w_ih (G*H, I)``, ``w_hh (G*H, H)``, ``b_ih (G*H,)``, ``b_hh (G*H,)``.
    device : str
        A torch device string.

    Returns
    -------
    torch.nn.Module
        In eval mode, dtype that of the weights, ``batch_first=False``.
    """
    from .validation import check_weights

    _require_torch()
    module = spec(cell).torch_module
    if module is None:
        raise ValueError(f"cell {cell!r} has no torch.nn counterpart")
    w = check_weights(cell, weights)
    dtype = torch.float64 if w.dtype == np.float64 else torch.float32
    kwargs = {"nonlinearity": "tanh"} if cell == "rnn" else {}
    m = getattr(torch.nn, module)(w.input_size, w.hidden_size, num_layers=1,
                                  bias=True, batch_first=False, **kwargs)
    m = m.to(device=device, dtype=dtype).eval()
    with torch.no_grad():
        for name, a in zip(Weights._fields, w):
            getattr(m, f"weight_{name[2:]}_l0" if name.startswith("w_") else
                    f"bias_{name[2:]}_l0").copy_(torch.from_numpy(a))
    return m


def from_torch(module) -> tuple[str, Weights]:
    """Read the weights of a single-layer ``torch.nn.RNN/LSTM/GRU``.

    Returns
    -------
    (cell, Weights)
        The cell name and NumPy copies in the module's dtype.

    Raises
    ------
    ValueError
        Several layers, bidirectional, no bias, a projection (``proj_size``),
        or an RNN with a ReLU nonlinearity: none of these is modelled here.
    """
    _require_torch()
    # torch.nn class -> cell name, from each cell's spec (the recurrent cells all have one)
    kinds = {getattr(torch.nn, spec(c).torch_module): c for c in CELLS}
    cell = kinds.get(type(module))
    if cell is None:
        raise TypeError("module must be a torch.nn.RNN, LSTM or GRU; "
                        f"got {type(module).__name__}")
    problems = []
    if module.num_layers != 1:
        problems.append(f"num_layers={module.num_layers} (need 1)")
    if module.bidirectional:
        problems.append("bidirectional=True (need False)")
    if not module.bias:
        problems.append("bias=False (need True)")
    if getattr(module, "proj_size", 0):
        problems.append(f"proj_size={module.proj_size} (need 0)")
    if cell == "rnn" and module.nonlinearity != "tanh":
        problems.append(f"nonlinearity={module.nonlinearity!r} (need 'tanh')")
    if problems:
        raise ValueError("cannot load this module: " + ", ".join(problems))
    arrays = [getattr(module, n).detach().cpu().numpy().copy()
              for n in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")]
    return cell, Weights(*(np.ascontiguousarray(a) for a in arrays))


class TorchRunner:
    """A torch module built once for repeated timed calls (benchmarks use this).

    ``runner(x, h0, c0)`` takes NumPy arrays and returns NumPy arrays; the
    module and the device copies of the weights are made in ``__init__`` so a
    timing loop measures the forward pass only.
    """

    def __init__(self, cell: str, weights: Weights, device: str = "cpu"):
        _require_torch()
        if torch.get_num_threads() != get_num_threads():
            torch.set_num_threads(get_num_threads())
        self.cell = cell
        self.device = device
        self.module = to_torch(cell, weights, device)

    def __call__(self, x, h0, c0=None):
        dev = self.device
        with torch.inference_mode():
            xt = torch.from_numpy(x).to(dev)
            h0t = torch.from_numpy(h0).to(dev)[None]
            if self.cell == "lstm":
                out, (h, c) = self.module(xt, (h0t, torch.from_numpy(c0).to(dev)[None]))
            else:
                out, h = self.module(xt, h0t)
                c = None
            if dev != "cpu":
                torch.cuda.synchronize()
            return (out.cpu().numpy(), h[0].cpu().numpy(),
                    None if c is None else c[0].cpu().numpy())


def make_runner(name: str, cell: str, weights: Weights) -> TorchRunner:
    """A :class:`TorchRunner` for backend ``name`` (``torch`` or ``torch-cuda``)."""
    return TorchRunner(cell, weights, "cuda" if name == "torch-cuda" else "cpu")


def _forward(p, device):
    return TorchRunner(p.spec.name, p.weights, device)(p.x, p.h0, p.c0)


def forward_torch(p):
    """Backend ``torch``: ``(outputs (T,B,H), h (B,H), c (B,H) or None)``."""
    return _forward(p, "cpu")


def forward_torch_cuda(p):
    """Backend ``torch-cuda``: the same on the GPU (cuDNN), copied back."""
    return _forward(p, "cuda")
