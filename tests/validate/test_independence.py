"""A model whose representations mix the inputs of its batch is refused, naming where and its sequence-first modules;
one that does not, with dropout or in float32, is measured."""
import itertools

import numpy as np
import pytest
import torch
from torch import nn

from sigprop.validate import measure_model
from sigprop.validate.independence import changed_sets, check_independent


class Encoder(nn.Module):
    def __init__(self, batch_first):
        super().__init__()
        self.tok = nn.Embedding(50, 16)
        layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=batch_first)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)

    def forward(self, ids):
        return self.encoder(self.tok(ids))


class Recurrent(nn.Module):
    def __init__(self, batch_first):
        super().__init__()
        self.lstm = nn.LSTM(8, 8, batch_first=batch_first)
        self.out = nn.Linear(8, 8)

    def forward(self, x):
        return self.out(self.lstm(x)[0])


class Centred(nn.Module):
    """Subtracts the batch mean: mixes the batch without a sequence-first module."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh())

    def forward(self, x):
        return self.body(x - x.mean(dim=0))


IDS = torch.randint(50, (6, 4), generator=torch.Generator().manual_seed(0))
X = torch.randn(5, 3, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))


def test_sequence_first_attention_is_refused_and_named():
    with pytest.raises(ValueError, match="the inputs of the batch are mixed: changing inputs 0, 1 and 2 \\(the "
                                         "others as they were\\) moves input 3's row of x\\^1 \\(the output of "
                                         "'encoder.layers.0'\\) by up to .* "
                                         "'encoder.layers.0.self_attn', 'encoder.layers.1.self_attn' take that "
                                         "dimension as the sequence \\(built with batch_first=False"):
        measure_model(lambda seed: Encoder(False).double(), IDS, seeds=2)
    meas = measure_model(lambda seed: Encoder(True).double(), IDS, seeds=2)       # the same, batch first
    assert meas.inputs["batch"] == 6


def test_a_sequence_first_lstm_is_refused_and_a_batch_first_one_measured():
    with pytest.raises(ValueError, match="row of x\\^1 \\(the output of 'lstm'\\).* 'lstm' take that dimension as "
                                         "the sequence"):
        measure_model(lambda seed: Recurrent(False).double(), X, seeds=2, observe=["lstm"])
    assert measure_model(lambda seed: Recurrent(True).double(), X, seeds=2, observe=["lstm"]).depth == 2


def test_mixing_without_a_sequence_first_module_is_refused_in_general_terms():
    x = torch.randn(4, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    with pytest.raises(ValueError, match="batch are mixed.*row of x\\^1 \\(the output of 'body.1'\\).* A layer "
                                         "that computes across that dimension mixes them: attention or recurrence "
                                         "over it \\(layers built with batch_first=False"):
        measure_model(lambda seed: Centred().double(), x, seeds=2)


class Mixing(nn.Module):
    """Adds row ``source`` of its input to row ``target`` (and nothing else across the batch)."""

    def __init__(self, source, target):
        super().__init__()
        self.source, self.target = source, target
        self.body = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh())

    def forward(self, x):
        return self.body(x + torch.zeros_like(x).index_copy(0, torch.tensor([self.target]), x[[self.source]]))


def test_every_input_is_changed_in_a_pass_that_keeps_any_other():
    for batch in range(2, 130):
        passes = changed_sets(batch)
        for i, j in itertools.permutations(range(batch), 2):
            assert any(i in p and j not in p for p in passes), (batch, i, j)
    assert [len(changed_sets(b)) for b in (2, 6, 64, 126, 127)] == [2, 4, 8, 9, 10]     # about log2 of the batch


@pytest.mark.parametrize("source,target", [(1, 0), (4, 5), (5, 4), (2, 3), (3, 2), (0, 5)])
def test_mixing_between_any_two_inputs_is_refused(source, target):
    """From the end of the batch to its start (anti-causal), between two inputs in the middle either way: every
    pair is caught, naming the input that moved."""
    x = torch.randn(6, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    with pytest.raises(ValueError, match=f"\\(the others as they were\\) moves input {target}'s row of x\\^1"):
        measure_model(lambda seed: Mixing(source, target).double(), x, seeds=2)


class Transposed(nn.Module):
    """Batch first outside, sequence first inside: its layers' outputs are [sequence, batch, width]."""

    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(50, 16)
        self.layers = nn.ModuleList(nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0) for _ in range(2))

    def forward(self, ids):
        x = self.tok(ids).transpose(0, 1)
        for layer in self.layers:
            x = layer(x)
        return x.transpose(0, 1)


def test_a_sequence_first_representation_inside_a_batch_first_model_is_refused():
    """The model's output does not mix the batch, but its layers' rows are positions: with as many positions as
    inputs the shapes cannot tell, the rows can."""
    ids = IDS[:4]                                         # 4 sequences of 4 tokens
    with pytest.raises(ValueError, match="row of x\\^1 \\(the output of 'layers.0'\\)"):
        measure_model(lambda seed: Transposed().double(), ids, seeds=2)


