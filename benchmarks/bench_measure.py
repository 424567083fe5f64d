"""Cost of measurement (printed, not asserted): all-layer measurement against the plain way, on one device.

For ``L*dense(tanh,sw2=2.5,sb2=0.05)`` at each --width, over --seeds networks in --dtype:

- ``measure``: the description path (build each network, two inputs, one backward pass with exact probes that
  reads g^l at every layer, every quantity), with its default batches of seeds (as many as fit in half a GPU's
  free memory; on the CPU 1 GiB of seeds under 64 MiB each; on a GPU the networks of the next seeds are drawn in
  threads meanwhile), and one
  seed at a time (``seed_batch=1``);
- ``measure_model``: the same networks as a user's ``nn.Sequential`` factory (hooks on every block), the networks
  after the first stacked as ``measure`` stacks seeds;
- plain: build the same networks and pull the same probes back to the input only, ``torch.func.vmap`` over
  ``torch.func.vjp`` (what a user would write to get one gradient per probe); for ``measure_model`` the same with
  the networks its factory makes ("plain, factory"), its ratio's denominator.

Medians of --repeats runs after a warm-up run; the ratio is each measurement's time over the plain way's. CUDA timings synchronize
before reading the clock. Memory: the seeds per batch ``measure`` chose, its estimate per seed and, on CUDA, the
peak memory torch held during the default ``measure`` (on the CPU the process's peak resident memory so far).
Then the operations each way dispatches at the smallest --width (counted below autograd and vmap, views
excluded: what the device executes; on a GPU each operation on a device tensor is a kernel launch, so where
launches dominate, the counts predict the times), and the host synchronizations (scalar reads, copies from the
device to the host). Then the effect of float32 on the numbers: the same seeds measured in float32 and in
float64, the largest difference of log GSC(l, L) and of the gradient correlation over layers and seeds, beside
the seed-to-seed standard deviation of each (what the intervals are made of).

Run: python benchmarks/bench_measure.py [--depth 50] [--width 256 1024] [--seeds 10] [--device cpu] [--repeats 3]
"""
import argparse
import resource
import time

import numpy as np
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from sigprop.theory import parse
from sigprop.validate import build, make_inputs, measure, measure_model

ARCH = "{L}*dense(tanh,sw2=2.5,sb2=0.05)"


def sequential(net, width, dtype, device):
    """The factory of nn.Sequential copies of the description's sampled networks."""
    def factory(seed):
        layers = []
        for block in build(net, width, seed, dtype, device).blocks:
            lin = nn.Linear(width, width, dtype=block.weight.dtype, device=device)
            with torch.no_grad():
                lin.weight.copy_(block.weight)
                lin.bias.copy_(block.bias)
            layers += [lin, nn.Tanh()]
        return nn.Sequential(*layers)
    return factory


def described(net, width, dtype, device):
    """The description's sampled networks, each as a function of the input."""
    def make(seed):
        sampled = build(net, width, seed, dtype, device)
        return lambda x: sampled(x)[0]
    return make


def plain(make, width, seeds, dtype, device):
    """Make each network (``make(seed)``: a function of the input), pull the identity probes back to the input
    with vmap over vjp."""
    dt = {"float64": torch.float64, "float32": torch.float32}[dtype]
    total = 0.0
    for seed in range(seeds):
        forward = make(seed)
        x0 = make_inputs(width, 1.0, 0.5, torch.Generator().manual_seed(seed), dt, device)
        out, pull = torch.func.vjp(forward, x0)
        probes = torch.eye(out.shape[1], dtype=dt, device=device)[:, None, :].expand(-1, 2, -1)
        (g,) = torch.func.vmap(pull)(probes)
        total += float((g * g).sum().detach())          # reading the result synchronizes
    return total


