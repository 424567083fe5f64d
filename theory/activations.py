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
>>> xtanh = activation("xtanh", "x*tanh(x)")
>>> Dense("xtanh").describe()
'dense(xtanh,sw2=1,sb2=0)'
>>> xtanh.source
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
from .expectations import ARITY, KINDS, METHOD, GaussianExpectation, expectation, integrate_1d, integrate_2d
from .piecewise import homogeneity_degree, is_piecewise_polynomial, kinks, sort_key
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
    kernel_closed_form: optional closed form (q₁, q₂, k) ↦ E[φ(u)φ(v)]; ``kernel_source`` is its citation.
    kinks: points where φ is not smooth; found from the expression when not given.
    degree: d with φ(λx) = λ^d φ(x) for λ > 0, or None; found from the expression when not given.
    torch_op: a fused torch function computing φ (``"relu"``, ``"nn.functional.softplus"``); otherwise
        ``validate`` derives one.
    mean_closed_form: optional closed form q ↦ E[φ(√q z)]; ``mean_source`` is its citation.
    params: the parameter values φ was made with (an :class:`ActivationFamily` member, e.g. ``leaky_relu``'s
        slope); symbols among them may appear in φ.
    """

    name: str
    phi: sp.Expr
    kernel_closed_form: Optional[KernelFn] = None
    kernel_source: str = ""
    kinks: tuple = _AUTO
    degree: Optional[int] = _AUTO
    torch_op: Optional[str] = None
    mean_closed_form: Optional[Callable[[sp.Expr], sp.Expr]] = None
    mean_source: str = ""
    params: tuple = ()
    family: Optional["ActivationFamily"] = field(default=None, repr=False, compare=False)
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(f"name={self.name!r} is not allowed: an activation name is a lowercase identifier "
                             "such as 'softplus'")
        allowed = set().union(*(sp.sympify(v).free_symbols for _, v in self.params if isinstance(v, (int, float, sp.Expr))))
        object.__setattr__(self, "phi", _as_phi(self.phi, self.name, allowed))
        if self.kinks == _AUTO:
            object.__setattr__(self, "kinks", kinks(self.phi))
        else:
            object.__setattr__(self, "kinks", tuple(sorted((sp.sympify(p) for p in self.kinks), key=sort_key)))
        if self.degree == _AUTO:
            object.__setattr__(self, "degree", homogeneity_degree(self.phi))

    def __eq__(self, other):
        return isinstance(other, Activation) and (other.name, other.phi) == (self.name, self.phi)

    def __hash__(self):
        return hash(("Activation", self.name, self.phi))

    def __repr__(self):
        return self.describe()

    def describe(self) -> str:
        """The activation as the grammar writes it: ``tanh``, ``leaky_relu(a=0.2)``, ``affine(tanh,a=2)``."""
        shown = [(k, v) for k, v in self.params
                 if self.family is None or v != self.family.defaults().get(k, _AUTO)]
        if not shown:
            return self.name
        args = [v.describe() if isinstance(v, Activation) else f"{k}={_format(v)}" for k, v in shown]
        return f"{self.name}({','.join(args)})"

    @property
    def free_symbols(self) -> set:
        """SymPy symbols among the parameters (a symbolic slope): theory only, numerics needs numbers."""
        return self.phi.free_symbols - {x}

    def subs(self, mapping: dict) -> "Activation":
        """This activation with ``mapping`` (symbol → value) applied to its parameters."""
        if self.family is None or not self.free_symbols:
            return self
        return self.family(**{k: (v.subs(mapping) if isinstance(v, Activation) else sp.sympify(v).subs(mapping))
                              for k, v in self.params})

    @property
    def dphi(self) -> sp.Expr:
        """φ', the derivative backpropagation uses: the almost-everywhere derivative (Heaviside(x) for relu, 0 for
        step and sign: the Dirac deltas of a jump carry no gradient in a network)."""
        if "dphi" not in self._cache:
            d = sp.diff(self.phi, x)
            self._cache["dphi"] = d.replace(lambda e: isinstance(e, sp.DiracDelta), lambda e: sp.Integer(0))
        return self._cache["dphi"]

    @property
    def is_continuous(self) -> bool:
        """φ has no jumps (at its kinks the one-sided limits agree); Price's theorem then gives E[φ'(u)φ'(v)]."""
        if "continuous" not in self._cache:
            # continuity does not depend on generic parameter values: give symbolic ones a generic value first
            generic = {s: sp.Rational(37, 100) + i for i, s in enumerate(sorted(self.free_symbols, key=str))}
            phi = self.phi.subs(generic)
            self._cache["continuous"] = all(_continuous_at(phi, sp.sympify(p).subs(generic)) for p in self.kinks)
        return self._cache["continuous"]

    @property
    def is_odd(self) -> bool:
        if "odd" not in self._cache:
            self._cache["odd"] = sp.simplify(self.phi.subs(x, -x) + self.phi) == 0
        return self._cache["odd"]

    @property
    def is_even(self) -> bool:
        if "even" not in self._cache:
            self._cache["even"] = sp.simplify(self.phi.subs(x, -x) - self.phi) == 0
        return self._cache["even"]

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
        """Whether every expectation kind is an explicit expression (no quadrature needed)."""
        return not any(self.expectation_sources()[k].startswith("numerical") for k in KINDS)

    def expectation_sources(self) -> dict:
        """Kind → how that expectation is obtained: ``registered: <citation>``, ``derived: <how>`` (SymPy), or
        ``numerical: <what>`` (an unevaluated expectation that numerics integrates with error control)."""
        if "sources" not in self._cache:
            out = {}
            for kind in KINDS:
                method = getattr(self, METHOD[kind])
                args = (sp.Symbol("_q", positive=True),) if ARITY[kind] == 1 else (
                    sp.Symbol("_q1", positive=True), sp.Symbol("_q2", positive=True), sp.Symbol("_k", real=True))
                expr = method(*args)
                pending = sorted({str(e.func(*sp.symbols("q" if len(e.args) == 1 else "q1 q2 k", seq=True)))
                                  for e in expr.atoms(GaussianExpectation)})
                out[kind] = (f"numerical: Gaussian quadrature of {', '.join(pending)}, kinks as panel edges"
                             if pending else self._how(kind))
            self._cache["sources"] = out
        return self._cache["sources"]

    def _how(self, kind: str) -> str:
        if kind == "mean" and self.is_odd:
            return "derived: phi is odd, so E[phi] = 0"
        if kind == "xmean" and self.is_even:
            return "derived: phi is even, so E[u phi(u)] = 0"
        if kind == "xmean":
            return "derived: exact Gaussian integral of u phi(u) (SymPy)"
        if kind == "mean" and self.mean_closed_form is not None:
            return f"registered: {self.mean_source}"
        if kind == "kernel" and self.kernel_closed_form is not None:
            return f"registered: {self.kernel_source}"
        if kind in ("square", "dsquare") and self.kernel_closed_form is not None and (
                kind == "square" or self.is_continuous):
            return "derived: the kernel's diagonal" + (" after Price's theorem" if kind == "dsquare" else "")
        if kind == "dkernel" and self.is_continuous and (self.kernel_closed_form is not None or self._polynomial):
            return "derived: Price's theorem, dE[phi(u)phi(v)]/dk"
        if kind in ("dsquare", "dkernel") and self.dphi == 0:
            return "derived: phi' = 0 almost everywhere"
        return "derived: exact Gaussian integral (SymPy)"

    @property
    def source(self) -> str:
        """Where this activation's Gaussian expectations come from (one line; per kind:
        :meth:`expectation_sources`)."""
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
        if self.mean_closed_form is not None:
            return self.mean_closed_form(q)
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
        if self.kernel_closed_form is not None and self.is_continuous:
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
        """E[φ'(u)φ'(v)] = ∂E[φ(u)φ(v)]/∂k (Price's theorem, for continuous φ)."""
        if self.is_continuous and (self.kernel_closed_form is not None or self._polynomial):
            return self._derived("dkernel", (q1, q2, k), lambda s: self._price(*s))
        if self.dphi == 0:
            return sp.Integer(0)
        if self.dphi.is_polynomial(x):
            return self._derived("dkernel", (q1, q2, k), lambda s: integrate_2d(self.dphi, self.dphi, *s))
        return self._unevaluated("dkernel", q1, q2, k)

    def xmean(self, q: sp.Expr) -> sp.Expr:
        """E[u φ(u)], u ~ N(0, q): the cross moment ⟨x, φ(x)⟩/n of a residual y = x + φ(x) on Gaussian x; by
        Stein's lemma q E[φ'(u)] for continuous φ (Stein 1981), computed directly so jumps count."""
        if self.is_even:
            return sp.Integer(0)
        if self._piecewise_polynomial:
            return self._derived("xmean", q, lambda s: integrate_1d(x * self.phi, s))
        if self.kernel_closed_form is not None or self.mean_closed_form is not None:
            # a registered closed form: SymPy integrates u φ(u) for these (erf, sin, cos, exp, GELU) in < 1 s
            value = self._derived("xmean", q, lambda s: integrate_1d(x * self.phi, s))
            if not value.has(sp.Integral):
                return value
        return self._unevaluated("xmean", q)

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


