"""The PyTorch training peer (backend ``torch``): ``torch.nn`` and autograd.

The same weights as the other backends (:func:`lstm_numba.peers.to_torch`),
the forward under autograd, the backward by ``torch.autograd.grad`` with the
graph retained (so a second backward gives the same answer, as the contract
asks). Its tape is PyTorch's autograd graph; ``tape.nbytes`` is measured, not
estimated: every tensor autograd saves for the backward passes through a
:func:`torch.autograd.graph.saved_tensors_hooks` pack hook, and the bytes of
the distinct storages behind them are summed, leaving out the storages of the
caller's x, h0, c0 and the weights (the other backends do not count those
either). With ``checkpoint=k`` the forward runs without autograd and keeps
the state every k steps; the backward reruns each segment under autograd
from its state. Which path PyTorch takes (oneDNN's fused LSTM, or one autograd node
per operation per step) is PyTorch's choice; the bytes say what it kept.

:class:`TorchTrainer` builds the module once, for timing loops; the backend
functions build one per call (weights can change between training steps).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .peers import to_torch, torch
from .threads import get_num_threads


def unavailable(name: str) -> str | None:
    from .peers import unavailable as _u
    return _u(name)


@dataclass(frozen=True, eq=False)
class TorchTape:
    """Autograd's graph (through the output tensors) and what it saved."""

    outputs: tuple             # (out, h_T[, c_T]) torch tensors with grad_fn
    inputs: tuple              # (x, h0[, c0], w_ih, w_hh, b_ih, b_hh) leaves
    cell: str
    nbytes: int


def _storage_key_bytes(t) -> tuple:
    try:
        st = t.untyped_storage()
        return st.data_ptr(), st.nbytes()
    except (RuntimeError, NotImplementedError):   # opaque (e.g. oneDNN) tensors
        return id(t), t.numel() * t.element_size()


