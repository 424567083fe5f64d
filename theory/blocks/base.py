"""The block protocol: what a block kind declares once, and what follows from the declaration.

A block kind is a frozen dataclass deriving from :class:`Block`, registered with :func:`register_block`. It
declares

- ``kind``: its word in the architecture grammar, ``summary``: one line saying what it computes, and
  ``example``: a small network that uses it (the conformance tests predict and sample it);
- its parameters, as dataclass fields made with :func:`param` (kind ``activation``, ``variance``, ``real`` or
  ``blocks`` for a child sequence such as a residual branch). The declaration drives checking, ``describe()``,
  the grammar, ``subs``, free symbols, and the arguments of the function ``numerics`` compiles;
- its maps on the named state (:mod:`sigprop.theory.state`): ``maps(state)`` for a leaf, or
  ``combine(state, child_maps)`` for a block with children (the children's composed maps are passed in);
- ``degree``: d with block(λx) = λ^d block(x) for λ > 0 (1 for relu or linear without bias, 0 for a
  normalization) or None, and ``pre_degree``, the same for its pre-activation; ``numerics`` iterates in log
  space by them;
- ``decorrelates``: whether its output is a fresh zero-mean random map of its input, so that it is uncorrelated
  with the input apart from first moments (what a residual branch needs);
- ``gaussian_out(gaussian_in, children_out)``: whether the coordinates of its output are Gaussian (a
  ``dense(linear)`` output is), and ``needs_gaussian_input`` for a block whose maps assume it (``act``).

The torch module that samples a block kind is registered beside it in ``sigprop.validate.modules``.

Example
-------
>>> from sigprop.theory import Dense
>>> [p.name for p in Dense.params()]
['activation', 'sw2', 'sb2']
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, replace
from typing import ClassVar, Sequence, Union

import sympy as sp

from .. import symbols as S
from ..activations import get_activation
from ..factors import gradient_correlation_factor, gsc_squared
from ..formula import Formula
from ..state import Backward, BlockMaps, PairState

Number = Union[int, float, sp.Expr]
PARAM_KINDS = ("activation", "variance", "real", "blocks")
_KEY = "sigprop_param"

#: grammar word -> block kind (a Block subclass)
BLOCKS: dict[str, type] = {}


@dataclass(frozen=True)
class Param:
    """A declared block parameter."""

    name: str
    kind: str
    default: object
    doc: str
    positional: bool

    @property
    def required(self) -> bool:
        return self.default is dataclasses.MISSING


def param(default=dataclasses.MISSING, *, kind: str, doc: str, positional: bool = False):
    """A dataclass field declaring one block parameter (see the module docstring)."""
    if kind not in PARAM_KINDS:
        raise ValueError(f"kind={kind!r} is not a parameter kind; allowed: {', '.join(PARAM_KINDS)}")
    return dataclasses.field(default=default, metadata={_KEY: (kind, doc, positional)})


def register_block(cls):
    """Class decorator: add a block kind to :data:`BLOCKS` (the grammar, CLI help and conformance tests read it)."""
    from ..activations import ACTIVATIONS
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", getattr(cls, "kind", "") or ""):
        raise ValueError(f"{cls.__name__}.kind={getattr(cls, 'kind', None)!r} is not allowed: a block kind is a "
                         "lowercase identifier")
    if cls.kind in ACTIVATIONS:
        raise ValueError(f"kind={cls.kind!r} is not allowed: it is the name of an activation")
    if BLOCKS.get(cls.kind, cls) is not cls:
        raise ValueError(f"kind={cls.kind!r} is taken by {BLOCKS[cls.kind].__name__}")
    if not dataclasses.is_dataclass(cls) or not cls.__dataclass_params__.frozen:
        raise ValueError(f"{cls.__name__} must be a frozen dataclass")
    if not (cls.summary and cls.example and (cls.maps is not Block.maps or cls.combine is not Block.combine)):
        raise ValueError(f"{cls.__name__} must define summary, example and maps() (or combine() for a block "
                         "with children)")
    BLOCKS[cls.kind] = cls
    return cls


# -- parameter values ------------------------------------------------------------------------------------
def check_number(name: str, value, nonnegative: bool) -> sp.Expr:
    """A block parameter as a SymPy number or expression; a ValueError naming it if it is not allowed."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        raise ValueError(f"{name}={value!r} is not allowed: give a finite real number or a SymPy symbol")
    try:
        v = sp.sympify(value, strict=True) if not isinstance(value, sp.Basic) else value
    except (sp.SympifyError, TypeError):
        raise ValueError(f"{name}={value!r} is not allowed: give a finite real number or a SymPy symbol") from None
    if v.is_number:
        if not (v.is_real and v.is_finite):
            raise ValueError(f"{name}={value!r} is not allowed: it must be a finite real number")
        if nonnegative and v < 0:
            raise ValueError(f"{name}={value!r} is not allowed: a variance must be >= 0")
    elif nonnegative and v.is_negative:
        raise ValueError(f"{name}={value!r} is not allowed: a variance must be >= 0")
    return v


