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

from dataclasses import dataclass, fields, replace
from functools import cached_property, lru_cache
from typing import Callable

import numpy as np
import sympy as sp

from ..theory.blocks import Block
from ..theory.expectations import GaussianExpectation
from ..theory.state import Backward, BlockMaps, Cross, PairState, PreActivation, TangentKernel, as_tuple
from .expectations import NUMERIC_FUNCTIONS, for_numerics, modules, quadrature_function

_STATE = PairState.symbolic()


def require_numbers(block) -> None:
    """Raise a ValueError naming the symbolic parameters of ``block`` (numbers are needed from here on)."""
    free = block.free_symbols
    if free:
        names = ", ".join(sorted(map(str, free)))
        raise ValueError(f"block {block.describe()} has symbolic parameters ({names}): numerics needs numbers; "
                         "substitute them first, e.g. network.subs({'name': value})")


def _bindings(exprs, arrays: bool = False) -> dict:
    """Each unevaluated Gaussian expectation in ``exprs`` bound to the scalar quadrature of its activation, or with
    ``arrays`` to the array rules of :func:`sigprop.numerics.vectorized.expect`."""
    from .vectorized import expect
    out = dict(NUMERIC_FUNCTIONS)
    for e in exprs:
        for node in sp.preorder_traversal(e):
            if isinstance(node, GaussianExpectation):
                act, kind = node.activation, node.kind
                out[type(node).__name__] = ((lambda *a, act=act, kind=kind: expect(act, kind, *a)) if arrays
                                            else quadrature_function(act, kind))
    return out


def _lambdify(args, exprs, arrays: bool = False):
    exprs = [for_numerics(e) for e in exprs]
    return sp.lambdify(args, exprs, modules=modules(exprs, _bindings(exprs, arrays)), cse=True)


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
    fn = sp.lambdify(tuple(plain), [e], modules=modules([e], bindings), cse=True)
    return lambda *values: np.asarray(fn(*values)[0], dtype=float)


@dataclass(frozen=True)
class Step:
    """A block's maps on numbers: ``step(PairState) -> BlockMaps`` (floats in named fields)."""

    block: Block
    fn: Callable
    params: tuple
    has_pre: bool
    sequences: tuple = ()          # per child sequence, its steps (a residual's branch, then its skip)
    arrays: bool = False           # states, parameters and maps are arrays over configurations

    def __call__(self, s: PairState) -> BlockMaps:
        if self.sequences:
            cross = Cross.identity(s) if self._uses_cross else None
            parts = [_compose(seq, s, cross if i == 0 else None) for i, seq in enumerate(self.sequences)]
            child = [v for maps, _ in parts for v in maps.flatten()]
            if cross is not None:
                child += as_tuple(parts[0][1])
            values = self.fn(*as_tuple(s), *child, *self.params)
        else:
            values = self.fn(*as_tuple(s), *self.params)
        if self.arrays:
            maps = BlockMaps.unflatten(_broadcast(values, s), self.has_pre)
            return _identical_where(s, maps) if self._deterministic else maps
        maps = BlockMaps.unflatten([float(v) for v in values], self.has_pre)
        return maps.identical() if s.identical() and self._deterministic else maps

    @cached_property
    def _uses_cross(self) -> bool:
        return self.block.uses_cross

    @cached_property
    def _deterministic(self) -> bool:
        return self.block.is_deterministic

    def subset(self, index) -> "Step":
        """This array step restricted to the configurations ``index`` (its parameter arrays, children's too)."""
        params = tuple(p[index] if np.ndim(p) else p for p in self.params)
        return replace(self, params=params, sequences=tuple(tuple(c.subset(index) for c in seq)
                                                            for seq in self.sequences))

    def cross(self, s: PairState, c: Cross) -> Cross:
        """The block's map of cross moments (``theory.blocks.sequence``) on numbers."""
        fn = _compile_cross(self.block.signature(), *self.block.template(), bool(self.sequences), self.arrays)
        if self.sequences:
            parts = [_compose(seq, s, c)[1] for seq in self.sequences]
            values = fn(*as_tuple(s), *as_tuple(c), *(v for p in parts for v in as_tuple(p)), *self.params)
        else:
            values = fn(*as_tuple(s), *as_tuple(c), *self.params)
        return Cross(*(_broadcast(values, s) if self.arrays else (float(v) for v in values)))


