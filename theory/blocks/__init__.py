"""Block kinds: one module each, registered in :data:`BLOCKS` (see :mod:`.base` for the protocol).

Adding a block kind is one new module here (a frozen dataclass deriving from :class:`Block`, decorated with
:func:`register_block`) imported below, plus its torch module in ``sigprop.validate.modules``.
"""
from .base import BLOCKS, Block, Param, compose, param, register_block
from .dense import Dense
from .residual import Residual

__all__ = ["BLOCKS", "Block", "Dense", "Param", "Residual", "compose", "param", "register_block"]
