"""The catalog of activations: φ, and the closed forms the literature has, each with its citation.

Each entry is one :class:`~sigprop.theory.activations.Activation` (or an
:class:`~sigprop.theory.activations.ActivationFamily` for those with parameters); everything else (second moments,
derivative kernels by Price's theorem, kinks, torch functions) is derived from it. Which expectations are
registered, derived or numerical is listed per activation by ``Activation.expectation_sources()`` and in
docs/catalog.md.

Where φ has a form that is exact and also safe in floating point, the catalog uses it: softplus is
max(0, x) + log(1 + e^−|x|) (no overflow), sigmoid is (1 + tanh(x/2))/2.

Example
-------
>>> from sigprop.theory.catalog import erf
>>> from sigprop.theory.symbols import q
>>> erf.second_moment(q)
2*atan(2*q/sqrt(4*q + 1))/pi
>>> from sigprop.theory import get_activation
>>> get_activation("leaky_relu(a=0.2)").phi
Piecewise((0.2*x, x < 0), (x, True))
"""
from __future__ import annotations

import sympy as sp

from .activations import Activation, ActivationFamily, FamilyParam, register_activation, register_family
from .determinant import covariance_determinant
from .symbols import x

_ARC_COSINE = "arc-cosine kernel of degree {n}, Cho & Saul 2009"
_GAUSS_MGF = "Gaussian moment-generating / characteristic function"


def _angle(q1, q2, k):
    # θ = angle between the inputs, atan2(√D, k) with D = q1 q2 − k²: exact to the last digit near c = ±1.
    root = sp.sqrt(covariance_determinant(q1, q2, k))
    return root, sp.atan2(root, k)


def _relu_kernel(q1, q2, k):
    # Arc-cosine kernel of degree 1 (Cho & Saul 2009): √(q1 q2)(sin θ + (π − θ) cos θ)/(2π), written as
    # k/2 + (√D − θk)/(2π): at c = 1 the kernel is k/2 exactly.
    root, theta = _angle(q1, q2, k)
    return k / 2 + (root - theta * k) / (2 * sp.pi)


def _leaky_kernel(a):
    # a x + (1 − a) relu(x); E[u relu(v)] = k/2 by the symmetry (u, v) → (−u, −v), so the cross terms add a(1 − a)k.
    return lambda q1, q2, k: a * k + (1 - a) ** 2 * _relu_kernel(q1, q2, k)


def _step_kernel(q1, q2, k):
    # Arc-cosine kernel of degree 0 (Cho & Saul 2009): P(u > 0, v > 0) = (π − θ)/(2π).
    return (sp.pi - _angle(q1, q2, k)[1]) / (2 * sp.pi)


def _sign_kernel(q1, q2, k):
    # 2 step − 1: 1 − 2θ/π = (2/π) arcsin c, written as (2/π) atan2(k, √D).
    return 2 / sp.pi * sp.atan2(k, sp.sqrt(covariance_determinant(q1, q2, k)))


def _erf_kernel(q1, q2, k):
    # Williams 1997: (2/π) arcsin(2k / √((1 + 2q1)(1 + 2q2))), written as (2/π) atan2(2k, √(1 + 2q1 + 2q2 + 4D)):
    # 1 − sin² of the arcsine's argument is (1 + 2q1 + 2q2 + 4D)/((1 + 2q1)(1 + 2q2)), without cancellation.
    return 2 / sp.pi * sp.atan2(2 * k, sp.sqrt(1 + 2 * q1 + 2 * q2 + 4 * covariance_determinant(q1, q2, k)))


def _erf_dkernel(q1, q2, k):
    # ∂/∂k of Williams' kernel (Price's theorem): (4/π)/√((1 + 2q1)(1 + 2q2) − 4k²), the root written as above.
    return 4 / (sp.pi * sp.sqrt(1 + 2 * q1 + 2 * q2 + 4 * covariance_determinant(q1, q2, k)))


def _sin_kernel(q1, q2, k):
    # E[sin u sin v] = (E[cos(u − v)] − E[cos(u + v)])/2 with E[cos w] = exp(−Var w/2).
    return sp.exp(-(q1 + q2) / 2) * sp.sinh(k)


def _cos_kernel(q1, q2, k):
    return sp.exp(-(q1 + q2) / 2) * sp.cosh(k)


def _exp_kernel(q1, q2, k):
    return sp.exp((q1 + q2) / 2 + k)


def _softplus(z):
    return sp.Max(0, z) + sp.log(1 + sp.exp(-sp.Abs(z)))


def _sigmoid(z):
    return (1 + sp.tanh(z / 2)) / 2


def _negative_piece(neg):
    return sp.Piecewise((neg, x < 0), (x, True))


# SELU's constants (Klambauer et al. 2017), to the digits the paper gives
SELU_ALPHA = sp.Float("1.6732632423543772848170429916717", 32)
SELU_SCALE = sp.Float("1.0507009873554804934193349852946", 32)

relu = Activation("relu", sp.Max(0, x), _relu_kernel, _ARC_COSINE.format(n=1), torch_op="relu",
                  mean_closed_form=lambda q: sp.sqrt(q / (2 * sp.pi)), mean_source="the half-normal mean",
                  dkernel_closed_form=_step_kernel, dkernel_source=_ARC_COSINE.format(n=0))
tanh = Activation("tanh", sp.tanh(x), torch_op="tanh")
erf = Activation("erf", sp.erf(x), _erf_kernel, "Williams 1997, 'Computing with infinite networks'",
                 torch_op="erf", dkernel_closed_form=_erf_dkernel,
                 dkernel_source="Williams 1997's kernel differentiated in k (Price's theorem)")
