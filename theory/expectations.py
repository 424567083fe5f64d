"""Gaussian expectations of an activation, symbolic.

Five expectations drive every mean-field map (THEORY.md §2-§3). With z ~ N(0, 1) and (u, v) ~ N(0, [[q₁, k], [k, q₂]]):

==========  ===========================  ==========================================
kind        expectation                  role
==========  ===========================  ==========================================
mean        E[φ(√q z)]                   first moment (cross terms of residual sums)
square      E[φ(√q z)²]                  length map
dsquare     E[φ'(√q z)²]                 gradient map, χ₁
kernel      E[φ(u) φ(v)]                 covariance map
dkernel     E[φ'(u) φ'(v)]               gradient covariance map, χ_c
==========  ===========================  ==========================================

Where no closed form exists (tanh), an expectation stays an unevaluated SymPy function, e.g.
``E[tanh(u)·tanh(v)](q_1, q_2, k)``, which prints, renders to LaTeX and differentiates in k by Price's
theorem (∂E[φ(u)φ(v)]/∂k = E[φ'(u)φ'(v)]); ``numerics`` evaluates it by quadrature of the same φ.
"""
from __future__ import annotations

from functools import lru_cache

import sympy as sp

from .symbols import x

KINDS = ("mean", "square", "dsquare", "kernel", "dkernel")
_ARITY = {"mean": 1, "square": 1, "dsquare": 1, "kernel": 3, "dkernel": 3}

_z, _w = sp.symbols("z w", real=True)
_density = sp.exp(-_z**2 / 2) / sp.sqrt(2 * sp.pi)


class GaussianExpectation(sp.Function):
    """Base class of the unevaluated expectations; subclasses are made by :func:`expectation`."""

    activation_name: str = ""
    kind: str = ""
    integrand_str: str = ""
    integrand_latex: str = ""

    def _sympystr(self, printer):
        args = ", ".join(printer.doprint(a) for a in self.args)
        law = f"u~N(0, {args})" if len(self.args) == 1 else f"(u,v)~N(0; {args})"
        return f"E[{self.integrand_str} | {law}]"

    def _latex(self, printer, exp=None):
        args = ",\\,".join(printer.doprint(a) for a in self.args)
        law = rf"u\sim\mathcal{{N}}(0,\,{args})" if len(self.args) == 1 else rf"(u,v)\sim\mathcal{{N}}(0;\,{args})"
        body = rf"\mathbb{{E}}_{{{law}}}\left[{self.integrand_latex}\right]"
        return rf"\left({body}\right)^{{{exp}}}" if exp else body

    def _pretty(self, printer):
        return printer._print(sp.Symbol(self._sympystr(printer)))

    def fdiff(self, argindex=1):
        # Price's theorem: d/dk E[φ(u)φ(v)] = E[φ'(u)φ'(v)].
        if self.kind == "kernel" and argindex == 3:
            return expectation(self.activation_name, "dkernel")(*self.args)
        return super().fdiff(argindex)   # other derivatives stay unevaluated


@lru_cache(maxsize=None)
def expectation(activation_name: str, kind: str) -> type[GaussianExpectation]:
    """The unevaluated expectation of one kind for one activation (a SymPy function class).

    Its class name, ``E_<activation>_<kind>``, is what ``numerics`` binds a quadrature routine to.
    """
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not an expectation kind; allowed: {', '.join(KINDS)}")
    f, d = activation_name, f"{activation_name}'"
    text = {"mean": f"{f}(u)", "square": f"{f}(u)²", "dsquare": f"{d}(u)²",
            "kernel": f"{f}(u)·{f}(v)", "dkernel": f"{d}(u)·{d}(v)"}[kind]
    tex_f = rf"\operatorname{{{activation_name}}}"
    tex_d = tex_f + "'"
    tex = {"mean": rf"{tex_f}(u)", "square": rf"{tex_f}(u)^2",
           "dsquare": rf"{tex_d}(u)^2", "kernel": rf"{tex_f}(u)\,{tex_f}(v)",
           "dkernel": rf"{tex_d}(u)\,{tex_d}(v)"}[kind]
    attrs = dict(activation_name=activation_name, kind=kind, integrand_str=text, integrand_latex=tex,
                 nargs=_ARITY[kind])
    return type(f"E_{activation_name}_{kind}", (GaussianExpectation,), attrs)


def is_piecewise_polynomial(expr: sp.Expr) -> bool:
    """True when ``expr`` (in x) is a polynomial on each piece, so SymPy integrates it exactly."""
    pw = sp.piecewise_fold(expr.rewrite(sp.Piecewise))
    pieces = pw.args if isinstance(pw, sp.Piecewise) else [(pw, True)]
    return all(sp.sympify(e).is_polynomial(x) for e, _ in pieces)


def integrate_1d(f: sp.Expr, q: sp.Expr) -> sp.Expr:
    """E[f(√q z)], z ~ N(0, 1), by SymPy integration (exact for piecewise-polynomial f)."""
    g = sp.piecewise_fold(f.subs(x, sp.sqrt(q) * _z).rewrite(sp.Piecewise))
    return sp.simplify(sp.integrate(g * _density, (_z, -sp.oo, sp.oo)))


def integrate_2d(f: sp.Expr, g: sp.Expr, q1: sp.Expr, q2: sp.Expr, k: sp.Expr) -> sp.Expr:
    """E[f(u) g(v)] for polynomial f, g by the conditional decomposition (THEORY.md §3).

    v = (k/q₁) u + √(q₂ − k²/q₁) w with w ⊥ u, so the bivariate integral is two 1-D integrals.
    """
    u = sp.sqrt(q1) * _z
    v = (k / q1) * u + sp.sqrt(q2 - k**2 / q1) * _w
    inner = sp.integrate(sp.expand(g.subs(x, v)) * _density.subs(_z, _w), (_w, -sp.oo, sp.oo))
    outer = sp.integrate(sp.expand(f.subs(x, u) * inner) * _density, (_z, -sp.oo, sp.oo))
    return sp.simplify(outer)
