"""The cancellation-free forms of the activations (numerics.stable) against theory's own formulas evaluated in
mpmath: the same function (to 40 digits at points where float64 is not at stake), and within some ulps where
theory's form, evaluated in float64, loses its digits."""
from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest
import sympy as sp

from sigprop.numerics.expectations import activation_functions, second_derivative_functions
from sigprop.numerics.stable import stable_form
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
              ("silu", "ddphi", 30.0), ("mish", "ddphi", 30.0), ("mish", "phi", -40.0), ("sigmoid", "dphi", -30.0)]


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
