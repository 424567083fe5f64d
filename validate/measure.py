"""Measure, on sampled networks, the per-layer quantities that numerics predicts.

For each seed: sample the network, feed two inputs with mean square q0 and correlation c0 (exactly, and with
zero unit mean), record q, c of every pre-activation and p, m of every representation, then push probes v back
through one batched backward pass that reads g^l = (∂x^L/∂x^l)ᵀ v at every layer at once (``torch.func.vmap``
over ``torch.func.vjp``, the g^l being the gradients of zero taps added to the representations):

- ``probes="exact"``: v runs over the output's basis vectors (batched), so ‖J‖_F² is exact;
- ``probes=P`` (an int): P Hutchinson probes v ~ N(0, I), E‖Jᵀv‖² = ‖J‖_F², unbiased; their noise is part of the
  seed-to-seed spread that the intervals report. P at or above the output width is replaced by exact probes,
  which then cost no more and have no noise;
- by default (``probes=None``) exact probes for a pair of inputs and 8 Hutchinson probes for a batch of B > 2.

GSC(l, L) = ‖J‖_qm ‖x^l‖/‖x^L‖ with ‖J‖_qm² = ‖J‖_F²/n_l, per input (n_l: the width of x^l, recorded as ``n``). The gradient correlation uses the same
probes for both inputs: Σ⟨g_a, g_b⟩/√(Σ‖g_a‖² Σ‖g_b‖²). With a batch of B > 2 inputs (``batch``; every pair at
correlation c0) the columns hold the batch's means and the correlations its means over pairs; a network with
training-mode batchnorm couples the batch, so its GSC comes from a second pass with probes independent across the
inputs (the batch's Jacobian, as :func:`sigprop.numerics.predict` defines GSC; P Hutchinson probes whatever P,
and exact probes are refused there). Every registered quantity
(:data:`sigprop.quantities.QUANTITIES`) is computed from these arrays.

Example
-------
>>> from sigprop.theory import parse
>>> from sigprop.validate import measure
>>> meas = measure(parse("5*dense(relu,sw2=2)"), width=64, seeds=3, probes=8)
>>> meas.summary()["log_gsc"]["mean"].shape
(6,)
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import sympy as sp
import torch

from .. import __version__
from ..checks import (check_batch, check_batch_inputs, check_inputs, check_positive_int, check_progress, check_seeds,
                      input_norms)
from ..quantities import QUANTITIES, log_gsc_per_input
from ..theory import as_network
from ..theory.blocks.batchnorm import training_batchnorms
from .build import build, resolve_dtype, resolve_placement
from .intervals import bootstrap_interval, t_interval
from .pullback import check_probes, default_probes, probes_used, raw_arrays

#: the per-seed arrays a measurement records, and the quantities are computed from
RAW = ("q", "c", "p", "m", "n", "jac_qm2", "grad_cross", "grad_sq")
#: per-unit arrays recorded for a batch of B > 2 inputs, [seed, pre-activation layer, unit]
UNITS = ("unit_std", "sign_diversity")


def check_width(width) -> int:
    """A measurement's width: an integer >= 3 (two zero-mean inputs with a given correlation need 3 units)."""
    if check_positive_int("width", width) < 3:
        raise ValueError(f"width={width} is not allowed for measurement: two zero-mean inputs with a given "
                         "correlation need width >= 3")
    return width


def make_inputs(width: int, q0, c0: float, generator: torch.Generator, dtype, device, batch: int = 2) -> torch.Tensor:
    """``batch`` inputs (rows) with ‖x‖²/n = q0 exactly (one value, or for two inputs a pair (q_a, q_b)), every
    pair at correlation c0 exactly, and zero unit mean (width >= batch + 1)."""
    check_width(width)
    if batch > 2:
        return _exchangeable_inputs(width, q0, c0, batch, generator).to(device=device, dtype=dtype)
    u = torch.randn(2, width, generator=generator, dtype=torch.float64)
    u = u - u.mean(dim=1, keepdim=True)
    e1 = u[0] / u[0].norm()
    w = u[1] - (u[1] @ e1) * e1
    e2 = w / w.norm()
    scale = torch.tensor([[math.sqrt(q * width)] for q in input_norms(q0)], dtype=torch.float64)
    x = torch.stack([e1, c0 * e1 + math.sqrt(max(0.0, 1 - c0 * c0)) * e2]) * scale
    return x.to(device=device, dtype=dtype)


