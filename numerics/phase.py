"""Fixed points, slopes, depth scales and the phase of a deep dense network φ(Wx + b), for any activation.

The maps are theory's (:mod:`sigprop.theory.laws`): the length map q' = σ_w² E[φ²] + σ_b², its slope χ_q, the
correlation map c' at equal variances, χ₁ = σ_w² E[φ'²] and χ_c = σ_w² E[φ'(u)φ'(v)] (Poole et al. 2016;
Schoenholz et al. 2017), compiled once per activation with their expectations bound to closed forms or quadrature. On them:

- :func:`length_fixed_points`: every q* in [q_lo, q_hi] (sign changes of q'/q − 1 on a log grid, refined by
  Brent's method to relative 1e-13), and q* = 0 when σ_b² = 0 and φ(0) = 0; each with the slope
  χ_∥ = dq'/dq = σ_w² (E[φ'²] + E[φφ'']) (``laws.chi_q``; for a φ that jumps without a closed-form E[φ²],
  Richardson-extrapolated central differences with their error estimate), stability |χ_∥| < 1 and the depth
  scale ξ_q = 1/|log|χ_∥||;
- :func:`correlation_fixed_points`: every c* in [−1, 1] of the correlation map at a length fixed point, with
  χ_c (the map's slope there), stability and ξ_c = 1/|log|χ_c|| (c* = 1 is always one, with χ_c = χ₁);
- :func:`phase_point`: the attracting q*, its stable c*, χ₁, χ_c, ξ_q, ξ_c and the phase (ordered χ₁ < 1,
  chaotic χ₁ > 1); c* is nan when q* = 0 (the network is linear there: every c is a fixed point, and
  χ_c = χ₁);
- :func:`critical_sw2`: σ_w² on the critical line χ₁(q*) = 1 for a given σ_b².

Example
-------
>>> from sigprop.numerics.phase import phase_point, critical_sw2
>>> pt = phase_point("tanh", sw2=2.5, sb2=0.05)
>>> pt.phase, round(pt.c_star, 6)
('chaotic', 0.446804)
>>> round(critical_sw2("tanh", sb2=0.05), 6)
1.760955
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import numpy as np
from scipy.optimize import brentq
from sympy import Derivative

from ..theory import get_activation, laws
from ..theory import symbols as S
from .compile import compile_expression

#: |χ − 1| below this is reported as critical
CRITICAL_TOL = 1e-9
#: the window the attracting q* is searched in: [Q_LO, max(Q_HI, 10 (σ_w² + σ_b²))], so that a bounded φ
#: (|φ| <= 1: q* <= σ_w² + σ_b²) has its q* inside at any σ_w², GRID_PER_DECADE log-grid points a decade
Q_LO, Q_HI, GRID_PER_DECADE = 1e-8, 1e8, 10


def search_window(sw2, sb2) -> tuple:
    """(q_lo, q_hi, grid points) of the search for q* at the largest σ_w² + σ_b² among ``sw2``, ``sb2``."""
    q_hi = max(Q_HI, 10 * float(np.max(np.asarray(sw2) + np.asarray(sb2))))
    return Q_LO, q_hi, int(round(GRID_PER_DECADE * np.log10(q_hi / Q_LO))) + 1


@dataclass(frozen=True)
class FixedPoint:
    """A fixed point x* of a one-dimensional map, its slope there (with an error estimate; 0 for a slope from a
    formula), whether it attracts (|slope| < 1) and the depth scale 1/|log|slope|| over which perturbations decay
    or grow (inf at |slope| = 1)."""

    value: float
    slope: float
    slope_error: float
    stable: bool
    depth_scale: float


@dataclass(frozen=True)
class PhasePoint:
    """The large-depth state of ``dense(activation, sw2, sb2)`` networks (see the module docstring)."""

    activation: str
    sw2: float
    sb2: float
    q_star: float
    c_star: float
    chi_1: float
    chi_c: float
    xi_q: float
    xi_c: float
    phase: str


@lru_cache(maxsize=None)
def _maps(act):
    sw2, sb2, q, c = S.sigma_w2, S.sigma_b2, S.q, S.c
    chi_q = laws.chi_q(act, sw2, sb2, q).rhs
    return {"q": compile_expression((sw2, sb2, q), laws.length_map(act, sw2, sb2, q).rhs),
            # a φ that jumps and has no closed-form E[φ²] leaves dq'/dq unevaluated: its slope is then differenced
            "chi_q": None if chi_q.has(Derivative) else compile_expression((sw2, sb2, q), chi_q),
            "c": compile_expression((sw2, sb2, q, c), laws.correlation_map(act, sw2, sb2, q, c).rhs),
            "chi_1": compile_expression((sw2, q), laws.chi_1(act, sw2, q).rhs),
            "chi_c": compile_expression((sw2, q, c), laws.chi_c(act, sw2, q, c).rhs)}


def _check(sw2, sb2):
    for name, v, low in (("sw2", sw2, 0.0), ("sb2", sb2, 0.0)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < low or (
                name == "sw2" and v == 0):
            raise ValueError(f"{name}={v!r} is not allowed: give a finite number "
                             f"{'> 0' if name == 'sw2' else '>= 0'}")
    return float(sw2), float(sb2)


def _depth_scale(slope: float) -> float:
    """1/|log|slope||: layers over which a perturbation decays (|slope| < 1) or grows by e; inf at |slope| = 1."""
    a = abs(slope)
    return 0.0 if a == 0 else math.inf if a == 1 else 1 / abs(math.log(a))


def _slope(f, x0, h):
    """f'(x0) by central differences at h and h/2, Richardson-extrapolated; error = |D(h/2) − D(h)|."""
    d1 = (f(x0 + h) - f(x0 - h)) / (2 * h)
    d2 = (f(x0 + h / 2) - f(x0 - h / 2)) / h
    return (4 * d2 - d1) / 3, abs(d2 - d1)


