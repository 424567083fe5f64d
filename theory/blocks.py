"""The architecture description: blocks, their one-step mean-field maps, and networks.

A network is a sequence of blocks. Every block maps the mean-field *state* of a pair of inputs a, b at its
input representation x (:class:`PairState`: ‖x_a‖²/n, ‖x_b‖²/n, ⟨x_a, x_b⟩/n and the unit means Σᵢxᵢ/n) to
the state at its output, and returns the per-input factors of the backward pass (:class:`BlockMaps`):
for the gradient probe g = Jᵀv, ‖g_in‖²/n = χ · ‖g_out‖²/n and ⟨g_in,a, g_in,b⟩/n = χ_ab ⟨g_out,a, g_out,b⟩/n
under the gradient independence assumption (THEORY.md §1, §5). The same description is compiled to numbers
by ``numerics`` and built into a torch network by ``validate``.

Parameters may be numbers or SymPy symbols. Example
-------------------------------------------------
>>> import sympy as sp
>>> from theory import Dense, Residual, relu, tanh
>>> Dense(relu, sw2=2).length_map().rhs
p
>>> net = 50 * Dense(tanh, sw2=2.5, sb2=0.05)
>>> net.depth
50
>>> Residual([Dense(tanh)], beta=sp.Symbol("beta")).describe()
'residual(dense(tanh,sw2=1,sb2=0),alpha=1,beta=beta)'
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable, Sequence, Union

import sympy as sp

from . import symbols as S
from .activations import Activation, get_activation
from .formula import Formula

Number = Union[int, float, sp.Expr]


# -- states and maps --------------------------------------------------------------------------------
@dataclass(frozen=True)
class PairState:
    """Mean-field state of two inputs at one representation (per-unit averages over its n units)."""

    p_a: sp.Expr
    p_b: sp.Expr
    p_ab: sp.Expr
    m_a: sp.Expr
    m_b: sp.Expr

    FIELDS = ("p_a", "p_b", "p_ab", "m_a", "m_b")

    @classmethod
    def symbolic(cls) -> "PairState":
        return cls(S.p_a, S.p_b, S.p_ab, S.m_a, S.m_b)

    @classmethod
    def single(cls) -> "PairState":
        """One input (b = a): p, m."""
        return cls(S.p, S.p, S.p, S.m, S.m)

    def as_tuple(self):
        return tuple(getattr(self, f) for f in self.FIELDS)


@dataclass(frozen=True)
class BlockMaps:
    """What a block does to a pair state.

    ``out``: state at the block output. ``pre``: (q_a, q_b, q_ab) of the pre-activation of the last dense
    layer the block applies. ``chi``: (χ_a, χ_b, χ_ab), the backward factors of ‖g‖²/n per input and of
    the cross-input gradient covariance, from block output to block input.
    """

    out: PairState
    pre: tuple
    chi: tuple


def gsc_squared(chi, p_in, p_out):
    """GSC² of one block, χ p_in/p_out (THEORY.md §4, equal widths): ‖J‖²_qm = χ times the downstream value, and
    the norms' ratio is p_in/p_out. SymPy expressions or numbers (numpy arrays too)."""
    return chi * p_in / p_out


def gradient_correlation_factor(chi_a, chi_b, chi_ab):
    """Factor of the cross-input gradient correlation through one block, χ_ab/√(χ_a χ_b) (THEORY.md §5)."""
    if any(isinstance(v, sp.Basic) for v in (chi_a, chi_b, chi_ab)):
        return chi_ab / sp.sqrt(chi_a * chi_b)
    return chi_ab / (chi_a * chi_b) ** 0.5


def compose(blocks: Sequence["Block"], state: PairState) -> BlockMaps:
    """Apply blocks in sequence; backward factors multiply (gradient independence)."""
    chi = (sp.Integer(1),) * 3
    maps = None
    for block in blocks:
        maps = block.forward(state)
        state = maps.out
        chi = tuple(c0 * c1 for c0, c1 in zip(chi, maps.chi))
    return BlockMaps(state, maps.pre, chi)


