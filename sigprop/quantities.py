"""The per-layer quantities sigprop predicts and measures, in one registry.

A :class:`Quantity` says what it is (name, meaning, the layers it lives on), how it is predicted (a function
of a prediction's per-input arrays), how it is measured and how its interval is computed (either per-seed
values with a Student-t interval of their mean, or per-seed *parts* whose means over seeds a statistic
combines, with a bootstrap interval over seeds), and how it is plotted. ``numerics`` builds predictions,
``validate`` measurements and figures, and the command line its help, from this table: adding a quantity is
one :func:`register_quantity` call.

Arrays a prediction provides (index [layer, input] for two inputs a, b): ``log_p``, ``m``, ``log_gsc`` on
layers 0..L; ``log_q`` and ``c`` on the blocks with a pre-activation; ``grad_corr`` on layers 0..L.
Arrays a measurement provides (index [seed, layer(, input)]): ``q``, ``c`` (pre-activation layers), ``p``,
``m``, ``n`` (the width of x^l), ``jac_qm2`` (‖∂x^L/∂x^l‖²_qm), ``grad_cross`` and ``grad_sq`` (sums over probes
of ⟨g_a, g_b⟩ and ‖g‖²).

Example
-------
>>> from sigprop.quantities import QUANTITIES
>>> QUANTITIES["log_gsc"].interval, QUANTITIES["grad_corr"].interval
('t', 'bootstrap')
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

LAYER_SETS = ("pre", "all")


@dataclass(frozen=True)
class Quantity:
    """One per-layer quantity (see the module docstring)."""

    name: str
    meaning: str
    layers: str
    label: str
    predicted: Callable
    measured: Optional[Callable] = None
    parts: Optional[Callable] = None
    pooled: Optional[Callable] = None
    log_valued: bool = False
    log_axis: bool = False

    def __post_init__(self):
        if self.layers not in LAYER_SETS:
            raise ValueError(f"layers={self.layers!r} is not allowed; allowed: {', '.join(LAYER_SETS)}")
        if (self.measured is None) == (self.parts is None or self.pooled is None):
            raise ValueError(f"quantity {self.name!r}: give either measured (per-seed values) or parts and pooled")

    @property
    def interval(self) -> str:
        """'t' (Student-t interval of the mean of per-seed values) or 'bootstrap' (pooled statistic)."""
        return "t" if self.measured is not None else "bootstrap"


#: name -> Quantity, in the order tables and figures list them
QUANTITIES: dict[str, Quantity] = {}


def register_quantity(quantity: Quantity) -> Quantity:
    if quantity.name in QUANTITIES:
        raise ValueError(f"name={quantity.name!r} is taken by another quantity")
    QUANTITIES[quantity.name] = quantity
    return quantity


def log_mean_exp(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """log(mean(exp(a))) along ``axis`` without overflow."""
    top = np.max(a, axis=axis, keepdims=True)
    with np.errstate(divide="ignore"):
        return np.squeeze(top, axis) + np.log(np.mean(np.exp(a - top), axis=axis))


def _exp(a):
    with np.errstate(over="ignore"):
        return np.exp(a)


def log_gsc_per_input(raw) -> np.ndarray:
    """log GSC(l, L) = log ‖J‖_qm + log ‖x^l‖ − log ‖x^L‖ per seed, layer and input, from measured arrays
    (‖x^l‖² = n_l p^l; ‖J‖²_qm from ``jac_qm2``, or from its logarithm ``log_jac_qm2`` where an array gives it,
    as a finite-width prediction does for Jacobians beyond float64)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_jac = raw["log_jac_qm2"] if "log_jac_qm2" in raw else np.log(raw["jac_qm2"])
        log_x = 0.5 * np.log(raw["p"] * raw["n"][:, :, None])
        return 0.5 * log_jac + log_x - log_x[:, -1:, :]


def _log_gsc_qm_parts(raw):
    sq_norm = raw["p"] * raw["n"][:, :, None]                         # ‖x^l‖²
    num = (raw["jac_qm2"] * sq_norm).mean(axis=2)                      # ‖J‖²_qm ‖x^l‖², mean over inputs
    den = np.broadcast_to(sq_norm[:, -1:, :].mean(axis=2), num.shape)   # ‖x^L‖²
    return num, den


def _log_gsc_qm(num, den):
    with np.errstate(divide="ignore", invalid="ignore"):
        return 0.5 * (np.log(num) - np.log(den))


def _grad_corr_parts(raw):
    return raw["grad_cross"], raw["grad_sq"][:, :, 0], raw["grad_sq"][:, :, 1]


def _grad_corr(cross, sq_a, sq_b):
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        product = sq_a * sq_b
        # a product beyond float64's normal range (Jacobians of 1e-200 in saturated nets): the product of roots
        normal = np.isfinite(product) & (product >= np.finfo(float).tiny)
        return cross / np.where(normal, np.sqrt(product), np.sqrt(sq_a) * np.sqrt(sq_b))


for _q in (
    Quantity("q", "mean square of the pre-activation of block l's last dense layer (mean over the two inputs)",
             "pre", "pre-activation q", predicted=lambda r: _exp(log_mean_exp(r["log_q"])),
             measured=lambda r: r["q"].mean(axis=2), log_axis=True),
    Quantity("c", "correlation of the two inputs' pre-activation vectors in block l", "pre",
             "pre-activation correlation c", predicted=lambda r: r["c"], measured=lambda r: r["c"]),
    Quantity("p", "mean square ||x^l||^2/n of the representation x^l (mean over the two inputs)", "all",
             "mean square p", predicted=lambda r: _exp(log_mean_exp(r["log_p"])),
             measured=lambda r: r["p"].mean(axis=2), log_axis=True),
    Quantity("m", "mean over units of x^l (mean over the two inputs)", "all", "unit mean m",
             predicted=lambda r: r["m"].mean(axis=-1), measured=lambda r: r["m"].mean(axis=2)),
    Quantity("log_gsc", "natural log of GSC(l, L) = ||dx^L/dx^l||_qm ||x^l|| / ||x^L||, geometric mean over the "
             "two inputs (mean of the log over seeds when measured)", "all",
             "GSC(l, L)  (geometric mean over inputs)", predicted=lambda r: r["log_gsc"].mean(axis=-1),
             measured=lambda r: log_gsc_per_input(r).mean(axis=2), log_valued=True, log_axis=True),
    Quantity("log_gsc_qm", "natural log of GSC(l, L) as a ratio of quadratic means over inputs (and seeds when "
             "measured)", "all", "GSC(l, L)  (ratio of quadratic means)",
             predicted=lambda r: 0.5 * log_mean_exp(2 * r["log_gsc"]), parts=_log_gsc_qm_parts,
             pooled=_log_gsc_qm, log_valued=True, log_axis=True),
    Quantity("grad_corr", "correlation of the two inputs' gradients g^l = (dx^L/dx^l)^T v, one probe v shared by "
             "both", "all", "gradient correlation", predicted=lambda r: r["grad_corr"], parts=_grad_corr_parts,
             pooled=_grad_corr),
):
    register_quantity(_q)
