"""Iterate the compiled block maps over depth: the mean-field prediction of a network, in log space.

Forward, block by block, for a pair of inputs a, b (or two members of an exchangeable batch): q, c of each
block's pre-activation, the mean square p and unit mean m of each representation. Backward, the gradient second
moments (G_aa, G_bb, G_ab) run from the output down through each block's map (:class:`~sigprop.theory.state.Backward`;
gradient independence): for blocks that act on each input alone the factors χ multiply, so
log GSC(l, L) = ½ Σ_{j>l} [log χ_j + log p^{j-1} − log p^j] and the gradient correlation obeys
ρ^{l-1} = ρ^l χ_ab/√(χ_a χ_b) with ρ^L = 1 (one probe v shared by both inputs); a training-mode batchnorm mixes
G_aa and G_ab. GSC starts from probes independent across the inputs (G_ab = 0), the correlation from a shared one.

Log space follows from each block's declared degree d (block(λx) = λ^d block(x) for λ > 0): such a block is
evaluated on its input normalized to p = 1, and the scale is carried as a logarithm (times d at its output,
times ``pre_degree`` for its pre-activation). A 10⁴-block ReLU ResNet, whose p doubles every block, stays
finite. A block without a degree needs the true p: if that no longer fits a float64, :class:`OutOfRangeError`
says at which layer.

Example
-------
>>> from sigprop.theory import Dense, relu
>>> from sigprop.numerics import predict
>>> pred = predict(50 * Dense(relu, sw2=2), q0=1.0, c0=0.5)
>>> bool(abs(pred.values["log_gsc"][0]) < 1e-12)      # He-ReLU: GSC = 1 at every depth
True
"""
from __future__ import annotations

import math
import time

import numpy as np
import sympy as sp

from .. import __version__
from ..checks import check_batch, check_batch_inputs, check_inputs, check_progress, check_seed, input_norms
from ..theory import as_network, gsc_squared
from ..theory.blocks.batchnorm import training_batchnorms, with_batch
from ..theory.blocks.params import format_number
from ..theory.network import Network
from ..theory.state import PairState, as_tuple
from .backward import gradient_pass
from .batchnorm import SAMPLES, joint_maps
from .compile import compile_block
from .finite_width import finite_width
from .prediction import Prediction

#: the logarithms of float64's largest and smallest normal numbers
LOG_MAX, LOG_TINY = math.log(np.finfo(float).max), math.log(np.finfo(float).tiny)
#: pre-activation mean squares below this (1.5e-154) are out of range: the Gaussian integrals form products of two
#: of them (q_a q_b − q_ab²), which then leave float64's normal range and lose their digits (correlations read 1)
Q_TINY = math.sqrt(np.finfo(float).tiny)
VANISHED = ("the pre-activations' mean square falls below 1.5e-154, where products of two mean squares, which the "
            "Gaussian integrals form, leave float64: the signal has vanished (a network without bias in the ordered "
            "phase)")
#: pre-activation mean squares above this (1.3e154) are out of range for the same products, which overflow there
Q_HUGE = math.sqrt(np.finfo(float).max)
EXPLODED = ("the mean square exceeds 1.3e154, where products of two mean squares, which the Gaussian integrals form, "
            "overflow float64: the signal has exploded (beyond it, only blocks that scale with their input, "
            "homogeneous activations such as relu without bias, are iterated, in normalized form)")


class OutOfRangeError(ArithmeticError):
    """A mean-field quantity left the range of float64 (or became undefined); the message names the layer."""