linear = Activation("linear", x, lambda q1, q2, k: k, "E[uv] = k: the covariance itself")

PLAIN = [
    relu, tanh, erf, linear,
    Activation("abs", sp.Abs(x), _leaky_kernel(-1), _ARC_COSINE.format(n=1) + " (|x| = 2 relu(x) − x)",
               torch_op="abs"),
    Activation("step", sp.Heaviside(x), _step_kernel, _ARC_COSINE.format(n=0)),
    Activation("sign", sp.sign(x), _sign_kernel, _ARC_COSINE.format(n=0) + " (sign = 2 step − 1)", torch_op="sign"),
    Activation("sigmoid", _sigmoid(x), torch_op="sigmoid"),
    Activation("hard_tanh", sp.Max(-1, sp.Min(1, x)), torch_op="nn.functional.hardtanh"),
    Activation("softsign", x / (1 + sp.Abs(x)), torch_op="nn.functional.softsign"),
    Activation("softplus", _softplus(x)),
    Activation("selu", SELU_SCALE * _negative_piece(SELU_ALPHA * (sp.exp(x) - 1)), torch_op="selu"),
    Activation("gelu", x * (1 + sp.erf(x / sp.sqrt(2))) / 2, torch_op="nn.functional.gelu",
               mean_closed_form=lambda q: q / sp.sqrt(2 * sp.pi * (1 + q)),
               mean_source="Stein's lemma: E[u Phi(u)] = q E[Phi'(u)] = q/sqrt(2 pi (1 + q)) (Hendrycks & Gimpel 2016 "
                           "for GELU)"),
    Activation("gelu_tanh", x * (1 + sp.tanh(sp.sqrt(2 / sp.pi) * (x + sp.Float("0.044715") * x**3))) / 2),
    Activation("silu", x * _sigmoid(x), torch_op="nn.functional.silu"),
    Activation("mish", x * sp.tanh(_softplus(x)), torch_op="nn.functional.mish"),
    Activation("arctan", sp.atan(x), torch_op="atan"),
    Activation("arcsinh", sp.asinh(x), torch_op="asinh"),
    Activation("bent_identity", (sp.sqrt(x**2 + 1) - 1) / 2 + x),
    Activation("sin", sp.sin(x), _sin_kernel, _GAUSS_MGF, torch_op="sin"),
    Activation("cos", sp.cos(x), _cos_kernel, _GAUSS_MGF, torch_op="cos",
               mean_closed_form=lambda q: sp.exp(-q / 2), mean_source=_GAUSS_MGF),
    Activation("exp", sp.exp(x), _exp_kernel, _GAUSS_MGF + " (log-normal moments)", torch_op="exp",
               mean_closed_form=lambda q: sp.exp(q / 2), mean_source=_GAUSS_MGF),
]


def _leaky_relu(a):
    return dict(phi=_negative_piece(a * x), kernel_closed_form=_leaky_kernel(a),
                kernel_source=_ARC_COSINE.format(n=1) + " (leaky = a x + (1 − a) relu)")


def _elu(a):
    return _negative_piece(a * (sp.exp(x) - 1))


def _celu(a):
    if a.is_number and not a > 0:
        raise ValueError(f"celu(): a={a} is not allowed: it must be > 0")
    return _negative_piece(a * (sp.exp(x / a) - 1))


def _swish(b):
    return x * _sigmoid(b * x)


def _power(n):
    return x**n


def _affine(act, a, b, c, d):
    """a φ(b x + c) + d. With c = 0 every expectation reduces exactly to φ's at b²-scaled variances."""
    phi = a * act.phi.subs(x, b * x + c) + d
    if c != 0:
        return phi

    def mean(q):
        return a * act.mean(b**2 * q) + d

    def kernel(q1, q2, k):
        return (a**2 * act.kernel(b**2 * q1, b**2 * q2, b**2 * k)
                + a * d * (act.mean(b**2 * q1) + act.mean(b**2 * q2)) + d**2)
    how = f"reduction to {act.describe()}'s expectations at b^2-scaled variances (exact)"
    return dict(phi=phi, kernel_closed_form=kernel, kernel_source=how, mean_closed_form=mean, mean_source=how)


def _real(name, default, doc):
    return FamilyParam(name, sp.Float(default) if isinstance(default, float) else sp.Integer(default), "real", doc)


FAMILIES_BUILT = [
    ActivationFamily("leaky_relu", (_real("a", 0.01, "slope for x < 0"),), _leaky_relu, "x for x >= 0, a x below"),
    ActivationFamily("elu", (_real("a", 1, "scale of the negative part"),), _elu,
                     "x for x >= 0, a (e^x - 1) below (Clevert et al. 2016)"),
    ActivationFamily("celu", (_real("a", 1, "scale of the negative part (a > 0)"),), _celu,
                     "x for x >= 0, a (e^(x/a) - 1) below (Barron 2017)"),
    ActivationFamily("swish", (_real("b", 1, "slope inside the sigmoid"),), _swish,
                     "x sigmoid(b x) (Ramachandran et al. 2017); swish(b=1) is silu"),
    ActivationFamily("power", (FamilyParam("n", sp.Integer(2), "positive_integer", "the exponent"),), _power,
                     "the monomial x^n"),
    ActivationFamily("affine", (FamilyParam("act", None, "activation", "the activation phi"),
                                _real("a", 1, "output scale"), _real("b", 1, "input scale"),
                                _real("c", 0, "input shift"), _real("d", 0, "output shift")), _affine,
                     "a phi(b x + c) + d"),
]

for _act in PLAIN:
    register_activation(_act)
for _family in FAMILIES_BUILT:
    register_family(_family)
