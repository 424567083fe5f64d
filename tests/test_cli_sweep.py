"""``sigprop sweep``: files, the finite-width view, resuming from the cache, bad settings."""
from __future__ import annotations

import csv
import json
import math

import pytest

from sigprop.cli import main

ARGS = ["{L}*dense(tanh,sw2=1.5)", "{L}*dense(relu,sw2=2)", "--depth", "2", "3", "--width", "8", "16",
        "--seeds", "2", "--probes", "4", "--workers", "2", "--no-progress"]


def test_sweep_end_to_end_and_resume(tmp_path, capsys):
    out = tmp_path / "res"
    assert main(["sweep", *ARGS, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "slope" in text and "wrote" in text
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert {(r["label"], r["depth"], r["width"]) for r in rows if r["quantity"] == "log_gsc" and r["layer"] == "0"} \
        == {(a, d, w) for a in ARGS[:2] for d in ("2", "3") for w in ("8", "16")}
    meta = json.loads((out / "sweep.json").read_text())
    assert meta["tasks"] == 16 and len(meta["convergence_log_gsc_0_L"]) == 4
    assert {"sweep.csv", "sweep.md", "sweep_convergence.png", "sweep_convergence.pdf"} <= set(meta["files"])
    report = (out / "sweep.md").read_text()
    assert "## Fitted slope" in report and "(sweep_convergence.png)" in report
    assert len(list((out / "sweep_cache").iterdir())) == 16
    first = (out / "sweep.csv").read_text()
    assert main(["sweep", *ARGS, "--out", str(out)]) == 0        # everything from the cache: the same table
    assert (out / "sweep.csv").read_text() == first
    paired = tmp_path / "paired"                                  # both seeds of a configuration in one job
    assert main(["sweep", *ARGS, "--seeds-per-task", "2", "--out", str(paired)]) == 0
    for a, b in zip(rows, csv.DictReader((paired / "sweep.csv").open()), strict=True):
        assert a.keys() == b.keys() and all(a[k] == b[k] or math.isclose(float(a[k]), float(b[k]), rel_tol=1e-9,
                                                                         abs_tol=1e-12) for k in a)


@pytest.mark.parametrize("argv, mentions", [
    (["2*dense(tanh)", "--depth", "3", "--width", "8"], "no {L}"),
    (["{L}*dense(tanh)", "--depth", "3", "--width", "8", "--seeds", "1"], "at least 2 seeds"),
    (["{L}*dense(foo)", "--depth", "3", "--width", "8"], "foo"),
])
def test_bad_sweep_settings_one_line_error(argv, mentions, tmp_path, capsys):
    assert main(["sweep", *argv, "--out", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sigprop: error:") and mentions in err and err.count("\n") == 1
