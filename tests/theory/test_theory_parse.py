"""The architecture grammar (theory/parse.py): round trips, the documented examples, and errors."""
from __future__ import annotations


import pytest
import sympy as sp

from sigprop.theory import ArchitectureError, Dense, Network, Residual, erf, linear, relu, tanh
from sigprop.theory import symbols as S
from sigprop.theory.parse import parse

beta = sp.Symbol("beta")

NETS = [
    50 * Dense(tanh, sw2=2.5, sb2=0.05),
    3 * Dense(relu, sw2=2) + Dense(linear),
    Network.of(Residual([Dense(tanh), Dense(linear)], beta=beta)),
    Network.of(Dense(tanh, sw2=S.sigma_w2, sb2=S.sigma_b2)),
    Network.of(Dense(erf, sw2=1e-20, sb2=1.25e7)),
    10 * Residual([Dense(relu, sw2=2),
                   Residual([Dense(erf, sw2=1.5, sb2=0.1), 2 * Dense(linear)], alpha=0.5, beta=sp.Symbol("b"))],
                  alpha=-0.5, beta=0.25) + Dense(linear),
    Dense(relu, sw2=2) + Residual([Dense(tanh)], alpha=sp.Symbol("a"), beta=0) + 2 * (Dense(tanh) + Dense(linear)),
]


@pytest.mark.parametrize("net", NETS, ids=lambda n: n.describe()[:40])
def test_round_trip(net):
    text = net.describe()
    back = parse(text)
    assert back.describe() == text
    assert back.depth == net.depth
    assert [type(b) for b in back.blocks] == [type(b) for b in net.blocks]


def test_example_dense_stack():
    net = parse("50*dense(tanh,sw2=2.5,sb2=0.05)")
    assert net.depth == 50
    assert all(isinstance(b, Dense) and b.activation == tanh for b in net.blocks)
    assert float(net.blocks[0].sw2) == 2.5 and float(net.blocks[-1].sb2) == 0.05


def test_example_residual_stack():
    net = parse("20*residual(dense(relu,sw2=2),beta=0.5)")
    assert net.depth == 20
    block = net.blocks[7]
    assert isinstance(block, Residual)
    assert float(block.beta) == 0.5 and block.alpha == 1              # alpha defaults to 1
    (inner,) = block.branch
    assert inner.activation == relu and inner.sw2 == 2 and inner.sb2 == 0


def test_example_group_repetition():
    net = parse("2*(dense(tanh), dense(linear))")
    assert net.depth == 4
    assert [b.activation.name for b in net.blocks] == ["tanh", "linear", "tanh", "linear"]


def test_whitespace_case_and_symbols():
    net = parse("  2 * DENSE( ReLU , sw2 = 2 ) , residual( dense(tanh, sb2=s), alpha=-1, beta=b )")
    assert net.depth == 3
    assert net.blocks[0].activation == relu and net.blocks[0].sw2 == 2
    res = net.blocks[2]
    assert res.alpha == -1 and isinstance(res.beta, sp.Symbol) and res.beta.name == "b"
    assert res.branch[0].sb2.name == "s"


def test_nested_residual_parse_structure():
    net = parse("residual(dense(relu),residual(dense(tanh),beta=b),alpha=1,beta=0.5)")
    (outer,) = net.blocks
    assert len(outer.branch) == 2 and isinstance(outer.branch[1], Residual)
    assert outer.branch[1].beta.name == "b" and float(outer.beta) == 0.5


# Error messages carry the position of the offending token (0-based character index).
@pytest.mark.parametrize("text,pos,fragment", [
    ("conv(relu)", 0, "conv"),                                # unknown block
    ("dense(relu,sw3=1)", 11, "sw3"),                         # unknown keyword
    ("residual(dense(relu),gamma=1)", 21, "gamma"),           # unknown keyword of residual
    ("dense(relu", 10, "')'"),                                # missing paren
    ("(dense(relu)", 12, "')'"),
    ("dense(relu)#", 11, "'#'"),                              # bad character
    ("dense(relu)&dense(tanh)", 11, "'&'"),
    ("0*dense(relu)", 0, ">= 1"),                             # 0 repetitions
    ("2.5*dense(relu)", 0, ">= 1"),
    ("dense(relu),,dense(tanh)", 12, "block"),
    ("dense(relu,sw2=)", 15, "number"),
])
def test_errors_with_position(text, pos, fragment):
    with pytest.raises(ArchitectureError) as e:
        parse(text)
    msg = str(e.value)
    assert f"position {pos}" in msg, msg
    assert fragment in msg, msg


