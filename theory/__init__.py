"""sigprop.theory: exact mean-field maps of deep networks, derived with SymPy (imports neither numpy nor torch).

>>> from sigprop.theory import Dense, Residual, relu, tanh, laws
>>> Dense(relu, sw2=2).gsc_factor().rhs
1
"""
from . import balduzzi, laws, signs, spectrum, symbols
from .activations import (ACTIVATIONS, FAMILIES, Activation, ActivationFamily, FamilyParam, activation,
                          get_activation, register_activation, register_family)
from .blocks import BLOCKS, Act, BatchNorm, Block, Dense, Dropout, LayerNorm, Param, Residual, compose, param, register_block
from .catalog import erf, linear, relu, tanh
from .factors import gradient_correlation_factor, gsc_squared
from .formula import Formula
from .initializations import INITIALIZATIONS, Initialization
from .network import MAX_DEPTH, Network, as_network
from .parse import ArchitectureError, grammar, parse, parse_activation
from .state import Backward, BlockMaps, PairState, PreActivation, TangentKernel

__all__ = ["ACTIVATIONS", "balduzzi", "signs", "spectrum", "FAMILIES", "INITIALIZATIONS", "Initialization", "Act", "Activation", "ActivationFamily", "FamilyParam", "ArchitectureError", "BLOCKS", "Backward", "BatchNorm", "Block", "BlockMaps", "Dense", "Dropout", "LayerNorm",
           "Formula", "MAX_DEPTH", "Network", "PairState", "Param", "PreActivation", "Residual", "TangentKernel", "activation",
           "as_network", "compose", "erf", "get_activation", "gradient_correlation_factor", "grammar",
           "gsc_squared", "laws", "linear", "param", "parse", "parse_activation", "register_activation", "register_family", "register_block", "relu",
           "symbols", "tanh"]
