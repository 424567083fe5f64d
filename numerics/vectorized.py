"""Gaussian expectations over arrays: :func:`expect` broadcasts its arguments and returns an array, with an error
estimate per entry on request; ``precision=`` evaluates the same quantities in mpmath as reference values.

The route per expectation, fastest first, each certified before it is used:

- a closed form of theory's, lambdified once and evaluated on the whole array; the cancellation in its sums
  bounds its rounding (as in :func:`~sigprop.numerics.expectation`), and entries where that bound exceeds 1e-13
  are re-evaluated in mpmath with the digits the cancellation needs;
- 1-D kinds: the kink-aware composite Gauss–Legendre rule of :func:`~sigprop.numerics.quadrature.expect1`,
  vectorized over the variances (:func:`~sigprop.numerics.quadrature.expect1_array`);
- 2-D kinds (kernel, dkernel, ddkernel): Hermite (Mehler) series (:mod:`sigprop.numerics.hermite`) with
  Parseval's truncation bound, at the smallest of a few truncations whose bound meets ``rtol``;
- entries no fast rule certifies (a kinked φ, whose Hermite series converges slowly; a very steep φ(√q z);
  degenerate covariances) fall back to the scalar kink-aware quadrature, one entry at a time.

``rtol`` is relative to the integrand's scale: |E[f]| for 1-D kinds, √(E[f(u)²] E[f(v)²]) for kernels (their
Cauchy–Schwarz bound), so a kernel that vanishes (k = 0 for odd φ) is still held to a meaningful standard.

Example
-------
>>> import numpy as np
>>> from sigprop.numerics.vectorized import expect
>>> np.round(expect("tanh", "kernel", 1.0, 1.0, np.array([0.0, 0.5, 1.0])), 12).tolist()
[0.0, 0.186324413203, 0.394294490398]
>>> expect("relu", "square", np.array([[1.0, 2.0]])).tolist()
[[0.5, 1.0]]
>>> float(expect("tanh", "square", 1.0, precision=30))
0.39429449039784...
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from functools import lru_cache

import numpy as np

from ..theory import get_activation
from ..theory.expectations import ARITY
from . import hermite
from .expectations import (_EPS, activation_functions, check_call, closed_form_function, condition,
                           densities, expectation, second_derivative_functions)
from .quadrature import expect1_array

#: default accuracy, relative to the integrand's scale
RTOL = 1e-10


def expect(activation, kind: str, *args, error: bool = False, rtol: float = RTOL, precision: int | None = None):
    """E of one kind (``sigprop.theory.expectations.KINDS``) of ``activation`` at every entry of the broadcast
    arguments (q) or (q₁, q₂, k); an array of their broadcast shape (and the error estimates, if ``error``).

    ``precision``: digits of an mpmath evaluation instead (closed forms exactly, others by Gauss–Legendre
    quadrature); slow, for reference values."""
    act = get_activation(activation)
    check_call(kind, args)
    if isinstance(rtol, bool) or not isinstance(rtol, (int, float)) or not 0 < rtol < 1:
        raise ValueError(f"rtol={rtol!r} is not allowed: give a number in (0, 1)")
    arrays = _checked(kind, args)
    shape = arrays[0].shape
    flat = [a.ravel() for a in arrays]
    if precision is not None:
        if isinstance(precision, bool) or not isinstance(precision, int) or not 15 <= precision <= 300:
            raise ValueError(f"precision={precision!r} is not allowed: give a whole number of digits in [15, 300]")
        from .reference import reference_expectation
        value = np.array([reference_expectation(act, kind, *(float(a[i]) for a in flat), digits=precision)
                          for i in range(flat[0].size)])
        err = np.abs(value) * _EPS
    elif closed_form_function(act, kind) is not None:
        value, err = _closed(act, kind, flat)
    elif ARITY[kind] == 1:
        value, err = _one_d(act, kind, flat[0], error)
    else:
        value, err = _kernel(act, kind, *flat, rtol)
    value, err = value.reshape(shape), err.reshape(shape)
    return (value, err) if error else value


def _checked(kind, args) -> list:
    names = ("q",) if ARITY[kind] == 1 else ("q1", "q2", "k")
    try:
        arrays = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in args))
    except ValueError as e:
        raise ValueError(f"the arguments ({', '.join(names)}) do not broadcast together: {e}") from None
    if arrays[0].size == 0:
        raise ValueError(f"the arguments ({', '.join(names)}) are empty: give at least one point")
    for name, a in zip(names, arrays):
        bad = ~np.isfinite(a) if name == "k" else ~np.isfinite(a) | (a < 0)
        if bad.any():
            raise ValueError(f"{name}={float(a[bad].ravel()[0])!r} is not allowed: it must be finite"
                             + ("" if name == "k" else " and >= 0"))
    if len(arrays) == 3:
        q1, q2, k = arrays
        bad = k * k > q1 * q2 * (1 + 2e-9)
        if bad.any():
            i = np.flatnonzero(bad.ravel())[0]
            raise ValueError(f"k={float(k.ravel()[i])!r} is not allowed: |k| must be <= sqrt(q1*q2) = "
                             f"{float(np.sqrt(q1.ravel()[i] * q2.ravel()[i]))!r}")
    return [np.array(a) for a in arrays]


def _scalar(act, kind, flat, where, value, err):
    """The scalar route (``expectation``) at the entries ``where``, written into ``value``/``err``."""
    for i in np.flatnonzero(where):
        value[i], err[i] = expectation(act, kind, *(float(a[i]) for a in flat), error=True)


def _closed(act, kind, flat):
    closed = closed_form_function(act, kind)
    with np.errstate(all="ignore"):
        value = np.array(np.broadcast_to(closed(*flat), flat[0].shape), dtype=float)
        cond = condition(act, kind, flat)
        rounding = 4 * _EPS * (1 + cond)
        err = rounding * np.abs(value)
    _scalar(act, kind, flat, ~np.isfinite(value) | ~(rounding <= 1e-13), value, err)
    return value, err


def integrands(phi, dphi, s=None) -> dict:
    """The 1-D integrand of each expectation kind, from vectorized φ, φ' and the almost-everywhere φ'' (s; None
    where φ jumps): E[kind] = E[integrand(u)], plus φ''s Dirac deltas for ``curvature``; ``ddsquare`` is s²."""
    out = {"mean": phi, "square": lambda u: phi(u) ** 2, "dsquare": lambda u: dphi(u) ** 2,
           "xmean": lambda u: u * phi(u), "dquartic": lambda u: dphi(u) ** 4}
    if s is not None:
        out["curvature"] = lambda u: phi(u) * s(u)
        out["ddsquare"] = lambda u: s(u) ** 2
    return out


@lru_cache(maxsize=None)
def _integrands(act):
    """:func:`integrands` of an activation, with φ''s Dirac deltas as (point, jump) pairs under ``jumps``."""
    phi, dphi = activation_functions(act)
    try:
        s, jumps = second_derivative_functions(act)
    except ValueError:               # φ jumps: no φ''; theory's error is raised by the scalar route
        return integrands(phi, dphi)
    return {**integrands(phi, dphi, s), "jumps": jumps}


class _Memo:
    """The last few results per key (activation, kind, the argument's bytes): solvers call the maps again and again
    at the same variances (q*), with only the correlation changing. Safe in threads (kernels over a data set run
    tiles in threads): the lookup and the eviction hold a lock, the computation does not."""

    def __init__(self, size: int = 8):
        self.size, self.items, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key, make):
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        value = make()
        with self.lock:
            self.items[key] = value
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return value


class _Entries:
    """Results per entry value, for arrays that change in only some entries from call to call (a grid of
    configurations of which most sit at their fixed point): ``lookup`` returns the cached rows of the keys it
    knows (None for the others); ``store`` adds rows, starting afresh beyond ``size`` entries."""

    def __init__(self, size: int = 100_000):
        self.size, self.items = size, {}

    def lookup(self, keys: np.ndarray):
        get = self.items.get
        rows = [get(k) for k in keys.tolist()]
        return np.fromiter((r is not None for r in rows), dtype=bool, count=len(rows)), rows

    def store(self, keys: np.ndarray, rows) -> None:
        if len(self.items) + keys.size > self.size:
            self.items.clear()
        self.items.update(zip(keys.tolist(), rows))


_ONE_D, _SERIES_STATE = _Memo(), _Memo()
_ENTRIES: dict = {}


def clear_caches() -> None:
    """Forget every cached result (for timing a cold start)."""
    _ONE_D.items.clear()
    _SERIES_STATE.items.clear()
    _ENTRIES.clear()


def _entries(*key) -> _Entries:
    entries = _ENTRIES.get(key)
    return entries if entries is not None else _ENTRIES.setdefault(key, _Entries())


def _one_d(act, kind, q, error):
    value, err = _ONE_D.get((act, kind, error, q.tobytes()), lambda: _one_d_by_entry(act, kind, q, error))
    return value.copy(), err.copy()


def _one_d_by_entry(act, kind, q, error):
    """:func:`_one_d_uncached` for the distinct variances not seen before (per-entry cache)."""
    qs, inv = np.unique(q, return_inverse=True)
    cache = _entries("1d", act, kind, error)
    known, rows = cache.lookup(qs)
    value, err = np.empty(qs.size), np.empty(qs.size)
    if known.any():
        value[known], err[known] = np.array([rows[i] for i in np.flatnonzero(known)]).T
    if not known.all():
        new = ~known
        value[new], err[new] = _one_d_uncached(act, kind, qs[new], error)
        cache.store(qs[new], zip(value[new].tolist(), err[new].tolist()))
    return value[inv], err[inv]


def _one_d_uncached(act, kind, q, error):
    value, err = np.empty(q.size), np.zeros(q.size)
    fns = _integrands(act)
    positive = q > 0
    if kind not in fns or not positive.any():
        _scalar(act, kind, [q], np.ones(q.size, bool), value, err)
        return value, err
    kinks = tuple(float(p) for p in act.kinks)
    if error:
        value[positive], err[positive] = expect1_array(fns[kind], q[positive], error=True, kinks=kinks)
    else:
        value[positive] = expect1_array(fns[kind], q[positive], kinks=kinks)
    if kind == "curvature":
        normal_pdf = densities()[0]
        for t, j in fns["jumps"]:
            value[positive] += j * float(np.ravel(fns["mean"](np.full(1, t)))[0]) * normal_pdf(t, q[positive])
    _scalar(act, kind, [q], ~positive, value, err)
    return value, err


#: per 2-D kind, the function whose Hermite coefficients give it (φ, φ', φ''), and the 1-D kind of its square
_SERIES = {"kernel": ("phi", "square"), "dkernel": ("dphi", "dsquare"), "ddkernel": ("ddphi", "ddsquare")}


def _series_function(act, kind):
    fns = _integrands(act)
    if kind == "kernel":
        return activation_functions(act)[0]
    if kind == "dkernel":
        return activation_functions(act)[1]
    if "jumps" in fns and not fns["jumps"]:
        return second_derivative_functions(act)[0]
    return None                  # φ'' has Dirac deltas: no Hermite series in L²


def _squares(act, kind, q):
    """E[f(√q z)²] of the series' function f, by an independent rule (closed form or the 1-D panel rule)."""
    square = _SERIES[kind][1]
    if square == "ddsquare":
        kinks = tuple(float(p) for p in act.kinks)
        return expect1_array(_integrands(act)["ddsquare"], q, kinks=kinks)
    return expect(act, square, q)


def _kernel(act, kind, q1, q2, k, rtol):
    n = q1.size
    value, err, handled = np.empty(n), np.zeros(n), np.zeros(n, bool)
    diagonal = (q1 == q2) & (q2 == k) & (q1 > 0)
    if diagonal.any() and kind != "ddkernel":
        value[diagonal], err[diagonal] = expect(act, _SERIES[kind][1], q1[diagonal], error=True)
        handled |= diagonal
    f = _series_function(act, kind)
    idx = np.flatnonzero((q1 > 0) & (q2 > 0) & ~handled) if f is not None else np.zeros(0, int)
    if idx.size:
        pairs = _SERIES_STATE.get((act, kind, rtol, q1[idx].tobytes(), q2[idx].tobytes()),
                                  lambda: _SeriesPairs(act, kind, f, q1[idx], q2[idx], rtol))
        rho = np.clip(k[idx] / np.sqrt(q1[idx] * q2[idx]), -1.0, 1.0)
        for pos, coef, tail_bound, nodes_error in pairs.groups:
            r = rho[pos]
            value[idx[pos]] = hermite.power_series(coef, r)
            err[idx[pos]] = np.abs(r) ** coef.shape[0] * tail_bound + nodes_error
            handled[idx[pos]] = True
        rest = np.flatnonzero(~handled[idx])
        if rest.size:               # steep or kinked f: coefficients by panels, truncation certified at this ρ
            at = idx[rest]
            ok, value[at], err[at] = _panel_series(act, kind, f, q1[at], q2[at], rho[rest], rtol)
            handled[at] = ok
    rest = ~handled
    _scalar(act, kind, [q1, q2, k], rest, value, err)
    if rest.any() and (kind != "ddkernel" or "ddsquare" in _integrands(act)):
        # the scalar rules' estimate (two rules compared) misses the rounding of their geometry: near c = −1 the
        # polar rule's angles carry one ulp of π against a wedge of width √(1 − c²)
        scale = np.sqrt(_squares(act, kind, q1[rest]) * _squares(act, kind, q2[rest]))
        err[rest] += 64 * np.finfo(float).eps * scale
    return value, err


#: truncations of the panel route of the Mehler series (each entry starts at the first that |ρ|^(N+1) ≤ rtol/2
#: allows whatever the tail, and moves on while its bound fails)
PANEL_TERMS = (16, 64, 400)


def _panel_series(act, kind, f, q1, q2, rho, rtol):
    """The Mehler series with coefficients by :func:`hermite.panel_coefficients`, each entry at the smallest of
    :data:`PANEL_TERMS` whose bound at its own ρ — |ρ|^(N+1) √(T(q₁) T(q₂)) plus the panel rule's E[f²] mismatch
    with the independent one — meets ``rtol``. Returns (certified, value, error estimate) per entry."""
    qs, inv = np.unique(np.concatenate([q1, q2]), return_inverse=True)
    i1, i2 = inv[:q1.size], inv[q1.size:]
    squares = _squares(act, kind, qs)
    scale = np.sqrt(squares[i1] * squares[i2])
    kinks = tuple(float(p) for p in act.kinks)
    value, err, ok = np.zeros(q1.size), np.zeros(q1.size), np.zeros(q1.size, bool)
    # T ≤ E[f²], so |ρ|^(N+1) ≤ rtol/2 certifies the truncation a priori: start each entry there
    with np.errstate(divide="ignore"):
        start = np.ceil(np.log(rtol / 2) / np.log(np.abs(rho))) - 1
    start = np.where(np.abs(rho) > 0, start, 0)
    pending = np.arange(q1.size)
    for level, terms in enumerate(PANEL_TERMS):
        last = level == len(PANEL_TERMS) - 1
        todo = pending[(start[pending] <= terms) | last]
        if not todo.size:
            continue
        need = np.unique(np.concatenate([i1[todo], i2[todo]]))
        a, tail, mismatch = np.zeros((qs.size, terms + 1)), np.zeros(qs.size), np.zeros(qs.size)
        a[need], own = hermite.panel_coefficients(f, qs[need], terms, kinks)
        tail[need] = hermite.tails(a[need], squares[need])
        mismatch[need] = np.abs(own - squares[need]) / np.maximum(squares[need], np.finfo(float).tiny)
        r = rho[todo]
        bound = (np.abs(r) ** (terms + 1) * np.sqrt(tail[i1[todo]] * tail[i2[todo]])
                 + (mismatch[i1[todo]] + mismatch[i2[todo]] + 32 * np.finfo(float).eps) * scale[todo])
        good = bound <= rtol * scale[todo]
        sel = todo[good]
        if sel.size:
            coef = np.ascontiguousarray((a[i1[sel]] * a[i2[sel]]).T)
            value[sel], err[sel], ok[sel] = hermite.power_series(coef, r[good]), bound[good], True
        pending = np.setdiff1d(pending, sel)
        if not pending.size:
            break
    return ok, value, err


def _rows(act, kind, f, qs, squares, terms, nodes):
    """Per distinct variance: its Hermite coefficients at one level, Parseval's tail and the nodes' relative
    mismatch (their own E[f²] against the independent ``squares``); cached per entry."""
    cache = _entries("hermite", act, kind, terms, nodes)
    known, rows = cache.lookup(qs)
    a, extra = np.empty((qs.size, terms + 1)), np.empty((qs.size, 2))     # extra: tail, mismatch
    old = np.flatnonzero(known)
    if old.size:
        a[old] = np.stack([rows[i][0] for i in old])
        extra[old] = np.array([rows[i][1] for i in old])
    new = np.flatnonzero(~known)
    if new.size:
        a[new] = hermite.coefficients(f, qs[new], terms, nodes)
        extra[new, 0] = hermite.tails(a[new], squares[new])
        extra[new, 1] = (np.abs(hermite.gauss_hermite_square(f, qs[new], nodes) - squares[new])
                         / np.maximum(squares[new], np.finfo(float).tiny))
        cache.store(qs[new], zip(list(a[new]), list(extra[new])))
    return a, extra[:, 0], extra[:, 1]


class _SeriesPairs:
    """The Mehler series of f for fixed pairs of variances (q₁, q₂), the correlation left free: for each pair, the
    products a_n(q₁) a_n(q₂) at the smallest truncation of ``hermite.LEVELS`` whose bound — Parseval's tail
    √(T(q₁) T(q₂)) (times |ρ|^(N+1) when evaluated) plus the nodes' quadrature mismatch — meets ``rtol`` at any
    |ρ| ≤ 1. Solvers evaluate the map at the same variances for many correlations; each call is then a
    polynomial. Pairs no level certifies are left to the scalar rule."""

    def __init__(self, act, kind, f, q1, q2, rtol):
        qs, inv = np.unique(np.concatenate([q1, q2]), return_inverse=True)
        i1, i2 = inv[:q1.size], inv[q1.size:]
        squares = _squares(act, kind, qs)
        scale = np.sqrt(squares[i1] * squares[i2])
        self.groups, todo = [], np.arange(q1.size)
        for terms, nodes in hermite.LEVELS:
            # a level whose nodes lie too far apart to resolve f(√q z) near 0 (width min(1, 1/√q)) is not tried
            reach = hermite.reach(nodes)
            todo = todo[(q1[todo] <= reach) & (q2[todo] <= reach)]
            if not todo.size:
                break
            need = np.unique(np.concatenate([i1[todo], i2[todo]]))
            a, tail, mismatch = np.zeros((qs.size, terms + 1)), np.zeros(qs.size), np.zeros(qs.size)
            a[need], tail[need], mismatch[need] = _rows(act, kind, f, qs[need], squares[need], terms, nodes)
            tail_bound = np.sqrt(tail[i1[todo]] * tail[i2[todo]])
            # and the rounding of the coefficients' sums and of the series (not damped by |ρ|^(N+1))
            nodes_error = (mismatch[i1[todo]] + mismatch[i2[todo]] + 32 * np.finfo(float).eps) * scale[todo]
            ok = tail_bound + nodes_error <= rtol * scale[todo]
            good = todo[ok]
            if good.size:
                coef = np.ascontiguousarray((a[i1[good]] * a[i2[good]]).T)
                self.groups.append((good, coef, tail_bound[ok], nodes_error[ok]))
            todo = todo[~ok]
            if not todo.size:
                break
