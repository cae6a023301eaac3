"""Segmentation losses: optax's soft Dice (Tversky) losses.

Each class's Dice coefficient is a ratio of three sums over the spatial axes (the
intersection, the predicted and the target mass). The predictions are logits by default
(softmax over the class axis, or a sigmoid for one channel), computed in float32 for
half-precision inputs. The three sums are one ``custom_jvp`` rule whose tangent
recomputes the probabilities from the logits, so that neither direction keeps an
``[N, C]`` array of probabilities (plain autodiff of the softmax saves one).
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero
from jax.typing import ArrayLike

from jaxent import _backend, _checks, _reduction
from jaxent._objects import LossObject, loss_object, static_field

_CLASS_REDUCTIONS = ("none", "sum", "mean")


def _pair(fn: str, predictions: Any, targets: Any) -> tuple[jax.Array, jax.Array]:
    """(predictions, targets) with a class axis last; optax adds it to whichever lacks it."""
    x = _checks.as_array(fn, "predictions", predictions)
    _checks.check_floating(fn, "predictions", x)
    t = _checks.as_array(fn, "targets", targets)
    if not (jnp.issubdtype(t.dtype, jnp.floating) or jnp.issubdtype(t.dtype, jnp.integer) or t.dtype == jnp.bool_):
        raise TypeError(f"{fn}: targets must be a real or boolean array, got dtype {t.dtype}.")
    if x.ndim == t.ndim - 1:
        x = x[..., None]
    if t.ndim == x.ndim - 1:
        t = t[..., None]
    if x.shape != t.shape:
        raise ValueError(
            f"{fn}: targets has shape {t.shape} but predictions has shape {x.shape}; pass one-hot targets of the "
            "predictions' shape [..., C] (or both without the channel axis for one class)."
        )
    if x.ndim == 0:
        raise ValueError(f"{fn}: predictions is 0-d; pass predictions of shape [batch, ..., C].")
    return x, t


def _sum_axes(fn: str, axis: Any, ndim: int) -> tuple[int, ...]:
    """optax's ``axis``: the spatial axes summed per class (default: all but the first and the last)."""
    if axis is None:
        return tuple(range(1, ndim - 1))
    axes = (axis,) if not isinstance(axis, (tuple, list)) else tuple(axis)
    out = []
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)) or not -ndim <= a < ndim:
            raise ValueError(
                f"{fn}: axis must be an int or a tuple of ints in [{-ndim}, {ndim}) naming the spatial axes to sum "
                f"over, got {axis!r}."
            )
        out.append(int(a) % ndim)
    if ndim - 1 in out:
        raise ValueError(
            f"{fn}: axis {axis!r} includes the class axis (the last, {ndim - 1}); name only the spatial axes to "
            "sum over (e.g. axis=(1, 2) for [B, H, W, C])."
        )
    return tuple(out)


def _pixel_mask(fn: str, where: Any, shape: tuple[int, ...]) -> jax.Array | None:
    """``where`` as a mask of ``shape`` ([..., C]); a mask without the class axis applies to every class."""
    if where is None:
        return None
    m = _checks.as_array(fn, "where", where)
    if m.dtype == jnp.bool_ and m.shape == shape[:-1]:
        return jnp.broadcast_to(m[..., None], shape)
    return _checks.elementwise_mask(fn, m, shape, x_name="predictions")


def _hyper(fn: str, name: str, value: Any, dtype: Any) -> jax.Array:
    _checks.check_range(fn, name, value, 0.0)
    return _checks.hyperparameter(value, dtype)


def _logsumexp(z: jax.Array) -> jax.Array:
    """logsumexp over the class axis ``[..., 1]`` of the compute-dtype logits; an all -inf row
    gets 0. Differentiable (the tangent rule's own derivatives, for second order, go through it)."""
    # Shift by the row max (no gradient: lse does not depend on the shift); the floor keeps
    # an all -inf row at exp(-inf) = 0, not NaN.
    m = jnp.maximum(_backend.row_max(jax.lax.stop_gradient(z)), jnp.finfo(z.dtype).min)[..., None]
    # Paired with a count so that the reduce is variadic and fuses the exp (see row_sums).
    (total,), (count,) = _backend.row_sums((jnp.exp(z - m),), (z > -jnp.inf,))
    return jnp.where(count > 0, m[..., 0] + jnp.log(jnp.where(count > 0, total, 1)), 0)[..., None]


