"""Phase diagrams: the attracting fixed points, slopes, depth scales and phase of deep ``dense(φ, σ_w², σ_b²)``
networks for whole arrays of (σ_w², σ_b²) at once, and the critical line.

The maps are theory's (:mod:`sigprop.theory.laws`: length map, χ_q, χ₁, correlation map, χ_c), compiled on
arrays (:func:`~sigprop.numerics.compile.compile_array_expression`) with their expectations bound to the
vectorized rules of :mod:`sigprop.numerics.vectorized`. The per-point :mod:`sigprop.numerics.phase` solves the
same equations one point at a time; this module is what makes a 200 × 200 diagram take seconds:

- q*: E[φ(u)²] does not depend on (σ_w², σ_b²), so it is evaluated once on a shared log grid of q (to bracket the
  largest stable crossing of q'/q − 1 for every point) and then on Chebyshev points of log q over the brackets'
  span; the interpolant of log E[φ²] (its coefficient tail is the error estimate, refined until it is below
  1e-13) replaces the expectation inside the compiled length map while each point's root is refined by
  bisection to the last bit. The residual of the exact map at the root is reported as ``q_residual``.
- χ₁, χ_q (hence ξ_q) at q*: the compiled laws, evaluated directly on the array of q*.
- c*: the compiled correlation map with its kernel bound to the Hermite series at q* (coefficients once per
  point, then a polynomial in c): a scan over c ∈ [−1, 1) brackets the first stable crossing, bisection refines
  it; χ_c and ξ_c follow from the compiled χ_c law.

Example
-------
>>> import numpy as np
>>> from sigprop.numerics.phase_diagram import phase_diagram
>>> d = phase_diagram("tanh", np.array([1.5, 2.5]), np.array([0.05, 0.1]))
>>> d["phase"].tolist(), np.round(d["c_star"], 6).tolist()
(['ordered', 'chaotic'], [1.0, 0.664361])
"""
from __future__ import annotations

import numpy as np
import sympy as sp
from numpy.polynomial import chebyshev as C

from ..theory import get_activation, laws
from ..theory import symbols as S
from ..theory.expectations import GaussianExpectation
from .compile import compile_array_expression
from .phase import search_window
from .phase import CRITICAL_TOL
from .vectorized import expect

#: the columns of a phase diagram, in the order the CSV writes them
COLUMNS = ("sw2", "sb2", "q_star", "q_residual", "chi_q", "xi_q", "chi_1", "c_star", "chi_c", "xi_c", "phase")
Q_LO, Q_HI, Q_GRID = 1e-8, 1e8, 161


#: accuracy asked of the kernels: a root c* moves by the map's error over 1 − χ_c, so they are held tighter than
#: the default
KERNEL_RTOL = 1e-13


def _vectorized(activation, kind):
    return lambda *a: expect(activation, kind, *a, rtol=KERNEL_RTOL)


class _Maps:
    """theory's laws for one activation, compiled on arrays; ``square`` may be rebound to an interpolant."""

    def __init__(self, act, square=None):
        sw2, sb2, q, c = S.sigma_w2, S.sigma_b2, S.q, S.c

        def bind(activation, kind):
            return square if (kind == "square" and square is not None) else _vectorized(activation, kind)
        self.length = compile_array_expression((sw2, sb2, q), laws.length_map(act, sw2, sb2, q).rhs, bind)
        self.chi_1 = compile_array_expression((sw2, q), laws.chi_1(act, sw2, q).rhs, bind)
        self.chi_q = compile_array_expression((sw2, sb2, q), laws.chi_q(act, sw2, sb2, q).rhs, bind)
        self.corr = compile_array_expression((sw2, sb2, q, c), laws.correlation_map(act, sw2, sb2, q, c).rhs, bind)
        self.chi_c = compile_array_expression((sw2, q, c), laws.chi_c(act, sw2, q, c).rhs, bind)


def _depth_scale(slope):
    a = np.abs(slope)
    with np.errstate(divide="ignore"):
        return np.where(a == 0, 0.0, np.where(a == 1, np.inf, 1 / np.abs(np.log(np.where(a > 0, a, 1.0)))))


def _check(name, v, positive):
    a = np.asarray(v, dtype=float)
    bad = ~np.isfinite(a) | ((a <= 0) if positive else (a < 0))
    if a.size == 0:
        raise ValueError(f"{name} is empty: give at least one value")
    if bad.any():
        raise ValueError(f"{name}={float(a[bad].ravel()[0])!r} is not allowed: give finite numbers "
                         f"{'> 0' if positive else '>= 0'}")
    return a


