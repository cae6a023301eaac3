"""Modulated softmax cross-entropies: the focal loss and the Poly-1 loss.

Both reweight each class's cross-entropy ``ce = -log p`` by a function ``ψ(ce)``
(focal: ``(1 - p)^γ ce``; Poly-1: ``ce + ε (1 - p)``), written in terms of ``ce``
rather than ``p``: ``1 - p = -expm1(-ce)`` keeps its relative accuracy as ``p -> 1``,
where ``1 - p`` computed from ``p`` rounds to 0.

Integer targets need only the target's ``ce``: they call :func:`jaxent.cross_entropy`
(reduction ``"none"``) and inherit its ``custom_jvp`` core (safe at ``-inf`` logits, no
float32 copy of half-precision logits, NaN for out-of-range labels). Probability targets
need one ``ce`` per class: :func:`_prob_losses` is a ``custom_jvp`` whose tangent is
linear in the input tangents and, under ``jax.checkpoint``, recomputes every per-class
value from the logits, the logsumexp and ``S = Σ_c w_c ψ'(ce_c)`` per example: forward
mode evaluates it, reverse mode transposes it into one elementwise pass.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxent import _backend, _checks, _reduction
from jaxent._backend import row_sums
from jaxent._objects import LossObject, loss_object, static_field
from jaxent._softmax import cross_entropy, row_max

# --------------------------------------------------------------------------------------
# Per-class modulations ψ(ce) of the cross-entropy ce = -log p, with their derivatives.


def _focal_parts(ce: jax.Array, gamma: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(ψ, dψ/dce, dψ/dγ) for the focal term ψ = (1 - p)^γ ce, p = exp(-ce), elementwise."""
    # 1 - p = -expm1(-ce): accurate as p -> 1, where log1p(-p) is log(0) once p rounds to 1.
    u = -jnp.expm1(-ce)
    pos = u > 0
    finite = pos & (ce != jnp.inf)
    ce_s, u_s = jnp.where(finite, ce, 1), jnp.where(finite, u, 1)
    # (1 - p)^γ = exp(γ log(1 - p)); at p = 1 it is 1 for γ = 0 and 0 for γ > 0 (never 0 ** traced γ).
    f = jnp.where(pos, jnp.exp(gamma * jnp.log(jnp.where(pos, u, 1))), jnp.where(gamma == 0, 1, 0).astype(ce.dtype))
    # r = p ce / (1 - p): -> 1 as ce -> 0 (1 - p ~ ce), -> 0 as ce -> inf.
    r = jnp.where(finite, jnp.exp(-ce_s) * ce_s / u_s, jnp.where(pos, 0, 1).astype(ce.dtype))
    # dψ/dce = (1 - p)^γ (1 + γ p ce / (1 - p)): bounded for every γ >= 0, even γ < 1 as p -> 1.
    d_ce = f * (1 + gamma * r)
    # dψ/dγ = (1 - p)^γ ce log(1 - p) -> 0 at p = 1 and at ce = inf (where log(1 - p) = 0).
    d_gamma = jnp.where(finite, f * ce_s * jnp.log(u_s), 0)
    return f * ce, d_ce, d_gamma


