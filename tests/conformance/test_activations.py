"""Every activation through the same checks: the registry's, and user activations built from SymPy expressions.

For each activation, with φ and φ' taken from its SymPy definition (the definition is what is being integrated;
the integration is what is under test):

- the map expectations and xmean, as ``sigprop.numerics.expectation`` evaluates them (closed form or quadrature),
  against mpmath quadrature at 25 digits (1-D, split at the kinks and the steep points ±1, ±4) and nested QUADPACK
  (2-D, the conditional decomposition v = c√q₂ z + √(q₂(1−c²)) w, split where u or v crosses a kink or 0);
  tolerance 1e-10 relative plus 1e-12·S, S the natural scale of the value (√(E[f²] E[g²])), since QUADPACK
  reaches ~1e-13 and sigprop's rules 1e-12;
- the kinds with φ'' and φ'⁴, computed from φ and the almost-everywhere φ' alone (so the Dirac deltas that
  sigprop adds for the kinks are checked, not reused), at fixed and random points with unequal variances:
  E[φ'⁴] and E[φφ''] = E[uφφ']/q − E[φ'²] (Gaussian integration by parts) by mpmath at 40 digits;
  E[φ''(u)φ''(v)] at k = 0 as E[φ''(u)] E[φ''(v)] with E[φ''(u)] = E[uφ'(u)]/q (Stein) at 40 digits, and at
  k ≠ 0 as E[φ'(u)φ'(v) ∂_k log p(u, v)] (Price's theorem integrated by parts) by nested QUADPACK (a nested
  40-digit mpmath integral takes minutes per value); φ that jumps (step, sign) must refuse both φ'' kinds;
- all kinds against Monte Carlo of the Gaussian integral (2·10⁶ samples, 5 standard errors), the φ'' kinds in the
  integrated-by-parts forms above;
- the torch function against φ, and its autograd derivative against φ', on a grid (float64);
- the declared degree against φ(λx) = λ^d φ(x);
- a network of the activation, predicted and sampled (tests/conftest.py: the acceptance criterion).
"""
from __future__ import annotations

import math
import random
import zlib
from functools import lru_cache

import mpmath as mp
import numpy as np
import pytest
import sympy as sp
import torch
from scipy import integrate

from sigprop.numerics import OutOfRangeError, expectation, predict
from sigprop.theory import ACTIVATIONS, Activation, Dense, get_activation, parse
from sigprop.theory.piecewise import piecewise_form
from sigprop.theory.symbols import x
from sigprop.validate import compare, measure, torch_function

# activations a user defines from expressions (not registered: they must work all the same)
USER = [Activation("clip", sp.Max(-1, sp.Min(1, x))),
        Activation("softplus_naive", "log(1 + exp(x))"),
        Activation("xerf", "x*erf(x)"),
        # family members away from their defaults, and affine transforms (exact reduction when c = 0, else their own)
        *map(get_activation, ["leaky_relu(a=-0.3)", "elu(a=0.5)", "celu(a=2)", "swish(b=2)", "power(n=3)",
                              "affine(tanh,a=1.5,b=0.7,d=0.2)", "affine(relu,a=2,c=0.3)", "affine(erf,b=-2)"])]
ALL = {a.describe(): a for a in [*ACTIVATIONS.values(), *USER]}
IDS = list(ALL)

KINDS_1D = ("mean", "square", "dsquare", "xmean")
QS = (0.3, 1.0, 4.0)
PAIRS = ((1.0, 1.0, 0.5), (0.5, 2.0, 0.95), (1.7, 0.4, -0.9), (2.0, 2.0, 0.0))
RTOL, ATOL = 1e-10, 1e-12


