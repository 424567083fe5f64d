"""Input checks shared by numerics, validate and the command line: a ValueError naming the parameter, the value
and what is allowed."""
from __future__ import annotations

import math
import numbers


def check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name}={value!r} is not allowed: it must be an integer >= 1")
    return int(value)


def check_inputs(q0, c0, m0=0.0) -> None:
    """The two inputs' statistics: mean square q0 > 0, correlation c0 in [-1, 1], unit mean m0 with m0² <= q0."""
    for name, v in (("q0", q0), ("c0", c0), ("m0", m0)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise ValueError(f"{name}={v!r} is not allowed: it must be a finite real number")
    if q0 <= 0:
        raise ValueError(f"q0={q0!r} is not allowed: the inputs' mean square must be > 0")
    if not -1.0 <= c0 <= 1.0:
        raise ValueError(f"c0={c0!r} is not allowed: a correlation must lie in [-1, 1]")
    if m0 * m0 > q0:
        raise ValueError(f"m0={m0!r} is not allowed: the unit mean satisfies m0² <= q0 = {q0!r}")
