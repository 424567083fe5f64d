"""measure_model: a user's torch module measured as the description path measures the same network."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from sigprop.theory import parse
from sigprop.validate import build, measure, measure_model
from sigprop.validate.measure import measure_seed, seed_inputs

RAW = ("q", "c", "p", "m", "n", "jac_qm2", "grad_cross", "grad_sq")


def _linear(dense):
    lin = nn.Linear(dense.weight.shape[1], dense.weight.shape[0]).double()
    with torch.no_grad():
        lin.weight.copy_(dense.weight)
        lin.bias.copy_(dense.bias)
    return lin


def _same_raw(model_raw, ref, seed_index):
    for key in RAW:
        np.testing.assert_allclose(model_raw[key][seed_index], ref[key], rtol=1e-12, atol=1e-14, err_msg=key)


@pytest.mark.parametrize("inplace", [False, True])
def test_sequential_matches_the_description_path(inplace):
    """nn.Sequential(Linear, act, ...) with the description's sampled weights: every raw array identical (the
    default observation finds the dense blocks: a Linear followed by an activation is one block, and the
    activation's input is the pre-activation even when the activation works in place)."""
    net = parse("4*dense(relu,sw2=2,sb2=0.1)")
    width = 24

    def factory(seed):
        return nn.Sequential(*[m for b in build(net, width, seed).blocks for m in (_linear(b), nn.ReLU(inplace))])

    meas = measure_model(factory, seeds=[3, 5, 8])          # the first alone, the other two stacked
    assert meas.depth == 4 and list(meas.pre_layers) == [1, 2, 3, 4] and meas.meta["stacked"]
    assert meas.meta["observe"] == ["1", "3", "5", "7"]
    for i, seed in enumerate([3, 5, 8]):
        _same_raw(meas.raw, measure_seed(net, width, seed), i)


class BasicBlock(nn.Module):
    """A torchvision-style residual block on vectors: in-place ReLU, in-place sum with the identity."""

    def __init__(self, fc1, fc2, beta):
        super().__init__()
        self.fc1, self.relu, self.fc2, self.beta = fc1, nn.ReLU(inplace=True), fc2, beta

    def forward(self, x):
        identity = x
        out = self.relu(self.fc1(x))
        out = self.fc2(out) * self.beta
        out += identity
        return out


def test_residual_blocks_match_the_description_path():
    net = parse("3*residual(dense(relu,sw2=2),dense(linear),beta=0.5)")
    width = 20

    def factory(seed):
        blocks = build(net, width, seed).blocks
        return nn.Sequential(*[BasicBlock(_linear(b.branch[0]), _linear(b.branch[1]), 0.5) for b in blocks])

    # the description records the pre-activation of a block's last dense layer: fc2's output
    meas = measure_model(factory, seeds=[0, 1, 2], pre=["0.fc2", "1.fc2", "2.fc2"])
    assert meas.meta["observe"] == ["0", "1", "2"] and meas.meta["stacked"]
    assert meas.meta["pre_modules"] == ["0.fc2", "1.fc2", "2.fc2"]
    for i in range(3):
        _same_raw(meas.raw, measure_seed(net, width, i), i)
    auto = measure_model(factory, seeds=[0, 1, 2])          # default: the input of each block's ReLU (fc1's output)
    for key in ("p", "jac_qm2", "grad_cross"):
        np.testing.assert_array_equal(auto.raw[key], meas.raw[key])
    assert not np.allclose(auto.raw["q"], meas.raw["q"])
    assert auto.meta["pre"] == "auto" and auto.meta["pre_modules"] == ["0.relu", "1.relu", "2.relu"]


class Scaled(nn.Module):
    """A block with a constant of its own beside its weights."""

    def __init__(self, width, beta):
        super().__init__()
        self.fc, self.beta = nn.Linear(width, width), beta

    def forward(self, x):
        return x + self.beta * torch.tanh(self.fc(x))


class Gain(nn.Module):
    """A parameter-free module with a constant."""

    def __init__(self, gain):
        super().__init__()
        self.gain = gain

    def forward(self, x):
        return self.gain * x


class Helped(nn.Module):
    """A block that keeps helper modules in a dict, outside the module tree (as a library keeps wrapped
    functions): each network has its own instances."""

    def __init__(self, width, gain):
        super().__init__()
        self.fc, self.helpers = nn.Linear(width, width), {"gain": Gain(gain), "act": [nn.Tanh()]}

    def forward(self, x):
        return self.helpers["act"][0](self.helpers["gain"](self.fc(x)))


