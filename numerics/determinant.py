"""q₁q₂ − k² without cancellation, for the closed forms and quadrature rules that need it near c = ±1.

Both products are formed exactly as a sum of two floats (Dekker's two-product with Veltkamp's splitting),
so their difference is accurate to a few units in its own last place even when it is 10⁻¹⁵ of either
product. Works on floats and numpy arrays alike.

Example
-------
>>> q, c = 3.0, 1 - 1e-15
>>> k = c * q
>>> rel = abs(covariance_determinant(q, q, k) - (q * q - k * k)) / covariance_determinant(q, q, k)
>>> bool(rel > 0.01)      # the naive difference is wrong in the second digit here
True
"""
from __future__ import annotations

import numpy as np

_SPLIT = 134217729.0   # 2**27 + 1


def _split(a):
    c = _SPLIT * a
    hi = c - (c - a)
    return hi, a - hi


def two_product(a, b):
    """(p, e) with p = fl(a·b) and p + e = a·b exactly (barring over/underflow)."""
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def covariance_determinant(q1, q2, k):
    """q₁q₂ − k², accurate to a few ulps of the result, clipped at 0 (rounding of k can overshoot √(q₁q₂))."""
    with np.errstate(invalid="ignore", over="ignore"):
        p, ep = two_product(q1, q2)
        s, es = two_product(k, k)
        d = (p - s) + (ep - es)
        d = np.where(np.isfinite(ep) & np.isfinite(es), d, p - s)   # splitting overflows above ~1e299
    return np.maximum(d, 0.0) if np.ndim(d) else max(float(d), 0.0)
