"""Laws derived from the block maps: the length and correlation maps of a dense layer, their slopes χ_q, χ₁, χ_c, and the
Pythagorean dilution of skips (their fixed points and depth scales are computed by ``sigprop.numerics.phase``).

Example
-------
>>> from sigprop.theory import laws, Residual, Dense, tanh, linear
>>> print(laws.dilution_law().rhs)
(GSC_r**2 + GSC_s**2*k**2)/(k**2 + 1)
>>> laws.check_dilution(Residual([Dense(tanh), Dense(linear)]))
True
"""
from __future__ import annotations

import sympy as sp

from . import symbols as S
from .activations import get_activation
from .blocks import Dense, Residual, compose
from .blocks.pointwise import pointwise
from .catalog import linear
from .formula import Formula
from .state import PairState, PreActivation

DILUTION_SOURCE = ("Philipp, Song & Carbonell 2018 ('Pythagorean equation'); exact under uncorrelated "
                   "branches, docs/theory.md")

k_ratio, gsc_r, gsc_s = sp.symbols("k GSC_r GSC_s", positive=True)


def _layer(act, sw2, sb2, q1, q2, k):
    """One layer of pre-activations, h ↦ h' = W φ(h) + b, when h has covariance (q₁, q₂, k): φ applied
    (``blocks.pointwise``), then a dense layer's weights, ``Dense(linear, sw2, sb2)``. Returns h' (the dense block's
    pre-activation) and the backward factors from h' to h: pointwise's E[φ'²], E[φ'(u)φ'(v)] times the dense
    block's own factor σ_w² (its χ = r σ_w² E[φ'²] with r = 1 and φ linear: the weight part alone). The maps are
    written once, in the blocks; they are composed here.

    ``Dense(act, sw2, sb2)``'s χ is the same factor read one layer up: evaluated on an input whose pre-activation
    has covariance (q₁, q₂, k), i.e. p = (q − σ_b²)/σ_w² (tests/theory/test_laws.py checks both agree)."""
    out, dphi = pointwise(act, PreActivation(q1, q2, k))
    weights = Dense(linear, sw2=sw2, sb2=sb2).maps(out)
    return weights.pre, dphi.then(weights.chi)


def length_map(activation, sw2=S.sigma_w2, sb2=S.sigma_b2, q=S.q) -> Formula:
    """q' = σ_w² E[φ(u)²] + σ_b², u ~ N(0, q): the pre-activation mean square of the next dense layer (Poole et
    al. 2016, eq. 3). Its fixed points q* are where a deep dense network's q settles."""
    act = get_activation(activation)
    pre, _ = _layer(act, sw2, sb2, q, q, q)
    return Formula(sp.Symbol("q'"), pre.q_a, "Poole et al. 2016, eq. 3", "length map")


def chi_q(activation, sw2=S.sigma_w2, sb2=S.sigma_b2, q=S.q) -> Formula:
    """χ_q = dq'/dq = σ_w² (E[φ'(u)²] + E[φ(u)φ''(u)]), the length map's slope: at a fixed point q* it is the
    rate χ_∥ at which q approaches q*, the depth scale ξ_q = −1/log χ_∥ (Schoenholz et al. 2017, §3, there
    written with ∫Dz). Derived by differentiating :func:`length_map` in q: closed forms differentiate directly,
    and an unevaluated E[φ²] by Gaussian integration by parts, φ'' the distributional second derivative (a kink
    where φ' jumps by J adds J φ(t) N(t; 0, q)). For a φ that jumps and has no closed-form E[φ²], the derivative
    stays an unevaluated ``Derivative``.

    >>> from sigprop.theory import laws
    >>> print(laws.chi_q("relu", sw2=2).rhs)
    1
    >>> print(laws.chi_q("tanh").rhs)
    sigma_w2*(E[tanh(u)·tanh''(u) | u~N(0, q)] + E[tanh'(u)² | u~N(0, q)])
    """
    act = get_activation(activation)
    rhs = sp.factor_terms(sp.diff(length_map(act, sw2, sb2, S.q).rhs, S.q)).subs(S.q, q)
    return Formula(sp.Symbol("chi_q"), rhs, "Schoenholz et al. 2017, depth scale xi_q", "chi_q")


def chi_1(activation, sw2=S.sigma_w2, q=S.q) -> Formula:
    """χ₁ = σ_w² E_q[φ'²]: the factor ‖∂h'/∂h‖²_F/n by which the squared gradient grows from one layer's
    pre-activations h' back to the previous layer's h (mean square q); ordered < 1 < chaotic (Poole et al. 2016;
    Schoenholz et al. 2017). Derived from the dense block's backward factor (:func:`_layer`); χ₁ does not depend
    on σ_b².

    >>> from sigprop.theory import laws
    >>> print(laws.chi_1("relu", sw2=2).rhs)
    1
    """
    act = get_activation(activation)
    _, chi = _layer(act, sw2, 0, q, q, q)
    return Formula(sp.Symbol("chi_1"), chi.chi_a, "Poole et al. 2016; Schoenholz et al. 2017", "chi_1")


