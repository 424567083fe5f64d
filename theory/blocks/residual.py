"""``residual(branch, skip, alpha, beta)``: a skip connection y = α S(x) + β F(x) around a branch F of blocks.

The skip S is the identity by default, or a projection (``skip=dense(linear,width=r)``) when the branch changes
the width. When either contains a block that decorrelates (a ``dense`` layer) at its top level, its output is
built from fresh random weights, so ⟨S(x), F(x)⟩/n = m_S m_F (first moments; the cross term is kept, not
dropped) and the cross term of the backward pass vanishes (zero-mean Wᵀ). Yang & Schoenholz 2017; the
first-moment cross term and the Pythagorean dilution of Philipp, Song & Carbonell 2018 in docs/theory.md.
Otherwise (an identity skip around ``act(relu)``, ``dropout`` or nested residuals) the cross moments ⟨x, F(x)⟩
and tr(∂F/∂x)/n are carried through the branch (:mod:`.sequence`): y = x + βφ(x) has
p' = p + 2β E[uφ(u)] + β² E[φ²] and χ = 1 + 2β E[φ'] + β² E[φ'²].

The usual schemes are values of α, β: β = 0 is SkipInit/ReZero at initialization (and Fixup, whose last
branch layer starts at zero); β = 1/√L for L blocks is the depth-scaled ResNet; α = √(1−w²), β = w the
normalized sum.

Example
-------
>>> from sigprop.theory import Residual, Dense, relu
>>> print(Residual([Dense(relu, sw2=2)]).length_map().rhs)
2*m*sqrt(p)/sqrt(pi) + 2*p
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import sympy as sp

from ..state import Backward, BlockMaps, Cross, PairState, TangentKernel, as_tuple
from .base import BLOCKS, Block, Number, register_block
from .sequence import carries_cross
from .params import agrees, param


@register_block
@dataclass(frozen=True)
class Residual(Block):
    """y = α S(x) + β F(x), F a sequence of blocks (the branch), S the identity or a projection (the skip)."""

    kind: ClassVar[str] = "residual"
    summary: ClassVar[str] = "alpha skip(x) + beta branch(x), skip = identity by default"
    example: ClassVar[str] = ("dense(tanh),3*residual(dense(relu,sw2=2,sb2=0.1),dense(linear),alpha=0.9,beta=0.7),"
                              "residual(dense(relu,sw2=2,width=2),skip=dense(linear,width=2)),dense(tanh,width=0.5)")

    branch: tuple = param(kind="blocks", positional=True, doc="the branch F: blocks in order")
    skip: tuple = param((), kind="blocks", hide_default=True,
                        doc="the skip S: blocks in order (default: the identity), e.g. a projection dense(linear)")
    alpha: Number = param(1, kind="real", doc="skip weight")
    beta: Number = param(1, kind="real", doc="branch weight")

    def check(self):
        if not (self._decorrelated or self.uses_cross):
            kinds = sorted(k for k, cls in BLOCKS.items() if cls.decorrelates)
            cannot = [b.describe() for b in self.branch if not b.carries_cross]
            why = (f"{', '.join(cannot)} cannot carry the cross moments <x, F(x)>" if cannot else
                   "a skip that is neither the identity nor decorrelated")
            raise ValueError(f"branch={[b.describe() for b in self.branch]} is not allowed: {why}; put a "
                             f"{' or '.join(kinds)} layer at the top level of the branch or the skip (its fresh "
                             "weights leave only first moments)")
        r_f, r_s = _product(b.width_ratio for b in self.branch), _product(b.width_ratio for b in self.skip)
        if not agrees(r_f, r_s):
            skip = f"the skip ({','.join(b.describe() for b in self.skip)})" if self.skip else "the identity skip"
            raise ValueError(f"branch={[b.describe() for b in self.branch]} changes the width by {r_f}, "
                             f"{skip} by {r_s}: the two must end at the same width (give skip=dense(linear,width=...))")

    @property
    def _decorrelated(self) -> bool:
        return any(b.decorrelates for b in self.branch + self.skip)

    @property
    def uses_cross(self) -> bool:
        """An identity skip around a branch without a decorrelating block: ⟨x, F(x)⟩ is carried (:mod:`.sequence`)."""
        return not self._decorrelated and not self.skip and carries_cross(self.branch)

    @property
    def carries_cross(self) -> bool:
        return carries_cross(self.branch) and carries_cross(self.skip)

    def combine_cross(self, c: Cross, f: Cross, k: Cross) -> Cross:
        """Nested in another residual's branch: ⟨z, αS(y) + βF(y)⟩ = α⟨z, S(y)⟩ + β⟨z, F(y)⟩, traces alike."""
        a, b = self.alpha, self.beta
        return Cross(*(a * vk + b * vf for vk, vf in zip(as_tuple(k)[:6], as_tuple(f)[:6])), c.m_a, c.m_b)

    @property
    def width_ratio(self):
        return _product(b.width_ratio for b in self.branch)

    @property
    def source(self) -> str:
        inner = "; ".join(sorted({b.source for b in self.branch + self.skip}))
        return ("Yang & Schoenholz 2017 (residual mean field); first-moment cross term and Pythagorean "
                f"dilution: Philipp, Song & Carbonell 2018, docs/theory.md. Branch: {inner}")

    @property
    def degree(self):
        parts = ([] if self.alpha == 0 else [self.skip]) + ([] if self.beta == 0 else [self.branch])
        degrees = [[b.degree for b in seq] for seq in parts]
        ok = all(d is not None for seq in degrees for d in seq)
        return 1 if ok and all(_product(seq) == 1 for seq in degrees) else None

    def gaussian_out(self, gaussian_in: bool, children_out=(False, False)) -> bool:
        # αS(x) + βF(x): the two terms have independent Gaussian coordinates when both are Gaussian (F ending in
        # a fresh linear map, S the identity on a Gaussian input or a fresh linear map)
        branch_out, skip_out = children_out
        return bool((self.alpha == 0 or skip_out) and (self.beta == 0 or branch_out))

    def tangent(self, s: PairState, theta: TangentKernel) -> TangentKernel:
        """Θ_y = α² Θ_S + β² Θ_F, each path's kernel run from the block's input (Θ_S = Θ for the identity skip).
        The cross terms Σ_θ ⟨∂S(x_a)/∂θ, ∂F(x_b)/∂θ⟩ vanish in the mean-field limit when a path has a dense layer at
        its top level: its fresh zero-mean weights multiply every earlier parameter's derivative, and the two
        paths share no later parameter (Jacot, Gabriel & Hongler 2018; the residual form of Huang et al. 2020).

        >>> from sigprop.theory import Dense, PairState, Residual, TangentKernel, relu
        >>> print(Residual([Dense(relu, sw2=2)], beta=0.5).tangent(PairState.single(), TangentKernel.zero()).t_a)
        0.25*p
        """
        if not self._decorrelated:
            raise ValueError(f"the neural tangent kernel of {self.describe()} is not derived: an identity skip "
                             "around a branch without a dense layer keeps cross terms between the two paths; put a "
                             "dense layer at the top level of the branch")
        f, k = (_path_tangent(seq, s, theta) for seq in (self.branch, self.skip))
        a2, b2 = self.alpha**2, self.beta**2
        return TangentKernel(a2 * k.t_a + b2 * f.t_a, a2 * k.t_b + b2 * f.t_b, a2 * k.t_ab + b2 * f.t_ab)

    def combine(self, s: PairState, f: BlockMaps, k: BlockMaps, cross: Cross | None = None) -> BlockMaps:
        """The skip sum, given the branch's maps ``f``, the skip's ``k`` (the identity's: k.out = s, χ = 1) and,
        when :attr:`uses_cross`, the branch's cross moments with the input; otherwise only first moments cross."""
        a, b, F, K = self.alpha, self.beta, f.out, k.out
        x = cross if cross is not None else Cross.first_moments(K.m_a, K.m_b, F)   # x.ab = ⟨S(x)_a, F(x)_b⟩/n
        out = PairState(
            a**2 * K.p_a + b**2 * F.p_a + 2 * a * b * x.aa,
            a**2 * K.p_b + b**2 * F.p_b + 2 * a * b * x.bb,
            a**2 * K.p_ab + b**2 * F.p_ab + a * b * (x.ab + x.ba),
            a * K.m_a + b * F.m_a,
            a * K.m_b + b * F.m_b,
        )
        # ‖(αJ_S + βJ_F)ᵀg‖²: the cross term is 2αβ tr(J_F)/n for an identity skip, 0 when either is decorrelated
        cross_chi = (2 * x.t_a, 2 * x.t_b, x.t_a + x.t_b, 0, 0, 0)      # no cross term mixes G's entries
        chi = Backward(*(a**2 * ck + b**2 * cf + a * b * t
                         for ck, cf, t in zip(as_tuple(k.chi), as_tuple(f.chi), cross_chi)))
        return BlockMaps(out, f.pre, chi)


def _path_tangent(blocks, s: PairState, theta: TangentKernel) -> TangentKernel:
    """The neural tangent kernel after a sequence of blocks run from the state ``s`` (the identity for none)."""
    for block in blocks:
        theta = block.tangent(s, theta)
        s = block.forward(s).out
    return theta


def _product(values):
    out = sp.Integer(1)
    for v in values:
        out *= v
    return out
