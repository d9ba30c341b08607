"""Experiments that test the notes' claims with the project's own kernels.

* :mod:`.gradient_flow` -- how fast ``dh_T/dh_t`` decays with the distance
  ``T - t`` for each cell (claim 1: a plain RNN's gradients vanish).
* :mod:`.adding` -- the adding problem of Hochreiter & Schmidhuber (1997),
  trained with ``lstm_numba.backward`` and Adam (claims 1 and 5).

Both use only the public API (``forward(train=True)`` / ``backward``).
"""
