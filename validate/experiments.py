"""Named experiments: predict, measure, compare, and write a table, metadata and figures to a folder.

The default, ``gsc``, reproduces the central picture of Philipp, Song & Carbonell: the GSC from every layer
to the output for He-ReLU (GSC = 1), tanh at σ_w² = 1, chaotic tanh (σ_w² = 2.5, σ_b² = 0.05, exploding) and a
tanh ResNet (dilution keeps the explosion polynomial), predicted by mean field and measured on sampled networks.

The headline figure and table show GSC as a ratio of quadratic means over inputs and seeds (``log_gsc_qm``),
which mean field predicts without bias at finite width; the geometric mean over seeds (``log_gsc``) is reported
beside it and carries the O(depth/width) finite-width bias of the mean of a log (Hanin 2018).

``philipp`` is the Fig. 1 set of Philipp, Song & Carbonell (ReLU, layer-/batch-ReLU, tanh, layer-/batch-tanh,
SeLU, looks-linear) and ``shattering`` the gradient-correlation panel of Balduzzi et al. (feedforward, batch-norm
feedforward, ResNet, batch-norm ResNet, looks-linear); depth counts dense layers, so a normalized layer is three
blocks. Networks with batchnorm are fed ``batch`` inputs at once (Hutchinson probes, 8 unless given).

All files of a run are staged and moved into the output folder together (:class:`sigprop.io.RunOutput`).
"""
from __future__ import annotations

import os
import platform
import textwrap
import time
from dataclasses import dataclass

import numpy as np
import torch

from .. import __version__
from ..checks import check_inputs, check_positive_int
from ..io import RunOutput, rows_to_csv
from ..numerics import predict
from ..numerics.finite_width import unsupported
from ..theory import parse
from ..theory.blocks.batchnorm import training_batchnorms
from . import plots
from ..quantities import log_gsc_per_input
from .collapsing import COLUMNS as COLLAPSING_COLUMNS
from .collapsing import collapsing_rows
from .compare import COLUMNS, agreement, compare, inside_fraction
from .intervals import t_interval
from .balduzzi import PRESETS as BALDUZZI_PRESETS
from .balduzzi import run_balduzzi
from .dilution import PRESETS as DILUTION_PRESETS
from .dilution import run_dilution
from .measure import check_measurement, measure
from .report import agreement_table, markdown_report

#: the aggregations of GSC(0, L) the summary table reports, headline first
HEADLINE = ("log_gsc_qm", "log_gsc")
#: forward paths behind each finite-width prediction of an experiment
FINITE_CHAINS = 1000
#: how each aggregation of GSC(0, L) is formed, in words
AGGREGATIONS = {"log_gsc_qm": "ratio of quadratic means over inputs and seeds",
                "log_gsc": "geometric mean over inputs and seeds"}
FINITE_WIDTH_NOTE = ("The intervals cover seed-to-seed spread; a width-n network also deviates from mean field by "
                     "O(depth/n). The geometric mean, a mean of logs, carries the larger such shift (Hanin & Nica "
                     "2019); the ratio of quadratic means avoids it for ReLU but needs more seeds. For networks of "
                     "dense blocks the prediction at the measured width (`predict(..., width=n)`: dashed lines, the "
                     "'at width n' column) includes these shifts; 'mean over seeds' and 'pooled over seeds' say how "
                     "each row aggregates the networks.")


QUICK = {"widths": [32], "seeds": 3, "depth": 6}
FULL = {"widths": [512], "seeds": 20, "depth": 50}


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    architectures: tuple          # (label, grammar template with {L} for the depth)
    q0: float = 1.0
    c0: float = 0.5
    batch: int = 64               # inputs fed at once to networks with training-mode batchnorm
    quick: tuple = tuple(QUICK.items())     # the settings of --quick and --full
    full: tuple = tuple(FULL.items())
    collapsing: bool = False      # add the collapsing-domain panels (each network fed ``batch`` inputs)
    finite: bool = True           # also predict each measured width (networks that have a finite-width theory)

    def networks(self, depth: int):
        return [(label, parse(template.format(L=depth))) for label, template in self.architectures]