def predict(network, q0: float = 1.0, c0: float = 0.5, m0: float = 0.0, batch=None, width=None,
            chains: int = 2000, seed: int = 0, progress=None) -> Prediction:
    """Mean-field prediction for ``network`` (a Network, a block, or a list of blocks).

    Parameters
    ----------
    q0: mean square ‖x⁰‖²/n₀ of each of the two inputs (> 0), or a pair (q_a, q_b) for inputs of different
        norms.
    c0: correlation ⟨x⁰_a, x⁰_b⟩/(‖x⁰_a‖‖x⁰_b‖) of the two inputs, in [-1, 1].
    m0: mean over units of each input (0 for inputs in a random direction).
    batch: None (a pair of inputs), or B: the two inputs are members of an exchangeable batch of B inputs (one
        q0, every pair at correlation c0 >= −1/(B − 1)), an integer >= 2 or ``math.inf``. It sets the batch of
        every training-mode ``batchnorm`` left at the large-batch default; blocks that act on each input alone
        predict the same as for a pair. A network with training-mode batchnorm is a batch network whether or not
        ``batch`` is given (its batchnorm blocks name their batch, by default inf).
    width: None (mean field only), or n: also predict what networks of width n show — each quantity's mean over
        networks and the seed-to-seed range of one network (``prediction.finite``, a
        :class:`~sigprop.numerics.finite_width.FiniteWidth`), from ``chains`` sampled forward paths drawn with
        ``seed`` (:func:`sigprop.numerics.finite_width.finite_width`; networks of dense blocks and residual blocks
        around one dense layer). ``progress``:
        optional callable invoked after each of its layers.

    GSC is that of the whole batch as one input (Philipp, Song & Carbonell 2018): probes independent across the
    inputs. The gradient correlation uses one probe shared by all inputs; where a batchnorm makes that gradient
    vanish exactly (Σ_a of its outputs is 0 per unit), it is undefined (NaN, said in ``meta['notes']``).
    """
    net = as_network(network)
    check_inputs(q0, c0, m0)
    check_progress(progress)
    if width is not None:
        check_seed(seed)
    batch = check_batch(batch)
    if width is not None and batch is not None:
        raise ValueError(f"width={width!r} with batch={batch!r} is not allowed: the finite-width prediction is for "
                         "a pair of inputs")
    if batch is not None:
        net = Network(with_batch(net.blocks, batch))
    norms = training_batchnorms(net.blocks)
    sizes = {int(b.batch) if b.batch is not sp.oo else math.inf for b in norms} | ({batch} - {None, 2})
    if sizes or norms:
        check_batch_inputs(q0, c0, min(sizes) if sizes else math.inf, normalized=bool(norms))
    start = time.perf_counter()
    L = net.depth
    q_a, q_b = (float(v) for v in input_norms(q0))
    p_ab = float(c0) * math.sqrt(q_a * q_b) if q_a != q_b else float(c0) * q_a
    state = PairState(q_a, q_b, p_ab, float(m0), float(m0))
    scale = np.zeros(2)                      # log of the factor that multiplies the normalized p of each input
    log_p, m = np.empty((L + 1, 2)), np.empty((L + 1, 2))
    log_q, c, pre_layers = [], [], []
    chi_all = np.empty((L, 6))               # each block's backward map: χ_a, χ_b, χ_ab, μ_a, μ_b, ν
    ratio = np.empty((L, 2))                 # log of p_in/(r p_out) per block and input
    joint = {}                               # block index -> backward map from two layers up (batchnorm + act)
    rho = np.empty(L + 1)                    # correlation of the two representations
    log_p[0], m[0], rho[0] = np.log([q_a, q_b]), m0, c0
    mc_error, pending, monte_carlo = 0.0, None, False
    for i, block in enumerate(net.blocks):
        layer = i + 1
        if pending is not None:              # the pointwise block after a finite-batch batchnorm: joint maps
            maps, pending = pending, None
            degree = pre_degree = 0
        else:
            step = compile_block(block)
            degree, pre_degree = block.degree, block.pre_degree
            if degree is not None and (pre_degree is not None or not step.has_pre):
                state, scale = _normalize(state, scale, layer)
            else:                            # evaluated at the true scale: nothing to carry (scale = 0)
                state, scale = _denormalize(state, scale, layer)
                degree = pre_degree = 0
            try:
                with np.errstate(all="ignore"):          # what overflows is refused below, by layer and reason
                    maps = step(state)
            except OverflowError:
                raise OutOfRangeError(f"layer {layer} ({block.describe()}): the mean-field map overflows float64 at "
                                      f"state {state}: the signal has exploded") from None
            except ZeroDivisionError as exc:
                raise OutOfRangeError(f"layer {layer} ({block.describe()}): {exc} evaluating the mean-field map "
                                      f"at state {state}") from None
            _check_step(maps, layer, block)
            if block.joins_next_pointwise and layer < L and net.blocks[i + 1].pointwise:
                pending, joint[i], err = joint_maps(block, net.blocks[i + 1], state, maps.out)
                mc_error, monte_carlo = max(mc_error, err), monte_carlo or block.finite_batch
        out, pre, chi = maps.out, maps.pre, maps.chi
        if pre is not None:
            pre_layers.append(layer)
            log_q.append(np.log([pre.q_a, pre.q_b]) + pre_degree * scale)
            c.append(pre.q_ab / math.sqrt(pre.q_a * pre.q_b))
        out_scale = degree * scale
        log_p[layer] = np.log([out.p_a, out.p_b]) + out_scale
        with np.errstate(over="ignore"):
            m[layer] = np.array([out.m_a, out.m_b]) * np.exp(out_scale / 2)
        # state and out are in the block's own normalization, so their ratio is the true p_in/p_out
        ratio[i] = np.log(gsc_squared(1.0, np.array([state.p_a, state.p_b]), np.array([out.p_a, out.p_b]),
                                      float(block.width_ratio)))
        chi_all[i] = as_tuple(chi)
        rho[layer] = out.p_ab / math.sqrt(out.p_a * out.p_b)
        state, scale = out, out_scale
    log_gsc, corr = gradient_pass(chi_all[:, :, None], ratio[:, None, :], joint)
    log_gsc, corr = log_gsc[:, 0], corr[:, 0]
    notes = []
    if not np.all(np.isfinite(corr)):
        below = int(np.max(np.nonzero(~np.isfinite(corr))[0]))
        notes.append(f"grad_corr is undefined (NaN) at layers <= {below}: the gradient of a probe shared by the "
                     "batch vanishes exactly below a batchnorm whose outputs it reads directly")
    raw = {"log_p": log_p, "m": m, "log_q": np.array(log_q).reshape(-1, 2), "c": np.array(c),
           "log_gsc": log_gsc, "grad_corr": corr, "chi": chi_all[:, :3], "mix": chi_all[:, 3:], "rho": rho}
    notes += _beyond_float64({"p": (raw["log_p"], np.arange(L + 1)), "q": (raw["log_q"], pre_layers)})
    if np.any(np.isinf(m)):
        notes.append(f"m exceeds float64 from layer {int(np.nonzero(np.any(np.isinf(m), axis=-1))[0][0])} on: it "
                     "reads inf (its size is √p's, and log_p holds that)")
    inputs_q0 = q_a if q_a == q_b else [q_a, q_b]
    inputs = {"q0": inputs_q0, "c0": float(c0), "m0": float(m0)}
    if norms or batch is not None:
        inputs["batch"] = _batch_record(norms, batch)
    method = "mean field, gradient independence; closed forms or composite Gauss-Legendre quadrature"
    if monte_carlo:
        method += (f"; batchnorm + pointwise block at a finite batch by Monte Carlo over the sphere "
                   f"({SAMPLES} samples, relative standard error <= {mc_error:.1e})")
    finite = None
    if width is not None:
        finite = finite_width(net, width, q0, c0, chains=chains, seed=seed, progress=progress)
        method += (f"; at width {width}: {chains} forward paths sampled unit by unit, Jacobian moments carried "
                   f"along them (seed {seed})")
        notes = [*notes, *finite.notes]
    meta = {"sigprop_version": __version__, "seconds": time.perf_counter() - start, "method": method}
    if notes:
        meta["notes"] = notes
    return Prediction(architecture=net.describe(), inputs=inputs, depth=L,
                      pre_layers=np.array(pre_layers, dtype=int), raw=raw, meta=meta, finite=finite)


