"""Measure a user's own PyTorch model: the quantities sigprop predicts, on any ``torch.nn.Module``.

:func:`measure_model` takes a module (one network) or a factory ``seed -> module`` (independent networks, so the
results carry 95% intervals over seeds). It observes representations x^1..x^L at module outputs and records,
exactly as :func:`sigprop.validate.measure` does for a description: p, m of every representation, q, c of the
pre-activations, ‖∂x^L/∂x^l‖_F (GSC(l, L) = ‖J‖_qm ‖x^l‖/‖x^L‖, Philipp, Song & Carbonell 2018) and the gradient
correlation across inputs (Balduzzi et al. 2017), with one backward pass that reads every layer. Fed a data batch
of B > 2 inputs, it also records each unit's pre-activation standard deviation over the data and its sign
diversity min(P(h > 0), P(h < 0)) over the data (Philipp et al.'s collapsing-domain measures).

Which representations (``observe``): module names from ``model.named_modules()``, or by default the block
boundaries: the children of the model's outermost ``nn.Sequential`` containers and stacks of layers (an
``nn.ModuleList`` of at least two modules of one class, as ``nn.TransformerEncoder`` and transformer libraries keep
their layers), nested ``nn.Sequential`` children flattened; a ``Linear``/``Conv`` child immediately followed by an
elementwise activation child forms one block with it, as ``dense`` does. A residual block written as its own
module class is one child, so its output is a boundary. x^0 is the input and x^L the model's output. A module (or
the model) that returns a tuple or a mapping stands for its first element: ``nn.LSTM``'s output beside its state,
a library's transformer layer's hidden states beside its attention weights, a library's model output with its
logits first.

Where x^0 starts (``start``): the model's input by default, or the output of the module named ``start``, whose
output the gradients are then taken with respect to (and the found boundaries are those after it). Integer inputs
(token ids) need one: without ``start``, the model's first ``nn.Embedding`` (or ``nn.EmbeddingBag``) is it. Fed a
mapping of keyword arguments, ``start`` may also name one of its floating-point tensors (``inputs_embeds``).

Which pre-activations (``pre``): module names whose outputs are pre-activations, or by default the input of the
last elementwise activation module (``nn.ReLU``, ``nn.Tanh``, …, or a parameter-free module of a class named
``…Activation``, as the transformers library's GELU and SiLU are) that runs within each observed block.

Inputs: a tensor [B, ...] (B >= 2; every seed sees the same inputs; integer token ids with a start module), a
mapping of the model's keyword arguments (``model(**inputs)``: a tokenizer's ids and attention mask, tensors
[B, ...]; x^0 is then a start module's output), or by default two inputs with mean square q0 and correlation c0
made exactly as for a description (the input width read from the first ``nn.Linear``).

The first dimension of x^0 and of every representation is the batch of independent inputs: a model whose
representations mix them (attention or recurrent layers built with ``batch_first=False``, PyTorch's default,
take it as the sequence) is refused, naming the first such representation and those modules
(:func:`sigprop.validate.independence.check_independent`; batchnorm that normalizes by the batch, in training
mode or without running statistics, mixes it by design and is measured as such).

A factory's networks: the first is measured alone, and its shapes serve the rest, which are measured as
:func:`sigprop.validate.measure` measures seeds: stacked (``torch.func.stack_module_state``) and run as the first
network's code with their own weights (``torch.func.functional_call``) under one ``torch.func.vmap``, as many at
once as fit in memory, with the numbers each gives alone. Networks that differ from the first in more than their
parameters' and buffers' values (a constant of their own, hooks), that couple the batch (batchnorm normalizing by it)
or that vmap refuses (a random operation such as dropout) are measured one at a time.

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

A language model fed token ids [batch, sequence] is measured from its embedding's output on:

>>> def lm(seed):
...     return nn.Sequential(nn.Embedding(100, 16), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh())
>>> tokens = torch.randint(100, (4, 7), generator=torch.Generator().manual_seed(0))
>>> meas = measure_model(lm, tokens, seeds=2)
>>> meas.meta["start"], meas.meta["observe"], meas.width          # x^0: 7 tokens x 16 features per input
('0', ['2', '4'], 112)
"""
from __future__ import annotations

import importlib
import inspect
import os
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..checks import check_inputs, check_positive_int, check_progress, check_seeds
from . import model_inputs
from .build import Trace, cuda_devices
from .hooks import after_start, observed_modules, pre_modules as find_pre_modules, start_module, start_output, \
    traced_forward
