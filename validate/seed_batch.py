"""Measure many seeds of a description at once: networks drawn ahead in threads, stacked, measured under one vmap.

Each seed's network is drawn from its own CPU generator exactly as :func:`sigprop.validate.build` draws it, so a
seed gives the same network alone or in a batch, on every device. When the measurement runs on a GPU, a pool of
threads draws the networks of the seeds ahead while the GPU computes (drawing is serial within a generator, so
parallel over seeds; on the CPU the draws would only compete with the computation, so they run in turn). The
networks of a batch of seeds are stacked (``torch.func.stack_module_state``) and :func:`raw_tensors` runs once
under ``torch.func.vmap`` over the stack: one set of kernels for the whole batch instead of one per seed, which is
what a GPU needs at the widths of signal-propagation experiments. A batch holds as many seeds as fit in the memory
budget (:func:`seeds_per_batch`); networks that cannot be stacked (a dropout block draws its masks from a
generator of its own) are measured one seed at a time, with the same results.

Example
-------
>>> from sigprop.theory import parse
>>> from sigprop.validate.seed_batch import measure_seeds
>>> raws, info = measure_seeds(parse("3*dense(tanh)"), width=16, seeds=[0, 1, 2])
>>> len(raws), raws[0]["grad_sq"].shape, info["seeds_per_batch"]
(3, (4, 2), 3)
"""
from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from itertools import islice

import numpy as np
import torch

from ..checks import check_positive_int
from ..theory import as_network
from ..theory.blocks.batchnorm import training_batchnorms
from .build import build, resolve_placement
from .measure import seed_inputs
from .modules import output_width
from .pullback import check_batch_probes, check_probes, draw_stacked, raw_arrays, raw_tensors, to_host

#: the share of a GPU's free memory, and the bytes on other devices, that one batch of seeds may use
GPU_SHARE = 0.5
HOST_BYTES = 2 ** 30
#: off a GPU, seeds are stacked only where one takes less memory than this: below it each kernel's overhead
#: dominates and stacking pays (2x at width 32, depth 50, on 2 cores), above it the arithmetic does and stacking
#: only adds memory traffic (5-10% slower at width 256, depth 50: 177 MiB per seed)
HOST_STACK_BELOW = 64 * 2 ** 20
#: what a device raises when it runs out of memory (torch.OutOfMemoryError; older torch has only CUDA's)
OUT_OF_MEMORY = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


def bytes_per_seed(sampled, probes, batch: int) -> int:
    """An upper estimate of the memory one seed takes while measured: its weights three times (the network, its
    copy in the stack, the network of a seed drawn ahead) and, in float64, the probes pulled back to every
    representation x^0..x^L twice over (the gradients, and the pull-back's own products or their float64 copies
    or the stack of small layers the statistics reduce)."""
    n_out = sampled.n_out
    units, n = sampled.width, sampled.width
    for block in sampled.blocks:
        n = output_width(block, n)
        units += n
    return memory_per_seed(sampled, units, n_out if check_probes(probes, n_out) == "exact" else probes, batch)


def memory_per_seed(net, units: int, n_probes: int, batch: int) -> int:
    """:func:`bytes_per_seed` of a network ``net`` (its parameters and buffers) whose representations x^0..x^L
    hold ``units`` numbers per input, pulled back by ``n_probes`` probes for each of ``batch`` inputs."""
    weights = sum(t.numel() * t.element_size() for t in (*net.parameters(), *net.buffers()))
    return 3 * weights + 2 * 8 * n_probes * batch * units


def check_fits(sampled, per_seed: int, device) -> None:
    """Raise a ValueError where one seed's estimated memory (:func:`bytes_per_seed`) exceeds all the memory of
    ``device`` (a CUDA device's, else the host's physical memory): a width multiplier that compounds (``3*dense(relu,
    width=100)``) asks for more than any machine holds, which the allocator would refuse deep inside torch."""
    dev = torch.device(device)
    if dev.type == "cuda":
        total = torch.cuda.mem_get_info(dev)[1]
    else:
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):    # no sysconf (Windows): let the allocator say it
            return
    if per_seed > total:
        widest = max(sampled.parameters(), key=lambda t: t.numel())
        raise ValueError(f"one network of {sampled.description} at width {sampled.width} needs about "
                         f"{per_seed / 2**30:.3g} GiB to measure (its largest weight is {list(widest.shape)}), more "
                         f"than the {total / 2**30:.3g} GiB of memory of {dev}: use a smaller width or width "
                         "multiplier")


