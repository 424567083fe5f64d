"""Block kinds: one module each, registered in :data:`BLOCKS` (see :mod:`.base` for the protocol).

Adding a block kind is one new module here (a frozen dataclass deriving from :class:`Block`, decorated with
:func:`register_block`) imported below, plus its torch module in ``sigprop.validate.modules``.
"""
from .base import BLOCKS, Block, register_block
from .sequence import check_gaussian_inputs, compose
from .params import Param, param
from .dense import Dense
from .act import Act
from .residual import Residual
from .dropout import Dropout
from .layernorm import LayerNorm
from .batchnorm import BatchNorm

__all__ = ["Act", "BLOCKS", "BatchNorm", "Block", "Dense", "Dropout", "LayerNorm", "Param", "Residual", "check_gaussian_inputs", "compose", "param",
           "register_block"]
