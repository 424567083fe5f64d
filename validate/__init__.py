"""sigprop.validate: sampled torch networks built from the same description, measured and compared.

>>> from theory import parse
>>> from numerics import predict
>>> from validate import measure, compare
>>> net = parse("5*dense(tanh,sw2=1.5)")
>>> rows = compare(predict(net), measure(net, width=64, seeds=3, probes=8))
>>> sorted({r["quantity"] for r in rows})[:3]
['c', 'grad_corr', 'log_gsc']
"""
from .build import TORCH_ACTIVATIONS, SampledNetwork, build
from .compare import COLUMNS, agreement, compare
from .experiments import EXPERIMENTS, run_experiment
from .measure import Measurement, make_inputs, measure

__all__ = ["COLUMNS", "EXPERIMENTS", "Measurement", "SampledNetwork", "TORCH_ACTIVATIONS", "agreement", "build",
           "compare", "make_inputs", "measure", "run_experiment"]
