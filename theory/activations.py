"""Activations: φ as a SymPy expression, and everything the three packages need from it.

An :class:`Activation` is self-sufficient. From φ alone sigprop derives

- its kinks and its homogeneity degree (:mod:`sigprop.theory.piecewise`): quadrature puts panel edges at the
  kinks, and a network of degree-1 blocks is iterated in log space;
- its five Gaussian expectations (:mod:`sigprop.theory.expectations`): by SymPy integration for
  piecewise-polynomial φ, by oddness (E[φ] = 0), on the diagonal of a closed-form kernel, by Price's theorem
  (E[φ'(u)φ'(v)] = ∂E[φ(u)φ(v)]/∂k) — or, where none of these applies, as unevaluated expectations that
  ``numerics`` integrates;
- its torch function (``validate`` prints φ with SymPy's torch printer), unless a fused torch op is named.

Where the literature has a closed-form kernel E[φ(u)φ(v)], it is given once, with its citation.

Adding an activation is one call; it then works in formulas, predictions, sampled networks and the grammar:

>>> from sigprop.theory import activation, Dense
>>> softplus = activation("softplus", "log(1 + exp(x))")
>>> Dense("softplus").describe()
'dense(softplus,sw2=1,sb2=0)'
>>> softplus.source
'no closed form: Gaussian quadrature in numerics'

Example
-------
>>> from sigprop.theory import relu
>>> from sigprop.theory.symbols import q1, q2, k, q
>>> relu.second_moment(q)
q/2
>>> relu.dkernel(q1, q2, k)
(pi - atan2(sqrt((q_1*q_2 - k**2)), k))/(2*pi)
>>> relu.kinks, relu.degree
((0,), 1)
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from tokenize import TokenError
from typing import Callable, Optional

import sympy as sp

from .determinant import covariance_determinant
from .expectations import expectation, integrate_1d, integrate_2d
from .piecewise import homogeneity_degree, is_piecewise_polynomial, kinks
from .symbols import x

KernelFn = Callable[[sp.Expr, sp.Expr, sp.Expr], sp.Expr]
_AUTO = "auto"
_NAME = re.compile(r"[a-z_][a-z0-9_]*\Z")


@dataclass(frozen=True, eq=False)
class Activation:
    """A pointwise nonlinearity φ.

    Parameters
    ----------
    name: lowercase name used by the architecture grammar (``dense(tanh)``).
    phi: φ as a SymPy expression in x, or a string SymPy reads (``"log(1 + exp(x))"``).
    kernel: optional closed form (q₁, q₂, k) ↦ E[φ(u)φ(v)]; ``kernel_source`` is its citation.
    kinks: points where φ is not smooth; found from the expression when not given.
    degree: d with φ(λx) = λ^d φ(x) for λ > 0, or None; found from the expression when not given.
    torch_op: name of a fused torch function computing φ (``"relu"``); otherwise ``validate`` derives one.
    """

    name: str
    phi: sp.Expr
    kernel_closed_form: Optional[KernelFn] = None
    kernel_source: str = ""
    kinks: tuple = _AUTO
    degree: Optional[int] = _AUTO
    torch_op: Optional[str] = None
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(f"name={self.name!r} is not allowed: an activation name is a lowercase identifier "
                             "such as 'softplus'")
        object.__setattr__(self, "phi", _as_phi(self.phi, self.name))
        if self.kinks == _AUTO:
            object.__setattr__(self, "kinks", kinks(self.phi))
        else:
            object.__setattr__(self, "kinks", tuple(sorted((sp.sympify(p) for p in self.kinks), key=float)))
        if self.degree == _AUTO:
            object.__setattr__(self, "degree", homogeneity_degree(self.phi))

    def __eq__(self, other):
        return isinstance(other, Activation) and (other.name, other.phi) == (self.name, self.phi)

    def __hash__(self):
        return hash(("Activation", self.name, self.phi))

    def __repr__(self):
        return self.name

    @property
    def dphi(self) -> sp.Expr:
        """φ' (SymPy derivative; Heaviside(x) for relu)."""
        if "dphi" not in self._cache:
            self._cache["dphi"] = sp.diff(self.phi, x)
        return self._cache["dphi"]

    @property
    def is_odd(self) -> bool:
        if "odd" not in self._cache:
            self._cache["odd"] = sp.simplify(self.phi.subs(x, -x) + self.phi) == 0
        return self._cache["odd"]

    @property
    def _polynomial(self) -> bool:
        """φ is a polynomial: SymPy integrates its 1-D and bivariate expectations exactly."""
        if "polynomial" not in self._cache:
            self._cache["polynomial"] = self.phi.is_polynomial(x)
        return self._cache["polynomial"]

    @property
    def _piecewise_polynomial(self) -> bool:
        """φ is a polynomial on each piece: SymPy integrates its 1-D expectations exactly."""
        if "piecewise" not in self._cache:
            self._cache["piecewise"] = is_piecewise_polynomial(self.phi)
        return self._cache["piecewise"]

    @property
    def has_closed_forms(self) -> bool:
        """Whether all five expectations are explicit expressions (no quadrature needed)."""
        return self.kernel_closed_form is not None or self._polynomial

    @property
    def source(self) -> str:
        """Where this activation's Gaussian expectations come from: registered, derived or numerical."""
        if self.kernel_closed_form is not None:
            return self.kernel_source
        if self._polynomial:
            return "exact Gaussian integrals (SymPy)"
        if self._piecewise_polynomial:
            return "1-D expectations: exact Gaussian integrals (SymPy); kernels: Gaussian quadrature in numerics"
        return "no closed form: Gaussian quadrature in numerics"

    def _unevaluated(self, kind, *args):
        return expectation(self, kind)(*args)

    # -- the five expectations ---------------------------------------------------------------------
    def mean(self, q: sp.Expr) -> sp.Expr:
        """E[φ(√q z)]."""
        if self.is_odd:
            return sp.Integer(0)
        if self._piecewise_polynomial:
            return self._derived("mean", q, lambda s: integrate_1d(self.phi, s))
        return self._unevaluated("mean", q)

    def second_moment(self, q: sp.Expr) -> sp.Expr:
        """E[φ(√q z)²]: the length map's expectation."""
        if self.kernel_closed_form is not None:
            return self._derived("square", q, lambda s: sp.simplify(self.kernel(s, s, s)))
        if self._piecewise_polynomial:
            return self._derived("square", q, lambda s: integrate_1d(self.phi**2, s))
        return self._unevaluated("square", q)

    def dsecond_moment(self, q: sp.Expr) -> sp.Expr:
        """E[φ'(√q z)²]: χ₁ = σ_w² E[φ'²] (Poole et al. 2016)."""
        if self.kernel_closed_form is not None:
            return self._derived("dsquare", q, lambda s: sp.simplify(self.dkernel(s, s, s)))
        if self._piecewise_polynomial:
            return self._derived("dsquare", q, lambda s: integrate_1d(self.dphi**2, s))
        return self._unevaluated("dsquare", q)

    def kernel(self, q1: sp.Expr, q2: sp.Expr, k: sp.Expr) -> sp.Expr:
        """E[φ(u)φ(v)], (u, v) ~ N(0, [[q₁, k], [k, q₂]])."""
        if self.kernel_closed_form is not None:
            return self.kernel_closed_form(q1, q2, k)
        if self._polynomial:
            return self._derived("kernel", (q1, q2, k), lambda s: integrate_2d(self.phi, self.phi, *s))
        return self._unevaluated("kernel", q1, q2, k)

    def dkernel(self, q1: sp.Expr, q2: sp.Expr, k: sp.Expr) -> sp.Expr:
        """E[φ'(u)φ'(v)] = ∂E[φ(u)φ(v)]/∂k (Price's theorem)."""
        if self.has_closed_forms:
            return self._derived("dkernel", (q1, q2, k), lambda s: self._price(*s))
        return self._unevaluated("dkernel", q1, q2, k)

    def _price(self, q1, q2, k):
        # Simplify with the covariance determinant held as an opaque positive symbol, so the result keeps it
        # (numerics evaluates it without cancellation) instead of expanding it into q1*q2 - k**2.
        d = sp.diff(self.kernel(q1, q2, k), k)
        det = covariance_determinant(q1, q2, k)
        held = sp.Symbol("_held_determinant", positive=True)
        return sp.simplify(d.subs(det, held)).subs(held, det)

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


