"""lambdify's modules (numerics.expectations.modules): SciPy only where an expression calls a function numpy
lacks, so a cold start that needs only numpy does not import scipy.special; and an expression that needs SciPy
still gets it (its values against the standard library's)."""
from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import sympy as sp

from sigprop.numerics.expectations import NUMERIC_FUNCTIONS, modules

x = sp.Symbol("x", real=True)


def test_scipy_only_where_numpy_lacks_a_function():
    bound = sp.Function("E_tanh_square")
    assert "scipy" not in modules([sp.acos(x) + sp.sqrt(x) * sp.exp(x)], NUMERIC_FUNCTIONS)
    assert "scipy" not in modules([bound(x) + sp.Max(0, x)], {"E_tanh_square": abs})
    assert "scipy" in modules([sp.erf(x) + x], NUMERIC_FUNCTIONS)
    assert "scipy" in modules([sp.acos(x), sp.gamma(x)])


def test_an_expression_that_needs_scipy_still_evaluates():
    expr = sp.erf(x) * sp.gamma(x)
    fn = sp.lambdify(x, expr, modules=modules([expr], NUMERIC_FUNCTIONS))
    points = np.array([0.3, 1.7, 4.2])
    assert np.allclose(fn(points), [math.erf(t) * math.gamma(t) for t in points], rtol=1e-15, atol=0)


def test_a_relu_kernel_from_a_cold_start_imports_neither_scipy_special_nor_numpys_lazy_submodules():
    code = ("import sys, numpy as np\n"
            "from sigprop.theory import parse\n"
            "from sigprop.numerics.kernels import kernels\n"
            "kernels(parse('3*dense(relu,sw2=2,sb2=0.1),dense(linear)'), np.eye(4), ntk=True)\n"
            "print('scipy.special' in sys.modules, 'numpy.f2py' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False", out.stderr
