"""``sigprop sweep``: architectures × depths × widths × seeds on a process pool or a Dask cluster, resumable
(:func:`sigprop.validate.sweep.sweep` does the work; ``tests/test_cli_sweep.py`` runs it)."""
from __future__ import annotations

DESCRIPTION = ("Measure every architecture (with {L} for the depth when --depth is given) at every depth, width and "
               "seed, compare with mean field, and write sweep.csv (one row per architecture × depth × width × "
               "layer × quantity), sweep_convergence.png/pdf (|predicted − measured| of log GSC(0, L) against width, "
               "log-log, with the fitted slopes), the report sweep.md and sweep.json into --out. Every sampled network is cached in "
               "--cache as it finishes: an interrupted sweep, rerun with the same settings, resumes where it "
               "stopped. Runs on a local process pool (--workers), or on a Dask cluster (--scheduler ADDRESS, "
               "sigprop installed on its workers; pip install distributed).")


def add_parser(sub, help_text, options):
    """The ``sweep`` subcommand; ``options`` adds the measurement options shared with ``measure``."""
    import argparse
    swp = sub.add_parser("sweep", formatter_class=argparse.RawDescriptionHelpFormatter, help=help_text,
                         description=DESCRIPTION)
    swp.add_argument("architectures", nargs="+", metavar="ARCHITECTURE",
                     help="architectures in the grammar (sigprop grammar), e.g. '{L}*dense(tanh,sw2=1)'")
    swp.add_argument("--width", type=options["positive_int"], nargs="+", required=True, help="network widths")
    swp.add_argument("--depth", type=options["positive_int"], nargs="+", default=None,
                     help="depths L put into each architecture's {L} (default: the architectures as written)")
    swp.add_argument("--q0", type=options["q0"], default=1.0, help="mean square of each input (default 1)")
    swp.add_argument("--c0", type=float, default=0.5, help="correlation of the two inputs (default 0.5)")
    swp.add_argument("--out", default="results", help="output folder (default results/)")
    swp.add_argument("--cache", default=None, help="folder of the per-network results (default OUT/sweep_cache)")
    swp.add_argument("--workers", type=options["positive_int"], default=None,
                     help="local worker processes (default: the CPU count; 1 for a GPU)")
    swp.add_argument("--seeds-per-task", type=options["positive_int"], default=None, metavar="K",
                     help="seeds of one configuration measured at once, stacked (default: 1 on the CPU, all on a "
                          "GPU)")
    swp.add_argument("--scheduler", default=None, metavar="ADDRESS",
                     help="a Dask scheduler to run on instead, e.g. tcp://10.0.0.5:8786")
    options["measure"](swp, seeds=10)
    return swp


def run(args) -> None:
    import os

    import numpy as np
    import torch

    from . import __version__
    from .io import RunOutput, check_output_folder, rows_to_csv
    from .validate import plots
    from .validate.compare import COLUMNS
    from .validate.experiments import FINITE_WIDTH_NOTE, progress_bar, save_figure
    from .validate.report import agreement_table, markdown_report
    from .validate.sweep import sweep, sweep_tasks

    args.probes = "exact" if args.probes is None else args.probes
    check_output_folder(args.out)
    labelled = {a: a for a in args.architectures}
    tasks, _ = sweep_tasks(labelled, args.width, args.depth, args.seeds, args.q0, args.c0, args.probes, args.dtype,
                        args.device)
    cache = args.cache or os.path.join(args.out, "sweep_cache")
    executor, client = None, None
    if args.scheduler:
        try:
            import distributed
        except ImportError:
            raise ValueError("--scheduler needs Dask's distributed: pip install distributed") from None
        try:
            client = distributed.Client(args.scheduler, timeout=30)
        except (OSError, TimeoutError) as exc:
            raise ValueError(f"--scheduler {args.scheduler}: no Dask scheduler answered ({exc})") from None
        executor = client.get_executor()
    bar = progress_bar(len(tasks), not args.no_progress, "sweep")
    try:
        result = sweep(labelled, args.width, args.depth, args.seeds, args.q0, args.c0, args.probes, args.dtype,
                       args.device, cache=cache, executor=executor, workers=args.workers,
                       seeds_per_task=args.seeds_per_task, progress=bar.update if bar else None)
    finally:
        if bar:
            bar.close()
        if client is not None:
            client.close()
    view = result.convergence()
    labels, agree = {}, []
    for v in view:
        name = v["label"] if v["depth"] is None else v["label"].replace("{L}", str(v["depth"]))
        slope = "" if v["slope"] is None else f", slope {v['slope']:.2f}"
        labels[v["architecture"]] = f"{name}{slope}"
        agree += v["points"]
    with RunOutput(args.out, "sweep") as out:
        out.write("sweep.csv", rows_to_csv(result.rows, ["label", "depth"] + COLUMNS))
        figures = []
        if len(args.width) > 1:
            save_figure(out, plots.convergence_figure(agree, labels), "sweep_convergence")
            figures.append(("|predicted − measured| of log GSC(0, L) against width", "sweep_convergence.png"))
        header, rows = agreement_table(agree, labels)
        slopes = [[labels[v["architecture"]].split(", slope")[0], v["slope"]] for v in view]
        out.write("sweep.md", markdown_report(
            "Sweep: mean field vs sampled networks", args.command_line,
            {"architectures": args.architectures, "depths": args.depth, "widths": args.width,
             "seeds": args.seeds, "inputs": f"q0 = {args.q0}, c0 = {args.c0}", "probes": args.probes,
             "dtype": args.dtype, "device": args.device, "sigprop": __version__},
            [("log GSC(0, L), geometric mean over inputs and seeds", header, rows),
             ("Fitted slope of log |Δ| against log width (over the widths where |Δ| is resolved)",
              ["architecture", "slope"], slopes)], figures, FINITE_WIDTH_NOTE))
        files = out.commit({
            "command": args.command_line, "architectures": args.architectures,
            "depths": args.depth, "widths": args.width, "seeds": result.settings["seeds"],
            "inputs": {"q0": args.q0, "c0": args.c0}, "probes": args.probes, "dtype": args.dtype,
            "device": args.device, "cache": cache, "tasks": len(tasks),
            "convergence_log_gsc_0_L": [{k: v[k] for k in ("label", "depth", "architecture", "slope")} |
                                        {"widths": [p["width"] for p in v["points"]],
                                         "abs_error": [p["abs_error"] for p in v["points"]]} for v in view],
            "versions": {"sigprop": __version__, "torch": torch.__version__, "numpy": np.__version__}})
    for v in view:
        errors = ", ".join(f"{p['width']}: {p['abs_error']:.3g}" for p in v["points"])
        slope = "n/a" if v["slope"] is None else f"{v['slope']:.2f}"
        print(f"{labels[v['architecture']].split(', slope')[0]:50s} |Δ log GSC(0, L)| by width {errors}; "
              f"slope {slope}")
    print("wrote " + ", ".join(files))
