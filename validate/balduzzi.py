"""The ``balduzzi`` experiment: shattered gradients (Balduzzi et al. 2017), measured, in mean field and in the
paper's independent-activation model.

1. **Gradients along a line of inputs** (their Fig. 1): scalar-input ReLU networks (He initialization, a bias of
   variance ``FIRST_SB2`` in the first layer, hidden width ``width``, one linear output) on 256 inputs in
   [−2, 2]: ∂f/∂x for a 1-layer and a deep feedforward network and a ResNet, beside brown noise (a random walk)
   and white noise.
2. **Their autocorrelation** along the grid, pooled over networks and positions:
   ρ(k) = Σ g(x_a) g(x_{a+k}) / √(Σ g(x_a)² Σ g(x_{a+k})²), measured, and in mean field from the same sums of
   E[g(x) g(x')] (:func:`sigprop.numerics.predict` of each pair of scalar inputs: its gradient correlation and
   GSC at the input), beside the noises' own.
3. **Gradient correlation against the number of blocks above a layer** for ``dense(relu,sw2=2)`` networks and
   ResNets ``residual(dense(relu,sw2=2),dense(linear),beta=β)``, β ∈ {1, 0.5, 0.1}, for inputs at correlation
   c0: sampled networks, mean field and the independent-activation model
   (:func:`sigprop.numerics.shattering.compare_shattering`), with the **shattering depth** (the fewest blocks
   above a layer at which the correlation falls below ``threshold``) of each.

Example
-------
>>> from sigprop.validate.balduzzi import scalar_network
>>> scalar_network("feedforward", 3, 200).describe()
'dense(relu,sw2=2,sb2=1,width=200),2*dense(relu,sw2=2,sb2=0),dense(linear,sw2=1,sb2=0,width=0.005)'
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch

from .. import __version__
from ..io import RunOutput, rows_to_csv
from ..numerics import predict
from ..numerics.shattering import compare_shattering, network
from ..theory import parse
from .build import build
from .measure import measure
from .report import markdown_report

GRID = np.linspace(-2.0, 2.0, 256)
FIRST_SB2 = 1.0
BETAS = (1.0, 0.5, 0.1)
PRESETS = {"quick": {"widths": [32], "seeds": 3, "depth": 8, "lags": 16, "stride": 16},
           "full": {"widths": [200], "seeds": 20, "depth": 50, "lags": 64, "stride": 2}}
COLUMNS = ["panel", "network", "x_or_lag_or_layer", "value", "mean_field", "model", "measured_lo", "measured_hi",
           "width", "n_seeds"]


def scalar_network(kind: str, depth: int, width: int, beta: float = 1.0):
    """A network from one scalar to one scalar: a first ReLU layer of ``width`` units with a bias, ``depth − 1``
    more ReLU layers (feedforward) or ``depth`` residual blocks (resnet), and a linear read-out."""
    first = f"dense(relu,sw2=2,sb2={FIRST_SB2:g},width={width})"
    body = (f",{depth - 1}*dense(relu,sw2=2)" if depth > 1 else "") if kind == "feedforward" else \
        f",{depth}*residual(dense(relu,sw2=2),dense(linear),beta={beta!r})"
    return parse(f"{first}{body},dense(linear,width={1 / width!r})")


def grid_gradients(net, width: int, seed: int, dtype="float64", device="cpu") -> np.ndarray:
    """∂f/∂x at every point of ``GRID`` for one sampled scalar network."""
    sampled = build(net, 1, seed, dtype, device)
    x = torch.tensor(GRID[:, None], dtype=sampled.blocks[0].weight.dtype, device=device, requires_grad=True)
    out, _ = sampled(x)
    (g,) = torch.autograd.grad(out.sum(), x)
    return g[:, 0].detach().double().cpu().numpy()


def pooled_autocorrelation(g: np.ndarray, lags: int) -> np.ndarray:
    """ρ(k) for k = 0..lags−1 of sequences ``g`` [seed, position], pooled over seeds and positions."""
    g = np.atleast_2d(g)
    out = []
    for k in range(lags):
        a, b = g[:, : g.shape[1] - k], g[:, k:]
        out.append(np.sum(a * b) / math.sqrt(np.sum(a * a) * np.sum(b * b)))
    return np.array(out)


def predicted_autocorrelation(net, lags: int, stride: int) -> np.ndarray:
    """ρ(k) in mean field: the same pooled sums over positions (every ``stride``-th), with E[g(x)g(x')] from the
    prediction for the pair of scalar inputs (x, x'): correlation ``grad_corr`` and E[g²] = GSC² p_L/p_0."""
    n = len(GRID)
    second = {}

    def moments(a, b):
        if (a, b) not in second:
            xa, xb = GRID[a], GRID[b]
            pred = predict(net, q0=(xa * xa, xb * xb), c0=float(np.sign(xa * xb)))
            log_sq = 2 * pred.raw["log_gsc"][0] + pred.raw["log_p"][-1] - pred.raw["log_p"][0]   # log E[g²]
            second[(a, b)] = (float(pred.values["grad_corr"][0]), np.exp(log_sq))
        return second[(a, b)]
    out = []
    for k in range(lags):
        cross = sq_a = sq_b = 0.0
        for a in range(0, n - k, stride):
            rho, (ea, eb) = moments(a, a + k)
            cross += rho * math.sqrt(ea * eb)
            sq_a, sq_b = sq_a + ea, sq_b + eb
        out.append(cross / math.sqrt(sq_a * sq_b))
    return np.array(out)


def shattering_depth(values, threshold: float):
    """The fewest blocks above a layer at which the correlation (``values`` indexed by blocks above) falls below
    ``threshold``; None if it never does."""
    below = np.nonzero(np.asarray(values) < threshold)[0]
    return int(below[0]) if len(below) else None


def run_balduzzi(out="results", widths=None, seeds=None, depth=None, probes="exact", dtype="float64", device="cpu",
                 progress=True, preset="full", log=print, c0: float = 0.5, threshold: float = 0.1) -> dict:
    """Run the experiment (settings not given from ``preset``) and write its files."""
    from . import plots
    from .experiments import progress_bar, save_figure
    setting = dict(PRESETS[preset])
    widths = list(widths or setting["widths"])
    seeds, depth = seeds or setting["seeds"], depth or setting["depth"]
    width = max(widths)
    t0 = time.perf_counter()
    deep_ff = max(2, round(depth * 24 / 50))
    scalar = {"1-layer feedforward": scalar_network("feedforward", 1, width),
              f"{deep_ff}-layer feedforward": scalar_network("feedforward", deep_ff, width),
              f"{depth}-block ResNet": scalar_network("resnet", depth, width)}
    kinds = [("feedforward", 1.0)] + [("resnet", b) for b in BETAS]
    bar = progress_bar(len(scalar) * seeds + len(kinds) * seeds, progress, "balduzzi: measuring")
    rng = np.random.default_rng(12345)
    traces = {name: np.stack([grid_gradients(net, width, s, dtype, device) for s in range(seeds)])
              for name, net in scalar.items()}
    if bar:
        bar.update(len(scalar) * seeds)
    white = rng.standard_normal((seeds, len(GRID)))
    traces_noise = {"brown noise": np.cumsum(white, axis=1), "white noise": white}
    lags = setting["lags"]
    auto = {name: (pooled_autocorrelation(g, lags), predicted_autocorrelation(scalar[name], lags, setting["stride"]))
            for name, g in traces.items()}
    auto.update({name: (pooled_autocorrelation(g, lags), None) for name, g in traces_noise.items()})
    corr = {}
    for kind, beta in kinds:
        label = "feedforward" if kind == "feedforward" else f"ResNet β = {beta:g}"
        cmp = compare_shattering(kind, depth=depth, beta=beta, c0=c0)
        s = measure(network(kind, depth, beta), width=width, seeds=seeds, c0=c0, probes=probes, dtype=dtype,
                    device=device, progress=bar.update if bar else None).summary()["grad_corr"]
        above = depth - np.arange(depth + 1)                      # blocks above layer l
        order = np.argsort(above)
        corr[label] = {"above": above[order], "measured": s["mean"][order], "lo": s["lo"][order],
                       "hi": s["hi"][order], "mean_field": cmp.mean_field[order], "model": cmp.model[order]}
    if bar:
        bar.close()
    depths = {label: {k: shattering_depth(v[k], threshold) for k in ("measured", "mean_field", "model")}
              for label, v in corr.items()}
    rows = []
    for name, g in {**traces, **traces_noise}.items():
        rows += [{"panel": "gradient", "network": name, "x_or_lag_or_layer": float(x), "value": float(v),
                  "width": width, "n_seeds": 1} for x, v in zip(GRID, g[0])]
    for name, (measured, mf) in auto.items():
        rows += [{"panel": "autocorrelation", "network": name, "x_or_lag_or_layer": k, "value": float(measured[k]),
                  "mean_field": None if mf is None else float(mf[k]), "width": width, "n_seeds": seeds}
                 for k in range(lags)]
    for label, v in corr.items():
        rows += [{"panel": "gradient_correlation", "network": label, "x_or_lag_or_layer": int(a),
                  "value": float(m), "mean_field": float(f), "model": float(md), "measured_lo": float(lo),
                  "measured_hi": float(hi), "width": width, "n_seeds": seeds}
                 for a, m, f, md, lo, hi in zip(v["above"], v["measured"], v["mean_field"], v["model"], v["lo"],
                                                 v["hi"])]
    with RunOutput(out, "balduzzi") as run:
        run.write("balduzzi.csv", rows_to_csv(rows, COLUMNS))
        save_figure(run, plots.gradient_traces_figure(rows, width), "balduzzi_gradients")
        save_figure(run, plots.autocorrelation_figure(rows, GRID[1] - GRID[0], width, seeds), "balduzzi_autocorrelation")
        save_figure(run, plots.shattering_figure(rows, c0, width, seeds, threshold), "balduzzi_correlation")
        command = (f"sigprop reproduce balduzzi --width {width} --depth {depth} --seeds {seeds} --probes {probes} "
                   f"--dtype {dtype} --device {device}")
        auto_rows = [[name, *(f"{m[k]:.3f}" + ("" if f is None else f" ({f[k]:.3f})") for k in (1, 2, 4, 8)
                              if k < lags)] for name, (m, f) in auto.items()]
        depth_rows = [[label, d["measured"], d["mean_field"], d["model"]] for label, d in depths.items()]
        run.write("balduzzi.md", markdown_report(
            "Shattered gradients: measured, mean field and the independent-activation model", command,
            {"grid": "256 inputs in [−2, 2]", "first-layer bias variance": FIRST_SB2, "width": width, "seeds": seeds,
             "depth": depth, "c0 (panel 3)": c0, "threshold": threshold, "probes": probes, "dtype": dtype,
             "device": device, "sigprop": __version__},
            [("Autocorrelation of ∂f/∂x along the grid at lags 1, 2, 4, 8: measured (mean field)",
              ["network", *(f"lag {k}" for k in (1, 2, 4, 8) if k < lags)], auto_rows),
             (f"Shattering depth: fewest blocks above a layer with gradient correlation < {threshold} (inputs at "
              f"c0 = {c0}; none: not within {depth})", ["network", "measured", "mean field", "independent model"],
              depth_rows)],
            [("∂f/∂x along the grid, one network each, beside brown and white noise", "balduzzi_gradients.png"),
             ("Autocorrelation of ∂f/∂x along the grid", "balduzzi_autocorrelation.png"),
             ("Gradient correlation against blocks above the layer", "balduzzi_correlation.png")]))
        meta = {"experiment": "balduzzi", "width": width, "seeds": list(range(seeds)), "depth": depth, "c0": c0,
                "threshold": threshold, "shattering_depth": depths, "probes": probes, "dtype": dtype,
                "device": device, "seconds": time.perf_counter() - t0,
                "versions": {"sigprop": __version__, "torch": torch.__version__, "numpy": np.__version__}}
        files = run.commit(meta)
    meta["files"] = files
    for label, d in depths.items():
        log(f"balduzzi, {label}: shattering depth (corr < {threshold}) measured {d['measured']}, mean field "
            f"{d['mean_field']}, independent model {d['model']}")
    log(f"wrote {', '.join(files)}  ({meta['seconds']:.1f} s)")
    return meta
