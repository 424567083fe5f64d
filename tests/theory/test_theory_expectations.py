"""Gaussian expectations of theory.activations, each number checked two independent ways.

The closed forms of relu, erf and linear (Cho & Saul 2009; Williams 1997) are lambdified and compared with
(i) adaptive quadrature (scipy.integrate.quad) of the defining Gaussian integral, written here from φ and
    φ' alone (never from the implementation's formulas), split at the relu kink;
(ii) Monte Carlo of the same integral with a fixed seed, N = 2e6 samples, tolerance 5 standard errors from
    the sample standard deviation.
Price's theorem (∂E[φ(u)φ(v)]/∂k = E[φ'(u)φ'(v)]) is checked by differentiating the lambdified kernel with
mpmath (numerical, high precision) against quadrature of E[φ'φ'], independent of SymPy's diff.

The kinds beyond the maps are checked by the identities that define their role, each side computed its own way:
d/dq E[φ²] = E[φ'²] + E[φφ''] (SymPy's derivative of the closed form, or mpmath's of a 30-digit integral, against
the curvature kind), Price's theorem ∂E[φ'φ']/∂k = E[φ''φ''] (mpmath's derivative of the closed form, or a
Richardson difference of the quadrature), and Stein's lemma E[uφ(u)] = q E[φ'(u)] for xmean.

Conventions: z, z1, z2 ~ N(0, 1); (u, v) ~ N(0, [[q1, k], [k, q2]]), k = c·√(q1 q2).
"""
from __future__ import annotations

import math
from functools import lru_cache

import mpmath
import numpy as np
import pytest
import sympy as sp
from scipy import integrate, special

from sigprop.theory import erf, get_activation, linear, relu, tanh
from sigprop.theory.expectations import GaussianExpectation
from sigprop.theory.symbols import k, q, q1, q2

ACTS = {"relu": relu, "erf": erf, "linear": linear}

# φ and φ' written independently of theory/ (scalar versions for quad, array versions for Monte Carlo).
_SQRT_2PI = math.sqrt(2 * math.pi)
PHI = {"relu": lambda x: x if x > 0 else 0.0, "erf": math.erf, "linear": lambda x: x}
DPHI = {"relu": lambda x: 1.0 if x > 0 else 0.0,            # Heaviside step (value at 0 is measure zero)
        "erf": lambda x: 2 / math.sqrt(math.pi) * math.exp(-x * x),
        "linear": lambda x: 1.0}
PHI_NP = {"relu": lambda x: np.maximum(x, 0.0), "erf": special.erf, "linear": lambda x: x}
DPHI_NP = {"relu": lambda x: (x > 0).astype(float),
           "erf": lambda x: 2 / np.sqrt(np.pi) * np.exp(-x**2),
           "linear": lambda x: np.ones_like(x)}

Q_VALUES = [0.3, 1.0, 2.5, 7.0]
# (q1, q2, c): equal and unequal variances, c near +1 and -1, c = 0.
PAIRS = [(1.0, 1.0, 0.3), (0.5, 2.0, 0.999), (1.7, 0.4, -0.95), (2.5, 2.5, 0.0), (0.3, 3.0, -0.5)]

# Quadrature: requested accuracy epsabs = 1e-13, epsrel = 1e-12 per quad call. The comparison tolerance
# is taken from quad's own error estimate: 10 × (outer estimate + largest inner estimate), plus a rounding
# floor of 1e-12 (1 + |value|) for the lambdified closed form (at c = 0.999, √(q1 q2 − k²) cancels ~3
# digits of 1e-16). The estimates are conservative (observed |theory − quad| ~ 1e-15 where they say
# ~1e-9 for polynomially growing integrands) and are themselves required to be < QUAD_ERR_MAX, so every
# comparison is at least as tight as 1e-7 absolute on O(1) values.
QUAD_KW = dict(epsabs=1e-13, epsrel=1e-12, limit=200)
QUAD_ERR_MAX = 1e-8


