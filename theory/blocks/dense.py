"""``dense(ACT, sw2, sb2)``: a fully connected layer and its activation, x ↦ φ(Wx + b).

W_ij ~ N(0, σ_w²/n), b_i ~ N(0, σ_b²) (Poole et al. 2016; Schoenholz et al. 2017).

Example
-------
>>> from sigprop.theory import Dense, relu
>>> Dense(relu, sw2=2).gsc_factor().rhs
1
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..activations import Activation
from ..state import Backward, BlockMaps, PairState, PreActivation
from .base import Block, Number, is_linear, param, register_block
from .pointwise import pointwise


@register_block
@dataclass(frozen=True)
class Dense(Block):
    """x ↦ φ(Wx + b), W_ij ~ N(0, σ_w²/n), b_i ~ N(0, σ_b²)."""

    kind: ClassVar[str] = "dense"
    summary: ClassVar[str] = "phi(W x + b), W_ij ~ N(0, sw2/n), b_i ~ N(0, sb2)"
    example: ClassVar[str] = "8*dense(tanh,sw2=1.5,sb2=0.1)"
    decorrelates: ClassVar[bool] = True

    activation: Activation = param(kind="activation", positional=True, doc="the nonlinearity phi")
    sw2: Number = param(1, kind="variance", doc="weight variance sigma_w^2: W_ij ~ N(0, sw2/n)")
    sb2: Number = param(0, kind="variance", doc="bias variance sigma_b^2: b_i ~ N(0, sb2)")

    @property
    def source(self) -> str:
        return ("Poole et al. 2016 (length and covariance maps); Schoenholz et al. 2017 (backward maps, "
                f"gradient independence); expectations: {self.activation.source}")

    @property
    def degree(self):
        return self.activation.degree if self.sb2 == 0 else None

    @property
    def pre_degree(self):
        return 1 if self.sb2 == 0 else None

    def gaussian_out(self, gaussian_in: bool, children_out=None) -> bool:
        return is_linear(self.activation)        # Wx + b has Gaussian coordinates given x

    def maps(self, s: PairState) -> BlockMaps:
        sw2, sb2 = self.sw2, self.sb2
        # h = Wx + b has zero mean per unit; its mean square uses the uncentered ‖x‖²/n.
        pre = PreActivation(sw2 * s.p_a + sb2, sw2 * s.p_b + sb2, sw2 * s.p_ab + sb2)
        out, phi_chi = pointwise(self.activation, pre)
        # g_in = Wᵀ(φ'(h) ⊙ g_out): ‖g_in‖²/n = σ_w² E[φ'(h)²] ‖g_out‖²/n (equal widths).
        return BlockMaps(out, pre, Backward(sw2, sw2, sw2).then(phi_chi))
