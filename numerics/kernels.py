"""Kernels over a data set: the NNGP and NTK matrices of a network for N inputs at once, with the Gram matrix of
every layer.

The maps are the blocks' own (``Block.maps`` for the covariances, ``Block.tangent`` for the neural tangent
kernel), compiled on arrays (:func:`~sigprop.numerics.compile.compile_array_block`) and applied to the
pairs of the inputs tile by tile (the upper triangle's), in float64: the pair (a, b) carries (p_a, p_b, p_ab) = the
mean squares ‖x_a‖²/d, ‖x_b‖²/d and ⟨x_a, x_b⟩/d of the inputs, so inputs of different norms are exact. The NTK is that of the
NTK parametrization (Jacot et al. 2018), per output unit.

Conventions against neural-tangents: ``stax.serial(*[Dense(n, W_std=w, b_std=b), Relu()] * L, Dense(n, W_std=w,
b_std=b))`` is ``L*dense(relu,sw2=w²,sb2=b²),dense(linear,sw2=w²,sb2=b²)`` here (a dense block is φ(Wx + b), so
the readout is a linear one), and its input kernel x·x'/d is the same; its ``nngp`` and ``ntk`` are this module's
``nngp`` and ``ntk`` of that network.

Example
-------
>>> import numpy as np
>>> from sigprop.theory import parse
>>> from sigprop.numerics.kernels import kernels
>>> x = np.array([[1.0, 0.0], [0.6, 0.8]])
>>> k = kernels(parse("3*dense(relu,sw2=2),dense(linear)"), x, ntk=True)
>>> np.round(k.nngp, 6).tolist()
[[0.5, 0.387656], [0.387656, 0.5]]
>>> np.round(k.ntk, 6).tolist()
[[2.0, 0.976143], [0.976143, 2.0]]
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..theory.blocks.batchnorm import training_batchnorms
from ..theory.state import PairState, TangentKernel
from .compile import compile_array_block, require_numbers


@dataclass
class Kernels:
    """``nngp``: (N, N) kernel ⟨x_a, x_b⟩/n of the network's output representation; ``ntk``: its neural tangent
    kernel (None unless asked for); ``layers``: per block, the output Gram matrix (and ``pre_layers`` the
    pre-activation Gram matrix of blocks that have one, by block index) when ``layers=True``."""

    nngp: np.ndarray
    ntk: Optional[np.ndarray] = None
    layers: list = field(default_factory=list)
    pre_layers: dict = field(default_factory=dict)


def _inputs(x, gram):
    if (x is None) == (gram is None):
        raise ValueError("give the inputs x (an (N, d) array) or their Gram matrix gram (N, N), not both")
    if gram is None:
        x = np.asarray(x, dtype=float)
        if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(f"x with shape {x.shape} is not allowed: give an (N, d) array with N, d >= 1")
        if not np.all(np.isfinite(x)):
            raise ValueError("x is not allowed: it holds nan or inf")
        return x @ x.T / x.shape[1]
    g = np.asarray(gram, dtype=float)
    if g.ndim != 2 or g.shape[0] != g.shape[1] or g.shape[0] == 0:
        raise ValueError(f"gram with shape {g.shape} is not allowed: give a square (N, N) array")
    if not np.all(np.isfinite(g)) or not np.allclose(g, g.T, rtol=1e-12, atol=0) or np.any(np.diag(g) < 0):
        raise ValueError("gram is not allowed: it must be finite and symmetric with a non-negative diagonal")
    return (g + g.T) / 2


def _own_diagonal(p_ab, t_ab, rows, own, layer):
    """A diagonal tile's pair entries with each input's own entries (``own``'s ``layer``) where the two inputs are
    one."""
    p_ab = np.array(p_ab, dtype=float)
    np.fill_diagonal(p_ab, own["p"][layer][rows])
    if t_ab is not None:
        t_ab = np.array(t_ab, dtype=float)
        np.fill_diagonal(t_ab, own["Theta"][layer][rows])
    return p_ab, t_ab


#: inputs per side of a tile of pairs: all blocks run on one tile before the next, the per-input entries broadcast
#: along its rows and columns (what depends on one input alone is computed per input). Tiles run in threads (NumPy
#: releases the interpreter lock in its array operations); each must be large enough that its operations, not the
#: hand-offs of that lock, take the time: 500 × 500 pairs was the fastest of 122-1000 with two threads
TILE = 500
#: inputs per side of the squares along the diagonal (computed whole, their lower halves then dropped)
STEP = 250


def _prime_allocator() -> None:
    """Allocate and free one 32 MB block. glibc's malloc serves large blocks by mapping fresh pages and returns them
    on free (every page then faults in anew when touched) until a freed mapping teaches it a larger threshold; freeing
    this one sets that threshold to 32 MB (glibc's cap) and its heap's trim threshold to twice that, so a tile's
    temporaries (2 MB each) reuse heap memory from the start. Without it the first call in a process was ~1.5x
    slower than later ones; other allocators are unaffected."""
    np.empty(4_000_000)


def _threads(threads) -> int:
    """The number of threads: ``None`` → the CPUs this process may run on."""
    if threads is None:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"threads={threads!r} is not allowed: give a positive integer, or None for every CPU")
    return int(threads)


def kernels(network, x=None, *, gram=None, ntk: bool = False, layers: bool = False, threads=None) -> Kernels:
    """NNGP (and with ``ntk`` the NTK) of ``network`` over the inputs ``x`` ((N, d); the input kernel is
    x xᵀ/d) or over a given input ``gram`` matrix. Blocks of any kind, residual and other containers included (the
    NTK needs blocks that define ``tangent``: dense, act, layernorm, eval-mode batchnorm, dropout, residual with a
    dense layer at the top level of a path); batch-coupled blocks (training-mode batchnorm) are refused. Dropout
    draws a mask per input: two different inputs have independent masks, an input with itself one mask.

    Each input's own entries (mean square, mean, Θ_aa) are run down the network once; the pairs then carry only
    their cross entries, block by block, on tiles of at most :data:`TILE` × :data:`TILE` pairs covering the upper
    triangle (:func:`_tiles`; along the diagonal, :data:`STEP`-sided squares computed whole). The tiles are independent: ``threads`` of them run at once (default: one per
    CPU; NumPy releases the interpreter lock inside its array operations), and the result does not depend on how
    many."""
    blocks = getattr(network, "blocks", None)
    if blocks is None:
        raise TypeError(f"kernels needs a Network (e.g. sigprop.theory.parse(...)), not {type(network).__name__}")
    for block in blocks:
        require_numbers(block)
    coupled = training_batchnorms(blocks)
    if coupled:
        raise ValueError(f"{coupled[0].describe()}: a training-mode batchnorm couples the inputs of a batch; "
                         "kernels over a data set take blocks that act on each input alone")
    k0 = _inputs(x, gram)
    workers = _threads(threads)
    n = k0.shape[0]
    # each input with itself, block by block: its mean square, mean and Θ before every block
    diag = np.diag(k0).copy()
    state = PairState(diag, diag, diag, np.zeros(n), np.zeros(n))
    theta = TangentKernel(*(np.zeros(n) for _ in range(3))) if ntk else None
    own = {"p": [], "m": [], "Theta": []}
    for block in [*blocks, None]:
        own["p"].append(state.p_a)
        own["m"].append(state.m_a)
        own["Theta"].append(theta.t_a if ntk else np.zeros(n))
        if block is not None:
            state, _, theta = compile_array_block(block, tangent=ntk)(state, theta)
    own = {k: np.array(v) for k, v in own.items()}            # (blocks + 1, N): before each block, and the output
    # a random block (dropout) treats the pair's two inputs as two draws: an input's entry with itself is one draw
    redraws = [not block.is_deterministic for block in blocks]
    steps = [compile_array_block(block, tangent=ntk, pair_only=True) for block in blocks]
    final, tangent = np.empty((n, n)), (np.empty((n, n)) if ntk else None)
    per_layer = np.empty((len(blocks), n, n)) if layers else None
    per_pre = {i: np.empty((n, n)) for i, step in enumerate(steps) if step.has_pre} if layers else {}

    def store(array, value, rows, cols):
        if rows == cols:                       # a diagonal tile: its upper triangle, mirrored (exactly symmetric)
            value = np.triu(value) + np.triu(value, 1).T
        array[rows, cols] = value
        if rows != cols:
            array[cols, rows] = value.T

    def tile(corner):
        rows, cols = corner
        side = {"a": (rows, None), "b": (None, cols)}
        p_ab, t_ab = k0[rows, cols], np.zeros((rows.stop - rows.start, cols.stop - cols.start))
        for i, step in enumerate(steps):
            # the pair's cross entries, and the per-input entries this block reads: a column and a row
            arrays = {name: (p_ab if name == "p_ab" else t_ab if name == "Theta_ab"
                             else _side(own[name[:-2]][i], *side[name[-1]])) for name in step.needs}
            p_ab, q_ab, t_ab = step(**arrays)
            if redraws[i] and rows == cols:
                p_ab, t_ab = _own_diagonal(p_ab, t_ab, rows, own, i + 1)
            if layers:
                store(per_layer[i], p_ab, rows, cols)
                if q_ab is not None:
                    store(per_pre[i], q_ab, rows, cols)
        store(final, p_ab, rows, cols)
        if ntk:
            store(tangent, t_ab, rows, cols)

    corners = _tiles(n)
    if n > STEP:
        _prime_allocator()
    workers = min(workers, len(corners))
    if workers > 1:                           # each tile writes its own entries: no two threads share one
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(tile, corners))
    else:
        for corner in corners:
            tile(corner)
    out = Kernels(nngp=final, ntk=tangent)
    if layers:
        out.layers = list(per_layer)
        out.pre_layers = per_pre
    return out


def _tiles(n: int) -> list:
    """(rows, cols) slices covering the upper triangle of n × n pairs, diagonal included: :data:`TILE`-sided
    squares off the diagonal; along it a staircase of :data:`STEP`-sided squares (computed whole and mirrored)
    with the rectangles between them, so that little of a diagonal square's lower half is computed."""
    out = []
    for a0 in range(0, n, TILE):
        a1 = min(n, a0 + TILE)
        for r0 in range(a0, a1, STEP):
            r1 = min(a1, r0 + STEP)
            out.append((slice(r0, r1), slice(r0, r1)))
            if r1 < a1:
                out.append((slice(r0, r1), slice(r1, a1)))
        out += [(slice(a0, a1), slice(b0, min(n, b0 + TILE))) for b0 in range(a1, n, TILE)]
    return out


def _side(values, rows, cols):
    """One input's entries over a tile: a column (the rows' inputs) or a row (the columns')."""
    return values[rows][:, None] if rows is not None else values[cols][None, :]