def _beyond_float64(logs: dict) -> list:
    """Notes for the mean squares whose values leave float64 though their logarithms, which the recursion carries,
    do not: {name: (log values [layer, input], their layers)}."""
    notes = []
    for name, (values, layers) in logs.items():
        for what, where, reads in (("exceeds float64's largest number", values > LOG_MAX, "inf"),
                                   ("falls below float64's smallest normal number", values < LOG_TINY,
                                    "0 or a rounded subnormal")):
            hit = np.nonzero(np.any(where, axis=-1))[0]
            if hit.size:
                notes.append(f"{name} {what} from layer {int(layers[hit[0]])} on (log {name} = "
                             f"{values[hit[0]].max() if reads == 'inf' else values[hit[0]].min():.6g} there): it "
                             f"reads {reads}, while log_{name} (per_input, --json) holds its value")
    return notes


def _batch_record(norms, batch):
    sizes = {b.batch for b in norms}
    if not sizes:
        return batch if batch != math.inf else "inf"
    if len(sizes) > 1:
        return sorted(format_number(s) for s in sizes)
    size = sizes.pop()
    return "inf" if size is sp.oo else int(size)


def _normalize(state: PairState, scale, layer):
    if state.p_a <= 0 or state.p_b <= 0:
        raise OutOfRangeError(f"layer {layer}: the representation vanished (p = 0); GSC is undefined")
    sa, sb = math.sqrt(state.p_a), math.sqrt(state.p_b)
    normalized = PairState(1.0, 1.0, state.p_ab / (sa * sb), state.m_a / sa, state.m_b / sb)
    if state.identical():
        normalized = PairState(1.0, 1.0, 1.0, normalized.m_a, normalized.m_a)
    return normalized, scale + np.log([state.p_a, state.p_b])