def _logits(x: jax.Array, mask: jax.Array | None) -> jax.Array:
    # Excluded pixels read 0 (NaN padding never enters the arithmetic).
    z = x.astype(_checks.compute_dtype(x.dtype))
    return z if mask is None else jnp.where(mask, z, 0)


def _masked(v: jax.Array, mask: jax.Array | None) -> jax.Array:
    return v if mask is None else jnp.where(mask, v, 0)


def _probabilities(kind: str, x: jax.Array, mask: jax.Array | None, lse: jax.Array | None) -> jax.Array:
    """The activation of the (masked) logits, 0 at excluded pixels."""
    z = _logits(x, mask)
    if kind == "softmax":
        assert lse is not None
        return _masked(jnp.exp(z - lse), mask)
    return _masked(jax.nn.sigmoid(z) if kind == "sigmoid" else z, mask)


def _sums(kind: str, axes: tuple[int, ...], x, t, mask, lse) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(Σ p t, Σ p, Σ t) over ``axes``: one pass that computes ``p`` once (three reduces would
    each need it, and XLA would write it to memory)."""

    def values(x, t, mask, lse):
        q = _probabilities(kind, x, mask, lse)
        tm = _masked(t.astype(q.dtype), mask)
        return q * tm, q, tm

    inter, pred, true = _backend.column_sums(values, (x, t, mask, lse), axes)
    return inter, pred, true


@functools.partial(jax.custom_jvp, nondiff_argnums=(0, 1))
def _dice_sums(kind: str, axes: tuple[int, ...], x: jax.Array, t: jax.Array, mask: jax.Array | None):
    """(I, P, T) ``[batch..., C]``: ``Σ_axes p t``, ``Σ_axes p``, ``Σ_axes t`` of the probabilities
    ``p`` of ``x`` (``kind``: softmax, sigmoid or identity) and the targets, over the kept pixels."""
    return _primal_sums(kind, axes, x, t, mask)[0]


def _primal_sums(kind, axes, x, t, mask):
    """((I, P, T), the row logsumexp ``[..., 1]`` or None): the primal of the rule."""
    xa = _backend.apart(x)  # each pass upcasts a half-precision x on its own
    lse = _logsumexp(_logits(xa, mask)) if kind == "softmax" else None
    return _sums(kind, axes, xa, t, mask, lse), lse


def _dice_tangent(kind, axes, x, t, mask, lse, dx, dt):
    """The tangent of (I, P, T), linear in ``(dx, dt)``; the probabilities are recomputed from
    ``x`` (each use through its own barrier on CPU, so no pass shares an ``[N, C]`` value)."""
    ct = _checks.compute_dtype(x.dtype)
    tm = _masked(t.astype(ct), mask)
    zero = jnp.zeros(jnp.sum(tm, axis=axes).shape, ct)
    d_inter = d_pred = d_true = zero
    if dx is not None:
        x1, x2, x3 = (_backend.separately((x,), i)[0] for i in (1, 2, 3))
        dz = _logits(dx, mask)
        if kind == "softmax":
            # Softmax: dp = p (dz - Σ_c p dz). Three reads of p: in reverse mode the row sum
            # and each product are separate passes.
            p1, p2, p3 = (_probabilities(kind, xi, mask, lse) for xi in (x1, x2, x3))
            dp = p3 * dz - p2 * jnp.sum(p1 * dz, axis=-1, keepdims=True)
        elif kind == "sigmoid":
            p1 = _probabilities(kind, x1, mask, lse)
            dp = p1 * (1 - p1) * dz  # σ' = σ (1 - σ)
        else:
            dp = dz
        dq = _masked(dp, mask)
        d_inter, d_pred = jnp.sum(dq * tm, axis=axes), jnp.sum(dq, axis=axes)
    if dt is not None:
        dtm = _masked(dt.astype(ct), mask)
        (x4,) = _backend.separately((x,), 4)
        d_inter = d_inter + jnp.sum(_probabilities(kind, x4, mask, lse) * dtm, axis=axes)
        d_true = jnp.sum(dtm, axis=axes)
    return d_inter, d_pred, d_true


@functools.partial(_dice_sums.defjvp, symbolic_zeros=True)
def _dice_sums_jvp(kind, axes, primals, tangents):
    x, t, mask = primals
    dx, dt, _ = tangents
    # The row logsumexp [..., 1] is the only value saved for reverse mode besides the inputs.
    out, lse = _primal_sums(kind, axes, x, t, mask)
    dx = None if isinstance(dx, SymbolicZero) else dx
    dt = None if isinstance(dt, SymbolicZero) or not jnp.issubdtype(t.dtype, jnp.floating) else dt
    if dx is None and dt is None:
        return out, tuple(jnp.zeros_like(o) for o in out)
    tangent = _backend.recomputed(functools.partial(_dice_tangent, kind, axes))
    return out, tangent(x, t, mask, lse, dx, dt)


def _dice_per_class(
    fn: str,
    predictions: Any,
    targets: Any,
    *,
    smooth: Any,
    alpha: Any,
    beta: Any,
    apply_activation: bool,
    axis: Any,
    where: Any,
) -> tuple[jax.Array, jax.Array]:
    """(per-class Dice losses ``[batch..., C]``, the target sums ``T`` ``[batch..., C]``)."""
    _checks.check_static_bool(fn, "apply_softmax", apply_activation)
    x, t = _pair(fn, predictions, targets)
    axes = _sum_axes(fn, axis, x.ndim)
    mask = _pixel_mask(fn, where, x.shape)
    ct = _checks.compute_dtype(x.dtype)
    kind = ("sigmoid" if x.shape[-1] == 1 else "softmax") if apply_activation else "identity"
    inter, pred, true = _dice_sums(kind, axes, x, t, mask)
    s, a, b = _hyper(fn, "smooth", smooth, ct), _hyper(fn, "alpha", alpha, ct), _hyper(fn, "beta", beta, ct)
    # Tversky: FP = P - I, FN = T - I; α = β = 1/2 is the Dice coefficient 2I / (P + T).
    denominator = inter + a * (pred - inter) + b * (true - inter) + s
    return 1 - (inter + s) / denominator, true


def _finish(per_class: jax.Array, class_weights: Any, ignore_background: bool, class_reduction: str, fn: str):
    if class_weights is not None:
        w = _checks.as_array(fn, "class_weights", class_weights)
        if w.shape != (per_class.shape[-1],):
            raise ValueError(
                f"{fn}: class_weights has shape {w.shape} but predictions have {per_class.shape[-1]} classes; pass "
                f"one weight per class, shape ({per_class.shape[-1]},)."
            )
        # Explicit broadcast of the [C] weights over the batch axes (rank promotion stays strict).
        per_class = per_class * w.astype(per_class.dtype).reshape((1,) * (per_class.ndim - 1) + (-1,))
    if ignore_background and per_class.shape[-1] > 1:
        per_class = per_class[..., 1:]
    if class_reduction == "mean":
        return jnp.mean(per_class, axis=-1)
    if class_reduction == "sum":
        return jnp.sum(per_class, axis=-1)
    return per_class


def dice_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    class_weights: ArrayLike | None = None,
    smooth: ArrayLike = 1.0,
    alpha: ArrayLike = 0.5,
    beta: ArrayLike = 0.5,
    apply_softmax: bool = True,
    ignore_background: bool = False,
    axis: int | tuple[int, ...] | None = None,
    where: ArrayLike | None = None,
    class_reduction: _reduction.Reduction = "mean",
    reduction: _reduction.Reduction = "mean",
) -> jax.Array:
    r"""Soft Dice (Tversky) loss for segmentation, optax's ``dice_loss``.

    With probabilities ``p`` (softmax of the logits over the last, class axis; a sigmoid for
    one channel) and one-hot targets ``t``, per class ``c`` and example, summing over the
    spatial axes ``i``:

    .. math::
        I_c = \sum_i p_{i,c} t_{i,c}, \quad
        \ell_c = 1 - \frac{I_c + s}{I_c + \alpha (P_c - I_c) + \beta (T_c - I_c) + s}

    with ``P_c = Σ_i p_{i,c}``, ``T_c = Σ_i t_{i,c}`` (``α = β = ½``: the Dice coefficient).
    The per-class losses are weighted, reduced over classes by ``class_reduction`` (optax's
    ``reduction``), then over the examples by ``reduction``.

    Args:
      predictions: logits (or probabilities with ``apply_softmax=False``) ``[B, ..., C]``; for
        one class ``[B, ...]`` or ``[B, ..., 1]``.
      targets: one-hot (or soft) targets of the same shape (a missing channel axis is added).
      class_weights: optional ``[C]`` weights of the per-class losses.
      smooth: smoothing constant ``s ≥ 0`` (optax's default 1).
      alpha: weight ``α ≥ 0`` of the false positives.
      beta: weight ``β ≥ 0`` of the false negatives.
      apply_softmax: static; apply the softmax (sigmoid for one channel) to ``predictions``.
        optax checks that probabilities sum to 1 when it is False (eagerly only); jaxent
        does not check.
      ignore_background: static; drop class 0 (after weighting) when there are several.
      axis: optax's meaning (not jaxent's class axis): the spatial axes summed per class;
        default all but the first (batch) and the last (class) axis.
      where: optional boolean mask of the predictions' shape, or of it without the class
        axis: the pixels that count (excluded pixels leave every sum; an extension).
      class_reduction: static; ``"mean"`` or ``"sum"`` over the classes, or ``"none"``
        (optax's ``reduction``).
      reduction: static; ``"none"`` (the per-example losses, optax's output: ``[B, ...]`` or
        ``[B, ..., C]`` with ``class_reduction="none"``), ``"sum"`` or ``"mean"``.

    Returns:
      The loss in float32 (float64 for float64 predictions).

    Notes:
      Decision: jaxent's ``reduction`` reduces over examples (default ``"mean"``, like every
      jaxent loss); optax's ``dice_loss(..., reduction=r)`` is ``dice_loss(...,
      class_reduction=r, reduction="none")``. The three sums are one ``custom_jvp`` rule
      whose tangent recomputes the probabilities from the logits, so neither direction keeps
      an ``[N, C]`` array (the temporaries are a few per-class ``[B, C]`` arrays); forward
      and reverse mode and higher orders work.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> logits = jnp.array([[[2.0, -1.0], [0.5, 0.5], [-1.0, 1.0]]])  # [B=1, pixels=3, C=2]
      >>> targets = jnp.array([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])
      >>> jaxent.dice_loss(logits, targets, reduction="none")
      Array([0.1351], dtype=float32)

    References:
      Milletari, Navab & Ahmadi, *V-Net*, 3DV 2016; Salehi, Erdogmus & Gholipour, *Tversky
      loss function for image segmentation*, 2017; optax ``dice_loss``.
    """
    fn = "dice_loss"
    _checks.check_reduction(fn, reduction)
    _check_class_reduction(fn, class_reduction)
    _checks.check_static_bool(fn, "ignore_background", ignore_background)
    per_class, _ = _dice_per_class(
        fn,
        predictions,
        targets,
        smooth=smooth,
        alpha=alpha,
        beta=beta,
        apply_activation=apply_softmax,
        axis=axis,
        where=where,
    )
    losses = _finish(per_class, class_weights, ignore_background, class_reduction, fn)
    return _reduction.reduce(losses, reduction)


def _check_class_reduction(fn: str, class_reduction: Any) -> None:
    if not isinstance(class_reduction, str) or class_reduction not in _CLASS_REDUCTIONS:
        raise ValueError(
            f"{fn}: class_reduction must be one of 'none', 'sum' or 'mean', got {class_reduction!r}; it is "
            "optax's reduction (over the classes); reduction= reduces over the examples."
        )


def binary_dice_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    smooth: ArrayLike = 1.0,
    apply_sigmoid: bool = True,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
) -> jax.Array:
    r"""Binary soft Dice loss, optax's ``binary_dice_loss``: :func:`dice_loss` of one sigmoid channel.

    .. math::
        \ell = 1 - \frac{2 I + 2 s}{P + T + 2 s}, \quad I = \sum_i \sigma(x_i) t_i,\
        P = \sum_i \sigma(x_i),\ T = \sum_i t_i

    summed over every axis but the first (batch) one (``[B, ...]`` or ``[B, ..., 1]``
    inputs), then ``reduction`` over the examples (``"none"``: shape ``[B]``, optax's output).

    Args:
      predictions: logits (probabilities with ``apply_sigmoid=False``) ``[B, ...]``.
      targets: 0/1 (or soft) targets of the same shape.
      smooth: smoothing constant ``s ≥ 0``.
      apply_sigmoid: static; apply the sigmoid to ``predictions``.
      where: optional boolean mask of the predictions' shape: the pixels that count.
      reduction: ``"none"``, ``"sum"`` or ``"mean"``.

    Returns:
      The loss in float32 (float64 for float64 predictions).

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> x, t = jnp.array([[2.0, -1.0, 0.5]]), jnp.array([[1.0, 0.0, 1.0]])
      >>> jaxent.binary_dice_loss(x, t, reduction="none")
      Array([0.1327], dtype=float32)
    """
    fn = "binary_dice_loss"
    _checks.check_reduction(fn, reduction)
    _checks.check_static_bool(fn, "apply_sigmoid", apply_sigmoid)
    x, t = _checks.as_array(fn, "predictions", predictions), _checks.as_array(fn, "targets", targets)
    if x.ndim == t.ndim and (x.ndim == 0 or x.shape[-1] != 1):
        # optax: a channel axis is added to both.
        x, t = x[..., None], t[..., None]
        where = None if where is None else _checks.as_array(fn, "where", where)[..., None]
    per_class, _ = _dice_per_class(
        fn, x, t, smooth=smooth, alpha=0.5, beta=0.5, apply_activation=apply_sigmoid, axis=None, where=where
    )
    return _reduction.reduce(jnp.mean(per_class, axis=-1), reduction)


def multiclass_generalized_dice_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    smooth: ArrayLike = 1.0,
    apply_softmax: bool = True,
    ignore_background: bool = False,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
) -> jax.Array:
    r"""Generalized Dice loss with inverse squared class frequencies, optax's ``multiclass_generalized_dice_loss``.

    .. math::
        F_c = \sum_{b,i} t_{b,i,c}, \quad
        w_c = C \frac{1 / (F_c^2 + 10^{-7})}{\sum_k 1 / (F_k^2 + 10^{-7})}, \quad
        \ell_b = \frac{1}{C'} \sum_c w_c\, \ell^{\mathrm{Dice}}_{b,c}

    with the per-class :func:`dice_loss` ``ℓ^Dice`` (``α = β = ½``) and ``C'`` the classes
    left after ``ignore_background``. The frequencies ``F`` are taken over the whole batch
    (so an example's loss depends on the batch, as in optax). Then ``reduction`` over the
    examples: ``"mean"`` is optax's scalar.

    Args:
      predictions: logits (probabilities with ``apply_softmax=False``) ``[B, ..., C]``.
      targets: one-hot targets of the same shape.
      smooth: smoothing constant ``s ≥ 0``.
      apply_softmax: static; apply the softmax over the class axis.
      ignore_background: static; drop class 0 (its weight still enters the normalisation,
        as in optax).
      where: optional boolean mask of the predictions' shape (or without the class axis):
        the pixels that count, in the Dice sums and in the frequencies.
      reduction: ``"none"`` (shape ``[B]``), ``"sum"`` or ``"mean"``.

    Returns:
      The loss in float32 (float64 for float64 predictions).

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> logits = jnp.array([[[2.0, -1.0], [0.5, 0.5], [-1.0, 1.0]]])
      >>> targets = jnp.array([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])
      >>> jaxent.multiclass_generalized_dice_loss(logits, targets)
      Array(0.1444, dtype=float32)

    References:
      Sudre et al., *Generalised Dice overlap as a deep learning loss function for highly
      unbalanced segmentations*, DLMIA 2017; optax ``multiclass_generalized_dice_loss``.
    """
    fn = "multiclass_generalized_dice_loss"
    _checks.check_reduction(fn, reduction)
    _checks.check_static_bool(fn, "ignore_background", ignore_background)
    per_class, true = _dice_per_class(
        fn,
        predictions,
        targets,
        smooth=smooth,
        alpha=0.5,
        beta=0.5,
        apply_activation=apply_softmax,
        axis=None,
        where=where,
    )
    frequencies = jnp.sum(true, axis=tuple(range(true.ndim - 1)))
    # optax's constant: 1e-7 keeps an absent class's weight finite (1e7 before normalising).
    inverse = 1 / (frequencies * frequencies + 1e-7)
    weights = inverse / jnp.sum(inverse) * inverse.shape[0]
    per_class = per_class * weights.reshape((1,) * (per_class.ndim - 1) + (-1,))
    if ignore_background and per_class.shape[-1] > 1:
        per_class = per_class[..., 1:]
    return _reduction.reduce(jnp.mean(per_class, axis=-1), reduction)


# --------------------------------------------------------------------------------------
# Loss objects.


@loss_object
class DiceLoss(LossObject):
    """:func:`dice_loss` as a frozen dataclass pytree: ``DiceLoss(...)(predictions, targets)``.

    ``class_weights``, ``smooth``, ``alpha`` and ``beta`` are pytree leaves; the rest is static.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> logits, targets = jnp.array([[[2.0, -1.0], [-1.0, 1.0]]]), jnp.array([[[1.0, 0.0], [0.0, 1.0]]])
      >>> jaxent.DiceLoss(alpha=0.3, beta=0.7)(logits, targets)
      Array(0.0417, dtype=float32)
    """

    function: ClassVar = staticmethod(dice_loss)
    class_weights: ArrayLike | None = None
    smooth: ArrayLike = 1.0
    alpha: ArrayLike = 0.5
    beta: ArrayLike = 0.5
    apply_softmax: bool = static_field(default=True)
    ignore_background: bool = static_field(default=False)
    axis: int | tuple[int, ...] | None = static_field(default=None)
    class_reduction: _reduction.Reduction = static_field(default="mean")
    reduction: _reduction.Reduction = static_field(default="mean")


@loss_object
class BinaryDiceLoss(LossObject):
    """:func:`binary_dice_loss` as a frozen dataclass pytree: ``BinaryDiceLoss(...)(predictions, targets)``.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.BinaryDiceLoss()(jnp.array([[2.0, -1.0, 0.5]]), jnp.array([[1.0, 0.0, 1.0]]))
      Array(0.1327, dtype=float32)
    """

    function: ClassVar = staticmethod(binary_dice_loss)
    smooth: ArrayLike = 1.0
    apply_sigmoid: bool = static_field(default=True)
    reduction: _reduction.Reduction = static_field(default="mean")


@loss_object
class MulticlassGeneralizedDiceLoss(LossObject):
    """:func:`multiclass_generalized_dice_loss` as a frozen dataclass pytree.

    ``MulticlassGeneralizedDiceLoss(...)(predictions, targets)``; ``smooth`` is a leaf.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> logits = jnp.array([[[2.0, -1.0], [0.5, 0.5], [-1.0, 1.0]]])
      >>> targets = jnp.array([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])
      >>> jaxent.MulticlassGeneralizedDiceLoss()(logits, targets)
      Array(0.1444, dtype=float32)
    """

    function: ClassVar = staticmethod(multiclass_generalized_dice_loss)
    smooth: ArrayLike = 1.0
    apply_softmax: bool = static_field(default=True)
    ignore_background: bool = static_field(default=False)
    reduction: _reduction.Reduction = static_field(default="mean")
