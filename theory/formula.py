"""`Formula`: an equation that prints well, renders to LaTeX and names the paper it comes from."""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp


@dataclass(frozen=True)
class Formula:
    """``lhs = rhs`` together with its source.

    Example
    -------
    >>> from sigprop.theory import Dense, relu
    >>> f = Dense(relu, sw2=2).length_map()
    >>> f.rhs
    p
    >>> f.source.startswith("Poole")
    True
    """

    lhs: sp.Expr
    rhs: sp.Expr
    source: str
    name: str = ""

    @property
    def eq(self) -> sp.Eq:
        return sp.Eq(self.lhs, self.rhs, evaluate=False)

    def simplify(self) -> "Formula":
        return Formula(self.lhs, sp.simplify(self.rhs), self.source, self.name)

    def subs(self, *args, **kwargs) -> "Formula":
        return Formula(self.lhs, self.rhs.subs(*args, **kwargs), self.source, self.name)

    def latex(self) -> str:
        """LaTeX of the equation, e.g. for a paper: ``$...$`` is left to the caller."""
        return sp.latex(self.eq)

    def _repr_latex_(self) -> str:  # Jupyter
        return f"${self.latex()}$"

    def __str__(self) -> str:
        head = f"{self.name}: " if self.name else ""
        return f"{head}{sp.pretty(self.eq, use_unicode=True)}\n  [{self.source}]"

    __repr__ = __str__
