"""The claims' experiments (lstm_numba.experiments): gradient flow and the adding problem."""
import math

import numpy as np
import pytest

import lstm_numba as ln
from lstm_numba.experiments import adding as ad
from lstm_numba.experiments import gradient_flow as gf


def _h_T(cell, x, w, h0, c0):
    return ln.forward(cell, x, w, h0=h0, c0=c0, backend="numpy").h


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_jacobian_vector_matches_finite_differences(cell):
    """J^T v (and K^T v for the LSTM) from the backward vs central differences of h_T."""
    rng = np.random.default_rng(1)
    t, b, i, h = 5, 2, 3, 4
    w = ln.init_weights(cell, i, h, dtype=np.float64, seed=3)
    x = rng.standard_normal((t, b, i))
    h0 = 0.3 * rng.standard_normal((b, h))
    c0 = 0.3 * rng.standard_normal((b, h)) if cell == "lstm" else None
    v = gf.unit_probes(rng, b, h, np.float64)
    jv, kv = gf.jacobian_vector(cell, x, w, h0, c0, v, backend="numpy")
    eps = 1e-6
    for state, got in (("h", jv), ("c", kv)):
        if state == "c" and cell != "lstm":
            assert kv is None
            continue
        fd = np.zeros((b, h))
        for j in range(h):
            d = np.zeros((b, h))
            d[:, j] = eps
            if state == "h":
                plus, minus = _h_T(cell, x, w, h0 + d, c0), _h_T(cell, x, w, h0 - d, c0)
            else:
                plus, minus = _h_T(cell, x, w, h0, c0 + d), _h_T(cell, x, w, h0, c0 - d)
            fd[:, j] = np.sum(v * (plus - minus) / (2 * eps), axis=1)   # (J^T v)_j
        np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-9)


def test_frobenius_estimator_on_a_known_matrix():
    """sqrt(H mean ||A^T v||^2) over unit-sphere probes -> ||A||_F (and exact for A = I)."""
    rng = np.random.default_rng(0)
    h = 6
    a = rng.standard_normal((h, h)) * np.arange(1, h + 1)
    v = gf.unit_probes(rng, 40000, h, np.float64)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-12)
    est = gf.frobenius_estimate(v @ a, h)        # rows: (A^T v)^T = v^T A
    assert est == pytest.approx(np.linalg.norm(a), rel=0.02)
    assert gf.frobenius_estimate(v, h) == pytest.approx(math.sqrt(h), rel=1e-9)


def _exact_relative_norm(cell, x, w, d, forget_bias=0.0):
    """mean_b ||dh_T/dh_(T-d)||_F^2, square-rooted, / sqrt(H), by finite differences."""
    t, b, _ = x.shape
    h = w.w_hh.shape[1]
    start = t - d
    zeros = np.zeros((b, h))
    h0 = ln.forward(cell, x[:start], w, backend="numpy").h if start else zeros
    c0 = None
    if cell == "lstm":
        c0 = ln.forward(cell, x[:start], w, backend="numpy").c if start else zeros
    tot, eps = 0.0, 1e-6
    for j in range(h):
        e = np.zeros((b, h))
        e[:, j] = eps
        col = (_h_T(cell, x[start:], w, h0 + e, c0) - _h_T(cell, x[start:], w, h0 - e, c0)) / (2 * eps)
        tot += np.sum(col ** 2)
    return math.sqrt(tot / b) / math.sqrt(h)


@pytest.mark.parametrize("cell,fb", [("rnn", 0.0), ("lstm", 1.0), ("gru", 0.0)])
def test_gradient_flow_against_finite_differences(cell, fb):
    """The whole pipeline (states, tiling, probes, estimator) on a tiny float64 case."""
    t, b, h = 7, 2, 3
    r = gf.gradient_flow(cell, hidden=h, seq_len=t, batch=b, forget_bias=fb, backend="numpy",
                         probes=3000, n_distances=3, dtype=np.float64, seed=5)
    rng = np.random.default_rng(5)
    w = gf.with_forget_bias(ln.init_weights(cell, h, h, dtype=np.float64, seed=5), fb)
    x = rng.standard_normal((t, b, h))
    assert r.distances[0] == 0 and r.norm_h[0] == 1.0
    assert list(r.distances[1:]) == sorted(set(r.distances[1:])) and r.distances[-1] == t
    for d, got in zip(r.distances[1:], r.norm_h[1:]):
        assert got == pytest.approx(_exact_relative_norm(cell, x, w, int(d)), rel=0.05)
    assert (r.norm_c is not None) == (cell == "lstm")


def test_forget_bias_goes_to_b_ih_forget_rows_only():
    w = ln.init_weights("lstm", 2, 5, dtype=np.float64, seed=0)
    w1 = gf.with_forget_bias(w, 1.0)
    np.testing.assert_array_equal(w1.b_ih - w.b_ih, np.r_[np.zeros(5), np.ones(5), np.zeros(10)])
    np.testing.assert_array_equal(w1.b_hh, w.b_hh)
    with pytest.raises(ValueError, match="forget_bias"):
        gf.gradient_flow("gru", hidden=2, seq_len=2, batch=1, forget_bias=1.0, backend="numpy")


def test_horizon_interpolates_and_says_never():
    d = np.array([0, 1, 10, 100])
    assert gf.horizon(d, [1, 0.1, 1e-2, 1e-4]) == pytest.approx(55.0)
    assert gf.horizon(d, [1, 0.5, 0.2, 0.1]) == math.inf
    assert gf.horizon(d, [1, 0.5, 0.0, 0.0]) == 10.0
    np.testing.assert_array_equal(gf.distances(10, 4), [1, 2, 5, 10])


