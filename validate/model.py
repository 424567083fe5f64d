"""Measure a user's own PyTorch model: the quantities sigprop predicts, on any ``torch.nn.Module``.

:func:`measure_model` takes a module (one network) or a factory ``seed -> module`` (independent networks, so the
results carry 95% intervals over seeds). It observes representations x^1..x^L at module outputs and records,
exactly as :func:`sigprop.validate.measure` does for a description: p, m of every representation, q, c of the
pre-activations, ‖∂x^L/∂x^l‖_F (GSC(l, L) = ‖J‖_qm ‖x^l‖/‖x^L‖, Philipp, Song & Carbonell 2018) and the gradient
correlation across inputs (Balduzzi et al. 2017), with one backward pass that reads every layer. Fed a data batch
of B > 2 inputs, it also records each unit's pre-activation standard deviation over the data and its sign
diversity min(P(h > 0), P(h < 0)) over the data (Philipp et al.'s collapsing-domain measures).

Which representations (``observe``): module names from ``model.named_modules()``, or by default the block
boundaries: the children of the model's outermost ``nn.Sequential`` containers (nested ``nn.Sequential``
children flattened; a ``Linear``/``Conv`` child immediately followed by an elementwise activation child forms one
block with it, as ``dense`` does). A residual block written as its own module class is one child, so its output
is a boundary. x^0 is the input and x^L the model's output.

Which pre-activations (``pre``): module names whose outputs are pre-activations, or by default the input of the
last elementwise activation module (``nn.ReLU``, ``nn.Tanh``, …) that runs within each observed block.

Inputs: a tensor [B, ...] (B >= 2; every seed sees the same inputs), or by default two inputs with mean square
q0 and correlation c0 made exactly as for a description (the input width read from the first ``nn.Linear``).

The model is left as found: hooks removed, its training/eval mode, its parameters' ``.grad`` and its buffers
(batchnorm's running statistics) as they were, and no global random state consumed (a factory runs under a forked
torch random state, the CPU's and every CUDA device's, seeded with its seed).

Example
-------
>>> import torch
>>> from torch import nn
>>> from sigprop.validate import measure_model
>>> def factory(seed):
...     return nn.Sequential(*[m for _ in range(4) for m in (nn.Linear(32, 32), nn.Tanh())])
>>> meas = measure_model(factory, seeds=3)
>>> meas.depth, meas.pre_layers.tolist()
(4, [1, 2, 3, 4])
>>> meas.summary()["log_gsc"]["mean"].shape
(5,)
"""
from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..checks import check_inputs, check_positive_int
from .build import Trace
from .measure import Measurement, check_probes, make_inputs, raw_arrays

#: elementwise activation modules: the input of one is a pre-activation
ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.CELU, nn.SELU, nn.GELU, nn.SiLU,
               nn.Mish, nn.Tanh, nn.Sigmoid, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus, nn.Softsign,
               nn.Tanhshrink, nn.LogSigmoid, nn.Threshold, nn.Hardshrink, nn.Softshrink)
