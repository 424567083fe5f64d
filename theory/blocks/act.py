"""``act(ACT)``: the activation alone, x ↦ φ(x), without weights.

It lets architectures be written as they are built: pre-activation residual branches
(``residual(act(relu),dense(relu,sw2=2),dense(linear))``), W₂φ(W₁x) stacks, "linear → φ" layers.

Mean field needs the coordinates of its input to be Gaussian (zero mean, variance p): true of the network's
input (sigprop draws Gaussian inputs), of a ``dense(linear)`` output, and of a residual stream whose branches end
in one; ``Network`` checks this and names the block where it fails. Then
p_out = E[φ(√p z)²], the kernel E[φ(u)φ(v)] at the input's (p_a, p_b, p_ab), and backward
‖g_in‖²/n = E[φ'(u)²]‖g_out‖²/n (gradient independence, Schoenholz et al. 2017). Its input is the
pre-activation that measurement records.

Example
-------
>>> from sigprop.theory import parse
>>> net = parse("dense(linear,sw2=2),act(relu)")
>>> print(net.blocks[1].length_map().rhs)
p/2
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..activations import Activation
from ..state import BlockMaps, Cross, PairState, PreActivation, TangentKernel
from .base import Block, is_linear, register_block
from .params import param
from .pointwise import pointwise


@register_block
@dataclass(frozen=True)
class Act(Block):
    """x ↦ φ(x), pointwise, no weights; its input must be Gaussian (see the module docstring)."""

    kind: ClassVar[str] = "act"
    summary: ClassVar[str] = "phi(x) alone, no weights (its input must be Gaussian)"
    example: ClassVar[str] = "dense(linear,sw2=1.5),3*(act(tanh),dense(linear,sw2=1.5,sb2=0.1))"
    needs_gaussian_input: ClassVar[bool] = True
    pointwise: ClassVar[bool] = True

    activation: Activation = param(kind="activation", positional=True, doc="the nonlinearity phi")

    @property
    def source(self) -> str:
        return ("Poole et al. 2016 (covariance map of a Gaussian input); Schoenholz et al. 2017 (backward map); "
                f"expectations: {self.activation.source}")

    @property
    def degree(self):
        return self.activation.degree

    @property
    def pre_degree(self):
        return 1

    def gaussian_out(self, gaussian_in: bool, children_out=None) -> bool:
        return gaussian_in and is_linear(self.activation)

    @property
    def carries_cross(self) -> bool:
        act = self.activation
        return act.is_continuous or act.dphi == 0

    def cross(self, s: PairState, c: Cross, out: PairState) -> Cross:
        """Cross moments of φ(y) with a reference jointly Gaussian with y (Stein's lemma, :mod:`.sequence`)."""
        act = self.activation
        # E[y φ(y)]/p: the regression coefficient of ⟨z, φ(y)⟩ on ⟨z, y⟩, and E[φ'] when φ is continuous
        g_a, g_b = act.xmean(s.p_a) / s.p_a, act.xmean(s.p_b) / s.p_b
        d_a, d_b = (g_a, g_b) if act.dphi != 0 else (0, 0)       # a step function's φ' is 0 almost everywhere
        return Cross(c.aa * g_a, c.ab * g_b, c.ba * g_a, c.bb * g_b, c.t_a * d_a, c.t_b * d_b, c.m_a, c.m_b)

    def maps(self, s: PairState) -> BlockMaps:
        pre = PreActivation(s.p_a, s.p_b, s.p_ab)
        out, chi = pointwise(self.activation, pre)
        return BlockMaps(out, pre, chi)

    def tangent(self, s: PairState, theta: TangentKernel) -> TangentKernel:
        """Θ' = E[φ'(x_a)φ'(x_b)] Θ: no parameters of its own, the Jacobian diag(φ') carries Θ through."""
        chi = self.maps(s).chi
        return TangentKernel(chi.chi_a * theta.t_a, chi.chi_b * theta.t_b, chi.chi_ab * theta.t_ab)