def chi_c(activation, sw2=S.sigma_w2, q=S.q, c=S.c) -> Formula:
    """χ_c = σ_w² E[φ'(u)φ'(v)] at equal variances q and correlation c: slope of the c-map (Schoenholz et al. 2017);
    the cross-input backward factor of the dense block (:func:`_layer`), so χ_c(c = 1) = χ₁.

    >>> from sigprop.theory import laws
    >>> print(laws.chi_c("relu", sw2=2, q=1, c=0).rhs)
    1/2
    """
    act = get_activation(activation)
    _, chi = _layer(act, sw2, 0, q, q, q * c)
    return Formula(sp.Symbol("chi_c"), chi.chi_ab, "Schoenholz et al. 2017", "chi_c")


def correlation_map(activation, sw2=S.sigma_w2, sb2=S.sigma_b2, q=S.q, c=S.c) -> Formula:
    """Pre-activation correlation of the next layer, c' = (σ_w² E[φ(u)φ(v)] + σ_b²)/(σ_w² E[φ(u)²] + σ_b²),
    for pre-activations of equal variance q and correlation c (Poole et al. 2016)."""
    act = get_activation(activation)
    pre, _ = _layer(act, sw2, sb2, q, q, q * c)
    return Formula(sp.Symbol("c'"), pre.q_ab / pre.q_a, "Poole et al. 2016", "correlation map")


def dilution_law() -> Formula:
    """GSC_y² = (k² GSC_s² + GSC_r²)/(k² + 1), k = ‖s‖/‖r‖, for y = s + r with uncorrelated branches."""
    return Formula(S.Symbol("GSC_y^2"), (k_ratio**2 * gsc_s**2 + gsc_r**2) / (k_ratio**2 + 1),
                   DILUTION_SOURCE, "Pythagorean dilution")


#: the number of diluted blocks and the squared skip-to-branch ratio before the first
n_blocks, k0_sq = sp.symbols("L k_0^2", positive=True)


def diluted_resnet_law() -> Formula:
    """log GSC(0, L) of L identity-skip blocks whose branch has a constant GSC_r and output size, so that
    k_l² = k_0² + l (the skip grows by one branch per block): the product of :func:`dilution_law` over l = 0..L−1,
    ½ ln Π (k_0² + l + GSC_r²)/(k_0² + l + 1) = ½[lnΓ(k_0² + L + GSC_r²) − lnΓ(k_0² + GSC_r²) − lnΓ(k_0² + L + 1)
    + lnΓ(k_0² + 1)]; for large L it grows like ½(GSC_r² − 1) ln L, a power of L (derived, docs/theory.md).

    >>> from sigprop.theory import laws
    >>> import sympy as sp
    >>> f = laws.diluted_resnet_law().rhs.subs({laws.n_blocks: 1, laws.k0_sq: 1, laws.gsc_r: sp.sqrt(3)})
    >>> sp.simplify(2 * f - sp.log(sp.Rational(4, 2)))      # one block at k = 1: GSC² = (1 + 3)/(1 + 1)
    0
    """
    g2 = gsc_r**2
    rhs = (sp.loggamma(k0_sq + n_blocks + g2) - sp.loggamma(k0_sq + g2) - sp.loggamma(k0_sq + n_blocks + 1)
           + sp.loggamma(k0_sq + 1)) / 2
    return Formula(sp.Symbol("log GSC(0, L)"), rhs, DILUTION_SOURCE + "; product over diluted blocks derived",
                   "diluted ResNet")


def _residual(block, where: str) -> Residual:
    """``block`` as one residual block with an identity skip (a network of exactly one is taken), else a
    ValueError naming what was given."""
    from .network import Network
    if isinstance(block, Network) and len(block.blocks) == 1:
        block = block.blocks[0]
    if not isinstance(block, Residual) or block.skip:
        what = block.describe() if hasattr(block, "describe") else repr(block)
        raise ValueError(f"{where} takes one residual block with an identity skip, residual(...); got {what}")
    return block


def dilution_terms(block: Residual) -> dict:
    """k², GSC_s², GSC_r² of a residual block y = s + r, s = αx, r = βF(x), from its branch's maps."""
    block = _residual(block, "dilution_terms")
    s = PairState.single()
    f = compose(block.branch, s)
    a, b = block.alpha, block.beta
    p_s, p_r = a**2 * s.p_a, b**2 * f.out.p_a
    return {k_ratio**2: p_s / p_r,
            gsc_s**2: sp.Integer(1),  # J_s = αI: ‖J_s‖²_qm ‖x‖² / ‖αx‖² = 1
            gsc_r**2: b**2 * f.chi.chi_a * s.p_a / p_r}


def check_dilution(block: Residual) -> bool:
    """Whether the block's own GSC factor, with uncorrelated branches (m = 0), simplifies to the dilution law."""
    block = _residual(block, "check_dilution")
    derived = block.gsc_factor().rhs.subs(S.m, 0)
    terms = dilution_terms(block)
    law = dilution_law().rhs.subs({k_ratio: sp.sqrt(terms[k_ratio**2]), gsc_s: sp.sqrt(terms[gsc_s**2]),
                                   gsc_r: sp.sqrt(terms[gsc_r**2])})
    diff = sp.nsimplify(derived - law, rational=True)   # float parameters: compare exactly, not up to rounding
    return sp.simplify(diff) == 0