def length_fixed_points(activation, sw2: float, sb2: float, q_lo: float = 1e-8, q_hi: float = 1e8,
                        grid: int = 161) -> list[FixedPoint]:
    """All fixed points q* of the length map in [q_lo, q_hi] (and q* = 0 where it is one), increasing."""
    act = get_activation(activation)
    sw2, sb2 = _check(sw2, sb2)
    qmap, chi_q = _maps(act)["q"], _maps(act)["chi_q"]
    g = lambda t: qmap(sw2, sb2, math.exp(t)) / math.exp(t) - 1        # noqa: E731 - in log q
    ts = np.linspace(math.log(q_lo), math.log(q_hi), grid)
    vals = [g(t) for t in ts]
    out = []
    if sb2 == 0 and act.phi.subs(S.x, 0) == 0:       # q = 0 maps to 0; its slope is χ₁ as q → 0
        chi0 = _maps(act)["chi_1"](sw2, 1e-200)
        out.append(FixedPoint(0.0, chi0, 0.0, chi0 < 1, _depth_scale(chi0)))
    if out and not out[0].stable:                    # q = 0 repels: an attracting q* may lie below q_lo
        t_min = math.log(1e-300)
        if g(t_min) * vals[0] < 0:
            ts, vals = np.concatenate([[t_min], ts]), [g(t_min), *vals]
    for t0, t1, v0, v1 in zip(ts[:-1], ts[1:], vals[:-1], vals[1:]):
        if v0 == 0:
            root = t0
        elif v0 * v1 < 0:
            root = brentq(g, t0, t1, xtol=1e-14, rtol=1e-13)
        else:
            continue
        q_star = math.exp(root)
        if chi_q is None:
            slope, err = _slope(lambda q: qmap(sw2, sb2, q), q_star, 1e-3 * q_star)
        else:
            slope, err = chi_q(sw2, sb2, q_star), 0.0
        out.append(FixedPoint(q_star, slope, err, abs(slope) < 1, _depth_scale(slope)))
    return out