def _denormalize(state: PairState, scale, layer):
    if not scale.any():
        return state, scale
    if np.max(scale) > 700:
        raise OutOfRangeError(f"layer {layer}: the mean square p = exp({np.max(scale):.1f}) exceeds float64, and "
                              "this block does not scale with its input (it has a bias or a non-homogeneous "
                              "activation), so it cannot be iterated in normalized form")
    fa, fb = np.exp(scale)
    identical = state.identical() and scale[0] == scale[1]
    s = PairState(state.p_a * fa, state.p_b * fb, state.p_ab * math.sqrt(fa * fb), state.m_a * math.sqrt(fa),
                  state.m_b * math.sqrt(fb))
    if identical:
        s = PairState(s.p_a, s.p_a, s.p_a, s.m_a, s.m_a)
    return s, np.zeros(2)


def _check_step(maps, layer, block):
    out, pre, chi = maps.out, maps.pre, maps.chi
    values = maps.flatten()
    if pre is not None and max(pre.q_a, pre.q_b) > Q_HUGE or max(out.p_a, out.p_b) > Q_HUGE:
        raise OutOfRangeError(f"layer {layer} ({block.describe()}): {EXPLODED}")      # c = q_ab/√(q_a q_b) reads 0
    if not all(math.isfinite(v) for v in values):
        raise OutOfRangeError(f"layer {layer} ({block.describe()}): a mean-field quantity is not finite "
                              f"(state {out}, pre-activation {pre}, backward factors {chi})")
    if min(out.p_a, out.p_b) <= 0 or (pre is not None and min(pre.q_a, pre.q_b) <= 0):
        raise OutOfRangeError(f"layer {layer} ({block.describe()}): a mean square is 0, so correlations and GSC "
                              "are undefined (is a variance 0?)")
    if min(chi.chi_a, chi.chi_b) <= 0:
        raise OutOfRangeError(f"layer {layer} ({block.describe()}): the gradient vanishes exactly (χ = 0), "
                              "so GSC is undefined")
    if pre is not None and min(pre.q_a, pre.q_b) < Q_TINY:
        raise OutOfRangeError(f"layer {layer} ({block.describe()}): {VANISHED}")
    bound = 1 + 1e-9
    if abs(out.p_ab) > math.sqrt(out.p_a) * math.sqrt(out.p_b) * bound or (     # products of roots: no underflow
            pre is not None and abs(pre.q_ab) > math.sqrt(pre.q_a) * math.sqrt(pre.q_b) * bound):
        raise OutOfRangeError(f"layer {layer} ({block.describe()}): a covariance exceeds its Cauchy-Schwarz bound")
