"""The named mean-field state a block maps, and what it returns.

For two inputs a, b at a representation x with n units (per-unit averages): ``p = ‖x‖²/n``,
``p_ab = ⟨x_a, x_b⟩/n``, ``m = Σᵢxᵢ/n`` (:class:`PairState`). A block maps the state at its input to the state
at its output and returns the pre-activation of its last dense layer, if it has one (:class:`PreActivation`),
and the backward factors of the gradient probe g = Jᵀv (:class:`Backward`): ‖g_in‖²/n = χ ‖g_out‖²/n per input
and ⟨g_in,a, g_in,b⟩/n = χ_ab ⟨g_out,a, g_out,b⟩/n under the gradient independence assumption
(Schoenholz et al. 2017). The fields hold SymPy expressions in ``theory`` and floats in ``numerics``.

Example
-------
>>> from sigprop.theory.state import PairState
>>> PairState.symbolic()
PairState(p_a=p_a, p_b=p_b, p_ab=p_ab, m_a=m_a, m_b=m_b)
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Optional

import sympy as sp

from . import symbols as S


def as_tuple(record) -> tuple:
    """The fields of a state record (PairState, PreActivation, Backward) in declaration order."""
    return tuple(record.__dict__.values())


@dataclass(frozen=True)
class PairState:
    """Mean-field state of two inputs at one representation."""

    p_a: object
    p_b: object
    p_ab: object
    m_a: object
    m_b: object

    @classmethod
    def symbolic(cls) -> "PairState":
        return cls(S.p_a, S.p_b, S.p_ab, S.m_a, S.m_b)

    @classmethod
    def single(cls) -> "PairState":
        """One input (b = a): p, m."""
        return cls(S.p, S.p, S.p, S.m, S.m)

    def identical(self) -> bool:
        """Whether the two inputs are the same vector (numbers only): then so are their images."""
        return self.p_a == self.p_b == self.p_ab and self.m_a == self.m_b


@dataclass(frozen=True)
class PreActivation:
    """Mean squares and cross moment of the two inputs' pre-activations h = Wx + b."""

    q_a: object
    q_b: object
    q_ab: object


@dataclass(frozen=True)
class TangentKernel:
    """The neural tangent kernel of a representation for two inputs, per unit: Θ_ab = Σ_θ ⟨∂x_a/∂θ, ∂x_b/∂θ⟩/n
    over the parameters θ of every block up to it, in the NTK parametrization (Jacot et al. 2018)."""

    t_a: object
    t_b: object
    t_ab: object

    @classmethod
    def symbolic(cls) -> "TangentKernel":
        return cls(*sp.symbols("Theta_a Theta_b Theta_ab", real=True))

    @classmethod
    def zero(cls) -> "TangentKernel":
        return cls(0, 0, 0)


@dataclass(frozen=True, repr=False)
class Backward:
    """Backward factors from a block's output to its input (they compose along a sequence of blocks).

    The gradient second moments G_aa = ‖g_a‖²/n, G_bb and G_ab = ⟨g_a, g_b⟩/n map as

        G_aa,in = χ_a G_aa + μ_a G_ab,   G_bb,in = χ_b G_bb + μ_b G_ab,   G_ab,in = χ_ab G_ab + ν (G_aa + G_bb)/2.

    Pointwise and weight blocks have μ = ν = 0 (each entry maps on its own). A block whose Jacobian couples the
    inputs of a batch (batch normalization) mixes them; the mixing terms ``mix_a`` = μ_a, ``mix_b`` = μ_b,
    ``mix_ab`` = ν are used where the two inputs are members of an exchangeable batch, so that G_aa = G_bb.
    """

    chi_a: object
    chi_b: object
    chi_ab: object
    mix_a: object = 0
    mix_b: object = 0
    mix_ab: object = 0

    @classmethod
    def identity(cls) -> "Backward":
        return cls(1, 1, 1)

    @property
    def mixes(self) -> bool:
        """Whether the map couples G's diagonal and cross entries (known to be so for symbols)."""
        return not all(isinstance(v, (int, float)) and v == 0 or v is sp.S.Zero
                       for v in (self.mix_a, self.mix_b, self.mix_ab))

    def then(self, other: "Backward") -> "Backward":
        """The factors of this block followed by ``other``: G_in = M_self(M_other(G_out)) (products of the
        factors when neither mixes, by gradient independence)."""
        if not (self.mixes or other.mixes):
            return Backward(self.chi_a * other.chi_a, self.chi_b * other.chi_b, self.chi_ab * other.chi_ab)
        s, o = self, other
        return Backward(s.chi_a * o.chi_a + s.mix_a * o.mix_ab, s.chi_b * o.chi_b + s.mix_b * o.mix_ab,
                        s.chi_ab * o.chi_ab + s.mix_ab * (o.mix_a + o.mix_b) / 2,
                        s.chi_a * o.mix_a + s.mix_a * o.chi_ab, s.chi_b * o.mix_b + s.mix_b * o.chi_ab,
                        s.mix_ab * (o.chi_a + o.chi_b) / 2 + s.chi_ab * o.mix_ab)

    def apply(self, g_aa, g_bb, g_ab):
        """(G_aa, G_bb, G_ab) at the block's input, given them at its output."""
        mean = (g_aa + g_bb) / 2
        return (self.chi_a * g_aa + self.mix_a * g_ab, self.chi_b * g_bb + self.mix_b * g_ab,
                self.chi_ab * g_ab + self.mix_ab * mean)

    def __repr__(self):
        names = ["chi_a", "chi_b", "chi_ab"] + (["mix_a", "mix_b", "mix_ab"] if self.mixes else [])
        return f"Backward({', '.join(f'{n}={getattr(self, n)!r}' for n in names)})"