def _quad_tol(ref, err):
    assert err < QUAD_ERR_MAX, f"quadrature not converged: error estimate {err}"
    return 10 * err + 1e-12 * (1 + abs(ref))


N_MC = 2_000_000
N_SE = 5  # Monte Carlo tolerance in standard errors


def _density(z):
    return math.exp(-0.5 * z * z) / _SQRT_2PI


def _quad_split(f, at=0.0):
    """∫ f over ℝ, split at 0 (the centre of the Gaussian weight) and at ``at`` (the kink of f).

    A kink beyond |40| standard deviations is not split at (the weight there is < e^-800); splitting an
    infinite half-line far from the Gaussian's mass would let quad miss the mass altogether.
    """
    points = sorted({0.0, at} if abs(at) < 40 else {0.0})
    edges = [-np.inf, *points, np.inf]
    total, err = 0.0, 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        v, e = integrate.quad(f, lo, hi, **QUAD_KW)
        total, err = total + v, err + e
    return total, err


@lru_cache(maxsize=None)
def quad_1d(fname: str, deriv: bool, power: int, qv: float):
    """E[f(√q z)^power] by quadrature over z, split at z = 0 (x = 0: the relu kink)."""
    f = (DPHI if deriv else PHI)[fname]
    s = math.sqrt(qv)
    return _quad_split(lambda z: f(s * z) ** power * _density(z))


@lru_cache(maxsize=None)
def quad_2d(fname: str, deriv: bool, q1v: float, q2v: float, cv: float):
    """E[f(u) f(v)] by the conditional decomposition u = √q1 z, v = c√q2 z + √(q2(1−c²)) w.

    Inner integral over w split at the kink of f(v) (w0 = −c√q2 z / √(q2(1−c²))), outer over z split at 0.
    Returns (value, outer error estimate + max inner error estimate).
    """
    f = (DPHI if deriv else PHI)[fname]
    a, s, r = cv * math.sqrt(q2v), math.sqrt(q2v * (1 - cv * cv)), math.sqrt(q1v)
    inner_err = [0.0]

    def inner(z):
        val, err = _quad_split(lambda w: f(a * z + s * w) * _density(w), at=-a * z / s)
        inner_err[0] = max(inner_err[0], err)
        return val

    val, err = _quad_split(lambda z: f(r * z) * inner(z) * _density(z))
    return val, err + inner_err[0]


@pytest.fixture(scope="module")
def normals():
    rng = np.random.default_rng(20261123)
    return rng.standard_normal(N_MC), rng.standard_normal(N_MC)


def _mc_check(samples, predicted):
    mean = samples.mean()
    se = samples.std(ddof=1) / math.sqrt(samples.size)
    # Tolerance: N_SE standard errors; a 1e-12 floor for zero-variance integrands (linear's φ' ≡ 1).
    tol = N_SE * se + 1e-12 * (1 + abs(predicted))
    assert abs(mean - predicted) <= tol, f"MC {mean} ± {se} vs theory {predicted} (tol {tol})"


def _theory_1d(act, kind):
    expr = {"mean": act.mean, "square": act.second_moment, "dsquare": act.dsecond_moment}[kind](q)
    assert not expr.atoms(GaussianExpectation), f"{act.name}.{kind} should be a closed form: {expr}"
    return sp.lambdify(q, expr, modules=["numpy", "scipy"])


def _theory_2d(act, kind):
    expr = {"kernel": act.kernel, "dkernel": act.dkernel}[kind](q1, q2, k)
    assert not expr.atoms(GaussianExpectation), f"{act.name}.{kind} should be a closed form: {expr}"
    return sp.lambdify((q1, q2, k), expr, modules=["numpy", "scipy"])


_1D = {"mean": (False, 1), "square": (False, 2), "dsquare": (True, 2)}


# -- one-dimensional expectations ------------------------------------------------------------------
@pytest.mark.parametrize("name", ACTS)
@pytest.mark.parametrize("kind", list(_1D))
@pytest.mark.parametrize("qv", Q_VALUES)
def test_1d_against_quadrature(name, kind, qv):
    deriv, power = _1D[kind]
    ref, err = quad_1d(name, deriv, power, qv)
    got = float(_theory_1d(ACTS[name], kind)(qv))
    assert abs(got - ref) <= _quad_tol(ref, err), (got, ref, err)


