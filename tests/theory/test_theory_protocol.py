"""The extension points of theory: activations from expressions, the block protocol and its registry, the
parameter declarations, substitution by name, and the limits on size."""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import pytest
import sympy as sp

from sigprop.numerics import predict
from sigprop.theory import (ACTIVATIONS, BLOCKS, MAX_DEPTH, Act, Activation, Block, Dense, Residual, activation,
                            parse, register_activation, register_block, relu, tanh)
from sigprop.theory.blocks.params import param
from sigprop.theory.piecewise import homogeneity_degree, kinks
from sigprop.theory.state import Backward, BlockMaps
from sigprop.theory.symbols import x


# -- kinks and degree, read off the expression ------------------------------------------------------------
@pytest.mark.parametrize("expr,expected", [
    (sp.Max(0, x), (0,)), (sp.Abs(x), (0,)), (sp.Heaviside(x), (0,)), (sp.sign(x), (0,)),
    (sp.Max(-1, sp.Min(1, x)), (-1, 1)), (sp.Min(6, sp.Max(0, x)), (0, 6)), (sp.tanh(x), ()),
    (sp.Piecewise((x, x > sp.Rational(1, 2)), (sp.exp(x - sp.Rational(1, 2)) - 1 + sp.Rational(1, 2), True)),
     (sp.Rational(1, 2),)),
    (x / (1 + sp.Abs(x)), (0,)), (sp.log(1 + sp.exp(x)), ()),
])
def test_kinks_found_from_the_expression(expr, expected):
    assert kinks(expr) == tuple(sp.sympify(e) for e in expected)


@pytest.mark.parametrize("expr,degree", [
    (sp.Max(0, x), 1), (x, 1), (sp.Abs(x), 1), (sp.Heaviside(x), 0), (sp.sign(x), 0), (sp.Max(0, x) ** 2, 2),
    (sp.Piecewise((2 * x, x > 0), (x / 10, True)), 1), (sp.tanh(x), None), (sp.Max(-1, sp.Min(1, x)), None),
    (x + x**2, None), (sp.Max(0, x - 1), None),
])
def test_homogeneity_degree(expr, degree):
    assert homogeneity_degree(expr) == degree


# -- activations ------------------------------------------------------------------------------------------
def test_activation_from_a_string_or_a_plain_symbol():
    a = Activation("cube_test", "x**3")
    b = Activation("cube_test", sp.Symbol("x") ** 3)         # a user's Symbol('x') has no assumptions
    assert a == b and a.phi == x**3 and a.degree == 3 and a.kinks == ()
    assert a.source == "exact Gaussian integrals (SymPy)"


@pytest.mark.parametrize("kwargs,match", [
    (dict(name="Bad Name", phi="x"), "name="), (dict(name="two_vars", phi="x*y"), "free symbols"),
    (dict(name="constant", phi="3"), "free symbols"), (dict(name="broken", phi="x+*"), "phi="),
    (dict(name="dense", phi="x"), None),
])
def test_activation_input_errors(kwargs, match):
    if match is None:              # a block word is a fine Activation, but cannot be registered
        with pytest.raises(ValueError, match="block kind"):
            register_activation(Activation(**kwargs))
        return
    with pytest.raises(ValueError, match=match):
        Activation(**kwargs)


def test_registering_a_different_activation_under_a_taken_name_is_refused():
    activation("taken_test", "x*erf(x)")
    assert activation("taken_test", "x*erf(x)") is ACTIVATIONS["taken_test"]      # the same again is fine
    with pytest.raises(ValueError, match="taken"):
        activation("taken_test", "x**2")
    with pytest.raises(ValueError, match="taken"):
        register_activation(Activation("relu", sp.Abs(x)))


def test_unregistered_activation_works_in_numerics():
    """Expectations are bound to the Activation object, not looked up by name."""
    mine = Activation("not_registered", sp.log(1 + sp.exp(x)))
    assert "not_registered" not in ACTIVATIONS
    pred = predict(3 * Dense(mine, sw2=1.2))
    assert pred.depth == 3 and all(abs(v) < 10 for v in pred.values["log_gsc"])
    # and a different φ under the same name is a different activation, integrated as itself
    other = Activation("not_registered", sp.tanh(x))
    assert predict(3 * Dense(other)).values["p"][1] != pred.values["p"][1]


# -- the block protocol -----------------------------------------------------------------------------------
def test_declared_parameters():
    assert [(p.name, p.kind, p.positional) for p in Dense.params()] == [
        ("activation", "activation", True), ("sw2", "variance", False), ("sb2", "variance", False),
        ("width", "positive", False), ("init", "choice", False),
        ("weights", "choice", False)]
    assert [(p.name, p.kind) for p in Residual.params()] == [("branch", "blocks"), ("skip", "blocks"),
                                                             ("alpha", "real"), ("beta", "real")]
    assert BLOCKS == {"dense": Dense, "residual": Residual} | {k: v for k, v in BLOCKS.items()
                                                              if k not in ("dense", "residual")}


