"""Sweeps: architectures × depths × widths × seeds, each sampled network a task, cached, on any executor.

Every (architecture, depth, width, seed) is one task: one sampled network measured as
:func:`sigprop.validate.measure` measures it. A job measures up to ``seeds_per_task`` tasks of one (architecture,
depth, width) at once, stacked as :func:`~sigprop.validate.measure` stacks seeds (one per job by default on the
CPU, where the workers run seeds in parallel; every seed of a configuration on a GPU). Jobs run on a
``concurrent.futures.Executor``: a local process pool by default (one torch thread per worker on the CPU; one
worker for a GPU), or any other, e.g. a Dask cluster's (``distributed.Client(address).get_executor()``, sigprop
installed on the workers), a Ray cluster's through a four-line adapter (the README's "Sweeps") or a thread
pool. The parent writes each finished task to the cache folder (one
``.npz`` per task, written atomically under a name that hashes the task's settings), so an interrupted sweep
resumes where it stopped: a rerun measures only the missing tasks.

The result holds one :class:`~sigprop.validate.Measurement` per (architecture, depth, width), the comparison rows
against mean field (95% intervals over seeds), and the finite-width view: |predicted − measured| of a quantity
against width with the fitted log-log slope (−1 for an O(1/width) deviation).

Example
-------
>>> from concurrent.futures import ThreadPoolExecutor
>>> from sigprop.validate.sweep import sweep
>>> with ThreadPoolExecutor(2) as pool:
...     result = sweep({"tanh": "{L}*dense(tanh,sw2=1.5)"}, widths=[16, 32], depths=[3], seeds=3, probes=4,
...                    executor=pool)
>>> sorted(result.measurements)
[('tanh', 3, 16), ('tanh', 3, 32)]
>>> view = result.convergence()[0]               # |predicted − measured| of log GSC(0, L) by width
>>> [r["width"] for r in view["points"]], sorted(view)
([16, 32], ['architecture', 'depth', 'label', 'layer', 'points', 'quantity', 'slope'])
"""
from __future__ import annotations

import hashlib
import io
import json
import numbers
import os
from concurrent.futures import FIRST_COMPLETED, Executor, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context

import numpy as np

from .. import __version__
from ..checks import check_inputs, check_positive_int, check_progress, check_seeds
from ..io import write_atomic
from ..numerics import predict
from ..theory import parse
from .compare import agreement, compare
from .measure import RAW, Measurement, check_batch_width, check_measurement, resolve_batch
from .seed_batch import measure_seeds


@dataclass
class Sweep:
    """A finished sweep: ``measurements[(label, depth, width)]``, ``rows`` (comparison rows, with ``label`` and
    ``depth`` added), ``architectures[(label, depth)]`` (the description), ``settings``."""

    measurements: dict
    rows: list
    architectures: dict
    settings: dict = field(default_factory=dict)

    def convergence(self, quantity: str = "log_gsc", layer: int = 0) -> list[dict]:
        """Per (label, depth): |predicted − measured| of ``quantity`` at ``layer`` for each width (``points``, the
        rows of :func:`~sigprop.validate.agreement`) and the least-squares slope of log |Δ| against log width over
        the widths where the deviation is resolved (the prediction outside the measured 95% interval); None with
        fewer than two such widths."""
        held = {}
        for r in self.rows:
            held.setdefault(r["quantity"], set()).add(r["layer"])
        if quantity not in held:
            raise ValueError(f"quantity={quantity!r} is not allowed: the sweep's rows hold {sorted(held)}")
        if layer not in held[quantity]:
            raise ValueError(f"layer={layer!r} is not allowed for {quantity}: the sweep's rows hold layers "
                             f"{sorted(held[quantity])}")
        out = []
        for (label, depth), arch in self.architectures.items():
            points = sorted(agreement([r for r in self.rows if r["label"] == label and r["depth"] == depth],
                                      quantity=quantity, layer=layer), key=lambda r: r["width"])
            good = [r for r in points if r["inside"] is False and r["abs_error"] > 0]
            slope = None
            if len({r["width"] for r in good}) >= 2:
                x = np.log([r["width"] for r in good])
                y = np.log([r["abs_error"] for r in good])
                slope = float(np.polyfit(x, y, 1)[0])
            out.append({"label": label, "depth": depth, "architecture": arch, "quantity": quantity, "layer": layer,
                        "points": points, "slope": slope})
        return out