def _log_interpolant(fun, t_lo, t_hi, tol=1e-13, max_degree=1024):
    """A Chebyshev interpolant of log fun(e^t) on [t_lo, t_hi], degree doubled until its last coefficients fall
    below ``tol`` (the error estimate); None where fun is not positive or the degree would exceed the maximum."""
    degree = 32
    while degree <= max_degree:
        t = C.chebpts2(degree + 1) * (t_hi - t_lo) / 2 + (t_hi + t_lo) / 2
        values = fun(np.exp(t))
        if not np.all(values > 0):
            return None
        coef = C.chebfit((2 * t - t_hi - t_lo) / (t_hi - t_lo), np.log(values), degree)
        if np.max(np.abs(coef[-4:])) < tol:
            return lambda q: np.exp(C.chebval((2 * np.log(q) - t_hi - t_lo) / (t_hi - t_lo), coef))
        degree *= 2
    return None


def _bisect(g, lo, hi, iterations=64):
    """Vectorized bisection of g on [lo, hi] (g(lo) > 0 > g(hi) per entry, by construction of the brackets)."""
    for _ in range(iterations):
        mid = (lo + hi) / 2
        pos = g(mid) > 0
        lo, hi = np.where(pos, mid, lo), np.where(pos, hi, mid)
    return (lo + hi) / 2


def _square_kind(act):
    """The activation whose E[φ²] the compiled length map calls (theory's unevaluated expectation), or None
    where the map is a closed form."""
    for node in sp.preorder_traversal(laws.length_map(act).rhs):
        if isinstance(node, GaussianExpectation) and node.kind == "square":
            return node.activation
    return None


def _q_star(act, maps, sw2, sb2):
    """The attracting length fixed point of every (σ_w², σ_b²): the largest stable crossing, else 0 where q = 0
    is a stable fixed point, else nan (q grows or shrinks without bound in the search window)."""
    q_lo, q_hi, n_grid = search_window(sw2, sb2)
    t = np.linspace(np.log(q_lo), np.log(q_hi), n_grid)
    q = np.exp(t)
    with np.errstate(all="ignore"):
        g = maps.length(sw2[:, None], sb2[:, None], q[None, :]) / q[None, :] - 1
    down = (g[:, :-1] > 0) & (g[:, 1:] <= 0)
    has = down.any(axis=1)
    j = np.where(has, n_grid - 2 - np.argmax(down[:, ::-1], axis=1), 0)
    q_star = np.full(sw2.shape, np.nan)
    if not act.phi.subs(S.x, 0):                     # φ(0) = 0: q = 0 is fixed at σ_b² = 0, stable if g < 0 there
        q_star[~has & (sb2 == 0) & (g[:, 0] < 0)] = 0.0
    if has.any():
        lo, hi = t[j[has]], t[j[has] + 1]
        inner = maps
        source = _square_kind(act)
        if source is not None:
            interp = _log_interpolant(lambda v: expect(source, "square", v), lo.min(), hi.max())
            if interp is not None:
                inner = _Maps(act, square=interp)
        s_w, s_b = sw2[has], sb2[has]
        root = _bisect(lambda tt: inner.length(s_w, s_b, np.exp(tt)) * np.exp(-tt) - 1, lo, hi)
        q_star[has] = np.exp(root)
    return q_star


def phase_diagram(activation, sw2, sb2, c_grid: int = 64) -> dict:
    """Fixed points, slopes, depth scales and phase for every (σ_w², σ_b²) of the broadcast arrays ``sw2``,
    ``sb2``; a dict of arrays of their broadcast shape, keys :data:`COLUMNS` (``phase``: 'ordered', 'chaotic',
    'critical' (|χ₁ − 1| < 1e-9), or 'unbounded' where no q* attracts in [1e-8, max(1e8, 10 (σ_w² + σ_b²))],
    the largest over the grid)."""
    act = get_activation(activation)
    sw2, sb2 = np.broadcast_arrays(_check("sw2", sw2, True), _check("sb2", sb2, False))
    shape = sw2.shape
    sw2, sb2 = sw2.ravel().copy(), sb2.ravel().copy()
    maps = _Maps(act)
    q_star = _q_star(act, maps, sw2, sb2)
    ok = np.isfinite(q_star)
    pos = ok & (q_star > 0)
    out = {name: np.full(sw2.size, np.nan) for name in COLUMNS if name != "phase"}
    out["sw2"], out["sb2"], out["q_star"] = sw2, sb2, q_star
    if ok.any():
        q_ok = np.where(pos, q_star, 1e-200)[ok]           # χ₁ at q = 0 is its limit q → 0
        out["chi_1"][ok] = maps.chi_1(sw2[ok], q_ok)
        out["q_residual"][ok] = 0.0
        out["chi_q"][ok & ~pos] = out["chi_1"][ok & ~pos]  # at q* = 0 the length map's slope is χ₁
        out["chi_c"][ok & ~pos] = out["chi_1"][ok & ~pos]  # and every c is fixed: c* stays nan
    if pos.any():
        w, b, q = sw2[pos], sb2[pos], q_star[pos]
        out["q_residual"][pos] = np.abs(maps.length(w, b, q) - q)
        out["chi_q"][pos] = maps.chi_q(w, b, q)
        out["c_star"][pos], out["chi_c"][pos] = _c_star(maps, w, b, q, out["chi_1"][pos], c_grid)
    out["xi_q"][ok] = _depth_scale(out["chi_q"][ok])
    out["xi_c"][ok] = _depth_scale(out["chi_c"][ok])
    chi1 = out["chi_1"]
    phase = np.where(~ok, "unbounded", np.where(np.abs(chi1 - 1) < CRITICAL_TOL, "critical",
                                                 np.where(chi1 < 1, "ordered", "chaotic")))
    result = {k: v.reshape(shape) for k, v in out.items()}
    result["phase"] = phase.reshape(shape)
    return result


