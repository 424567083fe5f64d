"""The catalog page (docs/catalog.md), generated from the registry so it cannot drift from the code.

``python -m sigprop.theory.catalog_page > docs/catalog.md`` rewrites it; a test checks it is current.

Example
-------
>>> from sigprop.theory.catalog_page import activation_section
>>> print(activation_section("relu").splitlines()[0])
### `relu`
"""
from __future__ import annotations

import sympy as sp

from .activations import ACTIVATIONS, FAMILIES, _format, get_activation
from .expectations import ARITY, KINDS, METHOD
from .symbols import k, q, q1, q2

_MEANING = {"mean": "E[φ(u)]", "square": "E[φ(u)²]", "dsquare": "E[φ′(u)²]", "kernel": "E[φ(u)φ(v)]",
            "dkernel": "E[φ′(u)φ′(v)]", "xmean": "E[u φ(u)]", "curvature": "E[φ(u)φ″(u)]", "dquartic": "E[φ′(u)⁴]",
            "ddkernel": "E[φ″(u)φ″(v)]"}


def activation_section(name: str) -> str:
    """One activation's entry: φ, kinks, degree, and where each expectation comes from (with its LaTeX when
    it is an explicit expression)."""
    act = get_activation(name)
    lines = [f"### `{act.describe()}`", "", f"φ(x) = ${sp.latex(act.phi)}$", ""]
    kinks = ", ".join(str(p) for p in act.kinks) or "none"
    degree = act.degree if act.degree is not None else "not homogeneous"
    lines += [f"kinks: {kinks} · degree: {degree} · continuous: {'yes' if act.is_continuous else 'no (φ′ = 0 a.e.)'}",
              "", "| expectation | how | closed form |", "|---|---|---|"]
    sources = act.expectation_sources()
    for kind in KINDS:
        how, _, detail = sources[kind].partition(": ")
        form = ""
        if how not in ("numerical", "undefined"):
            method = getattr(act, METHOD[kind])
            form = f"${sp.latex(method(q) if ARITY[kind] == 1 else method(q1, q2, k))}$"
        lines.append(f"| {_MEANING[kind]} | **{how}**: {_cell(detail)} | {_cell(form)} |")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def catalog_markdown() -> str:
    """The whole page."""
    head = ["# Activation catalog", "",
            "Generated from sigprop's registry (`python -m sigprop.theory.catalog_page`). For each activation: φ,",
            "its kinks (quadrature panel edges), its homogeneity degree (log-space iteration), and for each Gaussian",
            "expectation whether it is **registered** (a closed form from the literature, cited), **derived** (by",
            "SymPy from φ or from a registered form: diagonal, Price's theorem, exact integration) or **numerical**",
            "(an unevaluated expectation that `sigprop.numerics` integrates with error control). u, v are centred",
            "Gaussians with variances q₁, q₂ (q for the 1-D ones) and covariance k. φ′ is the almost-everywhere",
            "derivative; φ″ is the distributional second derivative of a continuous φ (a Dirac delta J δ(x − t)",
            "where φ′ jumps by J at a kink t), **undefined** for a φ that jumps (step, sign).", "",
            "## Activations with parameters", "",
            "| family | parameters | φ |", "|---|---|---|"]
    for fam in sorted(FAMILIES.values(), key=lambda f: f.name):
        params = ", ".join(f"`{p.name}`" + (f" = {_format(p.default)}" if p.default is not None else "") + f" ({p.doc})"
                           for p in fam.params)
        head.append(f"| `{fam.name}` | {params} | {fam.summary} |")
    head += ["", "Write them as `leaky_relu(a=0.2)`, `affine(tanh,a=2,b=0.5)`; a parameter may be a symbol "
             "(`leaky_relu(a=s)`) for formulas, and needs a number for numerics.", "", "## Activations", ""]
    body = [activation_section(n) for n in sorted(ACTIVATIONS)]
    return "\n".join(head) + "\n" + "\n\n".join(body) + "\n"


if __name__ == "__main__":
    print(catalog_markdown(), end="")
