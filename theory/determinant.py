"""The determinant q₁q₂ − k² of a pair's covariance, as a SymPy function of its own.

Closed-form kernels are written in terms of it (the ReLU angle θ = atan2(√(q₁q₂ − k²), k), Williams' erf
kernel). Near c = ±1 it is a small difference of large products; written naively in floating point it
loses up to all of its digits there. As a named function it prints and differentiates like the explicit
expression, vanishes exactly on the diagonal (q₁ = q₂ = k: identical inputs), and lets ``numerics``
evaluate it with an exact-product algorithm instead (code printers, e.g. ``lambdify`` with numpy or mpmath,
print it as the plain expression).

Example
-------
>>> from sigprop.theory.symbols import q1, q2, k, q
>>> covariance_determinant(q1, q2, k)
(q_1*q_2 - k**2)
>>> covariance_determinant(q, q, q)
0
>>> covariance_determinant(q1, q2, k).diff(k)
-2*k
"""
from __future__ import annotations

import sympy as sp
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter


class covariance_determinant(sp.Function):  # noqa: N801 - reads like a SymPy function
    """q₁q₂ − k² for (u, v) ~ N(0, [[q₁, k], [k, q₂]])."""

    nargs = 3

    @classmethod
    def eval(cls, q1, q2, k):
        if q1 == q2 == k or q1 == q2 == -k:
            return sp.Integer(0)
        if q1.is_number and q2.is_number and k.is_number:
            return q1 * q2 - k**2
        return None

    def fdiff(self, argindex=1):
        q1, q2, k = self.args
        return {1: q2, 2: q1, 3: -2 * k}[argindex]

    def _eval_rewrite_as_Add(self, q1, q2, k, **kwargs):
        return q1 * q2 - k**2

    def doit(self, **hints):
        q1, q2, k = (a.doit(**hints) for a in self.args)
        return q1 * q2 - k**2

    def _eval_is_nonnegative(self):
        return True          # a covariance matrix is positive semidefinite

    def _eval_is_real(self):
        return True

    def _sympystr(self, printer):
        return f"({self._product(printer)} - {printer.parenthesize(self.args[2], PRECEDENCE['Pow'], strict=True)}**2)"

    def _product(self, printer):
        q1, q2 = (printer.parenthesize(a, PRECEDENCE["Mul"], strict=True) for a in self.args[:2])
        return f"{q1}*{q2}"

    def _code(self, printer):
        # code printers (lambdify with numpy, mpmath, math, …) get the plain expression; numerics swaps in an
        # exact evaluation before it compiles
        q1, q2, k = (printer._print(a) for a in self.args)
        return f"(({q1})*({q2}) - ({k})**2)"

    _lambdacode = _numpycode = _mpmathcode = _pythoncode = _scipycode = _code

    def _latex(self, printer, exp=None):
        q1, q2 = (printer.parenthesize(a, PRECEDENCE["Mul"], strict=True) for a in self.args[:2])
        k = printer.parenthesize(self.args[2], PRECEDENCE["Pow"], strict=True)
        body = rf"\left({q1} {q2} - {k}^{{2}}\right)"
        return rf"{body}^{{{exp}}}" if exp else body

    def _pretty(self, printer):
        return printer._print(sp.Symbol(self._sympystr(StrPrinter())))
