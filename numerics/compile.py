"""Compile theory's symbolic block maps into numeric step functions.

A block's maps are lambdified once per *signature* (kind, activation, children, and choices that change the maps,
such as dense weights), on its template: the block with each numeric parameter replaced by a symbol
(``Block.template``), so the parameters are arguments of
the compiled function and fifty layers with different σ_w² share one compilation. Unevaluated Gaussian
expectations are bound to quadrature of the activation they carry; the covariance determinant to its exact
evaluation. A block with children is compiled as its child sequences plus its ``combine``, lambdified on
placeholder symbols for each sequence's composed maps, so no formula is typed here.

Example
-------
>>> from sigprop.theory import Dense, PairState, relu
>>> from sigprop.numerics import compile_block
>>> maps = compile_block(Dense(relu, sw2=2))(PairState(1.0, 1.0, 0.5, 0.0, 0.0))
>>> maps.out.p_a, maps.chi.chi_a
(1.0, 1.0)
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Callable

import numpy as np
import sympy as sp

from ..theory.blocks import Block
from ..theory.expectations import GaussianExpectation
from ..theory.state import Backward, BlockMaps, Cross, PairState, PreActivation, TangentKernel, as_tuple
from .expectations import NUMERIC_FUNCTIONS, for_numerics, quadrature_function

_STATE = PairState.symbolic()


def require_numbers(block) -> None:
    """Raise a ValueError naming the symbolic parameters of ``block`` (numbers are needed from here on)."""
    free = block.free_symbols
    if free:
        names = ", ".join(sorted(map(str, free)))
        raise ValueError(f"block {block.describe()} has symbolic parameters ({names}): numerics needs numbers; "
                         "substitute them first, e.g. network.subs({'name': value})")


def _bindings(exprs) -> dict:
    out = dict(NUMERIC_FUNCTIONS)
    for e in exprs:
        for node in sp.preorder_traversal(e):
            if isinstance(node, GaussianExpectation):
                out[type(node).__name__] = quadrature_function(node.activation, node.kind)
    return out


def _lambdify(args, exprs):
    exprs = [for_numerics(e) for e in exprs]
    return sp.lambdify(args, exprs, modules=[_bindings(exprs), "scipy", "numpy"], cse=True)


def compile_expression(args, expr) -> Callable:
    """A numeric function of ``args`` (symbols) for one theory expression, its unevaluated Gaussian expectations
    bound to quadrature (as in compiled block maps)."""
    plain = [sp.Symbol(f"arg{i}", **a.assumptions0) for i, a in enumerate(args)]   # names lambdify can print
    fn = _lambdify(tuple(plain), [sp.sympify(expr).xreplace(dict(zip(args, plain)))])
    return lambda *values: float(fn(*values)[0])


def compile_array_expression(args, expr, expectation: Callable) -> Callable:
    """A vectorized numeric function of ``args`` for one theory expression: arguments broadcast, and each
    unevaluated Gaussian expectation is bound to ``expectation(activation, kind)``, a callable on arrays (the
    vectorized rules of :mod:`sigprop.numerics.vectorized`, or an interpolant of them)."""
    plain = [sp.Symbol(f"arg{i}", **a.assumptions0) for i, a in enumerate(args)]
    e = for_numerics(sp.sympify(expr).xreplace(dict(zip(args, plain))))
    bindings = dict(NUMERIC_FUNCTIONS)
    for node in sp.preorder_traversal(e):
        if isinstance(node, GaussianExpectation):
            bindings[type(node).__name__] = expectation(node.activation, node.kind)
    fn = sp.lambdify(tuple(plain), [e], modules=[bindings, "scipy", "numpy"], cse=True)
    return lambda *values: np.asarray(fn(*values)[0], dtype=float)


@dataclass(frozen=True)
class Step:
    """A block's maps on numbers: ``step(PairState) -> BlockMaps`` (floats in named fields)."""

    block: Block
    fn: Callable
    params: tuple
    has_pre: bool
    sequences: tuple = ()          # per child sequence, its steps (a residual's branch, then its skip)

    def __call__(self, s: PairState) -> BlockMaps:
        if self.sequences:
            cross = Cross.identity(s) if self.block.uses_cross else None
            parts = [_compose(seq, s, cross if i == 0 else None) for i, seq in enumerate(self.sequences)]
            child = [v for maps, _ in parts for v in maps.flatten()]
            if cross is not None:
                child += as_tuple(parts[0][1])
            values = self.fn(*as_tuple(s), *child, *self.params)
        else:
            values = self.fn(*as_tuple(s), *self.params)
        maps = BlockMaps.unflatten([float(v) for v in values], self.has_pre)
        return maps.identical() if s.identical() and self.block.is_deterministic else maps

    def cross(self, s: PairState, c: Cross) -> Cross:
        """The block's map of cross moments (``theory.blocks.sequence``) on numbers."""
        fn = _compile_cross(self.block.signature(), *self.block.template(), bool(self.sequences))
        if self.sequences:
            parts = [_compose(seq, s, c)[1] for seq in self.sequences]
            values = fn(*as_tuple(s), *as_tuple(c), *(v for p in parts for v in as_tuple(p)), *self.params)
        else:
            values = fn(*as_tuple(s), *as_tuple(c), *self.params)
        return Cross(*(float(v) for v in values))