#: modules that start a block which a following activation closes (as ``dense`` does)
LINEAR = (nn.Linear, nn.Bilinear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def measure_model(model, inputs=None, *, observe=None, pre=None, seeds=10, q0: float = 1.0, c0: float = 0.5,
                  probes="exact", progress=None) -> Measurement:
    """Measure a module (one network; ``seeds`` is ignored) or a factory ``seed -> module`` over ``seeds`` (an int
    n -> seeds 0..n-1, or a list of at least 2 seeds). See the module docstring for ``observe``, ``pre`` and
    ``inputs``; ``probes``: 'exact' or a number of Hutchinson probes as in :func:`sigprop.validate.measure`.

    Returns a :class:`~sigprop.validate.Measurement` (``architecture`` names the model's class, ``meta`` the
    observed and pre-activation module names); with a data batch of B > 2 inputs its ``raw`` also holds
    ``unit_std`` and ``sign_diversity`` [seed, pre-activation layer, unit].
    """
    factory, seed_list = _networks(model, seeds)
    batch = _check_inputs(inputs, q0, c0)
    if probes != "exact" and (isinstance(probes, bool) or not isinstance(probes, int) or probes < 1):
        raise ValueError(f"probes={probes!r} is not allowed: use 'exact' or an integer >= 1 (Hutchinson probes)")
    if batch > 2 and probes == "exact":
        raise ValueError(f"probes='exact' is not allowed for a batch of {batch} inputs: give a number of probes, "
                         "e.g. probes=8")
    start = time.perf_counter()
    per_seed, names, shapes = [], None, None
    for seed in seed_list:
        net = factory(seed)
        result, observed, shapes = _measure_network(net, seed, inputs, observe, pre, q0, c0, probes, shapes)
        if names is not None and observed != names:
            raise ValueError(f"the factory's networks differ in structure: seed {seed_list[0]} observes "
                             f"{names['observe']}, seed {seed} observes {observed['observe']}")
        names = observed
        per_seed.append(result)
        if progress is not None:
            progress()
    keys = [k for k in per_seed[0] if k != "pre_layers"]
    raw = {k: np.stack([r[k] for r in per_seed]) for k in keys}
    record = {"batch": batch} if inputs is not None else {"q0": q0, "c0": c0, "m0": 0.0}
    return Measurement(
        architecture=names["architecture"], width=int(raw["n"][0, 0]), seeds=seed_list, inputs=record,
        probes=check_probes(probes, int(raw["n"][0, -1])), dtype=names["dtype"], device=names["device"],
        pre_layers=per_seed[0]["pre_layers"], raw=raw,
        meta={"observe": names["observe"], "pre": names["pre"], "sigprop_version": __version__,
              "torch_version": torch.__version__, "seconds": time.perf_counter() - start})


def _networks(model, seeds):
    """(seed -> module, the seeds) for a module or a factory."""
    if isinstance(model, nn.Module):
        return (lambda seed: model), [0]
    if not callable(model):
        raise ValueError(f"model={model!r} is not allowed: give a torch.nn.Module or a factory seed -> module")
    if isinstance(seeds, bool) or not isinstance(seeds, (int, list, tuple, range)):
        raise ValueError(f"seeds={seeds!r} is not allowed: give a number of seeds or a list of seeds")
    seed_list = list(range(check_positive_int("seeds", seeds))) if isinstance(seeds, int) else list(seeds)
    if len(seed_list) < 2:
        raise ValueError(f"seeds={seeds!r} is not allowed: intervals need at least 2 seeds")

    def factory(seed):
        with torch.random.fork_rng(devices=_cuda_devices()):     # torch.manual_seed seeds every CUDA device too
            torch.manual_seed(seed)
            net = model(seed)
        if not isinstance(net, nn.Module):
            raise ValueError(f"the factory returned {type(net).__name__} for seed {seed}: it must return a "
                             "torch.nn.Module")
        return net
    return factory, seed_list


def _cuda_devices() -> list:
    """Every CUDA device, whose random state a seeded factory must leave as found (none without CUDA)."""
    return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []


def _check_inputs(inputs, q0, c0) -> int:
    """The batch size the model sees (2 for made inputs)."""
    if inputs is None:
        check_inputs(q0, c0)
        return 2
    if not isinstance(inputs, torch.Tensor):
        raise ValueError(f"inputs of type {type(inputs).__name__} are not allowed: give a torch.Tensor [batch, ...]")
    if inputs.dim() < 2 or inputs.shape[0] < 2:
        raise ValueError(f"inputs of shape {tuple(inputs.shape)} are not allowed: give a batch of at least 2 inputs "
                         "as a tensor [batch, ...]")
    if not torch.is_floating_point(inputs) or not bool(torch.isfinite(inputs).all()):
        raise ValueError("inputs are not allowed: they must be finite floating-point values")
    return inputs.shape[0]


def _measure_network(net, seed, inputs, observe, pre, q0, c0, probes, shapes=None):
    """(raw arrays, names, shapes) of one network; ``shapes``: the shapes of a network of the factory measured
    before (a Trace of zero-stride tensors), which spare this one the forward pass that finds them."""
    params = next(iter(net.parameters()), None)
    dtype = params.dtype if params is not None else torch.float64
    device = params.device if params is not None else torch.device("cpu")
    gen = torch.Generator().manual_seed(10_000_019 + seed)
    if inputs is None:
        x0 = make_inputs(_input_width(net), q0, c0, gen, dtype, device)
    else:
        x0 = inputs.detach().to(device=device, dtype=dtype)
    blocks = _observed(net, observe)
    pre_modules = _pre_modules(net, pre)
    buffers = [(b, b.detach().clone()) for b in net.buffers()]     # batchnorm's running statistics, e.g.
    fired, seen = [], []

    def forward(x, taps):
        trace, out, names = _traced_forward(net, x, blocks, pre_modules, pre is None, taps)
        fired[:], seen[:] = names, [_structure(trace)]
        return out, trace
    try:
        coupled = any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training for m in net.modules())
        if shapes is None:
            with torch.no_grad():
                _, trace0 = forward(x0, None)
            shapes = Trace([x.new_zeros(()).expand(x.shape) for x in trace0.xs], [], trace0.pre_layers)
        try:
            raw = raw_arrays(forward, x0, probes, gen, coupled, shapes)
        except Exception:
            _check_structure(seen, shapes, seed)
            raise
        _check_structure(seen, shapes, seed)
    finally:                                    # after the backward pass, which reads them
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)
    names = {"architecture": type(net).__name__, "observe": fired,
             "pre": [n for n, _ in pre_modules] if pre is not None else "auto", "dtype": str(dtype).split(".")[-1],
             "device": str(device)}
    return raw, names, shapes


