"""measure_model from a module's output on (``start``): language models fed token ids, measured from x^0 = their
embedding's output, against the same model measured after its embedding and against Jacobians by autograd."""
import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from sigprop.validate import measure_model

KEYS = ("q", "c", "p", "m", "n", "jac_qm2", "grad_cross", "grad_sq", "unit_std", "sign_diversity")
TOKENS = torch.randint(100, (4, 7), generator=torch.Generator().manual_seed(1))


def lm(seed):
    return nn.Sequential(nn.Embedding(100, 16), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(),
                         nn.Linear(16, 16), nn.ReLU()).double()


def _seeded(factory, seed):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return factory(seed)


def _same(meas, ref, i):
    assert list(meas.pre_layers) == list(ref.pre_layers)
    for key in KEYS:
        np.testing.assert_allclose(meas.raw[key][i], ref.raw[key][0], rtol=1e-12, atol=1e-14, err_msg=key)


@pytest.mark.parametrize("seed_batch", [None, 1])
def test_token_ids_measure_as_the_model_after_its_embedding_fed_the_embedded_batch(seed_batch):
    """Each network of the factory, fed token ids, gives what its layers after the embedding give fed the
    embedded batch (exact probes: nothing random), stacked or one at a time; a start deeper in the model gives
    what the layers after it give fed its output."""
    meas = measure_model(lm, TOKENS, seeds=[0, 4, 9], probes="exact", seed_batch=seed_batch)
    assert meas.meta["start"] == "0" and meas.meta["observe"] == ["2", "4", "6"]
    assert meas.meta["stacked"] == (seed_batch is None)
    for i, seed in enumerate(meas.seeds):
        net = _seeded(lm, seed)
        with torch.no_grad():
            embedded = net[0](TOKENS)
        _same(meas, measure_model(net[1:], embedded, probes="exact"), i)
    deeper = measure_model(lm, TOKENS, start="2", seeds=[0, 4], probes="exact", seed_batch=seed_batch)
    assert deeper.meta["start"] == "2" and deeper.meta["observe"] == ["4", "6"]
    net = _seeded(lm, 4)
    with torch.no_grad():
        x0 = net[:3](TOKENS)
    _same(deeper, measure_model(net[3:], x0, probes="exact"), 1)


