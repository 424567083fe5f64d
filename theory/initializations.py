"""Initialization presets by name: the weight variance σ_w² each implies for a dense layer.

sigprop draws W_ij ~ N(0, σ_w²/n_in); a preset fixes σ_w² from the layer's fan-in n_in and fan-out
n_out = r·n_in (r: the layer's ``width``). Only Glorot's depends on r.

Example
-------
>>> from sigprop.theory.initializations import INITIALIZATIONS
>>> INITIALIZATIONS["glorot"].sw2(3)
1/2
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import sympy as sp


@dataclass(frozen=True)
class Initialization:
    """A named preset: ``sw2(r)`` is σ_w² for width ratio r = n_out/n_in; ``variance`` says Var(W_ij)."""

    name: str
    sw2: Callable
    variance: str
    source: str


#: name -> Initialization (the grammar's ``dense(…, init=NAME)``)
INITIALIZATIONS: dict[str, Initialization] = {i.name: i for i in (
    Initialization("he", lambda r: sp.Integer(2), "2/n_in",
                   "He et al. 2015, 'Delving deep into rectifiers', eq. 10 (ReLU, fan-in mode)"),
    Initialization("glorot", lambda r: 2 / (1 + sp.sympify(r)), "2/(n_in + n_out)",
                   "Glorot & Bengio 2010, eq. 16 (normal form of 'Xavier' initialization)"),
    Initialization("lecun", lambda r: sp.Integer(1), "1/n_in",
                   "LeCun et al. 1998, 'Efficient BackProp', section 4.6"),
    Initialization("selu", lambda r: sp.Integer(1), "1/n_in",
                   "Klambauer et al. 2017, 'Self-normalizing neural networks' (LeCun normal, for SeLU)"),
)}
