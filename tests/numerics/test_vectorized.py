"""Array expectations (numerics.vectorized) against the mpmath reference path (numerics.reference), which shares
no rule with them: tanh-free Gauss–Legendre panels in mpmath at 17–30 digits, nested for the kernels. Each fast
value must lie within 1e-10 of the integrand's scale of the reference, and its error estimate must cover the
actual error (up to the float64 rounding of the reference itself)."""
from __future__ import annotations

import numpy as np
import pytest

from sigprop.numerics import expectation, hermite
from sigprop.numerics.reference import reference_expectation
from sigprop.numerics.vectorized import expect
from sigprop.theory.expectations import KINDS

EPS = np.finfo(float).eps


def _covers(value, err, ref, scale):
    assert abs(value - ref) <= 1e-10 * scale
    assert abs(value - ref) <= err + 4 * EPS * abs(ref)


ONE_D = [("tanh", "square"), ("tanh", "dsquare"), ("tanh", "curvature"), ("gelu", "dquartic"),
         ("selu", "curvature"), ("hard_tanh", "square"), ("softsign", "dsquare"), ("elu", "xmean"),
         ("mish", "mean"), ("sigmoid", "square"),
         # cancellation in φ itself (√(x²+1) − 1, eˣ − 1) at small q; φ'' of tanh-like φ in its tails; and a φφ''
         # that bends at |u| ≈ 3, where the grading from 0 alone left panels 2 wide at large q
         ("bent_identity", "mean"), ("bent_identity", "curvature"), ("elu", "mean"), ("mish", "curvature"),
         ("silu", "curvature"), ("gelu_tanh", "curvature")]


@pytest.mark.parametrize("act,kind", ONE_D)
def test_one_d_matches_mpmath_from_tiny_to_huge_variance(act, kind):
    q = np.concatenate([[1e-8, 1e-4, 1e4, 1e8], np.random.default_rng(len(act + kind)).uniform(0.05, 20, 4)])
    value, err = expect(act, kind, q, error=True)
    for v, e, qq in zip(value, err, q):
        ref = reference_expectation(act, kind, qq, digits=30)
        scale = abs(ref) if kind not in ("mean", "xmean", "curvature") else max(abs(ref), 1e-300)
        _covers(v, e, ref, scale)


# (activation, kind, q1, q2, c): the corners included (c within 1e-12 of ±1, unequal variances)
TWO_D = [("tanh", "kernel", 0.7, 2.0, 0.3), ("tanh", "kernel", 1.5, 1.5, 1 - 1e-12),
         ("tanh", "dkernel", 1.0, 0.5, -(1 - 1e-12)), ("gelu", "ddkernel", 0.8, 1.3, 0.6),
         ("selu", "kernel", 1.0, 2.0, 0.7),
         ("elu", "ddkernel", 2.0, 2.0, -(1 - 1e-12))]      # φ''(u)φ''(v) lives in a wedge √(1 − c²) wide


@pytest.mark.parametrize("act,kind,q1,q2,c", TWO_D)
def test_kernels_match_mpmath(act, kind, q1, q2, c):
    k = c * np.sqrt(q1 * q2)
    value, err = expect(act, kind, q1, q2, k, error=True)
    ref = reference_expectation(act, kind, q1, q2, k, digits=17)
    square = {"kernel": "square", "dkernel": "dsquare"}.get(kind)
    if square:
        scale = np.sqrt(expectation(act, square, q1) * expectation(act, square, q2))
    else:       # E[φ''(u)²]: these φ'' have no Dirac deltas
        scale = np.sqrt(expectation(act, kind, q1, q1, q1) * expectation(act, kind, q2, q2, q2))
    _covers(float(value), float(err), ref, scale)


def test_hermite_bound_covers_the_error_and_levels_escalate():
    """Parseval's bound against the scalar kink-aware quadrature, at variances where the first truncation does
    and does not suffice."""
    for q, rho in ((0.3, 0.9), (3.0, 0.99), (8.0, -0.95)):
        sq = expectation("tanh", "square", q)
        truth, quad_err = expectation("tanh", "kernel", q, q, rho * q, error=True)
        for terms, nodes in hermite.LEVELS:
            a = hermite.coefficients(np.tanh, np.array([q]), terms, nodes)
            bound = abs(rho) ** (terms + 1) * hermite.tails(a, np.array([sq]))[0]
            nodes = 2 * abs(hermite.gauss_hermite_square(np.tanh, np.array([q]), nodes)[0] - sq)
            error = abs(hermite.mehler(a, a, np.array([rho]))[0] - truth)
            assert error <= bound + nodes + quad_err + 32 * EPS * sq      # plus the rounding of both sums
    # at q = 3 the first level's bound is far above 1e-10 and the second's below: escalation is needed and works
    a0 = hermite.coefficients(np.tanh, np.array([3.0]), *hermite.LEVELS[0])
    a1 = hermite.coefficients(np.tanh, np.array([3.0]), *hermite.LEVELS[1])
    sq = np.array([expectation("tanh", "square", 3.0)])
    assert hermite.tails(a0, sq)[0] > 1e-8 > 1e-9 > hermite.tails(a1, sq)[0]


