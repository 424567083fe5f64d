"""Signs of Gaussian pre-activations: co-activation, sign disagreement and sign diversity.

For two inputs a, b whose pre-activations (u, v) at one unit are jointly Gaussian,
(u, v) ~ N((μ_a, μ_b), [[q_a, k], [k, q_b]]) (q: variances, k: covariance, c = k/√(q_a q_b)):

- :func:`coactivation`: P(u > 0, v > 0), the probability that a ReLU unit is active at both inputs. At zero means
  it is 1/4 + arcsin(c)/(2π) (Sheppard 1899), which sigprop reads off the step activation's kernel
  E[1{u>0}1{v>0}] (the arc-cosine kernel of degree 0, Cho & Saul 2009) instead of retyping it; with means it is
  the bivariate normal orthant probability Φ₂(μ_a/√q_a, μ_b/√q_b; c) (:class:`bivariate_normal_cdf`), whose
  closed form in Owen's T function (Owen 1956) is ``.rewrite(owens_t)``.
- :func:`sign_disagreement`: P(sign u ≠ sign v) = P(u > 0) + P(v > 0) − 2 P(u > 0, v > 0); arccos(c)/π at zero
  means.
- :func:`sign_diversity`: Philipp, Song & Carbonell's (2018) sign diversity of one unit over a data set,
  min(P, N)/(P + N) with P (N) the number of inputs where its pre-activation is positive (negative), in the limit
  of a large data set over which the pre-activation is N(μ, σ²): min(Φ(μ/σ), 1 − Φ(μ/σ)) = Φ(−|μ|/σ).
- :func:`expected_sign_diversity`: its mean over the units of a random layer for a data set whose pre-activations
  are equicorrelated (variance q, correlation c between any two inputs, common mean μ): per unit the
  pre-activation over the inputs is N(μ + √(qc) z₀, q(1 − c)) with z₀ ~ N(0, 1) drawn per unit, and the mean of
  Φ(−|μ + √(qc) z₀|/√(q(1 − c))) over z₀ is the sign disagreement of a pair with variances (qc, q), covariance qc
  and means (μ, μ); at μ = 0 it is 1/2 − arcsin(√c)/π.

The numbers (with closed forms, Owen's T from SciPy, and an independent quadrature as error estimate) are in
:mod:`sigprop.numerics.signs`.

Example
-------
>>> import sympy as sp
>>> from sigprop.theory import signs
>>> signs.coactivation(1, 1, 0).rhs
1/4
>>> print(signs.sign_disagreement().rhs)                   # arccos(c)/π
atan2(sqrt((q_a*q_b - k**2)), k)/pi
>>> signs.sign_disagreement(1, 1, sp.Rational(1, 2)).rhs
1/3
>>> print(signs.sign_diversity().rhs)
erfc(sqrt(2)*Abs(mu)/(2*sigma))/2
>>> signs.expected_sign_diversity(c=sp.Rational(1, 2)).rhs
1/4
"""
from __future__ import annotations

import mpmath
import sympy as sp
from mpmath.libmp import prec_to_dps

from . import symbols as S
from .activations import get_activation
from .formula import Formula
from .gaussian import normal_cdf, normal_pdf

SHEPPARD = "Sheppard 1899 (orthant probability 1/4 + arcsin(c)/(2 pi)); the step activation's kernel (Cho & Saul 2009)"
OWEN = "Owen 1956, 'Tables for computing bivariate normal probabilities' (Phi_2 in Owen's T function)"
PHILIPP = ("Philipp, Song & Carbonell 2018, arXiv:1712.05577 (sign diversity min(P, N)/(P + N) of a neuron over the "
           "data set, collapsing domain problem)")

#: means of the two inputs' pre-activations, and a unit's mean and standard deviation over a data set
mu, mu_a, mu_b = sp.symbols("mu mu_a mu_b", real=True)
sigma = sp.Symbol("sigma", positive=True)
_h, _l, _rho, _a, _z = sp.symbols("h l rho a z", real=True)


def _to_mpmath(args, prec):
    """The arguments as mpmath numbers at ``prec`` bits (None unless all are numbers)."""
    if not all(a.is_number for a in args):
        return None
    return [sp.N(a, prec_to_dps(prec) + 10)._to_mpmath(prec + 20) for a in args]


