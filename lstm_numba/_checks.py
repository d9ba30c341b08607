"""The lowest-level helpers: argument checks (a dtype, a size, a name looked
up in a table) and a read-only view of an array.

They live apart from :mod:`lstm_numba.validation` so that :mod:`lstm_numba.cells`
(``init_weights``, ``spec``) and :mod:`lstm_numba.backends` can use them without
importing validation, which imports cells: no module of the package imports in
a circle. Validation re-exports ``check_dtype`` and ``check_size``.
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


def lookup(what: str, name, table, valid: str):
    """Return ``table[name]`` for a name given by the user.

    Parameters
    ----------
    what : str
        What the name names ("cell", "backend"): the argument in the messages.
    name : object
        What the user passed.
    table : mapping
        Valid names to their entries.
    valid : str
        The valid names as the messages should list them.

    Raises
    ------
    TypeError
        ``name`` is not a str: "<what> must be a str, one of <valid>; got <type>".
    ValueError
        ``name`` is not in ``table``: "unknown <what> <name>; valid <what>s are <valid>".
    """
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a str, one of {valid}; got {type(name).__name__}")
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"unknown {what} {name!r}; valid {what}s are {valid}") from None


def read_only(a):
    """A read-only view of ``a`` (None stays None): what a caller or a backward
    may read but must not change, such as a training tape's arrays."""
    if a is None:
        return None
    v = a.view()
    v.flags.writeable = False
    return v
