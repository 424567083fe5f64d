"""sigprop.io: strict JSON, CSV cells, atomic writes with normal permissions, staged run folders."""
from __future__ import annotations

import json
import math
import os
import stat

import numpy as np
import pytest

from sigprop.io import RunOutput, check_output_folder, rows_to_csv, to_json_text, write_atomic


def _strict(text):
    def refuse(token):
        raise ValueError(token)
    return json.loads(text, parse_constant=refuse)


def test_json_is_strict():
    text = to_json_text({"a": [1.0, math.inf, -math.inf, math.nan], "b": np.array([np.nan, 2.0]),
                         "c": np.float64(np.inf), "d": {"e": (np.int64(3), None)}})
    assert _strict(text) == {"a": [1.0, None, None, None], "b": [None, 2.0], "c": None, "d": {"e": [3, None]}}


def test_csv_cells():
    text = rows_to_csv([{"x": 0.1, "y": math.nan, "z": None}, {"x": np.float64(2.5), "y": math.inf, "z": 3}],
                       ["x", "y", "z"])
    assert text == "x,y,z\n0.1,,\n2.5,,3\n"


def test_write_atomic_permissions_and_no_temporaries(tmp_path):
    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "a" / "f.txt", "hello")
        write_atomic(tmp_path / "a" / "g.bin", b"\x00\x01")
    finally:
        os.umask(old)
    assert (tmp_path / "a" / "f.txt").read_text() == "hello"
    assert stat.S_IMODE(os.stat(tmp_path / "a" / "f.txt").st_mode) == 0o644
    assert sorted(os.listdir(tmp_path / "a")) == ["f.txt", "g.bin"]


def test_write_atomic_cleans_up_when_interrupted(tmp_path, monkeypatch):
    (tmp_path / "f.txt").write_text("old")

    def boom(*args):
        raise KeyboardInterrupt
    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(tmp_path / "f.txt", "new")
    assert os.listdir(tmp_path) == ["f.txt"] and (tmp_path / "f.txt").read_text() == "old"


def test_check_output_folder(tmp_path):
    assert check_output_folder(tmp_path / "new" / "deeper") == str(tmp_path / "new" / "deeper")
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="existing file"):
        check_output_folder(tmp_path / "file")
    with pytest.raises(ValueError, match="cannot write there"):
        check_output_folder(tmp_path / "file" / "sub")


def test_run_output_commits_together_and_records_checksums(tmp_path):
    import hashlib
    with RunOutput(tmp_path, "exp") as run:
        run.write("exp.csv", "a\n1\n")
        run.write("exp_fig.png", b"\x89PNG")
        assert sorted(os.listdir(tmp_path)) == [f".exp-run-{run.run_id}.tmp"]   # nothing visible before commit
        files = run.commit({"setting": 1})
    assert [os.path.basename(f) for f in files] == ["exp.csv", "exp_fig.png", "exp.json"]
    meta = _strict((tmp_path / "exp.json").read_text())
    assert meta["setting"] == 1 and meta["run_id"] == run.run_id
    assert meta["files"]["exp.csv"]["sha256"] == hashlib.sha256(b"a\n1\n").hexdigest()
    assert sorted(os.listdir(tmp_path)) == ["exp.csv", "exp.json", "exp_fig.png"]


def test_run_output_discards_on_error(tmp_path):
    with pytest.raises(RuntimeError):
        with RunOutput(tmp_path, "exp") as run:
            run.write("exp.csv", "partial")
            raise RuntimeError("stop")
    assert os.listdir(tmp_path) == []
