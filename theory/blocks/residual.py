"""``residual(branch, alpha, beta)``: a skip connection y = α x + β F(x) around a branch F of blocks.

The branch must contain a block that decorrelates (a ``dense`` layer) at its top level: its output is then
built from fresh random weights, so ⟨x, F(x)⟩/n = m_x m_F (first moments; the cross term is kept, not
dropped) and the cross term of the backward pass vanishes (zero-mean Wᵀ). Yang & Schoenholz 2017; the
first-moment cross term and the Pythagorean dilution of Philipp, Song & Carbonell 2018 in docs/theory.md.

Example
-------
>>> from sigprop.theory import Residual, Dense, relu
>>> print(Residual([Dense(relu, sw2=2)]).length_map().rhs)
2*m*sqrt(p)/sqrt(pi) + 2*p
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..state import Backward, BlockMaps, PairState
from .base import BLOCKS, Block, Number, param, register_block


@register_block
@dataclass(frozen=True)
class Residual(Block):
    """y = α x + β F(x), F a sequence of blocks (the branch)."""

    kind: ClassVar[str] = "residual"
    summary: ClassVar[str] = "alpha x + beta branch(x)"
    example: ClassVar[str] = "dense(tanh),4*residual(dense(relu,sw2=2,sb2=0.1),dense(linear),alpha=0.9,beta=0.7)"

    branch: tuple = param(kind="blocks", positional=True, doc="the branch F: blocks in order")
    alpha: Number = param(1, kind="real", doc="skip weight")
    beta: Number = param(1, kind="real", doc="branch weight")

    def check(self):
        if not any(b.decorrelates for b in self.branch):
            kinds = sorted(k for k, cls in BLOCKS.items() if cls.decorrelates)
            raise ValueError(f"branch={[b.describe() for b in self.branch]} is not allowed: a residual branch needs "
                             f"a {' or '.join(kinds)} layer at its top level (its fresh weights make the branch "
                             "uncorrelated with the skip apart from first moments)")

    @property
    def source(self) -> str:
        inner = "; ".join(sorted({b.source for b in self.branch}))
        return ("Yang & Schoenholz 2017 (residual mean field); first-moment cross term and Pythagorean "
                f"dilution: Philipp, Song & Carbonell 2018, docs/theory.md. Branch: {inner}")

    @property
    def degree(self):
        if self.beta == 0:
            return 1
        degrees = [b.degree for b in self.branch]
        return 1 if all(d is not None for d in degrees) and _product(degrees) == 1 else None

    def gaussian_out(self, gaussian_in: bool, children_out=None) -> bool:
        # x + F(x), F ending in a fresh linear map: a Gaussian of variance β²q convolved with x's coordinates
        return bool(gaussian_in and children_out) or (self.beta == 0 and gaussian_in)

    def combine(self, s: PairState, f: BlockMaps) -> BlockMaps:
        """The skip sum, given the branch's maps ``f`` at input ``s``."""
        a, b, F = self.alpha, self.beta, f.out
        out = PairState(
            a**2 * s.p_a + b**2 * F.p_a + 2 * a * b * s.m_a * F.m_a,
            a**2 * s.p_b + b**2 * F.p_b + 2 * a * b * s.m_b * F.m_b,
            a**2 * s.p_ab + b**2 * F.p_ab + a * b * (s.m_a * F.m_b + F.m_a * s.m_b),
            a * s.m_a + b * F.m_a,
            a * s.m_b + b * F.m_b,
        )
        chi = Backward(a**2 + b**2 * f.chi.chi_a, a**2 + b**2 * f.chi.chi_b, a**2 + b**2 * f.chi.chi_ab)
        return BlockMaps(out, f.pre, chi)


def _product(values):
    out = 1
    for v in values:
        out *= v
    return out
