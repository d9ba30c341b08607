"""Shared pieces of the asv suite and the benchmark scripts.

The profile is read in one place: ``LSTM_NUMBA_PROFILE=fast`` (the default,
the whole suite in about 15 minutes on a 2-core machine) or ``full``
(DeepBench-sized problems, long sequences).
"""
from __future__ import annotations

import os

import numpy as np

import lstm_numba as ln

PROFILE_ENV = "LSTM_NUMBA_PROFILE"
PROFILES = ("fast", "full")


def profile() -> str:
    """The active profile name; ValueError for an unknown value."""
    p = os.environ.get(PROFILE_ENV, "fast").strip().lower() or "fast"
    if p not in PROFILES:
        raise ValueError(f"{PROFILE_ENV}={p!r}; expected one of {PROFILES}")
    return p


def is_full() -> bool:
    return profile() == "full"


def make_problem(cell, seq_len, batch, hidden, input_size=None, dtype=np.float32, seed=0):
    """Seeded ``(x (T,B,I), Weights, h0 (B,H), c0 (B,H) or None)``; I defaults to H."""
    input_size = hidden if input_size is None else input_size
    w = ln.init_weights(cell, input_size, hidden, dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((seq_len, batch, input_size)).astype(dtype)
    h0 = (0.1 * rng.standard_normal((batch, hidden))).astype(dtype)
    c0 = (0.1 * rng.standard_normal((batch, hidden))).astype(dtype) if cell == "lstm" else None
    return x, w, h0, c0


def require_backend(name: str) -> None:
    """Raise NotImplementedError (asv's "skip this parameter") if unavailable."""
    from lstm_numba.backends import get

    reason = get(name).unavailable()
    if reason:
        raise NotImplementedError(f"{name}: {reason}")
