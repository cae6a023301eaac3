"""Binary cross-entropy (on logits and on probabilities) and the sigmoid focal loss.

All three are elementwise: ``reduction="none"`` returns one loss per element (the shape
of the logits), ``weight``, ``pos_weight`` and ``alpha`` scale terms, and ``"mean"``
divides the sum by the number of kept (unmasked) elements, as PyTorch does.

The sigmoid losses are sums of two log-terms with non-negative coefficients,
``cp·(-log σ(x)) + cn·(-log(1 - σ(x)))``, evaluated by ``jax.custom_jvp`` rules whose
partial derivatives are written out. That makes them exact at ``x = ±inf`` (a term
with a zero coefficient is 0, not ``0·inf = NaN``) with finite gradients there, while
keeping forward mode, reverse mode and higher orders (the rules are plain JAX). Each
tangent is linear in the input tangents and recomputes its partials from the inputs, so
``value_and_grad`` reads the inputs and writes the gradient with no ``[N, C]``
temporary.
"""

from __future__ import annotations

import functools
import math
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxent import _backend, _checks, _reduction
from jaxent._objects import LossObject, loss_object, static_field

# --------------------------------------------------------------------------------------
# Elementwise cores with written-out derivatives. Each is a ``jax.custom_jvp`` whose
# tangent (``_backend.linear_tangent``) recomputes its partials from the primals, so that
# reverse mode saves no per-element partial and needs no ``[N, C]`` temporary.


class _Logistic(NamedTuple):
    """The sigmoid and log-sigmoid terms of ``x``, all from one ``exp`` and one ``log1p``."""

    u: jax.Array  # -log σ(x) = softplus(-x)
    v: jax.Array  # -log(1 - σ(x)) = -log σ(-x) = softplus(x)
    sx: jax.Array  # σ(x)
    snx: jax.Array  # σ(-x) = 1 - σ(x)
    sp_over_sx: jax.Array  # softplus(x) / σ(x) >= 1, +inf only at x = +inf
    sn_over_snx: jax.Array  # softplus(-x) / σ(-x) >= 1, +inf only at x = -inf


# Below this a, log1p(a)/a is its Taylor series, 1 - a/2 + a^2/3 - ...: the quotient's
# derivatives cancel (d/da = (a/(1+a) - log1p(a))/a^2, and a^2 underflows), the series'
# do not. Eleven terms leave a^11/12 < 5e-16 at the cutoff.
_RATIO_CUTOFF = 0.05
_RATIO_TERMS = tuple((-1.0) ** k / (k + 1) for k in range(11))


def _log1p_ratio(a: jax.Array) -> jax.Array:
    """log1p(a)/a for a in [0, 1], with exact derivatives of every order at small a."""
    small = a < _RATIO_CUTOFF
    series = functools.reduce(
        lambda acc, c: acc * a + c, reversed(_RATIO_TERMS[:-1]), jnp.full_like(a, _RATIO_TERMS[-1])
    )
    return jnp.where(small, series, jnp.log1p(a) / jnp.where(small, 1, a))


def _logistic(x: jax.Array) -> _Logistic:
    # Branch on the sign with where (not abs or max), so that every derivative at x = 0 is
    # the x >= 0 branch's, exact to any order.
    pos = x >= 0
    a = jnp.exp(-jnp.where(pos, x, -x))  # e^-|x| in [0, 1]: 0 only at ±inf (or beyond underflow)
    log1p_a = jnp.log1p(a)
    r = 1 / (1 + a)
    # softplus(±x) = max(±x, 0) + log1p(e^-|x|): exact at ±inf.
    u = jnp.where(pos, 0, -x) + log1p_a
    v = jnp.where(pos, x, 0) + log1p_a
    # σ(x) = 1/(1 + e^-x) is r for x >= 0 and e^x/(1 + e^x) = a·r for x < 0; σ(-x) the other way round.
    sx, snx = jnp.where(pos, r, a * r), jnp.where(pos, a * r, r)
    # softplus(z)/σ(z) is softplus(z)(1 + e^-z) for z >= 0, and (1 + e^z) log1p(e^z)/e^z for z < 0,
    # where log1p(t)/t -> 1 as t -> 0.
    ratio = _log1p_ratio(a)
    sp_over_sx = (1 + a) * jnp.where(pos, v, ratio)
    sn_over_snx = (1 + a) * jnp.where(pos, ratio, u)
    return _Logistic(u, v, sx, snx, sp_over_sx, sn_over_snx)


