"""Where a torch model's representations and pre-activations are, and its forward pass with hooks that read them.

:func:`observed_modules` finds the modules whose outputs are the representations x^1..x^L (named, or the block
boundaries of the model's ``nn.Sequential`` containers and stacks of layers), :func:`pre_modules` those around
the pre-activations (by default the inputs of the activation modules, :func:`is_activation`), :func:`start_module`
the module whose output is x^0 where that is not the model's input (an embedding fed token ids) and
:func:`start_output` that output; :func:`split_output` reads a structured output (a tuple, a mapping) as its first
element. :func:`traced_forward` runs the model once with hooks on all of them and returns what
:func:`sigprop.validate.pullback.raw_arrays` reads: a :class:`~sigprop.validate.build.Trace`, the output, and the
observed modules in the order they ran. :func:`sigprop.validate.measure_model` measures with them.

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

from collections.abc import Mapping

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from .build import Trace
from .model_inputs import batch_size, call as feed, device_of

#: elementwise activation modules: the input of one is a pre-activation
ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.CELU, nn.SELU, nn.GELU, nn.SiLU,
               nn.Mish, nn.Tanh, nn.Sigmoid, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus, nn.Softsign,
               nn.Tanhshrink, nn.LogSigmoid, nn.Threshold, nn.Hardshrink, nn.Softshrink)


def is_activation(module) -> bool:
    """An elementwise activation module: one of ``ACTIVATIONS``, or of a class whose name ends in ``Activation`` and
    that holds no parameters and no modules (as the transformers library names its GELU and SiLU modules).

    >>> class NewGELUActivation(nn.Module):
    ...     def forward(self, x):
    ...         return nn.functional.gelu(x, approximate="tanh")
    >>> is_activation(nn.Tanh()), is_activation(NewGELUActivation()), is_activation(nn.Linear(2, 2))
    (True, True, False)
    """
    return isinstance(module, ACTIVATIONS) or (type(module).__name__.endswith("Activation")
                                               and next(module.parameters(), None) is None
                                               and next(module.children(), None) is None)


#: modules that start a block which a following activation closes (as ``dense`` does)
LINEAR = (nn.Linear, nn.Bilinear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
#: modules that turn integer inputs (token ids) into vectors: the first one's output is x^0 for such inputs
EMBEDDINGS = (nn.Embedding, nn.EmbeddingBag)


def start_module(net, start, integer_inputs: bool):
    """(name, module) whose output is x^0, or None where x^0 is the model's input: ``start`` (a module name) as
    given; for integer inputs without one, the first ``nn.Embedding`` (or ``nn.EmbeddingBag``) the model holds.
    Gradients are taken with respect to x^0, so integer inputs (token ids) need one.

    >>> lm = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 4), nn.Tanh())
    >>> start_module(lm, None, True)[0], start_module(lm, None, False)
    ('0', None)
    """
    modules = dict(net.named_modules())
    if start is not None:
        if not isinstance(start, str) or start not in modules or start == "":
            raise ValueError(f"start={start!r} is not allowed: name the module whose output is x^0, one of "
                             f"{[n for n in modules if n][:20]}")
        return start, modules[start]
    if not integer_inputs:
        return None
    for name, module in modules.items():
        if isinstance(module, EMBEDDINGS):
            return name, module
    raise ValueError(f"integer inputs (token ids) are not allowed for {type(net).__name__} without start: the "
                     "gradients are taken with respect to x^0, and it holds no nn.Embedding whose output would be "
                     "x^0; give start=NAME, the module whose output is x^0")


class _Stop(Exception):
    """Ends a forward pass once the start module's output is read."""


def start_output(net, start, source):
    """The output of the module ``start`` = (name, module) when the model is fed ``source`` (a tensor, or a mapping
    of keyword arguments): x^0 of a measurement that starts there (the forward pass stops at it; buffers such as
    batchnorm's running statistics are restored).

    >>> lm = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 4), nn.Tanh())
    >>> start_output(lm, ("0", lm[0]), torch.tensor([[1, 2, 3], [4, 5, 6]])).shape
    torch.Size([2, 3, 4])
    """
    seen, buffers = [], [(b, b.detach().clone()) for b in net.buffers()]
    device, batch = device_of(source), batch_size(source)

    def on_start(module, args, output):
        seen.append(output)
        raise _Stop
    hook = start[1].register_forward_hook(on_start)
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            feed(net, source)
    except _Stop:
        pass
    finally:
        hook.remove()
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)
    if not seen:
        raise ValueError(f"the start module {start[0]!r} did not run in the forward pass")
    out = split_output(seen[0])[0]
    if out is None or out.dim() < 1 or out.shape[0] != batch or not torch.is_floating_point(out):
        raise ValueError(f"the start module {start[0]!r} returns {_described(seen[0])}: x^0 must be a "
                         f"floating-point tensor [batch, ...] (batch = {batch})")
    return out.detach()


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
        if _container(module) and not any(name.startswith(o + ".") or o == "" for o, _ in found):
            found.append((name, module))
    if not found:
        raise ValueError(f"{type(net).__name__} holds no nn.Sequential or stack of layers (an nn.ModuleList of "
                         "modules of one class) to find block boundaries in: name the modules whose outputs to "
                         "observe (observe=[...], see model.named_modules())")
    blocks = []
    for name, seq in found:
        blocks.extend(boundaries(seq, name))
    return blocks