class Dispatched(TorchDispatchMode):
    """Counts the operations that reach the kernels (below autograd and vmap), views excluded: on ``device`` (one
    of their tensors is there), on the host otherwise (e.g. weights drawn on a CPU generator for a GPU), and the
    host synchronizations (a scalar read, or a copy from the device to the host)."""

    def __init__(self, device):
        super().__init__()
        self.device = torch.device(device).type
        self.on_device = self.on_host = self.syncs = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not func.is_view:
            where = [t.device.type for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
            made = [t.device.type for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
            if self.device in where + made:
                self.on_device += 1
            else:
                self.on_host += 1
            to_host = self.device != "cpu" and "cpu" in made
            if self.device in where and (func is torch.ops.aten._local_scalar_dense.default or to_host):
                self.syncs += 1
        return out


def dispatched(fn, device):
    """(operations on the device, on the host, host synchronizations) of one run of ``fn``."""
    fn()
    counter = Dispatched(device)
    with counter:
        fn()
    return counter.on_device, counter.on_host, counter.syncs


def timed(fn, device, repeats):
    """Median seconds of ``repeats`` runs after one untimed warm-up run (first calls of torch.func pay set-up)."""
    fn()
    times = []
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depth", type=int, default=50)
    ap.add_argument("--width", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--dtype", default="float64")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    net = parse(ARCH.format(L=args.depth))
    print(f"{net.describe()}, {args.seeds} seeds, {args.dtype} on {args.device}, exact probes; median of "
          f"{args.repeats} runs")
    print(f"{'width':>6s} {'plain (s)':>10s} {'measure (s)':>12s} {'ratio':>6s} {'one seed at a time (s)':>23s} "
          f"{'ratio':>6s} {'plain, factory (s)':>19s} {'measure_model (s)':>18s} {'ratio':>6s} {'seeds/batch':>11s} "
          f"{'MiB/seed':>9s} {'peak MiB':>9s}")
    for width in args.width:
        seeds = args.seeds
        make = described(net, width, args.dtype, args.device)
        t_plain = timed(lambda: plain(make, width, seeds, args.dtype, args.device), args.device, args.repeats)
        runs = []
        t_desc = timed(lambda: runs.append(measure(net, width=width, seeds=seeds, dtype=args.dtype,
                                                   device=args.device)), args.device, args.repeats)
        t_one = timed(lambda: measure(net, width=width, seeds=seeds, dtype=args.dtype, device=args.device,
                                      seed_batch=1), args.device, args.repeats)
        factory = sequential(net, width, args.dtype, args.device)
        t_factory = timed(lambda: plain(factory, width, seeds, args.dtype, args.device), args.device, args.repeats)
        t_model = timed(lambda: measure_model(factory, seeds=seeds), args.device, args.repeats)
        meta = runs[-1].meta
        peak = (meta["peak_memory_bytes"] if "peak_memory_bytes" in meta
                else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
        print(f"{width:6d} {t_plain:10.2f} {t_desc:12.2f} {t_desc / t_plain:6.2f} {t_one:23.2f} "
              f"{t_one / t_plain:6.2f} {t_factory:19.2f} {t_model:18.2f} {t_model / t_factory:6.2f} "
              f"{meta['seeds_per_batch']:11d} "
              f"{meta['bytes_per_seed'] / 2**20:9.0f} {peak / 2**20:9.0f}", flush=True)
    width, seeds, dev = min(args.width), args.seeds, args.device
    make, factory = described(net, width, args.dtype, dev), sequential(net, width, args.dtype, dev)
    print(f"operations dispatched at width {width}, {seeds} seeds (views excluded)")
    print(f"{'way':>22s} {'on ' + dev:>12s} {'on the host':>12s} {'host syncs':>11s}")
    for name, fn in (("plain", lambda: plain(make, width, seeds, args.dtype, dev)),
                     ("measure", lambda: measure(net, width=width, seeds=seeds, dtype=args.dtype, device=dev)),
                     ("one seed at a time", lambda: measure(net, width=width, seeds=seeds, dtype=args.dtype,
                                                            device=dev, seed_batch=1)),
                     ("plain, factory", lambda: plain(factory, width, seeds, args.dtype, dev)),
                     ("measure_model", lambda: measure_model(factory, seeds=seeds))):
        on_device, on_host, syncs = dispatched(fn, dev)
        print(f"{name:>22s} {on_device:12d} {on_host:12d} {syncs:11d}", flush=True)
    print("float32 against float64, the same seeds: largest difference over layers and seeds "
          "(seed-to-seed standard deviation beside it)")
    for width in args.width:
        runs = {dt: measure(net, width=width, seeds=args.seeds, dtype=dt, device=args.device)
                for dt in ("float32", "float64")}
        for name, values in (("log GSC(l, L)", lambda m: m.log_gsc_per_input().mean(axis=2)),
                             ("gradient correlation", lambda m: m.raw["grad_cross"] / np.sqrt(
                                 m.raw["grad_sq"][:, :, 0] * m.raw["grad_sq"][:, :, 1]))):
            lo, hi = values(runs["float32"]), values(runs["float64"])
            print(f"  width {width:5d} {name:22s} max |Δ| {np.max(np.abs(lo - hi)):.2e}   "
                  f"seed-to-seed sd {np.mean(np.std(hi, axis=0, ddof=1)):.2e}")


if __name__ == "__main__":
    main()