@lru_cache(maxsize=None)
def _functions(name):
    act = ALL[name]
    phi, dphi = piecewise_form(act.phi), piecewise_form(act.dphi)
    return {"mp": (sp.lambdify(x, phi, "mpmath"), sp.lambdify(x, dphi, "mpmath")),
            "float": (sp.lambdify(x, phi, "math"), sp.lambdify(x, dphi, "math")),
            "np": (_quiet(sp.lambdify(x, phi, ["scipy", "numpy"])), _quiet(sp.lambdify(x, dphi, ["scipy", "numpy"])))}


def _quiet(fn):
    """NumPy's piecewise select evaluates every branch at every point (softsign's x/(1 − x) at x = 1 for the
    branch it then discards): the reference keeps quiet about the discarded values."""
    def evaluate(u):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return fn(u)
    return evaluate


def _breaks(name):
    return sorted({float(k) for k in ALL[name].kinks} | {-4.0, -1.0, 0.0, 1.0, 4.0})


def ref_1d(name, kind, q):
    f = _functions(name)["mp"][kind == "dsquare"]
    power = 1 if kind in ("mean", "xmean") else 2
    s = mp.sqrt(q)
    points = [-mp.inf] + [mp.mpf(b) / s for b in _breaks(name)] + [mp.inf]
    weight = (lambda z: s * z) if kind == "xmean" else (lambda z: 1)
    with mp.workdps(25):
        val = mp.quad(lambda z: weight(z) * f(s * z) ** power * mp.npdf(z), points)
        scale = mp.sqrt(mp.quad(lambda z: f(s * z) ** 2 * mp.npdf(z), points)) ** power * (s if kind == "xmean" else 1)
    return float(val), float(scale)


def _pieces(fun, points, lim=12.0):
    pts = sorted({p for p in points if -lim < p < lim})
    edges = [-lim, *pts, lim]
    kw = dict(epsabs=1e-14, epsrel=1e-13, limit=200)
    return sum(integrate.quad(fun, lo, hi, **kw)[0] for lo, hi in zip(edges[:-1], edges[1:]))


def ref_2d(name, kind, q1, q2, c):
    f = _functions(name)["float"][kind == "dkernel"]
    s1, a, b = math.sqrt(q1), c * math.sqrt(q2), math.sqrt(q2 * (1 - c * c))
    dens = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    brk = _breaks(name)

    def inner(z):
        return _pieces(lambda w: f(a * z + b * w) * dens(w), [(t - a * z) / b for t in brk])

    outer = [t / s1 for t in brk] + ([t * max(b, 1.0) / a for t in brk] if a else [])
    val = _pieces(lambda z: f(s1 * z) * inner(z) * dens(z), outer)
    sq = lambda qq: _pieces(lambda z: f(math.sqrt(qq) * z) ** 2 * dens(z), [t / math.sqrt(qq) for t in brk])
    return val, math.sqrt(sq(q1) * sq(q2))


@pytest.mark.parametrize("name", IDS)
@pytest.mark.parametrize("kind", KINDS_1D)
def test_1d_expectations_against_mpmath(name, kind):
    for q in QS:
        ref, scale = ref_1d(name, kind, q)
        got = expectation(ALL[name], kind, q)
        assert abs(got - ref) <= RTOL * abs(ref) + ATOL * scale, (name, kind, q, got, ref)


@pytest.mark.parametrize("name", IDS)
@pytest.mark.parametrize("kind", ["kernel", "dkernel"])
def test_2d_expectations_against_quadpack(name, kind):
    for q1, q2, c in PAIRS:
        ref, scale = ref_2d(name, kind, q1, q2, c)
        got = expectation(ALL[name], kind, q1, q2, c * math.sqrt(q1 * q2))
        assert abs(got - ref) <= 1e-9 * abs(ref) + 1e-11 * scale, (name, kind, q1, q2, c, got, ref)


@pytest.fixture(scope="module")
def normals():
    rng = np.random.default_rng(20261123)
    return rng.standard_normal(2_000_000), rng.standard_normal(2_000_000)


