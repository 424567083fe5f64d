"""The maps of a pointwise nonlinearity on Gaussian coordinates, shared by ``dense`` and ``act``.

Example
-------
>>> from sigprop.theory import relu
>>> from sigprop.theory.state import PreActivation
>>> out, chi = pointwise(relu, PreActivation(2, 2, 1))
>>> out.p_a, chi.chi_a
(1, 1/2)
"""
from __future__ import annotations

from ..activations import Activation
from ..state import Backward, PairState, PreActivation


def pointwise(act: Activation, pre: PreActivation) -> tuple[PairState, Backward]:
    """φ applied to Gaussian coordinates with covariance ``pre``: the output state (second moments, kernel,
    means) and the backward factors E[φ'²], E[φ'(u)φ'(v)] (Poole et al. 2016; Schoenholz et al. 2017). The one
    place these maps are written; ``dense`` composes them with its weights."""
    out = PairState(act.second_moment(pre.q_a), act.second_moment(pre.q_b), act.kernel(pre.q_a, pre.q_b, pre.q_ab),
                    act.mean(pre.q_a), act.mean(pre.q_b))
    chi = Backward(act.dsecond_moment(pre.q_a), act.dsecond_moment(pre.q_b), act.dkernel(pre.q_a, pre.q_b, pre.q_ab))
    return out, chi
