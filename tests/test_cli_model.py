"""``sigprop measure FILE.py:NAME`` and ``package.module:NAME``: a user's own torch model from the command line."""
from __future__ import annotations

import csv
import json
import os
import sys

import pytest
import torch

from sigprop.cli import main

MODEL = '''
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.fc1, self.relu, self.fc2 = nn.Linear(width, width), nn.ReLU(inplace=True), nn.Linear(width, width)

    def forward(self, x):
        out = self.fc2(self.relu(self.fc1(x)))
        out += x
        return out


def make(seed):
    return nn.Sequential(nn.Linear(16, 16), nn.Tanh(), *[Block(16) for _ in range(3)])


model = make(0)
number = 3
data = torch.linspace(-2, 2, 96).reshape(6, 16)


def batch():
    return data.flip(0).flip(0)


def broken():
    raise RuntimeError("no data here")


def lm(seed):
    return nn.Sequential(nn.Embedding(30, 8), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh())


tokens = torch.arange(20).reshape(4, 5) % 30
feed = {"input": tokens}
'''


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "mymodel.py"
    path.write_text(MODEL)
    return path


def test_factory_from_a_file(model_file, tmp_path, capsys):
    out = tmp_path / "res"
    assert main(["measure", f"{model_file}:make", "--seeds", "3", "--no-progress", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Sequential: 3 network(s), probes exact" in text and "wrote" in text
    assert "measured 3 networks in" in text and "(2 per batch)" in text
    rows = list(csv.DictReader((out / "measure.csv").open()))
    gsc = [r for r in rows if r["quantity"] == "log_gsc"]
    assert [int(r["layer"]) for r in gsc] == [0, 1, 2, 3, 4] and all(r["n_seeds"] == "3" for r in gsc)
    meta = json.loads((out / "measure.json").read_text())
    assert meta["observe"] == ["1", "2", "3", "4"] and meta["seeds"] == [0, 1, 2] and meta["dtype"] == "float64"
    assert meta["pre"] == "auto" and meta["pre_modules"] == ["1", "2.relu", "3.relu", "4.relu"]
    assert meta["measurement"]["seeds_per_batch"] == 2 and meta["measurement"]["bytes_per_seed"] > 0
    assert main(["measure", f"{model_file}:make", "--seeds", "3", "--seed-batch", "1", "--no-progress"]) == 0
    assert "(1 per batch)" in capsys.readouterr().out
    report = (out / "measure.md").read_text()
    assert f"sigprop measure {model_file}:make --seeds 3 --no-progress --out {out}" in report
    assert "| layer | module | p | q | c | log GSC(l, L) | grad corr |" in report and "| 4 | 4 |" in report
    assert not any(r["quantity"] == "unit_std" for r in rows)                   # a pair of inputs: none
    assert "the inputs of 1, 2.relu, 3.relu, 4.relu" in report and "![p, c, GSC(l, L)" in report
    assert (out / "measure.png").stat().st_size > 10_000 and (out / "measure.pdf").exists()


def test_module_by_name_with_saved_inputs(model_file, tmp_path, capsys, monkeypatch):
    """A module in the current folder is found by name, as python -m finds it, though the sigprop command does
    not put that folder on sys.path."""
    monkeypatch.chdir(model_file.parent)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", os.getcwd())])
    torch.save(torch.randn(6, 16), tmp_path / "x.pt")
    assert main(["measure", "mymodel:model", "--inputs", str(tmp_path / "x.pt"), "--observe", "2,4",
                 "--pre", "2.fc1,4.fc1"]) == 0
    text = capsys.readouterr().out
    assert "1 network(s), probes 8" in text                  # a batch of 6 takes Hutchinson probes
    assert "unit std  sign div." in text.splitlines()[1]     # and records the units' statistics over it
    lines = [line.split() for line in text.splitlines()[3:]]
    assert [line[1] for line in lines[:-1]] == ["input", "2", "4"] and lines[-1][:3] == ["measured", "1", "networks"]
    sys.modules.pop("mymodel", None)


def test_inputs_named_in_python_are_those_saved(model_file, tmp_path, capsys):
    """--inputs FILE.py:NAME (a tensor, or a function returning one) feeds what the same tensor saved does."""
    torch.save(torch.linspace(-2, 2, 96).reshape(6, 16), tmp_path / "x.pt")
    tables = []
    for inputs in (str(tmp_path / "x.pt"), f"{model_file}:data", f"{model_file}:batch"):
        assert main(["measure", f"{model_file}:make", "--seeds", "2", "--inputs", inputs, "--probes", "exact",
                     "--no-progress"]) == 0
        tables.append(capsys.readouterr().out.splitlines()[:-1])          # all but the timing line
    assert tables[0] == tables[1] == tables[2] and "2 network(s), probes exact" in tables[0][0]


def test_token_ids_from_the_embedding_or_a_named_start(model_file, tmp_path, capsys):
    """Integer inputs saved or named in Python keep their dtype; x^0 is the embedding's output, or --start's."""
    torch.save(torch.arange(20).reshape(4, 5) % 30, tmp_path / "ids.pt")
    out = tmp_path / "res"
    tables = []
    for inputs in (str(tmp_path / "ids.pt"), f"{model_file}:tokens"):
        assert main(["measure", f"{model_file}:lm", "--seeds", "2", "--inputs", inputs, "--probes", "exact",
                     "--no-progress", "--out", str(out)]) == 0
        tables.append(capsys.readouterr().out.splitlines()[:-2])          # all but the timing and files lines
    assert tables[0] == tables[1]
    assert [line.split()[1] for line in tables[0][3:]] == ["0", "2", "4"] and "0 (x^0)" in tables[0][3]
    meta = json.loads((out / "measure.json").read_text())
    assert meta["start"] == "0" and meta["observe"] == ["2", "4"] and meta["inputs"] == {"batch": 4}
    assert "- **start**: the output of module '0'\n" in (out / "measure.md").read_text()
    assert main(["measure", f"{model_file}:lm", "--seeds", "2", "--inputs", f"{model_file}:tokens", "--start", "2",
                 "--no-progress"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "2 (x^0)" in lines[3] and lines[4].split()[1] == "4"


def test_keyword_inputs_saved_or_named_in_python(model_file, tmp_path, capsys):
    """A dict of the model's keyword arguments (nn.Sequential's forward takes ``input``), saved or named in Python,
    measures as the tensor it holds fed alone."""
    torch.save({"input": torch.arange(20).reshape(4, 5) % 30}, tmp_path / "feed.pt")
    out = tmp_path / "res"
    tables = []
    for inputs in (f"{model_file}:tokens", str(tmp_path / "feed.pt"), f"{model_file}:feed"):
        assert main(["measure", f"{model_file}:lm", "--seeds", "2", "--inputs", inputs, "--probes", "exact",
                     "--no-progress", "--out", str(out)]) == 0
        tables.append(capsys.readouterr().out.splitlines()[:-2])
    assert tables[0] == tables[1] == tables[2]
    assert json.loads((out / "measure.json").read_text())["inputs"] == {"batch": 4, "keywords": ["input"]}


@pytest.mark.parametrize("argv, mentions", [
    (["{f}:nothing"], "defines no 'nothing'"),
    (["{f}:number"], "is a int"),
    (["missing_file.py:make"], "no such file"),
    (["{f}:make", "--width", "8"], "--width is not allowed for a model"),
    (["{f}:make", "--finite-width"], "--finite-width is not allowed for a model"),
    (["{f}:make", "--seeds", "1"], "at least 2 seeds"),
    (["{f}:make", "--observe", "9"], "observe names ['9']"),
    (["{f}:make", "--inputs", "nowhere.pt"], "no such file"),
    (["{f}:make", "--inputs", "{f}:number"], "is a int: give a tensor [batch, ...], a mapping"),
    (["{f}:make", "--inputs", "{f}:nothing"], "defines no 'nothing'"),
    (["{f}:make", "--inputs", "{f}:broken"], "broken() failed: RuntimeError: no data here"),
    (["3*dense(tanh)", "--observe", "0"], "--observe is not allowed for an architecture"),
    (["3*dense(tanh)", "--start", "0"], "--start is not allowed for an architecture"),
    (["{f}:make", "--inputs", "{f}:tokens"], "integer inputs (token ids) are not allowed for Sequential without start"),
    (["{f}:lm", "--inputs", "{f}:tokens", "--start", "9"], "start='9' is not allowed"),
])
def test_bad_model_input_one_line_error(argv, mentions, model_file, capsys):
    assert main(["measure", *[a.format(f=model_file) for a in argv], "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sigprop: error:") and mentions in err and err.count("\n") == 1


def test_long_module_names_are_printed_whole(tmp_path, capsys):
    """Columns are as wide as their widest entry: a transformer library's module names and wide intervals are
    not cut."""
    path = tmp_path / "deep.py"
    path.write_text("from torch import nn\n"
                    "def make(seed):\n"
                    "    outer = nn.Module()\n"
                    "    outer.a_long_container_name = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 8))\n"
                    "    outer.forward = lambda x: outer.a_long_container_name(x)\n"
                    "    return outer\n")
    assert main(["measure", f"{path}:make", "--seeds", "2", "--no-progress"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[3:-1]]
    assert [r[1] for r in rows] == ["input", "a_long_container_name.1", "a_long_container_name.2"]
    assert all(r[-4].endswith("]") and r[-1].endswith("]") for r in rows)             # whole intervals