def sweep(architectures, widths, depths=None, seeds=10, q0: float = 1.0, c0: float = 0.5, probes="exact",
          dtype: str = "float64", device: str = "cpu", cache=None, executor: Executor | None = None,
          workers: int | None = None, seeds_per_task: int | None = None, progress=None) -> Sweep:
    """Measure every (architecture, depth, width, seed) and compare with mean field.

    ``architectures``: {label: grammar} (or a list of grammars, labelled by themselves), with ``{L}`` for the depth
    when ``depths`` is given. ``seeds``: a number n (seeds 0..n-1) or a list. ``cache``: a folder for the per-task
    results (created; a rerun reuses them). ``executor``: any ``concurrent.futures.Executor``; by default a process
    pool of ``workers`` processes (default: the CPU count on the CPU, 1 for another device). ``seeds_per_task``:
    how many seeds of one configuration a job measures at once (default: 1 on the CPU, all on another device).
    ``progress``: a callable invoked for each task found in the cache and for each finished one (e.g. a tqdm
    ``update``); an exception it raises (KeyboardInterrupt) stops the sweep, keeping the cache.
    """
    tasks, nets = sweep_tasks(architectures, widths, depths, seeds, q0, c0, probes, dtype, device)
    check_progress(progress)
    on_cpu = str(device).split(":")[0] == "cpu"
    if seeds_per_task is not None:
        check_positive_int("seeds_per_task", seeds_per_task)
    if workers is not None:
        check_positive_int("workers", workers)
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise ValueError(f"executor={executor!r} is not allowed: give a concurrent.futures.Executor (anything with "
                         "submit(fn, *args) returning a future), or None for a local process pool")
    if cache is not None and os.path.exists(cache) and not os.path.isdir(cache):
        raise ValueError(f"cache={cache!r} is not allowed: it is a file; give a folder (created if missing)")
    per_job = seeds_per_task or (1 if on_cpu else len(tasks))
    results = {}
    todo = []
    for task in tasks:
        cached = _load(cache, task)
        if cached is not None:
            results[task["key"]] = cached
            if progress is not None:
                progress()
        else:
            todo.append(task)
    if cache is not None:
        os.makedirs(cache, exist_ok=True)
    if todo:
        own = executor is None
        pool = executor or ProcessPoolExecutor(max_workers=workers or (os.cpu_count() if on_cpu else 1),
                                               mp_context=get_context("spawn"), initializer=_one_thread)
        try:
            _run(pool, _jobs(todo, per_job), results, cache, progress)
        finally:
            if own:
                pool.shutdown(wait=True, cancel_futures=True)
    return _assemble(tasks, nets, results, q0, c0)


def sweep_tasks(architectures, widths, depths, seeds, q0, c0, probes, dtype, device) -> tuple[list, dict]:
    """Every task of a sweep (dicts: the settings, ``label``, ``depth``, ``key``) and the parsed networks by (label,
    depth), all settings checked before any work."""
    if isinstance(architectures, str):
        raise ValueError(f"architectures={architectures!r} is not allowed: give a dict {{label: grammar}} or a list "
                         "of grammars")
    labelled = dict(architectures) if isinstance(architectures, dict) else {a: a for a in architectures}
    if not labelled:
        raise ValueError("architectures is empty: give at least one architecture")
    for label, template in labelled.items():
        if not isinstance(template, str):
            raise ValueError(f"architecture {label!r} = {template!r} is not allowed: give its grammar as a string "
                             "(with {L} for the depth where depths are given), e.g. '{L}*dense(tanh)'")
    for name, values in (("widths", widths), ("depths", depths)):
        if isinstance(values, (str, numbers.Number)):
            raise ValueError(f"{name}={values!r} is not allowed: give a list, e.g. {name}=[{values!r}]")
    depth_list = [None] if depths is None else [check_positive_int("depths", d) for d in depths]
    if not depth_list:
        raise ValueError("depths=[] is not allowed: give at least one depth, or None")
    seed_list = check_seeds(seeds)
    widths = check_measurement(widths, len(seed_list), probes, dtype, device)
    check_inputs(q0, c0)
    tasks, nets = [], {}
    for label, template in labelled.items():
        for depth in depth_list:
            if depth is not None and "{L}" not in template:
                raise ValueError(f"architecture {label!r} = {template!r} has no {{L}} for the depth")
            net = parse(template if depth is None else template.replace("{L}", str(depth)))
            net, batch = resolve_batch(net, None)
            nets[(label, depth)] = (net, batch)
            for width in widths:
                check_batch_width(width, batch)
                for seed in seed_list:
                    spec = {"architecture": net.describe(), "width": width, "seed": seed, "q0": q0, "c0": c0,
                            "probes": probes, "dtype": dtype, "batch": batch, "sigprop": __version__}
                    key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:24]
                    tasks.append({**spec, "label": label, "depth": depth, "device": device, "key": key})
    return tasks, nets