def _continuous_at(phi, point) -> bool:
    # Compare the two sides 1e-40 away at 60 digits: a jump shows as O(1), a continuous φ (even one like √|x|)
    # differs by far less than 1e-15. (SymPy's one-sided limit of a Piecewise can miss a jump.)
    eps = sp.Float("1e-40", 60)
    point = sp.sympify(point)
    return abs(sp.N(phi.subs(x, point + eps) - phi.subs(x, point - eps), 60)) < 1e-15


def _format(v) -> str:
    v = sp.sympify(v)
    if v.is_Integer:
        return str(int(v))
    return repr(float(v)) if v.is_number else str(v)


def _integrand(act, kind) -> str:
    f, d = act.describe(), f"{act.describe()}'"
    return {"mean": f"{f}(u)", "square": f"{f}(u)^2", "dsquare": f"{d}(u)^2",
            "kernel": f"{f}(u) {f}(v)", "dkernel": f"{d}(u) {d}(v)"}[kind]


def _as_phi(phi, name, allowed=frozenset()) -> sp.Expr:
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
    return phi



@dataclass(frozen=True)
class FamilyParam:
    """A parameter of an activation family: ``kind`` is ``real`` (a number or a symbol), ``positive_integer``
    (a number) or ``activation``."""

    name: str
    default: object
    kind: str
    doc: str


