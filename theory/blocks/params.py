"""Declared block parameters: the ``param`` field, its kinds, and how values are checked and written.

Example
-------
>>> check_number("sw2", 2, nonnegative=True), format_number(check_number("beta", 0.5, nonnegative=False))
(2, '0.5')
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import sympy as sp

PARAM_KINDS = ("activation", "variance", "positive", "real", "size", "choice", "blocks")
NUMERIC_KINDS = ("variance", "positive", "real", "size")
_KEY = "sigprop_param"


@dataclass(frozen=True)
class Param:
    """A declared block parameter."""

    name: str
    kind: str
    default: object
    doc: str
    positional: bool
    choices: tuple = ()
    preset: bool = False
    hide_default: bool = False

    @property
    def required(self) -> bool:
        return self.default is dataclasses.MISSING


def param(default=dataclasses.MISSING, *, kind: str, doc: str, positional: bool = False, choices: tuple = (),
          preset: bool = False, hide_default: bool = False):
    """A dataclass field declaring one block parameter (see the module docstring).

    ``choices``: the allowed names of a ``choice`` parameter (its default is None: no choice). ``preset``: a
    numeric parameter a choice may imply (:meth:`Block.preset`). ``hide_default``: ``describe()`` omits the
    parameter at its default value (so adding a parameter leaves existing descriptions unchanged)."""
    if kind not in PARAM_KINDS:
        raise ValueError(f"kind={kind!r} is not a parameter kind; allowed: {', '.join(PARAM_KINDS)}")
    if (kind == "choice") != bool(choices) or (kind == "choice" and default is not None):
        raise ValueError("a choice parameter declares its choices and has the default None (and only it does)")
    meta = {_KEY: (kind, doc, positional, default, tuple(choices), preset, hide_default or kind == "choice")}
    return dataclasses.field(default=None if preset else default, metadata=meta)


# -- parameter values ------------------------------------------------------------------------------------
def check_number(name: str, value, nonnegative: bool, positive: bool = False, size: bool = False) -> sp.Expr:
    """A block parameter as a SymPy number or expression; a ValueError naming it if it is not allowed. A ``size``
    (e.g. a batch size) is an integer >= 1 or infinity (``float('inf')``, ``sympy.oo``; ``inf`` in the grammar)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        raise ValueError(f"{name}={value!r} is not allowed: give a finite real number or a SymPy symbol")
    try:
        v = sp.sympify(value, strict=True) if not isinstance(value, sp.Basic) else value
    except (sp.SympifyError, TypeError):
        raise ValueError(f"{name}={value!r} is not allowed: give a finite real number or a SymPy symbol") from None
    if size:
        if v is sp.oo or (v.is_number and v.is_finite and v.is_real and v == int(v) and v >= 1):
            return sp.oo if v is sp.oo else sp.Integer(int(v))
        if v.is_number or v.is_positive is False:
            shown = format_number(v) if v.is_number and v.is_finite else value
            raise ValueError(f"{name}={shown} is not allowed: give an integer >= 1 or inf")
        return v
    if v.is_number:
        if not (v.is_real and v.is_finite):
            shown = "inf" if v is sp.oo else repr(value)
            raise ValueError(f"{name}={shown} is not allowed: it must be a finite real number")
        if nonnegative and v < 0:
            raise ValueError(f"{name}={value!r} is not allowed: a variance must be >= 0")
        if positive and v <= 0:
            raise ValueError(f"{name}={value!r} is not allowed: it must be > 0")
    elif (nonnegative and v.is_negative) or (positive and v.is_nonpositive):
        raise ValueError(f"{name}={value!r} is not allowed: it must be {'> 0' if positive else '>= 0'}")
    return v


def agrees(given: sp.Expr, implied: sp.Expr) -> bool:
    """Whether a given parameter value equals the value a preset implies (to float rounding for numbers)."""
    if given.is_number and implied.is_number:
        return abs(float(given) - float(implied)) <= 1e-12 * max(1.0, abs(float(implied)))
    return sp.simplify(given - implied) == 0


def format_number(v: sp.Expr) -> str:
    """A parameter value as the grammar writes it."""
    if v is sp.oo:
        return "inf"
    if v.is_Integer:
        return str(int(v))
    if v.is_number:
        return repr(float(v))      # rationals, sqrt(2), …: the grammar reads decimals
    return str(v)