from .independence import check_independent
from .measure import Measurement, input_generator, seed_inputs
from .pullback import check_probes, default_probes, draw_stacked, probes_used, raw_arrays, raw_tensors, to_host
from .seed_batch import measure_group, memory_per_seed, seeds_per_batch
from .stacking import stackable


def measure_model(model, inputs=None, *, observe=None, pre=None, start=None, seeds=10, q0: float = 1.0,
                  c0: float = 0.5, probes=None, seed_batch: int | None = None, progress=None) -> Measurement:
    """Measure a module (one network; ``seeds`` is ignored) or a factory ``seed -> module`` over ``seeds`` (an int
    n -> seeds 0..n-1, or a list of at least 2 seeds). See the module docstring for ``observe``, ``pre``,
    ``start`` and ``inputs``; ``probes``: 'exact', a number of Hutchinson probes or None, as in
    :func:`sigprop.validate.measure` (None: exact for a pair of inputs, 8 Hutchinson probes for a data batch of
    B > 2; a model whose batchnorm normalizes by the batch mixes it, so there GSC takes P Hutchinson probes whatever P,
    and 'exact' is refused). ``seed_batch``: how many of the factory's networks to measure at once (default: as
    many as fit, as for :func:`sigprop.validate.measure`; 1: one at a time).

    Returns a :class:`~sigprop.validate.Measurement` (``architecture`` names the model's class, ``meta`` the
    observed modules, ``start`` the module x^0 is the output of (None: the input), ``pre`` as given,
    ``pre_modules`` the module each pre-activation layer was read at (its input for ``pre=None``, its output
    otherwise) and what the measurement cost); with a data batch of B > 2 inputs its ``raw`` also holds
    ``unit_std`` and ``sign_diversity`` [seed, pre-activation layer, unit].
    """
    factory, seed_list = _networks(model, seeds)
    check_progress(progress)
    if inputs is None:
        check_inputs(q0, c0)
    batch = 2 if inputs is None else model_inputs.check_model_inputs(inputs)
    probes = default_probes(batch) if probes is None else probes
    if probes != "exact" and (isinstance(probes, bool) or not isinstance(probes, int) or probes < 1):
        raise ValueError(f"probes={probes!r} is not allowed: use 'exact' or an integer >= 1 (Hutchinson probes)")
    if seed_batch is not None:
        check_positive_int("seed_batch", seed_batch)
    began = time.perf_counter()
    first = factory(seed_list[0])
    start_ = model_inputs.keyword_start(first, start, inputs) or _start(first, start, inputs, observe)
    device = _placement(first)[1]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    result, names, shapes = _measure_network(first, seed_list[0], inputs, observe, pre, start_, q0, c0, probes)
    per_seed, rest = [result], seed_list[1:]
    if progress is not None:
        progress()
    n_out = shapes.xs[-1][0].numel()
    per_bytes = memory_per_seed(first, sum(x[0].numel() for x in shapes.xs),
                                n_out if check_probes(probes, n_out) == "exact" else probes, batch)
    chunk = seed_batch or seeds_per_batch(per_bytes, device, max(len(rest), 1))
    stack = chunk > 1 and len(rest) > 1 and not _coupled(first)
    info = {"seeds_per_batch": min(chunk, len(rest)) if stack else 1, "bytes_per_seed": per_bytes, "stacked": stack}

    def single(net, seed):
        raw, observed, _ = _measure_network(net, seed, inputs, observe, pre, start_, q0, c0, probes, shapes)
        if observed != names:
            raise ValueError(f"the factory's networks differ in structure: seed {seed_list[0]} observes "
                             f"{names['observe']} (pre-activations at {names['pre_modules']}), seed {seed} observes "
                             f"{observed['observe']} (pre-activations at {observed['pre_modules']})")
        return raw

    def stacked(nets, seeds_):
        return _measure_stacked(first, nets, seeds_, inputs, observe, pre, start_, q0, c0, probes, shapes, names)
    for k in range(0, len(rest), chunk):
        group = rest[k:k + chunk]
        per_seed += measure_group([factory(seed) for seed in group], group, stacked, single, info, device)
        for _ in group:
            if progress is not None:
                progress()
    keys = [k for k in per_seed[0] if k != "pre_layers"]
    raw = {k: np.stack([r[k] for r in per_seed]) for k in keys}
    record = {"q0": q0, "c0": c0, "m0": 0.0} if inputs is None else {"batch": batch}
    if isinstance(inputs, Mapping):
        record["keywords"] = list(inputs)
    if isinstance(start_, model_inputs.Keyword):
        record["x0"] = str(start_)
    if device.type == "cuda":
        info["peak_memory_bytes"] = int(torch.cuda.max_memory_allocated(device))
    return Measurement(
        architecture=names["architecture"], width=int(raw["n"][0, 0]), seeds=seed_list, inputs=record,
        probes=probes_used(probes, int(raw["n"][0, -1]), batch, _coupled(first)), dtype=names["dtype"],
        device=names["device"], pre_layers=per_seed[0]["pre_layers"], raw=raw,
        meta={"start": None if start_ is None else str(start_), "observe": names["observe"], "pre": names["pre"],
              "pre_modules": names["pre_modules"], "sigprop_version": __version__,
              "torch_version": torch.__version__, "seconds": time.perf_counter() - began, **info})


