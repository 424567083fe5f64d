"""theory.laws (χ₁, χ_c derived from the dense block), theory.signs and theory.balduzzi: symbolic checks.

Checked against: the expressions the laws had before they were derived from the blocks (σ_w² E[φ'²],
σ_w² E[φ'(u)φ'(v)], for every registered activation); the other composition through ``Dense(φ)``'s own χ;
Sheppard's 1/4 + arcsin(c)/(2π) and arccos(c)/π; 40-digit mpmath quadrature of Φ₂ and Owen's T; finite
differences of their derivatives; the blocks' own backward maps for the per-layer gradient-correlation factor.
"""
from __future__ import annotations

import math

import mpmath
import pytest
import sympy as sp

from sigprop.theory import ACTIVATIONS, Dense, PairState, Residual, balduzzi, get_activation, laws, relu, signs
from sigprop.theory import symbols as S
from sigprop.theory.catalog import linear
from sigprop.theory.expectations import GaussianExpectation

q, c, sw2, sb2 = S.q, S.c, S.sigma_w2, S.sigma_b2


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_chi_laws_are_unchanged_by_deriving_them_from_the_dense_block(name):
    act = get_activation(name)
    assert laws.chi_1(act).rhs == sw2 * act.dsecond_moment(q)
    assert laws.chi_c(act).rhs == sw2 * act.dkernel(q, q, q * c)


@pytest.mark.parametrize("name", ["tanh", "relu", "erf", "gelu", "hard_tanh"])
def test_chi_laws_agree_with_the_dense_blocks_own_factor_one_layer_up(name):
    """Dense(φ)'s χ on an input whose pre-activation has covariance (q, q, qc): p = (q − σ_b²)/σ_w²."""
    act = get_activation(name)
    s = PairState((q - sb2) / sw2, (q - sb2) / sw2, (q * c - sb2) / sw2, 0, 0)
    maps = Dense(act, sw2=sw2, sb2=sb2).maps(s)
    assert (maps.pre.q_a, maps.pre.q_ab) == (q, q * c)
    assert sp.simplify(maps.chi.chi_a - laws.chi_1(act).rhs) == 0
    assert sp.simplify(maps.chi.chi_ab - laws.chi_c(act).rhs) == 0


def test_chi_laws_at_numbers_and_at_c_equal_one():
    for name in ("relu", "erf"):
        assert sp.simplify(laws.chi_c(name, q=q, c=1).rhs - laws.chi_1(name).rhs) == 0
    f = laws.chi_1("tanh", sw2=2.5, q=0.3)
    assert f.rhs == 2.5 * get_activation("tanh").dsecond_moment(0.3)          # floats stay exact: no p = q/σ_w²
    assert laws.chi_1(relu, sw2=2).rhs == 1 and laws.chi_c(relu, sw2=2, q=1, c=0).rhs == sp.Rational(1, 2)
    assert laws.chi_1(linear, sw2=3).rhs == 3
    assert "Poole" in laws.chi_1("erf").source and laws.chi_1("erf").latex().startswith(r"\chi_{1} = ")


@pytest.mark.parametrize("name", ["relu", "erf", "hard_tanh", "sin", "cos", "exp", "abs", "leaky_relu", "power"])
def test_chi_q_by_differentiating_the_length_map_is_stein_s_identity(name):
    """dq'/dq of a closed-form E[φ²] (differentiated by SymPy) against σ_w² (E[φ'²] + E[φφ'']), the kinds integrated
    on their own (φφ'' exactly plus the Dirac deltas at the kinks): Gaussian integration by parts, at 40 digits."""
    act = get_activation(name)
    rhs = laws.chi_q(act).rhs
    assert not rhs.has(sp.Derivative) and not rhs.atoms(GaussianExpectation)           # closed forms throughout
    stein = sw2 * (act.dsecond_moment(q) + act.curvature(q))
    for value in (0.3, 1.0, 4.5):
        at = {q: sp.Float(value, 50), sw2: sp.Rational(3, 2), sb2: sp.Rational(1, 10)}
        assert abs(_mp(rhs.subs(at)) - _mp(stein.subs(at))) < 1e-35