def _broadcast(values, s: PairState) -> list:
    """Compiled outputs as float arrays of the state's shape (constant outputs broadcast)."""
    shape = np.shape(s.p_a)
    return [np.broadcast_to(np.asarray(v, dtype=float), shape) for v in values]


def _identical_where(s: PairState, maps: BlockMaps) -> BlockMaps:
    """:meth:`BlockMaps.identical` at the entries where the two inputs are the same vector."""
    same = (s.p_a == s.p_b) & (s.p_b == s.p_ab) & (s.m_a == s.m_b)
    if not np.any(same):
        return maps
    o, c, p = maps.out, maps.chi, maps.pre
    pick = lambda a, b: np.where(same, a, b)          # noqa: E731
    return BlockMaps(PairState(o.p_a, pick(o.p_a, o.p_b), pick(o.p_a, o.p_ab), o.m_a, pick(o.m_a, o.m_b)),
                     p and PreActivation(p.q_a, pick(p.q_a, p.q_b), pick(p.q_a, p.q_ab)),
                     Backward(c.chi_a, pick(c.chi_a, c.chi_b), pick(c.chi_a, c.chi_ab), c.mix_a,
                              pick(c.mix_a, c.mix_b), pick(c.mix_a, c.mix_ab)))


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
def _compile_leaf(signature, template: Block, params: tuple, arrays: bool = False):
    maps = template.maps(_STATE)
    return _lambdify((*as_tuple(_STATE), *params), maps.flatten(), arrays), maps.pre is not None


def _cross_placeholder(prefix: str) -> Cross:
    return Cross(*sp.symbols(" ".join(f"{prefix}_{f.name}" for f in fields(Cross)), real=True))


@lru_cache(maxsize=None)
def _compile_container(signature, template: Block, params: tuple, has_pre: tuple, arrays: bool = False):
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
    return _lambdify((*as_tuple(_STATE), *args, *params), maps.flatten(), arrays), maps.pre is not None


@lru_cache(maxsize=None)
def _compile_cross(signature, template: Block, params: tuple, container: bool, arrays: bool = False):
    c = _cross_placeholder("C")
    if container:
        parts = [_cross_placeholder(f"X{i}") for i in range(len(template.sequences))]
        cross = template.combine_cross(c, *parts)
        args = (*as_tuple(_STATE), *as_tuple(c), *(v for p in parts for v in as_tuple(p)), *params)
    else:
        cross = template.cross(_STATE, c, template.maps(_STATE).out)
        args = (*as_tuple(_STATE), *as_tuple(c), *params)
    return _lambdify(args, as_tuple(cross), arrays)


@lru_cache(maxsize=None)
def _array_exprs(signature, template: Block, tangent: bool):
    """The block's forward maps (out, pre) and, with ``tangent``, its tangent-kernel map, symbolic, ready to
    lambdify; and the bindings of their unevaluated expectations to the array rules."""
    from .vectorized import expect
    maps = template.forward(_STATE)       # the forward maps only (a container's composed from its children's)
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
    fn = sp.lambdify((*state_args, *params), outs, modules=modules(outs, bindings), cse=True)
    return fn, has_pre, tuple(str(a) for a in state_args)