def _networks(model, seeds):
    """(seed -> module, the seeds) for a module or a factory."""
    if isinstance(model, nn.Module):
        _check_eager(model)
        return (lambda seed: model), [0]
    check_factory(model)
    seed_list = check_seeds(seeds)

    def factory(seed):
        with torch.random.fork_rng(devices=cuda_devices()):     # torch.manual_seed seeds every CUDA device too
            torch.manual_seed(seed)
            net = model(seed)
        if not isinstance(net, nn.Module):
            raise ValueError(f"the factory returned {type(net).__name__} for seed {seed}: it must return a "
                             "torch.nn.Module")
        _check_eager(net)
        return net
    return factory, seed_list


def _start(net, start, inputs, observe):
    """The name of the module whose output is x^0 (None: the model's input); see :func:`hooks.start_module`."""
    found = start_module(net, start, inputs is not None and model_inputs.has_token_ids(inputs))
    if found is None:
        if isinstance(inputs, Mapping):
            raise ValueError(f"inputs given as a mapping ({list(inputs)}) need start: gradients are taken with "
                             "respect to one tensor, x^0, so name the module whose output it is (start=NAME)")
        return None
    if inputs is None:
        raise ValueError(f"start={found[0]!r} needs inputs: give the batch the model is fed (a tensor [batch, ...])")
    within = [n for n in observe or () if n == found[0] or n.startswith(found[0] + ".")]
    if within:
        raise ValueError(f"observe names {within}, which is the start module {found[0]!r} or within it: x^0 is its "
                         "output, so observe modules that run after it")
    return found[0]


def _placement(net) -> tuple:
    """(dtype, device) of a network: those of its first parameter (float64 on the CPU without one)."""
    params = next(iter(net.parameters()), None)
    return (params.dtype, params.device) if params is not None else (torch.float64, torch.device("cpu"))


def _coupled(net) -> bool:
    """Whether the network mixes the inputs of a batch: batchnorm normalizing by the batch's statistics (in training
    mode, or in any mode without running statistics, ``track_running_stats=False``)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) and (m.training or m.running_mean is None)
               for m in net.modules())


def check_factory(model) -> None:
    """Raise a ValueError where ``model``, not a module, is not a factory ``seed -> module``: not callable, a class
    (whose instances are modules), or a callable that does not take one argument."""
    name = getattr(model, "__name__", repr(model))
    if isinstance(model, type):
        raise ValueError(f"model={name} is a class: give a module, {name}(...), or a factory seed -> module, "
                         f"lambda seed: {name}(...)")
    if not callable(model):
        raise ValueError(f"model={model!r} is not allowed: give a torch.nn.Module or a factory seed -> module")
    try:
        signature = inspect.signature(model)
    except (TypeError, ValueError):             # a builtin without a signature: called as it is
        return
    try:
        signature.bind(0)
    except TypeError:
        advice = f"; give lambda seed: {name}()" if not signature.parameters else ""
        raise ValueError(f"model={name} is not allowed: a factory is called with one argument, the seed, and "
                         f"{name}{signature} cannot be called so{advice}") from None


def _first_pass(forward, x0, source, net, named_pre):
    """``forward(x0, None)``, where the model's own failure on its inputs (a shape or a keyword it does not take)
    is a ValueError that names the model and what it was fed; sigprop's refusals, and errors raised in sigprop's
    own code that the model's forward pass calls (its hooks), pass unchanged. ``named_pre``: the ``(name, module)``
    pairs the user named as pre-activations, each of which must run."""
    ran = set()
    hooks = [m.register_forward_hook(lambda module, args, output, name=name: ran.add(name)) for name, m in named_pre]
    try:
        result = forward(x0, None)
    except (RuntimeError, TypeError, IndexError, KeyError, AttributeError) as exc:
        if _raised_within_sigprop(exc):
            raise
        fed = model_inputs.describe(x0 if source is None else source)
        raise ValueError(f"{type(net).__name__}'s forward pass failed on the inputs ({fed}): {type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc
    finally:
        for hook in hooks:
            hook.remove()
    idle = [name for name, _ in named_pre if name not in ran]
    if idle:
        raise ValueError(f"pre names modules {idle}, which did not run in the forward pass: name modules that run")
    return result


def _raised_within_sigprop(exc) -> bool:
    """Whether ``exc`` passed through sigprop's code called from within the model's forward pass (a hook), which
    the frames of sigprop's own that start the forward pass precede."""
    ours = tuple(str(Path(importlib.import_module(name).__file__).parent) + os.sep
                 for name in ("sigprop", "sigprop.theory", "sigprop.numerics", "sigprop.validate"))
    frames = [tb.tb_frame.f_code.co_filename for tb in _walk(exc.__traceback__)]
    entered = next((i for i, f in enumerate(frames) if not f.startswith(ours)), len(frames))
    return any(f.startswith(ours) for f in frames[entered:])


