"""The catalog: identities every closed form must satisfy, families and their grammar, and clear errors.

The identities are properties of any valid kernel K(q₁, q₂, k) = E[φ(u)φ(v)], checked at random points at 30
digits, so a wrong registered formula fails them without this test knowing the right one:
symmetry K(q₁, q₂, k) = K(q₂, q₁, k); the diagonal K(q, q, q) = E[φ(√q z)²]; factorization at k = 0,
K(q₁, q₂, 0) = E[φ](q₁)·E[φ](q₂); and Price's theorem for the derivative kernel, checked against a finite
difference of the kernel in k (not against the derivative the implementation takes).
"""
from __future__ import annotations

import random
import re

import pytest
import sympy as sp

from sigprop.theory import ACTIVATIONS, FAMILIES, Dense, get_activation, parse
from sigprop.theory.expectations import KINDS
from sigprop.theory.parse import ArchitectureError

CLOSED = sorted(n for n, a in ACTIVATIONS.items() if a.kernel_closed_form is not None)
EXTRA = ["leaky_relu(a=0.3)", "affine(erf,a=2,b=0.5,d=0.1)", "affine(relu,b=-1.5)"]


def _num(expr, **values):
    return sp.N(sp.sympify(expr).subs({sp.Symbol(k, positive=True): v for k, v in values.items()}), 30)


def _points(seed=7):
    rng = random.Random(seed)
    for _ in range(4):
        q1, q2 = rng.uniform(0.2, 3.0), rng.uniform(0.2, 3.0)
        yield q1, q2, rng.uniform(-0.95, 0.95) * (q1 * q2) ** 0.5


@pytest.mark.parametrize("name", CLOSED + EXTRA)
def test_kernel_identities(name):
    act = get_activation(name)
    for q1, q2, k in _points():
        a, b, kk = sp.Float(q1, 30), sp.Float(q2, 30), sp.Float(k, 30)
        K = lambda u, v, w: sp.N(act.kernel(u, v, w), 30)  # noqa: E731
        # 1e-14: parameters given as floats (a = 0.3) carry 53-bit precision into the expressions
        assert abs(K(a, b, kk) - K(b, a, kk)) < 1e-14, name
        assert abs(K(a, a, a) - sp.N(act.second_moment(a), 30)) < 1e-14, name
        assert abs(K(a, b, 0) - sp.N(act.mean(a) * act.mean(b), 30)) < 1e-14, name
        if act.is_continuous:
            h = sp.Float("1e-10", 30)
            fd = (K(a, b, kk + h) - K(a, b, kk - h)) / (2 * h)
            assert abs(sp.N(act.dkernel(a, b, kk), 30) - fd) < 1e-12, name


def test_discontinuous_activations_carry_no_gradient():
    for name in ("step", "sign"):
        act = get_activation(name)
        assert not act.is_continuous and act.dphi == 0
        assert act.dkernel(sp.Symbol("a"), sp.Symbol("b"), sp.Symbol("c")) == 0
    assert get_activation("relu").is_continuous and get_activation("elu").is_continuous


@pytest.mark.parametrize("text", ["leaky_relu(a=0.2)", "elu(a=0.5)", "power(n=3)", "swish(b=2)", "celu(a=2)",
                                  "affine(tanh,a=2,b=0.5)", "affine(leaky_relu(a=0.1),c=1,d=-0.5)"])
def test_family_members_round_trip_through_the_grammar(text):
    net = parse(f"2*dense({text},sw2=1.5)")
    assert net.blocks[0].activation.describe() == text
    assert parse(net.describe()) == net


def test_default_member_is_the_plain_name():
    assert get_activation("leaky_relu") == FAMILIES["leaky_relu"]()
    assert get_activation("leaky_relu(a=0.01)").describe() == "leaky_relu"


def test_symbolic_parameters_stay_symbolic_until_substituted():
    net = parse("3*dense(leaky_relu(a=s),sw2=2)")
    assert {str(s) for s in net.free_symbols} == {"s"}
    dense = net.subs({"s": 0.25}).blocks[0]
    assert dense.activation == get_activation("leaky_relu(a=0.25)")
    formula = Dense(get_activation("leaky_relu(a=s)"), sw2=2).length_map().rhs
    assert sp.Symbol("s", real=True) in formula.free_symbols


def test_affine_with_zero_shift_reduces_to_its_base():
    act, tanh = get_activation("affine(tanh,a=2,b=0.5)"), get_activation("tanh")
    q1, q2, k = sp.symbols("q1 q2 k", positive=True)
    b2 = sp.Float(0.5) ** 2
    assert act.kernel(q1, q2, k) == 4 * tanh.kernel(b2 * q1, b2 * q2, b2 * k)
    assert "numerical" in act.expectation_sources()["kernel"]
    assert act.expectation_sources()["mean"].startswith("derived")


