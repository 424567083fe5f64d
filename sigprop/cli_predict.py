"""``sigprop predict`` and ``sigprop phase``: the commands that print or draw mean-field predictions without
sampling a network (``sigprop predict`` never loads torch).

>>> from sigprop.cli import main
>>> main(["predict", "2*dense(relu,sw2=2)"])
# 2*dense(relu,sw2=2,sb2=0)   q0=1.0 c0=0.5   mean field (infinite width)
layer            q            c            p            m      log_gsc   log_gsc_qm    grad_corr
    0                                      1            0            0            0     0.472285
    1            2          0.5            1      0.56419            0            0     0.708428
    2            2     0.608998            1      0.56419            0            0            1
0
"""
from __future__ import annotations

from . import __version__


def predict_command(args):
    """``sigprop predict``: the per-layer prediction as a table (or JSON with --json)."""
    from .checks import check_inputs
    from .numerics import predict
    from .theory import parse
    net = parse(args.architecture)
    check_inputs(args.q0, args.c0)
    bar = []                             # opened at the first layer done: a refused input shows no bar

    def progress():
        if not bar:
            from tqdm.auto import tqdm
            bar.append(tqdm(total=net.depth, desc=f"width {args.width}", unit="layer", leave=False))
        bar[0].update()
    pred = predict(net, q0=args.q0, c0=args.c0, batch=args.batch, width=args.width, chains=args.chains,
                   seed=args.seed, progress=progress if args.width is not None and not args.no_progress else None)
    if bar:
        bar[0].close()
    if args.json:
        print(pred.to_json(), end="")
        return
    print_table(pred, pred.values, args, "mean field (infinite width)")
    if pred.finite is not None:
        fw = pred.finite
        print()
        print_table(pred, {**fw.mean, "gsc_lo": fw.lo["log_gsc"], "gsc_hi": fw.hi["log_gsc"]}, args,
                     f"width {fw.width}: mean over networks ({fw.chains} sampled paths); gsc_lo..gsc_hi: one "
                     f"network's 95% range of log GSC(l, L); depth/width tau = {fw.tau:.3g}")


def print_table(pred, values: dict, args, title: str):
    """One block of rows per layer; a blank cell where a quantity has no value at that layer."""
    layers = {**pred.layers, "gsc_lo": pred.layers["log_gsc"], "gsc_hi": pred.layers["log_gsc"]}
    names = list(values)
    batch = f" batch={pred.inputs['batch']}" if "batch" in pred.inputs else ""
    print(f"# {pred.architecture}   q0={pred.inputs['q0']} c0={args.c0}{batch}   {title}")
    if "Monte Carlo" in pred.meta["method"] and values is pred.values:
        print(f"# {pred.meta['method']}")
    for note in pred.meta.get("notes", []) if values is pred.values else ():
        print(f"# note: {note}")
    print("layer " + " ".join(f"{n:>12s}" for n in names))
    for layer in range(pred.depth + 1):
        cells = []
        for n in names:
            idx = [i for i, l in enumerate(layers[n]) if l == layer]
            cells.append(f"{values[n][idx[0]]:12.6g}" if idx else f"{'':>12s}")
        print(f"{layer:5d} " + " ".join(cells))


def phase_command(args):
    """``sigprop phase``: the phase diagram's table, critical line, figure and record in --out."""
    import time

    import numpy as np

    from .io import RunOutput, check_output_folder, rows_to_csv
    from .numerics.phase_diagram import COLUMNS, critical_line, phase_diagram
    from .theory import get_activation
    from .validate import plots
    from .validate.experiments import save_figure
    act = get_activation(args.activation_name)
    if args.sw2[0] <= 0 or args.sb2[0] < 0:
        raise ValueError(f"--sw2 {args.sw2[0]:g}:{args.sw2[1]:g} / --sb2 {args.sb2[0]:g}:{args.sb2[1]:g} are not "
                         "allowed: sw2 must be > 0 and sb2 >= 0")
    check_output_folder(args.out)
    sw2, sb2 = np.linspace(*args.sw2, args.grid), np.linspace(*args.sb2, args.grid)
    start = time.perf_counter()
    table = phase_diagram(act, sw2[None, :], sb2[:, None])
    crit = critical_line(act, sb2)
    seconds = time.perf_counter() - start
    rows = [{k: (str(table[k][i, j]) if k == "phase" else float(table[k][i, j])) for k in COLUMNS}
            for i in range(args.grid) for j in range(args.grid)]
    name = "phase_" + "".join(ch if ch.isalnum() or ch in "_-" else "_" for ch in act.describe())
    counts = {p: int(np.sum(table["phase"] == p)) for p in ("ordered", "critical", "chaotic", "unbounded")}
    with RunOutput(args.out, name) as run:
        run.write(f"{name}.csv", rows_to_csv(rows, list(COLUMNS)))
        run.write(f"{name}_critical_line.csv", rows_to_csv([{"sb2": float(b), "sw2_critical": float(w)}
                                                            for b, w in zip(sb2, crit)], ["sb2", "sw2_critical"]))
        fig = plots.phase_figure(rows, list(zip(sb2, crit)), act.describe())
        save_figure(run, fig, name)
        files = run.commit({"command": args.command_line, "activation": act.describe(),
                            "sw2": list(args.sw2), "sb2": list(args.sb2), "grid": args.grid, "seconds": seconds,
                            "phases": counts, "max_q_residual": float(np.nanmax(table["q_residual"], initial=0.0)),
                            "versions": {"sigprop": __version__, "numpy": np.__version__}})
    print(f"{act.describe()}: {args.grid} x {args.grid} grid in {seconds:.1f} s; "
          + ", ".join(f"{v} {k}" for k, v in counts.items() if v))
    print("wrote " + ", ".join(files))
