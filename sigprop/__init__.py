"""sigprop: signal propagation in deep networks, predicted and measured.

- :mod:`sigprop.theory` (SymPy): exact mean-field maps, laws, LaTeX and sources;
- :mod:`sigprop.numerics` (NumPy/SciPy): error-controlled numbers iterated over depth;
- :mod:`sigprop.validate` (PyTorch): sampled networks that measure the same quantities.

Importing ``sigprop`` itself loads none of them (the command line starts fast).
"""
from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("sigprop")
except _metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+source"

__all__ = ["__version__"]
