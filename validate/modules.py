"""Torch modules that sample each block kind, registered beside the kinds (one rule per kind), and the torch
function of each activation.

A module's ``forward(x)`` returns ``(y, pre)``: the block's output and the pre-activation h of its last dense
layer (None for a block without one), which measurement records. Builders receive the block, its input width, a
torch generator, the dtype and the device, and draw their weights from the generator in float64 (so a seed
gives the same network in every dtype and on every device). A module whose output width differs from its input
width says so in ``n_out`` (:func:`output_width`); a dense layer of ``width=r`` has round(r·n_in) units.

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

from ..theory import Act, BatchNorm, Dense, Dropout, LayerNorm, Residual
from ..theory.blocks.base import scaled_width
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


def output_width(module: nn.Module, n_in: int) -> int:
    """The number of units a built module outputs (``n_out``, or its input width if it does not say)."""
    return getattr(module, "n_out", n_in)


def build_sequence(blocks, width: int, generator, dtype, device) -> tuple[nn.ModuleList, int]:
    """Modules for ``blocks`` in order, each built at its predecessor's output width; and the final width."""
    modules = []
    for b in blocks:
        modules.append(build_module(b, width, generator, dtype, device))
        width = output_width(modules[-1], width)
    return nn.ModuleList(modules), width


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
    """N(0, std²) entries drawn in float64 on the CPU generator, then moved and scaled there in float64 (the same
    draws, and the same correctly rounded products, everywhere); on torch's meta device the shape alone, nothing
    drawn."""
    if torch.device(device).type == "meta":
        return torch.empty(shape, dtype=dtype, device=device)
    draws = torch.randn(*shape, generator=generator, dtype=torch.float64).to(device=device)
    return draws.mul_(std).to(dtype=dtype)


