"""The vectorized phase diagram (numerics.phase_diagram) against the per-point solver (numerics.phase: scalar
kink-aware quadrature and Brent's method, one point at a time), against analytic fixed points and critical points,
and against its own equations: the maps evaluated by the scalar route at the returned q*, c*."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sigprop.cli import main
from sigprop.numerics.phase import phase_point
from sigprop.numerics.phase_diagram import COLUMNS, critical_line, phase_diagram
from sigprop.numerics.vectorized import expect


@pytest.mark.parametrize("act", ["tanh", "erf", "selu", "gelu"])
def test_grid_agrees_with_the_per_point_solver(act):
    rng = np.random.default_rng(7)
    sw2, sb2 = rng.uniform(0.8, 3.5, 5), rng.uniform(0.01, 0.3, 5)
    d = phase_diagram(act, sw2, sb2)
    for i in range(5):
        try:
            p = phase_point(act, float(sw2[i]), float(sb2[i]))
        except ValueError as e:            # unbounded growth of q (selu, gelu at large σ_w²)
            assert "no attracting length fixed point" in str(e)
            assert d["phase"][i] == "unbounded" and math.isnan(d["q_star"][i])
            continue
        assert d["phase"][i] == p.phase
        assert d["q_star"][i] == pytest.approx(p.q_star, rel=1e-12)
        assert d["chi_1"][i] == pytest.approx(p.chi_1, rel=1e-12)
        assert d["c_star"][i] == pytest.approx(p.c_star, rel=1e-9, abs=1e-12)
        assert d["chi_c"][i] == pytest.approx(p.chi_c, rel=1e-9)
        assert d["xi_q"][i] == pytest.approx(p.xi_q, rel=1e-9)


def test_fixed_points_satisfy_their_equations_and_stability():
    """q' = q* and c' = c* by the scalar expectations at the returned points; the chaotic c* attracts
    (|χ_c| < 1) and the ordered phase has c* = 1 with χ_c = χ₁ < 1."""
    w, b = np.meshgrid(np.linspace(1.0, 4.0, 6), np.linspace(0.02, 0.3, 5))
    d = phase_diagram("tanh", w, b)
    q, c = d["q_star"], d["c_star"]
    square = expect("tanh", "square", q)
    assert np.allclose(w * square + b, q, rtol=1e-13, atol=0)
    kernel = expect("tanh", "kernel", q, q, c * q, rtol=1e-14)
    assert np.allclose((w * kernel + b) / (w * square + b), c, rtol=0, atol=1e-12)
    chaotic = d["phase"] == "chaotic"
    assert chaotic.any() and (~chaotic).any()
    assert np.all(np.abs(d["chi_c"][chaotic]) < 1) and np.all(c[chaotic] < 1)
    assert np.all(c[~chaotic] == 1) and np.all(d["chi_c"][~chaotic] == d["chi_1"][~chaotic])
    assert np.all(d["q_residual"] <= 1e-13 * q)


def test_relu_and_linear_fixed_points_are_analytic():
    """relu: q* = σ_b²/(1 − σ_w²/2), χ₁ = σ_w²/2, c* = 1 (ordered) below σ_w² = 2 and no q* above; linear:
    q* = σ_b²/(1 − σ_w²)."""
    sw2 = np.array([0.5, 1.0, 1.9, 2.5])
    d = phase_diagram("relu", sw2, 0.1)
    below = sw2 < 2
    assert np.allclose(d["q_star"][below], 0.1 / (1 - sw2[below] / 2), rtol=1e-13)
    assert np.allclose(d["chi_1"][below], sw2[below] / 2, rtol=1e-14)
    assert d["c_star"][below].tolist() == [1.0, 1.0, 1.0]
    assert d["phase"].tolist() == ["ordered", "ordered", "ordered", "unbounded"]
    assert math.isnan(d["q_star"][3])
    lin = phase_diagram("linear", np.array([0.5, 0.9]), 0.2)
    assert np.allclose(lin["q_star"], 0.2 / (1 - np.array([0.5, 0.9])), rtol=1e-13)


def test_a_bounded_activation_has_its_fixed_point_at_any_weight_variance():
    """tanh's q* = σ_w² E[tanh²] + σ_b² <= σ_w² + σ_b² exists at every σ_w²; beyond 1e8 it was outside the search
    window and labelled 'unbounded'. For large q, E[tanh²(√q z)] = 1 − E[sech²] with E[sech²] → √(2/(πq)) (the
    density at 0 times ∫sech² = 2), so 1 − q*/σ_w² ≈ √(2/(π σ_w²)); relu above σ_w² = 2 still grows without bound."""
    from sigprop.numerics.phase import phase_point
    sw2 = np.array([2e8, 1e9, 1e12])
    d = phase_diagram("tanh", sw2, 0.0)
    assert d["phase"].tolist() == ["chaotic"] * 3
    np.testing.assert_allclose(1 - d["q_star"] / sw2, np.sqrt(2 / (np.pi * sw2)), rtol=1e-2)
    point = phase_point("tanh", 2e8, 0.0)
    assert point.phase == "chaotic" and point.q_star == pytest.approx(d["q_star"][0], rel=1e-9)
    assert phase_diagram("relu", np.array([1e12]), 0.0)["phase"].tolist() == ["unbounded"]


@pytest.mark.parametrize("name,end", [("tanh", 1.0), ("erf", np.pi / 4), ("relu", 2.0)])
def test_both_critical_functions_end_the_line_at_one_over_phi_prime_squared(name, end):
    """At σ_b² = 0 with φ(0) = 0 the critical line ends at σ_w² = 1/φ'(0)²; critical_sw2 was 2e-8 off for tanh
    (Brent's method on the steep approach of q* to 0) while critical_line was exact."""
    from sigprop.numerics.phase import critical_sw2
    assert critical_sw2(name, 0.0) == pytest.approx(end, rel=1e-15)
    assert critical_line(name, np.array([0.0]))[0] == pytest.approx(end, rel=1e-15)


def test_critical_points():
    """At σ_b² = 0 the critical line ends at σ_w² = 1/φ'(0)²: 1 for tanh, π/4 for erf (φ'(0) = 2/√π), 2 for relu
    (whose line is σ_w² = 2 at σ_b² = 0 only); elsewhere it matches the per-point bisection."""
    assert critical_line("tanh", 0.0) == pytest.approx(1.0, rel=1e-12)
    assert critical_line("erf", 0.0) == pytest.approx(math.pi / 4, rel=1e-12)
    assert critical_line("relu", np.array([0.0]))[0] == pytest.approx(2.0, rel=1e-14)
    from sigprop.numerics.phase import critical_sw2
    line = critical_line("tanh", np.array([0.05, 0.2]))
    assert line == pytest.approx([critical_sw2("tanh", 0.05), critical_sw2("tanh", 0.2)], rel=1e-11)
    # on the line χ₁(q*) = 1
    d = phase_diagram("tanh", line, np.array([0.05, 0.2]))
    assert d["chi_1"] == pytest.approx([1.0, 1.0], abs=1e-11)


def test_zero_fixed_point_of_odd_activations_without_bias():
    d = phase_diagram("tanh", np.array([0.8, 1.2]), 0.0)
    assert d["q_star"][0] == 0.0 and math.isnan(d["c_star"][0]) and d["chi_1"][0] == pytest.approx(0.8)
    assert d["q_star"][1] > 0 and d["phase"][1] == "chaotic"


@pytest.mark.parametrize("sw2,sb2,match", [(-1.0, 0.1, "sw2=-1.0"), (0.0, 0.1, "sw2=0.0"), (1.0, -0.1, "sb2=-0.1"),
                                           (np.nan, 0.1, "sw2=nan"), (1.0, np.inf, "sb2=inf"),
                                           (np.array([]), 0.1, "sw2 is empty")])
def test_bad_input(sw2, sb2, match):
    with pytest.raises(ValueError, match=match):
        phase_diagram("tanh", sw2, sb2)


def test_cli_writes_the_grid_and_the_figure(tmp_path, capsys):
    assert main(["phase", "erf", "--grid", "5", "--sw2", "1:3", "--sb2", "0:0.2", "--out", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["phase_erf.csv", "phase_erf.json", "phase_erf.pdf", "phase_erf.png",
                     "phase_erf_critical_line.csv"]
    lines = (tmp_path / "phase_erf.csv").read_text().splitlines()
    assert lines[0] == ",".join(COLUMNS) and len(lines) == 26
    assert "5 x 5 grid" in capsys.readouterr().out
    assert main(["phase", "erf", "--sw2", "0:1"]) == 2
    assert "sw2 must be > 0" in capsys.readouterr().err
