"""Matrix expressions of theory, evaluated on batches: each product one ``np.einsum``.

theory states some finite-width recursions as SymPy matrix expressions (sums of products of matrix symbols, their
transposes, the identity, traces and scalar coefficients: :func:`sigprop.theory.finite_width.residual_tangent_step`).
:class:`MatrixProgram` expands such an expression into a sum of products once, and evaluates it on arrays with a
leading batch axis: every matrix symbol an array ``[batch, rows, cols]``, a diagonal one (named in ``diagonal``)
its diagonal ``[batch, n]``, every scalar symbol a number or an array ``[batch]``. Each product is a chain of
batched matrix products (``np.matmul``, so BLAS) in the order that costs fewest multiplications for the arrays' shapes
(the matrix-chain dynamic programme; for a trace, also over the chain's rotations), diagonal factors applied as row or
column scalings: a product of thin factors (n × 2) and n × n matrices costs O(n²), not O(n³).

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

from functools import lru_cache

import numpy as np
import sympy as sp
from sympy.matrices.expressions import MatAdd, MatMul, MatPow, MatrixSymbol, Trace, Transpose
from sympy.matrices.expressions.special import Identity

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
            self.terms.append((self._scalar(coeff), self._named(factors)))
        for trace, (symbol, terms) in list(self.traces.items()):
            self.traces[trace] = (symbol, [(self._scalar(c), self._named(f)) for c, f in terms])

    def _named(self, factors):
        """factors as (name, transposed, diagonal) triples."""
        return [(str(m), t, str(m) in self.diagonal) for m, t in factors]

    def _placeholder(self, trace):
        if trace not in self.traces:
            self.traces[trace] = (sp.Symbol(f"_trace{len(self.traces)}"), _terms(trace.arg))
        return self.traces[trace][0]

    def _scalar(self, coeff):
        symbols = sorted(coeff.free_symbols, key=str)
        fn = sp.lambdify(symbols, coeff, modules=np)
        return fn, tuple(str(x) for x in symbols)

    def __call__(self, **arrays):
        values = dict(arrays)
        for symbol, terms in self.traces.values():
            values[str(symbol)] = _sum(self._product(c, f, values, trace=True) for c, f in terms)
        total = _sum(self._product(c, f, values) for c, f in self.terms)
        return total.dense(int(values["n"])) if isinstance(total, _Identity) else total

    def _product(self, coeff, factors, values, trace=False):
        fn, names = coeff
        scale = np.asarray(fn(*(values[x] for x in names)), dtype=float)
        if not factors:                        # a multiple of the identity (or, in a trace, of tr I = n)
            if self.shape is None and not trace:     # a scalar expression's term (traces already evaluated)
                return scale.copy()                  # owned: the sum adds into its first part
            if trace:
                return scale * float(values["n"])
            return _Identity(scale)
        if all(diagonal for _, _, diagonal in factors):
            return self._diagonal(scale, factors, values, trace)
        if trace and sum(not diagonal for _, _, diagonal in factors) == 1:     # tr(D₁XD₂) = Σ_i d₁ᵢd₂ᵢX_ii
            (matrix,) = (values[name] for name, _, diagonal in factors if not diagonal)
            diag = np.einsum("...ii->...i", matrix)
            for name, _, diagonal in factors:
                diag = diag * values[name] if diagonal else diag
            return scale * diag.sum(axis=-1)
        mats, pending = [], None
        for name, transposed, diagonal in factors:
            x = values[name]
            if diagonal:
                pending = x if pending is None else pending * x
                continue
            x = np.swapaxes(x, -1, -2) if transposed else x
            if pending is not None:                                   # D X: D scales X's rows
                x, pending = pending[..., :, None] * x, None
            mats.append(x)
        if pending is not None:                                       # X D: D scales X's columns (in a trace, by
            mats[-1] = mats[-1] * pending[..., None, :]               # cyclicity also D's place before the first)
        dims = tuple(m.shape[-2] for m in mats) + (mats[-1].shape[-1],)
        if trace and len(mats) == 1:
            return scale * np.trace(mats[0], axis1=-2, axis2=-1)
        if trace:
            rotation, split, plans = _trace_plan(dims)
            mats = mats[rotation:] + mats[:rotation]
            left, right = (_execute(plan, mats) for plan in plans)
            return scale * np.einsum("...ij,...ji->...", left, right)
        result = _execute(_chain_plan(dims), mats)
        scale = scale[..., None, None] if scale.ndim else scale
        if any(np.may_share_memory(result, values[name]) for name, _, _ in factors) or np.shape(scale) != () and \
                np.broadcast_shapes(result.shape, scale.shape) != result.shape:
            return result * scale                                     # an input (or its transpose), or a wider batch
        result *= scale                                               # a new array: scaled in place
        return result

    def _diagonal(self, scale, factors, values, trace):
        """A product of diagonal factors only: a diagonal matrix, or in a trace, the sum of its diagonal."""
        diag = np.prod(np.broadcast_arrays(*(values[name] for name, _, _ in factors)), axis=0)
        if trace:
            return scale * diag.sum(axis=-1)
        return (scale[..., None, None] if scale.ndim else scale) * (diag[..., :, None] * np.eye(diag.shape[-1]))


@lru_cache(maxsize=None)
def _chain_plan(dims):
    """The cheapest order of a chain of matrices of shapes (dims[i], dims[i+1]): a nested tuple of factor indices."""
    return _chain_table(dims)[1][0, len(dims) - 2]


@lru_cache(maxsize=None)
def _chain_table(dims):
    """Matrix-chain dynamic programme: costs[i, j] and plans[i, j] of the product of factors i..j."""
    k = len(dims) - 1
    costs, plans = {(i, i): 0 for i in range(k)}, {(i, i): i for i in range(k)}
    for length in range(2, k + 1):
        for i in range(k - length + 1):
            j = i + length - 1
            cost, m = min((costs[i, m] + costs[m + 1, j] + dims[i] * dims[m + 1] * dims[j + 1], m)
                          for m in range(i, j))
            costs[i, j], plans[i, j] = cost, (plans[i, m], plans[m + 1, j])
    return costs, plans


@lru_cache(maxsize=None)
def _trace_plan(dims):
    """tr of a chain (dims[0] == dims[-1]): (rotation, split, (left plan, right plan)) of least cost, the trace
    taken as Σ left ∘ rightᵀ over a rotation of the chain split in two."""
    k, best = len(dims) - 1, None
    for r in range(k):
        rotated = dims[r:-1] + dims[:r] + (dims[r],)
        costs, plans = _chain_table(rotated)
        for split in range(1, k):
            cost = costs[0, split - 1] + costs[split, k - 1] + rotated[0] * rotated[split]
            if best is None or cost < best[0]:
                best = (cost, r, split, (plans[0, split - 1], plans[split, k - 1]))
    return best[1:]


def _execute(plan, mats):
    if isinstance(plan, int):
        return mats[plan]
    return np.matmul(_execute(plan[0], mats), _execute(plan[1], mats))


class _Identity:
    """scale · I, kept as its scale until it meets a matrix of the sum (then added to that matrix's diagonal)."""

    def __init__(self, scale):
        self.scale = scale

    def dense(self, n):
        return self.scale[..., None, None] * np.eye(n) if self.scale.ndim else self.scale * np.eye(n)

    def add_to(self, total):
        """total + scale · I, in place where the shapes allow."""
        if np.broadcast_shapes(total.shape[:-2], self.scale.shape) != total.shape[:-2]:
            return total + self.dense(total.shape[-1])
        np.einsum("...ii->...i", total)[...] += self.scale[..., None] if self.scale.ndim else self.scale
        return total


def _sum(parts):
    """Σ parts, adding in place into the first (each part a new array, owned here; scaled identities added to the
    diagonal)."""
    total = None
    for part in parts:
        if total is None:
            total = part
        elif isinstance(part, _Identity) or isinstance(total, _Identity):
            if isinstance(part, _Identity) and isinstance(total, _Identity):
                total = _Identity(total.scale + part.scale)
            else:
                matrix, identity = (total, part) if isinstance(part, _Identity) else (part, total)
                total = identity.add_to(matrix)
        elif np.shape(part) != np.shape(total) or not isinstance(total, np.ndarray):
            total = total + part
        else:
            total += part
    return total
