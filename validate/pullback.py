"""One network's raw per-layer arrays: probes pulled back to every layer in one batched backward pass.

:func:`raw_arrays` runs the network once under ``torch.func.vjp`` with zero taps added to its representations and
pulls the probes (:func:`draw_probes`: the output's basis vectors, or Hutchinson probes) back through
``torch.func.vmap`` of the pull-back, so g^l = (∂x^L/∂x^l)ᵀ v arrives at every layer at once as the taps'
gradients; :func:`raw_tensors` reduces them, and the representations, to the arrays of
:class:`sigprop.validate.Measurement` with tensor operations only (so that ``vmap`` maps it over a stack of
networks, :mod:`sigprop.validate.seed_batch`); :func:`to_host` brings them to the host in one transfer.

Example
-------
>>> import torch
>>> from sigprop.theory import parse
>>> from sigprop.validate import build
>>> from sigprop.validate.pullback import raw_arrays
>>> net = build(parse("3*dense(tanh)"), width=8, seed=0)
>>> x0 = torch.randn(2, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
>>> raw = raw_arrays(net, x0, "exact", torch.Generator(), coupled=False)
>>> raw["grad_sq"].shape, raw["pre_layers"].tolist()
((4, 2), [1, 2, 3])
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .build import Trace


def check_probes(probes, width: int):
    """'exact', or a number of Hutchinson probes; P >= width becomes 'exact' (cheaper and without noise)."""
    if probes == "exact":
        return "exact"
    if isinstance(probes, bool) or not isinstance(probes, int) or probes < 1:
        raise ValueError(f"probes={probes!r} is not allowed: use 'exact' or an integer >= 1 (Hutchinson probes)")
    return "exact" if probes >= width else probes


def default_probes(batch: int):
    """The probes of a measurement not told otherwise: exact for a pair of inputs, 8 Hutchinson probes for a batch
    of B > 2 (exact probes hold n_out × B gradients per layer, a data batch's worth of full Jacobians).

    >>> default_probes(2), default_probes(64)
    ('exact', 8)
    """
    return "exact" if batch <= 2 else 8


def mixes_batch(coupled: bool, batch: int) -> bool:
    """Whether a network that can mix its inputs (``coupled``: training-mode batchnorm) mixes a batch of ``batch``
    inputs: then its Jacobian is over the whole batch, n_out × B outputs, and GSC takes probes independent across
    the inputs."""
    return bool(coupled) and batch > 2


def check_batch_probes(probes, batch: int, coupled: bool) -> None:
    """Exact probes give every input's exact norms at any batch size, except through a network that mixes the
    batch (:func:`mixes_batch`), where GSC takes a number of Hutchinson probes."""
    if mixes_batch(coupled, batch) and probes == "exact":
        raise ValueError(f"probes='exact' is not allowed for a batch of {batch} inputs through training-mode "
                         "batchnorm: it mixes the batch, so exact norms would need a probe per output coordinate "
                         "of every input; give a number of Hutchinson probes, e.g. probes=8")


def probes_used(probes, n_out: int, batch: int, coupled: bool):
    """The probes a measurement records: 'exact' or P. P >= n_out means exact probes, except through a network
    that mixes the batch (:func:`mixes_batch`), whose GSC takes P Hutchinson probes whatever P (only the probes
    shared by the batch, for the gradient correlation, become the n_out basis vectors there)."""
    return probes if mixes_batch(coupled, batch) else check_probes(probes, n_out)


def draw_probes(probes, batch: int, n_out: int, generator, dtype, device, coupled: bool) -> tuple:
    """(v, w, norm): the probes [P, n_out] shared by the inputs (the basis vectors for ``probes="exact"``, else P
    Hutchinson probes drawn from ``generator`` in float64), for a network that mixes the batch (``coupled``) probes
    w [P, batch, n_out] independent across the inputs (else None), and the factor that makes Σ‖Jᵀv‖² an estimate
    of ‖J‖_F² (n_out for exact probes, 1 for Hutchinson's). Through a network that mixes a batch of B > 2, w has
    P rows whatever P (:func:`probes_used`), and exact probes raise ValueError (:func:`check_batch_probes`)."""
    check_batch_probes(probes, batch, coupled)
    shared = check_probes(probes, n_out)
    if shared == "exact":
        v, norm = torch.eye(n_out, dtype=dtype, device=device), float(n_out)
    else:
        v = torch.randn(shared, n_out, generator=generator, dtype=torch.float64).to(device=device, dtype=dtype)
        norm = 1.0
    rows = probes if mixes_batch(coupled, batch) else v.shape[0]
    w = (torch.randn(rows, batch, n_out, generator=generator, dtype=torch.float64).to(device, dtype)
         if coupled else None)
    return v, w, norm


def draw_stacked(probes, batch: int, n_out: int, generators, dtype, device, coupled: bool) -> tuple:
    """(v, w, norm, v_dim) for networks measured at once (stacked under one ``torch.func.vmap``), each network's
    probes drawn from its own generator as :func:`draw_probes` draws them for it alone: v and w (None unless
    ``coupled``) stacked along a new first dimension, except exact probes, the same basis vectors for every network,
    kept once [n_out, n_out]; ``v_dim``: the dimension of v to map over (None where kept once)."""
    exact = check_probes(probes, n_out) == "exact"
    vs, ws = [], []
    for gen in generators:
        v, w, norm = draw_probes(probes, batch, n_out, gen, dtype, device, coupled)
        if not (exact and vs):                          # one identity [n_out, n_out] serves all
            vs.append(v)
        ws.append(w)
    w = None if ws[0] is None else torch.stack(ws)
    return (vs[0], w, norm, None) if exact else (torch.stack(vs), w, norm, 0)


def raw_arrays(forward, x0, probes, generator, coupled: bool, trace0=None) -> dict:
    """The raw per-layer arrays of one network. ``forward(x, taps)`` returns ``(x^L, Trace)`` (the representations
    x^0..x^L, each [batch, ...], and the pre-activations) and adds ``taps[l − 1]`` to x^l for l = 1..L−1 when taps
    are given. The probes (:func:`draw_probes`, from ``generator``) are pulled back to every layer at once as the
    gradients of the taps (:func:`raw_tensors`); the results come to the host in one transfer. ``coupled``: the
    network mixes the batch, so GSC comes from a second pull-back with probes independent across the inputs (the
    batch's Jacobian). ``trace0``: the Trace of a forward pass of a network of the same structure, whose shapes
    (of the taps, of x^L for the probes) spare this network a forward pass to find them."""
    if trace0 is None:
        with torch.no_grad():
            _, trace0 = forward(x0, None)                # the shapes: probes and taps
    out0 = trace0.xs[-1]
    v, w, norm = draw_probes(probes, out0.shape[0], out0[0].numel(), generator, out0.dtype, out0.device, coupled)
    raw = to_host(raw_tensors(forward, x0, v, w, norm, trace0))
    raw["pre_layers"] = np.array(trace0.pre_layers, dtype=int)
    return raw


def raw_tensors(forward, x0, v, w, norm: float, trace0=None) -> dict:
    """The raw arrays of one network as tensors on its device, made of tensor operations only (so that
    ``torch.func.vmap`` maps it over a stack of networks): ``torch.func.vmap`` of the pull-back of
    ``torch.func.vjp`` over the probes, one batched backward pass (a module that mutates captured state in its
    forward pass, e.g. torch's training-mode batchnorm updating its running statistics, falls back to autograd's
    batched gradients). ``trace0``: the Trace of a forward pass without taps, if already run (its shapes give the
    taps')."""
    if trace0 is None:
        with torch.no_grad():
            _, trace0 = forward(x0, None)
    batch = x0.shape[0]
    shared = v[:, None, :].expand(-1, batch, -1).contiguous()
    trace, pulled = _pull_back(forward, x0, trace0, [shared] if w is None else [shared, w])
    gs = pulled[0] + [shared.double()]                                                      # layer L: g = v
    if w is not None:                   # the batch's Jacobian: probes independent across inputs
        free = pulled[1] + [w.double()]
        jac = (_layers(lambda g: _sq_norm(g, (-2, -1)), free).mean(dim=-1) / batch)[:, None].expand(-1, 2)
    else:
        jac = None
    with torch.no_grad():
        own = _layers(lambda g: _sq_norm(g, -1), gs)                          # ‖g‖² [layer, probe, input]
        sq = _per_input(own.mean(dim=-2)) * norm                              # ‖J‖_F² per input
        cross = _pair_mean(_layers(lambda g: _sq_norm(g.sum(dim=-2), -1), gs), own) * norm
        jac = sq if jac is None else jac
        widths = torch.tensor([x[0].numel() for x in trace.xs], dtype=torch.float64, device=sq.device)
        hs = [h.detach().reshape(h.shape[0], -1).double() for h in trace.pre]
        xs = [x.detach().reshape(x.shape[0], -1).double() for x in trace.xs]
        empty = torch.zeros(0, 2, dtype=torch.float64, device=sq.device)
        q = _per_input(_layers(lambda h: (h * h).mean(dim=-1), hs)) if hs else empty
        unit = lambda h: h / h.norm(dim=-1, keepdim=True)                     # cosines: one probe, the unit rows
        c = _pair_mean(_layers(lambda h: _sq_norm(unit(h).sum(dim=-2), -1)[..., None], hs),
                       _layers(lambda h: _sq_norm(unit(h), -1)[..., None, :], hs)) if hs else empty[:, 0]
        p = _per_input(_layers(lambda x: (x * x).mean(dim=-1), xs))
        m = _per_input(_layers(lambda x: x.mean(dim=-1), xs))
        raw = {"q": q, "c": c, "p": p, "m": m, "n": widths, "jac_qm2": jac / widths[:, None], "grad_cross": cross,
               "grad_sq": sq}
        if batch > 2:
            raw.update(unit_statistics(hs, sq.device))
    return raw


def to_host(tensors: dict) -> dict:
    """The tensors as float64 NumPy arrays, moved in one transfer (one synchronization of the device)."""
    names = list(tensors)
    flat = torch.cat([tensors[k].detach().reshape(-1).double() for k in names]).cpu().numpy()
    out, start = {}, 0
    for k in names:
        size = tensors[k].numel()
        out[k] = flat[start:start + size].reshape(tuple(tensors[k].shape))
        start += size
    return out


def unit_statistics(hs, device) -> dict:
    """Per pre-activation layer and unit, over the data batch: the standard deviation (of the batch itself, not
    an unbiased estimate) and the sign diversity min(fraction > 0, fraction < 0) (Philipp, Song & Carbonell 2018);
    NaN pads layers narrower than the widest; on ``device`` (where ``hs`` are, if any)."""
    width = max((h.shape[1] for h in hs), default=0)
    pad = lambda t: torch.nn.functional.pad(t, (0, width - t.shape[0]), value=math.nan)
    std = [pad(h.std(dim=0, correction=0)) for h in hs]
    div = [pad(torch.minimum((h > 0).double().mean(dim=0), (h < 0).double().mean(dim=0))) for h in hs]
    empty = torch.zeros(0, width, dtype=torch.float64, device=device)
    return {"unit_std": torch.stack(std) if hs else empty, "sign_diversity": torch.stack(div) if hs else empty}


def _pull_back(forward, x0, trace0, probe_sets) -> tuple:
    """(the Trace, per probe set the list g^l = (∂x^L/∂x^l)ᵀ v for l = 0..L−1, each [probe, input, unit] in
    float64): one forward pass under ``torch.func.vjp`` with zero taps, then ``vmap`` of its pull-back over the
    probes; autograd's batched gradients where the transform refuses the module."""
    taps = [torch.zeros_like(x) for x in trace0.xs[1:-1]]

    def run(x, *t):
        out, trace = forward(x, list(t))
        return out.reshape(out.shape[0], -1), (tuple(trace.xs), tuple(trace.pre))
    try:
        _, pull, (xs, pre) = torch.func.vjp(run, x0, *taps, has_aux=True)
        grads = [torch.func.vmap(pull)(probes) for probes in probe_sets]
    except RuntimeError:                     # e.g. an in-place update of a captured buffer inside the forward pass
        x = x0.clone().requires_grad_(True)
        with torch.enable_grad():
            out, trace = forward(x, None)
        xs, pre = tuple(trace.xs), tuple(trace.pre)
        grads = [torch.autograd.grad(out.reshape(out.shape[0], -1), xs[:-1], grad_outputs=probes,
                                     is_grads_batched=True, allow_unused=True, retain_graph=True)
                 for probes in probe_sets]
    trace = Trace(list(xs), list(pre), trace0.pre_layers)
    with torch.no_grad():
        return trace, [[(x.new_zeros(p.shape[0], x.shape[0], x[0].numel()) if g is None else
                         g.reshape(p.shape[0], x.shape[0], -1)).double() for g, x in zip(gs, xs[:-1])]
                       for gs, p in zip(grads, probe_sets)]


#: the most elements that per-layer tensors of one shape may hold together to be reduced as one stack
STACK_ELEMENTS = 2 ** 22


def _layers(fn, tensors):
    """``fn`` of each tensor, stacked over the layers: one call on their stack where they share a shape and hold
    at most :data:`STACK_ELEMENTS` together (a few kernels instead of a few per layer), else one call each."""
    if len({t.shape for t in tensors}) == 1 and len(tensors) * tensors[0].numel() <= STACK_ELEMENTS:
        return fn(torch.stack(tensors))
    return torch.stack([fn(t) for t in tensors])


def _per_input(values):
    """Per-input values (last axis) of a pair as they are, of a larger batch as its mean in both columns."""
    return values if values.shape[-1] == 2 else values.mean(dim=-1, keepdim=True).expand(*values.shape[:-1], 2)


def _sq_norm(g, dim):
    """Σ g² over ``dim``: the square of one reduction (no temporary of g's size; within 2 ulp of the sum)."""
    return torch.linalg.vector_norm(g, dim=dim) ** 2


def _pair_mean(total, own):
    """⟨g_a, g_b⟩ averaged over the pairs a ≠ b of the batch and over the probes, from ‖Σ_b g_b‖² (``total``,
    [..., probe]) and ‖g_b‖² (``own``, [..., probe, input]): (‖Σ_b g_b‖² − Σ_b ‖g_b‖²)/(B(B − 1))."""
    B = own.shape[-1]
    return ((total - own.sum(dim=-1)) / (B * (B - 1))).mean(dim=-1)
