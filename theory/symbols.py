"""The symbols sigprop's formulas are written in.

Variances and second moments are positive, correlations and covariances real. Per-input quantities carry
the input's name as a subscript (``p_a``, ``q_b``); cross-input ones both (``p_ab``).

- ``p``: mean square ‖x‖²/n of a block's input representation; ``m``: its mean over units Σᵢxᵢ/n.
- ``q``: mean square of a dense layer's pre-activation h = Wx + b.
- ``sigma_w2``, ``sigma_b2``: weight and bias variances σ_w², σ_b² (W_ij ~ N(0, σ_w²/n), b_i ~ N(0, σ_b²)).
- ``alpha``, ``beta``: skip and branch weights of a residual block y = αx + βF(x).
- ``delta``: gradient mean square ‖g‖²/n of the backward probe g = Jᵀv; ``G_ab`` its cross-input version,
  ``G_aa``, ``G_bb`` the per-input ones where a block mixes them (batch normalization).
"""
import sympy as sp
from sympy.printing.pretty.stringpict import prettyForm


class Symbol(sp.Symbol):
    """A SymPy symbol whose name may hold ``^2``: LaTeX renders it as a power, pretty printing as ``²``."""

    def _pretty(self, printer):
        pretty = sp.pretty(sp.Symbol(self.name.replace("^2", "")), use_unicode=printer._use_unicode)
        return prettyForm(pretty + ("²" if self.name.endswith("^2") else ""))

    def _sympystr(self, printer):
        return self.name.replace("^2", "2")


p, q = sp.symbols("p q", positive=True)
m = sp.Symbol("m", real=True)
p_a, p_b, q_a, q_b = sp.symbols("p_a p_b q_a q_b", positive=True)
p_ab, q_ab = sp.symbols("p_ab q_ab", real=True)
m_a, m_b = sp.symbols("m_a m_b", real=True)
c = sp.Symbol("c", real=True)
k = sp.Symbol("k", real=True)
q1, q2 = sp.symbols("q_1 q_2", positive=True)
sigma_w2 = Symbol("sigma_w^2", positive=True)
sigma_b2 = Symbol("sigma_b^2", nonnegative=True)
alpha, beta = sp.symbols("alpha beta", real=True)
delta, G_ab = sp.Symbol("delta", positive=True), sp.Symbol("G_ab", real=True)
G_aa, G_bb = sp.symbols("G_aa G_bb", positive=True)
#: the activation's argument
x = sp.Symbol("x", real=True)
