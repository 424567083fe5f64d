"""The ``sigprop`` command line: reproduce an experiment, predict, measure, print the grammar.

Run ``sigprop --help`` or ``sigprop COMMAND --help``. Bad input ends with a one-line ``sigprop: error: …`` and
exit code 2, before any work is done. Imports are deferred: ``sigprop --help`` loads neither SymPy nor torch,
and ``sigprop predict`` never loads torch.
"""
from __future__ import annotations

import argparse
import math
import re
import shlex
import sys

from . import __version__

COMMANDS = {"reproduce": "run a named experiment (default: GSC vs depth) and write figures and tables",
            "predict": "print the per-layer mean-field prediction for an architecture",
            "measure": "compare the prediction with sampled networks for one architecture, or measure your model",
            "sweep": "measure architectures over depths, widths and seeds (resumable; local pool or Dask)",
            "phase": "phase diagram of deep dense networks: fixed points, depth scales, critical line",
            "grammar": "print the architecture grammar (block kinds and activations)"}


def grammar_text() -> str:
    from .theory import grammar
    return ("architecture grammar:\n" + "\n".join("  " + line for line in grammar().splitlines())
            + '\nexamples: "50*dense(tanh,sw2=2.5,sb2=0.05)"  "20*residual(dense(relu,sw2=2),beta=0.5)"\n'
            '          "10*residual(dense(tanh),dense(linear))"')


def quantities_text() -> str:
    from .quantities import QUANTITIES
    return "quantities:\n" + "\n".join(f"  {k:11s} {q.meaning}" for k, q in QUANTITIES.items())


class _LazyHelp(argparse.ArgumentParser):
    """A parser whose epilog is generated only when its help is shown (it needs the registries)."""

    epilog_parts: tuple = ()

    def format_help(self):
        self.epilog = "\n\n".join(part() for part in self.epilog_parts)
        return super().format_help()


