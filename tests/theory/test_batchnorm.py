"""Batch normalization: its maps against Monte Carlo of the Gaussian batch integrals (torch autograd on many units
of a batch drawn from the input law), the joint Monte Carlo with a pointwise block, the rates the papers give
against sampled networks, and the errors for batches the formulas cannot take."""
from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
import torch

from sigprop.numerics import predict
from sigprop.numerics.batchnorm import joint_maps, sphere_moments
from sigprop.theory import Act, BatchNorm, Network, linear, parse, relu
from sigprop.theory.blocks.batchnorm import with_batch
from sigprop.theory.state import Backward, PairState
from sigprop.validate import measure


def test_properties_on_a_symbolic_state():
    """Centering across the batch: the output's mean square is g² + b² and the batch becomes equicorrelated at
    −1/(B − 1) whatever it was; the input gradient is in the range of P (its entries sum to 0 over the batch), so
    G_ab,in = −G_aa,in/(B − 1) for any G at the output, and a probe shared by the batch (G_ab = G_aa) gives 0."""
    p, p_ab, g, b, B = sp.symbols("p p_ab g b B", positive=True)
    maps = BatchNorm(batch=B, gain=g, bias=b).maps(PairState(p, p, p_ab, 0, 0))
    assert sp.simplify(maps.out.p_a - (g**2 + b**2)) == 0
    assert sp.simplify(maps.out.p_ab - (b**2 - g**2 / (B - 1))) == 0
    G_aa, G_ab = sp.symbols("G_aa G_ab", real=True)
    aa, _, ab = maps.chi.apply(G_aa, G_aa, G_ab)
    assert sp.simplify(ab + aa / (B - 1)) == 0
    assert sp.simplify(maps.chi.apply(G_aa, G_aa, G_aa)[0]) == 0
    assert BatchNorm().degree == 0 and BatchNorm(eps=0.1).degree is None


@pytest.mark.parametrize("B", [4, 5, 8])
def test_repl_formulas_keep_the_batch_mixing(B):
    """The formulas a researcher prints: the input gradient of a batchnorm lies in the range of P, so the
    gradient correlation of two members of the batch is −1/(B − 1) whatever it was at the output (Yang et al.
    2019's centring, derived in docs/theory.md), and G_ab,in = −κ(G_aa − G_ab)/(B − 1) with κ = (B − 2)/(σ²(B − 3)),
    σ² = p − p_ab. Both read the mixing terms, which the non-mixing forms (χ_ab ρ/√(χ_a χ_b)) drop."""
    from sigprop.theory import symbols as S
    bn = BatchNorm(batch=B)
    assert bn.gradient_correlation_map().rhs == sp.Rational(-1, B - 1)
    kappa = sp.Integer(B - 2) / ((S.p_a - S.p_ab) * (B - 3))
    expected = -kappa * (S.G_aa - S.G_ab) / (B - 1)
    assert sp.simplify(bn.gradient_covariance_map().rhs.subs({S.p_b: S.p_a, S.G_bb: S.G_aa}) - expected) == 0
    assert "G_ab = 0 at the output" in bn.gsc_factor().name


def _batch(B, n, c, gen):
    """n units of a batch of B exchangeable Gaussian inputs: unit mean square 1, pairwise correlation c."""
    shared = torch.randn(1, n, generator=gen, dtype=torch.float64)
    own = torch.randn(B, n, generator=gen, dtype=torch.float64)
    return (math.sqrt(c) * shared + math.sqrt(1 - c) * own).requires_grad_(True)


@pytest.mark.parametrize("B,gain,bias", [(8, 1.0, 0.0), (12, 1.6, -0.4)])
def test_finite_batch_maps_against_monte_carlo(B, gain, bias):
    """2¹⁶ units, each an independent draw of the batch: the forward moments and, by autograd, E‖Jᵀv‖² with v
    independent across inputs (G_out = I) against p', p'_ab, χ_a and the mixing ν. Tolerance: 5 standard errors
    of the per-unit values (1/χ²_{B−1} has finite variance for B > 5)."""
    n, gen, c = 2**16, torch.Generator().manual_seed(5), 0.3
    h = _batch(B, n, c, gen)
    centred = h - h.mean(dim=0, keepdim=True)
    y = gain * centred / centred.pow(2).mean(dim=0, keepdim=True).sqrt() + bias
    v = torch.randn(B, n, generator=gen, dtype=torch.float64)
    (g,) = torch.autograd.grad(y, h, v)
    maps = BatchNorm(batch=B, gain=gain, bias=bias).maps(PairState(1.0, 1.0, c, 0.0, 0.0))
    off = ~torch.eye(B, dtype=torch.bool)
    cases = [((y * y).mean(dim=0), maps.out.p_a),
             ((y[:, None] * y[None, :])[off].reshape(B * (B - 1), n).mean(dim=0), maps.out.p_ab),
             ((g * g).mean(dim=0), maps.chi.chi_a),
             ((g[:, None] * g[None, :])[off].reshape(B * (B - 1), n).mean(dim=0), maps.chi.mix_ab)]
    for per_unit, expected in cases:
        mean, se = per_unit.mean().item(), per_unit.std().item() / math.sqrt(n)
        assert abs(mean - float(expected)) < 5 * se + 1e-12, (mean, float(expected), se)


