"""Solving for DKS and TAT activation transforms φ̂(x) = a φ(b x + c) + d (Martens et al. 2021; Zhang et al. 2022).

The conditions are theory's local maps (:mod:`sigprop.theory.transforms`) of the transformed activation. Where
theory writes them in closed form in (a, b, c, d) — every piecewise-polynomial φ (ReLU, leaky ReLU, hard tanh),
and any φ with closed-form expectations at c = 0 — they are lambdified once and solved to float64 precision;
otherwise each trial (a, b, c, d) instantiates φ̂ and its expectations are integrated by the kink-aware
quadrature (1e-12 or better). Either way the solution's maps are then re-evaluated on the numeric φ̂ and
returned, with the largest residual.

- :func:`dks`: Q(1) = 1, Q'(1) = 1, C(0) = 0, C'(1) = ζ^(1/L) (the network's C-map slope ζ for a chain of L
  nonlinear layers). For positively homogeneous φ (ReLU), b scales out: c = ±1 is fixed (+1 where that reaches
  ζ^(1/L), −1 beyond) and Q'(1) dropped, as in DKS.
- :func:`tat`: for a leaky ReLU (``activation="leaky_relu"``), the negative slope s ∈ [0, 1) whose L-fold
  local C map takes c = 0 to η, and the output scale with Q(1) = 1; for smooth φ, Q(1) = Q'(1) = C'(1) = 1 and
  C''(1) = τ/L (the network's C''(1) is the sum over layers).

Example
-------
>>> from sigprop.numerics.transforms import dks, tat
>>> t = dks("tanh", zeta=1.5, depth=10)
>>> round(t.maps["C_slope"], 10) == round(1.5 ** 0.1, 10), t.residual < 1e-10
(True, True)
>>> round(tat("leaky_relu", eta=0.9, depth=100).params["negative_slope"], 5)
0.57044
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import sympy as sp
from scipy.optimize import brentq, root

from ..theory import FAMILIES, get_activation, laws
from ..theory import symbols as S
from ..theory.expectations import GaussianExpectation
from ..theory.piecewise import is_piecewise_polynomial
from ..theory.transforms import A, B, C, D, local_maps, transformed
from .compile import compile_expression
from .expectations import densities
from .quadrature import expect1
from .vectorized import integrands


#: starting points (a, b, c, d) of the root search, tried in turn until one converges with a, b > 0
STARTS = [(a, b, c, d) for b in (1.0, 0.5, 0.1) for c in (0.0, 0.5, -0.5, 1.0, -1.0)
          for d in (0.0, -0.5, 0.5, -1.0, 1.0) for a in (1.0, 2.0)]


@dataclass
class Transform:
    """A solved transform: ``activation`` is φ̂ (use it in any description, e.g. ``dense(activation)``),
    ``params`` its parameters, ``maps`` the local maps it achieves (numbers), ``targets`` what was asked and
    ``residual`` the largest |map − target|."""

    activation: object
    params: dict
    maps: dict
    targets: dict
    method: str
    residual: float = field(default=0.0)


def _numbers(act, names):
    """The local maps ``names`` of a numeric activation, evaluated (closed forms, or quadrature)."""
    maps = local_maps(act)
    return {n: float(compile_expression((), maps[n].rhs)()) for n in names}


def _parametric(act, free, kind):
    """E[kind] at q = 1 of an activation with symbolic parameters ``free``, as a function of their values: φ, φ'
    and φ'' lambdified once with the parameters as arguments, the kink-aware rule with the kinks and φ''s Dirac
    deltas placed where the values put them."""
    half = {sp.Heaviside: lambda a, *rest: sp.Heaviside(a, sp.S.Half)}

    def lam(e):
        return sp.lambdify((S.x, *free), e.replace(sp.Heaviside, half[sp.Heaviside]), modules=["scipy", np])
    phi, dphi = lam(act.phi), lam(act.dphi)
    s = lam(act.ddphi_smooth) if kind in ("curvature", "ddkernel") else None
    kinks = sp.lambdify(free, list(act.kinks))
    jumps = [(sp.lambdify(free, t), sp.lambdify(free, j)) for t, j in (act.dphi_jumps if s else ())]
    integrand = {"ddkernel": "ddsquare"}.get(kind, kind)          # ddkernel at (1, 1, 1): E[φ''²]
    normal_pdf = densities()[0]

    def value(*p):
        f = integrands(lambda u: phi(u, *p), lambda u: dphi(u, *p), s and (lambda u: s(u, *p)))[integrand]
        v = expect1(f, 1.0, kinks=[float(k) for k in kinks(*p)])
        for t, j in jumps:                      # curvature's deltas: J φ(t) N(t; 0, 1)
            v += float(j(*p)) * float(phi(np.full(1, float(t(*p))), *p)[0]) * float(normal_pdf(float(t(*p)), 1.0))
        return v
    return value


def _residuals(act, targets, fixed):
    """The residuals map − target as a function of the free parameters: lambdified closed forms where theory has
    them, else theory's expressions with each expectation bound to :func:`_parametric`."""
    free = [s for s in (A, B, C, D) if s.name not in fixed]
    # SymPy integrates a piecewise-polynomial φ's maps exactly (and fast); for the others its attempts on symbolic
    # parameters can take minutes, and quadrature does the job
    hat = transformed(act, **{k: fixed.get(k, sym) for k, sym in zip("abcd", (A, B, C, D))},
                      derive=is_piecewise_polynomial(act.phi))
    maps = local_maps(hat)
    exprs = [maps[n].rhs - t for n, t in targets.items()]
    bindings = {}

    def bind(node):
        if any(arg != 1 for arg in node.args):
            raise ValueError(f"the local maps are taken at q = 1, not at {node.args}")
        name = f"E_{node.kind}"
        if name not in bindings:
            bindings[name] = _parametric(hat, free, node.kind)
        return sp.Function(name)(*free)
    exprs = [e.replace(lambda n: isinstance(n, GaussianExpectation), bind) for e in exprs]
    fn = sp.lambdify(free, exprs, modules=[bindings, "scipy", np])
    return free, lambda p: [float(v) for v in fn(*p)]