def test_arrays_broadcast_and_agree_with_the_scalar_route():
    q = np.array([[0.5], [2.0]])
    c = np.array([-0.9, 0.0, 0.4, 1.0])
    value = expect("tanh", "kernel", q, q, c * q)
    assert value.shape == (2, 4)
    for i in range(2):
        for j in range(4):
            assert value[i, j] == pytest.approx(expectation("tanh", "kernel", q[i, 0], q[i, 0], c[j] * q[i, 0]),
                                                abs=1e-13)
    assert expect("relu", "square", 2.0).shape == ()
    # degenerate entries (q = 0) go to the scalar route
    assert expect("tanh", "kernel", np.array([0.0, 1.0]), 1.0, 0.0).tolist()[0] == 0.0


def test_closed_forms_keep_their_cancellation_guard_on_arrays():
    """Corners where float64 closed forms cancel: the array route re-evaluates them in mpmath."""
    for act, kind, arg in (("cos", "dquartic", 1e-8), ("sin", "curvature", 1e-8)):
        value = expect(act, kind, np.array([arg, 1.0]))
        ref = reference_expectation(act, kind, arg, digits=60)
        assert value[0] == pytest.approx(ref, rel=1e-12)


def test_precision_path_gives_reference_values():
    # E[tanh(z)²] = 0.39429449039784…, by scipy's adaptive quadrature (QUADPACK) to 1e-14
    assert float(expect("tanh", "square", 1.0, precision=30)) == pytest.approx(0.3942944903978412, abs=1e-14)
    assert float(expect("relu", "kernel", 1.0, 1.0, 0.0, precision=20)) == pytest.approx(1 / (2 * np.pi), rel=1e-15)


@pytest.mark.parametrize("args,kind,match", [
    ((-1.0,), "square", "q=-1.0"), ((np.nan,), "square", "q=nan"), ((np.inf,), "dsquare", "q=inf"),
    ((np.array([]),), "square", "empty"), ((1.0, 1.0, 1.5), "kernel", "k=1.5"),
    ((1.0, 1.0, np.nan), "kernel", "k=nan"), ((1.0,), "kernel", "takes 3"),
    ((np.ones(2), 1.0, np.ones(3)), "kernel", "broadcast")])
def test_bad_input_is_named(args, kind, match):
    with pytest.raises(ValueError, match=match):
        expect("tanh", kind, *args)


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="kind='nope'"):
        expect("tanh", "nope", 1.0)
    with pytest.raises(ValueError, match="rtol=2"):
        expect("tanh", "square", 1.0, rtol=2)
    with pytest.raises(ValueError, match="precision=5"):
        expect("tanh", "square", 1.0, precision=5)
    assert set(KINDS) >= {"kernel", "dkernel", "ddkernel"}


# steep φ(√q z): Gauss–Hermite nodes cannot resolve the feature at 0, the panel route of the series takes them.
# The reference is the scalar polar quadrature (graded angular panels at the rays u = 0, v = 0), a rule that shares
# nothing with the series; mpmath at these variances takes minutes.
STEEP = [("tanh", "kernel", 50.0, 80.0, 0.3), ("tanh", "dkernel", 1e4, 1e4, -0.8), ("gelu", "kernel", 1e4, 3e3, 0.9),
         ("tanh", "kernel", 1e6, 1e6, 0.5), ("softplus", "dkernel", 300.0, 40.0, 0.7)]


@pytest.mark.parametrize("act,kind,q1,q2,c", STEEP)
def test_steep_kernels_take_the_panel_series_and_match_quadrature(act, kind, q1, q2, c, monkeypatch):
    from sigprop.numerics import vectorized

    def no_scalar(act, kind, flat, where, value, err):
        assert not where.any(), "the entry fell back to the scalar rule"
    monkeypatch.setattr(vectorized, "_scalar", no_scalar)
    k = c * np.sqrt(q1 * q2)
    value, err = expect(act, kind, q1, q2, k, error=True)
    monkeypatch.undo()
    ref, ref_err = expectation(act, kind, q1, q2, k, error=True)
    square = {"kernel": "square", "dkernel": "dsquare"}[kind]
    scale = np.sqrt(expectation(act, square, q1) * expectation(act, square, q2))
    assert abs(value - ref) <= 1e-10 * scale
    assert abs(value - ref) <= err + ref_err + 4 * EPS * scale


def test_panel_coefficients_agree_with_gauss_hermite_where_both_apply():
    """Two rules for the same a_n(q): Gauss–Hermite nodes and composite Gauss–Legendre panels."""
    q = np.array([0.2, 1.0])
    gh = hermite.coefficients(np.tanh, q, 64, 256)
    panel, square = hermite.panel_coefficients(np.tanh, q, 64)
    assert np.max(np.abs(gh - panel)) < 1e-13
    assert square == pytest.approx([expectation("tanh", "square", v) for v in q], rel=1e-13)