def test_large_batch_limit_against_torch_batch_norm():
    """B = ∞ with ε > 0, affine: torch's own batch_norm (training mode) on a batch of 2¹⁵ exchangeable Gaussian
    inputs, 64 units; output mean square, cross moment and, by autograd with probes independent across the inputs,
    the input gradient's mean square against p', p'_ab and χ_a. The batch statistics' error is O(1/√B) relative;
    tolerance 2% for the mean squares (they differ from the ε = 0 values by 3%), 5 standard errors for the cross
    moment (b² against an average of products that are O(g²))."""
    B, n, c, p, gain, bias, eps = 2**15, 64, 0.3, 3.0, 2.0, 0.5, 0.1
    gen = torch.Generator().manual_seed(8)
    h = (math.sqrt(p) * _batch(B, n, c, gen).detach()).requires_grad_(True)
    y = torch.nn.functional.batch_norm(h, None, None, torch.full((n,), gain, dtype=torch.float64),
                                       torch.full((n,), bias, dtype=torch.float64), True, 0.0, eps)
    v = torch.randn(B, n, generator=gen, dtype=torch.float64)
    (g,) = torch.autograd.grad(y, h, v)
    maps = BatchNorm(gain=gain, bias=bias, eps=eps).maps(PairState(p, p, c * p, 0.0, 0.0))
    half = B // 2
    assert (y * y).mean().item() == pytest.approx(float(maps.out.p_a), rel=0.02)
    cross = (y[:half] * y[half:]).detach()
    assert abs(cross.mean().item() - float(maps.out.p_ab)) < 5 * cross.std().item() / math.sqrt(cross.numel())
    assert (g * g).mean().item() == pytest.approx(float(maps.chi.chi_a), rel=0.02)
    assert float(maps.chi.chi_ab) == 0 and float(maps.out.p_ab) == bias**2


def test_backward_composition_matches_applying_twice():
    """Backward.then with mixing is the composition of the two linear maps on (G_aa, G_bb = G_aa, G_ab)."""
    rng = np.random.default_rng(0)
    first, second = (Backward(*(float(v) for v in rng.normal(size=6))) for _ in range(2))
    first = Backward(first.chi_a, first.chi_a, first.chi_ab, first.mix_a, first.mix_a, first.mix_ab)
    second = Backward(second.chi_a, second.chi_a, second.chi_ab, second.mix_a, second.mix_a, second.mix_ab)
    g = (1.3, 1.3, -0.4)
    np.testing.assert_allclose(first.then(second).apply(*g), first.apply(*second.apply(*g)), rtol=1e-13)


def test_joint_monte_carlo_reduces_to_the_closed_form_for_linear():
    """With φ = identity the joint map must be the batchnorm's own closed form: the Monte Carlo's t₁ = 1 − 2/B and
    t₂ = 0 in every sample, put through theory's joint map, against the block's own χ (a separate formula)."""
    bn, B = BatchNorm(batch=16, gain=1.3), 16
    s = PairState(1.0, 1.0, 0.2, 0.0, 0.0)
    own = bn.maps(PairState(1, 1, sp.Rational(1, 5), 0, 0))
    _, joint, _ = joint_maps(bn, Act(linear), s, PairState(1.69, 1.69, -1.69 / 15, 0, 0))
    for name in ("chi_a", "chi_ab", "mix_a", "mix_ab"):
        assert getattr(joint, name) == pytest.approx(float(getattr(own.chi, name)), rel=1e-12, abs=1e-14)
    assert sphere_moments(linear, B, 1.3, 0.0).values["t1"] == pytest.approx(1 - 2 / B, rel=1e-12)


