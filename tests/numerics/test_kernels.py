"""NNGP and NTK over data sets (numerics.kernels) against two independent routes: the pair-by-pair depth
iteration of ``predict`` (scalar compiled maps and quadrature) and ensembles of sampled networks in the NTK
parametrization, whose empirical kernels (NTK by autograd over every parameter) average to the prediction up to
Monte Carlo error and an O(depth/width) finite-width bias."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sigprop.numerics import predict
from sigprop.numerics.kernels import kernels
from sigprop.theory import parse

X = np.array([[1.0, 0.2, -0.5], [0.3, 1.5, 0.4], [0.0, 0.2, 0.1]])      # inputs of different norms


@pytest.mark.parametrize("arch", ["4*dense(relu,sw2=2,sb2=0.1),dense(linear)", "3*dense(tanh,sw2=2.5,sb2=0.05)",
                                  "dense(linear,sw2=1.5),act(erf),dense(gelu,sw2=1.2,sb2=0.2)",
                                  "2*dense(selu,sw2=1,sb2=0.1),layernorm",
                                  "dense(tanh),3*residual(dense(relu,sw2=2,sb2=0.1),beta=0.5),dense(linear)",
                                  "dense(linear,sw2=2),residual(act(tanh),beta=0.7),dense(linear),"
                                  "residual(dense(erf,sw2=2,width=2),skip=dense(linear,width=2))"])
def test_every_layer_matches_the_pairwise_depth_iteration(arch):
    net = parse(arch)
    k = kernels(net, X, layers=True)
    gram = X @ X.T / X.shape[1]
    for a, b in ((0, 1), (0, 2), (1, 2), (1, 1)):
        pred = predict(net, q0=(gram[a, a], gram[b, b]), c0=gram[a, b] / np.sqrt(gram[a, a] * gram[b, b]))
        p = np.exp(pred.raw["log_p"])
        p_ab = pred.raw["rho"] * np.sqrt(p[:, 0] * p[:, 1])
        ours = np.array([gram[a, b]] + [layer[a, b] for layer in k.layers])
        assert ours == pytest.approx(p_ab, rel=1e-10, abs=1e-14)
    assert np.array_equal(k.nngp, k.nngp.T) and np.array_equal(k.nngp, k.layers[-1])


def _sampled(specs, width, seed):
    """Empirical NTK (one output unit, autograd over every weight and bias) and the last hidden layer's Gram
    matrix of a network h ↦ φ(σ_w W h/√n + σ_b b), W, b standard normal (the NTK parametrization)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.tensor(X, dtype=torch.float64)
    dims = [X.shape[1]] + [width] * (len(specs) - 1) + [1]
    params = []
    for i in range(len(specs)):
        params += [torch.randn(dims[i + 1], dims[i], generator=g, dtype=torch.float64),
                   torch.randn(dims[i + 1], generator=g, dtype=torch.float64)]

    def forward(ps, last=len(specs)):
        h = x
        for i, (phi, sw2, sb2) in enumerate(specs[:last]):
            h = phi(sw2 ** 0.5 * h @ ps[2 * i].T / dims[i] ** 0.5 + sb2 ** 0.5 * ps[2 * i + 1])
        return h

    jac = torch.func.jacrev(lambda ps: forward(ps)[:, 0])(params)
    j = torch.cat([t.reshape(X.shape[0], -1) for t in jac], dim=1)
    hidden = forward(params, len(specs) - 1)
    return (j @ j.T).numpy(), (hidden @ hidden.T / width).detach().numpy()


@pytest.mark.parametrize("arch,specs", [
    ("2*dense(relu,sw2=2,sb2=0.1),dense(linear,sb2=0.1)",
     [(torch.relu, 2, 0.1), (torch.relu, 2, 0.1), (lambda t: t, 1, 0.1)]),
    ("2*dense(tanh,sw2=1.5,sb2=0.2),dense(linear,sw2=1.2)",
     [(torch.tanh, 1.5, 0.2), (torch.tanh, 1.5, 0.2), (lambda t: t, 1.2, 0.0)])])
def test_ntk_and_nngp_are_the_ensemble_averages_of_sampled_networks(arch, specs):
    width, seeds = 1024, 30
    k = kernels(parse(arch), X, ntk=True, layers=True)
    runs = [_sampled(specs, width, s) for s in range(seeds)]
    for predicted, samples in ((k.ntk, np.array([r[0] for r in runs])), (k.layers[-2], np.array([r[1] for r in runs]))):
        _assert_ensemble_average(predicted, samples, depth=len(specs), width=width)


