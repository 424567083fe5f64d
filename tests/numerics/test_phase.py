"""Fixed points, slopes, depth scales and phase (numerics.phase) against the depth iteration of ``predict``: a deep
network's q and c settle at q*, c*, approach them at the rates χ_∥, χ_c, and its GSC grows per layer by √χ₁.
The iteration composes the dense block's maps layer by layer; the fixed-point code root-finds the laws' maps —
two routes to the same numbers."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sigprop.numerics import predict
from sigprop.numerics.phase import correlation_fixed_points, critical_sw2, length_fixed_points, phase_point
import sympy as sp

from sigprop.theory import Activation, Dense, Network, get_activation, laws, parse

CASES = [("tanh", 2.5, 0.05), ("erf", 3.0, 0.1), ("tanh", 1.2, 0.3), ("gelu", 1.7, 0.1)]


def _deep(act, sw2, sb2, depth, c0=0.3, q0=1.0):
    return predict(parse(f"{depth}*dense({act},sw2={sw2},sb2={sb2})"), q0=q0, c0=c0).values


@pytest.mark.parametrize("act,sw2,sb2", CASES)
def test_fixed_points_are_where_the_iteration_settles(act, sw2, sb2):
    pt = phase_point(act, sw2, sb2)
    v = _deep(act, sw2, sb2, 400)
    assert v["q"][-1] == pytest.approx(pt.q_star, rel=1e-10)
    assert v["c"][-1] == pytest.approx(pt.c_star, rel=1e-9, abs=1e-12)
    # GSC per layer at the fixed point is √χ₁ (p is stationary there)
    rate = 2 * (v["log_gsc"][100] - v["log_gsc"][101])
    assert rate == pytest.approx(math.log(pt.chi_1), abs=1e-9)
    assert pt.phase == ("chaotic" if pt.chi_1 > 1 else "ordered")


@pytest.mark.parametrize("act,sw2,sb2", [("tanh", 2.5, 0.05), ("erf", 3.0, 0.1), ("hard_tanh", 1.5, 0.1)])
def test_slopes_are_the_rates_of_approach(act, sw2, sb2):
    """(q_{l+1} − q*)/(q_l − q*) → χ_∥ and (c_{l+1} − c*)/(c_l − c*) → χ_c along the iteration."""
    pt = phase_point(act, sw2, sb2)
    (qp,) = [p for p in length_fixed_points(act, sw2, sb2) if p.stable]
    v = _deep(act, sw2, sb2, 200, q0=pt.q_star, c0=pt.c_star + 0.05)
    dq, dc = v["q"] - pt.q_star, v["c"] - pt.c_star
    # read each ratio where the deviation is ~1e-7 relative: past the transient, above rounding
    lq = int(np.argmax(np.abs(dq) < 1e-7 * pt.q_star))
    lc = 10 + int(np.argmax(np.abs(dc[10:]) < 1e-5))
    assert dq[lq + 1] / dq[lq] == pytest.approx(qp.slope, rel=1e-5)
    assert dc[lc + 1] / dc[lc] == pytest.approx(pt.chi_c, rel=1e-4)
    assert qp.slope_error < 1e-6 and pt.xi_c == pytest.approx(-1 / math.log(pt.chi_c))


@pytest.mark.parametrize("act,sw2,sb2", [("tanh", 2.5, 0.05), ("hard_tanh", 1.5, 0.1), ("elu", 1.5, 0.3),
                                         ("softplus", 0.8, 0.2), ("relu", 1.5, 0.2)])
def test_chi_q_formula_is_the_length_maps_difference_quotient(act, sw2, sb2):
    """χ_∥ = σ_w² (E[φ'²] + E[φφ'']), the Dirac deltas of φ'' at kinks included, against central differences of
    the length map q' = σ_w² E[φ²] + σ_b² itself, Richardson-extrapolated (error ~h⁴, h = 1e-3 q*)."""
    from sigprop.numerics.phase import _maps, _slope
    (qp,) = [p for p in length_fixed_points(act, sw2, sb2) if p.stable]
    slope, err = _slope(lambda q: _maps(get_activation(act))["q"](sw2, sb2, q), qp.value, 1e-3 * qp.value)
    assert qp.slope_error == 0.0
    assert qp.slope == pytest.approx(slope, abs=10 * err + 1e-9)


def test_a_phi_that_jumps_without_closed_forms_differences_its_length_map():
    """φ = H(x)(1 + tanh x) jumps at 0: E[φφ''] is undefined, d/dq E[φ²] stays unevaluated and the slope comes from
    Richardson-extrapolated differences, with their error; the iteration still approaches q* at that rate."""
    act = Activation("jump_tanh", "Heaviside(x)*(1 + tanh(x))")           # not registered
    assert laws.chi_q(act).rhs.has(sp.Derivative)
    (qp,) = [p for p in length_fixed_points(act, 0.8, 0.2) if p.stable]
    assert 0 < qp.slope_error < 1e-6
    v = predict(Network([Dense(act, sw2=0.8, sb2=0.2)] * 60), q0=qp.value * 1.01, c0=0.3).values
    dq = v["q"] - qp.value
    lq = int(np.argmax(np.abs(dq) < 1e-7 * qp.value))
    assert dq[lq + 1] / dq[lq] == pytest.approx(qp.slope, rel=1e-5)


def test_relu_phases_and_their_limits():
    pt = phase_point("relu", 1.5, 0.0)
    assert (pt.q_star, pt.chi_1, pt.phase) == (0.0, 0.75, "ordered") and math.isnan(pt.c_star)
    with pytest.raises(ValueError, match="no attracting length fixed point"):
        phase_point("relu", 2.5, 0.0)


def test_critical_line():
    """On the critical line the iteration's GSC neither grows nor shrinks at the fixed point; at σ_b² = 0 the
    line starts at σ_w² = 1/φ'(0)² (tanh 1, erf π/4), found to ~1e-7 since χ₁(q*) − 1 is flat in σ_w² there."""
    w = critical_sw2("tanh", 0.05)
    v = _deep("tanh", w, 0.05, 400)
    assert abs(v["log_gsc"][100] - v["log_gsc"][101]) < 1e-9
    assert critical_sw2("tanh", 0.0) == pytest.approx(1.0, rel=1e-15)
    assert critical_sw2("erf", 0.0) == pytest.approx(math.pi / 4, rel=1e-15)


def test_all_fixed_points_and_their_stability():
    """tanh with σ_b² = 0, σ_w² = 1.5: q* = 0 repels (χ₁(0) = 1.5), a positive q* attracts; its correlation map
    has c* = 0 (odd φ, no bias) attracting and c* = ±1 repelling."""
    zero, positive = length_fixed_points("tanh", 1.5, 0.0)
    assert zero.value == 0 and not zero.stable and zero.slope == pytest.approx(1.5)
    assert positive.stable and positive.value > 0
    cps = correlation_fixed_points("tanh", 1.5, 0.0, positive.value)
    values = [p.value for p in cps]
    assert values[-1] == 1.0 and not cps[-1].stable
    assert any(abs(c) < 1e-12 and p.stable for c, p in zip(values, cps))


@pytest.mark.parametrize("kw,match", [(dict(sw2=0, sb2=0.1), "sw2=0 is not allowed"),
                                      (dict(sw2=1.0, sb2=-1), "sb2=-1 is not allowed"),
                                      (dict(sw2=float("nan"), sb2=0.0), "sw2=nan is not allowed")])
def test_bad_input(kw, match):
    with pytest.raises(ValueError, match=match):
        phase_point("tanh", **kw)