class owens_t(sp.Function):  # noqa: N801 - the name SciPy's scipy.special.owens_t answers to in compiled code
    """Owen's T function T(h, a) = (1/2π) ∫₀^a exp(−h²(1 + x²)/2)/(1 + x²) dx (Owen 1956).

    Even in h, odd in a, T(0, a) = arctan(a)/(2π); numerics evaluates it with ``scipy.special.owens_t`` (lambdify
    prints the class name), SymPy's ``evalf`` by mpmath quadrature.

    >>> from sigprop.theory.signs import owens_t
    >>> from sympy import Symbol
    >>> a = Symbol("a", real=True)
    >>> owens_t(0, a), owens_t(-2, -a)
    (atan(a)/(2*pi), -owens_t(2, a))
    >>> round(float(owens_t(1, 1).evalf(20)), 12)     # = Φ(1)(1 − Φ(1))/2
    0.066741882166
    """

    nargs = 2

    @classmethod
    def eval(cls, h, a):
        if a.is_zero:
            return sp.Integer(0)
        if h.is_zero:
            return sp.atan(a) / (2 * sp.pi)
        if h.could_extract_minus_sign():
            return cls(-h, a)
        if a.could_extract_minus_sign():
            return -cls(h, -a)
        return None

    def fdiff(self, argindex=1):
        h, a = self.args
        if argindex == 1:                  # −φ(h) (Φ(ah) − 1/2)
            return -normal_pdf(h) * sp.erf(a * h / sp.sqrt(2)) / 2
        if argindex == 2:
            return sp.exp(-h**2 * (1 + a**2) / 2) / (2 * sp.pi * (1 + a**2))
        raise sp.ArgumentIndexError(self, argindex)

    def _eval_evalf(self, prec):
        vals = _to_mpmath(self.args, prec)
        if vals is None:
            return None
        h, a = vals
        with mpmath.workprec(prec + 20):
            v = mpmath.quad(lambda x: mpmath.exp(-h**2 * (1 + x**2) / 2) / (1 + x**2), [0, a]) / (2 * mpmath.pi)
        return sp.Float._new(v._mpf_, prec)

    def _latex(self, printer, exp=None):
        h, a = (printer._print(x) for x in self.args)
        body = rf"T\left({h}, {a}\right)"
        return rf"{body}^{{{exp}}}" if exp else body


class bivariate_normal_cdf(sp.Function):  # noqa: N801 - reads like a SymPy function
    """Φ₂(h, l; ρ) = P(Z₁ < h, Z₂ < l) for standard normal Z₁, Z₂ with correlation ρ.

    Special values evaluate: ρ = 0 (Φ(h)Φ(l)), ρ = ±1 (Φ(min(h, l)), max(0, Φ(h) + Φ(l) − 1)), h = 0 or l = 0
    (½Φ(l) + T(l, ρ/√(1 − ρ²)), Owen's formula in the limit). ``.rewrite(owens_t)`` gives Owen's (1956) closed
    form for h, l ≠ 0, |ρ| < 1: ½Φ(h) + ½Φ(l) − T(h, (l − ρh)/(h√(1 − ρ²))) − T(l, (h − ρl)/(l√(1 − ρ²))) − δ, with
    δ = ½ when hl < 0 and 0 otherwise. Derivatives: ∂/∂h = φ(h) Φ((l − ρh)/√(1 − ρ²)), and ∂/∂ρ the bivariate
    density (Plackett's identity). ``evalf``: mpmath quadrature of ∫_{−∞}^h φ(z) Φ((l − ρz)/√(1 − ρ²)) dz.

    >>> import sympy as sp
    >>> from sigprop.theory.signs import bivariate_normal_cdf
    >>> from sympy import Symbol
    >>> rho = Symbol("rho", real=True)
    >>> bivariate_normal_cdf(0, 0, rho)
    asin(rho)/(2*pi) + 1/4
    >>> round(float(bivariate_normal_cdf(sp.Rational(3, 10), sp.Rational(-2, 5), sp.Rational(1, 2)).evalf(20)), 12)
    0.283034844488
    """

    nargs = 3

    @classmethod
    def eval(cls, h, l, rho):
        if rho.is_zero:
            return normal_cdf(h) * normal_cdf(l)
        if rho == 1:
            return normal_cdf(sp.Min(h, l))
        if rho == -1:
            return sp.Max(0, normal_cdf(h) + normal_cdf(l) - 1)
        if h.is_zero and l.is_zero:
            return sp.Rational(1, 4) + sp.asin(rho) / (2 * sp.pi)
        if h.is_zero:
            return normal_cdf(l) / 2 + owens_t(l, rho / sp.sqrt(1 - rho**2))
        if l.is_zero:
            return normal_cdf(h) / 2 + owens_t(h, rho / sp.sqrt(1 - rho**2))
        return None

    def fdiff(self, argindex=1):
        h, l, rho = self.args
        r = sp.sqrt(1 - rho**2)
        if argindex == 1:
            return normal_pdf(h) * normal_cdf((l - rho * h) / r)
        if argindex == 2:
            return normal_pdf(l) * normal_cdf((h - rho * l) / r)
        if argindex == 3:
            return sp.exp(-(h**2 - 2 * rho * h * l + l**2) / (2 * r**2)) / (2 * sp.pi * r)
        raise sp.ArgumentIndexError(self, argindex)

    def _eval_rewrite_as_owens_t(self, h, l, rho, **kwargs):
        r = sp.sqrt(1 - rho**2)
        return (normal_cdf(h) / 2 + normal_cdf(l) / 2 - owens_t(h, (l - rho * h) / (h * r))
                - owens_t(l, (h - rho * l) / (l * r)) - sp.Piecewise((sp.S.Half, h * l < 0), (0, True)))

    def _eval_evalf(self, prec):
        vals = _to_mpmath(self.args, prec)
        if vals is None:
            return None
        h, l, rho = vals
        with mpmath.workprec(prec + 20):
            r = mpmath.sqrt((1 - rho) * (1 + rho))
            # break points where φ peaks and where the inner Φ turns (over a width r/|ρ| around l/ρ)
            points = {mpmath.mpf(0)}
            if rho != 0:
                points |= {l / rho + j * r / abs(rho) for j in (-8, -1, 0, 1, 8)}
            nodes = [-mpmath.inf, *sorted(p for p in points if p < h), h]
            v = mpmath.quad(lambda z: mpmath.npdf(z) * mpmath.ncdf((l - rho * z) / r), nodes)
        return sp.Float._new(v._mpf_, prec)

    def _latex(self, printer, exp=None):
        h, l, rho = (printer._print(x) for x in self.args)
        body = rf"\Phi_{{2}}\left({h}, {l}; {rho}\right)"
        return rf"{body}^{{{exp}}}" if exp else body