def _assert_ensemble_average(predicted, samples, depth, width):
    """The prediction within 4 standard errors of the samples' mean, plus an O(depth/width) finite-width bias."""
    mean, se = samples.mean(0), samples.std(0, ddof=1) / np.sqrt(len(samples))
    bias = depth / width * np.abs(predicted)
    assert np.all(np.abs(mean - predicted) <= 4 * se + bias), (mean, predicted, se)


NORMALIZED = ("dense(relu,sw2=2,sb2=0.1),dense(tanh,sw2=1.5,sb2=0.1),layernorm(gain=1.3,bias=0.2),dense(relu,sw2=2),"
              "batchnorm(eval,gain=0.8,bias=0.1,eps=0.5),dropout(rho=0.5),dense(linear)")


def _sampled_normalized(width, seed):
    """Empirical NTK of :data:`NORMALIZED` (NTK parametrization; autograd over every weight and bias and over the
    normalizations' per-unit affine weight and bias, PyTorch's trainable ``weight`` and ``bias``), each input with
    its own dropout mask."""
    g = torch.Generator().manual_seed(seed)
    x = torch.tensor(X, dtype=torch.float64)
    d = X.shape[1]
    dense_shapes = [(width, d), (width,), (width, width), (width,), (width, width), (width,), (1, width), (1,)]
    params = [torch.randn(*sh, generator=g, dtype=torch.float64) for sh in dense_shapes]
    params += [torch.full((width,), v, dtype=torch.float64) for v in (1.3, 0.2, 0.8, 0.1)]  # LN then BN: g, b
    mask = (torch.rand(X.shape[0], width, generator=g, dtype=torch.float64) < 0.5).double() / 0.5

    def dense(h, w, b, sw2, sb2, phi=lambda t: t):
        return phi(sw2 ** 0.5 * h @ w.T / w.shape[1] ** 0.5 + sb2 ** 0.5 * b)

    def forward(ps):
        h = dense(x, ps[0], ps[1], 2.0, 0.1, torch.relu)
        h = dense(h, ps[2], ps[3], 1.5, 0.1, torch.tanh)
        centred = h - h.mean(1, keepdim=True)
        h = ps[8] * centred / centred.pow(2).mean(1, keepdim=True).sqrt() + ps[9]
        h = dense(h, ps[4], ps[5], 2.0, 0.0, torch.relu)
        h = (ps[10] * h / 1.5 ** 0.5 + ps[11]) * mask
        return dense(h, ps[6], ps[7], 1.0, 0.0)[:, 0]

    jac = torch.func.jacrev(forward)(params)
    j = torch.cat([t.reshape(X.shape[0], -1) for t in jac], dim=1)
    return (j @ j.T).numpy()


def test_normalization_and_dropout_ntk_is_the_ensemble_average_of_sampled_networks():
    """layernorm and eval-mode batchnorm with trainable affine parameters, dropout with a mask per input (an input
    with itself: one mask; the NTK's diagonal is Θ/ρ there), against empirical NTKs of sampled networks."""
    k = kernels(parse(NORMALIZED), X, ntk=True)
    width, seeds = 1024, 30
    samples = np.array([_sampled_normalized(width, s) for s in range(seeds)])
    _assert_ensemble_average(k.ntk, samples, depth=7, width=width)


def test_gram_input_equals_data_input_and_kernels_are_symmetric():
    net = parse("3*dense(erf,sw2=2,sb2=0.1),dense(linear)")
    a = kernels(net, X, ntk=True)
    b = kernels(net, gram=X @ X.T / X.shape[1], ntk=True)
    assert np.array_equal(a.nngp, b.nngp) and np.array_equal(a.ntk, b.ntk)
    assert np.array_equal(a.ntk, a.ntk.T)
    assert a.ntk.shape == (3, 3) and a.layers == []


@pytest.mark.parametrize("n", [1, 4, 13, 20])
def test_tiles_cover_every_pair_once(n, monkeypatch):
    import sigprop.numerics.kernels as module
    monkeypatch.setattr(module, "TILE", 6)
    monkeypatch.setattr(module, "STEP", 4)
    seen = np.zeros((n, n), dtype=int)
    for rows, cols in module._tiles(n):
        block = seen[rows, cols]
        block += np.triu(np.ones_like(block)) if rows == cols else 1
    assert np.array_equal(seen, np.triu(np.ones((n, n), dtype=int)))


