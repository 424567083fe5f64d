"""Unequal widths (``dense(…, width=r)``), initialization presets (``init=…``) and projection skips: the theory's
width bookkeeping against sampled torch layers, the presets against torch's own initializers, and whole networks
predicted vs sampled."""
from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
import torch

from sigprop.numerics import predict
from sigprop.theory import Dense, Residual, linear, parse, relu, tanh
from sigprop.theory.initializations import INITIALIZATIONS
from sigprop.validate import build


@pytest.mark.parametrize("r", [sp.Rational(1, 2), sp.Integer(3), sp.Symbol("r", positive=True)])
def test_gsc_factor_is_width_free_and_the_gradient_factor_carries_r(r):
    block = Dense(tanh, sw2=sp.Rational(3, 2), width=r)
    equal = Dense(tanh, sw2=sp.Rational(3, 2))
    assert sp.simplify(block.gsc_factor().rhs - equal.gsc_factor().rhs) == 0
    assert sp.simplify(block.gradient_map().rhs / equal.gradient_map().rhs - r) == 0
    assert block.length_map().rhs == equal.length_map().rhs


@pytest.mark.parametrize("r", [0.5, 2.0])
def test_per_unit_gradient_factor_against_a_sampled_layer(r):
    """‖g_in‖²/n_in ÷ ‖g_out‖²/n_out of sampled layers of width ratio r, averaged over layers and probes, is
    r σ_w² E[φ'²] (here φ = relu at q = σ_w² p: E[φ'²] = 1/2)."""
    n_in, sw2, reps = 200, 1.7, 40
    block = Dense(relu, sw2=sw2, width=r)
    ratios = []
    for seed in range(reps):
        layer = build([block], width=n_in, seed=seed).blocks[0]
        x = torch.randn(1, n_in, dtype=torch.float64, generator=torch.Generator().manual_seed(1000 + seed))
        x.requires_grad_(True)
        y, _ = layer(x)
        v = torch.randn(16, *y.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2000 + seed))
        (g,) = torch.autograd.grad(y, x, v, is_grads_batched=True)
        ratios.append(((g ** 2).sum(-1).mean() / n_in / ((v ** 2).sum(-1).mean() / y.shape[1])).item())
    expected = r * sw2 * 0.5
    se = np.std(ratios, ddof=1) / math.sqrt(reps)
    assert abs(np.mean(ratios) - expected) < 4 * se + 1e-3 * expected


@pytest.mark.parametrize("name,init,kwargs", [
    ("he", torch.nn.init.kaiming_normal_, dict(mode="fan_in", nonlinearity="relu")),
    ("lecun", torch.nn.init.kaiming_normal_, dict(mode="fan_in", nonlinearity="linear")),
    ("selu", torch.nn.init.kaiming_normal_, dict(mode="fan_in", nonlinearity="linear")),   # torch's SELU advice
    ("glorot", torch.nn.init.xavier_normal_, {}),
])
@pytest.mark.parametrize("n_in,n_out", [(300, 300), (300, 900), (400, 100)])
def test_presets_match_torch_initializers(name, init, kwargs, n_in, n_out):
    """σ_w² = n_in Var(W_ij) of torch's initializer of an (n_out × n_in) weight, sampled; the sample variance of
    N Gaussian entries has relative standard error √(2/N)."""
    w = torch.empty(n_out, n_in, dtype=torch.float64)
    torch.manual_seed(0)
    init(w, **kwargs)
    sampled = w.var().item() * n_in
    implied = float(Dense(relu, init=name, width=sp.Rational(n_out, n_in)).sw2)
    assert abs(sampled / implied - 1) < 5 * math.sqrt(2 / w.numel())
    assert float(INITIALIZATIONS[name].sw2(sp.Rational(n_out, n_in))) == implied


def test_preset_is_printed_and_read_back():
    net = parse("dense(relu,width=3,init=glorot),dense(selu,init=lecun,width=1/3)".replace("1/3", "0.5"))
    assert net.describe() == "dense(relu,sw2=0.5,sb2=0,width=3,init=glorot),dense(selu,sw2=1,sb2=0,width=0.5,init=lecun)"
    assert parse(net.describe()) == net
    assert "Glorot & Bengio 2010" in net.blocks[0].source


def test_preset_with_symbolic_width_substitutes():
    net = parse("dense(tanh,width=r,init=glorot)")
    assert sp.simplify(net.blocks[0].sw2 - 2 / (1 + sp.Symbol("r", real=True))) == 0
    assert float(net.subs({"r": 3}).blocks[0].sw2) == 0.5