@pytest.mark.parametrize("name", ACTS)
@pytest.mark.parametrize("kind", list(_1D))
@pytest.mark.parametrize("qv", Q_VALUES)
def test_1d_against_monte_carlo(name, kind, qv, normals):
    deriv, power = _1D[kind]
    x = math.sqrt(qv) * normals[0]
    samples = (DPHI_NP if deriv else PHI_NP)[name](x) ** power
    _mc_check(samples, float(_theory_1d(ACTS[name], kind)(qv)))


# -- bivariate expectations ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ACTS)
@pytest.mark.parametrize("kind", ["kernel", "dkernel"])
@pytest.mark.parametrize("q1v,q2v,cv", PAIRS)
def test_2d_against_quadrature(name, kind, q1v, q2v, cv):
    ref, err = quad_2d(name, kind == "dkernel", q1v, q2v, cv)
    got = float(_theory_2d(ACTS[name], kind)(q1v, q2v, cv * math.sqrt(q1v * q2v)))
    assert abs(got - ref) <= _quad_tol(ref, err), (got, ref, err)


@pytest.mark.parametrize("name", ACTS)
@pytest.mark.parametrize("kind", ["kernel", "dkernel"])
@pytest.mark.parametrize("q1v,q2v,cv", PAIRS)
def test_2d_against_monte_carlo(name, kind, q1v, q2v, cv, normals):
    z1, z2 = normals
    u = math.sqrt(q1v) * z1
    v = math.sqrt(q2v) * (cv * z1 + math.sqrt(1 - cv * cv) * z2)  # Cov(u, v) = c √(q1 q2) = k
    f = (DPHI_NP if kind == "dkernel" else PHI_NP)[name]
    _mc_check(f(u) * f(v), float(_theory_2d(ACTS[name], kind)(q1v, q2v, cv * math.sqrt(q1v * q2v))))


@pytest.mark.parametrize("name", ACTS)
def test_kernel_diagonal_is_second_moment(name):
    # E[φ(u)φ(v)] at c = 1 is E[φ(u)²]: the closed form must reach its diagonal. Evaluated exactly in SymPy
    # (in floats, k/(√q1·√q2) rounds to 1 + 2e-16 at c = 1 and arccos gives nan: numerics must clip c),
    # and compared with quadrature of E[φ²], not with the implementation.
    for qv in (sp.Rational(1, 2), sp.Integer(3)):
        ref, err = quad_1d(name, False, 2, float(qv))
        got = float(ACTS[name].kernel(q1, q2, k).subs({q1: qv, q2: qv, k: qv}))
        assert abs(got - ref) <= _quad_tol(ref, err), (got, ref, err)


# -- Price's theorem: ∂/∂k kernel = E[φ'(u)φ'(v)] -------------------------------------------------
@pytest.mark.parametrize("name", ACTS)
@pytest.mark.parametrize("q1v,q2v,cv", PAIRS)
def test_price_theorem_numerical_derivative(name, q1v, q2v, cv):
    """mpmath's numerical derivative (30 digits) of the closed-form kernel equals quadrature of E[φ'φ']."""
    kernel = sp.lambdify((q1, q2, k), ACTS[name].kernel(q1, q2, k), modules="mpmath")
    with mpmath.workdps(30):
        kv = mpmath.mpf(cv) * mpmath.sqrt(mpmath.mpf(q1v) * mpmath.mpf(q2v))
        deriv = float(mpmath.diff(lambda kk: kernel(mpmath.mpf(q1v), mpmath.mpf(q2v), kk), kv))
    ref, err = quad_2d(name, True, q1v, q2v, cv)
    # mpmath.diff at 30 digits is exact to far below the quadrature tolerance.
    assert abs(deriv - ref) <= _quad_tol(ref, err), (deriv, ref, err)


