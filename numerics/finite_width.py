"""Numbers for :mod:`sigprop.theory.finite_width`: what networks of width n show, mean and seed-to-seed range.

:func:`finite_width` samples the forward path of many networks unit by unit (O(n) per layer, no n × n matrix)
and carries, for a Jacobian started at every layer, theory's conditional-expectation state along it:

- ``log_gsc_qm`` and ``grad_corr`` (pooled over networks, as a measurement pools seeds): exact given the path,
  so their only error is Monte Carlo (``se``, from batch means over the chains);
- ``log_gsc`` (the mean over networks of the log): each layer's log tr M ratio drawn from theory's conditional
  mean and variance, with the seed-to-seed 95% range of one network (``lo``, ``hi``) and its ``sd``;
- ``q``, ``c``, ``p``, ``m``: the sampled path's own values (exact in distribution).

The expansion parameter τ = Σ_l 1/n_l (depth/width) is reported; the spread's closure was checked against
sampled networks up to τ ≈ 0.8 (docs/theory.md), and a note says when τ is beyond that.

Networks with residual blocks (identity skip around one dense layer) take the residual route
(:mod:`sigprop.numerics.finite_width_residual`): the path unit by unit, the Jacobian's conditional mean as a full
n × n matrix carried backwards from the output (O(n²) per layer), the same outputs.

Example
-------
>>> from sigprop.theory import parse
>>> from sigprop.numerics.finite_width import finite_width
>>> fw = finite_width(parse("10*dense(relu,sw2=2)"), width=64, chains=200)
>>> round(fw.tau, 4), fw.mean["log_gsc"].shape
(0.1562, (11,))
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Optional

import numpy as np
import sympy as sp
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.precedence import PRECEDENCE

from ..checks import check_inputs, check_positive_int, input_norms
from ..quantities import QUANTITIES, log_gsc_per_input
from ..theory import finite_width as F
from ..theory.blocks import Dense
from ..theory.blocks.residual import Residual
from ..theory.blocks.base import scaled_width
from ..theory.network import as_network
from .expectations import activation_functions

#: τ = Σ 1/n_l up to which the spread's closure was checked against sampled networks
CHECKED_TAU = 0.8
#: quantities pooled over networks (no per-network value, hence no seed-to-seed range)
POOLED = ("log_gsc_qm", "grad_corr")
_BATCHES = 20


class _ProductPrinter(NumPyPrinter):
    """Integer powers 3..8 as products: NumPy's ``x**n`` squares for n = 2 but calls ``pow`` per entry above it,
    about 40 times slower than multiplying (the fourth moments of the spread closure's ``a**4``)."""

    def _print_Pow(self, expr, rational=False):
        if expr.exp.is_Integer and 2 < expr.exp <= 8:
            return "(" + "*".join([self.parenthesize(expr.base, PRECEDENCE["Atom"], strict=True)] * int(expr.exp)) + ")"
        return super()._print_Pow(expr, rational=rational)


class UnitSumProgram:
    """Expressions with :class:`~sigprop.theory.finite_width.UnitSum` atoms, compiled for arrays.

    Each summand is expanded as a polynomial in the state symbols (and in the state-free sums it contains); its
    coefficients are summed over the sampled units once, so one layer costs O(chains × units) however many
    Jacobian starts share the path. ``__call__(units, state, s)``: ``units`` maps unit symbols to arrays
    [chains, n], ``state`` maps state symbols to arrays broadcasting against [chains, 1].
    """

    def __init__(self, outputs: dict, unit_symbols, state_symbols):
        self.names = [str(k) for k in outputs]
        atoms = set().union(*(sp.sympify(e).atoms(F.UnitSum) for e in outputs.values()))
        inner = sorted((u for u in atoms if not u.args[0].has(F.UnitSum)), key=str)
        outer = sorted((u for u in atoms if u.args[0].has(F.UnitSum)), key=str)
        self.atoms = inner + outer
        self.places = {u: sp.Symbol(f"_sum{i}") for i, u in enumerate(self.atoms)}
        self.state = tuple(state_symbols)
        self.coefficients = {}                   # coefficient expression -> lambdified per-unit function
        self.terms = []                          # per atom: [(coefficient expression, {variable: power})]
        for u in self.atoms:
            body = u.args[0]
            variables = [x for x in self.state if body.has(x)] + [x for x in inner if body.has(x)]
            poly = sp.Poly(body, *variables) if variables else None
            pairs = poly.terms() if poly is not None else [((), body)]
            terms = []
            for monom, coeff in pairs:
                coeff = sp.sympify(coeff)
                if coeff not in self.coefficients:
                    self.coefficients[coeff] = sp.lambdify(unit_symbols, coeff, modules=np, printer=_ProductPrinter)
                terms.append((coeff, {x: p for x, p in zip(variables, monom) if p}))
            self.terms.append(terms)
        exprs = [sp.sympify(e).xreplace(self.places) for e in outputs.values()]
        self.outer = sp.lambdify((*self.places.values(), *self.state, F.s), exprs, modules=np)
        self.unit_symbols = tuple(unit_symbols)

    def __call__(self, units: dict, state: dict, s: float) -> dict:
        args = [units[x] for x in self.unit_symbols]
        shape = args[0].shape
        sums = {c: np.sum(np.broadcast_to(fn(*args), shape), axis=-1)[:, None]
                for c, fn in self.coefficients.items()}
        values = dict(state)
        for u, terms in zip(self.atoms, self.terms):
            total = 0.0
            for coeff, powers in terms:
                term = sums[coeff]
                for x, p in powers.items():
                    term = term * values[x] ** p
                total = total + term
            values[u] = total
        out = self.outer(*(values[u] for u in self.atoms), *(state[x] for x in self.state), s)
        return dict(zip(self.names, out))


@lru_cache(maxsize=None)
def mean_program() -> UnitSumProgram:
    return UnitSumProgram(F.tangent_mean_step(), F.UNIT_PAIR, F.MEAN_STATE)


@lru_cache(maxsize=None)
def spread_program() -> UnitSumProgram:
    step = F.tangent_spread_step()
    lm, lv = F.lognormal_log_moments(step["mu"], step["var"])
    outputs = {"log_mean": lm, "log_var": lv, "f": step["f"], "E1": step["E1"], "S": step["S"]}
    return UnitSumProgram(outputs, F.UNIT_ONE, F.SPREAD_STATE)


@dataclass
class FiniteWidth:
    """Finite-width prediction (see the module docstring). Per quantity (keys of ``mean``; layers as in
    :data:`sigprop.quantities.QUANTITIES`): ``mean`` over networks (pooled for ``log_gsc_qm``, ``grad_corr``),
    its Monte Carlo standard error ``se``, and for per-network quantities the seed-to-seed ``sd`` and 95% range
    ``lo``..``hi`` of one network's value (NaN where pooled). ``input_sd``: the seed-to-seed sd of one input's
    log GSC(l, L). ``tau``: Σ 1/n_l over the blocks."""

    width: int
    chains: int
    depth: int
    tau: float
    mean: dict
    se: dict
    sd: dict
    lo: dict
    hi: dict
    input_sd: np.ndarray
    notes: list = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready (NaN becomes null in JSON)."""
        return {"width": self.width, "chains": self.chains, "tau": self.tau, "notes": list(self.notes),
                "input_sd": self.input_sd.tolist(),
                **{k: {name: np.asarray(v).tolist() for name, v in getattr(self, k).items()}
                   for k in ("mean", "se", "sd", "lo", "hi")}}


def unsupported(network) -> Optional[str]:
    """Why ``network`` has no finite-width prediction, or None when it has one."""
    from .finite_width_residual import has_residual, residual_reason
    blocks = as_network(network).blocks
    residual = has_residual(blocks)
    for i, b in enumerate(blocks, start=1):
        reason = residual_reason(b) if residual else None
        if reason:
            return f"block {i}: {reason}"
        b = b.branch[0] if isinstance(b, Residual) and residual else b
        if type(b) is not Dense:
            return (f"block {i} ({b.describe()}) is not allowed in a finite-width prediction: it covers networks "
                    f"of dense blocks and of residual blocks with the identity skip around one dense layer "
                    f"(normalization blocks and other residual blocks are not derived yet)")
        if b.weights not in (None, "gaussian"):
            return (f"block {i} ({b.describe()}): weights={b.weights!r} is not allowed in a finite-width "
                    f"prediction; allowed: gaussian (the path reduction needs i.i.d. Gaussian rows)")
        for name in ("sw2", "sb2", "width"):
            if not getattr(b, name).is_number:
                return f"block {i} ({b.describe()}): {name} must be a number for a prediction"
    return None


def _batch_se(stat, *columns) -> np.ndarray:
    """Standard error of a pooled statistic from batch means over the chains."""
    parts = [np.array_split(c, _BATCHES, axis=0) for c in columns]
    values = np.array([stat(*(p[i].mean(axis=0) for p in parts)) for i in range(_BATCHES)])
    return values.std(axis=0, ddof=1) / math.sqrt(_BATCHES)


def _summary(values: np.ndarray) -> tuple:
    """mean, se, sd, 2.5% and 97.5% quantiles over chains (axis 0)."""
    sd = values.std(axis=0, ddof=1)
    lo, hi = np.quantile(values, [0.025, 0.975], axis=0)
    return values.mean(axis=0), sd / math.sqrt(len(values)), sd, lo, hi


def finite_width(network, width: int, q0=1.0, c0: float = 0.5, chains: int = 2000, seed: int = 0,
                 progress=None) -> FiniteWidth:
    """Predict what ``network`` (dense blocks with Gaussian weights) shows at ``width`` units (the input's width,
    and each block's round(r·n_in) units), from ``chains`` sampled forward paths.

    ``progress``: optional callable invoked after each layer. The two inputs are as in
    :func:`sigprop.numerics.predict` (q0 one mean square or a pair, correlation c0).
    """
    net = as_network(network)
    reason = unsupported(net)
    if reason:
        raise ValueError(reason)
    blocks = list(net.blocks)
    check_positive_int("width", width)
    if width < 4:
        raise ValueError(f"width={width} is not allowed: a finite-width prediction needs width >= 4")
    check_positive_int("chains", chains)
    if chains < 2 * _BATCHES:
        raise ValueError(f"chains={chains} is not allowed: standard errors need chains >= {2 * _BATCHES}")
    check_inputs(q0, c0)
    if abs(c0) >= 1:
        raise ValueError(f"c0={c0!r} is not allowed in a finite-width prediction: two distinct inputs need |c0| < 1")
    q_a, q_b = (float(v) for v in input_norms(q0))
    rng = np.random.default_rng(seed)
    L, C = len(blocks), chains
    widths = [width]
    for b in blocks:
        n_out = scaled_width(b, b.width, widths[-1]) if isinstance(b, Dense) else widths[-1]   # identity skip
        if n_out < 2:
            raise ValueError(f"{b.describe()} at input width {widths[-1]} leaves {n_out} unit; a finite-width "
                             "prediction needs >= 2 units per layer (use a larger width)")
        widths.append(n_out)
    tau = float(sum(1 / n for n in widths[1:]))

    from .finite_width_residual import has_residual, residual_paths
    paths = (residual_paths if has_residual(blocks) else _dense_paths)(blocks, widths, q_a, q_b, c0, C, rng, progress)
    dead = paths["dead"]
    # a Jacobian that underflows: every unit's φ'(h) rounds to 0 at some layer (tanh saturated at q ~ 1e6), so the
    # path's tr M is 0 and its log −inf or NaN, as a sampled network's gradient is 0 there
    finite = np.concatenate([paths[k].reshape(C, -1) for k in ("log_ratio", "t_aa", "t_bb", "t_ab")], axis=1)
    underflow = ~dead & (~np.all(np.isfinite(finite), axis=1) | np.any(paths["t_aa"] <= 0, axis=1)
                         | np.any(paths["t_bb"] <= 0, axis=1))
    alive = ~dead & ~underflow
    if not np.any(alive):
        raise ValueError(f"every one of the {C} sampled networks lost all units of some layer at width {width}"
                         + (" or has a Jacobian that underflows float64 (every unit's phi'(h) rounds to 0)"
                            if np.any(underflow) else "") + ": GSC is undefined; use a larger width"
                         + (" or smaller variances" if np.any(underflow) else ""))
    n_start = np.array(widths, dtype=float)
    t_aa, t_bb, t_ab = (paths[k][alive] for k in ("t_aa", "t_bb", "t_ab"))
    sq, unit_mean, pre_q, pre_c, log_ratio = (paths[k] for k in ("sq", "unit_mean", "pre_q", "pre_c", "log_ratio"))
    per_width = n_start[None, :, None]
    # the arrays a measurement records, per sampled network: one network's Jacobian (the spread chain's draw, in
    # log space) for per-network quantities; E[tr M | path] for the pooled ones. Each registered quantity is then
    # aggregated exactly as :mod:`sigprop.quantities` aggregates seeds.
    forward = {"q": pre_q[alive], "c": pre_c[alive], "p": sq[alive] / per_width, "m": unit_mean[alive],
               "n": np.broadcast_to(n_start, t_aa.shape)}
    network = {**forward, "log_jac_qm2": log_ratio[alive]}
    pooled = {**forward, "jac_qm2": np.stack([t_aa, t_bb], axis=2) / per_width, "grad_cross": t_ab,
              "grad_sq": np.stack([t_aa, t_bb], axis=2)}
    out = {k: {} for k in ("mean", "se", "sd", "lo", "hi")}
    for name, q in QUANTITIES.items():
        try:
            if q.measured is not None:
                for k, v in zip(("mean", "se", "sd", "lo", "hi"), _summary(q.measured(network))):
                    out[k][name] = v
                continue
            parts = q.parts(pooled)
        except KeyError:                      # a registered quantity whose arrays the path does not provide
            continue
        out["mean"][name] = q.pooled(*(p.mean(axis=0) for p in parts))
        out["se"][name] = _batch_se(q.pooled, *parts)
        for k in ("sd", "lo", "hi"):
            out[k][name] = np.full_like(out["mean"][name], np.nan)
    per_input = log_gsc_per_input(network)
    notes = []
    if np.any(dead):
        notes.append(f"{int(dead.sum())} of {C} sampled networks lost every unit of some layer (GSC is 0/0 there); "
                     "they are left out, as a measurement leaves such seeds out")
    if np.any(underflow):
        notes.append(f"{int(underflow.sum())} of {C} sampled networks have a Jacobian that underflows float64 at some "
                     "layer (every unit's phi'(h) rounds to 0: saturated units at a large variance), so GSC is 0/0 "
                     "there; they are left out, as a measurement leaves such seeds out")
    if has_residual(blocks):
        notes.append("residual blocks: the pooled quantities are exact up to Monte Carlo error; one network's log GSC "
                     "and its seed-to-seed range come from the variance of E[|J|^2 | path] revealed block by block "
                     "(unbiased, from Jacobians drawn below each block), one network's |J|^2 drawn log-normal with "
                     "it (at depth 50, widths 64-256, the predicted sd was within 9% of sampled ResNets')")
    elif tau > CHECKED_TAU:
        notes.append(f"depth/width τ = Σ 1/n_l = {tau:.3g} is beyond {CHECKED_TAU}, where the spread of log GSC "
                     f"was checked against sampled networks; the pooled quantities stay exact")
    return FiniteWidth(width, int(alive.sum()), L, tau, *(out[key] for key in ("mean", "se", "sd", "lo", "hi")),
                       input_sd=per_input.std(axis=0, ddof=1).mean(axis=1), notes=notes)


def _dense_paths(blocks, widths, q_a, q_b, c0, C, rng, progress) -> dict:
    """The dense route: per sampled path, the representations' invariants and, for a Jacobian started at every
    layer, E[J Jᵀ | path] as a span block plus an isotropic rest (``t_aa``, ``t_bb``, ``t_ab``: its traces at the
    output), and one network's log tr M ratios (``log_ratio``) from the spread closure."""
    width, L = widths[0], len(blocks)
    # the two representations in an orthonormal basis of their span: x_a = (ra, 0), x_b = (xb1, xb2)
    ra = np.full(C, math.sqrt(q_a * width))
    xb1 = np.full(C, c0 * math.sqrt(q_b * width))
    xb2 = np.full(C, math.sqrt(1 - c0 * c0) * math.sqrt(q_b * width))
    sq = np.empty((C, L + 1, 2))                  # ‖x^l‖² per input
    sq[:, 0] = np.stack([ra**2, xb1**2 + xb2**2], axis=1)
    unit_mean = np.zeros((C, L + 1, 2))
    pre_q, pre_c = np.empty((C, L, 2)), np.empty((C, L))
    # Jacobian states, one column per start layer 0..L: pairs (a, a), (b, b), (a, b); spread per input
    mean_state = [{x: np.zeros((C, L + 1)) for x in F.MEAN_STATE} for _ in range(3)]
    spread_state = [{x: np.zeros((C, L + 1)) for x in F.SPREAD_STATE} for _ in range(2)]
    log_ratio = np.zeros((C, L + 1, 2))          # Σ log tr M ratios since the start, per input
    mean_prog, spread_prog = mean_program(), spread_program()
    dead = np.zeros(C, dtype=bool)                # networks that lost every unit somewhere (left out, as measured)

    for l, block in enumerate(blocks):
        n_in, n = widths[l], widths[l + 1]
        start = F.start_state(n_in)
        for st in mean_state:
            for x in F.MEAN_STATE:
                st[x][:, l] = float(start[x])
        for st in spread_state:
            for x in F.SPREAD_STATE:
                st[x][:, l] = float(start[x])
        phi, dphi = activation_functions(block.activation)
        sw2, sb2 = float(block.sw2), float(block.sb2)
        s = sw2 / n_in
        al = rng.standard_normal((2, C, n))
        bias = math.sqrt(sb2) * rng.standard_normal((C, n))
        nb = np.sqrt(xb1**2 + xb2**2)
        h_a = math.sqrt(s) * ra[:, None] * al[0] + bias
        h_b = math.sqrt(s) * (xb1[:, None] * al[0] + xb2[:, None] * al[1]) + bias
        proj = (al[0], (xb1[:, None] * al[0] + xb2[:, None] * al[1]) / nb[:, None])   # a_i = x̂_p·g_i
        ys = [np.broadcast_to(phi(h), h.shape) for h in (h_a, h_b)]
        ds = [np.broadcast_to(dphi(h), h.shape) for h in (h_a, h_b)]
        norms = [np.linalg.norm(y, axis=1) for y in ys]
        lost = (norms[0] == 0) | (norms[1] == 0)          # every unit off: GSC is 0/0 for this network
        if np.any(lost):
            dead |= lost
            ys = [np.where(lost[:, None], 1.0, y) for y in ys]
            norms = [np.where(lost, math.sqrt(n), nm) for nm in norms]
        e1 = ys[0] / norms[0][:, None]
        along = np.sum(ys[1] * e1, axis=1)
        perp = ys[1] - along[:, None] * e1
        perp -= np.sum(perp * e1, axis=1)[:, None] * e1            # twice: an orthonormal frame to rounding
        nperp = np.linalg.norm(perp, axis=1)
        nperp = np.where(nperp > 1e-12 * norms[1], nperp, 0.0)     # collinear representations: a 1-D span
        e2 = np.divide(perp, nperp[:, None], out=np.zeros_like(perp), where=nperp[:, None] > 0)
        live = slice(0, l + 1)
        for st, (p, p2) in zip(mean_state, ((0, 0), (1, 1), (0, 1))):
            units = {F.alpha1: al[0], F.alpha2: al[1], F.dphi_p: ds[p], F.dphi_q: ds[p2],
                     F.e1_new: e1, F.e2_new: e2}
            new = mean_prog(units, {x: st[x][:, live] for x in F.MEAN_STATE}, s)
            for x, value in zip(F.MEAN_STATE, new.values()):       # t', B'_11, B'_12, B'_21, B'_22
                st[x][:, live] = value
        for p in range(2):
            units = {F.a: proj[p], F.w: ds[p] ** 2, F.v: ds[p] * ys[p] / norms[p][:, None]}
            st = spread_state[p]
            with np.errstate(divide="ignore", invalid="ignore"):     # lost networks only; left out below
                new = spread_prog(units, {x: st[x][:, live] for x in F.SPREAD_STATE}, s)
            draw = rng.standard_normal((C, l + 1))
            log_ratio[:, live, p] += new["log_mean"] + np.sqrt(np.maximum(new["log_var"], 0)) * draw
            f = np.clip(new["f"], 0, 1)
            S = np.clip(new["S"], f**2, 1)
            st[F.f][:, live], st[F.Sq][:, live] = f, S
            st[F.E1][:, live] = np.clip(new["E1"], f**2, (S + f**2) / 2)   # ‖PMx̂‖² >= 0, tr(PMP)² >= 0
        ra, xb1, xb2 = norms[0], along, nperp
        sq[:, l + 1] = np.stack([ra**2, xb1**2 + xb2**2], axis=1)
        unit_mean[:, l + 1] = np.stack([y.mean(axis=1) for y in ys], axis=1)
        pre_q[:, l] = np.stack([np.mean(h_a**2, axis=1), np.mean(h_b**2, axis=1)], axis=1)
        pre_c[:, l] = np.sum(h_a * h_b, axis=1) / np.sqrt(np.sum(h_a**2, axis=1) * np.sum(h_b**2, axis=1))
        if progress is not None:
            progress()

    for st in mean_state:
        st[F.t][:, L] = widths[L]
    return {"sq": sq, "unit_mean": unit_mean, "pre_q": pre_q, "pre_c": pre_c, "log_ratio": log_ratio, "dead": dead,
            **{k: st[F.t] for k, st in zip(("t_aa", "t_bb", "t_ab"), mean_state)}}
