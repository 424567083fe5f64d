"""Balduzzi et al.'s (2017) independent-activation model of shattered gradients — a separate model, not mean field.

"The shattered gradients problem" (Balduzzi, Frean, Leary, Lewis, Ma & McWilliams, ICML 2017, arXiv:1702.08591)
computes the covariance over random weights of the input gradients ∂f/∂x at two inputs x⁽ⁱ⁾, x⁽ʲ⁾ of a ReLU
network of depth L with He initialization (σ² = 2/N), by writing the gradient as a sum over active paths and
counting co-active paths. The count rests on one modelling assumption: a unit is active with probability 1/2 at
each input, *independently* at the two inputs, so a pair is co-active with probability 1/4 at every layer. The
results (their Theorems 1-3):

=================================  ====================  =====================  ========================
network                            variance C(i)         covariance C(i, j)     correlation R(i, j)
=================================  ====================  =====================  ========================
feedforward (Theorem 1)            1                     2^(−L)                 2^(−L)
resnet, β = 1, no BN (Theorem 2)   2^L                   (3/2)^L                (3/4)^L
resnet, BN and β (Theorem 3)       β²(L − 1) + 1         ~ β√L                  ~ 1/(β√L)
=================================  ====================  =====================  ========================

:func:`correlation` with ``"resnet"`` and a branch scale β gives the same count with β kept,
((1 + β²/2)/(1 + β²))^L [derived in the model: each block multiplies the variance by 1 + β² and the covariance
by 1 + 2β²·(1/4); β = 1 is Theorem 2]; at β = 1/√L it tends to e^(−1/2) as L → ∞, a correlation that no longer
decays with depth. Theorem 3's "~" is an order of growth (L → ∞), kept as such (``name`` says so); with
β = 1/√L it is of order 1, again depth-independent.

Mean field (:mod:`sigprop.numerics`) makes no independence assumption: a pair of pre-activations with correlation
c is co-active with probability 1/4 + arcsin(c)/(2π) (:func:`sigprop.theory.signs.coactivation`), and the forward
correlation c of each layer comes from the covariance map. The per-layer factor of the gradient correlation is
2 P(co-active) for ``dense(relu,sw2=2)`` and (1 + 2β² P(co-active))/(1 + β²) for
``residual(dense(relu,sw2=2),dense(linear),beta=β)`` (:func:`layer_factor`); the model is mean field with
c = 0 at every layer. :mod:`sigprop.numerics.shattering` compares the two; docs/theory.md says where they
agree.

Example
-------
>>> from sigprop.theory import balduzzi
>>> balduzzi.correlation("feedforward", L=3).rhs
1/8
>>> print(balduzzi.correlation("resnet").rhs)
(beta**2/2 + 1)**L/(beta**2 + 1)**L
>>> balduzzi.correlation("resnet", L=2, beta=1).rhs
9/16
>>> balduzzi.correlation("feedforward").source
'Balduzzi et al. 2017, Theorem 1 (independent-activation model)'
"""
from __future__ import annotations

import sympy as sp

from . import symbols as S
from .formula import Formula

#: depth (number of ReLU layers, or of residual blocks)
L = sp.Symbol("L", positive=True, integer=True)
#: the model's co-activation probability of a pair of units at two inputs
MODEL_COACTIVATION = sp.Rational(1, 4)
ARCHITECTURES = ("feedforward", "resnet", "bn_resnet")

_SOURCE = "Balduzzi et al. 2017, {} (independent-activation model)"
_BETA_SOURCE = ("derived in the independent-activation model of Balduzzi et al. 2017 (per block: variance "
                "1 + beta^2, covariance 1 + beta^2/2); Theorem 2 is beta = 1")
_BN_SOURCE = "Balduzzi et al. 2017, Theorem 3 (independent-activation model; '~': order as L -> oo)"


def _check(architecture, depth, beta):
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture={architecture!r} is not allowed; allowed: {', '.join(ARCHITECTURES)}")
    d = sp.sympify(depth)
    if d.is_number and not (d.is_integer and d >= 1):
        raise ValueError(f"L={depth!r} is not allowed: the depth must be an integer >= 1 (or a symbol)")
    b = sp.sympify(beta)
    if b.is_number and (not b.is_real or not b.is_finite):
        raise ValueError(f"beta={beta!r} is not allowed: the branch scale must be a finite real number")
    if architecture == "feedforward" and beta is not S.beta and b != 1:
        raise ValueError(f"beta={beta!r} is not allowed for architecture='feedforward': it has no branch")
    if architecture == "bn_resnet" and b.is_number and b == 0:
        raise ValueError("beta=0 is not allowed for architecture='bn_resnet': Theorem 3's correlation ~ 1/(beta "
                         "sqrt(L)) needs beta != 0")
    return d, b


