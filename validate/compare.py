"""Join a prediction with a measurement: the tidy comparison table and agreement at one layer.

Example
-------
>>> from sigprop.theory import parse
>>> from sigprop.numerics import predict
>>> from sigprop.validate import compare, measure
>>> net = parse("3*dense(tanh,sw2=1.5)")
>>> rows = compare(predict(net), measure(net, width=32, seeds=2, probes=4))
>>> sorted(rows[0])[:4]
['abs_error', 'aggregation', 'architecture', 'corrected']
>>> rows[0]["aggregation"], rows[0]["corrected"]          # no prediction at width 32 was asked for
('mean over seeds', None)
"""
from __future__ import annotations

import math

from ..checks import input_norms
from ..numerics import Prediction
from ..quantities import QUANTITIES
from .measure import Measurement

#: the comparison CSV's columns, in order
COLUMNS = ["experiment", "architecture", "layer", "quantity", "predicted", "measured_mean", "measured_lo",
           "measured_hi", "width", "n_seeds", "n_excluded", "aggregation", "corrected", "corrected_se", "seed_lo",
           "seed_hi"]
#: how the measurement aggregates seeds, by the quantity's interval kind
AGGREGATION = {"t": "mean over seeds", "bootstrap": "pooled over seeds"}
_FINITE = ("corrected", "corrected_se", "seed_lo", "seed_hi")


def compare(prediction: Prediction, measurement: Measurement, experiment: str = "") -> list[dict]:
    """Tidy rows (see :data:`COLUMNS`), one per layer × quantity, plus ``inside`` (prediction within the 95%
    interval of the measured mean; None where the interval is undefined) and ``abs_error``. ``aggregation`` says
    how the seeds are combined (:data:`AGGREGATION`). A prediction made at the measurement's width
    (``predict(..., width=n)``) fills ``corrected`` (its mean over networks, with ``corrected_se``, and one
    network's range ``seed_lo``..``seed_hi``) and ``corrected_inside``; otherwise they are None.

    The prediction and the measurement must describe the same architecture and the same inputs.
    """
    if prediction.architecture != measurement.architecture:
        raise ValueError(f"prediction is for {prediction.architecture!r} but the measurement is for "
                         f"{measurement.architecture!r}")
    if prediction.depth != measurement.depth:
        raise ValueError(f"depths differ: predicted {prediction.depth}, measured {measurement.depth}")
    for key in ("q0", "c0", "m0"):
        p, m = prediction.inputs.get(key), measurement.inputs.get(key)
        if p is None or m is None or not all(math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-15)
                                             for a, b in zip(input_norms(p), input_norms(m))):
            raise ValueError(f"inputs differ: the prediction has {key}={p!r}, the measurement {key}={m!r}")
    finite = prediction.finite
    if finite is not None and finite.width != measurement.width:
        raise ValueError(f"widths differ: the prediction is for width {finite.width}, the measurement's is "
                         f"{measurement.width}")
    predicted = {(r["quantity"], r["layer"]): r for r in prediction.to_rows()}
    rows = []
    for r in measurement.to_rows():
        pr = predicted.get((r["quantity"], r["layer"]))
        if pr is None:
            continue
        pred, (lo, hi) = pr["predicted"], (r["measured_lo"], r["measured_hi"])
        defined = math.isfinite(lo) and math.isfinite(hi)
        corrected = {k: pr.get(k) for k in _FINITE}
        c = corrected["corrected"]
        rows.append({"experiment": experiment, **r, "predicted": pred,
                     "aggregation": AGGREGATION[QUANTITIES[r["quantity"]].interval], **corrected,
                     "inside": bool(lo <= pred <= hi) if defined else None,
                     "corrected_inside": bool(lo <= c <= hi) if defined and c is not None else None,
                     "abs_error": abs(pred - r["measured_mean"])})
    return [{k: row[k] for k in COLUMNS + ["inside", "corrected_inside", "abs_error"]} for row in rows]


def agreement(rows: list[dict], quantity: str = "log_gsc", layer: int = 0) -> list[dict]:
    """Agreement at one layer (default: log GSC(0, L) of the whole network) for each architecture and width."""
    out = []
    for r in rows:
        if r["quantity"] != quantity or r["layer"] != layer:
            continue
        pred, meas = r["predicted"], r["measured_mean"]
        rel = abs(pred - meas) / abs(pred) if abs(pred) > 1e-9 else None   # undefined where predicted 0
        out.append({"architecture": r["architecture"], "quantity": quantity, "width": r["width"],
                    "n_seeds": r["n_seeds"], "n_excluded": r["n_excluded"], "predicted": pred,
                    "measured_mean": meas, "measured_lo": r["measured_lo"], "measured_hi": r["measured_hi"],
                    "abs_error": abs(pred - meas), "rel_error": rel, "inside": r["inside"],
                    "aggregation": r.get("aggregation"), "corrected": r.get("corrected"),
                    "corrected_inside": r.get("corrected_inside")})
    return out


def inside_fraction(rows: list[dict]) -> dict:
    """Per quantity: the fraction of predicted values inside the measured 95% intervals (defined ones only)."""
    counts = {}
    for r in rows:
        if r["inside"] is None:
            continue
        n, k = counts.get(r["quantity"], (0, 0))
        counts[r["quantity"]] = (n + 1, k + int(r["inside"]))
    return {key: k / n for key, (n, k) in counts.items()}
