"""Collapsing domains over a finite batch: theory's forms evaluated, against Monte Carlo over simulated units and
against the large-batch limit."""
import math

import numpy as np
import pytest

from sigprop.numerics import collapsing as N
from sigprop.numerics.signs import expected_sign_diversity


def _simulated_units(q, c, batch, units=200_000, seed=0):
    """Units whose values over the batch are √(qc) z₀ + N(0, q(1 − c)) (the model's own sampling, drawn here)."""
    rng = np.random.default_rng(seed)
    h = math.sqrt(q * c) * rng.standard_normal((units, 1)) + math.sqrt(q * (1 - c)) * rng.standard_normal((units, batch))
    std = h.std(axis=1)
    pos = (h > 0).mean(axis=1)
    div = np.minimum(pos, 1 - pos)
    return std, div


@pytest.mark.parametrize("q, c, batch", [(1.0, 0.0, 4), (2.5, 0.3, 16), (0.7, 0.9, 64), (1.0, 0.99, 8)])
def test_against_simulated_units(q, c, batch):
    std, div = _simulated_units(q, c, batch)
    se_std, se_div = std.std() / math.sqrt(len(std)), div.std() / math.sqrt(len(div))
    assert abs(N.expected_batch_std(q, c, batch) - std.mean()) < 5 * se_std
    value, err = N.expected_batch_sign_diversity(q, c, batch, error=True)
    assert err < 1e-10 and abs(value - div.mean()) < 5 * se_div


@pytest.mark.parametrize("batch", [3, 8, 64])
def test_std_of_an_exchangeable_batch_with_negative_correlation(batch):
    """c down to −1/(B − 1) (an exchangeable Gaussian batch whose units sum to nearly 0): 200000 units drawn from
    the covariance q((1 − c)I + c11ᵀ) itself, not from the decomposition the formula rests on."""
    q, c = 1.7, -1 / (batch - 1)
    cov = q * ((1 - c) * np.eye(batch) + c * np.ones((batch, batch)))
    vals, vecs = np.linalg.eigh(cov)
    units = np.random.default_rng(batch).standard_normal((200_000, batch)) * np.sqrt(np.clip(vals, 0, None)) @ vecs.T
    std = units.std(axis=1)
    assert abs(N.expected_batch_std(q, c, batch) - std.mean()) < 5 * std.std() / math.sqrt(len(std))
    with pytest.raises(ValueError, match=r"c=-0.6 is not allowed: an exchangeable batch of 3 inputs .* -1/\(B - 1\)"):
        N.expected_batch_std(1.0, -0.6, 3)


def test_closed_cases():
    assert N.expected_batch_std(1.0, 0.0, 2) == pytest.approx(1 / math.sqrt(math.pi), rel=1e-15)
    assert N.expected_batch_sign_diversity(3.0, 0.0, 2) == 0.25                  # signs differ with probability 1/2
    # B = 3: the minority is 1 of 3 unless all agree: (1/3)(1 − p³ − (1 − p)³), at c = 0 (p = 1/2): 1/4
    assert N.expected_batch_sign_diversity(1.0, 0.0, 3) == pytest.approx(0.25, rel=1e-15)


@pytest.mark.parametrize("c", [0.2, 0.5, 0.9])
def test_large_batch_limit(c):
    """Below the infinite-data value 1/2 − arcsin(√c)/π by at most 1/(2√B) (E|K/B − p| ≤ √(p(1 − p)/B))."""
    inf = expected_sign_diversity(1.0, c)
    for batch in (16, 128, 512):
        gap = inf - N.expected_batch_sign_diversity(1.0, c, batch)
        assert 0 < gap <= 0.5 / math.sqrt(batch)


@pytest.mark.parametrize("kwargs, mentions", [
    (dict(q=0.0, c=0.5, batch=8), "q=0.0"), (dict(q=1.0, c=1.0, batch=8), "c=1.0"),
    (dict(q=1.0, c=-0.1, batch=8), "c=-0.1"), (dict(q=1.0, c=0.5, batch=1), "B=1"),
    (dict(q=1.0, c=0.5, batch=2.5), "B=2.5"), (dict(q=1.0, c=0.5, batch=4096), "above 512"),
])
def test_bad_input(kwargs, mentions):
    with pytest.raises(ValueError, match=mentions):
        N.expected_batch_sign_diversity(**kwargs)
