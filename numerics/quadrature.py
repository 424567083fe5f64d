"""Gaussian expectations by composite Gauss–Legendre rules that resolve kinks and steep activations.

Plain Gauss–Hermite fails twice here: at a kink (relu at 0, hard tanh at ±1) it converges slowly, and for a
steep activation (tanh(√q z) with q ≫ 1) its nodes are too coarse near 0; E[tanh'(√50 z)²] is off by 80% with
128 nodes. The features sit at the activation's kinks and at its argument 0, on the activation's own scale 1,
while the Gaussian lives on the scale √q. The rules below put panel edges at every feature and refine
geometrically towards it from the finest scale min(1, √q)/64 up to the Gaussian's, with panels of width
√q/2 out to 10√q (weight e⁻⁵⁰).

- 1-D: E[f(u)], u ~ N(0, q): panels in u, edges at 0 and at the kinks.
- 2-D, kinks only at 0 (relu, tanh, erf, …): polar coordinates z = r(cos t, sin t) of the whitened pair,
  u = √q₁ r cos t, v = √q₂ r cos(t − θ), θ = atan2(√(q₁q₂ − k²), k). The lines u = 0 and v = 0 are rays at
  fixed angles: they become edges of the angular panels, with geometric refinement towards them; the radial
  rule refines towards r = 0.
- 2-D, a kink away from 0 (hard tanh): the conditional decomposition u = √q₁ z, v = a z + b w,
  a = k/√q₁, b = √((q₁q₂ − k²)/q₁), w ⊥ z. The inner rule in w puts edges where v crosses each kink (a different
  place for every outer node), the outer rule in z where u does, and refines where the inner average changes
  fast (z = κ/a, on the scale b/|a|).

- Conditional on a point: E[f(v) | u = t] (a Dirac delta of φ'' at a kink t of the other factor), the 1-D rule
  for v | u = t ~ N(k t/q₁, (q₁q₂ − k²)/q₁), its kinks shifted by the mean.

Each function takes ``m`` nodes per panel; ``error=True`` also returns |I_m − I_{m+4}| as an error estimate
(the rules converge geometrically in m on analytic panels).

Example
-------
>>> import numpy as np
>>> from sigprop.numerics.quadrature import expect1, expect2
>>> round(float(expect1(lambda u: u**2, 3.0)), 12)
3.0
>>> val, err = expect2(np.tanh, np.tanh, 1.0, 1.0, 0.5, error=True)
>>> err < 1e-12
True
>>> hard_tanh = lambda u: np.clip(u, -1.0, 1.0)
>>> round(float(expect1(lambda u: hard_tanh(u) ** 2, 1.0, kinks=(-1.0, 1.0))), 12)
0.516058550962
"""
from __future__ import annotations

from functools import lru_cache
from math import sqrt

import numpy as np

from .determinant import covariance_determinant

GAUSS_TAIL = 10.0        # panels reach 10 standard deviations (weight < e^-50)
RADIAL_TAIL = 9.0        # r e^{-r²/2} < 3e-17 beyond r = 9
FINEST = 1.0 / 64.0      # finest panel, relative to the activation scale 1 (or to √q when smaller)
FINEST_2D = 1.0 / 8.0    # the same for the polar rule, whose panels are graded in angle and radius
#: the 1-D rules' panels are at most 1 wide (the activation scale) for |u| ≤ BEND: smooth activations bend there
#: (gelu_tanh's φφ'' on panels 2 wide, as the grading from 0 alone gave at q = 1e3, was 1.5e-10 off)
BEND = 8
_INV_SQRT_2PI = 1.0 / sqrt(2.0 * np.pi)


@lru_cache(maxsize=64)
def _legendre(m: int):
    x, w = np.polynomial.legendre.leggauss(m)
    return x, w


def _composite(edges: np.ndarray, m: int):
    """Gauss–Legendre nodes and weights on consecutive panels given by ``edges`` (sorted, along the last axis)."""
    x, w = _legendre(m)
    a, b = edges[..., :-1, None], edges[..., 1:, None]
    half = (b - a) / 2
    shape = edges.shape[:-1] + (-1,)
    return (a + half * (x + 1)).reshape(shape), (half * w).reshape(shape)


def _graded_edges(start: float, finest: float, coarsest: float, stop: float) -> np.ndarray:
    """Edges from ``start``: widths double from ``finest`` up to ``coarsest``, then stay, until ``stop``."""
    edges, e, width = [start], start, finest
    while e + width < stop:
        e += width
        edges.append(e)
        width = min(2 * width, coarsest)
    edges.append(stop)
    return np.asarray(edges)


