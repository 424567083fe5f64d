"""A network: a sequence of blocks; block l (1-based) maps representation x^{l-1} to x^l.

Example
-------
>>> from sigprop.theory import Dense, Network, relu, linear
>>> net = 3 * Dense(relu, sw2=2) + Dense(linear)
>>> net.depth, net.describe()
(4, '3*dense(relu,sw2=2,sb2=0),dense(linear,sw2=1,sb2=0)')
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Union

import sympy as sp

from .blocks.base import Block, describe_blocks, flatten_blocks
from .blocks.sequence import check_gaussian_inputs, compose
from .state import BlockMaps, PairState

#: the most blocks a network may have. ``numerics`` iterates block by block (about 20 µs to 10 ms each,
#: by activation), so deeper networks would run for hours; the limit turns that into an immediate error.
MAX_DEPTH = 100_000


def _check_count(n) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"depth={n!r} is not allowed: a repetition count must be an integer >= 1")
    return n


def _check_depth(depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"depth={depth} is not allowed: sigprop handles at most {MAX_DEPTH} blocks "
                         "(sigprop.theory.network.MAX_DEPTH)")


@dataclass(frozen=True)
class Network:
    """A sequence of blocks (``n * block``, ``block + block`` and :func:`~sigprop.theory.parse` build one)."""

    blocks: tuple

    def __post_init__(self):
        object.__setattr__(self, "blocks", flatten_blocks(self.blocks))
        if not self.blocks:
            raise ValueError("depth=0 is not allowed: a network needs at least one block")
        _check_depth(len(self.blocks))
        if any(b.needs_gaussian_input or b.children for b in set(self.blocks)):
            check_gaussian_inputs(self.blocks)

    @classmethod
    def of(cls, item) -> "Network":
        return item if isinstance(item, Network) else cls((item,))

    @classmethod
    def repeat(cls, block: Block, n) -> "Network":
        _check_depth(_check_count(n))
        return cls((block,) * n)

    @property
    def depth(self) -> int:
        return len(self.blocks)

    @property
    def free_symbols(self) -> set:
        return set().union(*(b.free_symbols for b in set(self.blocks)))

    def __add__(self, other) -> "Network":
        other = Network.of(other)
        _check_depth(self.depth + other.depth)
        return Network(self.blocks + other.blocks)

    def __rmul__(self, n: int) -> "Network":
        _check_depth(_check_count(n) * self.depth)
        return Network(self.blocks * n)

    __mul__ = __rmul__

    def __iter__(self):
        return iter(self.blocks)

    def __len__(self):
        return len(self.blocks)

    def describe_items(self) -> list[str]:
        return describe_blocks(self.blocks)

    def describe(self) -> str:
        """The architecture in sigprop's grammar (``sigprop.theory.parse`` reads it back)."""
        return ",".join(self.describe_items())

    def __str__(self):
        return self.describe()

    def forward(self, s: PairState) -> BlockMaps:
        """The whole network's composed maps (symbolic; numerics iterates block by block instead)."""
        return compose(self.blocks, s)

    def subs(self, mapping: dict) -> "Network":
        """Replace symbolic parameters by values, e.g. ``net.subs({"beta": 0.5})``.

        Keys are symbols or names; a symbol matches the network's symbol of the same name whatever its
        assumptions (``parse`` makes real symbols, a user's ``Symbol("beta")`` has none). A key that names no
        parameter of the network raises ``ValueError``.
        """
        by_name = {s.name: s for s in self.free_symbols}
        resolved = {}
        for key, value in dict(mapping).items():
            name = key if isinstance(key, str) else getattr(key, "name", None)
            if name not in by_name:
                raise ValueError(f"{key!r} is not a parameter of {self.describe()}; its symbols are: "
                                 f"{', '.join(sorted(by_name)) or 'none'}")
            resolved[by_name[name]] = sp.sympify(value)
        done = {}
        for b in self.blocks:
            if b not in done:
                done[b] = b.subs(resolved)
        return Network(tuple(done[b] for b in self.blocks))


def as_network(item: Union[Block, Network, Iterable]) -> Network:
    """Accept a block, a network, or a list of them (a string raises a ValueError pointing to ``parse``)."""
    if isinstance(item, Network):
        return item
    return Network(flatten_blocks(item))
