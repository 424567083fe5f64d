"""Gaussian densities and the distribution function, symbolic: the one place sigprop writes them.

Example
-------
>>> from sigprop.theory.gaussian import normal_density
>>> normal_density(0, 1)
sqrt(2)/(2*sqrt(pi))
"""
from __future__ import annotations

import sympy as sp

from .determinant import covariance_determinant


def normal_cdf(x):
    """Φ(x) = erfc(−x/√2)/2, the standard normal distribution function (erfc keeps the lower tail's digits)."""
    return sp.erfc(-x / sp.sqrt(2)) / 2


def normal_pdf(x):
    """φ(x) = exp(−x²/2)/√(2π), the standard normal density."""
    return sp.exp(-x**2 / 2) / sp.sqrt(2 * sp.pi)


def normal_density(t, q):
    """N(t; 0, q), the density of u ~ N(0, q) at t: φ(t/√q)/√q."""
    return normal_pdf(t / sp.sqrt(q)) / sp.sqrt(q)


def bivariate_normal_density(t1, t2, q1, q2, k):
    """The density of (u, v) ~ N(0, [[q₁, k], [k, q₂]]) at (t₁, t₂), in terms of the covariance determinant."""
    det = covariance_determinant(q1, q2, k)
    return sp.exp(-(q2 * t1**2 - 2 * k * t1 * t2 + q1 * t2**2) / (2 * det)) / (2 * sp.pi * sp.sqrt(det))
