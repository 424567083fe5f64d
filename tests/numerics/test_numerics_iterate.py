"""numerics.predict: mean-field recursions over depth, checked against facts derived here independently.

Independent references, all computed in this file from φ alone (never from theory's formulas):
- 1-D Gaussian integrals E[f(√q z)] by adaptive QUADPACK (``scipy.integrate.quad``), split at z = 0 and at
  the activation's steep points √q z = ±1, ±4;
- 2-D ones by nested QUADPACK over the decomposition v = c u + √(1 − c²) w (unit variances);
- fixed points by ``scipy.optimize.brentq`` on those integrals;
- exact statements: GSC = 1 for bias-free ReLU at any σ_w (Philipp, Song & Carbonell 2018), linear networks
  (everything constant), Gaussian orthant probability P(u > 0, v > 0) = ∫₀^∞ φ(z) Φ(cz/√(1 − c²)) dz.

Tolerances. QUADPACK is asked for epsabs 1e-14, epsrel 1e-13 and the quadrature in numerics reaches ~1e-12
relative (tests/test_numerics_quadrature.py); a recursion of 50 layers whose maps are contractions or
near-neutral (|dq'/dq| ≤ 1 here) accumulates at most ~50× that. Hence RTOL = 1e-10 on every compared number
(1e-9 where a nested 2-D quadrature and a fixed-point solve are compounded), 1e-12 for exact zeros that only
see float rounding of ~50 log terms.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import sys
from functools import lru_cache

import numpy as np
import pytest
from scipy import integrate, optimize, special

from sigprop import theory
from sigprop.numerics import OutOfRangeError, predict, predict_grid

RTOL = 1e-10
QUAD = dict(epsabs=1e-14, epsrel=1e-13, limit=200)
SQRT_2PI = math.sqrt(2 * math.pi)


def _dens(z):
    return math.exp(-z * z / 2) / SQRT_2PI


def _split_quad(fun, points, lim=12.0):
    pts = sorted({p for p in points if abs(p) < lim})
    edges = [-lim, *pts, lim]
    return sum(integrate.quad(fun, lo, hi, **QUAD)[0] for lo, hi in zip(edges[:-1], edges[1:]))


def gauss1(f, q):
    """E[f(√q z)], z ~ N(0, 1), by QUADPACK (the Gaussian weight beyond |z| = 12 is < 1e-32)."""
    s = math.sqrt(q)
    return _split_quad(lambda z: f(s * z) * _dens(z), [t / s for t in (-4, -1, 0, 1, 4)])


def gauss2_unit(f, g, c):
    """E[f(u) g(v)] for unit-variance (u, v) with correlation c (|c| < 1), nested QUADPACK."""
    s = math.sqrt(1 - c * c)

    def inner(z):
        w0 = -c * z / s
        return _split_quad(lambda w: g(c * z + s * w) * _dens(w), [w0 + t / s for t in (-4, -1, 0, 1, 4)])

    return _split_quad(lambda z: f(z) * inner(z) * _dens(z), [-4, -1, 0, 1, 4])


tanh = math.tanh


def sech2(x):
    e = math.exp(-2 * abs(x))
    return 4 * e / (1 + e) ** 2


def relu(x):
    return x if x > 0 else 0.0


@lru_cache(maxsize=None)
def pred(arch: str, q0: float = 1.0, c0: float = 0.5):
    return predict(theory.parse(arch), q0=q0, c0=c0)


def gsc_factor(p, l):
    """exp(log GSC(l-1, L) − log GSC(l, L)): block l's own GSC."""
    v = p.values["log_gsc"]
    return math.exp(v[l - 1] - v[l])