def _q0(text):
    from .checks import parse_q0
    try:
        return parse_q0(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_int(text):
    if not re.fullmatch(r"[0-9]+", text, re.ASCII):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    n = int(text)
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


def _batch(text):
    from .checks import parse_batch
    try:
        return parse_batch(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _range(text):
    """A:B, two numbers with A < B."""
    parts = text.split(":")
    try:
        lo, hi = (float(v) for v in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a range: give A:B, two numbers") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise argparse.ArgumentTypeError(f"{text!r} is not a range: need finite A < B")
    return lo, hi


def _grid(text):
    n = _positive_int(text)
    if n < 2 or n > 2000:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: the grid needs 2 to 2000 points per axis")
    return n


def _definition(text):
    name, sep, expr = text.partition("=")
    if not sep or not name.strip() or not expr.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: write NAME=EXPRESSION, e.g. softplus='log(1+exp(x))'")
    return name.strip(), expr.strip()


def _measure_options(p, seeds):
    p.add_argument("--seeds", type=_positive_int, default=seeds,
                   help=f"number of sampled networks (default {seeds or 'from the preset'}; >= 2)")
    p.add_argument("--probes", type=_probes, default=None,
                   help="'exact' (all output directions, exact Frobenius norms) or a number of Hutchinson probes "
                        "(a number >= the width means exact; default exact, 8 for a batch of more than 2 inputs, "
                        "--batch or --inputs)")
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64", help="network dtype (default float64)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _extension_options(p):
    p.add_argument("--activation", type=_definition, action="append", default=[], metavar="NAME=EXPR",
                   help="define an activation from a SymPy expression in x for this run, e.g. "
                        "--activation \"xerf=x*erf(x)\" (repeatable)")
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE|FILE.py",
                   help="import a module or a Python file first, e.g. one that registers a block kind or "
                        "activations (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sigprop", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Signal propagation in deep networks: mean-field predictions checked against sampled networks.",
        epilog="commands:\n" + "\n".join(f"  {k:11s} {v}" for k, v in COMMANDS.items())
               + "\n\nThe architecture grammar: sigprop grammar (also in sigprop predict --help).")
    parser.add_argument("--version", action="version", version=f"sigprop {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_LazyHelp)

    rep = sub.add_parser("reproduce", formatter_class=argparse.RawDescriptionHelpFormatter,
                         help=COMMANDS["reproduce"],
                         description="Run a named experiment: predict, measure sampled networks, compare. The "
                                     "default, gsc, is GSC(l, L), correlations and gradient correlations for He-ReLU, "
                                     "tanh (σ_w²=1), chaotic tanh and a tanh ResNet; philipp is Philipp et al.'s "
                                     "Fig. 1 set, shattering Balduzzi et al.'s gradient-correlation panel, balduzzi "
                                     "their shattered gradients on a line of scalar inputs (autocorrelation, "
                                     "shattering depth; mean field beside their independent model), dilution "
                                     "the Pythagorean dilution law (one block against k; a ResNet's polynomial GSC); "
                                     "all runs every one. Writes <experiment>.csv, PNG/PDF figures, a report "
                                     "<experiment>.md and <experiment>.json (settings, agreement, the run's files "
                                     "with checksums) into --out. --quick runs tiny settings (seconds, what the tests "
                                     "run), --full (the default) the paper-scale ones; --width, --depth and --seeds "
                                     "override either.")
    rep.add_argument("name", nargs="?", default=None, metavar="NAME",
                     help="experiment: gsc (default), philipp, shattering, balduzzi, dilution or all")
    rep.add_argument("--experiment", default=None, help="the experiment, as NAME (kept for older scripts)")
    size = rep.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="preset", action="store_const", const="quick", default="full",
                      help="tiny settings: seconds on 2 cores")
    size.add_argument("--full", dest="preset", action="store_const", const="full",
                      help="the paper-scale settings (default)")
    rep.add_argument("--out", default="results", help="output folder (default results/)")
    rep.add_argument("--width", type=_positive_int, nargs="+", default=None,
                     help="network width(s); several widths add a convergence figure (default: the preset's; "
                          "gsc --full: 512)")
    rep.add_argument("--depth", type=_positive_int, default=None,
                     help="number of blocks (default: the preset's; gsc --full: 50)")
    _measure_options(rep, seeds=None)

    pre = sub.add_parser("predict", formatter_class=argparse.RawDescriptionHelpFormatter, help=COMMANDS["predict"],
                         description="Per-layer mean-field prediction for two inputs. Non-finite values (a mean "
                                     "square beyond float64) print as inf and are null in --json, where the "
                                     "per-input logarithms stay finite.")
    pre.epilog_parts = (grammar_text, quantities_text)
    pre.add_argument("architecture", help="architecture in the grammar below")
    pre.add_argument("--q0", type=_q0, default=1.0,
                     help="mean square ||x||^2/n of each input, or qa,qb for inputs of different norms (default 1)")
    pre.add_argument("--c0", type=float, default=0.5, help="correlation of the two inputs (default 0.5)")
    pre.add_argument("--batch", type=_batch, default=None,
                     help="the two inputs are members of a batch of B inputs, every pair at correlation c0 (an "
                          "integer >= 2, or inf for the large-batch limit); sets the batch of training-mode "
                          "batchnorm blocks")
    pre.add_argument("--width", type=_positive_int, default=None,
                     help="also predict networks of this width: each quantity's mean over networks and the "
                          "seed-to-seed 95%% range of one network (dense blocks, residual blocks around one dense layer)")
    pre.add_argument("--chains", type=_positive_int, default=2000,
                     help="sampled forward paths behind --width (default 2000)")
    pre.add_argument("--seed", type=int, default=0, help="random seed of those paths (default 0)")
    pre.add_argument("--no-progress", action="store_true", help="no progress bar for --width")
    pre.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _extension_options(pre)

    mea = sub.add_parser("measure", formatter_class=argparse.RawDescriptionHelpFormatter, help=COMMANDS["measure"],
                         description="Predict and measure one architecture; print GSC(0, L) and the fraction of "
                                     "predictions inside the measured 95% intervals, and write the comparison "
                                     "table (measure.csv), a figure (measure.png/pdf), a report (measure.md) and "
                                     "measure.json when --out is given. Given your own torch model (FILE.py:NAME), "
                                     "measure it: print the per-layer table, and write the same files when --out "
                                     "is given.")
    mea.epilog_parts = (grammar_text,)
    mea.add_argument("architecture", help="architecture in the grammar below, or your own torch model: FILE.py:NAME "
                                          "or package.module:NAME, a torch.nn.Module or a factory seed -> module "
                                          "(measured only: per-layer table; with --out measure.csv, .json, "
                                          ".png/.pdf and .md)")
    mea.add_argument("--width", type=_positive_int, default=None, help="network width (default 256)")
    mea.add_argument("--q0", type=_q0, default=1.0,
                     help="mean square of each input, or qa,qb for inputs of different norms (default 1)")
    mea.add_argument("--c0", type=float, default=0.5, help="correlation of the two inputs (default 0.5)")
    mea.add_argument("--batch", type=_batch, default=None,
                     help="feed B inputs at once, every pair at correlation c0 (needs width >= B + 1); networks "
                          "with training-mode batchnorm need it unless they name their batch")
    mea.add_argument("--out", default=None, help="folder for measure.csv, measure.json and figures (optional)")
    mea.add_argument("--observe", default=None, metavar="NAMES",
                     help="a model's modules whose outputs are the representations, comma-separated (default: the "
                          "block boundaries of its nn.Sequential containers and stacks of layers)")
    mea.add_argument("--pre", default=None, metavar="NAMES",
                     help="a model's modules whose outputs are pre-activations, comma-separated (default: the "
                          "inputs of its activation modules)")
    mea.add_argument("--start", default=None, metavar="NAME",
                     help="a model's module whose output is x^0, the representation gradients are taken with "
                          "respect to, or a key of an --inputs dict (default: the input; for integer inputs, token "
                          "ids, the first nn.Embedding)")
    mea.add_argument("--inputs", default=None, metavar="FILE.pt|FILE.py:NAME",
                     help="a model's inputs: a tensor [batch, ...] or a dict of its keyword arguments saved with "
                          "torch.save, or named in Python (FILE.py:NAME or package.module:NAME: a tensor, a mapping "
                          "such as a tokenizer's output, or a function of no arguments returning one; default: two "
                          "inputs made from --q0 and --c0, the width read from the first nn.Linear)")
    mea.add_argument("--finite-width", action="store_true",
                     help="also predict networks of the measured width (dense and residual(dense) blocks): the "
                          "'at width' column, dashed lines, the corrected columns of measure.csv")
    mea.add_argument("--chains", type=_positive_int, default=1000,
                     help="sampled forward paths behind --finite-width (default 1000)")
    mea.add_argument("--seed-batch", type=_positive_int, default=None, metavar="K",
                     help="networks measured at once, stacked (default: as many as fit in half a GPU's free "
                          "memory, or on a CPU in 1 GiB where one network takes under 64 MiB, else one; 1: one at a "
                          "time)")
    _measure_options(mea, seeds=10)
    _extension_options(mea)

    pha = sub.add_parser("phase", formatter_class=argparse.RawDescriptionHelpFormatter, help=COMMANDS["phase"],
                         description="For every (sw2, sb2) of an N x N grid: the attracting length fixed point q*, "
                                     "its slope chi_q and depth scale xi_q, chi_1, the stable correlation fixed "
                                     "point c*, chi_c and xi_c, and the phase (Poole et al. 2016; Schoenholz et al. "
                                     "2017). Writes phase_<activation>.csv, the critical line as "
                                     "phase_<activation>_critical_line.csv, a PNG/PDF phase diagram (xi_c with "
                                     "contours and the critical line chi_1 = 1) and phase_<activation>.json.")
    pha.add_argument("activation_name", metavar="ACTIVATION",
                     help="activation name, e.g. tanh, erf, selu, or leaky_relu(a=0.1)")
    pha.add_argument("--sw2", type=_range, default=(1.0, 4.0), help="sigma_w^2 range A:B (default 1:4)")
    pha.add_argument("--sb2", type=_range, default=(0.0, 0.3), help="sigma_b^2 range C:D (default 0:0.3)")
    pha.add_argument("--grid", type=_grid, default=200, help="points per axis (default 200)")
    pha.add_argument("--out", default="results", help="output folder (default results/)")
    _extension_options(pha)

    from . import cli_sweep
    cli_sweep.add_parser(sub, COMMANDS["sweep"], {"positive_int": _positive_int, "q0": _q0,
                                                  "measure": _measure_options})

    gra = sub.add_parser("grammar", help=COMMANDS["grammar"], description=COMMANDS["grammar"])
    _extension_options(gra)
    return parser


def _load_extensions(args):
    from .cli_model import import_target
    for target in getattr(args, "imports", []):
        import_target(target)
    from .theory import activation
    for name, expr in getattr(args, "activation", []):
        activation(name, expr)


def _cmd_grammar(args):
    print(grammar_text())


def _cmd_predict(args):
    from .cli_predict import predict_command
    predict_command(args)


def _cmd_phase(args):
    from .cli_predict import phase_command
    phase_command(args)


def _cmd_sweep(args):
    from .cli_sweep import run
    _probes_note("exact" if args.probes is None else args.probes, args.width)
    run(args)


def _probes_note(probes, widths):
    if probes != "exact" and probes >= min(widths):
        print(f"sigprop: note: --probes {probes} >= width {min(widths)}: exact probes are used (exact norms need "
              "only width probes)", file=sys.stderr)


def _cmd_reproduce(args):
    from .validate.experiments import check_settings, experiment_names, resolve_settings, run_experiment
    if args.name and args.experiment and args.name != args.experiment:
        raise ValueError(f"the experiment is named twice: {args.name} and --experiment {args.experiment}")
    name = args.name or args.experiment or "gsc"
    names = experiment_names(name)
    args.probes = "exact" if args.probes is None else args.probes
    settings = {}
    for n in names:                     # every setting of every experiment checked before any work
        settings[n] = resolve_settings(n, args.preset, args.width, args.seeds, args.depth)
        check_settings(n, settings[n]["widths"], settings[n]["seeds"], settings[n]["depth"], args.probes,
                       args.dtype, args.device)
    for n in names:
        _probes_note(args.probes, settings[n]["widths"])
        run_experiment(n, out=args.out, **settings[n], probes=args.probes, dtype=args.dtype, device=args.device,
                       progress=not args.no_progress, preset=args.preset)


def _cmd_measure(args):
    from .checks import check_batch_inputs, check_inputs
    from .io import RunOutput, check_output_folder, rows_to_csv
    from .numerics import predict
    from .theory import parse
    from .validate import plots
    from .validate.compare import COLUMNS, agreement, compare, inside_fraction
    from .validate.experiments import (HEADLINE, check_measurement, experiment_report, progress_bar, save_figure,
                                       summary_table)
    from .theory.blocks.batchnorm import training_batchnorms, with_batch
    from .theory.network import Network
    from .validate.measure import measure, resolve_batch
    from .validate.pullback import check_batch_probes, default_probes, mixes_batch
    from .cli_model import is_model_target, run

    if is_model_target(args.architecture):
        return run(args)
    for option in ("observe", "pre", "start", "inputs"):
        if getattr(args, option) is not None:
            raise ValueError(f"--{option} is not allowed for an architecture: it names parts of your own model "
                             "(FILE.py:NAME)")
    args.width = 256 if args.width is None else args.width
    net = parse(args.architecture)
    check_inputs(args.q0, args.c0)
    if args.finite_width:
        from .numerics.finite_width import unsupported
        if unsupported(net):
            raise ValueError(f"--finite-width: {unsupported(net)}")
    net, batch = resolve_batch(net, args.batch)
    if args.probes is None:
        args.probes = default_probes(batch)
    check_measurement([args.width], args.seeds, args.probes, args.dtype, args.device, batch)
    if batch > 2:
        check_batch_inputs(args.q0, args.c0, batch)
    if args.out:
        check_output_folder(args.out)
    coupled = bool(training_batchnorms(net.blocks))
    check_batch_probes(args.probes, batch, coupled)
    if not mixes_batch(coupled, batch):                  # there GSC takes P Hutchinson probes whatever P
        _probes_note(args.probes, [args.width])
    if args.batch is not None and batch > 2:
        net = Network(with_batch(net.blocks, batch))    # predicted at the batch the sampled networks see
    pred = predict(net, q0=args.q0, c0=args.c0)
    if args.finite_width:
        pred = predict(net, q0=args.q0, c0=args.c0, width=args.width, chains=args.chains)
    bar = progress_bar(args.seeds, not args.no_progress, "measuring")
    meas = measure(net, width=args.width, seeds=args.seeds, q0=args.q0, c0=args.c0, probes=args.probes,
                   dtype=args.dtype, device=args.device, progress=bar.update if bar else None, batch=batch,
                   seed_batch=args.seed_batch)
    if bar:
        bar.close()
    print(measurement_line(meas))
    if "Monte Carlo" in pred.meta["method"]:
        print(f"prediction: {pred.meta['method']}")
    rows = compare(pred, meas, experiment="measure")
    labels = {net.describe(): net.describe()}
    agree = {q: agreement(rows, quantity=q) for q in HEADLINE}
    print(summary_table(agree, labels))
    defined = [r for r in rows if r["inside"] is not None]
    inside = sum(r["inside"] for r in defined) / max(len(defined), 1)
    print(f"{100 * inside:.0f}% of {len(defined)} predicted values lie in the measured 95% intervals")
    if args.out:
        with RunOutput(args.out, "measure") as run:
            run.write("measure.csv", rows_to_csv(rows, COLUMNS))
            save_figure(run, plots.quantities_figure(rows, labels, args.width), "measure")
            run.write("measure.md", experiment_report(
                f"{net.describe()}: mean field vs sampled networks", args.command_line,
                {"width": args.width, "seeds": args.seeds, "inputs": meas.inputs, "probes": meas.probes,
                 "dtype": args.dtype, "device": args.device, "sigprop": __version__}, agree, labels,
                [(f"q, c, gradient correlation and log GSC(l, L) per layer, width {args.width}", "measure.png")]))
            files = run.commit({"command": args.command_line, "architecture": net.describe(),
                                "width": args.width, "seeds": meas.seeds, "inputs": meas.inputs,
                                "probes": meas.probes, "dtype": args.dtype, "device": args.device,
                                "agreement_gsc_0_L": agree, "fraction_inside_95ci": inside_fraction(rows),
                                "measurement": meas.cost(),
                                "versions": {"sigprop": __version__, **{k: v for k, v in meas.meta.items()
                                                                        if k.endswith("version")}}})
        print("wrote " + ", ".join(files))


def measurement_line(meas) -> str:
    """One line on what a measurement cost: time, seeds per batch, peak memory on a CUDA device."""
    peak = meas.meta.get("peak_memory_bytes")
    return (f"measured {meas.n_seeds} networks in {meas.meta['seconds']:.1f} s on {meas.device} "
            f"({meas.meta['seeds_per_batch']} per batch" + (f", peak memory {peak / 2**20:.0f} MiB)" if peak else ")"))


_ARCH_OPTION = re.compile(r"-[0-9.]+\s*[*(]", re.ASCII)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        # an architecture that starts with a minus ("-3*dense(relu)") would be read as an option: report it as
        # the bad architecture it is
        for token in argv:
            if _ARCH_OPTION.match(token):
                from .theory import parse
                parse(token)
        args = parser.parse_args(argv)
        args.command_line = "sigprop " + " ".join(shlex.quote(a) for a in argv)     # written into run records
        if args.command is None:
            parser.print_help()
            return 0
        _load_extensions(args)
        {"reproduce": _cmd_reproduce, "predict": _cmd_predict, "measure": _cmd_measure,
         "phase": _cmd_phase, "grammar": _cmd_grammar, "sweep": _cmd_sweep}[args.command](args)
    except (ValueError, ArithmeticError) as exc:
        print("sigprop: error: " + " ".join(str(exc).split()), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sigprop: interrupted (no partial files were left)", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `sigprop predict ... | head`
        return 0
    return 0
