"""The residual route of :func:`~sigprop.numerics.finite_width.finite_width`: networks with residual blocks
``residual(dense(φ), alpha=α, beta=β)`` (identity skip, one dense layer in the branch), alone or beside dense
blocks of the same width.

An identity skip keeps every coordinate of x, so the path carries both inputs' representations unit by unit
(still O(n) per layer: each row of W enters through its projections α_i on the span of the two inputs, and
y = αx + βφ(√s AÊᵀx + b)). The Jacobian's conditional mean is no longer a span block plus an isotropic rest:
theory's :func:`~sigprop.theory.finite_width.residual_tangent_step` is applied backwards from the output, K = I
there, to the full n × n matrix K = E[J_{>l,p}ᵀ J_{>l,p'} | path] (O(n²) per layer and path; one pass gives
every start layer): its traces are exact given the path, so the pooled GSC and gradient correlation carry only
Monte Carlo error. One network's log tr JᵀJ is drawn log-normal with the variance of the martingale
E[‖J‖²_F | path, the blocks' free weights revealed from the input up]: a sum over blocks of
:func:`~sigprop.theory.finite_width.residual_increment_covariance`, with the K̄ above each block and the product
M = J_{<l}J_{<l}ᵀ below it, drawn: each path draws its free weights G̃ once
(:func:`~sigprop.theory.finite_width.residual_jacobian`, shared by the two inputs), so the sum is an unbiased
estimate of the conditional variance (each block's own free weights and those above integrated out in closed
form). The two inputs' draws are correlated as their increments are; the Jacobians from later start layers reuse
the whole network's relative increments above them. (The forward conditional mean of M in place of the draw
under-counts by Jensen: the increments are quadratic in M, and at depth 50, width 100 a ReLU ResNet's spread came
out 27% low.)

Paths are processed in groups whose n × n matrices fit in :data:`MEMORY` bytes.

Example
-------
>>> from sigprop.theory import parse
>>> from sigprop.numerics.finite_width import finite_width
>>> fw = finite_width(parse("4*residual(dense(relu,sw2=2),beta=0.5)"), width=16, chains=100)
>>> fw.mean["grad_corr"].shape, round(float(fw.mean["log_gsc_qm"][0]), 2)    # mean field: -0.27
((5,), -0.22)
>>> residual_reason(parse("residual(dense(relu),dense(linear))").blocks[0])[-36:]
' branch (others are not derived yet)'
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import sympy as sp

from ..theory import finite_width as F
from ..theory.blocks import Dense
from ..theory.blocks.residual import Residual
from .expectations import activation_functions
from .matrix_program import MatrixProgram

#: bytes of n × n matrices one group of paths may hold
MEMORY = 256 * 2**20
#: n × n arrays per path alive at once (three K, two B, G̃, J, temporaries), besides the products M below every
#: block (two per layer)
_ARRAYS = 12
#: the pairs of inputs whose K is carried: (a, a), (b, b), (a, b)
_PAIRS = ((0, 0), (1, 1), (0, 1))


def has_residual(blocks) -> bool:
    return any(isinstance(b, Residual) for b in blocks)


def residual_reason(block) -> str | None:
    """Why ``block`` cannot be part of the residual route, or None."""
    if isinstance(block, Residual):
        if block.skip or len(block.branch) != 1 or type(block.branch[0]) is not Dense:
            return (f"{block.describe()}: the finite-width prediction covers residual blocks with the identity "
                    "skip and one dense layer in the branch (others are not derived yet)")
        for name in ("alpha", "beta"):
            if not getattr(block, name).is_number:
                return f"{block.describe()}: {name} must be a number for a prediction"
        block = block.branch[0]
    elif type(block) is not Dense:
        return None
    if block.width != 1:
        return (f"{block.describe()}: a network with residual blocks keeps one width throughout in a finite-width "
                "prediction (width ratios other than 1 are not derived yet)")
    return None


@lru_cache(maxsize=None)
def _programs():
    """theory's residual matrix expressions, compiled: name → MatrixProgram."""
    exprs = {"step": F.residual_tangent_step(), "jacobian": F.residual_jacobian(), "product": F.residual_product_step(),
             "gradient": F.residual_increment_gradient(), "covariance": F.residual_increment_covariance()}
    return {name: MatrixProgram(e, diagonal=F.DIAGONAL) for name, e in exprs.items()}


@lru_cache(maxsize=None)
def _log_moments():
    """theory's log-normal log mean and log variance of a unit-mean variable, as functions of its variance."""
    var = sp.Symbol("var", nonnegative=True)
    return tuple(sp.lambdify(var, e, modules=np) for e in F.lognormal_log_moments(sp.S.One, var))


