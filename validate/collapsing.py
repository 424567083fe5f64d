"""Collapsing domains on sampled networks: each unit's pre-activation standard deviation and sign diversity over a
batch of B inputs, measured beside mean field's prediction (:mod:`sigprop.numerics.collapsing`).

The networks are fed B inputs, every pair at correlation c0 (``measure(..., batch=B)``); a unit's statistics are
over the batch, their mean over units is taken per network, and the 95% interval is over networks. Mean field
predicts both where the batch's pre-activations are equicorrelated with c ≥ 0 (not after training-mode
batchnorm, whose batch has c = −1/(B − 1)).

Example
-------
>>> from sigprop.theory import parse
>>> from sigprop.validate.collapsing import collapsing_rows
>>> rows = collapsing_rows("tanh", parse("3*dense(tanh,sw2=1.5)"), width=32, seeds=2, batch=8)
>>> sorted({r["quantity"] for r in rows}), len(rows)
(['sign_diversity', 'unit_std'], 6)
"""
from __future__ import annotations

from ..numerics import predict
from ..theory import Dense, as_network
from ..numerics.collapsing import predicted_collapsing
from .measure import measure


def _linear(block) -> bool:
    """A dense block with the identity activation: its pre-activation feeds no nonlinearity."""
    act = getattr(block, "activation", None)
    return isinstance(block, Dense) and act is not None and act.name == "linear"


COLUMNS = ["architecture", "layer", "quantity", "predicted", "measured_mean", "measured_lo", "measured_hi", "width",
           "n_seeds", "batch"]


def collapsing_rows(label, net, width: int, seeds: int, batch: int = 64, q0: float = 1.0, c0: float = 0.5,
                    dtype="float64", device="cpu", progress=None, prediction=None) -> list[dict]:
    """Rows per pre-activation layer and quantity (``unit_std``, ``sign_diversity``): mean field (NaN where it does
    not apply) and the sampled networks' mean over units, averaged over ``seeds`` networks with a t interval. The
    pre-activations are those of nonlinearities: a ``dense(linear)`` block's output is left out."""
    pred = prediction if prediction is not None else predict(net, q0=q0, c0=c0)
    expected = predicted_collapsing(pred, batch)
    meas = measure(net, width=width, seeds=seeds, q0=q0, c0=c0, probes=8, dtype=dtype, device=device,
                   progress=progress, batch=batch)
    rows = []
    blocks = as_network(net).blocks
    units = meas.unit_summary()
    for quantity, key in (("unit_std", "std"), ("sign_diversity", "sign_diversity")):
        s = units[quantity]
        for i, layer in enumerate(meas.pre_layers):
            if _linear(blocks[layer - 1]):
                continue
            rows.append({"architecture": label, "layer": int(layer), "quantity": quantity,
                         "predicted": float(expected[key][i]), "measured_mean": float(s["mean"][i]),
                         "measured_lo": float(s["lo"][i]), "measured_hi": float(s["hi"][i]), "width": width,
                         "n_seeds": int(s["n"][i]), "batch": batch})
    return rows
