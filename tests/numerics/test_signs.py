"""numerics.signs: the sign laws in numbers, against 40-digit mpmath, SciPy's bivariate normal and Monte Carlo.

Monte Carlo tolerances are 5 standard errors of the sampled proportion (√(p(1−p)/n), or the sample standard
deviation of per-unit values over √units); everything is seeded, so the outcome is deterministic. The z-scores
are recorded in the CHANGELOG.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
from scipy import stats

from sigprop.numerics import predict
from sigprop.numerics import signs as N
from sigprop.theory import parse
from sigprop.theory.signs import bivariate_normal_cdf as phi2_theory

RNG_SEED = 20240611


def test_bivariate_normal_cdf_against_40_digit_mpmath_and_scipy():
    rng = np.random.default_rng(0)
    worst, worst_estimate = 0.0, 0.0
    for t in range(120):
        h, l = rng.normal(0, 2, 2)
        rho = rng.uniform(-1, 1)
        if t % 6 == 0:                                  # near-degenerate correlations
            rho = math.copysign(1 - 10 ** rng.uniform(-12, -2), rho)
        if t % 7 == 0:
            h = 0.0
        value, estimate = N.bivariate_normal_cdf(h, l, rho, error=True)
        ref = float(phi2_theory(sp.Float(h, 30), sp.Float(l, 30), sp.Float(rho, 30)).evalf(30))
        worst, worst_estimate = max(worst, abs(value - ref)), max(worst_estimate, estimate)
        assert abs(value - ref) <= max(estimate, 1e-15)
        if abs(rho) < 0.99:
            mvn = stats.multivariate_normal(mean=[0, 0], cov=[[1, rho], [rho, 1]]).cdf([h, l])
            assert abs(value - mvn) < 1e-6                         # SciPy's own default tolerance is 1e-5
    assert worst < 1e-14 and worst_estimate < 1e-11
    assert N.bivariate_normal_cdf(1.0, -1.0, -1.0) == 0.0
    assert N.bivariate_normal_cdf(0.5, 2.0, 1.0) == pytest.approx(stats.norm.cdf(0.5), rel=1e-15)


def test_zero_mean_closed_forms_keep_their_digits_near_c_one():
    """Against 40-digit arccos of the exact float input (k = 3 − δ: 3 − k is exact in floats)."""
    import mpmath
    for delta in (3e-4, 3e-8, 3e-12, 3e-15):
        k = 3.0 - delta
        with mpmath.workdps(40):
            theta = mpmath.acos(mpmath.mpf(k) / 3)
            ref_d, ref_p = float(theta / mpmath.pi), float(mpmath.mpf(1) / 2 - theta / (2 * mpmath.pi))
        assert N.sign_disagreement_probability(3.0, 3.0, k) == pytest.approx(ref_d, rel=1e-13)
        assert N.coactivation_probability(3.0, 3.0, k) == pytest.approx(ref_p, rel=1e-15)
    assert N.coactivation_probability(2.0, 2.0, 2.0) == 0.5 and N.sign_disagreement_probability(2.0, 2.0, -2.0) == 1.0


CASES = [  # (q_a, q_b, k, mu_a, mu_b)
    (1.0, 1.0, 0.0, 0.0, 0.0), (1.0, 1.0, 0.7, 0.0, 0.0), (2.0, 0.5, -0.6, 0.0, 0.0),
    (1.0, 1.0, 0.5, 0.8, 0.8), (1.5, 1.5, -0.3, -0.4, -0.4), (1.0, 2.0, 0.9, 0.5, -1.0), (0.5, 3.0, -1.0, 0.0, 1.2),
    (1.0, 1.0, 0.999, 0.3, 0.31),
]


@pytest.mark.parametrize("q_a,q_b,k,mu_a,mu_b", CASES)
def test_coactivation_and_disagreement_against_monte_carlo(q_a, q_b, k, mu_a, mu_b):
    n = 2_000_000
    rng = np.random.default_rng(RNG_SEED)
    z = rng.standard_normal((2, n))
    c = k / math.sqrt(q_a * q_b)
    u = mu_a + math.sqrt(q_a) * z[0]
    v = mu_b + math.sqrt(q_b) * (c * z[0] + math.sqrt(max(0.0, 1 - c * c)) * z[1])
    for law, sampled in ((N.coactivation_probability, np.mean((u > 0) & (v > 0))),
                         (N.sign_disagreement_probability, np.mean((u > 0) != (v > 0)))):
        p, err = law(q_a, q_b, k, mu_a, mu_b, error=True)
        se = math.sqrt(p * (1 - p) / n)
        assert abs(sampled - p) < 5 * se, (law.__name__, sampled, p, (sampled - p) / se)
        assert err < 1e-11


def _unit_diversity_simulation(q, c, mu, units, inputs, rng):
    """Per unit: pre-activations over ``inputs`` inputs, N(μ + √(qc) z₀, q(1 − c)); its min(P, N)/(P + N), its exact
    finite-data expectation given z₀ (binomial), and its large-data limit Φ(−|μ + √(qc) z₀|/√(q(1 − c)))."""
    s, tau = math.sqrt(q * c), math.sqrt(q * (1 - c))
    z0 = rng.standard_normal(units)
    measured = np.empty(units)
    for i in range(0, units, 250):
        h = (mu + s * z0[i:i + 250])[:, None] + tau * rng.standard_normal((len(z0[i:i + 250]), inputs))
        pos = np.count_nonzero(h > 0, axis=1)
        measured[i:i + 250] = np.minimum(pos, inputs - pos) / inputs
    p = stats.norm.cdf((mu + s * z0) / tau)
    kk = np.arange(inputs + 1)
    finite = (stats.binom.pmf(kk[None, :], inputs, p[:, None]) * np.minimum(kk, inputs - kk)[None, :]).sum(1) / inputs
    limit = np.minimum(p, 1 - p)
    return measured, finite, limit


@pytest.mark.parametrize("q,c,mu", [(1.0, 0.3, 0.0), (2.0, 0.8, 0.0), (1.0, 0.5, 0.6), (1.0, 0.05, -0.2)])
def test_expected_sign_diversity_against_simulated_units(q, c, mu):
    """Philipp et al.'s min(P, N)/(P + N) per unit over a simulated data set, averaged over units; the data set's
    finite size biases it (a concave function of a noisy proportion), by an amount computed exactly here from the
    binomial law and removed before the comparison."""
    rng = np.random.default_rng(RNG_SEED)
    units, inputs = 4000, 2000
    measured, finite, limit = _unit_diversity_simulation(q, c, mu, units, inputs, rng)
    expected = N.expected_sign_diversity(q, c, mu)
    bias = float(np.mean(finite - limit))
    se = measured.std(ddof=1) / math.sqrt(units)
    assert abs(measured.mean() - bias - expected) < 5 * se, (measured.mean(), bias, expected, se)
    assert abs(bias) < 2e-3


def test_unit_sign_diversity_is_the_minority_fraction():
    assert N.sign_diversity(0.0, 2.0) == 0.5
    assert N.sign_diversity(-1.0, 1.0) == N.sign_diversity(1.0, 1.0) == pytest.approx(stats.norm.cdf(-1.0), rel=1e-14)
    assert N.sign_diversity(40.0, 1.0) == pytest.approx(stats.norm.cdf(-40.0), rel=1e-10)     # erfc keeps the tail
    assert N.expected_sign_diversity(1.0, 0.0) == 0.5 and N.expected_sign_diversity(1.0, 1.0, 0.4) == 0.0
    for c in (0.01, 0.3, 0.99):
        assert N.expected_sign_diversity(1.7, c) == pytest.approx(0.5 - math.asin(math.sqrt(c)) / math.pi, rel=1e-13)
        # the mean-free formula is the μ → 0 limit of the general one (Φ₂ by Owen's T)
        assert N.expected_sign_diversity(1.7, c, 1e-9) == pytest.approx(N.expected_sign_diversity(1.7, c), abs=1e-9)


def test_predicted_coactivation_and_sign_diversity_follow_the_prediction():
    pred = predict(parse("3*dense(relu,sw2=2)"), q0=1.0, c0=0.2)
    c = pred.raw["c"]
    assert np.allclose(N.predicted_coactivation(pred), 0.25 + np.arcsin(c) / (2 * np.pi), rtol=1e-13)
    assert np.allclose(N.predicted_sign_diversity(pred), 0.5 - np.arcsin(np.sqrt(c)) / np.pi, rtol=1e-13)
    with pytest.raises(ValueError, match="c >= 0"):
        N.predicted_sign_diversity(predict(parse("dense(tanh)"), c0=-0.5))


@pytest.mark.parametrize("call,match", [
    (lambda: N.coactivation_probability(0.0, 1.0, 0.0), "q_a=0.0 is not allowed"),
    (lambda: N.coactivation_probability(1.0, 1.0, 1.5), "k=1.5 is not allowed"),
    (lambda: N.coactivation_probability(1.0, 1.0, 0.0, mu_a=float("nan")), "mu_a=nan is not allowed"),
    (lambda: N.sign_disagreement_probability(1.0, "2", 0.0), "q_b='2' is not allowed"),
    (lambda: N.bivariate_normal_cdf(0.0, 0.0, 1.2), "rho=1.2 is not allowed"),
    (lambda: N.sign_diversity(0.0, 0.0), "sigma=0.0 is not allowed"),
    (lambda: N.expected_sign_diversity(1.0, 1.5), "c=1.5 is not allowed"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
