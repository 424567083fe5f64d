"""The sign laws and the shattering models against sampled torch networks (validate.build / validate.measure).

- Co-activation: the fraction of units of a sampled layer (width 2048, 8 seeds) whose pre-activations are positive
  at both inputs, (a) against the formula at the pre-activation covariance each sampled layer actually has given
  its input (exact: the units are then independent draws, so the tolerance is 5 binomial standard errors), and
  (b) against the formula at mean field's predicted c (5 standard errors plus the finite-width allowance
  K·l/n of tests/conftest.py, since the sampled c drifts from mean field by O(l/n)).
- Sign diversity: Philipp et al.'s min(P, N)/(P + N) per unit over 512 exactly equicorrelated inputs, averaged
  over units (width 1024, 4 seeds), against the mean-field prediction corrected for the data set's finite size
  (computed from the binomial law, as in tests/numerics/test_signs.py); the same tolerance as (b).
- Shattering: the measured gradient correlation at the input against mean field and against Balduzzi et al.'s
  independent-activation model — mean field is accepted by the criterion of tests/conftest.py, the model is
  rejected.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from sigprop.numerics import predict
from sigprop.numerics import signs as N
from sigprop.numerics.shattering import compare_shattering, network
from sigprop.theory import parse
from sigprop.validate import build, make_inputs, measure


def _pre_activations(net, width, seed, x):
    sampled = build(net, width, seed)
    with torch.no_grad():
        _, trace = sampled(x)
    return trace


@pytest.mark.parametrize("desc,c0", [("4*dense(relu,sw2=2)", 0.0), ("4*dense(relu,sw2=2,sb2=0.3)", -0.5),
                                     ("4*dense(tanh,sw2=1.5,sb2=0.05)", 0.2)])
def test_coactivation_of_sampled_layers(desc, c0, criterion):
    net, width, seeds = parse(desc), 2048, 8
    predicted = N.predicted_coactivation(predict(net, q0=1.0, c0=c0))
    measured, conditional = [], []
    for seed in range(seeds):
        x = make_inputs(width, 1.0, c0, torch.Generator().manual_seed(1000 + seed), torch.float64, "cpu")
        trace = _pre_activations(net, width, seed, x)
        measured.append([float(((h[0] > 0) & (h[1] > 0)).double().mean()) for h in trace.pre])
        row = []
        for layer in trace.pre_layers:                 # the covariance of this layer's pre-activations given its input
            xp, block = trace.xs[layer - 1].double(), net.blocks[layer - 1]
            sw2, sb2, n = float(block.sw2), float(block.sb2), xp.shape[1]
            qa, qb, k = (sw2 * float(xp[i] @ xp[j]) / n + sb2 for i, j in ((0, 0), (1, 1), (0, 1)))
            row.append(N.coactivation_probability(qa, qb, k))
        conditional.append(row)
    measured, conditional = np.array(measured), np.array(conditional)
    # (a) given each layer's input, units are independent: binomial standard errors, summed over seeds
    z_cond = (measured - conditional).sum(0) / np.sqrt((conditional * (1 - conditional) / width).sum(0))
    assert np.all(np.abs(z_cond) < 5), z_cond
    # (b) against mean field's c
    se = np.maximum(np.sqrt(predicted * (1 - predicted) / (width * seeds)), measured.std(0, ddof=1) / math.sqrt(seeds))
    for layer, (m, p, s) in enumerate(zip(measured.mean(0), predicted, se), start=1):
        assert abs(m - p) < 5 * s + criterion.allowance("c", p, layer, width), (layer, m, p, s)


def _equicorrelated_inputs(width, n_inputs, c0, seed):
    """n inputs with mean square 1 and correlation exactly c0 between any two: √c0·e₀ + √(1 − c0)·eᵢ, e orthogonal."""
    q, _ = torch.linalg.qr(torch.randn(width, n_inputs + 1, generator=torch.Generator().manual_seed(seed),
                                       dtype=torch.float64))
    e = q.T * math.sqrt(width)
    return math.sqrt(c0) * e[:1] + math.sqrt(1 - c0) * e[1:]


def _finite_data_expectation(q, c, n):
    """E over units of min(P, N)/n for n inputs (binomial given the unit's z₀; Gauss–Hermite over z₀)."""
    z, w = np.polynomial.hermite_e.hermegauss(200)
    p = stats.norm.cdf(math.sqrt(q * c) * z / math.sqrt(q * (1 - c)))
    k = np.arange(n + 1)
    return float((w / w.sum()) @ ((stats.binom.pmf(k[None, :], n, p[:, None]) * np.minimum(k, n - k)).sum(1) / n))


@pytest.mark.parametrize("desc,c0", [("3*dense(relu,sw2=2)", 0.3), ("3*dense(tanh,sw2=1.5,sb2=0.05)", 0.1),
                                     ("3*dense(relu,sw2=2,sb2=0.5)", 0.0)])
def test_sign_diversity_of_sampled_layers(desc, c0, criterion):
    net, width, n_inputs, seeds = parse(desc), 1024, 512, 4
    pred = predict(net, q0=1.0, c0=c0)
    formula = N.predicted_sign_diversity(pred)
    q, c = np.exp(pred.raw["log_q"]).mean(1), pred.raw["c"]
    finite = np.array([_finite_data_expectation(qi, ci, n_inputs) for qi, ci in zip(q, c)])
    assert np.all(np.abs(finite - formula) < 2e-3)                  # the data set's size barely matters here
    per_unit = []
    for seed in range(seeds):
        trace = _pre_activations(net, width, seed, _equicorrelated_inputs(width, n_inputs, c0, 100 + seed))
        positive = [(h > 0).sum(0).double() for h in trace.pre]         # h: inputs × units
        per_unit.append([(torch.minimum(p, n_inputs - p) / n_inputs).numpy() for p in positive])
    per_unit = np.array(per_unit)                                        # seed, layer, unit
    measured = per_unit.mean((0, 2))
    se = np.maximum(per_unit.std((0, 2), ddof=1) / math.sqrt(seeds * width),
                    per_unit.mean(2).std(0, ddof=1) / math.sqrt(seeds))
    for layer, (m, f, s) in enumerate(zip(measured, finite, se), start=1):
        assert abs(m - f) < 5 * s + criterion.allowance("c", f, layer, width), (layer, m, f, s)


@pytest.mark.parametrize("kind,depth", [("feedforward", 6), ("resnet", 10)])
def test_sampled_gradient_correlation_follows_mean_field_not_the_independent_activation_model(kind, depth, criterion):
    cmp = compare_shattering(kind, depth, c0=0.0)
    width = 512
    summary = measure(network(kind, depth), width=width, seeds=8, c0=0.0, probes=32).summary()["grad_corr"]
    row = {"quantity": "grad_corr", "measured_lo": summary["lo"][0], "measured_hi": summary["hi"][0]}
    assert criterion.accepts(row, depth, width, predicted=cmp.mean_field[0])
    assert not criterion.accepts(row, depth, width, predicted=cmp.model[0])