@lru_cache(maxsize=None)
def compile_array_block(block: Block, tangent: bool = False, pair_only: bool = False) -> Callable:
    """A block's forward maps on arrays (a container's composed symbolically from its children's, one expression): ``f(state, theta=None) -> (out, pre, theta')``, the output
    ``PairState``, the ``PreActivation`` (None if the block has none) and, with ``tangent``, the output's neural
    tangent kernel (``Block.tangent``; None otherwise); every field an array over the pairs (arguments broadcast),
    expectations bound to :func:`~sigprop.numerics.vectorized.expect`.

    With ``pair_only`` it maps only the cross entries: ``f(**arrays) -> (p_ab, q_ab or None, Θ_ab or None)``,
    called with the arrays named in ``f.needs`` (a subset of :data:`PAIR_ARGS`). For blocks that act on each input
    alone the per-input entries are each input's with itself, computed once per input instead of once per pair."""
    require_numbers(block)
    template, symbols = block.template()
    values = tuple(float(block.number_params()[str(sym.name)[len("param_"):]]) for sym in symbols)
    fn, has_pre, names = _compile_array_leaf(block.signature(), template, symbols, tangent, pair_only)
    if pair_only:
        def pair_step(**arrays):
            shape = np.broadcast(*arrays.values()).shape
            v = [x if isinstance(x, np.ndarray) and x.shape == shape
                 else np.broadcast_to(np.asarray(x, dtype=float), shape) for x in fn(*(arrays[n] for n in names), *values)]
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


def compile_array_step(block: Block, grid: dict) -> Step:
    """A :class:`Step` on arrays for ``block``, whose numeric parameters may be expressions in the symbols named
    in ``grid`` (name → float array, all of one shape): each parameter is evaluated on the grid, and the maps
    take and return states whose fields are arrays of that shape, their expectations bound to
    :func:`~sigprop.numerics.vectorized.expect`. Children are compiled alike; every lambdified form is shared
    with other blocks of the same signature."""
    if not isinstance(block, Block):
        raise TypeError(f"numerics cannot compile {block!r}: not a block")
    template, symbols = block.template()
    params = block.number_params()
    values = tuple(_on_grid(block, str(sym.name)[len("param_"):], params[str(sym.name)[len("param_"):]], grid)
                   for sym in symbols)
    if block.sequences:
        sequences = tuple(tuple(compile_array_step(b, grid) for b in seq) for seq in block.sequences)
        seq_has_pre = tuple(any(c.has_pre for c in seq) for seq in sequences)
        fn, has_pre = _compile_container(block.signature(), template, symbols, seq_has_pre, True)
        return Step(block, fn, values, has_pre, sequences, arrays=True)
    fn, has_pre = _compile_leaf(block.signature(), template, symbols, True)
    return Step(block, fn, values, has_pre, arrays=True)


def _on_grid(block: Block, name: str, value, grid: dict):
    """A block parameter's value on the grid: a float, or an array where it depends on the grid's symbols."""
    expr = sp.sympify(value)
    free = sorted(expr.free_symbols, key=str)
    missing = [str(s) for s in free if str(s) not in grid]
    if missing:
        raise ValueError(f"{block.describe()}: {name}={expr} depends on {', '.join(missing)}, which the grid does "
                         f"not give (given: {', '.join(sorted(grid)) or 'none'})")
    value = float(expr) if not free else np.asarray(
        sp.lambdify(free, expr, modules=np)(*(grid[str(s)] for s in free)), dtype=float)
    kind = {p.name: p.kind for p in block.params()}[name]
    bad = ~np.isfinite(value) | ((value < 0) if kind == "variance" else (value <= 0) if kind in ("positive", "size")
                                 else False)
    if np.any(bad):
        allowed = {"variance": "finite and >= 0", "positive": "finite and > 0", "size": "finite and > 0"}
        raise ValueError(f"{block.describe()}: {name}={expr} takes the value {float(np.ravel(value)[np.argmax(np.ravel(bad))])!r} "
                         f"on the grid, which is not allowed: it must be {allowed.get(kind, 'finite')}")
    return value