def _poly_parts(ce: jax.Array, epsilon: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(ψ, dψ/dce, dψ/dε) for the Poly-1 term ψ = ce + ε (1 - p), p = exp(-ce), elementwise."""
    u = -jnp.expm1(-ce)  # 1 - p, accurate as p -> 1
    return ce + epsilon * u, 1 + epsilon * jnp.exp(-ce), u


_PARTS = {"focal": _focal_parts, "poly": _poly_parts}


@jax.custom_jvp
def _focal_term(ce: jax.Array, gamma: jax.Array) -> jax.Array:
    """``(1 - exp(-ce))^γ · ce`` elementwise, with the bounded derivative of :func:`_focal_parts`."""
    return _focal_parts(ce, gamma)[0]


@_focal_term.defjvp
def _focal_term_jvp(primals, tangents):
    (ce, gamma), (dce, dgamma) = primals, tangents
    value, d_ce, d_gamma = _focal_parts(ce, gamma)
    return value, d_ce * dce + d_gamma * dgamma


# --------------------------------------------------------------------------------------
# Probability targets: a custom_jvp over Σ_c w_c ψ(ce_c) that saves no [batch, C] floats.


def _class_ce(x: jax.Array, mask: jax.Array | None, lse: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(ce_c = lse - x_c on the remaining classes R, 0 off R; R): R = not masked and not -inf."""
    xf = x.astype(lse.dtype)
    r = xf > -jnp.inf if mask is None else (xf > -jnp.inf) & mask
    # Double where: entries off R never enter the arithmetic, so no inf or NaN reaches gradients.
    return jnp.where(r, lse - jnp.where(r, xf, lse), 0), r


def _masked_lse(x: jax.Array, mask: jax.Array | None) -> jax.Array:
    """logsumexp over the remaining classes, ``[..., 1]``; 0 for a row with none (its loss is 0 or inf)."""
    ct = _checks.compute_dtype(x.dtype)
    # Shift by the row max (a shift, no gradient); the floor keeps an all -inf row at exp(-inf) = 0.
    m = jnp.maximum(row_max(x, mask).astype(ct), jnp.finfo(ct).min)[..., None]
    xf = x.astype(ct)
    r = xf > -jnp.inf if mask is None else (xf > -jnp.inf) & mask
    # Paired with a count so that the reduce is variadic and fuses its producers (see row_sums).
    (s,), (n,) = row_sums((jnp.where(r, jnp.exp(jnp.where(r, xf, m) - m), 0),), (r,))
    # s >= 1 when any class remains (the max contributes exp(0)); an empty row gets 0.
    return jnp.where(n > 0, m[..., 0] + jnp.log(jnp.where(n > 0, s, 1)), 0)[..., None]


def _class_weights(q: jax.Array, alpha: jax.Array | None, r: jax.Array, dtype: Any) -> jax.Array:
    """w_c = α_c q_c on the classes ``r``, 0 elsewhere, in ``dtype``."""
    w = q.astype(dtype)
    if alpha is not None:
        w = (alpha if alpha.ndim == 0 else alpha.reshape((1,) * (q.ndim - 1) + (-1,))) * w
    return jnp.where(r, w, 0)


def _prob_primal(kind, x, q, mask, alpha, hyper, rows=None):
    """(losses Σ_c w_c ψ(ce_c), lse, S = Σ_c w_c ψ'(ce_c), which the tangent needs)."""
    lse = _masked_lse(x, mask)
    ce, r = _class_ce(x, mask, lse)
    w = _class_weights(q, alpha, r, lse.dtype)
    value, d_ce, _ = _PARTS[kind](ce, hyper)
    # A zero target weight on a class whose ce overflows to inf adds 0, not 0 * inf = NaN.
    nz = w != 0
    # Poly-1's ψ and ψ' share only exp(-ce), which XLA computes in each of two loops; the
    # focal ones share a power, which XLA:CPU would write to memory: one reduce (see row_sums).
    (losses, s), (n,) = row_sums(
        (jnp.where(nz, w * value, 0), jnp.where(nz, w * d_ce, 0)), (r,), together=kind == "focal"
    )
    return jnp.where(n > 0, losses, 0), lse, s[..., None]


def _prob_tangent(kind, primals, lse, s, tangents):
    """Linear in the tangents (d logits, d targets, d alpha, d hyperparameter); every
    per-class value is recomputed from the primals, so under ``jax.checkpoint`` reverse
    mode saves nothing of size ``[batch, C]``. Each term reads the primals on its own
    (``_backend.separately``), so that each gradient of the transpose is its own pass."""
    x, q, mask, alpha, hyper, rows = primals
    dx, dq, _, dalpha, dhyper, _ = tangents
    if rows is not None:
        # Dropped examples get exactly zero tangents and gradients, NaN inputs or not: their
        # inputs are replaced by 0 (every partial finite) and their tangents selected away
        # at the end (transposed: a zero cotangent times a finite partial).
        keep = rows[..., None]
        x, q, lse, s = jnp.where(keep, x, 0), jnp.where(keep, q, 0), jnp.where(keep, lse, 0), jnp.where(keep, s, 0)

    def recompute(i):
        xb, qb, lb = _backend.separately((x, q, lse), i)
        ce, r = _class_ce(xb, mask, lb)
        return (ce, r, qb, _class_weights(qb, alpha, r, lb.dtype), *_PARTS[kind](ce, hyper))

    ce, r, _, w, _, d_ce, _ = recompute(0)
    p = jnp.where(r, jnp.exp(-ce), 0)
    dxf = jnp.where(r, dx.astype(lse.dtype), 0)
    # dℓ/dx_k = Σ_c w_c ψ'(ce_c) (p_k - δ_ck) = p_k S - w_k ψ'(ce_k), since dce_c/dx_k = p_k - δ_ck.
    tangent = jnp.sum((p * s - w * d_ce) * dxf, axis=-1)
    # dℓ/dq_c = α_c ψ(ce_c) and dℓ/dα_c = q_c ψ(ce_c) on the remaining classes (w = α q).
    _, r, _, _, value, _, _ = recompute(1)
    tangent = tangent + jnp.sum(_class_weights(dq, alpha, r, lse.dtype) * value, axis=-1)
    if dalpha is not None:
        _, r, qb, _, value, _, _ = recompute(2)
        tangent = tangent + jnp.sum(_class_weights(qb, dalpha, r, lse.dtype) * value, axis=-1)
    # dℓ/dh = Σ_c w_c ∂ψ/∂h for the hyperparameter h (γ or ε).
    _, r, _, w, _, _, d_hyper = recompute(3)
    tangent = tangent + dhyper * jnp.sum(w * d_hyper, axis=-1)
    return tangent if rows is None else jnp.where(rows, tangent, 0)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _prob_losses(kind, x, q, mask, alpha, hyper, rows=None):
    """Σ_c α_c q_c ψ(ce_c) over the remaining classes (``kind`` names ψ); +inf handled by the
    caller. Examples outside ``rows`` (when given) get zero tangents."""
    return _prob_primal(kind, x, q, mask, alpha, hyper)[0]


@_prob_losses.defjvp
def _prob_losses_jvp(kind, primals, tangents):
    losses, lse, s = _prob_primal(kind, *primals)
    # The class mask is boolean: no tangent (float0), which the tangent map ignores.
    tangents = tuple(None if t is None or t.dtype == jax.dtypes.float0 else t for t in tangents)
    tangent = jax.checkpoint(functools.partial(_prob_tangent, kind), prevent_cse=False)
    return losses, tangent(primals, lse, s, tangents)


def _impossible(x: jax.Array, mask: jax.Array | None, q: jax.Array, alpha: jax.Array | None) -> jax.Array:
    """Target mass (α_c q_c != 0) on an unmasked -inf class: the loss is +inf."""
    lost = x == -jnp.inf if mask is None else (x == -jnp.inf) & mask
    return jnp.any(lost & (_class_weights(q, alpha, lost, _checks.compute_dtype(x.dtype)) != 0), axis=-1)


def _example_or_class_mask(lay: _checks.Layout) -> jax.Array | None:
    return lay.class_mask if lay.class_mask is not None else lay.example_mask


# --------------------------------------------------------------------------------------
# Public functions.


def focal_loss(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    gamma: ArrayLike = 2.0,
    alpha: ArrayLike | None = None,
    axis: int | tuple[int, ...] = -1,
    ignore_index: int | None = -100,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
) -> jax.Array:
    r"""Softmax (categorical) focal loss, computed in log space.

    With ``p = softmax(x)`` over the class axis and targets ``q`` (one-hot for integer
    targets), each example's loss is Keras ``CategoricalFocalCrossentropy``'s

    .. math::
        \ell_n = -\sum_c \alpha_c\, q_{n,c}\, (1 - p_{n,c})^\gamma \log p_{n,c}

    so for integer targets ``ℓ_n = α_{y_n} (1 - p_{n,y_n})^γ · CE_n`` with ``CE_n`` the
    cross-entropy. ``gamma=0`` with ``alpha=None`` is :func:`cross_entropy`, value and
    gradient (bit for bit for integer targets, to rounding for probability targets).
    ``alpha`` scales each term (it is not a class weight of the mean): ``"mean"`` divides
    the sum by the number of kept (not ignored, not masked) examples, as Keras does.
    An empty mean is 0.0, not NaN.

    Args:
      logits: ``[..., C, ...]`` floating logits (bf16/f16 are computed in float32).
      targets: integer class indices of shape ``logits.shape`` without ``axis``, or
        floating probabilities (one-hot or soft) of ``logits.shape``.
      gamma: focusing parameter ``γ >= 0`` (may be traced); 0 gives cross-entropy.
      alpha: optional balancing factor ``α >= 0``: one number or one per class ``[C]``
        (may be traced). ``None`` means 1 (Keras's default is 0.25: pass it explicitly).
      axis: static class axis, or a tuple of axes (integer targets are then the flat
        index over them, optax's convention). ``axis=1`` is PyTorch's ``(N, C, d1, ...)``.
      ignore_index: static integer target to drop (0 loss, 0 gradient, out of the mean),
        as in :func:`cross_entropy`; ``None`` turns it off. Probability targets do not
        use it (a non-negative value is an error).
      where: boolean mask of the batch shape (drops examples) or of ``logits.shape``
        (drops classes, exactly as if they were removed from logits and targets).
      reduction: ``"none"`` (batch shape), ``"sum"`` or ``"mean"`` (scalars).

    Returns:
      The loss in float32 (float64 for float64 logits).

    Notes:
      The modulating factor is ``exp(γ log(1 - p))`` with ``1 - p = -expm1(log p)``, so
      it is as accurate as ``log p`` itself when ``p -> 1``, and ``0 ** γ`` is never
      evaluated: at ``p = 1`` the factor is 1 for ``γ = 0`` and 0 for ``γ > 0``, with
      finite gradients for every ``γ >= 0``, also at 1e4-scale logits: the derivative
      with respect to ``CE = -log p`` is taken in the bounded form
      ``(1-p)^γ (1 + γ p CE / (1-p))`` (``p CE / (1-p) -> 1`` as ``p -> 1``), never as
      ``γ (1-p)^(γ-1)``, which is infinite there for ``γ < 1``. ``-inf`` logits are
      impossible classes (probability 0, zero gradient, also for the targets); target
      mass on one gives ``+inf`` with finite gradients. An integer target outside ``[0, C)``
      that is not ``ignore_index`` gives NaN for that example (and, under
      ``jax.experimental.checkify`` with ``checkify.user_checks``, an error naming it).
      Gradients come from ``jax.custom_jvp`` rules (integer targets: :func:`cross_entropy`'s;
      probability targets: one that saves only the logits, in their dtype, and two
      numbers per example), so forward mode (``jax.jvp``, ``jax.jacfwd``), reverse mode
      (``grad``, grad-of-grad) and ``jax.hessian`` all work.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> # Keras's docstring case: softmax(log p) = p.
      >>> logits = jnp.log(jnp.array([[0.05, 0.9, 0.05], [0.1, 0.85, 0.05]]))
      >>> jaxent.focal_loss(logits, jnp.array([1, 2]), alpha=0.25, reduction="none").tolist()
      [0.000263..., 0.6759...]
      >>> jaxent.focal_loss(logits, jnp.array([1, 2]), gamma=0.0)  # = cross_entropy
      Array(1.5506, dtype=float32)

    References:
      Lin et al., *Focal Loss for Dense Object Detection* (2017); Keras
      ``CategoricalFocalCrossentropy``.
    """
    fn = "focal_loss"
    _checks.check_reduction(fn, reduction)
    _checks.check_ignore_index(fn, ignore_index)
    lay = _checks.class_layout(fn, logits, targets, axis=axis, where=where)
    _checks.check_range(fn, "gamma", gamma, 0.0)
    a = _checks.class_hyperparameter(fn, "alpha", alpha, lay, low=0.0)
    if not lay.integer_targets:
        _checks.check_ignore_index_for_probabilities(fn, ignore_index)
    ct = _checks.compute_dtype(lay.x.dtype)
    g = _checks.hyperparameter(gamma, ct)
    kept = _checks.kept_examples(lay, ignore_index)
    if lay.integer_targets:
        y, _ = _checks.class_labels(fn, lay, kept, ignore_index)
        ce = cross_entropy(
            lay.x, lay.targets, ignore_index=ignore_index, where=_example_or_class_mask(lay), reduction="none"
        )
        impossible = ce == jnp.inf
        # Double where: the +inf of an impossible target is put back after the product, so
        # neither a zero alpha (0 * inf) nor the gradients ever see it.
        losses = _focal_term(jnp.where(impossible, 0, ce), g)
        if a is not None:
            ay = a if a.ndim == 0 else a[y]
            losses, impossible = ay * losses, impossible & (ay != 0)
        losses = jnp.where(impossible, jnp.inf, losses)
    else:
        rows = kept if _checks.drops_examples(lay, ignore_index) else None
        losses = _prob_losses("focal", lay.x, lay.targets, lay.class_mask, a, g, rows)
        losses = jnp.where(_impossible(lay.x, lay.class_mask, lay.targets, a), jnp.inf, losses)
    return _reduction.reduce_kept(losses, kept, reduction)


def poly1_cross_entropy(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    epsilon: ArrayLike = 1.0,
    axis: int | tuple[int, ...] = -1,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
) -> jax.Array:
    r"""Poly-1 loss: cross-entropy plus ``ε`` times the first polynomial term ``1 - p_t``.

    With ``p = softmax(x)`` over the class axis and targets ``q`` (one-hot for integer
    targets), each example's loss is optax's ``poly_loss_cross_entropy``

    .. math::
        \ell_n = -\sum_c q_{n,c} \log p_{n,c} + \varepsilon \sum_c q_{n,c} (1 - p_{n,c})

    which is ``CE_n + ε (1 - p_{n,t})`` with ``p_t = Σ_c q_c p_c`` for targets summing to
    1 (for integer targets ``1 - p_y = 1 - exp(-CE)`` exactly). Then ``reduction``;
    ``"mean"`` divides by the number of kept examples. An empty mean is 0.0, not NaN.

    Args:
      logits: ``[..., C, ...]`` floating logits (bf16/f16 are computed in float32).
      targets: integer class indices of shape ``logits.shape`` without ``axis``, or
        floating probabilities (one-hot or soft) of ``logits.shape``.
      epsilon: coefficient ``ε >= -1`` of ``1 - p_t`` (may be traced; checked under
        ``jax.experimental.checkify`` then). The paper recommends 2 for ImageNet
        classification and -1 for detection; ``ε >= -1`` keeps the loss non-negative and
        decreasing in ``p_t`` (``-log p >= 1 - p``), so smaller values are an error. The
        default is 1 (optax's is 2).
      axis: static class axis, or a tuple of axes (integer targets are the flat index).
      where: boolean mask of the batch shape (drops examples) or of ``logits.shape``
        (drops classes from the softmax and from the targets, as optax's ``where``).
      reduction: ``"none"`` (batch shape), ``"sum"`` or ``"mean"`` (scalars).

    Returns:
      The loss in float32 (float64 for float64 logits).

    Notes:
      There is no ``ignore_index`` (as in optax): every integer target must lie in
      ``[0, C)``, and one outside gives NaN for its example (an error under
      ``jax.experimental.checkify``); drop padding with ``where``. ``1 - p`` is computed
      as ``-expm1(log p)``, accurate as ``p -> 1``. ``-inf`` logits are impossible classes
      (probability 0, zero gradient, also for the targets); target mass on one gives
      ``+inf`` with finite gradients. ``epsilon=0`` is :func:`cross_entropy`. Gradients come from
      ``jax.custom_jvp`` rules (integer targets: :func:`cross_entropy`'s; probability targets:
      one that saves only the logits and two numbers per example), so forward mode
      (``jax.jvp``, ``jax.jacfwd``), reverse mode (``grad``, grad-of-grad) and
      ``jax.hessian`` all work.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> logits = jnp.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]])
      >>> jaxent.poly1_cross_entropy(logits, jnp.array([0, 1]), epsilon=2.0, reduction="none").tolist()
      [0.7587..., 4.8473...]

    References:
      Leng et al., *PolyLoss: A Polynomial Expansion Perspective of Classification Loss
      Functions* (ICLR 2022); optax ``poly_loss_cross_entropy``.
    """
    fn = "poly1_cross_entropy"
    _checks.check_reduction(fn, reduction)
    lay = _checks.class_layout(fn, logits, targets, axis=axis, where=where)
    _checks.check_range(fn, "epsilon", epsilon, -1.0)
    ct = _checks.compute_dtype(lay.x.dtype)
    eps = _checks.hyperparameter(epsilon, ct)
    kept = _checks.kept_examples(lay, None)
    if lay.integer_targets:
        _checks.class_labels(fn, lay, kept, None)  # names this function in the checkify error
        ce = cross_entropy(lay.x, lay.targets, ignore_index=None, where=_example_or_class_mask(lay), reduction="none")
        # 1 - p_y = 1 - exp(-CE) = -expm1(-CE), accurate as p_y -> 1.
        losses = ce + eps * -jnp.expm1(-ce)
    else:
        rows = kept if _checks.drops_examples(lay, None) else None
        losses = _prob_losses("poly", lay.x, lay.targets, lay.class_mask, None, eps, rows)
        losses = jnp.where(_impossible(lay.x, lay.class_mask, lay.targets, None), jnp.inf, losses)
    return _reduction.reduce_kept(losses, kept, reduction)


# --------------------------------------------------------------------------------------
# Loss objects.


@loss_object
class FocalLoss(LossObject):
    """:func:`focal_loss` as a frozen dataclass pytree: ``FocalLoss(...)(logits, targets)``.

    ``gamma`` and ``alpha`` are pytree leaves; ``axis``, ``ignore_index`` and
    ``reduction`` are static.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> loss = jaxent.FocalLoss(gamma=2.0, alpha=0.25)
      >>> loss(jnp.log(jnp.array([[0.05, 0.9, 0.05]])), jnp.array([1]))
      Array(0.00026..., dtype=float32)
    """

    function: ClassVar = staticmethod(focal_loss)
    gamma: ArrayLike = 2.0
    alpha: ArrayLike | None = None
    axis: int | tuple[int, ...] = static_field(default=-1)
    ignore_index: int | None = static_field(default=-100)
    reduction: _reduction.Reduction = static_field(default="mean")


@loss_object
class Poly1CrossEntropyLoss(LossObject):
    """:func:`poly1_cross_entropy` as a frozen dataclass pytree.

    ``epsilon`` is a pytree leaf; ``axis`` and ``reduction`` are static.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.Poly1CrossEntropyLoss(epsilon=2.0)(jnp.array([[1.2, -0.8, -0.5]]), jnp.array([0]))
      Array(0.7587, dtype=float32)
    """

    function: ClassVar = staticmethod(poly1_cross_entropy)
    epsilon: ArrayLike = 1.0
    axis: int | tuple[int, ...] = static_field(default=-1)
    reduction: _reduction.Reduction = static_field(default="mean")
