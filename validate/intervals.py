"""95% intervals over seeds, from the seeds where a quantity is defined.

A quantity can be undefined for some seeds: at width 8 a ReLU network's units can all die, so its output is 0
and GSC is 0/0. Such seeds are left out layer by layer, and the number left out is reported with the value;
with no seed left the quantity is an error, with one the interval is undefined (NaN, written as an empty CSV
cell and JSON null).

Example
-------
>>> import numpy as np
>>> s = t_interval(np.array([[1.0, 2.0], [3.0, np.nan], [2.0, 4.0]]))
>>> s["mean"].tolist(), s["n"].tolist()
([2.0, 3.0], [3, 2])
"""
from __future__ import annotations

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
BOOTSTRAP = 2000


def t_interval(per_seed: np.ndarray) -> dict:
    """Mean over seeds (axis 0) of the finite values, with a Student-t interval, and ``n`` (seeds used)."""
    ok = np.isfinite(per_seed)
    n = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(ok, per_seed, 0.0).sum(axis=0) / n
        var = (np.where(ok, per_seed - mean, 0.0) ** 2).sum(axis=0) / (n - 1)
        half = stats.t.ppf(0.5 + CONFIDENCE / 2, np.maximum(n - 1, 1)) * np.sqrt(var / n)
    half = np.where(n >= 2, half, np.nan)
    return {"mean": mean, "lo": mean - half, "hi": mean + half, "n": n}


def bootstrap_interval(parts: tuple, pooled, seed: int = 12345) -> dict:
    """``pooled`` of the parts' means over seeds (axis 0), with a percentile bootstrap interval over seeds.

    A seed counts at a layer when all its parts are finite there and ``pooled`` of its own parts is finite.
    """
    parts = tuple(np.asarray(p, dtype=float) for p in parts)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        ok = np.isfinite(pooled(*parts)) & np.all([np.isfinite(p) for p in parts], axis=0)
    n_seeds = ok.shape[0]
    n = ok.sum(axis=0)
    clean = [np.where(ok, p, 0.0) for p in parts]
    okf = ok.astype(float)
    rng = np.random.default_rng(seed)
    counts = np.zeros((BOOTSTRAP, n_seeds))
    np.add.at(counts, (np.repeat(np.arange(BOOTSTRAP), n_seeds), rng.integers(0, n_seeds, BOOTSTRAP * n_seeds)), 1)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        point = pooled(*(c.sum(axis=0) / n for c in clean))
        weight = counts @ okf
        boots = pooled(*((counts @ c) / weight for c in clean))
        lo, hi = np.nanquantile(np.where(np.isfinite(boots), boots, np.nan),
                                [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2], axis=0)
    undefined = n < 2
    return {"mean": point, "lo": np.where(undefined, np.nan, lo), "hi": np.where(undefined, np.nan, hi), "n": n}
