"""Gaussian expectations of an activation, symbolic.

Nine expectation kinds (docs/theory.md). With z ~ N(0, 1), u ~ N(0, q) and
(u, v) ~ N(0, [[q₁, k], [k, q₂]]):

==========  ===========================  ====================================================================
kind        expectation                  role
==========  ===========================  ====================================================================
mean        E[φ(√q z)]                   first moment (cross terms of residual sums)
square      E[φ(√q z)²]                  length map
dsquare     E[φ'(√q z)²]                 gradient map, χ₁
kernel      E[φ(u) φ(v)]                 covariance map
dkernel     E[φ'(u) φ'(v)]               gradient covariance map, χ_c
xmean       E[u φ(u)]                    cross moment ⟨x, φ(x)⟩ of a residual around φ
curvature   E[φ(u) φ''(u)]               slope of the length map: d/dq E[φ²] = E[φ'²] + E[φφ'']
dquartic    E[φ'(u)⁴]                    second moment of the Jacobian's singular value spectrum
ddkernel    E[φ''(u) φ''(v)]             curvature of the correlation map (Price: ∂E[φ'(u)φ'(v)]/∂k)
==========  ===========================  ====================================================================

The first five are the mean-field maps' expectations. φ' is the almost-everywhere derivative (what
backpropagation uses); φ'' in ``curvature`` and ``ddkernel`` is the distributional second derivative of a
continuous φ, a kink contributing a Dirac delta (:mod:`sigprop.theory.second_derivative`). For φ that jumps (step,
sign) those two raise :class:`UndefinedExpectation`.

Where no closed form exists (tanh), an expectation stays an unevaluated SymPy function, e.g.
``E[tanh(u)·tanh(v) | (u,v)~N(0; q_1, q_2, k)]``, which prints, renders to LaTeX and differentiates in k by
Price's theorem (∂E[φ(u)φ(v)]/∂k = E[φ'(u)φ'(v)] and ∂E[φ'(u)φ'(v)]/∂k = E[φ''(u)φ''(v)], Price 1958), and in q by
Gaussian integration by parts (d/dq E[φ(√q z)²] = E[φ'²] + E[φφ''] for continuous φ, Stein 1981). The
function carries the :class:`~sigprop.theory.activations.Activation` object itself, so ``numerics`` integrates
exactly that φ — registered or not.

Example
-------
>>> from sigprop.theory import tanh
>>> from sigprop.theory.symbols import q1, q2, k
>>> tanh.kernel(q1, q2, k).diff(k)
E[tanh'(u)·tanh'(v) | (u,v)~N(0; q_1, q_2, k)]
>>> tanh.kernel(q1, q2, k).diff(k, 2)
E[tanh''(u)·tanh''(v) | (u,v)~N(0; q_1, q_2, k)]
"""
from __future__ import annotations

import itertools
from functools import lru_cache

import sympy as sp
from sympy.simplify.fu import TR8

from .symbols import x

KINDS = ("mean", "square", "dsquare", "kernel", "dkernel", "xmean", "curvature", "dquartic", "ddkernel")
ARITY = {"mean": 1, "square": 1, "dsquare": 1, "kernel": 3, "dkernel": 3, "xmean": 1, "curvature": 1, "dquartic": 1,
         "ddkernel": 3}
#: kind -> the Activation method that gives it
METHOD = {"mean": "mean", "square": "second_moment", "dsquare": "dsecond_moment", "kernel": "kernel",
          "dkernel": "dkernel", "xmean": "xmean", "curvature": "curvature", "dquartic": "dquartic",
          "ddkernel": "ddkernel"}