def _number(name, value, allowed, ok):
    """A ValueError naming the parameter when ``value`` is a number that fails ``ok`` (symbols pass)."""
    v = sp.sympify(value)
    if v.is_number:
        if not v.is_real or not v.is_finite or not ok(v):
            raise ValueError(f"{name}={value!r} is not allowed: {allowed}")
    elif v.is_real is False:
        raise ValueError(f"{name}={value!r} is not allowed: {allowed}")
    return v


def _pair(q_a, q_b, k, mu_a, mu_b):
    q_a = _number("q_a", q_a, "a variance must be a finite number > 0", lambda v: v > 0)
    q_b = _number("q_b", q_b, "a variance must be a finite number > 0", lambda v: v > 0)
    k = _number("k", k, "the covariance must be a finite real number", lambda v: True)
    if q_a.is_number and q_b.is_number and k.is_number and k**2 > q_a * q_b:
        raise ValueError(f"k={k} is not allowed: |k| <= sqrt(q_a q_b) = {sp.sqrt(q_a * q_b)} (Cauchy-Schwarz)")
    mu_a = _number("mu_a", mu_a, "a mean must be a finite real number", lambda v: True)
    mu_b = _number("mu_b", mu_b, "a mean must be a finite real number", lambda v: True)
    return q_a, q_b, k, mu_a, mu_b


def _standardized(q_a, q_b, k, mu_a, mu_b):
    return mu_a / sp.sqrt(q_a), mu_b / sp.sqrt(q_b), k / sp.sqrt(q_a * q_b)


def coactivation(q_a=S.q_a, q_b=S.q_b, k=S.k, mu_a=0, mu_b=0) -> Formula:
    """P(u > 0, v > 0) for (u, v) ~ N((μ_a, μ_b), [[q_a, k], [k, q_b]]): the probability that a ReLU unit is active
    at both inputs (Balduzzi et al. 2017 call such units co-active).

    Zero means: 1/4 + arcsin(c)/(2π) (Sheppard 1899), c = k/√(q_a q_b) — derived as the step activation's kernel
    E[1{u>0}1{v>0}] = (π − θ)/(2π), θ = atan2(√(q_a q_b − k²), k) (accurate near c = ±1). With means: the orthant
    probability Φ₂(μ_a/√q_a, μ_b/√q_b; c) (:class:`bivariate_normal_cdf`; ``.rewrite(owens_t)``: Owen 1956).

    >>> from sigprop.theory import signs
    >>> signs.coactivation(2, 2, 1).rhs
    1/3
    >>> print(signs.coactivation(mu_a=signs.mu, mu_b=signs.mu).rhs)
    bivariate_normal_cdf(mu/sqrt(q_a), mu/sqrt(q_b), k/(sqrt(q_a)*sqrt(q_b)))
    """
    q_a, q_b, k, mu_a, mu_b = _pair(q_a, q_b, k, mu_a, mu_b)
    lhs = sp.Symbol("P(u>0, v>0)")
    if mu_a.is_zero and mu_b.is_zero:
        return Formula(lhs, get_activation("step").kernel(q_a, q_b, k), SHEPPARD, "co-activation")
    return Formula(lhs, bivariate_normal_cdf(*_standardized(q_a, q_b, k, mu_a, mu_b)), OWEN, "co-activation")