def test_register_block_checks_the_declaration():
    @dataclasses.dataclass(frozen=True)
    class NoSummary(Block):
        kind: ClassVar[str] = "nosummary_test"
        g: object = param(1, kind="real", doc="gain")

    with pytest.raises(ValueError, match="summary"):
        register_block(NoSummary)

    class NotADataclass(Block):
        kind: ClassVar[str] = "nodataclass_test"

    with pytest.raises(ValueError, match="frozen dataclass"):
        register_block(NotADataclass)

    @dataclasses.dataclass(frozen=True)
    class Clash(Block):
        kind: ClassVar[str] = "dense"
        summary: ClassVar[str] = "x"
        example: ClassVar[str] = "dense(relu)"

        def maps(self, s):
            return BlockMaps(s, None, Backward.identity())

    with pytest.raises(ValueError, match="taken"):
        register_block(Clash)
    with pytest.raises(ValueError, match="parameter kind"):
        param(1, kind="matrix", doc="")


def test_generic_checks_come_from_the_declarations():
    with pytest.raises(ValueError, match="sw2=-1"):
        Dense(relu, sw2=-1)
    with pytest.raises(ValueError, match="beta="):
        Residual([Dense(relu)], beta="0.5")
    with pytest.raises(ValueError, match="needs at least one block"):
        Residual([])
    with pytest.raises(ValueError, match="dense layer at the top level of the branch or the skip"):
        Residual([Act(relu)], skip=[Act(tanh)])


def test_forward_of_a_container_composes_its_children():
    """y = a x + b relu(W₂ tanh(W₁ x)), σ_w² = 2 for the relu layer, derived by hand: the tanh layer's output has
    mean square T = E[tanh(√p z)²] and mean 0, the relu pre-activation q = 2T, so E[relu²] = T and
    E[relu] = √(q/(2π)) = √(T/π); the skip adds a² p and the cross term 2ab·m·√(T/π)."""
    from sigprop.theory.symbols import m, p
    a, b = sp.symbols("a b", real=True)
    block = Residual([Dense(tanh), Dense(relu, sw2=2)], alpha=a, beta=b)
    T = tanh.second_moment(p)
    expected = a**2 * p + b**2 * T + 2 * a * b * m * sp.sqrt(T / sp.pi)
    assert sp.simplify(block.length_map().rhs - expected) == 0
    assert sp.simplify(block.mean_map().rhs - (a * m + b * sp.sqrt(T / sp.pi))) == 0
    # backward: a² + b² σ_w²(relu) E[relu'²] σ_w²(tanh) E[tanh'²], with E[relu'²] = 1/2
    expected_chi = a**2 + b**2 * tanh.dsecond_moment(p)
    assert sp.simplify(block.gradient_map().rhs - expected_chi * sp.Symbol("delta", positive=True)) == 0


def test_degree_declarations():
    assert Dense(relu, sw2=2).degree == 1 and Dense(relu, sw2=2, sb2=0.1).degree is None
    assert Dense(tanh).degree is None and Dense(tanh).pre_degree == 1
    assert Residual([Dense(relu, sw2=2)]).degree == 1 and Residual([Dense(tanh)]).degree is None
    assert Residual([Dense(tanh)], beta=0).degree == 1


# -- substitution by name ---------------------------------------------------------------------------------
def test_subs_with_the_symbols_a_user_types():
    net = parse("dense(relu,sw2=s),residual(dense(tanh,sb2=t),beta=s)")
    done = net.subs({sp.Symbol("s"): 2, "t": sp.Rational(1, 10)})
    assert done.describe() == "dense(relu,sw2=2,sb2=0),residual(dense(tanh,sw2=1,sb2=0.1),alpha=1,beta=2)"
    assert not done.free_symbols
    with pytest.raises(ValueError, match="'u' is not a parameter"):
        net.subs({"u": 1})


# -- size limits and strings --------------------------------------------------------------------------------
def test_depth_limit_in_the_python_api():
    with pytest.raises(ValueError, match=str(MAX_DEPTH)):
        (MAX_DEPTH + 1) * Dense(relu)
    with pytest.raises(ValueError, match=str(MAX_DEPTH)):
        10**31 * Dense(relu)
    with pytest.raises(ValueError, match=str(MAX_DEPTH)):
        (MAX_DEPTH // 2 + 1) * (Dense(relu) + Dense(tanh))
    assert (1000 * Dense(relu)).depth == 1000


def test_predict_points_a_string_to_parse():
    with pytest.raises(ValueError, match=r"parse\('3\*dense\(relu\)'\)"):
        predict("3*dense(relu)")