EXPERIMENTS = {
    "gsc": Experiment(
        "gsc", "GSC vs depth",
        (("He-ReLU (σ_w²=2)", "{L}*dense(relu,sw2=2)"),
         ("tanh (σ_w²=1)", "{L}*dense(tanh,sw2=1)"),
         ("tanh chaotic (σ_w²=2.5, σ_b²=0.05)", "{L}*dense(tanh,sw2=2.5,sb2=0.05)"),
         ("tanh ResNet (x + W₂ tanh(W₁x))", "{L}*residual(dense(tanh,sw2=1),dense(linear,sw2=1))"))),
    "philipp": Experiment(
        "philipp", "GSC vs depth: Philipp, Song & Carbonell's Fig. 1 set (depth in layers, batch 64)",
        (("ReLU (He)", "{L}*dense(relu,sw2=2)"),
         ("layer-ReLU", "{L}*(dense(linear,sw2=2),layernorm,act(relu))"),
         ("batch-ReLU", "{L}*(dense(linear,sw2=2),batchnorm(batch=64),act(relu))"),
         ("tanh", "{L}*dense(tanh)"),
         ("layer-tanh", "{L}*(dense(linear),layernorm,act(tanh))"),
         ("batch-tanh", "{L}*(dense(linear),batchnorm(batch=64),act(tanh))"),
         ("SeLU", "{L}*dense(selu,init=lecun)"),
         ("looks-linear", "{L}*dense(relu,weights=looks_linear)")),
        quick=(("widths", [72]), ("seeds", 3), ("depth", 4)),
        full=(("widths", [100, 512]), ("seeds", 20), ("depth", 50)), collapsing=True),
    "shattering": Experiment(
        "shattering", "Gradient correlation vs depth: Balduzzi et al.'s panel (batch 64)",
        (("feedforward ReLU", "{L}*dense(relu,sw2=2)"),
         ("batch-norm feedforward", "{L}*(dense(linear,sw2=2),batchnorm(batch=64),act(relu))"),
         ("ResNet (β = 1/√L)", "{L}*residual(dense(relu,sw2=2),dense(linear),beta=1/sqrt(L))"),
         ("batch-norm ResNet (β = 1/√L, large-batch theory)",
          "{L}*residual(dense(linear,sw2=2),batchnorm,act(relu),dense(linear),beta=1/sqrt(L))"),
         ("looks-linear", "{L}*dense(relu,weights=looks_linear)")),
        quick=(("widths", [72]), ("seeds", 3), ("depth", 4))),
}
#: experiments with a runner of their own: name -> (runner, presets)
RUNNERS = {"balduzzi": (run_balduzzi, BALDUZZI_PRESETS), "dilution": (run_dilution, DILUTION_PRESETS)}


def experiment_names(name: str) -> list:
    """The experiments ``name`` stands for (``all``: every one)."""
    known = list(EXPERIMENTS) + list(RUNNERS)
    if name == "all":
        return known
    if name not in known:
        raise ValueError(f"experiment={name!r} is not known; allowed: {', '.join(known)}, all")
    return [name]


def resolve_settings(name: str, preset: str, widths=None, seeds=None, depth=None) -> dict:
    """widths, seeds, depth of a run: those given, the rest from the experiment's preset ('quick' or 'full')."""
    if preset not in ("quick", "full"):
        raise ValueError(f"preset={preset!r} is not allowed; allowed: quick, full")
    if name in RUNNERS:
        base = RUNNERS[name][1][preset]
    else:
        exp = EXPERIMENTS[experiment_names(name)[0]]
        base = dict(exp.quick if preset == "quick" else exp.full)
    return {"widths": list(widths or base["widths"]), "seeds": seeds or base["seeds"], "depth": depth or base["depth"]}


