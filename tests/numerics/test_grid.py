"""predict_grid (every configuration in one array, expectations by the array rules) against predict (one
configuration at a time, scalar quadrature and closed forms): two routes through different rules, which must agree
to the rules' accuracy (1e-10 relative per expectation, a few hundred of them compounded over depth)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sigprop.numerics import OutOfRangeError, predict, predict_grid
from sigprop.theory import parse

TOL = 1e-8


def _agree(grid, index, desc, **inputs):
    pred = predict(parse(desc), **inputs)
    for name, value in pred.values.items():
        got = grid.values[name][index]
        assert got.shape == value.shape, name
        np.testing.assert_allclose(got, value, rtol=TOL, atol=TOL, err_msg=f"{name} at {index}: {desc}")


def test_feedforward_grid_matches_predict_per_configuration():
    w, b = np.meshgrid([0.8, 1.5, 2.5], [0.0, 0.2], indexing="ij")
    grid = predict_grid("12*dense(tanh,sw2=w,sb2=b)", w=w, b=b, c0=0.3)
    assert grid.shape == (3, 2) and grid.values["log_gsc"].shape == (3, 2, 13)
    assert grid.values["c"].shape == (3, 2, 12) and not grid.out_of_range.any()
    for i in range(3):
        for j in range(2):
            _agree(grid, (i, j), f"12*dense(tanh,sw2={w[i, j]},sb2={b[i, j]})", c0=0.3)


def test_residual_grid_with_inputs_on_the_grid():
    """A container (residual: its branch's maps composed on arrays), a symbolic β, and c0, q0 varying too."""
    beta = np.array([0.2, 1.0, 1.0])
    c0, q0 = np.array([0.5, -0.4, 0.9]), np.array([1.0, 3.0, 0.5])
    grid = predict_grid("15*residual(dense(tanh,sw2=1.5,sb2=0.05),beta=beta)", beta=beta, c0=c0, q0=q0)
    for i in range(3):
        _agree(grid, i, f"15*residual(dense(tanh,sw2=1.5,sb2=0.05),beta={beta[i]})", c0=c0[i], q0=q0[i])


def test_inputs_of_different_norms_on_the_grid():
    """q0b: the second input's mean square (predict's q0=(q_a, q_b)), on a tanh net with a bias and a ReLU ResNet
    that runs normalized, with the pair (q_a, q_b) itself varying over the grid."""
    qa, qb = np.array([0.5, 2.0, 1.0]), np.array([3.0, 0.2, 1.0])
    for desc in ("8*dense(tanh,sw2=1.5,sb2=0.1)", "10*residual(dense(relu,sw2=2),beta=0.5)"):
        grid = predict_grid(desc, q0=qa, q0b=qb, c0=0.2)
        for i in range(3):
            _agree(grid, i, desc, q0=(qa[i], qb[i]), c0=0.2)
        np.testing.assert_allclose(grid.raw["log_p"][:, 0], np.log(np.stack([qa, qb], axis=1)), rtol=1e-15)


def test_identity_skip_around_an_activation_carries_cross_moments_on_arrays():
    desc = "dense(linear,sw2=1.5),residual(act(tanh),beta={b}),dense(linear),residual(act(tanh),beta={b})"
    grid = predict_grid(desc.format(b="b"), b=np.array([0.3, 1.0]))
    for i, b in enumerate([0.3, 1.0]):
        _agree(grid, i, desc.format(b=b))


def test_relu_resnet_runs_normalized_in_log_space():
    """Degree-1 blocks run on normalized states: p doubles per block and stays representable at depth 2000."""
    grid = predict_grid("2000*residual(dense(relu,sw2=w))", w=np.array([2.0]))
    assert grid.values["log_gsc"].shape == (1, 2001) and not grid.out_of_range.any()
    pred = predict(parse("2000*residual(dense(relu,sw2=2))"))
    np.testing.assert_allclose(grid.raw["log_p"][0], pred.raw["log_p"], rtol=1e-10)
    np.testing.assert_allclose(grid.values["log_gsc"][0], pred.values["log_gsc"], rtol=1e-9, atol=1e-9)


def test_configurations_at_their_fixed_point_reuse_the_previous_maps_exactly():
    """Ordered configurations freeze (q*, c* = 1 reached bitwise) while the critical one keeps moving: both paths of
    the reuse, checked against predict at depth 80."""
    w = np.array([0.5, 1.0])                 # tanh without bias: ordered (c -> 1 fast) and critical (c -> 1 slowly)
    grid = predict_grid("80*dense(tanh,sw2=w,sb2=0.01)", w=w, c0=0.2)
    for i in range(2):
        _agree(grid, i, f"80*dense(tanh,sw2={w[i]},sb2=0.01)", c0=0.2)


def test_a_configuration_that_leaves_float64_is_reported_not_nan_silently():
    w = np.array([2.0, 50.0])                # with a bias the block has no degree: p = 25^l overflows near l = 220
    grid = predict_grid("260*dense(relu,sw2=w,sb2=0.01)", w=w)
    assert grid.out_of_range[0] == 0 and grid.out_of_range[1] > 0
    with pytest.raises(OutOfRangeError, match=f"layer {grid.out_of_range[1]} "):
        predict(parse("260*dense(relu,sw2=50,sb2=0.01)"))
    assert grid.reasons[1].startswith(f"layer {grid.out_of_range[1]} (dense(relu") and grid.meta["notes"]
    assert np.all(np.isfinite(grid.values["log_gsc"][0])) and np.all(np.isnan(grid.values["log_gsc"][1]))
    layer = grid.out_of_range[1]
    assert np.all(np.isfinite(grid.values["p"][1, :layer])) and np.all(np.isnan(grid.values["p"][1, layer:]))


@pytest.mark.parametrize("call,match", [
    (lambda: predict_grid("3*dense(tanh,sw2=w)"), "parameters w have no values"),
    (lambda: predict_grid("3*dense(tanh,sw2=w)", w=1.0, v=2.0), "v given"),
    (lambda: predict_grid("3*dense(tanh,sw2=w)", w=np.array([1.0, -1.0])), "sw2=w takes the value -1.0"),
    (lambda: predict_grid("3*dense(tanh,sw2=w)", w=np.array([1.0, np.nan])), "nan"),
    (lambda: predict_grid("3*dense(tanh,sw2=w)", w=np.ones(2), c0=np.ones(3) * 0.5), "do not broadcast"),
    (lambda: predict_grid("3*dense(tanh,sw2=w)", w=np.array([])), "empty"),
    (lambda: predict_grid("3*dense(tanh)", c0=1.5), "c0=1.5"),
    (lambda: predict_grid("3*dense(tanh)", q0=np.array([1.0, 0.0])), "q0=0.0"),
    (lambda: predict_grid("3*dense(tanh)", q0b=-2.0), "q0b=-2.0"),
    (lambda: predict_grid("dense(linear),batchnorm,act(relu)"), "training-mode batchnorm"),
    (lambda: predict_grid("3*dense(leaky_relu(a=s))", s=0.1), "activation parameters cannot vary"),
])
def test_bad_grids_get_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_product_grids_broadcast_and_one_configuration_is_a_scalar_grid():
    grid = predict_grid("4*dense(tanh,sw2=w,sb2=b)", w=np.array([[1.0], [2.0]]), b=np.array([0.0, 0.1, 0.2]))
    assert grid.shape == (2, 3) and grid.grid["w"].shape == (2, 3)
    single = predict_grid("4*dense(tanh,sw2=2.0,sb2=0.1)")
    assert single.shape == () and single.values["q"].shape == (4,)
    assert single.values["q"] == pytest.approx(grid.values["q"][1, 1], rel=1e-15)
    assert math.isclose(single.at(())["log_gsc"][0], grid.at((1, 1))["log_gsc"][0], rel_tol=1e-15)
