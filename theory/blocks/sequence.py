"""Block sequences: their composed maps, their cross moments, and the check that each block gets the input it needs.

**Cross moments.** A residual sum αx + βF(x) needs ⟨x, F(x)⟩/n and, backward, tr(∂F/∂x)/n (the cross term of
‖(αI + βJ_F)ᵀg‖²). When F contains a ``dense`` layer at its top level, its fresh weights leave only first moments
(:meth:`Cross.first_moments`). Otherwise the cross moments are carried through F block by block
(:func:`compose_cross`): each block maps the cross moments of its input y with the residual's input x to those of
its output (:meth:`Block.cross`):

- ``act(φ)`` on Gaussian coordinates (y jointly Gaussian with x, zero mean): regressing x on y,
  ⟨x_a, φ(y_b)⟩ = (⟨x_a, y_b⟩/p_b) E[y_b φ(y_b)] (Stein's lemma), and tr(D_φ' J)/n = E[φ'] tr J/n with
  E[φ'] = E[yφ(y)]/p for continuous φ (Stein again) and 0 for a step function;
- ``dropout``: keeps both (the mask has mean 1 after the 1/ρ scaling);
- ``residual``: α times its skip's plus β times its branch's (a nested residual);
- a block that decorrelates: first moments only.

The mean-field limit of products of diagonal and Gaussian matrices (gradient independence, Schoenholz et al.
2017) gives the trace of a product as the product of the traces.

Example
-------
>>> from sigprop.theory import parse
>>> from sigprop.theory.state import Cross, PairState
>>> block = parse("residual(act(relu))").blocks[0]
>>> c = compose_cross(block.branch, PairState.single(), Cross.identity(PairState.single()))
>>> c.aa, c.t_a
(p/2, 1/2)
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Sequence

from ..state import Backward, BlockMaps, Cross, PairState

if TYPE_CHECKING:
    from .base import Block


def check_gaussian_inputs(blocks: Sequence["Block"], gaussian: bool = True, where: str = "block",
                          previous: str = "the network input") -> bool:
    """Walk ``blocks`` from an input whose coordinates are (``gaussian``) Gaussian; a block that needs a Gaussian
    input and does not get one raises ValueError naming it. The exception: a pointwise block (``act``) right after a
    block that ``joins_next_pointwise`` (batchnorm in training mode), which ``numerics`` evaluates jointly with it.
    Returns whether the output is Gaussian."""
    joins = False
    for i, block in enumerate(blocks, 1):
        joint = joins and block.pointwise
        if block.needs_gaussian_input and not gaussian and not joint:
            raise ValueError(f"{where} {i} ({block.describe()}) needs Gaussian input coordinates, but its input "
                             f"({previous}) is not Gaussian: put a dense(linear, ...) before it")
        inner = tuple(check_gaussian_inputs(seq, gaussian, f"{where} {i}: {name} block", previous)
                      for name, seq in zip((p.name for p in block.params() if p.kind == "blocks"), block.sequences))
        inner = inner or None
        gaussian = block.gaussian_out(gaussian, inner)
        previous = f"the output of {block.describe()}"
        joins = block.joins_next_pointwise
    return gaussian


def compose(blocks: Sequence["Block"], state: PairState) -> BlockMaps:
    """Apply blocks in sequence; backward factors multiply (gradient independence). ``pre`` is the last one's."""
    chi, pre = Backward.identity(), None
    for block in blocks:
        maps = block.forward(state)
        state, chi = maps.out, chi.then(maps.chi)
        pre = maps.pre if maps.pre is not None else pre
    return BlockMaps(state, pre, chi)


def compose_cross(blocks: Sequence, s: PairState, c: Cross) -> Optional[Cross]:
    """The cross moments of the sequence's output with the reference ``c`` refers to, given the state ``s`` and
    cross moments ``c`` of the sequence's input; None if a block cannot carry them."""
    for block in blocks:
        maps = block.forward(s)
        if block.sequences:
            parts = [compose_cross(seq, s, c) for seq in block.sequences]
            c = None if any(p is None for p in parts) else block.combine_cross(c, *parts)
        else:
            c = block.cross(s, c, maps.out)
        if c is None:
            return None
        s = maps.out
    return c


def carries_cross(blocks: Sequence) -> bool:
    """Whether every block of the sequence can carry cross moments (:meth:`Block.cross`)."""
    return all(b.carries_cross for b in blocks)
