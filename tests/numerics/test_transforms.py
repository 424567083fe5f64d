"""DKS and TAT transforms (numerics.transforms): the solved φ̂ checked by routes that share nothing with the
solver — the mpmath reference expectations of φ̂ itself (numerics.reference), and, for TAT's leaky ReLU, the
depth iteration of a whole network (predict) built with φ̂."""
from __future__ import annotations

import math

import pytest

from sigprop.numerics import predict
from sigprop.numerics.reference import reference_expectation
from sigprop.numerics.transforms import dks, tat
from sigprop.theory import Dense, Network
from sigprop.theory.transforms import transformed


def _reference_maps(act):
    """Q(1), Q'(1), C(0), C'(1) of φ̂ from 25-digit expectations (E[φ'²] + E[φφ''] is Q's slope)."""
    r = {k: reference_expectation(act, k, 1.0, digits=25) for k in ("square", "dsquare", "curvature", "mean")}
    return {"Q": r["square"], "Q_slope": r["dsquare"] + r["curvature"], "C0": r["mean"] ** 2 / r["square"],
            "C_slope": r["dsquare"] / r["square"]}


@pytest.mark.parametrize("act,zeta,depth", [("tanh", 1.5, 10), ("softplus", 1.5, 5), ("selu", 1.5, 5),
                                            ("relu", 1.5, 10), ("relu", 1.5, 1)])
def test_dks_conditions_hold_by_an_independent_route(act, zeta, depth):
    t = dks(act, zeta=zeta, depth=depth)
    ref = _reference_maps(t.activation)
    assert ref["Q"] == pytest.approx(1.0, abs=1e-12)
    assert ref["C0"] == pytest.approx(0.0, abs=1e-12)
    assert ref["C_slope"] == pytest.approx(zeta ** (1 / depth), abs=1e-12)
    if act != "relu":                      # ReLU: b scales out, Q'(1) is not a condition
        assert ref["Q_slope"] == pytest.approx(1.0, abs=1e-12)
    else:
        assert t.params["c"] in (1.0, -1.0)
    assert t.residual < 1e-12 and t.params["a"] > 0 and t.params["b"] > 0


def test_relu_dks_switches_the_input_shift_beyond_the_largest_positive_shift_slope():
    """With c = +1 ReLU's C'(1) stays below 1.4669… (DKS's switch point); a larger local target needs c = −1."""
    assert dks("relu", zeta=1.4, depth=1).params["c"] == 1.0
    assert dks("relu", zeta=1.5, depth=1).params["c"] == -1.0


def test_tat_smooth_conditions():
    t = tat("tanh", tau=0.3, depth=10)
    ref = _reference_maps(t.activation)
    assert ref["Q"] == pytest.approx(1.0, abs=1e-12) and ref["Q_slope"] == pytest.approx(1.0, abs=1e-12)
    assert ref["C_slope"] == pytest.approx(1.0, abs=1e-12)
    # C''(1) = E[φ''²]/Q(1): the curvature the network's L layers share
    assert t.maps["C_curv"] == pytest.approx(0.03, abs=1e-12)


def test_tat_leaky_relu_reaches_eta_through_the_whole_network():
    """The network of 100 transformed leaky ReLU layers (σ_w² = 1), run by predict from c = 0, ends at c = η."""
    t = tat("leaky_relu", eta=0.9, depth=100)
    assert 0 < t.params["negative_slope"] < 1
    net = Network(tuple(Dense(t.activation, sw2=1) for _ in range(100)))
    pred = predict(net, q0=1.0, c0=0.0)
    assert pred.values["q"][-1] == pytest.approx(1.0, rel=1e-12)          # Q(1) = 1 keeps q at 1
    assert pred.raw["rho"][-1] == pytest.approx(0.9, abs=1e-10)          # the output's correlation


def test_numeric_shifted_relu_keeps_its_kink():
    """A kink computed from float parameters (−c/b) is found as a jump of φ' (its curvature delta counts)."""
    act = transformed("relu", a=1.6, b=0.6, c=1.0, d=-1.7)
    assert len(act.dphi_jumps) == 1 and float(act.dphi_jumps[0][1]) == pytest.approx(0.96)


@pytest.mark.parametrize("call,match", [
    (lambda: dks("tanh", zeta=0.9), "zeta=0.9"), (lambda: dks("tanh", depth=0), "depth=0"),
    (lambda: dks("tanh", depth=2.5), "depth=2.5"), (lambda: tat("leaky_relu", eta=1.5), "eta=1.5"),
    (lambda: tat("leaky_relu", eta=0.9, depth=10), "reaches at most"),
    (lambda: tat("relu", tau=0.3), "smooth activation"), (lambda: tat("tanh", tau=-1.0), "tau=-1.0")])
def test_bad_targets_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_transformed_activation_describes_itself():
    t = dks("tanh", zeta=1.5, depth=10)
    assert t.activation.describe().startswith("affine(tanh,a=")
    assert math.isfinite(t.params["d"])
