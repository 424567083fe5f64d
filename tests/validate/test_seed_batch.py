"""Seeds measured at once (networks stacked under one vmap, drawn ahead in threads) give what one seed at a time
gives; the batch follows the memory budget."""
import numpy as np
import pytest
import torch

from sigprop.theory import parse
from sigprop.validate import build, measure
from sigprop.validate import seed_batch as sb
from sigprop.validate.measure import measure_seed, seed_inputs
from sigprop.validate.pullback import draw_probes

CASES = [  # (architecture, width, probes, batch): every block kind, exact and Hutchinson probes, a data batch
    ("5*dense(tanh,sw2=2.5,sb2=0.05)", 24, "exact", None),
    ("3*residual(dense(relu,sw2=2),dense(linear),beta=0.5)", 20, 5, None),
    ("3*(dense(linear,sw2=2),layernorm,act(relu))", 16, "exact", None),
    ("3*(dense(linear,sw2=2),batchnorm(batch=8),act(relu))", 16, 4, None),
    ("3*(dense(linear,sw2=2),batchnorm(mode=eval),act(tanh))", 16, "exact", None),
    ("3*dense(relu,weights=looks_linear)", 16, "exact", None),
    ("3*dense(tanh,width=0.5)", 32, "exact", None),
    ("4*dense(erf)", 20, 6, 6),
]


@pytest.mark.parametrize("arch,width,probes,batch", CASES)
def test_stacked_seeds_give_what_one_seed_at_a_time_gives(arch, width, probes, batch):
    """Stacking changes only the order of floating-point sums inside the kernels: agreement to rounding
    (float64, depth <= 5: relative 1e-12 of each array's scale)."""
    net = parse(arch)
    meas = measure(net, width, seeds=[3, 0, 7], probes=probes, batch=batch)
    assert meas.meta["stacked"] and meas.meta["seeds_per_batch"] == 3
    for i, seed in enumerate(meas.seeds):
        ref = measure_seed(net, width, seed, probes=probes, batch=meas.inputs.get("batch", 2))
        for k, v in meas.raw.items():
            scale = np.nanmax(np.abs(ref[k]), initial=1.0)
            np.testing.assert_allclose(v[i], ref[k], rtol=0, atol=1e-12 * scale, err_msg=f"{arch} {k}")
    np.testing.assert_array_equal(meas.pre_layers, ref["pre_layers"])


def test_networks_that_cannot_be_stacked_run_one_seed_at_a_time():
    """Dropout draws its masks from a generator of its own, which vmap refuses: the same results, unstacked."""
    net = parse("3*(dense(relu,sw2=2),dropout(rho=0.8))")
    meas = measure(net, 16, seeds=3)
    assert not meas.meta["stacked"]
    for i in range(3):
        np.testing.assert_array_equal(meas.raw["grad_sq"][i], measure_seed(net, 16, i)["grad_sq"])


def test_batches_of_seeds_follow_the_budget_and_report_progress(monkeypatch):
    net = parse("4*dense(tanh)")
    per_seed = sb.bytes_per_seed(build(net, 16, 0), "exact", 2)
    monkeypatch.setattr(sb, "HOST_BYTES", 2 * per_seed + 1)
    calls = []
    meas = measure(net, 16, seeds=5, progress=lambda: calls.append(1))
    assert meas.meta["seeds_per_batch"] == 2 and len(calls) == 5
    one = measure(net, 16, seeds=5, seed_batch=1)
    assert not one.meta["stacked"]
    for k in meas.raw:
        np.testing.assert_allclose(meas.raw[k], one.raw[k], rtol=1e-12, atol=1e-14)
    monkeypatch.setattr(sb, "HOST_BYTES", 1)
    assert measure(net, 16, seeds=3).meta["seeds_per_batch"] == 1
    assert sb.seeds_per_batch(sb.HOST_STACK_BELOW, "cpu", 10) == 1          # large seeds run alone on a CPU
    with pytest.raises(ValueError, match="seed_batch=0 is not allowed"):
        measure(net, 16, seeds=3, seed_batch=0)
    with pytest.raises(ValueError, match="probes='exact' is not allowed for a batch of 6 inputs through "
                                         "training-mode batchnorm"):
        measure(parse("2*(dense(linear),batchnorm,act(tanh))"), 16, seeds=3, batch=6, probes="exact")


def test_a_batch_that_runs_out_of_memory_is_measured_in_halves(monkeypatch):
    stacked, sizes = sb._stacked, []

    def small_device(nets, *args):
        sizes.append(len(nets))
        if len(nets) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (a device that holds two seeds)")
        return stacked(nets, *args)
    monkeypatch.setattr(sb, "_stacked", small_device)
    net = parse("4*dense(tanh)")
    meas = measure(net, 16, seeds=7)
    assert sizes == [7, 3, 2, 4, 2, 2] and meas.meta["seeds_per_batch"] == 2 and meas.meta["stacked"]
    for i in range(7):
        np.testing.assert_allclose(meas.raw["grad_sq"][i], measure_seed(net, 16, i)["grad_sq"], rtol=1e-12)


