"""Digits near c = ±1, at tiny and huge variances: closed forms and quadrature against 40-digit mpmath.

The references evaluate the textbook forms of the kernels (Cho & Saul's arc-cosine kernel with arccos,
Williams' erf kernel with arcsin, their derivatives in k) in mpmath at 40 digits, from the very doubles
(q₁, q₂, k) that sigprop receives. That form is the one whose float64 evaluation loses half its digits near
c = 1 (arccos of a number within 1e-15 of 1); sigprop evaluates its own (atan2 of an exactly computed
q₁q₂ − k²), so agreement to 1e-12 tests the stability, not a copy.

The newer references check digits, not formulas: leaky/abs are expanded through the textbook relu kernel (so
their atan2 form is still checked against arccos), while step, sign, sin and cos are the same expressions as
sigprop's, evaluated at 40 digits (catching float64 cancellation and overflow: e^(−q)·cosh q at q = 10¹² goes
through the mpmath fallback). That each formula is the right one is checked independently, against quadrature
and Monte Carlo of the Gaussian integral and against sampled networks, in tests/conformance/test_activations.py,
and by the identities of tests/theory/test_catalog.py.

Tolerance: |got − ref| ≤ 1e-12 |ref| + 1e-15 S, S = √(E[φ(u)²] E[φ(v)²]) the scale of the kernel (the
value itself vanishes at c = −1 for relu, where only absolute accuracy relative to S is meaningful).
"""
from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest

from sigprop.numerics import expectation, predict
from sigprop.numerics.quadrature import expect2
from sigprop.theory import parse

RTOL, ATOL = 1e-12, 1e-15
QS = [1e-12, 1e-6, 1.0, 1e6, 1e12]
CS = [1.0, 1 - 1e-15, 1 - 1e-12, 1 - 1e-8, 0.5, 0.0, -0.5, -1 + 1e-12, -1.0]


def _k(q1, q2, k):
    # k = c·√(q₁q₂) rounded to a double can overshoot √(q₁q₂) by an ulp at |c| = 1: not a covariance. sigprop
    # reads it as the boundary |k| = √(q₁q₂), and so does the reference.
    bound = mp.sqrt(q1 * q2)
    return max(-bound, min(bound, k))


def _c(q1, q2, k):
    return _k(q1, q2, k) / mp.sqrt(q1 * q2)


def relu_kernel(q1, q2, k):
    c, k = _c(q1, q2, k), _k(q1, q2, k)
    th = mp.acos(c)
    return mp.sqrt(q1 * q2) * (mp.sin(th) + (mp.pi - th) * c) / (2 * mp.pi)


def relu_dkernel(q1, q2, k):
    return (mp.pi - mp.acos(_c(q1, q2, k))) / (2 * mp.pi)


def erf_kernel(q1, q2, k):
    k = _k(q1, q2, k)
    return 2 / mp.pi * mp.asin(2 * k / mp.sqrt((1 + 2 * q1) * (1 + 2 * q2)))


def erf_dkernel(q1, q2, k):
    k = _k(q1, q2, k)
    return 4 / mp.pi / mp.sqrt((1 + 2 * q1) * (1 + 2 * q2) - 4 * k * k)


def leaky(a, kernel):
    # a x + (1 − a) relu(x), expanded with the textbook arc-cosine kernel
    if kernel:
        return lambda q1, q2, k: a * _k(q1, q2, k) + (1 - a) ** 2 * relu_kernel(q1, q2, k)
    return lambda q1, q2, k: a + (1 - a) ** 2 * relu_dkernel(q1, q2, k)


def step_kernel(q1, q2, k):
    return (mp.pi - mp.acos(_c(q1, q2, k))) / (2 * mp.pi)


def sign_kernel(q1, q2, k):
    return 2 / mp.pi * mp.asin(_c(q1, q2, k))


def trig(kind_sin, kernel):
    # E[sin u sin v] = e^(−s) sinh k, E[cos u cos v] = e^(−s) cosh k, s = (q1 + q2)/2; Price swaps sinh and cosh
    f = mp.sinh if kind_sin == kernel else mp.cosh
    return lambda q1, q2, k: mp.exp(-(q1 + q2) / 2) * f(_k(q1, q2, k))


REFS = {("relu", "kernel"): relu_kernel, ("relu", "dkernel"): relu_dkernel,
        ("erf", "kernel"): erf_kernel, ("erf", "dkernel"): erf_dkernel,
        ("leaky_relu(a=0.2)", "kernel"): leaky(mp.mpf("0.2"), True),
        ("leaky_relu(a=0.2)", "dkernel"): leaky(mp.mpf("0.2"), False),
        ("abs", "kernel"): leaky(-1, True), ("abs", "dkernel"): leaky(-1, False),
        ("step", "kernel"): step_kernel, ("sign", "kernel"): sign_kernel,
        ("sin", "kernel"): trig(True, True), ("sin", "dkernel"): trig(True, False),
        ("cos", "kernel"): trig(False, True), ("cos", "dkernel"): trig(False, False)}