# -- the unevaluated tanh expectations ---------------------------------------------------------------
def test_tanh_expectations_are_unevaluated():
    for expr in (tanh.second_moment(q), tanh.dsecond_moment(q), tanh.kernel(q1, q2, k), tanh.dkernel(q1, q2, k)):
        assert isinstance(expr, GaussianExpectation)
        assert expr.activation is tanh
    assert not tanh.has_closed_forms


def test_tanh_price_theorem_symbolic():
    d = sp.diff(tanh.kernel(q1, q2, k), k)
    assert d == tanh.dkernel(q1, q2, k)
    assert isinstance(d, GaussianExpectation) and d.kind == "dkernel"
    # The chain rule goes through the unevaluated function: d/dk K(q1, q2, 2k) = 2 E[φ'φ'](q1, q2, 2k).
    assert sp.diff(tanh.kernel(q1, q2, 2 * k), k) == 2 * tanh.dkernel(q1, q2, 2 * k)


def test_tanh_derivative_in_variance_stays_unevaluated():
    d = sp.diff(tanh.second_moment(q), q)  # needed e.g. for χ_∥ = dq'/dq of a tanh layer
    assert d.has(GaussianExpectation)


def test_tanh_printing():
    for expr in (tanh.second_moment(q), tanh.dsecond_moment(q), tanh.kernel(q1, q2, k), tanh.dkernel(q1, q2, k)):
        s, tex = str(expr), sp.latex(expr)
        assert "tanh" in s and s.startswith("E[")
        assert "tanh" in tex and r"\mathbb{E}" in tex
    assert "tanh'" in str(tanh.dkernel(q1, q2, k))
    # Powers render around the whole expectation.
    assert sp.latex(tanh.second_moment(q) ** 2).endswith("^{2}")


def test_odd_and_nonodd_means():
    assert tanh.mean(q) == 0            # tanh is odd
    assert erf.mean(q) == 0
    m = relu.mean(q)
    assert m != 0 and not m.atoms(GaussianExpectation)
    assert float(m.subs(q, 1)) > 0


def test_determinant_prints_products_and_sums_with_their_parentheses():
    """The printed covariance determinant reads back as the same value (k = a·b squared is (a*b)**2)."""
    from sigprop.theory.determinant import covariance_determinant
    a, b = sp.symbols("a b", positive=True)
    for qa, qb, kab in [(a * b, a, a * b), (a + b, a, a - b), (a, b, a)]:
        text = str(covariance_determinant(qa, qb, kab))
        assert sp.simplify(sp.sympify(text, locals={"a": a, "b": b}) - (qa * qb - kab**2)) == 0, text


# -- the kinds beyond the maps: the d/dq identity (curvature), Price (ddkernel), Stein (xmean) ----------------
# φ'' is distributional: a kink t where φ' jumps by J adds J δ(x − t). The identities below hold exactly with it
# (and fail without the deltas: hard tanh and the shifted relu have φ(t) ≠ 0 at their kinks).
CURVATURE_CLOSED = ["relu", "erf", "linear", "abs", "sin", "cos", "exp", "hard_tanh", "leaky_relu(a=0.3)",
                    "power(n=3)", "affine(relu,a=2,c=0.3,d=0.5)", "affine(erf,a=2,b=0.5,d=0.1)"]
CURVATURE_NUMERICAL = ["tanh", "softplus", "selu", "gelu", "elu(a=0.5)", "softsign", "affine(tanh,a=1.5,b=0.7,d=0.2)"]


def _mp_1d(expr, qv):
    """E[f(√q z)] by mpmath quadrature (at the working precision) of f's SymPy definition, split at its kinks and
    steep points."""
    from sigprop.theory.piecewise import piecewise_form
    from sigprop.theory.symbols import x
    f = sp.lambdify(x, piecewise_form(expr), "mpmath")
    s = mpmath.sqrt(qv)
    pts = [-mpmath.inf] + [mpmath.mpf(t) / s for t in (-4, -1, 0, 1, 4)] + [mpmath.inf]
    return mpmath.quad(lambda z: f(s * z) * mpmath.npdf(z), pts)


