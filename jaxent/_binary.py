"""Binary cross-entropy (on logits and on probabilities) and the sigmoid focal loss.

All three are elementwise: ``reduction="none"`` returns one loss per element (the shape
of the logits), ``weight``, ``pos_weight`` and ``alpha`` scale terms, and ``"mean"``
divides the sum by the number of kept (unmasked) elements, as PyTorch does.

The sigmoid losses are sums of two log-terms with non-negative coefficients,
``cp·(-log σ(x)) + cn·(-log(1 - σ(x)))``, evaluated by ``jax.custom_jvp`` rules whose
partial derivatives are written out. That makes them exact at ``x = ±inf`` (a term
with a zero coefficient is 0, not ``0·inf = NaN``) with finite gradients there, while
keeping forward mode, reverse mode and higher orders (the rules are plain JAX).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from jax.experimental import checkify

from jaxent import _checks, _reduction
from jaxent._objects import LossObject, static_field

# --------------------------------------------------------------------------------------
# Elementwise cores with written-out derivatives.


def _log_terms(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    # -log σ(x) = softplus(-x) and -log(1 - σ(x)) = -log σ(-x) = softplus(x): exact at ±inf.
    return jax.nn.softplus(-x), jax.nn.softplus(x)


def _drop_inf(a: jax.Array) -> jax.Array:
    """inf -> 0: the derivative in the coefficient of an infinite term (the loss is +inf there anyway)."""
    return jnp.where(jnp.isinf(a), 0, a)


def _xmul(c: jax.Array, a: jax.Array) -> jax.Array:
    """``c·a`` with ``0·inf = 0``: a term with a zero coefficient contributes nothing.

    Written as a product (not ``where(c == 0, 0, c·a)``) so that its derivative in ``c``
    stays ``a`` at ``c = 0``, which second derivatives at hard targets need.
    """
    return c * jnp.where(c == 0, _drop_inf(a), a)


@jax.custom_jvp
def _sigmoid_ce(x: jax.Array, cp: jax.Array, cn: jax.Array) -> jax.Array:
    """``cp·(-log σ(x)) + cn·(-log(1 - σ(x)))`` elementwise, for ``cp, cn >= 0``."""
    u, v = _log_terms(x)
    return _xmul(cp, u) + _xmul(cn, v)


@_sigmoid_ce.defjvp
def _sigmoid_ce_jvp(primals, tangents):
    x, cp, cn = primals
    dx, dcp, dcn = tangents
    u, v = _log_terms(x)
    # d/dx = cn σ(x) - cp σ(-x): finite at ±inf (PyTorch's w[(1 + (p-1)y)σ(x) - p y]).
    dout = (cn * jax.nn.sigmoid(x) - cp * jax.nn.sigmoid(-x)) * dx + _drop_inf(u) * dcp + _drop_inf(v) * dcn
    return _sigmoid_ce(x, cp, cn), dout


def _sp_over_sigmoid(z: jax.Array) -> jax.Array:
    """``softplus(z) / σ(z)`` (>= 1; +inf only at z = +inf), without 0/0 or inf·0."""
    t = jnp.exp(jnp.minimum(z, 0))
    ts = jnp.where(t == 0, 1, t)
    # z < 0, t = e^z: softplus(z)/σ(z) = (1 + t) log1p(t)/t, and log1p(t)/t -> 1 as t -> 0.
    negative = (1 + t) * jnp.where(t == 0, 1, jnp.log1p(ts) / ts)
    # z >= 0: 1/σ(z) = 1 + e^-z lies in (1, 2].
    positive = jax.nn.softplus(z) * (1 + jnp.exp(-jnp.maximum(z, 0)))
    return jnp.where(z < 0, negative, positive)


@jax.custom_jvp
def _log_one_minus_pt(x: jax.Array, y: jax.Array) -> jax.Array:
    """``log q`` for ``q = 1 - p_t = y σ(-x) + (1 - y) σ(x)``; -inf only where q = 0."""
    u, v = _log_terms(x)
    # log q = logaddexp(log y + log σ(-x), log(1-y) + log σ(x)), with log σ(-x) = -v, log σ(x) = -u.
    return jnp.logaddexp(jnp.log(y) - v, jnp.log1p(-y) - u)


@_log_one_minus_pt.defjvp
def _log_one_minus_pt_jvp(primals, tangents):
    # Written out because autodiff of log y at y = 0 (or log(1-y) at y = 1) is inf·0 = NaN,
    # which would reach second derivatives at hard targets.
    x, y = primals
    dx, dy = tangents
    log_q = _log_one_minus_pt(x, y)
    u, v = _log_terms(x)
    dead = log_q == -jnp.inf
    log_q0 = jnp.where(dead, 0, log_q)
    # d log q/dx = (1 - 2y) σ(x)σ(-x)/q = (1 - 2y)/D, D = y(1 + e^-x) + (1 - y)(1 + e^x) >= 1.
    d = _xmul(y, 1 + jnp.exp(-x)) + _xmul(1 - y, 1 + jnp.exp(x))
    # d log q/dy = (σ(-x) - σ(x))/q, with σ(-x)/q = exp(-v - log q) and σ(x)/q = exp(-u - log q).
    d_y = jnp.where(dead, 0, jnp.exp(-v - log_q0) - jnp.exp(-u - log_q0))
    return log_q, (1 - 2 * y) / d * dx + d_y * dy


def _focal_parts(x, y, gamma, cp, cn, *, partials: bool):
    """Value (and partials in x, y, gamma, cp, cn) of ``q^γ·S``, the sigmoid focal loss.

    ``q = 1 - p_t = y σ(-x) + (1 - y) σ(x)`` and ``S = cp·(-log σ(x)) + cn·(-log(1 - σ(x)))``.
    """
    u, v = _log_terms(x)
    log_q = _log_one_minus_pt(x, y)
    dead = log_q == -jnp.inf  # q = 0: (y = 1, x = +inf) or (y = 0, x = -inf)
    log_q0 = jnp.where(dead, 0, log_q)
    # q^γ in log space; 0^γ is 1 for γ = 0 and 0 for γ > 0 (never exp(0·-inf) = NaN).
    fw = jnp.where(dead, (gamma == 0).astype(x.dtype), jnp.exp(gamma * log_q0))
    s = _xmul(cp, u) + _xmul(cn, v)
    infinite = s == jnp.inf
    # A positive term times +inf is +inf, even if q^γ underflows to 0.
    value = jnp.where(infinite, jnp.inf, fw * s)
    if not partials:
        return value
    sx, snx = jax.nn.sigmoid(x), jax.nn.sigmoid(-x)
    # S/q = cp·(σ(-x)/q)·(u/σ(-x)) + cn·(σ(x)/q)·(v/σ(x)), with σ(-x)/q = exp(-v - log q) <= 1/y:
    # for cp = α_t·y the first factor is at most α_t, so nothing overflows before q^γ shrinks it.
    share_p, share_n = _xmul(cp, jnp.exp(-v - log_q0)), _xmul(cn, jnp.exp(-u - log_q0))
    s_over_q = _xmul(share_p, _sp_over_sigmoid(-x)) + _xmul(share_n, _sp_over_sigmoid(x))
    fs = fw * s_over_q  # q^(γ-1)·S, finite away from the limits below
    # Where q = 0 or S = inf, the terms of d(q^γ)·S vanish in the limit (e.g. x e^-x -> 0).
    limit = dead | infinite
    d_x = fw * (cn * sx - cp * snx) + jnp.where(limit, 0, gamma * (1 - 2 * y) * sx * snx * fs)
    d_y = jnp.where(limit, 0, gamma * (snx - sx) * fs)
    d_gamma = jnp.where(limit, 0, s * fw * log_q0)
    return value, (d_x, d_y, d_gamma, fw * _drop_inf(u), fw * _drop_inf(v))


@jax.custom_jvp
def _focal(x: jax.Array, y: jax.Array, gamma: jax.Array, cp: jax.Array, cn: jax.Array) -> jax.Array:
    return _focal_parts(x, y, gamma, cp, cn, partials=False)


@_focal.defjvp
def _focal_jvp(primals, tangents):
    _, partials = _focal_parts(*primals, partials=True)
    return _focal(*primals), sum(p * t for p, t in zip(partials, tangents))


# torch's binary_cross_entropy backward divides by max(p(1-p), EPSILON).
_BCE_EPSILON = 1e-12


@jax.custom_jvp
def _bce_probs(p: jax.Array, y: jax.Array) -> jax.Array:
    # PyTorch clamps each log at -100, so an element's loss is at most 100.
    log_p = jnp.maximum(jnp.log(p), -100)
    log_1mp = jnp.maximum(jnp.log1p(-p), -100)
    return -(y * log_p + (1 - y) * log_1mp)


@_bce_probs.defjvp
def _bce_probs_jvp(primals, tangents):
    p, y = primals
    dp, dy = tangents
    # PyTorch's gradient: (p - y)/max(p(1-p), 1e-12), finite at p = 0 and 1 (±1e12 there).
    d_p = (p - y) / jnp.maximum(p * (1 - p), _BCE_EPSILON)
    # d/dy of the clamped value (PyTorch returns ±inf at p = 0 or 1 instead).
    d_y = jnp.maximum(jnp.log1p(-p), -100) - jnp.maximum(jnp.log(p), -100)
    return _bce_probs(p, y), d_p * dp + d_y * dy


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
    logits: Any,
    targets: Any,
    *,
    weight: Any = None,
    pos_weight: Any = None,
    label_smoothing: Any = 0.0,
    where: Any = None,
    reduction: str = "mean",
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
    _checks.check_range(fn, "label_smoothing", label_smoothing, 0.0, 1.0)
    w = _checks.elementwise_weight(fn, "weight", weight, x.shape, x.dtype, x_name="logits")
    pw = _checks.elementwise_weight(fn, "pos_weight", pos_weight, x.shape, x.dtype, x_name="logits")
    eps = _checks.hyperparameter(label_smoothing, x.dtype)
    y = y * (1 - eps) + 0.5 * eps
    cp, cn = (y if pw is None else pw * y), 1 - y
    if w is not None:
        cp, cn = w * cp, w * cn
    return _reduction.reduce_kept(_sigmoid_ce(x, cp, cn), mask, reduction)


def binary_cross_entropy(
    probs: Any,
    targets: Any,
    *,
    weight: Any = None,
    where: Any = None,
    reduction: str = "mean",
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
    bad = ~((p >= 0) & (p <= 1))  # NaN is bad too
    first_bad = _checks.offending_value(p, bad)
    checkify.debug_check(
        ~jnp.any(bad), f"{fn}: probs must lie in [0, 1], got {{}}; pass probabilities, not logits.", first_bad
    )
    losses = _bce_probs(p, y)
    if w is not None:
        losses = w * losses
    return _reduction.reduce_kept(losses, mask, reduction)


def sigmoid_focal_loss(
    logits: Any,
    targets: Any,
    *,
    gamma: Any = 2.0,
    alpha: Any = None,
    where: Any = None,
    reduction: str = "mean",
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
      orders work.

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
    _checks.check_range(fn, "gamma", gamma, 0.0)
    _checks.check_range(fn, "alpha", alpha, 0.0, 1.0)
    if alpha is None:
        cp, cn = y, 1 - y
    else:
        a = _checks.hyperparameter(alpha, x.dtype)
        alpha_t = a * y + (1 - a) * (1 - y)
        cp, cn = alpha_t * y, alpha_t * (1 - y)
    return _reduction.reduce_kept(_focal(x, y, _checks.hyperparameter(gamma, x.dtype), cp, cn), mask, reduction)


# --------------------------------------------------------------------------------------
# Loss objects.


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class BCEWithLogitsLoss(LossObject):
    """:func:`binary_cross_entropy_with_logits` as a frozen dataclass pytree.

    ``weight``, ``pos_weight`` and ``label_smoothing`` are pytree leaves; ``reduction``
    is static.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.BCEWithLogitsLoss(pos_weight=jnp.ones(1))(jnp.array([1.5]), jnp.array([1.0]))
      Array(0.2014, dtype=float32)
    """

    function: ClassVar = staticmethod(binary_cross_entropy_with_logits)
    weight: Any = None
    pos_weight: Any = None
    label_smoothing: Any = 0.0
    reduction: str = static_field("mean")


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class BCELoss(LossObject):
    """:func:`binary_cross_entropy` as a frozen dataclass pytree: ``BCELoss(...)(probs, targets)``.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.BCELoss()(jnp.array([0.8, 0.3]), jnp.array([1.0, 0.0]))
      Array(0.2899, dtype=float32)
    """

    function: ClassVar = staticmethod(binary_cross_entropy)
    weight: Any = None
    reduction: str = static_field("mean")


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class SigmoidFocalLoss(LossObject):
    """:func:`sigmoid_focal_loss` as a frozen dataclass pytree: ``SigmoidFocalLoss(...)(logits, targets)``.

    ``gamma`` and ``alpha`` are pytree leaves; ``reduction`` is static.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.SigmoidFocalLoss(gamma=2.0, reduction="sum")(jnp.array([2.0, -1.0]), jnp.array([1.0, 0.0]))
      Array(0.0245, dtype=float32)
    """

    function: ClassVar = staticmethod(sigmoid_focal_loss)
    gamma: Any = 2.0
    alpha: Any = None
    reduction: str = static_field("mean")
