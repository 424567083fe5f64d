"""validate.build / validate.measure: sampled networks and what is measured on them.

What is checked, and against what (never against validate's own formulas):

- the torch activations against theory's φ (SymPy, lambdified pointwise);
- sampled weights and biases against their stated distribution, with tolerances of 5 standard errors of the
  sample mean / sample variance of N Gaussian numbers (se(mean) = σ/√N, se(var) = σ²√(2/(N−1)));
- the inputs against their definition (exact up to float64 rounding);
- exact probes against a full Jacobian ∂x^L/∂x^l computed here with ``torch.autograd.functional.jacobian``
  (float64 rounding only, hence 1e-10);
- Hutchinson probes against that exact Jacobian, within 5σ of the estimator's own Gaussian-probe variance
  Var(vᵀAv) = 2‖sym A‖_F², computed here from the Jacobian;
- the mean-field prediction (numerics.predict) against sampled networks at width 256 (statistical; see the
  ``ALLOWANCE_K`` in tests/conftest.py), plus two checks that the same criterion *rejects* wrong predictions.

Everything is seeded (networks use seeds 0..n−1), so the outcome is deterministic.
"""
from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
import torch

from sigprop.numerics import predict
from sigprop.theory import parse
from sigprop.validate import build, compare, make_inputs, measure
from sigprop.validate.measure import measure_seed

# the module (validate/__init__ re-exports the function measure under the same name)
vmeasure = importlib.import_module("sigprop.validate.measure")



# ----------------------------------------------------------------------------------------------------- build

def test_build_weight_and_bias_distribution():
    width, sw2, sb2 = 512, 2.5, 0.3
    net = build(parse(f"2*dense(tanh,sw2={sw2},sb2={sb2}),residual(dense(relu,sw2={sw2},sb2={sb2}))"),
                width=width, seed=3)
    layers = [net.blocks[0], net.blocks[1], net.blocks[2].branch[0]]
    for layer in layers:
        assert layer.weight.shape == (width, width) and layer.bias.shape == (width,)
        w = layer.weight.detach().numpy().ravel() * math.sqrt(width)     # entries ~ N(0, sw2)
        n = w.size
        assert abs(w.mean()) < 5 * math.sqrt(sw2 / n)
        assert abs(w.var(ddof=1) - sw2) < 5 * sw2 * math.sqrt(2 / (n - 1))
        b = layer.bias.detach().numpy()
        assert abs(b.mean()) < 5 * math.sqrt(sb2 / width)
        assert abs(b.var(ddof=1) - sb2) < 5 * sb2 * math.sqrt(2 / (width - 1))
    # layers are sampled independently
    w0, w1 = (l.weight.detach().numpy().ravel() for l in layers[:2])
    assert abs(np.corrcoef(w0, w1)[0, 1]) < 5 / math.sqrt(w0.size)


def test_build_zero_bias_variance_gives_zero_bias():
    net = build(parse("2*dense(relu,sw2=2)"), width=8, seed=0)
    assert all(torch.count_nonzero(b.bias) == 0 for b in net.blocks)


def test_build_same_seed_identical_different_seed_differs():
    arch = parse("3*dense(tanh,sw2=1.5,sb2=0.1),residual(dense(tanh),dense(linear))")
    a, b, c = build(arch, 32, seed=7), build(arch, 32, seed=7), build(arch, 32, seed=8)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert sa.keys() == sb.keys() == sc.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
        if torch.count_nonzero(sa[k]):          # (biases with sb2 = 0 are zero for every seed)
            assert not torch.equal(sa[k], sc[k]), k
    x = torch.randn(2, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a(x)[0], b(x)[0])