@pytest.mark.parametrize("name", IDS)
def test_expectations_against_monte_carlo(name, normals):
    phi, dphi = _functions(name)["np"]
    z1, z2 = normals
    q1, q2, c = 1.3, 0.6, 0.7
    u = math.sqrt(q1) * z1
    v = math.sqrt(q2) * (c * z1 + math.sqrt(1 - c * c) * z2)
    fu, fv, du, dv = (np.broadcast_to(f(t), t.shape) for f, t in ((phi, u), (phi, v), (dphi, u), (dphi, v)))
    cases = {"mean": (fu, (q1,)), "square": (fu**2, (q1,)), "dsquare": (du**2, (q1,)), "xmean": (u * fu, (q1,)),
             "kernel": (fu * fv, (q1, q2, c * math.sqrt(q1 * q2))), "dkernel": (du * dv, (q1, q2, c * math.sqrt(q1 * q2)))}
    for kind, (samples, args) in cases.items():
        got = expectation(ALL[name], kind, *args)
        se = samples.std(ddof=1) / math.sqrt(samples.size)
        assert abs(samples.mean() - got) <= 5 * se + 1e-12 * (1 + abs(got)), (name, kind, samples.mean(), got, se)


# -- φ'⁴ and the φ'' kinds ------------------------------------------------------------------------------------
def _rng(name):
    return random.Random(zlib.crc32(name.encode()))


def _mp_e1(f, q, name):
    """E[f(u)], u ~ N(0, q), by mpmath at the working precision, split at the kinks and steep points."""
    s = mp.sqrt(q)
    return mp.quad(lambda z: f(s * z) * mp.npdf(z), [-mp.inf] + [mp.mpf(b) / s for b in _breaks(name)] + [mp.inf])


def ref_beyond_1d(name, kind, q):
    """(value, scale) of E[φ'⁴] or E[φφ''] = E[uφφ']/q − E[φ'²] at 40 digits, from φ and the a.e. φ'."""
    f, d = _functions(name)["mp"]
    with mp.workdps(40):
        q = mp.mpf(q)
        if kind == "dquartic":
            val = _mp_e1(lambda u: d(u) ** 4, q, name)
            return float(val), float(val)
        d2 = _mp_e1(lambda u: d(u) ** 2, q, name)
        val = _mp_e1(lambda u: u * f(u) * d(u), q, name) / q - d2
        scale = mp.sqrt(_mp_e1(lambda u: f(u) ** 2, q, name) * _mp_e1(lambda u: (u * d(u)) ** 2, q, name)) / q + d2
        return float(val), float(scale)


def ref_ddkernel_uncorrelated(name, q1, q2):
    """E[φ''(u)] E[φ''(v)] with E[φ''(u)] = E[uφ'(u)]/q (Stein's lemma), 40 digits."""
    d = _functions(name)["mp"][1]
    with mp.workdps(40):
        m1, m2 = (_mp_e1(lambda u: u * d(u), mp.mpf(qq), name) / qq for qq in (q1, q2))
        scale = mp.sqrt(_mp_e1(lambda u: (u * d(u)) ** 2, mp.mpf(q1), name)
                        * _mp_e1(lambda u: (u * d(u)) ** 2, mp.mpf(q2), name)) / (q1 * q2)
        return float(m1 * m2), float(scale)


def ref_ddkernel(name, q1, q2, c):
    """E[φ'(u)φ'(v) ∂_k log p(u, v)] = ∂_k E[φ'(u)φ'(v)] = E[φ''(u)φ''(v)], nested QUADPACK; and its scale."""
    d = _functions(name)["float"][1]
    s1, a, b = math.sqrt(q1), c * math.sqrt(q2), math.sqrt(q2 * (1 - c * c))
    k, det = c * math.sqrt(q1 * q2), q1 * q2 * (1 - c * c)
    dens = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731

    def score(u, v):
        return (k + u * v - k * (q2 * u * u - 2 * k * u * v + q1 * v * v) / det) / det

    brk = _breaks(name)

    def inner(z):
        return _pieces(lambda w: d(a * z + b * w) * score(s1 * z, a * z + b * w) * dens(w),
                       [(t - a * z) / b for t in brk])

    outer = [t / s1 for t in brk] + ([t * max(b, 1.0) / a for t in brk] if a else [])
    val = _pieces(lambda z: d(s1 * z) * inner(z) * dens(z), outer)
    def sq(qq):
        return _pieces(lambda z: d(math.sqrt(qq) * z) ** 2 * dens(z), [t / math.sqrt(qq) for t in brk])
    return val, math.sqrt(sq(q1) * sq(q2) / det)


