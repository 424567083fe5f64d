"""Build a sampled torch network from a theory description (the same description numerics predicts).

Example
-------
>>> import torch
>>> from sigprop.theory import parse
>>> from sigprop.validate import build
>>> net = build(parse("3*dense(tanh,sw2=1.5)"), width=64, seed=0)
>>> out, trace = net(torch.randn(2, 64, dtype=torch.float64))
>>> len(trace.xs), len(trace.pre)
(4, 3)
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..checks import check_positive_int
from ..numerics.compile import require_numbers
from ..theory import as_network
from .modules import build_sequence

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def resolve_dtype(dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if dtype not in DTYPES:
        raise ValueError(f"dtype={dtype!r} is not allowed; allowed: {', '.join(DTYPES)}")
    return DTYPES[dtype]


def resolve_device(device) -> torch.device:
    """A torch device that exists here, or a ValueError saying why not (before any work is done)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device={device!r} is not allowed: not a torch device (e.g. cpu, cuda, cuda:1, mps)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} is not allowed: CUDA is not available on this machine")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device={device!r} is not allowed: this machine has {torch.cuda.device_count()} "
                             "CUDA device(s)")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"device={device!r} is not allowed: MPS is not available on this machine")
    elif dev.type != "cpu":
        raise ValueError(f"device={device!r} is not allowed: sigprop runs on cpu, cuda or mps")
    return dev


def cuda_devices() -> list:
    """Every CUDA device (none without CUDA): those whose random state ``torch.manual_seed`` also sets, so that a
    forked random state (``torch.random.fork_rng(devices=cuda_devices())``) leaves them all as found."""
    return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []


def resolve_placement(dtype, device) -> tuple:
    """(torch dtype, torch device), or a ValueError naming what is not allowed (before any work is done)."""
    dt, dev = resolve_dtype(dtype), resolve_device(device)
    if dev.type == "mps" and dt == torch.float64:
        raise ValueError(f"dtype={dtype!r} is not allowed on device={device!r}: MPS has no float64; use "
                         "dtype='float32' (its effect on the numbers: benchmarks/bench_measure.py) or the CPU")
    return dt, dev


def check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed={seed!r} is not allowed: it must be an integer >= 0")
    return seed


@dataclass
class Trace:
    """Representations x^0..x^L, and the pre-activations of the blocks that have one (``pre_layers``, 1-based;
    for a user's model, ``pre_sources``: the module each was read at)."""

    xs: list
    pre: list
    pre_layers: list
    pre_sources: list = field(default_factory=list)


class SampledNetwork(nn.Module):
    """A torch network sampled from a description, ``width`` units at its input (and wherever no block changes
    it; ``n_out`` at its output). ``forward(x)`` returns ``(x^L, Trace)``."""

    def __init__(self, network, width: int, seed: int, dtype="float64", device="cpu"):
        super().__init__()
        net = as_network(network)
        check_positive_int("width", width)
        check_seed(seed)
        for b in set(net.blocks):
            require_numbers(b)
        self.description, self.width, self.seed = net.describe(), width, seed
        gen = torch.Generator().manual_seed(seed)
        meta = str(device) == "meta"            # shapes only (build's docstring); measurement refuses it
        dt, dev = (resolve_dtype(dtype), torch.device("meta")) if meta else resolve_placement(dtype, device)
        self.blocks, self.n_out = build_sequence(net.blocks, width, gen, dt, dev)

    def forward(self, x, taps=None):
        """(x^L, Trace); ``taps`` (optional): tensors added to x^1..x^{L−1}, whose gradients are those of the
        representations (measurement pulls probes back through them)."""
        xs, pres, layers = [x], [], []
        for layer, block in enumerate(self.blocks, start=1):
            x, pre = block(x)
            if taps is not None and layer <= len(taps):
                x = x + taps[layer - 1]
            xs.append(x)
            if pre is not None:
                pres.append(pre)
                layers.append(layer)
        return x, Trace(xs, pres, layers)


def build(network, width: int, seed: int = 0, dtype="float64", device="cpu") -> SampledNetwork:
    """Sample a torch network of the given width from a theory description. ``device="meta"`` (torch's meta
    device): its modules, widths and parameter shapes, no weight drawn (what memory estimates need, at no cost)."""
    return SampledNetwork(network, width, seed, dtype, device)
