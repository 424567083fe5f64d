"""The residual route of numerics.finite_width: theory's backward step against Monte Carlo over the weights the path
leaves free, and the prediction against sampled networks.

Tolerances: Monte Carlo standard errors of both sides (sample standard errors of the simulated weights; the
prediction's batch-means error and the measurement's interval over seeds). The seed-to-seed spread is unbiased in
the variance of ‖J‖²_F given the path; one network's log ‖J‖²_F is then drawn log-normal, a shape that held to
within 9% at depth 50, widths 64–256 (benchmarks/bench_finite_width.py, two ResNets, against 200–400 sampled
networks each): it is held to 10% plus three standard errors of a sample sd.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from sigprop.numerics import predict
from sigprop.numerics.finite_width_residual import _common, _forward, _products, _programs
from sigprop.theory import parse
from sigprop.validate import measure


def _simulated_blocks(rng, n=5, draws=40000, alpha=0.8, beta=0.6, s=0.4):
    """One block's J_p = αI + βD_p(√s AÊᵀ + √s G̃(I − ÊÊᵀ)) for ``draws`` independent G̃, and what the theory needs."""
    E = np.linalg.qr(rng.standard_normal((n, 2)))[0]
    A, d = rng.standard_normal((n, 2)), rng.random((2, n))
    off = np.eye(n) - E @ E.T
    G = rng.standard_normal((draws, n, n))
    W = math.sqrt(s) * (A @ E.T + G @ off)
    J = [alpha * np.eye(n) + beta * d[p][:, None] * W for p in (0, 1)]
    k = [rng.standard_normal((n, n)) for _ in range(2)]
    K = [x @ x.T / n for x in k]                        # symmetric, positive: as K above a block is
    args = {"Ehat": E[None], "A": A[None], "alpha": alpha, "beta": beta, "s": s, "n": n}
    jacobian = _programs()["jacobian"]
    for p in (0, 1):                                    # theory's J_p for the same draws: the model simulated here
        np.testing.assert_allclose(jacobian(G=G[:50], D_p=d[p][None], **args), J[p][:50], rtol=1e-12, atol=1e-12)
    return J, K, d, args


def test_backward_step_is_the_conditional_mean_over_the_free_weights():
    rng = np.random.default_rng(0)
    J, K, d, args = _simulated_blocks(rng)
    step = _programs()["step"]
    for p, q in ((0, 0), (0, 1)):
        samples = np.transpose(J[p], (0, 2, 1)) @ K[0] @ J[q]
        mean, se = samples.mean(axis=0), samples.std(axis=0, ddof=1) / math.sqrt(len(samples))
        got = step(K=K[0][None], D_p=d[p][None], D_q=d[q][None], **args)[0]
        assert np.all(np.abs(got - mean) < 5 * se + 1e-12), np.max(np.abs(got - mean) / se)
    assert np.max(np.abs(got - np.transpose(J[0][0]) @ K[0] @ J[1][0])) > 0.05       # not one draw's value


def test_increment_covariance_over_the_free_weights():
    """Cov[tr(J_pM_pJ_pᵀK_p), tr(J_qM_qJ_qᵀK_q)] over the free weights, variance and the two inputs' covariance."""
    rng = np.random.default_rng(1)
    J, K, d, args = _simulated_blocks(rng)
    gradient, covariance = _programs()["gradient"], _programs()["covariance"]
    Ms = [x @ x.T / 5 for x in rng.standard_normal((2, 5, 5))]
    B = [gradient(K=K[p][None], M=Ms[p][None], D_p=d[p][None], **args) for p in (0, 1)]
    x, y = (np.trace(J[p] @ Ms[p] @ np.transpose(J[p], (0, 2, 1)) @ K[p], axis1=1, axis2=2) for p in (0, 1))
    for (u, v), (p, q) in (((x, x), (0, 0)), ((x, y), (0, 1))):
        sample = np.cov(u, v)[0, 1]
        # the sample covariance's standard error, from the fourth moments of the draws
        se = np.std((u - u.mean()) * (v - v.mean()), ddof=1) / math.sqrt(len(u))
        got = covariance(B_p=B[p], B_q=B[q], K=K[p][None], K_q=K[q][None], M=Ms[p][None], M_q=Ms[q][None],
                         D_p=d[p][None], D_q=d[q][None], **args)[0]
        assert abs(got - sample) < 5 * se, (got, sample, se)