SCALE = {("relu", "kernel"): lambda q1, q2: math.sqrt(q1 * q2) / 2, ("relu", "dkernel"): lambda q1, q2: 0.5,
         ("erf", "kernel"): lambda q1, q2: float(math.sqrt(erf_kernel(mp.mpf(q1), mp.mpf(q1), mp.mpf(q1))
                                                           * erf_kernel(mp.mpf(q2), mp.mpf(q2), mp.mpf(q2)))),
         ("erf", "dkernel"): lambda q1, q2: float(math.sqrt(erf_dkernel(mp.mpf(q1), mp.mpf(q1), mp.mpf(q1))
                                                            * erf_dkernel(mp.mpf(q2), mp.mpf(q2), mp.mpf(q2))))}
for _key, _ref in REFS.items():       # the others: the scale from the reference's own diagonal
    SCALE.setdefault(_key, lambda q1, q2, _ref=_ref: float(mp.sqrt(abs(_ref(mp.mpf(q1), mp.mpf(q1), mp.mpf(q1))
                                                                       * _ref(mp.mpf(q2), mp.mpf(q2), mp.mpf(q2))))))


@pytest.mark.parametrize("name,kind", list(REFS))
@pytest.mark.parametrize("q", QS)
@pytest.mark.parametrize("ratio", [1.0, 3.7])
def test_closed_form_kernels_keep_their_digits(name, kind, q, ratio):
    q1, q2 = q, q * ratio
    worst = 0.0
    with mp.workdps(40):
        for c in CS:
            k = c * math.sqrt(q1 * q2)
            ref = REFS[name, kind](mp.mpf(q1), mp.mpf(q2), mp.mpf(k))
            got = expectation(name, kind, q1, q2, k)
            err = abs(got - float(ref))
            tol = RTOL * abs(float(ref)) + ATOL * SCALE[name, kind](q1, q2)
            assert err <= tol, f"{name}.{kind} q1={q1} q2={q2} c={c!r}: got {got!r}, ref {float(ref)!r}"
            worst = max(worst, err / tol)
    assert worst <= 1


@pytest.mark.parametrize("q", QS)
def test_one_dimensional_closed_forms(q):
    with mp.workdps(40):
        qm = mp.mpf(q)
        refs = {("relu", "mean"): mp.sqrt(qm / (2 * mp.pi)), ("relu", "square"): qm / 2,
                ("relu", "dsquare"): mp.mpf(1) / 2, ("erf", "square"): 2 / mp.pi * mp.asin(2 * qm / (1 + 2 * qm)),
                ("erf", "dsquare"): 4 / mp.pi / mp.sqrt(1 + 4 * qm), ("erf", "mean"): mp.mpf(0)}
        for (name, kind), ref in refs.items():
            got = expectation(name, kind, q)
            assert abs(got - float(ref)) <= RTOL * abs(float(ref)) + 1e-300, (name, kind, q, got, float(ref))


def test_the_naive_forms_would_fail():
    """The references are sharp enough to catch the arccos form that sigprop used to evaluate."""
    q, c = 3.0, 1 - 1e-15
    k = c * q
    naive = (math.sqrt(q * q - k * k) + (math.pi - math.acos(min(1.0, k / q))) * k) / (2 * math.pi)
    with mp.workdps(40):
        ref = float(relu_kernel(mp.mpf(q), mp.mpf(q), mp.mpf(k)))
    assert abs(naive - ref) > 10 * RTOL * ref
    assert abs(expectation("relu", "kernel", q, q, k) - ref) <= RTOL * ref


@pytest.mark.parametrize("c", [1 - 1e-15, 1 - 1e-12, -1 + 1e-12])
@pytest.mark.parametrize("q", [1e-6, 1.0, 1e6])
def test_quadrature_angle_near_plus_minus_one(c, q):
    """The polar rule takes its angle from the exact determinant: E[relu'(u) relu'(v)] by quadrature vs the
    40-digit closed form, at the same doubles."""
    k = c * q
    step = lambda u: (np.asarray(u) > 0).astype(float)
    got = expect2(step, step, q, q, k)
    with mp.workdps(40):
        ref = float(relu_dkernel(mp.mpf(q), mp.mpf(q), mp.mpf(k)))
    assert abs(got - ref) <= RTOL * ref + ATOL * 0.5, (got, ref)


