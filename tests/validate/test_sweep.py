"""Sweeps: the same numbers as measure(), cached per task, resumed after an interruption, on any executor."""
import os
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pytest

from sigprop.theory import parse
from sigprop.validate import measure
from sigprop.validate.sweep import sweep

ARCHS = {"tanh": "{L}*dense(tanh,sw2=1.5)", "relu": "{L}*dense(relu,sw2=2)"}
SETTINGS = dict(widths=[8, 16], depths=[2, 3], seeds=3, probes=4)
N_TASKS = 2 * 2 * 2 * 3


class Counting(ThreadPoolExecutor):
    """A thread pool that counts the tasks submitted to it."""

    def __init__(self):
        super().__init__(2)
        self.submitted = 0

    def submit(self, fn, *args, **kwargs) -> Future:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


def _same(a, b):
    assert sorted(a.measurements) == sorted(b.measurements)
    for key, meas in a.measurements.items():
        for name, value in meas.raw.items():
            np.testing.assert_array_equal(value, b.measurements[key].raw[name], err_msg=f"{key} {name}")


def test_sweep_measures_what_measure_measures():
    with Counting() as pool:
        result = sweep(ARCHS, executor=pool, **SETTINGS)
        assert pool.submitted == N_TASKS
    direct = measure(parse("3*dense(relu,sw2=2)"), width=16, seeds=3, probes=4)
    for name, value in direct.raw.items():
        np.testing.assert_array_equal(result.measurements[("relu", 3, 16)].raw[name], value)
    rows = [r for r in result.rows if r["label"] == "tanh" and r["depth"] == 2 and r["width"] == 8]
    assert {r["quantity"] for r in rows} >= {"log_gsc", "grad_corr", "q", "c"}
    view = result.convergence()
    assert [(v["label"], v["depth"]) for v in view] == [("tanh", 2), ("tanh", 3), ("relu", 2), ("relu", 3)]
    assert all(len(v["points"]) == 2 for v in view)
    for v in view:                                   # the slope is fitted where the deviation is resolved
        resolved = [p for p in v["points"] if p["inside"] is False]
        assert (v["slope"] is None) == (len(resolved) < 2)


def test_interrupted_sweep_resumes_where_it_stopped(tmp_path):
    cache = tmp_path / "cache"
    finished = []

    def stop_after_five():
        finished.append(1)
        if len(finished) == 5:
            raise KeyboardInterrupt

    with Counting() as pool, pytest.raises(KeyboardInterrupt):
        sweep(ARCHS, executor=pool, cache=cache, progress=stop_after_five, **SETTINGS)
    kept = os.listdir(cache)
    assert len([f for f in kept if f.endswith(".npz")]) >= 5 and not [f for f in kept if not f.endswith(".npz")]
    with Counting() as pool:
        resumed = sweep(ARCHS, executor=pool, cache=cache, **SETTINGS)
        assert pool.submitted == N_TASKS - len(kept)
    with Counting() as pool:
        again = sweep(ARCHS, executor=pool, cache=cache, **SETTINGS)
        assert pool.submitted == 0
    with Counting() as pool:
        fresh = sweep(ARCHS, executor=pool, **SETTINGS)
    _same(resumed, fresh)
    _same(again, fresh)


def _close(a, b):
    """Stacked seeds change only the order of floating-point sums: agreement to rounding (depth <= 3)."""
    assert sorted(a.measurements) == sorted(b.measurements)
    for key, meas in a.measurements.items():
        for name, value in meas.raw.items():
            np.testing.assert_allclose(value, b.measurements[key].raw[name], rtol=1e-12, atol=1e-14,
                                       err_msg=f"{key} {name}")


