"""The mean-field prediction of many configurations at once: :func:`predict_grid` iterates a network over depth
with every configuration (parameter values, inputs) in one array, so each block costs one vectorized step
whatever the number of configurations.

The recursion is :func:`~sigprop.numerics.predict`'s, in the same log space: blocks of a declared degree run on
inputs normalized to p = 1 with the scale carried as a logarithm, others at the true scale. A configuration whose
state leaves float64 or becomes undefined stops there: its values from that layer on are NaN (GSC and the
gradient correlation, which run from the output down, are NaN at every layer), and
``GridPrediction.out_of_range`` gives the layer and the reason (never a silent NaN). Where only a mean square's
value leaves float64 (a homogeneous network, run in normalized form, exploding or vanishing), its ``values`` read
inf or 0 while ``raw["log_p"]`` and ``raw["log_q"]`` hold it, as :func:`~sigprop.numerics.predict` notes.
Expectations go through the array rules of :func:`~sigprop.numerics.vectorized.expect` (relative accuracy 1e-10
or the scalar rules).

Example
-------
>>> import numpy as np
>>> from sigprop.numerics import predict_grid
>>> grid = predict_grid("20*dense(tanh,sw2=w,sb2=0.05)", w=np.array([0.5, 1.0, 2.5]))
>>> grid.shape, grid.values["log_gsc"].shape
((3,), (3, 21))
>>> bool(grid.values["log_gsc"][2, 0] > grid.values["log_gsc"][0, 0])     # chaotic tanh explodes
True
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .. import __version__
from ..quantities import QUANTITIES
from ..theory import as_network, gsc_squared, parse
from ..theory.blocks.batchnorm import training_batchnorms
from ..theory.state import BlockMaps, PairState, as_tuple
from .backward import gradient_pass
from .compile import compile_array_step
from .iterate import EXPLODED, Q_HUGE, Q_TINY, VANISHED

_INPUTS = ("q0", "q0b", "c0", "m0")
#: log of the largest mean square a block without a degree is evaluated at (float64's range, with room)
LOG_P_MAX = 700.0


@dataclass
class GridPrediction:
    """Mean-field predictions of a grid of configurations (``shape``), per layer.

    ``values[name]``: each registered quantity (:data:`sigprop.quantities.QUANTITIES`) as an array of shape
    ``shape + (layers,)``, its layers in ``layers[name]``; ``raw`` holds the per-input arrays (``log_p``, ``m``,
    ``log_gsc``: ``shape + (L+1, 2)``; ``log_q``: ``shape + (blocks with a pre-activation, 2)``; ``c``,
    ``grad_corr``, ``rho``). ``grid`` holds the broadcast parameter and input arrays; ``out_of_range`` the layer
    at which each configuration left float64 or became undefined (0 where it did not), ``reasons`` why.
    """

    architecture: str
    grid: dict
    depth: int
    pre_layers: np.ndarray
    raw: dict
    out_of_range: np.ndarray
    reasons: dict
    meta: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple:
        return self.out_of_range.shape

    @property
    def layers(self) -> dict:
        all_layers = np.arange(self.depth + 1)
        return {name: self.pre_layers if q.layers == "pre" else all_layers for name, q in QUANTITIES.items()}

    @cached_property
    def values(self) -> dict:
        with np.errstate(over="ignore", invalid="ignore"):
            return {name: np.asarray(q.predicted(self.raw), dtype=float) for name, q in QUANTITIES.items()}

    def at(self, index) -> dict:
        """The quantities of one configuration (an index into ``shape``), name → per-layer array."""
        return {name: v[index] for name, v in self.values.items()}


def predict_grid(network, q0=1.0, c0=0.5, m0=0.0, progress: bool = False, q0b=None, **grid) -> GridPrediction:
    """Mean-field predictions of ``network`` for every configuration of a grid.

    ``network``: a Network, block, list of blocks or description whose numeric parameters may be SymPy symbols
    (``"50*residual(dense(tanh,sw2=w,sb2=b),beta=beta)"``); each symbol's values come as a keyword argument
    (``w=np.linspace(1, 4, 100)``). The parameter arrays and the inputs ``q0``, ``c0``, ``m0`` (as in
    :func:`~sigprop.numerics.predict`, each a number or an array) broadcast together to the grid's shape; use
    ``np.meshgrid`` (or axes of length 1) for a product grid. ``q0b``: the second input's mean square where it
    differs from the first's (inputs of different norms, as ``q0=(q_a, q_b)`` in ``predict``), broadcast with the
    rest; by default both inputs have ``q0``. ``progress`` shows a progress bar over the blocks.

    Training-mode batchnorm (whose batch statistics are evaluated jointly with the next block) and activation
    parameters that vary over the grid are not supported here; :func:`~sigprop.numerics.predict` takes them one
    configuration at a time.
    """
    start = time.perf_counter()
    net = as_network(parse(network) if isinstance(network, str) else network)
    if training_batchnorms(net.blocks):
        raise ValueError("predict_grid does not take training-mode batchnorm (its batch statistics are evaluated "
                         "jointly with the next block, one configuration at a time): use predict")
    free = {str(s) for s in net.free_symbols}
    for b in set(net.blocks):
        for child in _leaves(b):
            for p in child.params():
                if p.kind == "activation" and getattr(child, p.name).free_symbols:
                    raise ValueError(f"{child.describe()}: activation parameters cannot vary over a grid; give "
                                     "them numbers (one predict_grid per activation)")
    unknown, missing = sorted(set(grid) - free), sorted(free - set(grid))
    if unknown:
        raise ValueError(f"{', '.join(unknown)} given, but the network has no parameter of that name (its "
                         f"symbols: {', '.join(sorted(free)) or 'none'})")
    if missing:
        raise ValueError(f"the network's parameters {', '.join(missing)} have no values: give them as keyword "
                         "arguments (arrays or numbers)")
    arrays = _broadcast_grid({**grid, "q0": q0, "q0b": q0 if q0b is None else q0b, "c0": c0, "m0": m0})
    shape = arrays["q0"].shape
    flat = {k: v.ravel() for k, v in arrays.items()}
    _check_grid_inputs(flat)
    steps = {}
    raw, pre_layers, out_of_range, reasons = _iterate(net, flat, steps, progress)
    raw = {k: np.moveaxis(v, 0, 1).reshape(shape + v.shape[:1] + v.shape[2:]) for k, v in raw.items()}
    meta = {"sigprop_version": __version__, "seconds": time.perf_counter() - start,
            "method": "mean field, gradient independence; array rules of sigprop.numerics.vectorized.expect"}
    if out_of_range.any():
        meta["notes"] = [f"{int(np.count_nonzero(out_of_range))} of {out_of_range.size} configurations left the "
                         "range of float64 or became undefined: their values are NaN from the layer in "
                         "out_of_range on (reasons in .reasons)"]
    return GridPrediction(architecture=net.describe(), grid=arrays, depth=net.depth,
                          pre_layers=np.array(pre_layers, dtype=int), raw=raw,
                          out_of_range=out_of_range.reshape(shape), reasons=reasons, meta=meta)


def _leaves(block):
    yield block
    for child in block.children:
        yield from _leaves(child)


def _broadcast_grid(values: dict) -> dict:
    try:
        arrays = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in values.values()))
    except ValueError as e:
        shapes = ", ".join(f"{k}: {np.shape(v)}" for k, v in values.items())
        raise ValueError(f"the grid's arrays do not broadcast together ({shapes}): {e}") from None
    except TypeError as e:
        raise ValueError(f"the grid's values must be numbers or arrays of numbers: {e}") from None
    if arrays[0].size == 0:
        raise ValueError("the grid is empty: give at least one value per parameter")
    return {k: np.array(a) for k, a in zip(values, arrays)}


def _check_grid_inputs(flat: dict) -> None:
    for name, v in flat.items():
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{name}={float(v[~np.isfinite(v)][0])!r} is not allowed: every value must be finite")
    checks = {"q0": (flat["q0"] <= 0, "> 0"), "q0b": (flat["q0b"] <= 0, "> 0"),
              "c0": (np.abs(flat["c0"]) > 1, "in [-1, 1]")}
    for name, (bad, allowed) in checks.items():
        if bad.any():
            raise ValueError(f"{name}={float(flat[name][bad][0])!r} is not allowed: it must be {allowed}")


def _iterate(net, flat, steps, progress):
    """The forward and backward recursions over the flattened grid; raw arrays with layers first."""
    n, L = flat["q0"].size, net.depth
    q_a, q_b, c0, m0 = flat["q0"], flat["q0b"], flat["c0"], flat["m0"]
    params = {k: v for k, v in flat.items() if k not in _INPUTS}
    state = PairState(q_a.copy(), q_b.copy(), c0 * np.sqrt(q_a) * np.sqrt(q_b), m0.copy(), m0.copy())
    scale = np.zeros((2, n))
    log_p, m = np.empty((L + 1, n, 2)), np.empty((L + 1, n, 2))
    log_q, c, pre_layers = [], [], []
    chi_all, ratio, rho = np.empty((L, 6, n)), np.empty((L, n, 2)), np.empty((L + 1, n))
    log_p[0], m[0], rho[0] = np.log(np.stack([q_a, q_b], axis=1)), m0[:, None], c0
    failed, reasons = np.zeros(n, dtype=int), {}
    blocks = net.blocks
    previous = (None, None, None)
    bar = _progress(L) if progress else None
    for i, block in enumerate(blocks):
        layer = i + 1
        known = steps.get(block)
        if known is None:     # per distinct block: its step and what the loop reads of it
            known = steps[block] = (compile_array_step(block, params), block.degree, block.pre_degree,
                                    float(block.width_ratio))
        step, degree, pre_degree, width_ratio = known
        if degree is not None and (pre_degree is not None or not step.has_pre):
            state, scale = _normalize(state, scale)
        else:
            state, scale = _denormalize(state, scale, failed, reasons, layer)
            degree = pre_degree = 0
        state = _mask(state, failed)
        with np.errstate(all="ignore"):              # what overflows is refused by _check, per configuration
            maps = _evaluate(step, state, previous if previous[0] is known else None)
        previous = (known, state, maps)
        _check(maps, failed, reasons, layer, block)
        out, pre, chi = maps.out, maps.pre, maps.chi
        dead = failed > 0
        if pre is not None:
            pre_layers.append(layer)
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                log_q.append(np.log(np.stack([pre.q_a, pre.q_b], axis=1)) + pre_degree * scale.T)
                c.append(pre.q_ab / np.sqrt(pre.q_a * pre.q_b))
        out_scale = degree * scale
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            log_p[layer] = np.log(np.stack([out.p_a, out.p_b], axis=1)) + out_scale.T
            m[layer] = np.stack([out.m_a, out.m_b], axis=1) * np.exp(out_scale.T / 2)
            ratio[i] = np.log(gsc_squared(1.0, np.stack([state.p_a, state.p_b], axis=1),
                                          np.stack([out.p_a, out.p_b], axis=1), width_ratio))
            rho[layer] = out.p_ab / np.sqrt(out.p_a * out.p_b)
        chi_all[i] = np.stack([np.broadcast_to(v, (n,)) for v in (chi.chi_a, chi.chi_b, chi.chi_ab, chi.mix_a,
                                                                      chi.mix_b, chi.mix_ab)])
        for arr in (log_p[layer], m[layer], ratio[i]):
            arr[dead] = np.nan
        rho[layer, dead] = chi_all[i][:, dead] = np.nan
        if pre is not None:
            log_q[-1][dead], c[-1][dead] = np.nan, np.nan
        state, scale = out, out_scale
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    log_gsc, corr = gradient_pass(chi_all, ratio)
    for i, lay in enumerate(failed):           # a configuration that failed has no GSC anywhere (it is from L)
        if lay:
            log_gsc[:, i], corr[:, i] = np.nan, np.nan
    raw = {"log_p": log_p, "m": m, "log_q": np.array(log_q).reshape(-1, n, 2), "c": np.array(c).reshape(-1, n),
           "log_gsc": log_gsc, "grad_corr": corr, "rho": rho}
    return raw, pre_layers, failed, reasons


def _evaluate(step, state: PairState, previous):
    """The step's maps on ``state``. After the same block (``previous``: its step entry, input state and maps),
    configurations whose input is bitwise the same as there get the same maps without evaluation: a network of
    repeated blocks at its fixed point (q*, c*) costs nothing more per block."""
    if previous is None:
        return step(state)
    _, before, maps = previous
    moved = np.zeros(np.shape(state.p_a), dtype=bool)
    for now, then in zip(as_tuple(state), as_tuple(before)):
        moved |= now != then
    active = np.flatnonzero(moved)
    if active.size == moved.size:
        return step(state)
    if not active.size:
        return maps
    sub = step.subset(active)(PairState(*(np.asarray(v)[active] for v in as_tuple(state))))
    merged = []
    for old, new in zip(maps.flatten(), sub.flatten()):
        full = np.array(np.broadcast_to(old, moved.shape), dtype=float)
        full[active] = new
        merged.append(full)
    return BlockMaps.unflatten(merged, maps.pre is not None)


def _progress(total):
    from tqdm.auto import tqdm
    return tqdm(total=total, desc="blocks", unit="block")


def _mask(state: PairState, failed) -> PairState:
    """Failed configurations carry a harmless state (their values are discarded) so the arrays stay finite."""
    dead = failed > 0
    if not dead.any():
        return state
    fix = lambda v, x: np.where(dead, x, v)       # noqa: E731
    return PairState(fix(state.p_a, 1.0), fix(state.p_b, 1.0), fix(state.p_ab, 0.0), fix(state.m_a, 0.0),
                     fix(state.m_b, 0.0))


def _fail(failed, reasons, where, layer, why):
    new = where & (failed == 0)
    failed[new] = layer
    for i in np.flatnonzero(new):
        reasons[int(i)] = why


def _normalize(state: PairState, scale):
    with np.errstate(divide="ignore", invalid="ignore"):
        sa, sb = np.sqrt(state.p_a), np.sqrt(state.p_b)
        same = (state.p_a == state.p_b) & (state.p_b == state.p_ab) & (state.m_a == state.m_b)
        p_ab = np.where(same, 1.0, state.p_ab / (sa * sb))
        m_a = state.m_a / sa
        m_b = np.where(same, m_a, state.m_b / sb)
        log = np.log(np.stack([state.p_a, state.p_b]))
    one = np.ones_like(sa)
    return PairState(one, one.copy(), p_ab, m_a, m_b), scale + log


def _denormalize(state: PairState, scale, failed, reasons, layer):
    if not scale.any():
        return state, scale
    big = np.max(scale, axis=0) > LOG_P_MAX
    _fail(failed, reasons, big, layer, f"layer {layer}: the mean square p exceeds float64 and the block does not "
          "scale with its input (a bias or a non-homogeneous activation), so it cannot run normalized")
    with np.errstate(over="ignore", invalid="ignore"):
        fa, fb = np.exp(np.where(big, 0.0, scale))
        same = (state.p_a == state.p_b) & (state.p_b == state.p_ab) & (state.m_a == state.m_b) & (fa == fb)
        p_a, p_ab = state.p_a * fa, state.p_ab * np.sqrt(fa * fb)
        m_a = state.m_a * np.sqrt(fa)
        s = PairState(p_a, np.where(same, p_a, state.p_b * fb), np.where(same, p_a, p_ab), m_a,
                      np.where(same, m_a, state.m_b * np.sqrt(fb)))
    return s, np.zeros_like(scale)


def _check(maps, failed, reasons, layer, block):
    out, pre, chi = maps.out, maps.pre, maps.chi
    values = np.stack([np.broadcast_to(v, np.shape(out.p_a)) for v in maps.flatten()])
    bound = 1 + 1e-9
    with np.errstate(invalid="ignore", over="ignore"):
        over = np.abs(out.p_ab) > np.sqrt(out.p_a) * np.sqrt(out.p_b) * bound      # products of roots: no underflow
        if pre is not None:
            over |= np.abs(pre.q_ab) > np.sqrt(pre.q_a) * np.sqrt(pre.q_b) * bound
    zero = (np.minimum(out.p_a, out.p_b) <= 0) | ((np.minimum(pre.q_a, pre.q_b) <= 0) if pre is not None else False)
    finite = np.all(np.isfinite(values), axis=0)
    with np.errstate(invalid="ignore"):
        huge = np.maximum(out.p_a, out.p_b) > Q_HUGE
        if pre is not None:
            huge = huge | (np.maximum(pre.q_a, pre.q_b) > Q_HUGE)
    problems = ((huge, EXPLODED), (~finite, "a mean-field quantity is not finite"),
                (zero, "a mean square is 0, so correlations and GSC are undefined"),
                (np.minimum(chi.chi_a, chi.chi_b) <= 0, "the gradient vanishes exactly (chi = 0), so GSC is undefined"),
                (over, "a covariance exceeds its Cauchy-Schwarz bound"),
                ((np.minimum(pre.q_a, pre.q_b) < Q_TINY) if pre is not None else False, VANISHED))
    for where, why in problems:
        if np.any(where):
            _fail(failed, reasons, where, layer, f"layer {layer} ({block.describe()}): {why}")