def _compose(steps, s: PairState, cross: Cross | None = None) -> tuple[BlockMaps, Cross | None]:
    """The composed maps of a sequence of steps and, given the cross moments ``cross`` of its input, its output's."""
    chi, pre, i = Backward.identity(), None, 0
    while i < len(steps):
        step = steps[i]
        maps = step(s)
        if step.block.joins_next_pointwise and i + 1 < len(steps) and steps[i + 1].block.pointwise:
            from .batchnorm import joint_maps          # a batchnorm and the act after it, jointly
            act_maps, joint, _ = joint_maps(step.block, steps[i + 1].block, s, maps.out)
            s, chi, pre, cross, i = act_maps.out, chi.then(joint), act_maps.pre, None, i + 2
            continue
        if cross is not None:
            cross = step.cross(s, cross)
        s, chi = maps.out, chi.then(maps.chi)
        pre = maps.pre if maps.pre is not None else pre
        i += 1
    return BlockMaps(s, pre, chi), cross


@lru_cache(maxsize=None)
def _compile_leaf(signature, template: Block, params: tuple):
    maps = template.maps(_STATE)
    return _lambdify((*as_tuple(_STATE), *params), maps.flatten()), maps.pre is not None


def _cross_placeholder(prefix: str) -> Cross:
    return Cross(*sp.symbols(" ".join(f"{prefix}_{f.name}" for f in fields(Cross)), real=True))


@lru_cache(maxsize=None)
def _compile_container(signature, template: Block, params: tuple, has_pre: tuple):
    placeholders = []
    for i, pre in enumerate(has_pre):
        out = PairState(*sp.symbols(f"F{i}_p_a F{i}_p_b F{i}_p_ab F{i}_m_a F{i}_m_b", real=True))
        chi = Backward(*sp.symbols(" ".join(f"F{i}_{f.name}" for f in fields(Backward)), real=True))
        placeholders.append(BlockMaps(out, PreActivation(*sp.symbols(f"F{i}_q_a F{i}_q_b F{i}_q_ab", real=True))
                                      if pre else None, chi))
    args = [v for ph in placeholders for v in ph.flatten()]
    if template.uses_cross:
        cross = _cross_placeholder("X0")
        maps = template.combine(_STATE, *placeholders, cross=cross)
        args += as_tuple(cross)
    else:
        maps = template.combine(_STATE, *placeholders)
    return _lambdify((*as_tuple(_STATE), *args, *params), maps.flatten()), maps.pre is not None


@lru_cache(maxsize=None)
def _compile_cross(signature, template: Block, params: tuple, container: bool):
    c = _cross_placeholder("C")
    if container:
        parts = [_cross_placeholder(f"X{i}") for i in range(len(template.sequences))]
        cross = template.combine_cross(c, *parts)
        args = (*as_tuple(_STATE), *as_tuple(c), *(v for p in parts for v in as_tuple(p)), *params)
    else:
        cross = template.cross(_STATE, c, template.maps(_STATE).out)
        args = (*as_tuple(_STATE), *as_tuple(c), *params)
    return _lambdify(args, as_tuple(cross))


@lru_cache(maxsize=None)
def _array_exprs(signature, template: Block, tangent: bool):
    """The block's forward maps (out, pre) and, with ``tangent``, its tangent-kernel map, symbolic, ready to
    lambdify; and the bindings of their unevaluated expectations to the array rules."""
    from .vectorized import expect
    maps = template.maps(_STATE)          # the forward maps only: kernels over data sets need no χ
    out = {f.name: getattr(maps.out, f.name) for f in fields(PairState)}
    pre = {f.name: getattr(maps.pre, f.name) for f in fields(PreActivation)} if maps.pre is not None else {}
    theta = as_tuple(template.tangent(_STATE, TangentKernel.symbolic())) if tangent else ()
    exprs = {"out": {k: for_numerics(v) for k, v in out.items()}, "pre": {k: for_numerics(v) for k, v in pre.items()},
             "theta": [for_numerics(v) for v in theta]}
    bindings = dict(NUMERIC_FUNCTIONS)
    for e in [*exprs["out"].values(), *exprs["pre"].values(), *exprs["theta"]]:
        for node in sp.preorder_traversal(e):
            if isinstance(node, GaussianExpectation):
                act, kind = node.activation, node.kind
                bindings[type(node).__name__] = lambda *a, act=act, kind=kind: expect(act, kind, *a)
    return exprs, bindings