def test_chi_q_forms():
    assert laws.chi_q("relu", sw2=2).rhs == 1 and laws.chi_q("sign").rhs == 0      # E[sign²] = 1 for every q
    # tanh (no closed form): the compiled law against a central difference of E[tanh²] integrated by mpmath
    from sigprop.numerics.compile import compile_expression
    chi_q = compile_expression((sw2, q), laws.chi_q("tanh").rhs)
    e2 = lambda qq: mpmath.quad(lambda z: mpmath.tanh(mpmath.sqrt(qq) * z)**2 * mpmath.npdf(z),  # noqa: E731
                                [-mpmath.inf, 0, mpmath.inf])
    h = mpmath.mpf("1e-12")
    assert chi_q(1.7, 0.8) == pytest.approx(float(1.7 * (e2(0.8 + h) - e2(0.8 - h)) / (2 * h)), rel=1e-11)
    assert "Schoenholz" in laws.chi_q("tanh").source
    # hard tanh: E[φ'²] = P(|u| < 1), and φ'' = δ(x + 1) − δ(x − 1) gives −2 N(1; 0, q)
    expect = sp.erf(1 / sp.sqrt(2 * q)) - 2 * sp.exp(-1 / (2 * q)) / sp.sqrt(2 * sp.pi * q)
    assert sp.simplify(laws.chi_q("hard_tanh", sw2=1).rhs - expect) == 0


# --- signs -----------------------------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _forty_digits():
    """mpmath at 40 digits inside these tests (restored after each: other tests share the process)."""
    with mpmath.workdps(40):
        yield


def _mp(expr, dps=40):
    return mpmath.mpf(str(sp.N(expr, dps)))


@pytest.mark.parametrize("cc", [sp.Rational(-9, 10), sp.Rational(-1, 3), 0, sp.Rational(1, 2), sp.Rational(99, 100)])
def test_zero_mean_coactivation_and_disagreement_are_sheppards(cc):
    qa, qb = sp.Rational(3, 2), sp.Rational(5, 7)
    k = cc * sp.sqrt(qa * qb)
    p = signs.coactivation(qa, qb, k).rhs
    d = signs.sign_disagreement(qa, qb, k).rhs
    assert abs(_mp(p) - (mpmath.mpf(1) / 4 + mpmath.asin(_mp(cc)) / (2 * mpmath.pi))) < 1e-35
    assert abs(_mp(d) - mpmath.acos(_mp(cc)) / mpmath.pi) < 1e-35
    # = the step activation's kernel, i.e. ReLU's derivative kernel E[φ'(u)φ'(v)] (P(both active))
    assert sp.simplify(p - relu.dkernel(qa, qb, k)) == 0


def test_coactivation_symbolic_forms_and_special_values():
    assert signs.coactivation(1, 1, 1).rhs == sp.Rational(1, 2) and signs.coactivation(1, 1, -1).rhs == 0
    assert signs.sign_disagreement(2, 2, 1).rhs == sp.Rational(1, 3)
    f = signs.coactivation(mu_a=signs.mu_a, mu_b=signs.mu_b)
    assert f.rhs.func is signs.bivariate_normal_cdf and "Owen" in f.source
    assert r"\Phi_{2}" in f.latex() and "co-activation" in str(f)
    rho = sp.Symbol("rho", real=True)
    h = sp.Symbol("h", real=True)
    B = signs.bivariate_normal_cdf
    assert B(0, 0, rho) == sp.Rational(1, 4) + sp.asin(rho) / (2 * sp.pi)
    assert B(h, 0, 0) == signs.normal_cdf(h) / 2
    assert B(h, h, 1) == signs.normal_cdf(h)                            # Min(h, h)
    assert B(1, -1, -1) == 0                                            # Φ(1) + Φ(−1) − 1 = 0


@pytest.mark.parametrize("h,l,r", [(0.3, -0.4, 0.5), (-1.2, 2.0, -0.7), (2.5, 1.5, 0.95), (-0.5, -0.6, -0.2),
                                   (0.0, 0.8, 0.3), (0.7, 0.0, -0.9), (1e-3, 3.0, 0.999)])
def test_bivariate_normal_cdf_owen_form_against_quadrature(h, l, r):
    h, l, r = (sp.Rational(str(v)) for v in (h, l, r))
    B = signs.bivariate_normal_cdf
    ref = _mp(B(h, l, r))                                               # 40-digit mpmath quadrature (evalf)
    with mpmath.workdps(40):
        direct = mpmath.quad(lambda z: mpmath.npdf(z) * mpmath.ncdf((_mp(l) - _mp(r) * z) / mpmath.sqrt(1 - _mp(r)**2)),
                             [-mpmath.inf, 0, _mp(h)])
    assert abs(ref - direct) < 1e-25
    if h != 0 and l != 0:
        assert abs(_mp(B(h, l, r).rewrite(signs.owens_t)) - ref) < 1e-30


