"""Residual branches without a dense layer at their top: the cross moments ⟨x, F(x)⟩ and tr(∂F/∂x)/n carried
through the branch, checked against Monte Carlo of the Gaussian integral and against sampled networks; inputs
of different norms."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sigprop.numerics import compile_block, predict
from sigprop.theory import PairState, parse

PHI = {"relu": (lambda u: np.maximum(u, 0), lambda u: (u > 0) * 1.0),
       "tanh": (np.tanh, lambda u: 1 / np.cosh(u) ** 2),
       "step": (lambda u: (u > 0) * 1.0, lambda u: 0 * u),
       "gelu": (lambda u: u * 0.5 * (1 + np.vectorize(math.erf)(u / math.sqrt(2))),
                lambda u: 0.5 * (1 + np.vectorize(math.erf)(u / math.sqrt(2)))
                + u * np.exp(-u * u / 2) / math.sqrt(2 * math.pi))}


@pytest.mark.parametrize("name", sorted(PHI))
@pytest.mark.parametrize("alpha,beta", [(1, 1), (0.8, -0.6)])
def test_act_branch_against_monte_carlo(name, alpha, beta):
    """y = αx + βφ(x) on Gaussian coordinates (u, v): every output field vs a Monte Carlo of the same Gaussian
    integral (the mean squares, cross moment, mean and backward factors), within 5 standard errors."""
    phi, dphi = PHI[name]
    block = parse(f"residual(act({name}),alpha={alpha},beta={beta})").blocks[0]
    assert block.uses_cross
    p_a, p_b, p_ab = 0.7, 2.3, 0.9
    maps = compile_block(block)(PairState(p_a, p_b, p_ab, 0.0, 0.0))
    rng = np.random.default_rng(7)
    n = 400_000
    z = rng.standard_normal((2, n))
    u = math.sqrt(p_a) * z[0]
    v = (p_ab / p_a) * u + math.sqrt(p_b - p_ab**2 / p_a) * z[1]
    ya, yb = alpha * u + beta * phi(u), alpha * v + beta * phi(v)
    ja, jb = alpha + beta * dphi(u), alpha + beta * dphi(v)
    checks = {"p_a": (maps.out.p_a, ya**2), "p_b": (maps.out.p_b, yb**2), "p_ab": (maps.out.p_ab, ya * yb),
              "m_a": (maps.out.m_a, ya), "chi_a": (maps.chi.chi_a, ja**2), "chi_b": (maps.chi.chi_b, jb**2),
              "chi_ab": (maps.chi.chi_ab, ja * jb)}
    for key, (value, samples) in checks.items():
        se = samples.std() / math.sqrt(n)
        assert abs(value - samples.mean()) < 5 * se + 1e-12, (key, value, samples.mean(), se)


def test_cross_reduces_to_first_moments_when_the_branch_has_a_dense_layer():
    """Carrying the cross moments through a branch that contains a dense layer gives the same maps as the
    first-moment rule ('a dense layer decorrelates'): that rule is the special case."""
    import sympy as sp
    from sigprop.theory.blocks import compose
    from sigprop.theory.blocks.sequence import compose_cross
    from sigprop.theory.state import Cross
    block = parse("residual(act(relu),dense(relu,sw2=1.5,sb2=0.3),alpha=0.9,beta=0.7)").blocks[0]
    assert not block.uses_cross
    s = PairState(1.2, 0.8, 0.3, 0.1, -0.2)
    carried = block.combine(s, compose(block.branch, s), compose((), s),
                            cross=compose_cross(block.branch, s, Cross.identity(s)))
    default = block.forward(s)
    for a, b in zip(carried.flatten(), default.flatten()):
        assert abs(float(sp.N(a - b, 30))) < 1e-13


def test_refused_cross_terms():
    import sympy as sp
    from sigprop.theory import Act, Activation, Residual, relu, tanh
    from sigprop.theory.symbols import x
    with pytest.raises(ValueError, match="a skip that is neither the identity nor decorrelated"):
        Residual([Act(relu)], skip=[Act(tanh)])
    jumpy = Activation("jumpy", sp.Piecewise((x, x < 0), (x + 1, True)))    # a jump and a nonzero slope
    with pytest.raises(ValueError, match=r"act\(jumpy\) cannot carry the cross moments"):
        Residual([Act(jumpy)])


@pytest.mark.slow
@pytest.mark.parametrize("text", [
    "4*(dense(linear,sw2=1.2),residual(act(tanh),beta=0.7))",
    "dense(linear),3*residual(residual(dense(relu,sw2=2)),residual(dense(tanh,sw2=1.5),beta=0.5))",
    "3*(dense(linear),residual(act(relu),dropout(rho=0.8)))",
])
def test_carried_cross_terms_predicted_and_sampled(text, criterion):
    failures = criterion.sampled_failures(parse(text), width=256)
    assert not failures, "\n".join(failures)


# -- inputs of different norms -----------------------------------------------------------------------------------
def test_unequal_input_norms_are_the_first_layer_state():
    pred = predict(parse("dense(relu,sw2=2)"), q0=(0.5, 3.0), c0=0.2)
    np.testing.assert_allclose(np.exp(pred.raw["log_p"][0]), [0.5, 3.0], rtol=1e-15)
    assert pred.raw["rho"][0] == pytest.approx(0.2, rel=1e-15)
    assert pred.inputs["q0"] == [0.5, 3.0]
    # He-ReLU: q of the first pre-activation is 2·p per input, and the per-block factors are exposed
    np.testing.assert_allclose(np.exp(pred.raw["log_q"][0]), [1.0, 6.0], rtol=1e-14)
    assert set(pred.per_block) == {"chi_a", "chi_b", "chi_ab", "rho"}
    np.testing.assert_allclose(pred.per_block["chi_a"], [1.0], rtol=1e-14)


@pytest.mark.parametrize("q0,match", [((1.0, -1.0), "q0=.* must be > 0"), ((1.0, 2.0, 3.0), "give one mean square or a pair")])
def test_bad_input_norms(q0, match):
    with pytest.raises(ValueError, match=match):
        predict(parse("dense(relu)"), q0=q0)


def test_unequal_input_norms_sampled(criterion):
    failures = criterion.sampled_failures(parse("6*dense(tanh,sw2=1.5,sb2=0.1)"), width=256, q0=(0.5, 3.0), c0=0.2)
    assert not failures, "\n".join(failures)
    x = torch.Generator().manual_seed(0)
    from sigprop.validate.measure import make_inputs
    inputs = make_inputs(64, (0.5, 3.0), 0.2, x, torch.float64, "cpu")
    assert inputs[0].pow(2).mean().item() == pytest.approx(0.5, rel=1e-12)
    assert inputs[1].pow(2).mean().item() == pytest.approx(3.0, rel=1e-12)
