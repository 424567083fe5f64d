"""Whether a model's representations keep the inputs of its batch, their first dimension, independent.

:func:`sigprop.validate.measure_model` takes the first dimension of x^0 and of every representation as the batch:
each input's Jacobian ‖∂x^L_b/∂x^l_b‖ and its statistics are read from its own row. A model that mixes the rows
would be measured wrongly without a sign, and PyTorch's default does: ``nn.MultiheadAttention``,
``nn.TransformerEncoderLayer``, ``nn.LSTM``, ``nn.GRU`` and ``nn.RNN`` take the first dimension as the sequence unless
built with ``batch_first=True``. :func:`check_independent` runs the model again with some inputs changed, the others
as they were, in a few passes (about log2 of the batch) chosen so that every input is changed in one where every
other is not, and raises where an unchanged input's row of a representation moves (also where a layer's output is
sequence first inside a model whose output is batch first). A forward pass that is not bit-reproducible (a GPU
kernel summing with atomics, amplified by a chaotic deep network) is allowed as much movement as a repeated pass
of the same inputs shows, :data:`REPEAT_FACTOR` times over; every pass starts from the model's buffers as given
(state a forward pass updates, as a training-mode spectral norm's power iteration does). Batchnorm that normalizes
by the batch (in training mode, or without running statistics) mixes it by design: it is measured as such (the
batch's Jacobian, Hutchinson probes independent across the inputs) and not checked here.

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
...     print(str(e)[:76])
the inputs of the batch are mixed: changing inputs 0, 1 and 2 (the others as
"""
from __future__ import annotations

from contextlib import contextmanager
from itertools import combinations, islice
from math import comb

import torch

from .build import cuda_devices

#: the largest change of the other inputs' outputs, relative to their largest magnitude, in units of the dtype's
#: machine epsilon, that counts as none: a row of a matrix product does not depend on the other rows, so
#: independent inputs give the same numbers to a few roundings at most
TOLERANCE_EPS = 64

#: how many times the largest change between two passes of the same inputs a kept row may move: a forward pass
#: that is not bit-reproducible moves every row from pass to pass by about as much, and the largest of a pass's
#: changes varies from pass to pass by a small factor
REPEAT_FACTOR = 16


def check_independent(run, x0: torch.Tensor, model=None) -> None:
    """Raise a ValueError where ``run`` mixes the batch. ``run(x)`` returns the representations (and pre-activations)
    of a forward pass from x^0 = x as ``(label, tensor [batch, ...])`` pairs (a bare tensor stands for the output).
    Each pass of :func:`changed_sets` changes its inputs (x0[i] → 2 x0[i] + x0[i + 1], cyclically) and keeps the
    others; where an unchanged input's row of a representation moves by more than :data:`TOLERANCE_EPS` roundings
    of the largest magnitude of the unchanged rows, the first such representation is named. The first pass is run
    twice: where the two differ (a forward pass that is not bit-reproducible), a kept row may also move by
    :data:`REPEAT_FACTOR` times their largest difference in that representation. Every input is changed
    in some pass where any other is not, so mixing between any two inputs, in either direction, shows. Every run
    draws the same random numbers (a forked random state, seeded alike: dropout masks agree) and starts from
    ``model``'s buffers as given (a training-mode spectral norm's power iteration, which updates them, starts alike);
    the global random state and the buffers are left as found. ``model``: its buffers are restored before every pass
    and its sequence-first modules are named in the message."""
    batch = x0.shape[0]
    if batch < 2:
        return
    following = x0.roll(-1, dims=0)
    buffers = [] if model is None else [(b, b.detach().clone()) for b in model.buffers()]
    with torch.no_grad(), torch.random.fork_rng(devices=cuda_devices()), _restored(buffers):
        before = _run(run, x0, buffers)
        repeat = [_largest(_difference(a, b)) for (_, a), (_, b) in zip(before, _run(run, x0, buffers))]
        for changed in changed_sets(batch):
            moved = x0.clone()
            moved[changed] = 2 * x0[changed] + following[changed]
            kept = [k for k in range(batch) if k not in changed]
            for (label, given), (_, after), noise in zip(before, _run(run, moved, buffers), repeat):
                change = _difference(given[kept], after[kept]).reshape(len(kept), -1).amax(1)
                scale, worst = given[kept].detach().double().abs().max(), int(change.argmax())
                allowed = max(TOLERANCE_EPS * torch.finfo(given.dtype).eps * scale, REPEAT_FACTOR * noise)
                if torch.isfinite(change[worst]) and change[worst] > allowed:
                    raise ValueError(f"the inputs of the batch are mixed: changing inputs {_listed(changed)} (the "
                                     f"others as they were) moves input {kept[worst]}'s row of {label} by up to "
                                     f"{float(change[worst] / scale):.2g} of its largest magnitude"
                                     f"{_repeated(noise / scale)}. measure_model reads each input from its row of the "
                                     "first dimension of every representation and pre-activation, so the rows must be "
                                     f"independent. {_advice(model)}")


def changed_sets(batch: int) -> list[list[int]]:
    """The inputs each pass changes: input i gets the i-th of the ⌊k/2⌋-subsets of k passes (k the fewest with
    C(k, ⌊k/2⌋) >= batch) and is changed in the passes its subset names. Distinct subsets of one size never contain
    one another (Sperner), so for any two inputs i ≠ j some pass changes i and keeps j. k grows as about log2 of the
    batch: 2 passes for 2 inputs, 4 for 6, 8 for 64.

    >>> changed_sets(4)
    [[0, 1, 2], [0, 3], [1, 3], [2]]
    """
    k = 2
    while comb(k, k // 2) < batch:
        k += 1
    subsets = list(islice(combinations(range(k), k // 2), batch))
    return [[i for i, s in enumerate(subsets) if b in s] for b in range(k)]


def _run(run, x, buffers):
    """``run``'s ``(label, tensor)`` pairs on x, with the random state seeded and the ``(buffer, saved value)``
    pairs restored as for every other run."""
    _restore(buffers)
    torch.manual_seed(0)
    out = run(x)
    return [("the output", out)] if isinstance(out, torch.Tensor) else list(out)


def _restore(buffers) -> None:
    """Copy each saved value back into its buffer."""
    for buffer, saved in buffers:
        buffer.copy_(saved)


@contextmanager
def _restored(buffers):
    """Restore the ``(buffer, saved value)`` pairs on leaving."""
    try:
        yield
    finally:
        with torch.no_grad():
            _restore(buffers)


def _difference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """|a - b| in float64."""
    return (a.detach().double() - b.detach().double()).abs()


def _largest(change: torch.Tensor) -> float:
    """The largest finite entry of ``change`` (0 where there is none)."""
    finite = change[torch.isfinite(change)]
    return float(finite.max()) if finite.numel() else 0.0


def _repeated(noise: torch.Tensor) -> str:
    """What a repeated pass of the same inputs showed, where it differed."""
    if not noise > 0:
        return ""
    return (f" (a repeated pass of the same inputs moves it by up to {float(noise):.2g}: the forward pass is not "
            f"bit-reproducible, and {REPEAT_FACTOR} times that is allowed)")


def _listed(indices) -> str:
    """``0``, ``0 and 3``, ``0, 1 and 2``."""
    words = [str(i) for i in indices]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


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
