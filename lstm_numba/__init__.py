"""lstm-numba: what recurrent cells cost, measured.

>>> import numpy as np, lstm_numba as ln
>>> w = ln.init_weights("lstm", input_size=8, hidden_size=16, seed=0)
>>> x = np.random.default_rng(0).standard_normal((5, 3, 8)).astype(np.float32)
>>> res = ln.forward("lstm", x, w, backend="numpy")
>>> res.outputs.shape, res.h.shape, res.c.shape
((5, 3, 16), (3, 16), (3, 16))
"""
from .api import ForwardResult, forward
from .backends import BACKEND_NAMES, BackendUnavailable, backends, why_unavailable
from .cells import CELLS, PARALLEL_CELLS, Weights, flops, flops_per_step, init_weights
from .layer import Layer
from .machine import cpu_info, describe_cpu
from .threads import get_num_threads, num_threads, set_num_threads
from .training import Gradients, TrainForward, backward

__version__ = "0.1.0"


def from_torch(module):
    """``(cell, Weights)`` read from a single-layer ``torch.nn.RNN/LSTM/GRU``."""
    from .peers import from_torch as _f
    return _f(module)


def to_torch(cell, weights, device="cpu"):
    """A ``torch.nn.RNN/LSTM/GRU`` (single layer, time-major) holding ``weights``."""
    from .peers import to_torch as _f
    return _f(cell, weights, device)


__all__ = [
    "CELLS", "PARALLEL_CELLS", "BACKEND_NAMES", "BackendUnavailable", "ForwardResult", "Layer",
    "Weights",
    "backends", "why_unavailable", "cpu_info", "describe_cpu", "flops", "flops_per_step", "forward",
    "from_torch", "to_torch", "init_weights", "get_num_threads",
    "num_threads", "set_num_threads",
    "backward", "Gradients", "TrainForward",
]