def _solve(act, targets: dict, fixed: dict, starts):
    """(a, b, c, d) with the local maps of a φ(b x + c) + d equal to ``targets``; ``fixed`` parameters held."""
    free, residuals = _residuals(act, targets, fixed)

    def guarded(p):
        values = dict(zip((s.name for s in free), p))
        if values.get("a", 1.0) <= 0 or values.get("b", 1.0) <= 0:
            return [1e3] * len(targets)
        with np.errstate(all="ignore"):
            r = residuals(p)
        return r if all(np.isfinite(r)) else [1e3] * len(targets)
    for start in starts:
        sol = root(guarded, np.asarray(start, dtype=float), method="hybr", options={"xtol": 1e-14})
        values = dict(zip((s.name for s in free), map(float, sol.x)), **fixed)
        if sol.success and values["a"] > 0 and values["b"] > 0 and max(map(abs, guarded(sol.x))) < 1e-9:
            return values
    raise ValueError(f"no transform of {act.describe()} reaches {targets} from the starting points tried")


def _result(act, values, targets, method, extra=None):
    hat = transformed(act, **values, derive=is_piecewise_polynomial(act.phi))
    names = [n for n, f in local_maps(hat).items() if f is not None]
    maps = _numbers(hat, names)
    residual = max(abs(maps[n] - t) for n, t in targets.items())
    return Transform(hat, {**values, **(extra or {})}, maps, targets, method, residual)


def _check(name, value, low, high=math.inf, integer=False):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if integer:
        ok = ok and float(value).is_integer()
    if not ok or not low < value < high:
        kind = "a whole number" if integer else "a number"
        raise ValueError(f"{name}={value!r} is not allowed: give {kind} in ({low:g}, {high:g})")
    return value


def dks(activation, zeta: float = 1.5, depth: int = 1, q_slope: float = 1.0) -> Transform:
    """The DKS transform of ``activation`` for a chain of ``depth`` nonlinear layers whose C-map slope at 1 is
    ``zeta`` (> 1; DKS's default 1.5)."""
    act = get_activation(activation)
    _check("zeta", zeta, 1.0)
    _check("depth", depth, 0, integer=True)
    local = zeta ** (1.0 / depth)
    targets = {"Q": 1.0, "C0": 0.0, "C_slope": local}
    if act.degree == 1:                     # positively homogeneous: b scales out, Q'(1) is not free
        starts = list(dict.fromkeys((a, b, d) for a, b, _, d in STARTS))
        try:                                # c = +1 reaches slopes up to a maximum (ReLU: 1.46694…), c = −1 beyond
            values = _solve(act, targets, {"c": 1.0}, starts)
        except ValueError:
            values = _solve(act, targets, {"c": -1.0}, starts)
        return _result(act, values, targets, "DKS")
    targets["Q_slope"] = q_slope
    return _result(act, _solve(act, targets, {}, STARTS), targets, "DKS")


def tat(activation, eta: float | None = None, tau: float | None = None, depth: int = 1) -> Transform:
    """The TAT transform for a chain of ``depth`` nonlinear layers: a leaky ReLU's negative slope for the
    network's C(0) = ``eta`` (default 0.9), or a smooth φ's transform for the network's C''(1) = ``tau``
    (default 0.3)."""
    _check("depth", depth, 0, integer=True)
    if str(getattr(activation, "name", activation)) == "leaky_relu":
        eta = 0.9 if eta is None else _check("eta", eta, 0.0, 1.0)
        s_ = sp.Symbol("s", nonnegative=True)
        cmap = compile_expression((s_, S.c), laws.correlation_map(FAMILIES["leaky_relu"](a=s_), 1, 0, 1, S.c).rhs)

        def c_at_zero(slope):
            c = 0.0
            for _ in range(depth):
                c = cmap(slope, c)
            return c
        reach = c_at_zero(0.0)                # s = 0 (ReLU) gives the largest C(0), s → 1 (linear) gives 0
        if not eta < reach:
            raise ValueError(f"eta={eta!r} is not allowed: a chain of {depth} leaky ReLU layers reaches at most "
                             f"C(0) = {reach:.6g} (ReLU); give a smaller eta or a larger depth")
        slope = brentq(lambda s: c_at_zero(s) - eta, 0.0, 1.0 - 1e-15, xtol=1e-16, rtol=1e-15)
        base = FAMILIES["leaky_relu"](a=slope)
        scale = 1.0 / math.sqrt(float(compile_expression((), laws.length_map(base, 1, 0, 1).rhs)()))
        t = _result(base, {"a": scale, "b": 1.0, "c": 0.0, "d": 0.0}, {"Q": 1.0}, "TAT",
                    {"negative_slope": slope})
        t.targets["network C(0)"] = eta
        t.maps["network C(0)"] = c_at_zero(slope)
        return t
    act = get_activation(activation)
    tau = 0.3 if tau is None else _check("tau", tau, 0.0)
    if local_maps(act)["C_curv"] is None:
        raise ValueError(f"tat({act.describe()}): TAT's curvature condition needs a smooth activation (phi'' a "
                         "function); for a rectifier use leaky_relu with eta")
    targets = {"Q": 1.0, "Q_slope": 1.0, "C_slope": 1.0, "C_curv": tau / depth}
    return _result(act, _solve(act, targets, {}, STARTS), targets, "TAT")
