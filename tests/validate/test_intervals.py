"""Intervals over seeds that leave out the seeds where a quantity is undefined, and compare()'s guards."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from sigprop.numerics import predict
from sigprop.theory import parse
from sigprop.validate import compare, measure
from sigprop.validate.intervals import bootstrap_interval, t_interval


def test_t_interval_uses_the_defined_seeds():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(12, 3))
    values[[1, 5], 0] = np.nan
    values[3, 0] = np.inf
    s = t_interval(values)
    kept = values[np.isfinite(values[:, 0]), 0]
    assert s["n"].tolist() == [9, 12, 12]
    assert s["mean"][0] == pytest.approx(kept.mean(), rel=1e-14)
    half = stats.t.ppf(0.975, 8) * kept.std(ddof=1) / 3
    assert s["hi"][0] - s["mean"][0] == pytest.approx(half, rel=1e-12)
    one = t_interval(np.array([[1.0], [np.nan]]))
    assert one["n"][0] == 1 and math.isnan(one["lo"][0]) and one["mean"][0] == 1.0


def test_bootstrap_interval_drops_undefined_seeds():
    num = np.array([[1.0, 2.0], [3.0, 4.0], [0.0, 1.0], [5.0, 1.0]])
    den = np.array([[1.0, 1.0], [1.0, 1.0], [0.0, 1.0], [1.0, 1.0]])       # seed 2: 0/0 at layer 0
    s = bootstrap_interval((num, den), lambda a, b: a / b)
    assert s["n"].tolist() == [3, 4]
    assert s["mean"][0] == pytest.approx(9.0 / 3.0) and s["mean"][1] == pytest.approx(8.0 / 4.0)
    assert s["lo"][0] <= s["mean"][0] <= s["hi"][0]


def test_compare_refuses_different_inputs_or_architectures():
    net = parse("3*dense(tanh)")
    meas = measure(net, width=16, seeds=2, probes=4, c0=0.5)
    with pytest.raises(ValueError, match="c0"):
        compare(predict(net, c0=0.3), meas)
    with pytest.raises(ValueError, match="q0"):
        compare(predict(net, q0=2.0), meas)
    with pytest.raises(ValueError, match="prediction is for"):
        compare(predict(parse("3*dense(tanh,sw2=2)")), meas)
    assert compare(predict(net, c0=0.5), meas)