def check_settings(name, widths, seeds, depth, probes, dtype, device) -> list:
    """Every setting of an experiment run, checked before any work; returns the widths as a list."""
    experiment_names(name)
    check_positive_int("depth", depth)
    widths = check_measurement(widths, seeds, probes, dtype, device)
    if name in RUNNERS:
        return widths
    exp = EXPERIMENTS[name]
    if any(training_batchnorms(net.blocks) for _, net in exp.networks(1)) and min(widths) < exp.batch + 1:
        raise ValueError(f"width={min(widths)} is not allowed for experiment {name}: its batch-normalized networks "
                         f"are fed {exp.batch} inputs at once, which needs width >= {exp.batch + 1}")
    return widths


def run_experiment(name: str = "gsc", out="results", widths=None, seeds: int | None = None, depth: int | None = None,
                   probes="exact", dtype: str = "float64", device: str = "cpu", progress: bool = True,
                   log=print, preset: str = "full") -> dict:
    """Run a named experiment and write ``<name>.csv``, figures, the report ``<name>.md`` and ``<name>.json`` into
    ``out``; settings not given come from the experiment's ``preset`` ('quick' or 'full').

    Returns the metadata dict (also written as JSON): for the GSC experiments the agreement of GSC(0, L) per width
    in both aggregations, the fraction of predictions inside the measured intervals, timings, versions and the
    manifest of the files written.
    """
    s = resolve_settings(name, preset, widths, seeds, depth)
    widths, seeds, depth = s["widths"], s["seeds"], s["depth"]
    widths = check_settings(name, widths, seeds, depth, probes, dtype, device)
    if name in RUNNERS:
        return RUNNERS[name][0](out=out, widths=widths, seeds=seeds, depth=depth, probes=probes, dtype=dtype,
                                device=device, progress=progress, log=log, preset=preset)
    exp = EXPERIMENTS[name]
    check_inputs(exp.q0, exp.c0)
    nets = exp.networks(depth)
    labels = {net.describe(): label for label, net in nets}
    with RunOutput(out, name) as run:
        timings, costs, rows, rates, extra = {}, {}, [], [], []
        t0 = time.perf_counter()
        predictions = {}
        for label, net in nets:
            t = time.perf_counter()
            predictions[label] = predict(net, q0=exp.q0, c0=exp.c0)
            timings[f"predict {label}"] = time.perf_counter() - t
        bar = progress_bar(len(widths) * len(nets) * seeds, progress, f"{name}: measuring")
        for width in widths:
            for label, net in nets:
                t = time.perf_counter()
                batch = exp.batch if training_batchnorms(net.blocks) else None
                meas = measure(net, width=width, seeds=seeds, q0=exp.q0, c0=exp.c0,
                               probes=8 if batch and probes == "exact" else probes, dtype=dtype, device=device,
                               progress=bar.update if bar else None, batch=batch)
                timings[f"measure {label} width {width}"] = time.perf_counter() - t
                costs[f"{label} width {width}"] = meas.cost()
                pred = predictions[label]
                if exp.finite and unsupported(net) is None:
                    t = time.perf_counter()
                    pred = predict(net, q0=exp.q0, c0=exp.c0, width=width, chains=FINITE_CHAINS)
                    timings[f"predict {label} width {width}"] = time.perf_counter() - t
                rows += compare(pred, meas, experiment=name)
                rates.append(rate_row(label, width, depth, predictions[label], meas))
        if bar:
            bar.close()
        agree = {q: agreement(rows, quantity=q) for q in HEADLINE}
        run.write(f"{name}.csv", rows_to_csv(rows, COLUMNS))
        top = max(widths)
        save_figure(run, plots.gsc_figure(rows, labels, top, seeds, exp.title, quantity=HEADLINE[0]), f"{name}_gsc")
        save_figure(run, plots.quantities_figure(rows, labels, top), f"{name}_quantities")
        figures = [(f"GSC(l, L) against layer l, width {top}", f"{name}_gsc.png"),
                   (f"q, c, gradient correlation and log GSC(l, L) per layer, width {top}", f"{name}_quantities.png")]
        if len(widths) > 1:
            save_figure(run, plots.convergence_figure(agree[HEADLINE[1]], labels), f"{name}_convergence")
            figures.append(("|predicted − measured| of log GSC(0, L) against width", f"{name}_convergence.png"))
        if exp.collapsing:
            collapse = []
            for label, net in nets:
                collapse += collapsing_rows(label, net, top, seeds, exp.batch, exp.q0, exp.c0, dtype, device,
                                            prediction=predictions[label] if training_batchnorms(net.blocks) else None)
            run.write(f"{name}_collapsing.csv", rows_to_csv(collapse, COLLAPSING_COLUMNS))
            save_figure(run, plots.collapsing_figure(collapse, [label for label, _ in nets], top, exp.batch),
                        f"{name}_collapsing")
            figures.append((f"Collapsing domains over a batch of {exp.batch} inputs, width {top}",
                            f"{name}_collapsing.png"))
            extra.append(collapsing_table(collapse, exp.batch))
        command = (f"sigprop reproduce {name} --width {' '.join(map(str, widths))} --depth {depth} "
                   f"--seeds {seeds} --probes {probes} --dtype {dtype} --device {device}")
        run.write(f"{name}.md", experiment_report(exp.title, command, {
            "depth": depth, "widths": widths, "seeds": seeds, "inputs": f"q0 = {exp.q0}, c0 = {exp.c0}",
            "probes": probes, "dtype": dtype, "device": device, "sigprop": __version__, "torch": torch.__version__},
            agree, labels, figures, rates, extra))
        meta = {
            "experiment": name, "title": exp.title, "depth": depth, "widths": widths, "seeds": list(range(seeds)),
            "inputs": {"q0": exp.q0, "c0": exp.c0}, "probes": probes, "dtype": dtype, "device": device,
            "architectures": {label: net.describe() for label, net in nets},
            "headline_quantity": HEADLINE[0],
            "agreement_gsc_0_L": agree,
            "gsc2_per_layer": rates,
            "fraction_inside_95ci": inside_fraction(rows),
            "timings_s": {**timings, "total": time.perf_counter() - t0},
            "measurement_cost": costs,
            "versions": {"sigprop": __version__, "torch": torch.__version__, "numpy": np.__version__,
                         "python": platform.python_version()},
        }
        files = run.commit(meta)
    meta["files"] = files
    log(summary_table(agree, labels))
    log(f"wrote {', '.join(files)}  ({meta['timings_s']['total']:.1f} s)")
    return meta


