"""Iterate the compiled block maps over depth: the mean-field prediction of a network, in log space.

Forward, block by block, for a pair of inputs a, b: q, c of each block's pre-activation, the mean square p and
unit mean m of each representation. Backward, the per-input factors χ multiply (gradient independence):
log GSC(l, L) = ½ Σ_{j>l} [log χ_j + log p^{j-1} − log p^j], and the gradient correlation obeys
ρ^{l-1} = ρ^l χ_ab/√(χ_a χ_b) with ρ^L = 1 (one probe v shared by both inputs).

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

from .. import __version__
from ..checks import check_inputs, input_norms
from ..theory import as_network, gradient_correlation_factor, gsc_squared
from ..theory.state import PairState
from .compile import compile_block
from .prediction import Prediction


class OutOfRangeError(ArithmeticError):
    """A mean-field quantity left the range of float64 (or became undefined); the message names the layer."""


def predict(network, q0: float = 1.0, c0: float = 0.5, m0: float = 0.0) -> Prediction:
    """Mean-field prediction for ``network`` (a Network, a block, or a list of blocks).

    Parameters
    ----------
    q0: mean square ‖x⁰‖²/n₀ of each of the two inputs (> 0), or a pair (q_a, q_b) for inputs of different
        norms.
    c0: correlation ⟨x⁰_a, x⁰_b⟩/(‖x⁰_a‖‖x⁰_b‖) of the two inputs, in [-1, 1].
    m0: mean over units of each input (0 for inputs in a random direction).
    """
    net = as_network(network)
    check_inputs(q0, c0, m0)
    start = time.perf_counter()
    L = net.depth
    q_a, q_b = (float(v) for v in input_norms(q0))
    p_ab = float(c0) * math.sqrt(q_a * q_b) if q_a != q_b else float(c0) * q_a
    state = PairState(q_a, q_b, p_ab, float(m0), float(m0))
    scale = np.zeros(2)                      # log of the factor that multiplies the normalized p of each input
    log_p, m = np.empty((L + 1, 2)), np.empty((L + 1, 2))
    log_q, c, pre_layers = [], [], []
    log_factor = np.empty((L, 2))            # log GSC of each block, per input
    chi_corr = np.empty(L)
    chi_all = np.empty((L, 3))               # each block's backward factors χ_a, χ_b, χ_ab
    rho = np.empty(L + 1)                    # correlation of the two representations
    log_p[0], m[0], rho[0] = np.log([q_a, q_b]), m0, c0
    for i, block in enumerate(net.blocks):
        layer = i + 1
        step = compile_block(block)
        degree, pre_degree = block.degree, block.pre_degree
        if degree is not None and (pre_degree is not None or not step.has_pre):
            state, scale = _normalize(state, scale, layer)
        else:                                # evaluated at the true scale: nothing to carry (scale = 0)
            state, scale = _denormalize(state, scale, layer)
            degree = pre_degree = 0
        try:
            maps = step(state)
        except (OverflowError, ZeroDivisionError) as exc:
            raise OutOfRangeError(f"layer {layer} ({block.describe()}): {exc} evaluating the mean-field map "
                                  f"at state {state}") from None
        _check_step(maps, layer, block)
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
        log_factor[i] = 0.5 * np.log(gsc_squared(np.array([chi.chi_a, chi.chi_b]), np.array([state.p_a, state.p_b]),
                                                 np.array([out.p_a, out.p_b]), float(block.width_ratio)))
        chi_corr[i] = gradient_correlation_factor(chi.chi_a, chi.chi_b, chi.chi_ab)
        chi_all[i] = chi.chi_a, chi.chi_b, chi.chi_ab
        rho[layer] = out.p_ab / math.sqrt(out.p_a * out.p_b)
        state, scale = out, out_scale
    # Backward: GSC(l, L) from the per-block factors, accumulated from the output down.
    log_gsc = np.zeros((L + 1, 2))
    log_gsc[:-1] = np.cumsum(log_factor[::-1], axis=0)[::-1]
    grad_corr = np.ones(L + 1)
    grad_corr[:-1] = np.cumprod(chi_corr[::-1])[::-1]
    raw = {"log_p": log_p, "m": m, "log_q": np.array(log_q).reshape(-1, 2), "c": np.array(c),
           "log_gsc": log_gsc, "grad_corr": grad_corr, "chi": chi_all, "rho": rho}
    inputs_q0 = q_a if q_a == q_b else [q_a, q_b]
    return Prediction(
        architecture=net.describe(), inputs={"q0": inputs_q0, "c0": float(c0), "m0": float(m0)}, depth=L,
        pre_layers=np.array(pre_layers, dtype=int), raw=raw,
        meta={"sigprop_version": __version__, "seconds": time.perf_counter() - start,
              "method": "mean field, gradient independence; closed forms or composite Gauss-Legendre quadrature"},
    )


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
    if not all(math.isfinite(v) for v in values):
        raise OutOfRangeError(f"layer {layer} ({block.describe()}): a mean-field quantity is not finite "
                              f"(state {out}, pre-activation {pre}, backward factors {chi})")
    if min(out.p_a, out.p_b) <= 0 or (pre is not None and min(pre.q_a, pre.q_b) <= 0):
        raise OutOfRangeError(f"layer {layer} ({block.describe()}): a mean square is 0, so correlations and GSC "
                              "are undefined (is a variance 0?)")
    if min(chi.chi_a, chi.chi_b) <= 0:
        raise OutOfRangeError(f"layer {layer} ({block.describe()}): the gradient vanishes exactly (χ = 0), "
                              "so GSC is undefined")
    bound = 1 + 1e-9
    if abs(out.p_ab) > math.sqrt(out.p_a * out.p_b) * bound or (
            pre is not None and abs(pre.q_ab) > math.sqrt(pre.q_a * pre.q_b) * bound):
        raise OutOfRangeError(f"layer {layer} ({block.describe()}): a covariance exceeds its Cauchy-Schwarz bound")