def _structure(trace) -> tuple:
    """The shapes of a trace's representations and its pre-activation layers."""
    return [tuple(x.shape) for x in trace.xs], list(trace.pre_layers)


def _check_structure(seen, shapes, seed):
    """A network measured with the shapes of another must have them: else its factory's networks differ."""
    if seen and seen[0] != _structure(shapes):
        raise ValueError(f"the factory's networks differ in structure: seed {seed} has representations of shapes "
                         f"{seen[0][0]} (pre-activations at layers {seen[0][1]}) where the first network has "
                         f"{_structure(shapes)[0]} (at layers {_structure(shapes)[1]})")


def _input_width(net) -> int:
    for module in net.modules():
        if isinstance(module, nn.Linear):
            return module.in_features
    raise ValueError(f"{type(net).__name__} has no nn.Linear to read its input width from: give inputs (a tensor "
                     "[batch, ...])")


def _observed(net, observe) -> list:
    """[(name, module)] whose outputs are the representations x^1.. (in the order given or found)."""
    modules = dict(net.named_modules())
    if observe is not None:
        if isinstance(observe, str) or not len(observe):
            raise ValueError(f"observe={observe!r} is not allowed: give a list of module names, e.g. ['0', '2']")
        missing = [n for n in observe if n not in modules or n == ""]
        if missing:
            raise ValueError(f"observe names {missing} that are not modules of {type(net).__name__}; its modules: "
                             f"{[n for n in modules if n][:20]}")
        twice = sorted({n for n in observe if list(observe).count(n) > 1})
        if twice:
            raise ValueError(f"observe names {twice} more than once in {list(observe)}")
        return [(n, modules[n]) for n in observe]
    found = []
    for name, module in net.named_modules():
        if isinstance(module, nn.Sequential) and not any(name.startswith(o + ".") or o == "" for o, _ in found):
            found.append((name, module))
    if not found:
        raise ValueError(f"{type(net).__name__} holds no nn.Sequential to find block boundaries in: name the "
                         "modules whose outputs to observe (observe=[...], see model.named_modules())")
    blocks = []
    for name, seq in found:
        blocks.extend(_boundaries(seq, name))
    return blocks


