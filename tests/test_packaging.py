"""sigprop installs as one namespace, ``sigprop.*``, beside other distributions' top-level packages.

configobj (a test dependency, from the package index) ships a top-level ``validate`` package; sigprop's own
``validate/`` folder must never be installed under that name. Checked three ways: the wheel's contents; a
non-editable install of the wheel into a folder that already holds configobj's files (which must be left
byte-identical, both packages importing afterwards); and the editable install this test suite runs in.
The imports run in fresh interpreters outside the source tree (inside it, the folders themselves would shadow
everything by name).
"""
from __future__ import annotations

import importlib.metadata as md
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECK = ("import sys, validate, sigprop.validate, sigprop.theory, sigprop.numerics\n"
         "assert hasattr(validate, 'Validator'), validate.__file__\n"
         "assert hasattr(sigprop.validate, 'measure')\n"
         "from sigprop.theory import parse\nfrom sigprop.numerics import predict\n"
         "print(round(float(predict(parse('3*dense(relu,sw2=2)')).values['log_gsc'][0]), 12))\n"
         "print(validate.__file__)\nprint(sigprop.validate.__file__)\n")


def _configobj_files():
    dist = md.distribution("configobj")
    return {str(f): Path(dist.locate_file(f)) for f in dist.files if str(f).split("/")[0] in ("validate", "configobj")}


def _python(code, cwd, extra_path=None):
    env = dict(os.environ)
    if extra_path:
        env["PYTHONPATH"] = os.pathsep.join([str(extra_path), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=120)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    source = tmp_path_factory.mktemp("source") / "sigprop"     # build from a copy: setuptools writes build/ in place
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info",
                                                                 "results", "__pycache__", ".pytest_cache"))
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                        str(out), str(source)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    (path,) = out.glob("sigprop-*.whl")
    return path


def test_wheel_holds_only_the_sigprop_namespace(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"sigprop", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}, tops
    for sub in ("theory/blocks/dense.py", "numerics/quadrature.py", "validate/measure.py", "cli.py"):
        assert f"sigprop/{sub}" in names


def test_install_beside_configobj_leaves_both_working(wheel, tmp_path):
    target = tmp_path / "site"
    files = _configobj_files()
    for rel, src in files.items():                       # an environment that already has configobj
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
    before = {rel: (target / rel).read_bytes() for rel in files}
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--upgrade",
                        "--target", str(target), str(wheel)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert {rel: (target / rel).read_bytes() for rel in files} == before      # configobj untouched
    assert not (target / "theory").exists() and not (target / "numerics").exists()
    r = _python(CHECK, cwd=tmp_path, extra_path=target)
    assert r.returncode == 0, r.stderr
    value, validate_file, ours = r.stdout.split()
    assert float(value) == 0.0
    assert Path(validate_file).parent == target / "validate"
    assert Path(ours).is_relative_to(target / "sigprop")


def test_editable_install_beside_configobj(tmp_path):
    r = _python(CHECK, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    value, validate_file, ours = r.stdout.split()
    assert Path(validate_file).parent.parent == Path(md.distribution("configobj").locate_file(""))
    assert Path(ours).is_relative_to(ROOT)


def test_theory_imports_neither_numpy_nor_torch(tmp_path):
    r = _python("import sys, sigprop.theory\nprint(sorted(m for m in ('numpy', 'torch', 'scipy') if m in sys.modules))",
                cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
