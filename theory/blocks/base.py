"""The block protocol: what a block kind declares once, and what follows from the declaration.

A block kind is a frozen dataclass deriving from :class:`Block`, registered with :func:`register_block`. It
declares

- ``kind``: its word in the architecture grammar, ``summary``: one line saying what it computes, and
  ``example``: a small network that uses it (the conformance tests predict and sample it);
- its parameters, as dataclass fields made with :func:`param` (kind ``activation``, ``variance`` (>= 0),
  ``positive`` (> 0), ``real``, ``choice`` (one of declared names, e.g. an initialization preset) or ``blocks``
  for a child sequence such as a residual branch). The declaration drives checking, ``describe()``, the grammar,
  ``subs``, free symbols, and the arguments of the function ``numerics`` compiles. A numeric parameter declared
  ``preset=True`` may be implied by a choice (``dense(relu,init=he)`` sets σ_w² = 2): the block's
  :meth:`Block.preset` gives the implied value, and a value given as well must agree with it;
- ``width_ratio``: n_out/n_in of the block (1 unless it changes the width; ``dense(…, width=r)``);
- its maps on the named state (:mod:`sigprop.theory.state`): ``maps(state)`` for a leaf, or
  ``combine(state, *sequence_maps)`` for a block with children: one composed :class:`BlockMaps` per ``blocks``
  parameter, each sequence run on the block's input (an empty optional sequence composes to the identity);
- ``degree``: d with block(λx) = λ^d block(x) for λ > 0 (1 for relu or linear without bias, 0 for a
  normalization) or None, and ``pre_degree``, the same for its pre-activation; ``numerics`` iterates in log
  space by them;
- ``deterministic``: False for a block whose output for one input is random given the weights (dropout's
  masks): two identical inputs then do not stay identical;
- ``decorrelates``: whether its output is a fresh zero-mean random map of its input, so that it is uncorrelated
  with the input apart from first moments (what a residual branch needs);
- ``gaussian_out(gaussian_in, children_out)``: whether the coordinates of its output are Gaussian (a
  ``dense(linear)`` output is), and ``needs_gaussian_input`` for a block whose maps assume it (``act``);
- ``pointwise`` for φ applied coordinate by coordinate (``act``), and ``joins_next_pointwise`` for a block that
  ``numerics`` evaluates together with a pointwise block right after it (training-mode batchnorm).

The torch module that samples a block kind is registered beside it in ``sigprop.validate.modules``.

Example
-------
>>> from sigprop.theory import Dense
>>> [p.name for p in Dense.params()]
['activation', 'sw2', 'sb2', 'width', 'init', 'weights']
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import replace
from typing import ClassVar, Sequence, Union

import sympy as sp

from .. import symbols as S
from ..activations import get_activation
from ..factors import gradient_correlation_factor, gsc_squared
from ..formula import Formula
from ..state import BlockMaps, Cross, PairState, TangentKernel
from .sequence import compose, compose_cross
from .params import _KEY, NUMERIC_KINDS, Param, agrees, check_number, format_number

Number = Union[int, float, sp.Expr]

#: grammar word -> block kind (a Block subclass)
BLOCKS: dict[str, type] = {}


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


def describe_blocks(blocks: Sequence["Block"], max_period: int = 16) -> list[str]:
    """Grammar items of a block sequence: runs of equal blocks written ``N*block``, runs of an equal group of up
    to ``max_period`` blocks ``N*(a,b)`` (the longest coverage wins, then the shortest group)."""
    items, i, n = [], 0, len(blocks)
    while i < n:
        best_k, best_reps = 1, 1
        for k in range(1, min(max_period, (n - i) // 2) + 1):
            reps = 1
            while i + (reps + 1) * k <= n and blocks[i + reps * k:i + (reps + 1) * k] == blocks[i:i + k]:
                reps += 1
            if reps > 1 and k * reps > best_k * best_reps:
                best_k, best_reps = k, reps
        group = blocks[i:i + best_k]
        if best_k == 1:
            d = group[0].describe()
            items.append(d if best_reps == 1 else f"{best_reps}*{d}")
        else:
            items.append(f"{best_reps}*({','.join(describe_blocks(group, max_period))})")
        i += best_k * best_reps
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


def scaled_width(block, ratio, n_in: int) -> int:
    """The units of a block of width ratio ``ratio`` at input width ``n_in``: round(ratio · n_in), or a ValueError
    when that leaves no unit (sampled networks and finite-width predictions both read it)."""
    n = round(float(ratio) * n_in)
    if n < 1:
        raise ValueError(f"{block.describe()} at input width {n_in}: width={float(ratio):g} leaves "
                         f"round({float(ratio):g}*{n_in}) = {n} units; use a larger width")
    return n


def is_linear(act) -> bool:
    """φ(x) = c·x: the output of a linear map of Gaussian coordinates is Gaussian."""
    from ..symbols import x
    return act.phi.is_polynomial(x) and sp.degree(act.phi, x) == 1 and act.phi.subs(x, 0) == 0


# -- the base class --------------------------------------------------------------------------------------------
class Block:
    """Base class of block kinds (see the module docstring for what a kind declares)."""

    kind: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    example: ClassVar[str] = ""
    decorrelates: ClassVar[bool] = False
    needs_gaussian_input: ClassVar[bool] = False
    #: the same input always gives the same output (so identical inputs stay identical); dropout's masks do not
    deterministic: ClassVar[bool] = True
    #: y = φ(x) coordinate by coordinate, no weights (``act``): the law of one coordinate of x decides its maps
    pointwise: ClassVar[bool] = False
    #: a pointwise block right after this one is evaluated jointly with it (batchnorm at a finite batch)
    joins_next_pointwise: ClassVar[bool] = False
    #: choice parameters that change the maps themselves (kept in the compiled template and its signature); the
    #: others only imply numbers (presets), which the template holds as symbols
    structural_choices: ClassVar[tuple] = ()
    gsc_source: ClassVar[str] = ("GSC: Philipp, Song & Carbonell 2018; one-block mean-field form derived "
                                 "(docs/theory.md)")

    # -- declarations --------------------------------------------------------------------------------------
    @classmethod
    def params(cls) -> tuple[Param, ...]:
        out = []
        for f in dataclasses.fields(cls):
            if _KEY in f.metadata:
                kind, doc, positional, default, choices, preset, hide = f.metadata[_KEY]
                out.append(Param(f.name, kind, default, doc, positional, choices, preset, hide))
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

    def tangent(self, s: PairState, theta: TangentKernel) -> TangentKernel:
        """The output's neural tangent kernel given the input's ``theta`` (per unit, NTK parametrization): what
        the parameters before the block contribute, carried through its Jacobian, plus its own parameters'
        share. Blocks that derive it override this."""
        raise ValueError(f"the neural tangent kernel of {self.kind} blocks is not derived (available for: "
                         f"{', '.join(sorted(k for k, c in BLOCKS.items() if 'tangent' in vars(c)))})")

    def combine(self, s: PairState, *sequences: BlockMaps) -> BlockMaps:
        """A block with children: its maps given its input state and each child sequence's composed maps."""
        raise NotImplementedError

    def cross(self, s: PairState, c: Cross, out: PairState):
        """A leaf's map of cross moments (:mod:`.sequence`): those of its output with the reference, given its input
        state ``s``, the input's cross moments ``c`` and its output state ``out``; None if it cannot say. A block
        that decorrelates leaves first moments only."""
        return Cross.first_moments(c.m_a, c.m_b, out) if self.decorrelates else None

    def combine_cross(self, c: Cross, *sequences: Cross):
        """A block with children: its cross moments given each child sequence's (each run from ``c``)."""
        return None

    @property
    def carries_cross(self) -> bool:
        """Whether :meth:`cross` (or :meth:`combine_cross`) gives the cross moments."""
        return self.decorrelates

    @property
    def uses_cross(self) -> bool:
        """Whether :meth:`combine` needs ⟨x, F(x)⟩ of its first child sequence F (keyword ``cross``)."""
        return False

    def check(self) -> None:
        """Constraints between parameters (raise ValueError); called after each parameter was checked."""

    def preset(self, name: str):
        """The value the block's choices imply for its ``preset`` parameter ``name`` (e.g. σ_w² of an
        initialization), or None when no choice sets it. Called after the other parameters were checked."""
        return None

    @property
    def width_ratio(self):
        """n_out/n_in: the width of the block's output relative to its input's (1 unless the block says)."""
        return sp.Integer(1)

    def gaussian_out(self, gaussian_in: bool, children_out=None) -> bool:
        """Whether the output's coordinates are Gaussian given whether the input's are (``children_out``: the
        same for each child sequence, run on the block's input). By default they are not."""
        return False

    # -- what follows from the declarations ----------------------------------------------------------------
    def __post_init__(self):
        presets = []
        for p in self.params():
            value = getattr(self, p.name)
            if p.preset:
                presets.append(p)
                if value is None:
                    continue
            if p.kind == "activation":
                value = get_activation(value)
            elif p.kind == "blocks":
                value = flatten_blocks(value if value is not None else ())
                if not value and p.required:
                    raise ValueError(f"{p.name}=() is not allowed: {self.kind}() needs at least one block")
            elif p.kind == "choice":
                if value is not None and value not in p.choices:
                    raise ValueError(f"{p.name}={value!r} is not allowed; allowed: {', '.join(p.choices)}")
            else:
                value = check_number(p.name, value, nonnegative=p.kind == "variance", positive=p.kind == "positive",
                                     size=p.kind == "size")
            object.__setattr__(self, p.name, value)
        for p in presets:
            given, implied = getattr(self, p.name), self.preset(p.name)
            if implied is not None:
                implied = sp.sympify(implied)
                if given is not None and not agrees(given, implied):
                    raise ValueError(f"{p.name}={format_number(given)} contradicts the preset chosen "
                                     f"({self._choices_text()}), which sets {p.name}={format_number(implied)}: "
                                     f"give one or the other")
            value = implied if implied is not None else given if given is not None else p.default   # exact
            object.__setattr__(self, p.name, check_number(p.name, value, nonnegative=p.kind == "variance",
                                                          positive=p.kind == "positive", size=p.kind == "size"))
        self.check()

    def _choices_text(self) -> str:
        return ", ".join(f"{p.name}={getattr(self, p.name)}" for p in self.params()
                         if p.kind == "choice" and getattr(self, p.name) is not None)

    @property
    def sequences(self) -> tuple:
        """The child sequences, one per ``blocks`` parameter in declaration order (a residual's branch and skip);
        () for a leaf."""
        return tuple(getattr(self, p.name) for p in self.params() if p.kind == "blocks")

    @property
    def is_deterministic(self) -> bool:
        """Whether this block and every block inside it are ``deterministic``."""
        return self.deterministic and all(b.is_deterministic for b in self.children)

    @property
    def children(self) -> tuple:
        """All child blocks (every sequence, in order); () for a leaf."""
        return tuple(b for seq in self.sequences for b in seq)

    def number_params(self) -> dict:
        """Name → value of the numeric (variance and real) parameters of this block itself."""
        return {p.name: getattr(self, p.name) for p in self.params() if p.kind in NUMERIC_KINDS}

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
        assumptions = {"variance": {"nonnegative": True}, "positive": {"positive": True}, "real": {"real": True},
                       "size": {"positive": True}}
        symbols = {p.name: sp.Symbol(f"param_{p.name}", **assumptions[p.kind])
                   for p in self.params() if p.kind in NUMERIC_KINDS}
        choices = {p.name: None for p in self.params()                   # presets are in the numbers now
                   if p.kind == "choice" and p.name not in self.structural_choices}
        return replace(self, **symbols, **choices), tuple(symbols.values())

    def signature(self) -> tuple:
        """What the compiled form depends on besides the numeric parameters: kind, activation, children, and the
        choices in ``structural_choices``."""
        parts = [type(self)]
        for p in self.params():
            if p.kind == "activation":
                parts.append(getattr(self, p.name))
            elif p.kind == "blocks":
                parts.append(tuple(b.signature() for b in getattr(self, p.name)))
            elif p.name in self.structural_choices:
                parts.append(getattr(self, p.name))
        return tuple(parts)

    def forward(self, s: PairState) -> BlockMaps:
        """The block's maps on the state ``s``."""
        if any(p.kind == "blocks" for p in self.params()):
            maps = [compose(seq, s) for seq in self.sequences]
            if self.uses_cross:
                return self.combine(s, *maps, cross=compose_cross(self.sequences[0], s, Cross.identity(s)))
            return self.combine(s, *maps)
        return self.maps(s)

    def describe(self) -> str:
        """The block in sigprop's grammar (``sigprop.theory.parse`` reads it back)."""
        args = []
        for p in self.params():
            value = getattr(self, p.name)
            if p.hide_default and (value == p.default or value is None):
                continue
            if p.kind == "activation":
                args.append(value.describe())
            elif p.kind == "blocks" and p.positional:
                args.extend(describe_blocks(value))
            elif p.kind == "blocks":
                items = describe_blocks(value)
                args.append(f"{p.name}={items[0]}" if len(items) == 1 else f"{p.name}=({','.join(items)})")
            elif p.kind == "choice":
                args.append(f"{p.name}={value}")
            else:
                args.append(f"{p.name}={format_number(value)}")
        return f"{self.kind}({','.join(args)})" if args else self.kind      # every parameter at a hidden default

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
        """G_ab,in = χ_ab G_ab,out (+ ν (G_aa + G_bb)/2 where the block mixes the batch's gradients, as a
        training-mode batchnorm does): backward map of the cross-input gradient covariance."""
        chi = self._pair().chi
        return Formula(sp.Symbol("G_ab,in"), sp.simplify(chi.apply(S.G_aa, S.G_bb, S.G_ab)[2]), self.source,
                       "gradient covariance map")

    def gradient_correlation_map(self) -> Formula:
        """ρ_in = ρ_out χ_ab/√(χ_a χ_b): the cross-input gradient correlation through the block. Where the block
        mixes the batch's gradients (a training-mode batchnorm), ρ_in = (χ_ab ρ_out + ν)/√((χ_a + μ_a ρ_out)(χ_b +
        μ_b ρ_out)), the two inputs members of an exchangeable batch (p_a = p_b, G_aa = G_bb) and ρ_out < 1 (at 1
        the batchnorm's gradient vanishes: 0/0)."""
        chi, rho = self._pair().chi, sp.Symbol("rho_out")
        if not chi.mixes:
            return Formula(sp.Symbol("rho_in"), gradient_correlation_factor(chi.chi_a, chi.chi_b, chi.chi_ab) * rho,
                           self.source, "gradient correlation map")
        g_aa, g_bb, g_ab = chi.apply(1, 1, rho)
        # 1 − ρ_out > 0 and p_a − p_ab > 0 (distinct inputs), so that √((1 − ρ)²) = 1 − ρ and |p_a − p_ab| = p_a − p_ab
        below_one, spread = sp.symbols("_below_one _spread", positive=True)
        exchangeable = {S.p_b: S.p_a, S.m_b: S.m_a, S.p_ab: S.p_a - spread, rho: 1 - below_one}
        rhs = sp.simplify((g_ab / sp.sqrt(g_aa * g_bb)).subs(exchangeable))
        return Formula(sp.Symbol("rho_in"), rhs.subs({below_one: 1 - rho, spread: S.p_a - S.p_ab}), self.source,
                       "gradient correlation map (exchangeable batch: p_a = p_b, G_aa = G_bb; rho_out < 1)")

    def gsc_factor(self) -> Formula:
        """GSC² of the block, χ · p_in / p_out (unsquared GSC multiplies across blocks). Where the block mixes the
        batch's gradients (a training-mode batchnorm), it holds for probes independent across the batch (G_ab = 0
        at the block's output), the GSC of Philipp, Song & Carbonell 2018."""
        b = self._single()
        rhs = sp.simplify(gsc_squared(b.chi.chi_a, S.p, b.out.p_a, self.width_ratio))
        name = "GSC factor" + (" (G_ab = 0 at the output)" if self._pair().chi.mixes else "")
        return Formula(S.Symbol("GSC^2"), rhs, f"{self.gsc_source}; {self.source}", name)