def _c_star(maps, sw2, sb2, q, chi1, c_grid):
    """The first stable fixed point c* < 1 of the correlation map (scan, then bisection), else c* = 1."""
    cs = np.concatenate([np.linspace(-1.0, 0.98, c_grid), 1 - np.logspace(-2, -8, 7)])
    g = np.stack([maps.corr(sw2, sb2, q, np.full(q.shape, c)) - c for c in cs], axis=1)
    down = (g[:, :-1] > 0) & (g[:, 1:] <= 0)
    has = down.any(axis=1)
    j = np.argmax(down, axis=1)
    c_star = np.ones(q.shape)
    if has.any():
        s_w, s_b, qq = sw2[has], sb2[has], q[has]
        c_star[has] = _bisect(lambda c: maps.corr(s_w, s_b, qq, c) - c, cs[j[has]], cs[j[has] + 1], 56)
    chi_c = np.where(has, maps.chi_c(sw2, q, np.where(has, c_star, 0.0)), chi1)
    stable = np.abs(chi_c) < 1
    c_star = np.where(has & ~stable, np.nan, c_star)
    return c_star, chi_c


def critical_line(activation, sb2) -> np.ndarray:
    """σ_w² on the critical line χ₁(q*) = 1 for every σ_b² of the array ``sb2`` (Poole et al. 2016).

    Parametrised by q* along the line: χ₁ is σ_w² times E[φ'(u)²], so σ_w²(q) = 1/χ₁(σ_w² = 1, q), and the length
    map is σ_b² plus the rest, so σ_b²(q) = q − q'(σ_w²(q), 0, q); the q with σ_b²(q) = target is bracketed on a log
    grid of q and refined by bisection; at σ_b² = 0 with φ(0) = 0 the line ends at q* → 0. nan where no q in
    [1e-8, 1e8] reaches the target."""
    act = get_activation(activation)
    target = _check("sb2", sb2, False)
    shape, target = target.shape, target.ravel()
    maps = _Maps(act)

    def sb2_of(q):
        w = 1 / maps.chi_1(np.ones_like(q), q)
        return q - maps.length(w, np.zeros_like(q), q)
    t = np.linspace(np.log(Q_LO), np.log(Q_HI), Q_GRID)
    grid = sb2_of(np.exp(t))
    zero_fixed = not act.phi.subs(S.x, 0)           # φ(0) = 0: q = 0 is a fixed point at σ_b² = 0
    out = np.full(target.size, np.nan)
    lo, hi, which = [], [], []
    for i, v in enumerate(target):                 # bracket each target on the grid ...
        d = grid - v
        cross = np.flatnonzero((d[:-1] <= 0) & (d[1:] > 0))
        if not cross.size and v == 0 and zero_fixed:
            out[i] = float(1 / maps.chi_1(np.ones(1), np.full(1, 1e-200))[0])     # the line's end, q* → 0
        elif cross.size:
            lo.append(t[cross[0]]), hi.append(t[cross[0] + 1]), which.append(i)
    if which:                                      # ... and refine them all at once
        v = target[which]
        root = _bisect(lambda tt: v - sb2_of(np.exp(tt)), np.array(lo), np.array(hi), 60)
        out[which] = 1 / maps.chi_1(np.ones_like(root), np.exp(root))
    return out.reshape(shape)