@pytest.mark.parametrize("text", ["", "   ", None])
def test_empty(text):
    with pytest.raises(ArchitectureError, match="empty"):
        parse(text)


def test_architecture_error_is_value_error():
    assert issubclass(ArchitectureError, ValueError)


def test_semantic_errors_are_value_errors():
    # The grammar accepts these; the block constructors reject them (ValueError naming the problem).
    with pytest.raises(ValueError, match="foo"):
        parse("dense(foo)")
    with pytest.raises(ValueError, match="sw2"):
        parse("dense(relu,sw2=-1)")


def test_bad_character_position_after_whitespace():
    text = "dense(relu) #"
    with pytest.raises(ArchitectureError, match=f"position {text.index('#')}"):
        parse(text)


def test_round_trip_rational():
    net = Network.of(Dense(relu, sw2=sp.Rational(1, 2)))
    assert parse(net.describe()).describe() == net.describe()


# -- expression values and the depth symbol L ------------------------------------------------------------------
def test_depth_scaled_beta_resolves_L_to_the_blocks_using_it():
    import math
    net = parse("dense(linear),20*residual(dense(relu,sw2=2),dense(linear),beta=1/sqrt(L)),dense(tanh)")
    betas = {b.beta for b in net.blocks if b.kind == "residual"}
    assert len(betas) == 1 and abs(float(betas.pop()) - 1 / math.sqrt(20)) < 1e-15
    assert not net.free_symbols


def test_expression_values_stay_symbolic_and_read_back():
    net = parse("dense(tanh,sw2=2*s^2+1,sb2=s/10)")
    assert {str(s) for s in net.free_symbols} == {"s"}
    assert parse(net.describe()) == net
    assert float(parse("dense(leaky_relu(a=1/4))").blocks[0].activation.params[0][1]) == 0.25


@pytest.mark.parametrize("text,match", [("dense(tanh,sw2=1/0)", "is not a finite number"),
                                        ("dense(tanh,sw2=import)", "is not a number, a name or an arithmetic"),
                                        ("dense(tanh,sw2=oo)", "expected a finite number"),
                                        ("dense(tanh,sw2=)", "expected a finite number or a symbol name"),
                                        ("dense(tanh,sw2=1e400)", r"'1e400' is beyond float64"),
                                        ("dense(tanh,sw2=2e300*1e10)", "is beyond float64"),
                                        ("residual(dense(relu,sw2=2),beta=m)", "'m' is a quantity of sigprop's "
                                                                               "formulas: give the parameter another "
                                                                               "name, e.g. m0"),
                                        ("dense(relu,sw2=2*p)", "'p' is a quantity of sigprop's formulas"),
                                        ("dense(relu,sb2=c)", "'c' is a quantity"),
                                        ("dense(relu,sw2=I)", "'I' is SymPy's constant")])
def test_bad_expression_values(text, match):
    with pytest.raises(ArchitectureError, match=match):
        parse(text)


def test_a_parameter_is_never_a_quantity_of_the_maps():
    """A parameter m was the very symbol of the input's mean in the maps: the residual branch's β² merged with m
    in the length map. Reserved names are refused (above); others, and π, keep their own meaning."""
    import sympy as sp

    from sigprop.theory import symbols as S
    block = parse("residual(dense(relu,sw2=2),beta=m0)").blocks[0]
    m0 = sp.Symbol("m0", real=True)
    assert block.beta == m0 != S.m
    # a zero-mean input: the He-ReLU branch keeps the mean square and is uncorrelated with the skip
    assert sp.simplify(block.length_map().rhs.subs(S.m, 0) - S.p * (1 + m0**2)) == 0
    assert parse("dense(tanh,sw2=pi/2)").blocks[0].sw2 == sp.pi / 2
