"""A mean-field prediction: per-layer values of every registered quantity, with tidy-table exports.

Example
-------
>>> from sigprop.theory import parse
>>> from sigprop.numerics import predict
>>> pred = predict(parse("3*dense(tanh,sw2=2.5,sb2=0.05)"))
>>> pred.to_csv().splitlines()[0]
'architecture,layer,quantity,predicted'
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Optional

import numpy as np

from ..io import rows_to_csv, to_json_text, to_pandas, write_atomic
from ..quantities import QUANTITIES
from .finite_width import FiniteWidth

#: finite-width columns of the tidy rows -> FiniteWidth attribute
FINITE_COLUMNS = {"corrected": "mean", "corrected_se": "se", "seed_lo": "lo", "seed_hi": "hi"}


@dataclass
class Prediction:
    """Mean-field prediction per layer.

    ``raw`` holds the per-input arrays the quantities are computed from (``log_p``, ``m``, ``log_gsc`` on
    layers 0..L; ``log_q``, ``c`` on the blocks listed in ``pre_layers``; ``grad_corr``), the correlation
    ``rho`` of the two representations on layers 0..L and each block's backward factors ``chi`` (rows χ_a, χ_b,
    χ_ab: ‖g_in‖²/n = χ ‖g_out‖²/n per input, and the cross moment's factor); ``values[name]`` and
    ``layers[name]`` each registered quantity (:data:`sigprop.quantities.QUANTITIES`). ``finite``: the prediction
    at a finite width when one was asked for (``predict(..., width=n)``), else None.
    """

    architecture: str
    inputs: dict
    depth: int
    pre_layers: np.ndarray
    raw: dict
    meta: dict = field(default_factory=dict)
    finite: Optional[FiniteWidth] = None

    @property
    def layers(self) -> dict:
        all_layers = np.arange(self.depth + 1)
        return {name: self.pre_layers if q.layers == "pre" else all_layers for name, q in QUANTITIES.items()}

    @cached_property
    def values(self) -> dict:
        with np.errstate(over="ignore"):          # p, q, m beyond float64 read inf; their logs stay in raw
            return {name: np.asarray(q.predicted(self.raw), dtype=float) for name, q in QUANTITIES.items()}

    @property
    def per_block(self) -> dict:
        """Each block's backward factors (``chi_a``, ``chi_b``, ``chi_ab``; blocks 1..L) and the two
        representations' correlation ``rho`` (layers 0..L)."""
        chi = self.raw["chi"]
        return {"chi_a": chi[:, 0], "chi_b": chi[:, 1], "chi_ab": chi[:, 2], "rho": self.raw["rho"]}

    @property
    def per_input(self) -> dict:
        """Per-input arrays (columns a, b): ``log_p``, ``log_q``, ``log_gsc``, ``m``."""
        return {k: self.raw[k] for k in ("log_p", "log_q", "log_gsc", "m")}

    def series(self, name: str):
        if name not in QUANTITIES:
            raise KeyError(f"quantity={name!r} is not predicted; available: {', '.join(QUANTITIES)}")
        return self.layers[name], self.values[name]

    def to_rows(self) -> list[dict]:
        """Tidy rows: one per layer × quantity; with a finite-width prediction also its ``width``, the mean over
        networks ``corrected`` (Monte Carlo standard error ``corrected_se``) and one network's seed-to-seed 95%
        range ``seed_lo``..``seed_hi`` (NaN for quantities pooled over networks)."""
        layers = self.layers
        rows = [{"architecture": self.architecture, "layer": int(l), "quantity": name, "predicted": float(v)}
                for name, values in self.values.items() for l, v in zip(layers[name], values)]
        if self.finite is not None:
            index = {name: {int(l): i for i, l in enumerate(layers[name])} for name in self.values}
            fw = self.finite
            for r in rows:
                i = index[r["quantity"]][r["layer"]]
                r.update(width=fw.width, **{key: float(getattr(fw, attr)[r["quantity"]][i])
                                            for key, attr in FINITE_COLUMNS.items()})
        return rows

    def to_dict(self) -> dict:
        """Everything, JSON-ready; non-finite values (p beyond float64) become null in JSON, their logs stay
        in ``per_input``."""
        layers = self.layers
        return {"architecture": self.architecture, "inputs": self.inputs, "meta": self.meta,
                "layers": {k: v.tolist() for k, v in layers.items()},
                "values": {k: v.tolist() for k, v in self.values.items()},
                "per_input": {k: np.asarray(v).tolist() for k, v in self.per_input.items()},
                "per_block": {k: np.asarray(v).tolist() for k, v in self.per_block.items()},
                "quantities": {k: q.meaning for k, q in QUANTITIES.items()},
                "finite_width": None if self.finite is None else self.finite.to_dict()}

    def to_json(self, path=None) -> str:
        text = to_json_text(self.to_dict())
        if path is not None:
            write_atomic(path, text)
        return text

    def to_csv(self, path=None) -> str:
        columns = ["architecture", "layer", "quantity", "predicted"]
        if self.finite is not None:
            columns += ["width", *FINITE_COLUMNS]
        text = rows_to_csv(self.to_rows(), columns)
        if path is not None:
            write_atomic(path, text)
        return text

    def to_pandas(self):
        return to_pandas(self.to_rows())
