"""The measuring harness (lstm_numba.measure): recipe, timing rules, yardstick, tolerances.

Nothing here asserts a speed: the timing functions are driven with fake
clocks or with call counters, so what is checked is the bookkeeping (how
many calls, which are warm-up, which statistic) that every table relies on.
"""
import numpy as np
import pytest

import lstm_numba as ln
from lstm_numba import measure as M
from lstm_numba.cells import spec


# ------------------------------------------------------------- make_problem

def test_make_problem_is_seeded_and_reproducible(cell):
    a = M.make_problem(cell, 4, 3, 7, 5, seed=3)
    b = M.make_problem(cell, 4, 3, 7, 5, seed=3)
    c = M.make_problem(cell, 4, 3, 7, 5, seed=4)
    for u, v in zip(a, b):
        if u is None:
            assert v is None
        elif isinstance(u, tuple):
            assert all(np.array_equal(p, q) for p, q in zip(u, v))
        else:
            assert np.array_equal(u, v)
    assert not np.array_equal(a.x, c.x) and not np.array_equal(a.w.w_hh, c.w.w_hh)


def test_make_problem_shapes_dtypes_and_state(cell, dtype):
    p = M.make_problem(cell, 6, 3, 9, 4, dtype=dtype, seed=1)
    g = spec(cell).n_gates
    assert p.x.shape == (6, 3, 4) and p.x.dtype == dtype
    assert [a.shape for a in p.w] == [(g * 9, 4), (g * 9, 9), (g * 9,), (g * 9,)]
    assert all(a.dtype == dtype for a in p.w)
    assert p.h0.shape == (3, 9) and p.h0.dtype == dtype
    if spec(cell).has_cell_state:
        assert p.c0.shape == (3, 9) and p.c0.dtype == dtype
    else:
        assert p.c0 is None
    # the forward pass accepts it as is
    res = ln.forward(cell, *p, backend="numpy")
    assert res.outputs.shape == (6, 3, 9)


def test_make_problem_recipe():
    """The documented recipe: weights from init_weights(seed), the rest from seed + 1,
    the same values in both dtypes, I defaulting to H."""
    p = M.make_problem("lstm", 50, 8, 16, seed=5)
    assert p.x.shape == (50, 8, 16)
    w = ln.init_weights("lstm", 16, 16, seed=5)
    assert all(np.array_equal(a, b) for a, b in zip(p.w, w))
    rng = np.random.default_rng(6)
    np.testing.assert_array_equal(p.x, rng.standard_normal((50, 8, 16)).astype(np.float32))
    assert 0.05 < p.h0.std() < 0.2 and 0.05 < p.c0.std() < 0.2         # 0.1 N(0, 1)
    h0 = (0.1 * rng.standard_normal((8, 16))).astype(np.float32)
    np.testing.assert_array_equal(p.h0, h0)
    p64 = M.make_problem("lstm", 50, 8, 16, dtype=np.float64, seed=5)
    np.testing.assert_array_equal(p64.x.astype(np.float32), p.x)


def test_make_problem_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unknown cell"):
        M.make_problem("cnn", 2, 2, 2)
    with pytest.raises(ValueError, match="hidden must be >= 1; got 0"):
        M.make_problem("gru", 2, 2, 0)
    with pytest.raises(ValueError, match="batch must be >= 1"):
        M.make_problem("gru", 2, 0, 2)
    with pytest.raises(TypeError, match="seq_len must be an int"):
        M.make_problem("gru", 2.5, 2, 2)
    with pytest.raises(ValueError, match="input_size must be >= 1"):
        M.make_problem("gru", 2, 2, 2, input_size=0)


# ------------------------------------------------------------------ measure

class Counter:
    """A callable that counts its calls and advances a fake clock by ``dt`` each."""

    def __init__(self, clock, dt):
        self.clock, self.dt, self.calls = clock, dt, 0

    def __call__(self):
        self.calls += 1
        self.clock.now += self.dt(self.calls) if callable(self.dt) else self.dt


class FakeClock:
    now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    c = FakeClock()
    monkeypatch.setattr(M.time, "perf_counter", c)
    return c


def test_measure_keeps_warmup_apart(clock):
    fn = Counter(clock, lambda k: 5.0 if k == 1 else 0.1)    # the first call "compiles"
    m = M.measure(fn, warmup=2, min_calls=3, max_calls=10, budget_s=0.0)
    assert fn.calls == 2 + 3
    assert m.first_s == pytest.approx(5.0)
    assert m.n == 3 and all(s == pytest.approx(0.1) for s in m.samples)
    assert 5.0 not in m.samples


def test_measure_fills_the_budget_within_min_and_max(clock):
    m = M.measure(Counter(clock, 0.1), min_calls=3, max_calls=100, budget_s=1.0)
    assert 10 <= m.n <= 11                     # ~budget / call time
    m = M.measure(Counter(clock, 0.1), min_calls=3, max_calls=5, budget_s=100.0)
    assert m.n == 5                            # max_calls caps a generous budget
    m = M.measure(Counter(clock, 10.0), min_calls=4, max_calls=50, budget_s=1.0)
    assert m.n == 4                            # min_calls beats a spent budget
    m = M.measure(Counter(clock, 0.1), warmup=0)
    assert m.first_s is None


def test_measure_sync_is_inside_the_timed_region(clock):
    def sync():
        clock.now += 1.0
    m = M.measure(Counter(clock, 0.5), sync=sync, min_calls=2, max_calls=2, budget_s=0.0)
    assert m.first_s == pytest.approx(1.5)
    assert m.samples == pytest.approx((1.5, 1.5))