#: the arguments of a pair-only map, by name: the pair's state and tangent kernel
PAIR_ARGS = ("p_a", "p_b", "p_ab", "m_a", "m_b", "Theta_a", "Theta_b", "Theta_ab")


@lru_cache(maxsize=None)
def _compile_array_leaf(signature, template: Block, params: tuple, tangent: bool, pair_only: bool):
    exprs, bindings = _array_exprs(signature, template, tangent)
    state_args = (*as_tuple(_STATE), *(as_tuple(TangentKernel.symbolic()) if tangent else ()))
    has_pre = bool(exprs["pre"])
    if pair_only:
        outs = [exprs["out"]["p_ab"], *([exprs["pre"]["q_ab"]] if has_pre else []), *exprs["theta"][2:]]
        used = set().union(*(e.free_symbols for e in outs))
        # only what the cross entries read (and p_ab always, which gives the arrays' shape)
        state_args = tuple(a for a in state_args if a in used or str(a) == "p_ab")
    else:
        outs = [*exprs["out"].values(), *exprs["pre"].values(), *exprs["theta"]]
    fn = sp.lambdify((*state_args, *params), outs, modules=[bindings, "scipy", "numpy"], cse=True)
    return fn, has_pre, tuple(str(a) for a in state_args)


def compile_array_block(block: Block, tangent: bool = False, pair_only: bool = False) -> Callable:
    """A leaf block's forward maps on arrays: ``f(state, theta=None) -> (out, pre, theta')``, the output
    ``PairState``, the ``PreActivation`` (None if the block has none) and, with ``tangent``, the output's neural
    tangent kernel (``Block.tangent``; None otherwise); every field an array over the pairs (arguments broadcast),
    expectations bound to :func:`~sigprop.numerics.vectorized.expect`.

    With ``pair_only`` it maps only the cross entries: ``f(**arrays) -> (p_ab, q_ab or None, Θ_ab or None)``,
    called with the arrays named in ``f.needs`` (a subset of :data:`PAIR_ARGS`). For blocks that act on each input
    alone the per-input entries are each input's with itself, computed once per input instead of once per pair."""
    require_numbers(block)
    if block.sequences:
        raise ValueError(f"{block.describe()}: blocks with children ({block.kind}) are not evaluated on arrays of "
                         "pairs yet; kernels over data sets take leaf blocks (dense, act, …)")
    template, symbols = block.template()
    values = tuple(float(block.number_params()[str(sym.name)[len("param_"):]]) for sym in symbols)
    fn, has_pre, names = _compile_array_leaf(block.signature(), template, symbols, tangent, pair_only)
    if pair_only:
        def pair_step(**arrays):
            shape = np.broadcast(*arrays.values()).shape
            v = [np.broadcast_to(np.asarray(x, dtype=float), shape) for x in fn(*(arrays[n] for n in names), *values)]
            return v[0], (v[1] if has_pre else None), (v[1 + has_pre] if tangent else None)
        pair_step.needs, pair_step.has_pre = names, has_pre
        return pair_step
    n_out, n_pre = len(fields(PairState)), (len(fields(PreActivation)) if has_pre else 0)

    def step(state: PairState, theta: TangentKernel | None = None):
        arrays = (*as_tuple(state), *(as_tuple(theta) if tangent else ()))
        shape = np.broadcast(*arrays).shape            # constant outputs (an odd φ's mean) broadcast too
        v = [np.broadcast_to(np.asarray(x, dtype=float), shape) for x in fn(*arrays, *values)]
        return (PairState(*v[:n_out]), PreActivation(*v[n_out:n_out + n_pre]) if has_pre else None,
                TangentKernel(*v[n_out + n_pre:]) if tangent else None)
    return step


@lru_cache(maxsize=None)
def compile_block(block: Block) -> Step:
    """A numeric :class:`Step` for one block (cached: repeated blocks compile once)."""
    if not isinstance(block, Block):
        raise TypeError(f"numerics cannot compile {block!r}: not a block")
    require_numbers(block)
    template, symbols = block.template()
    values = tuple(float(block.number_params()[str(sym.name)[len("param_"):]]) for sym in symbols)
    if block.sequences:
        sequences = tuple(tuple(compile_block(b) for b in seq) for seq in block.sequences)
        seq_has_pre = tuple(any(c.has_pre for c in seq) for seq in sequences)
        fn, has_pre = _compile_container(block.signature(), template, symbols, seq_has_pre)
        return Step(block, fn, values, has_pre, sequences)
    fn, has_pre = _compile_leaf(block.signature(), template, symbols)
    return Step(block, fn, values, has_pre)

