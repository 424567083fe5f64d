"""The backward half of the mean-field recursion: the gradient's second moments from the output down.

Each block's backward factors (:class:`~sigprop.theory.state.Backward`, gradient independence: Schoenholz et al.
2017, Yang & Schoenholz 2017) map the output gradient's second moments G_aa, G_bb, G_ab of two inputs to its
input's. :func:`gradient_pass` runs them over the depth for many configurations at once and gives log GSC(l, L)
(Philipp, Song & Carbonell 2018) and the gradient correlation across inputs G_ab/√(G_aa G_bb) (Balduzzi et al.
2017) at every layer; :func:`sigprop.numerics.predict` runs it for one configuration, with the joint maps of a
training-mode batchnorm and the pointwise block after it, and :func:`sigprop.numerics.predict_grid` for a grid.

Example
-------
>>> import numpy as np
>>> chi = np.tile([[2.0], [2.0], [1.0], [0.0], [0.0], [0.0]], (3, 1, 1))    # 3 blocks, χ = 2, χ_ab = 1
>>> log_gsc, corr = gradient_pass(chi, np.zeros((3, 1, 2)))
>>> np.exp(log_gsc[:, 0, 0]).round(6).tolist(), corr[:, 0].tolist()        # GSC(l, 3) = √2^(3 − l)
([2.828427, 2.0, 1.414214, 1.0], [0.125, 0.25, 0.5, 1.0])
"""
from __future__ import annotations

import math

import numpy as np

from ..theory.state import Backward


def gradient_pass(chi_all, ratio, joint=None):
    """(log GSC(l, L) [L + 1, n, 2] per input, gradient correlation [L + 1, n]) at layers 0..L.

    ``chi_all`` [L, 6, n]: each block's backward factors (χ_a, χ_b, χ_ab, μ_a, μ_b, ν) per configuration;
    ``ratio`` [L, n, 2]: log p_in/(r p_out) of each block per input (r its width ratio), so that
    GSC(l, l + 1)² = (G_in/G_out)·p_in/(r p_out); ``joint``: {block index i: Backward} where block i (a
    training-mode batchnorm) and block i + 1 map jointly, from block i + 1's output to block i's input.

    GSC is that of probes independent across the inputs (G_ab = 0 at the output), the gradient correlation that of
    one probe shared by them (G_ab = G_aa)."""
    L, _, n = np.shape(chi_all)
    steps, _ = _pull_back(chi_all, joint or {}, (1.0, 1.0, 0.0))
    _, corr = _pull_back(chi_all, joint or {}, (1.0, 1.0, 1.0))
    log_gsc = np.zeros((L + 1, n, 2))
    log_gsc[:-1] = np.cumsum((0.5 * (steps + ratio))[::-1], axis=0)[::-1]
    return log_gsc, corr


def _pull_back(chi_all, joint, start):
    """Per block i, log G_i − log G_{i+1} of G_aa and G_bb ([L, n, 2]), and G_ab/√(G_aa G_bb) at layers 0..L
    ([L + 1, n]), from the output's second moments ``start`` down. Each step's log-ratio is that of its own output
    and input, both normalized by the input's largest entry: a difference of accumulated logarithms would lose
    |log G|·eps per layer, an error that grows as the square of the depth where G explodes or vanishes."""
    L, _, n = np.shape(chi_all)
    steps, corr = np.zeros((L, n, 2)), np.ones((L + 1, n))
    corr[L] = start[2] / math.sqrt(start[0] * start[1])
    above = above2 = np.array([np.full(n, v, dtype=float) for v in start])    # normalized G at layers i + 1, i + 2
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(L - 1, -1, -1):
            if i in joint:               # batchnorm + pointwise block: from the pointwise block's output
                g = np.array(joint[i].apply(*above2))
                steps[i] = np.log(g[:2] / above2[:2]).T - steps[i + 1]
            else:
                g = np.array(Backward(*chi_all[i]).apply(*above))
                steps[i] = np.log(g[:2] / above[:2]).T
            corr[i] = np.where(np.minimum(g[0], g[1]) > 0, g[2] / np.sqrt(g[0] * g[1]), np.nan)
            top = np.max(np.abs(g[:2]), axis=0)
            ok = top > 0
            above2, above = above, np.where(ok, g / np.where(ok, top, 1.0), g)
    return steps, corr