def test_build_float32():
    arch = parse("3*dense(tanh,sw2=1.5,sb2=0.1)")
    n32, n64 = build(arch, 64, seed=1, dtype="float32"), build(arch, 64, seed=1)
    assert all(p.dtype == torch.float32 for p in n32.parameters())
    # same draws, only rounded: weights agree to float32 precision
    for p32, p64 in zip(n32.parameters(), n64.parameters()):
        np.testing.assert_allclose(p32.detach().double().numpy(), p64.detach().numpy(), rtol=1e-7, atol=1e-7)
    x = torch.randn(2, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out32, trace = n32(x.float())
        out64 = n64(x)[0]
    assert out32.dtype == torch.float32 and len(trace.xs) == 4
    np.testing.assert_allclose(out32.double().numpy(), out64.numpy(), rtol=0, atol=1e-5)
    # and measure works in float32, agreeing with float64 to float32 rounding
    m32 = measure(arch, width=64, seeds=2, probes="exact", dtype="float32")
    m64 = measure(arch, width=64, seeds=2, probes="exact", dtype="float64")
    for key in ("q", "c", "p", "jac_qm2", "grad_cross"):
        np.testing.assert_allclose(m32.raw[key], m64.raw[key], rtol=1e-4, atol=1e-5, err_msg=key)


def test_build_rejects_symbolic_parameter():
    with pytest.raises(ValueError, match="symbolic"):
        build(parse("2*dense(tanh,sw2=s)"), width=8)
    with pytest.raises(ValueError, match="symbolic"):
        build(parse("2*residual(dense(tanh),beta=b)"), width=8)


def test_build_rejects_symbolic_parameter_inside_residual_branch():
    with pytest.raises(ValueError, match="symbolic"):
        build(parse("2*residual(dense(tanh,sw2=s))"), width=8)


# ---------------------------------------------------------------------------------------------------- inputs

@pytest.mark.parametrize("q0,c0", [(1.0, 0.5), (2.3, -0.4), (0.7, 1.0), (1.0, -1.0), (5.0, 0.0)])
def test_make_inputs_exact(q0, c0):
    width = 64
    x = make_inputs(width, q0, c0, torch.Generator().manual_seed(1), torch.float64, "cpu").numpy()
    assert x.shape == (2, width)
    np.testing.assert_allclose((x * x).mean(axis=1), [q0, q0], rtol=1e-12)
    corr = x[0] @ x[1] / (np.linalg.norm(x[0]) * np.linalg.norm(x[1]))
    assert abs(corr - c0) < 1e-12
    np.testing.assert_allclose(x.mean(axis=1), 0.0, atol=1e-12)


# ------------------------------------------------------------------------------ probes vs an explicit Jacobian

def _capture(monkeypatch):
    """Record the network and the inputs that measure_seed builds (so the test sees exactly what it measured)."""
    seen = {}
    real_build, real_inputs = vmeasure.build, vmeasure.make_inputs

    def build_spy(*args, **kwargs):
        seen["net"] = real_build(*args, **kwargs)
        return seen["net"]

    def inputs_spy(*args, **kwargs):
        x = real_inputs(*args, **kwargs)
        seen["x0"] = x.detach().clone()
        return x

    monkeypatch.setattr(vmeasure, "build", build_spy)
    monkeypatch.setattr(vmeasure, "make_inputs", inputs_spy)
    return seen


def _jacobians(net, x0):
    """J[l][a] = ∂x^L/∂x^l (n_L × n_l) at input a, from torch.autograd.functional.jacobian, l = 0..L."""
    L = len(net.blocks)
    out = []
    for l in range(L + 1):
        per_input = []
        for a in range(2):
            with torch.no_grad():
                xl = x0[a]
                for blk in net.blocks[:l]:
                    xl, _ = blk(xl)

            def tail(x, l=l):
                for blk in net.blocks[l:]:
                    x, _ = blk(x)
                return x

            per_input.append(torch.autograd.functional.jacobian(tail, xl.clone()))
        out.append(per_input)
    return out


EXACT_NETS = ["3*dense(tanh,sw2=1.7,sb2=0.1)", "dense(tanh,sw2=1.2),2*residual(dense(tanh,sb2=0.2),dense(linear),beta=0.8)"]


@pytest.mark.parametrize("arch", EXACT_NETS)
def test_exact_probes_match_explicit_jacobian(arch, monkeypatch):
    seen = _capture(monkeypatch)
    width = 16
    r = measure_seed(parse(arch), width, seed=4, q0=1.3, c0=0.3, probes="exact")
    J = _jacobians(seen["net"], seen["x0"])
    L = len(J) - 1
    assert r["jac_qm2"].shape == (L + 1, 2) and r["grad_cross"].shape == (L + 1,)
    for l in range(L + 1):
        Ja, Jb = J[l]
        for a, Jx in enumerate((Ja, Jb)):
            fro2 = float((Jx * Jx).sum())
            assert r["jac_qm2"][l, a] == pytest.approx(fro2 / Jx.shape[1], rel=1e-10, abs=1e-300)
            assert r["grad_sq"][l, a] == pytest.approx(fro2, rel=1e-10)
        cross = float(torch.trace(Ja @ Jb.T))                   # ⟨J_a, J_b⟩_F
        assert r["grad_cross"][l] == pytest.approx(cross, rel=1e-10, abs=1e-12 * math.sqrt(
            float((Ja * Ja).sum() * (Jb * Jb).sum())))
    np.testing.assert_allclose(r["jac_qm2"][L], 1.0, rtol=1e-14)  # ∂x^L/∂x^L = I
    # forward quantities of the captured inputs, computed here
    x = seen["x0"]
    with torch.no_grad():
        ps = [(x * x).mean(dim=1).numpy()]
        for blk in seen["net"].blocks:
            x, _ = blk(x)
            ps.append((x * x).mean(dim=1).numpy())
    np.testing.assert_allclose(r["p"], np.array(ps), rtol=1e-12)
    np.testing.assert_allclose(r["p"][0], 1.3, rtol=1e-12)


def test_hutchinson_probes_unbiased(monkeypatch):
    arch, width, seed, P = parse("3*dense(tanh,sw2=1.7,sb2=0.1)"), 16, 2, 4000
    seen = _capture(monkeypatch)
    est = measure_seed(arch, width, seed, probes=P)
    J = _jacobians(seen["net"], seen["x0"])
    exact = measure_seed(arch, width, seed, probes="exact")
    # the same network and inputs were measured both times (inputs are drawn before the probes)
    np.testing.assert_array_equal(est["p"], exact["p"])
    for l, (Ja, Jb) in enumerate(J):
        for a, Jx in enumerate((Ja, Jb)):
            A = Jx @ Jx.T
            # mean of P estimates vᵀAv/n with v ~ N(0, I): variance 2‖A‖_F²/(P n²)
            sigma = math.sqrt(2 * float((A * A).sum()) / P) / width
            assert abs(est["jac_qm2"][l, a] - exact["jac_qm2"][l, a]) < 5 * sigma, (l, a)
            # a useful check: σ is a few % of the value (a wrong normalization would be far outside)
            assert sigma < 0.05 * exact["jac_qm2"][l, a]
        B = Ja @ Jb.T
        S = 0.5 * (B + B.T)
        sigma = math.sqrt(2 * float((S * S).sum()) / P)
        assert abs(est["grad_cross"][l] - exact["grad_cross"][l]) < 5 * sigma, l


# ------------------------------------------------------------------------------------ prediction vs sampling

WIDTH, SEEDS, PROBES = 256, 8, 16
STAT_NETS = {
    "10*dense(tanh,sw2=1.5,sb2=0.1)": ("q", "p", "c", "log_gsc", "grad_corr"),
    "10*residual(dense(tanh),dense(linear))": ("q", "p", "c", "log_gsc", "grad_corr"),
    "10*dense(relu,sw2=2)": ("q", "p", "c", "m", "log_gsc", "grad_corr"),
    "5*residual(dense(relu,sw2=2),beta=0.5)": ("q", "p", "c", "m", "log_gsc", "grad_corr"),
}
_MEASURED = {}


def _measured(arch):
    if arch not in _MEASURED:
        _MEASURED[arch] = measure(parse(arch), width=WIDTH, seeds=SEEDS, probes=PROBES)
    return _MEASURED[arch]


@pytest.mark.slow
@pytest.mark.parametrize("arch", list(STAT_NETS))
def test_prediction_inside_measured_interval(arch, criterion):
    net = parse(arch)
    L = net.depth
    rows = compare(predict(net), _measured(arch))
    checked = 0
    failures = []
    for r in rows:
        if r["quantity"] in STAT_NETS[arch] and r["layer"] in criterion.check_layers(L):
            checked += 1
            if not criterion.accepts(r, L, WIDTH):
                failures.append(f"{r['quantity']}[{r['layer']}]: predicted {r['predicted']:.5g}, measured "
                                f"{r['measured_mean']:.5g} [{r['measured_lo']:.5g}, {r['measured_hi']:.5g}]")
    assert checked >= 4 * len(STAT_NETS[arch]) - 4
    assert not failures, "\n".join(failures)


@pytest.mark.slow
def test_criterion_rejects_a_wrong_weight_variance(criterion):
    """Power: predicting sw2=1.8 for a network sampled with sw2=1.5 must be rejected somewhere."""
    arch = "10*dense(tanh,sw2=1.5,sb2=0.1)"
    wrong = predict(parse("10*dense(tanh,sw2=1.8,sb2=0.1)"))
    wrong_by = {(r["quantity"], r["layer"]): r["predicted"] for r in wrong.to_rows()}
    rows = compare(predict(parse(arch)), _measured(arch))
    rejected = [(r["quantity"], r["layer"]) for r in rows
                if r["quantity"] in ("q", "p") and r["layer"] in criterion.check_layers(10)
                and not criterion.accepts(r, 10, WIDTH, predicted=wrong_by[(r["quantity"], r["layer"])])]
    assert ("q", 1) in rejected


@pytest.mark.slow
def test_relu_resnet_needs_first_moment_cross_term(criterion):
    """y = x + β relu(Wx): ⟨x, relu(Wx)⟩/n = m_x·E[relu] ≠ 0 once m_x ≠ 0 (from layer 2 on, since m⁰ = 0).

    Without the cross term, p^l = (1 + β² σ_w²/2) p^{l−1} (E[relu(h)²] = q/2, q = σ_w² p): derived here by
    hand. The measured p agrees with that at layer 1 (no cross term yet, m⁰ = 0) but not at layer L, where the
    prediction that keeps the cross term does agree.
    """
    arch, beta, sw2, q0 = "5*residual(dense(relu,sw2=2),beta=0.5)", 0.5, 2.0, 1.0
    L = 5
    meas = _measured(arch)
    pred = predict(parse(arch), q0=q0)
    s = meas.summary()["p"]
    row = lambda l: {"quantity": "p", "measured_lo": s["lo"][l], "measured_hi": s["hi"][l]}
    no_cross = [q0 * (1 + beta**2 * sw2 / 2) ** l for l in range(L + 1)]
    assert criterion.accepts(row(1), L, WIDTH, predicted=no_cross[1])
    assert criterion.accepts(row(1), L, WIDTH, predicted=pred.values["p"][1])
    assert criterion.accepts(row(L), L, WIDTH, predicted=pred.values["p"][L])
    assert not criterion.accepts(row(L), L, WIDTH, predicted=no_cross[L])
    # the unit mean that feeds the cross term is clearly nonzero in the sampled networks
    m = meas.summary()["m"]
    assert m["lo"][L] > 0.5


# ------------------------------------------------------------------------------------------------- bad input

_TINY = "2*dense(tanh)"


@pytest.mark.parametrize("kwargs,name", [
    (dict(width=0), "width"),
    (dict(width=2.5), "width"),
    (dict(seeds=1), "seeds"),
    (dict(seeds=[3]), "seeds"),
    (dict(probes=0), "probes"),
    (dict(probes="foo"), "probes"),
    (dict(probes=2.0), "probes"),
    (dict(q0=-1.0), "q0"),
    (dict(q0=float("nan")), "q0"),
    (dict(c0=2.0), "c0"),
    (dict(dtype="float16"), "dtype"),
])
def test_measure_rejects_bad_input(kwargs, name):
    args = dict(width=4, seeds=2, probes=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=rf"\b{name}="):
        measure(parse(_TINY), **args)


def test_float64_on_mps_is_refused_by_name_before_any_work(monkeypatch):
    """MPS has no float64: say so (dtype and device named) instead of torch's error from inside a drawn network."""
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    for call in (lambda: measure(parse(_TINY), width=4, seeds=2, device="mps"),
                 lambda: build(parse(_TINY), 4, device="mps")):
        with pytest.raises(ValueError, match=r"dtype='float64' is not allowed on device='mps': MPS has no float64"):
            call()


def test_the_meta_device_builds_shapes_but_is_no_place_to_measure():
    for device in ("meta", torch.device("meta")):
        assert all(p.is_meta for p in build(parse(_TINY), 4, device=device).parameters())
    with pytest.raises(ValueError, match=r"device='meta' is not allowed: sigprop runs on cpu, cuda or mps"):
        measure(parse(_TINY), width=4, seeds=2, device="meta")


def test_measure_rejects_bool_seeds():
    with pytest.raises(ValueError, match=r"\bseeds="):
        measure(parse(_TINY), width=4, seeds=True, probes=2)