# -- parameter checks ---------------------------------------------------------------------------------
def _param(name: str, value, nonnegative: bool) -> sp.Expr:
    if isinstance(value, bool) or value is None:
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
    elif v.free_symbols and nonnegative and v.is_negative:
        raise ValueError(f"{name}={value!r} is not allowed: a variance must be >= 0")
    return v


def _fmt(v: sp.Expr) -> str:
    if v.is_Integer:
        return str(int(v))
    if v.is_number:
        return repr(float(v))      # rationals, sqrt(2), …: the grammar reads decimals
    return str(v)


# -- blocks ---------------------------------------------------------------------------------------------
class Block:
    """Base class. A subclass defines :meth:`forward` (symbolic maps), :attr:`homogeneous` and :meth:`describe`."""

    gsc_source = "GSC: Philipp, Song & Carbonell 2018; one-block mean-field form derived (THEORY.md §4)"

    def forward(self, s: PairState) -> BlockMaps:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def homogeneous(self) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def depth(self) -> int:
        return 1

    # Repetition: ``50 * block`` is a Network of 50 copies.
    def __rmul__(self, n: int) -> "Network":
        return Network.repeat(self, n)

    __mul__ = __rmul__

    def __add__(self, other) -> "Network":
        return Network.of(self) + Network.of(other)

    def __str__(self):
        return self.describe()

    # -- formulas for the REPL ---------------------------------------------------------------------
    def _single(self) -> BlockMaps:
        return self.forward(PairState.single())

    def _pair(self) -> BlockMaps:
        return self.forward(PairState.symbolic())

    def preactivation_map(self) -> Formula:
        """q of the (last) dense layer as a function of the block input's p (and m)."""
        return Formula(sp.Symbol("q'"), self._single().pre[0], self.source, "pre-activation")

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
        chi = sp.simplify(self._single().chi[0])
        return Formula(sp.Symbol("delta_in"), chi * S.delta, self.source, "gradient map")

    def gradient_covariance_map(self) -> Formula:
        """G_ab,in = χ_ab G_ab,out: backward map of the cross-input gradient covariance."""
        return Formula(sp.Symbol("G_ab,in"), self._pair().chi[2] * S.G_ab, self.source,
                       "gradient covariance map")

    def gradient_correlation_map(self) -> Formula:
        """ρ_in = ρ_out χ_ab/√(χ_a χ_b): the cross-input gradient correlation through the block."""
        b = self._pair()
        return Formula(sp.Symbol("rho_in"), gradient_correlation_factor(*b.chi) * sp.Symbol("rho_out"),
                       self.source, "gradient correlation map")

    def gsc_factor(self) -> Formula:
        """GSC² of the block, χ · p_in / p_out (unsquared GSC multiplies across blocks)."""
        b = self._single()
        rhs = sp.simplify(gsc_squared(b.chi[0], S.p, b.out.p_a))
        return Formula(S.Symbol("GSC^2"), rhs, f"{self.gsc_source}; {self.source}", "GSC factor")