def format_number(v: sp.Expr) -> str:
    """A parameter value as the grammar writes it."""
    if v.is_Integer:
        return str(int(v))
    if v.is_number:
        return repr(float(v))      # rationals, sqrt(2), …: the grammar reads decimals
    return str(v)


def describe_blocks(blocks: Sequence["Block"]) -> list[str]:
    """Grammar items of a block sequence, runs of equal blocks written ``N*block``."""
    items, i = [], 0
    while i < len(blocks):
        j = i
        while j < len(blocks) and blocks[j] == blocks[i]:
            j += 1
        d = blocks[i].describe()
        items.append(d if j - i == 1 else f"{j - i}*{d}")
        i = j
    return items


def flatten_blocks(items) -> tuple:
    """A tuple of blocks from a block, a network, or a list of them."""
    if isinstance(items, Block) or hasattr(items, "blocks"):
        items = [items]
    if isinstance(items, str):
        raise ValueError(f"{items!r} is a string: read an architecture with sigprop.theory.parse({items!r})")
    out = []
    for it in items:
        if isinstance(it, Block):
            out.append(it)
        elif hasattr(it, "blocks") and not isinstance(it, type):
            out.extend(it.blocks)
        elif isinstance(it, str):
            raise ValueError(f"{it!r} is a string: read an architecture with sigprop.theory.parse({it!r})")
        else:
            raise ValueError(f"{it!r} is not a block; expected a block ({', '.join(sorted(BLOCKS))}) or a Network")
    return tuple(out)


def is_linear(act) -> bool:
    """φ(x) = c·x: the output of a linear map of Gaussian coordinates is Gaussian."""
    from ..symbols import x
    return act.phi.is_polynomial(x) and sp.degree(act.phi, x) == 1 and act.phi.subs(x, 0) == 0


def check_gaussian_inputs(blocks: Sequence["Block"], gaussian: bool = True, where: str = "block",
                          previous: str = "the network input") -> bool:
    """Walk ``blocks`` from an input whose coordinates are (``gaussian``) Gaussian; a block that needs a Gaussian
    input and does not get one raises ValueError naming it. Returns whether the output is Gaussian."""
    for i, block in enumerate(blocks, 1):
        if block.needs_gaussian_input and not gaussian:
            raise ValueError(f"{where} {i} ({block.describe()}) needs Gaussian input coordinates, but its input "
                             f"({previous}) is not Gaussian: put a dense(linear, ...) before it")
        inner = (check_gaussian_inputs(block.children, gaussian, f"{where} {i}: branch block", previous)
                 if block.children else None)
        gaussian = block.gaussian_out(gaussian, inner)
        previous = f"the output of {block.describe()}"
    return gaussian


def compose(blocks: Sequence["Block"], state: PairState) -> BlockMaps:
    """Apply blocks in sequence; backward factors multiply (gradient independence). ``pre`` is the last one's."""
    chi, pre = Backward.identity(), None
    for block in blocks:
        maps = block.forward(state)
        state, chi = maps.out, chi.then(maps.chi)
        pre = maps.pre if maps.pre is not None else pre
    return BlockMaps(state, pre, chi)


