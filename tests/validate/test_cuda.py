"""On a CUDA device: the same seed is the same network and gives the same numbers as on the CPU, seeds (and a
factory's networks) are stacked, peak memory is reported, and a user's factory leaves every device's random state
as found. Skipped without CUDA (the checks to run first on a GPU machine: ``pytest tests/validate/test_cuda.py``)."""
import numpy as np
import pytest
import torch
from torch import nn

from sigprop.cli import main
from sigprop.theory import parse
from sigprop.validate import build, measure, measure_model
from sigprop.validate import seed_batch as sb

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

CASES = [  # every block kind, exact and Hutchinson probes, a data batch, a network that cannot be stacked
    ("5*dense(tanh,sw2=2.5,sb2=0.05)", "exact", None),
    ("3*residual(dense(relu,sw2=2),dense(linear),beta=0.5)", 5, None),
    ("3*(dense(linear,sw2=2),layernorm,act(relu))", "exact", None),
    ("3*(dense(linear,sw2=2),batchnorm(batch=8),act(relu))", 4, None),
    ("3*dense(relu,weights=looks_linear)", "exact", None),
    ("4*dense(erf)", 6, 6),
    ("3*(dense(relu,sw2=2),dropout(rho=0.8))", "exact", None),
]


@pytest.mark.parametrize("arch,probes,batch", CASES)
def test_a_seed_measures_the_same_on_the_gpu_as_on_the_cpu(arch, probes, batch):
    """Weights, inputs and probes are drawn on each seed's CPU generator in float64, so only the kernels' order of
    floating-point sums differs between the devices: agreement to float64 rounding (depth <= 5, relative 1e-10 of
    each array's scale)."""
    net = parse(arch)
    cpu = measure(net, 24, seeds=3, probes=probes, batch=batch)
    gpu = measure(net, 24, seeds=3, probes=probes, batch=batch, device="cuda")
    assert gpu.device.startswith("cuda") and gpu.meta["peak_memory_bytes"] > 0
    assert gpu.meta["stacked"] == ("dropout" not in arch) and gpu.meta["seeds_per_batch"] == (
        1 if "dropout" in arch else 3)
    for k, v in cpu.raw.items():
        scale = np.nanmax(np.abs(v), initial=1.0)
        np.testing.assert_allclose(gpu.raw[k], v, rtol=0, atol=1e-10 * scale, err_msg=f"{arch} {k}")


def test_float32_on_the_gpu_stays_near_float64():
    """float32 rounding (2^-24 relative) over 10 layers and a 32-unit pull-back: log GSC within 1e-4."""
    net = parse("10*dense(tanh,sw2=2.5,sb2=0.05)")
    lo = measure(net, 32, seeds=3, dtype="float32", device="cuda")
    hi = measure(net, 32, seeds=3, device="cuda")
    assert lo.dtype == "float32"
    np.testing.assert_allclose(lo.log_gsc_per_input(), hi.log_gsc_per_input(), rtol=0, atol=1e-4)


def test_networks_drawn_ahead_on_the_gpu_are_the_networks_of_their_seeds():
    net = parse("2*residual(dense(relu,sw2=2),dense(linear))")
    drawn = list(sb.drawn_networks(net, 8, [5, 1, 4, 2], "float64", "cuda", ahead=2))
    for seed, sampled in zip([5, 1, 4, 2], drawn):
        assert all(a.is_cuda and torch.equal(a.cpu(), b) for a, b in zip(sampled.parameters(),
                                                                           build(net, 8, seed).parameters()))


def test_a_factory_on_the_gpu_measures_as_on_the_cpu_and_leaves_every_random_state():
    def on(device):
        def factory(seed):                  # torch's default init on the CPU, then moved: the same weights
            layers = [m for _ in range(4) for m in (nn.Linear(16, 16), nn.Tanh())]
            return nn.Sequential(*layers).to(device=device, dtype=torch.float64)
        return factory

    cpu, gpu = measure_model(on("cpu"), seeds=3), measure_model(on("cuda"), seeds=3)
    assert gpu.device.startswith("cuda") and gpu.meta["stacked"] and gpu.meta["peak_memory_bytes"] > 0
    for k, v in cpu.raw.items():
        np.testing.assert_allclose(gpu.raw[k], v, rtol=1e-10, atol=1e-12, err_msg=k)

    def drawn_on_the_gpu(seed):             # init and dropout draw from the CUDA generator
        return nn.Sequential(nn.Linear(16, 16, device="cuda"), nn.Tanh(), nn.Dropout(0.1), nn.Linear(16, 16,
                             device="cuda"), nn.Tanh())
    states = torch.get_rng_state(), torch.cuda.get_rng_state()
    first = measure_model(drawn_on_the_gpu, seeds=2)
    assert torch.equal(states[0], torch.get_rng_state()) and torch.equal(states[1], torch.cuda.get_rng_state())
    np.testing.assert_array_equal(measure_model(drawn_on_the_gpu, seeds=2).raw["grad_sq"], first.raw["grad_sq"])


def test_the_command_line_reports_the_gpus_peak_memory(capsys, tmp_path):
    assert main(["measure", "5*dense(tanh)", "--width", "16", "--seeds", "4", "--device", "cuda", "--no-progress",
                 "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "measured 4 networks in" in out and "on cuda" in out and "peak memory" in out


@pytest.mark.parametrize("masked", [False, True])
def test_a_language_model_fed_token_ids_measures_on_the_gpu_as_on_the_cpu(masked):
    """Token and position embeddings, an attention layer (its math implementation on either device) and a head:
    x^0 the token embedding's output; the same weights on both devices give the same numbers to float64 rounding.
    Masked: ids and a padding mask by keyword, both moved to the model's device."""
    class LM(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok, self.pos = nn.Embedding(40, 16), nn.Parameter(0.1 * torch.randn(6, 16))
            self.layers = nn.ModuleList([nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
                                         for _ in range(2)])
            self.head = nn.Linear(16, 40)

        def forward(self, ids, padding=None):
            x = self.tok(ids) + self.pos
            for layer in self.layers:
                x = layer(x, src_key_padding_mask=padding)
            return self.head(x)

    ids = torch.randint(40, (4, 6), generator=torch.Generator().manual_seed(0))
    feed = {"ids": ids, "padding": torch.arange(6) >= torch.tensor([[6], [4], [5], [3]])} if masked else ids
    cpu, gpu = (measure_model(lambda seed, d=d: LM().to(device=d, dtype=torch.float64), feed, seeds=3)
                for d in ("cpu", "cuda"))
    assert gpu.device.startswith("cuda") and gpu.meta["start"] == "tok" and gpu.meta["observe"] == cpu.meta["observe"]
    for k, v in cpu.raw.items():
        np.testing.assert_allclose(gpu.raw[k], v, rtol=1e-10, atol=1e-12, err_msg=k)
