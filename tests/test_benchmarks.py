"""The GPU checks' scripts keep working where no GPU is: ``benchmarks/gpu_checks.sh`` is run on a machine with a
CUDA device, rarely and with little time, so a renamed option or a broken benchmark must fail here first.

Every benchmark the shell script runs is given the script's own arguments (``"$threads"`` as 2) and must accept
them; then each runs whole on the CPU at tiny sizes and prints its tables.
"""
from __future__ import annotations

import argparse
import re
import runpy
import shlex
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_checks.sh"


def invocations() -> list:
    """(benchmark file name, its arguments) for every benchmark ``gpu_checks.sh`` runs, in order."""
    text = SCRIPT.read_text().replace("\\\n", " ")
    calls = []
    for line in text.splitlines():
        found = re.search(r"benchmarks/(\w+\.py)((?:\s+(?!2>|>|\|)\S+)*)", line)
        if found and not line.lstrip().startswith("#"):
            args = found.group(2).replace('"$threads"', "2")
            calls.append((found.group(1), shlex.split(args)))
    return calls


class _Parsed(Exception):
    """Raised in place of running a benchmark once its arguments are parsed."""


@pytest.fixture
def restored():
    """Benchmarks set torch's default dtype and thread count for their process: put them back afterwards."""
    dtype, threads = torch.get_default_dtype(), torch.get_num_threads()
    yield
    torch.set_default_dtype(dtype)
    torch.set_num_threads(threads)


def run(name: str, args: list, monkeypatch) -> None:
    monkeypatch.setattr("sys.argv", [name, *args])
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))      # as for a script: its folder first on the path
    runpy.run_path(str(ROOT / "benchmarks" / name), run_name="__main__")


def test_the_script_runs_the_four_benchmarks():
    assert [name for name, _ in invocations()] == ["bench_devices.py", "bench_measure.py", "profile_measure.py",
                                                  "bench_language_model.py"]


@pytest.mark.parametrize("name, args", invocations(), ids=lambda v: v if isinstance(v, str) else " ".join(v))
def test_each_benchmark_accepts_the_arguments_the_script_gives(name, args, monkeypatch):
    parse = argparse.ArgumentParser.parse_args
    seen = []

    def parse_only(self, argv=None, namespace=None):
        seen.append(parse(self, argv, namespace))           # an unknown or malformed option exits here
        raise _Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_only)
    with pytest.raises(_Parsed):
        run(name, args, monkeypatch)
    given = {a.lstrip("-").replace("-", "_") for a in args if a.startswith("--")}
    assert given <= set(vars(seen[0])), (given, vars(seen[0]))


TINY = {
    "bench_devices.py": (["--devices", "cpu", "--depth", "4", "--width", "16", "--seeds", "3", "--cpu-threads", "2"],
                         "max |Δ log GSC|"),
    "bench_measure.py": (["--device", "cpu", "--depth", "4", "--width", "16", "--seeds", "3", "--repeats", "1"],
                         "float32 against float64"),
    "profile_measure.py": (["--device", "cpu", "--depth", "4", "--width", "16", "--seeds", "3", "--rows", "3"],
                           "host-device synchronizations"),
    "bench_language_model.py": (["--device", "cpu", "--depth", "2", "--width", "16", "--length", "8", "--batch", "4",
                                 "--seeds", "2", "--repeats", "1", "--padding", "2"], "pre-LN log GSC(l, L)"),
}


@pytest.mark.filterwarnings("ignore:There is a performance drop:UserWarning")   # the LM's plain way, fused kernels
@pytest.mark.parametrize("name", list(TINY))
def test_each_benchmark_runs_on_the_cpu_at_tiny_sizes(name, monkeypatch, capsys, restored):
    args, expected = TINY[name]
    run(name, args, monkeypatch)
    out = capsys.readouterr().out
    assert expected in out, out
    assert "nan" not in out.lower().replace("nanosec", ""), out
