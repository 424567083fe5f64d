"""The per-block laws that turn block maps into the reported quantities (written once; numerics calls them).

Example
-------
>>> gsc_squared(2, 1, 1), gradient_correlation_factor(1.0, 4.0, 1.0)
(2.0, 0.5)
"""
from __future__ import annotations

import sympy as sp


def gsc_squared(chi, p_in, p_out, width_ratio=1):
    """GSC² of one block, χ p_in/(r p_out) (Philipp, Song & Carbonell 2018, in mean field; docs/theory.md).

    χ is the per-unit backward factor (‖g_in‖²/n_in = χ ‖g_out‖²/n_out), r = n_out/n_in the width ratio:
    ‖J‖²_qm = ‖J‖_F²/n_in = χ (per unit of output), and ‖x_in‖²/‖x_out‖² = p_in/(r p_out). GSC does not depend on
    the widths in mean field: a dense layer's χ carries the same r. SymPy or numbers/arrays."""
    return chi * p_in / (width_ratio * p_out)


def gradient_correlation_factor(chi_a, chi_b, chi_ab):
    """Factor of the cross-input gradient correlation through one block, χ_ab/√(χ_a χ_b) (docs/theory.md)."""
    if any(isinstance(v, sp.Basic) for v in (chi_a, chi_b, chi_ab)):
        return chi_ab / sp.sqrt(chi_a * chi_b)
    return chi_ab / (chi_a * chi_b) ** 0.5