def _theorem(architecture, b):
    if architecture == "feedforward":
        return _SOURCE.format("Theorem 1")
    if architecture == "bn_resnet":
        return _BN_SOURCE
    return _SOURCE.format("Theorem 2") if b == 1 else _BETA_SOURCE


def variance(architecture: str = "feedforward", L=L, beta=S.beta) -> Formula:
    """C(i): the variance of the input gradient at one input, in the model (He initialization).

    >>> from sigprop.theory import balduzzi
    >>> balduzzi.variance("resnet", beta=1).rhs, balduzzi.variance("bn_resnet", L=5, beta=1).rhs
    (2**L, 5)
    """
    d, b = _check(architecture, L, beta)
    rhs = {"feedforward": sp.Integer(1), "resnet": (1 + b**2) ** d, "bn_resnet": b**2 * (d - 1) + 1}[architecture]
    return Formula(sp.Symbol(f"C_{architecture}(i)"), rhs, _theorem(architecture, b), f"gradient variance, "
                   f"{architecture}")


def covariance(architecture: str = "feedforward", L=L, beta=S.beta) -> Formula:
    """C(i, j): the covariance of the input gradients at two inputs, in the model (``bn_resnet``: order only).

    >>> from sigprop.theory import balduzzi
    >>> balduzzi.covariance("resnet", beta=1).rhs
    (3/2)**L
    """
    d, b = _check(architecture, L, beta)
    rhs = {"feedforward": sp.Integer(2) ** (-d), "resnet": (1 + b**2 / 2) ** d,
           "bn_resnet": b * sp.sqrt(d)}[architecture]
    name = f"gradient covariance, {architecture}" + (" (order of growth)" if architecture == "bn_resnet" else "")
    return Formula(sp.Symbol(f"C_{architecture}(i,j)"), rhs, _theorem(architecture, b), name)


def correlation(architecture: str = "feedforward", L=L, beta=S.beta) -> Formula:
    """R(i, j) = C(i, j)/C(i): the correlation of the input gradients at two inputs, in the model:
    2^(−L) (feedforward, Theorem 1), ((1 + β²/2)/(1 + β²))^L (resnet; (3/4)^L at β = 1, Theorem 2),
    ~ 1/(β√L) (resnet with batch normalization, Theorem 3: order of decay only).

    >>> from sigprop.theory import balduzzi
    >>> balduzzi.correlation("resnet", beta=1).rhs
    (3/4)**L
    >>> print(balduzzi.correlation("bn_resnet").rhs)
    1/(sqrt(L)*beta)
    """
    d, b = _check(architecture, L, beta)
    if architecture == "bn_resnet":
        rhs = 1 / (b * sp.sqrt(d))
    else:
        rhs = covariance(architecture, d, b).rhs / variance(architecture, d, b).rhs
        rhs = sp.powsimp(rhs, force=True) if b == 1 else rhs
    name = f"gradient correlation, {architecture}" + (" (order of decay)" if architecture == "bn_resnet" else "")
    return Formula(sp.Symbol(f"R_{architecture}(i,j)"), rhs, _theorem(architecture, b), name)


def layer_factor(architecture: str = "feedforward", coactivation=MODEL_COACTIVATION, beta=S.beta) -> Formula:
    """The factor by which one layer (feedforward: ``dense(relu,sw2=2)``) or one block (resnet:
    ``residual(dense(relu,sw2=2),dense(linear),beta=β)``) multiplies the gradient correlation, when its ReLU units
    are co-active at the two inputs with probability ``coactivation``: 2P (feedforward) or (1 + 2β²P)/(1 + β²)
    (resnet). The model takes P = 1/4; mean field takes P = 1/4 + arcsin(c)/(2π) at the layer's pre-activation
    correlation c (tests/theory/test_laws.py derives both factors from the blocks' maps).

    >>> from sigprop.theory import balduzzi
    >>> balduzzi.layer_factor().rhs, balduzzi.layer_factor("resnet", beta=1).rhs
    (1/2, 3/4)
    """
    if architecture not in ("feedforward", "resnet"):
        raise ValueError(f"architecture={architecture!r} is not allowed; allowed: feedforward, resnet")
    p = sp.sympify(coactivation)
    if p.is_number and not (0 <= p <= sp.Rational(1, 2)):
        raise ValueError(f"coactivation={coactivation!r} is not allowed: P(both active) of units active with "
                         "probability 1/2 lies in [0, 1/2]")
    _, b = _check(architecture, 1, beta)
    rhs = 2 * p if architecture == "feedforward" else (1 + 2 * b**2 * p) / (1 + b**2)
    source = ("co-activation counting of Balduzzi et al. 2017 (2 = He's sigma_w^2 N, P = the co-activation "
              "probability); P = 1/4 is their model")
    return Formula(sp.Symbol("rho_l/rho_(l+1)"), rhs, source, f"layer factor, {architecture}")
