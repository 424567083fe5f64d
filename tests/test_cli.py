"""The ``sigprop`` command line (sigprop.cli.main): help, predict, measure, reproduce, grammar, and bad input.

Bad input must end with exit code 2 and one line on stderr starting with "sigprop: error:" (argparse's own
usage errors also exit 2, through SystemExit), before any work is done. The end-to-end runs use tiny settings
(width 16/32, depth 3, 2 seeds, 4 probes): they check files and formats, not agreement
(tests/validate and tests/conformance do that).
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import sigprop
from sigprop import theory
from sigprop.cli import main

try:
    import tomllib
except ModuleNotFoundError:          # Python 3.10: the same parser as a package
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
HEADER = ("experiment,architecture,layer,quantity,predicted,measured_mean,measured_lo,measured_hi,width,n_seeds,"
          "n_excluded,aggregation,corrected,corrected_se,seed_lo,seed_hi")
TINY = ["--depth", "3", "--seeds", "2", "--probes", "4", "--no-progress"]


def _exit_code(argv):
    """main()'s return value, or the code of the SystemExit that argparse raises."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def _run(*args, cwd=None):
    """``python -m sigprop ARGS`` in a fresh interpreter."""
    return subprocess.run([sys.executable, "-m", "sigprop", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


# ------------------------------------------------------------------------------------------------------ help

def test_top_level_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for word in ("reproduce", "predict", "measure", "grammar", "--version"):
        assert word in out


def test_top_level_help_loads_neither_sympy_nor_torch():
    code = ("import sys, contextlib, io\nfrom sigprop.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n        main(['--help'])\n    except SystemExit:\n        pass\n"
            "print(sorted(m for m in ('sympy', 'torch', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_predict_loads_no_torch():
    code = ("import sys, contextlib, io\nfrom sigprop.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    rc = main(['predict', '3*dense(tanh)'])\n"
            "print(rc, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["0", "False"]


def test_no_command_prints_help(capsys):
    assert main([]) == 0
    assert "reproduce" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["reproduce", "predict", "measure", "grammar"])
def test_subcommand_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert f"sigprop {command}" in out
    if command in ("predict", "measure"):
        # the grammar, generated from the registries
        assert "grammar" in out and "residual(" in out and "dense(ACT" in out
        assert all(name in out for name in theory.ACTIVATIONS)
    if command == "predict":
        from sigprop.quantities import QUANTITIES
        assert all(f"  {name} " in out for name in QUANTITIES)


def test_grammar_command_is_generated_from_the_registries(capsys):
    assert main(["grammar"]) == 0
    out = capsys.readouterr().out
    for line in theory.grammar().splitlines():
        assert line in out
    for kind, cls in theory.BLOCKS.items():
        assert f"{kind}(" in out and cls.summary in out


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"sigprop {sigprop.__version__}"


def test_python_dash_m_sigprop():
    r = _run("predict", "2*dense(relu,sw2=2)", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["values"]["log_gsc"] == [0.0, 0.0, 0.0]


# --------------------------------------------------------------------------------------------------- predict

def test_predict_json(capsys):
    assert main(["predict", "3*dense(tanh,sw2=2.5,sb2=0.05)", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["values"]["log_gsc"]) == 4
    assert len(data["values"]["q"]) == 3
    assert data["values"]["log_gsc"][-1] == 0.0                   # GSC(L, L) = 1
    assert data["inputs"]["q0"] == 1.0 and data["inputs"]["c0"] == 0.5
    assert "dense(tanh,sw2=2.5,sb2=0.05)" in data["architecture"]


def _strict(text):
    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")
    return json.loads(text, parse_constant=refuse)


def test_predict_json_is_strict_beyond_float64(capsys):
    # p grows like 50^L: beyond float64 after ~180 layers; JSON says null there and keeps the finite logs
    assert main(["predict", "200*dense(relu,sw2=100)", "--json"]) == 0
    data = _strict(capsys.readouterr().out)
    assert data["values"]["p"][-1] is None and data["values"]["p"][0] == 1.0
    log_p = data["per_input"]["log_p"]
    assert log_p[-1][0] == pytest.approx(200 * math.log(50), rel=1e-12)


def test_predict_at_a_finite_width(capsys):
    assert main(["predict", "4*dense(relu,sw2=2)", "--width", "16", "--chains", "100", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "mean field (infinite width)" in out and "width 16: mean over networks (100 sampled paths)" in out
    finite = out.split("width 16:")[1].splitlines()
    assert finite[1].split()[-2:] == ["gsc_lo", "gsc_hi"] and len(finite) == 2 + 5
    assert main(["predict", "4*dense(relu,sw2=2)", "--width", "16", "--chains", "100", "--json"]) == 0
    data = _strict(capsys.readouterr().out)
    assert data["finite_width"]["width"] == 16 and len(data["finite_width"]["mean"]["log_gsc"]) == 5
    assert main(["predict", "4*residual(dense(relu,sw2=2),dense(linear))", "--width", "16"]) == 2
    assert "one dense layer in the branch" in capsys.readouterr().err
    assert main(["predict", "4*dense(relu,sw2=2)", "--width", "3"]) == 2          # refused before any bar
    err = capsys.readouterr().err
    assert "needs width >= 4" in err and "layer/s" not in err


def test_measure_with_the_prediction_at_the_measured_width(capsys, tmp_path):
    assert main(["measure", "5*dense(relu,sw2=2)", "--width", "16", "--seeds", "4", "--finite-width", "--chains",
                 "100", "--no-progress", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "at width" in out and "measured 4 networks in" in out and "(4 per batch)" in out
    cost = json.loads((tmp_path / "measure.json").read_text())["measurement"]
    assert cost["seeds_per_batch"] == 4 and cost["seconds"] > 0
    assert main(["measure", "5*dense(relu,sw2=2)", "--width", "16", "--seeds", "4", "--seed-batch", "3",
                 "--no-progress"]) == 0
    assert "(3 per batch)" in capsys.readouterr().out
    row = next(csv.DictReader(io.StringIO((tmp_path / "measure.csv").read_text())))
    assert row["corrected"] != "" and row["aggregation"] in ("mean over seeds", "pooled over seeds")
    assert main(["measure", "5*residual(dense(relu,sw2=2),dense(linear))", "--width", "16", "--finite-width"]) == 2
    assert "--finite-width: block 1" in capsys.readouterr().err


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


def test_predict_with_an_activation_defined_on_the_command_line(capsys):
    assert main(["predict", "3*dense(xerfcli,sw2=1.5)", "--activation", "xerfcli=x*erf(x)", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["architecture"] == "3*dense(xerfcli,sw2=1.5,sb2=0)"
    assert all(math.isfinite(v) for v in data["values"]["log_gsc"])


def test_predict_and_measure_with_a_batch(capsys):
    """--batch: the batch-ReLU rate in the table, the Monte Carlo labelled; measure feeds the batch and compares."""
    assert main(["predict", "6*(dense(linear,sw2=2),batchnorm,act(relu))", "--batch", "inf", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["inputs"]["batch"] == "inf"
    log_gsc = data["values"]["log_gsc"]
    assert log_gsc[3] - log_gsc[6] == pytest.approx(0.5 * math.log(math.pi / (math.pi - 1)), rel=1e-12)
    assert main(["predict", "3*(dense(linear,sw2=2),batchnorm,act(relu))", "--batch", "16"]) == 0
    out = capsys.readouterr().out
    assert "batch=16" in out.splitlines()[0] and "Monte Carlo" in out.splitlines()[1]
    assert main(["measure", "3*(dense(linear,sw2=2),batchnorm,act(relu))", "--batch", "8", "--width", "32",
                 "--seeds", "2", "--no-progress"]) == 0
    assert "predicted values lie in the measured 95% intervals" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------- bad input

DEEP = "(" * 2000 + "dense(relu)" + ")" * 2000
CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


@pytest.mark.parametrize("argv,mentions", [
    (["predict", "3*dense(foo)"], "foo"),
    (["predict", "3*dense(tanh,sw2=-1)"], "sw2"),
    (["predict", "0*dense(relu)"], "repetition"),
    (["predict", "3*dense(tanh)", "--c0", "2"], "c0"),
    (["predict", "3*dense(tanh)", "--q0", "-1"], "q0"),
    (["predict", "3*dense(tanh)", "--q0", "nan"], "q0"),
    (["predict", "3*dense(tanh,sw2=s)"], "symbolic"),
    (["predict", ""], "empty"),
    (["predict", "-3*dense(relu)"], "repetition count"),               # not read as an option
    (["predict", DEEP], "nesting"),
    (["predict", "1000000000000000000000000000000*dense(relu)"], "100000"),   # 31 digits: refused, not allocated
    (["predict", "10000000*dense(relu)"], "100000"),                   # depth 10^7: refused, not a silent hang
    (["predict", "2*(50000*dense(relu),20000*dense(tanh))"], "100000"),
    (["predict", "\u0663*dense(relu)"], "unexpected character"),      # an Arabic-Indic 3 is not a count
    (["predict", "3*dense(x)", "--activation", "x=exp(y)"], "free symbols"),
    (["measure", "3*dense(foo)", "--width", "4", "--seeds", "2", "--no-progress"], "foo"),
    (["measure", "2*dense(tanh)", "--width", "4", "--seeds", "1", "--no-progress"], "seeds"),
    (["measure", "2*dense(tanh)", "--width", "4", "--seeds", "2", "--c0", "2", "--no-progress"], "c0"),
    (["measure", "2*dense(tanh)", "--width", "2", "--seeds", "2", "--no-progress"], "width"),
    (["measure", "2*dense(tanh)", "--width", "1", "--seeds", "2", "--no-progress"], "width"),
    (["measure", "2*dense(tanh)", "--width", "32", "--batch", "64", "--finite-width", "--no-progress"],
     "width >= batch + 1 = 65"),                                        # before the prediction, as the others
    (["measure", "2*dense(tanh)", "--width", "32", "--batch", "8", "--c0", "-0.5", "--no-progress"],
     "-1/(batch - 1)"),
    pytest.param(["measure", "2*dense(tanh)", "--device", "cuda"], "CUDA", marks=CUDA),
    (["measure", "2*dense(tanh)", "--device", "tpu"], "device"),
    (["measure", "2*dense(tanh)", "--device", "nonsense"], "device"),
    pytest.param(["reproduce", "--device", "cuda", "--no-progress"], "CUDA", marks=CUDA),
    (["reproduce", "--experiment", "nope"], "experiment"),
    (["reproduce", "--experiment", "philipp", "--width", "32", "--no-progress"], "width >= 65"),
    (["reproduce", "nope"], "allowed: gsc, philipp, shattering, balduzzi, dilution, all"),
    (["reproduce", "gsc", "--experiment", "philipp"], "named twice"),
    (["reproduce", "all", "--quick", "--width", "32", "--no-progress"], "width >= 65"),   # checked before any run
    (["predict", "3*(dense(linear),batchnorm)", "--batch", "3"], "batch=3"),
    (["measure", "3*(dense(linear),batchnorm)", "--width", "8", "--seeds", "2", "--no-progress"], "batch=B"),
    (["measure", "3*(dense(linear),batchnorm(batch=4))", "--width", "8", "--seeds", "2", "--probes", "exact",
      "--no-progress"], "probes='exact' is not allowed for a batch of 4 inputs through training-mode batchnorm"),
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
    ["measure", "2*dense(tanh)", "--width", "\u0663"],
    ["measure", "2*dense(tanh)", "--probes", "0"],
    ["measure", "2*dense(tanh)", "--probes", "foo"],
    ["measure", "2*dense(tanh)", "--dtype", "float16"],
    ["reproduce", "--depth", "0"],
    ["predict", "3*dense(tanh)", "--c0", "abc"],
    ["predict", "3*dense(tanh)", "--activation", "noequals"],
    ["predict", "3*dense(tanh)", "--batch", "1"],
    ["frobnicate"],
])
def test_argparse_usage_errors_exit_2(argv, capsys):
    assert _exit_code(argv) == 2
    err = capsys.readouterr().err
    assert "error:" in err


@pytest.fixture
def no_measuring(monkeypatch):
    """Make any measurement fail loudly: errors must come before the work."""
    import importlib
    vmeasure = importlib.import_module("sigprop.validate.measure")   # the package re-exports the function

    def refuse(*args, **kwargs):
        raise AssertionError("measurement started before the input was checked")
    monkeypatch.setattr(vmeasure, "measure", refuse)
    monkeypatch.setattr("sigprop.validate.experiments.measure", refuse)


@pytest.mark.parametrize("command", [["measure", "2*dense(tanh)", "--width", "8"], ["reproduce"]])
def test_out_that_is_a_file_fails_before_any_work(command, tmp_path, capsys, no_measuring):
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    assert _exit_code(command + ["--out", str(afile), "--seeds", "2", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sigprop: error: out=") and "existing file" in err and err.count("\n") == 1
    assert afile.read_text() == "keep me"


@pytest.mark.parametrize("command", [["measure", "2*dense(tanh)", "--width", "8"], ["reproduce"]])
def test_unwritable_out_fails_before_any_work(command, tmp_path, capsys, no_measuring):
    afile = tmp_path / "afile"
    afile.write_text("")
    assert _exit_code(command + ["--out", str(afile / "sub"), "--seeds", "2", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sigprop: error: out=") and "cannot write there" in err and err.count("\n") == 1


def test_dead_relu_networks_are_excluded_not_nan(tmp_path, capsys):
    """At width 8 some of 20 He-ReLU networks of depth 50 lose every unit: their GSC is 0/0. The statistics come
    from the other seeds, the excluded count is shown, and no NaN reaches the output."""
    out = tmp_path / "m"
    assert main(["measure", "50*dense(relu,sw2=2)", "--width", "8", "--seeds", "20", "--no-progress",
                 "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "nan" not in stdout.lower() and "excl." in stdout
    rows = list(csv.DictReader((out / "measure.csv").read_text().splitlines()))
    excluded = [int(r["n_excluded"]) for r in rows if r["quantity"] == "log_gsc"]
    assert max(excluded) > 0                                         # some networks died …
    assert all(int(r["n_seeds"]) + int(r["n_excluded"]) == 20 for r in rows)
    assert all(r["measured_mean"] not in ("", "nan") for r in rows)  # … and the others are reported
    meta = _strict((out / "measure.json").read_text())
    assert meta["agreement_gsc_0_L"]["log_gsc"][0]["n_excluded"] > 0


def test_probes_beyond_width_become_exact(capsys):
    assert main(["measure", "2*dense(tanh)", "--width", "8", "--seeds", "2", "--probes", "5000",
                 "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "exact probes are used" in captured.err


# ------------------------------------------------------------------------------------------------ end to end

def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_reproduce_end_to_end(tmp_path, capsys):
    out = tmp_path / "res"
    code = main(["reproduce", "--out", str(out), "--width", "16", "32", *TINY])
    assert code == 0
    text = (out / "gsc.csv").read_text()
    assert text.splitlines()[0] == HEADER
    rows = list(csv.DictReader(text.splitlines()))
    assert {r["width"] for r in rows} == {"16", "32"}
    assert {r["n_seeds"] for r in rows} == {"2"} and {r["n_excluded"] for r in rows} == {"0"}
    assert {r["experiment"] for r in rows} == {"gsc"}
    assert len({r["architecture"] for r in rows}) == 4
    assert {r["quantity"] for r in rows} >= {"q", "c", "p", "log_gsc", "log_gsc_qm", "grad_corr"}
    assert {int(r["layer"]) for r in rows} == {0, 1, 2, 3}
    for r in rows:
        lo, mean, hi = float(r["measured_lo"]), float(r["measured_mean"]), float(r["measured_hi"])
        assert math.isfinite(float(r["predicted"])) and lo <= mean + 1e-12 and mean <= hi + 1e-12

    meta = _strict((out / "gsc.json").read_text())
    for key in ("versions", "timings_s", "agreement_gsc_0_L", "run_id", "files", "headline_quantity"):
        assert key in meta
    assert meta["depth"] == 3 and meta["widths"] == [16, 32] and meta["seeds"] == [0, 1] and meta["probes"] == 4
    assert meta["headline_quantity"] == "log_gsc_qm"
    assert {q: len(v) for q, v in meta["agreement_gsc_0_L"].items()} == {"log_gsc_qm": 8, "log_gsc": 8}
    assert {"sigprop", "torch", "numpy", "python"} <= set(meta["versions"])
    assert meta["timings_s"]["total"] > 0
    cost = meta["measurement_cost"]                     # every measurement: 2 seeds stacked on the CPU
    assert len(cost) == 8 and all(c["seeds_per_batch"] == 2 and c["bytes_per_seed"] > 0 for c in cost.values())

    names = sorted(p.name for p in out.iterdir())
    figures = [f"gsc_{s}.{e}" for s in ("convergence", "gsc", "quantities") for e in ("pdf", "png")]
    assert names == sorted(["gsc.csv", "gsc.json", "gsc.md", *figures])   # no temporaries, no staging folder
    assert set(meta["files"]) == set(names) - {"gsc.json"}
    import hashlib
    for name, entry in meta["files"].items():                       # the files belong to this run
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == entry["sha256"]
        assert _mode(out / name) & 0o044 == 0o044                    # readable by others (not 0600)
    assert (out / "gsc_gsc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "gsc_gsc.pdf").read_bytes()[:5] == b"%PDF-"
    stdout = capsys.readouterr().out
    assert "log GSC(0, L), ratio of quadratic means" in stdout and "geometric mean" in stdout
    report = (out / "gsc.md").read_text()                            # the report: command, settings, table, figures
    assert "sigprop reproduce gsc --width 16 32 --depth 3 --seeds 2 --probes 4" in report
    assert "## log GSC(0, L), ratio of quadratic means over inputs and seeds" in report
    assert report.count("| He-ReLU (σ_w²=2) |") == 2 * 2 + 2        # two aggregations and the rates, two widths
    assert "## GSC² per layer" in report and "![" in report and "(gsc_gsc.png)" in report


def test_rerun_replaces_the_previous_runs_files(tmp_path):
    """A second run into the same folder leaves only its own files: the first run's convergence figure goes."""
    assert main(["reproduce", "--out", str(tmp_path), "--width", "8", "16", *TINY]) == 0
    first = _strict((tmp_path / "gsc.json").read_text())
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["reproduce", "--out", str(tmp_path), "--width", "8", *TINY]) == 0
    second = _strict((tmp_path / "gsc.json").read_text())
    assert first["run_id"] != second["run_id"]
    assert not (tmp_path / "gsc_convergence.png").exists() and not (tmp_path / "gsc_convergence.pdf").exists()
    assert (tmp_path / "notes.txt").read_text() == "mine"             # files of other origin are kept
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["notes.txt", *second["files"], "gsc.json"])


def test_interrupted_run_leaves_nothing_half_written(tmp_path, monkeypatch, capsys):
    assert main(["reproduce", "--out", str(tmp_path), "--width", "8", *TINY]) == 0
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    import sigprop.validate.experiments as experiments
    real, calls = experiments.measure, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)
    monkeypatch.setattr(experiments, "measure", interrupted)
    assert main(["reproduce", "--out", str(tmp_path), "--width", "8", *TINY]) == 130
    assert "interrupted" in capsys.readouterr().err
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before                                          # the earlier run, untouched, no temporaries


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
    assert sorted(p.name for p in out.iterdir()) == ["measure.csv", "measure.json", "measure.md", "measure.pdf",
                                                     "measure.png"]
    assert "(measure.png)" in (out / "measure.md").read_text()
    meta = _strict((out / "measure.json").read_text())
    assert meta["architecture"] == theory.parse(arch).describe() and meta["width"] == 16
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
    assert project["scripts"]["sigprop"] == "sigprop.cli:main"
    module, func = project["scripts"]["sigprop"].split(":")
    assert callable(getattr(__import__(module, fromlist=[func]), func))


def test_reproduce_every_experiment_quick(tmp_path, capsys):
    """``reproduce all --quick``: every experiment at its tiny preset, each with its CSV, report and JSON."""
    assert main(["reproduce", "all", "--quick", "--out", str(tmp_path), "--no-progress"]) == 0
    for name in ("gsc", "philipp", "shattering", "balduzzi", "dilution"):
        meta = _strict((tmp_path / f"{name}.json").read_text())
        assert {f"{name}.csv", f"{name}.md"} <= set(meta["files"])
    assert _strict((tmp_path / "philipp.json").read_text())["widths"] == [72]      # the quick preset
    assert "fitted slope" in capsys.readouterr().out


def test_reproduce_quick_and_full_are_exclusive(capsys):
    assert _exit_code(["reproduce", "--quick", "--full"]) == 2
