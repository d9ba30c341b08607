"""Activations for the Numba kernels: exact in float64, a vectorizable
rational approximation in float32.

Why: without SVML, ``np.tanh`` in a Numba kernel is a scalar libm call per
element, and the LSTM's five activations per hidden unit then cost more than
the matrix products. A rational function (a polynomial divided by a
polynomial, clamped) compiles to a handful of SIMD multiply-adds and one
division, so LLVM vectorizes the whole gate pass.

``tanh(v)`` and ``sigmoid(v)`` below dispatch on the argument's type at
compile time: float64 keeps libm's ``tanh`` (exact to rounding), float32
uses :func:`tanh_f32`. The float32 approximation's maximum absolute error
against the exact tanh is :data:`TANH_F32_MAX_ABS_ERR` (tested over a dense
range in tests/test_cpu.py); NaN in gives NaN out, +-inf give +-1.

Note on Numba's cache: a cached kernel is only recompiled when its own source
file changes. After editing this module, delete ``lstm_numba/__pycache__/*.nb*``.
"""
from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import overload

#: The one set of LLVM fast-math flags of every CPU kernel (gate passes and
#: the matrix products). 'contract' gives FMAs; NaN in must give NaN out, so
#: no 'nnan'/'ninf'; and no 'reassoc': in the products it would let LLVM
#: vectorize the k-reduction instead of the register tile (see _gemm.py).
FASTMATH = {"contract", "nsz", "arcp", "afn"}
#: Former names of :data:`FASTMATH` (the same set), kept for existing imports.
FASTMATH_GATES = FASTMATH

#: Bound on |tanh_f32(v) - tanh(v)| for every float32 v. Measured: 2.92e-7
#: (at v = -5.13) on a 2e7-point grid over [-12, 12]; for |v| >= 7.905 the
#: clamp costs at most 2.7e-7 (tanh(7.905) = 1 - 2.7e-7).
TANH_F32_MAX_ABS_ERR = 3.5e-7
#: Bound on |sigmoid(v) - 1/(1+exp(-v))| in float32 (measured 1.7e-7: half of
#: tanh's error plus the rounding of 0.5 + 0.5*t).
SIGMOID_F32_MAX_ABS_ERR = 2.0e-7

# Eigen's float tanh (Eigen/src/Core/arch/Default/GenericPacketMathFunctions.h,
# "ptanh_float"): a 13/6 odd/even rational minimax fit on [-7.905, 7.905].
_CLAMP = np.float32(7.90531110763549805)
_A1 = np.float32(4.89352455891786e-03)
_A3 = np.float32(6.37261928875436e-04)
_A5 = np.float32(1.48572235717979e-05)
_A7 = np.float32(5.12229709037114e-08)
_A9 = np.float32(-8.60467152213735e-11)
_A11 = np.float32(2.00018790482477e-13)
_A13 = np.float32(-2.76076847742355e-16)
_B0 = np.float32(4.89352518554385e-03)
_B2 = np.float32(2.26843463243900e-03)
_B4 = np.float32(1.18534705686654e-04)
_B6 = np.float32(1.19825839466702e-06)


@njit(cache=True, fastmath=FASTMATH, error_model="numpy", inline="always")
def tanh_f32(v):
    """Rational approximation of tanh for float32 (vectorizable, branch-free).

    NaN propagates (both comparisons are false for NaN); +-inf clamp to +-1.
    """
    if v > _CLAMP:
        v = _CLAMP
    elif v < -_CLAMP:
        v = -_CLAMP
    x2 = v * v
    p = x2 * _A13 + _A11
    p = x2 * p + _A9
    p = x2 * p + _A7
    p = x2 * p + _A5
    p = x2 * p + _A3
    p = x2 * p + _A1
    p = v * p
    q = x2 * _B6 + _B4
    q = x2 * q + _B2
    q = x2 * q + _B0
    return p / q


def by_dtype(generic, fast32, exact):
    """Make ``generic`` call ``fast32`` on float32 and ``exact`` on other floats.

    Inside @njit code only (an overload: the choice is made when the caller
    compiles, so the kernel has no branch). ``generic`` itself, a plain
    Python function, stays what Python code calls. Returns ``generic``.
    """
    @overload(generic)
    def _ov(v):
        if v == types.float32:
            return lambda v: fast32(v)
        if isinstance(v, types.Float):
            return lambda v: exact(v)
        return None

    return generic


def tanh(v):  # pragma: no cover - replaced by the overload inside @njit
    """tanh: exact for float64, :func:`tanh_f32` for float32 (in @njit code)."""
    return np.tanh(v)


by_dtype(tanh, tanh_f32, np.tanh)


def sigmoid(v):  # pragma: no cover - replaced by the overload inside @njit
    """Logistic function via tanh, so float32 inherits tanh's bound (halved)."""
    return 0.5 + 0.5 * np.tanh(0.5 * v)


@overload(sigmoid)
def _ov_sigmoid(v):
    if v == types.float32:
        half = np.float32(0.5)
        return lambda v: half + half * tanh_f32(half * v)
    if isinstance(v, types.Float):
        return lambda v: 0.5 + 0.5 * np.tanh(0.5 * v)
    return None