# -- the base class --------------------------------------------------------------------------------------------
class Block:
    """Base class of block kinds (see the module docstring for what a kind declares)."""

    kind: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    example: ClassVar[str] = ""
    decorrelates: ClassVar[bool] = False
    needs_gaussian_input: ClassVar[bool] = False
    gsc_source: ClassVar[str] = ("GSC: Philipp, Song & Carbonell 2018; one-block mean-field form derived "
                                 "(docs/theory.md)")

    # -- declarations --------------------------------------------------------------------------------------
    @classmethod
    def params(cls) -> tuple[Param, ...]:
        out = []
        for f in dataclasses.fields(cls):
            if _KEY in f.metadata:
                kind, doc, positional = f.metadata[_KEY]
                out.append(Param(f.name, kind, f.default, doc, positional))
        return tuple(out)

    @property
    def source(self) -> str:
        """The papers this block's maps come from."""
        raise NotImplementedError

    @property
    def degree(self):
        """d with block(λx) = λ^d block(x) for every λ > 0, or None."""
        raise NotImplementedError

    @property
    def pre_degree(self):
        """d with pre-activation(λx) = λ^d pre-activation(x) for λ > 0, or None. By default 1 for a block of degree
        1 (every block inside it then scales linearly, so its pre-activations do too); a leaf with a
        pre-activation may know better (a bias-free dense layer's h = Wx scales linearly whatever φ does)."""
        return 1 if self.degree == 1 else None

    def maps(self, s: PairState) -> BlockMaps:
        """A leaf block's maps on the (symbolic) state."""
        raise NotImplementedError

    def combine(self, s: PairState, children: BlockMaps) -> BlockMaps:
        """A block with children: its maps given its input state and its children's composed maps."""
        raise NotImplementedError

    def check(self) -> None:
        """Constraints between parameters (raise ValueError); called after each parameter was checked."""

    def gaussian_out(self, gaussian_in: bool, children_out=None) -> bool:
        """Whether the output's coordinates are Gaussian given whether the input's are (``children_out``: the
        same for the block's children, run on its input). By default they are not."""
        return False

    # -- what follows from the declarations ----------------------------------------------------------------
    def __post_init__(self):
        for p in self.params():
            value = getattr(self, p.name)
            if p.kind == "activation":
                value = get_activation(value)
            elif p.kind == "blocks":
                value = flatten_blocks(value)
                if not value:
                    raise ValueError(f"{p.name}=() is not allowed: {self.kind}() needs at least one block")
            else:
                value = check_number(p.name, value, nonnegative=p.kind == "variance")
            object.__setattr__(self, p.name, value)
        self.check()

    @property
    def children(self) -> tuple:
        """The child blocks (a residual branch), in order; () for a leaf."""
        return tuple(b for p in self.params() if p.kind == "blocks" for b in getattr(self, p.name))

    def number_params(self) -> dict:
        """Name → value of the numeric (variance and real) parameters of this block itself."""
        return {p.name: getattr(self, p.name) for p in self.params() if p.kind in ("variance", "real")}

    @property
    def free_symbols(self) -> set:
        """SymPy symbols among the parameters, children included."""
        free = set().union(*(sp.sympify(v).free_symbols for v in self.number_params().values()))
        free = free.union(*(getattr(self, p.name).free_symbols for p in self.params() if p.kind == "activation"))
        return free.union(*(b.free_symbols for b in self.children))

    def subs(self, mapping: dict) -> "Block":
        """This block with ``mapping`` (symbol → value) applied to its parameters and its children's."""
        changes = {name: sp.sympify(v).subs(mapping) for name, v in self.number_params().items()}
        for p in self.params():
            if p.kind == "activation":
                changes[p.name] = getattr(self, p.name).subs(mapping)
            elif p.kind == "blocks":
                changes[p.name] = tuple(b.subs(mapping) for b in getattr(self, p.name))
        return replace(self, **changes)

    def template(self):
        """(this block with each numeric parameter replaced by a symbol, those symbols): the compiled form's
        arguments, so one compiled function serves every value of the parameters."""
        symbols = {p.name: sp.Symbol(f"param_{p.name}", nonnegative=True) if p.kind == "variance"
                   else sp.Symbol(f"param_{p.name}", real=True)
                   for p in self.params() if p.kind in ("variance", "real")}
        return replace(self, **symbols), tuple(symbols.values())

    def signature(self) -> tuple:
        """What the compiled form depends on besides the numeric parameters: kind, activation, children."""
        parts = [type(self)]
        for p in self.params():
            if p.kind == "activation":
                parts.append(getattr(self, p.name))
            elif p.kind == "blocks":
                parts.append(tuple(b.signature() for b in getattr(self, p.name)))
        return tuple(parts)

    def forward(self, s: PairState) -> BlockMaps:
        """The block's maps on the state ``s``."""
        if any(p.kind == "blocks" for p in self.params()):
            return self.combine(s, compose(self.children, s))
        return self.maps(s)

    def describe(self) -> str:
        """The block in sigprop's grammar (``sigprop.theory.parse`` reads it back)."""
        args = []
        for p in self.params():
            value = getattr(self, p.name)
            if p.kind == "activation":
                args.append(value.describe())
            elif p.kind == "blocks":
                args.extend(describe_blocks(value))
            else:
                args.append(f"{p.name}={format_number(value)}")
        return f"{self.kind}({','.join(args)})"

    @property
    def depth(self) -> int:
        return 1

    # Repetition: ``50 * block`` is a Network of 50 copies.
    def __rmul__(self, n: int):
        from ..network import Network
        return Network.repeat(self, n)

    __mul__ = __rmul__

    def __add__(self, other):
        from ..network import Network
        return Network.of(self) + Network.of(other)

    def __str__(self):
        return self.describe()

    # -- formulas for the REPL -----------------------------------------------------------------------------
    def _single(self) -> BlockMaps:
        return self.forward(PairState.single())

    def _pair(self) -> BlockMaps:
        return self.forward(PairState.symbolic())

    def preactivation_map(self) -> Formula:
        """q of the (last) dense layer as a function of the block input's p (and m)."""
        pre = self._single().pre
        if pre is None:
            raise ValueError(f"block {self.describe()} has no pre-activation")
        return Formula(sp.Symbol("q'"), pre.q_a, self.source, "pre-activation")

    def length_map(self) -> Formula:
        """p_out = f(p, m): mean square of the block output."""
        return Formula(sp.Symbol("p'"), sp.simplify(self._single().out.p_a), self.source, "length map")

    def mean_map(self) -> Formula:
        """m_out = f(p, m): mean over units of the block output (needed by residual cross terms)."""
        return Formula(sp.Symbol("m'"), sp.simplify(self._single().out.m_a), self.source, "mean map")

    def covariance_map(self) -> Formula:
        """p_ab,out = f(p_a, p_b, p_ab, m_a, m_b): cross-input covariance of the block output."""
        return Formula(sp.Symbol("p_ab'"), self._pair().out.p_ab, self.source, "covariance map")

    def gradient_map(self) -> Formula:
        """δ_in = χ δ_out: backward map of the gradient mean square ‖Jᵀv‖²/n."""
        chi = sp.simplify(self._single().chi.chi_a)
        return Formula(sp.Symbol("delta_in"), chi * S.delta, self.source, "gradient map")

    def gradient_covariance_map(self) -> Formula:
        """G_ab,in = χ_ab G_ab,out: backward map of the cross-input gradient covariance."""
        return Formula(sp.Symbol("G_ab,in"), self._pair().chi.chi_ab * S.G_ab, self.source,
                       "gradient covariance map")

    def gradient_correlation_map(self) -> Formula:
        """ρ_in = ρ_out χ_ab/√(χ_a χ_b): the cross-input gradient correlation through the block."""
        chi = self._pair().chi
        return Formula(sp.Symbol("rho_in"),
                       gradient_correlation_factor(chi.chi_a, chi.chi_b, chi.chi_ab) * sp.Symbol("rho_out"),
                       self.source, "gradient correlation map")

    def gsc_factor(self) -> Formula:
        """GSC² of the block, χ · p_in / p_out (unsquared GSC multiplies across blocks)."""
        b = self._single()
        rhs = sp.simplify(gsc_squared(b.chi.chi_a, S.p, b.out.p_a))
        return Formula(S.Symbol("GSC^2"), rhs, f"{self.gsc_source}; {self.source}", "GSC factor")
