"""Numbers for :mod:`sigprop.theory.collapsing`: a unit's expected standard deviation and sign diversity over a
batch of B equicorrelated inputs, and both along a prediction's pre-activation layers.

The standard deviation is theory's closed form (Gamma functions). The sign diversity is theory's integral over
the unit's draw z₀: for a numeric B its binomial sum is expanded into B + 1 terms and lambdified, and
``scipy.integrate.quad`` integrates it against the normal density, with quad's error estimate (``error=True``).

Example
-------
>>> from sigprop.numerics.collapsing import expected_batch_sign_diversity, expected_batch_std
>>> round(expected_batch_std(1.0, 0.0, 2), 12)                      # 1/√π
0.564189583548
>>> round(expected_batch_sign_diversity(1.0, 0.5, 64), 4)           # below the large-batch 1/4
0.2462
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import sympy as sp
from scipy import integrate

from ..theory import collapsing as T
from ..theory import symbols as S


#: the largest batch whose binomial sum is expanded (its B + 1 terms are compiled); beyond it the large-batch
#: limit :func:`sigprop.numerics.signs.expected_sign_diversity` is within 1/(2√B)
MAX_BATCH = 512


def _numbers(q, c, batch, negative: bool = False):
    if not (np.isfinite(q) and q > 0):
        raise ValueError(f"q={q!r} is not allowed: a variance must be a finite number > 0")
    if isinstance(batch, bool) or int(batch) != batch or batch < 2:
        raise ValueError(f"B={batch!r} is not allowed: a batch has an integer number >= 2 of inputs")
    if negative and not (np.isfinite(c) and -1 / (batch - 1) <= c < 1):
        raise ValueError(f"c={c!r} is not allowed: an exchangeable batch of {batch} inputs with a spread has "
                         "-1/(B - 1) <= c < 1")
    if not negative and not (np.isfinite(c) and 0 <= c < 1):
        raise ValueError(f"c={c!r} is not allowed: an equicorrelated batch with a spread has 0 <= c < 1 here (a unit's "
                         "sign count is binomial given its common draw only for c >= 0)")
    return float(q), float(c), int(batch)


@lru_cache(maxsize=None)
def _std():
    return sp.lambdify((S.q, S.c, T.B), T.expected_batch_std().rhs, modules=["scipy", np])


def expected_batch_std(q: float, c: float, batch: int) -> float:
    """E over units of a unit's standard deviation over ``batch`` equicorrelated inputs (theory's closed form),
    −1/(B − 1) <= c < 1."""
    q, c, batch = _numbers(q, c, batch, negative=True)
    return float(_std()(q, c, batch))


@lru_cache(maxsize=None)
def _integrand(c: float, batch: int):
    rhs = T.expected_batch_sign_diversity(1, sp.Float(c, 17), batch).rhs
    if not isinstance(rhs, sp.Integral):
        return float(rhs)
    body = rhs.function.doit()
    return sp.lambdify(T.z0, body, modules=["scipy", np])


def expected_batch_sign_diversity(q: float, c: float, batch: int, error: bool = False):
    """E over units of a unit's sign diversity over ``batch`` equicorrelated inputs; with ``error=True`` also
    quad's absolute error estimate (0 where theory's form is a number)."""
    q, c, batch = _numbers(q, c, batch)
    if batch > MAX_BATCH:
        raise ValueError(f"B={batch} is above {MAX_BATCH}: use the large-batch limit "
                         "sigprop.numerics.signs.expected_sign_diversity (within 1/(2*sqrt(B)) of this)")
    f = _integrand(c, batch)
    if isinstance(f, float):
        return (f, 0.0) if error else f
    value, err = integrate.quad(f, -np.inf, np.inf, epsabs=1e-13, epsrel=1e-11, limit=200)
    return (value, err) if error else value


def predicted_collapsing(prediction, batch: int) -> dict:
    """Per pre-activation layer of a prediction (``layers``): the expected standard deviation and sign diversity
    of its units over a batch of ``batch`` inputs at the prediction's q and c, NaN where c < 0: there the batch
    has been through a training-mode batchnorm (c = −1/(B − 1)), whose output lies on a sphere, not a Gaussian
    (each unit's batch standard deviation is exactly its gain), and the sign count is not binomial given a
    common draw."""
    q = np.exp(prediction.raw["log_q"]).mean(axis=1)
    c = np.asarray(prediction.raw["c"], dtype=float)
    std, div = [], []
    for qi, ci in zip(q, c):
        ok = np.isfinite(qi) and qi > 0 and 0 <= ci < 1
        std.append(expected_batch_std(qi, ci, batch) if ok else np.nan)
        div.append(expected_batch_sign_diversity(qi, ci, batch) if ok else np.nan)
    return {"layers": np.asarray(prediction.layers["q"]), "std": np.array(std), "sign_diversity": np.array(div)}
