"""The ``sigprop`` command line (validate.cli.main): help, predict, measure, reproduce, and bad input.

Bad input must end with exit code 2 and one line on stderr starting with "sigprop: error:" (argparse's own
usage errors also exit 2, through SystemExit). The end-to-end runs use tiny settings (width 16/32, depth 3,
2 seeds, 4 probes): they check files and formats, not agreement (tests/test_validate_measure.py does that).
"""
from __future__ import annotations

import csv
import json
import math
import os
import tomllib
from pathlib import Path

import pytest

from validate.cli import main

ROOT = Path(__file__).resolve().parents[1]
HEADER = "experiment,architecture,layer,quantity,predicted,measured_mean,measured_lo,measured_hi,width,n_seeds"


def _exit_code(argv):
    """main()'s return value, or the code of the SystemExit that argparse raises."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


# ------------------------------------------------------------------------------------------------------ help

def test_top_level_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for word in ("reproduce", "predict", "measure"):
        assert word in out
    # the architecture grammar and an example
    assert "grammar" in out and "dense(" in out and "residual(" in out and "relu" in out and "tanh" in out


def test_no_command_prints_help(capsys):
    assert main([]) == 0
    assert "reproduce" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["reproduce", "predict", "measure"])
def test_subcommand_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert f"sigprop {command}" in out
    if command in ("predict", "measure"):
        assert "grammar" in out and "residual(" in out


# --------------------------------------------------------------------------------------------------- predict

def test_predict_json(capsys):
    assert main(["predict", "3*dense(tanh,sw2=2.5,sb2=0.05)", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["values"]["log_gsc"]) == 4
    assert len(data["values"]["q"]) == 3
    assert data["values"]["log_gsc"][-1] == 0.0                   # GSC(L, L) = 1
    assert data["inputs"]["q0"] == 1.0 and data["inputs"]["c0"] == 0.5
    assert "dense(tanh,sw2=2.5,sb2=0.05)" in data["architecture"]


def test_predict_table(capsys):
    assert main(["predict", "3*dense(tanh,sw2=2.5,sb2=0.05)", "--q0", "2", "--c0", "0.25"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("#") and "q0=2.0" in lines[0] and "c0=0.25" in lines[0]
    names = lines[1].split()
    assert names[0] == "layer" and {"q", "c", "p", "log_gsc", "grad_corr"} <= set(names)
    # fixed-width cells ("layer" 5 wide, then 12-wide cells separated by a space); q, c are blank at layer 0
    cell = lambda line, name: line[6 + 13 * (names.index(name) - 1):][:12].strip()
    body = lines[2:]
    assert [int(line[:5]) for line in body] == [0, 1, 2, 3]
    assert cell(body[0], "q") == "" and float(cell(body[1], "q")) == pytest.approx(5.05, rel=1e-5)  # σ_w² q0 + σ_b²
    assert float(cell(body[0], "p")) == pytest.approx(2.0)           # p⁰ = q0
    assert float(cell(body[3], "log_gsc")) == 0.0


# ------------------------------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("argv,mentions", [
    (["predict", "3*dense(foo)"], "foo"),
    (["predict", "3*dense(tanh,sw2=-1)"], "sw2"),
    (["predict", "0*dense(relu)"], "repetition"),
    (["predict", "3*dense(tanh)", "--c0", "2"], "c0"),
    (["predict", "3*dense(tanh)", "--q0", "-1"], "q0"),
    (["predict", "3*dense(tanh,sw2=s)"], "symbolic"),
    (["predict", ""], "empty"),
    (["measure", "3*dense(foo)", "--width", "4", "--seeds", "2", "--no-progress"], "foo"),
    (["measure", "2*dense(tanh)", "--width", "4", "--seeds", "1", "--no-progress"], "seeds"),
    (["measure", "2*dense(tanh)", "--width", "4", "--seeds", "2", "--c0", "2", "--no-progress"], "c0"),
])
def test_bad_input_one_line_error(argv, mentions, capsys):
    assert _exit_code(argv) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert err.startswith("sigprop: error:"), err
    assert err.endswith("\n") and err.count("\n") == 1, err        # exactly one line
    assert mentions in err
    assert "Traceback" not in err and captured.out == ""


@pytest.mark.parametrize("argv", [
    ["measure", "2*dense(tanh)", "--width", "0"],
    ["measure", "2*dense(tanh)", "--width", "-3"],
    ["measure", "2*dense(tanh)", "--probes", "0"],
    ["measure", "2*dense(tanh)", "--probes", "foo"],
    ["measure", "2*dense(tanh)", "--dtype", "float16"],
    ["reproduce", "--depth", "0"],
    ["predict", "3*dense(tanh)", "--c0", "abc"],
    ["frobnicate"],
])
def test_argparse_usage_errors_exit_2(argv, capsys):
    assert _exit_code(argv) == 2
    err = capsys.readouterr().err
    assert "error:" in err


# ------------------------------------------------------------------------------------------------ end to end

def test_reproduce_end_to_end(tmp_path, capsys):
    out = tmp_path / "res"
    code = main(["reproduce", "--out", str(out), "--width", "16", "32", "--depth", "3", "--seeds", "2",
                 "--probes", "4", "--no-progress"])
    assert code == 0
    text = (out / "gsc.csv").read_text()
    assert text.splitlines()[0] == HEADER
    rows = list(csv.DictReader(text.splitlines()))
    assert {r["width"] for r in rows} == {"16", "32"}
    assert {r["n_seeds"] for r in rows} == {"2"}
    assert {r["experiment"] for r in rows} == {"gsc"}
    assert len({r["architecture"] for r in rows}) == 4
    assert {r["quantity"] for r in rows} >= {"q", "c", "p", "log_gsc", "grad_corr"}
    assert {int(r["layer"]) for r in rows} == {0, 1, 2, 3}
    for r in rows:
        lo, mean, hi = float(r["measured_lo"]), float(r["measured_mean"]), float(r["measured_hi"])
        assert math.isfinite(float(r["predicted"])) and lo <= mean + 1e-12 and mean <= hi + 1e-12

    meta = json.loads((out / "gsc.json").read_text())
    for key in ("versions", "timings_s", "agreement_log_gsc_0_L"):
        assert key in meta
    assert meta["depth"] == 3 and meta["widths"] == [16, 32] and meta["seeds"] == [0, 1] and meta["probes"] == 4
    assert len(meta["agreement_log_gsc_0_L"]) == 4 * 2                # architectures × widths
    assert {"sigprop", "torch", "numpy", "python"} <= set(meta["versions"])
    assert meta["timings_s"]["total"] > 0

    for stem in ("gsc_gsc", "gsc_quantities", "gsc_convergence"):
        for ext in ("png", "pdf"):
            f = out / f"{stem}.{ext}"
            assert f.is_file() and f.stat().st_size > 1000, f
    assert (out / "gsc_gsc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "gsc_gsc.pdf").read_bytes()[:5] == b"%PDF-"
    assert not [p.name for p in out.iterdir() if p.name.startswith(".tmp-")]   # atomic writes left nothing
    assert "log GSC(0, L)" in capsys.readouterr().out


def test_reproduce_single_width_has_no_convergence_figure(tmp_path):
    assert main(["reproduce", "--out", str(tmp_path), "--width", "8", "--depth", "2", "--seeds", "2",
                 "--probes", "2", "--no-progress"]) == 0
    assert (tmp_path / "gsc.csv").is_file() and (tmp_path / "gsc_gsc.png").is_file()
    assert not (tmp_path / "gsc_convergence.png").exists()


def test_measure_end_to_end(tmp_path, capsys):
    arch = "3*residual(dense(tanh,sw2=1.5),dense(linear))"
    out = tmp_path / "m"
    assert main(["measure", arch, "--width", "16", "--seeds", "2", "--probes", "4", "--out", str(out),
                 "--no-progress"]) == 0
    text = (out / "measure.csv").read_text()
    assert text.splitlines()[0] == HEADER
    rows = list(csv.DictReader(text.splitlines()))
    assert rows and {r["experiment"] for r in rows} == {"measure"}
    assert {r["width"] for r in rows} == {"16"} and {r["n_seeds"] for r in rows} == {"2"}
    assert (out / "measure.png").is_file() and (out / "measure.pdf").is_file()
    stdout = capsys.readouterr().out
    assert "predicted values lie in the measured 95% intervals" in stdout


def test_measure_without_out_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["measure", "2*dense(relu,sw2=2)", "--width", "8", "--seeds", "2", "--probes", "2",
                 "--no-progress"]) == 0
    assert os.listdir(tmp_path) == []
    assert "log GSC(0, L)" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------ packaging

def test_console_script_entry_point():
    with open(ROOT / "pyproject.toml", "rb") as fh:
        project = tomllib.load(fh)["project"]
    assert project["scripts"]["sigprop"] == "validate.cli:main"
    module, func = project["scripts"]["sigprop"].split(":")
    assert callable(getattr(__import__(module, fromlist=[func]), func))
