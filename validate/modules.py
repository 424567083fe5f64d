"""Torch modules that sample each block kind, registered beside the kinds (one rule per kind), and the torch
function of each activation.

A module's ``forward(x)`` returns ``(y, pre)``: the block's output and the pre-activation h of its last dense
layer (None for a block without one), which measurement records. Builders receive the block, the width, a
torch generator, the dtype and the device, and draw their weights from the generator in float64 (so a seed
gives the same network in every dtype and on every device).

The torch function of an activation is its fused torch op where it names one (``Activation.torch_op``), and
otherwise φ printed by SymPy's torch printer (Max/Min/Abs/sign/Heaviside first rewritten as Piecewise, which
prints as ``torch.where``).

Example
-------
>>> import torch
>>> from sigprop.theory import activation
>>> from sigprop.validate.modules import torch_function
>>> f = torch_function(activation("xtanh", "x*tanh(x)"))
>>> t = torch.tensor([0.5], dtype=torch.float64)
>>> bool(f(t) == t * torch.tanh(t))
True
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

import sympy as sp
import torch
from torch import nn

from ..theory import Act, Dense, Residual
from ..theory.piecewise import piecewise_form
from ..theory.symbols import x

#: block kind (class) -> builder(block, width, generator, dtype, device) -> nn.Module
MODULES: dict[type, Callable] = {}


def register_module(block_kind):
    """Decorator: register the torch builder of a block kind."""
    def deco(builder):
        MODULES[block_kind] = builder
        return builder
    return deco


def build_module(block, width: int, generator: torch.Generator, dtype, device) -> nn.Module:
    builder = MODULES.get(type(block))
    if builder is None:
        raise ValueError(f"block {block.describe()} has no torch module: register one with "
                         "sigprop.validate.modules.register_module")
    return builder(block, width, generator, dtype, device)


@lru_cache(maxsize=None)
def torch_function(act) -> Callable:
    """The activation's φ on tensors (see the module docstring)."""
    if act.torch_op:
        op = torch
        for part in act.torch_op.split("."):         # "relu", "nn.functional.softplus"
            op = getattr(op, part)
        return op
    # numeric constants (sqrt(2), pi) as floats: the torch printer would pass them to torch functions as ints
    phi = piecewise_form(act.phi).replace(lambda e: e.is_number and not e.is_Number, lambda e: sp.Float(sp.N(e, 20), 20))
    derived = sp.lambdify(x, phi, modules="torch")

    def phi(t):
        out = derived(t)
        if not isinstance(out, torch.Tensor):
            out = torch.full_like(t, float(out))
        out = out if out.dtype == t.dtype else out.to(t.dtype)
        # a piecewise-constant φ (step) has derivative 0 a.e.: keep the graph so backpropagation gives it
        return out + 0 * t if t.requires_grad and not out.requires_grad else out
    phi.__name__ = act.name
    return phi


def gaussian(shape, std: float, generator, dtype, device) -> torch.Tensor:
    """N(0, std²) entries drawn in float64 on the CPU generator, then moved (the same draws everywhere)."""
    return (torch.randn(*shape, generator=generator, dtype=torch.float64) * std).to(device=device, dtype=dtype)


class DenseLayer(nn.Module):
    """φ(x Wᵀ + b), W_ij ~ N(0, σ_w²/n), b_i ~ N(0, σ_b²)."""

    def __init__(self, block: Dense, width: int, generator: torch.Generator, dtype, device):
        super().__init__()
        self.phi = torch_function(block.activation)
        sw2, sb2 = float(block.sw2), float(block.sb2)
        self.weight = nn.Parameter(gaussian((width, width), (sw2 / width) ** 0.5, generator, dtype, device))
        self.bias = nn.Parameter(gaussian((width,), sb2 ** 0.5, generator, dtype, device))

    def forward(self, x):
        h = x @ self.weight.T + self.bias
        return self.phi(h), h


class ActLayer(nn.Module):
    """φ(x), no weights; its input is the pre-activation measurement records."""

    def __init__(self, block: Act, width: int, generator: torch.Generator, dtype, device):
        super().__init__()
        self.phi = torch_function(block.activation)

    def forward(self, x):
        return self.phi(x), x


class ResidualBlock(nn.Module):
    """α x + β branch(x)."""

    def __init__(self, block: Residual, width: int, generator: torch.Generator, dtype, device):
        super().__init__()
        self.branch = nn.ModuleList(build_module(b, width, generator, dtype, device) for b in block.branch)
        self.alpha, self.beta = float(block.alpha), float(block.beta)

    def forward(self, x):
        y, pre = x, None
        for module in self.branch:
            y, inner = module(y)
            pre = inner if inner is not None else pre
        return self.alpha * x + self.beta * y, pre


register_module(Dense)(DenseLayer)
register_module(Residual)(ResidualBlock)
register_module(Act)(ActLayer)
