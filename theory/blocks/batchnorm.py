"""``batchnorm``: batch normalization at initialization, per unit over a batch of B inputs (Ioffe & Szegedy 2015;
PyTorch's ``BatchNorm1d`` with its affine weight g·1 and bias b·1 at their initial values g = 1, b = 0).

**Training mode** (default): y_a = g (h_a − h̄)/√(s² + ε) + b with h̄ and s² the mean and the (biased) variance of
one unit over the batch. The pair a, b of the state are two members of an *exchangeable* batch of B inputs (equal
mean squares, equal cross moments: what ``predict(..., batch=B)`` describes). The batch values of one unit are
then h = μ1 + σ z + shared terms, z ~ N(0, I_B) when the input coordinates are Gaussian, σ² = p − p_ab, and the
centred vector Ph (P = I − 11ᵀ/B) is σ‖Pz‖ times a uniform unit vector u of 1⊥, independent of ‖Pz‖² ~ σ²χ²_{B−1}.
Exactly, at every B >= 4 (ε = 0; Yang et al. 2019, *A mean field theory of batch normalization*):

- forward: y = g√B u + b, so p' = g² + b², p'_ab = −g²/(B − 1) + b², m' = b: the batch's inputs become
  equicorrelated at −1/(B − 1), whatever their correlation was; the output lies on a sphere, *not* Gaussian;
- backward: ∂y/∂h = (g√B/‖Ph‖)(P − uuᵀ) for each unit, which couples the inputs. With G = ⟨g_a, g_b⟩/n at the output,
  E[J G J] = g² B/(σ²(B − 3)) E[(P − uuᵀ)G(P − uuᵀ)] and E[uuᵀ] = P/(B − 1) give
  G_aa,in = κ (G_aa − G_ab), G_ab,in = −κ (G_aa − G_ab)/(B − 1), κ = g²(B − 2)/(σ²(B − 3)): a mixing
  :class:`~sigprop.theory.state.Backward`. A deep linear batch-normalized net's GSC² per layer is (B − 2)/(B − 3).

B = ∞ (``batch=inf``, the default) is the large-batch limit: y_a = g(h_a − h̄)/√(σ² + ε) + b with deterministic
statistics, Gaussian again, uncorrelated across the batch; κ = g²/(σ² + ε) and the cross entries vanish. After
``dense(linear)``, ``batchnorm``, ``act(relu)`` the GSC² per layer is then π/(π − 1) (Philipp, Song & Carbonell
2018): σ² = q(1 − c) with c = 1/π the correlation relu leaves at input correlation 0.

A pointwise block right after a training-mode batchnorm is evaluated jointly with it by ``numerics``
(``numerics.batchnorm``): its φ'(y) and the Jacobian's rank-one part uuᵀ share u, which matters for a probe shared by
the batch even at B = ∞ (there by Gaussian quadrature), and at a finite B the output is not Gaussian (there by Monte
Carlo over u, a Gaussian integral in B dimensions, with its standard error). The symbolic composition of this
package treats the two blocks apart: exact for the forward maps and GSC, not for the shared-probe gradient
correlation. ε > 0 at finite B is not supported (E[R/(R + Bε)] for R ~ σ²χ²_{B−1} has no closed form here).

**Evaluation mode** (``batchnorm(eval)``): the running statistics at initialization (mean 0, variance 1), so
y = g x/√(1 + ε) + b per coordinate: an affine map of each input on its own.

Example
-------
>>> import sympy as sp
>>> from sigprop.theory import BatchNorm
>>> from sigprop.theory.state import PairState
>>> maps = BatchNorm(batch=10).maps(PairState(2, 2, 1, 0, 0))
>>> maps.out.p_ab, maps.chi.chi_a
(-1/9, 8/7)
>>> BatchNorm().maps(PairState(2, 2, 1, 0, 0)).out.p_ab          # the large-batch limit
0
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import sympy as sp

from ..state import Backward, BlockMaps, Cross, PairState, TangentKernel
from .. import symbols as S
from .affine import AffineNormalization
from .base import Number, register_block
from .params import format_number, param

MODES = ("train", "eval")


@register_block
@dataclass(frozen=True)
class BatchNorm(AffineNormalization):
    """g (h − h̄)/√(s² + ε) + b per unit over a batch (training mode), or g x/√(1 + ε) + b (evaluation mode)."""

    kind: ClassVar[str] = "batchnorm"
    summary: ClassVar[str] = "g*(x - batch mean)/sqrt(batch var + eps) + b per unit over B inputs (batch norm)"
    example: ClassVar[str] = ("4*(dense(linear,sw2=2),batchnorm(batch=8),dense(relu,sw2=2)),"
                              "dense(linear),batchnorm(eval,gain=1.5)")
    structural_choices: ClassVar[tuple] = ("mode",)

    mode: str = param(None, kind="choice", choices=MODES,
                      doc="train (batch statistics, the default) or eval (the running statistics at init: 0, 1)")
    batch: Number = param(sp.oo, kind="size", hide_default=True,
                          doc="B, the batch size of training mode (>= 4, or inf for the large-batch limit)")

    @property
    def training(self) -> bool:
        return self.mode != "eval"

    @property
    def finite_batch(self) -> bool:
        """Training mode at a finite batch size (the output is then not Gaussian)."""
        return self.training and self.batch is not sp.oo

    def check(self):
        if not self.training:
            if self.batch.is_number and self.batch is not sp.oo:
                raise ValueError(f"batch={format_number(self.batch)} is not allowed in eval mode: evaluation "
                                 "mode uses fixed statistics, so the batch plays no part")
            return
        b = self.batch
        if b.is_number and b is not sp.oo and b < 4:
            why = {1: "a single input has no batch variance (its output is the bias, its gradient 0)",
                   2: "two inputs normalize to +-g exactly, so the gradient is 0",
                   3: "E[1/chi^2_2] is infinite, so the expected squared gradient is infinite"}[int(b)]
            raise ValueError(f"batch={int(b)} is not allowed in training mode: {why}; use batch >= 4 or inf")
        if self.finite_batch and b.is_number and self.eps.is_number and self.eps != 0:
            raise ValueError(f"eps={format_number(self.eps)} is not allowed at batch={format_number(b)}: a finite "
                             "batch needs eps=0 (its map is exact only then); use batch=inf for eps > 0")

    @property
    def needs_gaussian_input(self) -> bool:
        return self.training

    @property
    def joins_next_pointwise(self) -> bool:
        """Whether a pointwise block right after this one is evaluated jointly with it: in training mode its φ'
        and the radial projection uuᵀ of the Jacobian share u (and at a finite batch the output is uniform on a
        sphere, not Gaussian)."""
        return self.training

    @property
    def source(self) -> str:
        if not self.training:
            return "Ioffe & Szegedy 2015 (batch normalization, evaluation mode at initialization)"
        return ("Ioffe & Szegedy 2015 (batch normalization); finite-batch mean field: Yang et al. 2019; maps "
                "derived in docs/theory.md")

    @property
    def degree(self):
        if self.training:
            return 0 if self.eps == 0 else None
        return 1 if self.bias == 0 else None

    def gaussian_out(self, gaussian_in: bool, children_out=None) -> bool:
        return gaussian_in and not self.finite_batch and self.bias == 0      # N(0, g²) coordinates

    @property
    def carries_cross(self) -> bool:
        return not self.training

    def _single(self) -> BlockMaps:
        """One member of the batch: its maps depend on the batch's cross moment p_ab, so keep it."""
        return self.forward(PairState(S.p, S.p, S.p_ab, S.m, S.m))

    def maps(self, s: PairState) -> BlockMaps:
        g, b = self.gain, self.bias
        if not self.training:
            r = g / sp.sqrt(1 + self.eps)
            out = PairState(r**2 * s.p_a + 2 * r * b * s.m_a + b**2, r**2 * s.p_b + 2 * r * b * s.m_b + b**2,
                            r**2 * s.p_ab + r * b * (s.m_a + s.m_b) + b**2, r * s.m_a + b, r * s.m_b + b)
            return BlockMaps(out, None, Backward(r**2, r**2, r**2))
        x = 1 / self.batch                                 # 0 in the large-batch limit
        # σ² per unit over the batch; v_a = v_b in an exchangeable batch, and the cross terms use their mean
        v_a, v_b, v = s.p_a - s.p_ab, s.p_b - s.p_ab, (s.p_a + s.p_b) * sp.S.Half - s.p_ab
        keep_a, keep_b, keep = (w / (w + self.eps) for w in (v_a, v_b, v))
        out = PairState(g**2 * keep_a + b**2, g**2 * keep_b + b**2, -g**2 * x / (1 - x) * keep + b**2, b, b)
        k_a, k_b, k = (g**2 / (w + self.eps) * (1 - 2 * x) / (1 - 3 * x) for w in (v_a, v_b, v))
        k_ab = k * x / (1 - x)
        return BlockMaps(out, None, Backward(k_a, k_b, k_ab, -k_a, -k_b, -k_ab))

    def tangent(self, s: PairState, theta: TangentKernel) -> TangentKernel:
        """Evaluation mode: y = g x/√(1 + ε) + b per coordinate, so Θ' = (g² Θ + p_ab)/(1 + ε) + 1: the earlier
        parameters' Θ through the diagonal Jacobian, plus each unit's affine weight (∂y_i/∂g_i = x_i/√(1 + ε))
        and bias (1), trainable as in PyTorch's ``BatchNorm1d``. Training mode couples the inputs of a batch: no
        kernel over a data set.

        >>> from sigprop.theory import BatchNorm, PairState, TangentKernel
        >>> BatchNorm(mode="eval").tangent(PairState(4, 4, 2, 0, 0), TangentKernel(2, 2, 1)).t_ab
        4
        """
        if self.training:
            raise ValueError(f"the neural tangent kernel of {self.describe()} is not derived: training-mode "
                             "batchnorm couples the inputs of a batch (use batchnorm(eval))")
        g, e = self.gain, 1 + self.eps
        return TangentKernel((g**2 * theta.t_a + s.p_a) / e + 1, (g**2 * theta.t_b + s.p_b) / e + 1,
                             (g**2 * theta.t_ab + s.p_ab) / e + 1)

    def joint_backward(self, s: PairState, t1, t2) -> Backward:
        """The backward map of this batchnorm and the pointwise block φ right after it, from φ's output to this
        block's input (training mode). With d = φ'(y), y = g√B u + b, and G = αI + β11ᵀ at φ's output,
        E[J_BN D G D J_BN] = g²B/(σ²(B − 3)) E[(P − uuᵀ)(αD² + βddᵀ)(P − uuᵀ)], whose mean is κP with
        tr = B(α t₁ + β t₂) per the batch:

            t₁ = E[(1 − 1/B)Σd_a² − Σd_a²u_a²]/B,   t₂ = E[‖d‖² − (Σd_a)²/B − (dᵀu)²]/B

        (expectations over u that ``numerics`` evaluates). So G_aa,in = k(t₁ G_aa + (t₂ − t₁) G_ab) and
        G_ab,in = −k x/(1 − x)(the same), k = g²/((σ² + ε)(1 − 3x)), x = 1/B. For φ = identity t₁ = 1 − 2x, t₂ = 0:
        the maps of this block alone."""
        x = 1 / self.batch
        k = self.gain**2 / (((s.p_a + s.p_b) * sp.S.Half - s.p_ab + self.eps) * (1 - 3 * x))
        spread = -x / (1 - x)
        return Backward(k * t1, k * t1, k * spread * (t2 - t1), k * (t2 - t1), k * (t2 - t1), k * spread * t1)

    def cross(self, s: PairState, c: Cross, out: PairState):
        """Evaluation mode: a per-coordinate affine map, so ⟨z, y⟩ = r⟨z, x⟩ + b z̄ and tr ∂y/∂z = r tr ∂x/∂z."""
        if self.training:
            return None
        r, b = self.gain / sp.sqrt(1 + self.eps), self.bias
        return Cross(r * c.aa + b * c.m_a, r * c.ab + b * c.m_a, r * c.ba + b * c.m_b, r * c.bb + b * c.m_b,
                     r * c.t_a, r * c.t_b, c.m_a, c.m_b)


def training_batchnorms(blocks) -> list:
    """The training-mode batchnorm blocks of a block sequence, child sequences included."""
    out = []
    for b in blocks:
        if isinstance(b, BatchNorm) and b.training:
            out.append(b)
        out.extend(training_batchnorms(b.children))
    return out


def with_batch(blocks, batch) -> tuple:
    """The blocks with every training-mode batchnorm at the large-batch default set to ``batch`` (an integer or
    ``sympy.oo``); a batchnorm that names another finite batch raises ValueError."""
    batch = sp.oo if batch == float("inf") else sp.Integer(batch)
    out = []
    for b in blocks:
        if b.sequences:
            names = [p.name for p in b.params() if p.kind == "blocks"]
            b = replace(b, **{n: with_batch(seq, batch) for n, seq in zip(names, b.sequences)})
        if isinstance(b, BatchNorm) and b.training:
            if b.batch is not sp.oo and b.batch != batch:
                raise ValueError(f"batch={format_number(batch)} is not allowed: {b.describe()} names another "
                                 "batch size (the batch is one for the whole network)")
            b = replace(b, batch=batch)
        out.append(b)
    return tuple(out)
