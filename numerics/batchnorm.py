"""A training-mode batchnorm followed by a pointwise block: their joint maps (Monte Carlo over the sphere at a finite
batch B, Gaussian quadrature at B = ∞).

At a finite batch, one unit of the normalized batch is y = g√B u + b with u uniform on the unit sphere of 1⊥ in
R^B (``sigprop.theory.blocks.batchnorm``): not Gaussian, so φ(y) has no Gaussian closed form, and the backward
pass through both blocks, J_φ J_BN with J_BN = (g√B/‖Ph‖)(P − uuᵀ), has to be averaged jointly. With
D = diag(φ'(y)) and G = αI + β11ᵀ at the pointwise block's output (α = G_aa − G_ab, β = G_ab):

    E[J_BN D G D J_BN] = g²B/(σ²(B − 3)) · E[(P − uuᵀ)(αD² + β ddᵀ)(P − uuᵀ)],   d = φ'(y),

since ‖Ph‖² = σ²χ²_{B−1} is independent of u and E[1/χ²_{B−1}] = 1/(B − 3). The matrix in the expectation sends 1
to 0, so its mean is κP, κ = E[tr]/(B − 1), with tr = α T₁ + β T₂:

    T₁ = (1 − 1/B) Σ d_a² − Σ d_a² u_a²,   T₂ = ‖d‖² − (Σ d_a)²/B − (dᵀu)².

The forward moments E[φ(y_a)²], E[φ(y_a)φ(y_b)], E[φ(y_a)] and the pointwise block's own factors E[φ'(y_a)²],
E[φ'(y_a)φ'(y_b)] come from the same samples u = Pz/‖Pz‖, z ~ N(0, I_B): a Monte Carlo of a Gaussian integral
(never of a network), with a fixed seed so a prediction is reproducible, and with its standard errors. For
φ = identity T₁ = B − 2, T₂ = 0, which gives the closed form of the batchnorm block alone.

Example
-------
>>> from sigprop.theory import relu
>>> m = sphere_moments(relu, 64, 1.0, 0.0)
>>> round(m.values["second"], 2), round(m.values["dsecond"], 2)    # E[relu(y)^2], E[relu'(y)^2]: 1/2 and 1/2
(0.5, 0.5)
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..theory.state import Backward, BlockMaps, PairState, PreActivation
from .expectations import activation_functions
from .quadrature import expect1

#: the Monte Carlo samples of u per evaluation (each gives B coordinates)
SAMPLES = 1 << 15
_CHUNK = 1 << 11


@dataclass(frozen=True)
class SphereMoments:
    """Expectations over one normalized unit y = g√B u + b of a batch (``values``) and their standard errors."""

    values: dict
    errors: dict
    samples: int

    def relative_error(self) -> float:
        """The largest standard error relative to the scale of its quantity."""
        scale = {"second": "second", "cross": "second", "mean": "second", "dsecond": "dsecond",
                 "dcross": "dsecond", "t1": "t1", "t2": "t1"}
        out = 0.0
        for k, e in self.errors.items():
            ref = abs(self.values[scale[k]]) if scale[k] != "second" else self.values["second"]
            ref = np.sqrt(ref) if k == "mean" else ref
            out = max(out, e / ref if ref > 0 else 0.0)
        return out


@lru_cache(maxsize=64)
def sphere_moments(act, batch: int, gain: float, bias: float, samples: int = SAMPLES) -> SphereMoments:
    """Monte Carlo moments of φ over y = g√B u + b, u uniform on the unit sphere of 1⊥ in R^B (see the module
    docstring); per-sample statistics, so the standard errors count samples, not coordinates."""
    phi, dphi = activation_functions(act)
    rng = np.random.Generator(np.random.PCG64(20_190_101 + batch))
    B = int(batch)
    stats = {k: [] for k in ("second", "cross", "mean", "dsecond", "dcross", "t1", "t2")}
    for start in range(0, samples, _CHUNK):
        z = rng.standard_normal((min(_CHUNK, samples - start), B))
        w = z - z.mean(axis=1, keepdims=True)
        u = w / np.linalg.norm(w, axis=1, keepdims=True)
        y = gain * np.sqrt(B) * u + bias
        f = np.broadcast_to(np.asarray(phi(y), dtype=float), y.shape)
        d = np.broadcast_to(np.asarray(dphi(y), dtype=float), y.shape)
        sf, sf2 = f.sum(axis=1), (f * f).sum(axis=1)
        sd, sd2 = d.sum(axis=1), (d * d).sum(axis=1)
        pairs = B * (B - 1)
        stats["second"].append(sf2 / B)
        stats["cross"].append((sf * sf - sf2) / pairs)
        stats["mean"].append(sf / B)
        stats["dsecond"].append(sd2 / B)
        stats["dcross"].append((sd * sd - sd2) / pairs)
        stats["t1"].append((1 - 1 / B) * sd2 - (d * d * u * u).sum(axis=1))
        stats["t2"].append(sd2 - sd * sd / B - (d * u).sum(axis=1) ** 2)
    values, errors = {}, {}
    for k, parts in stats.items():
        a = np.concatenate(parts)
        values[k], errors[k] = float(a.mean()), float(a.std(ddof=1) / np.sqrt(len(a)))
    return SphereMoments(values, errors, samples)


@lru_cache(maxsize=64)
def gaussian_moments(act, gain: float, bias: float) -> dict:
    """The large-batch limit of :func:`sphere_moments` per coordinate (y = g z + b, z ~ N(0, 1), independent across
    the batch): E[φ²], E[φ]², E[φ], E[φ'²], E[φ']², t₁ = E[φ'²] and t₂ = E[φ'²] − E[φ']² − E[zφ']² (the
    coordinates' sums in T₁, T₂ over B), by composite Gauss-Legendre quadrature with edges at the kinks."""
    phi, dphi = activation_functions(act)
    kinks = tuple((float(t) - bias) / gain for t in act.kinks)
    y = lambda z: gain * z + bias                                   # noqa: E731
    mean = expect1(lambda z: phi(y(z)), 1.0, kinks=kinks)
    dmean = expect1(lambda z: dphi(y(z)), 1.0, kinks=kinks)
    dsecond = expect1(lambda z: dphi(y(z)) ** 2, 1.0, kinks=kinks)
    zd = expect1(lambda z: z * dphi(y(z)), 1.0, kinks=kinks)
    return {"second": expect1(lambda z: phi(y(z)) ** 2, 1.0, kinks=kinks), "cross": mean * mean, "mean": mean,
            "dsecond": dsecond, "dcross": dmean * dmean, "t1": dsecond, "t2": dsecond - dmean * dmean - zd * zd}


def joint_maps(bn, act, bn_in: PairState, bn_out: PairState) -> tuple[BlockMaps, Backward, float]:
    """The pointwise block's maps after a training-mode batchnorm, the joint backward map from the pointwise block's
    output to the batchnorm's input, and the relative standard error of the Monte Carlo (0 at B = ∞).

    ``bn_in``: the batchnorm's input state (numbers); ``bn_out``: its output state (theory's exact map). At B = ∞
    the coordinates are Gaussian and the sums over the batch in T₁, T₂ are B times Gaussian expectations
    (:func:`gaussian_moments`); the rank-one uuᵀ still matters there when G is close to 11ᵀ (a shared probe)."""
    g, b = float(bn.gain), float(bn.bias)
    sigma2 = bn_in.p_a - bn_in.p_ab
    if not bn.finite_batch:
        v = gaussian_moments(act.activation, g, b)
        out = PairState(v["second"], v["second"], v["cross"], v["mean"], v["mean"])
        pre = PreActivation(bn_out.p_a, bn_out.p_b, bn_out.p_ab)
        k = g * g / (sigma2 + float(bn.eps))
        joint = Backward(k * v["t1"], k * v["t1"], 0.0, k * (v["t2"] - v["t1"]), k * (v["t2"] - v["t1"]), 0.0)
        return BlockMaps(out, pre, Backward(v["dsecond"], v["dsecond"], v["dcross"])), joint, 0.0
    B = int(bn.batch)
    m = sphere_moments(act.activation, B, g, b)
    v = m.values
    out = PairState(v["second"], v["second"], v["cross"], v["mean"], v["mean"])
    pre = PreActivation(bn_out.p_a, bn_out.p_b, bn_out.p_ab)
    own = Backward(v["dsecond"], v["dsecond"], v["dcross"])
    c = g * g * B / (sigma2 * (B - 3) * (B - 1))
    t1, t2 = v["t1"], v["t2"]
    keep = c * (1 - 1 / B)
    joint = Backward(keep * t1, keep * t1, -(c / B) * (t2 - t1), keep * (t2 - t1), keep * (t2 - t1), -(c / B) * t1)
    return BlockMaps(out, pre, own), joint, m.relative_error()
