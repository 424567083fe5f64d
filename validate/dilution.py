"""The ``dilution`` experiment: Philipp, Song & Carbonell's Pythagorean dilution, predicted and measured.

A residual block y = s + r (skip s = x, branch r = βF(x)) with uncorrelated branches has
GSC_y² = (k² GSC_s² + GSC_r²)/(k² + 1), k = ‖s‖/‖r‖ (:func:`sigprop.theory.laws.dilution_law`). The branch here is
``layernorm, 3*dense(tanh,sw2=3), dense(linear)``: normalized, so its own GSC_r and output size do not depend on
the size of x, and exploding (GSC_r² ≈ 2.46).

1. **One block against the law.** For β on a log grid, k and GSC_r come from the branch alone (``predict`` of the
   branch as a network), the law gives GSC_y², and the block's own mean-field map (``predict`` of the block) must
   give the same number; sampled blocks give the measured GSC_y² (ratio of quadratic means over inputs and seeds)
   with a bootstrap 95% interval.
2. **A ResNet's GSC grows polynomially.** In ``L*residual(branch)`` the skip grows (k_l² = k_0² + l), so the law
   dilutes every block more than the last: log GSC(0, L) = ½[lnΓ(k_0² + L + G²) − lnΓ(k_0² + G²) − lnΓ(k_0² + L + 1)
   + lnΓ(k_0² + 1)] with G² = GSC_r², i.e. GSC(0, L) ∝ L^((G² − 1)/2) for large L, instead of exploding
   exponentially. The closed form (from the law), mean field's iteration of the maps and sampled networks are
   compared on log-log axes, with the exponent fitted to each.

Files: ``dilution.csv`` (both panels), ``dilution_block.png/pdf``, ``dilution_resnet.png/pdf``, ``dilution.md``
(report) and ``dilution.json``.

Example
-------
>>> from sigprop.validate.dilution import branch_terms, law
>>> gsc_r2, p_r = branch_terms()
>>> round(gsc_r2, 4), round(law(1.0, gsc_r2), 4)     # k = 1: the mean of the skip's 1 and the branch's GSC_r²
(2.4575, 1.7288)
"""
from __future__ import annotations

import math
import time

from functools import lru_cache

import numpy as np
import sympy as sp
import torch

from .. import __version__
from ..io import RunOutput, rows_to_csv
from ..numerics import predict
from ..theory import laws, parse
from .measure import measure
from .report import markdown_report

BRANCH = "layernorm,3*dense(tanh,sw2=3),dense(linear)"
BLOCK = "residual(" + BRANCH + ",beta={beta})"
RESNET = "{L}*residual(" + BRANCH + ")"
PRESETS = {"quick": {"widths": [48], "seeds": 3, "depth": 16, "betas": 5},
           "full": {"widths": [512], "seeds": 20, "depth": 128, "betas": 13}}
COLUMNS = ["panel", "beta", "depth", "k", "law", "mean_field", "measured_mean", "measured_lo", "measured_hi", "width",
           "n_seeds"]


def branch_terms(q0: float = 1.0) -> tuple[float, float]:
    """(GSC_r², p_r): the branch's own GSC² and output mean square on an input of mean square q0 (mean field)."""
    pred = predict(parse(BRANCH), q0=q0, c0=0.5)
    return math.exp(2 * float(pred.values["log_gsc"][0])), math.exp(float(pred.raw["log_p"][-1][0]))


def law(k2: float, gsc_r2: float) -> float:
    """GSC_y² by the dilution law (GSC_s = 1 for the identity skip), evaluated from theory's formula."""
    f = laws.dilution_law().rhs
    return float(f.subs({laws.k_ratio: math.sqrt(k2), laws.gsc_s: 1, laws.gsc_r: math.sqrt(gsc_r2)}))


@lru_cache(maxsize=None)
def _resnet_law():
    return sp.lambdify((laws.n_blocks, laws.gsc_r, laws.k0_sq), laws.diluted_resnet_law().rhs,
                       modules=["scipy", np])


def resnet_law(depths, gsc_r2: float, k0_2: float) -> np.ndarray:
    """log GSC(0, L) of ``L`` diluted blocks with k_l² = k0² + l: theory's closed form
    (:func:`sigprop.theory.laws.diluted_resnet_law`)."""
    return np.asarray(_resnet_law()(np.asarray(depths, dtype=float), math.sqrt(gsc_r2), k0_2), dtype=float)