class Bottleneck2d(nn.Module):
    """A torchvision-style image block: conv, eval-mode batchnorm, in-place ReLU, in-place sum with the identity."""

    def __init__(self, channels):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels).eval()
        self.conv2, self.bn2 = nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels).eval()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        identity = x
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        out += identity
        return self.relu(out)


STACKED = [  # (factory, inputs, probes): every kind of representation and input the hooks see
    (lambda seed: nn.Sequential(*[Helped(12, 1.5) for _ in range(3)]), None, "exact"),
    (lambda seed: nn.Sequential(*[Scaled(12, 0.5) for _ in range(3)], nn.Linear(12, 5)), None, "exact"),
    (lambda seed: nn.Sequential(nn.Conv1d(2, 4, 3, padding=1), nn.Tanh(), nn.Conv1d(4, 4, 3, padding=1),
                                nn.ReLU(inplace=True)), torch.randn(6, 2, 8), 4),
    (lambda seed: nn.Sequential(nn.Linear(12, 12), nn.LayerNorm(12), nn.GELU(), nn.Linear(12, 12), nn.Tanh()),
     None, 3),
    (lambda seed: nn.Sequential(nn.Linear(12, 12), nn.BatchNorm1d(12).eval(), nn.ReLU()), None, "exact"),
    (lambda seed: nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), Bottleneck2d(3), Bottleneck2d(3)),
     torch.randn(4, 1, 5, 5), 4),
]


@pytest.mark.parametrize("factory,inputs,probes", STACKED)
def test_a_factorys_networks_measured_at_once_give_what_one_at_a_time_gives(factory, inputs, probes):
    """After the first network, the factory's networks are stacked under one vmap (functional_call of the first
    one's code with their weights): the same numbers as one at a time, to float64 rounding (depth <= 3)."""
    factory = _double(factory)
    meas = measure_model(factory, inputs, seeds=5, probes=probes)
    assert meas.meta["stacked"] and meas.meta["seeds_per_batch"] == 4
    one = measure_model(factory, inputs, seeds=5, probes=probes, seed_batch=1)
    assert not one.meta["stacked"] and one.meta["seeds_per_batch"] == 1
    for k, v in one.raw.items():
        scale = np.nanmax(np.abs(v), initial=1.0)
        np.testing.assert_allclose(meas.raw[k], v, rtol=0, atol=1e-12 * scale, err_msg=k)


def _double(factory):
    return lambda seed: factory(seed).double()


@pytest.mark.parametrize("given", [False, True])
def test_a_stacked_network_adds_little_beyond_its_building(given, dispatched):
    """Each network the factory builds beyond the first adds, stacked, the operations of its building and of its
    inputs' (the default pair) and probes' draws, not those of a measurement (which one at a time repeats: on a
    GPU, its kernels)."""
    factory = _double(lambda seed: nn.Sequential(*[m for _ in range(6) for m in (nn.Linear(16, 16), nn.Tanh())]))
    x = torch.randn(2, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) if given else None
    building = dispatched(lambda: (factory(0), given or seed_inputs(16, 0, 1.0, 0.5, 2, torch.float64, "cpu")))

    def per_network(seed_batch):
        few, many = (dispatched(lambda: measure_model(factory, x, seeds=s, seed_batch=seed_batch)) for s in (3, 8))
        return (many - few) / 5 - building
    stacked, alone = per_network(None), per_network(1)
    assert 0 <= stacked < alone / 10, (stacked, alone)


@pytest.mark.parametrize("factory", [
    lambda seed: nn.Sequential(*[Scaled(12, 0.5 + seed) for _ in range(3)]),   # a constant that differs by seed
    lambda seed: nn.Sequential(*[Helped(12, 0.5 + seed) for _ in range(3)]),   # ... held by a helper module
    lambda seed: nn.Sequential(nn.Linear(12, 12), nn.Tanh(), nn.Dropout(0.2), nn.Linear(12, 12), nn.Tanh()),
    lambda seed: nn.Sequential(nn.Linear(12, 12), nn.BatchNorm1d(12), nn.ReLU()),   # training mode: couples the batch
])
def test_networks_that_differ_beyond_their_weights_or_refuse_vmap_run_one_at_a_time(factory):
    factory = _double(factory)
    meas = measure_model(factory, seeds=4, probes=3)
    assert not meas.meta["stacked"] and meas.meta["seeds_per_batch"] == 1       # as measured, not as planned
    one = measure(factory, seeds=4, probes=3, seed_batch=1)          # measure() hands a factory to measure_model
    assert one.meta["seeds_per_batch"] == 1
    for k, v in one.raw.items():
        np.testing.assert_array_equal(meas.raw[k], v, err_msg=k)