def test_measurement_statistics_and_names():
    m = M.Measurement((3.0, 1.0, 2.0, 10.0), first_s=7.0, stat="median")
    assert m.median == 2.5 and m.min == 1.0 and m.n == 4
    assert m.value == m.median
    assert m.spread == pytest.approx((10.0 - 1.0) / 2.5)
    assert m.describe() == "median of 4 calls"
    mn = M.Measurement((3.0, 1.0), stat="min", interleaved=True)
    assert mn.value == 1.0 and mn.describe() == "min of 2 interleaved calls"
    assert M.Measurement((1.0,)).describe() == "median of 1 call"
    assert set(M.STATISTICS) == {"median", "min"}


@pytest.mark.parametrize("kwargs,words", [
    (dict(stat="mean"), "stat must be one of"),
    (dict(min_calls=0), "min_calls"),
    (dict(min_calls=5, max_calls=4), "min_calls"),
    (dict(warmup=-1), "warmup must be >= 0"),
])
def test_measure_rejects_bad_arguments(kwargs, words):
    for f in (lambda: M.measure(lambda: None, **kwargs),
              lambda: M.measure_interleaved({"a": lambda: None}, **kwargs)):
        with pytest.raises(ValueError, match=words):
            f()
    with pytest.raises(ValueError, match="at least one sample"):
        M.Measurement(())
    with pytest.raises(ValueError, match="stat must be one of"):
        M.Measurement((1.0,), stat="mean")


def test_measure_interleaved_alternates_and_sizes_rounds(clock):
    order = []

    def make(name, dt):
        def fn():
            order.append(name)
            clock.now += dt(len([o for o in order if o == name])) if callable(dt) else dt
        return fn

    fns = {"a": make("a", lambda k: 9.0 if k == 1 else 0.1), "b": make("b", 0.3)}
    res = M.measure_interleaved(fns, warmup=2, min_calls=2, max_calls=50, budget_s=4.1)
    assert list(res) == ["a", "b"]
    # rounds from the last warm-up round (0.1 + 0.3 s), not from a's 9 s compile
    rounds = res["a"].n
    assert rounds == res["b"].n == 10
    assert order == ["a", "b"] * (2 + rounds)          # strictly alternating
    assert res["a"].first_s == pytest.approx(9.0) and res["b"].first_s == pytest.approx(0.3)
    assert res["a"].stat == "min" and res["a"].value == pytest.approx(0.1)
    assert res["a"].describe() == "min of 10 interleaved calls"
    capped = M.measure_interleaved(fns, warmup=1, min_calls=2, max_calls=3, budget_s=1e6)
    assert capped["b"].n == 3


def test_measure_interleaved_settles_before_each_call(monkeypatch):
    sleeps = []
    monkeypatch.setattr(M.time, "sleep", sleeps.append)
    res = M.measure_interleaved({"a": lambda: None, "b": lambda: None}, warmup=1,
                                min_calls=2, max_calls=2, settle_s=0.01)
    assert len(sleeps) == 2 * (1 + 2) and set(sleeps) == {0.01}
    assert res["a"].n == 2


def test_measure_times_real_calls():
    m = M.measure(lambda: sum(range(1000)), min_calls=3, max_calls=5, budget_s=0.0)
    assert m.n == 3 and all(s > 0 for s in m.samples) and m.first_s > 0


# ------------------------------------------------------------- sgemm, tolerances

def test_sgemm_rate_is_positive_and_cached(monkeypatch):
    M._SGEMM.clear()
    r = M.sgemm_gflops(n=128, repeat=2)
    assert 0.01 < r < 1e5
    assert (128, ln.get_num_threads()) in M._SGEMM

    def boom(*a, **k):
        raise AssertionError("sgemm re-measured instead of cached")
    monkeypatch.setattr(M, "measure", boom)
    assert M.sgemm_gflops(n=128, repeat=2) == r


@pytest.mark.parametrize("what", ["forward", "gradient", "long"])
def test_tolerance_table(what):
    t32, t64 = M.tolerance(np.float32, what), M.tolerance("float64", what)
    assert t32 == M.TOLERANCES[(what, "float32")] and t64 == M.TOLERANCES[(what, "float64")]
    assert t64.atol < t32.atol and t32.atol > 0
    assert M.tolerance(np.dtype(np.float32), what) == t32


def test_tolerance_unknown_keys_are_errors():
    with pytest.raises(ValueError, match="no tolerance for .*float16.*known"):
        M.tolerance(np.float16)
    with pytest.raises(ValueError, match="no tolerance for .*backward"):
        M.tolerance(np.float32, "backward")


def test_max_abs_err():
    a = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    b = a.astype(np.float64) + [[0.0, 0.5], [0.0, -0.25]]
    assert M.max_abs_err([a], [b]) == 0.5
    assert M.max_abs_err([a, None], [a, None]) == 0.0
    assert M.max_abs_err([a, a], [a, a + 2]) == 2.0
    # a NaN is never hidden behind a smaller error (Python's max() would drop it)
    assert np.isnan(M.max_abs_err([a, np.array([np.nan])], [a + 1, np.array([0.0])]))
    with pytest.raises(ValueError, match="shapes differ"):
        M.max_abs_err([a], [a[:1]])                # no silent broadcasting
    with pytest.raises(ValueError):
        M.max_abs_err([a, a], [a])                 # pairs, not a prefix


def test_max_abs_err_is_float64():
    big = np.float32(1e8)
    got = np.array([big], np.float32)
    ref = np.array([1e8 + 3.0])
    assert M.max_abs_err([got], [ref]) == 3.0