def _container(module) -> bool:
    """Whether the children of ``module`` follow one another: an ``nn.Sequential``, or a stack of layers (an
    ``nn.ModuleList`` of at least two modules of one class, as ``nn.TransformerEncoder`` and most transformer
    libraries keep their layers)."""
    if isinstance(module, nn.Sequential):
        return True
    return isinstance(module, nn.ModuleList) and len(module) > 1 and len({type(m) for m in module}) == 1


def after_start(blocks, start) -> list:
    """The found block boundaries that come after the start module ``start`` (a name): those after the boundary
    that is the start module or lies within it, or from the boundary that contains it on (all where it is none of
    these, e.g. an embedding outside the model's ``nn.Sequential``).

    >>> after_start([("0", None), ("2", None), ("4", None)], "0")
    [('2', None), ('4', None)]
    """
    first = 0
    for i, (name, _) in enumerate(blocks):
        if name == start or name.startswith(start + "."):
            first = i + 1
        elif start.startswith(name + "."):
            first = i
    return blocks[first:]


def boundaries(seq, prefix) -> list:
    """The children of a Sequential (or a stack of layers) whose outputs end blocks (nested Sequentials flattened;
    Linear/Conv followed by an activation ends at the activation)."""
    children = []
    for name, child in seq.named_children():
        full = f"{prefix}.{name}" if prefix else name
        if isinstance(child, nn.Sequential):
            children.extend(boundaries(child, full))
        else:
            children.append((full, child))
    return [(n, m) for i, (n, m) in enumerate(children)
            if not (isinstance(m, LINEAR) and i + 1 < len(children) and is_activation(children[i + 1][1]))]


def pre_modules(net, pre) -> list:
    """[(name, module)] whose outputs are pre-activations (given), or the activation modules (their inputs are)."""
    modules = dict(net.named_modules())
    if pre is None:
        return [(n, m) for n, m in modules.items() if is_activation(m)]
    if isinstance(pre, str):
        raise ValueError(f"pre={pre!r} is not allowed: give a list of module names")
    missing = [n for n in pre if n not in modules or n == ""]
    if missing:
        raise ValueError(f"pre names {missing} that are not modules of {type(net).__name__}")
    return [(n, modules[n]) for n in pre]


