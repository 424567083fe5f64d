"""An activation's Gaussian expectations: one method per kind, and where each one comes from.

:class:`~sigprop.theory.activations.Activation` gets these methods from :class:`ActivationExpectations`. Each
returns an explicit expression where one is known — registered with a citation, or derived by SymPy: by oddness
or evenness, on the diagonal of a closed-form kernel, by Price's theorem (∂E[φ(u)φ(v)]/∂k = E[φ'(u)φ'(v)],
∂E[φ'(u)φ'(v)]/∂k = E[φ''(u)φ''(v)], Price 1958), by exact integration (piecewise-polynomial φ, polynomials,
Gaussian-type integrands), or from the Dirac deltas φ'' has at the kinks — and otherwise an unevaluated
expectation that ``numerics`` integrates by quadrature. :meth:`~ActivationExpectations.expectation_sources` says
which, per kind.

Example
-------
>>> from sigprop.theory import relu, erf
>>> from sigprop.theory.symbols import q, q1, q2, k
>>> relu.ddkernel(q1, q2, k)
1/(2*pi*sqrt((q_1*q_2 - k**2)))
>>> relu.curvature(q), relu.dquartic(q)
(0, 1/2)
>>> erf.dquartic(q)
16/(pi**2*sqrt(8*q + 1))
"""
from __future__ import annotations

import sympy as sp

from .determinant import covariance_determinant
from .expectations import (ARITY, KINDS, METHOD, GaussianExpectation, UndefinedExpectation, expectation,
                           integrate_1d, integrate_2d, try_integrate_1d)
from .piecewise import is_piecewise_polynomial
from .second_derivative import curvature_deltas, delta_pairs
from .symbols import x