@dataclass(frozen=True, eq=False)
class ActivationFamily:
    """Activations with parameters, e.g. ``leaky_relu(a=0.2)``: ``make(**values)`` returns φ, or a dict of the
    other :class:`Activation` arguments (``phi``, ``kernel_closed_form``, …).

    Calling the family checks the values (numbers, or SymPy symbols where the kind allows) and returns the member;
    the grammar reads ``name(key=value, ...)``.

    >>> from sigprop.theory import FAMILIES
    >>> FAMILIES["leaky_relu"](a=0.2).describe()
    'leaky_relu(a=0.2)'
    """

    name: str
    params: tuple
    make: Callable[..., Activation]
    summary: str

    def defaults(self) -> dict:
        return {p.name: p.default for p in self.params if p.default is not None}

    def __call__(self, *args, **kwargs) -> Activation:
        names = [p.name for p in self.params]
        if len(args) > len(names):
            raise ValueError(f"{self.name}() takes at most {len(names)} values ({', '.join(names)}), got {len(args)}")
        values = dict(zip(names, args))
        for key, v in kwargs.items():
            if key not in names:
                raise ValueError(f"{self.name}() takes the parameters {', '.join(names)}, not {key!r}")
            if key in values:
                raise ValueError(f"{self.name}(): {key} is given twice")
            values[key] = v
        checked = {}
        for p in self.params:
            if p.name not in values and p.default is None:
                raise ValueError(f"{self.name}() needs {p.name} ({p.doc})")
            checked[p.name] = _check_family_value(self.name, p, values.get(p.name, p.default))
        spec = self.make(**checked)
        spec = spec if isinstance(spec, dict) else {"phi": spec}
        return Activation(self.name, params=tuple(checked.items()), family=self, **spec)


def _check_family_value(family: str, p: FamilyParam, value):
    where = f"{family}(): {p.name}={value!r} is not allowed"
    if p.kind == "activation":
        try:
            return get_activation(value)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
    if isinstance(value, (bool, str)) or value is None:
        raise ValueError(f"{where}: give a number" + (" or a SymPy symbol" if p.kind == "real" else ""))
    try:
        v = sp.sympify(value, strict=True)
    except (sp.SympifyError, TypeError):
        raise ValueError(f"{where}: give a number") from None
    if p.kind == "positive_integer":
        if not (v.is_number and v.is_integer and v >= 1):
            raise ValueError(f"{where}: it must be a positive integer")
        return sp.Integer(v)
    if v.is_number and not (v.is_real and v.is_finite):
        raise ValueError(f"{where}: it must be a finite real number")
    if any(s.name == "x" for s in v.free_symbols):
        raise ValueError(f"{where}: x is the activation's variable; name the parameter's symbol otherwise")
    if not v.is_number and not all(s.is_real for s in v.free_symbols):
        v = v.subs({s: sp.Symbol(s.name, real=True) for s in v.free_symbols})
    return v


#: name -> ActivationFamily; the grammar reads ``name(key=value)`` from here
FAMILIES: dict[str, ActivationFamily] = {}


def register_family(family: ActivationFamily) -> ActivationFamily:
    """Add a family to :data:`FAMILIES`; where every parameter has a default, its default member is registered
    as an activation under the family's name (``dense(leaky_relu)``)."""
    from .blocks import BLOCKS
    if family.name in BLOCKS:
        raise ValueError(f"name={family.name!r} is not allowed: it is a block kind of the grammar")
    old = FAMILIES.get(family.name)
    if old is not None and old is not family:
        raise ValueError(f"name={family.name!r} is taken by another activation family")
    FAMILIES[family.name] = family
    if all(p.default is not None for p in family.params):
        register_activation(family())
    return family


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
    if isinstance(name_or_activation, str) and "(" in name_or_activation:
        from .parse import parse_activation
        return parse_activation(name_or_activation)
    act = ACTIVATIONS.get(name_or_activation.strip().lower()) if isinstance(name_or_activation, str) else None
    if act is None:
        raise ValueError(f"activation={name_or_activation!r} is not known; "
                         f"allowed: {', '.join(sorted(ACTIVATIONS))} (or define one with "
                         "sigprop.theory.activation(name, phi))")
    return act
