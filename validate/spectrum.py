"""The spread of a sampled network's input–output Jacobian spectrum, per seed and over seeds.

For each seed: one input x with ‖x‖²/n = q0, the exact Jacobian J = ∂x^L/∂x (``torch.func.jacrev``), and the
squared singular values λ of J: their mean m₁ (reported as log m₁) and normalized variance Var(λ)/m₁². The
means over seeds come with Student-t intervals. ``sigprop.numerics.spectrum`` predicts both.

Example
-------
>>> from sigprop.validate.spectrum import measure_jacobian_spectrum
>>> from sigprop.theory import parse
>>> m = measure_jacobian_spectrum(parse("4*dense(relu,sw2=2,weights=orthogonal)"), width=64, seeds=3)
>>> sorted(m)
['log_mean', 'variance']
"""
from __future__ import annotations

import numpy as np
import torch

from ..checks import check_inputs
from .build import build, resolve_dtype
from .intervals import t_interval
from .measure import check_measurement, make_inputs


def jacobian_eigenvalues(net, x: torch.Tensor) -> torch.Tensor:
    """The eigenvalues of JJᵀ (the squared singular values of J = ∂net(x)/∂x) for one input row x."""
    jac = torch.func.jacrev(lambda v: net(v[None])[0][0])(x)
    return torch.linalg.svdvals(jac) ** 2


def measure_jacobian_spectrum(network, width: int = 256, seeds: int = 5, q0: float = 1.0, dtype="float64",
                              device="cpu") -> dict:
    """``{"log_mean": interval, "variance": interval}``: log m₁ and Var(λ)/m₁² of the squared singular values of
    the end-to-end Jacobian, each ``{"mean", "lo", "hi", "n"}`` over ``seeds`` sampled networks."""
    check_inputs(q0, 0.0)
    check_measurement([width], seeds, "exact", dtype, device)
    log_mean, variance = np.empty(seeds), np.empty(seeds)
    for seed in range(seeds):
        net = build(network, width, seed=seed, dtype=dtype, device=device)
        x = make_inputs(width, q0, 0.0, torch.Generator().manual_seed(10_000 + seed), resolve_dtype(dtype), device)[0]
        lam = jacobian_eigenvalues(net, x).detach().to(torch.float64)
        m1 = lam.mean()
        log_mean[seed], variance[seed] = float(torch.log(m1)), float(lam.var(unbiased=False) / m1**2)
    return {"log_mean": t_interval(log_mean), "variance": t_interval(variance)}

