"""Measure, on sampled networks, the per-layer quantities that numerics predicts.

For each seed: sample the network, feed two inputs with mean square q0 and correlation c0 (exactly, and with
zero unit mean), record q, c of every block's pre-activation and p, m of every representation, then push probes
v back through one backward pass that reads g^l = (∂x^L/∂x^l)ᵀ v at every layer at once (DESIGN.md):

- ``probes="exact"``: v runs over the output's basis vectors (batched), so ‖J‖_F² is exact;
- ``probes=P`` (an int): P Hutchinson probes v ~ N(0, I), E‖Jᵀv‖² = ‖J‖_F², unbiased; their noise is part of the
  seed-to-seed spread that the intervals report.

GSC(l, L) = ‖J‖_qm ‖x^l‖/‖x^L‖ with ‖J‖_qm² = ‖J‖_F²/n_l, per input. The gradient correlation uses the same
probes for both inputs: Σ⟨g_a, g_b⟩/√(Σ‖g_a‖² Σ‖g_b‖²).

Example
-------
>>> from theory import parse
>>> from validate.measure import measure
>>> meas = measure(parse("5*dense(relu,sw2=2)"), width=64, seeds=3, probes=8)
>>> meas.summary()["log_gsc"]["mean"].shape
(6,)
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import stats

from numerics.iterate import check_inputs
from numerics.results import QUANTITIES, sigprop_version
from theory import as_network

from .build import check_positive_int, build, resolve_dtype

CONFIDENCE = 0.95
BOOTSTRAP = 2000


def make_inputs(width: int, q0: float, c0: float, generator: torch.Generator, dtype, device) -> torch.Tensor:
    """Two inputs (rows) with ‖x‖²/n = q0 exactly, correlation c0 exactly, and zero unit mean."""
    u = torch.randn(2, width, generator=generator, dtype=torch.float64)
    u = u - u.mean(dim=1, keepdim=True)
    e1 = u[0] / u[0].norm()
    w = u[1] - (u[1] @ e1) * e1
    e2 = w / w.norm()
    scale = math.sqrt(q0 * width)
    x = torch.stack([e1, c0 * e1 + math.sqrt(max(0.0, 1 - c0 * c0)) * e2]) * scale
    return x.to(device=device, dtype=dtype)


@dataclass
class Measurement:
    """Per-seed measurements. Arrays are indexed [seed, layer(, input)]; layers 0..L (q, c: blocks 1..L)."""

    architecture: str
    width: int
    seeds: list
    inputs: dict
    probes: object
    dtype: str
    device: str
    q: np.ndarray          # [seed, block, input]
    c: np.ndarray          # [seed, block]
    p: np.ndarray          # [seed, layer, input]
    m: np.ndarray          # [seed, layer, input]
    jac_qm2: np.ndarray    # ‖∂x^L/∂x^l‖_qm², [seed, layer, input]
    grad_cross: np.ndarray  # Σ_probes ⟨g_a, g_b⟩ / norm, [seed, layer]
    grad_sq: np.ndarray     # Σ_probes ‖g‖² / norm, [seed, layer, input]
    meta: dict = field(default_factory=dict)

    @property
    def n_seeds(self) -> int:
        return len(self.seeds)

    @property
    def depth(self) -> int:
        return self.p.shape[1] - 1

    def log_gsc_per_input(self) -> np.ndarray:
        """log GSC(l, L) per seed, layer and input."""
        log_x = 0.5 * np.log(self.p)
        return 0.5 * np.log(self.jac_qm2) + log_x - log_x[:, -1:, :]

    def summary(self) -> dict:
        """Per quantity: ``layers``, ``mean``, ``lo``, ``hi`` (95% interval of the mean over seeds)."""
        L = self.depth
        blocks, layers = np.arange(1, L + 1), np.arange(0, L + 1)
        out = {
            "q": _t_summary(self.q.mean(axis=2), blocks),
            "c": _t_summary(self.c, blocks),
            "p": _t_summary(self.p.mean(axis=2), layers),
            "m": _t_summary(self.m.mean(axis=2), layers),
            "log_gsc": _t_summary(self.log_gsc_per_input().mean(axis=2), layers),
        }
        num = self.jac_qm2 * self.p                           # ‖J‖_qm² ‖x^l‖²/n, per seed and input
        den = np.broadcast_to(self.p[:, -1:, :], num.shape)
        out["log_gsc_qm"] = _bootstrap_summary(
            lambda idx: 0.5 * (np.log(num[idx].mean(axis=(0, 2))) - np.log(den[idx].mean(axis=(0, 2)))),
            self.n_seeds, layers)
        out["grad_corr"] = _bootstrap_summary(
            lambda idx: self.grad_cross[idx].sum(0) / np.sqrt(self.grad_sq[idx, :, 0].sum(0)
                                                              * self.grad_sq[idx, :, 1].sum(0)),
            self.n_seeds, layers)
        return out

    def to_rows(self) -> list[dict]:
        rows = []
        for name, s in self.summary().items():
            for l, mean, lo, hi in zip(s["layers"], s["mean"], s["lo"], s["hi"]):
                rows.append({"architecture": self.architecture, "layer": int(l), "quantity": name,
                             "measured_mean": float(mean), "measured_lo": float(lo), "measured_hi": float(hi),
                             "width": self.width, "n_seeds": self.n_seeds})
        return rows


def _t_summary(per_seed: np.ndarray, layers) -> dict:
    n = per_seed.shape[0]
    mean = per_seed.mean(axis=0)
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * per_seed.std(axis=0, ddof=1) / math.sqrt(n)
    return {"layers": layers, "mean": mean, "lo": mean - half, "hi": mean + half}


def _bootstrap_summary(stat, n: int, layers) -> dict:
    """Pooled statistic over all seeds, with a percentile bootstrap interval over seeds (fixed RNG)."""
    mean = stat(np.arange(n))
    rng = np.random.default_rng(12345)
    boots = np.stack([stat(rng.integers(0, n, n)) for _ in range(BOOTSTRAP)])
    lo, hi = np.quantile(boots, [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2], axis=0)
    return {"layers": layers, "mean": mean, "lo": lo, "hi": hi}


def _probe_matrix(probes, n_out, generator, dtype, device):
    if probes == "exact":
        return torch.eye(n_out, dtype=dtype, device=device), float(n_out)
    if isinstance(probes, bool) or not isinstance(probes, int) or probes < 1:
        raise ValueError(f"probes={probes!r} is not allowed: use 'exact' or an integer >= 1 (Hutchinson probes)")
    v = torch.randn(probes, n_out, generator=generator, dtype=torch.float64)
    return v.to(device=device, dtype=dtype), 1.0


def measure_seed(network, width: int, seed: int, q0=1.0, c0=0.5, probes="exact", dtype="float64",
                 device="cpu") -> dict:
    """One sampled network: the raw per-layer arrays of :class:`Measurement` for one seed."""
    dt = resolve_dtype(dtype)
    net = build(network, width, seed, dtype, device)
    gen = torch.Generator().manual_seed(10_000_019 + seed)
    x0 = make_inputs(width, q0, c0, gen, dt, device).requires_grad_(True)
    out, trace = net(x0)
    v, norm = _probe_matrix(probes, out.shape[1], gen, dt, device)
    grads = torch.autograd.grad(out, trace.xs[:-1], grad_outputs=v[:, None, :].expand(-1, 2, -1).contiguous(),
                                is_grads_batched=True)
    with torch.no_grad():
        gs = [g.double() for g in grads] + [v[:, None, :].expand(-1, 2, -1).double()]   # layer L: g = v
        sq = torch.stack([(g * g).sum(dim=2).mean(dim=0) for g in gs]) * norm          # ‖J‖_F² per layer, input
        cross = torch.stack([(g[:, 0] * g[:, 1]).sum(dim=1).mean(dim=0) for g in gs]) * norm
        widths = torch.tensor([x.shape[1] for x in trace.xs], dtype=torch.float64, device=sq.device)
        hs = [h.double() for h in trace.pre]
        xs = [x.double() for x in trace.xs]
        q = torch.stack([(h * h).mean(dim=1) for h in hs])
        c = torch.stack([(h[0] @ h[1]) / (h[0].norm() * h[1].norm()) for h in hs])
        p = torch.stack([(x * x).mean(dim=1) for x in xs])
        m = torch.stack([x.mean(dim=1) for x in xs])
    arr = lambda t: t.detach().cpu().numpy()
    return {"q": arr(q), "c": arr(c), "p": arr(p), "m": arr(m), "jac_qm2": arr(sq / widths[:, None]),
            "grad_cross": arr(cross), "grad_sq": arr(sq)}


def measure(network, width: int = 256, seeds=10, q0: float = 1.0, c0: float = 0.5, probes="exact",
            dtype="float64", device="cpu", progress=None) -> Measurement:
    """Measure ``network`` at ``width`` over ``seeds`` (an int n → seeds 0..n-1, or a list of seeds ≥ 2 of them).

    ``progress``: optional callable invoked after each seed (e.g. a tqdm ``update``).
    """
    net = as_network(network)
    check_positive_int("width", width)
    if isinstance(seeds, bool) or not isinstance(seeds, (int, list, tuple, range)):
        raise ValueError(f"seeds={seeds!r} is not allowed: give a number of seeds or a list of seeds")
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if len(seed_list) < 2:
        raise ValueError(f"seeds={seeds!r} is not allowed: intervals need at least 2 seeds")
    check_inputs(q0, c0)
    start = time.perf_counter()
    per_seed = []
    for s in seed_list:
        per_seed.append(measure_seed(net, width, s, q0, c0, probes, dtype, device))
        if progress is not None:
            progress()
    stack = {k: np.stack([r[k] for r in per_seed]) for k in per_seed[0]}
    return Measurement(
        architecture=net.describe(), width=width, seeds=seed_list, inputs={"q0": q0, "c0": c0, "m0": 0.0},
        probes=probes, dtype=str(dtype), device=str(device), **stack,
        meta={"sigprop_version": sigprop_version(), "torch_version": torch.__version__,
              "seconds": time.perf_counter() - start, "quantities": QUANTITIES},
    )