def seeds_per_batch(per_seed: int, device, n_seeds: int) -> int:
    """How many seeds one batch holds: those whose estimated memory fits in the budget (:data:`GPU_SHARE` of the
    free memory of a CUDA device, :data:`HOST_BYTES` elsewhere, where a seed of :data:`HOST_STACK_BELOW` or more
    runs alone), at least one and at most ``n_seeds``."""
    dev = torch.device(device)
    if dev.type != "cuda" and per_seed >= HOST_STACK_BELOW:
        return 1
    budget = GPU_SHARE * torch.cuda.mem_get_info(dev)[0] if dev.type == "cuda" else HOST_BYTES
    return int(max(1, min(n_seeds, budget // max(per_seed, 1))))


def drawn_networks(network, width: int, seeds, dtype, device, ahead: int, workers: int | None = None):
    """The sampled networks of ``seeds`` in order, each drawn as :func:`build` draws it by a pool of ``workers``
    threads (default: one per CPU core, at most one per seed) that keeps ``ahead`` networks drawn in advance;
    ``workers=0``: drawn in the calling thread when asked for."""
    seeds = list(seeds)
    if workers == 0:
        yield from (build(network, width, s, dtype, device) for s in seeds)
        return
    workers = workers or max(1, min(os.cpu_count() or 1, len(seeds)))
    with ThreadPoolExecutor(workers) as pool:
        upcoming = iter(seeds)
        pending = deque(pool.submit(build, network, width, s, dtype, device) for s in islice(upcoming, ahead))
        try:
            while pending:
                yield pending.popleft().result()
                s = next(upcoming, None)
                if s is not None:
                    pending.append(pool.submit(build, network, width, s, dtype, device))
        finally:
            for future in pending:
                future.cancel()


def measure_seeds(network, width: int, seeds, q0=1.0, c0=0.5, probes="exact", dtype="float64", device="cpu",
                  batch: int = 2, seed_batch: int | None = None, progress=None) -> tuple[list, dict]:
    """The raw arrays of :func:`sigprop.validate.measure.measure_seed` for each seed, and ``info``:
    ``seeds_per_batch`` (``seed_batch`` if given, else from the memory budget), ``bytes_per_seed`` (the estimate),
    ``stacked`` (whether the networks could be stacked) and, on a CUDA device, ``peak_memory_bytes`` (the most
    memory torch held on it during the measurement). ``progress``: called after each seed."""
    net = as_network(network)
    seeds = list(seeds)
    dt, dev = resolve_placement(dtype, device)
    if dev.type == "cuda" and dev.index is None:        # the drawing threads' current device need not be this one's
        dev = torch.device("cuda", torch.cuda.current_device())
    if seed_batch is not None:
        check_positive_int("seed_batch", seed_batch)
    coupled = bool(training_batchnorms(net.blocks))
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    shape = build(net, width, seeds[0], dtype, "meta")      # the estimate needs shapes only: nothing drawn yet
    check_batch_probes(probes, batch, coupled)
    per_seed = bytes_per_seed(shape, probes, batch)
    check_fits(shape, per_seed, dev)
    chunk = seed_batch or seeds_per_batch(per_seed, dev, len(seeds))
    info = {"seeds_per_batch": min(chunk, len(seeds)), "bytes_per_seed": per_seed, "stacked": chunk > 1}
    # threads draw ahead while another device computes, the first batch's networks at once; on the CPU they would
    # only compete with the computation
    networks = drawn_networks(net, width, seeds, dtype, dev, ahead=chunk, workers=0 if dev.type == "cpu" else None)

    def stacked(nets, seeds_):
        return _stacked(nets, width, seeds_, q0, c0, probes, dt, dev, batch, coupled)

    def single(net_, seed):
        x0, gen = seed_inputs(width, seed, q0, c0, batch, dt, dev)
        return raw_arrays(net_, x0, probes, gen, coupled)
    raws = []
    try:
        for start in range(0, len(seeds), chunk):
            group = seeds[start:start + chunk]
            raws += measure_group([next(networks) for _ in group], group, stacked, single, info, dev)
            if progress is not None:
                for _ in group:
                    progress()
    finally:
        networks.close()
    if dev.type == "cuda":
        info["peak_memory_bytes"] = int(torch.cuda.max_memory_allocated(dev))
    return raws, info


def measure_group(nets, seeds, stacked, single, info: dict, device) -> list:
    """The raw arrays of a group of networks and their seeds: ``stacked(nets, seeds)`` measures them under one vmap;
    in halves where the device runs out of memory (``info["seeds_per_batch"]`` then records the smaller batch);
    ``single(net, seed)`` one at a time where they cannot be stacked (``stacked`` raised a RuntimeError;
    ``info["stacked"]`` then turns False and ``info["seeds_per_batch"]`` 1 for the rest of the run)."""
    if len(nets) > 1 and info["stacked"]:
        try:
            return stacked(nets, seeds)
        except OUT_OF_MEMORY:                 # the estimate fell short: the memory is freed on the way out
            if torch.device(device).type == "cuda":
                torch.cuda.empty_cache()
            half = len(nets) // 2
            info["seeds_per_batch"] = min(info["seeds_per_batch"], len(nets) - half)
            return (measure_group(nets[:half], seeds[:half], stacked, single, info, device)
                    + measure_group(nets[half:], seeds[half:], stacked, single, info, device))
        except RuntimeError:                  # e.g. a random op inside the forward pass (dropout's masks)
            info["stacked"], info["seeds_per_batch"] = False, 1
    return [single(net, seed) for net, seed in zip(nets, seeds)]


def _stacked(nets, width, seeds, q0, c0, probes, dt, dev, batch, coupled) -> list:
    """raw_tensors of every network at once: their parameters stacked, vmap over the stack, the inputs and probes
    of each seed (drawn as for one seed) beside its network; exact probes, the same for all, are not copied."""
    x0, gens = zip(*(seed_inputs(width, seed, q0, c0, batch, dt, dev) for seed in seeds))
    v, w, norm, v_dim = draw_stacked(probes, batch, nets[0].n_out, gens, dt, dev, coupled)
    params, buffers = torch.func.stack_module_state(list(nets))
    params = {k: p.detach() for k, p in params.items()}
    template, x0 = nets[0], torch.stack(x0)
    layers = []

    def one(p, b, x, v_, w_):
        def forward(x, taps):
            out, trace = torch.func.functional_call(template, (p, b), (x, taps))
            layers[:] = trace.pre_layers
            return out, trace
        return raw_tensors(forward, x, v_, w_, norm)
    raw = to_host(torch.func.vmap(one, in_dims=(0, 0, 0, v_dim, None if w is None else 0))(
        params, buffers, x0, v, w))
    pre_layers = np.array(layers, dtype=int)
    return [{**{k: a[i] for k, a in raw.items()}, "pre_layers": pre_layers} for i in range(len(nets))]