@pytest.mark.parametrize("text,message", [
    ("dense(power(n=1.5))", "positive integer"),
    ("dense(celu(a=0))", "must be > 0"),
    ("dense(leaky_relu(b=1))", "takes the keywords a"),
    ("dense(tanh(a=1))", "tanh takes no parameters"),
    ("dense(affine(nope))", "not known"),
    ("dense(affine(a=2))", "expected an activation name"),
    ("dense(leaky_relu(a=x))", "'x' is the activation's variable: give the parameter another name, e.g. x0"),
])
def test_bad_family_arguments_are_named(text, message):
    with pytest.raises(ArchitectureError, match=message):
        parse(text)


def test_every_expectation_says_where_it_comes_from():
    for act in ACTIVATIONS.values():
        sources = act.expectation_sources()
        assert set(sources) == set(KINDS)
        # undefined: the φ'' kinds of a φ that jumps (step, sign)
        assert all(s.split(":")[0] in ("registered", "derived", "numerical", "undefined")
                   for s in sources.values()), act
    assert get_activation("relu").expectation_sources()["kernel"].startswith("registered: arc-cosine")
    assert get_activation("tanh").expectation_sources()["kernel"].startswith("numerical")
    assert get_activation("power").expectation_sources()["kernel"].startswith("derived")
    assert get_activation("linear").expectation_sources()["kernel"].startswith("registered")


def test_act_after_a_linear_dense_is_the_dense_layer():
    """dense(linear) then act(φ) computes φ(Wx + b): the same maps as dense(φ), output and backward."""
    from sigprop.numerics import predict
    split = predict(parse("4*(dense(linear,sw2=1.7,sb2=0.2),act(tanh))"))
    fused = predict(parse("4*dense(tanh,sw2=1.7,sb2=0.2)"))
    for name in ("p", "c", "log_gsc"):
        a, b = split.values[name][::2], fused.values[name]
        assert max(abs(u - v) for u, v in zip(a, b)) < 1e-12, name


@pytest.mark.parametrize("text,where", [
    ("dense(relu),act(tanh)", "block 2 (act(tanh))"),
    ("dense(relu),residual(act(relu),dense(linear))", "block 2: branch block 1 (act(relu))"),
])
def test_act_needs_a_gaussian_input(text, where):
    with pytest.raises(ValueError, match=re.escape(where) + ".*not Gaussian: put a dense\\(linear"):
        parse(text)


@pytest.mark.parametrize("text,shown", [("I*x", "phi(-7.5) = -7.5j"), ("log(x)", "phi(-7.5) = (2.01"),
                                        ("1/x", "phi(0) = not finite"), ("sqrt(x)", "phi(-7.5) = 2.73")])
def test_an_activation_must_be_real_and_finite_on_the_real_line(text, shown):
    """Its inputs are Gaussian: a complex or singular φ gave second moments of −q or complex numbers silently."""
    from sigprop.theory import activation
    with pytest.raises(ValueError, match=re.escape(shown) + ".*real and finite on the whole real line"):
        activation("mine", text)
    from sigprop.theory.symbols import x
    assert activation("mine", "sqrt(Abs(x))").phi == sp.sqrt(sp.Abs(x))     # real everywhere: accepted


def test_activation_subs_takes_names_and_symbols_as_network_subs_does():
    """elu(a=s) holds a real s: a user's name or plain Symbol('s') was silently ignored; a name that is no
    parameter's is refused; a family of a symbolic family (affine of elu(a=s)) keeps both symbols."""
    act = get_activation("elu(a=s)")
    assert act.subs({"s": 0.5}) == act.subs({sp.Symbol("s"): 0.5}) == get_activation("elu(a=0.5)")
    with pytest.raises(ValueError, match="'t' is not a parameter of elu\\(a=s\\); its symbols are: s"):
        act.subs({"t": 1})
    nested = get_activation("affine(elu(a=s),a=t)")
    assert {s.name for s in nested.free_symbols} == {"s", "t"}
    assert nested.subs({"s": 1, "t": 2}) == get_activation("affine(elu,a=2)")
    assert parse("dense(affine(elu(a=s),a=t),sw2=w)").subs({"s": 0.5, "t": 3, "w": 2}).describe() == \
        "dense(affine(elu(a=0.5),a=3),sw2=2,sb2=0)"


def test_unevaluated_expectations_show_the_family_members_parameters():
    """elu(a=0.5) and elu(a=1) printed the same E[elu(u)²]: the member's parameters are part of what is integrated."""
    half, one = (Dense(get_activation(text)).length_map() for text in ("elu(a=0.5)", "elu"))
    assert "E[elu(a=0.5)(u)² | u~N(0, p)]" in str(half.rhs) and "E[elu(u)² | u~N(0, p)]" in str(one.rhs)
    assert r"\operatorname{elu}_{a=0.5}(u)^2" in half.latex() and r"\operatorname{elu}(u)^2" in one.latex()
