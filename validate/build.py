"""Build a sampled torch network from a theory description (the same description numerics predicts).

Each block kind has one rule here: :class:`~theory.blocks.Dense` becomes ``φ(W x + b)`` with
``W_ij ~ N(0, σ_w²/n_in)`` and ``b_i ~ N(0, σ_b²)``; :class:`~theory.blocks.Residual` becomes
``α x + β branch(x)``. Each activation has one torch function (``TORCH_ACTIVATIONS``), checked against
theory's φ in the tests.

Example
-------
>>> import torch
>>> from theory import parse
>>> from validate.build import build
>>> net = build(parse("3*dense(tanh,sw2=1.5)"), width=64, seed=0)
>>> out, trace = net(torch.randn(2, 64, dtype=torch.float64))
>>> len(trace.xs), len(trace.pre)
(4, 3)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from numerics.compile import require_numbers
from theory import Dense, Residual, as_network

TORCH_ACTIVATIONS = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "erf": torch.erf,
    "linear": lambda t: t,
}

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r} is not allowed: it must be an integer >= 1")


def resolve_dtype(dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise ValueError(f"dtype={dtype!r} is not allowed; allowed: {', '.join(DTYPES)}")
    return DTYPES[dtype]


class DenseLayer(nn.Module):
    def __init__(self, block: Dense, width: int, generator: torch.Generator, dtype, device):
        super().__init__()
        name = block.activation.name
        if name not in TORCH_ACTIVATIONS:
            raise ValueError(f"activation={name!r} has no torch rule in validate.build.TORCH_ACTIVATIONS")
        self.phi = TORCH_ACTIVATIONS[name]
        sw2, sb2 = float(block.sw2), float(block.sb2)
        w = torch.randn(width, width, generator=generator, dtype=torch.float64) * (sw2 / width) ** 0.5
        b = torch.randn(width, generator=generator, dtype=torch.float64) * sb2 ** 0.5
        self.weight = nn.Parameter(w.to(device=device, dtype=dtype))
        self.bias = nn.Parameter(b.to(device=device, dtype=dtype))

    def forward(self, x):
        h = x @ self.weight.T + self.bias
        return self.phi(h), h


class ResidualBlock(nn.Module):
    def __init__(self, block: Residual, width: int, generator: torch.Generator, dtype, device):
        super().__init__()
        self.branch = nn.ModuleList(_module(b, width, generator, dtype, device) for b in block.branch)
        self.alpha, self.beta = float(block.alpha), float(block.beta)

    def forward(self, x):
        y = x
        for module in self.branch:
            y, pre = module(y)
        return self.alpha * x + self.beta * y, pre


def _module(block, width, generator, dtype, device) -> nn.Module:
    if isinstance(block, Dense):
        return DenseLayer(block, width, generator, dtype, device)
    if isinstance(block, Residual):
        return ResidualBlock(block, width, generator, dtype, device)
    raise TypeError(f"validate cannot build {type(block).__name__}")


@dataclass
class Trace:
    """Representations x^0..x^L and, per block, the pre-activation of its last dense layer."""

    xs: list
    pre: list


class SampledNetwork(nn.Module):
    """A torch network sampled from a description. ``forward(x)`` returns ``(x^L, Trace)``."""

    def __init__(self, network, width: int, seed: int, dtype="float64", device="cpu"):
        super().__init__()
        net = as_network(network)
        check_positive_int("width", width)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed={seed!r} is not allowed: it must be an integer >= 0")
        for b in net.blocks:
            require_numbers(b)
        self.description, self.width, self.seed = net.describe(), width, seed
        gen = torch.Generator().manual_seed(seed)
        dt = resolve_dtype(dtype)
        self.blocks = nn.ModuleList(_module(b, width, gen, dt, device) for b in net.blocks)

    def forward(self, x):
        xs, pres = [x], []
        for block in self.blocks:
            x, pre = block(x)
            xs.append(x)
            pres.append(pre)
        return x, Trace(xs, pres)


def build(network, width: int, seed: int = 0, dtype="float64", device="cpu") -> SampledNetwork:
    """Sample a torch network of the given width from a theory description."""
    return SampledNetwork(network, width, seed, dtype, device)
