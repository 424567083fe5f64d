"""Blocks, their one-step maps and laws (theory/blocks.py, theory/laws.py).

Each check pits a theory expression against something computed another way: an independent statement of
the papers (He-ReLU GSC = 1, Philipp, Song & Carbonell 2018; critical χ = 1, Schoenholz et al. 2017),
quadrature or Monte Carlo of the expectations, or a sampled wide network in numpy. Width-based tolerances are stated where they are used.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
from scipy import integrate, special

from sigprop.theory import Act, Dense, Network, PairState, Residual, erf, laws, linear, relu, tanh
from sigprop.theory.expectations import GaussianExpectation
from sigprop.theory.symbols import m, p


def _quad_gauss(f, qv):
    """E[f(√q z)] by quad over two half-lines (error estimate asserted small)."""
    s = math.sqrt(qv)
    g = lambda z: f(s * z) * math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    a, ea = integrate.quad(g, -np.inf, 0, epsabs=1e-13, epsrel=1e-12)
    b, eb = integrate.quad(g, 0, np.inf, epsabs=1e-13, epsrel=1e-12)
    assert ea + eb < 1e-10
    return a + b


# -- Dense ------------------------------------------------------------------------------------------
def test_he_relu_gsc_is_one():
    # THEORY §4: ReLU with σ_b = 0 has GSC = 1 for every σ_w (positive homogeneity), in particular He init.
    assert Dense(relu, sw2=2).gsc_factor().rhs == 1
    s = sp.Symbol("s", positive=True)
    assert sp.simplify(Dense(relu, sw2=s).gsc_factor().rhs - 1) == 0
    # ... and not for a bias (σ_b > 0 breaks homogeneity): the factor then depends on p.
    assert sp.simplify(Dense(relu, sw2=2, sb2=sp.Rational(1, 10)).gsc_factor().rhs - 1) != 0


def test_relu_length_map_symbolic():
    # E[relu(√q z)²] = q/2 (half of a Gaussian second moment), q = s·p with σ_b = 0.
    s = sp.Symbol("s", positive=True)
    assert sp.simplify(Dense(relu, sw2=s).length_map().rhs - s * p / 2) == 0
    assert Dense(relu, sw2=2).length_map().rhs == p


def test_relu_critical_chi():
    # He-ReLU is critical: χ₁ = σ_w² P(h > 0) = 2 · 1/2 = 1, and at c = 1 the gradient-covariance factor
    # is χ₁ too. Below c = 1 the factor is 2 (π − θ)/(2π) = 1 − θ/π (THEORY §5), e.g. 1/2 at c = 0.
    maps = Dense(relu, sw2=2, sb2=0).forward(PairState(p, p, p, m, m))  # c = p_ab/p = 1
    assert tuple(sp.simplify(x) for x in (maps.chi.chi_a, maps.chi.chi_b, maps.chi.chi_ab)) == (1, 1, 1)
    assert laws.chi_1(relu, sw2=2).rhs == 1
    assert laws.chi_c(relu, sw2=2, c=1).rhs == 1
    assert sp.simplify(laws.chi_c(relu, sw2=2, c=0).rhs - sp.Rational(1, 2)) == 0
    half = sp.Rational(1, 2)
    assert sp.simplify(laws.chi_c(relu, sw2=2, c=half).rhs - (1 - sp.acos(half) / sp.pi)) == 0


def test_erf_gsc_against_monte_carlo():
    """One erf layer: GSC² = σ_w² p E[φ'²]/E[φ²] (THEORY §4) vs a ratio of Monte Carlo means."""
    sw2, sb2, pv = 1.7, 0.2, 0.8
    qv = sw2 * pv + sb2
    theory = float(Dense(erf, sw2=sw2, sb2=sb2).gsc_factor().rhs.subs(p, pv))
    rng = np.random.default_rng(7)
    x = math.sqrt(qv) * rng.standard_normal(2_000_000)
    a = (2 / np.sqrt(np.pi) * np.exp(-x**2)) ** 2        # φ'(h)²
    b = special.erf(x) ** 2                               # φ(h)²
    A, B, n = a.mean(), b.mean(), a.size
    ratio = sw2 * pv * A / B
    # Delta method for a ratio of means: var(R)/R² = [var a/A² + var b/B² − 2 cov(a,b)/(AB)]/n.
    cov = np.cov(a, b)
    rel_se = math.sqrt((cov[0, 0] / A**2 + cov[1, 1] / B**2 - 2 * cov[0, 1] / (A * B)) / n)
    assert abs(ratio - theory) <= 5 * rel_se * ratio, (ratio, theory, rel_se)
    assert rel_se < 2e-3  # 5 SE ≈ 0.6 %: sharp enough to catch e.g. a dropped σ_b² (an 11 % change here)


def test_erf_one_layer_gsc_at_fixed_point_is_sqrt_chi1():
    # THEORY §4: at a fixed point q* of the length map (σ_b = 0 ⇒ p = E[φ²](q*), q* = σ_w² p), GSC² = χ₁.
    # Fixed point found numerically from the theory's own length map; χ₁ compared via quadrature of φ'².
    sw2 = 3.0
    f = sp.lambdify(p, sw2 * Dense(erf, sw2=sw2).length_map().rhs, "math")   # q ↦ q' in terms of p = q/σ_w²
    qstar = 1.0
    for _ in range(200):
        qstar = f(qstar / sw2)
    gsc2 = float(Dense(erf, sw2=sw2).gsc_factor().rhs.subs(p, qstar / sw2))
    chi1 = sw2 * _quad_gauss(lambda x: (2 / math.sqrt(math.pi) * math.exp(-x * x)) ** 2, qstar)
    assert gsc2 == pytest.approx(chi1, rel=1e-9)


# -- Residual ---------------------------------------------------------------------------------------
def _replace_expectations(expr):
    """Replace every unevaluated tanh expectation by its quadrature value (arguments must be numbers)."""
    phi = {"square": lambda x: math.tanh(x) ** 2, "dsquare": lambda x: (1 - math.tanh(x) ** 2) ** 2}

    def value(e):
        assert e.activation is tanh and e.kind in phi, e
        return sp.Float(_quad_gauss(phi[e.kind], float(e.args[0])))

    out = expr.replace(lambda e: isinstance(e, GaussianExpectation), value)
    assert not out.atoms(GaussianExpectation)
    return out


@pytest.mark.parametrize("pv,bv", [(0.9, 0.6), (4.0, 2.0), (0.05, 1.0)])
def test_residual_tanh_linear_length_map(pv, bv):
    b = sp.Symbol("b", real=True)
    block = Residual([Dense(tanh), Dense(linear)], alpha=1, beta=b)
    expr = block.length_map().rhs.subs(m, 0).subs({p: pv, b: bv})
    got = float(_replace_expectations(expr))
    expected = pv + bv**2 * _quad_gauss(lambda x: math.tanh(x) ** 2, pv)   # q of the tanh layer = σ_w² p = p
    assert got == pytest.approx(expected, rel=1e-12)


def test_dilution_law_symbolic():
    a, b = sp.symbols("alpha beta", real=True)
    blocks = [Residual([Dense(tanh), Dense(linear)], beta=b),
              Residual([Dense(relu)], alpha=a, beta=b),
              Residual([Dense(erf, sw2=sp.Rational(3, 2), sb2=sp.Rational(1, 2))], beta=b),
              Residual([Dense(tanh, sw2=2, sb2=sp.Rational(1, 4)), Dense(linear)], alpha=a, beta=b)]
    for block in blocks:
        assert laws.check_dilution(block), block.describe()


def test_dilution_law_with_float_parameters():
    assert laws.check_dilution(Residual([Dense(erf, sw2=1.5, sb2=0.3)], beta=sp.Symbol("beta")))
    assert laws.check_dilution(Network.of(Residual([Dense(erf, sw2=1.5, sb2=0.3)])))     # a network of one block


@pytest.mark.parametrize("given", [Dense(relu, sw2=2), Network.of(Residual([Dense(tanh)])) * 2,
                                   Residual([Dense(tanh)], skip=[Dense(linear)])])
def test_dilution_law_takes_one_residual_block_with_an_identity_skip(given):
    """The law's GSC_s = 1 is that of the identity skip; anything else was an AttributeError or a wrong law."""
    for check in (laws.check_dilution, laws.dilution_terms):
        with pytest.raises(ValueError, match=f"{check.__name__} takes one residual block with an identity skip"):
            check(given)


def test_dilution_law_needs_uncorrelated_branches():
    # With a nonzero input mean the relu branch correlates with the skip (THEORY §4 cross term): the block's
    # GSC factor then differs from the dilution law, so the law is not an identity of the code.
    block = Residual([Dense(relu, sw2=2)])
    t = laws.dilution_terms(block)
    law = laws.dilution_law().rhs.subs({laws.k_ratio: sp.sqrt(t[laws.k_ratio**2]), laws.gsc_s: 1,
                                        laws.gsc_r: sp.sqrt(t[laws.gsc_r**2])})
    at = {p: 1, m: sp.Rational(1, 2)}
    assert abs(float((block.gsc_factor().rhs - law).subs(at))) > 0.05


@pytest.mark.slow
def test_dilution_law_on_sampled_network():
    """y = x + β W2 tanh(W1 x), width n = 4000, numpy only (no theory): GSC_y² = (k² + GSC_r²)/(k² + 1)."""
    n, p0, beta = 4000, 25.0, 5.0          # large input: tanh saturates, so GSC_r² is far from 1
    rng = np.random.default_rng(12345)
    W1 = rng.standard_normal((n, n)) / math.sqrt(n)
    W2 = rng.standard_normal((n, n)) / math.sqrt(n)
    x = math.sqrt(p0) * rng.standard_normal(n)
    a = np.tanh(W1 @ x)
    r = beta * (W2 @ a)
    y = x + r
    J_r = beta * (W2 * (1 - a**2)[None, :]) @ W1          # exact Jacobian of the branch
    J_y = J_r + np.eye(n)
    qm2 = lambda J: np.sum(J * J) / n                       # ‖J‖²_qm = ‖J‖_F²/d_in
    nx, nr, ny = x @ x, r @ r, y @ y
    gsc_y2 = qm2(J_y) * nx / ny
    gsc_r2 = qm2(J_r) * nx / nr
    k2 = nx / nr
    law = (k2 + gsc_r2) / (k2 + 1)
    # Finite width: the law assumes ⟨x, r⟩ = 0 and tr(J_r) = 0. ⟨x, r⟩/(‖x‖‖r‖) ~ N(0, 1/n) (W2 independent
    # of x), moving ‖y‖² by a relative 2‖x‖‖r‖/‖y‖² · N(0, 1/n); tr(J_r)/n = O(1/n) is negligible.
    rel_sd = 2 * math.sqrt(nx * nr) / (nx + nr) / math.sqrt(n)
    tol = 5 * rel_sd
    assert abs(gsc_y2 / law - 1) <= tol, (gsc_y2, law, tol)
    # The check discriminates: the law is far from the skip alone (1) and from the branch alone (GSC_r²).
    assert abs(law - 1) > 3 * tol * law and abs(law - gsc_r2) > 3 * tol * law


@pytest.mark.slow
def test_residual_relu_cross_term_on_sampled_network():
    """y = x + relu(W x), W_ij ~ N(0, 2/n), x = relu(g) with mean m ≠ 0: the 2αβ m E[relu] term is needed."""
    n = 4000
    rng = np.random.default_rng(2026)
    x = np.maximum(rng.standard_normal(n), 0.0)
    W = rng.standard_normal((n, n)) * math.sqrt(2.0 / n)
    f = np.maximum(W @ x, 0.0)
    y = x + f
    pv, mv = x @ x / n, x.mean()
    block = Residual([Dense(relu, sw2=2)])
    at = {p: pv, m: mv}
    p_theory = float(block.length_map().rhs.subs(at))
    m_theory = float(block.mean_map().rhs.subs(at))
    # Given x, the units of h = W x are iid N(0, 2 p) (up to the O(1/√n) self-term W_ii x_i), so
    # ‖y‖²/n − p = mean_i(2 x_i f_i + f_i²) is a sample mean of n independent terms: standard error from its
    # sample std (conservative: the spread of x_i adds to it). Tolerance 5 SE.
    t = 2 * x * f + f**2
    se_p = t.std(ddof=1) / math.sqrt(n)
    assert abs(y @ y / n - p_theory) <= 5 * se_p, (y @ y / n, p_theory, se_p)
    se_m = f.std(ddof=1) / math.sqrt(n)
    assert abs(y.mean() - m_theory) <= 5 * se_m, (y.mean(), m_theory, se_m)
    # Without the cross term 2 m E[relu(h)] the prediction would be rejected.
    cross = 2 * mv * math.sqrt(2 * pv / (2 * math.pi))
    assert abs(y @ y / n - (p_theory - cross)) > 5 * se_p


# -- bad input --------------------------------------------------------------------------------------
def test_unknown_activation():
    with pytest.raises(ValueError) as e:
        Dense("foo")
    msg = str(e.value)
    assert "foo" in msg and all(name in msg for name in ("relu", "tanh", "erf", "linear"))


@pytest.mark.parametrize("kw,name", [(dict(sw2=-1), "sw2"), (dict(sb2=float("nan")), "sb2"),
                                     (dict(sb2=float("inf")), "sb2"), (dict(sw2=True), "sw2"),
                                     (dict(sb2=None), "sb2"), (dict(width=0), "width"), (dict(init="xavier"), "init"), (dict(sb2=-0.5), "sb2"),
                                     (dict(sw2=sp.I), "sw2"), (dict(sw2=-sp.Symbol("s", positive=True)), "sw2")])
def test_bad_dense_parameters(kw, name):
    with pytest.raises(ValueError, match=name):
        Dense(relu, **kw)


@pytest.mark.parametrize("kw,name", [(dict(alpha=float("nan")), "alpha"), (dict(beta=float("inf")), "beta"),
                                     (dict(beta=False), "beta")])
def test_bad_residual_parameters(kw, name):
    with pytest.raises(ValueError, match=name):
        Residual([Dense(relu)], **kw)


def test_bad_depth():
    with pytest.raises(ValueError, match="depth"):
        0 * Dense(relu)
    with pytest.raises(ValueError, match="depth"):
        Network(())
    with pytest.raises(ValueError, match="depth"):
        -3 * Dense(relu)
    with pytest.raises(ValueError, match="depth"):
        2.5 * Dense(relu)
    assert (3 * Dense(relu)).depth == 3


def test_bad_residual_branch():
    with pytest.raises(ValueError):
        Residual([])
    with pytest.raises(ValueError):
        Residual([Act(relu)], skip=[Act(relu)])
    with pytest.raises(ValueError):
        Residual(["dense(relu)"])


def test_valid_parameters_accepted():
    # Boundaries that must stay legal: σ_b² = 0, negative skip weights, symbols.
    Dense(relu, sw2=0, sb2=0)
    Residual([Dense(tanh)], alpha=-1, beta=0)
    Dense(tanh, sw2=sp.Symbol("s"), sb2=sp.Symbol("t", nonnegative=True))
