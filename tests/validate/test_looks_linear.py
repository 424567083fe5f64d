"""Looks-linear initialization (Balduzzi et al. 2017): relu units as CReLU pairs read by mirrored orthogonal weights.
The sampled network is exactly linear at initialization, so GSC = 1, gradient correlation = 1 and the inputs'
correlation is kept at every depth, to rounding; the theory describes it as ``dense(linear)``."""
from __future__ import annotations

import numpy as np
import pytest

from sigprop.numerics import predict
from sigprop.theory import ArchitectureError, parse
from sigprop.validate import measure

NET = "30*dense(relu,sw2=1.3,weights=looks_linear)"


def test_predicted_as_a_linear_network():
    pred = predict(parse(NET), c0=0.3).values
    assert np.max(np.abs(pred["log_gsc"])) < 1e-13 and np.max(np.abs(pred["grad_corr"] - 1)) < 1e-13
    assert np.max(np.abs(pred["c"] - 0.3)) < 1e-13
    plain = predict(parse("30*dense(relu,sw2=2,weights=orthogonal)"), c0=0.3).values
    assert plain["grad_corr"][0] < 0.5                           # without the mirror, gradients shatter


def test_sampled_network_is_exactly_linear():
    summary = measure(parse(NET), width=64, seeds=2, c0=0.3).summary()
    assert np.max(np.abs(summary["log_gsc"]["mean"])) < 1e-12
    assert np.max(np.abs(summary["grad_corr"]["mean"] - 1)) < 1e-12
    assert np.max(np.abs(summary["c"]["mean"] - 0.3)) < 1e-12
    assert np.allclose(np.diff(summary["q"]["mean"][1:]) / summary["q"]["mean"][1:-1], 0.3, atol=1e-12)  # q ×1.3


def test_only_for_relu():
    with pytest.raises(ArchitectureError, match="weights=looks_linear is not allowed with tanh"):
        parse("dense(tanh,weights=looks_linear)")