# -- He-ReLU ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sw2", [0.7, 2.0, 5.0])
def test_relu_without_bias_has_gsc_one(sw2):
    # THEORY §4: σ_w² p E[relu'²]/E[relu²] = σ_w² p (1/2)/(σ_w² p/2) = 1 for every σ_w (bias 0).
    p = pred(f"50*dense(relu,sw2={sw2})", 1.3, 0.5)
    assert np.all(np.abs(p.values["log_gsc"]) <= 1e-12)
    assert np.all(np.abs(p.values["log_gsc_qm"]) <= 1e-12)
    # p scales by σ_w²/2 per layer (E[relu²(√q z)] = q/2): the log-space iteration must keep that exactly
    expected = np.log(1.3) + np.arange(51) * math.log(sw2 / 2)
    np.testing.assert_allclose(p.per_input["log_p"][:, 0], expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("q0", [1.0, 3.7])
def test_he_relu_keeps_p(q0):
    p = pred("50*dense(relu,sw2=2)", q0, 0.5)
    np.testing.assert_allclose(p.values["p"], q0, rtol=1e-13)      # exp∘log rounding only
    np.testing.assert_allclose(p.values["q"], 2 * q0, rtol=1e-13)  # q = σ_w² p


def _relu_cmap(c):
    """Correlation of relu(u), relu(v) moments: E[relu(u) relu(v)] / E[relu²], unit variances, by quad."""
    return gauss2_unit(relu, relu, c) / 0.5


def _orthant(c):
    """P(u > 0, v > 0) for unit-variance (u, v) with correlation c."""
    s = math.sqrt(1 - c * c)
    return integrate.quad(lambda z: _dens(z) * special.ndtr(c * z / s), 0, np.inf, **QUAD)[0]


def test_he_relu_correlation_and_gradient_correlation():
    p = pred("50*dense(relu,sw2=2)", 1.0, 0.5)
    c = p.values["c"]          # c[i]: pre-activation correlation of block i+1
    assert c[0] == pytest.approx(0.5, rel=1e-14)
    # iterate the c-map by quadrature: h^{l+1} correlation = correlation of x^l = relu(h^l) (no bias)
    ref = 0.5
    for layer in range(2, 6):
        ref = _relu_cmap(ref)
        assert c[layer - 1] == pytest.approx(ref, rel=RTOL), layer
    # backward: grad_corr^{l-1}/grad_corr^l = E[relu'(u) relu'(v)]/E[relu'²] = 2 P(u>0, v>0) at block l's c
    g = p.values["grad_corr"]
    assert g[-1] == 1.0
    for layer in (1, 2, 3, 10, 50):
        assert g[layer - 1] / g[layer] == pytest.approx(2 * _orthant(c[layer - 1]), rel=RTOL), layer
    assert np.all(np.diff(c) > 0) and c[-1] < 1    # ReLU correlations rise towards 1


def test_he_relu_deep_plain():
    p = pred("10000*dense(relu,sw2=2)")
    assert np.all(np.abs(p.values["log_gsc"]) <= 1e-9)   # 1e4 log terms, each exact up to ~1e-16
    np.testing.assert_allclose(p.values["p"], 1.0, rtol=1e-12)


# -- critical tanh ------------------------------------------------------------------------------------------
def test_critical_tanh_length_map_and_gsc():
    L = 50
    p = pred(f"{L}*dense(tanh,sw2=1)", 1.0, 0.5)
    # independent length map: q^l = σ_w² p^{l-1} (σ_b = 0), p^l = E[tanh²(√q^l z)]
    ps = [1.0]
    for _ in range(L):
        ps.append(gauss1(lambda x: tanh(x) ** 2, ps[-1]))
    ps = np.array(ps)
    np.testing.assert_allclose(p.values["p"], ps, rtol=RTOL)
    np.testing.assert_allclose(p.values["q"], ps[:-1], rtol=RTOL)
    # GSC of block l (THEORY §4): √(σ_w² p E_q[φ'²] / E_q[φ²]) at p = p^{l-1}, q = σ_w² p + σ_b²
    for layer in range(1, L + 1):
        pp = ps[layer - 1]
        ref = math.sqrt(pp * gauss1(lambda x: sech2(x) ** 2, pp) / gauss1(lambda x: tanh(x) ** 2, pp))
        assert gsc_factor(p, layer) == pytest.approx(ref, rel=RTOL), layer
    assert np.all(np.isfinite(p.values["log_gsc"])) and p.values["log_gsc"][0] > 0


# -- chaotic tanh -------------------------------------------------------------------------------------------
SW2, SB2 = 2.5, 0.05


@lru_cache(maxsize=None)
def _chaotic_fixed_point():
    lmap = lambda q: SW2 * gauss1(lambda x: tanh(x) ** 2, q) + SB2 - q  # noqa: E731
    qs = optimize.brentq(lmap, 0.3, 3.0, xtol=1e-15)
    chi1 = SW2 * gauss1(lambda x: sech2(x) ** 2, qs)
    s = math.sqrt(qs)
    # pre-activation correlation map at q*: c' = (σ_w² E[φ(u)φ(v)] + σ_b²)/q*
    cmap = lambda c: (SW2 * gauss2_unit(lambda z: tanh(s * z), lambda z: tanh(s * z), c) + SB2) / qs  # noqa: E731
    cs = optimize.brentq(lambda c: cmap(c) - c, 0.3, 0.6, xtol=1e-13)
    chic = SW2 * gauss2_unit(lambda z: sech2(s * z), lambda z: sech2(s * z), cs)
    return qs, chi1, cs, chic


def test_chaotic_tanh_fixed_point_and_gsc_rate():
    qs, chi1, _, _ = _chaotic_fixed_point()
    p = pred(f"50*dense(tanh,sw2={SW2},sb2={SB2})", 1.0, 0.5)
    assert p.values["q"][-1] == pytest.approx(qs, rel=RTOL)
    assert chi1 > 1          # chaotic phase
    # at the fixed point p^{l-1} = p^l, so block GSC = √χ₁ (THEORY §4)
    for layer in (40, 50):
        assert gsc_factor(p, layer) == pytest.approx(math.sqrt(chi1), rel=RTOL), layer
    g = p.values["grad_corr"]
    assert g[-1] == 1.0 and np.all(np.diff(g) > 0) and g[0] < 1e-3   # gradients decorrelate (shattering)


def test_chaotic_tanh_correlation_fixed_point():
    # c converges slowly (χ_c/χ₁ ≈ 0.9 per layer): 400 layers bring it to ~1e-13 of c*
    qs, chi1, cs, chic = _chaotic_fixed_point()
    p = pred(f"400*dense(tanh,sw2={SW2},sb2={SB2})", 1.0, 0.5)
    assert p.values["c"][-1] == pytest.approx(cs, rel=1e-9)   # nested quad + root: 1e-9
    g = p.values["grad_corr"]
    # per-layer gradient-correlation factor χ_ab/χ (THEORY §5) → χ_c/χ₁ at (q*, c*)
    assert g[-2] / g[-1] == pytest.approx(chic / chi1, rel=1e-9)
    assert 0 < g[0] < 1e-10


# -- linear -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sw2", [1, 3])
def test_linear_network_is_trivial(sw2):
    p = pred(f"20*dense(linear,sw2={sw2})", 2.0, 0.3)
    np.testing.assert_allclose(p.values["p"], 2.0 * sw2 ** np.arange(21), rtol=1e-14)   # exact up to rounding
    np.testing.assert_allclose(p.values["c"], 0.3, rtol=1e-14)
    np.testing.assert_allclose(p.values["grad_corr"], 1.0, rtol=1e-14)
    assert np.all(np.abs(p.values["log_gsc"]) <= 1e-13)
    np.testing.assert_array_equal(p.values["m"], 0.0)


# -- residual -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("q0", [1.0, 2.5])
def test_residual_tanh_first_block(q0):
    depth = 50 if q0 == 1.0 else 3
    p = pred(f"{depth}*residual(dense(tanh),dense(linear))", q0, 0.5)
    e_tanh2 = gauss1(lambda x: tanh(x) ** 2, q0)
    e_dtanh2 = gauss1(lambda x: sech2(x) ** 2, q0)
    # y = x + W₂ tanh(W₁ x): zero means, fresh weights, α = β = σ_w² = 1 (THEORY §6)
    assert p.values["p"][1] == pytest.approx(q0 + e_tanh2, rel=RTOL)
    assert p.values["q"][0] == pytest.approx(e_tanh2, rel=RTOL)        # pre-activation of the linear layer
    # backward factor α² + β² χ_F with χ_F = E[tanh'²]·1, so block GSC² = (1 + E[tanh'²]) p⁰/p¹
    assert gsc_factor(p, 1) == pytest.approx(math.sqrt((1 + e_dtanh2) * q0 / (q0 + e_tanh2)), rel=RTOL)
    np.testing.assert_array_equal(p.values["m"], 0.0)
    assert np.all(np.diff(p.values["p"]) > 0)       # tanh resnet: variance grows


# -- log space and range ------------------------------------------------------------------------------------
def _resnet_relu_rate():
    """Asymptotic growth factor r of p for y = x + relu(W x) (σ_w² = 2, no bias), derived here.

    F = relu(Wx): E‖F‖²/n = p, mean m_F = √(2p)/√(2π) = b√p with b = 1/√π, and ⟨x, F⟩/n = m·m_F (fresh W).
    So p' = 2p + 2 m b√p and m' = m + b√p. With m = a√p at the attractor, r = 2 + 2ab and (a + b)² = a² r.
    """
    b = 1 / math.sqrt(math.pi)
    return optimize.brentq(lambda r: ((r - 2) / (2 * b)) ** 2 * r - ((r - 2) / (2 * b) + b) ** 2, 2.01, 4.0,
                           xtol=1e-15)


def test_deep_relu_resnet_in_log_space():
    p = pred("10000*residual(dense(relu,sw2=2))")
    log_p = p.per_input["log_p"]
    assert np.all(np.isfinite(log_p)) and np.all(np.diff(log_p[:, 0]) > 0)
    assert np.all(np.isfinite(p.values["log_gsc"])) and np.all(np.isfinite(p.values["log_gsc_qm"]))
    for name, v in p.values.items():
        assert not np.any(np.isnan(v)), name         # p, q, m may read inf beyond float64; never NaN
    r = _resnet_relu_rate()
    # late layers: log p grows by ln r per block (rounding of log p ~ 1e4 · 1e-16 per difference)
    np.testing.assert_allclose(np.diff(log_p[200:, 0]), math.log(r), rtol=0, atol=1e-10)
    # block GSC² = χ p_in/p_out with χ = α² + β² σ_w² E[relu'²] = 2, so log GSC per block → ½ ln(2/r)
    np.testing.assert_allclose(np.diff(p.values["log_gsc"][200:]), -0.5 * math.log(2 / r), rtol=0, atol=1e-10)


@pytest.mark.parametrize("arch,sw2", [("5000*dense(relu,sw2=w)", 2.5), ("5000*dense(linear,sw2=w)", 0.5),
                                      ("5000*dense(leaky_relu(a=0.3),sw2=w)", 3.0)])
def test_gsc_of_a_homogeneous_net_stays_one_at_any_depth(arch, sw2):
    """Positively homogeneous φ without bias: GSC = 1 at every layer, whatever σ_w² (Philipp, Song & Carbonell 2018),
    while p and the gradient's second moment grow or shrink like (σ_w² E[φ'²])^L. Each block adds a few rounding
    units to log GSC, so |log GSC(l, L)| <= 4 (L − l) eps; subtracting accumulated logarithms of size ~L instead
    lost ~L eps per block (5e-11 at depth 5000 for ReLU at σ_w² = 2.5, ~L² eps in all)."""
    eps = np.finfo(float).eps
    depth = 5000
    bound = 4 * eps * (depth - np.arange(depth + 1))
    g = pred(arch.replace("=w)", f"={sw2})")).values["log_gsc"]
    assert np.all(np.abs(g) <= bound), float(np.max(np.abs(g) / np.maximum(bound, eps)))
    grid = predict_grid(arch, w=np.array([0.25, 1.0, sw2])).values["log_gsc"]
    assert np.all(np.abs(grid) <= bound), float(np.max(np.abs(grid) / np.maximum(bound, eps)))


def test_values_beyond_float64_are_said_with_their_layer():
    """p = (σ_w²/2)^l for bias-free ReLU: it passes float64's largest number (≈ e^709.78) at the first l with
    l·log 1.5 > 709.78, and for the linear net at σ_w² = 1/2 float64's smallest normal number (≈ e^-708.40) at the
    first l with l·log 2 > 708.40: the notes say so, and the values read inf there, finite before."""
    up = pred("2000*dense(relu,sw2=3)")
    first = math.floor(math.log(sys.float_info.max) / math.log(1.5)) + 1
    assert f"p exceeds float64's largest number from layer {first} on" in " ".join(up.meta["notes"])
    assert np.isinf(up.values["p"][first]) and np.isfinite(up.values["p"][first - 1])
    assert not any("m exceeds" in n for n in up.meta["notes"])              # √p fits until layer 3503
    down = pred("2000*dense(linear,sw2=0.5)")
    first = math.floor(-math.log(sys.float_info.min) / math.log(2)) + 1
    assert f"p falls below float64's smallest normal number from layer {first} on" in " ".join(down.meta["notes"])
    assert "notes" not in pred("50*dense(tanh,sw2=2.5,sb2=0.05)").meta


def test_relu_resnet_with_bias_grows_like_3_to_the_L():
    # Not homogeneous: iterated in linear space. At depth 300, p ≈ e^319 still fits in float64.
    p = pred("300*residual(dense(relu,sw2=2,sb2=0.1))")
    log_p = p.per_input["log_p"][:, 0]
    np.testing.assert_allclose(np.diff(log_p[200:]), math.log(_resnet_relu_rate()), rtol=0, atol=1e-10)
    assert all(not np.any(np.isnan(v)) for v in p.values.values())


def test_relu_resnet_with_bias_overflow_names_layer():
    # p grows like 2.9^L: float64 ends near layer 660
    with pytest.raises(OutOfRangeError, match=r"layer \d+"):
        predict(theory.parse("1000*residual(dense(relu,sw2=2,sb2=0.1))"))


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("arch,q0,layer", [("dense(relu,sw2=2,sb2=0.1)", 1e160, 1), ("2*dense(tanh)", 1e160, 1),
                                           ("10*dense(exp,sw2=50)", 1.0, 2)])
def test_an_exploded_signal_is_refused_by_name(arch, q0, layer):
    """Documented limit: a block that is not homogeneous evaluates its integrals at the true q, whose products
    (q₁q₂ − k²) must fit float64 (q < 1.3e154); beyond, the layer and the reason, not NaN, a generic "not
    finite" or numpy's overflow warnings. On a grid (whose tanh integrals stayed finite there, and whose
    correlations read 0 where they are 0.5 and 1/3: q_ab/√(q_a q_b) overflowed), that configuration alone."""
    with pytest.raises(OutOfRangeError, match=rf"layer {layer} .*exceeds 1.3e154, .* the signal has exploded"):
        predict(theory.parse(arch), q0=q0, c0=0.5)
    grid = predict_grid(arch, q0=np.array([q0, 1e-3]), c0=0.5)
    assert grid.out_of_range[0] == layer and "the signal has exploded" in grid.reasons[0]
    assert grid.out_of_range[1] == 0 or "exploded" in grid.reasons[1]
    if arch == "2*dense(tanh)":          # just below the limit: (2/π) arcsin(1/2) = 1/3 at the second layer
        c = predict_grid(arch, q0=np.array([1e150]), c0=0.5).values["c"][0]
        np.testing.assert_allclose(c, [0.5, 1 / 3], rtol=1e-12)


def test_a_vanishing_signal_is_refused_where_the_covariance_arithmetic_underflows():
    """tanh without bias in the ordered phase: q shrinks by about 100 per layer. Where q < 1.5e-154 the Gaussian
    integrals' q_a q_b leaves float64 and the correlation read 1 (a silent jump from 0.49998); that layer is refused.
    Before it tanh is linear to q's precision, so the correlation is constant: an independent check of the small-q
    arithmetic (q down to 1e-150 at layer 75)."""
    with pytest.raises(OutOfRangeError, match=r"layer 77 .*falls below 1.5e-154, where products of two mean squares"):
        predict(theory.parse("150*dense(tanh,sw2=0.01)"))
    c = predict(theory.parse("75*dense(tanh,sw2=0.01)")).values["c"]
    assert predict(theory.parse("75*dense(tanh,sw2=0.01)")).values["q"][-1] < 1e-145
    np.testing.assert_allclose(c[20:], c[20], rtol=1e-12)
    grid = predict_grid("150*dense(tanh,sw2=w)", w=np.array([0.01, 1.0]))
    assert grid.out_of_range[0] == 77 and grid.out_of_range[1] == 0 and "falls below 1.5e-154" in grid.reasons[0]


def test_homogeneous_scale_overflow_before_non_homogeneous_block():
    with pytest.raises(OutOfRangeError, match=r"layer 1001\b"):
        predict(theory.parse("1000*residual(dense(relu,sw2=2)),dense(tanh)"))


STANDARD = ["50*dense(relu,sw2=2)", "50*dense(tanh,sw2=1)", f"50*dense(tanh,sw2={SW2},sb2={SB2})",
            "50*residual(dense(tanh),dense(linear))", "20*residual(dense(relu,sw2=2),beta=0.5)"]


@pytest.mark.parametrize("arch", STANDARD)
def test_standard_architectures_are_finite(arch):
    p = pred(arch)
    for name, v in {**p.values, **p.per_input}.items():
        assert np.all(np.isfinite(v)), name
    assert np.all(np.abs(p.values["c"]) <= 1) and np.all(np.abs(p.values["grad_corr"]) <= 1)
    assert np.all(p.values["p"] > 0) and np.all(p.values["q"] > 0)
    depth = theory.parse(arch).depth
    assert p.depth == depth
    for name in p.values:
        expected = np.arange(1, depth + 1) if name in ("q", "c") else np.arange(depth + 1)
        np.testing.assert_array_equal(p.layers[name], expected)
        assert len(p.values[name]) == len(expected)


# -- bad input ------------------------------------------------------------------------------------------------
NET = theory.parse("3*dense(tanh)")


@pytest.mark.parametrize("kwargs,name", [({"q0": 0.0}, "q0"), ({"q0": -1.0}, "q0"), ({"q0": float("nan")}, "q0"),
                                         ({"q0": float("inf")}, "q0"), ({"c0": 1.5}, "c0"),
                                         ({"c0": float("nan")}, "c0"), ({"m0": 2.0}, "m0")])
def test_predict_rejects_bad_inputs(kwargs, name):
    with pytest.raises(ValueError, match=rf"\b{name}="):
        predict(NET, **kwargs)


@pytest.mark.parametrize("arch,names", [("dense(tanh,sw2=s)", "s"), ("residual(dense(relu),beta=b)", "b"),
                                        ("dense(relu,sw2=s,sb2=t)", "s, t")])
def test_predict_rejects_symbolic_parameters(arch, names):
    with pytest.raises(ValueError, match=re.escape(f"({names})")):
        predict(theory.parse(arch))


# -- exports ------------------------------------------------------------------------------------------------------
ARCH = f"50*dense(tanh,sw2={SW2},sb2={SB2})"


def test_to_csv():
    p = pred(ARCH)
    text = p.to_csv()
    assert text.splitlines()[0] == "architecture,layer,quantity,predicted"
    rows = list(csv.DictReader(io.StringIO(text)))
    L = p.depth
    assert len(rows) == 5 * (L + 1) + 2 * L == len(p.to_rows())     # q, c at 1..L; the others at 0..L
    keys = {(r["quantity"], int(r["layer"])) for r in rows}
    assert len(keys) == len(rows)
    assert theory.parse(rows[0]["architecture"]).describe() == p.architecture   # quoted commas survive
    for r in rows:
        layers, values = p.series(r["quantity"])
        i = list(layers).index(int(r["layer"]))
        assert float(r["predicted"]) == values[i]          # repr floats: exact round trip


def test_to_json_round_trip():
    p = pred(ARCH)
    d = json.loads(p.to_json())
    assert d["architecture"] == p.architecture
    assert d["inputs"] == {"q0": 1.0, "c0": 0.5, "m0": 0.0}
    for name, v in p.values.items():
        assert np.array_equal(np.array(d["values"][name]), v), name
        assert d["layers"][name] == list(map(int, p.layers[name])), name
    for name, v in p.per_input.items():
        assert np.array_equal(np.array(d["per_input"][name]), v), name


def test_exports_write_files(tmp_path):
    p = pred(ARCH)
    folder = tmp_path / "new" / "folder"
    csv_text = p.to_csv(folder / "pred.csv")
    json_text = p.to_json(str(folder / "pred.json"))
    assert (folder / "pred.csv").read_text() == csv_text
    assert json.loads((folder / "pred.json").read_text()) == json.loads(json_text)
    assert sorted(os.listdir(folder)) == ["pred.csv", "pred.json"]      # atomic writes leave no temporaries
