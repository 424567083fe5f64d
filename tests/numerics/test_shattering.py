"""Balduzzi et al.'s independent-activation model beside the full mean-field recursion (numerics.shattering).

Where they agree: block by block wherever the block's ReLU pre-activations are uncorrelated (c_l = 0), since
mean field's per-block factor is the model's counting formula with P(co-active) = 1/4 + arcsin(c_l)/(2π) — so
exactly for one block fed orthogonal inputs, and closely for resnets whose stream correlation stays small
(β²L small). Where they differ: the forward correlation grows (ReLU's c-map has c' > c), P(co-active) > 1/4 and
mean field shatters far more slowly — for He-ReLU feedforward nets polynomially in L instead of 2^(−L). For the
depth-scaled resnet (β = 1/√L) both are depth-independent, with different constants (e^(−1/2) vs ≈ 0.634).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from sigprop.numerics.shattering import compare_shattering, network
from sigprop.numerics.signs import coactivation_probability
from sigprop.theory import balduzzi


@pytest.mark.parametrize("kind,beta,c0", [("feedforward", 1.0, 0.0), ("feedforward", 1.0, 0.6),
                                          ("resnet", 1.0, 0.0), ("resnet", 0.3, -0.4), ("resnet", 2.0, 0.9)])
def test_mean_field_factor_is_the_counting_formula_at_the_mean_field_coactivation(kind, beta, c0):
    cmp = compare_shattering(kind, depth=12, beta=beta, c0=c0)
    counted = [float(balduzzi.layer_factor(kind, p, beta=1 if kind == "feedforward" else beta).rhs)
               for p in cmp.coactivation]
    assert np.allclose(cmp.mean_field_factor, counted, rtol=1e-12, atol=0)
    assert np.allclose(cmp.mean_field[:-1], np.cumprod(cmp.mean_field_factor[::-1])[::-1], rtol=1e-12)
    assert np.allclose(cmp.model[:-1], np.cumprod(cmp.model_factor[::-1])[::-1], rtol=1e-12)


@pytest.mark.parametrize("kind,beta", [("feedforward", 1.0), ("resnet", 1.0), ("resnet", 0.5), ("resnet", 3.0)])
def test_one_block_with_orthogonal_inputs_agrees_exactly(kind, beta):
    cmp = compare_shattering(kind, depth=1, beta=beta, c0=0.0)
    assert cmp.coactivation[0] == 0.25
    assert cmp.mean_field[0] == pytest.approx(cmp.model[0], rel=1e-14)
    assert cmp.model[0] == pytest.approx(0.5 if kind == "feedforward" else (1 + beta**2 / 2) / (1 + beta**2), rel=1e-15)


def test_feedforward_relu_mean_field_shatters_polynomially_not_like_two_to_the_minus_L():
    """From orthogonal inputs the second layer's pre-activations already have c = 1/π (co-activation 0.30),
    and c → 1 with depth: mean field's correlation decays like a power of L, the model's like 2^(−L)."""
    got = {L: compare_shattering("feedforward", depth=L, c0=0.0) for L in (10, 50, 200, 400)}
    assert got[10].coactivation[1] == pytest.approx(0.25 + math.asin(1 / math.pi) / (2 * math.pi), rel=1e-14)
    assert got[10].mean_field[0] == pytest.approx(0.033652, rel=1e-4) and got[10].model[0] == 2.0**-10
    assert got[50].mean_field[0] == pytest.approx(9.1202e-4, rel=1e-4) and got[50].model[0] == 2.0**-50
    # local power-law exponent d log ρ / d log L between 200 and 400: steady, about −2.5 (not exponential)
    slope = math.log(got[400].mean_field[0] / got[200].mean_field[0]) / math.log(2)
    assert -3.0 < slope < -2.0
    assert np.all(got[50].log_ratio[:-1] > 0)          # the model shatters faster at every layer


def test_depth_scaled_resnet_both_depth_independent_with_different_constants():
    """β = 1/√L: the model's ((1 + 1/(2L))/(1 + 1/L))^L → e^(−1/2); mean field converges too, to ≈ 0.634, since
    the stream correlation rises only O(1) over the whole depth (c ≈ 0.31 at the top block from c0 = 0)."""
    vals = {L: compare_shattering("resnet", depth=L, beta=1 / math.sqrt(L), c0=0.0) for L in (50, 200, 800)}
    for L, v in vals.items():                               # e^(−1/2 + 3/(8L) − 7/(24L²) + O(1/L³))
        assert v.model[0] == pytest.approx(math.exp(-0.5 + 3 / (8 * L) - 7 / (24 * L**2)), rel=1e-5)
    assert abs(vals[800].mean_field[0] - vals[200].mean_field[0]) < 1e-3
    assert vals[800].mean_field[0] == pytest.approx(0.6339, abs=1e-3)
    for v in vals.values():
        assert 0.03 < v.log_ratio[0] < 0.05                            # mean field higher by 3–5%


def test_resnet_with_small_branch_weight_agrees_closely():
    """β²L small: the stream's correlation stays near c0 = 0, so the model's assumption nearly holds."""
    cmp = compare_shattering("resnet", depth=10, beta=0.1, c0=0.0)
    assert cmp.mean_field[0] == pytest.approx(cmp.model[0], rel=1e-3)
    cmp = compare_shattering("resnet", depth=50, beta=1.0, c0=0.0)                 # β²L = 50: far apart
    assert cmp.mean_field[0] / cmp.model[0] > 1e4


def test_model_assumption_is_mean_field_at_zero_correlation():
    assert coactivation_probability(1.0, 1.0, 0.0) == float(balduzzi.MODEL_COACTIVATION)


@pytest.mark.parametrize("call,match", [
    (lambda: network("mlp", 3), "kind='mlp' is not allowed"),
    (lambda: network("resnet", 0), "depth=0 is not allowed"),
    (lambda: network("feedforward", 3, beta=0.5), "beta=0.5 is not allowed"),
    (lambda: network("resnet", 3, beta=float("inf")), "beta=inf is not allowed"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