def test_independent_inputs_pass_with_dropout_and_in_float32():
    """Dropout draws new masks on every run: both runs draw the same ones. In float32 rows agree to rounding."""
    dropped = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Dropout(0.3), nn.Linear(8, 8)).double().train()
    x = torch.randn(4, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    state = torch.random.get_rng_state()
    check_independent(dropped, x)
    assert torch.equal(torch.random.get_rng_state(), state)          # the global random state as found
    wide = nn.Sequential(nn.Linear(256, 256), nn.Tanh(), nn.Linear(256, 256))
    check_independent(wide, torch.randn(64, 256, generator=torch.Generator().manual_seed(6)))


class Reordered(nn.Module):
    """x Wᵀ summed over 8 blocks of the inner dimension in an order drawn anew on every call, from the module's own
    generator: a forward pass that is not bit-reproducible, as a GPU kernel summing with atomics. Roundings differ
    from pass to pass, and 30 chaotic layers (weight variance 4) amplify them far past 64 roundings."""

    def __init__(self, seed, mix=False):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.weight = nn.Parameter(2 * torch.randn(64, 64, generator=generator, dtype=torch.float64) / 8)
        self.order, self.mix = torch.Generator().manual_seed(seed + 1), mix

    def forward(self, x):
        blocks = [x[..., b] @ self.weight[:, b].T for b in torch.arange(64).chunk(8)]
        out = torch.zeros_like(blocks[0])
        for i in torch.randperm(8, generator=self.order).tolist():
            out = out + blocks[i]
        return torch.tanh(out + (x[[1]] if self.mix else 0))


def _reordered(mix):
    """30 such layers, the last adding input 1 to every input where ``mix``; ``run(x)`` labels their outputs."""
    layers = [Reordered(depth, mix and depth == 29) for depth in range(30)]

    def run(x):
        outputs = []
        for depth, layer in enumerate(layers):
            x = layer(x)
            outputs.append((f"layer {depth}", x))
        return outputs
    return run


def test_a_forward_pass_that_is_not_bit_reproducible_is_allowed_its_own_noise(monkeypatch):
    """The first pass is repeated; a kept row may move by 16 times what the repeat showed. Without that allowance
    the noise alone is refused; with it, mixing is still refused and the message says what the repeat showed."""
    x = torch.randn(8, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    check_independent(_reordered(mix=False), x)
    with pytest.raises(ValueError, match="a repeated pass of the same inputs moves it by up to .*: the forward pass "
                                         "is not bit-reproducible, and 16 times that is allowed"):
        check_independent(_reordered(mix=True), x)
    monkeypatch.setattr("sigprop.validate.independence.REPEAT_FACTOR", 0)
    with pytest.raises(ValueError, match="the inputs of the batch are mixed"):
        check_independent(_reordered(mix=False), x)


def test_every_pass_starts_from_the_models_buffers(monkeypatch):
    """A training-mode spectral norm runs a step of power iteration on every pass, updating its vectors (buffers),
    which moves every row: each pass starts from the buffers as given, so the rows agree bit for bit (no allowance
    for a repeat's noise needed), and the buffers are left as found. Without the model its state runs on."""
    monkeypatch.setattr("sigprop.validate.independence.REPEAT_FACTOR", 0)
    torch.manual_seed(9)
    net = nn.Sequential(*[m for _ in range(3) for m in (nn.utils.parametrizations.spectral_norm(nn.Linear(16, 16)),
                                                         nn.Tanh())]).double().train()
    x = torch.randn(6, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(10))
    given = [b.clone() for b in net.buffers()]
    check_independent(net, x, net)
    assert len(given) == 6 and all(torch.equal(a, b) for a, b in zip(given, net.buffers()))
    with pytest.raises(ValueError, match="the inputs of the batch are mixed"):
        check_independent(net, x)


def test_batchnorm_without_running_statistics_is_measured_as_the_batch_it_mixes():
    """Without running statistics batchnorm normalizes by the batch in eval mode too: the same numbers as in
    training mode (the batch's Jacobian), where the per-input reading would be wrong."""
    def factory(train):
        def make(seed):
            net = nn.Sequential(nn.Linear(12, 12), nn.BatchNorm1d(12, track_running_stats=False), nn.ReLU(),
                                nn.Linear(12, 12), nn.Tanh()).double()
            return net.train(train)
        return make
    x = torch.randn(6, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    evaluated, trained = (measure_model(factory(train), x, seeds=2, probes=4) for train in (False, True))
    for k, v in trained.raw.items():
        np.testing.assert_array_equal(evaluated.raw[k], v, err_msg=k)


class Inside(nn.Module):
    """A batch-first block whose MLP runs on [sequence, batch, width]: its output rows are inputs, its
    pre-activations' rows positions."""

    def __init__(self):
        super().__init__()
        self.up, self.act, self.down = nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 8)

    def forward(self, x):
        h = self.up(x.transpose(0, 1))
        return x + self.down(self.act(h)).transpose(0, 1)


def test_sequence_first_pre_activations_inside_a_batch_first_block_are_refused():
    x = torch.randn(4, 4, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(4))   # 4 inputs, 4 positions
    with pytest.raises(ValueError, match="row of the pre-activations of layer 1 \\(read at '0.act'\\) .* read "
                                         "pre-activations at \\(pre=\\[...\\]\\) modules whose outputs are"):
        measure_model(lambda seed: nn.Sequential(Inside(), Inside()).double(), x, seeds=2)
