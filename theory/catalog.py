"""The catalog of activations: φ, and the closed-form kernels the literature has, each with its citation.

Each entry is one :class:`~sigprop.theory.activations.Activation`; everything else (second moments, derivative
kernels by Price's theorem, kinks, torch functions) is derived from it.

Example
-------
>>> from sigprop.theory.catalog import erf
>>> from sigprop.theory.symbols import q
>>> erf.second_moment(q)
2*atan(2*q/sqrt(4*q + 1))/pi
"""
from __future__ import annotations

import sympy as sp

from .activations import Activation, register_activation
from .determinant import covariance_determinant
from .symbols import x


def _relu_kernel(q1, q2, k):
    # Arc-cosine kernel of degree 1 (Cho & Saul 2009): √(q1 q2)(sin θ + (π − θ) cos θ)/(2π), cos θ = c,
    # written as k/2 + (√D − θk)/(2π) with D = q1 q2 − k² and θ = atan2(√D, k): the angle and the sine term
    # come from the same √D (no digits lost near c = 1), and at c = 1 the kernel is k/2 exactly.
    root = sp.sqrt(covariance_determinant(q1, q2, k))
    return k / 2 + (root - sp.atan2(root, k) * k) / (2 * sp.pi)


def _erf_kernel(q1, q2, k):
    # Williams 1997: (2/π) arcsin(2k / √((1 + 2q1)(1 + 2q2))), written as (2/π) atan2(2k, √(1 + 2q1 + 2q2 + 4D)):
    # 1 − sin² of the arcsine's argument is (1 + 2q1 + 2q2 + 4D)/((1 + 2q1)(1 + 2q2)), without cancellation.
    return 2 / sp.pi * sp.atan2(2 * k, sp.sqrt(1 + 2 * q1 + 2 * q2 + 4 * covariance_determinant(q1, q2, k)))


relu = Activation("relu", sp.Max(0, x), _relu_kernel, "arc-cosine kernel of degree 1, Cho & Saul 2009",
                  torch_op="relu")
tanh = Activation("tanh", sp.tanh(x), torch_op="tanh")
erf = Activation("erf", sp.erf(x), _erf_kernel, "Williams 1997, 'Computing with infinite networks'",
                 torch_op="erf")
linear = Activation("linear", x)

for _act in (relu, tanh, erf, linear):
    register_activation(_act)
