"""The cancellation-free forms of the activations (numerics.stable) against theory's own formulas evaluated in
mpmath: the same function (to 40 digits at points where float64 is not at stake), and within some ulps where
theory's form, evaluated in float64, loses its digits."""
from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest
import sympy as sp

from sigprop.numerics.expectations import activation_functions, second_derivative_functions
from sigprop.numerics.stable import split_hyperbolic, stable_form
from sigprop.theory import get_activation
from sigprop.theory.activations import ACTIVATIONS
from sigprop.theory.symbols import x

HALF = {sp.Heaviside: lambda a, *rest: sp.Heaviside(a, sp.S.Half)}


def _forms(act):
    out = {"phi": act.phi, "dphi": act.dphi}
    try:
        out["ddphi"] = act.ddphi_smooth
    except ValueError:
        pass
    return {name: e.replace(sp.Heaviside, HALF[sp.Heaviside]) for name, e in out.items()}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_rewritten_forms_are_the_same_function(name):
    act = get_activation(name)
    with mp.workdps(50):
        for form, expr in _forms(act).items():
            new = stable_form(expr)
            if new == expr:
                continue
            a, b = sp.lambdify(x, expr, "mpmath"), sp.lambdify(x, new, "mpmath")
            for point in ("-7.3", "-1.1", "-0.013", "0.37", "2.9", "11.5"):
                t = mp.mpf(point)
                assert abs(a(t) - b(t)) <= mp.mpf(10) ** -40 * max(1, abs(a(t))), (name, form, point)


# (activation, form, x): theory's form in float64 cancels there
CANCELLING = [("bent_identity", "phi", 1e-5), ("bent_identity", "phi", -3e-7), ("elu", "phi", -1e-9),
              ("selu", "phi", -2e-6), ("softplus", "phi", -50.0), ("tanh", "dphi", 20.0), ("tanh", "ddphi", -25.0),
              ("silu", "ddphi", 30.0), ("mish", "ddphi", 30.0), ("mish", "phi", -40.0), ("sigmoid", "dphi", -30.0),
              ("bent_identity", "ddphi", 1e4), ("softsign", "dphi", -1e6), ("softsign", "ddphi", 1e6),
              ("silu", "phi", -40.0)]


@pytest.mark.parametrize("name,form,point", CANCELLING)
def test_no_cancellation_where_theorys_form_loses_its_digits(name, form, point):
    act = get_activation(name)
    expr = _forms(act)[form]
    with mp.workdps(40):
        ref = sp.lambdify(x, expr, "mpmath")(mp.mpf(point))
    naive = float(sp.lambdify(x, expr, ["scipy", "numpy"])(np.array([point]))[0])
    fns = {"phi": activation_functions(act)[0], "dphi": activation_functions(act)[1]}
    if form == "ddphi":
        fns["ddphi"] = second_derivative_functions(act)[0]
    got = float(fns[form](np.array([point]))[0])
    assert abs(naive - float(ref)) > 1e-12 * abs(ref)             # the case is real
    assert abs(got - float(ref)) <= 32 * np.finfo(float).eps * abs(ref)     # a product of some 10 rounded factors


def _exact(f, t, digits=30):
    """f(t) in mpmath to ``digits`` significant digits, the working precision doubled until two agree."""
    dps, last = 60, None
    while dps <= 2000:
        with mp.workdps(dps):
            value = f(mp.mpf(t))
        agree = last is not None and abs(value - last) <= mp.mpf(10) ** -digits * abs(value)
        if agree and (value != 0 or dps >= 960):      # a zero may be digits lost: trust it at 960 digits only
            return value
        dps, last = 2 * dps, value
    raise AssertionError(f"no {digits} stable digits of the reference at {t}")