def _log_terms(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(-log σ(x), -log(1 - σ(x)))``: exact at ±inf."""
    t = _logistic(x)
    return t.u, t.v


def _drop_inf(a: jax.Array) -> jax.Array:
    """+inf -> 0 for a log-term ``a >= 0``: its derivative in the coefficient of an infinite term
    (the loss is +inf there anyway)."""
    return jnp.where(a == jnp.inf, 0, a)


def _term(c: jax.Array, a: jax.Array) -> jax.Array:
    """``c·a`` with ``0·inf = 0``, for values (that autodiff never sees: they have custom rules)."""
    return jnp.where(c == 0, 0, c * a)


def _exp_below_max(z: jax.Array) -> jax.Array:
    """``exp(z)`` with ``z`` clipped below overflow (88 in float32): where the factor is then
    multiplied by a zero coefficient (:func:`_xmul`), its derivative is 0, not 0·inf = NaN."""
    return jnp.exp(jnp.minimum(z, math.floor(math.log(float(jnp.finfo(z.dtype).max)))))


def _xmul(c: jax.Array, a: jax.Array) -> jax.Array:
    """``c·a`` with ``0·inf = 0``: a term with a zero coefficient contributes nothing.

    Written as a product (not ``where(c == 0, 0, c·a)``) so that its derivative in ``c``
    stays ``a`` at ``c = 0``, which second derivatives at hard targets need.
    """
    return c * jnp.where(c == 0, _drop_inf(a), a)


@jax.custom_jvp
def sigmoid_ce(x: jax.Array, cp: jax.Array, cn: jax.Array) -> jax.Array:
    """``cp·(-log σ(x)) + cn·(-log(1 - σ(x)))`` elementwise, for ``cp, cn >= 0``."""
    u, v = _log_terms(x)
    return _term(cp, u) + _term(cn, v)


def _sigmoid_ce_partials(x: jax.Array, cp: jax.Array, cn: jax.Array) -> tuple[jax.Array, ...]:
    t = _logistic(x)
    # d/dx = cn σ(x) - cp σ(-x): finite at ±inf (PyTorch's w[(1 + (p-1)y)σ(x) - p y]).
    return cn * t.sx - cp * t.snx, _drop_inf(t.u), _drop_inf(t.v)


@functools.partial(sigmoid_ce.defjvp, symbolic_zeros=True)
def _sigmoid_ce_jvp(primals, tangents):
    out = sigmoid_ce(*primals)
    return out, _backend.linear_tangent(_sigmoid_ce_partials, out, primals, tangents)


@jax.custom_jvp
def _log_one_minus_pt(x: jax.Array, y: jax.Array) -> jax.Array:
    """``log q`` for ``q = 1 - p_t = y σ(-x) + (1 - y) σ(x)``; -inf only where q = 0."""
    u, v = _log_terms(x)
    # log q = logaddexp(log y + log σ(-x), log(1-y) + log σ(x)), with log σ(-x) = -v, log σ(x) = -u.
    return jnp.logaddexp(jnp.log(y) - v, jnp.log1p(-y) - u)


def _log_one_minus_pt_partials(x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    # Written out because autodiff of log y at y = 0 (or log(1-y) at y = 1) is inf·0 = NaN,
    # which would reach second derivatives at hard targets.
    log_q = _log_one_minus_pt(x, y)
    u, v = _log_terms(x)
    dead = log_q == -jnp.inf
    log_q0 = jnp.where(dead, 0, log_q)
    # d log q/dx = (1 - 2y) σ(x)σ(-x)/q = (1 - 2y)/D, D = y(1 + e^-x) + (1 - y)(1 + e^x) >= 1.
    d = _xmul(y, 1 + _exp_below_max(-x)) + _xmul(1 - y, 1 + _exp_below_max(x))
    # d log q/dy = (σ(-x) - σ(x))/q, with σ(-x)/q = exp(-v - log q) and σ(x)/q = exp(-u - log q).
    d_y = jnp.where(dead, 0, _exp_below_max(-v - log_q0) - _exp_below_max(-u - log_q0))
    return (1 - 2 * y) / d, d_y


@functools.partial(_log_one_minus_pt.defjvp, symbolic_zeros=True)
def _log_one_minus_pt_jvp(primals, tangents):
    out = _log_one_minus_pt(*primals)
    return out, _backend.linear_tangent(_log_one_minus_pt_partials, out, primals, tangents)


def _focal_parts(x, y, gamma, cp, cn, *, partials: bool):
    """Value (and partials in x, y, gamma, cp, cn) of ``q^γ·S``, the sigmoid focal loss.

    ``q = 1 - p_t = y σ(-x) + (1 - y) σ(x)`` and ``S = cp·(-log σ(x)) + cn·(-log(1 - σ(x)))``.
    """
    t = _logistic(x)
    log_q = _log_one_minus_pt(x, y)
    dead = log_q == -jnp.inf  # q = 0: (y = 1, x = +inf) or (y = 0, x = -inf)
    log_q0 = jnp.where(dead, 0, log_q)
    # q^γ in log space; 0^γ is 1 for γ = 0 and 0 for γ > 0 (never exp(0·-inf) = NaN).
    fw = jnp.where(dead, (gamma == 0).astype(x.dtype), jnp.exp(gamma * log_q0))
    s = _xmul(cp, t.u) + _xmul(cn, t.v)
    infinite = s == jnp.inf
    # A positive term times +inf is +inf, even if q^γ underflows to 0.
    value = jnp.where(infinite, jnp.inf, fw * s)
    if not partials:
        return value
    # S/q = cp·(σ(-x)/q)·(u/σ(-x)) + cn·(σ(x)/q)·(v/σ(x)), with σ(-x)/q = exp(-v - log q) <= 1/y:
    # for cp = α_t·y the first factor is at most α_t, so nothing overflows before q^γ shrinks it.
    share_p, share_n = _xmul(cp, _exp_below_max(-t.v - log_q0)), _xmul(cn, _exp_below_max(-t.u - log_q0))
    s_over_q = _xmul(share_p, t.sn_over_snx) + _xmul(share_n, t.sp_over_sx)
    fs = fw * s_over_q  # q^(γ-1)·S, finite away from the limits below
    # Where q = 0 or S = inf, the terms of d(q^γ)·S vanish in the limit (e.g. x e^-x -> 0).
    limit = dead | infinite
    d_x = fw * (cn * t.sx - cp * t.snx) + jnp.where(limit, 0, gamma * (1 - 2 * y) * t.sx * t.snx * fs)
    d_y = jnp.where(limit, 0, gamma * (t.snx - t.sx) * fs)
    d_gamma = jnp.where(limit, 0, s * fw * log_q0)
    return d_x, d_y, d_gamma, fw * _drop_inf(t.u), fw * _drop_inf(t.v)


@jax.custom_jvp
def _focal(x: jax.Array, y: jax.Array, gamma: jax.Array, cp: jax.Array, cn: jax.Array) -> jax.Array:
    return _focal_parts(x, y, gamma, cp, cn, partials=False)


@functools.partial(_focal.defjvp, symbolic_zeros=True)
def _focal_jvp(primals, tangents):
    out = _focal(*primals)
    partials = functools.partial(_focal_parts, partials=True)
    return out, _backend.linear_tangent(partials, out, primals, tangents)


def _focal_power_parts(x, y, cp, cn, *, gamma: int, partials: bool):
    """:func:`_focal_parts` for a static whole ``γ >= 1``, with ``q`` and ``q^γ`` computed directly.

    ``q = y σ(-x) + (1 - y) σ(x)`` is a sum of non-negative terms, exact wherever it does
    not underflow, and ``q^γ <= q`` underflows with it: no log space is needed, and
    ``q^(γ-1)·S`` needs no division by ``q``.
    """
    t = _logistic(x)
    q = y * t.snx + (1 - y) * t.sx
    qg1 = q ** (gamma - 1)  # lax.integer_pow: q^0 = 1
    fw = qg1 * q
    if not partials:
        s = _term(cp, t.u) + _term(cn, t.v)
        # A positive term times +inf is +inf, even if q^γ underflows to 0.
        return jnp.where(s == jnp.inf, jnp.inf, fw * s)
    s = _xmul(cp, t.u) + _xmul(cn, t.v)
    infinite = s == jnp.inf
    # Where S = inf the terms of d(q^γ)·S vanish in the limit (double where: no inf·0 below).
    fs = qg1 * jnp.where(infinite, 0, s)  # q^(γ-1)·S
    d_x = fw * (cn * t.sx - cp * t.snx) + gamma * (1 - 2 * y) * t.sx * t.snx * fs
    d_y = gamma * (t.snx - t.sx) * fs
    return d_x, d_y, fw * _drop_inf(t.u), fw * _drop_inf(t.v)


@functools.partial(jax.custom_jvp, nondiff_argnums=(4,))
def _focal_power(x: jax.Array, y: jax.Array, cp: jax.Array, cn: jax.Array, gamma: int) -> jax.Array:
    return _focal_power_parts(x, y, cp, cn, gamma=gamma, partials=False)


@functools.partial(_focal_power.defjvp, symbolic_zeros=True)
def _focal_power_jvp(gamma, primals, tangents):
    out = _focal_power(*primals, gamma)
    partials = functools.partial(_focal_power_parts, gamma=gamma, partials=True)
    return out, _backend.linear_tangent(partials, out, primals, tangents)


def _whole_gamma(gamma: Any) -> int | None:
    """``gamma`` as a Python int when it is concrete and one of 1, 2, ..., 64; otherwise None."""
    g = _checks.concrete(gamma)
    if g is None or not 1 <= g <= 64 or g != np.round(g):
        return None
    return int(g)


# torch's binary_cross_entropy backward divides by max(p(1-p), EPSILON).
_BCE_EPSILON = 1e-12


_EXP_M100 = math.exp(-100)


def _clamped_logs(p: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(max(log p, -100), max(log(1 - p), -100)), PyTorch's clamped logs.

    Written with double wheres rather than ``maximum``: at p = 0 (or 1) the log is never
    evaluated, so a zero tangent of p gives a zero tangent (not 0/0 = NaN), to any order.
    """
    lo, hi = p > _EXP_M100, 1 - p > _EXP_M100
    # The clamp's -100, or NaN for a p outside [0, 1] (or NaN), as log would give.
    floor = jnp.where((p >= 0) & (p <= 1), -100.0, jnp.nan).astype(p.dtype)
    log_p = jnp.where(lo, jnp.log(jnp.where(lo, p, 1)), floor)
    log_1mp = jnp.where(hi, jnp.log1p(-jnp.where(hi, p, 0)), floor)
    return log_p, log_1mp


@jax.custom_jvp
def _bce_probs(p: jax.Array, y: jax.Array) -> jax.Array:
    # PyTorch clamps each log at -100, so an element's loss is at most 100.
    log_p, log_1mp = _clamped_logs(p)
    return -(y * log_p + (1 - y) * log_1mp)


def _bce_probs_partials(p: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    # PyTorch's gradient: (p - y)/max(p(1-p), 1e-12), finite at p = 0 and 1 (±1e12 there).
    d_p = (p - y) / jnp.maximum(p * (1 - p), _BCE_EPSILON)
    # d/dy of the clamped value (PyTorch returns ±inf at p = 0 or 1 instead).
    log_p, log_1mp = _clamped_logs(p)
    d_y = log_1mp - log_p
    return d_p, d_y


@functools.partial(_bce_probs.defjvp, symbolic_zeros=True)
def _bce_probs_jvp(primals, tangents):
    out = _bce_probs(*primals)
    return out, _backend.linear_tangent(_bce_probs_partials, out, primals, tangents)


# --------------------------------------------------------------------------------------
# Shared validation.


def _elementwise(fn: str, x: Any, targets: Any, where: Any, x_name: str):
    """(x, targets, mask) in the compute dtype; dropped elements replaced by 0.

    Replacing them (not only zeroing their loss) keeps NaN or inf padding out of the
    gradient of the kept ones: a dropped element gets exactly zero gradient.
    """
    x, t = _checks.elementwise_pair(fn, x, targets, x_name=x_name, integer_targets=True)
    mask = _checks.elementwise_mask(fn, where, x.shape, x_name=x_name)
    ct = _checks.compute_dtype(x.dtype)
    xf, tf = x.astype(ct), t.astype(ct)
    if mask is not None:
        xf, tf = jnp.where(mask, xf, 0), jnp.where(mask, tf, 0)
    return xf, tf, mask


# --------------------------------------------------------------------------------------
# Public functions.


def binary_cross_entropy_with_logits(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    weight: ArrayLike | None = None,
    pos_weight: ArrayLike | None = None,
    label_smoothing: ArrayLike = 0.0,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
) -> jax.Array:
    r"""Sigmoid binary cross-entropy with PyTorch's options, exact at ``±inf`` logits.

    Elementwise, with ``y' = y (1 - ε) + ε/2`` (label smoothing pulls targets toward
    1/2, the Keras convention), ``p`` = ``pos_weight`` and ``w`` = ``weight``:

    .. math::
        \ell = -w \,[\, p\, y' \log \sigma(x) + (1 - y') \log(1 - \sigma(x)) \,]

    then ``reduction``: ``"none"`` (the shape of ``logits``), ``"sum"``, or ``"mean"``,
    the sum divided by the number of kept elements (PyTorch's mean; weights scale terms,
    they do not normalise). An empty mean is 0.0, not NaN.

    Args:
      logits: floating array of any shape (bf16/f16 are computed in float32).
      targets: array of ``logits.shape`` with values in [0, 1] (soft targets allowed;
        not checked, as in PyTorch). Integer and boolean targets are cast.
      weight: optional weight that broadcasts to ``logits.shape`` by NumPy's rules
        (e.g. ``(C,)`` per entry of the last axis, or ``logits.shape``); may be traced.
      pos_weight: optional weight of the positive term, broadcast the same way: shape
        ``(C,)`` weighs each of ``C`` labels along the last axis, as in PyTorch; may be
        traced.
      label_smoothing: ε in [0, 1] (may be traced). PyTorch has no such option.
      where: boolean mask of ``logits.shape`` (or of the same rank with size-1 axes,
        e.g. ``(N, 1)`` to drop whole rows); dropped elements are 0 in ``"none"``, get
        zero gradient and leave the mean's denominator.
      reduction: ``"none"``, ``"sum"`` or ``"mean"``.

    Returns:
      The loss in float32 (float64 for float64 logits).

    Notes:
      Exact at infinite logits: ``ℓ(+inf, 1) = ℓ(-inf, 0) = 0`` and
      ``ℓ(+inf, 0) = ℓ(-inf, 1) = +inf`` (optax, PyTorch and Keras return NaN for the
      first two). The logits gradient is ``w[(1 + (p - 1)y')σ(x) - p y']`` everywhere,
      finite at ``±inf``; the gradients in targets and weights are exact at finite
      logits, and finite at infinite ones (the part of them that multiplies an
      infinite log-term is taken as 0). A ``jax.custom_jvp`` rule supplies these
      derivatives, so forward mode, reverse mode and higher orders all work.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> x, y = jnp.array([0.3, -1.2]), jnp.array([1.0, 0.3])
      >>> w, pw = jnp.array([0.5, 2.0]), jnp.array([3.0, 2.0])
      >>> jaxent.binary_cross_entropy_with_logits(x, y, weight=w, pos_weight=pw, reduction="none").tolist()
      [0.8315..., 2.1245...]
      >>> jaxent.binary_cross_entropy_with_logits(jnp.array([jnp.inf, -jnp.inf]), jnp.array([1.0, 0.0]))
      Array(0., dtype=float32)

    References:
      PyTorch ``torch.nn.functional.binary_cross_entropy_with_logits``; optax
      ``sigmoid_binary_cross_entropy``; Keras ``BinaryCrossentropy(label_smoothing=)``.
    """
    fn = "binary_cross_entropy_with_logits"
    _checks.check_reduction(fn, reduction)
    x, y, mask = _elementwise(fn, logits, targets, where, "logits")
    # Range checks: now for concrete values, under checkify for traced ones.
    checks = [_checks.traced_range_check(fn, "label_smoothing", label_smoothing, 0.0, 1.0)]
    w = _checks.elementwise_weight(fn, "weight", weight, x.shape, x.dtype, x_name="logits")
    pw = _checks.elementwise_weight(fn, "pos_weight", pos_weight, x.shape, x.dtype, x_name="logits")
    if _checks.concrete(label_smoothing) != 0:  # (a concrete 0 compiles no smoothing)
        eps = _checks.hyperparameter(label_smoothing, x.dtype)
        y = y * (1 - eps) + 0.5 * eps
    cp, cn = (y if pw is None else pw * y), 1 - y
    if w is not None:
        cp, cn = w * cp, w * cn
    return _checks.attach_checks(_reduction.reduce_elements(sigmoid_ce(x, cp, cn), mask, reduction), checks)


def binary_cross_entropy(
    probs: ArrayLike,
    targets: ArrayLike,
    *,
    weight: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
) -> jax.Array:
    r"""Binary cross-entropy of probabilities, PyTorch's ``binary_cross_entropy``.

    .. math::
        \ell = -w \,[\, y \max(\log p, -100) + (1 - y) \max(\log(1 - p), -100) \,]

    elementwise (so ``ℓ <= 100 w``), then ``reduction`` as in
    :func:`binary_cross_entropy_with_logits`. Prefer that function on logits: it is
    exact where probabilities round to 0 or 1.

    Args:
      probs: floating probabilities in [0, 1], any shape (bf16/f16 computed in float32).
      targets: array of ``probs.shape`` with values in [0, 1]; integer and boolean
        targets are cast.
      weight: optional weight that broadcasts to ``probs.shape`` (NumPy's rules); may be
        traced.
      where: boolean mask of ``probs.shape`` (or the same rank with size-1 axes).
      reduction: ``"none"``, ``"sum"`` or ``"mean"``.

    Returns:
      The loss in float32 (float64 for float64 probabilities).

    Notes:
      The gradient in ``probs`` is PyTorch's, ``w (p - y) / max(p (1 - p), 1e-12)``:
      finite at ``p = 0`` and ``1`` (``±1e12·w`` when the target disagrees; in float16
      that overflows to ``±inf``). The gradient in ``targets`` is the derivative of the
      clamped value, ``w [max(log(1-p), -100) - max(log p, -100)]``, finite everywhere
      (PyTorch's ``-logit(p)`` is ``±inf`` at ``p = 0`` and ``1``). Both come from a
      ``jax.custom_jvp`` rule: forward and reverse mode work. Probabilities outside
      [0, 1] give NaN (PyTorch raises); under ``jax.experimental.checkify`` with
      ``checkify.user_checks`` they raise an error naming the value.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> p, y = jnp.array([0.8, 0.3, 0.0]), jnp.array([1.0, 0.0, 1.0])
      >>> jaxent.binary_cross_entropy(p, y, reduction="none").tolist()
      [0.2231..., 0.3566..., 100.0]
    """
    fn = "binary_cross_entropy"
    _checks.check_reduction(fn, reduction)
    p, y, mask = _elementwise(fn, probs, targets, where, "probs")
    w = _checks.elementwise_weight(fn, "weight", weight, p.shape, p.dtype, x_name="probs")
    losses = _bce_probs(p, y)
    if w is not None:
        losses = w * losses
    bad = ~((p >= 0) & (p <= 1))  # NaN is bad too
    message = f"{fn}: probs must lie in [0, 1], got {{}}; pass probabilities, not logits."
    loss = _reduction.reduce_elements(losses, mask, reduction)
    return _checks.attach_check(loss, ~jnp.any(bad), message, _checks.offending_value(p, bad))


def sigmoid_focal_loss(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    gamma: ArrayLike = 2.0,
    alpha: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
) -> jax.Array:
    r"""Sigmoid focal loss (Lin et al.), optax's ``sigmoid_focal_loss``, in log space.

    Elementwise, with ``p = σ(x)``, ``p_t = p y + (1 - p)(1 - y)`` and
    ``α_t = α y + (1 - α)(1 - y)`` (``α_t = 1`` when ``alpha`` is None):

    .. math::
        \ell = -\alpha_t (1 - p_t)^\gamma \,[\, y \log p + (1 - y) \log(1 - p) \,]

    then ``reduction`` as in :func:`binary_cross_entropy_with_logits`. ``(1 - p_t)^γ``
    is computed as ``exp(γ log(1 - p_t))`` with ``log(1 - p_t)`` a log-sum-exp of
    log-sigmoids, so it neither underflows early nor gives NaN gradients at large logits
    (optax#1267), and ``0^0 = 1``.

    Args:
      logits: floating array of any shape (bf16/f16 computed in float32).
      targets: array of ``logits.shape`` in [0, 1] (soft targets allowed); integer and
        boolean targets are cast.
      gamma: focusing exponent ``γ >= 0`` (may be traced); ``γ = 0`` is binary
        cross-entropy (times ``α_t``).
      alpha: optional balance ``α`` in [0, 1] for the positive class (may be traced).
      where: boolean mask of ``logits.shape`` (or the same rank with size-1 axes).
      reduction: ``"none"``, ``"sum"`` or ``"mean"``.

    Returns:
      The loss in float32 (float64 for float64 logits).

    Notes:
      Exact at ``±inf`` logits (0 for a matching hard target, ``+inf`` for a wrong
      one), with finite gradients in logits, targets, ``gamma`` and ``alpha`` (parts
      that multiply an infinite log-term, or vanish in the limit, are taken as 0). A
      ``jax.custom_jvp`` rule supplies them: forward mode, reverse mode and higher
      orders work. A concrete whole ``gamma`` (1, 2, ...; the default 2) computes the
      powers directly; any other (or a traced) ``gamma`` works in log space, the same
      values to rounding.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> x, y = jnp.array([2.0, -1.0]), jnp.array([1.0, 0.0])
      >>> jaxent.sigmoid_focal_loss(x, y, reduction="none").tolist()
      [0.0018036..., 0.0226580...]
      >>> jaxent.sigmoid_focal_loss(x, y, alpha=0.25, reduction="none").tolist()
      [0.0004509..., 0.0169935...]

    References:
      Lin et al., *Focal Loss for Dense Object Detection*, 2017; optax
      ``sigmoid_focal_loss``.
    """
    fn = "sigmoid_focal_loss"
    _checks.check_reduction(fn, reduction)
    x, y, mask = _elementwise(fn, logits, targets, where, "logits")
    # Range checks: now for concrete values, under checkify for traced ones.
    checks = [
        _checks.traced_range_check(fn, "gamma", gamma, 0.0),
        _checks.traced_range_check(fn, "alpha", alpha, 0.0, 1.0),
    ]
    if alpha is None:
        cp, cn = y, 1 - y
    else:
        a = _checks.hyperparameter(alpha, x.dtype)
        alpha_t = a * y + (1 - a) * (1 - y)
        cp, cn = alpha_t * y, alpha_t * (1 - y)
    whole = _whole_gamma(gamma)
    if whole is not None:  # the default γ = 2: plain powers, no log space
        losses = _focal_power(x, y, cp, cn, whole)
    elif _checks.concrete(gamma) == 0:  # binary cross-entropy (times α_t)
        losses = sigmoid_ce(x, cp, cn)
    else:
        losses = _focal(x, y, _checks.hyperparameter(gamma, x.dtype), cp, cn)
    return _checks.attach_checks(_reduction.reduce_elements(losses, mask, reduction), checks)


# --------------------------------------------------------------------------------------
# Loss objects.


@loss_object
class BCEWithLogitsLoss(LossObject):
    """:func:`binary_cross_entropy_with_logits` as a frozen dataclass pytree.

    ``weight``, ``pos_weight`` and ``label_smoothing`` are pytree leaves (a Python 0 for
    ``label_smoothing`` stays static, so that no smoothing is compiled for it under
    ``jit``); ``reduction`` is static.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.BCEWithLogitsLoss(pos_weight=jnp.ones(1))(jnp.array([1.5]), jnp.array([1.0]))
      Array(0.2014, dtype=float32)
    """

    function: ClassVar = staticmethod(binary_cross_entropy_with_logits)
    weight: ArrayLike | None = None
    pos_weight: ArrayLike | None = None
    label_smoothing: ArrayLike = 0.0
    reduction: _reduction.Reduction = static_field(default="mean")


@loss_object
class BCELoss(LossObject):
    """:func:`binary_cross_entropy` as a frozen dataclass pytree: ``BCELoss(...)(probs, targets)``.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.BCELoss()(jnp.array([0.8, 0.3]), jnp.array([1.0, 0.0]))
      Array(0.2899, dtype=float32)
    """

    function: ClassVar = staticmethod(binary_cross_entropy)
    weight: ArrayLike | None = None
    reduction: _reduction.Reduction = static_field(default="mean")


@loss_object
class SigmoidFocalLoss(LossObject):
    """:func:`sigmoid_focal_loss` as a frozen dataclass pytree: ``SigmoidFocalLoss(...)(logits, targets)``.

    ``gamma`` and ``alpha`` are pytree leaves (a Python 0 for ``gamma`` stays static);
    ``reduction`` is static.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.SigmoidFocalLoss(gamma=2.0, reduction="sum")(jnp.array([2.0, -1.0]), jnp.array([1.0, 0.0]))
      Array(0.0245, dtype=float32)
    """

    function: ClassVar = staticmethod(sigmoid_focal_loss)
    gamma: ArrayLike = 2.0
    alpha: ArrayLike | None = None
    reduction: _reduction.Reduction = static_field(default="mean")