def test_summed_increments_are_the_variance_of_one_paths_jacobian():
    """One path, many draws of the free weights: the drawn products' ‖J‖²_F = tr M_L has mean tr K̄_0 (the backward
    recursion) and variance the mean over draws of Σ_l increment_l(M_l) (the martingale's increments, each given
    the products below it): the estimator of the spread is unbiased, checked against the sample variance."""
    blocks = parse("dense(tanh,sw2=2),4*residual(dense(relu,sw2=2,sb2=0.1),alpha=0.9,beta=0.6)").blocks
    n, draws, L = 6, 40000, 5
    rng = np.random.default_rng(2)
    out = {"dead": np.zeros(1, bool), "sq": np.zeros((1, L + 1, 2)), "unit_mean": np.zeros((1, L + 1, 2)),
           "pre_q": np.zeros((1, L, 2)), "pre_c": np.zeros((1, L))}
    xs = [rng.standard_normal((1, n)) for _ in range(2)]
    path = [tuple(np.repeat(x, draws, axis=0) for x in layer)                  # the same path for every draw
            for layer in _forward(blocks, n, xs, rng, out, slice(0, 1))]
    below = _products(blocks, n, path, rng)
    step, jacobian, gradient, covariance = (_programs()[k] for k in ("step", "jacobian", "gradient", "covariance"))
    d, common = _common(blocks[-1], path[-1], n)
    J = jacobian(G=rng.standard_normal((draws, n, n)), D_p=d[0], **common)
    norm = np.einsum("cij,cij->c", J @ below[-1][0], J)                           # tr(J M_{L−1} Jᵀ) = ‖J_{0→L}‖²_F
    K, summed = np.broadcast_to(np.eye(n), (draws, n, n)).copy(), 0.0
    for l in range(L - 1, -1, -1):
        d, common = _common(blocks[l], path[l], n)
        B = gradient(K=K, M=below[l][0], D_p=d[0], **common)
        summed = summed + covariance(B_p=B, B_q=B, K=K, K_q=K, M=below[l][0], M_q=below[l][0], D_p=d[0],
                                     D_q=d[0], **common)
        K = step(K=K, D_p=d[0], D_q=d[0], **common)
    mean = np.einsum("cii->c", K)[0]
    assert abs(norm.mean() - mean) < 5 * norm.std() / math.sqrt(draws)
    sample = norm.var(ddof=1)
    se = math.sqrt(np.var((norm - norm.mean()) ** 2, ddof=1) / draws + summed.var(ddof=1) / draws)
    assert abs(summed.mean() - sample) < 5 * se, (summed.mean(), sample, se)
    assert sample > 20 * se                                                     # the variance is resolved


def test_pooled_moments_and_log_gsc_against_sampled_resnets():
    """A ReLU ResNet without a final linear layer, whose finite-width GSC mean field misses by many standard
    errors (the issue that motivated this route): the pooled GSC and gradient correlation are exact up to Monte
    Carlo, the mean of log GSC(0, L) and its spread as measured."""
    net = parse("6*residual(dense(relu,sw2=2),beta=0.5)")
    width, seeds = 16, 600
    pred = predict(net, width=width, chains=2000, seed=1)
    meas = measure(net, width=width, seeds=list(range(1000, 1000 + seeds)))
    summary, fw = meas.summary(), pred.finite
    layers = np.arange(net.depth)
    for name in ("grad_corr", "log_gsc_qm"):
        mean, lo, hi = (summary[name][k][layers] for k in ("mean", "lo", "hi"))
        tol = 4 * np.sqrt(fw.se[name][layers] ** 2 + ((hi - lo) / (2 * 1.96)) ** 2)
        assert np.all(np.abs(fw.mean[name][layers] - mean) < tol), (name, fw.mean[name][layers], mean, tol)
    se_qm = (summary["log_gsc_qm"]["hi"][0] - summary["log_gsc_qm"]["lo"][0]) / (2 * 1.96)
    assert abs(pred.values["log_gsc_qm"][0] - summary["log_gsc_qm"]["mean"][0]) > 10 * se_qm   # mean field misses
    per_seed = meas.log_gsc_per_input().mean(axis=2)[:, 0]
    mean, sd = per_seed.mean(), per_seed.std(ddof=1)
    assert abs(fw.mean["log_gsc"][0] - mean) < 4 * math.hypot(sd / math.sqrt(seeds), fw.se["log_gsc"][0])
    assert abs(fw.sd["log_gsc"][0] / sd - 1) < 0.1 + 3 / math.sqrt(2 * seeds)
    assert any("residual" in note for note in pred.meta["notes"])


def test_dense_blocks_beside_residual_blocks_and_a_scaled_skip():
    net = parse("dense(tanh,sw2=2),6*residual(dense(tanh,sw2=1,sb2=0.05),alpha=0.8)")
    width, seeds = 10, 1000
    pred = predict(net, width=width, chains=3000, seed=1)
    summary = measure(net, width=width, seeds=list(range(2000, 2000 + seeds))).summary()
    fw, layers = pred.finite, np.arange(net.depth)
    mean, lo, hi = (summary["grad_corr"][k][layers] for k in ("mean", "lo", "hi"))
    se = (hi - lo) / (2 * 1.96)
    assert np.all(np.abs(fw.mean["grad_corr"][layers] - mean) < 4 * np.hypot(fw.se["grad_corr"][layers], se))
    assert np.abs(pred.values["grad_corr"][0] - mean[0]) > 6 * se[0]       # mean field misses the first layers


@pytest.mark.parametrize("arch, match", [
    ("3*residual(dense(relu,sw2=2),dense(linear))", "identity skip and one dense layer"),
    ("3*residual(dense(relu),skip=dense(linear))", "identity skip and one dense layer"),
    ("dense(tanh,width=2),3*residual(dense(relu))", "one width throughout"),
    ("layernorm,3*residual(dense(relu))", "normalization blocks"),
])
def test_residual_networks_it_does_not_cover_are_refused(arch, match):
    with pytest.raises(ValueError, match=match):
        predict(parse(arch), width=16, chains=100)