def test_derivatives_of_owens_t_and_phi2_match_finite_differences():
    hh, aa = sp.Rational(7, 10), sp.Rational(13, 10)
    T = signs.owens_t
    for i, (d, at) in enumerate([(sp.Symbol("h", real=True), (None, aa)), (sp.Symbol("a", real=True), (hh, None))]):
        expr = T(d, at[1]) if i == 0 else T(at[0], d)
        x0 = hh if i == 0 else aa
        fd = (_mp(expr.subs(d, x0 + sp.Rational(1, 10**8))) - _mp(expr.subs(d, x0 - sp.Rational(1, 10**8)))) / 2e-8
        assert abs(_mp(sp.diff(expr, d).subs(d, x0)) - fd) < 1e-12
    h, l, r = sp.symbols("h l rho", real=True)
    B = signs.bivariate_normal_cdf(h, l, r)
    point = {h: sp.Rational(3, 10), l: sp.Rational(-1, 2), r: sp.Rational(2, 5)}
    for v in (h, l, r):
        eps = sp.Rational(1, 10**8)
        fd = (_mp(B.subs({**point, v: point[v] + eps})) - _mp(B.subs({**point, v: point[v] - eps}))) / (2 * _mp(eps))
        assert abs(_mp(sp.diff(B, v).subs(point)) - fd) < 1e-12


def test_owens_t_symmetries_and_value():
    T, a = signs.owens_t, sp.Symbol("a", real=True)
    assert T(0, a) == sp.atan(a) / (2 * sp.pi) and T(-2, -a) == -T(2, a) and T(a, 0) == 0
    phi1 = (1 + mpmath.erf(1 / mpmath.sqrt(2))) / 2
    assert abs(_mp(T(1, 1)) - phi1 * (1 - phi1) / 2) < 1e-35          # T(h, 1) = Φ(h)(1 − Φ(h))/2
    assert sp.latex(T(a, 2)) == r"T\left(a, 2\right)"


def test_sign_diversity_forms():
    assert signs.sign_diversity(0, 1).rhs == sp.Rational(1, 2)
    assert abs(_mp(signs.sign_diversity(1, 1).rhs) - mpmath.ncdf(-1)) < 1e-35
    assert "Philipp" in signs.sign_diversity().source
    # the mean over units: 1/2 − arcsin(√c)/π at μ = 0, and a pair's sign disagreement with (qc, q, qc) at any μ
    for cc in (sp.Rational(1, 10), sp.Rational(1, 2), sp.Rational(9, 10)):
        e = signs.expected_sign_diversity(2, cc).rhs
        assert abs(_mp(e) - (mpmath.mpf(1) / 2 - mpmath.asin(mpmath.sqrt(_mp(cc))) / mpmath.pi)) < 1e-35
        assert abs(_mp(e) - _mp(signs.sign_disagreement(2 * cc, 2, 2 * cc).rhs)) < 1e-35
    assert signs.expected_sign_diversity(1, 0, 0).rhs == sp.Rational(1, 2)
    assert signs.expected_sign_diversity(1, 1, 3).rhs == 0


def test_expected_sign_diversity_with_a_mean_is_the_average_of_the_units_diversity():
    q_, cc, m = sp.Rational(3, 2), sp.Rational(2, 5), sp.Rational(1, 3)
    s, tau = mpmath.sqrt(_mp(q_ * cc)), mpmath.sqrt(_mp(q_ * (1 - cc)))
    with mpmath.workdps(30):
        avg = mpmath.quad(lambda z: mpmath.npdf(z) * mpmath.ncdf(-abs(_mp(m) + s * z) / tau),
                          [-mpmath.inf, -_mp(m) / s, mpmath.inf])
    assert abs(_mp(signs.expected_sign_diversity(q_, cc, m).rhs) - avg) < 1e-20