@pytest.mark.parametrize("name", CURVATURE_CLOSED)
def test_curvature_is_the_slope_of_the_second_moment_symbolic(name):
    """d/dq E[φ²] = E[φ'²] + E[φφ''], SymPy's derivative of the closed-form second moment, at 30 digits."""
    act = get_activation(name)
    forms = (act.second_moment(q), act.dsecond_moment(q), act.curvature(q))
    assert not any(f.has(GaussianExpectation) for f in forms), forms
    gap = sp.diff(forms[0], q) - forms[1] - forms[2]
    for qv in ("0.3", "1.7", "6"):
        size = sp.N(abs(forms[1].subs(q, sp.Float(qv, 30))) + abs(forms[2].subs(q, sp.Float(qv, 30))), 30)
        assert abs(sp.N(gap.subs(q, sp.Float(qv, 30)), 30)) <= 1e-13 * (1 + size), (name, qv)


@pytest.mark.parametrize("name", CURVATURE_NUMERICAL)
def test_curvature_is_the_slope_of_the_second_moment_numerical(name):
    """The same identity where the expectations are quadrature: mpmath's derivative in q of a 30-digit
    integral of φ² against numerics' E[φ'²] + E[φφ'']."""
    from sigprop.numerics import expectation
    act = get_activation(name)
    for qv in (0.4, 1.3, 5.0):
        with mpmath.workdps(30):
            slope = float(mpmath.diff(lambda t: _mp_1d(act.phi**2, t), mpmath.mpf(qv)))
        got = expectation(act, "dsquare", qv) + expectation(act, "curvature", qv)
        assert abs(got - slope) <= 1e-10 * (1 + abs(slope)), (name, qv, got, slope)


@pytest.mark.parametrize("name", ["step", "sign"])
def test_curvature_and_ddkernel_are_undefined_where_phi_jumps(name):
    from sigprop.theory.expectations import UndefinedExpectation
    act = get_activation(name)
    with pytest.raises(UndefinedExpectation, match=f"curvature of {name} is not defined: phi jumps"):
        act.curvature(q)
    with pytest.raises(ValueError, match=f"ddkernel of {name} is not defined: phi jumps"):
        act.ddkernel(q1, q2, k)
    assert act.expectation_sources()["curvature"].startswith("undefined: phi jumps")
    assert act.dquartic(q) == 0                          # φ' = 0 almost everywhere: defined, and 0


PRICE_CLOSED = ["relu", "erf", "abs", "sin", "exp", "leaky_relu(a=0.3)", "power(n=3)", "affine(erf,b=-2)"]


@pytest.mark.parametrize("name", PRICE_CLOSED)
@pytest.mark.parametrize("q1v,q2v,cv", PAIRS)
def test_ddkernel_is_price_of_dkernel_closed_forms(name, q1v, q2v, cv):
    """mpmath's numerical derivative in k (30 digits) of the closed-form E[φ'φ'] equals the closed-form E[φ''φ'']."""
    act = get_activation(name)
    dkernel = sp.lambdify((q1, q2, k), act.dkernel(q1, q2, k), modules="mpmath")
    ddkernel = sp.lambdify((q1, q2, k), act.ddkernel(q1, q2, k), modules="mpmath")
    with mpmath.workdps(30):
        a, b = mpmath.mpf(q1v), mpmath.mpf(q2v)
        kv = mpmath.mpf(cv) * mpmath.sqrt(a * b)
        deriv = mpmath.diff(lambda kk: dkernel(a, b, kk), kv)
        # 1e-14: parameters given as floats (a = 0.3) carry 53-bit precision into the expressions
        assert abs(deriv - ddkernel(a, b, kv)) <= 1e-14 * (1 + abs(deriv)), (name, deriv, ddkernel(a, b, kv))


