"""A training-mode batchnorm followed by a pointwise block: their joint maps (Monte Carlo over the sphere at a finite
batch B, Gaussian quadrature at B = ∞).

The joint backward map is theory's (``BatchNorm.joint_backward``), in terms of two expectations over the
normalized unit y = g√B u + b, u uniform on the unit sphere of 1⊥ in R^B, d = φ'(y):
t₁ = E[(1 − 1/B)Σd_a² − Σd_a²u_a²]/B and t₂ = E[‖d‖² − (Σd_a)²/B − (dᵀu)²]/B. This module evaluates them, with
the forward moments E[φ(y_a)²], E[φ(y_a)φ(y_b)], E[φ(y_a)] and φ's own factors E[φ'(y_a)²], E[φ'(y_a)φ'(y_b)]:

- at a finite B, from samples u = Pz/‖Pz‖, z ~ N(0, I_B): a Monte Carlo of a Gaussian integral (never of a
  network), with a fixed seed so a prediction is reproducible, and with per-sample standard errors
  (:func:`sphere_moments`); for φ = identity t₁ = 1 − 2/B and t₂ = 0 in every sample;
- at B = ∞, where y = gz + b, z ~ N(0, 1), is independent across the batch and dᵀu → √B E[zφ'(y)]: as 1-D
  Gaussian quadratures (:func:`gaussian_moments`), t₁ = E[φ'²], t₂ = E[φ'²] − E[φ']² − E[zφ'(y)]².

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

from ..theory.state import Backward, BlockMaps, PairState, PreActivation, as_tuple
from .expectations import activation_functions
from .quadrature import expect1

#: the Monte Carlo samples of u per evaluation (each gives B coordinates)
SAMPLES = 1 << 15
_CHUNK = 1 << 11


@dataclass(frozen=True)
class SphereMoments:
    """Expectations over one normalized unit y = g√B u + b of a batch (``values``; t₁, t₂ per coordinate) and their
    standard errors."""

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
        stats["t1"].append(((1 - 1 / B) * sd2 - (d * d * u * u).sum(axis=1)) / B)
        stats["t2"].append((sd2 - sd * sd / B - (d * u).sum(axis=1) ** 2) / B)
    values, errors = {}, {}
    for k, parts in stats.items():
        a = np.concatenate(parts)
        values[k], errors[k] = float(a.mean()), float(a.std(ddof=1) / np.sqrt(len(a)))
    return SphereMoments(values, errors, samples)


@lru_cache(maxsize=64)
def gaussian_moments(act, gain: float, bias: float) -> dict:
    """The large-batch limit of :func:`sphere_moments` (y = g z + b, z ~ N(0, 1), independent across the batch):
    E[φ²], E[φ]², E[φ], E[φ'²], E[φ']², t₁ = E[φ'²] and t₂ = E[φ'²] − E[φ']² − E[zφ']², by composite
    Gauss-Legendre quadrature with edges at the kinks."""
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

    ``bn_in``: the batchnorm's input state (numbers); ``bn_out``: its output state (theory's exact map). The
    rank-one uuᵀ matters even at B = ∞ when G is close to 11ᵀ (a probe shared by the batch)."""
    g, b = float(bn.gain), float(bn.bias)
    if bn.finite_batch:
        moments = sphere_moments(act.activation, int(bn.batch), g, b)
        v, error = moments.values, moments.relative_error()
    else:
        v, error = gaussian_moments(act.activation, g, b), 0.0
    out = PairState(v["second"], v["second"], v["cross"], v["mean"], v["mean"])
    pre = PreActivation(bn_out.p_a, bn_out.p_b, bn_out.p_ab)
    own = Backward(v["dsecond"], v["dsecond"], v["dcross"])
    joint = Backward(*(float(f) for f in as_tuple(bn.joint_backward(bn_in, v["t1"], v["t2"]))))
    return BlockMaps(out, pre, own), joint, error
