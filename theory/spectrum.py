"""The spread of a deep network's input–output Jacobian spectrum: its first two moments, by free probability.

For J = D_L W_L ⋯ D_1 W_1 (D_l = diag φ'(h_l)), the squared singular values of J, i.e. the eigenvalues λ of JJᵀ,
have at large width the mean m₁ = Π_l χ₁(q_l), χ₁ = σ_w² E[φ'(u)²], and a normalized variance
σ²/m₁² = Σ_l [E[φ'⁴]/E[φ'²]² − 1 + s_W]. Under free multiplication the normalized variances of the factors add
(Var(AB)/m₁(AB)² = Var(A)/m₁(A)² + Var(B)/m₁(B)² for free A, B); D_l² contributes E[φ'⁴]/E[φ'²]² − 1 and W_lW_lᵀ
its own, s_W = 1 for square Gaussian weights (Marchenko–Pastur at aspect ratio 1: m₂ = 2m₁²) and s_W = 0 for
orthogonal ones (Pennington, Schoenholz & Ganguli 2017, 'Resurrecting the sigmoid', whose −s₁ is s_W here).

At criticality (χ₁ = 1) a ReLU network's spread grows like 2L with Gaussian and L with orthogonal weights
(E[relu'⁴]/E[relu'²]² = 2), while tanh with orthogonal weights and a small q* has E[φ'⁴] ≈ E[φ'²]², so the
spread stays small over many layers: dynamical isometry.

Example
-------
>>> from sigprop.theory import spectrum
>>> spectrum.variance_increment("relu").rhs, spectrum.variance_increment("relu", weights="orthogonal").rhs
(2, 1)
"""
from __future__ import annotations

import sympy as sp

from . import symbols as S
from .activations import get_activation
from .blocks.dense import WEIGHT_DISTRIBUTIONS
from .expectations import GaussianExpectation
from .formula import Formula

SOURCE = ("Pennington, Schoenholz & Ganguli 2017 (free probability of the Jacobian spectrum); the additivity of "
          "normalized variances under free multiplication, derived (docs/theory.md)")

#: Var/m₁² of the squared singular values of one square weight matrix, per distribution
WEIGHT_SPREAD = {"gaussian": sp.Integer(1), "orthogonal": sp.Integer(0)}


def _weights(weights: str) -> sp.Expr:
    if weights not in WEIGHT_DISTRIBUTIONS:
        raise ValueError(f"weights={weights!r} is not allowed: give one of {', '.join(WEIGHT_DISTRIBUTIONS)}")
    return WEIGHT_SPREAD[weights]


def moment_ratio(activation, q=S.q) -> Formula:
    """E[φ'(u)⁴]/E[φ'(u)²]², u ~ N(0, q): the normalized second moment of D², one layer's derivative factor."""
    act = get_activation(activation)
    return Formula(sp.Symbol("mu_2") / sp.Symbol("mu_1")**2, act.dquartic(q) / act.dsecond_moment(q)**2, SOURCE,
                   "Jacobian derivative moment ratio")


def variance_increment(activation, q=S.q, weights: str = "gaussian") -> Formula:
    """What one dense layer φ(Wx + b) at pre-activation variance q adds to the normalized variance σ²/m₁² of the
    squared singular values of the network's Jacobian: E[φ'⁴]/E[φ'²]² − 1 + s_W (s_W: 1 Gaussian, 0 orthogonal)."""
    rhs = moment_ratio(activation, q).rhs - 1 + _weights(weights)
    if not rhs.has(GaussianExpectation):          # closed forms simplify; quadrature forms stay as written
        rhs = sp.simplify(rhs)
    return Formula(sp.Symbol("Delta_sigma2"), rhs, SOURCE, "Jacobian spectrum variance per layer")