def _as_phi(phi, name) -> sp.Expr:
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
    if phi.free_symbols != {x}:
        other = sorted(map(str, phi.free_symbols - {x})) or ["none: phi does not depend on x"]
        raise ValueError(f"phi={phi} for activation {name!r} is not allowed: it must be an expression in x alone "
                         f"(free symbols other than x: {', '.join(other)})")
    return phi



#: name -> Activation; the grammar reads activation names from here
ACTIVATIONS: dict[str, Activation] = {}


def register_activation(act: Activation, replace: bool = False) -> Activation:
    """Add ``act`` to :data:`ACTIVATIONS` so the grammar knows its name. Returns ``act``.

    A different activation under a name already taken raises ``ValueError`` unless ``replace=True``.
    """
    if not isinstance(act, Activation):
        raise ValueError(f"activation={act!r} is not allowed: register an Activation")
    from .blocks import BLOCKS        # block words and activation names share the grammar's namespace
    if act.name in BLOCKS:
        raise ValueError(f"name={act.name!r} is not allowed: it is a block kind of the grammar")
    old = ACTIVATIONS.get(act.name)
    if old is not None and old != act and not replace:
        raise ValueError(f"name={act.name!r} is taken by the activation phi={old.phi}; choose another name or "
                         "pass replace=True")
    ACTIVATIONS[act.name] = act
    return act


def activation(name: str, phi, **kwargs) -> Activation:
    """Make an :class:`Activation` from a SymPy expression (or string) in x and register it (one call).

    >>> from sigprop.theory import activation
    >>> activation("xerf", "x*erf(x)").degree is None
    True
    """
    act = Activation(name, phi, **kwargs)
    if ACTIVATIONS.get(name) == act:
        return ACTIVATIONS[name]
    return register_activation(act)


def get_activation(name_or_activation) -> Activation:
    """An Activation as given, or looked up by name; unknown names raise a ``ValueError`` listing the known ones."""
    if isinstance(name_or_activation, Activation):
        return name_or_activation
    act = ACTIVATIONS.get(name_or_activation.strip().lower()) if isinstance(name_or_activation, str) else None
    if act is None:
        raise ValueError(f"activation={name_or_activation!r} is not known; "
                         f"allowed: {', '.join(sorted(ACTIVATIONS))} (or define one with "
                         "sigprop.theory.activation(name, phi))")
    return act