def test_the_memory_estimate_covers_the_gradients_and_the_weights():
    """Counted from the shapes of what a measurement holds: g^l for every probe, input and unit of x^0..x^L in
    float64, and the weights twice (the network and its copy in the stack hold them at the same time)."""
    width, depth = 12, 3
    sampled = build(parse(f"{depth}*dense(tanh,width=2)"), width, 0)
    n = [width * 2 ** l for l in range(depth + 1)]          # 12, 24, 48, 96
    gradients = 8 * n[-1] * 2 * sum(n)                        # exact: n_L probes
    weights = 8 * sum(a * b + b for a, b in zip(n, n[1:]))
    assert sb.bytes_per_seed(sampled, "exact", 2) >= gradients + 2 * weights
    assert sb.bytes_per_seed(sampled, 4, 8) >= 8 * 4 * 8 * sum(n) + 2 * weights


def test_a_network_larger_than_the_machine_is_refused_before_any_draw(monkeypatch):
    """Width multipliers compound: 3*dense(relu,width=100) at width 64 has a 64000000 x 640000 weight. Refused
    naming it and the memory, from the shapes alone; a machine of 1 GiB refuses what it cannot hold either."""
    with pytest.raises(ValueError, match=r"one network of 3\*dense\(relu,sw2=1,sb2=0,width=100\) at width 64 needs "
                                         r"about .* GiB to measure \(its largest weight is \[64000000, 640000\]\), "
                                         r"more than the .* GiB of memory of cpu"):
        measure(parse("3*dense(relu,width=100)"), width=64, seeds=2)
    sampled = build(parse("2*dense(tanh)"), 8192, 0, device="meta")
    per_seed = sb.bytes_per_seed(sampled, "exact", 2)
    assert 2 ** 33 < per_seed < 2 ** 34
    for pages, fits in ((2 ** 24, True), (2 ** 18, False)):          # 64 GiB, 1 GiB
        monkeypatch.setattr(sb.os, "sysconf", lambda name, pages=pages: {"SC_PAGE_SIZE": 4096,
                                                                         "SC_PHYS_PAGES": pages}[name])
        if fits:
            sb.check_fits(sampled, per_seed, "cpu")
        else:
            with pytest.raises(ValueError, match=r"more than the 1 GiB of memory of cpu"):
                sb.check_fits(sampled, per_seed, "cpu")


@pytest.mark.parametrize("arch,width,probes,batch", CASES + [("2*dense(tanh,weights=orthogonal,width=0.5)", 16, 3, 4)])
def test_the_estimate_needs_no_drawn_network(arch, width, probes, batch):
    """measure_seeds estimates from the network built on the meta device (its shapes, nothing drawn), so the
    first batch's networks can all be drawn at once: the estimate is the drawn network's."""
    net, batch = parse(arch), batch or 2
    assert sb.bytes_per_seed(build(net, width, 0, device="meta"), probes, batch) == \
        sb.bytes_per_seed(build(net, width, 0), probes, batch)


def test_networks_drawn_ahead_are_the_networks_of_their_seeds():
    net = parse("2*residual(dense(relu,sw2=2),dense(linear))")
    drawn = list(sb.drawn_networks(net, 8, [5, 1, 4, 2], "float64", "cpu", ahead=2, workers=2))
    for seed, sampled in zip([5, 1, 4, 2], drawn):
        ref = build(net, 8, seed)
        assert all(torch.equal(a, b) for a, b in zip(sampled.parameters(), ref.parameters()))
    stream = sb.drawn_networks(net, 8, range(50), "float64", "cpu", ahead=3)
    next(stream)
    stream.close()                                            # stops drawing: the pending networks are cancelled


def test_the_operations_of_a_measurement_do_not_grow_with_probes_or_width(dispatched):
    """The probes are pulled back under one vmap with a batching rule for every operation: a per-probe fallback (as
    autograd's legacy batched gradients take for tanh's backward) would launch kernels per probe on a GPU."""
    net = parse("6*dense(tanh,sw2=2.5,sb2=0.05)")
    counts = {(width, probes): dispatched(lambda: measure(net, width=width, seeds=4, probes=probes))
              for width, probes in ((8, "exact"), (16, "exact"), (16, 2), (16, 12))}
    assert len(set(counts.values())) == 1, counts
    batch = {probes: dispatched(lambda: measure(net, width=16, seeds=4, probes=probes, batch=6)) for probes in (2, 12)}
    assert batch[2] == batch[12], batch


def test_stacked_seeds_share_one_measurement_and_add_only_their_own_draws(dispatched):
    """Beyond drawing each seed's weights, inputs and probes, a batch of stacked seeds dispatches the operations of
    one measurement, whatever its size; one seed at a time repeats them per seed."""
    net, width = parse("6*dense(tanh,sw2=2.5,sb2=0.05)"), 16

    def draw_one():
        x0, gen = seed_inputs(width, 3, 1.0, 0.5, 2, torch.float64, "cpu")
        return build(net, width, seed=3), x0, draw_probes("exact", 2, width, gen, torch.float64, "cpu", False)
    draw = dispatched(draw_one)
    stacked = {s: dispatched(lambda: measure(net, width=width, seeds=s, seed_batch=s)) - s * draw for s in (2, 8)}
    assert stacked[2] == stacked[8], stacked
    alone = {s: dispatched(lambda: measure(net, width=width, seeds=s, seed_batch=1)) - s * draw for s in (2, 8)}
    assert alone[8] - alone[2] >= 6 * stacked[2] / 2, (alone, stacked)