def _refuses_second_derivative(name, kind, *args):
    with pytest.raises(ValueError, match=f"{kind} of .* is not defined: phi jumps"):
        expectation(ALL[name], kind, *args)


@pytest.mark.parametrize("name", IDS)
@pytest.mark.parametrize("kind", ["dquartic", "curvature"])
def test_dquartic_and_curvature_against_mpmath(name, kind):
    if kind == "curvature" and not ALL[name].is_continuous:
        return _refuses_second_derivative(name, kind, 1.0)
    rng = _rng(name + kind)
    for q in (*QS, rng.uniform(0.05, 1.0), rng.uniform(1.0, 9.0)):
        ref, scale = ref_beyond_1d(name, kind, q)
        got = expectation(ALL[name], kind, q)
        assert abs(got - ref) <= RTOL * abs(ref) + ATOL * scale, (name, kind, q, got, ref)


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")   # QUADPACK's 1e-13 goal, not the 1e-9 tested
@pytest.mark.parametrize("name", IDS)
def test_ddkernel_against_mpmath_and_quadpack(name):
    if not ALL[name].is_continuous:
        return _refuses_second_derivative(name, "ddkernel", 1.0, 2.0, 0.5)
    rng = _rng(name)
    for q1, q2 in ((0.7, 2.3), (rng.uniform(0.1, 4.0), rng.uniform(0.1, 4.0))):
        ref, scale = ref_ddkernel_uncorrelated(name, q1, q2)
        got = expectation(ALL[name], "ddkernel", q1, q2, 0.0)
        assert abs(got - ref) <= RTOL * abs(ref) + ATOL * scale, (name, q1, q2, got, ref)
    for q1, q2, c in (*PAIRS[:3], (rng.uniform(0.1, 4.0), rng.uniform(0.1, 4.0), rng.uniform(-0.9, 0.9))):
        ref, scale = ref_ddkernel(name, q1, q2, c)
        got = expectation(ALL[name], "ddkernel", q1, q2, c * math.sqrt(q1 * q2))
        assert abs(got - ref) <= 1e-9 * abs(ref) + 1e-11 * scale, (name, q1, q2, c, got, ref)


@pytest.mark.parametrize("name", IDS)
def test_dquartic_and_second_derivative_kinds_against_monte_carlo(name, normals):
    """E[φ'⁴]; E[φφ''] as E[uφφ']/q − E[φ'²]; E[φ''(u)φ''(v)] as E[φ'(u)φ'(v) ∂_k log p]: per-sample estimators
    with no Dirac deltas in them. Smaller variances than above keep φ'⁴ of exp and x³ of finite variance."""
    phi, dphi = _functions(name)["np"]
    z1, z2 = normals
    q1, q2, c = 0.5, 0.3, 0.6
    k, det = c * math.sqrt(q1 * q2), q1 * q2 * (1 - c * c)
    u = math.sqrt(q1) * z1
    v = math.sqrt(q2) * (c * z1 + math.sqrt(1 - c * c) * z2)
    fu, du, dv = (np.broadcast_to(f(t), t.shape) for f, t in ((phi, u), (dphi, u), (dphi, v)))
    cases = {"dquartic": (du**4, (q1,))}
    if ALL[name].is_continuous:
        score = (k + u * v - k * (q2 * u * u - 2 * k * u * v + q1 * v * v) / det) / det
        cases.update(curvature=(u * fu * du / q1 - du**2, (q1,)), ddkernel=(du * dv * score, (q1, q2, k)))
    for kind, (samples, args) in cases.items():
        got = expectation(ALL[name], kind, *args)
        se = samples.std(ddof=1) / math.sqrt(samples.size)
        assert abs(samples.mean() - got) <= 5 * se + 1e-12 * (1 + abs(got)), (name, kind, samples.mean(), got, se)


