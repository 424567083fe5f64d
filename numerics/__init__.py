"""sigprop.numerics: fast, error-controlled numbers from theory's formulas, iterated over depth.

>>> from sigprop.theory import parse
>>> from sigprop.numerics import predict
>>> pred = predict(parse("50*dense(tanh,sw2=2.5,sb2=0.05)"))
>>> round(float(pred.values["log_gsc"][0]), 4)     # log GSC(0, 50): chaotic tanh explodes
3.2951
"""
from .compile import Step, compile_block
from .expectations import expectation
from .grid import GridPrediction, predict_grid
from .iterate import OutOfRangeError, predict
from .prediction import Prediction
from .quadrature import expect1, expect2

__all__ = ["GridPrediction", "OutOfRangeError", "Prediction", "Step", "compile_block", "expect1", "expect2",
           "expectation", "predict", "predict_grid"]
