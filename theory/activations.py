"""Activations: φ as a SymPy expression and its five Gaussian expectations (see :mod:`theory.expectations`).

An activation is defined once, here, by φ and, where the literature has one, a closed-form bivariate
kernel E[φ(u)φ(v)] with its citation. Everything else is derived:

- first moments and second moments: SymPy integration for piecewise-polynomial φ, oddness (E[φ] = 0),
  or the kernel on its diagonal (k = q₁ = q₂);
- the derivative kernel E[φ'(u)φ'(v)]: ∂/∂k of the kernel (Price's theorem, Price 1958);
- where neither works (tanh), unevaluated expectations that ``numerics`` integrates numerically.

Example
-------
>>> from theory import relu
>>> from theory.symbols import q1, q2, k, q
>>> relu.second_moment(q)
q/2
>>> relu.dkernel(q1, q2, k)
(pi - acos(k/(sqrt(q_1)*sqrt(q_2))))/(2*pi)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, Optional

import sympy as sp

from .expectations import expectation, integrate_1d, integrate_2d, is_piecewise_polynomial
from .symbols import x

KernelFn = Callable[[sp.Expr, sp.Expr, sp.Expr], sp.Expr]


@dataclass(frozen=True, eq=False)
class Activation:
    """A pointwise nonlinearity φ.

    Parameters
    ----------
    name: short name used by the architecture grammar (``dense(tanh)``).
    phi: φ as a SymPy expression in :data:`theory.symbols.x`.
    kernel: optional closed form (q₁, q₂, k) ↦ E[φ(u)φ(v)].
    kernel_source: citation of that closed form.
    positively_homogeneous: φ(λx) = λφ(x) for λ > 0 (relu, linear). Then a network without biases
        scales exactly with its input and ``numerics`` iterates its normalized state (log space).
    """

    name: str
    phi: sp.Expr
    kernel_closed_form: Optional[KernelFn] = None
    kernel_source: str = ""
    positively_homogeneous: bool = False
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __eq__(self, other):
        return isinstance(other, Activation) and other.name == self.name

    def __hash__(self):
        return hash(("Activation", self.name))

    def __repr__(self):
        return self.name

    @cached_property
    def dphi(self) -> sp.Expr:
        """φ' (SymPy derivative; Heaviside(x) for relu)."""
        return sp.diff(self.phi, x)

    @cached_property
    def is_odd(self) -> bool:
        return sp.simplify(self.phi.subs(x, -x) + self.phi) == 0

    @cached_property
    def _polynomial(self) -> bool:
        return is_piecewise_polynomial(self.phi)

    @property
    def has_closed_forms(self) -> bool:
        """Whether all five expectations are explicit expressions (no quadrature needed)."""
        return self.kernel_closed_form is not None or self._polynomial

    @property
    def source(self) -> str:
        """Where this activation's Gaussian expectations come from."""
        if self.kernel_closed_form is not None:
            return self.kernel_source
        if self._polynomial:
            return "exact Gaussian integrals (SymPy)"
        return "no closed form: Gaussian quadrature in numerics"

    def _unevaluated(self, kind, *args):
        return expectation(self.name, kind)(*args)

    # -- the five expectations ---------------------------------------------------------------------
    def mean(self, q: sp.Expr) -> sp.Expr:
        """E[φ(√q z)]."""
        if self.is_odd:
            return sp.Integer(0)
        if self._polynomial:
            return self._derived("mean", q, lambda s: integrate_1d(self.phi, s))
        return self._unevaluated("mean", q)

    def second_moment(self, q: sp.Expr) -> sp.Expr:
        """E[φ(√q z)²]: the length map's expectation."""
        if self.kernel_closed_form is not None:
            return self._derived("square", q, lambda s: sp.simplify(self.kernel(s, s, s)))
        if self._polynomial:
            return self._derived("square", q, lambda s: integrate_1d(self.phi**2, s))
        return self._unevaluated("square", q)

    def dsecond_moment(self, q: sp.Expr) -> sp.Expr:
        """E[φ'(√q z)²]: χ₁ = σ_w² E[φ'²] (Poole et al. 2016)."""
        if self.kernel_closed_form is not None:
            return self._derived("dsquare", q, lambda s: sp.simplify(self.dkernel(s, s, s)))
        if self._polynomial:
            return self._derived("dsquare", q, lambda s: integrate_1d(self.dphi**2, s))
        return self._unevaluated("dsquare", q)

    def kernel(self, q1: sp.Expr, q2: sp.Expr, k: sp.Expr) -> sp.Expr:
        """E[φ(u)φ(v)], (u, v) ~ N(0, [[q₁, k], [k, q₂]])."""
        if self.kernel_closed_form is not None:
            return self.kernel_closed_form(q1, q2, k)
        if self._polynomial:
            return self._derived("kernel", (q1, q2, k),
                                 lambda s: integrate_2d(self.phi, self.phi, *s))
        return self._unevaluated("kernel", q1, q2, k)

    def dkernel(self, q1: sp.Expr, q2: sp.Expr, k: sp.Expr) -> sp.Expr:
        """E[φ'(u)φ'(v)] = ∂E[φ(u)φ(v)]/∂k (Price's theorem)."""
        if self.has_closed_forms:
            return self._derived("dkernel", (q1, q2, k), lambda s: self._price(*s))
        return self._unevaluated("dkernel", q1, q2, k)

    def _price(self, q1, q2, k):
        d1, d2, kk = sp.symbols("_q1 _q2", positive=True) + (sp.Symbol("_k", real=True),)
        return sp.simplify(sp.diff(self.kernel(d1, d2, kk), kk)).subs({d1: q1, d2: q2, kk: k})

    def _derived(self, kind, args, derive):
        """Derive once on generic symbols, then substitute: SymPy integration is slow, substitution is not."""
        args = args if isinstance(args, tuple) else (args,)
        if kind not in self._cache:
            gen = sp.symbols(f"_g1:{len(args) + 1}", positive=True)
            if len(args) == 3:
                gen = gen[:2] + (sp.Symbol("_g3", real=True),)
            self._cache[kind] = (gen, derive(gen if len(gen) > 1 else gen[0]))
        gen, expr = self._cache[kind]
        return expr.subs(dict(zip(gen, args)), simultaneous=True)


