"""What a user's model is fed when :func:`sigprop.validate.measure_model` measures it.

Either one tensor [batch, ...], the model's positional input (``model(inputs)``), or a mapping of keyword
arguments (``model(**inputs)``): a tokenizer's ``input_ids`` with its ``attention_mask``, a decoder's inputs beside
the encoder's. A mapping's tensors share their first dimension, the batch (a tensor whose first dimension is 1,
broadcast over the batch, may sit beside them); its other values (``use_cache=False``) are passed on as they are.
Fed a mapping, x^0 is one tensor, since gradients are taken with respect to one: a module's output (``start``, or
the first embedding where token ids are among them), or one of the mapping's floating-point tensors, named by
``start`` (:class:`Keyword`; a model's ``inputs_embeds`` beside its ``attention_mask``), which the model is then fed
in place of it.

Example
-------
>>> import torch
>>> ids = torch.tensor([[1, 2, 3], [4, 5, 0]])
>>> feed = {"input_ids": ids, "attention_mask": (ids > 0).long(), "use_cache": False}
>>> check_model_inputs(feed), has_token_ids(feed)
(2, True)
>>> call(lambda input_ids, attention_mask, use_cache: attention_mask.sum().item(), feed)
5
"""
from __future__ import annotations

from collections.abc import Mapping

import torch


def check_model_inputs(inputs) -> int:
    """The batch size of ``inputs`` (a tensor or a mapping of keyword arguments), or a ValueError saying what is
    wrong with them."""
    if isinstance(inputs, Mapping):
        return _check_mapping(inputs)
    if not isinstance(inputs, torch.Tensor):
        raise ValueError(f"inputs of type {type(inputs).__name__} are not allowed: give a torch.Tensor [batch, ...] "
                         "or a mapping of the model's keyword arguments")
    if inputs.dtype == torch.bool or inputs.dtype.is_complex:
        raise ValueError(f"inputs of dtype {inputs.dtype} are not allowed: give floating-point values or integer "
                         "token ids")
    floating = torch.is_floating_point(inputs)
    if inputs.dim() < (2 if floating else 1) or inputs.shape[0] < 2:
        raise ValueError(f"inputs of shape {tuple(inputs.shape)} are not allowed: give a batch of at least 2 inputs "
                         "as a tensor [batch, ...]")
    if not bool(torch.isfinite(inputs).all()):
        bad = int((~torch.isfinite(inputs)).sum())
        raise ValueError(f"inputs with {bad} non-finite value(s) are not allowed: give finite values")
    return inputs.shape[0]


def _check_mapping(inputs) -> int:
    keys = [k for k in inputs if not isinstance(k, str)]
    if keys:
        raise ValueError(f"inputs with key {keys[0]!r} are not allowed: a mapping of inputs holds the model's keyword "
                         "arguments, named by strings")
    tensors = {k: v for k, v in inputs.items() if isinstance(v, torch.Tensor)}
    complex_ = [k for k, v in tensors.items() if v.dtype.is_complex]
    if complex_:
        raise ValueError(f"inputs[{complex_[0]!r}] of dtype {tensors[complex_[0]].dtype} is not allowed: give real "
                         "values")
    sizes = {k: v.shape[0] for k, v in tensors.items() if v.dim() >= 1 and v.shape[0] != 1}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"inputs whose tensors have first dimensions {sizes} are not allowed: a mapping's tensors "
                         "share their first dimension, the batch")
    if not sizes or next(iter(sizes.values())) < 2:
        shapes = {k: tuple(v.shape) for k, v in tensors.items()}
        raise ValueError(f"inputs with tensors of shapes {shapes} are not allowed: give a batch of at least 2 inputs "
                         "(tensors [batch, ...])")
    return next(iter(sizes.values()))


class Keyword(str):
    """The key of the keyword input that is x^0 (where ``start`` names one of the mapping's keys)."""


def keyword_start(net, start, inputs):
    """``start`` as a :class:`Keyword` where it names one of the mapping ``inputs``' keys (the tensor there must be
    floating-point [batch, ...]), else None."""
    if not isinstance(inputs, Mapping) or not isinstance(start, str) or start not in inputs:
        return None
    if start in dict(net.named_modules()):
        raise ValueError(f"start={start!r} names both a module and one of the inputs: rename one")
    x = inputs[start]
    if not isinstance(x, torch.Tensor) or not torch.is_floating_point(x):
        raise ValueError(f"start={start!r} names inputs[{start!r}], a {_kind(x)}: x^0 is what gradients are taken "
                         "with respect to, so name a floating-point tensor [batch, ...] or a module")
    try:
        check_model_inputs(x)
    except ValueError as exc:
        raise ValueError(f"start={start!r}: inputs[{start!r}]: {exc}") from None
    return Keyword(start)


def bind(fn, inputs, key):
    """``fn`` as a function of x^0 alone, the mapping's keyword input ``key``: x -> fn(**inputs with x at key)."""
    return lambda x: fn(**{**inputs, key: x})


def _kind(x) -> str:
    return f"tensor of dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__


def describe(inputs) -> str:
    """Inputs in a message: a tensor by its shape and dtype, a mapping by its keys and theirs.

    >>> describe({"input_ids": torch.zeros(2, 5, dtype=torch.long), "use_cache": False})
    'input_ids: [2, 5] torch.int64, use_cache: bool'
    """
    def one(x):
        return f"{list(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
    if isinstance(inputs, Mapping):
        return ", ".join(f"{k}: {one(v)}" for k, v in inputs.items())
    return one(inputs)


def has_token_ids(inputs) -> bool:
    """Whether integer tensors (token ids) are among ``inputs``: then x^0 is an embedding's output."""
    tensors = inputs.values() if isinstance(inputs, Mapping) else [inputs]
    return any(isinstance(t, torch.Tensor) and not torch.is_floating_point(t) and t.dtype != torch.bool
               for t in tensors)


def placed(inputs, dtype, device):
    """``inputs`` on ``device``, detached, floating-point tensors in ``dtype`` (token ids and masks keep theirs)."""
    def move(t):
        if not isinstance(t, torch.Tensor):
            return t
        return t.detach().to(device=device, dtype=dtype if torch.is_floating_point(t) else t.dtype)
    if isinstance(inputs, Mapping):
        return {k: move(v) for k, v in inputs.items()}
    return move(inputs)


def call(fn, inputs):
    """``fn`` (a model, or a function that runs one) fed ``inputs``: ``fn(**inputs)`` for a mapping."""
    return fn(**inputs) if isinstance(inputs, Mapping) else fn(inputs)


def batch_size(inputs) -> int:
    """The batch size of checked inputs."""
    if not isinstance(inputs, Mapping):
        return inputs.shape[0]
    return max(v.shape[0] for v in inputs.values() if isinstance(v, torch.Tensor) and v.dim() >= 1)


def device_of(inputs) -> torch.device:
    """The device of checked inputs (a mapping's first tensor's)."""
    if not isinstance(inputs, Mapping):
        return inputs.device
    return next(v.device for v in inputs.values() if isinstance(v, torch.Tensor))
