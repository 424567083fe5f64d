"""Figures from comparison rows: pure functions of the tidy table (re-plot a saved CSV without re-running).

Labels and axis scales come from the quantity registry (:data:`sigprop.quantities.QUANTITIES`).
"""
from __future__ import annotations

import math
import os

import matplotlib

matplotlib.use(os.environ.get("MPLBACKEND", "Agg"))
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from ..quantities import QUANTITIES  # noqa: E402


def _series(rows, architecture, quantity, width):
    sel = sorted((r for r in rows if r["architecture"] == architecture and r["quantity"] == quantity
                  and r["width"] == width), key=lambda r: r["layer"])
    f = (lambda v: math.exp(v) if math.isfinite(v) else v) if QUANTITIES[quantity].log_valued else (lambda v: v)
    return ([r["layer"] for r in sel], [f(r["predicted"]) for r in sel], [f(r["measured_mean"]) for r in sel],
            [f(r["measured_lo"]) for r in sel], [f(r["measured_hi"]) for r in sel])


def _corrected(rows, architecture, quantity, width):
    """(layers, values) of the finite-width prediction, or None where the rows have none."""
    sel = sorted((r for r in rows if r["architecture"] == architecture and r["quantity"] == quantity
                  and r["width"] == width and r.get("corrected") is not None), key=lambda r: r["layer"])
    if not sel:
        return None
    f = math.exp if QUANTITIES[quantity].log_valued else (lambda v: v)
    return [r["layer"] for r in sel], [f(r["corrected"]) for r in sel]


def plot_quantity(ax, rows, quantity, labels: dict, width: int):
    """Predicted lines (mean field solid; at the measured width dashed, where predicted) and measured points
    with 95% intervals for every architecture, on one axes."""
    for i, (arch, label) in enumerate(labels.items()):
        layers, pred, mean, lo, hi = _series(rows, arch, quantity, width)
        if not layers:
            continue
        color = f"C{i}"
        ax.plot(layers, pred, "-", color=color, lw=1.6, label=f"{label}: mean field")
        err = [[max(m - l, 0) if math.isfinite(l) else 0 for m, l in zip(mean, lo)],
               [max(h - m, 0) if math.isfinite(h) else 0 for m, h in zip(mean, hi)]]
        ax.errorbar(layers, mean, yerr=err, fmt="o", ms=3, color=color, elinewidth=0.8, capsize=1.5,
                    label=f"{label}: measured")
        corrected = _corrected(rows, arch, quantity, width)
        if corrected:
            ax.plot(*corrected, "--", color=color, lw=1.2, label=f"{label}: at width {width}")
    ax.set_xlabel("layer l (0 = input)")
    ax.set_ylabel(QUANTITIES[quantity].label)
    if QUANTITIES[quantity].log_axis:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)


def gsc_figure(rows, labels: dict, width: int, n_seeds: int, title: str, quantity: str = "log_gsc_qm"):
    fig, ax = plt.subplots(figsize=(7.0, 5.4), constrained_layout=True)
    plot_quantity(ax, rows, quantity, labels, width)
    depth = max(r["layer"] for r in rows)
    ax.set_title(f"{title}: GSC from layer l to the output (depth {depth}, width {width}, {n_seeds} seeds, 95% CI)",
                 fontsize=9)
    ax.legend(fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.14), frameon=False)
    return fig


def quantities_figure(rows, labels: dict, width: int, quantities=("c", "q", "grad_corr", "log_gsc")):
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.8), constrained_layout=True)
    for ax, qn in zip(axes.ravel(), quantities):
        plot_quantity(ax, rows, qn, labels, width)
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, fontsize=7, ncol=2, loc="outside lower center", frameon=False)
    fig.suptitle(f"mean-field prediction (solid), at width {width} (dashed, where predicted) vs sampled networks "
                 f"(points, 95% CI)", fontsize=10)
    return fig