def _layer(block):
    """(α, β, dense block) of a residual block or a dense block (α = 0, β = 1)."""
    if isinstance(block, Residual):
        return float(block.alpha), float(block.beta), block.branch[0]
    return 0.0, 1.0, block


def _inputs(C, n, q_a, q_b, c0, rng):
    """Two inputs per path with ‖x‖²/n = q exactly, correlation c0 and zero unit mean (as a measurement's)."""
    u = rng.standard_normal((C, 2, n))
    u -= u.mean(axis=2, keepdims=True)
    e1 = u[:, 0] / np.linalg.norm(u[:, 0], axis=1, keepdims=True)
    w = u[:, 1] - np.sum(u[:, 1] * e1, axis=1, keepdims=True) * e1
    e2 = w / np.linalg.norm(w, axis=1, keepdims=True)
    return [e1 * math.sqrt(q_a * n), (c0 * e1 + math.sqrt(1 - c0 * c0) * e2) * math.sqrt(q_b * n)]


def _span(xa, xb):
    """An orthonormal basis [C, n, 2] of span{x_a, x_b} (second column 0 where the two are collinear)."""
    na = np.linalg.norm(xa, axis=1, keepdims=True)
    e1 = xa / np.where(na > 0, na, 1.0)
    perp = xb - np.sum(xb * e1, axis=1, keepdims=True) * e1
    perp -= np.sum(perp * e1, axis=1, keepdims=True) * e1            # twice: orthonormal to rounding
    npp = np.linalg.norm(perp, axis=1, keepdims=True)
    e2 = np.divide(perp, npp, out=np.zeros_like(perp), where=npp > 1e-12 * np.linalg.norm(xb, axis=1, keepdims=True))
    return np.stack([e1, e2], axis=2)


