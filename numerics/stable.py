"""Theory's activation formulas rewritten to evaluate the same function without cancellation in float64.

An integrand such as bent identity's (√(x² + 1) − 1)/2 + x loses every digit of its even part when x² is below
the rounding unit: at q = 1e-8 its mean came out 1.2e-8 off (relative), and ELU's eˣ − 1 cost 8e-10 at the same
variance. These rewrites change the evaluation, not the function:

- a eᴬ − a → a expm1(A);
- a erf(A) + a → a erfc(−A) and a tanh(A) ± a → ±2a e^(±A − |A|)/(1 + e^(−2|A|)) (Φ, the logistic function and
  their kin in the tail where they vanish);
- log(1 + A) → log1p(A);
- a√(c + B) − a√c → a B/(√(c + B) + √c) for a constant c > 0 (the conjugate);
- a − a tanh²(y) → 4a e^(−2|y|)/(1 + e^(−2|y|))² (a sech²(y): the derivatives of tanh-like activations lose every
  digit in their tails otherwise);
- A sign(A) → |A|;
- a product eᴬ sinh B → −sign(B) e^(A+|B|) expm1(−2|B|)/2 and eᴬ cosh B → e^(A+|B|) (1 + e^(−2|B|))/2 (the
  kernels of sin and cos, e^(−(q₁+q₂)/2) sinh k: at q = 900 the two factors are 0 and inf in float64, while
  |k| ≤ (q₁+q₂)/2 keeps every exponent ≤ 0; expm1 keeps the digits of sinh at small k);
- a sum of powers, |·| and sign whose terms cancel exactly over their common denominator → that one fraction
  (bent identity's φ'' = 1/(2√(x² + 1)) − x²/(2(x² + 1)^(3/2)) is 1/(2(x² + 1)^(3/2)); as written it lost x²
  rounding units, which put E[φφ''] 1.6e-13 off (relative) at q = 1e8, as large as its error estimate).

Nothing else in the expression changes.

The reference path (mpmath, ``numerics.reference``) keeps theory's form, so the tests compare the two.

Example
-------
>>> import sympy as sp
>>> from sigprop.numerics.stable import stable_form
>>> x = sp.Symbol("x", real=True)
>>> stable_form(x + sp.sqrt(x**2 + 1) / 2 - sp.Rational(1, 2))
x**2/(2*(sqrt(x**2 + 1) + 1)) + x
>>> stable_form(1 / (2 * sp.sqrt(x**2 + 1)) - x**2 / (2 * (x**2 + 1) ** sp.Rational(3, 2)))
1/(2*(x**2 + 1)**(3/2))
>>> stable_form(sp.Piecewise((sp.exp(x) - 1, x < 0), (x, True)))
Piecewise((expm1(x), x < 0), (x, True))
>>> split_hyperbolic(sp.exp(-x) * sp.cosh(x))
(1 + exp(-2*Abs(x)))*exp(-x + Abs(x))/2
"""
from __future__ import annotations

import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p


def stable_form(expr):
    """``expr`` with the cancellations above rewritten away (the same function; see the module's docstring)."""
    expr = sp.sympify(expr).replace(lambda e: isinstance(e, sp.log) and _one_plus(e.args[0]) is not None,
                        lambda e: log1p(_one_plus(e.args[0])))
    expr = expr.replace(lambda e: e.is_Mul and _signed(e) is not None, _signed)
    return split_hyperbolic(expr.replace(lambda e: e.is_Add, lambda e: _combined(_pairs(e))))


def split_hyperbolic(expr):
    """``expr`` with each product of exponentials and one sinh or cosh written with exponents that stay ≤ 0 where
    the product is bounded (the same function; see the module's docstring)."""
    return sp.sympify(expr).replace(lambda e: e.is_Mul and _hyperbolic(e) is not None, _hyperbolic)