def convergence_figure(agreement_rows, labels: dict):
    """|Δ| of the agreement quantity against width, log-log, with a 1/width guide. Bars span the |Δ| that the
    measured 95% interval allows; where the interval holds the prediction (the deviation is not resolved) the
    marker is open and the bar runs to the bottom of the axes."""
    fig, ax = plt.subplots(figsize=(5.5, 4.2), constrained_layout=True)
    widths = sorted({r["width"] for r in agreement_rows})
    bounds = lambda r: sorted((abs(r["predicted"] - r["measured_lo"]), abs(r["predicted"] - r["measured_hi"])))
    floor = 0.3 * min([max(r["abs_error"], 1e-12) for r in agreement_rows]
                      + [bounds(r)[0] for r in agreement_rows if r["inside"] is False and bounds(r)[0] > 0] or [1e-6])
    for i, (arch, label) in enumerate(labels.items()):
        sel = sorted((r for r in agreement_rows if r["architecture"] == arch), key=lambda r: r["width"])
        if not sel:
            continue
        x = [r["width"] for r in sel]
        y = [max(r["abs_error"], floor) for r in sel]
        lower = [v - (bounds(r)[0] if r["inside"] is False else floor) for v, r in zip(y, sel)]
        upper = [max(bounds(r)[1] - v, 0.0) for v, r in zip(y, sel)]
        ax.errorbar(x, y, yerr=[lower, upper], fmt="-", color=f"C{i}", capsize=3, label=label)
        for xi, yi, r in zip(x, y, sel):
            ax.plot(xi, yi, "o", color=f"C{i}", mfc=f"C{i}" if r["inside"] is False else "white")
    ax.set_ylim(bottom=floor)
    if widths:
        ref = max(r["abs_error"] for r in agreement_rows if r["width"] == widths[0])
        ax.plot(widths, [ref * widths[0] / w for w in widths], "k--", lw=1, label="∝ 1/width")
    quantity = agreement_rows[0]["quantity"] if agreement_rows else "log_gsc"
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("width")
    ax.set_ylabel(f"|predicted − measured| of {quantity}(0, L)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return fig


def save(fig, path_stem: str) -> list[str]:
    """Save as PNG and PDF (callers write into a run's staging folder), return the paths."""
    paths = []
    for ext in ("png", "pdf"):
        path = f"{path_stem}.{ext}"
        fig.savefig(path, dpi=160, format=ext)
        paths.append(path)
    plt.close(fig)
    return paths


def phase_figure(rows, critical, activation: str):
    """The phase diagram of deep ``dense(activation)`` networks from its table (rows with sw2, sb2, xi_c, phase):
    the correlation depth scale ξ_c as colour (log scale) with contours, the critical line χ₁ = 1 (``critical``:
    (σ_b², σ_w²) pairs) in black, axes σ_w² (x) and σ_b² (y) as in Schoenholz et al. 2017, Fig. 1."""
    import numpy as np
    from matplotlib.colors import LogNorm
    sw2 = np.array(sorted({r["sw2"] for r in rows}))
    sb2 = np.array(sorted({r["sb2"] for r in rows}))
    xi = np.full((sb2.size, sw2.size), np.nan)
    iw, ib = {v: i for i, v in enumerate(sw2)}, {v: i for i, v in enumerate(sb2)}
    for r in rows:
        xi[ib[r["sb2"]], iw[r["sw2"]]] = r["xi_c"]
    fig, ax = plt.subplots(figsize=(5.6, 4.2), constrained_layout=True)
    finite = xi[np.isfinite(xi) & (xi > 0)]
    if finite.size:
        norm = LogNorm(vmin=max(finite.min(), 1e-1), vmax=min(finite.max(), 1e4))
        mesh = ax.pcolormesh(sw2, sb2, np.where(np.isfinite(xi) & (xi > 0), xi, np.nan), norm=norm,
                             cmap="viridis", shading="nearest")
        fig.colorbar(mesh, ax=ax, label=r"correlation depth scale $\xi_c$ (layers)")
        levels = [v for v in (2, 5, 10, 20, 50, 100, 200, 500) if norm.vmin < v < norm.vmax]
        if levels and sw2.size > 1 and sb2.size > 1:
            cs = ax.contour(sw2, sb2, xi, levels=levels, colors="white", linewidths=0.7)
            ax.clabel(cs, fmt="%g", fontsize=7)
    crit = [(b, w) for b, w in critical if math.isfinite(w) and sw2.min() <= w <= sw2.max()]
    if crit:
        ax.plot([w for _, w in crit], [b for b, _ in crit], "k-", lw=1.8, label=r"critical line $\chi_1 = 1$")
        ax.legend(loc="upper left", fontsize=8, framealpha=0.85)
    ax.set_xlabel(r"$\sigma_w^2$")
    ax.set_ylabel(r"$\sigma_b^2$")
    ax.set_title(f"{activation}: ordered (left of the line) and chaotic phase", fontsize=9)
    return fig


def _bounded(rows) -> list:
    """Rows without an interval (one network) given a zero-width one, so that error bars can be drawn."""
    return [r if math.isfinite(r["measured_lo"]) else {**r, "measured_lo": r["measured_mean"],
                                                       "measured_hi": r["measured_mean"]} for r in rows]


def _interval_errors(rows, f=lambda v: v):
    mean = [f(r["measured_mean"]) for r in rows]
    return mean, [[max(m - f(r["measured_lo"]), 0) for m, r in zip(mean, rows)],
                  [max(f(r["measured_hi"]) - m, 0) for m, r in zip(mean, rows)]]


def _three_routes(ax, x, rows, f, law_label, mean_field_label, sampled_label):
    """The dilution figures' three routes to one number: the law (line), mean field (crosses), sampled networks
    (points with 95% intervals); ``f`` maps a row's values to the plotted ones."""
    ax.plot(x, [f(r["law"]) for r in rows], "-", color="C0", lw=1.6, label=law_label)
    ax.plot(x, [f(r["mean_field"]) for r in rows], "x", color="C1", ms=6, label=mean_field_label)
    mean, err = _interval_errors(rows, f)
    ax.errorbar(x, mean, yerr=err, fmt="o", ms=4, color="C2", capsize=2, label=sampled_label)


def _dilution_axes(fig, ax, xlabel: str, ylabel: str):
    """The dilution figures' labels, log grid and legend below the axes."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    fig.legend(fontsize=7, ncol=2, loc="outside lower center", frameon=False)
    return fig


def dilution_block_figure(rows, gsc_r2: float, width: int):
    """GSC_y² of one residual block against k = ‖s‖/‖r‖: the dilution law, mean field and sampled blocks."""
    rows = sorted(rows, key=lambda r: r["k"])
    fig, ax = plt.subplots(figsize=(5.8, 5.0), constrained_layout=True)
    _three_routes(ax, [r["k"] for r in rows], rows, lambda v: v, "law: (k² + GSC_r²)/(k² + 1)",
                  "mean field (the block's own maps)", f"sampled, width {width} (95% CI)")
    ax.axhline(gsc_r2, color="0.5", ls=":", lw=1, label=f"GSC_r² = {gsc_r2:.3f} (branch alone)")
    ax.axhline(1.0, color="0.5", ls="--", lw=1, label="GSC_s² = 1 (skip alone)")
    ax.set_xscale("log")
    return _dilution_axes(fig, ax, "k = ‖s‖/‖r‖ (skip over branch)", "GSC² of the block (ratio of quadratic means)")


def dilution_resnet_figure(rows, exponent: float, slopes: dict, width: int):
    """GSC(0, L) of a ResNet of diluted blocks against depth L, log-log: the law's closed form, mean field, sampled
    networks, and the power law L^((G² − 1)/2)."""
    rows = sorted(rows, key=lambda r: r["depth"])
    fig, ax = plt.subplots(figsize=(5.8, 5.0), constrained_layout=True)
    L = [r["depth"] for r in rows]
    _three_routes(ax, L, rows, math.exp, "law, closed form", "mean field",
                  f"sampled, width {width}: slope {slopes['measured'][0]:.3f} ± {slopes['measured'][1]:.2g}")
    top = rows[-1]
    ax.plot(L, [math.exp(top["law"]) * (d / top["depth"]) ** exponent for d in L], "k--", lw=1,
            label=f"∝ L^{exponent:.3f}, (GSC_r² − 1)/2")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    return _dilution_axes(fig, ax, "depth L (residual blocks)", "GSC(0, L) (ratio of quadratic means)")


def _panel(rows, panel):
    """{network: its rows of ``panel``, ordered along x}, networks in the table's order."""
    out = {}
    for r in rows:
        if r["panel"] == panel:
            out.setdefault(r["network"], []).append(r)
    return {k: sorted(v, key=lambda r: r["x_or_lag_or_layer"]) for k, v in out.items()}


def gradient_traces_figure(rows, width: int):
    """∂f/∂x along the grid for one network of each kind (and the noises), each scaled to unit standard deviation,
    one panel per row (Balduzzi et al. 2017, Fig. 1); from the ``gradient`` rows of the balduzzi table."""
    traces = _panel(rows, "gradient")
    fig, axes = plt.subplots(len(traces), 1, figsize=(6.5, 1.35 * len(traces) + 0.6), sharex=True,
                             constrained_layout=True)
    for i, (ax, (name, sel)) in enumerate(zip(axes, traces.items())):
        g = [r["value"] for r in sel]
        sd = (sum(v * v for v in g) / len(g) - (sum(g) / len(g)) ** 2) ** 0.5 or 1.0
        ax.plot([r["x_or_lag_or_layer"] for r in sel], [v / sd for v in g], color=f"C{i}", lw=0.9)
        ax.set_ylabel("scaled", fontsize=7)
        ax.set_title(name, fontsize=8, loc="left")
        ax.grid(True, alpha=0.3)
    axes[-1].set_xlabel(f"input x (256 points; networks of width {width})")
    return fig


def autocorrelation_figure(rows, step: float, width: int, seeds: int):
    """ρ(k) of ∂f/∂x along the grid against the lag: measured (points), mean field (lines), noises (dotted); from
    the ``autocorrelation`` rows of the balduzzi table."""
    fig, ax = plt.subplots(figsize=(6.0, 5.0), constrained_layout=True)
    for i, (name, sel) in enumerate(_panel(rows, "autocorrelation").items()):
        lags = [r["x_or_lag_or_layer"] for r in sel]
        measured = [r["value"] for r in sel]
        if sel[0]["mean_field"] is None:
            ax.plot(lags, measured, ":", color="0.4" if "brown" in name else "0.7", lw=1.4, label=name)
            continue
        ax.plot(lags, [r["mean_field"] for r in sel], "-", color=f"C{i}", lw=1.6, label=f"{name}: mean field")
        ax.plot(lags, measured, "o", color=f"C{i}", ms=3, label=f"{name}: measured ({seeds} networks)")
    ax.set_xlabel(f"lag k (grid step {step:.4f})")
    ax.set_ylabel("autocorrelation of ∂f/∂x (pooled over positions and networks)")
    ax.set_title(f"width {width}", fontsize=9)
    ax.grid(True, alpha=0.3)
    fig.legend(fontsize=7, ncol=2, loc="outside lower center", frameon=False)
    return fig


def shattering_figure(rows, c0: float, width: int, seeds: int, threshold: float):
    """Gradient correlation against the number of blocks above the layer: sampled networks (points, 95% CI), mean
    field (lines) and the independent-activation model (dashed), the shattering threshold dotted; from the
    ``gradient_correlation`` rows of the balduzzi table."""
    fig, ax = plt.subplots(figsize=(6.2, 4.6), constrained_layout=True)
    floor = 1e-4
    for i, (label, sel) in enumerate(_panel(rows, "gradient_correlation").items()):
        color = f"C{i}"
        above = [r["x_or_lag_or_layer"] for r in sel]
        ax.plot(above, [max(r["mean_field"], floor) for r in sel], "-", color=color, lw=1.6,
                label=f"{label}: mean field")
        ax.plot(above, [max(r["model"], floor) for r in sel], "--", color=color, lw=1.0,
                label=f"{label}: independent model")
        clipped = [{**r, "measured_mean": max(r["value"], floor),
                    "measured_lo": max(r["measured_lo"], floor) if math.isfinite(r["measured_lo"]) else r["value"],
                    "measured_hi": r["measured_hi"] if math.isfinite(r["measured_hi"]) else r["value"]} for r in sel]
        mean, err = _interval_errors(clipped)
        ax.errorbar(above, mean, yerr=err, fmt="o", ms=3, color=color, elinewidth=0.8, capsize=1.5,
                    label=f"{label}: measured")
    ax.axhline(threshold, color="0.5", ls=":", lw=1)
    ax.set_yscale("log")
    ax.set_ylim(bottom=floor)
    ax.set_xlabel("blocks above the layer")
    ax.set_ylabel(f"gradient correlation of two inputs (c0 = {c0:g})")
    ax.set_title(f"width {width}, {seeds} networks, 95% CI", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    fig.legend(fontsize=6.5, ncol=2, loc="outside lower center", frameon=False)
    return fig


#: axis labels of the units' statistics over a batch (Philipp et al.'s collapsing-domain measures)
UNIT_LABELS = {"unit_std": "pre-activation std over the batch (mean over units)",
               "sign_diversity": "sign diversity over the batch (mean over units)"}


def collapsing_figure(rows, labels: list, width: int, batch: int):
    """Philipp et al.'s collapsing-domain panels: each unit's pre-activation standard deviation and sign diversity
    over a batch, mean over units, against the layer: mean field (lines) and sampled networks (points, 95% CI)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), constrained_layout=True)
    for ax, quantity in zip(axes, ("unit_std", "sign_diversity")):
        for i, label in enumerate(labels):
            sel = sorted((r for r in rows if r["architecture"] == label and r["quantity"] == quantity),
                         key=lambda r: r["layer"])
            if not sel:
                continue
            x = [r["layer"] for r in sel]
            pred = [r["predicted"] for r in sel]
            if any(math.isfinite(v) for v in pred):
                ax.plot(x, pred, "-", color=f"C{i}", lw=1.4, label=f"{label}: mean field")
            mean, err = _interval_errors(_bounded(sel))
            ax.errorbar(x, mean, yerr=err, fmt="o", ms=2.5, color=f"C{i}", elinewidth=0.7, capsize=1,
                        label=f"{label}: measured")
        ax.set_xlabel("block l with a pre-activation")
        ax.set_ylabel(UNIT_LABELS[quantity])
        if quantity == "unit_std":
            ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
    handles, names_ = axes[0].get_legend_handles_labels()
    fig.legend(handles, names_, fontsize=6.5, ncol=4, loc="outside lower center", frameon=False)
    fig.suptitle(f"collapsing domains: batch of {batch} inputs, width {width}, 95% CI over networks", fontsize=10)
    return fig


def measured_figure(rows, title: str):
    """A measured model's quantities against the layer (the rows of ``Measurement.to_rows``): p, c, GSC(l, L) and
    the gradient correlation, and where the rows hold them (a batch of B > 2 inputs) each unit's standard deviation
    and sign diversity over the batch; points with 95% intervals over networks (none for one network) joined by
    thin lines. A user's own model has no prediction."""
    quantities = ["p", "c", "log_gsc", "grad_corr"] + [q for q in UNIT_LABELS if any(r["quantity"] == q for r in rows)]
    fig, axes = plt.subplots(len(quantities) // 2, 2, figsize=(10, 3.7 * (len(quantities) // 2)),
                             constrained_layout=True)
    for ax, quantity in zip(axes.ravel(), quantities):
        spec = QUANTITIES.get(quantity)
        sel = sorted((r for r in rows if r["quantity"] == quantity), key=lambda r: r["layer"])
        if sel:
            mean, err = _interval_errors(_bounded(sel), math.exp if spec and spec.log_valued else (lambda v: v))
            ax.errorbar([r["layer"] for r in sel], mean, yerr=err, fmt="o-", ms=3, lw=0.8, color="C0",
                        elinewidth=0.8, capsize=1.5)
        else:
            ax.text(0.5, 0.5, "no pre-activations found", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel("layer l (0: $x^0$)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(spec.label if spec else UNIT_LABELS[quantity])
        if spec.log_axis if spec else quantity == "unit_std":
            ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(title, fontsize=10)
    return fig
