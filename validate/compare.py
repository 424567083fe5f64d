"""Join a prediction with a measurement: the tidy comparison table and agreement figures."""
from __future__ import annotations

from numerics import Prediction

from .measure import Measurement

#: the comparison CSV's columns, in order
COLUMNS = ["experiment", "architecture", "layer", "quantity", "predicted", "measured_mean", "measured_lo",
           "measured_hi", "width", "n_seeds"]


def compare(prediction: Prediction, measurement: Measurement, experiment: str = "") -> list[dict]:
    """Tidy rows (see :data:`COLUMNS`), one per layer × quantity, plus ``inside`` (prediction within the 95%
    interval of the measured mean) and ``abs_error`` |predicted − measured_mean|."""
    if prediction.architecture != measurement.architecture:
        raise ValueError(f"prediction is for {prediction.architecture!r} but the measurement is for "
                         f"{measurement.architecture!r}")
    if prediction.depth != measurement.depth:
        raise ValueError(f"depths differ: predicted {prediction.depth}, measured {measurement.depth}")
    predicted = {(r["quantity"], r["layer"]): r["predicted"] for r in prediction.to_rows()}
    rows = []
    for r in measurement.to_rows():
        pred = predicted.get((r["quantity"], r["layer"]))
        if pred is None:
            continue
        rows.append({"experiment": experiment, **r, "predicted": pred,
                     "inside": bool(r["measured_lo"] <= pred <= r["measured_hi"]),
                     "abs_error": abs(pred - r["measured_mean"])})
    return [{k: row[k] for k in COLUMNS + ["inside", "abs_error"]} for row in rows]


def agreement(rows: list[dict], quantity: str = "log_gsc", layer: int = 0) -> dict:
    """Agreement at one layer (default: log GSC(0, L) of the whole network) for each architecture and width."""
    out = []
    for r in rows:
        if r["quantity"] != quantity or r["layer"] != layer:
            continue
        pred, meas = r["predicted"], r["measured_mean"]
        rel = abs(pred - meas) / abs(pred) if abs(pred) > 1e-9 else None   # undefined where predicted 0
        out.append({"architecture": r["architecture"], "width": r["width"], "n_seeds": r["n_seeds"],
                    "predicted": pred, "measured_mean": meas, "measured_lo": r["measured_lo"],
                    "measured_hi": r["measured_hi"], "abs_error": abs(pred - meas), "rel_error": rel,
                    "inside": r["inside"]})
    return out
