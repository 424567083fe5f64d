"""An activation's φ as a user gives it: read (an expression or a string) and checked before anything is derived.

Example
-------
>>> from sigprop.theory.phi import read_phi
>>> read_phi("x*erf(x)", "xerf")
x*erf(x)
"""
from __future__ import annotations

import math
from tokenize import TokenError

import sympy as sp

from .symbols import x


def read_phi(phi, name: str, allowed=frozenset()) -> sp.Expr:
    """``phi`` (a SymPy expression or a string SymPy reads) as an expression in theory's x, checked: x its only free
    symbol besides ``allowed`` (a family's parameters), and real and finite on the real line (at :data:`PROBES`,
    where it has no other symbol). Raises ValueError naming the activation and what is wrong."""
    if isinstance(phi, str):
        try:
            phi = sp.parse_expr(phi, local_dict={"x": x})
        except (sp.SympifyError, SyntaxError, TypeError, TokenError) as exc:
            raise ValueError(f"phi={phi!r} is not allowed: SymPy cannot read it ({exc})") from None
    try:
        phi = sp.sympify(phi, strict=True)
    except (sp.SympifyError, TypeError):
        raise ValueError(f"phi={phi!r} is not allowed: give a SymPy expression in x") from None
    # a user's own Symbol('x') (without assumptions) is our x
    phi = phi.subs({s: x for s in phi.free_symbols if s.name == "x" and s != x})
    if x not in phi.free_symbols or phi.free_symbols - allowed - {x}:
        other = sorted(map(str, phi.free_symbols - allowed - {x})) or ["none: phi does not depend on x"]
        raise ValueError(f"phi={phi} for activation {name!r} is not allowed: it must be an expression in x alone "
                         f"(free symbols other than x: {', '.join(other)})")
    if phi.free_symbols == {x}:
        _check_real(phi, name)
    return phi


#: points where an activation is checked to be real and finite (its Gaussian expectations need it on all of ℝ)
PROBES = (-7.5, -1, 0, 1, 7.5)


def _check_real(phi, name):
    """Raise a ValueError where φ is not real and finite at one of :data:`PROBES` (log x, 1/x, I*x)."""
    for t in PROBES:
        try:
            value = complex(phi.subs(x, sp.Float(t)).evalf())
        except (TypeError, ValueError, ZeroDivisionError):
            value = complex("nan")
        if value.imag != 0 or not math.isfinite(value.real):
            raise ValueError(f"phi={phi} for activation {name!r} is not allowed: phi({t:g}) = "
                             f"{'not finite' if not math.isfinite(abs(value)) else value}; an activation must be "
                             "real and finite on the whole real line (its inputs are Gaussian)")