@pytest.mark.parametrize("name", ["hard_tanh", "tanh", "selu", "softplus", "affine(relu,a=2,c=0.3,d=0.5)"])
def test_ddkernel_is_price_of_dkernel_numerical(name):
    """Where E[φ'φ'] is quadrature, its Richardson-extrapolated central difference in k equals E[φ''φ''] (closed
    form from the Dirac deltas alone for hard tanh and the shifted relu, quadrature plus deltas for selu)."""
    from sigprop.numerics import expectation
    act = get_activation(name)
    for q1v, q2v, cv in [(1.0, 1.0, 0.3), (0.5, 2.0, 0.7), (1.7, 0.4, -0.6)]:
        kv, h = cv * math.sqrt(q1v * q2v), 1e-3
        d = [(expectation(act, "dkernel", q1v, q2v, kv + hh) - expectation(act, "dkernel", q1v, q2v, kv - hh))
             / (2 * hh) for hh in (h, h / 2)]
        slope = (4 * d[1] - d[0]) / 3
        got = expectation(act, "ddkernel", q1v, q2v, kv)
        assert abs(got - slope) <= 1e-8 * (1 + abs(slope)), (name, q1v, q2v, cv, got, slope)


def test_ddkernel_of_unevaluated_dkernel_symbolic():
    assert sp.diff(tanh.dkernel(q1, q2, k), k) == tanh.ddkernel(q1, q2, k)
    assert sp.diff(tanh.kernel(q1, q2, k), k, 2) == tanh.ddkernel(q1, q2, k)
    assert sp.diff(tanh.dkernel(q1, q2, 2 * k), k) == 2 * tanh.ddkernel(q1, q2, 2 * k)
    assert "tanh''" in str(tanh.ddkernel(q1, q2, k)) and r"\operatorname{tanh}''" in sp.latex(tanh.curvature(q))
    assert str(tanh.dquartic(q)) == "E[tanh'(u)⁴ | u~N(0, q)]"
    # relu: φ'' = δ, E[δ(u)δ(v)] is the density at the origin
    assert sp.simplify(relu.ddkernel(q1, q2, k) - 1 / (2 * sp.pi * sp.sqrt(q1 * q2 - k**2))) == 0


def test_ddkernel_of_a_jump_with_a_slope_refuses_to_differentiate():
    """relu + step: φ' = Heaviside a.e. gives an unevaluated E[φ'φ'], but Price's theorem does not reach its φ''."""
    from sigprop.theory import Activation
    act = Activation("relu_plus_step", "Max(0, x) + Heaviside(x)")
    assert isinstance(act.dkernel(q1, q2, k), GaussianExpectation)
    with pytest.raises(ValueError, match="phi jumps"):
        sp.diff(act.dkernel(q1, q2, k), k)


@pytest.mark.parametrize("name", ["relu", "erf", "sin", "exp", "gelu", "hard_tanh", "leaky_relu(a=0.3)", "linear"])
def test_xmean_is_stein(name):
    """E[uφ(u)] = q E[φ'(u)] for continuous φ (Stein 1981), E[φ'] integrated by SymPy from φ' independently."""
    from sigprop.theory.expectations import integrate_1d
    act = get_activation(name)
    gap = act.xmean(q) - q * integrate_1d(act.dphi, q)
    for qv in ("0.3", "2.5"):
        assert abs(sp.N(gap.subs(q, sp.Float(qv, 30)), 30)) < 1e-13, name


def test_xmean_of_a_jump_counts_the_jump():
    """step: E[u·1{u>0}] = √(q/2π), the jump's δ in Stein's lemma, while the a.e. φ' = 0 gives q E[φ'] = 0."""
    step = get_activation("step")
    assert sp.simplify(step.xmean(q) - sp.sqrt(q / (2 * sp.pi))) == 0 and step.dphi == 0