def sign_disagreement(q_a=S.q_a, q_b=S.q_b, k=S.k, mu_a=0, mu_b=0) -> Formula:
    """P(sign u ≠ sign v) = P(u > 0) + P(v > 0) − 2 P(u > 0, v > 0) for (u, v) as in :func:`coactivation`.

    Zero means: arccos(c)/π = θ/π (from the step activation's mean 1/2 and kernel); with means
    Φ(μ_a/√q_a) + Φ(μ_b/√q_b) − 2Φ₂(μ_a/√q_a, μ_b/√q_b; c).

    >>> from sigprop.theory import signs
    >>> signs.sign_disagreement(1, 1, -1).rhs
    1
    >>> print(signs.sign_disagreement().rhs)
    atan2(sqrt((q_a*q_b - k**2)), k)/pi
    """
    q_a, q_b, k, mu_a, mu_b = _pair(q_a, q_b, k, mu_a, mu_b)
    lhs = sp.Symbol("P(sign u != sign v)")
    if mu_a.is_zero and mu_b.is_zero:
        step = get_activation("step")
        rhs = step.mean(q_a) + step.mean(q_b) - 2 * step.kernel(q_a, q_b, k)
        return Formula(lhs, sp.expand(rhs), SHEPPARD, "sign disagreement")
    h, l, rho = _standardized(q_a, q_b, k, mu_a, mu_b)
    rhs = normal_cdf(h) + normal_cdf(l) - 2 * bivariate_normal_cdf(h, l, rho)
    return Formula(lhs, rhs, OWEN, "sign disagreement")


def sign_diversity(mu=mu, sigma=sigma) -> Formula:
    """Sign diversity of one unit whose pre-activation over a (large) data set is N(μ, σ²): the limit of Philipp,
    Song & Carbonell's min(P, N)/(P + N), P (N) the number of inputs with positive (negative) pre-activation:
    min(Φ(μ/σ), 1 − Φ(μ/σ)) = Φ(−|μ|/σ). 1/2 for a unit centred on its data, → 0 as the data collapse to one
    side of its kink.

    >>> from sigprop.theory import signs
    >>> signs.sign_diversity(0, 1).rhs
    1/2
    """
    mu = _number("mu", mu, "the mean must be a finite real number", lambda v: True)
    sigma = _number("sigma", sigma, "the standard deviation must be a finite number > 0", lambda v: v > 0)
    return Formula(sp.Symbol("D"), normal_cdf(-sp.Abs(mu) / sigma), PHILIPP + "; Gaussian limit derived",
                   "sign diversity of a unit")


def expected_sign_diversity(q=S.q, c=S.c, mu=0) -> Formula:
    """Mean sign diversity over the units of a random layer, for a data set whose pre-activations are
    equicorrelated: variance q, correlation c ∈ [0, 1] between any two inputs, common mean μ (docs/theory.md).

    A unit's pre-activation over the inputs is N(μ + √(qc) z₀, q(1 − c)), z₀ ~ N(0, 1) per unit; the mean of its
    sign diversity Φ(−|μ + √(qc) z₀|/√(q(1 − c))) over z₀ equals :func:`sign_disagreement` of a pair with variances
    (qc, q), covariance qc and means (μ, μ). At μ = 0: 1/2 − arcsin(√c)/π. c = 0: every unit sees N(μ, q).

    >>> from sigprop.theory import signs
    >>> print(signs.expected_sign_diversity().rhs)
    atan2(sqrt(1 - c), sqrt(c))/pi
    """
    q = _number("q", q, "a variance must be a finite number > 0", lambda v: v > 0)
    c = _number("c", c, "an equicorrelated data set has a correlation 0 <= c <= 1", lambda v: 0 <= v <= 1)
    mu = _number("mu", mu, "the mean must be a finite real number", lambda v: True)
    lhs = sp.Symbol("E[D]")
    source = PHILIPP + "; mean over units derived (docs/theory.md)"
    if c.is_zero:
        return Formula(lhs, sign_diversity(mu, sp.sqrt(q)).rhs, source, "expected sign diversity")
    if c == 1:
        return Formula(lhs, sp.Integer(0), source, "expected sign diversity")
    if mu.is_zero:                           # θ/π with cos θ = √c
        return Formula(lhs, sp.atan2(sp.sqrt(1 - c), sp.sqrt(c)) / sp.pi, source, "expected sign diversity")
    rhs = sign_disagreement(q * c, q, q * c, mu, mu).rhs
    return Formula(lhs, rhs, source, "expected sign diversity")
