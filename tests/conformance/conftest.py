"""The conformance checks of a block kind, as a fixture: the registry's kinds and a guide's worked example
(tests/conformance/test_extending.py) go through the same code."""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
import sympy as sp
import torch

from sigprop.numerics import predict
from sigprop.theory import BLOCKS, Network, grammar, parse
from sigprop.validate import MODULES, build, compare, measure

WIDTH, SEEDS, PROBES = 256, 8, 16


def blocks_of_kind(net, kind):
    found, stack = [], list(net.blocks)
    while stack:
        b = stack.pop()
        if b.kind == kind:
            found.append(b)
        stack.extend(b.children)
    return found


def round_trip(kind):
    """The example parses, describes itself back, uses the kind; the grammar lists the kind."""
    cls = BLOCKS[kind]
    net = parse(cls.example)
    assert blocks_of_kind(net, kind), f"{kind}.example does not use {kind}"
    assert parse(net.describe()).describe() == net.describe()
    assert f"{kind}(" in grammar() and cls.summary in grammar()


def parameters(kind):
    """Declared parameters drive template (the compiled arguments) and subs, also with a user's plain Symbol."""
    block = blocks_of_kind(parse(BLOCKS[kind].example), kind)[0]
    template, symbols = block.template()
    numbers = block.number_params()
    assert {s.name[len("param_"):] for s in symbols} == set(numbers)
    assert template.subs({s: numbers[s.name[len("param_"):]] for s in symbols}) == block
    for name, value in numbers.items():
        symbolic = parse(Network.of(dataclasses.replace(block, **{name: sp.Symbol("s", real=True)})).describe())
        assert {str(v) for v in symbolic.free_symbols} == {"s"}
        assert symbolic.subs({sp.Symbol("s"): value}).describe() == Network.of(block).describe()


def scaling(kind):
    """A torch module is registered, and it scales with its input as ``degree`` and ``pre_degree`` declare."""
    cls = BLOCKS[kind]
    assert cls in MODULES, f"no torch module registered for {kind}"
    for block in blocks_of_kind(parse(cls.example), kind):
        module = build(Network.of(block), width=64, seed=1).blocks[0]
        x = torch.randn(2, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            y1, pre1 = module(x)
            y2, pre2 = module(3.0 * x)
        if block.degree is not None:
            torch.testing.assert_close(y2, 3.0**block.degree * y1, rtol=1e-12, atol=1e-12)
        else:
            assert not torch.allclose(y2, 3.0 * y1) and not torch.allclose(y2, y1)
        if pre1 is not None and block.pre_degree is not None:
            torch.testing.assert_close(pre2, 3.0**block.pre_degree * pre1, rtol=1e-12, atol=1e-12)


def shapes(kind):
    """Built on torch's meta device (where measurement reads a network's shapes before drawing it), the example has
    the modules, widths and parameter shapes it has when drawn, and no numbers."""
    net = parse(BLOCKS[kind].example)
    drawn, shaped = build(net, width=64, seed=1), build(net, width=64, seed=1, device="meta")
    assert shaped.n_out == drawn.n_out
    assert [type(m) for m in shaped.modules()] == [type(m) for m in drawn.modules()]
    tensors = lambda n: {k: (tuple(t.shape), t.dtype) for k, t in [*n.named_parameters(), *n.named_buffers()]}
    assert tensors(shaped) == tensors(drawn)
    assert all(t.is_meta for t in [*shaped.parameters(), *shaped.buffers()])


def sampled(kind, criterion):
    """The example, predicted and sampled: every quantity passes the acceptance criterion at the checked layers."""
    net = parse(BLOCKS[kind].example)
    L = net.depth
    rows = compare(predict(net), measure(net, width=WIDTH, seeds=SEEDS, probes=PROBES))
    checked = [r for r in rows if r["layer"] in criterion.check_layers(L)]
    assert {r["quantity"] for r in checked} >= {"p", "m", "log_gsc", "log_gsc_qm", "grad_corr"}
    failures = [f"{r['quantity']}[{r['layer']}]: predicted {r['predicted']:.5g}, measured {r['measured_mean']:.5g} "
                f"[{r['measured_lo']:.5g}, {r['measured_hi']:.5g}]" for r in checked if not criterion.accepts(r, L, WIDTH)]
    assert not failures, "\n".join(failures)


@pytest.fixture
def block_checks():
    return SimpleNamespace(round_trip=round_trip, parameters=parameters, scaling=scaling, shapes=shapes,
                           sampled=sampled)
