"""Where a torch model's representations and pre-activations are, and its forward pass with hooks that read them.

:func:`observed_modules` finds the modules whose outputs are the representations x^1..x^L (named, or the block
boundaries of the model's ``nn.Sequential`` containers), :func:`pre_modules` those around the pre-activations,
and :func:`traced_forward` runs the model once with hooks on both and returns what
:func:`sigprop.validate.pullback.raw_arrays` reads: a :class:`~sigprop.validate.build.Trace`, the output,
and the observed modules in the order they ran. :func:`sigprop.validate.measure_model` measures with them.

Example
-------
>>> import torch
>>> from torch import nn
>>> from sigprop.validate.hooks import observed_modules, pre_modules, traced_forward
>>> net = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 4), nn.Tanh())
>>> blocks = observed_modules(net, None)
>>> [name for name, _ in blocks]
['1', '3']
>>> trace, out, fired = traced_forward(net, torch.ones(2, 4), blocks, pre_modules(net, None), True)
>>> len(trace.xs), trace.pre_layers, fired
(3, [1, 2], ['1', '3'])
"""
from __future__ import annotations

import torch
from torch import nn

from .build import Trace

#: elementwise activation modules: the input of one is a pre-activation
ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.CELU, nn.SELU, nn.GELU, nn.SiLU,
               nn.Mish, nn.Tanh, nn.Sigmoid, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus, nn.Softsign,
               nn.Tanhshrink, nn.LogSigmoid, nn.Threshold, nn.Hardshrink, nn.Softshrink)
#: modules that start a block which a following activation closes (as ``dense`` does)
LINEAR = (nn.Linear, nn.Bilinear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def observed_modules(net, observe) -> list:
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
        blocks.extend(boundaries(seq, name))
    return blocks


def boundaries(seq, prefix) -> list:
    """The children of a Sequential whose outputs end blocks (nested Sequentials flattened; Linear/Conv followed
    by an activation ends at the activation)."""
    children = []
    for name, child in seq.named_children():
        full = f"{prefix}.{name}" if prefix else name
        if isinstance(child, nn.Sequential):
            children.extend(boundaries(child, full))
        else:
            children.append((full, child))
    return [(n, m) for i, (n, m) in enumerate(children)
            if not (isinstance(m, LINEAR) and i + 1 < len(children) and isinstance(children[i + 1][1], ACTIVATIONS))]


def pre_modules(net, pre) -> list:
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


def traced_forward(net, x0, blocks, pre_modules, pre_is_input, taps=None, call=None, appended=None):
    """Run the model once with hooks; the Trace (representations, the last pre-activation within each observed
    block), the output and the observed modules in the order they ran. Captured tensors are passed on as clones
    (or with ``taps[l − 1]`` added to x^l), so a later in-place operation (ReLU(inplace), ``out += identity``)
    cannot change them. ``call``: runs ``net`` on its input (default ``net`` itself; e.g. ``functional_call`` with
    other parameters); ``appended``: whether the output is a representation of its own, as found for a network of
    the same structure (by default found by comparing it with the last observed one: not possible under vmap)."""
    xs, pres, pending, layers, hooks, fired = [x0], [], [None, None], [], [], []
    where = {id(m): n for n, m in blocks}
    pre_names, sources = {id(m): n for n, m in pre_modules}, []

    def on_block(module, args, output):
        name = where[id(module)]
        if not isinstance(output, torch.Tensor) or output.dim() < 1 or output.shape[0] != x0.shape[0]:
            raise ValueError(f"observed module {name!r} returns {_described(output)}: observe modules that return a "
                             f"tensor [batch, ...] (batch = {x0.shape[0]}), or wrap one whose output is a tuple "
                             "(e.g. nn.LSTM's output and state) in a module that returns the tensor you mean")
        if name in fired:
            raise ValueError(f"observed module {name!r} runs more than once per forward pass: observe modules that "
                             "run once")
        fired.append(name)
        xs.append(output)
        if pending[0] is not None:
            pres.append(pending[0])
            sources.append(pending[1])
            layers.append(len(xs) - 1)
            pending[0] = None
        k = len(fired) - 1
        return output + taps[k] if taps is not None and k < len(taps) else output.clone()

    def on_pre_input(module, args):
        if args and isinstance(args[0], torch.Tensor) and args[0].shape[:1] == x0.shape[:1]:
            pending[:] = [args[0], pre_names[id(module)]]
            return (args[0].clone(),) + tuple(args[1:])

    def on_pre_output(module, args, output):
        pending[:] = [output, pre_names[id(module)]]
        return output.clone()

    try:
        for _, m in pre_modules:          # first: a module's own output as pre-activation belongs to its layer
            hooks.append(m.register_forward_pre_hook(on_pre_input) if pre_is_input else
                         m.register_forward_hook(on_pre_output))
        for _, m in blocks:
            hooks.append(m.register_forward_hook(on_block))
        with torch.enable_grad(), torch.random.fork_rng(devices=[x0.device] if x0.device.type == "cuda" else []):
            out = (call or net)(x0)
    finally:
        for h in hooks:
            h.remove()
    if not isinstance(out, torch.Tensor) or out.shape[:1] != x0.shape[:1]:
        raise ValueError(f"{type(net).__name__} returns {_described(out)}: measurement needs a tensor [batch, ...] "
                         f"(batch = {x0.shape[0]}); wrap the model in a module that returns the tensor you mean")
    idle = [n for n, _ in blocks if n not in fired]
    if idle:
        raise ValueError(f"observed modules {idle} did not run in the forward pass")
    if (not _same(xs[-1], out)) if appended is None else appended:     # the output is a representation (x^L)
        xs.append(out)
        if pending[0] is not None:
            pres.append(pending[0])
            sources.append(pending[1])
            layers.append(len(xs) - 1)
    return Trace(xs, pres, layers, sources), out, fired


def _same(a, b) -> bool:
    return a.shape == b.shape and bool(torch.equal(a.detach(), b.detach()))


def _described(value) -> str:
    """A module's output in an error message: a tensor by its shape, anything else by its type."""
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"