def _partition(lo: float, hi: float, features, coarsest: float) -> np.ndarray:
    """Edges covering [lo, hi] with an edge at each feature point, graded geometrically towards it.

    ``features``: (point, finest width) pairs; points outside (lo, hi) are ignored.
    """
    inner = {}
    for point, finest in features:
        if lo < point < hi:
            inner[point] = min(finest, inner.get(point, np.inf))
    points = sorted(inner)
    # features closer together than the coarser one's finest panel act as one: each gets the finer scale, so the
    # finer grading covers both sides of the pair (a kink of f at 1e-10 from one of g's)
    for _ in range(2):
        for p, r in zip(points[:-1], points[1:]):
            if abs(r - p) < max(inner[p], inner[r]):
                inner[p] = inner[r] = min(inner[p], inner[r])
        points.reverse()
    stops = [(lo, None)] + sorted(inner.items()) + [(hi, None)]
    edges = [np.array([lo])]
    for (a, fa), (b, fb) in zip(stops[:-1], stops[1:]):
        if fa and fb:
            mid = (a + b) / 2
            left = _graded_edges(a, fa, coarsest, mid)
            right = b - _graded_edges(0.0, fb, coarsest, b - mid)[::-1]
            seg = np.concatenate([left[:-1], right])
        elif fa:
            seg = _graded_edges(a, fa, coarsest, b)
        elif fb:
            seg = b - _graded_edges(0.0, fb, coarsest, b - a)[::-1]
        else:
            seg = np.linspace(a, b, int(np.ceil((b - a) / coarsest)) + 1)
        edges.append(seg[1:])
    return np.concatenate(edges)


@lru_cache(maxsize=4096)
def _rule1(q: float, m: int, kinks: tuple):
    s = sqrt(q)
    tail = GAUSS_TAIL * s
    finest = min(1.0, s) * FINEST
    bends = [(float(b), 1.0) for b in range(-BEND, BEND + 1) if b]
    u, w = _composite(_partition(-tail, tail, [(0.0, finest)] + [(kk, finest) for kk in kinks] + bends, s / 2), m)
    return u, w * np.exp(-u**2 / (2 * q)) / sqrt(2 * np.pi * q)


def _check(name, value, lo=None):
    v = float(value)
    if not np.isfinite(v) or (lo is not None and v < lo):
        raise ValueError(f"{name}={value!r} is not allowed: it must be finite" + (f" and >= {lo}" if lo is not None else ""))
    return v


def _kinks(kinks) -> tuple:
    return tuple(sorted({float(kk) for kk in kinks}))


def _at_zero(f) -> float:
    return float(np.ravel(f(np.zeros(1)))[0])


def expect1(f, q, m: int = 10, error: bool = False, kinks=()):
    """E[f(u)] for u ~ N(0, q); ``f`` is a vectorized callable with kinks at ``kinks`` (0 is always an edge)."""
    q = _check("q", q, 0.0)
    if q == 0.0:
        val = _at_zero(f)
        return (val, 0.0) if error else val
    u, w = _rule1(q, m, _kinks(kinks))
    with np.errstate(over="ignore"):            # np.select evaluates every branch of a piecewise φ
        val = float(np.dot(w, np.broadcast_to(f(u), u.shape)))
    if not error:
        return val
    return val, abs(val - expect1(f, q, m + 4, kinks=kinks))


@lru_cache(maxsize=64)
def _radial(qmax: float, m: int):
    finest = min(1.0, 1.0 / sqrt(qmax)) * FINEST_2D
    r, w = _composite(_graded_edges(0.0, finest, 0.5, RADIAL_TAIL), m)
    return r, w * r * np.exp(-r**2 / 2)


def _angular(theta: float, qmax: float, m: int):
    breaks = np.mod(np.array([np.pi / 2, 3 * np.pi / 2, theta + np.pi / 2, theta + 3 * np.pi / 2]), 2 * np.pi)
    breaks = np.unique(np.round(breaks, 15))
    breaks = np.append(breaks, breaks[0] + 2 * np.pi)
    finest = min(1.0, 1.0 / (RADIAL_TAIL * sqrt(qmax))) * FINEST_2D
    edges = []
    for a, b in zip(breaks[:-1], breaks[1:]):
        if b - a < 1e-14:
            continue
        mid = (a + b) / 2
        left = _graded_edges(a, finest, np.inf, mid)
        right = b - _graded_edges(0.0, finest, np.inf, b - mid)[::-1]
        edges.append(np.concatenate([left[:-1], right]))
    t_all, w_all = zip(*(_composite(e, m) for e in edges))
    return np.concatenate(t_all), np.concatenate(w_all) / (2 * np.pi)


