"""Whether a model's representations keep the inputs of its batch, their first dimension, independent.

:func:`sigprop.validate.measure_model` takes the first dimension of x^0 and of every representation as the batch:
each input's Jacobian ‖∂x^L_b/∂x^l_b‖ and its statistics are read from its own row. A model that mixes the rows
would be measured wrongly without a sign, and PyTorch's default does: ``nn.MultiheadAttention``,
``nn.TransformerEncoderLayer``, ``nn.LSTM``, ``nn.GRU`` and ``nn.RNN`` take the first dimension as the sequence unless
built with ``batch_first=True``. :func:`check_independent` runs the model three times, changing the first input
alone, then the last, and raises where another input's row of a representation moves (also where a layer's
output is sequence first inside a model whose output is batch first). Batchnorm that normalizes by the batch (in
training mode, or without running statistics) mixes it by design: it is measured as such (the batch's Jacobian,
Hutchinson probes independent across the inputs) and not checked here.

Example
-------
>>> import torch
>>> from torch import nn
>>> x0 = torch.randn(5, 3, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
>>> batch_first = nn.LSTM(8, 8, batch_first=True).double()
>>> check_independent(lambda x: batch_first(x)[0], x0)
>>> lstm = nn.LSTM(8, 8).double()                       # sequence first: rows are time steps
>>> try:
...     check_independent(lambda x: lstm(x)[0], x0, lstm)
... except ValueError as e:
...     print(str(e)[:80])
the inputs of the batch are mixed: changing input 0 alone moves the other inputs
"""
from __future__ import annotations

import torch

from .build import cuda_devices

#: the largest change of the other inputs' outputs, relative to their largest magnitude, in units of the dtype's
#: machine epsilon, that counts as none: a row of a matrix product does not depend on the other rows, so
#: independent inputs give the same numbers to a few roundings at most
TOLERANCE_EPS = 64


def check_independent(run, x0: torch.Tensor, model=None) -> None:
    """Raise a ValueError where ``run`` mixes the batch. ``run(x)`` returns the representations (and pre-activations)
    of a forward pass from x^0 = x as ``(label, tensor [batch, ...])`` pairs (a bare tensor stands for the output).
    The first input is changed alone (x0[0] → 2 x0[0] + x0[1]), then the last (so that mixing in either direction
    along the batch, causal or anti-causal, shows), and where another input's row of one of them moves by more than
    :data:`TOLERANCE_EPS` roundings of its largest magnitude, the first such one is named. Every run draws the same
    random numbers (a forked random state, seeded alike: dropout masks agree); the global random state is left as
    found. ``model``: its sequence-first modules are named in the message."""
    batch = x0.shape[0]
    if batch < 2:
        return
    changes = []
    for i, j in ((0, 1), (batch - 1, batch - 2)):
        moved = x0.clone()
        moved[i] = 2 * x0[i] + x0[j]
        changes.append((i, moved))
    runs = []
    with torch.no_grad(), torch.random.fork_rng(devices=cuda_devices()):
        for x in (x0, *(moved for _, moved in changes)):
            torch.manual_seed(0)
            out = run(x)
            runs.append([("the output", out)] if isinstance(out, torch.Tensor) else list(out))
    for (i, _), moved_run in zip(changes, runs[1:]):
        others = [k for k in range(batch) if k != i]
        for (label, before), (_, after) in zip(runs[0], moved_run):
            rows, moved_rows = before[others].detach().double(), after[others].detach().double()
            scale, change = rows.abs().max(), (moved_rows - rows).abs().max()
            if torch.isfinite(change) and change > TOLERANCE_EPS * torch.finfo(before.dtype).eps * scale:
                raise ValueError(f"the inputs of the batch are mixed: changing input {i} alone moves the other inputs' "
                                 f"rows of {label} by up to {float(change / scale):.2g} of its largest magnitude. "
                                 "measure_model reads each input from its row of the first dimension of every "
                                 "representation and pre-activation, so the rows must be independent. "
                                 f"{_advice(model)}")


def _advice(model) -> str:
    """What to do: name ``model``'s modules that take the first dimension as the sequence, if it has any."""
    names = [] if model is None else [n for n, m in model.named_modules() if getattr(m, "batch_first", 1) is False]
    if not names:
        return ("A layer that computes across that dimension mixes them: attention or recurrence over it (layers "
                "built with batch_first=False, PyTorch's default), or statistics over the batch (torch's batchnorm "
                "alone is measured as the batch's Jacobian). Build such layers batch first, or observe (observe=[...]) "
                "and read pre-activations at (pre=[...]) modules whose outputs are [batch, ...] with rows computed "
                "apart.")
    shown = ", ".join(repr(n) for n in names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    return (f"{shown} take that dimension as the sequence (built with batch_first=False, PyTorch's default): build "
            "them with batch_first=True and feed [batch, sequence, ...].")
