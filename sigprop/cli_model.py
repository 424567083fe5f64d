"""``sigprop measure FILE.py:NAME`` (or ``package.module:NAME``): measure a user's own torch model.

NAME is a ``torch.nn.Module`` (one network) or a factory ``seed -> module`` (``--seeds`` independent networks,
95% intervals). The model is moved to ``--dtype`` and ``--device``; ``--observe``/``--pre``/``--start`` name
modules as :func:`sigprop.validate.measure_model` takes them; ``--inputs FILE.pt`` feeds a saved tensor
[batch, ...] (or a dict of the model's keyword arguments) instead of two inputs made from ``--q0``/``--c0``, and
``--inputs FILE.py:NAME`` (or ``package.module:NAME``) inputs that Python defines: a tensor or a mapping of keyword
arguments (a tokenizer's output), or a function of no arguments that returns one. Floating-point inputs are moved
to ``--dtype``; integer inputs (token ids) and masks keep theirs.

>>> from sigprop.cli_model import is_model_target
>>> is_model_target("my_model.py:make"), is_model_target("pkg.models:resnet"), is_model_target("3*dense(tanh)")
(True, True, False)
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys

#: FILE.py:NAME or dotted.module:NAME (the architecture grammar has no colon)
TARGET = re.compile(r"(?P<where>[^:]+\.py|[A-Za-z_][\w.]*):(?P<name>[A-Za-z_]\w*)")


def is_model_target(text: str) -> bool:
    return TARGET.fullmatch(text) is not None


def import_target(target: str):
    """Import a Python file (FILE.py or a path) or a module by name, found in the current folder too (as
    ``python -m`` finds it; the ``sigprop`` command alone would not); any failure is one ValueError."""
    try:
        if target.endswith(".py") or os.sep in target:
            name = "sigprop_extension_" + re.sub(r"\W", "_", os.path.splitext(os.path.basename(target))[0])
            spec = importlib.util.spec_from_file_location(name, target)
            if spec is None or not os.path.isfile(target):
                raise FileNotFoundError(f"no such file: {target}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
            return module
        if "" not in sys.path and os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        return importlib.import_module(target)
    except Exception as exc:  # noqa: BLE001 - any failure of the user's module is reported in one line
        raise ValueError(f"import={target!r} failed: {type(exc).__name__}: {exc}") from None


def load_model(text: str, dtype, device):
    """The module, or a factory wrapped to move each network to dtype and device, named by FILE.py:NAME."""
    from torch import nn

    from .validate.model import check_factory
    match = TARGET.fullmatch(text)
    module = import_target(match["where"])
    obj = getattr(module, match["name"], None)
    if obj is None:
        raise ValueError(f"{text}: {match['where']} defines no {match['name']!r}")
    if isinstance(obj, nn.Module):
        return obj.to(device=device, dtype=dtype)
    if not callable(obj):
        raise ValueError(f"{text} is a {type(obj).__name__}: give a torch.nn.Module or a factory seed -> module")
    check_factory(obj)

    def factory(seed):
        net = obj(seed)
        return net.to(device=device, dtype=dtype) if isinstance(net, nn.Module) else net
    factory.__name__ = match["name"]
    return factory


def _names(text):
    return None if text is None else [n.strip() for n in text.split(",") if n.strip()]


def _load_inputs(path, dtype, device):
    """A tensor (or a mapping of keyword arguments) saved with torch.save (FILE.pt), or one a Python file or module
    defines (FILE.py:NAME, package.module:NAME: one, or a function of no arguments that returns one)."""
    from collections.abc import Mapping

    import torch

    from .validate.model_inputs import placed
    if not os.path.isfile(path) and is_model_target(path):
        match = TARGET.fullmatch(path)
        x = getattr(import_target(match["where"]), match["name"], None)
        if x is None:
            raise ValueError(f"inputs={path!r}: {match['where']} defines no {match['name']!r}")
        if callable(x) and not isinstance(x, (torch.Tensor, Mapping)):
            try:
                x = x()
            except Exception as exc:  # noqa: BLE001 - any failure of the user's function is reported in one line
                raise ValueError(f"inputs={path!r}: {match['name']}() failed: {type(exc).__name__}: {exc}") from None
        if not isinstance(x, (torch.Tensor, Mapping)):
            raise ValueError(f"inputs={path!r} is a {type(x).__name__}: give a tensor [batch, ...], a mapping of the "
                             "model's keyword arguments, or a function of no arguments that returns one")
        return placed(x, dtype, device)
    if not os.path.isfile(path):
        raise ValueError(f"inputs={path!r} is not allowed: no such file (save a tensor with torch.save, or name "
                         "one in Python as FILE.py:NAME)")
    try:
        x = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a broken file is reported in one line
        raise ValueError(f"inputs={path!r} could not be read: {type(exc).__name__}: {exc}") from None
    if not isinstance(x, (torch.Tensor, Mapping)):
        raise ValueError(f"inputs={path!r} holds a {type(x).__name__}: save one tensor [batch, ...] or a dict of "
                         "the model's keyword arguments")
    return placed(x, dtype, device)


def run(args) -> None:
    """The ``measure`` command for a model target: per-layer table; measure.csv and measure.json with --out."""
    from . import __version__
    from .cli import measurement_line
    from .io import RunOutput, check_output_folder, rows_to_csv
    from .validate.build import resolve_placement
    from .validate.experiments import progress_bar, save_figure
    from .validate.plots import measured_figure
    from torch import nn

    from .validate.model import measure_model
    from .validate.report import markdown_report

    for option, value in (("--width", args.width), ("--batch", args.batch)):
        if value is not None:
            raise ValueError(f"{option} is not allowed for a model ({args.architecture}): its layers set the width "
                             "and --inputs the batch")
    if args.finite_width:
        raise ValueError(f"--finite-width is not allowed for a model ({args.architecture}): the finite-width "
                         "prediction is for architectures in the grammar")
    dtype, device = resolve_placement(args.dtype, args.device)
    if args.out:
        check_output_folder(args.out)
    model = load_model(args.architecture, dtype, device)
    inputs = None if args.inputs is None else _load_inputs(args.inputs, dtype, device)
    bar = None if isinstance(model, nn.Module) else progress_bar(args.seeds, not args.no_progress, "measuring")
    meas = measure_model(model, inputs, observe=_names(args.observe), pre=_names(args.pre), start=args.start,
                         seeds=args.seeds, q0=args.q0, c0=args.c0, probes=args.probes, seed_batch=args.seed_batch,
                         progress=bar.update if bar else None)
    if bar:
        bar.close()
    print(layer_table(meas))
    print(measurement_line(meas))
    if args.out:
        rows = meas.to_rows()
        with RunOutput(args.out, "measure") as run_out:
            run_out.write("measure.csv", rows_to_csv(rows, list(rows[0])))
            title = f"{meas.architecture} ($x^0$: {_start_text(meas)}): {meas.n_seeds} network(s)" + (
                ", 95% CI over networks" if meas.n_seeds > 1 else "") + (
                f", statistics of units over a batch of {meas.inputs['batch']}" if meas.unit_summary() else "")
            save_figure(run_out, measured_figure(rows, title), "measure")
            run_out.write("measure.md", markdown_report(
                f"{meas.architecture} ({args.architecture}): measured", args.command_line,
                {"networks": meas.n_seeds, "inputs": meas.inputs, "probes": meas.probes, "dtype": meas.dtype,
                 "device": meas.device, "start": _start_text(meas),
                 "observe": meas.meta["observe"], "pre": _pre_text(meas.meta),
                 "sigprop": __version__},
                [("Per layer (means over networks, 95% intervals)", *layer_rows(meas))],
                [("p, c, GSC(l, L), the gradient correlation (and for a batch the units' statistics) per layer",
                  "measure.png")]))
            files = run_out.commit({"command": args.command_line, "model": args.architecture,
                                    "architecture": meas.architecture, "seeds": meas.seeds, "inputs": meas.inputs,
                                    "probes": meas.probes, "dtype": meas.dtype, "device": meas.device,
                                    "start": meas.meta["start"], "observe": meas.meta["observe"],
                                    "pre": meas.meta["pre"],
                                    "pre_modules": meas.meta["pre_modules"], "measurement": meas.cost(),
                                    "versions": {"sigprop": __version__, "torch": meas.meta["torch_version"]}})
        print("wrote " + ", ".join(files))


def _start_text(meas) -> str:
    """Where x^0 is, in words."""
    if meas.inputs.get("x0"):
        return f"the input {meas.inputs['x0']!r}"
    return f"the output of module {meas.meta['start']!r}" if meas.meta["start"] else "the input"


def layer_rows(meas) -> tuple:
    """(header, rows) per layer: the observed module, p, q and c (pre-activation layers), for a batch of B > 2
    inputs each unit's standard deviation and sign diversity over it (means over units), log GSC(l, L) and the
    gradient correlation, means over seeds with their 95% intervals where there are several seeds."""
    s, units = meas.summary(), meas.unit_summary()
    names = [f"{meas.meta['start']} (x^0)" if meas.meta["start"] else "input"] + list(meas.meta["observe"])
    names += ["output"] * (meas.depth + 1 - len(names))
    pre = {int(l): i for i, l in enumerate(s["q"]["layers"])}

    def cell(name, i):
        mean, lo, hi = (s[name][k][i] for k in ("mean", "lo", "hi"))
        return f"{mean:.4g}" if not (lo == lo) else f"{mean:.4g} [{lo:.4g}, {hi:.4g}]"
    def at_pre(summary, name, layer, fmt):
        return format(summary[name]["mean"][pre[layer]], fmt) if layer in pre and name in summary else ""
    header = ["layer", "module", "p", "q", "c", *(["unit std", "sign div."] if units else []), "log GSC(l, L)",
              "grad corr"]
    rows = [[layer, names[layer], f"{s['p']['mean'][layer]:.4g}", at_pre(s, "q", layer, ".4g"),
             at_pre(s, "c", layer, ".4f"),
             *([at_pre(units, "unit_std", layer, ".4g"), at_pre(units, "sign_diversity", layer, ".4f")] if units
               else []),
             cell("log_gsc", layer), cell("grad_corr", layer)] for layer in range(meas.depth + 1)]
    return header, rows


def layer_table(meas) -> str:
    """:func:`layer_rows` as aligned text, each column as wide as its widest entry."""
    header, rows = layer_rows(meas)
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header) - 1)] + [0]
    right = range(2, len(header) - 2)                   # numbers right-aligned; names and intervals left
    fmt = lambda row: "  ".join(f"{v!s:{'>' if i == 0 or i in right else '<'}{w}}"
                                for i, (v, w) in enumerate(zip(row, widths))).rstrip()
    head = fmt(header)
    return "\n".join([f"{meas.architecture}: {meas.n_seeds} network(s), probes {meas.probes}", head, "-" * len(head)]
                     + [fmt(r) for r in rows])


def _pre_text(meta) -> str:
    """Where the pre-activations were read, one module per layer that has one."""
    where = "inputs" if meta["pre"] == "auto" else "outputs"
    return f"the {where} of {', '.join(meta['pre_modules']) or 'no module'}"