@dataclass(frozen=True)
class Dense(Block):
    """x ↦ φ(Wx + b), W_ij ~ N(0, σ_w²/n), b_i ~ N(0, σ_b²) (THEORY.md §1-§2).

    Example
    -------
    >>> from theory import Dense, relu
    >>> Dense(relu, sw2=2).gsc_factor().rhs
    1
    """

    activation: Activation
    sw2: Number = 1
    sb2: Number = 0

    def __post_init__(self):
        object.__setattr__(self, "activation", get_activation(self.activation))
        object.__setattr__(self, "sw2", _param("sw2", self.sw2, nonnegative=True))
        object.__setattr__(self, "sb2", _param("sb2", self.sb2, nonnegative=True))

    @property
    def source(self) -> str:
        return ("Poole et al. 2016 (length and covariance maps); Schoenholz et al. 2017 (backward maps, "
                f"gradient independence); expectations: {self.activation.source}")

    @property
    def homogeneous(self) -> bool:
        return bool(self.activation.positively_homogeneous and self.sb2 == 0)

    def describe(self) -> str:
        return f"dense({self.activation.name},sw2={_fmt(self.sw2)},sb2={_fmt(self.sb2)})"

    def forward(self, s: PairState) -> BlockMaps:
        act, sw2, sb2 = self.activation, self.sw2, self.sb2
        # h = Wx + b has zero mean per unit; its mean square uses the uncentered ‖x‖²/n.
        qa, qb, qab = sw2 * s.p_a + sb2, sw2 * s.p_b + sb2, sw2 * s.p_ab + sb2
        out = PairState(act.second_moment(qa), act.second_moment(qb), act.kernel(qa, qb, qab),
                        act.mean(qa), act.mean(qb))
        # g_in = Wᵀ(φ'(h) ⊙ g_out): ‖g_in‖²/n = σ_w² E[φ'(h)²] ‖g_out‖²/n (equal widths).
        chi = (sw2 * act.dsecond_moment(qa), sw2 * act.dsecond_moment(qb), sw2 * act.dkernel(qa, qb, qab))
        return BlockMaps(out, (qa, qb, qab), chi)


@dataclass(frozen=True)
class Residual(Block):
    """y = α x + β F(x), F a sequence of blocks (the branch).

    The branch must contain a :class:`Dense` at its top level: its output is then built from fresh random
    weights, so ⟨x, F(x)⟩/n = m_x m_F (first moments; the cross term is kept, not dropped) and the cross term
    of the backward pass vanishes (zero-mean Wᵀ; Yang & Schoenholz 2017, THEORY.md §4, §6).

    Example
    -------
    >>> from theory import Residual, Dense, relu
    >>> print(Residual([Dense(relu, sw2=2)]).length_map().rhs)
    2*m*sqrt(p)/sqrt(pi) + 2*p
    """

    branch: tuple
    alpha: Number = 1
    beta: Number = 1

    def __post_init__(self):
        branch = _flatten(self.branch)
        if not branch:
            raise ValueError("branch=() is not allowed: a residual branch needs at least one block")
        if not any(isinstance(b, Dense) for b in branch):
            raise ValueError(f"branch={[b.describe() for b in branch]} is not allowed: a residual branch needs a "
                             "dense layer at its top level (its fresh weights make the branch uncorrelated with "
                             "the skip apart from first moments)")
        object.__setattr__(self, "branch", branch)
        object.__setattr__(self, "alpha", _param("alpha", self.alpha, nonnegative=False))
        object.__setattr__(self, "beta", _param("beta", self.beta, nonnegative=False))

    @property
    def source(self) -> str:
        inner = "; ".join(sorted({b.source for b in self.branch}))
        return ("Yang & Schoenholz 2017 (residual mean field); first-moment cross term and Pythagorean "
                f"dilution: Philipp, Song & Carbonell 2018, THEORY.md §4. Branch: {inner}")

    @property
    def homogeneous(self) -> bool:
        return all(b.homogeneous for b in self.branch)

    @property
    def depth(self) -> int:
        return 1

    def describe(self) -> str:
        inner = ",".join(Network(self.branch).describe_items())
        return f"residual({inner},alpha={_fmt(self.alpha)},beta={_fmt(self.beta)})"

    def forward(self, s: PairState) -> BlockMaps:
        return self.combine(s, compose(self.branch, s))

    def combine(self, s: PairState, f: BlockMaps) -> BlockMaps:
        """The skip sum, given the branch's maps ``f`` at input ``s`` (written once; numerics reuses it)."""
        a, b, F = self.alpha, self.beta, f.out
        out = PairState(
            a**2 * s.p_a + b**2 * F.p_a + 2 * a * b * s.m_a * F.m_a,
            a**2 * s.p_b + b**2 * F.p_b + 2 * a * b * s.m_b * F.m_b,
            a**2 * s.p_ab + b**2 * F.p_ab + a * b * (s.m_a * F.m_b + F.m_a * s.m_b),
            a * s.m_a + b * F.m_a,
            a * s.m_b + b * F.m_b,
        )
        chi = tuple(a**2 + b**2 * cf for cf in f.chi)
        return BlockMaps(out, f.pre, chi)


