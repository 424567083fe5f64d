"""Compile theory's symbolic block maps into fast numeric functions.

A :class:`~theory.blocks.Dense` block is lambdified whole; its unevaluated Gaussian expectations (tanh) are
bound to quadrature (:mod:`numerics.quadrature`) of the same φ and φ' that ``theory`` defines. A
:class:`~theory.blocks.Residual` block is compiled as its branch plus the skip sum, lambdified from
``Residual.combine`` on placeholder symbols, so no formula is typed here.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numpy as np
import sympy as sp

from theory import Activation, BlockMaps, Dense, PairState, Residual, get_activation
from theory.expectations import GaussianExpectation
from theory.symbols import x

from .quadrature import expect1, expect2

StepFn = Callable[[tuple], tuple]  # state (p_a, p_b, p_ab, m_a, m_b) -> (out state, pre (3), chi (3))

# Closed forms are evaluated at the boundary |k| = √(q₁q₂) (c = ±1, identical inputs), where rounding can push
# acos/asin/sqrt arguments a hair outside their domain; clip them there. Genuine inconsistencies are caught by
# the state checks in numerics.iterate.
_SAFE = {"acos": lambda v: np.arccos(np.clip(v, -1.0, 1.0)),
         "asin": lambda v: np.arcsin(np.clip(v, -1.0, 1.0)),
         "sqrt": lambda v: np.sqrt(np.maximum(v, 0.0))}


@lru_cache(maxsize=None)
def activation_functions(act: Activation) -> tuple[Callable, Callable]:
    """Vectorized φ and φ' (lambdified from theory)."""
    phi = sp.lambdify(x, act.phi, modules=["scipy", "numpy"])
    dphi = sp.lambdify(x, act.dphi.replace(sp.Heaviside, lambda a, *rest: sp.Heaviside(a, sp.S.Half)),
                       modules=["scipy", "numpy"])
    return phi, dphi


@lru_cache(maxsize=None)
def expectation_function(act: Activation, kind: str) -> Callable:
    """Quadrature implementation of one unevaluated expectation kind."""
    phi, dphi = activation_functions(act)
    fns = {"mean": lambda q: expect1(phi, q),
           "square": lambda q: expect1(lambda u: phi(u) ** 2, q),
           "dsquare": lambda q: expect1(lambda u: dphi(u) ** 2, q),
           "kernel": lambda q1, q2, k: expect2(phi, phi, q1, q2, k),
           "dkernel": lambda q1, q2, k: expect2(dphi, dphi, q1, q2, k)}
    if kind not in fns:
        raise ValueError(f"kind={kind!r} is not an expectation kind")
    # The two inputs of a pair often share q: evaluate each distinct argument once.
    return lru_cache(maxsize=256)(fns[kind])


def _bindings(exprs) -> dict:
    out = dict(_SAFE)
    for e in exprs:
        for node in sp.preorder_traversal(e):
            if isinstance(node, GaussianExpectation):
                out[type(node).__name__] = expectation_function(get_activation(node.activation_name), node.kind)
    return out


def _free_symbols(block) -> set:
    free = set()
    for name in ("sw2", "sb2", "alpha", "beta"):
        if hasattr(block, name):
            free |= sp.sympify(getattr(block, name)).free_symbols
    for inner in getattr(block, "branch", ()):
        free |= _free_symbols(inner)
    return free


def require_numbers(block):
    """Raise a ValueError naming the symbolic parameters of ``block`` (numbers are needed from here on)."""
    free = _free_symbols(block)
    if free:
        names = ", ".join(sorted(map(str, free)))
        raise ValueError(f"block {block.describe()} has symbolic parameters ({names}): numerics needs numbers; "
                         "substitute them first, e.g. network.subs({symbol: value})")


def _lambdify(args, exprs):
    exprs = list(exprs)
    return sp.lambdify(args, exprs, modules=[_bindings(exprs), "numpy"], cse=True)


_STATE = PairState.symbolic()


@lru_cache(maxsize=None)
def compile_block(block) -> StepFn:
    """A numeric step function for one block (cached: repeated blocks compile once)."""
    require_numbers(block)
    if isinstance(block, Dense):
        maps = block.forward(_STATE)
        fn = _lambdify(_STATE.as_tuple(), [*maps.out.as_tuple(), *maps.pre, *maps.chi])

        def step(state):
            v = [float(t) for t in fn(*state)]
            return tuple(v[:5]), tuple(v[5:8]), tuple(v[8:11])
        return step
    if isinstance(block, Residual):
        branch = [compile_block(b) for b in block.branch]
        f_out = PairState(*sp.symbols("F_pa F_pb F_pab F_ma F_mb", real=True))
        f_chi = sp.symbols("F_chia F_chib F_chiab", real=True)
        placeholder = BlockMaps(f_out, (0, 0, 0), f_chi)
        maps = block.combine(_STATE, placeholder)
        fn = _lambdify((*_STATE.as_tuple(), *f_out.as_tuple(), *f_chi), [*maps.out.as_tuple(), *maps.chi])

        def step(state):
            s, chi = state, (1.0, 1.0, 1.0)
            for b in branch:
                s, pre, c = b(s)
                chi = tuple(c0 * c1 for c0, c1 in zip(chi, c))
            v = [float(t) for t in fn(*state, *s, *chi)]
            return tuple(v[:5]), pre, tuple(v[5:8])
        return step
    raise TypeError(f"numerics cannot compile {type(block).__name__}")