def _boundaries(seq, prefix) -> list:
    """The children of a Sequential whose outputs end blocks (nested Sequentials flattened; Linear/Conv followed
    by an activation ends at the activation)."""
    children = []
    for name, child in seq.named_children():
        full = f"{prefix}.{name}" if prefix else name
        if isinstance(child, nn.Sequential):
            children.extend(_boundaries(child, full))
        else:
            children.append((full, child))
    return [(n, m) for i, (n, m) in enumerate(children)
            if not (isinstance(m, LINEAR) and i + 1 < len(children) and isinstance(children[i + 1][1], ACTIVATIONS))]


def _pre_modules(net, pre) -> list:
    """[(name, module)] whose outputs are pre-activations (given), or the activation modules (their inputs are)."""
    modules = dict(net.named_modules())
    if pre is None:
        return [(n, m) for n, m in modules.items() if isinstance(m, ACTIVATIONS)]
    if isinstance(pre, str):
        raise ValueError(f"pre={pre!r} is not allowed: give a list of module names")
    missing = [n for n in pre if n not in modules or n == ""]
    if missing:
        raise ValueError(f"pre names {missing} that are not modules of {type(net).__name__}")
    return [(n, modules[n]) for n in pre]


def _traced_forward(net, x0, blocks, pre_modules, pre_is_input, taps=None):
    """Run the model once with hooks; the Trace (representations, the last pre-activation within each observed
    block), the output and the observed modules in the order they ran. Captured tensors are passed on as clones
    (or with ``taps[l − 1]`` added to x^l), so a later in-place operation (ReLU(inplace), ``out += identity``)
    cannot change them."""
    xs, pres, pending, layers, hooks, fired = [x0], [], [None], [], [], []
    where = {id(m): n for n, m in blocks}

    def on_block(module, args, output):
        name = where[id(module)]
        if not isinstance(output, torch.Tensor) or output.dim() < 1 or output.shape[0] != x0.shape[0]:
            raise ValueError(f"observed module {name!r} returns {type(output).__name__} "
                             f"{tuple(getattr(output, 'shape', ()))}: observe modules that return a tensor "
                             f"[batch, ...] (batch = {x0.shape[0]})")
        if name in fired:
            raise ValueError(f"observed module {name!r} runs more than once per forward pass: observe modules that "
                             "run once")
        fired.append(name)
        xs.append(output)
        if pending[0] is not None:
            pres.append(pending[0])
            layers.append(len(xs) - 1)
            pending[0] = None
        k = len(fired) - 1
        return output + taps[k] if taps is not None and k < len(taps) else output.clone()

    def on_pre_input(module, args):
        if args and isinstance(args[0], torch.Tensor) and args[0].shape[:1] == x0.shape[:1]:
            pending[0] = args[0]
            return (args[0].clone(),) + tuple(args[1:])

    def on_pre_output(module, args, output):
        pending[0] = output
        return output.clone()

    try:
        for _, m in pre_modules:          # first: a module's own output as pre-activation belongs to its layer
            hooks.append(m.register_forward_pre_hook(on_pre_input) if pre_is_input else
                         m.register_forward_hook(on_pre_output))
        for _, m in blocks:
            hooks.append(m.register_forward_hook(on_block))
        with torch.enable_grad(), torch.random.fork_rng(devices=[x0.device] if x0.device.type == "cuda" else []):
            out = net(x0)
    finally:
        for h in hooks:
            h.remove()
    if not isinstance(out, torch.Tensor) or out.shape[:1] != x0.shape[:1]:
        raise ValueError(f"{type(net).__name__} returns {type(out).__name__}: measurement needs a tensor [batch, ...]")
    idle = [n for n, _ in blocks if n not in fired]
    if idle:
        raise ValueError(f"observed modules {idle} did not run in the forward pass")
    if not _same(xs[-1], out):              # the output is a representation of its own (x^L)
        xs.append(out)
        if pending[0] is not None:
            pres.append(pending[0])
            layers.append(len(xs) - 1)
    return Trace(xs, pres, layers), out, fired


def _same(a, b) -> bool:
    return a.shape == b.shape and bool(torch.equal(a.detach(), b.detach()))
