"""Named experiments: predict, measure, compare, and write a table, metadata and figures to a folder.

The default, ``gsc``, reproduces the central picture of Philipp, Song & Carbonell: the GSC from every layer
to the output for He-ReLU (GSC = 1), tanh at σ_w² = 1, chaotic tanh (σ_w² = 2.5, σ_b² = 0.05, exploding) and a
tanh ResNet (dilution keeps the explosion polynomial), predicted by mean field and measured on sampled networks.
"""
from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass

import numpy as np
import torch

from numerics import predict
from numerics.results import rows_to_csv, sigprop_version, to_json_text, write_atomic
from theory import parse

from . import plots
from .build import check_positive_int
from .compare import COLUMNS, agreement, compare
from .measure import measure


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    architectures: tuple          # (label, grammar template with {L} for the depth)
    q0: float = 1.0
    c0: float = 0.5

    def networks(self, depth: int):
        return [(label, parse(template.format(L=depth))) for label, template in self.architectures]


EXPERIMENTS = {
    "gsc": Experiment(
        "gsc", "GSC vs depth",
        (("He-ReLU (σ_w²=2)", "{L}*dense(relu,sw2=2)"),
         ("tanh (σ_w²=1)", "{L}*dense(tanh,sw2=1)"),
         ("tanh chaotic (σ_w²=2.5, σ_b²=0.05)", "{L}*dense(tanh,sw2=2.5,sb2=0.05)"),
         ("tanh ResNet (x + W₂ tanh(W₁x))", "{L}*residual(dense(tanh,sw2=1),dense(linear,sw2=1))"))),
}


def run_experiment(name: str = "gsc", out="results", widths=(256,), seeds: int = 10, depth: int = 50,
                   probes="exact", dtype: str = "float64", device: str = "cpu", progress: bool = True,
                   log=print) -> dict:
    """Run a named experiment and write ``<name>.csv``, ``<name>.json`` and figures into ``out``.

    Returns the metadata dict (also written as JSON), including the agreement of log GSC(0, L) per width.
    """
    if name not in EXPERIMENTS:
        raise ValueError(f"experiment={name!r} is not known; allowed: {', '.join(EXPERIMENTS)}")
    check_positive_int("depth", depth)
    widths = list(widths)
    if not widths:
        raise ValueError("widths=[] is not allowed: give at least one width")
    exp = EXPERIMENTS[name]
    nets = exp.networks(depth)
    labels = {net.describe(): label for label, net in nets}
    os.makedirs(out, exist_ok=True)
    timings, rows = {}, []
    t0 = time.perf_counter()
    predictions = {}
    for label, net in nets:
        t = time.perf_counter()
        predictions[label] = predict(net, q0=exp.q0, c0=exp.c0)
        timings[f"predict {label}"] = time.perf_counter() - t
    bar = _progress_bar(len(widths) * len(nets) * seeds, progress, f"{name}: measuring")
    for width in widths:
        for label, net in nets:
            t = time.perf_counter()
            meas = measure(net, width=width, seeds=seeds, q0=exp.q0, c0=exp.c0, probes=probes, dtype=dtype,
                           device=device, progress=bar.update if bar else None)
            timings[f"measure {label} width {width}"] = time.perf_counter() - t
            rows += compare(predictions[label], meas, experiment=name)
    if bar:
        bar.close()
    agree = agreement(rows)
    stem = os.path.join(out, name)
    write_atomic(f"{stem}.csv", rows_to_csv(rows, COLUMNS))
    files = [f"{stem}.csv"]
    top = max(widths)
    files += plots.save(plots.gsc_figure(rows, labels, top, seeds, exp.title), f"{stem}_gsc")
    files += plots.save(plots.quantities_figure(rows, labels, top), f"{stem}_quantities")
    if len(widths) > 1:
        files += plots.save(plots.convergence_figure(agree, labels), f"{stem}_convergence")
    meta = {
        "experiment": name, "title": exp.title, "depth": depth, "widths": widths, "seeds": list(range(seeds)),
        "inputs": {"q0": exp.q0, "c0": exp.c0}, "probes": probes, "dtype": dtype, "device": device,
        "architectures": {label: net.describe() for label, net in nets},
        "agreement_log_gsc_0_L": agree,
        "fraction_inside_95ci": _inside_fraction(rows),
        "timings_s": {**timings, "total": time.perf_counter() - t0},
        "versions": {"sigprop": sigprop_version(), "torch": torch.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "files": files + [f"{stem}.json"],
    }
    write_atomic(f"{stem}.json", to_json_text(meta))
    log(summary_table(agree, labels))
    log(f"wrote {', '.join(meta['files'])}  ({meta['timings_s']['total']:.1f} s)")
    return meta


def _inside_fraction(rows) -> dict:
    out = {}
    for r in rows:
        key = f"{r['quantity']}"
        n, k = out.get(key, (0, 0))
        out[key] = (n + 1, k + int(r["inside"]))
    return {key: k / n for key, (n, k) in out.items()}


def summary_table(agree: list[dict], labels: dict) -> str:
    head = f"{'architecture':40s} {'width':>6s} {'predicted':>10s} {'measured [95% CI]':>28s} {'|Δ|':>7s} {'rel':>7s}"
    lines = ["log GSC(0, L): mean-field prediction vs sampled networks", head, "-" * len(head)]
    for r in agree:
        rel = "n/a" if r["rel_error"] is None else f"{r['rel_error']:.3f}"
        ci = f"{r['measured_mean']:.3f} [{r['measured_lo']:.3f}, {r['measured_hi']:.3f}]"
        lines.append(f"{labels.get(r['architecture'], r['architecture'])[:40]:40s} {r['width']:6d} "
                     f"{r['predicted']:10.3f} {ci:>28s} {r['abs_error']:7.3f} {rel:>7s}")
    return "\n".join(lines)


def _progress_bar(total, enabled, desc):
    if not enabled:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit="net", leave=False)