def traced_forward(net, x0, blocks, pre_modules, pre_is_input, taps=None, call=None, appended=None, start=None):
    """Run the model once with hooks; the Trace (representations, the last pre-activation within each observed
    block), the output and the observed modules in the order they ran. Captured tensors are passed on as clones
    (or with ``taps[l − 1]`` added to x^l), so a later in-place operation (ReLU(inplace), ``out += identity``)
    cannot change them. ``call``: runs ``net`` on its inputs (default ``net`` itself; e.g. ``functional_call`` with
    other parameters); ``appended``: whether the output is a representation of its own, as found for a network of
    the same structure (by default found by comparing it with the last observed one: not possible under vmap);
    ``start``: ``(name, module, source)`` where x^0 is a module's output: the model is fed ``source`` (a tensor or a
    mapping of keyword arguments) and that module's output is replaced by ``x0``, so that everything after it is a
    function of x0; otherwise the model is fed a copy of x0, which it may change in place. Scaled dot-product
    attention runs in its math implementation (the fused kernels' numbers to rounding), whose backward pass vmap
    batches over the probes."""
    xs, pres, pending, layers, hooks, fired = [x0], [], [None, None], [], [], []
    started = [start is None]
    where = {id(m): n for n, m in blocks}
    pre_names, sources = {id(m): n for n, m in pre_modules}, []

    def on_start(module, args, output):
        if started[0]:
            raise ValueError(f"the start module {start[0]!r} runs more than once per forward pass: start at a module "
                             "that runs once")
        tensor, put = split_output(output)
        if tensor is None or tensor.shape != x0.shape:
            raise ValueError(f"the start module {start[0]!r} returns {_described(output)}, where it returned a "
                             f"tensor of shape {tuple(x0.shape)} before: start at a module whose output keeps its "
                             "shape")
        started[0], pending[0] = True, None          # pre-activations before x^0 belong to no layer
        return put(x0.clone())

    def on_block(module, args, output):
        name = where[id(module)]
        if not started[0]:
            raise ValueError(f"observed module {name!r} runs before the start module {start[0]!r}: observe modules "
                             "that run after it")
        tensor, put = split_output(output)
        if not _batched(tensor, x0):
            raise ValueError(f"observed module {name!r} returns {_described(output)}: observe modules that return a "
                             f"real floating-point tensor [batch, ...] (batch = {x0.shape[0]}) or a tuple or mapping "
                             "whose first element is one, or wrap one in a module that returns the tensor you mean")
        if name in fired:
            raise ValueError(f"observed module {name!r} runs more than once per forward pass: observe modules that "
                             "run once")
        fired.append(name)
        xs.append(tensor)
        if pending[0] is not None:
            pres.append(pending[0])
            sources.append(pending[1])
            layers.append(len(xs) - 1)
            pending[0] = None
        k = len(fired) - 1
        return put(tensor + taps[k] if taps is not None and k < len(taps) else tensor.clone())

    def on_pre_input(module, args):
        if args and isinstance(args[0], torch.Tensor) and args[0].shape[:1] == x0.shape[:1]:
            pending[:] = [args[0], pre_names[id(module)]]
            return (args[0].clone(),) + tuple(args[1:])

    def on_pre_output(module, args, output):
        tensor, put = split_output(output)
        if tensor is None:
            raise ValueError(f"pre names module {pre_names[id(module)]!r}, which returns {_described(output)}: name "
                             "modules whose output is the pre-activation tensor")
        pending[:] = [tensor, pre_names[id(module)]]
        return put(tensor.clone())

    try:
        for _, m in pre_modules:          # first: a module's own output as pre-activation belongs to its layer
            hooks.append(m.register_forward_pre_hook(on_pre_input) if pre_is_input else
                         m.register_forward_hook(on_pre_output))
        if start is not None:
            hooks.append(start[1].register_forward_hook(on_start))
        for _, m in blocks:
            hooks.append(m.register_forward_hook(on_block))
        # attention in its math implementation: vmap batches its matrix products and softmax over the probes,
        # where the fused kernels have no batching rule and their backward would run once per probe
        with torch.enable_grad(), torch.random.fork_rng(devices=[x0.device] if x0.device.type == "cuda" else []), \
                sdpa_kernel(SDPBackend.MATH):
            returned = feed(call or net, x0.clone() if start is None else start[2])
    finally:
        for h in hooks:
            h.remove()
    if not started[0]:
        raise ValueError(f"the start module {start[0]!r} did not run in the forward pass")
    out = split_output(returned)[0]
    if not _batched(out, x0):
        raise ValueError(f"{type(net).__name__} returns {_described(returned)}: measurement needs a real "
                         f"floating-point tensor [batch, ...] (batch = {x0.shape[0]}) or a tuple or mapping whose "
                         "first element is one; wrap the model in a module that returns the tensor you mean")
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


def split_output(value) -> tuple:
    """(the tensor a module's output stands for, a function that puts another tensor in its place): the output
    itself, the first element of a tuple or list (``nn.LSTM``'s output beside its state, a transformer library's
    layer's hidden states beside its attention weights) or the first value of a mapping (a library's model output,
    its logits first); (None, None) where that is not a tensor.

    >>> tensor, put = split_output((torch.zeros(2, 3), "state"))
    >>> tensor.shape, put(torch.ones(2))[1]
    (torch.Size([2, 3]), 'state')
    """
    if isinstance(value, torch.Tensor):
        return value, lambda t: t
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], torch.Tensor):
        if hasattr(value, "_fields"):                                   # a namedtuple
            return value[0], lambda t: type(value)(t, *value[1:])
        return value[0], lambda t: type(value)((t, *value[1:]))
    if isinstance(value, Mapping) and value and isinstance(value[next(iter(value))], torch.Tensor):
        key = next(iter(value))

        def put(t):
            value[key] = t
            return value
        return value[key], put
    return None, None


def _batched(tensor, x0) -> bool:
    """Whether ``tensor`` is a representation: real floating point (gradients flow through it), [batch, ...]."""
    return (tensor is not None and tensor.is_floating_point() and tensor.dim() >= 1
            and tensor.shape[0] == x0.shape[0])


def _same(a, b) -> bool:
    return a.shape == b.shape and bool(torch.equal(a.detach(), b.detach()))


def _described(value) -> str:
    """A module's output in an error message: a tensor by its shape, anything else by its type."""
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}" + ("" if value.is_floating_point() else f" and {value.dtype}")
    return f"a {type(value).__name__}"