def _one_thread():
    import torch
    torch.set_num_threads(1)


def measure_tasks(tasks: list) -> list:
    """A job: tasks of one configuration, which differ only in their seeds; the raw arrays of each (those of
    :func:`sigprop.validate.measure.measure_seed`), measured at once as :func:`sigprop.validate.measure` measures
    seeds. A top-level function, so that process pools and clusters can pickle it."""
    t = tasks[0]
    raws, _ = measure_seeds(parse(t["architecture"]), t["width"], [task["seed"] for task in tasks], t["q0"], t["c0"],
                            t["probes"], t["dtype"], t["device"], t["batch"])
    return [{k: np.asarray(v) for k, v in raw.items()} for raw in raws]


def _jobs(todo, per_job: int) -> list:
    """The tasks in jobs of at most ``per_job`` seeds of one (architecture, depth, width)."""
    groups = {}
    for task in todo:
        groups.setdefault((task["label"], task["depth"], task["width"]), []).append(task)
    return [group[i:i + per_job] for group in groups.values() for i in range(0, len(group), per_job)]


def _run(pool, jobs, results, cache, progress):
    pending = {pool.submit(measure_tasks, [{k: v for k, v in t.items() if k not in ("label", "depth")}
                                           for t in job]): job for job in jobs}
    try:
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                job = pending.pop(future)
                for task, raw in zip(job, future.result()):
                    results[task["key"]] = raw
                    _save(cache, task, raw)
                    if progress is not None:
                        progress()
    finally:
        for future in pending:
            future.cancel()


def _path(cache, task):
    return os.path.join(cache, f"{task['key']}.npz")


def _load(cache, task):
    if cache is None or not os.path.isfile(_path(cache, task)):
        return None
    with np.load(_path(cache, task)) as data:
        return {k: data[k] for k in data.files}


def _save(cache, task, raw):
    if cache is None:
        return
    buf = io.BytesIO()
    np.savez(buf, **raw)
    write_atomic(_path(cache, task), buf.getvalue())


def _assemble(tasks, nets, results, q0, c0) -> Sweep:
    groups = {}
    for task in tasks:
        groups.setdefault((task["label"], task["depth"], task["width"]), []).append(task)
    measurements, rows, archs = {}, [], {}
    predictions = {}
    for (label, depth, width), group in groups.items():
        net, batch = nets[(label, depth)]
        archs[(label, depth)] = net.describe()
        per_seed = [results[t["key"]] for t in group]
        raw = {k: np.stack([r[k] for r in per_seed]) for k in RAW}
        first = group[0]
        inputs = {"q0": q0, "c0": c0, "m0": 0.0, **({"batch": batch} if batch > 2 else {})}
        meas = Measurement(architecture=net.describe(), width=width, seeds=[t["seed"] for t in group], inputs=inputs,
                           probes=first["probes"], dtype=first["dtype"], device=first["device"],
                           pre_layers=per_seed[0]["pre_layers"], raw=raw, meta={"sigprop_version": __version__})
        measurements[(label, depth, width)] = meas
        if (label, depth) not in predictions:
            predictions[(label, depth)] = predict(net, q0=q0, c0=c0)
        for r in compare(predictions[(label, depth)], meas, experiment="sweep"):
            rows.append({**r, "label": label, "depth": depth})
    settings = {"q0": q0, "c0": c0, "probes": tasks[0]["probes"], "dtype": tasks[0]["dtype"],
                "seeds": sorted({t["seed"] for t in tasks}), "widths": sorted({t["width"] for t in tasks})}
    return Sweep(measurements, rows, archs, settings)
