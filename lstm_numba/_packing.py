"""Packing weights into the kernels' panels, and a content-addressed cache of packs.

``ln.forward`` is called with PyTorch-layout weights every time; packing them
into panels (:func:`lstm_numba._gemm.pack_transposed`'s layout) costs a
transpose of every weight (~0.4 ms for an LSTM at H=256 on the Intel Xeon
here, 15-20 % of a B=1, T=128 call). :class:`PackCache` keeps recent packs
keyed by the *contents* of the weights, not their identity: the key holds a
fingerprint of every byte of ``w_ih``, ``w_hh``, ``b_ih``, ``b_hh`` (one
streaming read, several times cheaper than the transpose), so weights
changed in place between calls (an optimiser step, ``w[...] = ...``) miss the
cache and are packed afresh; a stale pack is never used because an array
object was seen before.

The fingerprint (:func:`fingerprint`) is ``sum_i word_i * c_i`` modulo
2**64 over the array's 64-bit words, with odd multipliers
``c_i = (2i + 1) * Q``: a change of any single word always changes it (an odd
multiplier is invertible modulo 2**64), and changes of several words go
unseen only when their weighted sum cancels exactly modulo 2**64 (about one
chance in 2**64 for changes that are not built to do so). It is a change
detector, not a cryptographic hash: weights crafted to collide could fool
it. One streaming read, vectorized: ~22 us per MiB on the Intel Xeon here
(a copy of the same MiB: ~47 us).
"""
from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
from numba import njit

from ._gemm import aligned_empty, full_width, panel_width

_Q = np.uint64(0x9E3779B97F4A7C15)     # odd (2**64 / golden ratio)


@njit(cache=True, nogil=True, error_model="numpy", boundscheck=False)
def _fingerprint_words(words):
    """``sum_i words[i] * (2i + 1) * Q`` modulo 2**64 (uint64 ``words``)."""
    full_width()
    h = np.uint64(0)
    for i in range(words.shape[0]):
        h += words[i] * (np.uint64(2 * i + 1) * _Q)
    return h


def fingerprint(a: np.ndarray) -> int:
    """A 64-bit fingerprint of every byte of C-contiguous ``a`` (see above)."""
    b = a.reshape(-1).view(np.uint8)
    if b.size % 8:                      # odd float32 counts: zero-pad the tail
        b = np.concatenate([b, np.zeros(8 - b.size % 8, dtype=np.uint8)])
    return int(_fingerprint_words(b.view(np.uint64)))


def pack_panels(w: np.ndarray) -> np.ndarray:
    """PyTorch's ``(N, K)`` weight -> ``(P, K, NC)`` panels of its transpose.

    The layout of :func:`lstm_numba._gemm.pack_transposed` (zeros past N),
    done with NumPy: the forward path then loads no packing kernel, and
    with :class:`PackCache` it packs only weights it has not seen.
    """
    n, k = w.shape
    nc = panel_width(w.dtype)
    npan = -(-n // nc)
    wp = aligned_empty((npan, k, nc), w.dtype)
    full = n // nc
    if full:
        wp[:full] = w[:full * nc].reshape(full, nc, k).transpose(0, 2, 1)
    if full < npan:
        rest = n - full * nc
        wp[full, :, :rest] = w[full * nc:].T
        wp[full, :, rest:] = 0
    return wp


class PackCache:
    """LRU cache ``key -> packed weights``, bounded in bytes, thread-safe.

    ``get(key, build)`` returns the cached value or ``build()``'s, which it
    keeps (the least recently used entries are dropped past ``max_bytes``;
    a value bigger than that is returned and not kept).
    """

    def __init__(self, max_bytes: int = 64 << 20):
        self.max_bytes = max_bytes
        self._items: OrderedDict = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def _size(value) -> int:
        return sum(getattr(a, "nbytes", 0) for a in value)

    def get(self, key, build):
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return value
        value = build()
        size = self._size(value)
        with self._lock:
            self.misses += 1
            if size <= self.max_bytes and key not in self._items:
                self._items[key] = value
                self._bytes += size
                while self._bytes > self.max_bytes:
                    _, old = self._items.popitem(last=False)
                    self._bytes -= self._size(old)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)