#: |x| from 1e-8 to 1e8, half a decade apart, both signs
POINTS = np.concatenate([-np.logspace(8, -8, 33), np.logspace(-8, 8, 33)])


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_every_form_is_accurate_to_its_condition_number_from_tiny_to_huge_x(name):
    """Float64 φ, φ' and φ'' of every registered activation against the same expressions in mpmath: within 32
    rounding units times the condition number 1 + |x f'(x)/f(x)| (what any evaluation at a rounded x must allow),
    at every |x| in [1e-8, 1e8] away from the kinks and where the value is a normal float. A form that cancels in
    float64, such as bent identity's φ'' written 1/(2√(x² + 1)) − x²/(2(x² + 1)^(3/2)) (off by x² rounding units),
    fails here."""
    act = get_activation(name)
    fns = dict(zip(("phi", "dphi"), activation_functions(act)))
    try:
        fns["ddphi"] = second_derivative_functions(act)[0]
    except ValueError:              # φ jumps: numerics has no φ''
        pass
    kinks = [float(k) for k in act.kinks]
    points = [t for t in POINTS if all(abs(t - k) > 1e-6 * max(1.0, abs(k)) for k in kinks)]
    for form, expr in _forms(act).items():
        if form not in fns:
            continue
        # in mpmath at ≥ 60 digits: its identity with theory's form is tested above
        f = sp.lambdify(x, stable_form(expr), "mpmath")
        with np.errstate(all="ignore"):
            got = np.broadcast_to(fns[form](np.array(points)), (len(points),))
        for t, value in zip(points, got):
            ref = _exact(f, t)
            if not 1e-300 < abs(ref) < 1e300:           # zero, or beyond float64: exact zeros must stay zero
                assert ref != 0 or value == 0, (name, form, t, value)
                continue
            with mp.workdps(60):
                cond = 1 + abs(t * mp.diff(f, mp.mpf(t)) / ref)
            assert abs(value - ref) <= 32 * np.finfo(float).eps * cond * abs(ref), (name, form, t, value, ref)


@pytest.mark.parametrize("kind", [sp.sinh, sp.cosh])
def test_hyperbolic_products_are_the_same_function(kind):
    a, b = sp.Symbol("a", real=True), sp.Symbol("b", real=True)
    expr = 3 * sp.exp(a) * sp.exp(a / 2) * kind(b)
    new = split_hyperbolic(expr)
    assert not new.has(kind)
    f, g = sp.lambdify((a, b), expr, "mpmath"), sp.lambdify((a, b), new, "mpmath")
    with mp.workdps(50):
        for ta, tb in [("-900", "450"), ("-2.5", "-1.1"), ("-1", "1e-12"), ("0.3", "0"), ("-40", "-39.9")]:
            ref = f(mp.mpf(ta), mp.mpf(tb))
            assert abs(g(mp.mpf(ta), mp.mpf(tb)) - ref) <= mp.mpf(10) ** -40 * abs(ref), (ta, tb)


@pytest.mark.parametrize("name", ["sin", "cos"])
def test_trigonometric_networks_at_siren_scale(name):
    """SIREN's first layer (ω₀ = 30, σ_w² = 900; Sitzmann et al. 2020) puts q = 900 into sin's kernel
    e^(−(q₁+q₂)/2) sinh k, whose two factors are 0 and inf in float64. The compiled maps, layer by layer and on a
    grid, against theory's own kernels evaluated at 40 digits from the same doubles."""
    from sigprop.numerics import predict
    from sigprop.numerics.grid import predict_grid
    from sigprop.theory import parse
    from sigprop.theory.symbols import k as K, q as Q, q1 as Q1, q2 as Q2

    act = get_activation(name)

    def exact(expr, values):
        return sp.N(expr.subs({s: sp.Float(float(v), 60) for s, v in values.items()}), 40)

    pred = predict(parse(f"5*dense({name},sw2=900)"), q0=1.0, c0=0.5)
    grid = predict_grid(parse(f"5*dense({name},sw2=w)"), q0=1.0, c0=0.5, w=np.array([400.0, 900.0]))
    q, k = 900.0, 450.0
    for layer in range(5):
        got_q, got_c = pred.values["q"][layer], pred.values["c"][layer]
        assert got_q == pytest.approx(q, rel=1e-13), layer
        assert abs(got_c - k / q) <= 1e-12 * abs(k / q) + 1e-300, (layer, got_c, k / q)
        assert grid.values["q"][1, layer] == pytest.approx(got_q, rel=1e-13)
        assert abs(grid.values["c"][1, layer] - got_c) <= 1e-12 * got_c + 1e-300
        if 1 <= layer < 4:       # where q is constant, log GSC (of the root mean square) falls by log(χ)/2 a layer
            chi = 900 * float(exact(act.dsecond_moment(Q), {Q: got_q}))
            step = pred.values["log_gsc"][layer + 1] - pred.values["log_gsc"][layer + 2]
            assert step == pytest.approx(np.log(chi) / 2, rel=1e-12)
        q, k = (900 * float(exact(act.kernel(Q1, Q2, K), {Q1: got_q, Q2: got_q, K: g})) for g in (got_q, got_c * got_q))