def _forward(blocks, n, xs, rng, out, rows):
    """Sample one group's path; fill the forward arrays of ``out`` at ``rows``; return per layer (Ê, A, φ'(h_a),
    φ'(h_b)) for the backward pass."""
    path = []
    for l, block in enumerate(blocks):
        alpha, beta, dense = _layer(block)
        phi, dphi = activation_functions(dense.activation)
        s, sb2 = float(dense.sw2) / n, float(dense.sb2)
        E = _span(*xs)
        A = rng.standard_normal((xs[0].shape[0], n, 2))
        bias = math.sqrt(sb2) * rng.standard_normal((xs[0].shape[0], n))
        hs = [math.sqrt(s) * np.einsum("cnk,ck->cn", A, np.einsum("cnk,cn->ck", E, x)) + bias for x in xs]
        ys = [np.broadcast_to(phi(h), h.shape) for h in hs]
        path.append((E, A, *(np.broadcast_to(dphi(h), h.shape) for h in hs)))
        xs = [alpha * x + beta * y for x, y in zip(xs, ys)]
        norms = np.stack([np.sum(x * x, axis=1) for x in xs], axis=1)
        out["dead"][rows] |= np.any(norms == 0, axis=1)
        out["sq"][rows, l + 1] = norms
        out["unit_mean"][rows, l + 1] = np.stack([x.mean(axis=1) for x in xs], axis=1)
        out["pre_q"][rows, l] = np.stack([np.mean(h * h, axis=1) for h in hs], axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            out["pre_c"][rows, l] = np.sum(hs[0] * hs[1], axis=1) / np.sqrt(np.sum(hs[0] ** 2, axis=1)
                                                                            * np.sum(hs[1] ** 2, axis=1))
    return path


def _common(block, path_l, n):
    alpha, beta, dense = _layer(block)
    E, A, *d = path_l
    return d, {"Ehat": E, "A": A, "alpha": alpha, "beta": beta, "s": float(dense.sw2) / n, "n": n}


def _products(blocks, n, path, rng):
    """M_l = J_{0→l,p} J_{0→l,p}ᵀ for each input p and l = 0..L−1 (the Jacobian below block l), drawn: each block's
    free weights G̃ once per path, shared by the two inputs."""
    jacobian, product = (_programs()[k] for k in ("jacobian", "product"))
    C = path[0][0].shape[0]
    M = [np.broadcast_to(np.eye(n), (C, n, n)).copy() for _ in range(2)]
    below = []
    for block, path_l in zip(blocks, path):
        below.append(M)
        d, common = _common(block, path_l, n)
        G = rng.standard_normal((C, n, n))
        J = [jacobian(G=G, D_p=d[p], **common) for p in range(2)]
        M = [product(J=j, M=m) for j, m in zip(J, M)]
    return below


def _backward(blocks, n, path, rng, out, rows):
    """Theory's backward step on one group's path: the traces of K for the three pairs at every layer, and one
    network's log tr K per input, drawn from the increments of the martingale E[tr JᵀJ | path, free parts revealed
    from the input up] of the whole network's Jacobian (each block's increment with the K̄ above it and the drawn
    M below it), summed from the output down: unbiased in variance for the whole network, the same relative
    increments for the Jacobians from later start layers."""
    step, gradient, covariance = (_programs()[k] for k in ("step", "gradient", "covariance"))
    below = _products(blocks, n, path, rng)
    C = path[0][0].shape[0]
    K = [np.broadcast_to(np.eye(n), (C, n, n)).copy() for _ in _PAIRS]
    L = len(blocks)
    for key in ("t_aa", "t_bb", "t_ab"):
        out[key][rows, L] = n
    increments = np.zeros((L, C, 3))                 # per block: variance of a's, of b's, their covariance
    for l in range(L - 1, -1, -1):
        d, common = _common(blocks[l], path[l], n)
        M = below[l]
        B = [gradient(K=K[p], M=M[p], D_p=d[p], **common) for p in range(2)]
        for j, (p, q) in enumerate(_PAIRS):
            increments[l, :, j] = covariance(B_p=B[p], B_q=B[q], K=K[p], K_q=K[q], M=M[p], M_q=M[q], D_p=d[p],
                                             D_q=d[q], **common)
        K = [step(K=k, D_p=d[p], D_q=d[q], **common) for k, (p, q) in zip(K, _PAIRS)]
        for j, key in enumerate(("t_aa", "t_bb", "t_ab")):
            out[key][rows, l] = np.einsum("cii->c", K[j])
    total = np.stack([out["t_aa"][rows, 0], out["t_bb"][rows, 0]], axis=1)      # E[tr JᵀJ | path], whole network
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = increments[:, :, :2] / total**2                                # per block, relative variance
        rho = np.clip(np.nan_to_num(increments[:, :, 2] / np.sqrt(increments[:, :, 0] * increments[:, :, 1])),
                      -1.0, 1.0)
        above = np.cumsum(relative[::-1], axis=0)[::-1]                           # Σ over blocks l..L−1
        # log-normal log moments of a unit-mean variable with relative variance Σ_{≥l}, differenced block by block
        log_mean, log_var = (np.asarray(f(np.concatenate([above, np.zeros((1, C, 2))]))) for f in _log_moments())
        s2, shift = log_var[:-1] - log_var[1:], log_mean[:-1] - log_mean[1:]
    z = rng.standard_normal((L, C, 2))
    z[:, :, 1] = rho * z[:, :, 0] + np.sqrt(1 - rho**2) * z[:, :, 1]
    noise = np.cumsum((np.sqrt(s2) * z + shift)[::-1], axis=0)[::-1]              # from block l up to the output
    mean = np.stack([out["t_aa"][rows], out["t_bb"][rows]], axis=2)               # [C, L+1, 2]
    out["log_ratio"][rows] = np.log(mean) - math.log(n)
    out["log_ratio"][rows, :L] += np.transpose(noise, (1, 0, 2))


def residual_paths(blocks, widths, q_a, q_b, c0, C, rng, progress) -> dict:
    """The residual route (module docstring): the same arrays as the dense route's."""
    for b in blocks:
        reason = residual_reason(b)
        if reason:
            raise ValueError(reason)
    n, L = widths[0], len(blocks)
    out = {"sq": np.empty((C, L + 1, 2)), "unit_mean": np.zeros((C, L + 1, 2)), "pre_q": np.empty((C, L, 2)),
           "pre_c": np.empty((C, L)), "log_ratio": np.empty((C, L + 1, 2)), "dead": np.zeros(C, dtype=bool),
           **{k: np.empty((C, L + 1)) for k in ("t_aa", "t_bb", "t_ab")}}
    group, reported = max(1, MEMORY // ((_ARRAYS + 2 * L) * 8 * n * n)), 0
    for start in range(0, C, group):
        rows = slice(start, min(C, start + group))
        xs = _inputs(rows.stop - rows.start, n, q_a, q_b, c0, rng)
        out["sq"][rows, 0] = np.stack([np.sum(x * x, axis=1) for x in xs], axis=1)
        path = _forward(blocks, n, xs, rng, out, rows)
        _backward(blocks, n, path, rng, out, rows)
        while progress is not None and reported < L * rows.stop // C:      # L calls in all, as the dense route
            progress()
            reported += 1
    return out