def fitted_slope(depths, values, lo=None, hi=None) -> tuple[float, float]:
    """Least-squares slope of ``values`` against log depth over the upper half of the depths, and its 95%
    half-width (weighted by the intervals when given, else from the residuals)."""
    x, y = np.log(np.asarray(depths, float)), np.asarray(values, float)
    keep = x >= np.median(x)
    x, y = x[keep], y[keep]
    if lo is not None:
        se = (np.asarray(hi, float)[keep] - np.asarray(lo, float)[keep]) / (2 * 1.96)
        w = 1.0 / np.maximum(se, 1e-12) ** 2
        xm = np.sum(w * x) / np.sum(w)
        slope = np.sum(w * (x - xm) * y) / np.sum(w * (x - xm) ** 2)
        return float(slope), float(1.96 / math.sqrt(np.sum(w * (x - xm) ** 2)))
    slope = np.polyfit(x, y, 1)[0]
    return float(slope), 0.0


def run_dilution(out="results", widths=None, seeds=None, depth=None, probes="exact", dtype="float64", device="cpu",
                 progress=True, preset="quick", log=print) -> dict:
    """Run the experiment (``preset`` 'quick' or 'full' fills the settings not given; the number of β values
    is the preset's) and write its files (``sigprop.validate.run_experiment("dilution", ...)`` runs it too)."""
    from . import plots
    from .experiments import progress_bar, save_figure
    setting = dict(PRESETS[preset])
    widths = list(widths or setting["widths"])
    seeds = seeds or setting["seeds"]
    depth = depth or setting["depth"]
    t0 = time.perf_counter()
    gsc_r2, p_r = branch_terms()
    betas = np.geomspace(0.1, 10.0, setting["betas"])
    depths = sorted({d for d in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024) if d <= depth} | {depth})
    bar = progress_bar(len(widths) * seeds * (len(betas) + len(depths)), progress, "dilution: measuring")
    rows = []
    for width in widths:
        for beta in betas:
            net = parse(BLOCK.format(beta=repr(float(beta))))
            k2 = 1.0 / (beta**2 * p_r)
            mean_field = math.exp(2 * float(predict(net).values["log_gsc_qm"][0]))
            s = measure(net, width=width, seeds=seeds, probes=probes, dtype=dtype, device=device,
                        progress=bar.update if bar else None).summary()["log_gsc_qm"]
            rows.append({"panel": "block", "beta": float(beta), "depth": 1, "k": math.sqrt(k2),
                         "law": law(k2, gsc_r2), "mean_field": mean_field, "measured_mean": math.exp(2 * s["mean"][0]),
                         "measured_lo": math.exp(2 * s["lo"][0]), "measured_hi": math.exp(2 * s["hi"][0]),
                         "width": width, "n_seeds": int(s["n"][0])})
        closed = resnet_law(depths, gsc_r2, 1.0 / p_r)
        for L, lawv in zip(depths, closed):
            net = parse(RESNET.format(L=L))
            mean_field = float(predict(net).values["log_gsc_qm"][0])
            s = measure(net, width=width, seeds=seeds, probes=probes, dtype=dtype, device=device,
                        progress=bar.update if bar else None).summary()["log_gsc_qm"]
            rows.append({"panel": "resnet", "beta": 1.0, "depth": L, "k": math.sqrt(1.0 / p_r),
                         "law": float(lawv), "mean_field": mean_field, "measured_mean": float(s["mean"][0]),
                         "measured_lo": float(s["lo"][0]), "measured_hi": float(s["hi"][0]), "width": width,
                         "n_seeds": int(s["n"][0])})
    if bar:
        bar.close()
    exponent = (gsc_r2 - 1) / 2
    slopes = {}
    for width in widths:
        res = [r for r in rows if r["panel"] == "resnet" and r["width"] == width]
        d = [r["depth"] for r in res]
        slopes[width] = {"law": fitted_slope(d, [r["law"] for r in res])[0],
                         "mean_field": fitted_slope(d, [r["mean_field"] for r in res])[0],
                         "measured": fitted_slope(d, [r["measured_mean"] for r in res],
                                                  [r["measured_lo"] for r in res], [r["measured_hi"] for r in res])}
    block_gap = max(abs(r["law"] - r["mean_field"]) / r["law"] for r in rows if r["panel"] == "block")
    resnet_gap = max(abs(r["law"] - r["mean_field"]) for r in rows if r["panel"] == "resnet")
    with RunOutput(out, "dilution") as run:
        run.write("dilution.csv", rows_to_csv(rows, COLUMNS))
        top = max(widths)
        save_figure(run, plots.dilution_block_figure([r for r in rows if r["panel"] == "block" and r["width"] == top],
                                                     gsc_r2, top), "dilution_block")
        save_figure(run, plots.dilution_resnet_figure([r for r in rows if r["panel"] == "resnet" and r["width"] == top],
                                                      exponent, slopes[top], top), "dilution_resnet")
        command = (f"sigprop reproduce dilution --width {' '.join(map(str, widths))} --depth {depth} --seeds {seeds} "
                   f"--probes {probes} --dtype {dtype} --device {device}")
        table = [[r["width"], f"{r['beta']:.3g}", r["k"], r["law"], r["mean_field"], r["measured_mean"],
                  f"[{r['measured_lo']:.4g}, {r['measured_hi']:.4g}]"] for r in rows if r["panel"] == "block"]
        res_table = [[r["width"], r["depth"], r["law"], r["mean_field"], r["measured_mean"],
                      f"[{r['measured_lo']:.4g}, {r['measured_hi']:.4g}]"] for r in rows if r["panel"] == "resnet"]
        exp_table = [[w, exponent, s["law"], s["mean_field"], f"{s['measured'][0]:.4g} ± {s['measured'][1]:.2g}"]
                     for w, s in slopes.items()]
        run.write("dilution.md", markdown_report(
            "Pythagorean dilution: one block against the law, a ResNet's polynomial GSC", command,
            {"branch": BRANCH, "GSC_r² (mean field)": gsc_r2, "p_r": p_r, "widths": widths, "seeds": seeds,
             "depths": depths, "probes": probes, "dtype": dtype, "device": device, "sigprop": __version__},
            [("One block: GSC_y² against k = ‖s‖/‖r‖", ["width", "β", "k", "law", "mean field", "measured",
                                                         "95% interval"], table),
             ("ResNet: log GSC(0, L)", ["width", "L", "law (closed form)", "mean field", "measured", "95% interval"],
              res_table),
             ("ResNet: exponent of GSC(0, L) ∝ L^e", ["width", "(G² − 1)/2", "slope, law", "slope, mean field",
                                                     "slope, measured"], exp_table)],
            [("GSC_y² of one block against k", "dilution_block.png"),
             ("GSC(0, L) of the ResNet against depth, log-log", "dilution_resnet.png")],
            "GSC is the ratio of quadratic means over inputs and seeds (`log_gsc_qm`); slopes are fitted over the "
            "upper half of the depths."))
        meta = {"experiment": "dilution", "branch": BRANCH, "gsc_r2": gsc_r2, "p_r": p_r, "exponent": exponent,
                "slopes": {str(w): s for w, s in slopes.items()}, "widths": widths, "seeds": list(range(seeds)),
                "depths": depths, "probes": probes, "dtype": dtype, "device": device,
                "law_vs_mean_field": {"block_max_relative": block_gap, "resnet_max_abs_log": resnet_gap},
                "seconds": time.perf_counter() - t0,
                "versions": {"sigprop": __version__, "torch": torch.__version__, "numpy": np.__version__}}
        files = run.commit(meta)
    meta["files"] = files
    for w, s in slopes.items():
        log(f"dilution, width {w}: GSC(0, L) ∝ L^e with e = (G² − 1)/2 = {exponent:.4f}; fitted slope: law "
            f"{s['law']:.4f}, mean field {s['mean_field']:.4f}, measured {s['measured'][0]:.4f} ± "
            f"{s['measured'][1]:.2g}")
    log(f"law vs mean field: one block {block_gap:.1e} relative, ResNet {resnet_gap:.1e} in log GSC")
    log(f"wrote {', '.join(files)}  ({meta['seconds']:.1f} s)")
    return meta
