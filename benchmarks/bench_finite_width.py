"""Finite width against sampled networks (printed, not asserted): infinite-width, corrected and measured.

For each architecture (depth --depth) and each --width: log GSC(0, L) (the mean over networks of the log, the
geometric mean of the two inputs) as mean field predicts it, as :func:`sigprop.numerics.predict` with ``width``
predicts it, and as --seeds sampled networks show it (mean ± standard error); its seed-to-seed standard deviation
predicted and measured (with the sample sd's standard error); and the gradient correlation (pooled over networks)
at --layers: mean field, corrected, measured, and the ratio of the predicted finite-width offset (corrected − mean
field) to the measured one (measured − mean field) where the measured offset is resolved (> 3 standard errors).

Residual networks take the residual route (an n × n matrix per path and layer): their number of paths is cut to
what --residual-seconds allow.

Run: python benchmarks/bench_finite_width.py [--depth 50] [--width 64 100 256 1024] [--seeds 400]
     [--chains 2000] [--residual-seconds 300] [--arch NAME ...] [--json out.json]
"""
import argparse
import json
import math
import time


from sigprop.numerics import predict
from sigprop.theory import parse
from sigprop.validate import measure

ARCHS = {"He-ReLU": "{L}*dense(relu,sw2=2)",
         "tanh (σ_w²=1)": "{L}*dense(tanh,sw2=1)",
         "tanh chaotic (σ_w²=2.5, σ_b²=0.05)": "{L}*dense(tanh,sw2=2.5,sb2=0.05)",
         "tanh ResNet (x + tanh(Wx+b))": "{L}*residual(dense(tanh,sw2=1,sb2=0.05))",
         "ReLU ResNet (x + relu(Wx)/2)": "{L}*residual(dense(relu,sw2=2),beta=0.5)"}
#: seconds per path, layer and squared width of the residual route (its n × n matrices; 2 cores): the number of
#: paths of a residual network is cut to what --residual-seconds allow (at least 40, for the batch-means error)
RESIDUAL_COST = 2.5e-7


def run(name, arch, width, seeds, chains, layers):
    net = parse(arch)
    start = time.perf_counter()
    pred = predict(net, width=width, chains=chains, seed=1)
    t_pred = time.perf_counter() - start
    start = time.perf_counter()
    meas = measure(net, width=width, seeds=seeds)
    t_meas = time.perf_counter() - start
    per_seed = meas.log_gsc_per_input().mean(axis=2)[:, 0]
    fw, summary = pred.finite, meas.summary()
    sd = per_seed.std(ddof=1)
    row = {"architecture": name, "width": width, "seeds": seeds, "chains": fw.chains, "tau": fw.tau,
           "seconds_predict": t_pred, "seconds_measure": t_meas,
           "log_gsc_mean_field": float(pred.values["log_gsc"][0]),
           "log_gsc_corrected": float(fw.mean["log_gsc"][0]), "log_gsc_corrected_se": float(fw.se["log_gsc"][0]),
           "log_gsc_measured": float(per_seed.mean()), "log_gsc_measured_se": float(sd / math.sqrt(seeds)),
           "sd_predicted": float(fw.sd["log_gsc"][0]), "sd_measured": float(sd),
           "sd_measured_se": float(sd / math.sqrt(2 * (seeds - 1))), "grad_corr": []}
    g = summary["grad_corr"]
    for layer in layers:
        mf, corr, se_c = (float(v[layer]) for v in (pred.values["grad_corr"], fw.mean["grad_corr"],
                                                      fw.se["grad_corr"]))
        mean = float(g["mean"][layer])
        se_m = float(g["hi"][layer] - g["lo"][layer]) / (2 * 1.96)
        resolved = abs(mean - mf) > 3 * se_m
        row["grad_corr"].append({"layer": layer, "mean_field": mf, "corrected": corr, "corrected_se": se_c,
                                 "measured": mean, "measured_se": se_m,
                                 "offset_ratio": (corr - mf) / (mean - mf) if resolved else None})
    return row


def show(row):
    rel = (row["log_gsc_corrected"] - row["log_gsc_measured"]) / abs(row["log_gsc_measured"])
    print(f"{row['architecture']:36s} n={row['width']:5d} τ={row['tau']:.3f} seeds={row['seeds']:4d}  "
          f"log GSC(0,L): MF {row['log_gsc_mean_field']:+.3f}  corrected {row['log_gsc_corrected']:+.3f}"
          f"±{row['log_gsc_corrected_se']:.3f}  measured {row['log_gsc_measured']:+.3f}"
          f"±{row['log_gsc_measured_se']:.3f} ({rel:+.1%})   sd: predicted {row['sd_predicted']:.3f}  measured "
          f"{row['sd_measured']:.3f}±{row['sd_measured_se']:.3f} "
          f"({row['sd_predicted'] / row['sd_measured'] - 1:+.1%})   [{row['seconds_predict']:.1f} s predict, "
          f"{row['seconds_measure']:.1f} s measure]")
    for g in row["grad_corr"]:
        ratio = "unresolved" if g["offset_ratio"] is None else f"{g['offset_ratio']:.2f}"
        print(f"{'':36s}   grad_corr layer {g['layer']:3d}: MF {g['mean_field']:.4f}  corrected "
              f"{g['corrected']:.4f}±{g['corrected_se']:.4f}  measured {g['measured']:.4f}±{g['measured_se']:.4f}  "
              f"offset ratio {ratio}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depth", type=int, default=50)
    ap.add_argument("--width", type=int, nargs="+", default=[64, 100, 256, 1024])
    ap.add_argument("--seeds", type=int, nargs="+", default=[400],
                    help="seeds per width (one number, or one per width)")
    ap.add_argument("--chains", type=int, default=2000)
    ap.add_argument("--residual-seconds", type=float, default=300,
                    help="time allowed to the prediction of a residual network (its paths cost O(width²) each)")
    ap.add_argument("--layers", type=int, nargs="+", default=[0, 10, 25])
    ap.add_argument("--arch", nargs="+", default=list(ARCHS), help="architectures (names of the table)")
    ap.add_argument("--json", default=None, help="also write the rows as JSON")
    args = ap.parse_args()
    seeds = args.seeds * len(args.width) if len(args.seeds) == 1 else args.seeds
    rows = []
    for width, n_seeds in zip(args.width, seeds):
        for name in args.arch:
            chains = args.chains
            if "residual" in ARCHS[name]:
                affordable = int(args.residual_seconds / (RESIDUAL_COST * width**2 * args.depth))
                chains = max(40, min(chains, affordable))
            rows.append(run(name, ARCHS[name].format(L=args.depth), width, n_seeds, chains, args.layers))
            show(rows[-1])
            if args.json:
                with open(args.json, "w") as fh:
                    json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