class UndefinedExpectation(ValueError):
    """An expectation kind that has no value for this activation (φ'' of a φ that jumps); ``reason`` says why."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason

_z, _w = sp.symbols("z w", real=True)
_class_names: set = set()
_serial = itertools.count(2)


class GaussianExpectation(sp.Function):
    """Base class of the unevaluated expectations; subclasses are made by :func:`expectation`.

    ``activation`` is the Activation whose φ (or φ') is integrated, ``kind`` one of :data:`KINDS`.
    """

    activation = None
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
        # Price's theorem: d/dk E[φ(u)φ(v)] = E[φ'(u)φ'(v)], d/dk E[φ'(u)φ'(v)] = E[φ''(u)φ''(v)] (φ'' the
        # distributional derivative; the activation's own ddkernel, which raises where φ jumps)
        if self.kind == "kernel" and argindex == 3:
            return expectation(self.activation, "dkernel")(*self.args)
        if self.kind == "dkernel" and argindex == 3:
            return self.activation.ddkernel(*self.args)
        # Gaussian integration by parts (Stein 1981): d/dq E[φ(√q z)²] = E[φ'²] + E[φφ''], for continuous φ
        if self.kind == "square" and self.activation.is_continuous:
            q = self.args[0]
            return self.activation.dsecond_moment(q) + self.activation.curvature(q)
        return super().fdiff(argindex)   # other derivatives stay unevaluated


@lru_cache(maxsize=None)
def expectation(activation, kind: str) -> type[GaussianExpectation]:
    """The unevaluated expectation of one kind for one activation (a SymPy function class).

    Its class name, ``E_<activation>_<kind>`` (with a numeric suffix if another activation of the same name
    already took it), is how lambdified code refers to it; ``numerics`` binds it through ``.activation``.
    """
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not an expectation kind; allowed: {', '.join(KINDS)}")
    name = activation.name
    shown = activation.describe()           # a family member with its parameters: elu(a=0.5), not elu
    f, d, dd = shown, f"{shown}'", f"{shown}''"
    text = {"mean": f"{f}(u)", "square": f"{f}(u)²", "dsquare": f"{d}(u)²",
            "kernel": f"{f}(u)·{f}(v)", "dkernel": f"{d}(u)·{d}(v)", "xmean": f"u·{f}(u)",
            "curvature": f"{f}(u)·{dd}(u)", "dquartic": f"{d}(u)⁴", "ddkernel": f"{dd}(u)·{dd}(v)"}[kind]
    tex_f = rf"\operatorname{{{name}}}" + _tex_params(shown[len(name):])
    tex_d, tex_dd = tex_f + "'", tex_f + "''"
    tex = {"mean": rf"{tex_f}(u)", "square": rf"{tex_f}(u)^2",
           "dsquare": rf"{tex_d}(u)^2", "kernel": rf"{tex_f}(u)\,{tex_f}(v)",
           "dkernel": rf"{tex_d}(u)\,{tex_d}(v)", "xmean": rf"u\,{tex_f}(u)",
           "curvature": rf"{tex_f}(u)\,{tex_dd}(u)", "dquartic": rf"{tex_d}(u)^4",
           "ddkernel": rf"{tex_dd}(u)\,{tex_dd}(v)"}[kind]
    cls_name = f"E_{name}_{kind}"
    while cls_name in _class_names:
        cls_name = f"E_{name}{next(_serial)}_{kind}"
    _class_names.add(cls_name)
    attrs = dict(activation=activation, kind=kind, integrand_str=text, integrand_latex=tex, nargs=ARITY[kind])
    return type(cls_name, (GaussianExpectation,), attrs)


def _tex_params(text: str) -> str:
    """A family member's parameters, ``(a=0.5)``, as a LaTeX subscript (``_{a=0.5}``); '' for none."""
    return rf"_{{{text[1:-1]}}}" if text.startswith("(") else ""


def _density(z):
    return sp.exp(-z**2 / 2) / sp.sqrt(2 * sp.pi)


def integrate_1d(f: sp.Expr, q: sp.Expr) -> sp.Expr:
    """E[f(√q z)], z ~ N(0, 1), by SymPy integration (exact for piecewise-polynomial f)."""
    g = sp.piecewise_fold(f.subs(x, sp.sqrt(q) * _z).rewrite(sp.Piecewise))
    return sp.simplify(sp.integrate(g * _density(_z), (_z, -sp.oo, sp.oo)))


def integrate_2d(f: sp.Expr, g: sp.Expr, q1: sp.Expr, q2: sp.Expr, k: sp.Expr) -> sp.Expr:
    """E[f(u) g(v)] for polynomial f, g by the conditional decomposition (docs/theory.md).

    v = (k/q₁) u + √(q₂ − k²/q₁) w with w ⊥ u, so the bivariate integral is two 1-D integrals.
    """
    u = sp.sqrt(q1) * _z
    v = (k / q1) * u + sp.sqrt(q2 - k**2 / q1) * _w
    return sp.simplify(_normal_moments(f.subs(x, u) * _normal_moments(g.subs(x, v), _w), _z))


def _normal_moments(polynomial: sp.Expr, z: sp.Symbol) -> sp.Expr:
    """E over z ~ N(0, 1) of a polynomial in z: each z^p is its moment (p − 1)!! (0 for odd p), which SymPy's
    integrator reaches too, in minutes at degree 12."""
    poly = sp.Poly(sp.expand(polynomial), z)
    return sp.Add(*(c * sp.factorial2(p - 1) for (p,), c in poly.terms() if p % 2 == 0))


def gaussian_integrand(f: sp.Expr):
    """``f`` (in x) rewritten as a sum of terms that SymPy integrates against a Gaussian in closed form, or None.

    Each term must be a polynomial times e^(quadratic) times sines and cosines of linear arguments times at most
    one erf of a multiple of x (products and powers of sines and cosines are first turned into sums). Anything
    else (tanh, log, erf², erf(ax + b) with b ≠ 0, …) is left to quadrature: SymPy would try for minutes (erf of
    a shifted argument: over ten) and give up.
    """
    f = sp.expand(TR8(sp.expand(f)))
    for term in sp.Add.make_args(f):
        erfs = 0
        for factor in sp.Mul.make_args(term):
            if x not in factor.free_symbols:
                continue
            if isinstance(factor, sp.exp):
                if _degree(factor.args[0]) <= 2:
                    continue
                return None
            base, power = factor.as_base_exp()
            if not (power.is_Integer and power > 0):
                return None
            if base == x:
                continue
            if isinstance(base, (sp.sin, sp.cos)) and _degree(base.args[0]) <= 1:
                continue
            if isinstance(base, sp.erf) and power == 1 and _degree(base.args[0]) <= 1 and \
                    base.args[0].subs(x, 0) == 0:
                erfs += 1
                continue
            return None
        if erfs > 1:
            return None
    return f


def _degree(arg) -> float:
    return sp.degree(arg, x) if arg.is_polynomial(x) else float("inf")


def try_integrate_1d(f: sp.Expr, q: sp.Expr):
    """E[f(√q z)] in closed form where :func:`gaussian_integrand` admits ``f`` and SymPy finishes; else None."""
    g = gaussian_integrand(f)
    if g is None:
        return None
    value = integrate_1d(g, q)
    return None if value.has(sp.Integral) else value
