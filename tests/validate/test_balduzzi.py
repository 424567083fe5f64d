"""The balduzzi experiment: the grid's gradient autocorrelation in mean field against sampled networks, and its
pieces by example."""
import numpy as np
import pytest

from sigprop.validate.balduzzi import (GRID, grid_gradients, pooled_autocorrelation, predicted_autocorrelation,
                                       run_balduzzi, scalar_network, shattering_depth)


def test_pooled_autocorrelation_by_example():
    alternating = np.array([[1.0, -1.0, 1.0, -1.0, 1.0]])
    np.testing.assert_allclose(pooled_autocorrelation(alternating, 3), [1.0, -1.0, 1.0], rtol=1e-15)
    ramp = np.array([[1.0, 2.0, 3.0]])                # lag 1: (1·2 + 2·3)/√((1 + 4)(4 + 9))
    assert pooled_autocorrelation(ramp, 2)[1] == pytest.approx(8 / np.sqrt(65), rel=1e-15)


def test_shattering_depth_by_example():
    assert shattering_depth([1.0, 0.5, 0.2, 0.09, 0.01], 0.1) == 3
    assert shattering_depth([1.0, 0.5], 0.1) is None


def test_gradients_are_the_networks_derivative():
    """autograd's ∂f/∂x against central differences of f on the grid (a ReLU network is piecewise linear: the two
    agree wherever no kink lies within h)."""
    import torch
    from sigprop.validate import build
    net = scalar_network("feedforward", 3, 64)
    g = grid_gradients(net, 64, seed=1)
    sampled = build(net, 1, 1)
    h = 1e-7
    with torch.no_grad():
        f = lambda x: sampled(torch.tensor(x[:, None]))[0][:, 0].numpy()
        fd = (f(GRID + h) - f(GRID - h)) / (2 * h)
    assert np.mean(np.abs(fd - g) <= 1e-6 * np.max(np.abs(g))) > 0.95


@pytest.mark.slow
def test_mean_field_autocorrelation_against_sampled_networks():
    """4-layer feedforward, width 256, 40 networks: the pooled autocorrelation at lags 1, 2, 4, 8 within four
    standard errors (over networks) of mean field's, which decays visibly over those lags."""
    net = scalar_network("feedforward", 4, 256)
    g = np.stack([grid_gradients(net, 256, s) for s in range(40)])
    lags = [1, 2, 4, 8]
    measured = pooled_autocorrelation(g, 9)[lags]
    se = np.array([pooled_autocorrelation(gi, 9) for gi in g]).std(axis=0, ddof=1)[lags] / np.sqrt(len(g))
    predicted = predicted_autocorrelation(net, 9, 4)[lags]
    assert predicted[-1] < 0.95
    np.testing.assert_array_less(np.abs(measured - predicted), 4 * se)


def test_quick_run(tmp_path):
    meta = run_balduzzi(tmp_path, preset="quick", progress=False, log=lambda *a: None)
    assert {"balduzzi.csv", "balduzzi.md", "balduzzi_gradients.png", "balduzzi_autocorrelation.png",
            "balduzzi_correlation.png"} <= {p.name for p in tmp_path.iterdir()}
    assert set(meta["shattering_depth"]) == {"feedforward", "ResNet β = 1", "ResNet β = 0.5", "ResNet β = 0.1"}
    assert meta["shattering_depth"]["feedforward"]["model"] == 4          # 2^(−L) < 0.1 first at L = 4
