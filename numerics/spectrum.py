"""The predicted spread of a dense network's input–output Jacobian spectrum, layer by layer.

For a sequence of ``dense`` blocks (equal widths), the mean m₁ and the normalized variance σ²/m₁² of the squared
singular values of J = ∂x^l/∂x^0, from :mod:`sigprop.theory.spectrum` evaluated along ``predict``'s pre-activation
variances q_l: log m₁ = Σ log χ₁(q_l) and σ²/m₁² = Σ [E[φ'⁴]/E[φ'²]² − 1 + s_W] (s_W = 1 for Gaussian, 0 for
orthogonal weights).

Example
-------
>>> from sigprop.numerics.spectrum import jacobian_spectrum
>>> from sigprop.theory import parse
>>> float(jacobian_spectrum(parse("10*dense(relu,sw2=2)")).variance[-1])
20.0
>>> float(jacobian_spectrum(parse("10*dense(relu,sw2=2,weights=orthogonal)")).variance[-1])
10.0
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..theory import Dense, as_network, laws, spectrum
from ..theory import symbols as S
from .compile import compile_expression
from .iterate import predict


@dataclass(frozen=True)
class JacobianSpectrum:
    """Per dense layer l (block numbers ``layers``): ``log_mean`` = log m₁ and ``variance`` = σ²/m₁² of the squared
    singular values of the Jacobian from the input to that layer's output."""

    layers: np.ndarray
    log_mean: np.ndarray
    variance: np.ndarray


@lru_cache(maxsize=None)
def _maps(act, weights):
    return (compile_expression((S.sigma_w2, S.q), laws.chi_1(act, S.sigma_w2, S.q).rhs),
            compile_expression((S.q,), spectrum.variance_increment(act, S.q, weights).rhs))


def jacobian_spectrum(network, q0: float = 1.0) -> JacobianSpectrum:
    """The predicted m₁ and σ²/m₁² after each block of a network of ``dense`` blocks of equal widths; a ValueError
    names the first block that is not one (the free-probability law is stated for those)."""
    net = as_network(network)
    for i, b in enumerate(net.blocks, start=1):
        if not isinstance(b, Dense) or b.width != 1:
            raise ValueError(f"block {i} ({b.describe()}): the Jacobian spectrum is predicted for networks of dense "
                             "blocks of equal widths (width=1) only")
    q = np.exp(predict(net, q0=q0, c0=0.0).raw["log_q"][:, 0])
    log_chi, inc = np.empty(net.depth), np.empty(net.depth)
    for i, (b, qi) in enumerate(zip(net.blocks, q)):
        chi_1, increment = _maps(b.activation, b.weights or "gaussian")
        log_chi[i], inc[i] = np.log(chi_1(float(b.sw2), qi)), increment(qi)
    return JacobianSpectrum(np.arange(1, net.depth + 1), np.cumsum(log_chi), np.cumsum(inc))
