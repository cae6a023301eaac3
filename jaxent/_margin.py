"""The margin (SVM) family: binary hinge, Weston–Watkins and Crammer–Singer multiclass hinges.

Every loss here is piecewise linear (or piecewise quadratic) in the scores, so plain JAX
autodiff is exact away from the kinks; at a kink (``z = 0`` exactly) the gradient is 0,
the convention of ``jax.nn.relu`` and of PyTorch's ``multi_margin_loss`` kernel. Masked,
impossible (``-inf``) and convention-fixed entries go through double ``where``s, so no
``inf`` or NaN reaches a gradient. Forward and reverse mode both work.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jaxent import _checks, _reduction
from jaxent._objects import LossObject, static_field


def _margin(fn: str, margin: Any, dtype: Any) -> jax.Array:
    # Any finite margin is legal (PyTorch accepts negative ones); NaN and inf are not.
    _checks.check_finite(fn, "margin", margin)
    return _checks.hyperparameter(margin, dtype)


def hinge_loss(
    scores: Any,
    targets: Any,
    *,
    margin: Any = 1.0,
    squared: bool = False,
    where: Any = None,
    reduction: str = "mean",
) -> jax.Array:
    r"""Binary SVM hinge loss for ``±1`` targets (optax ``hinge_loss``, Keras ``Hinge``/``SquaredHinge``).

    Elementwise, with ``y ∈ {-1, +1}``:

    .. math::
        \ell = \max(0,\ \mathrm{margin} - y\, s) \qquad
        (\text{squared: } \max(0,\ \mathrm{margin} - y\, s)^2)

    then ``reduction``: ``"none"`` (the shape of ``scores``), ``"sum"``, or ``"mean"``
    over the kept elements (an empty mean is 0.0, not NaN). Keras' ``Hinge`` is
    ``reduction="none"`` averaged over the last axis.

    Args:
      scores: floating decision values of any shape.
      targets: labels of ``scores.shape``: ``-1``/``+1`` (integer or floating) or bool
        (``True`` = +1, ``False`` = -1; use this for ``{0, 1}`` labels).
      margin: scalar margin (may be traced); any finite value (negative too, as in
        PyTorch).
      squared: static; square each term (Keras ``SquaredHinge``).
      where: optional boolean mask of ``scores.shape`` (or of the same rank with size-1
        axes that broadcast, e.g. ``(N, 1)`` to drop rows); False drops an element from
        the sum and the mean (0 in ``"none"``, zero gradient).
      reduction: ``"none"``, ``"sum"`` or ``"mean"``.

    Returns:
      The loss in float32 (float64 for float64 scores).

    Notes:
      Concrete targets outside ``{-1, +1}`` (e.g. ``0``) on kept elements are a
      ``ValueError``. Traced targets (inside ``jax.jit``) cannot raise: a kept element
      with such a target gets a NaN loss and NaN gradients (never a silently wrong
      value), and under ``jax.experimental.checkify`` with ``checkify.user_checks`` it
      raises an error naming the value. ``±inf`` scores are exact: 0 on the right
      side, ``+inf`` (finite gradient) on the wrong side. Plain autodiff (piecewise
      linear); the gradient at the kink ``y·s = margin`` is 0.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.hinge_loss(jnp.array(0.3), jnp.array(1))
      Array(0.7, dtype=float32)
      >>> s, y = jnp.array([0.3, -2.0, 0.5]), jnp.array([True, False, False])
      >>> jaxent.hinge_loss(s, y, squared=True, reduction="none").tolist()
      [0.49..., 0.0, 2.25]
    """
    fn = "hinge_loss"
    _checks.check_reduction(fn, reduction)
    _checks.check_static_bool(fn, "squared", squared)
    s, t = _checks.elementwise_pair(fn, scores, targets, x_name="scores", integer_targets=True)
    kept = _checks.elementwise_mask(fn, where, s.shape, x_name="scores")
    ct = _checks.compute_dtype(s.dtype)
    m = _margin(fn, margin, ct)
    sc = s.astype(ct)

    if t.dtype == jnp.bool_:
        y, bad = jnp.where(t, 1, -1).astype(ct), None
    else:
        fix = "pass -1/+1 labels, a bool array (True = +1), or map {0, 1} labels with 2 * targets - 1."
        bad = _checks.check_allowed_values(fn, "targets", t, (-1, 1), kept, fix)
        y = t.astype(ct)

    # y s = +inf (right side at infinity) gives max(0, margin - inf) = 0 without NaN.
    z = jax.nn.relu(m - y * sc)
    losses = z * z if squared else z
    if bad is not None:
        # A target outside {-1, +1} poisons its element (and the mean) with NaN.
        losses = jnp.where(bad, _nan_with_nan_gradient(bad, sc), losses)
    return _reduction.reduce_kept(losses, kept, reduction)


def _nan_with_nan_gradient(bad: jax.Array, x: jax.Array) -> jax.Array:
    """NaN where ``bad``, with NaN gradients for the entries of ``x`` there (and 0 elsewhere).

    ``x`` is ``bad.shape`` or ``bad.shape + (C,)``. A select alone would give those
    entries a zero gradient; an out-of-range target must poison its gradients too.
    """
    per_class = x.ndim > bad.ndim
    b = bad[..., None] if per_class else bad
    # Double where: entries that are not bad see 0 * 0, so no NaN leaks into their gradients.
    poisoned = jnp.where(b, x, 0) * jnp.where(b, jnp.nan, 0)
    return jnp.sum(poisoned, axis=-1) if per_class else poisoned


def _check_p(fn: str, p: Any) -> None:
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, np.integer)) or p not in (1, 2):
        raise ValueError(
            f"{fn}: p must be 1 or 2, got {p!r}; it is static (a Python int): p=1 is the hinge, p=2 its square."
        )


class _Margins:
    """Shared layout of the multiclass hinges: target score, competitors, labels, kept examples."""

    def __init__(self, fn: str, scores: Any, targets: Any, axis: Any, where: Any, weight: Any, margin: Any):
        lay = _checks.class_layout(
            fn,
            scores,
            targets,
            axis=axis,
            where=where,
            weight=weight,
            logits_name="scores",
            allow_probabilities=False,
        )
        ct = _checks.compute_dtype(lay.x.dtype)
        self.margin = _margin(fn, margin, ct)
        self.kept = _checks.kept_examples(lay, None)
        # wy: the target's class weight; 0 when not kept, NaN for an out-of-range label.
        y, self.wy = _checks.class_labels(fn, lay, self.kept, None)
        x = lay.x.astype(ct)
        sy = jnp.take_along_axis(x, y[..., None], axis=-1)[..., 0]
        # The target is impossible when its score is -inf or its class is masked out.
        target_ok = sy != -jnp.inf
        competitor = jax.lax.broadcasted_iota(y.dtype, x.shape, x.ndim - 1) != y[..., None]
        # A -inf competitor can never violate the margin: it contributes 0 (no inf - inf).
        competitor = competitor & (x != -jnp.inf)
        if lay.class_mask is not None:
            target_ok = target_ok & jnp.take_along_axis(lay.class_mask, y[..., None], axis=-1)[..., 0]
            competitor = competitor & lay.class_mask
        self.competitor = competitor
        # Double where: an impossible target or a dropped competitor never enters the sums.
        self.scores = x
        self.sy = jnp.where(target_ok, sy, 0)
        self.x = jnp.where(competitor, x, 0)
        self.impossible = self.kept & ~target_ok & (self.wy != 0) & ~jnp.isnan(self.wy)
        self.num_classes = (
            jnp.asarray(x.shape[-1], ct)
            if lay.class_mask is None
            else jnp.maximum(jnp.sum(lay.class_mask, axis=-1), 1).astype(ct)
        )

    def finish(self, losses: jax.Array, reduction: str) -> jax.Array:
        # A target on an impossible class: +inf, with zero gradient for that example.
        losses = jnp.where(self.impossible, jnp.inf, losses)
        # An out-of-range label (w_y = NaN): NaN, and NaN gradients for all of its scores.
        bad = jnp.isnan(self.wy)
        losses = jnp.where(bad, _nan_with_nan_gradient(bad, self.scores), losses)
        return _reduction.reduce_kept(losses, self.kept, reduction)


def multi_margin_loss(
    scores: Any,
    targets: Any,
    *,
    p: int = 1,
    margin: Any = 1.0,
    weight: Any = None,
    axis: int | tuple[int, ...] = -1,
    where: Any = None,
    reduction: str = "mean",
) -> jax.Array:
    r"""Weston–Watkins multiclass hinge loss, PyTorch's ``multi_margin_loss``.

    For scores ``s`` over ``C`` classes and an integer target ``y``:

    .. math::
        \ell_n = \frac{1}{C} \sum_{j \ne y_n} w_{y_n}
                 \max(0,\ \mathrm{margin} - s_{n,y_n} + s_{n,j})^p

    (note the division by ``C`` and the target's weight ``w_y`` on every term). Then
    ``reduction``: ``"none"`` (the batch shape), ``"sum"``, or ``"mean"`` = the sum over
    kept examples divided by their *number*, not by the weights (as in PyTorch). An
    empty mean is 0.0, not NaN.

    Args:
      scores: ``[..., C, ...]`` floating scores.
      targets: integer class indices of ``scores.shape`` without ``axis`` (a flat index
        over the class axes when ``axis`` is a tuple).
      p: static exponent, 1 (hinge) or 2 (squared hinge).
      margin: scalar margin (may be traced); any finite value (negative too, as in
        PyTorch).
      weight: optional per-class weights ``[C]`` (may be traced).
      axis: static class axis, or a tuple of axes (PyTorch has only ``(N, C)``/``(C,)``).
      where: boolean mask of the batch shape (drops examples) or of ``scores.shape``
        (drops classes as if removed: they leave the sum and ``C`` counts only the
        classes that remain).
      reduction: ``"none"``, ``"sum"`` or ``"mean"``.

    Returns:
      The loss in float32 (float64 for float64 scores).

    Notes:
      An integer target outside ``[0, C)`` gives NaN for that example (and NaN
      gradients; under ``jax.experimental.checkify`` with ``checkify.user_checks`` an
      error naming the label). A ``-inf`` competitor score contributes 0; a target on a
      ``-inf`` score or on a class masked by ``where`` gives ``+inf`` (zero gradient for
      that example), unless its weight is 0. Only ``+inf`` target and competitor scores
      together (``inf − inf``) give NaN. Plain autodiff (piecewise polynomial); the
      gradient at a kink is 0, as in PyTorch's kernel.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> s, y = jnp.array([[0.1, 0.2, 0.4, 0.8]]), jnp.array([3])
      >>> jaxent.multi_margin_loss(s, y), jaxent.multi_margin_loss(s, y, p=2)
      (Array(0.325, dtype=float32), Array(0.1525, dtype=float32))
      >>> jaxent.multi_margin_loss(s, y, weight=jnp.array([1.0, 1.0, 1.0, 2.0]))
      Array(0.65, dtype=float32)

    References:
      PyTorch ``torch.nn.functional.multi_margin_loss``; Weston & Watkins, *Support
      vector machines for multi-class pattern recognition* (1999).
    """
    fn = "multi_margin_loss"
    _checks.check_reduction(fn, reduction)
    _check_p(fn, p)
    mm = _Margins(fn, scores, targets, axis, where, weight, margin)
    h = jax.nn.relu(mm.margin - mm.sy[..., None] + mm.x)
    if p == 2:
        h = h * h
    h = jnp.where(mm.competitor, h, 0)
    losses = mm.wy * jnp.sum(h, axis=-1) / mm.num_classes
    return mm.finish(losses, reduction)


def multiclass_hinge_loss(
    scores: Any,
    targets: Any,
    *,
    margin: Any = 1.0,
    axis: int | tuple[int, ...] = -1,
    where: Any = None,
    reduction: str = "mean",
) -> jax.Array:
    r"""Crammer–Singer multiclass hinge loss, optax's ``multiclass_hinge_loss`` with a margin.

    .. math::
        \ell_n = \max\bigl(0,\ \mathrm{margin} + \max_{j \ne y_n} s_{n,j} - s_{n,y_n}\bigr)

    then ``reduction``: ``"none"`` (the batch shape), ``"sum"`` or ``"mean"`` over kept
    examples (an empty mean is 0.0, not NaN). With no competitor left (one class, or
    every other class masked or ``-inf``) the loss is 0.

    Args:
      scores: ``[..., C, ...]`` floating scores.
      targets: integer class indices of ``scores.shape`` without ``axis``.
      margin: scalar margin (may be traced); any finite value (optax fixes it at 1).
      axis: static class axis, or a tuple of axes.
      where: boolean mask of the batch shape (drops examples) or of ``scores.shape``
        (drops classes: they cannot be the competitor).
      reduction: ``"none"``, ``"sum"`` or ``"mean"``.

    Returns:
      The loss in float32 (float64 for float64 scores).

    Notes:
      Out-of-range labels, ``-inf`` and masked classes behave as in
      :func:`multi_margin_loss` (NaN; 0 competitor; ``+inf`` target). Plain autodiff;
      tied maximal competitors share the gradient equally, and the gradient at the
      kink is 0.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.multiclass_hinge_loss(jnp.array([[0.1, 0.2, 0.4, 0.8]]), jnp.array([3]))
      Array(0.6, dtype=float32)

    References:
      optax ``multiclass_hinge_loss``; Crammer & Singer, *On the algorithmic
      implementation of multiclass kernel-based vector machines* (2001).
    """
    fn = "multiclass_hinge_loss"
    _checks.check_reduction(fn, reduction)
    mm = _Margins(fn, scores, targets, axis, where, None, margin)
    has_competitor = jnp.any(mm.competitor, axis=-1)
    best = jnp.max(jnp.where(mm.competitor, mm.x, -jnp.inf), axis=-1)
    # Double where: with no competitor the max is -inf; it never meets the arithmetic.
    z = jax.nn.relu(mm.margin + jnp.where(has_competitor, best, 0) - mm.sy)
    losses = mm.wy * jnp.where(has_competitor, z, 0)
    return mm.finish(losses, reduction)


# --------------------------------------------------------------------------------------
# Loss objects.


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class HingeLoss(LossObject):
    """:func:`hinge_loss` as a frozen dataclass pytree: ``HingeLoss(...)(scores, targets)``.

    ``margin`` is a pytree leaf; ``squared`` and ``reduction`` are static.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.HingeLoss(margin=0.5)(jnp.array([0.3, -0.1]), jnp.array([1, -1]))
      Array(0.3, dtype=float32)
    """

    function: ClassVar = staticmethod(hinge_loss)
    margin: Any = 1.0
    squared: bool = static_field(False)
    reduction: str = static_field("mean")


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class MultiMarginLoss(LossObject):
    """:func:`multi_margin_loss` as a frozen dataclass pytree: ``MultiMarginLoss(...)(scores, targets)``.

    ``margin`` and ``weight`` are pytree leaves; ``p``, ``axis`` and ``reduction`` are static.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.MultiMarginLoss(p=2)(jnp.array([[0.1, 0.2, 0.4, 0.8]]), jnp.array([3]))
      Array(0.1525, dtype=float32)
    """

    function: ClassVar = staticmethod(multi_margin_loss)
    p: int = static_field(1)
    margin: Any = 1.0
    weight: Any = None
    axis: int | tuple[int, ...] = static_field(-1)
    reduction: str = static_field("mean")


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class MultiClassHingeLoss(LossObject):
    """:func:`multiclass_hinge_loss` as a frozen dataclass pytree: ``MultiClassHingeLoss(...)(scores, targets)``.

    ``margin`` is a pytree leaf; ``axis`` and ``reduction`` are static.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.MultiClassHingeLoss(margin=0.5)(jnp.array([[0.1, 0.2, 0.4, 0.8]]), jnp.array([3]))
      Array(0.1, dtype=float32)
    """

    function: ClassVar = staticmethod(multiclass_hinge_loss)
    margin: Any = 1.0
    axis: int | tuple[int, ...] = static_field(-1)
    reduction: str = static_field("mean")
