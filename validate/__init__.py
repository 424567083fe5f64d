"""sigprop.validate: sampled torch networks built from the same description, measured and compared.

>>> from sigprop.theory import parse
>>> from sigprop.numerics import predict
>>> from sigprop.validate import measure, compare
>>> net = parse("5*dense(tanh,sw2=1.5)")
>>> rows = compare(predict(net), measure(net, width=64, seeds=3, probes=8))
>>> sorted({r["quantity"] for r in rows})[:3]
['c', 'grad_corr', 'log_gsc']
"""
from .build import SampledNetwork, build
from .compare import COLUMNS, agreement, compare
from .experiments import EXPERIMENTS, run_experiment
from .measure import Measurement, make_inputs, measure
from .model import measure_model
from .modules import MODULES, register_module, torch_function

__all__ = ["COLUMNS", "EXPERIMENTS", "MODULES", "Measurement", "SampledNetwork", "agreement", "build", "compare",
           "make_inputs", "measure", "measure_model", "register_module", "run_experiment", "torch_function"]
