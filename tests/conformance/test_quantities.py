"""Every registered quantity: predicted and measured on the same small networks, on the layers it declares.

Each quantity must (i) be predicted and measured on exactly its declared layers, (ii) pass the acceptance
criterion (tests/conftest.py) at the checked layers of two networks with different features (a biased tanh
stack; a ReLU ResNet, whose unit means are nonzero), and (iii) reject the prediction of a network with a 30%
larger weight variance somewhere — a quantity that cannot tell them apart is not being measured.
"""
from __future__ import annotations

import numpy as np
import pytest

from sigprop.numerics import predict
from sigprop.quantities import QUANTITIES
from sigprop.theory import parse
from sigprop.validate import compare, measure

NETS = {"tanh": ("8*dense(tanh,sw2=1.5,sb2=0.1)", "8*dense(tanh,sw2=1.95,sb2=0.1)"),
        "relu-resnet": ("dense(relu,sw2=2),4*residual(dense(relu,sw2=2),dense(linear),beta=0.7)",
                        "dense(relu,sw2=2.6),4*residual(dense(relu,sw2=2.6),dense(linear,sw2=1.3),beta=0.7)")}
WIDTH, SEEDS, PROBES = 256, 8, 16
_CACHE = {}


def _rows(key):
    if key not in _CACHE:
        arch, wrong = NETS[key]
        net = parse(arch)
        meas = measure(net, width=WIDTH, seeds=SEEDS, probes=PROBES)
        wrong_pred = predict(parse(wrong))
        _CACHE[key] = (net.depth, compare(predict(net), meas), wrong_pred, meas, predict(net))
    return _CACHE[key]


@pytest.mark.slow
@pytest.mark.parametrize("key", list(NETS))
@pytest.mark.parametrize("name", list(QUANTITIES))
def test_quantity_predicted_and_measured(name, key, criterion):
    depth, rows, wrong, meas, pred = _rows(key)
    q = QUANTITIES[name]
    expected_layers = pred.pre_layers if q.layers == "pre" else np.arange(depth + 1)
    np.testing.assert_array_equal(pred.layers[name], expected_layers)
    np.testing.assert_array_equal(meas.summary()[name]["layers"], expected_layers)
    mine = [r for r in rows if r["quantity"] == name]
    assert [r["layer"] for r in mine] == list(expected_layers)
    checked = [r for r in mine if r["layer"] in criterion.check_layers(depth)]
    failures = [f"layer {r['layer']}: predicted {r['predicted']:.5g}, measured {r['measured_mean']:.5g} "
                f"[{r['measured_lo']:.5g}, {r['measured_hi']:.5g}]" for r in checked
                if not criterion.accepts(r, depth, WIDTH)]
    assert not failures, "\n".join(failures)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(QUANTITIES))
def test_quantity_rejects_a_wrong_prediction(name, criterion):
    """On at least one of the networks, some checked layer rejects the prediction for the wrong weights."""
    rejected = 0
    for key in NETS:
        depth, rows, wrong, _, _ = _rows(key)
        wrong_value = dict(zip(map(int, wrong.layers[name]), wrong.values[name]))
        for r in rows:
            if r["quantity"] == name and r["layer"] in criterion.check_layers(depth) and r["layer"] in wrong_value:
                rejected += not criterion.accepts(r, depth, WIDTH, predicted=wrong_value[r["layer"]])
    assert rejected, f"{name}: no checked layer tells the true weights from 30% larger ones"


def test_every_quantity_has_plot_label_and_meaning():
    for q in QUANTITIES.values():
        assert q.label and q.meaning and q.interval in ("t", "bootstrap")
