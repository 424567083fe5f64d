"""Every docstring example and every ``>>>`` example in README.md and docs/ runs, under the installed names.

(pytest's own ``--doctest-modules`` would import ``theory/blocks.py`` from the source folders as a top-level
``theory`` package, the name collision the ``sigprop.`` namespace exists to avoid; the examples are collected
here through ``sigprop.theory`` and friends instead.)
"""
from __future__ import annotations

import doctest
import importlib
import io
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import sigprop

ROOT = Path(__file__).resolve().parents[1]
FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS


def _modules():
    names = {"sigprop"}
    for pkg_name in ("sigprop", "sigprop.theory", "sigprop.theory.blocks", "sigprop.numerics", "sigprop.validate"):
        pkg = importlib.import_module(pkg_name)
        names.add(pkg_name)
        names |= {name for _, name, _ in pkgutil.iter_modules(pkg.__path__, pkg_name + ".")}
    return sorted(names - {"sigprop.__main__"})


def _run(tests, name):
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    out = io.StringIO()
    for test in tests:
        runner.run(test, out=out.write)
    failed, attempted = runner.summarize(verbose=False)
    assert failed == 0, f"{name}: {failed} of {attempted} examples failed\n{out.getvalue()}"
    return attempted


@pytest.mark.parametrize("name", _modules())
def test_module_docstring_examples(name):
    module = importlib.import_module(name)
    _run(doctest.DocTestFinder().find(module, name), name)


DOCS = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("path", DOCS)
def test_markdown_examples(path):
    text = (ROOT / path).read_text()
    test = doctest.DocTestParser().get_doctest(text, {}, path, str(ROOT / path), 0)
    _run([test], path)


def test_every_package_module_has_examples_or_is_covered():
    """The packages' public modules carry an example (those without one are listed here on purpose)."""
    without = set()
    for name in _modules():
        module = importlib.import_module(name)
        if not any(t.examples for t in doctest.DocTestFinder().find(module, name)):
            without.add(name)
    assert without <= {"sigprop", "sigprop.checks", "sigprop.cli", "sigprop.cli_sweep", "sigprop.io", "sigprop.theory.symbols",
                       "sigprop.theory.blocks", "sigprop.validate.plots", "sigprop.validate.experiments",
                       "sigprop.numerics.prediction"}, without
    assert sigprop.__version__


def test_nothing_was_imported_under_a_bare_folder_name():
    """Examples import ``sigprop.theory``, never the source folder ``theory`` as a package of its own."""
    assert "theory" not in sys.modules and "numerics" not in sys.modules
    if "validate" in sys.modules:               # configobj's, if anything
        assert not Path(sys.modules["validate"].__file__).is_relative_to(ROOT)


def test_readme_grammar_is_the_generated_one():
    """The README's grammar block is what ``sigprop.theory.grammar()`` generates from the built-in registries
    (asked in a fresh interpreter: tests register extra activations and block kinds as they run)."""
    import re
    generated = subprocess.run([sys.executable, "-c", "from sigprop.theory import grammar; print(grammar())"],
                               capture_output=True, text=True, check=True).stdout.strip()
    block = re.search(r"<!-- grammar -->\s*```\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block and block.group(1).strip() == generated


def test_catalog_page_is_the_generated_one():
    generated = subprocess.run([sys.executable, "-m", "sigprop.theory.catalog_page"], capture_output=True, text=True,
                               check=True).stdout
    assert (ROOT / "docs" / "catalog.md").read_text() == generated, \
        "docs/catalog.md is stale: python -m sigprop.theory.catalog_page > docs/catalog.md"