class Residual(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.inner = nn.Sequential(nn.Linear(width, 2 * width), nn.Tanh(), nn.Linear(2 * width, width))

    def forward(self, x):
        return x + self.inner(x)


class TinyLM(nn.Module):
    """Token and learned position embeddings, an attention layer and a residual MLP block, and a head."""

    def __init__(self, vocab=50, width=16, length=6):
        super().__init__()
        self.tok = nn.Embedding(vocab, width)
        self.pos = nn.Parameter(0.3 * torch.randn(length, width))
        self.blocks = nn.Sequential(nn.TransformerEncoderLayer(width, 2, 32, dropout=0.0, batch_first=True),
                                    Residual(width))
        self.head = nn.Linear(width, vocab)

    def forward(self, ids):
        return self.head(self.blocks(self.tok(ids) + self.pos[:ids.shape[1]]))


def test_a_transformer_from_its_token_embedding_against_jacobians_by_autograd():
    """x^0 = the token embedding's output (found: the model's first nn.Embedding), x^1, x^2 the outputs of the
    nn.Sequential's blocks, x^3 the head's: ‖∂x^L/∂x^l‖_F² and tr(J_a J_bᵀ) over pairs of inputs a ≠ b from exact
    probes against torch.func.jacrev of the model written out by hand from x^l on, input by input. The position
    embedding is added after x^0, so a model measured from the wrong place fails."""
    model = _seeded(lambda seed: TinyLM().double(), 0)
    ids = torch.randint(50, (3, 6), generator=torch.Generator().manual_seed(2))
    meas = measure_model(model, ids, probes="exact")
    assert meas.meta["start"] == "tok" and meas.meta["observe"] == ["blocks.0", "blocks.1"]
    assert meas.raw["n"][0].tolist() == [96, 96, 96, 300]
    with torch.no_grad():
        x0 = model.tok(ids)
        x1 = model.blocks[0](x0 + model.pos)
        x2 = model.blocks[1](x1)
    tails = [(x0, lambda e: model.head(model.blocks((e + model.pos)[None]))[0]),
             (x1, lambda h: model.head(model.blocks[1](h[None]))[0]),
             (x2, lambda h: model.head(h))]
    for l, (xl, tail) in enumerate(tails):
        with sdpa_kernel(SDPBackend.MATH):     # vmap has no batching rule for the fused kernels' backward
            jac = torch.stack([torch.func.jacrev(tail)(row) for row in xl])
        jac = jac.flatten(1, 2).flatten(2)     # [input, out, in]
        sq = (jac ** 2).sum(dim=(1, 2))
        cross = torch.stack([(jac[a] * jac[b]).sum() for a in range(3) for b in range(3) if a != b]).mean()
        np.testing.assert_allclose(meas.raw["grad_sq"][0, l], [sq.mean().item()] * 2, rtol=1e-12, err_msg=l)
        np.testing.assert_allclose(meas.raw["grad_cross"][0, l], cross.item(), rtol=1e-11,
                                   atol=1e-14 * sq.mean().item(), err_msg=l)
        np.testing.assert_allclose(meas.raw["p"][0, l], [(xl ** 2).mean().item()] * 2, rtol=1e-13, err_msg=l)


def test_a_transformer_factory_stacked_gives_what_one_at_a_time_gives():
    """Two TinyLMs at once under vmap (the token embedding's weights batched, the ids shared) and one at a time:
    the same numbers (Hutchinson probes drawn from each network's seed)."""
    factory = lambda seed: TinyLM().double()
    ids = torch.randint(50, (5, 6), generator=torch.Generator().manual_seed(3))
    at_once, alone = (measure_model(factory, ids, seeds=[1, 2, 3], probes=6, seed_batch=k) for k in (None, 1))
    assert at_once.meta["stacked"] and not alone.meta["stacked"]
    for key in KEYS:
        np.testing.assert_allclose(at_once.raw[key], alone.raw[key], rtol=1e-11, atol=1e-13, err_msg=key)


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb, self.lin, self.spare = nn.Embedding(10, 4), nn.Linear(4, 4), nn.Linear(4, 4)

    def forward(self, ids):
        return self.lin(self.emb(ids)) + self.emb(ids)


def test_start_errors():
    ids = torch.randint(10, (3, 5), generator=torch.Generator().manual_seed(0))
    plain = nn.Sequential(nn.Linear(8, 8), nn.Tanh())
    with pytest.raises(ValueError, match="integer inputs \\(token ids\\) are not allowed for Sequential without "
                                         "start: .* give start=NAME"):
        measure_model(plain, torch.ones(2, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="inputs of dtype torch.bool are not allowed"):
        measure_model(plain, torch.ones(2, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"start='nope' is not allowed: name the module whose output is x\^0, one "
                                         r"of \['0', '1'\]"):
        measure_model(plain, torch.randn(2, 8), start="nope")
    with pytest.raises(ValueError, match="start='0' needs inputs"):
        measure_model(plain, start="0")
    net = lm(0)
    with pytest.raises(ValueError, match="observe names \\['0'\\], which is the start module '0'"):
        measure_model(net, ids, observe=["0", "2"])
    with pytest.raises(ValueError, match="observed module '2' runs before the start module '3'"):
        measure_model(net, ids, start="3", observe=["2", "4"])
    with pytest.raises(ValueError, match="the start module 'spare' did not run in the forward pass"):
        measure_model(Tied(), ids, start="spare", observe=["lin"])
    with pytest.raises(ValueError, match="the start module 'emb' runs more than once per forward pass"):
        measure_model(Tied(), ids, observe=["lin"])
    ident = nn.Sequential(nn.Identity(), nn.Embedding(10, 4), nn.Linear(4, 4), nn.Tanh())
    with pytest.raises(ValueError, match="the start module '0' returns a tensor of shape \\(3, 5\\) and torch.int64: "
                                         "x\\^0 must be a floating-point tensor"):
        measure_model(ident, ids, start="0")


def test_the_language_model_is_left_as_found():
    """Hooks removed, grads and requires_grad, the mode, torch's random state and batchnorm's running statistics."""
    net = lm(0).train()
    net[1].weight.requires_grad_(False)
    state = torch.random.get_rng_state()
    measure_model(net, TOKENS)
    assert torch.equal(state, torch.random.get_rng_state()) and net.training
    assert all(p.grad is None for p in net.parameters()) and not net[1].weight.requires_grad
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in net.modules())
    normed = nn.Sequential(nn.BatchNorm1d(8), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh()).train()
    x = torch.randn(5, 8, generator=torch.Generator().manual_seed(0))
    meas = measure_model(normed, x, start="2")       # the forward pass to x^0 runs training-mode batchnorm
    assert meas.meta["observe"] == ["4"]
    assert torch.equal(normed[0].running_mean, torch.zeros(8)) and int(normed[0].num_batches_tracked) == 0


class Stacked(nn.Module):
    """Layers kept in an nn.ModuleList and run in a loop, as transformer libraries keep them."""

    def __init__(self, mixed=False):
        super().__init__()
        self.emb = nn.Embedding(20, 8)
        self.layers = nn.ModuleList([nn.Linear(8, 8), nn.Identity()] if mixed else [Residual(8) for _ in range(3)])
        self.head = nn.Linear(8, 20)

    def forward(self, ids):
        x = self.emb(ids)
        for layer in self.layers:
            x = layer(x)
        return self.head(x)


def test_a_stack_of_layers_in_a_module_list_is_found():
    """An nn.ModuleList of modules of one class is a stack of layers whose outputs are block boundaries (inner
    nn.Sequentials are not, as within any found container); nn.TransformerEncoder's layers are found the same way;
    a ModuleList of modules of several classes is not a stack."""
    ids = torch.randint(20, (3, 4), generator=torch.Generator().manual_seed(0))
    model = _seeded(lambda seed: Stacked().double(), 0)
    found = measure_model(model, ids, probes="exact")
    assert found.meta["observe"] == ["layers.0", "layers.1", "layers.2"]
    named = measure_model(model, ids, probes="exact", observe=["layers.0", "layers.1", "layers.2"])
    for key in KEYS:
        np.testing.assert_array_equal(found.raw[key], named.raw[key], err_msg=key)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    model.layers = nn.TransformerEncoder(layer, 3, enable_nested_tensor=False).layers.double()
    assert measure_model(model, ids, probes=2).meta["observe"] == ["layers.0", "layers.1", "layers.2"]
    with pytest.raises(ValueError, match="holds no nn.Sequential or stack of layers \\(an nn.ModuleList of modules "
                                         "of one class\\)"):
        measure_model(Stacked(mixed=True), ids)


def test_attention_costs_the_same_operations_for_any_number_of_probes(dispatched):
    """The fused attention kernels have no batching rule, so their backward pass ran once per probe (thousands of
    kernel launches on a GPU for exact probes); in its math implementation vmap batches it: 2 probes and 32 dispatch
    the same operations."""
    model = _seeded(lambda seed: TinyLM().double(), 0)
    ids = torch.randint(50, (3, 6), generator=torch.Generator().manual_seed(2))
    counts = [dispatched(lambda: measure_model(model, ids, probes=probes)) for probes in (2, 32)]
    assert counts[0] == counts[1], counts
