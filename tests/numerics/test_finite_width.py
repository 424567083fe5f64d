"""numerics.finite_width against sampled networks and against exact small cases.

Tolerances: Monte Carlo standard errors of both sides (the prediction's batch-means error, the measurement's
interval over seeds); for the seed-to-seed spread, whose closure is an approximation, the 20% the benchmark
(benchmarks/bench_finite_width.py) resolves plus three standard errors of a sample sd. Each check also asserts that
the mean-field value is resolved away from the measurement, so that a prediction without the finite-width terms
fails it.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
from scipy import special

from sigprop.numerics import predict
from sigprop.numerics.finite_width import UnitSumProgram, finite_width
from sigprop.theory import finite_width as F
from sigprop.theory import parse
from sigprop.validate import measure


def test_unit_sum_program_expands_state_polynomials():
    x, y = sp.symbols("x y")
    expr = F.s * F.UnitSum(sp.expand((x + F.f) ** 2 * y)) + F.UnitSum(x * F.UnitSum(y) * F.f)
    prog = UnitSumProgram({"out": expr}, (x, y), (F.f,))
    rng = np.random.default_rng(0)
    xs, ys, fs = rng.standard_normal((3, 4)), rng.standard_normal((3, 4)), rng.standard_normal((3, 5))
    got = prog({x: xs, y: ys}, {F.f: fs}, 0.7)["out"]
    want = np.empty((3, 5))
    for c in range(3):
        for j in range(5):
            f = fs[c, j]
            want[c, j] = 0.7 * np.sum((xs[c] + f) ** 2 * ys[c]) + np.sum(xs[c] * ys[c].sum() * f)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_unit_coefficients_with_high_powers_of_compound_bases():
    """Integer powers print as products (NumPy's pow is slow): compound bases, nested and fractional powers and
    negative exponents still evaluate as written, against a loop over the units in plain Python floats."""
    x, y = sp.symbols("x y")
    coeff = (x + 1) ** 3 * y ** 4 - 2 * sp.sqrt(y ** 2 + 1) ** 5 + x ** 8 / (y ** 2 + 2) ** 3
    prog = UnitSumProgram({"out": F.UnitSum(coeff)}, (x, y), ())
    rng = np.random.default_rng(1)
    xs, ys = rng.standard_normal((2, 3, 6))
    got = prog({x: xs, y: ys}, {}, 0.0)["out"]
    want = [[sum((a + 1) ** 3 * b ** 4 - 2 * (b * b + 1) ** 2.5 + a ** 8 / (b * b + 2) ** 3
                 for a, b in zip(xs[c], ys[c]))] for c in range(3)]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_linear_forward_matches_products_of_chi_squares():
    """Deep linear network: p_L = q0 Π_l X_l with X_l independent χ²_n/n, whose raw moments are
    E[X^k] = Π_{j<k}(1 + 2j/n); so E[p_L] = q0 and Var[p_L] = q0²((1 + 2/n)^L − 1), and the sample variance's
    standard error follows from the fourth central moment."""
    n, L, q0, chains = 12, 10, 1.7, 20000
    fw = finite_width(parse(f"{L}*dense(linear)"), width=n, q0=q0, chains=chains, seed=3)
    m = [q0**k * np.prod([1 + 2 * j / n for j in range(k)]) ** L for k in range(5)]
    var = m[2] - m[1] ** 2
    mu4 = m[4] - 4 * m[1] * m[3] + 6 * m[1] ** 2 * m[2] - 3 * m[1] ** 4
    assert abs(fw.mean["p"][-1] - q0) < 5 * fw.se["p"][-1]
    assert abs(fw.sd["p"][-1] ** 2 - var) < 5 * math.sqrt((mu4 - var**2) / chains)


def test_one_linear_layer_log_gsc_is_exact():
    """One Gaussian layer: ‖Wx̂‖²/‖W‖²_F ~ Beta(n/2, n(n−1)/2), so log GSC² = −log n − log Beta has mean
    ψ(n²/2) − ψ(n/2) − log n and variance ψ'(n/2) − ψ'(n²/2) (exact; the last layer of a deep linear network)."""
    n, L, chains = 10, 4, 20000
    fw = finite_width(parse(f"{L}*dense(linear)"), width=n, chains=chains, seed=5)
    mean = 0.5 * (special.digamma(n * n / 2) - special.digamma(n / 2) - math.log(n))
    sd = 0.5 * math.sqrt(special.polygamma(1, n / 2) - special.polygamma(1, n * n / 2))
    assert abs(fw.mean["log_gsc"][L - 1] - mean) < 5 * fw.se["log_gsc"][L - 1]
    assert fw.input_sd[L - 1] == pytest.approx(sd, rel=5 / math.sqrt(2 * chains))
    assert abs(mean) > 10 * fw.se["log_gsc"][L - 1]                      # mean field says 0


@pytest.mark.parametrize("arch, width, seeds", [("8*dense(relu,sw2=2)", 16, 600),
                                                ("12*dense(tanh,sw2=1.5,sb2=0.1)", 8, 1500)])
def test_first_moments_are_exact_against_sampled_networks(arch, width, seeds):
    """Pooled gradient correlation and GSC (ratio of quadratic means): the prediction is exact up to Monte Carlo
    error at any depth/width (here τ = 0.5 and 1.5), and the finite-width shift of the gradient correlation is
    resolved."""
    net = parse(arch)
    pred = predict(net, width=width, chains=4000, seed=1)
    meas = measure(net, width=width, seeds=list(range(1000, 1000 + seeds)))
    summary = meas.summary()
    for name in ("grad_corr", "log_gsc_qm"):
        got, se = pred.finite.mean[name], pred.finite.se[name]
        mean, lo, hi = (summary[name][k] for k in ("mean", "lo", "hi"))
        se_meas = (hi - lo) / (2 * 1.96)
        layers = np.arange(net.depth)                     # the output layer is 1 (or 0) on both sides
        tol = 4 * np.sqrt(se[layers] ** 2 + se_meas[layers] ** 2)
        assert np.all(np.abs(got[layers] - mean[layers]) < tol), (name, got[layers], mean[layers], tol)
    mf, meas_gc = pred.values["grad_corr"][:4], summary["grad_corr"]["mean"][:4]
    se_meas = (summary["grad_corr"]["hi"][:4] - summary["grad_corr"]["lo"][:4]) / (2 * 1.96)
    assert np.all(np.abs(mf - meas_gc) > 4 * se_meas)   # mean field misses what width 16 shows


@pytest.mark.parametrize("arch, width, seeds", [("16*dense(relu,sw2=2)", 32, 300),
                                                ("12*dense(tanh,sw2=2.5,sb2=0.05)", 24, 300)])
def test_log_gsc_mean_and_spread_against_sampled_networks(arch, width, seeds):
    net = parse(arch)
    pred = predict(net, width=width, chains=3000, seed=2)
    meas = measure(net, width=width, seeds=seeds)
    per_seed = meas.log_gsc_per_input().mean(axis=2)[:, 0]          # log GSC(0, L), geometric mean of inputs
    mean, sd = per_seed.mean(), per_seed.std(ddof=1)
    se = sd / math.sqrt(seeds)
    fw = pred.finite
    assert abs(fw.mean["log_gsc"][0] - mean) < 4 * math.hypot(se, fw.se["log_gsc"][0])
    assert abs(pred.values["log_gsc"][0] - mean) > 4 * se              # mean field is resolved away
    assert abs(fw.sd["log_gsc"][0] / sd - 1) < 0.2 + 3 / math.sqrt(2 * seeds)
    inside = np.mean((per_seed >= fw.lo["log_gsc"][0]) & (per_seed <= fw.hi["log_gsc"][0]))
    assert inside > 0.9                                                 # the seed-to-seed 95% range


def test_prediction_rows_and_json_carry_the_finite_width_columns():
    pred = predict(parse("3*dense(tanh,sw2=1.5)"), width=16, chains=200)
    rows = pred.to_rows()
    assert {"width", "corrected", "corrected_se", "seed_lo", "seed_hi"} <= set(rows[0])
    assert pred.to_csv().splitlines()[0].endswith("width,corrected,corrected_se,seed_lo,seed_hi")
    gc = [r for r in rows if r["quantity"] == "grad_corr"]
    assert all(math.isnan(r["seed_lo"]) for r in gc)                    # pooled: no per-network range
    assert '"finite_width"' in pred.to_json()
    assert predict(parse("3*dense(tanh,sw2=1.5)")).finite is None


@pytest.mark.parametrize("arch, kwargs, match", [
    ("dense(relu,sw2=2),layernorm", {"width": 16}, "block 2 .*layernorm.*normalization blocks"),
    ("3*dense(tanh,weights=orthogonal)", {"width": 16}, "weights='orthogonal'"),
    ("3*dense(tanh)", {"width": 3}, "width=3"),
    ("3*dense(tanh)", {"width": 16, "chains": 10}, "chains=10"),
    ("3*dense(tanh)", {"width": 16, "c0": 1.0}, "c0=1.0"),
    ("3*dense(tanh)", {"width": 16, "batch": 4}, "batch=4"),
])
def test_bad_input_is_refused_with_a_clear_error(arch, kwargs, match):
    with pytest.raises(ValueError, match=match):
        predict(parse(arch), **kwargs)


def test_networks_that_lose_every_unit_are_left_out_as_in_measurement():
    pred = predict(parse("10*dense(relu,sw2=2)"), width=6, chains=400)
    fw = pred.finite
    assert fw.chains < 400 and any("lost every unit" in note for note in pred.meta["notes"])
    assert all(np.all(np.isfinite(fw.mean[k])) for k in ("log_gsc", "grad_corr", "log_gsc_qm", "p"))


@pytest.mark.filterwarnings("error")
def test_networks_whose_jacobian_underflows_are_left_out_and_said():
    """tanh at σ_w² = 1e6: pre-activations of standard deviation 1000, so φ'(h) = sech²(h) rounds to 0 for most
    units and a path's tr E[JJᵀ] is 0 or 1e-235. Those at 0 are left out and counted in a note (GSC is 0/0 there, as
    in a sampled network, whose float64 backward pass gives a zero gradient); the rest are summarized without NaN
    or warnings (products of two traces of 1e-200 leave float64: the gradient correlation takes roots first). Where
    no network is left, a clear error."""
    pred = predict(parse("10*dense(tanh,sw2=1e6,sb2=1)"), width=64, chains=100)
    assert 0 < pred.finite.chains < 100
    assert any("Jacobian that underflows float64" in note for note in pred.meta["notes"])
    assert all(np.all(np.isfinite(pred.finite.mean[k])) for k in ("log_gsc", "grad_corr", "log_gsc_qm", "p"))
    with pytest.raises(ValueError, match="or has a Jacobian that underflows float64 .*smaller variances"):
        predict(parse("50*dense(tanh,sw2=1e6,sb2=1)"), width=64, chains=100)


def test_gradient_correlation_of_traces_beyond_float64s_normal_range():
    from sigprop.quantities import QUANTITIES
    corr = QUANTITIES["grad_corr"].pooled
    tiny, huge = np.array([1e-200, 3e-300]), np.array([1e200, 3e300])
    np.testing.assert_allclose(corr(0.5 * tiny, tiny, tiny), 0.5, rtol=1e-15)
    np.testing.assert_allclose(corr(-0.25 * huge, huge, huge), -0.25, rtol=1e-15)
    assert corr(np.array(2.0), np.array(2.0), np.array(2.0)) == 1.0        # identical inputs: exactly 1


def test_a_long_network_says_when_depth_over_width_is_beyond_the_checked_range():
    pred = predict(parse("20*dense(relu,sw2=2)"), width=16, chains=100)
    assert pred.finite.tau == pytest.approx(1.25)
    assert any("τ" in note for note in pred.meta["notes"])
