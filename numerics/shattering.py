"""Balduzzi et al.'s independent-activation model of shattered gradients beside the full mean-field recursion.

Two models of the correlation ρ^l of the two inputs' gradients g^l = (∂x^L/∂x^l)ᵀv (one probe v shared by both)
for He-initialized ReLU networks:

- the **independent-activation model** (:mod:`sigprop.theory.balduzzi`, Balduzzi et al. 2017): every ReLU unit is
  co-active at the two inputs with probability 1/4, so each ``dense(relu,sw2=2)`` multiplies ρ by 1/2 (Theorem 1:
  2^(−L)) and each ``residual(dense(relu,sw2=2),dense(linear),beta=β)`` by (1 + β²/2)/(1 + β²) (Theorem 2 at
  β = 1: (3/4)^L);
- **mean field** (:func:`sigprop.numerics.predict`, ``values["grad_corr"]``): the co-activation probability of
  block l is 1/4 + arcsin(c_l)/(2π) at the correlation c_l of its ReLU layer's pre-activations, which the forward
  covariance map carries from the inputs' correlation c0.

:func:`compare_shattering` returns both per layer, the mean-field co-activation per block, and each model's
per-block factor. The two agree block by block wherever c_l = 0 and drift apart as the forward correlation
grows (docs/theory.md, "Shattered gradients").

Example
-------
>>> from sigprop.numerics.shattering import compare_shattering
>>> cmp = compare_shattering("feedforward", depth=1, c0=0.0)
>>> float(cmp.model[0]), float(cmp.mean_field[0])        # orthogonal inputs: one layer agrees exactly
(0.5, 0.5)
>>> cmp = compare_shattering("feedforward", depth=10, c0=0.0)
>>> round(float(cmp.model[0]), 6), round(float(cmp.mean_field[0]), 4)
(0.000977, 0.0337)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import sympy as sp

from ..theory import Network, parse
from ..theory import balduzzi as B
from ..theory import symbols as S
from .iterate import predict
from .signs import coactivation_probability

KINDS = ("feedforward", "resnet")


@dataclass(frozen=True)
class ShatteringComparison:
    """Gradient correlations of one network under the two models, on layers 0..L (``model``, ``mean_field``; 1 at
    layer L), and per block 1..L the mean-field co-activation probability of its ReLU pre-activations and each
    model's factor ρ^(l−1)/ρ^l."""

    architecture: str
    kind: str
    beta: float
    c0: float
    model: np.ndarray
    mean_field: np.ndarray
    coactivation: np.ndarray
    model_factor: np.ndarray
    mean_field_factor: np.ndarray

    @property
    def log_ratio(self) -> np.ndarray:
        """log(mean field / model) per layer: > 0 where the model shatters faster than mean field; −inf where mean
        field's correlation is 0 (c0 = −1 for ReLU: opposite inputs share no active unit)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(self.mean_field) - np.log(self.model)


def network(kind: str, depth: int, beta: float = 1.0) -> Network:
    """``depth*dense(relu,sw2=2)`` or ``depth*residual(dense(relu,sw2=2),dense(linear),beta=β)``.

    >>> from sigprop.numerics.shattering import network
    >>> net = network("resnet", 3, 0.5)
    >>> net.depth, float(net.blocks[0].beta), net.blocks[0].branch[0].describe().startswith("dense(relu,sw2=2")
    (3, 0.5, True)
    """
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not allowed; allowed: {', '.join(KINDS)}")
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth={depth!r} is not allowed: give an integer >= 1")
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not math.isfinite(beta):
        raise ValueError(f"beta={beta!r} is not allowed: give a finite real number")
    if kind == "feedforward":
        if beta != 1:
            raise ValueError(f"beta={beta!r} is not allowed for kind='feedforward': it has no branch")
        return parse(f"{depth}*dense(relu,sw2=2)")
    return parse(f"{depth}*residual(dense(relu,sw2=2),dense(linear),beta={beta!r})")


@lru_cache(maxsize=None)
def _model(kind: str):
    """The model's correlation over ``n`` blocks, compiled from theory's formula (n = 0: 1)."""
    n = B.L
    rhs = B.correlation(kind, n).rhs if kind == "feedforward" else B.correlation(kind, n, S.beta).rhs
    fn = sp.lambdify((n, S.beta), rhs, modules=np)
    return lambda blocks, beta: np.array([1.0 if m == 0 else float(fn(float(m), beta)) for m in blocks])


def compare_shattering(kind: str = "feedforward", depth: int = 10, beta: float = 1.0, c0: float = 0.0,
                       q0: float = 1.0) -> ShatteringComparison:
    """The independent-activation model's and mean field's gradient correlations for ``network(kind, depth, β)``
    and two inputs with mean square ``q0`` and correlation ``c0`` (see the module docstring)."""
    net = network(kind, depth, float(beta))
    pred = predict(net, q0=q0, c0=c0)
    rho = pred.per_block["rho"]                   # correlation of each block's input = its ReLU pre-activation's
    coact = np.array([coactivation_probability(1.0, 1.0, float(np.clip(r, -1, 1))) for r in rho[:-1]])
    blocks_above = depth - np.arange(depth + 1)
    model = _model(kind)(blocks_above, float(beta))
    chi = pred.per_block
    mf_factor = chi["chi_ab"] / np.sqrt(chi["chi_a"] * chi["chi_b"])
    model_factor = np.full(depth, float(B.layer_factor(kind, beta=1 if kind == "feedforward" else beta).rhs))
    return ShatteringComparison(net.describe(), kind, float(beta), float(c0), model,
                                np.asarray(pred.values["grad_corr"], dtype=float), coact, model_factor, mf_factor)
