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

The fingerprint (:func:`fingerprint`, :func:`fingerprint_many` for the four
arrays at once, hashed as their concatenation) is ``sum_i word_i * c_i``
modulo 2**64 over the 64-bit words, with odd multipliers
``c_i = (2i + 1) * Q``: a change of any single word always changes it (an odd
multiplier is invertible modulo 2**64), and changes of several words go
unseen only when their weighted sum cancels exactly modulo 2**64 (about one
chance in 2**64 for changes that are not built to do so). It is a change
detector, not a cryptographic hash: weights crafted to collide could fool
it. One streaming read, vectorized (512-bit multiplies): on the Intel Xeon
here (emeraldrapids, 2 MiB L2), the 2 MiB of LSTM H=256 weights take
~60-70 us when they sit in L2, but between two forward calls they do not
(the kernel's own packed copy fills L2): timed right after a kernel call,
~85 us (a bare load of the same bytes, no hash: ~68 us), and the next
kernel then reloads the packed weights the read evicted. That read is most
of ``ln.forward``'s per-call set-up at B=1, T=128 (100-270 us, 7-13 % of
the call on a loaded machine, ``benchmarks/overhead.py``); the part that
does not grow with the weights (validation, look-up, dispatch) is ~12 us.

Measured and not kept (same machine, timed in a loop with the kernel):
re-packing into preallocated panels instead of fingerprinting (2.5-3x the
fingerprint's cost); reading 2, 4 or 8 interleaved streams (1.0, 1.2,
1.6x), software prefetch ahead of the read (T1/T2: 1.15-1.25x, NTA: up to
2.5x); reading on two threads for numba-parallel (1.5x hot: a parallel
region per array, and the data sits in one core's L2).
"""
from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
from numba import njit

from ._gemm import aligned_empty, full_width, panel_width, unliteral_calls

_Q = np.uint64(0x9E3779B97F4A7C15)     # odd (2**64 / golden ratio)


# A function of its own (not Numba-inlined four times into _fingerprint4:
# that cost ~1.1-1.6 s of every entry point's cold compile).
@unliteral_calls
@njit(cache=True, nogil=True, error_model="numpy", boundscheck=False,
      no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _mix(b, start):
    """``(sum_i word_i * (2(start + i) + 1) * Q mod 2**64, start + words)``.

    ``b`` is one array's bytes (uint8, 1-D, C); its 64-bit words are read in
    place (``view``), a last partial word zero-padded. ``start`` numbers the
    words after those of the arrays before it, so that several arrays hash
    as their concatenation.
    """
    full_width()
    n8 = b.shape[0] // 8
    w = b[:n8 * 8].view(np.uint64)
    h = np.uint64(0)
    for i in range(n8):
        h += w[i] * (np.uint64(2 * (start + i) + 1) * _Q)
    if n8 * 8 < b.shape[0]:         # e.g. an odd count of float32: pad the tail
        t = np.uint64(0)
        for j in range(n8 * 8, b.shape[0]):
            t |= np.uint64(b[j]) << np.uint64(8 * (j - n8 * 8))
        h += t * (np.uint64(2 * (start + n8) + 1) * _Q)
        n8 += 1
    return h, start + n8


@njit(cache=True, nogil=True, error_model="numpy", boundscheck=False)
def _fingerprint_from(b, start):
    """``_mix(b, start)``: one array's bytes (uint8, 1-D, C) from word ``start``."""
    full_width()
    return _mix(b, start)


@njit(cache=True, nogil=True, error_model="numpy", boundscheck=False)
def _fingerprint4(b0, b1, b2, b3):
    """:func:`fingerprint_many` of four arrays' bytes, in one call (one dispatch)."""
    full_width()
    h0, n = _mix(b0, 0)
    h1, n = _mix(b1, n)
    h2, n = _mix(b2, n)
    h3, n = _mix(b3, n)
    return h0 + h1 + h2 + h3


def _bytes(a: np.ndarray) -> np.ndarray:
    # C-contiguous ``a`` as its bytes: a view, nothing copied.
    return a.reshape(-1).view(np.uint8)


def fingerprint(a: np.ndarray) -> int:
    """A 64-bit fingerprint of every byte of C-contiguous ``a`` (see above)."""
    return int(_fingerprint_from(_bytes(a), 0)[0])


def fingerprint_many(arrays) -> int:
    """The fingerprint of the concatenated bytes of C-contiguous ``arrays``.

    (Each array's last partial 64-bit word is zero-padded.) Four arrays, the
    weights of a layer, take one compiled call; ``ln.forward`` reads its
    weights through this on every call, so the call itself is kept cheap.
    """
    if len(arrays) == 4:
        a, b, c, d = arrays
        return int(_fingerprint4(_bytes(a), _bytes(b), _bytes(c), _bytes(d)))
    h, n = 0, 0
    for a in arrays:               # the same sum, one array at a time
        part, n = _fingerprint_from(_bytes(a), n)
        h = (h + int(part)) & 0xFFFFFFFFFFFFFFFF
    return h


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