def test_gradient_flow_rejects_bad_sizes():
    with pytest.raises(ValueError, match="seq_len"):
        gf.gradient_flow("rnn", hidden=2, seq_len=0, backend="numpy")
    with pytest.raises(ValueError, match="probes"):
        gf.gradient_flow("rnn", hidden=2, seq_len=3, probes=0, backend="numpy")


def test_gradient_flow_cli_prints_horizons(capsys):
    from lstm_numba.__main__ import main

    rc = main(["gradient-flow", "--cell", "rnn", "--hidden", "4", "--seq-len", "12", "--batch",
               "2", "--backend", "numpy", "--dtype", "float64"])
    out = capsys.readouterr().out
    assert rc == 0 and "horizon" in out and out.splitlines()[2].startswith("rnn")


# ------------------------------------------------------------------ adding problem

def test_adding_data_shapes_markers_targets():
    rng = np.random.default_rng(0)
    t, b = 11, 500
    x, y = ad.adding_data(t, b, rng)
    assert x.shape == (t, b, 2) and y.shape == (b,) and x.dtype == y.dtype == np.float32
    marks = x[:, :, 1]
    assert set(np.unique(marks)) == {0.0, 1.0}
    np.testing.assert_array_equal(marks.sum(axis=0), 2)
    np.testing.assert_array_equal(marks[: t // 2].sum(axis=0), 1)     # one in each half
    np.testing.assert_array_equal(marks[t // 2:].sum(axis=0), 1)
    assert 0 <= x[:, :, 0].min() and x[:, :, 0].max() < 1
    np.testing.assert_allclose(y, (x[:, :, 0] * marks).sum(axis=0), rtol=1e-6)
    x2, y2 = ad.adding_data(t, b, np.random.default_rng(0))
    np.testing.assert_array_equal(x, x2)
    with pytest.raises(ValueError, match="seq_len"):
        ad.adding_data(1, 4, rng)
    with pytest.raises(ValueError, match="batch"):
        ad.adding_data(4, 0, rng)


def test_constant_predictor_scores_one_sixth():
    _, y = ad.adding_data(20, 40000, np.random.default_rng(1), np.float64)
    assert np.mean((y - y.mean()) ** 2) == pytest.approx(ad.CONSTANT_MSE, abs=0.004)
    assert np.mean((y - 1.0) ** 2) == pytest.approx(1 / 6, abs=0.004)


def test_adam_minimises_a_quadratic():
    target = np.array([3.0, -2.0, 0.5])
    p = np.zeros(3)
    opt = ad.Adam([p], lr=0.05)
    for _ in range(2000):
        opt.step([2 * (p - target)])
    np.testing.assert_allclose(p, target, atol=1e-3)
    assert opt.t == 2000


def test_clip_global_norm():
    g = [np.array([3.0]), np.array([4.0])]
    assert ad.clip_global_norm(g, 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose([g[0][0], g[1][0]], [0.6, 0.8])
    g = [np.array([0.3])]
    ad.clip_global_norm(g, 1.0)
    assert g[0][0] == 0.3


def test_short_training_run_lowers_the_loss():
    """GRU, H=8, B=16, T=8, 80 Adam steps with the numba backward: the test MSE falls."""
    r = ad.train_adding("gru", seq_len=8, steps=80, hidden=8, batch=16, lr=1e-2,
                        eval_every=40, test_size=128, seed=0)
    assert r.steps == [0, 40, 80]
    assert all(np.isfinite(r.test_mse))
    assert r.final_mse < 0.5 * r.test_mse[0]
    assert r.final_mse < ad.CONSTANT_MSE * 1.5
    assert r.train_loss[-1] < r.test_mse[0]
    r2 = ad.train_adding("gru", seq_len=8, steps=80, hidden=8, batch=16, lr=1e-2,
                         eval_every=40, test_size=128, seed=0)
    assert r2.test_mse == r.test_mse                     # seeded: the same run


# ------------------------------------------------------------------ bench_claims (smoke grid)

def test_bench_claims_runs_on_the_smoke_grid():
    """Every bench_claims track on the smoke grid, as asv drives it; values are sane."""
    from helpers import bench_classes, bench_methods, benchmark_modules, drive

    with benchmark_modules(["bench_claims"]) as mods:
        mod = mods["bench_claims"]
        classes = {c.__name__: c for c in bench_classes(mod)}
        assert set(classes) == {"GradientFlow", "GradientFlowCurve", "Adding", "CellCost"}
        out = {}
        for name, cls in classes.items():
            for m in bench_methods(cls):
                assert getattr(getattr(cls, m), "unit", None), f"{name}.{m} has no unit"
            results, skipped = drive(cls, ())
            assert not skipped
            out[name] = results
        hz = {p[0]: v for p, m, v in out["GradientFlow"]}
        assert set(hz) == set(mod.FLOW_VARIANTS)
        assert all(1 <= v <= mod.FLOW_T + 1 for v in hz.values())
        assert all(0 < v < 10 for _, _, v in out["GradientFlowCurve"])
        assert len(out["Adding"]) == len(mod.ADD_CELLS) * len(mod.ADD_T) * len(mod.ADD_EVAL)
        assert all(np.isfinite(v) and v > 0 for _, _, v in out["Adding"])
        cost = {(p[0], m): v for p, m, v in out["CellCost"]}
        assert all(v > 0 for v in cost.values())
        # the tape of a gated cell is larger than the RNN's (the RNN keeps h only)
        assert cost[("lstm", "track_tape_bytes_per_step")] > cost[("rnn", "track_tape_bytes_per_step")]