def _walk(tb):
    while tb is not None:
        yield tb
        tb = tb.tb_next


def _check_eager(module, name=None) -> None:
    """Raise a ValueError where ``module`` (the model, or its module ``name`` that a hook would read) is a TorchScript
    module: forward hooks, which read the representations, are not supported on those."""
    if isinstance(module, torch.jit.ScriptModule):
        what = "the model" if name is None else f"module {name!r}"
        raise ValueError(f"{what} is a TorchScript module ({type(module).__name__}, from torch.jit.script or "
                         "torch.jit.trace): measure_model reads representations with forward hooks, which TorchScript "
                         "modules do not support. Give the eager torch.nn.Module, the one scripted or traced"
                         + ("." if name is None else ", or observe (observe=[...]) and read pre-activations at "
                            "(pre=[...]) eager modules."))


def _seed_inputs(net, seed, inputs, start, q0, c0) -> tuple:
    """(x0, the generator the seed's probes are drawn from next, what the model is fed) of one network: x0 is
    what it is fed, the keyword input ``start`` names, or the start module's output there."""
    dtype, device = _placement(net)
    if inputs is None:
        return (*seed_inputs(_input_width(net), seed, q0, c0, 2, dtype, device), None)
    source = model_inputs.placed(inputs, dtype, device)
    if start is None:
        return source, input_generator(seed), source
    if isinstance(start, model_inputs.Keyword):
        return source[start], input_generator(seed), source
    return start_output(net, (start, net.get_submodule(start)), source), input_generator(seed), source


def _blocks(net, observe, start) -> list:
    """The observed modules: as named, or the found boundaries after the start module."""
    blocks = observed_modules(net, observe)
    return after_start(blocks, start) if observe is None and _module(start) is not None else blocks


def _module(start):
    """The name of the module x^0 is the output of (None: x^0 is an input)."""
    return None if isinstance(start, model_inputs.Keyword) else start


def _entry(run, source, start):
    """What runs the model on x^0 where x^0 is a keyword input (``run``: the model, or a function that runs it),
    else None (the model runs on x^0 itself or on ``source``)."""
    return model_inputs.bind(run, source, start) if isinstance(start, model_inputs.Keyword) else None