def test_joint_monte_carlo_against_autograd_on_units():
    """batchnorm(batch=8) then relu, on 2¹⁶ independent units: forward moments and E‖Jᵀv‖² (v independent across
    inputs) by torch, against the joint map's values (sphere Monte Carlo, an independent sample). Tolerance: 5
    standard errors of the torch estimate plus 5 of the Monte Carlo."""
    B, n, gen = 8, 2**16, torch.Generator().manual_seed(11)
    h = _batch(B, n, 0.4, gen)
    centred = h - h.mean(dim=0, keepdim=True)
    a = torch.relu(centred / centred.pow(2).mean(dim=0, keepdim=True).sqrt())
    v = torch.randn(B, n, generator=gen, dtype=torch.float64)
    (g,) = torch.autograd.grad(a, h, v)
    bn = BatchNorm(batch=B)
    out = bn.maps(PairState(1, 1, sp.Rational(2, 5), 0, 0)).out
    act_maps, joint, _ = joint_maps(bn, Act(relu), PairState(1.0, 1.0, 0.4, 0.0, 0.0),
                                    PairState(*(float(x) for x in (out.p_a, out.p_b, out.p_ab, 0, 0))))
    mc = sphere_moments(relu, B, 1.0, 0.0)
    checks = [((a * a).mean(dim=0), act_maps.out.p_a, mc.errors["second"]),
              ((g * g).mean(dim=0), joint.chi_a, joint.chi_a * mc.errors["t1"] / mc.values["t1"])]
    for per_unit, expected, mc_se in checks:
        mean, se = per_unit.mean().item(), per_unit.std().item() / math.sqrt(n)
        assert abs(mean - expected) < 5 * (se + mc_se), (mean, expected, se, mc_se)


def test_large_batch_joint_moments():
    """B = ∞: for relu, t₂ = E[φ'²] − E[φ']² − E[zφ']² = 1/2 − 1/4 − 1/(2π) (closed form), and the sphere Monte Carlo
    at B = 4096 approaches the Gaussian quadrature (within its standard error plus O(1/B))."""
    from sigprop.numerics.batchnorm import gaussian_moments
    g = gaussian_moments(relu, 1.0, 0.0)
    assert g["t2"] == pytest.approx(0.25 - 1 / (2 * math.pi), rel=1e-10)
    assert g["second"] == pytest.approx(0.5, rel=1e-12) and g["mean"] == pytest.approx(1 / math.sqrt(2 * math.pi))
    mc = sphere_moments(relu, 4096, 1.0, 0.0, samples=1 << 10)
    for key in ("second", "cross", "t1", "t2"):
        assert abs(mc.values[key] - g[key]) < 5 * mc.errors[key] + 4 / 4096, key


def test_batch_relu_rate_is_pi_over_pi_minus_one():
    """Philipp, Song & Carbonell 2018: batch-ReLU's GSC² per layer is π/(π − 1) at large batch (to rounding), and at
    B = 256 within 1% of it."""
    net = parse("30*(dense(linear,sw2=2),batchnorm,act(relu))")
    target = 0.5 * math.log(math.pi / (math.pi - 1))
    for batch, tol in ((math.inf, 1e-12), (256, math.log(1.01))):            # GSC itself within 1%
        per_layer = -np.diff(predict(net, batch=batch).values["log_gsc"][::3])
        assert np.all(np.abs(per_layer[1:-1] - target) < tol), (batch, per_layer)


def test_linear_batchnorm_rate_against_sampled(criterion):
    """A linear batch-normalized net: GSC² per layer (B − 2)/(B − 3) exactly in mean field; B = 8, width 512 (B/n
    small: at B/n = 1/16 the sampled nets' finite-width excess is already visible)."""
    net = parse("12*(dense(linear,sw2=2),batchnorm)")
    pred = predict(net, batch=8)
    per_layer = np.diff(-2 * pred.values["log_gsc"][::2])
    assert per_layer[1:-1] == pytest.approx(math.log(6 / 5), rel=1e-12)
    meas = measure(net, width=512, seeds=6, probes=4, batch=8).summary()["log_gsc"]
    top = pred.values["log_gsc"][0]
    slack = criterion.allowance("log_gsc", top, net.depth, 512)
    assert meas["lo"][0] - slack <= top <= meas["hi"][0] + slack, (top, meas["lo"][0], meas["hi"][0])


