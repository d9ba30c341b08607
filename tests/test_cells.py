import numpy as np
import pytest

import lstm_numba as ln
from lstm_numba.cells import SPECS, spec


def test_cells_and_gate_counts():
    assert ln.CELLS == ("rnn", "lstm", "gru")
    assert [spec(c).n_gates for c in ln.CELLS] == [1, 4, 3]
    assert spec("lstm").gates == ("i", "f", "g", "o")      # PyTorch's order
    assert spec("gru").gates == ("r", "z", "n")
    assert [c for c in ln.CELLS if SPECS[c].has_cell_state] == ["lstm"]


@pytest.mark.parametrize("cell,g", [("rnn", 1), ("lstm", 4), ("gru", 3)])
def test_flops_follow_deepbench(cell, g):
    b, i, h, t = 3, 5, 37, 11
    assert ln.flops_per_step(cell, b, i, h) == 2 * b * g * h * (i + h)
    assert ln.flops(cell, t, b, i, h) == t * 2 * b * g * h * (i + h)


def test_init_weights_layout_dtype_and_range(cell, dtype):
    g = spec(cell).n_gates
    w = ln.init_weights(cell, 5, 37, dtype=dtype, seed=3)
    assert isinstance(w, ln.Weights)
    assert [a.shape for a in w] == [(g * 37, 5), (g * 37, 37), (g * 37,), (g * 37,)]
    assert all(a.dtype == dtype and a.flags.c_contiguous for a in w)
    k = 1 / np.sqrt(37)
    assert all(np.abs(a).max() <= k for a in w)
    # U(-k, k) over ~7000 draws: the spread must actually use the range.
    assert np.abs(w.w_hh).max() > 0.9 * k and abs(w.w_hh.mean()) < 0.05 * k
    assert (w.input_size, w.hidden_size, w.dtype) == (5, 37, dtype)


def test_init_weights_seeded():
    a = ln.init_weights("lstm", 4, 6, seed=1)
    b = ln.init_weights("lstm", 4, 6, seed=1)
    c = ln.init_weights("lstm", 4, 6, seed=2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a.w_ih, c.w_ih)
    d64 = ln.init_weights("lstm", 4, 6, dtype=np.float64, seed=1)
    np.testing.assert_array_equal(d64.w_hh.astype(np.float32), a.w_hh)


@pytest.mark.parametrize("kwargs,exc,words", [
    (dict(cell="cnn"), ValueError, "unknown cell 'cnn'"),
    (dict(hidden_size=0), ValueError, "hidden_size must be >= 1"),
    (dict(input_size=2.5), TypeError, "input_size must be an int"),
    (dict(dtype=np.int32), TypeError, "dtype must be float32 or float64"),
    (dict(dtype=np.float16), TypeError, "dtype must be float32 or float64"),
])
def test_init_weights_rejects(kwargs, exc, words):
    args = dict(cell="lstm", input_size=3, hidden_size=4)
    args.update(kwargs)
    with pytest.raises(exc, match=words):
        ln.init_weights(**args)


def test_weights_astype_converts_every_array():
    w = ln.init_weights("gru", 3, 4).astype(np.float64)
    assert all(a.dtype == np.float64 for a in w)


def test_cell_facts_are_complete_and_distinct():
    """Every cell has a distinct kernel code, and CELL_CODES is read from the specs."""
    from lstm_numba.cells import CELL_CODES

    codes = [spec(c).code for c in SPECS]
    assert len(set(codes)) == len(codes) and all(isinstance(k, int) for k in codes)
    assert CELL_CODES == {c: SPECS[c].code for c in SPECS}
    for c in ln.CELLS:
        assert spec(c).name == c and spec(c).torch_module in ("RNN", "LSTM", "GRU")


def test_kernels_and_peers_read_the_cell_facts():
    """cpu.pack takes the kernel code and peers.to_torch the module from cells.py."""
    from lstm_numba import cpu

    weights = {c: ln.init_weights(c, 3, 5) for c in ln.CELLS}
    for c, w in weights.items():
        assert cpu.pack(c, w).cell == spec(c).code
    torch = pytest.importorskip("torch")
    for c, w in weights.items():
        assert type(ln.to_torch(c, w)) is getattr(torch.nn, spec(c).torch_module)


def test_unknown_names_are_refused_naming_the_argument_and_the_valid_ones():
    """cells.spec and backends.get share _checks.lookup: same messages, each its own names."""
    from lstm_numba.backends import BACKEND_NAMES, REGISTRY, get
    from lstm_numba.cells import PARALLEL_CELLS

    for fn, what, valid in ((spec, "cell", ln.CELLS + PARALLEL_CELLS),
                            (get, "backend", BACKEND_NAMES)):
        with pytest.raises(TypeError, match=f"^{what} must be a str, one of .*; got int$") as e:
            fn(3)
        assert all(repr(v) in str(e.value) for v in valid)
        with pytest.raises(ValueError, match=f"^unknown {what} 'nope'; valid {what}s are ") as e:
            fn("nope")
        assert all(repr(v) in str(e.value) for v in valid)
    assert spec("gru") is SPECS["gru"] and get("numba") is REGISTRY["numba"]
