"""Iterate the compiled block maps over depth: the mean-field prediction of a network, in log space.

Forward, block by block, for a pair of inputs a, b: q, c of each block's pre-activation, the mean square p and
unit mean m of each representation. Backward, the per-input factors χ multiply (gradient independence):
log GSC(l, L) = ½ Σ_{j>l} [log χ_j + log p^{j-1} − log p^j], and the gradient correlation obeys
ρ^{l-1} = ρ^l χ_ab/√(χ_a χ_b) with ρ^L = 1 (one probe v shared by both inputs).

Log space: a block that is positively homogeneous (relu or linear without bias) scales exactly with its input,
so its input state is normalized to p = 1 and the scale is carried as a logarithm; depth 10⁴ of a ReLU ResNet,
whose p doubles every block, stays finite. A block that is not homogeneous needs the true p: if that no longer
fits a float64, :class:`OutOfRangeError` says at which layer.

Example
-------
>>> from theory import Dense, relu
>>> from numerics import predict
>>> pred = predict(50 * Dense(relu, sw2=2), q0=1.0, c0=0.5)
>>> bool(abs(pred.values["log_gsc"][0]) < 1e-12)      # He-ReLU: GSC = 1 at every depth
True
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from theory import as_network, gradient_correlation_factor, gsc_squared

from .compile import compile_block
from .results import QUANTITIES, rows_to_csv, sigprop_version, to_json_text, to_pandas, write_atomic


class OutOfRangeError(ArithmeticError):
    """A mean-field quantity left the range of float64 (or became undefined); the message names the layer."""


def check_inputs(q0, c0, m0=0.0):
    """Raise a ValueError naming the first input statistic that is not allowed."""
    for name, v in (("q0", q0), ("c0", c0), ("m0", m0)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) or not math.isfinite(v):
            raise ValueError(f"{name}={v!r} is not allowed: it must be a finite real number")
    if q0 <= 0:
        raise ValueError(f"q0={q0!r} is not allowed: the inputs' mean square must be > 0")
    if not -1.0 <= c0 <= 1.0:
        raise ValueError(f"c0={c0!r} is not allowed: a correlation must lie in [-1, 1]")
    if m0 * m0 > q0:
        raise ValueError(f"m0={m0!r} is not allowed: the unit mean satisfies m0² <= q0 = {q0!r}")


@dataclass
class Prediction:
    """Mean-field prediction per layer.

    ``values[name]`` holds quantity ``name`` (see :data:`numerics.results.QUANTITIES`) at ``layers[name]``;
    ``per_input`` holds the per-input arrays (columns a, b): ``log_p``, ``log_q``, ``log_gsc``, ``m``.
    """

    architecture: str
    inputs: dict
    layers: dict
    values: dict
    per_input: dict
    meta: dict = field(default_factory=dict)

    @property
    def depth(self) -> int:
        return int(self.layers["p"][-1])

    def series(self, name: str):
        if name not in self.values:
            raise KeyError(f"quantity={name!r} is not predicted; available: {', '.join(self.values)}")
        return self.layers[name], self.values[name]

    def to_rows(self) -> list[dict]:
        """Tidy rows: one per layer × quantity."""
        return [{"architecture": self.architecture, "layer": int(l), "quantity": name, "predicted": float(v)}
                for name in self.values for l, v in zip(self.layers[name], self.values[name])]

    def to_dict(self) -> dict:
        return {"architecture": self.architecture, "inputs": self.inputs, "meta": self.meta,
                "layers": {k: v.tolist() for k, v in self.layers.items()},
                "values": {k: v.tolist() for k, v in self.values.items()},
                "per_input": {k: v.tolist() for k, v in self.per_input.items()},
                "quantities": {k: QUANTITIES[k] for k in self.values}}

    def to_json(self, path=None) -> str:
        text = to_json_text(self.to_dict())
        if path is not None:
            write_atomic(path, text)
        return text

    def to_csv(self, path=None) -> str:
        text = rows_to_csv(self.to_rows(), ["architecture", "layer", "quantity", "predicted"])
        if path is not None:
            write_atomic(path, text)
        return text

    def to_pandas(self):
        return to_pandas(self.to_rows())


def predict(network, q0: float = 1.0, c0: float = 0.5, m0: float = 0.0) -> Prediction:
    """Mean-field prediction for ``network`` (a theory Network, Block, or list of blocks).

    Parameters
    ----------
    q0: mean square ‖x⁰‖²/n₀ of each of the two inputs (> 0).
    c0: correlation ⟨x⁰_a, x⁰_b⟩/(‖x⁰_a‖‖x⁰_b‖) of the two inputs, in [-1, 1].
    m0: mean over units of each input (0 for inputs in a random direction).
    """
    net = as_network(network)
    check_inputs(q0, c0, m0)
    start = time.perf_counter()
    L = net.depth
    state = (float(q0), float(q0), float(c0) * float(q0), float(m0), float(m0))
    scale = np.zeros(2)                      # log of the factor that multiplies the normalized p of each input
    log_p = np.empty((L + 1, 2))
    m = np.empty((L + 1, 2))
    log_q = np.empty((L, 2))
    c = np.empty(L)
    log_factor = np.empty((L, 2))            # log GSC of each block, per input
    chi_corr = np.empty(L)
    log_p[0] = math.log(q0)
    m[0] = m0
    for i, block in enumerate(net.blocks):
        layer = i + 1
        step = compile_block(block)
        if block.homogeneous:
            state, scale = _normalize(state, scale, layer)
        else:
            state, scale = _denormalize(state, scale, layer)
        try:
            out, pre, chi = step(state)
        except (OverflowError, ZeroDivisionError) as exc:
            raise OutOfRangeError(f"layer {layer} ({block.describe()}): {exc} evaluating the mean-field map "
                                  f"at state {state}") from None
        _check_step(out, pre, chi, layer, block)
        log_q[i] = np.log(pre[:2]) + scale
        c[i] = pre[2] / math.sqrt(pre[0] * pre[1])
        log_p[layer] = np.log(out[:2]) + scale
        with np.errstate(over="ignore"):
            m[layer] = np.asarray(out[3:5]) * np.exp(scale / 2)
        # state and out share one normalization, so their ratio is the true p_in/p_out
        log_factor[i] = 0.5 * np.log(gsc_squared(np.asarray(chi[:2]), np.asarray(state[:2]), np.asarray(out[:2])))
        chi_corr[i] = gradient_correlation_factor(*chi)
        state = out
    # Backward: GSC(l, L) from the per-block factors, accumulated from the output down.
    log_gsc = np.zeros((L + 1, 2))
    log_gsc[:-1] = np.cumsum(log_factor[::-1], axis=0)[::-1]
    grad_corr = np.ones(L + 1)
    grad_corr[:-1] = np.cumprod(chi_corr[::-1])[::-1]
    block_layers, all_layers = np.arange(1, L + 1), np.arange(0, L + 1)
    with np.errstate(over="ignore"):   # p, q, m beyond float64 read inf; their logs stay in per_input
        values = {
            "q": np.exp(_log_mean_exp(log_q)),
            "c": c,
            "p": np.exp(_log_mean_exp(log_p)),
            "m": m.mean(axis=1),
            "log_gsc": log_gsc.mean(axis=1),
            "log_gsc_qm": 0.5 * _log_mean_exp(2 * log_gsc),
            "grad_corr": grad_corr,
        }
    layers = {k: (block_layers if k in ("q", "c") else all_layers) for k in values}
    return Prediction(
        architecture=net.describe(),
        inputs={"q0": float(q0), "c0": float(c0), "m0": float(m0)},
        layers=layers, values=values,
        per_input={"log_p": log_p, "log_q": log_q, "log_gsc": log_gsc, "m": m},
        meta={"sigprop_version": sigprop_version(), "seconds": time.perf_counter() - start,
              "method": "mean field, gradient independence; closed forms or composite Gauss-Legendre quadrature"},
    )


def _log_mean_exp(a):
    top = a.max(axis=1)
    return top + np.log(np.exp(a - top[:, None]).mean(axis=1))


def _normalize(state, scale, layer):
    pa, pb, pab, ma, mb = state
    if pa <= 0 or pb <= 0:
        raise OutOfRangeError(f"layer {layer}: the representation vanished (p = 0); GSC is undefined")
    sa, sb = math.sqrt(pa), math.sqrt(pb)
    return (1.0, 1.0, pab / (sa * sb), ma / sa, mb / sb), scale + np.log([pa, pb])


def _denormalize(state, scale, layer):
    if not scale.any():
        return state, scale
    if np.max(scale) > 700:
        raise OutOfRangeError(f"layer {layer}: the mean square p = exp({np.max(scale):.1f}) exceeds float64, and "
                              "this block is not positively homogeneous (it has a bias or a non-homogeneous "
                              "activation), so it cannot be iterated in normalized form")
    fa, fb = np.exp(scale)
    pa, pb, pab, ma, mb = state
    return (pa * fa, pb * fb, pab * math.sqrt(fa * fb), ma * math.sqrt(fa), mb * math.sqrt(fb)), np.zeros(2)


def _check_step(out, pre, chi, layer, block):
    values = (*out, *pre, *chi)
    if not all(math.isfinite(v) for v in values):
        raise OutOfRangeError(f"layer {layer} ({block.describe()}): a mean-field quantity is not finite "
                              f"(state {out}, pre-activation {pre}, backward factors {chi})")
    if min(out[0], out[1], pre[0], pre[1]) <= 0:
        raise OutOfRangeError(f"layer {layer} ({block.describe()}): a mean square is 0, so correlations and GSC "
                              "are undefined (is a variance 0?)")
    if min(chi[0], chi[1]) <= 0:
        raise OutOfRangeError(f"layer {layer} ({block.describe()}): the gradient vanishes exactly (χ = 0), "
                              "so GSC is undefined")
    if abs(out[2]) > math.sqrt(out[0] * out[1]) * (1 + 1e-9) or abs(pre[2]) > math.sqrt(pre[0] * pre[1]) * (1 + 1e-9):
        raise OutOfRangeError(f"layer {layer} ({block.describe()}): a covariance exceeds its Cauchy-Schwarz bound")