@pytest.mark.parametrize("call,match", [
    (lambda: signs.coactivation(-1, 1, 0), "q_a=-1 is not allowed"),
    (lambda: signs.coactivation(1, 0, 0), "q_b=0 is not allowed"),
    (lambda: signs.coactivation(1, 1, 2), "k=2 is not allowed"),
    (lambda: signs.coactivation(1, 1, 0, mu_a=sp.oo), "mu_a=oo is not allowed"),
    (lambda: signs.sign_diversity(0, -1), "sigma=-1 is not allowed"),
    (lambda: signs.expected_sign_diversity(1, -0.2), "c=-0.2 is not allowed"),
    (lambda: signs.sign_disagreement(1, 1, sp.I), "k=I is not allowed"),
])
def test_bad_input_names_the_parameter(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- Balduzzi's independent-activation model -----------------------------------------------------------------

def test_balduzzi_theorems():
    L = balduzzi.L
    assert balduzzi.correlation("feedforward").rhs == 2**-L
    assert balduzzi.variance("feedforward").rhs == 1 and balduzzi.covariance("feedforward").rhs == 2**-L
    assert balduzzi.variance("resnet", beta=1).rhs == 2**L
    assert balduzzi.covariance("resnet", beta=1).rhs == sp.Rational(3, 2)**L
    assert balduzzi.correlation("resnet", beta=1).rhs == sp.Rational(3, 4)**L
    assert balduzzi.variance("bn_resnet").rhs == S.beta**2 * (L - 1) + 1
    assert balduzzi.correlation("bn_resnet").rhs == 1 / (S.beta * sp.sqrt(L))
    for arch, theorem in (("feedforward", "Theorem 1"), ("bn_resnet", "Theorem 3")):
        assert theorem in balduzzi.correlation(arch).source
    assert "Theorem 2" in balduzzi.correlation("resnet", beta=1).source
    assert "derived" in balduzzi.correlation("resnet").source        # general β: derived in the model
    assert "order" in balduzzi.correlation("bn_resnet").name


def test_balduzzi_depth_scaled_resnet_has_a_depth_independent_correlation():
    L = balduzzi.L
    r = balduzzi.correlation("resnet", beta=1 / sp.sqrt(L)).rhs
    assert sp.limit(r, L, sp.oo) == sp.exp(-sp.Rational(1, 2))
    assert sp.simplify(balduzzi.correlation("bn_resnet", beta=1 / sp.sqrt(L)).rhs) == 1     # ~ 1: no decay


def test_layer_factors_are_the_blocks_backward_maps_at_their_coactivation():
    """Mean field's per-layer factor χ_ab/√(χ_a χ_b), derived from the blocks at pre-activation correlation c, is
    the model's counting formula with P = P(co-active at c); the model is the case P = 1/4, i.e. c = 0."""
    p, b = sp.Symbol("p", positive=True), sp.Symbol("beta", positive=True)
    for cc in (sp.Rational(-1, 2), 0, sp.Rational(1, 3), sp.Rational(4, 5)):
        coact = signs.coactivation(2 * p, 2 * p, 2 * p * cc).rhs            # dense(relu,sw2=2) pre-activations
        chi = Dense(relu, sw2=2).maps(PairState(p, p, p * cc, 0, 0)).chi
        assert sp.simplify(chi.chi_ab / chi.chi_a - balduzzi.layer_factor("feedforward", coact).rhs) == 0
        chi = Residual([Dense(relu, sw2=2), Dense(linear)], beta=b).forward(PairState(p, p, p * cc, 0, 0)).chi
        assert sp.simplify(chi.chi_ab / chi.chi_a - balduzzi.layer_factor("resnet", coact, b).rhs) == 0
    assert signs.coactivation(1, 1, 0).rhs == balduzzi.MODEL_COACTIVATION
    assert balduzzi.layer_factor().rhs == sp.Rational(1, 2)
    assert sp.simplify(balduzzi.layer_factor("resnet", beta=b).rhs ** balduzzi.L
                       - balduzzi.correlation("resnet", beta=b).rhs) == 0


@pytest.mark.parametrize("call,match", [
    (lambda: balduzzi.correlation("mlp"), "architecture='mlp' is not allowed"),
    (lambda: balduzzi.correlation("resnet", L=0), "L=0 is not allowed"),
    (lambda: balduzzi.correlation("resnet", L=2.5), "L=2.5 is not allowed"),
    (lambda: balduzzi.correlation("feedforward", beta=2), "beta=2 is not allowed"),
    (lambda: balduzzi.correlation("bn_resnet", beta=0), "beta=0 is not allowed"),
    (lambda: balduzzi.layer_factor("resnet", coactivation=0.7), "coactivation=0.7 is not allowed"),
])
def test_balduzzi_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_formulas_render():
    for f in (signs.coactivation(), signs.sign_disagreement(mu_a=1, mu_b=2), signs.sign_diversity(),
              signs.expected_sign_diversity(mu=signs.mu), balduzzi.correlation("resnet"), laws.chi_c("relu")):
        assert f.latex() and str(f) and f.source
    assert math.isclose(float(signs.coactivation(1, 1, sp.Rational(1, 2)).rhs), 1 / 3, rel_tol=1e-15)
