"""φ'' of a continuous activation as a distribution: the almost-everywhere part plus Dirac deltas at the kinks.

Where φ' jumps by J = φ'(t⁺) − φ'(t⁻) at a kink t (relu: J = 1 at 0, hard tanh: +1 at −1 and −1 at 1),

    φ'' = s + Σ_t J_t δ(x − t),    s the almost-everywhere second derivative,

so a Gaussian expectation against φ'' is an integral of s plus the density at the kinks:
E[g(u) φ''(u)] = E[g(u) s(u)] + Σ_t J_t g(t) N(t; 0, q) for g continuous at t. With this φ'' the identities
d/dq E[φ(√q z)²] = E[φ'²] + E[φφ''] (Gaussian integration by parts, Stein 1981) and Price's theorem
∂/∂k E[φ'(u)φ'(v)] = E[φ''(u)φ''(v)] (Price 1958) hold for kinked φ too (relu: E[δ(u)δ(v)] = 1/(2π√(q₁q₂ − k²))).

A φ that jumps has a δ' in φ'' (which φ cannot be integrated against): the expectations with φ'' are undefined for
it and say so (:class:`~sigprop.theory.expectations.UndefinedExpectation`).

Example
-------
>>> import sympy as sp
>>> from sigprop.theory.symbols import x
>>> dphi = sp.Heaviside(1 - x) * sp.Heaviside(x + 1)          # hard tanh's φ'
>>> smooth_part(dphi), jumps(dphi, (-1, 1))
(0, ((-1, 1), (1, -1)))
"""
from __future__ import annotations

import sympy as sp

from .gaussian import bivariate_normal_density, normal_density
from .piecewise import piecewise_form
from .symbols import x

_EPS = sp.Float("1e-40", 60)


def smooth_part(dphi: sp.Expr) -> sp.Expr:
    """s, the almost-everywhere derivative of ``dphi`` (the Dirac deltas SymPy writes for its jumps dropped:
    :func:`jumps` gives them exactly)."""
    d = sp.diff(dphi, x)
    return d.replace(lambda e: isinstance(e, sp.DiracDelta), lambda e: sp.Integer(0))


def jumps(dphi: sp.Expr, points, free_symbols=()) -> tuple:
    """((t, J), …): the kinks t among ``points`` where ``dphi`` jumps, J = dphi(t⁺) − dphi(t⁻) exactly.

    Each side is read off the piece of ``dphi``'s piecewise form that holds just beside t (decided at 60 digits,
    symbolic parameters at a generic value), evaluated at t itself: the pieces are analytic, so that is the
    one-sided limit. A J that vanishes (softplus, softsign: φ' is continuous there) is left out.
    """
    generic = {s: sp.Rational(37, 100) + i for i, s in enumerate(sorted(free_symbols, key=str))}
    pw = piecewise_form(dphi)
    out = []
    for t in points:
        t = sp.sympify(t)
        right, left = _side(pw, t, 1, generic), _side(pw, t, -1, generic)
        jump = sp.simplify(right - left)
        if jump != 0 and abs(sp.N(jump.subs(generic), 30)) > 1e-25:
            out.append((t, jump))
    return tuple(out)


def _side(pw, t, sign, generic):
    if not isinstance(pw, sp.Piecewise):
        return pw.subs(x, t)
    at = sp.N(t.subs(generic), 60)
    # a kink computed from float parameters (−c/b) is itself rounded to ~15 digits: step past that rounding
    at += sign * (sp.Float("1e-12", 60) * (1 + abs(at)) if t.has(sp.Float) else _EPS)
    for expr, cond in pw.args:
        if sp.sympify(cond).subs(generic).subs(x, at) == sp.true:
            return sp.piecewise_fold(expr).subs(x, t)
    raise ValueError(f"no piece of {pw} holds beside x = {t}")


def curvature_deltas(phi: sp.Expr, dphi_jumps, q) -> sp.Expr:
    """Σ_t J_t φ(t) N(t; 0, q): the kinks' share of E[φ(u)φ''(u)]."""
    return sp.Add(*(jump * phi.subs(x, t) * normal_density(t, q) for t, jump in dphi_jumps))


def delta_pairs(dphi_jumps, q1, q2, k) -> sp.Expr:
    """Σ_{t,t'} J_t J_t' p(t, t'): E[φ''(u)φ''(v)] of a piecewise-linear φ (its φ'' is the deltas alone)."""
    return sp.Add(*(j1 * j2 * bivariate_normal_density(t1, t2, q1, q2, k)
                    for t1, j1 in dphi_jumps for t2, j2 in dphi_jumps))