@dataclass(frozen=True)
class Cross:
    """Cross moments of a reference representation z (a residual block's input) with a representation y computed
    from it inside the block: ``ab`` = ⟨z_a, y_b⟩/n (and ``aa``, ``ba``, ``bb`` alike); ``t_a`` = tr(∂y_a/∂z_a)/n,
    the mean diagonal of the Jacobian (the cross term of the backward pass); ``m_a``, ``m_b``: z's unit means."""

    aa: object
    ab: object
    ba: object
    bb: object
    t_a: object
    t_b: object
    m_a: object
    m_b: object

    @classmethod
    def identity(cls, s: PairState) -> "Cross":
        """y = z: the cross moments are z's own second moments, the Jacobian is the identity."""
        return cls(s.p_a, s.p_ab, s.p_ab, s.p_b, 1, 1, s.m_a, s.m_b)

    @classmethod
    def first_moments(cls, m_a, m_b, out: PairState) -> "Cross":
        """y a fresh zero-mean random map of z (a dense layer): only the unit means correlate, tr J/n = 0."""
        return cls(m_a * out.m_a, m_a * out.m_b, m_b * out.m_a, m_b * out.m_b, 0, 0, m_a, m_b)

    @classmethod
    def symbolic(cls) -> "Cross":
        return cls(*sp.symbols("zy_aa zy_ab zy_ba zy_bb t_a t_b mz_a mz_b", real=True))


@dataclass(frozen=True)
class BlockMaps:
    """What a block does to a pair state: ``out`` state, ``pre`` (None if the block has no pre-activation),
    backward factors ``chi``."""

    out: PairState
    pre: Optional[PreActivation]
    chi: Backward

    def flatten(self) -> list:
        """The fields in a fixed order (for compiled functions); :meth:`unflatten` reads them back."""
        pre = as_tuple(self.pre) if self.pre is not None else ()
        return [*as_tuple(self.out), *as_tuple(self.chi), *pre]

    @classmethod
    def unflatten(cls, values, has_pre: bool) -> "BlockMaps":
        n_out, n_chi = len(fields(PairState)), len(fields(Backward))
        out = PairState(*values[:n_out])
        chi = Backward(*values[n_out:n_out + n_chi])
        pre = PreActivation(*values[n_out + n_chi:]) if has_pre else None
        return cls(out, pre, chi)

    def identical(self) -> "BlockMaps":
        """The maps of identical inputs: input b's entries and the cross entries are input a's (exactly)."""
        o, c, p = self.out, self.chi, self.pre
        return BlockMaps(PairState(o.p_a, o.p_a, o.p_a, o.m_a, o.m_a), p and PreActivation(p.q_a, p.q_a, p.q_a),
                         Backward(c.chi_a, c.chi_a, c.chi_a, c.mix_a, c.mix_a, c.mix_a))