@pytest.mark.parametrize("name", IDS)
def test_torch_function_and_its_gradient(name):
    act = ALL[name]
    phi, dphi = _functions(name)["np"]
    grid = np.concatenate([np.linspace(-6.0, 6.0, 1201), [0.0, -0.0, 1e-300, -1e-8, 1e-8, -30.0, 30.0]])
    t = torch.tensor(grid, dtype=torch.float64, requires_grad=True)
    out = torch_function(act)(t)
    assert out.dtype == torch.float64 and out.shape == t.shape
    expected = np.broadcast_to(phi(grid), grid.shape)
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-14, atol=1e-14)
    (grad,) = torch.autograd.grad(out.sum(), t)
    away = np.all(np.abs(grid[:, None] - np.array([float(k) for k in act.kinks] or [np.inf])) > 1e-6, axis=1)
    np.testing.assert_allclose(grad.numpy()[away], np.broadcast_to(dphi(grid), grid.shape)[away], rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize("name", IDS)
def test_declared_degree(name):
    act = ALL[name]
    phi = _functions(name)["np"][0]
    u = np.linspace(-3, 3, 61)
    if act.degree is None:
        # not homogeneous: some λ breaks φ(λx) = λ^d φ(x) for every small d
        for d in (0, 1, 2):
            assert not np.allclose(phi(2.5 * u), 2.5**d * phi(u)), (name, d)
    else:
        for lam in (0.3, 7.0):
            np.testing.assert_allclose(phi(lam * u), lam**act.degree * np.broadcast_to(phi(u), u.shape),
                                       rtol=1e-13, atol=1e-13)


WIDTH, SEEDS, PROBES, DEPTH = 256, 8, 16, 8
# x² and e^x grow the mean square faster than exponentially at σ_w² = 1.5 (q ↦ 4.5q², q ↦ 1.5e^(2q)): past
# float64 within 8 layers. At σ_w² = 0.1 both have a stable fixed point of q, which is what sampled networks show.
SW2 = {"power": 0.1, "exp": 0.1}


@pytest.mark.slow
@pytest.mark.parametrize("name", IDS)
def test_network_predicted_and_sampled(name, criterion):
    net = DEPTH * Dense(ALL[name], sw2=SW2.get(ALL[name].name, 1.5), sb2=0.1)
    if ALL[name].dphi == 0:
        # φ' = 0 almost everywhere (step, sign): backpropagation gives exactly zero, GSC is undefined; said so
        with pytest.raises(OutOfRangeError, match="gradient vanishes exactly"):
            predict(net)
        return
    rows = compare(predict(net), measure(net, width=WIDTH, seeds=SEEDS, probes=PROBES))
    failures = [f"{r['quantity']}[{r['layer']}]: predicted {r['predicted']:.5g}, measured {r['measured_mean']:.5g} "
                f"[{r['measured_lo']:.5g}, {r['measured_hi']:.5g}]"
                for r in rows if r["layer"] in criterion.check_layers(DEPTH) and not criterion.accepts(r, DEPTH, WIDTH)]
    assert not failures, "\n".join(failures)


def test_user_activation_round_trips_through_the_grammar_once_registered():
    from sigprop.theory import activation
    act = activation("xerf_grammar", "x*erf(x)")
    net = parse("3*dense(xerf_grammar,sw2=2)")
    assert net.blocks[0].activation is act and parse(net.describe()).describe() == net.describe()
