"""The piecewise structure of an activation φ(x): where it has kinks, and how it scales.

Both are read off the expression, so an activation given as any SymPy expression gets them without being
told. ``Max``/``Min``, ``Abs``, ``sign`` and ``Heaviside`` are rewritten as ``Piecewise``; the kinks are the
real points where a piece's condition changes truth value. Quadrature puts panel edges there (a Gaussian
rule converges slowly across a kink), and the symbolic route integrates piecewise-polynomial φ exactly.

Example
-------
>>> import sympy as sp
>>> from sigprop.theory.symbols import x
>>> kinks(sp.Max(-1, sp.Min(1, x)))            # hard tanh
(-1, 1)
>>> homogeneity_degree(sp.Max(0, x)), homogeneity_degree(sp.tanh(x))
(1, None)
"""
from __future__ import annotations

import sympy as sp

from .symbols import x


_PIECEWISE_ATOMS = (sp.Max, sp.Min, sp.Abs, sp.sign, sp.Heaviside, sp.Piecewise)


def piecewise_form(expr: sp.Expr) -> sp.Expr:
    """``expr`` with Max/Min/Abs/sign/Heaviside rewritten as one folded ``Piecewise`` (or unchanged)."""
    expr = sp.sympify(expr)
    if not expr.has(*_PIECEWISE_ATOMS):         # smooth: nothing to rewrite (and SymPy's rewrite is slow)
        return expr
    return sp.piecewise_fold(expr.rewrite(sp.Piecewise))


def _pieces(expr: sp.Expr):
    pw = piecewise_form(expr)
    return list(pw.args) if isinstance(pw, sp.Piecewise) else [(pw, sp.true)]


def kinks(expr: sp.Expr) -> tuple:
    """The real points where ``expr`` switches between pieces, sorted (numbers, as SymPy numbers).

    A kink that depends on a symbolic parameter stays symbolic (sorted after the numbers: numerics needs the
    parameter's value first). A condition SymPy cannot solve for x raises ``ValueError``.
    """
    points = set()
    for node in sp.preorder_traversal(piecewise_form(expr)):
        if not isinstance(node, sp.Piecewise):
            continue
        for _, cond in node.args:
            for rel in sp.sympify(cond).atoms(sp.core.relational.Relational):
                sol = sp.solveset(rel.lhs - rel.rhs, x, sp.S.Reals)
                if not isinstance(sol, sp.FiniteSet):
                    # a symbolic coefficient that might vanish: take the generic solution
                    sol = sp.solve(rel.lhs - rel.rhs, x) if not (rel.lhs - rel.rhs).is_number else []
                    if not sol:
                        raise ValueError(f"phi={expr} is not allowed: cannot locate the kink of its piece "
                                         f"condition {rel} in x")
                points |= {s for s in sol if not (s.is_number and not s.is_real)}
    return tuple(sorted(points, key=sort_key))


def sort_key(point):
    """Kinks in order: numbers by value, symbolic ones (a parameter not yet given) after them by name."""
    return (0, float(point), "") if point.is_number else (1, 0.0, str(point))


def is_piecewise_polynomial(expr: sp.Expr) -> bool:
    """True when ``expr`` (in x) is a polynomial on each piece, so SymPy integrates it exactly."""
    return all(sp.sympify(e).is_polynomial(x) for e, _ in _pieces(expr))


def homogeneity_degree(expr: sp.Expr):
    """d with φ(λx) = λ^d φ(x) for all λ > 0, or None.

    Sufficient condition, checked structurally: every kink is at 0 and every piece is a monomial c·x^d with the
    same d (relu: d = 1, step: d = 0, relu²: d = 2). A network whose blocks all scale this way is iterated in
    log space exactly.
    """
    if any(k != 0 for k in kinks(expr)):
        return None
    degree = None
    for piece, _ in _pieces(expr):
        piece = sp.expand(piece)
        if piece == 0:
            continue
        if not piece.is_polynomial(x):
            return None
        terms = sp.Poly(piece, x).monoms()
        if len(terms) != 1:
            return None
        d = terms[0][0]
        if degree is not None and d != degree:
            return None
        degree = d
    return degree
