"""``dropout(rho)``: inverted dropout at initialization, y = (μ ⊙ x)/ρ with μ_i ~ Bernoulli(ρ) (keep rate ρ).

Each input draws its own mask (training mode), fixed for the forward and the backward pass. Forward: the mean
square grows to p/ρ, the cross moment ⟨x_a, x_b⟩/n is kept (independent masks: E[μ_a μ_b] = ρ²), and so is
the unit mean. Backward: g_in = μ ⊙ g_out/ρ, so χ = 1/ρ per input and χ_ab = E[μ_a μ_b]/ρ² = 1. GSC² per block
is χ p_in/p_out = 1: dropout leaves GSC alone and divides the correlation of the representations by 1/ρ
(Schoenholz et al. 2017, who show that dropout removes the critical line). Identical inputs do not stay
identical (their masks differ): the block is not ``deterministic``.

Example
-------
>>> from sigprop.theory import Dropout
>>> print(Dropout(rho=0.8).length_map().rhs)
1.25*p
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..state import Backward, BlockMaps, Cross, PairState, TangentKernel
from .base import Block, Number, register_block
from .params import format_number, param


@register_block
@dataclass(frozen=True)
class Dropout(Block):
    """(μ ⊙ x)/ρ, μ_i ~ Bernoulli(ρ) drawn per input (inverted dropout in training mode)."""

    kind: ClassVar[str] = "dropout"
    summary: ClassVar[str] = "mask x / rho, mask_i ~ Bernoulli(rho) per input (inverted dropout)"
    example: ClassVar[str] = "3*(dense(tanh,sw2=1.5,sb2=0.05),dropout(rho=0.8))"

    deterministic: ClassVar[bool] = False

    rho: Number = param(1, kind="positive", doc="keep rate rho in (0, 1]")

    def check(self):
        if self.rho.is_number and self.rho > 1:
            raise ValueError(f"rho={format_number(self.rho)} is not allowed: a keep rate lies in (0, 1]")

    @property
    def source(self) -> str:
        return "Srivastava et al. 2014 (dropout); mean-field maps: Schoenholz et al. 2017 (dropout)"

    @property
    def degree(self):
        return 1

    carries_cross: ClassVar[bool] = True

    def cross(self, s: PairState, c: Cross, out: PairState) -> Cross:
        """⟨z, μ ⊙ y/ρ⟩ = ⟨z, y⟩ and tr(diag(μ)/ρ J)/n = tr J/n: the mask has mean 1 after scaling by 1/ρ."""
        return c

    def maps(self, s: PairState) -> BlockMaps:
        r = self.rho
        out = PairState(s.p_a / r, s.p_b / r, s.p_ab, s.m_a, s.m_b)
        return BlockMaps(out, None, Backward(1 / r, 1 / r, 1))

    def tangent(self, s: PairState, theta: TangentKernel) -> TangentKernel:
        """Θ'_aa = Θ_aa/ρ, Θ'_ab = Θ_ab: no parameters of its own; the mask carries each parameter's derivative
        through diag(μ)/ρ, whose square has mean 1/ρ on one input and whose product over two inputs' independent
        masks has mean 1 (as for the forward and backward maps).

        >>> from sigprop.theory import Dropout, PairState, TangentKernel
        >>> t = Dropout(rho=0.5).tangent(PairState.single(), TangentKernel(1, 1, 0.5))
        >>> float(t.t_a), float(t.t_ab)
        (2.0, 0.5)
        """
        r = self.rho
        return TangentKernel(theta.t_a / r, theta.t_b / r, theta.t_ab)