@pytest.mark.parametrize("arch,batch", [("8*(dense(linear,sw2=2),batchnorm,act(relu))", 32),
                                        ("4*residual(dense(linear,sw2=2),batchnorm,act(relu),dense(linear))", 32),
                                        ("8*(dense(linear),batchnorm,act(tanh))", 32),
                                        ("6*(dense(linear,sw2=2),batchnorm(gain=1.5,bias=0.3),act(relu))", 16),
                                        ("6*(dense(tanh,sw2=1.5,sb2=0.1),batchnorm(eval,gain=2))", 2)])
def test_batch_networks_predicted_vs_sampled(arch, batch, criterion):
    """Every quantity, predicted at the batch the sampled networks see, against them (the acceptance criterion of
    tests/conftest.py). The batch-normalized ResNet checks the joint batchnorm + act backward map inside a branch:
    with one probe shared by the batch, treating the two blocks apart predicts the gradient correlation at the input
    0.28 instead of 0.52 here."""
    from sigprop.validate import compare
    net = Network(with_batch(parse(arch).blocks, batch)) if batch > 2 else parse(arch)
    pred = predict(net)
    rows = compare(pred, measure(net, width=256, seeds=6, probes=4 if batch > 2 else 16, batch=batch))
    bad = [f"{r['quantity']}[{r['layer']}]: {r['predicted']:.5g} vs {r['measured_mean']:.5g} "
           f"[{r['measured_lo']:.5g}, {r['measured_hi']:.5g}]" for r in rows
           if r["layer"] in criterion.check_layers(net.depth) and not criterion.accepts(r, net.depth, 256)]
    assert not bad, bad


def test_grammar_words():
    net = parse("dense(linear),batchnorm(eval),dense(linear),batchnorm(batch=inf,eps=0.001),"
                "dense(linear),batchnorm(batch=8)")
    assert net.describe().endswith("batchnorm(mode=eval),dense(linear,sw2=1,sb2=0),batchnorm(eps=0.001),"
                                   "dense(linear,sw2=1,sb2=0),batchnorm(batch=8)")
    assert parse(net.describe()) == net


@pytest.mark.parametrize("call,words", [
    (lambda: parse("batchnorm(batch=1)"), ["batch=1", "no batch variance"]),
    (lambda: parse("batchnorm(batch=2)"), ["batch=2", "gradient is 0"]),
    (lambda: parse("batchnorm(batch=3)"), ["batch=3", "infinite"]),
    (lambda: parse("batchnorm(batch=2.5)"), ["batch=2.5", "integer >= 1 or inf"]),
    (lambda: parse("batchnorm(batch=8,eps=0.01)"), ["eps=0.01", "batch=inf"]),
    (lambda: parse("batchnorm(eval,batch=8)"), ["batch=8", "eval mode"]),
    (lambda: parse("dense(relu,sw2=inf)"), ["sw2=inf", "finite"]),
    (lambda: parse("dense(relu),batchnorm"), ["batchnorm", "Gaussian"]),
    (lambda: predict(parse("dense(linear),batchnorm(batch=8)"), q0=(1.0, 2.0)), ["q0=(1.0, 2.0)", "one q0"]),
    (lambda: predict(parse("dense(linear),batchnorm"), c0=1.0), ["c0=1.0", "c0 < 1"]),
    (lambda: predict(parse("dense(linear),batchnorm"), c0=-0.5, batch=8), ["c0=-0.5", "-1/(batch - 1)"]),
    (lambda: predict(parse("dense(linear),batchnorm(batch=8)"), batch=16), ["batch=16", "another batch"]),
    (lambda: measure(parse("dense(linear),batchnorm"), width=16, seeds=2), ["batch=B", "training mode"]),
    (lambda: measure(parse("dense(linear),batchnorm"), width=16, seeds=2, batch=math.inf), ["batch=inf"]),
    (lambda: measure(parse("dense(linear),batchnorm"), width=16, seeds=2, batch=8, probes="exact"),
     ["probes='exact'", "a probe per output coordinate", "probes=8"]),
    (lambda: measure(parse("dense(linear),batchnorm"), width=8, seeds=2, batch=8, probes=2), ["width=8",
                                                                                               "batch + 1"]),
])
def test_bad_batches_are_refused(call, words):
    with pytest.raises(ValueError) as err:
        call()
    assert all(w in str(err.value) for w in words), str(err.value)


def test_batch_of_a_network_without_batchnorm_changes_nothing():
    """Blocks that act on each input alone predict the same for a pair and for any batch."""
    net = parse("6*dense(tanh,sw2=1.5,sb2=0.1)")
    a, b = predict(net), predict(net, batch=64)
    for name in a.values:
        np.testing.assert_array_equal(a.values[name], b.values[name])
    assert b.inputs["batch"] == 64
