"""Activations: φ as a SymPy expression, and everything the three packages need from it.

An :class:`Activation` is self-sufficient. From φ alone sigprop derives

- its kinks and its homogeneity degree (:mod:`sigprop.theory.piecewise`): quadrature puts panel edges at the
  kinks, and a network of degree-1 blocks is iterated in log space;
- its Gaussian expectations, one method per kind (:mod:`sigprop.theory.expectations`,
  :mod:`sigprop.theory.activation_expectations`): by SymPy integration for piecewise-polynomial φ, by oddness
  (E[φ] = 0), on the diagonal of a closed-form kernel, by Price's theorem (E[φ'(u)φ'(v)] = ∂E[φ(u)φ(v)]/∂k) — or,
  where none of these applies, as unevaluated expectations that ``numerics`` integrates;
- φ' almost everywhere (what backpropagation uses) and, for continuous φ, φ'' as a distribution: Dirac deltas
  where φ' jumps (:mod:`sigprop.theory.second_derivative`);
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
from typing import Callable, Optional

import sympy as sp

from .activation_expectations import ActivationExpectations
from .phi import read_phi
from .piecewise import homogeneity_degree, is_piecewise_polynomial, kinks, sort_key
from .second_derivative import jumps, smooth_part
from .symbols import x

KernelFn = Callable[[sp.Expr, sp.Expr, sp.Expr], sp.Expr]
_AUTO = "auto"
_NAME = re.compile(r"[a-z_][a-z0-9_]*\Z")


@dataclass(frozen=True, eq=False)
class Activation(ActivationExpectations):
    """A pointwise nonlinearity φ, with its Gaussian expectations as methods (``mean``, ``second_moment``,
    ``dsecond_moment``, ``kernel``, ``dkernel``, ``xmean``, ``curvature``, ``dquartic``, ``ddkernel``:
    :mod:`sigprop.theory.activation_expectations`).

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
    dkernel_closed_form: optional closed form (q₁, q₂, k) ↦ E[φ'(u)φ'(v)] (otherwise Price's theorem on the
        kernel's closed form, or quadrature); ``dkernel_source`` is its citation.
    params: the parameter values φ was made with (an :class:`ActivationFamily` member, e.g. ``leaky_relu``'s
        slope); symbols among them may appear in φ.
    derive: False leaves every expectation without a registered closed form unevaluated instead of trying
        SymPy integration (which can take minutes on symbolic parameters); numerics integrates them.
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
    dkernel_closed_form: Optional[KernelFn] = None
    dkernel_source: str = ""
    params: tuple = ()
    family: Optional["ActivationFamily"] = field(default=None, repr=False, compare=False)
    derive: bool = field(default=True, repr=False)
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(f"name={self.name!r} is not allowed: an activation name is a lowercase identifier "
                             "such as 'softplus'")
        allowed = set().union(*(v.free_symbols if isinstance(v, Activation) else sp.sympify(v).free_symbols
                                for _, v in self.params if isinstance(v, (int, float, sp.Expr, Activation))))
        object.__setattr__(self, "phi", read_phi(self.phi, self.name, allowed))
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
        """This activation with ``mapping`` applied to its parameters: keys are symbols or names, a symbol matching
        the parameter's symbol of the same name whatever its assumptions (``elu(a=s)`` holds a real ``s``), as in
        ``Network.subs``; a name that is no parameter's raises ``ValueError`` (other symbols are left alone, as
        SymPy's ``subs`` leaves them: a block passes its whole mapping on).

        >>> from sigprop.theory import get_activation
        >>> get_activation("elu(a=s)").subs({"s": 0.5}).describe()
        'elu(a=0.5)'
        """
        by_name = {s.name: s for s in self.free_symbols}
        resolved = {}
        for key, value in dict(mapping).items():
            name = key if isinstance(key, str) else getattr(key, "name", None)
            if name in by_name:
                resolved[by_name[name]] = sp.sympify(value)
            elif isinstance(key, str):
                raise ValueError(f"{key!r} is not a parameter of {self.describe()}; its symbols are: "
                                 f"{', '.join(sorted(by_name)) or 'none'}")
        if self.family is None or not resolved:
            return self
        return self.family(**{k: (v.subs(resolved) if isinstance(v, Activation) else sp.sympify(v).subs(resolved))
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
    def ddphi_smooth(self) -> sp.Expr:
        """The almost-everywhere second derivative of φ (φ'' without the Dirac deltas of :attr:`dphi_jumps`)."""
        if "ddphi_smooth" not in self._cache:
            self._cache["ddphi_smooth"] = smooth_part(self.dphi)
        return self._cache["ddphi_smooth"]

    @property
    def dphi_jumps(self) -> tuple:
        """((t, J), …): the kinks t where φ' jumps, by J = φ'(t⁺) − φ'(t⁻) (relu: ((0, 1),))."""
        if "dphi_jumps" not in self._cache:
            self._cache["dphi_jumps"] = jumps(self.dphi, self.kinks, self.free_symbols)
        return self._cache["dphi_jumps"]

    @property
    def ddphi(self) -> sp.Expr:
        """φ'' as a distribution, for continuous φ: :attr:`ddphi_smooth` plus J·δ(x − t) at each jump of φ'
        (:mod:`sigprop.theory.second_derivative`). Raises ``UndefinedExpectation`` (a ValueError) where φ jumps."""
        self._require_continuous("ddphi", "phi cannot be integrated against it")
        return self.ddphi_smooth + sp.Add(*(j * sp.DiracDelta(x - t) for t, j in self.dphi_jumps))

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
            self._cache["piecewise"] = self.derive and is_piecewise_polynomial(self.phi)
        return self._cache["piecewise"]

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