class ActivationExpectations:
    """The expectation kinds of :data:`~sigprop.theory.expectations.KINDS` as methods of an activation.

    Mixed into ``Activation``, whose ``phi``, ``dphi``, ``ddphi_smooth``, ``dphi_jumps``, ``kinks``, the
    closed forms it was given, its parity and continuity, and its ``_cache`` these read.
    """

    # -- where each expectation comes from ---------------------------------------------------------
    @property
    def has_closed_forms(self) -> bool:
        """Whether every expectation kind is an explicit expression (no quadrature needed); kinds undefined for
        this φ (φ'' of a step) do not count against it."""
        return not any(self.expectation_sources()[k].startswith("numerical") for k in KINDS)

    def expectation_sources(self) -> dict:
        """Kind → how that expectation is obtained: ``registered: <citation>``, ``derived: <how>`` (SymPy),
        ``numerical: <what>`` (an unevaluated expectation that numerics integrates with error control), or
        ``undefined: <why>`` (φ'' of a φ that jumps)."""
        if "sources" not in self._cache:
            out = {}
            for kind in KINDS:
                method = getattr(self, METHOD[kind])
                args = (sp.Symbol("_q", positive=True),) if ARITY[kind] == 1 else (
                    sp.Symbol("_q1", positive=True), sp.Symbol("_q2", positive=True), sp.Symbol("_k", real=True))
                try:
                    expr = method(*args)
                except UndefinedExpectation as exc:
                    out[kind] = f"undefined: {exc.reason}"
                    continue
                pending = sorted({str(e.func(*sp.symbols("q" if len(e.args) == 1 else "q1 q2 k", seq=True)))
                                  for e in expr.atoms(GaussianExpectation)})
                out[kind] = (f"numerical: Gaussian quadrature of {', '.join(pending)}, kinks as panel edges"
                             if pending else self._how(kind))
            self._cache["sources"] = out
        return self._cache["sources"]

    def _how(self, kind: str) -> str:
        if kind in ("curvature", "dquartic", "ddkernel"):
            return self._how_beyond(kind)
        if kind == "mean" and self.is_odd:
            return "derived: phi is odd, so E[phi] = 0"
        if kind == "xmean" and self.is_even:
            return "derived: phi is even, so E[u phi(u)] = 0"
        if kind == "xmean":
            return "derived: exact Gaussian integral of u phi(u) (SymPy)"
        if kind == "mean" and self.mean_closed_form is not None:
            return f"registered: {self.mean_source}"
        if kind == "dkernel" and self.dkernel_closed_form is not None:
            return f"registered: {self.dkernel_source}"
        if kind == "kernel" and self.kernel_closed_form is not None:
            return f"registered: {self.kernel_source}"
        if kind == "dsquare" and self.dkernel_closed_form is not None:
            return "derived: the registered dkernel's diagonal"
        if kind in ("square", "dsquare") and self.kernel_closed_form is not None and (
                kind == "square" or self.is_continuous):
            return "derived: the kernel's diagonal" + (" after Price's theorem" if kind == "dsquare" else "")
        if kind == "dkernel" and self.is_continuous and (self.kernel_closed_form is not None or self._polynomial):
            return "derived: Price's theorem, dE[phi(u)phi(v)]/dk"
        if kind in ("dsquare", "dkernel") and self.dphi == 0:
            return "derived: phi' = 0 almost everywhere"
        return "derived: exact Gaussian integral (SymPy)"

    def _how_beyond(self, kind: str) -> str:
        deltas = "; the kinks' Dirac deltas in phi''" if self.dphi_jumps else ""
        if kind == "dquartic":
            return ("derived: phi' = 0 almost everywhere" if self.dphi == 0
                    else "derived: exact Gaussian integral of phi'^4 (SymPy)")
        if self._ddphi_vanishes:
            return "derived: phi'' = 0"
        if kind == "curvature":
            return ("derived: phi'' is Dirac deltas at the kinks, E[phi phi''] = sum J phi(t) N(t; 0, q)"
                    if self.ddphi_smooth == 0 else f"derived: exact Gaussian integral of phi phi'' (SymPy){deltas}")
        if self._price_applies:
            return "derived: Price's theorem, dE[phi'(u)phi'(v)]/dk"
        return "derived: phi'' is Dirac deltas at the kinks, E[phi''(u)phi''(v)] = sum J J' p(t, t')"

    @property
    def source(self) -> str:
        """Where this activation's Gaussian expectations come from (one line; per kind:
        :meth:`expectation_sources`)."""
        if self.kernel_closed_form is not None:
            return self.kernel_source
        if self._polynomial:
            return "exact Gaussian integrals (SymPy)"
        if self._piecewise_polynomial:
            return "1-D expectations: exact Gaussian integrals (SymPy); kernels: Gaussian quadrature in numerics"
        return "no closed form: Gaussian quadrature in numerics"

    def _unevaluated(self, kind, *args):
        return expectation(self, kind)(*args)

    # -- the five map expectations -----------------------------------------------------------------
    def mean(self, q: sp.Expr) -> sp.Expr:
        """E[φ(√q z)]."""
        q, = _checked(q)
        if self.is_odd:
            return sp.Integer(0)
        if self.mean_closed_form is not None:
            return self.mean_closed_form(q)
        if self._piecewise_polynomial:
            return self._derived("mean", q, lambda s: integrate_1d(self.phi, s))
        return self._unevaluated("mean", q)

    def second_moment(self, q: sp.Expr) -> sp.Expr:
        """E[φ(√q z)²]: the length map's expectation."""
        q, = _checked(q)
        if self.kernel_closed_form is not None:
            return self._derived("square", q, lambda s: sp.simplify(self.kernel(s, s, s)))
        if self._piecewise_polynomial:
            return self._derived("square", q, lambda s: integrate_1d(self.phi**2, s))
        return self._unevaluated("square", q)

    def dsecond_moment(self, q: sp.Expr) -> sp.Expr:
        """E[φ'(√q z)²]: χ₁ = σ_w² E[φ'²] (Poole et al. 2016)."""
        q, = _checked(q)
        if self.kernel_closed_form is not None and self.is_continuous:
            return self._derived("dsquare", q, lambda s: sp.simplify(self.dkernel(s, s, s)))
        if self._piecewise_polynomial:
            return self._derived("dsquare", q, lambda s: integrate_1d(self.dphi**2, s))
        return self._unevaluated("dsquare", q)

    def kernel(self, q1: sp.Expr, q2: sp.Expr, k: sp.Expr) -> sp.Expr:
        """E[φ(u)φ(v)], (u, v) ~ N(0, [[q₁, k], [k, q₂]])."""
        q1, q2, k = _checked(q1, q2, k)
        if self.kernel_closed_form is not None:
            return self.kernel_closed_form(q1, q2, k)
        if self._polynomial:
            return self._derived("kernel", (q1, q2, k), lambda s: integrate_2d(self.phi, self.phi, *s))
        return self._unevaluated("kernel", q1, q2, k)

    def dkernel(self, q1: sp.Expr, q2: sp.Expr, k: sp.Expr) -> sp.Expr:
        """E[φ'(u)φ'(v)] = ∂E[φ(u)φ(v)]/∂k (Price's theorem, for continuous φ)."""
        q1, q2, k = _checked(q1, q2, k)
        if self.dkernel_closed_form is not None:
            return self.dkernel_closed_form(q1, q2, k)
        if self.is_continuous and (self.kernel_closed_form is not None or self._polynomial):
            return self._derived("dkernel", (q1, q2, k), lambda s: self._price("kernel", *s))
        if self.dphi == 0:
            return sp.Integer(0)
        if self.dphi.is_polynomial(x):
            return self._derived("dkernel", (q1, q2, k), lambda s: integrate_2d(self.dphi, self.dphi, *s))
        return self._unevaluated("dkernel", q1, q2, k)

    # -- beyond the maps ---------------------------------------------------------------------------
    def xmean(self, q: sp.Expr) -> sp.Expr:
        """E[u φ(u)], u ~ N(0, q): the cross moment ⟨x, φ(x)⟩/n of a residual y = x + φ(x) on Gaussian x; by
        Stein's lemma q E[φ'(u)] for continuous φ (Stein 1981), computed directly so jumps count."""
        q, = _checked(q)
        if self.is_even:
            return sp.Integer(0)
        if self._piecewise_polynomial:
            return self._derived("xmean", q, lambda s: integrate_1d(x * self.phi, s))
        # Gaussian-type integrands (erf, sin, cos, exp, GELU) in about a second; others straight to quadrature
        value = self._derived("xmean", q, lambda s: try_integrate_1d(x * self.phi, s) if self.derive else None)
        return self._unevaluated("xmean", q) if value is None else value

    def curvature(self, q: sp.Expr) -> sp.Expr:
        """E[φ(u) φ''(u)], u ~ N(0, q), φ'' the distributional second derivative: a kink t where φ' jumps by J
        adds J φ(t) N(t; 0, q). With it d/dq E[φ²] = E[φ'²] + E[φφ''] exactly (Gaussian integration by parts),
        so the length map's slope at its fixed point is χ_q = σ_w² (E[φ'²] + E[φφ'']) (Schoenholz et al. 2017,
        depth scale ξ_q). Raises :class:`UndefinedExpectation` for φ that jumps (step, sign)."""
        q, = _checked(q)
        self._require_continuous("curvature", "phi times delta' has no value at a jump of phi, and d/dq E[phi^2] = "
                                 "E[phi'^2] + E[phi phi''] fails there")
        if self._ddphi_vanishes:
            return sp.Integer(0)
        integrand = self.phi * self.ddphi_smooth
        if self.derive and is_piecewise_polynomial(integrand):
            return self._derived("curvature", q, lambda s: sp.simplify(
                integrate_1d(integrand, s) + curvature_deltas(self.phi, self.dphi_jumps, s)))
        value = self._derived("curvature", q, lambda s: _or_none(
            try_integrate_1d(integrand, s) if self.derive else None,
            lambda v: sp.simplify(v + curvature_deltas(self.phi, self.dphi_jumps, s))))
        return self._unevaluated("curvature", q) if value is None else value

    def dquartic(self, q: sp.Expr) -> sp.Expr:
        """E[φ'(u)⁴], u ~ N(0, q), φ' almost everywhere: with E[φ'²] the first two moments of φ'(u)², which set
        the mean and the spread of the squared singular values of a deep network's input–output Jacobian
        (Pennington, Schoenholz & Ganguli 2017, 2018: moments of the Jacobian spectrum)."""
        q, = _checked(q)
        if self.dphi == 0:
            return sp.Integer(0)
        integrand = self.dphi**4
        if self.derive and is_piecewise_polynomial(integrand):
            return self._derived("dquartic", q, lambda s: integrate_1d(integrand, s))
        value = self._derived("dquartic", q, lambda s: try_integrate_1d(integrand, s) if self.derive else None)
        return self._unevaluated("dquartic", q) if value is None else value

    def ddkernel(self, q1: sp.Expr, q2: sp.Expr, k: sp.Expr) -> sp.Expr:
        """E[φ''(u)φ''(v)], (u, v) ~ N(0, [[q₁, k], [k, q₂]]), φ'' distributional: ∂E[φ'(u)φ'(v)]/∂k by Price's
        theorem (Price 1958), the curvature of the correlation map (at q₁ = q₂ = q*, ∂²c'/∂c² = σ_w² q* E[φ''φ''],
        Poole et al. 2016); its diagonal is their χ₂ = σ_w² E[φ''²] for smooth φ. relu: 1/(2π√(q₁q₂ − k²)), the density
        at (0, 0). Raises :class:`UndefinedExpectation` for φ that jumps (step, sign)."""
        q1, q2, k = _checked(q1, q2, k)
        self._require_continuous("ddkernel", "the almost-everywhere phi' that dkernel uses drops the jump, so Price's "
                                 "theorem does not lead from it to E[phi''(u)phi''(v)]")
        if self._ddphi_vanishes:
            return sp.Integer(0)
        if self._price_applies:
            return self._derived("ddkernel", (q1, q2, k), lambda s: self._price("dkernel", *s))
        if self.ddphi_smooth == 0:
            return self._derived("ddkernel", (q1, q2, k), lambda s: delta_pairs(self.dphi_jumps, *s))
        return self._unevaluated("ddkernel", q1, q2, k)

    # -- helpers -----------------------------------------------------------------------------------
    @property
    def _ddphi_vanishes(self) -> bool:
        return self.ddphi_smooth == 0 and not self.dphi_jumps

    @property
    def _price_applies(self) -> bool:
        """dkernel is itself Price's theorem of a closed-form kernel (or an exact polynomial integral)."""
        return self.is_continuous and (self.kernel_closed_form is not None or self._polynomial)

    def _require_continuous(self, kind: str, why: str):
        if not self.is_continuous:
            jumps = ", ".join(str(p) for p in self.kinks)
            raise UndefinedExpectation(
                f"{kind} of {self.describe()} is not defined: phi jumps (at {jumps}), so its distributional "
                f"phi'' holds delta' there; {why}. It is defined for continuous phi", f"phi jumps (at {jumps})")

    def _price(self, of: str, q1, q2, k):
        # ∂/∂k of the kernel (or of dkernel). Simplify with the covariance determinant held as an opaque positive
        # symbol, so the result keeps it (numerics evaluates it without cancellation) instead of expanding it
        # into q1*q2 - k**2.
        d = sp.diff(getattr(self, of)(q1, q2, k), k)
        det = covariance_determinant(q1, q2, k)
        held = sp.Symbol("_held_determinant", positive=True)
        return sp.simplify(d.subs(det, held)).subs(held, det)

    def _derived(self, kind, args, derive):
        """Derive once on generic symbols, then substitute: SymPy integration is slow, substitution is not.
        ``derive`` may return None (no closed form): so does this."""
        args = args if isinstance(args, tuple) else (args,)
        if kind not in self._cache:
            gen = sp.symbols(f"_g1:{len(args) + 1}", positive=True)
            if len(args) == 3:
                gen = gen[:2] + (sp.Symbol("_g3", real=True),)
            self._cache[kind] = (gen, derive(gen if len(gen) > 1 else gen[0]))
        gen, expr = self._cache[kind]
        return None if expr is None else expr.subs(dict(zip(gen, args)), simultaneous=True)


