"""sigprop.theory: exact mean-field maps of deep networks, derived with SymPy.

>>> from theory import Dense, Residual, relu, tanh, laws
>>> Dense(relu, sw2=2).gsc_factor().rhs
1
"""
from . import laws, symbols
from .activations import ACTIVATIONS, Activation, erf, get_activation, linear, relu, tanh
from .blocks import (Block, BlockMaps, Dense, Network, PairState, Residual, as_network, compose,
                     gradient_correlation_factor, gsc_squared)
from .formula import Formula
from .parse import ArchitectureError, parse

__all__ = ["ACTIVATIONS", "Activation", "ArchitectureError", "Block", "BlockMaps", "Dense", "Formula", "Network",
           "PairState", "Residual", "as_network", "compose", "erf", "gradient_correlation_factor", "gsc_squared", "get_activation", "laws", "linear", "parse",
           "relu", "symbols", "tanh"]