def correlation_fixed_points(activation, sw2: float, sb2: float, q_star: float, grid: int = 401) -> list[FixedPoint]:
    """All fixed points c* in [−1, 1] of the correlation map at the length fixed point ``q_star`` (c* = 1 last)."""
    act = get_activation(activation)
    sw2, sb2 = _check(sw2, sb2)
    maps = _maps(act)
    cmap = lambda c: maps["c"](sw2, sb2, q_star, c)                    # noqa: E731
    g = lambda c: cmap(c) - c                                          # noqa: E731
    cs = np.linspace(-1.0, 1.0 - 1e-3, grid)
    vals = [g(c) for c in cs]
    out = []
    for c0, c1, v0, v1 in zip(cs[:-1], cs[1:], vals[:-1], vals[1:]):
        if v0 == 0 or v0 * v1 < 0:
            c_star = c0 if v0 == 0 else brentq(g, c0, c1, xtol=1e-15, rtol=1e-14)
            chi = maps["chi_c"](sw2, q_star, c_star)
            out.append(FixedPoint(c_star, chi, 0.0, abs(chi) < 1, _depth_scale(chi)))
    chi1 = maps["chi_1"](sw2, q_star)
    out.append(FixedPoint(1.0, chi1, 0.0, chi1 < 1, _depth_scale(chi1)))
    return out


def _attracting(act, sw2, sb2):
    """The attracting length fixed point (the largest, if several) and χ₁ there."""
    q_lo, q_hi, grid = search_window(sw2, sb2)
    stable = [p for p in length_fixed_points(act, sw2, sb2, q_lo, q_hi, grid) if p.stable]
    if not stable:
        raise ValueError(f"{act.describe()} at sw2={sw2:g}, sb2={sb2:g}: no attracting length fixed point q* in "
                         f"[{q_lo:g}, {q_hi:g}] (q grows or shrinks without bound), so the phase is not defined")
    qp = stable[-1]
    return qp, _maps(act)["chi_1"](sw2, qp.value if qp.value > 0 else 1e-200)


def phase_point(activation, sw2: float, sb2: float) -> PhasePoint:
    """The attracting fixed point of deep ``dense(activation, sw2, sb2)`` networks and its phase.

    Raises ValueError when no q* attracts in [1e-8, max(1e8, 10 (σ_w² + σ_b²))] (q grows without bound, e.g. relu
    with σ_w² > 2)."""
    act = get_activation(activation)
    sw2, sb2 = _check(sw2, sb2)
    qp, chi1 = _attracting(act, sw2, sb2)
    q_eval = qp.value if qp.value > 0 else 1e-200
    phase = "critical" if abs(chi1 - 1) < CRITICAL_TOL else "ordered" if chi1 < 1 else "chaotic"
    if qp.value == 0:              # q → 0: the network becomes linear and every c is a fixed point
        c_star, chi_c = math.nan, chi1
    else:
        cps = [p for p in correlation_fixed_points(act, sw2, sb2, q_eval) if p.stable]
        cp: Optional[FixedPoint] = cps[0] if cps else None
        c_star, chi_c = (cp.value, cp.slope) if cp else (math.nan, math.nan)
    return PhasePoint(act.describe(), sw2, sb2, qp.value, c_star, chi1, chi_c, qp.depth_scale,
                      _depth_scale(chi_c), phase)


def critical_sw2(activation, sb2: float, lo: float = 0.05, hi: float = 20.0) -> float:
    """σ_w² with χ₁(q*) = 1 at bias variance ``sb2`` (the critical line of Poole et al. 2016), by Brent's method
    on [lo, hi]; ValueError when χ₁ − 1 does not change sign there. At σ_b² = 0 with φ(0) = 0 the line ends where
    q* = 0 stops attracting, σ_w² = 1/E[φ'²] at q → 0 (1/φ'(0)², as ``phase_diagram.critical_line`` gives):
    returned exactly, where Brent's method on the steep approach to q* = 0 was 2e-8 off (tanh)."""
    act = get_activation(activation)
    _check(lo, sb2)
    if sb2 == 0 and act.phi.subs(S.x, 0) == 0:
        end = 1 / _maps(act)["chi_1"](1.0, 1e-200)
        if lo <= end <= hi:
            return float(end)
    f = lambda w: _attracting(act, *_check(w, sb2))[1] - 1             # noqa: E731
    f_lo, f_hi = f(lo), f(hi)
    if f_lo * f_hi > 0:
        raise ValueError(f"{act.describe()} at sb2={sb2:g}: chi_1 - 1 does not change sign for sw2 in [{lo}, {hi}]")
    return brentq(f, lo, hi, xtol=1e-14, rtol=1e-13)