@pytest.mark.parametrize("text,match", [
    ("dense(relu,init=he,sw2=3)", "sw2=3 contradicts the preset chosen \\(init=he\\), which sets sw2=2"),
    ("dense(relu,init=orthogonal)", "init takes one of: he, glorot, lecun, selu"),
    ("dense(relu,width=0)", "width=0 is not allowed: it must be > 0"),
    ("residual(dense(relu,width=2))", "changes the width by 2, the identity skip by 1"),
    ("residual(dense(relu,width=2),skip=dense(linear,width=3))", "changes the width by 2, the skip"),
    ("residual(act(relu),skip=act(tanh))", "a skip that is neither the identity nor decorrelated"),
])
def test_bad_widths_and_presets(text, match):
    with pytest.raises(ValueError, match=match):
        parse(text)


def test_sampled_widths_and_their_errors():
    net = build(parse("dense(relu,width=2),residual(dense(relu,width=0.5),skip=dense(linear,width=0.5)),"
                      "dense(tanh,width=3)"), width=10, seed=0)
    out, trace = net(torch.randn(2, 10, dtype=torch.float64))
    assert [x.shape[1] for x in trace.xs] == [10, 20, 10, 30] and net.n_out == 30
    with pytest.raises(ValueError, match="leaves round\\(0.01\\*10\\) = 0 units"):
        build(parse("dense(relu,width=0.01)"), width=10, seed=0)
    with pytest.raises(ValueError, match="round differently"):
        build(parse("residual(dense(relu,width=0.3),dense(linear,width=3.3333333333333335))"), width=15, seed=0)


def test_projection_skip_maps_reduce_to_the_identity_skip():
    """skip=dense(linear) at r = 1 on zero-mean inputs has the identity's maps: q, ⟨x_a,x_b⟩ and χ unchanged."""
    branch = [Dense(relu, sw2=2), Dense(linear)]
    proj = predict(Residual(branch, skip=[Dense(linear)], beta=0.5), q0=1.3, c0=0.4)
    ident = predict(Residual(branch, beta=0.5), q0=1.3, c0=0.4)
    for key in ("p", "q", "c", "log_gsc", "grad_corr"):
        np.testing.assert_allclose(proj.values[key], ident.values[key], rtol=1e-12, atol=1e-14)


@pytest.mark.slow
@pytest.mark.parametrize("text", [
    "10*(dense(relu,sw2=2,width=2),dense(linear,width=0.5))",
    "8*dense(tanh,init=glorot,width=1.5)",
    "dense(linear),3*(residual(dense(relu,sw2=2,width=2),dense(linear,width=1.5),skip=dense(linear,width=3)),"
    "dense(tanh,width=0.3333333333333333))",
])
def test_unequal_widths_predicted_and_sampled(text, criterion):
    """Every quantity inside the acceptance criterion at the checked layers (the narrowest width, 128, sets the
    finite-width allowance)."""
    failures = criterion.sampled_failures(parse(text), width=128)
    assert not failures, "\n".join(failures)


# -- dropout ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,match", [("dropout(rho=0)", "rho=0 is not allowed: it must be > 0"),
                                        ("dropout(rho=1.5)", "rho=1.5 is not allowed: a keep rate lies in \\(0, 1\\]")])
def test_bad_keep_rates(text, match):
    with pytest.raises(ValueError, match=match):
        parse(text)


def test_dropout_layer_against_its_masks():
    """Sampled inverted dropout: ‖y‖²/n ≈ p/ρ, ⟨y_a, y_b⟩/n ≈ ⟨x_a, x_b⟩/n (independent masks), and the backward
    factors 1/ρ and 1, each within 5 standard errors of the Bernoulli sampling over 20,000 units."""
    rho, n = 0.7, 20_000
    layer = build(parse("dropout(rho=0.7)"), width=n, seed=3).blocks[0]
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(2, n, dtype=torch.float64, generator=gen)
    x[1] = 0.6 * x[0] + 0.8 * x[1]
    x.requires_grad_(True)
    y, _ = layer(x)
    g = torch.randn(n, dtype=torch.float64, generator=gen)
    (gx,) = torch.autograd.grad(y, x, g.expand(2, n))
    with torch.no_grad():
        checks = [((y[0] ** 2).mean(), (x[0] ** 2).mean() / rho), ((y[0] * y[1]).mean(), (x[0] * x[1]).mean()),
                  ((gx[0] ** 2).mean(), (g ** 2).mean() / rho), ((gx[0] * gx[1]).mean(), (g ** 2).mean())]
        for measured, expected in checks:
            assert abs(measured - expected) < 5 * 3 / math.sqrt(n) * abs(expected) + 5 * 3 / math.sqrt(n)
    assert torch.equal(layer(x)[0], y)                              # the masks are fixed by the seed


def test_dropout_separates_identical_inputs():
    pred = predict(parse("dense(tanh,sw2=1.5),dropout(rho=0.5),dense(tanh,sw2=1.5)"), q0=1.0, c0=1.0)
    assert pred.values["c"][0] == 1.0 and pred.values["c"][1] < 0.9