def collapsing_table(rows, batch: int) -> tuple:
    """(caption, header, rows): the collapsing-domain measures at each architecture's last pre-activation."""
    out = []
    for label in dict.fromkeys(r["architecture"] for r in rows):
        last = max(r["layer"] for r in rows if r["architecture"] == label)
        cell = {r["quantity"]: r for r in rows if r["architecture"] == label and r["layer"] == last}
        out.append([label, last] + [v for q in ("unit_std", "sign_diversity") for v in (
            cell[q]["predicted"], f"{cell[q]['measured_mean']:.4g} [{cell[q]['measured_lo']:.4g}, "
                                  f"{cell[q]['measured_hi']:.4g}]")])
    return (f"Collapsing domains at the last pre-activation, over a batch of {batch} inputs (n/a: mean field's "
            "equicorrelated batch does not apply, e.g. after batchnorm)",
            ["architecture", "block", "std, mean field", "std, measured [95% CI]", "sign diversity, mean field",
             "sign diversity, measured [95% CI]"], out)


def experiment_report(title, command, settings, agree, labels, figures, rates=(), extra=()) -> str:
    """The Markdown report of a run that compares predictions with measurements (GSC(0, L) in each aggregation,
    the per-layer rates of GSC² and further (caption, header, rows) tables when given)."""
    tables = [(f"log GSC(0, L), {AGGREGATIONS.get(q, q)}", *agreement_table(rows, labels)) for q, rows in agree.items()]
    if rates:
        tables.append(("GSC² per layer: exp of the fitted slope of 2 log GSC(l, L) over the middle 80% of the layers "
                       "(measured: mean over seeds of each network's fit, 95% interval)",
                       ["architecture", "width", "predicted", "measured", "95% interval", "in interval"],
                       [[r["architecture"], r["width"], r["predicted"], r["measured_mean"],
                         f"[{r['measured_lo']:.4g}, {r['measured_hi']:.4g}]",
                         r["measured_lo"] <= r["predicted"] <= r["measured_hi"]] for r in rates]))
    return markdown_report(title, command, settings, tables + list(extra), figures, FINITE_WIDTH_NOTE)