def test_one_module_and_conv_outputs():
    """A module instance is one network (no interval); representations of any shape are flattened per input."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(2, 4, 3, padding=1), nn.Tanh(), nn.Conv1d(4, 4, 3, padding=1), nn.Tanh())
    x = torch.randn(6, 2, 8)
    meas = measure_model(model, x, probes=4)
    assert meas.n_seeds == 1 and meas.depth == 2 and list(meas.raw["n"][0]) == [16, 32, 32]
    s = meas.summary()["log_gsc"]
    assert np.all(np.isfinite(s["mean"])) and np.all(np.isnan(s["lo"]))
    assert meas.raw["sign_diversity"].shape == (1, 2, 32)


def test_exact_probes_over_a_data_batch_are_the_jacobians_norms():
    """Exact probes at a batch of B = 5 inputs, the default for none (8 probes at or above the output width 4),
    against the Jacobians torch.func.jacrev computes input by input: the batch's mean of ‖∂x^L/∂x^l‖_F² and its
    mean over the pairs a ≠ b of tr(J_a J_bᵀ), at every observed layer."""
    gen = torch.Generator().manual_seed(3)
    model = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 4)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))
    x = torch.randn(5, 6, generator=gen, dtype=torch.float64)
    meas = measure_model(model, x)
    assert meas.probes == "exact"
    starts, xl = [0, 2, 4], x                           # x^l = the input of model[starts[l]:]
    for l, start in enumerate(starts):
        tail = model[start:]
        jac = torch.stack([torch.func.jacrev(tail)(row) for row in xl])                   # [input, out, in]
        sq = (jac ** 2).sum(dim=(1, 2))
        cross = [(jac[a] * jac[b]).sum() for a in range(5) for b in range(5) if a != b]
        np.testing.assert_allclose(meas.raw["grad_sq"][0, l], [sq.mean().item()] * 2, rtol=1e-13)
        np.testing.assert_allclose(meas.raw["grad_cross"][0, l], torch.stack(cross).mean().item(), rtol=1e-12,
                                   atol=1e-14 * sq.mean().item())
        with torch.no_grad():
            xl = model[start:start + 2](xl)
    np.testing.assert_allclose(meas.raw["grad_sq"][0, 3], [4.0, 4.0], rtol=1e-15)       # x^L itself: ‖I‖² = 4


def test_probes_through_batchnorm_at_or_above_the_output_width():
    """Training-mode batchnorm mixes a batch, so GSC takes P Hutchinson probes independent across the inputs
    whatever P, while the probes shared by the batch (the gradient correlation's) are the output's basis vectors
    for P >= n_out: two such P give the same gradient correlation, different GSC, and are recorded as P."""
    norm = lambda seed: nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 3))
    x = torch.randn(5, 8, generator=torch.Generator().manual_seed(0))
    few, many = (measure_model(norm, x, seeds=2, probes=p) for p in (3, 40))
    assert (few.probes, many.probes) == (3, 40) and measure_model(norm, x, seeds=2).probes == 8
    np.testing.assert_array_equal(few.raw["grad_cross"], many.raw["grad_cross"])
    assert not np.allclose(few.raw["jac_qm2"][:, :-1], many.raw["jac_qm2"][:, :-1])
    # the batch's GSC from P = 4000 probes against its Jacobian by autograd (the whole batch at once):
    # Hutchinson's estimate of ‖M‖_F² has variance 2‖MMᵀ‖_F²/P; within 5 standard deviations
    model = norm(0).double()
    xd = x.double()
    P, (B, n_in) = 4000, xd.shape
    est = measure_model(model, xd, probes=P).raw["jac_qm2"][0, 0]
    M = torch.autograd.functional.jacobian(model, xd).reshape(B * 3, B * n_in)
    truth = (M ** 2).sum().item() / (B * n_in)
    sd = math.sqrt(2 / P) * torch.linalg.matrix_norm(M @ M.T).item() / (B * n_in)
    assert np.all(np.abs(est - truth) <= 5 * sd), (est, truth, sd)
    assert sd < 0.05 * truth                                            # the check can tell a wrong norm


def test_unit_statistics_by_example():
    """Three units over four inputs x = -2, -1, 1, 2: h = x, -x, x - 10 have sign diversities 1/2, 1/2, 0 and
    standard deviations √2.5, √2.5, √2.5 over the data."""
    lin = nn.Linear(1, 3).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0], [-1.0], [1.0]]))
        lin.bias.copy_(torch.tensor([0.0, 0.0, -10.0]))
    x = torch.tensor([[-2.0], [-1.0], [1.0], [2.0]], dtype=torch.float64)
    meas = measure_model(nn.Sequential(lin, nn.Tanh()), x, probes=2)
    np.testing.assert_array_equal(meas.raw["sign_diversity"][0, 0], [0.5, 0.5, 0.0])
    np.testing.assert_allclose(meas.raw["unit_std"][0, 0], [math.sqrt(2.5)] * 3, rtol=1e-15)
    units = meas.unit_summary()                      # means over units; one network: no interval
    np.testing.assert_allclose([units["unit_std"]["mean"][0], units["sign_diversity"]["mean"][0]],
                               [math.sqrt(2.5), 1 / 3], rtol=1e-15)
    assert np.isnan(units["unit_std"]["lo"][0]) and list(units["unit_std"]["layers"]) == [1]
    rows = [r for r in meas.to_rows() if r["quantity"] == "sign_diversity"]
    assert [(r["layer"], r["n_seeds"]) for r in rows] == [(1, 1)] and rows[0]["measured_mean"] == units[
        "sign_diversity"]["mean"][0]
    assert measure_model(nn.Sequential(lin, nn.Tanh()), x[:2], probes=2).unit_summary() == {}     # a pair


def test_the_model_and_the_global_state_are_left_as_found():
    def factory(seed):                                  # default init and dropout draw from torch's global state
        return nn.Sequential(nn.Linear(16, 16), nn.Tanh(), nn.Dropout(0.1), nn.Linear(16, 16), nn.Tanh())

    state = torch.get_rng_state()
    measure_model(factory, seeds=2)
    assert torch.equal(state, torch.get_rng_state())
    model = factory(0).train()
    model[2].eval()
    measure_model(model)
    assert model.training and not model[2].training
    assert all(p.grad is None for p in model.parameters())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    bn = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8), nn.ReLU()).train()
    stats = [b.clone() for b in bn.buffers()]
    measure(bn, seeds=2, probes=3)                              # measure() hands a module to measure_model
    assert all(torch.equal(a, b) for a, b in zip(stats, bn.buffers()))
    first = measure_model(factory, seeds=[4, 7]).raw["p"]
    np.testing.assert_array_equal(first, measure_model(factory, seeds=[4, 7]).raw["p"])   # seeded: reproducible


class Scaling(nn.Module):
    """Doubles its input, in place (``x.mul_(2)``, as some models normalize theirs) or not."""

    def __init__(self, in_place):
        super().__init__()
        self.in_place = in_place
        self.body = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh())

    def forward(self, x):
        return self.body(x.mul_(2) if self.in_place else x * 2)


def test_a_model_that_changes_its_input_in_place_is_measured_and_the_callers_tensor_kept():
    """Each forward pass feeds the model a copy of x^0: the numbers of the out-of-place twin, and the tensor given
    unchanged (the passes would otherwise double it again each time, and autograd refuse the in-place change)."""
    x = torch.randn(4, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    given = x.clone()
    in_place, twin = (measure_model(lambda seed: Scaling(flag).double(), x, seeds=3) for flag in (True, False))
    assert torch.equal(x, given)
    for k, v in twin.raw.items():
        np.testing.assert_array_equal(in_place.raw[k], v, err_msg=k)


class Plain(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, x):
        return self.b(torch.tanh(self.a(x)))


@pytest.mark.parametrize("hidden,depth", [(lambda seed: 8 + 4 * seed, lambda seed: 2),
                                          (lambda seed: 8, lambda seed: 2 + seed)])
def test_a_factory_whose_networks_differ_in_structure_is_refused(hidden, depth):
    """Later networks reuse the first one's shapes (no forward pass of their own to find them): a network of
    other widths or of another depth is caught, not measured with the wrong taps."""
    def factory(seed):
        n, layers = hidden(seed), [nn.Linear(8, hidden(seed)), nn.Tanh()]
        for _ in range(depth(seed) - 1):
            layers += [nn.Linear(n, n), nn.Tanh()]
        return nn.Sequential(*layers, nn.Linear(n, 8)).double()
    with pytest.raises(ValueError, match="the factory's networks differ in structure: seed 1"):
        measure_model(factory, seeds=2)


class Summed(nn.Module):
    """Sums over the batch: its output has no batch axis."""

    def forward(self, x):
        return x.sum(dim=0)


class Paired(nn.Module):
    def forward(self, x):
        return "state", x


def test_observe_by_name_and_errors():
    meas = measure_model(Plain(), observe=["a"], pre=["a"])
    assert meas.depth == 2 and list(meas.pre_layers) == [1]
    with pytest.raises(ValueError, match="no nn.Sequential"):
        measure_model(Plain())
    with pytest.raises(ValueError, match=r"observe names \['c'\]"):
        measure_model(Plain(), observe=["c"])
    with pytest.raises(ValueError, match="no nn.Linear"):
        measure_model(nn.Sequential(nn.Tanh(), nn.Tanh()))
    idle = Plain()
    idle.spare = nn.Linear(8, 8)
    with pytest.raises(ValueError, match=r"observed modules \['spare'\] did not run"):
        measure_model(idle, observe=["a", "spare"])
    with pytest.raises(ValueError, match=r"pre names modules \['spare'\], which did not run in the forward pass"):
        measure_model(idle, observe=["a", "b"], pre=["a", "spare"])
    with pytest.raises(ValueError, match="more than once in"):
        measure_model(Plain(), observe=["a", "b", "a"])
    with pytest.raises(ValueError, match="more than once"):
        shared = nn.Linear(8, 8)
        measure_model(nn.Sequential(shared, nn.Tanh(), shared), observe=["0"])
    with pytest.raises(ValueError, match="at least 2 seeds"):
        measure_model(lambda seed: Plain(), seeds=1)
    with pytest.raises(ValueError, match="seed_batch=0"):
        measure_model(lambda seed: Plain(), seeds=2, observe=["a"], seed_batch=0)
    with pytest.raises(ValueError, match="must return a torch.nn.Module"):
        measure_model(lambda seed: 3, seeds=2)
    with pytest.raises(ValueError, match="batch of at least 2"):
        measure_model(Plain(), torch.randn(1, 8), observe=["a"])
    with pytest.raises(ValueError, match=r"observed module '0' returns a tuple: .* or a tuple or mapping whose "
                                         "first element is one"):
        measure_model(nn.Sequential(Paired()), torch.randn(3, 8), probes=2)
    with pytest.raises(ValueError, match="pre names module '1', which returns a tuple: name modules whose output"):
        measure_model(nn.Sequential(nn.Linear(8, 8), Paired(), nn.Tanh()), torch.randn(3, 8), observe=["0"], pre=["1"])
    with pytest.raises(ValueError, match=r"returns a tensor of shape \(8,\): .* \(batch = 3\)"):
        measure_model(nn.Sequential(nn.Linear(8, 8), Summed()), torch.randn(3, 8), observe=["0"], probes=2)
    norm = lambda seed: nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8), nn.Tanh())
    with pytest.raises(ValueError, match="probes='exact' is not allowed for a batch of 5 inputs through "
                                         "training-mode batchnorm"):
        measure_model(norm, torch.randn(5, 8), probes="exact")
    with pytest.raises(ValueError, match=r"inputs with 16 non-finite value\(s\) are not allowed"):
        measure_model(Plain(), torch.full((2, 8), math.nan), observe=["a"])
    with pytest.raises(ValueError, match="integer inputs \\(token ids\\) are not allowed for Plain without start"):
        measure_model(Plain(), torch.ones(2, 8, dtype=torch.long), observe=["a"])
    with pytest.raises(ValueError, match="width, dtype, device and batch are not allowed for a torch model"):
        measure(Plain(), width=16)
    with pytest.raises(ValueError, match="c0=2"):
        measure_model(Plain(), observe=["a"], c0=2)


class Squeezed(nn.Module):
    """One value per input: a head of width 1 squeezed to [batch]."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh())
        self.head = nn.Linear(8, 1)

    def forward(self, x):
        return self.head(self.body(x)).squeeze(-1)


def test_what_users_get_wrong_is_refused_by_name():
    """A class or a factory without the seed for a factory, the same seed twice, a progress flag for a callback,
    an integer output, inputs the model cannot take: each refused saying what to give, before any measurement."""
    x = torch.randn(4, 8, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"model=Plain is a class: give a module, Plain\(...\), or a factory"):
        measure_model(Plain, seeds=2, observe=["a"])
    with pytest.raises(ValueError, match=r"called with one argument, the seed, and made\(\) cannot be called so; "
                                         r"give lambda seed: made\(\)"):
        def made():
            return Plain()
        measure_model(made, seeds=2, observe=["a"])
    with pytest.raises(ValueError, match=r"seeds=\[3, 3\] is not allowed: a seed given twice is the same network"):
        measure_model(lambda seed: Plain(), seeds=[3, 3], observe=["a"])
    with pytest.raises(ValueError, match="progress=True is not allowed: give a callable"):
        measure_model(lambda seed: Plain(), seeds=2, observe=["a"], progress=True)
    with pytest.raises(ValueError, match=r"returns a tensor of shape \(4,\) and torch.int64: measurement needs a "
                                         "real floating-point tensor"):
        measure_model(nn.Sequential(nn.Linear(8, 8), nn.Tanh(), Argmax()).double(), x, observe=["1"])
    with pytest.raises(ValueError, match=r"Plain's forward pass failed on the inputs \(\[4, 5\] torch.float64\): "
                                         "RuntimeError: mat1 and mat2 shapes cannot be multiplied"):
        measure_model(Plain().double(), torch.randn(4, 5, dtype=torch.float64), observe=["a"])
    assert measure_model(lambda seed: Squeezed().double(), x, seeds=2).depth == 3     # [batch]: one value each


class Argmax(nn.Module):
    def forward(self, x):
        return x.argmax(-1)


def test_an_error_in_sigprops_own_hooks_is_not_worded_as_the_models(monkeypatch):
    """The model's failure on its inputs is a ValueError naming them; an error raised in sigprop's code that the
    forward pass calls (a hook) is sigprop's and propagates as it was raised, in the same forward pass."""
    import sigprop.validate.hooks as hooks

    def broken(tensor, x0):
        raise TypeError("an internal error")
    monkeypatch.setattr(hooks, "_batched", broken)
    with pytest.raises(TypeError, match="an internal error"):
        measure_model(Plain().double(), torch.randn(4, 8, dtype=torch.float64), observe=["a"])
    with pytest.raises(ValueError, match="Plain's forward pass failed on the inputs"):
        measure_model(Plain().double(), torch.randn(4, 5, dtype=torch.float64), observe=["a"])


@pytest.mark.filterwarnings("ignore:`torch.jit.(script|trace|trace_method)` is deprecated:DeprecationWarning")
def test_torchscript_modules_are_refused_by_name():
    """Forward hooks, which read the representations, are not supported on TorchScript modules: the model, or a
    module a hook would read, scripted or traced, is refused with what to give instead; a scripted module that no
    hook reads is measured."""
    net = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh())
    x = torch.randn(4, 8)
    with pytest.raises(ValueError, match="the model is a TorchScript module \\(RecursiveScriptModule, from "
                                         "torch.jit.script or torch.jit.trace\\): .* Give the eager torch.nn.Module"):
        measure_model(torch.jit.script(net), x)
    with pytest.raises(ValueError, match="the model is a TorchScript module \\(TopLevelTracedModule"):
        measure_model(lambda seed: torch.jit.trace(net, x), x, seeds=2)
    inner = nn.Sequential(nn.Linear(8, 8), torch.jit.script(nn.Tanh()), nn.Linear(8, 8), nn.Tanh())
    with pytest.raises(ValueError, match="module '1' is a TorchScript module .* or observe \\(observe=\\[...\\]\\)"):
        measure_model(inner, x, observe=["1", "3"])
    assert measure_model(inner, x, observe=["0", "3"], pre=["2"]).depth == 2
