"""Reference values of the Gaussian expectations in mpmath, at a chosen number of digits.

Closed forms are evaluated exactly at the requested precision; the others by mpmath's quadrature of
theory's own φ, φ' and φ'' (lambdified to mpmath), with breakpoints at 0 and at every kink, nested for the 2-D
kinds in the conditional form u = √q₁ z, v = a z + b w (a = k/√q₁, b = √((q₁q₂ − k²)/q₁)), the inner rule
breaking where v crosses a feature. φ'''s Dirac deltas (a jump J of φ' at t) enter as J times the density of
the pair at the kink, the conditional expectation of the other factor (Price's theorem for kinked φ,
docs/theory.md). The Gaussian weight is cut where it falls below the working precision; panels (Gauss–Legendre,
to the working precision) are three standard deviations wide and graded towards every feature. This path
shares no code with the fast rules: it is what the tests check them against.

Slow (tenths of a second to seconds per 2-D value): for tests, accuracy tables and spot checks.

Example
-------
>>> from sigprop.numerics.reference import reference_expectation
>>> round(reference_expectation("tanh", "dsquare", 1.0, digits=30), 15)
0.464402902448268
"""
from __future__ import annotations

from functools import lru_cache

import mpmath as mp
import sympy as sp

from ..theory import get_activation
from ..theory.gaussian import bivariate_normal_density, normal_density
from ..theory.symbols import x
from .expectations import _high_precision, check_call, closed_form_function


@lru_cache(maxsize=None)
def _functions(act):
    half = {sp.Heaviside: lambda a, *rest: sp.Heaviside(a, sp.S.Half)}
    phi = sp.lambdify(x, act.phi, "mpmath")
    dphi = sp.lambdify(x, act.dphi.replace(sp.Heaviside, half[sp.Heaviside]), "mpmath")
    try:
        s = sp.lambdify(x, act.ddphi_smooth.replace(sp.Heaviside, half[sp.Heaviside]), "mpmath")
        jumps = tuple((sp.nsimplify(t), j) for t, j in act.dphi_jumps)
    except ValueError:                 # φ jumps: no φ''
        s, jumps = None, None
    return phi, dphi, s, jumps


def _normal(t, q):
    return mp.mpf(sp.N(normal_density(sp.Float(str(t), mp.mp.dps + 5), sp.Float(str(q), mp.mp.dps + 5)),
                       mp.mp.dps + 5))


def _bivariate(t1, t2, q1, q2, k):
    args = [sp.Float(str(v), mp.mp.dps + 5) for v in (t1, t2, q1, q2, k)]
    return mp.mpf(sp.N(bivariate_normal_density(*args), mp.mp.dps + 5))


def _cuts(points, finest, lo, hi):
    """Panel edges over [lo, hi]: every 3 standard deviations, and at each feature point inside with edges graded
    geometrically towards it from width ``finest`` (the integrand's own scale there)."""
    edges = {mp.mpf(lo), mp.mpf(hi), *(mp.mpf(v) for v in range(int(mp.ceil(lo)), int(mp.floor(hi)) + 1, 3))}
    for p in points:
        width = mp.mpf(finest) / 4
        while width < 3:
            edges.update((p - width, p + width))
            width *= 2
        edges.add(p)
    return sorted(e for e in edges if lo <= e <= hi)


def _tail():
    """Standard deviations beyond which the normal density is below the working precision."""
    return mp.sqrt(2 * mp.log(10) * (mp.mp.dps + 3))


def _rule(f, points, finest):
    """∫ f(z) φ(z) dz over ±_tail(), Gauss–Legendre on panels graded towards the feature points (z-coordinates)."""
    t = _tail()
    return mp.quad(lambda z: f(z) * mp.exp(-z * z / 2), _cuts(points, finest, -t, t),
                   method="gauss-legendre") / mp.sqrt(2 * mp.pi)


