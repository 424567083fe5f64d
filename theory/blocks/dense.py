"""``dense(ACT, sw2, sb2, width, init)``: a fully connected layer and its activation, x ↦ φ(Wx + b).

W_ij ~ N(0, σ_w²/n_in), b_i ~ N(0, σ_b²) (Poole et al. 2016; Schoenholz et al. 2017), with n_out = r·n_in
units (``width=r``). The forward maps are per unit, so r does not enter them; the backward factor does:
‖g_in‖²/n_in = r σ_w² E[φ'²] ‖g_out‖²/n_out, and GSC² = χ p_in/(r p_out) is again width-free.
``init=he|glorot|lecun|selu`` sets σ_w² from the fan-in and fan-out
(:mod:`sigprop.theory.initializations`). ``weights=orthogonal`` samples W as a scaled Haar (semi-)orthogonal
matrix with the same entry variance: the mean-field maps are unchanged (h = Wx still has Gaussian coordinates
and ⟨h_a, h_b⟩ = σ_w²⟨x_a, x_b⟩), the spread of the Jacobian's singular values is not
(:mod:`sigprop.theory.spectrum`). ``weights=looks_linear`` (relu only) is Balduzzi et al.'s looks-linear
initialization: each unit h = W̃x + b feeds a CReLU pair (relu(h), relu(−h)) that the next layer reads with mirrored
weights [W̃', −W̃'], W̃ orthogonal; the sampled module computes relu(h) − relu(−h) = h through the relu units, so the
network is exactly linear at initialization and its maps are those of ``dense(linear)``.

Example
-------
>>> from sigprop.theory import Dense, relu
>>> Dense(relu, sw2=2).gsc_factor().rhs
1
>>> Dense(relu, width=3, init="glorot").describe()
'dense(relu,sw2=0.5,sb2=0,width=3,init=glorot)'
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import sympy as sp

from ..activations import Activation
from ..catalog import linear
from ..symbols import x
from ..initializations import INITIALIZATIONS
from ..state import Backward, BlockMaps, PairState, PreActivation, TangentKernel
from .base import Block, Number, is_linear, register_block
from .params import param
from .pointwise import pointwise


#: the weight distributions ``dense(…, weights=…)`` samples (gaussian when not given)
WEIGHT_DISTRIBUTIONS = ("gaussian", "orthogonal", "looks_linear")


@register_block
@dataclass(frozen=True)
class Dense(Block):
    """x ↦ φ(Wx + b), W_ij ~ N(0, σ_w²/n), b_i ~ N(0, σ_b²)."""

    kind: ClassVar[str] = "dense"
    summary: ClassVar[str] = "phi(W x + b), W_ij ~ N(0, sw2/n_in), b_i ~ N(0, sb2)"
    example: ClassVar[str] = "4*(dense(tanh,sw2=1.5,sb2=0.1,width=2),dense(erf,sw2=2,width=0.5))"
    decorrelates: ClassVar[bool] = True
    structural_choices: ClassVar[tuple] = ("weights",)

    activation: Activation = param(kind="activation", positional=True, doc="the nonlinearity phi")
    sw2: Number = param(1, kind="variance", preset=True, doc="weight variance sigma_w^2: W_ij ~ N(0, sw2/n_in)")
    sb2: Number = param(0, kind="variance", doc="bias variance sigma_b^2: b_i ~ N(0, sb2)")
    width: Number = param(1, kind="positive", hide_default=True,
                          doc="output width relative to the input width, n_out/n_in")
    init: str = param(None, kind="choice", choices=tuple(INITIALIZATIONS),
                      doc="initialization preset setting sw2 from fan-in and fan-out")
    weights: str = param(None, kind="choice", choices=WEIGHT_DISTRIBUTIONS,
                         doc="gaussian (default), orthogonal (W = sqrt(sw2 max(n_in, n_out)/n_in) Q, Q Haar "
                             "(semi-)orthogonal: the same mean-field maps, another Jacobian spectrum) or looks_linear "
                             "(relu units as CReLU pairs read by mirrored orthogonal weights: exactly linear)")

    def preset(self, name: str):
        return INITIALIZATIONS[self.init].sw2(self.width) if name == "sw2" and self.init else None

    @property
    def width_ratio(self):
        return self.width

    @property
    def source(self) -> str:
        init = f"; init={self.init}: {INITIALIZATIONS[self.init].source}" if self.init else ""
        if self.weights == "orthogonal":
            init += "; orthogonal weights: Saxe, McClelland & Ganguli 2014"
        if self.weights == "looks_linear":
            init += "; looks-linear initialization: Balduzzi et al. 2017 (CReLU, Shang et al. 2016), exactly linear"
        return ("Poole et al. 2016 (length and covariance maps); Schoenholz et al. 2017 (backward maps, "
                f"gradient independence); expectations: {self.activation.source}{init}")

    def check(self):
        if self.weights == "looks_linear":
            phi = self.activation.phi
            odd_part = phi - phi.subs(x, -x) - x          # must vanish; checked at points on both sides, 50 digits
            if odd_part.free_symbols - {x} or any(abs(sp.N(odd_part.subs(x, t), 50)) > 1e-40
                                                  for t in (sp.Rational(37, 100), sp.Rational(19, 10), 13)):
                raise ValueError(f"weights=looks_linear is not allowed with {self.activation.describe()}: it pairs "
                                 "each unit's phi(h) with phi(-h) read by mirrored weights, which is linear only for "
                                 "phi(x) - phi(-x) = x (relu)")

    @property
    def effective_activation(self) -> Activation:
        """φ as the network computes it: linear for looks-linear weights (φ(h) − φ(−h) = h), φ otherwise."""
        return linear if self.weights == "looks_linear" else self.activation

    @property
    def degree(self):
        return self.effective_activation.degree if self.sb2 == 0 else None

    @property
    def pre_degree(self):
        return 1 if self.sb2 == 0 else None

    def gaussian_out(self, gaussian_in: bool, children_out=None) -> bool:
        return is_linear(self.effective_activation)        # Wx + b has Gaussian coordinates given x

    def maps(self, s: PairState) -> BlockMaps:
        sw2, sb2 = self.sw2, self.sb2
        # h = Wx + b has zero mean per unit; its mean square uses the uncentered ‖x‖²/n.
        pre = PreActivation(sw2 * s.p_a + sb2, sw2 * s.p_b + sb2, sw2 * s.p_ab + sb2)
        out, phi_chi = pointwise(self.effective_activation, pre)
        # g_in = Wᵀ(φ'(h) ⊙ g_out): ‖g_in‖² = σ_w² E[φ'(h)²] ‖g_out‖², so per unit the factor is r σ_w² E[φ'²].
        w = sw2 * self.width
        return BlockMaps(out, pre, Backward(w, w, w).then(phi_chi))

    def tangent(self, s: PairState, theta: TangentKernel) -> TangentKernel:
        """Θ' = E[φ'(u)φ'(v)] (q_ab + σ_w² Θ_ab), (u, v) the pre-activations: in the NTK parametrization
        h = σ_w W x/√n_in + σ_b b (W, b standard normal) this layer's weights and bias add ⟨x_a, x_b⟩σ_w²/n + σ_b²
        = q_ab, the earlier parameters' Θ passes through W (σ_w²), and φ' multiplies both (Jacot, Gabriel & Hongler
        2018, Theorem 1; Arora et al. 2019, eq. (10)). Looks-linear weights tie each unit's two halves, which this
        recursion does not describe.

        >>> from sigprop.theory import Dense, PairState, TangentKernel, relu
        >>> print(Dense(relu, sw2=2).tangent(PairState.single(), TangentKernel.zero()).t_a)
        p
        """
        if self.weights == "looks_linear":
            raise ValueError("the neural tangent kernel of dense(…, weights=looks_linear) is not derived: its "
                             "mirrored weights are tied")
        pre = self.maps(s).pre
        _, dphi = pointwise(self.activation, pre)
        w = self.sw2
        return TangentKernel(dphi.chi_a * (pre.q_a + w * theta.t_a), dphi.chi_b * (pre.q_b + w * theta.t_b),
                             dphi.chi_ab * (pre.q_ab + w * theta.t_ab))
