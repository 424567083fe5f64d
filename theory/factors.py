"""The per-block laws that turn block maps into the reported quantities (written once; numerics calls them).

Example
-------
>>> gsc_squared(2, 1, 1), gradient_correlation_factor(1.0, 4.0, 1.0)
(2.0, 0.5)
"""
from __future__ import annotations

import sympy as sp


def gsc_squared(chi, p_in, p_out):
    """GSC² of one block, χ p_in/p_out (Philipp, Song & Carbonell 2018, in mean field; docs/theory.md): with equal
    widths ‖J‖²_qm = χ times the downstream value, and the norms' ratio is p_in/p_out. SymPy or numbers/arrays."""
    return chi * p_in / p_out


def gradient_correlation_factor(chi_a, chi_b, chi_ab):
    """Factor of the cross-input gradient correlation through one block, χ_ab/√(χ_a χ_b) (docs/theory.md)."""
    if any(isinstance(v, sp.Basic) for v in (chi_a, chi_b, chi_ab)):
        return chi_ab / sp.sqrt(chi_a * chi_b)
    return chi_ab / (chi_a * chi_b) ** 0.5