def test_jobs_of_several_seeds_measure_what_one_seed_a_job_measures(tmp_path):
    """Jobs of up to 2 seeds of one configuration (3 seeds: jobs of 2 and 1): half as many submissions, the same
    numbers; interrupted inside a job, a rerun regroups the missing seeds and ends where a fresh sweep ends."""
    with Counting() as pool:
        single = sweep(ARCHS, executor=pool, **SETTINGS)
    with Counting() as pool:
        paired = sweep(ARCHS, executor=pool, seeds_per_task=2, **SETTINGS)
        assert pool.submitted == N_TASKS // 3 * 2
    _close(paired, single)
    finished = []

    def stop_after_five():
        finished.append(1)
        if len(finished) == 5:
            raise KeyboardInterrupt
    cache = tmp_path / "cache"
    with Counting() as pool, pytest.raises(KeyboardInterrupt):
        sweep(ARCHS, executor=pool, cache=cache, seeds_per_task=3, progress=stop_after_five, **SETTINGS)
    kept = len(os.listdir(cache))
    with Counting() as pool:
        _close(sweep(ARCHS, executor=pool, cache=cache, seeds_per_task=3, **SETTINGS), single)
        assert 0 < pool.submitted < N_TASKS - kept
    with pytest.raises(ValueError, match="seeds_per_task=0"):
        sweep(ARCHS, seeds_per_task=0, **SETTINGS)


def test_default_process_pool(tmp_path):
    result = sweep({"tanh": "2*dense(tanh)"}, widths=[8], seeds=2, probes=4, workers=2, cache=tmp_path)
    with Counting() as pool:
        _same(result, sweep({"tanh": "2*dense(tanh)"}, widths=[8], seeds=2, probes=4, executor=pool))


def test_dask_cluster_executor():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        result = sweep(ARCHS, executor=client.get_executor(), **SETTINGS)
    with Counting() as pool:
        _same(result, sweep(ARCHS, executor=pool, **SETTINGS))


@pytest.mark.parametrize("kwargs, mentions", [
    (dict(architectures="2*dense(tanh)"), "give a dict"),
    (dict(architectures={}), "empty"),
    (dict(architectures={"a": "2*dense(tanh)"}, depths=[3]), "no {L}"),
    (dict(depths=[]), "depths=[]"),
    (dict(depths=[0]), "depths"),
    (dict(seeds=1), "at least 2 seeds"),
    (dict(widths=[]), "widths=[]"),
    (dict(widths=[2]), "width=2"),
    (dict(c0=1.5), "c0"),
    (dict(widths=8), "widths=8 is not allowed: give a list, e.g. widths=[8]"),
    (dict(depths=3), "depths=3 is not allowed: give a list"),
    (dict(architectures={"t": 3}), "architecture 't' = 3 is not allowed: give its grammar as a string"),
    (dict(workers=0), "workers=0"),
    (dict(progress=True), "progress=True is not allowed"),
    (dict(architectures={"bn": "{L}*(dense(linear),batchnorm(batch=16),act(tanh))"}, widths=[8]),
     "width=8 is not allowed for a batch of 16 inputs"),
])
def test_bad_settings_fail_before_any_work(kwargs, mentions):
    """Refused by name before a task is submitted (a sweep's widths and depths are lists, its architectures
    grammars, its executor one with submit, its progress a callable)."""
    settings = {"architectures": ARCHS, **SETTINGS, **kwargs}
    with Counting() as pool, pytest.raises(ValueError, match=mentions.replace("[", r"\[").replace("]", r"\]")
                                           .replace("{", r"\{").replace("}", r"\}")):
        sweep(executor=pool, **settings)
    assert pool.submitted == 0


def test_an_executor_without_submit_and_a_cache_that_is_a_file_are_refused(tmp_path):
    with pytest.raises(ValueError, match="executor='pool' is not allowed: give a concurrent.futures.Executor"):
        sweep(ARCHS, executor="pool", **SETTINGS)
    (tmp_path / "results.txt").write_text("")
    with pytest.raises(ValueError, match="cache=.*results.txt' is not allowed: it is a file; give a folder"):
        sweep(ARCHS, cache=str(tmp_path / "results.txt"), **SETTINGS)