class TorchTrainer:
    """A torch module with the weights, built once; ``forward`` keeps a TorchTape.

    ``measure_tape=False`` skips the saved-tensor hooks (a timing loop should
    not pay a Python call per saved tensor); ``tape.nbytes`` is then -1.
    """

    def __init__(self, cell: str, weights, measure_tape: bool = True):
        if torch.get_num_threads() != get_num_threads():
            torch.set_num_threads(get_num_threads())
        self.cell = cell
        self.module = to_torch(cell, weights).train()
        for prm in self.module.parameters():
            prm.requires_grad_(True)
        self.params = tuple(getattr(self.module, n) for n in
                            ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"))
        self.measure_tape = measure_tape

    def forward(self, x, h0, c0=None):
        """``(out, h_T, c_T or None)`` as NumPy arrays and a :class:`TorchTape`."""
        xt = torch.from_numpy(x).requires_grad_(True)
        h0t = torch.from_numpy(h0)[None].requires_grad_(True)
        c0t = None if c0 is None else torch.from_numpy(c0)[None].requires_grad_(True)
        leaves = (xt, h0t) + ((c0t,) if c0t is not None else ()) + self.params
        owned = {_storage_key_bytes(t)[0] for t in leaves}
        seen: dict = {}

        def pack(t):
            key, nb = _storage_key_bytes(t)
            if key not in owned:
                seen[key] = nb
            return t

        def run():
            if c0t is not None:
                out, (h, c) = self.module(xt, (h0t, c0t))
                return out, h, c
            out, h = self.module(xt, h0t)
            return out, h, None

        if self.measure_tape:
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                out, h, c = run()
            nbytes = int(sum(seen.values()))
        else:
            out, h, c = run()
            nbytes = -1
        outs = (out, h) + ((c,) if c is not None else ())
        tape = TorchTape(outs, leaves, self.cell, nbytes)
        # Detached copies for the caller: they must not alias autograd's tensors.
        return (out.detach().numpy().copy(), h[0].detach().numpy().copy(),
                None if c is None else c[0].detach().numpy().copy(), tape)


@dataclass(frozen=True, eq=False)
class TorchCheckpointTape:
    """Checkpointed: the module, and the state (1, B, H) at each segment start.

    The first state is the caller's h0/c0 (shared memory, not counted).
    """

    trainer: "TorchTrainer"
    x: np.ndarray
    hs: tuple
    cs: tuple | None
    checkpoint: int
    nbytes: int


def _checkpoint_forward(trainer, x, h0, c0, k):
    """Forward under no_grad, keeping the state every k steps (Chen et al. 2016)."""
    t_len = x.shape[0]
    out = np.empty((t_len,) + h0.shape, dtype=x.dtype)
    h = torch.from_numpy(h0)[None]
    c = None if c0 is None else torch.from_numpy(c0)[None]
    hs, cs = [], []
    with torch.no_grad():
        for t0 in range(0, t_len, k):
            hs.append(h)
            cs.append(c)
            xs = torch.from_numpy(x[t0:t0 + k])
            if c is None:
                o, h = trainer.module(xs, h)
            else:
                o, (h, c) = trainer.module(xs, (h, c))
            out[t0:t0 + k] = o.numpy()
    kept = [a for a in hs[1:] + cs[1:] if a is not None]
    nbytes = int(sum(a.numel() * a.element_size() for a in kept))
    tape = TorchCheckpointTape(trainer, x, tuple(hs), None if c0 is None else tuple(cs), k,
                               nbytes)
    return out, h[0].numpy().copy(), None if c is None else c[0].numpy().copy(), tape


def _checkpoint_backward(tape: TorchCheckpointTape, grad_outputs, grad_h, grad_c):
    """Each segment's forward again under autograd, from its state, then its backward."""
    tr, x, k = tape.trainer, tape.x, tape.checkpoint
    dx = np.empty_like(x)
    dh = torch.from_numpy(grad_h)[None]
    dc = None if grad_c is None else torch.from_numpy(grad_c)[None]
    dparams = [torch.zeros_like(p_) for p_ in tr.params]
    for s in range(len(tape.hs) - 1, -1, -1):
        t0 = s * k
        xs = torch.from_numpy(x[t0:t0 + k]).requires_grad_(True)
        h = tape.hs[s].detach().clone().requires_grad_(True)
        with torch.enable_grad():
            if tape.cs is None:
                o, h_end = tr.module(xs, h)
                outs, ins, ups = (o, h_end), (xs, h), (dh,)
            else:
                c = tape.cs[s].detach().clone().requires_grad_(True)
                o, (h_end, c_end) = tr.module(xs, (h, c))
                outs, ins, ups = (o, h_end, c_end), (xs, h, c), (dh, dc)
            go = torch.from_numpy(grad_outputs[t0:t0 + k])
            got = torch.autograd.grad(outs, ins + tr.params, (go,) + ups, allow_unused=True)
        dx[t0:t0 + k] = got[0].numpy()
        dh = got[1]
        if tape.cs is not None:
            dc = got[2]
        for acc, g in zip(dparams, got[len(ins):]):
            if g is not None:
                acc += g
    grads = [g.numpy() for g in dparams]
    return (dx, dh[0].numpy().copy(), None if dc is None else dc[0].numpy().copy(), *grads)


def forward_train(p, checkpoint: int | None, name: str = "torch"):
    """Training forward: ``(outputs, h, c or None, tape)``.

    ``checkpoint=k``: the forward runs without autograd keeping the state
    every k steps; the backward reruns each segment under autograd (the
    same recomputation the other backends do).
    """
    trainer = TorchTrainer(p.spec.name, p.weights)
    if checkpoint is not None:
        return _checkpoint_forward(trainer, p.x, p.h0, p.c0, checkpoint)
    return trainer.forward(p.x, p.h0, p.c0)


def make_train_runner(name: str, cell: str, weights):
    """``forward_train`` with the module built once (for training.train_runner).

    No tape measurement: a timing loop should not pay a Python call per saved
    tensor (``tape.nbytes`` is -1 there; ``forward_train`` measures it).
    """
    trainer = TorchTrainer(cell, weights, measure_tape=False)

    def fwd(p, checkpoint, name=name):
        if checkpoint is not None:
            return _checkpoint_forward(trainer, p.x, p.h0, p.c0, checkpoint)
        return trainer.forward(p.x, p.h0, p.c0)

    return fwd


def backward_train(tape: TorchTape, grad_outputs, grad_h, grad_c):
    """``(dx, dh0, dc0 or None, dw_ih, dw_hh, db_ih, db_hh)`` by autograd."""
    if isinstance(tape, TorchCheckpointTape):
        return _checkpoint_backward(tape, grad_outputs, grad_h, grad_c)
    grads = [torch.from_numpy(grad_outputs), torch.from_numpy(grad_h)[None]]
    if tape.cell == "lstm":
        grads.append(torch.from_numpy(grad_c)[None])
    got = torch.autograd.grad(tape.outputs, tape.inputs, grads, retain_graph=True,
                              allow_unused=True)
    arrays = [None if g is None else np.ascontiguousarray(g.detach().numpy())
              for g in got]
    for k, (g, leaf) in enumerate(zip(arrays, tape.inputs)):
        if g is None:    # an input the output does not depend on
            arrays[k] = np.zeros(tuple(leaf.shape), dtype=grad_outputs.dtype)
    dx, dh0 = arrays[0], arrays[1][0]
    if tape.cell == "lstm":
        dc0, rest = arrays[2][0], arrays[3:]
    else:
        dc0, rest = None, arrays[2:]
    return (dx, np.ascontiguousarray(dh0),
            None if dc0 is None else np.ascontiguousarray(dc0), *rest)
