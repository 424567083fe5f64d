"""Activation transforms of Deep Kernel Shaping and Tailored Activation Transformations: φ̂(x) = a φ(b x + c) + d,
and the local maps at q = 1 whose values they prescribe.

For pre-activations of mean square 1 (the q = 1 that DKS and TAT keep every layer at), the local maps of φ are
(Martens et al. 2021, §3–4; Zhang et al. 2022, §3):

- Q(1) = E[φ(z)²], the length map at q = 1 (``laws.length_map`` with σ_w² = 1, σ_b² = 0);
- Q'(1) = E[φ'(z)²] + E[φ(z)φ''(z)], its slope (``laws.chi_q``);
- C(0) = E[φ(z)]²/Q(1), the correlation map at c = 0 (independent inputs);
- C'(1) = E[φ'(z)²]/Q(1), its slope at c = 1 (``laws.chi_1`` over Q(1));
- C''(1) = E[φ''(z)²]/Q(1), its curvature at c = 1 (Price's theorem: ∂²E[φ(u)φ(v)]/∂k² = E[φ''(u)φ''(v)], here
  at u = v).

DKS asks Q(1) = 1, Q'(1) = 1, C(0) = 0 and C'(1) = ζ^(1/L) per layer of an L-layer chain (so the network's C-map
slope is ζ); TAT asks Q(1) = Q'(1) = C'(1) = 1 and C''(1) = τ/L (smooth φ), or, for a leaky ReLU, the negative
slope whose L-fold C map takes 0 to η. ``sigprop.numerics.transforms`` solves them.

Example
-------
>>> from sigprop.theory.transforms import local_maps, transformed
>>> m = local_maps(transformed("relu", a=2 ** 0.5, b=1, c=0, d=0))
>>> round(float(m["Q"].rhs), 12), round(float(m["C_slope"].rhs), 12)
(1.0, 1.0)
"""
from __future__ import annotations

import dataclasses

import sympy as sp

from . import laws
from .activations import FAMILIES, get_activation
from .formula import Formula

#: the transform's parameters as symbols: output scale a > 0, input scale b > 0, input shift c, output shift d
A, B = sp.Symbol("a", positive=True), sp.Symbol("b", positive=True)
C, D = sp.symbols("c d", real=True)
SOURCE_DKS = "Martens et al. 2021, 'Rapid training of deep neural networks without skip connections or normalization"
SOURCE_TAT = "Zhang et al. 2022, 'Deep learning without shortcuts: shaping the kernel with tailored rectifiers'"


def transformed(activation, a=A, b=B, c=C, d=D, derive: bool = True):
    """φ̂(x) = a φ(b x + c) + d as an activation (the ``affine`` family); parameters numbers or symbols.
    ``derive=False``: no SymPy integration for its expectations (see :class:`~sigprop.theory.Activation`)."""
    member = FAMILIES["affine"](act=get_activation(activation), a=a, b=b, c=c, d=d)
    return member if derive else dataclasses.replace(member, derive=False, _cache={})


def local_maps(activation) -> dict:
    """Q(1), Q'(1), C(0), C'(1), C''(1) of ``activation`` as formulas (see the module docstring); C''(1) is None
    for a φ whose φ'' is not a function (a kink: E[φ''²] is infinite; a jump: undefined)."""
    act = get_activation(activation)
    q1 = laws.length_map(act, 1, 0, 1).rhs
    out = {"Q": Formula(sp.Symbol("Q(1)"), q1, SOURCE_DKS, "local Q map at q = 1"),
           "Q_slope": Formula(sp.Symbol("Q'(1)"), laws.chi_q(act, 1, 0, 1).rhs, SOURCE_DKS, "its slope"),
           "C0": Formula(sp.Symbol("C(0)"), act.mean(1) ** 2 / q1, SOURCE_DKS, "local C map at c = 0"),
           "C_slope": Formula(sp.Symbol("C'(1)"), laws.chi_1(act, 1, 1).rhs / q1, SOURCE_DKS,
                              "local C map slope at c = 1")}
    smooth = act.is_continuous and not act.dphi_jumps
    out["C_curv"] = (Formula(sp.Symbol("C''(1)"), act.ddkernel(1, 1, 1) / q1, SOURCE_TAT,
                             "local C map curvature at c = 1") if smooth else None)
    return out
