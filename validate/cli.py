"""The ``sigprop`` command line: reproduce the default experiment, predict, measure.

Run ``sigprop --help`` or ``sigprop COMMAND --help``. Bad input ends with a one-line message and exit code 2.
"""
from __future__ import annotations

import argparse
import json
import sys

from numerics import OutOfRangeError, predict
from numerics.results import QUANTITIES

GRAMMAR = """architecture grammar:
  network  := item ("," item)*          blocks in order, from the input
  item     := [N "*"] atom              N repetitions
  atom     := dense(ACT [,sw2=V] [,sb2=V])           phi(W x + b), W ~ N(0, sw2/n), b ~ N(0, sb2)
            | residual(network [,alpha=V] [,beta=V]) alpha*x + beta*branch(x)
            | "(" network ")"
  ACT      := relu | tanh | erf | linear
examples: "50*dense(tanh,sw2=2.5,sb2=0.05)"  "20*residual(dense(relu,sw2=2),beta=0.5)"
          "10*residual(dense(tanh),dense(linear))"
"""


def _positive_int(text):
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return n


def _probes(text):
    if text == "exact":
        return "exact"
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"probes={text!r}: use 'exact' or an integer >= 1") from None


def _measure_options(p, width_default):
    p.add_argument("--seeds", type=_positive_int, default=10, help="number of sampled networks (default 10; >= 2)")
    p.add_argument("--probes", type=_probes, default="exact",
                   help="'exact' (all output directions, exact Frobenius norms) or a number of Hutchinson probes")
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64", help="network dtype (default float64)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sigprop", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Signal propagation in deep networks: mean-field predictions (theory/, numerics/) checked "
                    "against sampled networks (validate/).",
        epilog="commands:\n  reproduce   the default experiment: GSC vs depth, predicted vs measured\n"
               "  predict     per-layer mean-field prediction for an architecture\n"
               "  measure     predicted vs measured for an architecture\n\n" + GRAMMAR)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    rep = sub.add_parser("reproduce", formatter_class=argparse.RawDescriptionHelpFormatter,
                         help="run a named experiment (default: GSC vs depth) and write figures and tables",
                         description="Predict and measure GSC(l, L), correlations and gradient correlations for "
                                     "He-ReLU, tanh (σ_w²=1), chaotic tanh and a tanh ResNet. Writes "
                                     "<experiment>.csv, <experiment>.json and PNG/PDF figures into --out.")
    rep.add_argument("--experiment", default="gsc", help="experiment name (default gsc)")
    rep.add_argument("--out", default="results", help="output folder (default results/)")
    rep.add_argument("--width", type=_positive_int, nargs="+", default=[256],
                     help="network width(s); several widths add a convergence figure (default 256)")
    rep.add_argument("--depth", type=_positive_int, default=50, help="number of blocks (default 50)")
    _measure_options(rep, 256)

    pre = sub.add_parser("predict", formatter_class=argparse.RawDescriptionHelpFormatter,
                         help="print the per-layer mean-field prediction for an architecture",
                         description="Per-layer mean-field prediction for two inputs.\n\n" + GRAMMAR
                                     + "\nquantities:\n" + "\n".join(f"  {k:11s} {v}" for k, v in QUANTITIES.items()))
    pre.add_argument("architecture", help="architecture in the grammar below")
    pre.add_argument("--q0", type=float, default=1.0, help="mean square ||x||^2/n of each input (default 1)")
    pre.add_argument("--c0", type=float, default=0.5, help="correlation of the two inputs (default 0.5)")
    pre.add_argument("--json", action="store_true", help="print JSON instead of a table")

    mea = sub.add_parser("measure", formatter_class=argparse.RawDescriptionHelpFormatter,
                         help="compare prediction and sampled networks for one architecture",
                         description="Predict and measure one architecture; print log GSC(0, L) and write the "
                                     "comparison table (and a figure) when --out is given.\n\n" + GRAMMAR)
    mea.add_argument("architecture", help="architecture in the grammar below")
    mea.add_argument("--width", type=_positive_int, default=256, help="network width (default 256)")
    mea.add_argument("--q0", type=float, default=1.0, help="mean square of each input (default 1)")
    mea.add_argument("--c0", type=float, default=0.5, help="correlation of the two inputs (default 0.5)")
    mea.add_argument("--out", default=None, help="folder for measure.csv and figures (optional)")
    _measure_options(mea, 256)
    return parser


def _cmd_reproduce(args):
    from validate.experiments import run_experiment
    run_experiment(args.experiment, out=args.out, widths=args.width, seeds=args.seeds, depth=args.depth,
                   probes=args.probes, dtype=args.dtype, device=args.device, progress=not args.no_progress)


def _cmd_predict(args):
    from theory import parse
    pred = predict(parse(args.architecture), q0=args.q0, c0=args.c0)
    if args.json:
        print(pred.to_json(), end="")
        return
    names = list(pred.values)
    print(f"# {pred.architecture}   q0={args.q0} c0={args.c0}")
    print("layer " + " ".join(f"{n:>12s}" for n in names))
    for layer in pred.layers["p"]:
        cells = []
        for n in names:
            ls, vs = pred.series(n)
            idx = layer - ls[0]
            cells.append(f"{vs[idx]:12.6g}" if 0 <= idx < len(vs) else f"{'':>12s}")
        print(f"{layer:5d} " + " ".join(cells))


def _cmd_measure(args):
    import os

    from numerics.results import rows_to_csv, write_atomic
    from theory import parse
    from validate import plots
    from validate.compare import COLUMNS, agreement, compare
    from validate.experiments import _progress_bar, summary_table
    from validate.measure import measure

    net = parse(args.architecture)
    pred = predict(net, q0=args.q0, c0=args.c0)
    bar = _progress_bar(args.seeds, not args.no_progress, "measuring")
    meas = measure(net, width=args.width, seeds=args.seeds, q0=args.q0, c0=args.c0, probes=args.probes,
                   dtype=args.dtype, device=args.device, progress=bar.update if bar else None)
    if bar:
        bar.close()
    rows = compare(pred, meas, experiment="measure")
    labels = {net.describe(): net.describe()}
    print(summary_table(agreement(rows), labels))
    inside = sum(r["inside"] for r in rows) / len(rows)
    print(f"{100 * inside:.0f}% of {len(rows)} predicted values lie in the measured 95% intervals")
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        write_atomic(os.path.join(args.out, "measure.csv"), rows_to_csv(rows, COLUMNS))
        files = plots.save(plots.quantities_figure(rows, labels, args.width), os.path.join(args.out, "measure"))
        print("wrote " + ", ".join([os.path.join(args.out, "measure.csv")] + files))


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        {"reproduce": _cmd_reproduce, "predict": _cmd_predict, "measure": _cmd_measure}[args.command](args)
    except (ValueError, OutOfRangeError) as exc:
        print(f"sigprop: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `sigprop predict ... | head`
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