def _exchangeable_inputs(width, q0, c0, batch, generator):
    """X = C^½ E √(q0 n): E has orthonormal zero-mean rows, C = (1 − c0)I + c0 11ᵀ the batch's correlation."""
    check_batch_width(width, batch)
    check_batch_inputs(q0, c0, batch)
    u = torch.randn(width, batch, generator=generator, dtype=torch.float64)
    u = u - u.mean(dim=0, keepdim=True)
    e, _ = torch.linalg.qr(u)                                  # orthonormal columns, each of zero mean
    ones = torch.ones(batch, batch, dtype=torch.float64)
    corr = (1 - c0) * torch.eye(batch, dtype=torch.float64) + c0 * ones
    w, v = torch.linalg.eigh(corr)
    root = (v * w.clamp(min=0).sqrt()) @ v.T
    return root @ e.T * math.sqrt(q0 * width)


def check_batch_width(width: int, batch: int) -> None:
    """A batch of B > 2 exact inputs (every pair at correlation c0, zero unit mean) needs width >= B + 1."""
    if batch > 2 and width < batch + 1:
        raise ValueError(f"width={width} is not allowed for a batch of {batch} inputs: exact inputs need "
                         f"width >= batch + 1 = {batch + 1}")


def check_measurement(widths, seeds, probes, dtype, device, batch: int = 2) -> list:
    """The settings of a measurement of ``batch`` inputs, checked before any work; returns the widths as a list."""
    widths = list(widths)
    if not widths:
        raise ValueError("widths=[] is not allowed: give at least one width")
    for w in widths:
        check_width(w)
        check_batch_width(w, batch)
        check_probes(probes, w)
    if check_positive_int("seeds", seeds) < 2:
        raise ValueError(f"seeds={seeds!r} is not allowed: intervals need at least 2 seeds")
    resolve_placement(dtype, device)
    return widths


