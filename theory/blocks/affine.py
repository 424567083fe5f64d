"""The affine parameters a normalization block starts from: y = g·(normalized x) + b, with PyTorch's initial
values g = 1, b = 0 on every unit, and the ε added to the variance. ``layernorm`` and ``batchnorm`` derive from
:class:`AffineNormalization` (it is not a block kind itself).

Example
-------
>>> from sigprop.theory import LayerNorm
>>> [p.name for p in LayerNorm.params()]
['gain', 'bias', 'eps']
"""
from __future__ import annotations

from dataclasses import dataclass

from .base import Block, Number
from .params import param


@dataclass(frozen=True)
class AffineNormalization(Block):
    """Base of normalization blocks: the affine weight g, bias b and the ε of the variance."""

    gain: Number = param(1, kind="real", doc="g, the affine weight's initial value (all units)", hide_default=True)
    bias: Number = param(0, kind="real", doc="b, the affine bias's initial value (all units)", hide_default=True)
    eps: Number = param(0, kind="variance", doc="epsilon added to the variance (PyTorch's default is 1e-5)",
                        hide_default=True)
