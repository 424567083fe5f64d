"""The Jacobian spectrum's spread: the free-probability prediction (numerics.spectrum) against the exact Jacobians of
sampled networks (validate.spectrum), with Gaussian and orthogonal weights."""
from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp

from sigprop.numerics.spectrum import jacobian_spectrum
from sigprop.theory import parse, spectrum
from sigprop.validate.spectrum import measure_jacobian_spectrum


def test_per_layer_increments():
    assert spectrum.variance_increment("relu").rhs == 2                    # E[relu'⁴]/E[relu'²]² = 2, plus s_W = 1
    assert spectrum.variance_increment("relu", weights="orthogonal").rhs == 1
    assert spectrum.variance_increment("linear", weights="orthogonal").rhs == 0
    # erf' = (2/√π) e^(−x²): E[e^(−4u²)] = (1 + 8q)^(−1/2), E[e^(−2u²)] = (1 + 4q)^(−1/2), so the ratio is
    # (1 + 4q)/√(1 + 8q), by hand
    q = sp.Symbol("q", positive=True)
    assert sp.simplify(spectrum.moment_ratio("erf", q).rhs - (1 + 4 * q) / sp.sqrt(1 + 8 * q)) == 0
    with pytest.raises(ValueError, match="weights='haar' is not allowed"):
        spectrum.variance_increment("relu", weights="haar")


def test_orthogonal_linear_networks_are_exact_isometries():
    """σ_w⁻¹ W orthogonal: every squared singular value of J is σ_w^(2L) exactly, so the spread is 0 to rounding."""
    net = parse("6*dense(linear,sw2=1.5,weights=orthogonal)")
    m = measure_jacobian_spectrum(net, width=64, seeds=2)
    assert np.all(np.abs(m["variance"]["mean"]) < 1e-24)
    assert m["log_mean"]["mean"] == pytest.approx(6 * math.log(1.5), abs=1e-12)
    pred = jacobian_spectrum(net)
    assert pred.variance[-1] == 0 and pred.log_mean[-1] == pytest.approx(6 * math.log(1.5), abs=1e-14)


@pytest.mark.parametrize("text", ["6*dense(relu,sw2=2)", "6*dense(relu,sw2=2,weights=orthogonal)",
                                  "8*dense(tanh,sw2=1.1,sb2=0.01,weights=orthogonal)", "6*dense(tanh,sw2=1.5,sb2=0.05)"])
def test_predicted_spread_against_sampled_jacobians(text):
    """Width 256, 4 seeds. Tolerance: the seeds' 95% interval plus a finite-width allowance of 2L/n relative (the
    law is the n → ∞ limit; products of L random matrices deviate by O(L/n): 6.5% at L = 10, n = 256 for Gaussian
    ReLU layers)."""
    net, width = parse(text), 256
    pred = jacobian_spectrum(net)
    meas = measure_jacobian_spectrum(net, width=width, seeds=4)
    allowance = 2 * net.depth / width
    for key, value in (("variance", pred.variance[-1]), ("log_mean", pred.log_mean[-1])):
        m = meas[key]
        half = (m["hi"] - m["lo"]) / 2
        slack = allowance * abs(value) if key == "variance" else allowance
        assert abs(m["mean"] - value) <= half + slack, (key, value, m)


def test_bad_measurement_settings():
    with pytest.raises(ValueError, match="seeds=1 is not allowed"):
        measure_jacobian_spectrum(parse("dense(relu)"), width=16, seeds=1)
    with pytest.raises(ValueError, match="q0"):
        measure_jacobian_spectrum(parse("dense(relu)"), width=16, q0=-1.0)


def test_only_dense_networks_of_equal_widths():
    with pytest.raises(ValueError, match="block 2 .*dense blocks of equal widths"):
        jacobian_spectrum(parse("dense(relu,sw2=2),layernorm"))
    with pytest.raises(ValueError, match="block 1"):
        jacobian_spectrum(parse("dense(relu,sw2=2,width=2)"))
