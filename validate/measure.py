"""Measure, on sampled networks, the per-layer quantities that numerics predicts.

For each seed: sample the network, feed two inputs with mean square q0 and correlation c0 (exactly, and with
zero unit mean), record q, c of every pre-activation and p, m of every representation, then push probes v back
through one batched backward pass that reads g^l = (∂x^L/∂x^l)ᵀ v at every layer at once (``torch.func.vmap``
over ``torch.func.vjp``, the g^l being the gradients of zero taps added to the representations):

- ``probes="exact"``: v runs over the output's basis vectors (batched), so ‖J‖_F² is exact;
- ``probes=P`` (an int): P Hutchinson probes v ~ N(0, I), E‖Jᵀv‖² = ‖J‖_F², unbiased; their noise is part of the
  seed-to-seed spread that the intervals report. P at or above the output width is replaced by exact probes,
  which then cost no more and have no noise.

GSC(l, L) = ‖J‖_qm ‖x^l‖/‖x^L‖ with ‖J‖_qm² = ‖J‖_F²/n_l, per input (n_l: the width of x^l, recorded as ``n``). The gradient correlation uses the same
probes for both inputs: Σ⟨g_a, g_b⟩/√(Σ‖g_a‖² Σ‖g_b‖²). With a batch of B > 2 inputs (``batch``; every pair at
correlation c0) the columns hold the batch's means and the correlations its means over pairs; a network with
training-mode batchnorm couples the batch, so its GSC comes from a second pass with probes independent across the
inputs (the batch's Jacobian, as :func:`sigprop.numerics.predict` defines GSC). Every registered quantity
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
from dataclasses import dataclass, field

import numpy as np
import sympy as sp
import torch

from .. import __version__
from ..checks import check_batch, check_batch_inputs, check_inputs, check_positive_int, input_norms
from ..quantities import QUANTITIES, log_gsc_per_input
from ..theory import as_network
from ..theory.blocks.batchnorm import training_batchnorms
from .build import Trace, build, resolve_dtype, resolve_placement
from .intervals import bootstrap_interval, t_interval

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
    if width < batch + 1:
        raise ValueError(f"width={width} is not allowed for a batch of {batch} inputs: exact inputs need "
                         f"width >= batch + 1 = {batch + 1}")
    check_batch_inputs(q0, c0, batch)
    u = torch.randn(width, batch, generator=generator, dtype=torch.float64)
    u = u - u.mean(dim=0, keepdim=True)
    e, _ = torch.linalg.qr(u)                                  # orthonormal columns, each of zero mean
    ones = torch.ones(batch, batch, dtype=torch.float64)
    corr = (1 - c0) * torch.eye(batch, dtype=torch.float64) + c0 * ones
    w, v = torch.linalg.eigh(corr)
    root = (v * w.clamp(min=0).sqrt()) @ v.T
    return root @ e.T * math.sqrt(q0 * width)


def check_probes(probes, width: int):
    """'exact', or a number of Hutchinson probes; P >= width becomes 'exact' (cheaper and without noise)."""
    if probes == "exact":
        return "exact"
    if isinstance(probes, bool) or not isinstance(probes, int) or probes < 1:
        raise ValueError(f"probes={probes!r} is not allowed: use 'exact' or an integer >= 1 (Hutchinson probes)")
    return "exact" if probes >= width else probes


def check_measurement(widths, seeds, probes, dtype, device) -> list:
    """The settings of a measurement, checked before any work; returns the widths as a list."""
    widths = list(widths)
    if not widths:
        raise ValueError("widths=[] is not allowed: give at least one width")
    for w in widths:
        check_width(w)
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
                                 f"{self.architecture} at width {self.width} (e.g. every unit died, so the "
                                 "output is 0): use a larger width")
            out[name] = {"layers": layers, **s}
        return out

    def to_rows(self) -> list[dict]:
        """Tidy rows; ``n_seeds`` counts the seeds used, ``n_excluded`` those where the value was undefined."""
        rows = []
        for name, s in self.summary().items():
            for l, mean, lo, hi, n in zip(s["layers"], s["mean"], s["lo"], s["hi"], s["n"]):
                rows.append({"architecture": self.architecture, "layer": int(l), "quantity": name,
                             "measured_mean": float(mean), "measured_lo": float(lo), "measured_hi": float(hi),
                             "width": self.width, "n_seeds": int(n), "n_excluded": self.n_seeds - int(n)})
        return rows


def draw_probes(probes, batch: int, n_out: int, generator, dtype, device, coupled: bool) -> tuple:
    """(v, w, norm): the probes [P, n_out] shared by the inputs (the basis vectors for ``probes="exact"``, else P
    Hutchinson probes drawn from ``generator`` in float64), for a network that mixes the batch (``coupled``) probes
    w [P, batch, n_out] independent across the inputs (else None), and the factor that makes Σ‖Jᵀv‖² an estimate
    of ‖J‖_F² (n_out for exact probes, 1 for Hutchinson's)."""
    probes = check_probes(probes, n_out)
    if probes == "exact":
        v, norm = torch.eye(n_out, dtype=dtype, device=device), float(n_out)
    else:
        v = torch.randn(probes, n_out, generator=generator, dtype=torch.float64).to(device=device, dtype=dtype)
        norm = 1.0
    w = (torch.randn(v.shape[0], batch, n_out, generator=generator, dtype=torch.float64).to(device, dtype)
         if coupled else None)
    return v, w, norm


def check_batch_probes(probes, n_out: int, batch: int) -> None:
    """Exact probes only for a pair of inputs: a batch of B > 2 would hold n_out × B gradients per layer."""
    if batch > 2 and check_probes(probes, n_out) == "exact":
        raise ValueError(f"probes='exact' is not allowed for a batch of {batch} inputs (it would hold "
                         f"{n_out} x {batch} gradients per layer): give a number of probes, e.g. probes=8")


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
    check_batch_probes(probes, net.n_out, batch)
    x0, gen = seed_inputs(width, seed, q0, c0, batch, dt, device)
    coupled = bool(training_batchnorms(as_network(network).blocks))
    return raw_arrays(net, x0, probes, gen, coupled)


def raw_arrays(forward, x0, probes, generator, coupled: bool, trace0=None) -> dict:
    """The raw per-layer arrays of one network. ``forward(x, taps)`` returns ``(x^L, Trace)`` (the representations
    x^0..x^L, each [batch, ...], and the pre-activations) and adds ``taps[l − 1]`` to x^l for l = 1..L−1 when taps
    are given. The probes (:func:`draw_probes`, from ``generator``) are pulled back to every layer at once as the
    gradients of the taps (:func:`raw_tensors`); the results come to the host in one transfer. ``coupled``: the
    network mixes the batch, so GSC comes from a second pull-back with probes independent across the inputs (the
    batch's Jacobian). ``trace0``: the Trace of a forward pass of a network of the same structure, whose shapes
    (of the taps, of x^L for the probes) spare this network a forward pass to find them."""
    if trace0 is None:
        with torch.no_grad():
            _, trace0 = forward(x0, None)                # the shapes: probes and taps
    out0 = trace0.xs[-1]
    v, w, norm = draw_probes(probes, out0.shape[0], out0[0].numel(), generator, out0.dtype, out0.device, coupled)
    raw = to_host(raw_tensors(forward, x0, v, w, norm, trace0))
    raw["pre_layers"] = np.array(trace0.pre_layers, dtype=int)
    return raw


def raw_tensors(forward, x0, v, w, norm: float, trace0=None) -> dict:
    """The raw arrays of one network as tensors on its device, made of tensor operations only (so that
    ``torch.func.vmap`` maps it over a stack of networks): ``torch.func.vmap`` of the pull-back of
    ``torch.func.vjp`` over the probes, one batched backward pass (a module that mutates captured state in its
    forward pass, e.g. torch's training-mode batchnorm updating its running statistics, falls back to autograd's
    batched gradients). ``trace0``: the Trace of a forward pass without taps, if already run (its shapes give the
    taps')."""
    if trace0 is None:
        with torch.no_grad():
            _, trace0 = forward(x0, None)
    batch = x0.shape[0]
    shared = v[:, None, :].expand(-1, batch, -1).contiguous()
    trace, pulled = _pull_back(forward, x0, trace0, [shared] if w is None else [shared, w])
    gs = pulled[0] + [shared.double()]                                                      # layer L: g = v
    if w is not None:                   # the batch's Jacobian: probes independent across inputs
        free = pulled[1] + [w.double()]
        jac = (_layers(lambda g: _sq_norm(g, (-2, -1)), free).mean(dim=-1) / batch)[:, None].expand(-1, 2)
    else:
        jac = None
    with torch.no_grad():
        own = _layers(lambda g: _sq_norm(g, -1), gs)                          # ‖g‖² [layer, probe, input]
        sq = _per_input(own.mean(dim=-2)) * norm                              # ‖J‖_F² per input
        cross = _pair_mean(_layers(lambda g: _sq_norm(g.sum(dim=-2), -1), gs), own) * norm
        jac = sq if jac is None else jac
        widths = torch.tensor([x[0].numel() for x in trace.xs], dtype=torch.float64, device=sq.device)
        hs = [h.detach().reshape(h.shape[0], -1).double() for h in trace.pre]
        xs = [x.detach().reshape(x.shape[0], -1).double() for x in trace.xs]
        empty = torch.zeros(0, 2, dtype=torch.float64, device=sq.device)
        q = _per_input(_layers(lambda h: (h * h).mean(dim=-1), hs)) if hs else empty
        unit = lambda h: h / h.norm(dim=-1, keepdim=True)                     # cosines: one probe, the unit rows
        c = _pair_mean(_layers(lambda h: _sq_norm(unit(h).sum(dim=-2), -1)[..., None], hs),
                       _layers(lambda h: _sq_norm(unit(h), -1)[..., None, :], hs)) if hs else empty[:, 0]
        p = _per_input(_layers(lambda x: (x * x).mean(dim=-1), xs))
        m = _per_input(_layers(lambda x: x.mean(dim=-1), xs))
        raw = {"q": q, "c": c, "p": p, "m": m, "n": widths, "jac_qm2": jac / widths[:, None], "grad_cross": cross,
               "grad_sq": sq}
        if batch > 2:
            raw.update(unit_statistics(hs, sq.device))
    return raw


def to_host(tensors: dict) -> dict:
    """The tensors as float64 NumPy arrays, moved in one transfer (one synchronization of the device)."""
    names = list(tensors)
    flat = torch.cat([tensors[k].detach().reshape(-1).double() for k in names]).cpu().numpy()
    out, start = {}, 0
    for k in names:
        size = tensors[k].numel()
        out[k] = flat[start:start + size].reshape(tuple(tensors[k].shape))
        start += size
    return out


def unit_statistics(hs, device) -> dict:
    """Per pre-activation layer and unit, over the data batch: the standard deviation (of the batch itself, not
    an unbiased estimate) and the sign diversity min(fraction > 0, fraction < 0) (Philipp, Song & Carbonell 2018);
    NaN pads layers narrower than the widest; on ``device`` (where ``hs`` are, if any)."""
    width = max((h.shape[1] for h in hs), default=0)
    pad = lambda t: torch.nn.functional.pad(t, (0, width - t.shape[0]), value=math.nan)
    std = [pad(h.std(dim=0, correction=0)) for h in hs]
    div = [pad(torch.minimum((h > 0).double().mean(dim=0), (h < 0).double().mean(dim=0))) for h in hs]
    empty = torch.zeros(0, width, dtype=torch.float64, device=device)
    return {"unit_std": torch.stack(std) if hs else empty, "sign_diversity": torch.stack(div) if hs else empty}


def _pull_back(forward, x0, trace0, probe_sets) -> tuple:
    """(the Trace, per probe set the list g^l = (∂x^L/∂x^l)ᵀ v for l = 0..L−1, each [probe, input, unit] in
    float64): one forward pass under ``torch.func.vjp`` with zero taps, then ``vmap`` of its pull-back over the
    probes; autograd's batched gradients where the transform refuses the module."""
    taps = [torch.zeros_like(x) for x in trace0.xs[1:-1]]

    def run(x, *t):
        out, trace = forward(x, list(t))
        return out.reshape(out.shape[0], -1), (tuple(trace.xs), tuple(trace.pre))
    try:
        _, pull, (xs, pre) = torch.func.vjp(run, x0, *taps, has_aux=True)
        grads = [torch.func.vmap(pull)(probes) for probes in probe_sets]
    except RuntimeError:                     # e.g. an in-place update of a captured buffer inside the forward pass
        x = x0.clone().requires_grad_(True)
        with torch.enable_grad():
            out, trace = forward(x, None)
        xs, pre = tuple(trace.xs), tuple(trace.pre)
        grads = [torch.autograd.grad(out.reshape(out.shape[0], -1), xs[:-1], grad_outputs=probes,
                                     is_grads_batched=True, allow_unused=True, retain_graph=True)
                 for probes in probe_sets]
    trace = Trace(list(xs), list(pre), trace0.pre_layers)
    with torch.no_grad():
        return trace, [[(x.new_zeros(p.shape[0], x.shape[0], x[0].numel()) if g is None else
                         g.reshape(p.shape[0], x.shape[0], -1)).double() for g, x in zip(gs, xs[:-1])]
                       for gs, p in zip(grads, probe_sets)]


#: the most elements that per-layer tensors of one shape may hold together to be reduced as one stack
STACK_ELEMENTS = 2 ** 22


def _layers(fn, tensors):
    """``fn`` of each tensor, stacked over the layers: one call on their stack where they share a shape and hold
    at most :data:`STACK_ELEMENTS` together (a few kernels instead of a few per layer), else one call each."""
    if len({t.shape for t in tensors}) == 1 and len(tensors) * tensors[0].numel() <= STACK_ELEMENTS:
        return fn(torch.stack(tensors))
    return torch.stack([fn(t) for t in tensors])


def _per_input(values):
    """Per-input values (last axis) of a pair as they are, of a larger batch as its mean in both columns."""
    return values if values.shape[-1] == 2 else values.mean(dim=-1, keepdim=True).expand(*values.shape[:-1], 2)


def _sq_norm(g, dim):
    """Σ g² over ``dim``: the square of one reduction (no temporary of g's size; within 2 ulp of the sum)."""
    return torch.linalg.vector_norm(g, dim=dim) ** 2


def _pair_mean(total, own):
    """⟨g_a, g_b⟩ averaged over the pairs a ≠ b of the batch and over the probes, from ‖Σ_b g_b‖² (``total``,
    [..., probe]) and ‖g_b‖² (``own``, [..., probe, input]): (‖Σ_b g_b‖² − Σ_b ‖g_b‖²)/(B(B − 1))."""
    B = own.shape[-1]
    return ((total - own.sum(dim=-1)) / (B * (B - 1))).mean(dim=-1)


def measure(network, width: int = 256, seeds=10, q0: float = 1.0, c0: float = 0.5, probes="exact",
            dtype="float64", device="cpu", progress=None, batch=None, seed_batch=None) -> Measurement:
    """Measure ``network`` at ``width`` over ``seeds`` (an int n → seeds 0..n-1, or a list of seeds ≥ 2 of them).

    ``batch``: feed B inputs at once (every pair at correlation c0; width >= B + 1; Hutchinson probes). A network
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
    if isinstance(seeds, bool) or not isinstance(seeds, (int, list, tuple, range)):
        raise ValueError(f"seeds={seeds!r} is not allowed: give a number of seeds or a list of seeds")
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if len(seed_list) < 2:
        raise ValueError(f"seeds={seeds!r} is not allowed: intervals need at least 2 seeds")
    check_inputs(q0, c0)
    check_measurement([width], len(seed_list), probes, dtype, device)
    probes = check_probes(probes, width)
    from .seed_batch import measure_seeds
    start = time.perf_counter()
    per_seed, info = measure_seeds(net, width, seed_list, q0, c0, probes, dtype, device, batch, seed_batch, progress)
    raw = {k: np.stack([r[k] for r in per_seed]) for k in RAW + UNITS if k in per_seed[0]}
    inputs = {"q0": _as_record(q0), "c0": c0, "m0": 0.0}
    if batch > 2 or training_batchnorms(net.blocks):
        inputs["batch"] = batch
    return Measurement(
        architecture=net.describe(), width=width, seeds=seed_list, inputs=inputs,
        probes=probes, dtype=str(dtype), device=str(device), pre_layers=per_seed[0]["pre_layers"], raw=raw,
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