def _one_d(f, q, points):
    """E[f(u)], u ~ N(0, q), with features (u-coordinates) at 0 and ``points`` on f's scale 1."""
    if q == 0:
        return f(mp.mpf(0))
    s = mp.sqrt(q)
    return _rule(lambda z: f(s * z), [mp.mpf(0), *(p / s for p in points)], min(1, 1 / s))


def _two_d(f, g, q1, q2, k, points):
    """E[f(u) g(v)] by the conditional decomposition, nested Gauss–Legendre: the inner rule in w graded where v
    crosses a feature (scale 1/b), the outer in z where u does (1/√q₁) and where the inner average turns
    (z = p/a, scale b/|a|)."""
    if q1 == 0 or q2 == 0:
        return (f(mp.mpf(0)) * _one_d(g, q2, points)) if q1 == 0 else (g(mp.mpf(0)) * _one_d(f, q1, points))
    s1 = mp.sqrt(q1)
    a, b = k / s1, mp.sqrt(max(q1 * q2 - k * k, 0) / q1)
    feats = [mp.mpf(0), *points]

    def inner(z):
        if b == 0:
            return g(a * z)
        return _rule(lambda w: g(a * z + b * w), [(p - a * z) / b for p in feats], min(1, 1 / b))

    outer = [p / s1 for p in feats] + ([p / a for p in feats] if a != 0 else [])
    finest = min(1, 1 / s1, b / abs(a)) if a != 0 else min(1, 1 / s1)
    return _rule(lambda z: f(s1 * z) * inner(z), outer, finest)


def _given(f, q1, q2, k, t, points):
    """E[f(v) | u = t]: v | u = t ~ N(k t/q₁, (q₁q₂ − k²)/q₁)."""
    mean, var = k * t / q1, max(q1 * q2 - k * k, 0) / q1
    return _one_d(lambda w: f(mean + w), var, [p - mean for p in points])


def reference_expectation(activation, kind: str, *args, digits: int = 30) -> float:
    """E of one kind at (q) or (q₁, q₂, k), computed in mpmath at ``digits`` digits, rounded to a float."""
    act = get_activation(activation)
    check_call(kind, args)
    if closed_form_function(act, kind) is not None:
        return _high_precision(act, kind, tuple(float(a) for a in args), digits)
    phi, dphi, s, jumps = _functions(act)
    if kind in ("curvature", "ddkernel") and s is None:
        act.ddphi                      # theory's UndefinedExpectation: φ jumps, φ'' is not a measure
    points = [mp.mpf(sp.N(p, 40)) for p in act.kinks]
    with mp.workdps(digits + 5):
        a = [mp.mpf(float(v)) for v in args]
        one = {"mean": phi, "square": lambda u: phi(u) ** 2, "dsquare": lambda u: dphi(u) ** 2,
               "xmean": lambda u: u * phi(u), "dquartic": lambda u: dphi(u) ** 4}
        if kind in one:
            value = _one_d(one[kind], a[0], points)
        elif kind == "curvature":
            value = _one_d(lambda u: phi(u) * s(u), a[0], points)
            value += sum(mp.mpf(sp.N(j, digits + 5)) * phi(mp.mpf(sp.N(t, digits + 5)))
                         * _normal(mp.mpf(sp.N(t, digits + 5)), a[0]) for t, j in jumps)
        elif kind in ("kernel", "dkernel"):
            f = phi if kind == "kernel" else dphi
            value = _two_d(f, f, *a, points)
        else:                         # ddkernel: smooth part, one delta and a smooth factor, two deltas
            q1, q2, k = a
            value = _two_d(s, s, q1, q2, k, points)
            for t, j in jumps:
                t_, j_ = mp.mpf(sp.N(t, digits + 5)), mp.mpf(sp.N(j, digits + 5))
                value += j_ * (_normal(t_, q1) * _given(s, q1, q2, k, t_, points)
                               + _normal(t_, q2) * _given(s, q2, q1, k, t_, points))
                for t2, j2 in jumps:
                    value += j_ * mp.mpf(sp.N(j2, digits + 5)) * _bivariate(t_, mp.mpf(sp.N(t2, digits + 5)),
                                                                           q1, q2, k)
        return float(value)
