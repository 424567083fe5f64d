"""Layer normalization: its mean-field maps against torch's layer_norm on wide Gaussian vectors (forward moments and
the Jacobian's Frobenius norm by autograd), its scale invariance, and networks with it predicted vs sampled."""
from __future__ import annotations

import math

import pytest
import sympy as sp
import torch

from sigprop.numerics import predict
from sigprop.theory import LayerNorm, parse
from sigprop.theory.state import PairState


def test_properties_on_a_symbolic_state():
    """What normalizing each input must give, whatever the formulas' form: mean square g² + b² and unit mean b for
    any input; two identical inputs stay identical; centred inputs keep their correlation; GSC² = χ p/p' is 1 for a
    centred input without bias (the projection removes no gradient norm at n → ∞); gradient correlation kept."""
    p_a, p_b, p_ab, m_a, m_b = sp.symbols("p_a p_b p_ab m_a m_b", real=True)
    g, b = sp.symbols("g b", positive=True)
    ln = LayerNorm(gain=g, bias=b)
    maps = ln.maps(PairState(p_a, p_b, p_ab, m_a, m_b))
    assert sp.simplify(maps.out.p_a - (g**2 + b**2)) == 0
    assert (maps.out.m_a, maps.out.m_b) == (b, b) and maps.pre is None
    same = ln.maps(PairState(p_a, p_a, p_a, m_a, m_a))
    assert sp.simplify(same.out.p_ab - same.out.p_a) == 0 and sp.simplify(same.chi.chi_ab - same.chi.chi_a) == 0
    pa, pb = sp.symbols("pa pb", positive=True)
    centred = LayerNorm(gain=g).maps(PairState(pa, pb, p_ab, 0, 0))
    assert sp.simplify(centred.out.p_ab / centred.out.p_a - p_ab / sp.sqrt(pa * pb)) == 0
    assert sp.simplify(centred.chi.chi_a * pa / centred.out.p_a) == 1
    assert sp.simplify(maps.chi.chi_ab**2 - maps.chi.chi_a * maps.chi.chi_b) == 0   # gradient correlation kept


def test_scale_invariance_is_its_degree():
    lam = sp.Rational(7, 3)
    s = PairState(sp.Rational(3, 2), 2, sp.Rational(1, 2), sp.Rational(1, 3), sp.Rational(-1, 4))
    scaled = PairState(lam**2 * s.p_a, lam**2 * s.p_b, lam**2 * s.p_ab, lam * s.m_a, lam * s.m_b)
    one, two = LayerNorm(gain=2, bias=sp.Rational(1, 5)).maps(s), LayerNorm(gain=2, bias=sp.Rational(1, 5)).maps(scaled)
    assert one.out == two.out and sp.simplify(two.chi.chi_a * lam**2 - one.chi.chi_a) == 0
    assert LayerNorm().degree == 0 and LayerNorm(eps=sp.Rational(1, 100)).degree is None


@pytest.mark.parametrize("gain,bias,eps", [(1.0, 0.0, 0.0), (1.7, -0.3, 0.0), (0.8, 0.2, 0.5)])
def test_maps_against_torch_layer_norm(gain, bias, eps):
    """Two correlated Gaussian inputs with unit means, n = 2¹⁶ units: torch's outputs' moments and its autograd
    Jacobian's ‖J‖²_F/n against the maps. The Jacobian is exactly (g/σ̂)(I − 11ᵀ/n − ŷŷᵀ/(n(1 + ε/v̂))), whose
    ‖·‖²_F/n at ε = 0 is g²(n − 2)/(n v̂): the maps' χ = g²/(v + ε) up to O(1/n) and the sampling error of v̂
    (relative √(2/n) ≈ 0.6%); the moments likewise. Tolerance 4 standard errors, 2.5%."""
    n, gen = 2**16, torch.Generator().manual_seed(3)
    p_a, p_b, p_ab, m_a, m_b = 2.0, 0.7, 0.5, 0.6, -0.2
    va, vb, cab = p_a - m_a**2, p_b - m_b**2, p_ab - m_a * m_b
    z = torch.randn(2, n, generator=gen, dtype=torch.float64)
    xa = m_a + math.sqrt(va) * z[0]
    xb = m_b + cab / math.sqrt(va) * z[0] + math.sqrt(vb - cab**2 / va) * z[1]
    w, bb = torch.full((n,), gain, dtype=torch.float64), torch.full((n,), bias, dtype=torch.float64)
    ln = lambda t: torch.nn.functional.layer_norm(t, (n,), w, bb, eps)            # noqa: E731
    ya, yb = ln(xa), ln(xb)
    maps = LayerNorm(gain=gain, bias=bias, eps=eps).maps(PairState(p_a, p_b, p_ab, m_a, m_b))
    tol = 0.025
    assert float((ya * ya).mean()) == pytest.approx(float(maps.out.p_a), rel=tol)
    assert float((ya * yb).mean()) == pytest.approx(float(maps.out.p_ab), rel=tol, abs=tol * abs(gain) ** 2)
    assert float(ya.mean()) == pytest.approx(bias, abs=1e-12)
    # ‖J‖²_F/n by autograd, through 8 random probes (Hutchinson: E‖Jᵀv‖² = ‖J‖²_F), and exactly at ε = 0
    x = xa.clone().requires_grad_(True)
    y = ln(x)
    probes = torch.randn(8, n, generator=gen, dtype=torch.float64)
    sq = [float(torch.autograd.grad(y, x, v, retain_graph=True)[0].pow(2).sum()) / n for v in probes]
    assert sum(sq) / len(sq) == pytest.approx(float(maps.chi.chi_a), rel=tol + 4 * math.sqrt(2 / (8 * n)))
    if eps == 0:
        v_hat = float(xa.var(unbiased=False))
        assert sum(sq) / len(sq) == pytest.approx(gain**2 * (n - 2) / (n * v_hat), rel=4 * math.sqrt(2 / (8 * n)))


def test_normalizing_after_relu_explodes_by_pi_over_pi_minus_one():
    """LN after ReLU removes ReLU's mean: p/v = (1/2)/(1/2 − 1/(2π)) = π/(π − 1) per layer in GSC², a closed form the
    iteration must reproduce; LN on a centred input (after a dense layer) leaves GSC alone."""
    post = predict(parse("30*(dense(relu,sw2=2),layernorm)")).values["log_gsc"]
    assert post[0] == pytest.approx(30 * 0.5 * math.log(math.pi / (math.pi - 1)), rel=1e-12)
    pre = predict(parse("30*(dense(linear,sw2=2),layernorm,act(relu))")).values["log_gsc"]
    assert abs(pre[0]) < 1e-12


@pytest.mark.parametrize("text", ["8*(dense(linear,sw2=1.5),layernorm,act(tanh))",
                                  "8*(dense(relu,sw2=2),layernorm(gain=1.3,bias=0.2))",
                                  "dense(linear),4*residual(layernorm,dense(tanh,sw2=1.5),beta=0.7)",
                                  "4*(dense(linear),residual(dense(linear,sw2=1.2),layernorm,act(relu),beta=0.7))"])
def test_predicted_and_sampled(text, criterion):
    failures = criterion.sampled_failures(parse(text), width=256)
    assert not failures, "\n".join(failures)
