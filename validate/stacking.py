"""Whether a factory's networks can run as one network's code with their own weights.

:func:`sigprop.validate.measure_model` stacks a factory's networks (``torch.func.stack_module_state``) and runs the
first one's code on each with ``torch.func.functional_call`` under one ``torch.func.vmap``. That is each network
only where it differs from the first in its parameters' and buffers' values alone: :func:`stackable` says so.

Example
-------
>>> from torch import nn
>>> a, b = nn.Sequential(nn.Linear(3, 3), nn.Tanh()), nn.Sequential(nn.Linear(3, 3), nn.Tanh())
>>> stackable(a, b), stackable(a, nn.Sequential(nn.Linear(3, 3), nn.ReLU()))
(True, False)
>>> b[0].scale = 2.0                       # a constant of its own: the first network's code would not be this one
>>> stackable(a, b)
False
"""
from __future__ import annotations

import torch
from torch import nn

_MISSING = object()


def stackable(template, net) -> bool:
    """Whether ``net`` is ``template`` with other parameter and buffer values: the same module classes and
    names, parameters and buffers of the same names, shapes, dtypes and devices, and every other attribute of
    every module equal (hooks included), so that ``template``'s code with ``net``'s tensors is ``net``."""
    ours, theirs = list(template.named_modules()), list(net.named_modules())
    if [(n, type(m)) for n, m in ours] != [(n, type(m)) for n, m in theirs]:
        return False
    for (_, a), (_, b) in zip(ours, theirs):
        keys = (a.__dict__.keys() | b.__dict__.keys()) - {"_parameters", "_buffers", "_modules"}
        if not all(_equal(a.__dict__.get(k, _MISSING), b.__dict__.get(k, _MISSING)) for k in keys):
            return False

    def spec(m):
        return [(n, t.shape, t.dtype, t.device) for n, t in (*m.named_parameters(), *m.named_buffers())]
    return spec(template) == spec(net)


def _equal(a, b, depth=0) -> bool:
    """Attribute values equal (tensors: same shape, dtype, device and entries; dicts, lists and tuples entry by
    entry; modules held outside the module tree, as a library keeps wrapped functions in a dict, of one class with
    equal attributes); False where unsure."""
    if a is b:
        return True
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape
                and a.dtype == b.dtype and a.device == b.device and bool(torch.equal(a, b)))
    if isinstance(a, (dict, list, tuple, nn.Module)) and depth < 8:
        if type(a) is not type(b):
            return False
        if isinstance(a, nn.Module):
            a, b = vars(a), vars(b)
        if isinstance(a, dict):
            return a.keys() == b.keys() and all(_equal(a[k], b[k], depth + 1) for k in a)
        return len(a) == len(b) and all(_equal(x, y, depth + 1) for x, y in zip(a, b))
    try:
        same = a == b
    except Exception:
        return False
    return same if isinstance(same, bool) else False
