"""Collapsing domains over a finite batch: a unit's standard deviation and sign diversity over B inputs.

Philipp, Song & Carbonell (2018) diagnose collapsing domains by each unit's pre-activation spread over the data
(its standard deviation) and its sign diversity min(P, N)/B (P, N: the inputs where it is positive, negative).
Mean field gives both for a batch of B inputs whose pre-activations are equicorrelated (variance q, correlation
c ∈ [0, 1) between any two): a unit's values over the batch are μ + e_a with μ = √(qc) z₀, z₀ ~ N(0, 1) drawn per
unit, and e_a independent N(0, q(1 − c)) (derived in docs/theory.md). Hence

- the batch's own standard deviation s (divisor B) has s² = q(1 − c) χ²_{B−1}/B, so
  E[s] = √(q(1 − c)) √(2/B) Γ(B/2)/Γ((B − 1)/2) (:func:`expected_batch_std`); this holds for the negative
  correlations of an exchangeable batch too, c ≥ −1/(B − 1) (after training-mode batchnorm): the covariance
  q((1 − c)P + (1 + (B − 1)c) 11ᵀ/B), P = I − 11ᵀ/B, leaves the centred values q(1 − c) P's share whatever c's sign;
- the number of positive values is Binomial(B, p) with p = Φ(z₀ √(c/(1 − c))), so the mean sign diversity over
  units is E_{z₀}[Σ_k min(k, B − k)/B · C(B, k) p^k (1 − p)^(B−k)] (:func:`expected_batch_sign_diversity`, an
  unevaluated integral over z₀; :mod:`sigprop.numerics.collapsing` evaluates it). As B → ∞ it tends to
  :func:`sigprop.theory.signs.expected_sign_diversity`, 1/2 − arcsin(√c)/π, from below by O(1/√B).

Example
-------
>>> from sigprop.theory import collapsing
>>> print(collapsing.expected_batch_std(q=1, c=0, B=2).rhs)         # E|e_1 − e_2|/2 with e ~ N(0, 1)
1/sqrt(pi)
>>> collapsing.expected_batch_sign_diversity(c=0, B=2).rhs           # half the pairs differ in sign: 1/2 · 1/2
1/4
"""
from __future__ import annotations

import sympy as sp

from . import symbols as S
from .formula import Formula
from .gaussian import normal_cdf, normal_pdf
from .signs import PHILIPP

#: the batch size
B = sp.Symbol("B", integer=True, positive=True)
#: the unit's own standard normal draw z₀ (its mean over the batch is √(qc) z₀)
z0 = sp.Symbol("z_0", real=True)
_k = sp.Symbol("k", integer=True, nonnegative=True)
SOURCE = PHILIPP + "; over a batch of B equicorrelated inputs derived (docs/theory.md)"


def _check(q, c, batch, negative: bool = False):
    q, c, batch = sp.sympify(q), sp.sympify(c), sp.sympify(batch)
    if q.is_number and not (q.is_real and q.is_finite and q > 0):
        raise ValueError(f"q={q} is not allowed: a variance must be a finite number > 0")
    if negative and c.is_number and batch.is_number and not (c.is_real and -1 / (batch - 1) <= c < 1):
        raise ValueError(f"c={c} is not allowed: an exchangeable batch of {batch} inputs with a spread has "
                         f"-1/(B - 1) <= c < 1")
    if not negative and c.is_number and not (c.is_real and 0 <= c < 1):
        raise ValueError(f"c={c} is not allowed: an equicorrelated batch with a spread has 0 <= c < 1 here (a unit's "
                         "sign count is binomial given its common draw only for c >= 0)")
    if batch.is_number and not (batch.is_integer and batch >= 2):
        raise ValueError(f"B={batch} is not allowed: a batch has an integer number >= 2 of inputs")
    return q, c, batch


def expected_batch_std(q=S.q, c=S.c, B=B) -> Formula:
    """Mean over units of a unit's standard deviation over a batch of B equicorrelated inputs (divisor B), for
    −1/(B − 1) <= c < 1."""
    q, c, B = _check(q, c, B, negative=True)
    rhs = sp.sqrt(q * (1 - c)) * sp.sqrt(2 / B) * sp.gamma(B / 2) / sp.gamma((B - 1) / 2)
    return Formula(sp.Symbol("E[s]"), rhs, SOURCE, "expected standard deviation over a batch")


def binomial_sign_diversity(p, B=B):
    """E[min(K, B − K)/B] for K ~ Binomial(B, p): a unit's sign diversity over B inputs given its P(h > 0) = p."""
    return sp.Sum(sp.Min(_k, B - _k) / B * sp.binomial(B, _k) * p**_k * (1 - p)**(B - _k), (_k, 0, B))


def expected_batch_sign_diversity(q=S.q, c=S.c, B=B) -> Formula:
    """Mean over units of a unit's sign diversity over a batch of B equicorrelated inputs: the integral over z₀ of
    :func:`binomial_sign_diversity` at p = Φ(z₀ √(c/(1 − c))) (q does not enter: signs are scale-free)."""
    q, c, B = _check(q, c, B)
    if c.is_zero:                      # every unit's values are independent with P(h > 0) = 1/2
        rhs = binomial_sign_diversity(sp.Rational(1, 2), B)
        return Formula(sp.Symbol("E[D_B]"), rhs.doit() if B.is_number else rhs, SOURCE,
                       "expected sign diversity over a batch")
    p = normal_cdf(z0 * sp.sqrt(c / (1 - c)))
    rhs = sp.Integral(normal_pdf(z0) * binomial_sign_diversity(p, B), (z0, -sp.oo, sp.oo))
    return Formula(sp.Symbol("E[D_B]"), rhs, SOURCE, "expected sign diversity over a batch")
