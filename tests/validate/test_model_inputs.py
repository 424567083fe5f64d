"""measure_model fed a mapping of the model's keyword arguments (``model(**inputs)``: ids with a padding mask,
other values passed on as they are) against the same model holding all but one input and fed that one."""
import numpy as np
import pytest
import torch
from torch import nn

from sigprop.validate import measure_model

IDS = torch.randint(100, (4, 8), generator=torch.Generator().manual_seed(0))
PADDING = torch.arange(8).expand(4, 8) >= torch.tensor([[8], [6], [5], [8]])     # rows of 8, 6, 5, 8 tokens


class Padded(nn.Module):
    """A transformer encoder fed token ids and a mask of padding positions."""

    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(100, 16)
        layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)

    def forward(self, ids, padding):
        return self.encoder(self.tok(ids), src_key_padding_mask=padding)


class Shifted(nn.Module):
    """Floating-point inputs, a shift broadcast over the batch and a number."""

    def __init__(self):
        super().__init__()
        self.first, self.act, self.last = nn.Linear(6, 10), nn.Tanh(), nn.Linear(10, 10)

    def forward(self, x, shift, gain=1.0):
        return self.last(self.act(gain * self.first(x) + shift))


class Holding(nn.Module):
    """A model fed one input, the others held."""

    def __init__(self, model, first, **held):
        super().__init__()
        self.model, self.first, self.held = model, first, held

    def forward(self, x):
        return self.model(**{self.first: x}, **self.held)


def _same(meas, ref):
    assert list(meas.pre_layers) == list(ref.pre_layers) and meas.raw.keys() == ref.raw.keys()
    for key in ref.raw:
        np.testing.assert_array_equal(meas.raw[key], ref.raw[key], err_msg=key)


@pytest.mark.parametrize("seed_batch", [None, 1])
def test_ids_and_a_padding_mask_by_keyword_measure_as_the_model_holding_the_mask(seed_batch):
    """The same operations run either way, stacked or one at a time: every raw array is bit-identical."""
    meas = measure_model(lambda s: Padded().double(), {"ids": IDS, "padding": PADDING}, seeds=3,
                         seed_batch=seed_batch)
    ref = measure_model(lambda s: Holding(Padded().double(), "ids", padding=PADDING), IDS, seeds=3,
                        seed_batch=seed_batch)
    _same(meas, ref)
    assert meas.meta["start"] == "tok" and meas.meta["observe"] == ["encoder.layers.0", "encoder.layers.1"]
    assert meas.inputs == {"batch": 4, "keywords": ["ids", "padding"]} and ref.inputs == {"batch": 4}
    assert meas.meta["stacked"] is (seed_batch is None)
    masked = measure_model(lambda s: Padded().double(), {"ids": IDS, "padding": PADDING & False}, seeds=3)
    assert not np.allclose(masked.raw["grad_sq"], meas.raw["grad_sq"])          # the mask reaches the model


def test_floating_inputs_by_keyword_with_a_broadcast_tensor_and_a_number():
    """A mapping of floating-point inputs starts where ``start`` says; a [1, ...] tensor sits beside the batch and
    a number is passed on; floating-point tensors are moved to the model's dtype."""
    x = torch.linspace(-2, 2, 30).reshape(5, 6)
    shift = torch.linspace(-1, 1, 10, dtype=torch.float32)[None]
    meas = measure_model(lambda s: Shifted().double(), {"x": x, "shift": shift, "gain": 1.5}, start="first",
                         observe=["act"], seeds=2, probes="exact")
    ref = measure_model(lambda s: Holding(Shifted().double(), "x", shift=shift.double(), gain=1.5), x,
                        start="model.first", observe=["model.act"], seeds=2, probes="exact")
    _same(meas, ref)
    assert meas.meta["observe"] == ["act"] and meas.width == 10


@pytest.mark.parametrize("inputs, mentions", [
    ({1: IDS}, "inputs with key 1 are not allowed"),
    ({"ids": IDS, "padding": PADDING[:3]}, "first dimensions {'ids': 4, 'padding': 3}"),
    ({"ids": IDS[:1]}, "give a batch of at least 2 inputs"),
    ({"gain": 2.0}, "give a batch of at least 2 inputs"),
    ({"ids": IDS * 1j}, "inputs['ids'] of dtype torch.complex64 is not allowed"),
    ({"ids": IDS.double()}, "inputs given as a mapping (['ids']) need start"),
    ([IDS], "inputs of type list are not allowed"),
])
def test_bad_keyword_inputs_are_named(inputs, mentions):
    with pytest.raises(ValueError) as err:
        measure_model(lambda s: Padded().double(), inputs, seeds=2)
    assert mentions in str(err.value)


@pytest.mark.parametrize("seed_batch", [None, 1])
def test_x0_a_keyword_input_named_by_start(seed_batch):
    """``start`` naming one of the mapping's keys: x^0 is that input (embedded tokens beside their mask), which the
    model is fed in its place; the same numbers as the model fed it positionally with the mask held."""
    class Embedded(Padded):
        def forward(self, embedded, padding):
            return self.encoder(embedded, src_key_padding_mask=padding)
    embedded = torch.linspace(-2, 2, 4 * 8 * 16, dtype=torch.float64).reshape(4, 8, 16).sin()
    meas = measure_model(lambda s: Embedded().double(), {"embedded": embedded, "padding": PADDING}, start="embedded",
                         seeds=3, seed_batch=seed_batch)
    ref = measure_model(lambda s: Holding(Embedded().double(), "embedded", padding=PADDING), embedded, seeds=3,
                        seed_batch=seed_batch)
    _same(meas, ref)
    assert meas.meta["start"] == "embedded" and meas.meta["observe"] == ["encoder.layers.0", "encoder.layers.1"]
    assert meas.inputs == {"batch": 4, "keywords": ["embedded", "padding"], "x0": "embedded"}
    assert meas.meta["stacked"] is (seed_batch is None)


@pytest.mark.parametrize("feed, mentions", [
    ({"ids": IDS, "padding": PADDING}, "start='padding' names inputs['padding'], a tensor of dtype torch.bool"),
    ({"ids": IDS, "padding": PADDING.double()[:1]}, "inputs['padding']: inputs of shape (1, 8) are not allowed"),
    ({"ids": IDS, "padding": PADDING, "tok": IDS.double()}, "start='tok' names both a module and one of the inputs"),
])
def test_a_keyword_start_must_be_a_floating_point_batch(feed, mentions):
    start = "tok" if "tok" in feed else "padding"
    with pytest.raises(ValueError) as err:
        measure_model(lambda s: Padded().double(), feed, start=start, seeds=2)
    assert mentions in str(err.value)