def _relu_kernel(q1, q2, k):
    # Arc-cosine kernel of degree 1 (Cho & Saul 2009): √(q1 q2)(sin θ + (π − θ) cos θ)/(2π), cos θ = c.
    c = k / sp.sqrt(q1 * q2)
    return (sp.sqrt(q1 * q2 - k**2) + (sp.pi - sp.acos(c)) * k) / (2 * sp.pi)


def _erf_kernel(q1, q2, k):
    # Williams 1997: (2/π) arcsin(2k / √((1 + 2q1)(1 + 2q2))).
    return 2 / sp.pi * sp.asin(2 * k / sp.sqrt((1 + 2 * q1) * (1 + 2 * q2)))


relu = Activation("relu", sp.Max(0, x), _relu_kernel,
                  "arc-cosine kernel of degree 1, Cho & Saul 2009", positively_homogeneous=True)
tanh = Activation("tanh", sp.tanh(x))
erf = Activation("erf", sp.erf(x), _erf_kernel, "Williams 1997, 'Computing with infinite networks'")
linear = Activation("linear", x, positively_homogeneous=True)

ACTIVATIONS: dict[str, Activation] = {a.name: a for a in (relu, tanh, erf, linear)}


def get_activation(name_or_activation) -> Activation:
    """Look an activation up by name; unknown names raise a ``ValueError`` listing the known ones."""
    if isinstance(name_or_activation, Activation):
        return name_or_activation
    act = ACTIVATIONS.get(str(name_or_activation).strip().lower()) if isinstance(name_or_activation, str) else None
    if act is None:
        raise ValueError(f"activation={name_or_activation!r} is not known; "
                         f"allowed: {', '.join(sorted(ACTIVATIONS))}")
    return act
