"""``layernorm``: layer normalization at initialization, y = g (x − x̄1)/√(v + ε) + b, with x̄ and v the mean and
the variance of one input's n units (Ba, Kiros & Hinton 2016; PyTorch's ``LayerNorm`` with its affine weight
g·1 and bias b·1 at their initial values, g = 1 and b = 0 by default).

Mean field (n → ∞), per input with mean square p and unit mean m, so v = p − m²:

- forward: p' = g² v/(v + ε) + b², m' = b, and ⟨y_a, y_b⟩/n = g² (p_ab − m_a m_b)/√((v_a + ε)(v_b + ε)) + b²: the
  correlation of the centred inputs is kept;
- backward: ∂y/∂x = (g/√(v + ε)) (I − 11ᵀ/n − ŷŷᵀ/(n (1 + ε/v))), ŷ = (x − x̄1)/√v, a projection (for ε = 0) that
  removes the mean and the radial direction. Its rank-one parts change ‖J‖²_F/n by O(1/n), so χ = g²/(v + ε) and
  χ_ab = g²/√((v_a + ε)(v_b + ε)), whose gradient-correlation factor χ_ab/√(χ_a χ_b) is 1.

With ε = 0 the block is scale invariant (degree 0: LN(λx) = LN(x)), so the log-space iteration carries no scale
through it, and GSC² = χ p/p' = g²p/(v (g² + b²)): p/v = 1 + m²/v, which is 1 for a centred input. A Gaussian input
stays Gaussian (a per-input affine map with concentrating statistics), so ``act`` may follow when b = 0. At width n
the exact ‖J‖²_F/n is (n − 2)/n times χ (ε = 0), a finite-width shift of log GSC by ½ log(1 − 2/n) per block.

Example
-------
>>> from sigprop.theory import LayerNorm
>>> from sigprop.theory.state import PairState
>>> maps = LayerNorm().maps(PairState(4, 4, 2, 0, 0))
>>> maps.out, maps.chi
(PairState(p_a=1, p_b=1, p_ab=1/2, m_a=0, m_b=0), Backward(chi_a=1/4, chi_b=1/4, chi_ab=1/4))
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import sympy as sp

from ..state import Backward, BlockMaps, Cross, PairState, TangentKernel
from .affine import AffineNormalization
from .base import register_block


@register_block
@dataclass(frozen=True)
class LayerNorm(AffineNormalization):
    """g (x − x̄1)/√(v + ε) + b over the units of each input (layer normalization at initialization)."""

    kind: ClassVar[str] = "layernorm"
    summary: ClassVar[str] = "g*(x - mean)/sqrt(var + eps) + b over each input's units (layer norm)"
    example: ClassVar[str] = "10*(dense(linear,sw2=2),layernorm,act(relu))"


    @property
    def source(self) -> str:
        return "Ba, Kiros & Hinton 2016 (layer normalization); mean-field maps derived (docs/theory.md)"

    @property
    def degree(self):
        return 0 if self.eps == 0 else None

    def gaussian_out(self, gaussian_in: bool, children_out=None) -> bool:
        return gaussian_in and self.bias == 0

    def _scales(self, s: PairState):
        """1/√(v + ε) per input, v = p − m²."""
        return (1 / sp.sqrt(s.p_a - s.m_a**2 + self.eps), 1 / sp.sqrt(s.p_b - s.m_b**2 + self.eps))

    def maps(self, s: PairState) -> BlockMaps:
        g, b = self.gain, self.bias
        r_a, r_b = self._scales(s)
        out = PairState(g**2 * (s.p_a - s.m_a**2) * r_a**2 + b**2, g**2 * (s.p_b - s.m_b**2) * r_b**2 + b**2,
                        g**2 * (s.p_ab - s.m_a * s.m_b) * r_a * r_b + b**2, b, b)
        return BlockMaps(out, None, Backward(g**2 * r_a**2, g**2 * r_b**2, g**2 * r_a * r_b))

    def tangent(self, s: PairState, theta: TangentKernel) -> TangentKernel:
        """Θ'_ab = (g² Θ_ab + p_ab − m_a m_b)/√((v_a + ε)(v_b + ε)) + 1. The Jacobian carries the earlier
        parameters' Θ as it carries the gradient (χ_ab: its rank-one projections change Θ by O(1/n)), and the
        affine weight and bias of each unit, trainable as in PyTorch's ``LayerNorm``, add the normalized inputs'
        cross moment (∂y_i/∂g_i = (x_i − x̄)/√(v + ε)) and 1 (∂y_i/∂b_i = 1). neural-tangents' ``stax.LayerNorm``
        has no parameters: its NTK is this one without the last two terms.

        >>> from sigprop.theory import LayerNorm, PairState, TangentKernel
        >>> LayerNorm().tangent(PairState(4, 4, 2, 0, 0), TangentKernel(2, 2, 1)).t_ab
        7/4
        """
        g = self.gain
        r_a, r_b = self._scales(s)
        return TangentKernel(r_a**2 * (g**2 * theta.t_a + s.p_a - s.m_a**2) + 1,
                             r_b**2 * (g**2 * theta.t_b + s.p_b - s.m_b**2) + 1,
                             r_a * r_b * (g**2 * theta.t_ab + s.p_ab - s.m_a * s.m_b) + 1)

    carries_cross: ClassVar[bool] = True

    def cross(self, s: PairState, c: Cross, out: PairState) -> Cross:
        """⟨z, LN(y)⟩/n = g (⟨z, y⟩/n − z̄ ȳ)/√(v + ε) + b z̄, and tr(∂LN(y)/∂z)/n = g t/√(v + ε) (the projection's
        rank-one parts contribute O(1/n))."""
        g, b = self.gain, self.bias
        r_a, r_b = self._scales(s)
        return Cross(g * (c.aa - c.m_a * s.m_a) * r_a + b * c.m_a, g * (c.ab - c.m_a * s.m_b) * r_b + b * c.m_a,
                     g * (c.ba - c.m_b * s.m_a) * r_a + b * c.m_b, g * (c.bb - c.m_b * s.m_b) * r_b + b * c.m_b,
                     g * c.t_a * r_a, g * c.t_b * r_b, c.m_a, c.m_b)