@dataclass
class Measurement:
    """Per-seed measurements. ``raw[name]`` is indexed [seed, layer(, input)]: layers 0..L, or the blocks with a
    pre-activation (``pre_layers``) for q and c."""

    architecture: str
    width: int
    seeds: list
    inputs: dict
    probes: object
    dtype: str
    device: str
    pre_layers: np.ndarray
    raw: dict
    meta: dict = field(default_factory=dict)

    @property
    def n_seeds(self) -> int:
        return len(self.seeds)

    @property
    def depth(self) -> int:
        return self.raw["p"].shape[1] - 1

    def log_gsc_per_input(self) -> np.ndarray:
        """log GSC(l, L) per seed, layer and input."""
        return log_gsc_per_input(self.raw)

    def cost(self) -> dict:
        """What the measurement cost: ``seconds``, ``seeds_per_batch``, ``bytes_per_seed`` (the estimate) and, on
        a CUDA device, ``peak_memory_bytes`` (those its ``meta`` holds)."""
        return {k: self.meta[k] for k in ("seconds", "seeds_per_batch", "bytes_per_seed", "peak_memory_bytes")
                if k in self.meta}

    def summary(self) -> dict:
        """Per quantity: ``layers``, ``mean``, ``lo``, ``hi`` (95% interval of the mean over seeds), ``n`` (seeds
        where it is defined, per layer). Raises ValueError if a quantity is defined for no seed at some layer."""
        L = self.depth
        out = {}
        for name, q in QUANTITIES.items():
            layers = self.pre_layers if q.layers == "pre" else np.arange(L + 1)
            with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
                s = t_interval(q.measured(self.raw)) if q.interval == "t" else bootstrap_interval(
                    q.parts(self.raw), q.pooled)
            if len(layers) and np.any(s["n"] == 0):
                bad = int(layers[np.argmax(s["n"] == 0)])
                raise ValueError(f"{name} at layer {bad} is undefined for all {self.n_seeds} sampled networks of "
                                 f"{self.architecture} at width {self.width}: a representation or gradient is 0 or "
                                 "not finite there. Every unit died (a larger width helps), the inputs are 0, the "
                                 "output does not depend on x^0 (computed without gradients, detached, or through "
                                 "a step), or the forward pass overflowed (a smaller variance or float64 helps)")
            out[name] = {"layers": layers, **s}
        return out

    def unit_summary(self) -> dict:
        """Philipp et al.'s collapsing-domain measures, recorded for a batch of B > 2 inputs ({} for a pair): per
        name of ``UNITS``, each network's mean over units at every pre-activation layer, with the 95% t interval
        over networks (``layers``, ``mean``, ``lo``, ``hi``, ``n``; units undefined for a network are left out)."""
        out = {}
        for name in UNITS:
            if name in self.raw:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)         # a layer without a defined unit
                    per_seed = np.nanmean(self.raw[name], axis=2)
                out[name] = {"layers": self.pre_layers, **t_interval(per_seed)}
        return out

    def to_rows(self) -> list[dict]:
        """Tidy rows (:meth:`summary`'s quantities, then :meth:`unit_summary`'s); ``n_seeds`` counts the seeds
        used, ``n_excluded`` those where the value was undefined."""
        rows = []
        for name, s in {**self.summary(), **self.unit_summary()}.items():
            for l, mean, lo, hi, n in zip(s["layers"], s["mean"], s["lo"], s["hi"], s["n"]):
                rows.append({"architecture": self.architecture, "layer": int(l), "quantity": name,
                             "measured_mean": float(mean), "measured_lo": float(lo), "measured_hi": float(hi),
                             "width": self.width, "n_seeds": int(n), "n_excluded": self.n_seeds - int(n)})
        return rows


def input_generator(seed: int) -> torch.Generator:
    """The CPU generator a seed's inputs and then its probes are drawn from (apart from its network's weights)."""
    return torch.Generator().manual_seed(10_000_019 + seed)


def seed_inputs(width: int, seed: int, q0, c0, batch: int, dtype, device) -> tuple:
    """(x0, generator) of a seed: its inputs, and the generator its probes are drawn from next."""
    gen = input_generator(seed)
    return make_inputs(width, q0, c0, gen, dtype, device, batch), gen


def measure_seed(network, width: int, seed: int, q0=1.0, c0=0.5, probes="exact", dtype="float64",
                 device="cpu", batch: int = 2) -> dict:
    """One sampled network: the raw per-layer arrays of :class:`Measurement` for one seed (and ``pre_layers``).

    With ``batch`` B > 2 the columns a, b hold the batch's means (p, m, q, ‖g‖²) and ``c``, ``grad_cross`` the
    means over its pairs."""
    dt = resolve_dtype(dtype)
    net = build(network, width, seed, dtype, device)
    coupled = bool(training_batchnorms(as_network(network).blocks))
    x0, gen = seed_inputs(width, seed, q0, c0, batch, dt, device)
    return raw_arrays(net, x0, probes, gen, coupled)


