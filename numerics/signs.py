"""Numbers for the sign laws of :mod:`sigprop.theory.signs`: co-activation, sign disagreement, sign diversity.

Every formula is theory's, compiled once. Theory's unevaluated bivariate normal distribution function
Φ₂(h, l; ρ) is bound here to a float evaluation that is theory's too: Owen's closed form (``.rewrite(owens_t)``,
Owen 1956, with ``scipy.special.owens_t``) where h, l ≠ 0 and |ρ| < 1, and theory's own special values at h = 0,
l = 0 and ρ = ±1. ``error=True`` adds an independent estimate: adaptive quadrature (``scipy.integrate.quad``) of
Φ₂ = ∫_{−∞}^h φ(z) Φ((l − ρz)/√(1 − ρ²)) dz, reported as max(|Owen − quadrature|, quadrature's own estimate).
Zero-mean pre-activations need no Φ₂: the closed forms (Sheppard 1899) evaluate with the exact covariance
determinant, to ~1e-15 up to |c| = 1.

:func:`predicted_coactivation` and :func:`predicted_sign_diversity` read a prediction's pre-activation
correlations c (dense pre-activations have zero mean per unit), for comparison with sampled networks.

Example
-------
>>> from sigprop.numerics.signs import coactivation_probability, sign_disagreement_probability
>>> round(coactivation_probability(1.0, 1.0, 0.5), 12)          # 1/4 + arcsin(1/2)/(2π) = 1/3
0.333333333333
>>> p, err = coactivation_probability(1.0, 2.0, 0.3, mu_a=0.5, mu_b=-0.2, error=True)
>>> round(p, 10), err < 1e-12
(0.3362841734, True)
>>> round(sign_disagreement_probability(1.0, 1.0, 0.0), 12)
0.5
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import sympy as sp
from scipy import integrate, special

from ..theory import signs as T
from ..theory import symbols as S
from .expectations import NUMERIC_FUNCTIONS, for_numerics

_h, _l, _rho = sp.symbols("h l rho", real=True)
_mu_a, _mu_b, _mu, _sigma, _q, _c = T.mu_a, T.mu_b, T.mu, T.sigma, S.q, S.c


def _lambdify(args, expr, extra=None):
    modules = [{**NUMERIC_FUNCTIONS, **(extra or {})}, "scipy", np]
    return sp.lambdify(args, for_numerics(expr), modules=modules)


@lru_cache(maxsize=None)
def _phi2_pieces():
    """Theory's Φ₂, compiled: Owen's closed form and the special values at h = 0, l = 0, ρ = ±1."""
    f = T.bivariate_normal_cdf
    return {"owen": _lambdify((_h, _l, _rho), f(_h, _l, _rho).rewrite(T.owens_t)),
            "h0": _lambdify((_l, _rho), f(0, _l, _rho)),
            "l0": _lambdify((_h, _rho), f(_h, 0, _rho)),
            "+1": _lambdify((_h, _l), f(_h, _l, 1)),
            "-1": _lambdify((_h, _l), f(_h, _l, -1))}


def _phi2_value(h: float, l: float, rho: float) -> float:
    pieces = _phi2_pieces()
    if rho >= 1:
        return float(pieces["+1"](h, l))
    if rho <= -1:
        return float(pieces["-1"](h, l))
    if h == 0:
        return float(pieces["h0"](l, rho))
    if l == 0:
        return float(pieces["l0"](h, rho))
    return float(pieces["owen"](h, l, rho))


def _phi2_quadrature(h: float, l: float, rho: float) -> tuple[float, float]:
    """∫_{−∞}^h φ(z) Φ((l − ρz)/√(1 − ρ²)) dz by adaptive quadrature (an independent route), with its estimate.
    φ is below 1e-300 outside [−38, 38], so the integral runs over [−38, min(h, 38)], with break points where
    the inner Φ turns (within a few r/|ρ| of z = l/ρ, r = √(1 − ρ²))."""
    if abs(rho) >= 1:
        return _phi2_value(h, l, rho), 0.0
    lo, hi = -38.0, min(h, 38.0)
    if hi <= lo:
        return 0.0, 0.0
    r = math.sqrt((1 - rho) * (1 + rho))
    f = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi) * special.ndtr((l - rho * z) / r)  # noqa: E731
    turn = [l / rho + j * r / abs(rho) for j in (-8, -1, 0, 1, 8)] if rho != 0 else []
    nodes = [lo, *sorted(p for p in turn if lo < p < hi), hi]
    value = err = 0.0
    for a, b in zip(nodes[:-1], nodes[1:]):
        v, e = integrate.quad(f, a, b, epsabs=1e-16, epsrel=1e-13, limit=400)
        value, err = value + v, err + e
    return value, err


def _real(name, value, allowed="a finite real number"):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) or not math.isfinite(
            value):
        raise ValueError(f"{name}={value!r} is not allowed: give {allowed}")
    return float(value)


def _positive(name, value):
    v = _real(name, value, "a finite number > 0")
    if v <= 0:
        raise ValueError(f"{name}={value!r} is not allowed: give a finite number > 0")
    return v


def bivariate_normal_cdf(h: float, l: float, rho: float, error: bool = False):
    """Φ₂(h, l; ρ) = P(Z₁ < h, Z₂ < l), corr(Z₁, Z₂) = ρ ∈ [−1, 1] (theory's
    :class:`~sigprop.theory.signs.bivariate_normal_cdf`, by Owen's T); ``error=True`` returns (value, error).

    >>> from sigprop.numerics.signs import bivariate_normal_cdf
    >>> round(bivariate_normal_cdf(0.3, -0.4, 0.5), 12)
    0.283034844488
    """
    h, l = _real("h", h), _real("l", l)
    rho = _real("rho", rho, "a correlation in [-1, 1]")
    if abs(rho) > 1:
        raise ValueError(f"rho={rho!r} is not allowed: give a correlation in [-1, 1]")
    value = _phi2_value(h, l, rho)
    if not error:
        return value
    quad, quad_err = _phi2_quadrature(h, l, rho)
    return value, max(abs(value - quad), quad_err)


@lru_cache(maxsize=None)
def _compiled(name: str, zero_means: bool):
    law = getattr(T, name)
    if zero_means:
        return _lambdify((S.q_a, S.q_b, S.k), law(S.q_a, S.q_b, S.k).rhs)
    rhs = law(S.q_a, S.q_b, S.k, _mu_a, _mu_b).rhs
    return _lambdify((S.q_a, S.q_b, S.k, _mu_a, _mu_b), rhs, {"bivariate_normal_cdf": _phi2_value})


def _pair(q_a, q_b, k, mu_a, mu_b):
    q_a, q_b, k = _positive("q_a", q_a), _positive("q_b", q_b), _real("k", k)
    if k * k > q_a * q_b * (1 + 1e-12):
        raise ValueError(f"k={k!r} is not allowed: |k| <= sqrt(q_a q_b) = {math.sqrt(q_a * q_b):g} (Cauchy-Schwarz)")
    k = max(-math.sqrt(q_a * q_b), min(math.sqrt(q_a * q_b), k))
    return q_a, q_b, k, _real("mu_a", mu_a), _real("mu_b", mu_b)


def _law(name, q_a, q_b, k, mu_a, mu_b, error):
    q_a, q_b, k, mu_a, mu_b = _pair(q_a, q_b, k, mu_a, mu_b)
    zero = mu_a == 0 and mu_b == 0
    value = float(_compiled(name, True)(q_a, q_b, k) if zero else _compiled(name, False)(q_a, q_b, k, mu_a, mu_b))
    if not error:
        return value
    if zero:       # closed form with the exact determinant: rounding only
        return value, 4 * np.finfo(float).eps
    h, l, rho = mu_a / math.sqrt(q_a), mu_b / math.sqrt(q_b), max(-1.0, min(1.0, k / math.sqrt(q_a * q_b)))
    _, err = bivariate_normal_cdf(h, l, rho, error=True)
    return value, err * (1 if name == "coactivation" else 2)


def coactivation_probability(q_a: float, q_b: float, k: float, mu_a: float = 0.0, mu_b: float = 0.0,
                             error: bool = False):
    """P(u > 0, v > 0) for (u, v) ~ N((μ_a, μ_b), [[q_a, k], [k, q_b]]) (:func:`sigprop.theory.signs.coactivation`):
    1/4 + arcsin(c)/(2π) at zero means (Sheppard 1899), Φ₂ by Owen's T otherwise. ``error=True``: (value, error).

    >>> from sigprop.numerics.signs import coactivation_probability
    >>> round(coactivation_probability(2.0, 2.0, 2.0), 15), round(coactivation_probability(1.0, 1.0, -1.0), 15)
    (0.5, 0.0)
    """
    return _law("coactivation", q_a, q_b, k, mu_a, mu_b, error)


def sign_disagreement_probability(q_a: float, q_b: float, k: float, mu_a: float = 0.0, mu_b: float = 0.0,
                                  error: bool = False):
    """P(sign u ≠ sign v) (:func:`sigprop.theory.signs.sign_disagreement`): arccos(c)/π at zero means.

    >>> from sigprop.numerics.signs import sign_disagreement_probability
    >>> round(sign_disagreement_probability(1.0, 4.0, -1.0), 12)      # arccos(−1/2)/π = 2/3
    0.666666666667
    """
    return _law("sign_disagreement", q_a, q_b, k, mu_a, mu_b, error)


@lru_cache(maxsize=None)
def _diversity():
    return _lambdify((_mu, _sigma), T.sign_diversity(_mu, _sigma).rhs)


def sign_diversity(mu: float, sigma: float) -> float:
    """Sign diversity min(Φ(μ/σ), 1 − Φ(μ/σ)) of a unit whose pre-activation over a large data set is N(μ, σ²)
    (Philipp, Song & Carbonell 2018; :func:`sigprop.theory.signs.sign_diversity`).

    >>> from sigprop.numerics.signs import sign_diversity
    >>> round(sign_diversity(1.0, 1.0), 12)        # Φ(−1)
    0.158655253931
    """
    return float(_diversity()(_real("mu", mu), _positive("sigma", sigma)))


@lru_cache(maxsize=None)
def _expected(case: str):
    if case == "zero":
        return _lambdify((_q, _c), T.expected_sign_diversity(_q, _c).rhs)
    if case == "c0":
        return _lambdify((_q, _mu), T.expected_sign_diversity(_q, 0, _mu).rhs)
    return _lambdify((_q, _c, _mu), T.expected_sign_diversity(_q, _c, _mu).rhs, {"bivariate_normal_cdf": _phi2_value})


def expected_sign_diversity(q: float, c: float, mu: float = 0.0) -> float:
    """Mean sign diversity over the units of a random layer for equicorrelated pre-activations (variance q,
    correlation c ∈ [0, 1], common mean μ) (:func:`sigprop.theory.signs.expected_sign_diversity`).

    >>> from sigprop.numerics.signs import expected_sign_diversity
    >>> round(expected_sign_diversity(1.0, 0.5), 12)                 # 1/2 − arcsin(√½)/π
    0.25
    """
    q, mu = _positive("q", q), _real("mu", mu)
    c = _real("c", c, "a correlation 0 <= c <= 1 (an equicorrelated data set)")
    if not 0 <= c <= 1:
        raise ValueError(f"c={c!r} is not allowed: an equicorrelated data set has a correlation 0 <= c <= 1")
    if c == 1:
        return 0.0
    if c == 0:
        return float(_expected("c0")(q, mu))
    return float(_expected("zero")(q, c) if mu == 0 else _expected("mu")(q, c, mu))


def predicted_coactivation(prediction) -> np.ndarray:
    """P(u > 0, v > 0) of the two inputs at each pre-activation layer of a prediction (``prediction.pre_layers``),
    from the predicted q_a, q_b and c; dense pre-activations have zero mean per unit.

    >>> from sigprop.theory import parse
    >>> from sigprop.numerics import predict
    >>> from sigprop.numerics.signs import predicted_coactivation
    >>> predicted_coactivation(predict(parse("2*dense(relu,sw2=2)"), c0=0.0)).round(6)
    array([0.25    , 0.301558])
    """
    q = np.exp(prediction.raw["log_q"])
    k = np.clip(prediction.raw["c"], -1.0, 1.0) * np.sqrt(q[:, 0] * q[:, 1])
    return np.array([coactivation_probability(float(qa), float(qb), float(kk)) for (qa, qb), kk in zip(q, k)])


def predicted_sign_diversity(prediction, mu: float = 0.0) -> np.ndarray:
    """Expected sign diversity at each pre-activation layer of a prediction, for a data set whose inputs are
    pairwise correlated like the prediction's two inputs (an equicorrelated data set with correlation c0 > 0 stays
    equicorrelated, with the prediction's c at every layer).

    >>> from sigprop.theory import parse
    >>> from sigprop.numerics import predict
    >>> from sigprop.numerics.signs import predicted_sign_diversity
    >>> predicted_sign_diversity(predict(parse("2*dense(tanh,sw2=1)"), c0=0.5)).round(6)
    array([0.25    , 0.258742])
    """
    q = np.exp(prediction.raw["log_q"]).mean(axis=1)
    c = prediction.raw["c"]
    if np.any(c < 0):
        raise ValueError("an equicorrelated data set needs c >= 0 at every layer; this prediction has "
                         f"c = {float(c.min()):g}")
    return np.array([expected_sign_diversity(float(qi), float(min(ci, 1.0)), mu) for qi, ci in zip(q, c)])
