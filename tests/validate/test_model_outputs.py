"""measure_model on modules whose outputs are structured as libraries write them: a tuple (nn.LSTM's output and
state, a transformer layer's hidden states and attention weights), a namedtuple, a mapping (a model's logits
first): the first element is the representation."""
from collections import namedtuple

import numpy as np
import torch
from torch import nn

from sigprop.validate import measure_model

KEYS = ("q", "c", "p", "m", "n", "jac_qm2", "grad_cross", "grad_sq", "unit_std", "sign_diversity")
Output = namedtuple("Output", ["hidden", "extra"])


class Block(nn.Module):
    def __init__(self, width, structure):
        super().__init__()
        self.fc1, self.act, self.fc2, self.structure = nn.Linear(width, width), nn.Tanh(), nn.Linear(width, width), \
            structure

    def forward(self, x):
        h = x + self.fc2(self.act(self.fc1(x)))
        if self.structure == "tuple":
            return h, h.sum(-1)
        return Output(h, None) if self.structure == "namedtuple" else h


class Model(nn.Module):
    """Three residual blocks in a stack of layers and a head; ``structure``: what the blocks and the model return
    (the blocks a tuple or namedtuple, the model a mapping with its logits first), or plain tensors."""

    def __init__(self, structure=None, width=12):
        super().__init__()
        self.inp = nn.Linear(width, width)
        self.layers = nn.ModuleList([Block(width, structure) for _ in range(3)])
        self.head = nn.Linear(width, 5)
        self.structure = structure

    def forward(self, x):
        x = self.inp(x)
        for layer in self.layers:
            x = layer(x)
            x = x if self.structure is None else x[0]
        logits = self.head(x)
        return logits if self.structure is None else {"logits": logits, "hidden": x}


def _made(structure):
    torch.manual_seed(0)
    return Model(structure).double()


def test_structured_outputs_measure_as_plain_tensors():
    """The same weights with tuple, namedtuple and mapping outputs give the plain model's numbers exactly (the same
    operations run), a data batch and Hutchinson probes included; so do a factory's networks measured at once."""
    x = torch.randn(6, 12, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.random.fork_rng():
        plain = measure_model(_made(None), x)
        for structure in ("tuple", "namedtuple"):
            meas = measure_model(_made(structure), x)
            assert meas.meta["observe"] == plain.meta["observe"] == ["layers.0", "layers.1", "layers.2"]
            for key in KEYS:
                np.testing.assert_array_equal(meas.raw[key], plain.raw[key], err_msg=f"{structure} {key}")
    # a factory's networks stacked under vmap, as plain ones are
    stacked = {s: measure_model(lambda seed, s=s: Model(s).double(), x, seeds=3) for s in (None, "tuple")}
    assert stacked["tuple"].meta["stacked"] and stacked[None].meta["stacked"]
    for key in KEYS:
        np.testing.assert_allclose(stacked["tuple"].raw[key], stacked[None].raw[key], rtol=1e-14, atol=1e-15,
                                   err_msg=key)


class Recurrent(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm, self.head = nn.LSTM(6, 8, batch_first=True), nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.lstm(x)[0])


def test_an_lstm_observed_at_its_output_against_jacobians_by_autograd():
    """nn.LSTM returns (output, (h, c)): x^1 is its output sequence, x^2 the head's output; ‖∂x^L/∂x^0‖_F² per
    input (exact probes) against torch.func.jacrev of the model written out by hand."""
    torch.manual_seed(0)
    model = Recurrent().double()
    x = torch.randn(3, 5, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    meas = measure_model(model, x, observe=["lstm"], probes="exact")
    assert meas.raw["n"][0].tolist() == [30, 40, 15]
    f = lambda row: model.head(model.lstm(row[None])[0])[0]
    jac = torch.stack([torch.func.jacrev(f)(row).reshape(15, 30) for row in x])
    np.testing.assert_allclose(meas.raw["grad_sq"][0, 0], [(jac ** 2).sum(dim=(1, 2)).mean().item()] * 2,
                               rtol=1e-12)