def _checked(*args) -> tuple:
    """The arguments (q) or (q₁, q₂, k) as SymPy expressions; numbers among them must be a variance (real, finite,
    >= 0; k real and finite) and, all three numbers, a covariance (k² <= q₁q₂), else a ValueError naming them."""
    names = ("q",) if len(args) == 1 else ("q1", "q2", "k")
    out = []
    for name, value in zip(names, args):
        try:
            v = sp.sympify(value, strict=True)
        except (sp.SympifyError, TypeError):
            raise ValueError(f"{name}={value!r} is not allowed: give a number or a SymPy expression") from None
        # rejected only where known to be wrong (an unevaluated expectation of numbers is a number of unknown sign)
        if v.is_real is False or v.is_finite is False or (name != "k" and v.is_negative):
            raise ValueError(f"{name}={v} is not allowed: it must be a real, finite number"
                             + ("" if name == "k" else " >= 0 (a variance)"))
        out.append(v)
    if len(out) == 3 and (out[2] ** 2 - out[0] * out[1] * (1 + sp.Float(2e-9))).is_positive:      # beyond rounding
        raise ValueError(f"k={out[2]} is not allowed: a covariance has |k| <= sqrt(q1*q2) = {sp.sqrt(out[0] * out[1])}")
    return tuple(out)


def _or_none(value, then):
    return None if value is None else then(value)