def _flatten(items) -> tuple:
    if isinstance(items, (Block, Network)):
        items = [items]
    out = []
    for it in items:
        if isinstance(it, Network):
            out.extend(it.blocks)
        elif isinstance(it, Block):
            out.append(it)
        else:
            raise ValueError(f"{it!r} is not a block; expected Dense, Residual or a Network of them")
    return tuple(out)


@dataclass(frozen=True)
class Network:
    """A sequence of blocks; block l (1-based) maps representation x^{l-1} to x^l.

    Example
    -------
    >>> from theory import Dense, Network, relu, linear
    >>> net = 3 * Dense(relu, sw2=2) + Dense(linear)
    >>> net.depth, net.describe()
    (4, '3*dense(relu,sw2=2,sb2=0),dense(linear,sw2=1,sb2=0)')
    """

    blocks: tuple

    def __post_init__(self):
        object.__setattr__(self, "blocks", _flatten(self.blocks))
        if not self.blocks:
            raise ValueError("depth=0 is not allowed: a network needs at least one block")

    @classmethod
    def of(cls, item) -> "Network":
        return item if isinstance(item, Network) else cls((item,))

    @classmethod
    def repeat(cls, block: Block, n) -> "Network":
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"depth={n!r} is not allowed: a repetition count must be an integer >= 1")
        return cls((block,) * n)

    @property
    def depth(self) -> int:
        return len(self.blocks)

    @property
    def homogeneous(self) -> bool:
        return all(b.homogeneous for b in self.blocks)

    def __add__(self, other) -> "Network":
        return Network(self.blocks + Network.of(other).blocks)

    def __rmul__(self, n: int) -> "Network":
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"depth={n!r} is not allowed: a repetition count must be an integer >= 1")
        return Network(self.blocks * n)

    __mul__ = __rmul__

    def __iter__(self):
        return iter(self.blocks)

    def __len__(self):
        return len(self.blocks)

    def describe_items(self) -> list[str]:
        items, i = [], 0
        while i < len(self.blocks):
            j = i
            while j < len(self.blocks) and self.blocks[j] == self.blocks[i]:
                j += 1
            d = self.blocks[i].describe()
            items.append(d if j - i == 1 else f"{j - i}*{d}")
            i = j
        return items

    def describe(self) -> str:
        """The architecture in sigprop's grammar (``theory.parse`` reads it back)."""
        return ",".join(self.describe_items())

    def __str__(self):
        return self.describe()

    def forward(self, s: PairState) -> BlockMaps:
        """The whole network's composed maps (symbolic; numerics iterates block by block instead)."""
        return compose(self.blocks, s)

    def subs(self, mapping: dict) -> "Network":
        """Replace symbolic parameters by values, e.g. ``net.subs({beta: 0.5})``."""
        def sub(b):
            if isinstance(b, Dense):
                return replace(b, sw2=sp.sympify(b.sw2).subs(mapping), sb2=sp.sympify(b.sb2).subs(mapping))
            return replace(b, branch=tuple(sub(x) for x in b.branch),
                           alpha=sp.sympify(b.alpha).subs(mapping), beta=sp.sympify(b.beta).subs(mapping))
        return Network(tuple(sub(b) for b in self.blocks))


def as_network(item: Union[Block, Network, Iterable]) -> Network:
    """Accept a block, a network, or a list of them."""
    if isinstance(item, Network):
        return item
    return Network(_flatten(item))
