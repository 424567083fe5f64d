"""Normalized networks and initial states: per-layer rates predicted vs measured on sampled networks.

For each network of the ``philipp`` and ``shattering`` experiments (Philipp, Song & Carbonell's Fig. 1 set; Balduzzi
et al.'s gradient-correlation panel) at depth L layers: the per-layer rate of GSC² (the fitted slope of
2 log GSC(l, L) over the layers away from the input and the output, as exp(slope) per dense layer) and the
gradient correlation at the input, mean field beside the sampled networks' mean and 95% interval. Networks with
batchnorm are fed B inputs at once; the batch-ReLU line of the issue's check, GSC per layer at B = 256 against
√(π/(π − 1)), is printed first.

Run: python benchmarks/bench_normalization.py [--depth 50] [--width 512] [--seeds 8] [--batch-width 1024]
"""
import argparse
import math
import time

import numpy as np

from sigprop.numerics import predict
from sigprop.theory import parse
from sigprop.theory.blocks.batchnorm import training_batchnorms
from sigprop.validate import measure
from sigprop.validate.experiments import EXPERIMENTS, per_layer_rate


def run(label, net, blocks_per_layer, width, seeds, batch):
    pred = predict(net)
    t = time.perf_counter()
    meas = measure(net, width=width, seeds=seeds, probes=8 if batch else 16, batch=batch)
    seconds = time.perf_counter() - t
    per_seed = meas.raw
    from sigprop.quantities import log_gsc_per_input
    log_gsc = log_gsc_per_input(per_seed).mean(axis=2)                      # [seed, layer]
    rates = np.array([per_layer_rate(row, blocks_per_layer) for row in log_gsc])
    s = meas.summary()
    mean, half = rates.mean(), 1.96 * rates.std(ddof=1) / math.sqrt(len(rates))
    print(f"{label:48s} {per_layer_rate(pred.values['log_gsc'], blocks_per_layer):8.4f} "
          f"{mean:8.4f} [{mean - half:.4f}, {mean + half:.4f}]   {pred.values['grad_corr'][0]:9.4f} "
          f"{s['grad_corr']['mean'][0]:9.4f} [{s['grad_corr']['lo'][0]:.4f}, {s['grad_corr']['hi'][0]:.4f}]"
          f"  {seconds:6.1f} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depth", type=int, default=50)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--batch-width", type=int, default=1024, help="width of the B = 256 batch-ReLU check")
    ap.add_argument("--seeds", type=int, default=8)
    args = ap.parse_args()

    net = parse(f"{args.depth}*(dense(linear,sw2=2),batchnorm,act(relu))")
    target = math.sqrt(math.pi / (math.pi - 1))
    for batch in (math.inf, 256):
        pred = predict(net, batch=batch)
        per_layer = np.exp(-np.diff(pred.values["log_gsc"][::3]))[1:-1]
        print(f"batch-ReLU, B = {batch}: GSC per layer {per_layer.min():.5f}..{per_layer.max():.5f}, "
              f"sqrt(pi/(pi-1)) = {target:.5f}, worst relative deviation {np.max(np.abs(per_layer / target - 1)):.2e}")
    meas = measure(net, width=args.batch_width, seeds=max(3, args.seeds // 2), probes=2, batch=256)
    from sigprop.quantities import log_gsc_per_input
    rows = log_gsc_per_input(meas.raw).mean(axis=2)
    rates = np.sqrt([per_layer_rate(r, 3) for r in rows])
    print(f"  sampled, B = 256, width {args.batch_width}, {len(rates)} seeds: GSC per layer {rates.mean():.5f} "
          f"+- {1.96 * rates.std(ddof=1) / math.sqrt(len(rates)):.5f} (95%)\n")

    print(f"depth {args.depth} layers, width {args.width}, {args.seeds} seeds; GSC² per layer (fit over the middle "
          "layers) and gradient correlation at the input:")
    print(f"{'network':48s} {'pred.':>8s} {'measured [95% CI]':>26s}   {'corr pred':>9s} {'corr measured [95% CI]':>28s}")
    for name in ("philipp", "shattering"):
        exp = EXPERIMENTS[name]
        print(f"-- {exp.title}")
        for label, template in exp.architectures:
            net = parse(template.format(L=args.depth))
            blocks_per_layer = net.depth // args.depth
            batch = exp.batch if training_batchnorms(net.blocks) else None
            run(label, net, blocks_per_layer, args.width, args.seeds, batch)


if __name__ == "__main__":
    main()
