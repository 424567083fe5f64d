"""Input checks shared by numerics, validate and the command line: a ValueError naming the parameter, the value
and what is allowed."""
from __future__ import annotations

import math
import numbers


def check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name}={value!r} is not allowed: it must be an integer >= 1")
    return int(value)


def check_seed(seed) -> int:
    """A random seed: an integer >= 0."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed={seed!r} is not allowed: it must be an integer >= 0")
    return int(seed)


def check_progress(progress) -> None:
    """A progress callback: None or a callable of no arguments (e.g. a tqdm bar's ``update``)."""
    if progress is not None and not callable(progress):
        raise ValueError(f"progress={progress!r} is not allowed: give a callable of no arguments, invoked as work "
                         "is done (e.g. a tqdm bar's update), or None")


def check_seeds(seeds) -> list[int]:
    """The seeds of a measurement, one independent network each: a number n >= 2 (seeds 0..n-1) or a list of at
    least 2 distinct integers >= 0.

    >>> check_seeds(3), check_seeds([4, 7])
    ([0, 1, 2], [4, 7])
    """
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        seed_list = list(range(check_positive_int("seeds", seeds)))
    elif isinstance(seeds, (list, tuple, range)):
        if any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 0 for s in seeds):
            raise ValueError(f"seeds={seeds!r} is not allowed: seeds are integers >= 0")
        seed_list = [int(s) for s in seeds]
        if len(set(seed_list)) < len(seed_list):
            raise ValueError(f"seeds={seeds!r} is not allowed: a seed given twice is the same network twice, and "
                             "intervals need independent networks; give distinct seeds")
    else:
        raise ValueError(f"seeds={seeds!r} is not allowed: give a number of seeds or a list of seeds")
    if len(seed_list) < 2:
        raise ValueError(f"seeds={seeds!r} is not allowed: intervals need at least 2 seeds")
    return seed_list


def input_norms(q0) -> tuple[float, float]:
    """(q_a, q_b) from ``q0``: one mean square for both inputs, or a pair (inputs of different norms)."""
    if isinstance(q0, (tuple, list)):
        if len(q0) != 2:
            raise ValueError(f"q0={q0!r} is not allowed: give one mean square or a pair (q_a, q_b)")
        return tuple(q0)
    return (q0, q0)


def check_inputs(q0, c0, m0=0.0) -> None:
    """The two inputs' statistics: mean square q0 > 0 (one number, or a pair (q_a, q_b)), correlation c0 in
    [-1, 1], unit mean m0 with m0² <= q0."""
    q_a, q_b = input_norms(q0)
    for name, v in (("q0", q_a), ("q0", q_b), ("c0", c0), ("m0", m0)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise ValueError(f"{name}={v!r} is not allowed: it must be a finite real number")
    if min(q_a, q_b) <= 0:
        raise ValueError(f"q0={q0!r} is not allowed: the inputs' mean square must be > 0")
    if not -1.0 <= c0 <= 1.0:
        raise ValueError(f"c0={c0!r} is not allowed: a correlation must lie in [-1, 1]")
    if m0 * m0 > min(q_a, q_b):
        raise ValueError(f"m0={m0!r} is not allowed: the unit mean satisfies m0² <= q0 = {q0!r}")


def parse_q0(text: str):
    """A command-line q0: ``1.5`` or ``1,2`` (the two inputs' mean squares)."""
    parts = text.split(",")
    try:
        values = [float(v) for v in parts]
    except ValueError:
        raise ValueError(f"q0={text!r} is not allowed: give a number or two separated by a comma") from None
    if len(values) > 2:
        raise ValueError(f"q0={text!r} is not allowed: give a number or two separated by a comma")
    return values[0] if len(values) == 1 else tuple(values)


def check_batch(batch):
    """A batch size: None (a pair of inputs), an integer >= 2, or inf (the large-batch limit)."""
    if batch is None:
        return None
    if isinstance(batch, float) and batch == math.inf:
        return math.inf
    if isinstance(batch, bool) or not isinstance(batch, numbers.Integral) or batch < 2:
        raise ValueError(f"batch={batch!r} is not allowed: give an integer >= 2 (a batch of that many inputs) or "
                         "inf (the large-batch limit)")
    return int(batch)


def parse_batch(text: str):
    """A command-line batch size: an integer >= 2 or ``inf``."""
    if text.strip().lower() == "inf":
        return math.inf
    try:
        return check_batch(int(text))
    except ValueError:
        raise ValueError(f"batch={text!r} is not allowed: give an integer >= 2 or inf") from None


def check_batch_inputs(q0, c0, batch, normalized: bool = False) -> None:
    """The inputs of an exchangeable batch of ``batch`` inputs (> 2, or inf): one mean square q0, and a correlation
    c0 that so many inputs can share (c0 >= −1/(B − 1)); ``normalized`` (training-mode batchnorm): also c0 < 1,
    since identical inputs have no batch variance."""
    if isinstance(q0, (tuple, list)):
        raise ValueError(f"q0={q0!r} is not allowed for a batch: every input of the batch has the same mean square; "
                         "give one q0")
    if normalized and c0 >= 1:
        raise ValueError(f"c0={c0!r} is not allowed with batchnorm in training mode: identical inputs have no batch "
                         "variance; use c0 < 1")
    if batch != math.inf and c0 < -1 / (batch - 1):
        raise ValueError(f"c0={c0!r} is not allowed: {batch} inputs cannot all have correlation below "
                         f"-1/(batch - 1) = {-1 / (batch - 1):.6g}")
