"""The registry of backends: one vocabulary of names for the API, the tests,
the benchmarks, the plots and the README.

Names never change meaning; a new variant gets a new name. Each backend lives
in a module imported only when first used, so ``import lstm_numba`` needs
neither torch nor a GPU, and the ``numpy`` oracle never imports Numba.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from ._checks import lookup


#: The module that dispatches the parallel-in-time cells (minGRU, minLSTM,
#: attention) to each backend's kernels (its SUPPORT table).
PARALLEL_DISPATCH = ".parallel_cells"


class BackendUnavailable(RuntimeError):
    """The backend exists but cannot run here; the message says why."""


@dataclass(frozen=True)
class Backend:
    """One entry of the registry.

    ``module.function(prepared) -> (outputs, h, c)`` runs a validated
    :class:`~lstm_numba.validation.Prepared`; ``module.unavailable(name)``
    returns None when it can run here, else the reason as a sentence.
    """

    name: str
    module: str
    function: str
    device: str          # "cpu" or "gpu"
    kind: str            # "oracle", "baseline", "project" or "peer"
    summary: str
    colour: str          # one colour per backend in every plot
    marker: str          # matplotlib marker, likewise
    # Module (relative to the package) with ``forward_train(p, checkpoint, name)``
    # and ``backward_train(tape, grad_outputs, grad_h, grad_c)``; None: this
    # backend does not train (see lstm_numba.training).
    train_module: str | None = None

    def _module(self):
        mod = _MODULES.get(self.module)
        if mod is not None:         # ln.forward asks on every call: skip importlib
            return mod
        try:
            mod = importlib.import_module(self.module, __package__)
        except ImportError as e:  # a missing optional dependency
            raise BackendUnavailable(f"backend {self.name!r} cannot be imported: {e}") from e
        _MODULES[self.module] = mod
        return mod

    def unavailable(self) -> str | None:
        """None if the backend can run here, else why not."""
        try:
            mod = self._module()
        except BackendUnavailable as e:
            return str(e)
        check = getattr(mod, "unavailable", None)
        return check(self.name) if check else None

    def load(self) -> Callable:
        """The forward function; BackendUnavailable (with the reason) if it cannot run.

        Asked again on every call (a backend's ``unavailable`` may change its
        answer, e.g. a GPU taken away); only the module import is remembered.
        """
        reason = self.unavailable()
        if reason:
            raise BackendUnavailable(f"backend {self.name!r} is unavailable: {reason}")
        return getattr(self._module(), self.function)

    def runner(self, cell: str, weights):
        """A callable ``run(x, h0=None, c0=None) -> (outputs, h, c)`` for repeated calls.

        Backends whose set-up is costly (building a torch module, uploading
        weights to a GPU) do it once here, through their module's
        ``make_runner(name, cell, weights)``, so a timing loop measures the
        forward pass only. Arguments are validated on every call.
        """
        from .cells import spec
        from .validation import check_weights, prepare, prepare_inputs

        if not spec(cell).recurrent_weights:     # minGRU, minLSTM, attention
            # Their kernels are registered per backend in parallel_cells.SUPPORT;
            # like every backend module, it is imported by name on first use
            # (it imports this registry, so a static import would be a cycle).
            dispatch = importlib.import_module(PARALLEL_DISPATCH, __package__)
            return dispatch.runner(self.name, cell, weights)
        fn = self.load()
        weights = check_weights(cell, weights)
        make = getattr(self._module(), "make_runner", None)
        if make is not None:
            inner = make(self.name, cell, weights)

            def run(x, h0=None, c0=None):
                # The weights were checked above and the runner holds what it
                # made of them (packed panels, a module, device copies): only
                # the inputs are checked per call.
                p = prepare_inputs(cell, x, weights, h0, c0)
                return inner(p.x, p.h0, p.c0)
        else:
            def run(x, h0=None, c0=None):
                return fn(prepare(cell, x, weights, h0, c0))
        run.backend = self.name
        return run


#: Backend modules imported so far, by relative name (see Backend._module).
_MODULES: dict = {}

# Registry order is the order of every table and plot legend.
REGISTRY: dict[str, Backend] = {b.name: b for b in (
    Backend("numpy", ".reference", "forward_numpy", "cpu", "oracle",
            "batched NumPy oracle, textbook equations", "#7f7f7f", "s",
            train_module=".reference_train"),
    Backend("numpy-seed", ".reference", "forward_seed", "cpu", "baseline",
            "the notes' from-scratch LSTM: per sample, column vectors, a matrix per gate",
            "#8c564b", "v"),
    Backend("numba", ".cpu", "forward_numba", "cpu", "project",
            "serial @njit kernels, whole time loop compiled", "#1f77b4", "o",
            train_module=".cpu_train"),
    Backend("numba-parallel", ".cpu", "forward_numba_parallel", "cpu", "project",
            "@njit(parallel=True) kernels, prange over hidden units / batch",
            "#17becf", "D", train_module=".cpu_train"),
    Backend("cuda", ".gpu", "forward_cuda", "gpu", "project",
            "numba.cuda: one launch per step, input projection hoisted", "#2ca02c", "^"),
    Backend("cuda-persistent", ".gpu", "forward_cuda_persistent", "gpu", "project",
            "numba.cuda: one cooperative launch per sequence, w_hh on chip",
            "#9acd32", "P"),
    Backend("torch", ".peers", "forward_torch", "cpu", "peer",
            "torch.nn.RNN/LSTM/GRU on the CPU (oneDNN for the LSTM)", "#d62728", "X",
            train_module=".peers_train"),
    Backend("torch-cuda", ".peers", "forward_torch_cuda", "gpu", "peer",
            "torch.nn.RNN/LSTM/GRU on the GPU (cuDNN)", "#ff7f0e", "*"),
)}

BACKEND_NAMES = tuple(REGISTRY)


def get(name: str) -> Backend:
    """The registry entry for ``name``; ValueError listing the valid names."""
    return lookup("backend", name, REGISTRY, str(BACKEND_NAMES))


def backends(device: str | None = None) -> list[str]:
    """Names of the backends usable on this machine, in registry order.

    Parameters
    ----------
    device : {"cpu", "gpu"} or None
        Only backends running on that device; None for all.
    """
    return [n for n, b in REGISTRY.items()
            if (device is None or b.device == device) and b.unavailable() is None]


def why_unavailable() -> dict[str, str]:
    """``{name: reason}`` for every registered backend that cannot run here."""
    out = {}
    for n, b in REGISTRY.items():
        reason = b.unavailable()
        if reason:
            out[n] = reason
    return out