def per_layer_rate(log_gsc, blocks_per_layer: int = 1) -> float:
    """GSC² per layer: exp of the fitted slope of 2 log GSC(l, L) against the layer, over the middle 80% of the
    layers (GSC(l, L) falls towards the output, so the slope is negated; ``blocks_per_layer`` blocks make one
    layer, e.g. 3 for dense, batchnorm, act)."""
    values = np.asarray(log_gsc)[::blocks_per_layer]
    n = len(values)
    keep = slice(max(1, n // 10), n - max(1, n // 10))
    if keep.stop - keep.start < 2:
        keep = slice(0, n)
    return float(np.exp(-2 * np.polyfit(np.arange(n)[keep], values[keep], 1)[0]))


def rate_row(label, width, depth, prediction, meas) -> dict:
    """Predicted and measured GSC² per layer of one architecture at one width (``depth`` layers)."""
    per_layer = max(1, prediction.depth // depth)
    per_seed = np.array([per_layer_rate(row, per_layer) for row in log_gsc_per_input(meas.raw).mean(axis=2)])
    s = t_interval(per_seed[:, None])
    return {"architecture": label, "width": width, "predicted": per_layer_rate(prediction.values["log_gsc"], per_layer),
            "measured_mean": float(s["mean"][0]), "measured_lo": float(s["lo"][0]), "measured_hi": float(s["hi"][0]),
            "n_seeds": int(s["n"][0])}


def save_figure(run: RunOutput, fig, stem: str) -> None:
    """PNG and PDF of ``fig`` as files ``stem.png``, ``stem.pdf`` of the run."""
    for ext in ("png", "pdf"):
        run.path(f"{stem}.{ext}")
    plots.save(fig, os.path.join(run.staging, stem))


def summary_table(agree: dict, labels: dict) -> str:
    """GSC(0, L), predicted vs measured, in each aggregation (headline first), with the finite-width note."""
    head = (f"{'architecture':38s} {'width':>5s} {'predicted':>9s} {'at width':>9s} {'measured [95% CI]':>27s} "
            f"{'|Δ|':>6s} {'in CI':>9s} {'excl.':>5s}")
    yes = {True: "yes", False: "no", None: "n/a"}
    lines = []
    for quantity, rows in agree.items():
        lines += [f"log GSC(0, L), {AGGREGATIONS.get(quantity, quantity)}: mean field (and the prediction at the "
                  f"measured width, where there is one) vs sampled networks", head, "-" * len(head)]
        for r in rows:
            ci = f"{r['measured_mean']:.3f} [{r['measured_lo']:.3f}, {r['measured_hi']:.3f}]"
            corrected = "n/a" if r.get("corrected") is None else f"{r['corrected']:.3f}"
            inside = f"{yes[r['inside']]}/{yes[r.get('corrected_inside')]}"
            lines.append(f"{labels.get(r['architecture'], r['architecture'])[:38]:38s} {r['width']:5d} "
                         f"{r['predicted']:9.3f} {corrected:>9s} {ci:>27s} {r['abs_error']:6.3f} {inside:>9s} "
                         f"{r['n_excluded']:5d}")
        lines.append("")
    if "log_gsc" in agree:
        lines.append(textwrap.fill(FINITE_WIDTH_NOTE, 110))
    return "\n".join(lines)


def progress_bar(total, enabled, desc):
    if not enabled:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit="net", leave=False)