def measure(network, width: int = 256, seeds=10, q0: float = 1.0, c0: float = 0.5, probes=None,
            dtype="float64", device="cpu", progress=None, batch=None, seed_batch=None) -> Measurement:
    """Measure ``network`` at ``width`` over ``seeds`` (an int n → seeds 0..n-1, or a list of seeds ≥ 2 of them).

    ``probes``: 'exact', a number of Hutchinson probes, or None (exact for a pair of inputs, 8 for a batch).
    ``batch``: feed B inputs at once (every pair at correlation c0; width >= B + 1). A network
    with training-mode batchnorm needs a finite batch: this one, or the one its batchnorm blocks name. GSC is then
    the batch's (probes independent across the inputs), the gradient correlation the mean over pairs with a shared
    probe, as :func:`sigprop.numerics.predict` defines them.
    ``progress``: optional callable invoked after each seed (e.g. a tqdm ``update``).
    ``seed_batch``: how many seeds to measure at once (their networks stacked under one ``torch.func.vmap``);
    default: as many as fit in half a GPU's free memory, or elsewhere in 1 GiB where one seed takes under 64 MiB
    (:mod:`sigprop.validate.seed_batch`).
    The results are those of one seed at a time; ``meta`` records the seeds per batch, the memory estimate per
    seed and, on a CUDA device, the peak memory.

    ``network`` may also be your own ``torch.nn.Module`` or a factory ``seed -> module``: that is
    :func:`sigprop.validate.measure_model` (whose layers set the width, dtype and device).
    """
    if callable(network):
        if (width, dtype, device, batch) != (256, "float64", "cpu", None):
            raise ValueError("width, dtype, device and batch are not allowed for a torch model: its layers set them "
                             "(give a batch as inputs to measure_model)")
        from .model import measure_model
        return measure_model(network, seeds=seeds, q0=q0, c0=c0, probes=probes, seed_batch=seed_batch,
                             progress=progress)
    net = as_network(network)
    net, batch = resolve_batch(net, batch)
    check_positive_int("width", width)
    seed_list = check_seeds(seeds)
    check_inputs(q0, c0)
    check_progress(progress)
    if batch > 2:
        check_batch_inputs(q0, c0, batch)
    probes = default_probes(batch) if probes is None else probes
    check_measurement([width], len(seed_list), probes, dtype, device, batch)
    from .seed_batch import measure_seeds
    start = time.perf_counter()
    per_seed, info = measure_seeds(net, width, seed_list, q0, c0, probes, dtype, device, batch, seed_batch, progress)
    raw = {k: np.stack([r[k] for r in per_seed]) for k in RAW + UNITS if k in per_seed[0]}
    inputs = {"q0": _as_record(q0), "c0": c0, "m0": 0.0}
    if batch > 2 or training_batchnorms(net.blocks):
        inputs["batch"] = batch
    return Measurement(
        architecture=net.describe(), width=width, seeds=seed_list, inputs=inputs,
        probes=probes_used(probes, width, batch, bool(training_batchnorms(net.blocks))), dtype=str(dtype),
        device=str(device), pre_layers=per_seed[0]["pre_layers"], raw=raw,
        meta={"sigprop_version": __version__, "torch_version": torch.__version__,
              "seconds": time.perf_counter() - start, **info},
    )


def resolve_batch(net, batch) -> tuple:
    """(the network, B) for a measurement: ``batch`` if given (an integer >= 2), else the finite batch the
    network's training-mode batchnorm blocks name, else 2 (a pair). A batchnorm left at the large-batch default
    keeps it in the description (its prediction is the large-batch limit; the sampled network sees B inputs); one
    that names another batch raises ValueError."""
    batch = check_batch(batch)
    if batch == math.inf:
        raise ValueError("batch=inf is not allowed for a measurement: a sampled network sees a finite batch "
                         "(compare a large batch with the large-batch prediction)")
    norms = training_batchnorms(net.blocks)
    named = {int(b.batch) for b in norms if b.batch is not sp.oo}
    if batch is None:
        if norms and not named:
            raise ValueError(f"{net.describe()} has batchnorm in training mode: give batch=B (the number of inputs "
                             "fed at once, >= 4), or name it in the architecture (batchnorm(batch=B))")
        batch = named.pop() if named else 2
    if named - {batch}:
        raise ValueError(f"batch={batch} is not allowed: {net.describe()} names batch {sorted(named)} (the batch is "
                         "one for the whole network)")
    return net, batch


def _as_record(q0):
    q_a, q_b = input_norms(q0)
    return q_a if q_a == q_b else [q_a, q_b]
