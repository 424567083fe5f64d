"""The block kind written in docs/extending.md, as a user would add it: one file, imported, then everything.

The file's text is taken from the guide itself, so the guide cannot drift from what works. Imported, the kind
passes the same conformance checks as the built-in kinds (conftest.py here), and the command line finds it
through ``--import``.
"""
from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sympy as sp

from sigprop.theory import BLOCKS, parse

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "extending.md"


@pytest.fixture(scope="module")
def gain_file(tmp_path_factory):
    text = GUIDE.read_text()
    match = re.search(r"<!-- file: my_gain.py -->\s*```python\n(.*?)```", text, re.S)
    assert match, "docs/extending.md lost its block-kind file"
    path = tmp_path_factory.mktemp("ext") / "my_gain.py"
    path.write_text(match.group(1))
    return path


@pytest.fixture(scope="module")
def gain(gain_file):
    if "gain" not in BLOCKS:
        spec = importlib.util.spec_from_file_location("my_gain", gain_file)
        module = importlib.util.module_from_spec(spec)
        sys.modules["my_gain"] = module
        spec.loader.exec_module(module)
    return BLOCKS["gain"]


def test_the_guide_block_kind_is_one_file_and_works_everywhere(gain):
    net = parse(gain.example)
    assert [b.kind for b in net.blocks] == ["dense", "gain"] * 4
    g = sp.Symbol("g", real=True)
    from sigprop.theory.symbols import p
    assert gain(g=g).length_map().rhs == g**2 * p
    assert parse(net.describe()).describe() == net.describe()


@pytest.mark.parametrize("check", ["round_trip", "parameters", "scaling", "shapes"])
def test_the_guide_block_kind_conforms(gain, check, block_checks):
    getattr(block_checks, check)("gain")


@pytest.mark.slow
def test_the_guide_block_kind_predicted_and_sampled(gain, block_checks, criterion):
    block_checks.sampled("gain", criterion)


def test_the_guide_block_kind_on_the_command_line(gain_file, tmp_path):
    run = lambda *args: subprocess.run([sys.executable, "-m", "sigprop", *args], capture_output=True, text=True,
                                       cwd=tmp_path, timeout=120)
    r = run("predict", "4*(dense(tanh,sw2=1.5),gain(g=0.8))", "--import", str(gain_file), "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert "gain(g=0.8)" in data["architecture"] and len(data["values"]["log_gsc"]) == 9
    r = run("grammar", "--import", str(gain_file))
    assert r.returncode == 0 and "gain([g=V])" in r.stdout and "g x (a fixed gain)" in r.stdout
    r = run("predict", "gain(g=0.8)")
    assert r.returncode == 2 and r.stderr.startswith("sigprop: error:") and "expected a block" in r.stderr
    r = run("predict", "gain(g=0.8)", "--import", str(tmp_path / "missing.py"))
    assert r.returncode == 2 and "import=" in r.stderr and r.stderr.count("\n") == 1