def orthogonal(shape, sw2: float, generator, dtype, device) -> torch.Tensor:
    """√(σ_w² max(n_out, n_in)/n_in)·Q, Q Haar-distributed with orthonormal rows or columns (QR of a Gaussian
    matrix, signs fixed by R's diagonal; Mezzadri 2007), so that Var(W_ij) = σ_w²/n_in as for Gaussian weights;
    on torch's meta device the shape alone, nothing drawn."""
    n_out, n_in = shape
    if torch.device(device).type == "meta":
        return torch.empty(shape, dtype=dtype, device=device)
    a = torch.randn(max(shape), min(shape), generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(a)
    q = q * torch.sign(torch.diagonal(r))
    q = q if n_out >= n_in else q.T
    return (q * (sw2 * max(shape) / n_in) ** 0.5).to(device=device, dtype=dtype)


class DenseLayer(nn.Module):
    """φ(x Wᵀ + b), W_ij ~ N(0, σ_w²/n_in) (or scaled orthogonal), b_i ~ N(0, σ_b²), n_out = round(r·n_in) units;
    looks-linear: φ(h) − φ(−h), the CReLU pair as mirrored weights of the next layer read it."""

    def __init__(self, block: Dense, width: int, generator: torch.Generator, dtype, device):
        super().__init__()
        self.phi = torch_function(block.activation)
        sw2, sb2 = float(block.sw2), float(block.sb2)
        self.n_out = scaled_width(block, block.width, width)
        self.looks_linear = block.weights == "looks_linear"
        if block.weights in ("orthogonal", "looks_linear"):
            self.weight = nn.Parameter(orthogonal((self.n_out, width), sw2, generator, dtype, device))
        else:
            self.weight = nn.Parameter(gaussian((self.n_out, width), (sw2 / width) ** 0.5, generator, dtype, device))
        self.bias = nn.Parameter(gaussian((self.n_out,), sb2 ** 0.5, generator, dtype, device))

    def forward(self, x):
        h = x @ self.weight.T + self.bias
        if self.looks_linear:         # the CReLU pair (φ(h), φ(−h)) read by mirrored weights: W̃'(φ(h) − φ(−h))
            return self.phi(h) - self.phi(-h), h
        return self.phi(h), h


class ActLayer(nn.Module):
    """φ(x), no weights; its input is the pre-activation measurement records."""

    def __init__(self, block: Act, width: int, generator: torch.Generator, dtype, device):
        super().__init__()
        self.phi = torch_function(block.activation)

    def forward(self, x):
        return self.phi(x), x


class ResidualBlock(nn.Module):
    """α skip(x) + β branch(x); the skip is the identity unless the block gives one (a projection)."""

    def __init__(self, block: Residual, width: int, generator: torch.Generator, dtype, device):
        super().__init__()
        self.branch, self.n_out = build_sequence(block.branch, width, generator, dtype, device)
        self.skip, n_skip = build_sequence(block.skip, width, generator, dtype, device)
        if n_skip != self.n_out:
            raise ValueError(f"{block.describe()} at input width {width}: the branch ends with {self.n_out} units "
                             f"and the skip with {n_skip} (the width ratios round differently): use a width for "
                             "which both are whole numbers")
        self.alpha, self.beta = float(block.alpha), float(block.beta)

    def forward(self, x):
        y, pre = _run(self.branch, x)
        s, _ = _run(self.skip, x)
        return self.alpha * s + self.beta * y, pre


def _run(modules, x):
    """Apply modules in order; the output and the last pre-activation among them (None if none has one)."""
    pre = None
    for module in modules:
        x, inner = module(x)
        pre = inner if inner is not None else pre
    return x, pre


class DropoutLayer(nn.Module):
    """(μ ⊙ x)/ρ, μ_ij ~ Bernoulli(ρ) for each input row: the masks are drawn from a seed fixed at build time, so a
    sampled network gives the same output for the same batch on every call, device and dtype."""

    def __init__(self, block: Dropout, width: int, generator: torch.Generator, dtype, device):
        super().__init__()
        self.rho = float(block.rho)
        self.mask_seed = int(torch.randint(0, 2**62, (1,), generator=generator))

    def forward(self, x):
        gen = torch.Generator().manual_seed(self.mask_seed)
        keep = torch.rand(x.shape, generator=gen, dtype=torch.float64) < self.rho
        return x * keep.to(device=x.device, dtype=x.dtype) / self.rho, None


class LayerNormLayer(nn.Module):
    """torch's layer_norm over the units of each input, its affine weight and bias at g·1 and b·1."""

    def __init__(self, block: LayerNorm, width: int, generator: torch.Generator, dtype, device):
        super().__init__()
        self.width, self.eps = width, float(block.eps)
        self.weight = torch.full((width,), float(block.gain), dtype=dtype, device=device)
        self.bias = torch.full((width,), float(block.bias), dtype=dtype, device=device)

    def forward(self, x):
        return nn.functional.layer_norm(x, (self.width,), self.weight, self.bias, self.eps), None


class BatchNormLayer(nn.Module):
    """Batch normalization per unit over the rows (the batch) with the biased batch variance, as torch's
    ``batch_norm`` computes it in training mode, or torch's ``batch_norm`` with the running statistics at their
    initial values (mean 0, variance 1) in eval mode; affine weight and bias at g·1 and b·1."""

    def __init__(self, block: BatchNorm, width: int, generator: torch.Generator, dtype, device):
        super().__init__()
        self.training_mode, self.eps = block.training, float(block.eps)
        self.weight = torch.full((width,), float(block.gain), dtype=dtype, device=device)
        self.bias = torch.full((width,), float(block.bias), dtype=dtype, device=device)
        self.running_mean = torch.zeros(width, dtype=dtype, device=device)
        self.running_var = torch.ones(width, dtype=dtype, device=device)

    def forward(self, x):
        if self.training_mode:             # torch's batch_norm refuses eps = 0 in training mode: the same by hand
            centred = x - x.mean(dim=0, keepdim=True)
            var = (centred * centred).mean(dim=0, keepdim=True)
            return self.weight * centred / torch.sqrt(var + self.eps) + self.bias, None
        return nn.functional.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0,
                                        self.eps), None


register_module(Dense)(DenseLayer)
register_module(BatchNorm)(BatchNormLayer)
register_module(LayerNorm)(LayerNormLayer)
register_module(Dropout)(DropoutLayer)
register_module(Residual)(ResidualBlock)
register_module(Act)(ActLayer)
