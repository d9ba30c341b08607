"""The lowest-level argument checks: a dtype and a size.

They live apart from :mod:`lstm_numba.validation` so that :mod:`lstm_numba.cells`
(``init_weights``) can use them without importing validation, which imports
cells: no module of the package imports in a circle. Validation re-exports
both names.
"""
from __future__ import annotations

import operator

import numpy as np

DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_dtype(name: str, dtype) -> np.dtype:
    """Return ``np.dtype(dtype)`` if it is float32 or float64, else TypeError."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name} must be float32 or float64; got {dtype!r}") from None
    if dt not in DTYPES:
        raise TypeError(f"{name} must be float32 or float64; got {dt}")
    return dt


def check_size(name: str, value) -> int:
    """Return ``value`` as an int >= 1, else TypeError/ValueError naming it."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int >= 1; got {value!r}")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int >= 1; got {type(value).__name__} {value!r}") from None
    if v < 1:
        raise ValueError(f"{name} must be >= 1; got {v}")
    return v