@pytest.mark.parametrize("name", ["tanh", "softplus", "selu", "affine(erf,c=0.1)", "affine(gelu,a=2,b=0.5,c=0.1,d=-0.2)"])
def test_xmean_is_stein_numerical(name):
    """Quadrature against q E[φ'] at 30 digits; an erf of a shifted argument is left to quadrature at once (SymPy
    took minutes on it, and the CLI with it)."""
    from sigprop.numerics import expectation
    act = get_activation(name)
    assert act.xmean(q).has(GaussianExpectation)             # not handed to SymPy's integrator
    for qv in (0.4, 3.0):
        with mpmath.workdps(30):
            ref = qv * _mp_1d(act.dphi, qv)
        assert abs(expectation(act, "xmean", qv) - float(ref)) <= 1e-11 * (1 + abs(float(ref))), name


def test_registered_means_and_dkernels_equal_their_derivations():
    """relu's half-normal mean and degree-0 arc-cosine dkernel, erf's differentiated Williams kernel, against
    SymPy's own derivations: the exact Gaussian integral of max(0, u) and Price's theorem on the kernels."""
    from sigprop.theory import erf, relu
    from sigprop.theory.expectations import integrate_1d
    q, q1, q2 = sp.symbols("q q1 q2", positive=True)
    k = sp.Symbol("k", real=True)
    assert sp.simplify(relu.mean(q) - integrate_1d(relu.phi, q)) == 0
    for act in (relu, erf):
        price = sp.diff(act.kernel(q1, q2, k), k)
        for point in ({q1: 1, q2: 2, k: sp.Rational(1, 3)}, {q1: 3, q2: sp.Rational(1, 2), k: -1}):
            assert abs(sp.N((price - act.dkernel(q1, q2, k)).subs(point), 30)) < 1e-25


@pytest.mark.parametrize("n", [4, 7, 12])
def test_monomial_kernels_against_gauss_hermite(n):
    """E[uⁿvⁿ] and E[φ'(u)φ'(v)] of power(n), exact polynomials (SymPy's integrator took minutes at n = 12), against
    a tensor Gauss–Hermite rule of 20 points per axis, exact for these degrees (to rounding)."""
    import numpy as np
    act = get_activation(f"power(n={n})")
    z, w = np.polynomial.hermite_e.hermegauss(20)
    w = w / w.sum()
    for q1v, q2v, c in [(0.7, 1.3, 0.4), (2.0, 0.5, -0.9)]:
        kv = c * np.sqrt(q1v * q2v)
        u = np.sqrt(q1v) * z[:, None]
        v = kv / np.sqrt(q1v) * z[:, None] + np.sqrt(q2v - kv**2 / q1v) * z[None, :]
        weights = w[:, None] * w[None, :]
        for kind, f in (("kernel", lambda t: t**n), ("dkernel", lambda t: n * t ** (n - 1))):
            ref = float(np.sum(weights * f(u) * f(v)))
            got = float(getattr(act, kind)(q1, q2, k).subs({q1: q1v, q2: q2v, k: kv}))
            assert got == pytest.approx(ref, rel=1e-11), (n, kind, q1v, q2v, c)


@pytest.mark.parametrize("call,match", [(lambda a: a.second_moment(-1), "q=-1 is not allowed: .* >= 0 \\(a variance\\)"),
                                        (lambda a: a.mean(sp.I), "q=I is not allowed"),
                                        (lambda a: a.kernel(1, 1, 2), "k=2 is not allowed: a covariance has "
                                                                      "\\|k\\| <= sqrt\\(q1\\*q2\\) = 1"),
                                        (lambda a: a.dkernel(1, -2, 0), "q2=-2 is not allowed"),
                                        (lambda a: a.mean("q"), "q='q' is not allowed: give a number or a SymPy")])
@pytest.mark.parametrize("name", ["relu", "erf", "tanh"])
def test_impossible_arguments_are_refused_by_name(name, call, match):
    """relu.second_moment(-1) was −1/2 and relu.kernel(1, 1, 2) complex: not a variance, not a covariance."""
    with pytest.raises(ValueError, match=match):
        call(get_activation(name))


def test_unevaluated_expectations_of_numbers_pass_the_argument_check():
    tanh = get_activation("tanh")
    inner = 2.5 * tanh.second_moment(sp.Float(0.3))              # a number of unknown sign to SymPy
    assert isinstance(tanh.second_moment(inner), GaussianExpectation)