def _polar(f, g, q1, q2, k, m):
    theta = float(np.arctan2(sqrt(covariance_determinant(q1, q2, k)), k))
    qmax = max(q1, q2)
    r, wr = _radial(qmax, m)
    t, wt = _angular(theta, qmax, m)
    u = sqrt(q1) * np.outer(np.cos(t), r)
    v = sqrt(q2) * np.outer(np.cos(t - theta), r)
    return float(wt @ (np.broadcast_to(f(u), u.shape) * np.broadcast_to(g(v), v.shape)) @ wr)


def _conditional(f, g, q1, q2, k, m, kinks_f, kinks_g):
    s1 = sqrt(q1)
    a, b = k / s1, sqrt(covariance_determinant(q1, q2, k) / q1)
    g_points = (0.0,) + kinks_g
    features = [(kk / s1, min(1.0, 1.0 / s1) * FINEST) for kk in (0.0,) + kinks_f]
    if a != 0.0:
        scale = min(1.0, 1.0 / abs(a), b / abs(a)) if b > 0 else min(1.0, 1.0 / abs(a))
        features += [(kk / a, max(scale, 1e-300) * FINEST) for kk in g_points]
    z, wz = _composite(_partition(-GAUSS_TAIL, GAUSS_TAIL, features, 0.5), m)
    wz = wz * np.exp(-z**2 / 2) * _INV_SQRT_2PI
    fz = np.broadcast_to(f(s1 * z), z.shape)
    if b == 0.0:                                   # |c| = 1: v = a z
        return float(np.dot(wz, fz * np.broadcast_to(g(a * z), z.shape)))
    # inner rule in w for every outer node: a fixed grid plus edges graded towards each point where v
    # crosses a kink or 0, w* = (κ − a z)/b (clipped to the grid's range: those panels then have width 0)
    finest = min(1.0, 1.0 / b) * FINEST
    offsets = _graded_edges(0.0, finest, 0.5, 1.0)
    offsets = np.concatenate([-offsets[::-1], offsets[1:]])
    base = np.linspace(-GAUSS_TAIL, GAUSS_TAIL, int(4 * GAUSS_TAIL) + 1)
    centres = (np.asarray(g_points)[None, :] - a * z[:, None]) / b
    moving = (centres[:, :, None] + offsets[None, None, :]).reshape(len(z), -1)
    edges = np.sort(np.clip(np.concatenate([np.broadcast_to(base, (len(z), len(base))), moving], axis=1),
                        -GAUSS_TAIL, GAUSS_TAIL), axis=1)
    w, ww = _composite(edges, m)
    ww = ww * np.exp(-w**2 / 2) * _INV_SQRT_2PI
    inner = np.sum(ww * np.broadcast_to(g(a * z[:, None] + b * w), w.shape), axis=1)
    return float(np.dot(wz, fz * inner))


def expect2(f, g, q1, q2, k, m: int = 8, error: bool = False, kinks_f=(), kinks_g=()):
    """E[f(u) g(v)] for (u, v) ~ N(0, [[q1, k], [k, q2]]); ``f``, ``g`` vectorized callables, with kinks at
    ``kinks_f`` and ``kinks_g`` (0 is always treated as a feature)."""
    q1, q2, k = _check("q1", q1, 0.0), _check("q2", q2, 0.0), _check("k", k)
    kinks_f, kinks_g = _kinks(kinks_f), _kinks(kinks_g)
    if k * k > q1 * q2 * (1 + 2e-9):
        raise ValueError(f"k={k!r} is not allowed: |k| must be <= sqrt(q1*q2) = {sqrt(q1 * q2)!r}")
    if q1 == 0.0 or q2 == 0.0:
        if q1 == 0.0:
            val = _at_zero(f) * expect1(g, q2, m + 2, kinks=kinks_g)
        else:
            val = _at_zero(g) * expect1(f, q1, m + 2, kinks=kinks_f)
        return (val, 0.0) if error else val
    if all(kk == 0.0 for kk in kinks_f + kinks_g):
        val = _polar(f, g, q1, q2, k, m)
        other = _polar(f, g, q1, q2, k, m + 4) if error else None
    else:
        val = _conditional(f, g, q1, q2, k, m, kinks_f, kinks_g)
        other = _conditional(f, g, q1, q2, k, m + 4, kinks_f, kinks_g) if error else None
    return (val, abs(val - other)) if error else val