@pytest.mark.parametrize("arch", ["2*dense(relu,sw2=1,sb2=0.1)", "3*dense(erf,sw2=2,sb2=0.3)",
                                  "3*dense(tanh,sw2=1.5,sb2=0.05)", "5*residual(dense(relu,sw2=2),beta=0.5)",
                                  "2*residual(dense(tanh,sb2=0.1),dense(linear)),dense(relu,sw2=2)"])
def test_identical_inputs_stay_identical(arch):
    """Two identical inputs have identical images: correlations and gradient correlations are exactly 1."""
    pred = predict(parse(arch), q0=1.3, c0=1.0)
    assert np.all(pred.values["c"] == 1.0), pred.values["c"]
    assert np.all(pred.values["grad_corr"] == 1.0), pred.values["grad_corr"]


def _closed_forms():
    from sigprop.theory import ACTIVATIONS
    from sigprop.theory.expectations import ARITY, KINDS, METHOD, GaussianExpectation, UndefinedExpectation
    from sigprop.theory.symbols import k as K, q as Q, q1 as Q1, q2 as Q2
    out = []
    for name in sorted(ACTIVATIONS):
        for kind in KINDS:
            syms = (Q,) if ARITY[kind] == 1 else (Q1, Q2, K)
            try:
                expr = getattr(ACTIVATIONS[name], METHOD[kind])(*syms)
            except UndefinedExpectation:
                continue
            if not expr.has(GaussianExpectation) and expr.free_symbols:
                out.append((name, kind, syms, expr))
    return out


EXTREME_1D = [(1e-8,), (1e-4,), (0.3,), (1e4,)]
EXTREME_2D = [(1e-8, 1e-8, 5e-9), (1e-4, 2e-4, 1e-4), (1.0, 1.0, 1e-9), (1.0, 3.7, -1.9), (1e4, 1e4, 9e3)]


@pytest.mark.parametrize("name,kind,syms,expr", _closed_forms(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_closed_form_is_evaluated_to_its_own_digits(name, kind, syms, expr):
    """Each closed form, evaluated by numerics from doubles, against the same expression at 60 digits: the
    float64 route's sums cancel at small q or small k (E[sin⁴u] = 3/8 − e^(−2q)/2 + e^(−8q)/8 ≈ 3q², hard tanh's
    E[φ''(u)φ''(v)] a difference of two densities, abs's E[φ'(u)φ'(v)] = 1 − 2 atan2(√D, k)/π), where numerics
    must notice and take more digits. Relative 1e-12 of the value itself, and the reported error must cover the
    actual one. Whether each formula is the right one is tested against integrals elsewhere."""
    import sympy as sp

    from sigprop.numerics.iterate import OutOfRangeError
    from sigprop.theory.determinant import covariance_determinant
    exact_expr = expr.replace(covariance_determinant, lambda a, b, c: a * b - c**2)
    for point in EXTREME_1D if len(syms) == 1 else EXTREME_2D:
        try:
            got, err = expectation(name, kind, *point, error=True)
        except OutOfRangeError:
            continue                       # beyond float64 (e^q at q = 1e4): said, not returned
        ref = float(sp.N(exact_expr.subs({s: sp.Float(v, 80) for s, v in zip(syms, point)}), 60))
        assert abs(got - ref) <= 1e-12 * abs(ref) + 1e-300, (name, kind, point, got, ref)
        assert abs(got - ref) <= max(err, 2.3e-16 * abs(ref)), (name, kind, point, got, ref, err)


def test_array_determinant_is_within_its_stated_bound_on_both_sides_of_the_exact_threshold():
    """Against exact rational arithmetic: entries just inside and just outside k² = (1 − 2⁻¹⁰) q₁q₂."""
    from fractions import Fraction

    from sigprop.numerics.determinant import CLOSE, covariance_determinant
    rng = np.random.default_rng(7)
    q1, q2 = rng.uniform(0.1, 10, 400), rng.uniform(0.1, 10, 400)
    frac = np.concatenate([CLOSE * (1 + rng.uniform(-1e-3, 1e-3, 200)), 1 - 10.0 ** -rng.uniform(4, 15, 200)])
    k = np.sqrt(frac * q1 * q2) * rng.choice([-1, 1], 400)
    got = covariance_determinant(q1, q2, k)
    for a, b, c, d in zip(q1, q2, k, got):
        exact = Fraction(a) * Fraction(b) - Fraction(c) ** 2          # < 0 where rounding put |k| above √(q₁q₂)
        assert abs(Fraction(d) - max(exact, 0)) <= (2**11 + 1) * 2.0**-53 * abs(exact)