def _hyperbolic(mul):
    """eᴬ sinh B (or cosh B) times the other factors rewritten as in the module's docstring, else None."""
    exps = [f for f in mul.args if isinstance(f, sp.exp)]
    hyperbolic = [f for f in mul.args if isinstance(f, (sp.sinh, sp.cosh))]
    if not exps or len(hyperbolic) != 1:
        return None
    (h,) = hyperbolic
    rest = [f for f in mul.args if f is not h and not isinstance(f, sp.exp)]
    a, b = sp.Add(*(f.args[0] for f in exps)), h.args[0]
    if isinstance(h, sp.sinh):
        tail = -sp.sign(b) * expm1(-2 * sp.Abs(b))
    else:
        tail = 1 + sp.exp(-2 * sp.Abs(b))
    return sp.Mul(*rest) * sp.exp(a + sp.Abs(b)) * tail / 2


def _one_plus(arg):
    """A where ``arg`` is 1 + A, else None."""
    if arg.is_Add:
        const, rest = arg.as_coeff_Add()
        if const == 1 and rest != 0:
            return rest
    return None


def _signed(mul):
    """A product holding a factor A and a factor sign(A) (or a power of it) with the pair written |A|, else None."""
    factors = list(mul.args)
    for i, f in enumerate(factors):
        base, power = f.as_base_exp()
        if isinstance(base, sp.sign) and power.is_Integer and power > 0 and base.args[0] in factors:
            factors[i] = base ** (power - 1)
            factors[factors.index(base.args[0])] = sp.Abs(base.args[0])
            return sp.Mul(*factors)
    return None


def _combined(expr):
    """An algebraic sum (powers, |·| and sign only) over one common denominator where its terms cancel exactly
    there (the numerator, expanded, has fewer terms than the sum), else the sum as it was. Sums with other
    functions keep their form: over a common denominator, e^(−|x|) terms become e^(|x|) ones, which overflow."""
    if not expr.is_Add or any(not isinstance(f, (sp.Abs, sp.sign)) for f in expr.atoms(sp.Function)):
        return expr
    numerator, denominator = sp.fraction(sp.together(expr))
    if denominator == 1:
        return expr
    numerator = sp.expand(numerator)
    return numerator / denominator if len(sp.Add.make_args(numerator)) < len(expr.args) else expr


def _pairs(add):
    """An Add with each a eᴬ − a pair written a expm1(A), each a erf(A) + a pair a erfc(−A), each a tanh(A) ± a
    pair ±2a e^(±A − |A|)/(1 + e^(−2|A|)), each a√(c + B) − a√c pair a B/(√(c + B) + √c) and each a − a tanh²(y)
    pair a sech²(y)."""
    terms = list(add.args)
    for term in list(terms):
        a, f = term.as_coeff_Mul()
        if isinstance(f, sp.exp):
            partner, stable = -a, a * expm1(f.args[0])
        elif isinstance(f, sp.erf):
            # held unevaluated: SymPy writes erfc(−A) as 2 − erfc(A) (the cancellation) whenever it rebuilds it
            partner, stable = a, a * sp.erfc(sp.UnevaluatedExpr(-f.args[0]))
        elif isinstance(f, sp.tanh) and (a in terms or -a in terms):
            partner = a if a in terms else -a
            y = f.args[0] if partner == a else -f.args[0]
            stable = 2 * partner * sp.exp(y - sp.Abs(y)) / (1 + sp.exp(-2 * sp.Abs(y)))
        elif isinstance(f, sp.Pow) and f.exp == 2 and isinstance(f.base, sp.tanh):
            partner, stable = -a, -a * _sech_squared(f.base.args[0])
        elif isinstance(f, sp.Pow) and f.exp == sp.S.Half and f.base.as_coeff_Add()[0].is_positive:
            c, b = f.base.as_coeff_Add()
            partner, stable = -a * sp.sqrt(c), a * b / (f + sp.sqrt(c))
        else:
            continue
        if term in terms and partner in terms and partner != term:
            terms.remove(term)
            terms.remove(partner)
            terms.append(stable)
    return sp.Add(*terms) if len(terms) != len(add.args) else add


def _sech_squared(y):
    """sech²(y) as 4e^(−2|y|)/(1 + e^(−2|y|))²: no cancellation, no overflow."""
    e = sp.exp(-2 * sp.Abs(y))
    return 4 * e / (1 + e) ** 2
