"""sigprop.numerics: fast, error-controlled numbers from theory's formulas, iterated over depth.

>>> from theory import parse
>>> from numerics import predict
>>> pred = predict(parse("50*dense(tanh,sw2=2.5,sb2=0.05)"))
>>> round(float(pred.values["log_gsc"][0]), 4)     # log GSC(0, 50): chaotic tanh explodes
3.2951
"""
from .compile import compile_block
from .iterate import OutOfRangeError, Prediction, predict
from .quadrature import expect1, expect2
from .results import QUANTITIES

__all__ = ["OutOfRangeError", "Prediction", "QUANTITIES", "compile_block", "expect1", "expect2", "predict"]