def expect_given(f, q1, q2, k, t, m: int = 10, error: bool = False, kinks=()):
    """E[f(v) | u = t] for (u, v) ~ N(0, [[q1, k], [k, q2]]), q1 > 0: v | u = t ~ N(k t/q1, (q1 q2 − k²)/q1).
    ``f`` vectorized with kinks at ``kinks`` (v-coordinates)."""
    q1, q2, k, t = _check("q1", q1, 0.0), _check("q2", q2, 0.0), _check("k", k), _check("t", t)
    if q1 == 0.0:
        raise ValueError("q1=0.0 is not allowed: the condition u = t needs a variance")
    mean, var = k * t / q1, max(covariance_determinant(q1, q2, k) / q1, 0.0)
    # f's features (its kinks, and 0 where activations are steep) sit at v = κ, i.e. at w = κ − mean
    points = tuple(kk - mean for kk in _kinks(tuple(kinks) + (0.0,)))
    return expect1(lambda w: f(mean + w), var, m, error=error, kinks=points)


def _rule1_array(q: np.ndarray, m: int, kinks: tuple, tail: float = GAUSS_TAIL, width: float = 0.5):
    """The 1-D rule of :func:`expect1` for many variances at once, in z = u/√q: a fixed grid of panels of
    ``width`` (1/2) over ±``tail`` (10), merged with edges graded geometrically (widths doubling from
    min(1, 1/√q)/64) on both sides of every feature (0 and each kink κ/√q). Every row gets the same number of
    panels, and edges at the whole numbers |u| ≤ :data:`BEND`; edges clipped to ±tail make panels of width 0,
    which weigh nothing. Returns u = √q z and weights
    including the normal density, each (P, nodes)."""
    s = np.sqrt(q)[:, None]
    finest = np.minimum(1.0, 1.0 / s) * FINEST
    doublings = int(np.ceil(np.log2(2 * tail / finest.min()))) + 1
    offsets = finest * (2.0 ** np.arange(doublings) - 1)                         # 0, h, 3h, 7h, …
    base = np.linspace(-tail, tail, int(round(2 * tail / width)) + 1)
    parts = [np.broadcast_to(base, (q.size, base.size)), np.arange(-BEND, BEND + 1) / s]
    for point in (0.0,) + kinks:
        centre = point / s
        parts += [centre + offsets, centre - offsets[:, 1:]]
    edges = np.sort(np.clip(np.concatenate(parts, axis=1), -tail, tail), axis=1)
    z, w = _composite(edges, m)
    return s * z, w * np.exp(-z**2 / 2) * _INV_SQRT_2PI


def expect1_array(f, q, m: int = 10, error: bool = False, kinks=(), chunk: int = 2048):
    """E[f(u)], u ~ N(0, q), for every entry of the array ``q`` (> 0) at once: :func:`expect1`'s rule,
    vectorized; ``error=True`` adds |I_m − I_{m+4}| plus the sum's rounding per entry.

    >>> import numpy as np
    >>> v = expect1_array(lambda u: np.maximum(u, 0.0) ** 2, np.array([1.0, 4.0]))
    >>> np.round(v, 12).tolist()
    [0.5, 2.0]
    """
    q = np.asarray(q, dtype=float)
    flat, kinks = q.ravel(), _kinks(kinks)
    value, err = np.empty(flat.size), np.zeros(flat.size)
    for i in range(0, flat.size, chunk):
        part = flat[i:i + chunk]
        u, w = _rule1_array(part, m, kinks)
        with np.errstate(over="ignore"):        # np.select evaluates every branch of a piecewise φ
            terms = w * np.broadcast_to(f(u), u.shape)
        value[i:i + chunk] = np.sum(terms, axis=1)
        if error:         # the rule's convergence, plus the rounding of a sum of that many terms
            u, w = _rule1_array(part, m + 4, kinks)
            with np.errstate(over="ignore"):
                again = np.sum(w * np.broadcast_to(f(u), u.shape), axis=1)
            err[i:i + chunk] = (np.abs(value[i:i + chunk] - again)
                                + np.finfo(float).eps * np.sqrt(terms.shape[1]) * np.sum(np.abs(terms), axis=1))
    value, err = value.reshape(q.shape), err.reshape(q.shape)
    return (value, err) if error else value
