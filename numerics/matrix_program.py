"""Matrix expressions of theory, evaluated on batches: each product one ``np.einsum``.

theory states some finite-width recursions as SymPy matrix expressions (sums of products of matrix symbols, their
transposes, the identity, traces and scalar coefficients: :func:`sigprop.theory.finite_width.residual_tangent_step`).
:class:`MatrixProgram` expands such an expression into a sum of products once, and evaluates it on arrays with a
leading batch axis: every matrix symbol an array ``[batch, rows, cols]``, a diagonal one (named in ``diagonal``)
its diagonal ``[batch, n]``, every scalar symbol a number or an array ``[batch]``. Each product is one einsum whose
contraction order NumPy chooses, so a product of thin factors (n × 2) and n × n matrices costs O(n²), not O(n³).

Example
-------
>>> import numpy as np, sympy as sp
>>> n = sp.Symbol("n", positive=True, integer=True)
>>> X, D = sp.MatrixSymbol("X", n, n), sp.MatrixSymbol("D", n, n)
>>> program = MatrixProgram(2 * X.T * D * X + sp.Trace(D) * sp.Identity(n), diagonal=(D,))
>>> x = np.arange(4.0).reshape(1, 2, 2)
>>> program(X=x, D=np.array([[1.0, 2.0]]), n=2)[0].tolist()        # 2XᵀDX + tr(D) I
[[19.0, 24.0], [24.0, 41.0]]
"""
from __future__ import annotations

import string

import numpy as np
import sympy as sp
from sympy.matrices.expressions import MatAdd, MatMul, MatPow, MatrixSymbol, Trace, Transpose
from sympy.matrices.expressions.special import Identity

_LETTERS = string.ascii_letters.replace("z", "")       # z: the batch axis


def _terms(expr) -> list:
    """``expr`` as Σ coefficient · product: a list of (scalar coefficient, [factors]), each factor a matrix symbol,
    its transpose (``(symbol, True)``) or the identity (dropped from products)."""
    if isinstance(expr, MatAdd):
        return [t for arg in expr.args for t in _terms(arg)]
    if isinstance(expr, MatMul):
        out = [(sp.S.One, [])]
        for arg in expr.args:
            if not getattr(arg, "is_Matrix", False):
                out = [(c * arg, f) for c, f in out]
            else:
                out = [(c * c2, f + f2) for c, f in out for c2, f2 in _terms(arg)]
        return out
    if isinstance(expr, MatPow):
        base, power = expr.args
        if not (power.is_Integer and power > 0):
            raise ValueError(f"{expr}: only positive integer powers of matrices are evaluated")
        return _terms(MatMul(*[base] * int(power)))
    if isinstance(expr, Transpose):
        return [(c, [(m, not t) for m, t in reversed(f)]) for c, f in _terms(expr.arg)]
    if isinstance(expr, Identity):
        return [(sp.S.One, [])]
    if isinstance(expr, MatrixSymbol):
        return [(sp.S.One, [(expr, False)])]
    if not getattr(expr, "is_Matrix", False):
        return [(expr, [])]
    raise ValueError(f"{expr} ({type(expr).__name__}) is not a sum of products of matrix symbols")


class MatrixProgram:
    """A matrix (or, with a trace at the top, scalar) SymPy expression compiled for batched arrays; call it with
    one keyword argument per symbol, by name."""

    def __init__(self, expr, diagonal=()):
        self.diagonal = {str(d) for d in diagonal}
        self.shape = expr.shape if getattr(expr, "is_Matrix", False) else None
        self.traces = {}                       # Trace(...) → (placeholder, its terms)
        self.terms = []
        for coeff, factors in _terms(expr):
            coeff = coeff.replace(lambda e: isinstance(e, Trace), self._placeholder)
            self.terms.append((self._scalar(coeff), factors))
        for trace, (symbol, terms) in list(self.traces.items()):
            self.traces[trace] = (symbol, [(self._scalar(c), f) for c, f in terms])

    def _placeholder(self, trace):
        if trace not in self.traces:
            self.traces[trace] = (sp.Symbol(f"_trace{len(self.traces)}"), _terms(trace.arg))
        return self.traces[trace][0]

    def _scalar(self, coeff):
        symbols = sorted(coeff.free_symbols, key=str)
        fn = sp.lambdify(symbols, coeff, modules="numpy")
        return fn, tuple(str(x) for x in symbols)

    def __call__(self, **arrays):
        values = dict(arrays)
        for symbol, terms in self.traces.values():
            values[str(symbol)] = _sum(self._product(c, f, values, trace=True) for c, f in terms)
        return _sum(self._product(c, f, values) for c, f in self.terms)

    def _product(self, coeff, factors, values, trace=False):
        fn, names = coeff
        scale = np.asarray(fn(*(values[x] for x in names)), dtype=float)
        if not factors:                        # a multiple of the identity (or, in a trace, of tr I = n)
            if self.shape is None and not trace:     # a scalar expression's term (traces already evaluated)
                return scale
            if trace:
                return scale * float(values["n"])
            n = int(values["n"])
            return scale[..., None, None] * np.eye(n) if scale.ndim else scale * np.eye(n)
        subscripts, operands = [], []
        first = current = _LETTERS[0]
        used = 1
        for matrix, transposed in factors:
            name = str(matrix)
            if name in self.diagonal:
                subscripts.append("z" + current)
                operands.append(values[name])
                continue
            nxt = _LETTERS[used]
            used += 1
            subscripts.append("z" + (nxt + current if transposed else current + nxt))
            operands.append(values[name])
            current = nxt
        if current == first and not trace:     # diagonal factors only: a diagonal matrix
            diag = np.einsum(",".join(subscripts) + "->z" + first, *operands)
            return (scale[..., None, None] if scale.ndim else scale) * (diag[..., :, None] * np.eye(diag.shape[-1]))
        if trace:
            subscripts = [s.replace(current, first) for s in subscripts]
            result = np.einsum(",".join(subscripts) + "->z", *operands, optimize=True)
            return scale * result
        result = np.einsum(",".join(subscripts) + "->z" + first + current, *operands, optimize=True)
        if any(np.may_share_memory(result, x) for x in operands):     # one factor: einsum returns a view of it
            result = result.copy()
        result *= scale[..., None, None] if scale.ndim else scale
        return result


def _sum(parts):
    """Σ parts, adding in place into the first (each part a new array, owned here)."""
    total = None
    for part in parts:
        if total is None or np.shape(part) != np.shape(total) or not isinstance(total, np.ndarray):
            total = part if total is None else total + part
        else:
            total += part
    return total