def _measure_network(net, seed, inputs, observe, pre, start, q0, c0, probes, shapes=None):
    """(raw arrays, names, shapes) of one network; ``shapes``: the shapes of a network of the factory measured
    before (a Trace of zero-stride tensors), which spare this one the forward pass that finds them."""
    dtype, device = _placement(net)
    blocks = _blocks(net, observe, start)
    pre_modules = find_pre_modules(net, pre)
    for name, module in blocks + pre_modules + ([] if _module(start) is None else [(start, net.get_submodule(start))]):
        _check_eager(module, name)
    x0, gen, source = _seed_inputs(net, seed, inputs, start, q0, c0)
    at = None if _module(start) is None else (start, net.get_submodule(start), source)
    call = _entry(net, source, start)
    buffers = [(b, b.detach().clone()) for b in net.buffers()]     # batchnorm's running statistics, e.g.
    fired, seen, sources = [], [], []

    def forward(x, taps):
        trace, out, names = traced_forward(net, x, blocks, pre_modules, pre is None, taps, call, start=at)
        fired[:], seen[:], sources[:] = names, [_structure(trace)], trace.pre_sources
        return out, trace
    try:
        if shapes is None:
            with torch.no_grad():
                _, trace0 = _first_pass(forward, x0, source, net, pre_modules if pre is not None else [])
            if not _coupled(net):
                check_independent(lambda x: _labelled(forward(x, None)[1], fired), x0, net)
            shapes = Trace([x.new_zeros(()).expand(x.shape) for x in trace0.xs], [], trace0.pre_layers)
        try:
            raw = raw_arrays(forward, x0, probes, gen, _coupled(net), shapes)
        except Exception:
            _check_structure(seen, shapes, seed)
            raise
        _check_structure(seen, shapes, seed)
    finally:                                    # after the backward pass, which reads them
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)
    names = {"architecture": type(net).__name__, "observe": fired,
             "pre": [n for n, _ in pre_modules] if pre is not None else "auto", "pre_modules": list(sources),
             "dtype": str(dtype).split(".")[-1], "device": str(device)}
    return raw, names, shapes


def _measure_stacked(template, nets, seeds, inputs, observe, pre, start, q0, c0, probes, shapes, names) -> list:
    """The raw arrays of networks of ``template``'s structure at once: their parameters and buffers stacked,
    ``template``'s code run on each with ``torch.func.functional_call`` under one ``torch.func.vmap``, each with
    the inputs and probes it gets alone. Raises RuntimeError where the networks differ in anything else
    (:func:`~sigprop.validate.stacking.stackable`) or vmap refuses the model (e.g. a random operation in its
    forward pass)."""
    if not all(stackable(template, net) for net in nets):
        raise RuntimeError("the networks differ in more than their parameters and buffers")
    dtype, device = _placement(template)
    out = shapes.xs[-1]
    x0, gens, sources = zip(*(_seed_inputs(net, seed, inputs, start, q0, c0) for net, seed in zip(nets, seeds)))
    v, _, norm, v_dim = draw_stacked(probes, out.shape[0], out[0].numel(), gens, dtype, device, False)
    params, buffers = torch.func.stack_module_state(list(nets))
    params = {k: p.detach() for k, p in params.items()}
    shared = inputs is not None and _module(start) is None      # every network sees the same x0
    x0, source = x0[0] if shared else torch.stack(x0), sources[0]
    blocks, pre_modules = _blocks(template, observe, start), find_pre_modules(template, pre)
    at = None if _module(start) is None else (start, template.get_submodule(start), source)   # source: the same
    appended = len(shapes.xs) == len(names["observe"]) + 2
    fired, seen = [], []

    def one(p, b, x, v_):
        def run(*args, **kwargs):
            return torch.func.functional_call(template, (p, b), args, kwargs)

        def forward(x, taps):
            trace, y, ran = traced_forward(template, x, blocks, pre_modules, pre is None, taps, appended=appended,
                                           call=_entry(run, source, start) or run,
                                           start=at)
            fired[:], seen[:] = ran, [_structure(trace)]
            return y, trace
        return raw_tensors(forward, x, v_, None, norm, shapes)
    raw = to_host(torch.func.vmap(one, in_dims=(0, 0, None if shared else 0, v_dim))(
        params, buffers, x0, v))
    _check_structure(seen, shapes, seeds[0])
    if fired != names["observe"]:
        raise ValueError(f"the factory's networks differ in structure: the first observes {names['observe']}, "
                         f"seeds {seeds} observe {fired}")
    pre_layers = np.array(shapes.pre_layers, dtype=int)
    return [{**{k: a[i] for k, a in raw.items()}, "pre_layers": pre_layers} for i in range(len(nets))]


def _labelled(trace, fired) -> list:
    """(label, tensor) of each representation of a trace after x^0, labelled by the module it is the output of, and
    of each pre-activation, by the module it was read at."""
    names = [f"x^{l} (the output of {n!r})" for l, n in enumerate(fired, 1)]
    pre = [f"the pre-activations of layer {l} (read at {n!r})" for l, n in zip(trace.pre_layers, trace.pre_sources)]
    return list(zip(names + [f"x^{len(fired) + 1} (the model's output)"], trace.xs[1:])) + list(zip(pre, trace.pre))


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