def test_tiles_and_threads_do_not_change_the_kernels(monkeypatch):
    """Many tiles (a staircase along the diagonal, a dropout block redrawing its diagonal) in 1 or 3 threads
    against one tile: the same kernels, every layer (up to the exact determinant's choice per tile and the
    quadrature's per batch)."""
    import sigprop.numerics.kernels as module
    x = np.random.default_rng(3).standard_normal((23, 4)) * np.linspace(0.5, 2, 23)[:, None]
    net = parse("2*dense(erf,sw2=2,sb2=0.1),dropout(rho=0.8),residual(dense(relu,sw2=2),beta=0.5),"
                "dense(tanh,sw2=1.5,sb2=0.1),dense(linear)")      # tanh: kernels by series and quadrature, cached
    whole = kernels(net, x, ntk=True, layers=True, threads=1)
    monkeypatch.setattr(module, "TILE", 7)
    monkeypatch.setattr(module, "STEP", 3)
    one, three = (kernels(net, x, ntk=True, layers=True, threads=t) for t in (1, 3))
    for a, b in ((one.nngp, three.nngp), (one.ntk, three.ntk), *zip(one.layers, three.layers)):
        assert np.array_equal(a, b)
    for a, b in ((one.nngp, whole.nngp), (one.ntk, whole.ntk), *zip(one.layers, whole.layers)):
        assert np.allclose(a, b, rtol=1e-13, atol=0) and np.array_equal(a, a.T)
    with pytest.raises(ValueError, match="threads=0 is not allowed"):
        kernels(net, x, threads=0)


@pytest.mark.parametrize("kwargs,match", [
    ({}, "not both"), ({"x": X, "gram": np.eye(3)}, "not both"), ({"x": np.ones(3)}, "shape"),
    ({"x": np.array([[np.nan, 1.0]])}, "nan"), ({"gram": np.ones((2, 3))}, "square"),
    ({"gram": np.array([[1.0, 2.0], [0.0, 1.0]])}, "symmetric"), ({"gram": np.array([[-1.0]])}, "non-negative")])
def test_bad_inputs_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        kernels(parse("dense(relu)"), **kwargs)


def test_unsupported_blocks_say_so():
    with pytest.raises(ValueError, match="couples the inputs"):
        kernels(parse("dense(linear),batchnorm,act(relu)"), X)
    with pytest.raises(ValueError, match="weights=looks_linear\\) is not derived"):
        kernels(parse("dense(relu,weights=looks_linear),dense(linear)"), X, ntk=True)
    with pytest.raises(TypeError, match="Network"):
        kernels("dense(relu)", X)


def _sampled_residual(width, seed, beta=0.6):
    """Empirical NTK of dense(tanh,1.5,0.1) → 2 × [h + β·W₂ relu(√2 W₁h/√n + √0.1 b)/√n] → linear readout, NTK
    parametrization, autograd over every parameter."""
    g = torch.Generator().manual_seed(seed)
    x = torch.tensor(X, dtype=torch.float64)
    d = X.shape[1]
    shapes = [(width, d), (width,)] + [(width, width), (width,), (width, width), (width,)] * 2 + [(1, width), (1,)]
    params = [torch.randn(*sh, generator=g, dtype=torch.float64) for sh in shapes]

    def dense(h, w, b, sw2, sb2, phi=lambda t: t):
        return phi(sw2 ** 0.5 * h @ w.T / w.shape[1] ** 0.5 + sb2 ** 0.5 * b)

    def forward(ps):
        h = dense(x, ps[0], ps[1], 1.5, 0.1, torch.tanh)
        for i in (2, 6):
            branch = dense(dense(h, ps[i], ps[i + 1], 2.0, 0.1, torch.relu), ps[i + 2], ps[i + 3], 1.0, 0.0)
            h = h + beta * branch
        return dense(h, ps[10], ps[11], 1.0, 0.0)[:, 0]

    jac = torch.func.jacrev(forward)(params)
    j = torch.cat([t.reshape(X.shape[0], -1) for t in jac], dim=1)
    return (j @ j.T).numpy()


def test_residual_ntk_is_the_ensemble_average_of_sampled_networks():
    """Residual NTK (α²Θ_S + β²Θ_F: the paths' cross terms vanish with the branch's fresh weights) against the
    ensemble average of empirical NTKs of sampled residual networks."""
    arch = "dense(tanh,sw2=1.5,sb2=0.1),2*residual(dense(relu,sw2=2,sb2=0.1),dense(linear),beta=0.6),dense(linear)"
    k = kernels(parse(arch), X, ntk=True)
    width, seeds = 1024, 30
    samples = np.array([_sampled_residual(width, s) for s in range(seeds)])
    _assert_ensemble_average(k.ntk, samples, depth=6, width=width)
    with pytest.raises(ValueError, match="identity skip around a branch without a dense layer"):
        kernels(parse("dense(linear),residual(act(tanh)),dense(linear)"), X, ntk=True)
