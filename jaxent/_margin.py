"""The margin (SVM) family: binary hinge, Weston–Watkins and Crammer–Singer multiclass hinges.

Every loss here is piecewise linear (or piecewise quadratic) in the scores, so its
gradient is exact away from the kinks; at a kink (``z = 0`` exactly) the gradient is 0,
the convention of ``jax.nn.relu`` and of PyTorch's ``multi_margin_loss`` kernel. The
multiclass hinges read the scores in one fused pass per statistic (the target score,
the best competitor, the hinge sums), through ``jax.custom_jvp`` rules whose tangents
are linear in the score tangents; their per-row factors are saved from the forward
pass (``[N]`` values), their per-class factors recomputed, so reverse mode needs no
``[N, C]`` temporary. Masked, impossible (``-inf``) and convention-fixed entries go
through double ``where``s, so no ``inf`` or NaN reaches a gradient. Forward and reverse
mode and higher orders all work.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero
from jax.typing import ArrayLike

from jaxent import _backend, _binary, _checks, _reduction
from jaxent._objects import LossObject, loss_object, static_field


def _hinge_parts(s: jax.Array, y: jax.Array, margin: jax.Array, squared: bool, *, partials: bool):
    """``max(0, margin - y s)`` (squared: its square) elementwise, or its partials in (s, y, margin)."""
    z = margin - y * s
    if not partials:
        # y s = +inf (right side at infinity) gives max(0, margin - inf) = 0; a NaN label stays NaN.
        h = jnp.maximum(z, 0)
        return h * h if squared else h
    # dh/dz where the margin is violated: 1 (2z squared); 0 elsewhere and at the kink. Written
    # with z <= 0 (not z > 0) so that a NaN z (a NaN label) keeps a NaN gradient.
    flat = z <= 0
    g = 2 * z if squared else jnp.ones_like(z)
    return jnp.where(flat, 0, -y * g if squared else -y), jnp.where(flat, 0, -s * g), jnp.where(flat, 0, g)


@functools.partial(jax.custom_jvp, nondiff_argnums=(3,))
def _hinge(s: jax.Array, y: jax.Array, margin: jax.Array, squared: bool) -> jax.Array:
    return _hinge_parts(s, y, margin, squared, partials=False)


@functools.partial(_hinge.defjvp, symbolic_zeros=True)
def _hinge_jvp(squared, primals, tangents):
    out = _hinge(*primals, squared)
    partials = functools.partial(_hinge_parts, squared=squared, partials=True)
    return out, _backend.linear_tangent(partials, out, primals, tangents)


def hinge_loss(
    scores: ArrayLike,
    targets: ArrayLike,
    *,
    margin: ArrayLike = 1.0,
    squared: bool = False,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
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
      raises an error naming the value. The gradient in ``scores`` is ``-y`` where
      ``y·s < margin`` (``-2y(margin - y·s)`` squared) and 0 elsewhere, 0 at the kink
      ``y·s = margin`` too; forward and reverse mode and higher orders work. At
      infinite scores the loss is exact: 0 on the right side (gradient 0) and
      ``+inf`` on the wrong side, where the gradient is ``-y`` (finite) without
      ``squared`` and ``∓inf`` (the limit of ``-2y(margin - y·s)``) with it.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.hinge_loss(jnp.array(0.3), jnp.array(1))
      Array(0.7, dtype=float32)
      >>> s, y = jnp.array([0.3, -2.0, 0.5]), jnp.array([True, False, False])
      >>> jaxent.hinge_loss(s, y, squared=True, reduction="none").tolist()
      [0.49..., 0.0, 2.25]
    """
    return _binary_hinge("hinge_loss", scores, targets, margin, squared, where, reduction)


def _binary_hinge(
    fn: str, scores: Any, targets: Any, margin: Any, squared: bool, where: Any, reduction: str
) -> jax.Array:
    _checks.check_reduction(fn, reduction)
    _checks.check_static_bool(fn, "squared", squared)
    s, t = _checks.elementwise_pair(fn, scores, targets, x_name="scores", integer_targets=True)
    kept = _checks.elementwise_mask(fn, where, s.shape, x_name="scores")
    ct = _checks.compute_dtype(s.dtype)
    m, margin_check = _checks.finite_hyperparameter(fn, "margin", margin, ct)
    y, check = _checks.sign_labels(fn, t, kept, ct)
    return _checks.attach_checks(
        _reduction.reduce_elements(_hinge(s.astype(ct), y, m, squared), kept, reduction), [check, margin_check]
    )


def _check_p(fn: str, p: Any) -> None:
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, np.integer)) or p not in (1, 2):
        raise ValueError(
            f"{fn}: p must be 1 or 2, got {p!r}; it is static (a Python int): p=1 is the hinge, p=2 its square."
        )


# --------------------------------------------------------------------------------------
# The multiclass hinges: the target score by a gather, then one fused pass over the scores.


def _competitors(x: jax.Array, label: jax.Array, classes: jax.Array | None) -> jax.Array:
    """The classes that compete with the label's ``[..., C]``: not the label, not masked, not -inf."""
    # A -inf competitor can never violate the margin: it contributes 0 (no inf - inf).
    competitor = (jax.lax.broadcasted_iota(label.dtype, x.shape, x.ndim - 1) != label[..., None]) & (x != -jnp.inf)
    return competitor if classes is None else competitor & classes


def _counted(x: jax.Array, classes: jax.Array | None) -> jax.Array:
    """What the class count of a row counts: the classes left (every class without a mask)."""
    return jnp.ones(x.shape, bool) if classes is None else classes


@jax.custom_jvp
def _pick(x: jax.Array, label: jax.Array) -> jax.Array:
    """``x[..., label]`` for in-range labels, the target score of each row: a gather, no pass over the classes."""
    return jnp.take_along_axis(x, label[..., None], axis=-1, mode="promise_in_bounds")[..., 0]


@_pick.defjvp
def _pick_jvp(primals, tangents):
    x, label = primals
    # The tangent as a one-hot sum rather than a gather, so that reverse mode writes the
    # target's gradient in the same elementwise pass as the other classes' (not by a scatter).
    target = jax.lax.broadcasted_iota(label.dtype, x.shape, x.ndim - 1) == label[..., None]
    return _pick(x, label), jnp.sum(jnp.where(target, tangents[0], 0), axis=-1)


class _Margins(NamedTuple):
    """Shared layout of the multiclass hinges."""

    lay: _checks.Layout
    x: jax.Array  # [..., C] scores in the compute dtype
    label: jax.Array  # [...] the target class, clipped into [0, C)
    target_ok: jax.Array  # [...] bool: the target's class is not masked and its score not -inf
    target_score: jax.Array  # [...] s_y, 0 where the target is impossible
    margin: jax.Array
    margin_check: _checks.Check | None


def _margins(fn: str, scores: Any, targets: Any, axis: Any, where: Any, weight: Any, margin: Any) -> _Margins:
    lay = _checks.class_layout(
        fn, scores, targets, axis=axis, where=where, weight=weight, logits_name="scores", allow_probabilities=False
    )
    ct = _checks.compute_dtype(lay.x.dtype)
    if lay.example_mask is not None:
        # Dropped examples read 0 (a select, whose gradient is exactly 0 there even when their
        # scores are NaN), as with boolean indexing.
        lay = lay._replace(x=jnp.where(lay.example_mask[..., None], lay.x, 0))
    label = jnp.where((lay.targets >= 0) & (lay.targets < lay.num_classes), lay.targets, 0)
    # Gathered in the input dtype: no float32 copy of half-precision scores.
    sy = _pick(lay.x, label).astype(ct)
    # The target is impossible when its score is -inf or its class is masked out.
    target_ok = sy != -jnp.inf
    if lay.class_mask is not None:
        target_ok = target_ok & _pick(lay.class_mask, label)
    m, margin_check = _checks.finite_hyperparameter(fn, "margin", margin, ct)
    return _Margins(
        lay=lay,
        x=lay.x.astype(ct),
        label=label,
        target_ok=target_ok,
        # Double where: an impossible target never enters the arithmetic.
        target_score=jnp.where(target_ok, sy, 0),
        margin=m,
        margin_check=margin_check,
    )


def _finish(
    fn: str,
    mm: _Margins,
    classes: jax.Array,
    losses_per_weight: jax.Array,
    reduction: str,
    nan_rows: jax.Array | None = None,
) -> jax.Array:
    """``w_y · losses_per_weight`` reduced, with ``classes`` the number of classes left per
    row; ``nan_rows`` (kept or not) are NaN with NaN gradients."""
    # The examples that count: not masked, with some class left.
    kept = jnp.ones(mm.lay.batch_shape, bool) if mm.lay.example_mask is None else mm.lay.example_mask
    if mm.lay.class_mask is not None:
        kept = kept & (classes > 0)
    # w_y: the target's class weight; 0 when not kept, NaN for an out-of-range label (never a
    # wrapped or silently wrong value), which checkify with user checks names.
    y, num = mm.lay.targets, mm.lay.num_classes
    bad = kept & ~((y >= 0) & (y < num))
    wy = jnp.ones(y.shape, mm.x.dtype) if mm.lay.weight is None else mm.lay.weight[mm.label]
    wy = jnp.where(bad, jnp.nan, jnp.where(kept, wy, 0))
    losses = wy * losses_per_weight
    # A target on an impossible class: +inf, with zero gradient for that example.
    losses = jnp.where(kept & ~mm.target_ok & (wy != 0) & ~jnp.isnan(wy), jnp.inf, losses)
    # An out-of-range label (w_y = NaN): NaN, and NaN gradients for all of its scores.
    poison = jnp.isnan(wy) if nan_rows is None else jnp.isnan(wy) | (kept & nan_rows)
    losses = losses + _poison_rows(mm.x, poison)
    message = f"{fn}: targets contain the label {{}}, outside [0, {num}); class indices must lie in [0, {num})."
    loss = _reduction.reduce_kept(losses, kept, reduction)
    return _checks.attach_checks(loss, [(~jnp.any(bad), message, _checks.offending_value(y, bad)), mm.margin_check])


@jax.custom_jvp
def _poison_rows(x: jax.Array, bad: jax.Array) -> jax.Array:
    """NaN on the rows where ``bad`` (0 elsewhere), with a NaN derivative in every entry of those rows of ``x``."""
    return jnp.where(bad, jnp.nan, 0).astype(x.dtype)


@_poison_rows.defjvp
def _poison_rows_jvp(primals, tangents):
    x, bad = primals
    # Linear in dx: NaN·dx summed over the row, 0 on the other rows.
    return _poison_rows(x, bad), jnp.sum(jnp.where(bad[..., None], jnp.nan, 0).astype(x.dtype) * tangents[0], axis=-1)


def _hinge_terms(x, label, classes, target_score, margin, p):
    """Per class: the hinge ``max(0, margin - s_y + s_j)^p`` and its derivative in ``s_j``, on competitors."""
    competitor = _competitors(x, label, classes)
    # Double where: a dropped competitor never enters the arithmetic.
    z = margin - target_score[..., None] + jnp.where(competitor, x, 0)
    # A NaN score (competitor or target) makes the hinge NaN, as in optax and cross-entropy:
    # never silently 0 (PyTorch's multi_margin_loss skips NaN terms; jaxent does not).
    active = competitor & ((z > 0) | jnp.isnan(z))
    h = jnp.where(active, z if p == 1 else z * z, 0)
    return h, (jnp.where(active, jnp.where(jnp.isnan(z), z, 1), 0) if p == 1 else jnp.where(active, 2 * z, 0))


@functools.partial(jax.custom_jvp, nondiff_argnums=(5,))
def _weston_watkins(x, label, classes, target_score, margin, p):
    """(``Σ_j max(0, margin - s_y + s_j)^p`` over the competitors ``j``, the number of classes left), per row."""
    h, _ = _hinge_terms(x, label, classes, target_score, margin, p)
    (total,), (count,) = _backend.row_sums((h,), (_counted(x, classes),))
    # A row without classes sums to 0 (this use of the count also keeps the reduce variadic).
    return jnp.where(count > 0, total, 0), count


def _along_scores(p, x, label, classes, target_score, margin, dx):
    # Σ_j h'_j dx_j, with h'_j recomputed from the scores.
    return jnp.sum(_hinge_terms(x, label, classes, target_score, margin, p)[1] * dx, axis=-1)


@functools.partial(_weston_watkins.defjvp, symbolic_zeros=True)
def _weston_watkins_jvp(p, primals, tangents):
    x, label, classes, target_score, margin = primals
    dx, _, _, d_target, d_margin = tangents
    h, dh = _hinge_terms(x, label, classes, target_score, margin, p)
    # One pass: the sum, D = Σ_j h'_j (the derivative in margin, and minus that in s_y), the count.
    (total, deriv), (count,) = _backend.row_sums((h, dh), (_counted(x, classes),), together=True)
    total = jnp.where(count > 0, total, 0)
    out = jnp.zeros_like(total)
    if not isinstance(dx, SymbolicZero):
        along = _backend.recomputed(functools.partial(_along_scores, p))
        out = out + along(x, label, classes, target_score, margin, dx)
    if not isinstance(d_target, SymbolicZero):
        out = out - deriv * d_target
    if not isinstance(d_margin, SymbolicZero):
        out = out + deriv * d_margin
    return (total, count), (out, np.zeros(count.shape, jax.dtypes.float0))


class _Best(NamedTuple):
    best: jax.Array  # the highest competitor score (-inf when there is none)
    classes: jax.Array  # int32: the number of classes left
    nans: jax.Array  # int32: the number of NaN scores among them (the target's included)


def _max_and_add(a: tuple, b: tuple) -> tuple:
    return jnp.maximum(a[0], b[0]), a[1] + b[1], a[2] + b[2]


def _add(a: tuple, b: tuple) -> tuple:
    return a[0] + b[0], a[1] + b[1]


@jax.custom_jvp
def _best_competitor(x: jax.Array, label: jax.Array, classes: jax.Array | None) -> _Best:
    """:class:`_Best` of each row of ``x`` ``[..., C]``, in one variadic reduce over the last axis."""
    eligible = jax.lax.broadcasted_iota(label.dtype, x.shape, x.ndim - 1) != label[..., None]
    if classes is not None:
        eligible = eligible & classes
    # min(s_j, ±inf) is s_j on the competitors and -inf elsewhere (a -inf score cannot be the best
    # unless all are: no competitor). XLA:CPU vectorises this max, not that of a select of s_j.
    candidates = jnp.minimum(x, jnp.where(eligible, jnp.inf, -jnp.inf).astype(x.dtype))
    counted = _counted(x, classes)
    # XLA's max need not propagate a NaN: the NaN scores are counted on their own.
    operands = (candidates, counted.astype(jnp.int32), (counted & jnp.isnan(x)).astype(jnp.int32))
    init = (jnp.array(-jnp.inf, x.dtype), jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))
    best, count, nans = jax.lax.reduce(operands, init, _max_and_add, (x.ndim - 1,))
    # A row without classes has no competitor (this use of the count also keeps the reduce variadic).
    return _Best(jnp.where(count > 0, best, -jnp.inf), count, nans)


def _tied(x, label, classes, best):
    """The competitors at ``best`` (when there is a competitor: x = best > -inf)."""
    tied = (x == best[..., None]) & (jax.lax.broadcasted_iota(label.dtype, x.shape, x.ndim - 1) != label[..., None])
    return tied if classes is None else tied & classes


def _best_tangent(x, label, classes, best, ties, dx):
    # The mean of dx over the tied competitors (jnp.max shares its gradient the same way).
    return jnp.sum(jnp.where(_tied(x, label, classes, best), dx, 0), axis=-1) / jnp.maximum(ties, 1).astype(x.dtype)


@_best_competitor.defjvp
def _best_competitor_jvp(primals, tangents):
    x, label, classes = primals
    out = _best_competitor(x, label, classes)
    # The number of tied competitors, a second pass (paired with the class count, so that it
    # is a variadic reduce that fuses the compare; integer sums, which XLA:CPU vectorises).
    operands = (_tied(x, label, classes, out.best).astype(jnp.int32), _counted(x, classes).astype(jnp.int32))
    ties, count = jax.lax.reduce(operands, (jnp.int32(0), jnp.int32(0)), _add, (x.ndim - 1,))
    ties = jnp.where(count > 0, ties, 0)
    # Linear in dx; the ties are recomputed from the scores, best and their count saved ([...] each).
    d_best = _backend.recomputed(_best_tangent)(x, label, classes, out.best, ties, tangents[0])
    zero = np.zeros(out.classes.shape, jax.dtypes.float0)
    return out, _Best(d_best, zero, zero)


def multi_margin_loss(
    scores: ArrayLike,
    targets: ArrayLike,
    *,
    p: int = 1,
    margin: ArrayLike = 1.0,
    weight: ArrayLike | None = None,
    axis: int | tuple[int, ...] = -1,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
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
      together (``inf − inf``) give NaN. The gradient in ``s_j`` is
      ``w_y p·z_j^(p-1)/C`` for each violating competitor (``z_j = margin - s_y + s_j >
      0``; 0 at the kink ``z_j = 0``, as in PyTorch's kernel), and minus their sum in
      ``s_y``; a ``jax.custom_jvp`` rule supplies it, so forward and reverse mode and
      higher orders work. At infinite scores: a ``+inf`` competitor gives ``+inf`` with
      gradients ``w_y/C`` in it and ``-w_y/C`` in the target for ``p = 1`` and ``±inf``
      for ``p = 2``; a ``+inf`` target (against finite competitors) gives 0 with
      gradient 0. A NaN score gives NaN for its example (PyTorch skips NaN hinge terms;
      jaxent does not hide them), unless the example is dropped by ``where``.

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
    mm = _margins(fn, scores, targets, axis, where, weight, margin)
    total, classes = _weston_watkins(mm.x, mm.label, mm.lay.class_mask, mm.target_score, mm.margin, p)
    return _finish(fn, mm, classes, total / jnp.maximum(classes, 1).astype(total.dtype), reduction)


def multiclass_hinge_loss(
    scores: ArrayLike,
    targets: ArrayLike,
    *,
    margin: ArrayLike = 1.0,
    axis: int | tuple[int, ...] = -1,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
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
      :func:`multi_margin_loss` (NaN; 0 competitor; ``+inf`` target). Where the margin
      is violated the gradient is +1 in the best competitor (tied maximal competitors
      share it equally, as ``jnp.max`` does) and -1 in the target; it is 0 elsewhere and
      at the kink. Forward and reverse mode and higher orders work. At infinite scores:
      a ``+inf`` competitor gives ``+inf`` with those same finite gradients; a ``+inf``
      target (against finite competitors) gives 0 with gradient 0. A NaN score (target
      or competitor) gives NaN for its example, unless it is dropped by ``where`` (optax's
      follows XLA's ``max``, which may skip a NaN competitor).

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.multiclass_hinge_loss(jnp.array([[0.1, 0.2, 0.4, 0.8]]), jnp.array([3]))
      Array(0.6, dtype=float32)

    References:
      optax ``multiclass_hinge_loss``; Crammer & Singer, *On the algorithmic
      implementation of multiclass kernel-based vector machines* (2001).
    """
    return _crammer_singer("multiclass_hinge_loss", scores, targets, margin, axis, where, reduction)


def _crammer_singer(
    fn: str, scores: Any, targets: Any, margin: Any, axis: Any, where: Any, reduction: str
) -> jax.Array:
    _checks.check_reduction(fn, reduction)
    mm = _margins(fn, scores, targets, axis, where, None, margin)
    best = _best_competitor(mm.x, mm.label, mm.lay.class_mask)
    has_competitor = best.best > -jnp.inf
    # Double where: with no competitor the best is -inf; it never meets the arithmetic.
    z = jax.nn.relu(mm.margin + jnp.where(has_competitor, best.best, 0) - mm.target_score)
    return _finish(fn, mm, best.classes, jnp.where(has_competitor, z, 0), reduction, best.nans > 0)


# --------------------------------------------------------------------------------------
# Perceptrons (hinges with margin 0), soft margins (logistic) and PyTorch's multilabel margin.


def perceptron_loss(
    scores: ArrayLike,
    targets: ArrayLike,
    *,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
) -> jax.Array:
    r"""Binary perceptron loss for ``±1`` targets, optax's ``perceptron_loss``.

    .. math::
        \ell = \max(0,\ -y\, s)

    elementwise (:func:`hinge_loss` with ``margin=0``), then ``reduction``: ``"none"``
    (optax's output, the shape of ``scores``), ``"sum"``, or ``"mean"`` over the kept
    elements (an empty mean is 0.0, not NaN).

    Args:
      scores: floating decision values of any shape.
      targets: ``-1``/``+1`` labels (integer or floating) or bool (``True`` = +1) of
        ``scores.shape``.
      where: optional boolean mask of ``scores.shape`` (or of the same rank with size-1 axes).
      reduction: ``"none"``, ``"sum"`` or ``"mean"``.

    Returns:
      The loss in float32 (float64 for float64 scores).

    Notes:
      Targets outside ``{-1, +1}`` are handled as in :func:`hinge_loss` (a ``ValueError``
      when concrete, NaN when traced). The gradient is ``-y`` on misclassified elements
      (``y s < 0``) and 0 elsewhere, 0 at ``s = 0`` too (optax's ``jnp.maximum`` gives
      ``-y/2`` there).

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.perceptron_loss(jnp.array([0.3, -2.0, 0.5]), jnp.array([1, 1, -1]), reduction="none")
      Array([0. , 2. , 0.5], dtype=float32)

    References:
      Rosenblatt, *The perceptron: a probabilistic model for information storage and
      organization in the brain* (1958).
    """
    return _binary_hinge("perceptron_loss", scores, targets, 0.0, False, where, reduction)


def multiclass_perceptron_loss(
    scores: ArrayLike,
    targets: ArrayLike,
    *,
    axis: int | tuple[int, ...] = -1,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
) -> jax.Array:
    r"""Multiclass perceptron loss, optax's ``multiclass_perceptron_loss``.

    .. math::
        \ell_n = \max_j s_{n,j} - s_{n,y_n} = \max\bigl(0,\ \max_{j \ne y_n} s_{n,j} - s_{n,y_n}\bigr)

    (:func:`multiclass_hinge_loss` with ``margin=0``), then ``reduction``: ``"none"``
    (optax's output, the batch shape), ``"sum"`` or ``"mean"`` over kept examples (an empty
    mean is 0.0, not NaN).

    Args:
      scores: ``[..., C, ...]`` floating scores.
      targets: integer class indices of ``scores.shape`` without ``axis``.
      axis: static class axis, or a tuple of axes.
      where: boolean mask of the batch shape (drops examples) or of ``scores.shape``
        (drops classes: they cannot be the competitor).
      reduction: ``"none"``, ``"sum"`` or ``"mean"``.

    Returns:
      The loss in float32 (float64 for float64 scores).

    Notes:
      Out-of-range labels, ``-inf`` and masked classes behave as in
      :func:`multiclass_hinge_loss`. The gradient is +1 in the best competitor (shared
      among ties) and -1 in the target when a competitor beats the target, 0 otherwise
      and at a tie with the target (optax's ``jnp.max`` shares the gradient with the
      target there).

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.multiclass_perceptron_loss(jnp.array([[0.1, 0.9, 0.4], [0.2, 0.1, 0.0]]), jnp.array([2, 0]))
      Array(0.25, dtype=float32)

    References:
      Collins, *Discriminative training methods for hidden Markov models: theory and
      experiments with perceptron algorithms* (EMNLP 2002).
    """
    return _crammer_singer("multiclass_perceptron_loss", scores, targets, 0.0, axis, where, reduction)


def soft_margin_loss(
    scores: ArrayLike,
    targets: ArrayLike,
    *,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
) -> jax.Array:
    r"""Two-class logistic loss for ``±1`` targets, PyTorch's ``soft_margin_loss``.

    .. math::
        \ell = \log\bigl(1 + e^{-y\, s}\bigr)

    elementwise, then ``reduction``: ``"none"`` (the shape of ``scores``), ``"sum"``, or
    ``"mean"`` over the kept elements (an empty mean is 0.0, not NaN). For ``y = ±1`` it is
    :func:`binary_cross_entropy_with_logits` with targets ``(y + 1)/2``.

    Args:
      scores: floating decision values of any shape.
      targets: real targets of ``scores.shape``, normally ``-1``/``+1`` (integer or
        floating), or bool (``True`` = +1). As in PyTorch, other real values are used as
        they are in the formula, not rejected.
      where: optional boolean mask of ``scores.shape`` (or of the same rank with size-1 axes).
      reduction: ``"none"``, ``"sum"`` or ``"mean"``.

    Returns:
      The loss in float32 (float64 for float64 scores).

    Notes:
      Exact at infinite scores: 0 (gradient 0) on the right side, ``+inf`` (gradient
      ``-y``) on the wrong one. The gradient in ``scores`` is ``-y σ(-y s)``.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.soft_margin_loss(jnp.array([0.0, 2.0]), jnp.array([1, -1]), reduction="none")
      Array([0.6931..., 2.1269...], dtype=float32)
    """
    fn = "soft_margin_loss"
    _checks.check_reduction(fn, reduction)
    s, t = _checks.elementwise_pair(fn, scores, targets, x_name="scores", integer_targets=True)
    kept = _checks.elementwise_mask(fn, where, s.shape, x_name="scores")
    ct = _checks.compute_dtype(s.dtype)
    sc = s.astype(ct)
    y = jnp.where(t, 1, -1).astype(ct) if t.dtype == jnp.bool_ else t.astype(ct)
    if kept is not None:
        # Dropped elements read 0: NaN padding reaches neither loss nor gradient.
        sc, y = jnp.where(kept, sc, 0), jnp.where(kept, y, 0)
    one, zero = jnp.ones((), ct), jnp.zeros((), ct)
    # log(1 + e^{-z}) = -log σ(z) at z = y s: the binary cross-entropy core with (cp, cn) = (1, 0).
    return _reduction.reduce_elements(_binary.sigmoid_ce(y * sc, one, zero), kept, reduction)


def _label_axes(fn: str, x: jax.Array, axis: Any, where: Any) -> tuple[tuple[int, ...], Any, Any]:
    """(class axes, example mask of the batch shape or None, label mask ``[..., C]`` or None)."""
    axes = _checks.canonical_axes(fn, axis, x.ndim, x.shape, "scores")
    batch_shape = tuple(d for a, d in enumerate(x.shape) if a not in axes)
    if where is None:
        return axes, None, None
    m = _checks.as_array(fn, "where", where)
    if m.dtype != jnp.bool_:
        raise TypeError(f"{fn}: where must be a boolean mask, got dtype {m.dtype}; pass e.g. where=(lengths_mask > 0).")
    if m.shape == batch_shape:
        return axes, m, None
    if m.shape == x.shape:
        return axes, None, _checks.move_classes_last(m, axes)
    raise ValueError(
        f"{fn}: where has shape {m.shape} but scores has shape {x.shape}; pass a batch mask of shape "
        f"{batch_shape} (drops examples) or a mask of shape {x.shape} (drops labels)."
    )


def multilabel_soft_margin_loss(
    scores: ArrayLike,
    targets: ArrayLike,
    *,
    weight: ArrayLike | None = None,
    axis: int | tuple[int, ...] = -1,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
) -> jax.Array:
    r"""Multi-label one-versus-all logistic loss, PyTorch's ``multilabel_soft_margin_loss``.

    For scores ``x`` and multi-hot targets ``y`` over ``C`` labels:

    .. math::
        \ell_n = -\frac{1}{C} \sum_c w_c \bigl[y_{n,c} \log \sigma(x_{n,c})
                 + (1 - y_{n,c}) \log \sigma(-x_{n,c})\bigr]

    then ``reduction``: ``"none"`` (the batch shape), ``"sum"``, or ``"mean"`` over kept
    examples (an empty mean is 0.0, not NaN). It is the mean over the label axis of
    :func:`binary_cross_entropy_with_logits` (optax: ``sigmoid_binary_cross_entropy``
    then ``.mean(-1)``).

    Args:
      scores: ``[..., C, ...]`` floating logits.
      targets: targets in ``[0, 1]`` of ``scores.shape`` (floating, integer or bool).
      weight: optional real weights that broadcast to ``scores.shape`` by NumPy's rules, as
        in PyTorch (``(C,)`` for one per label when the label axis is last); may be traced.
      axis: static label axis (PyTorch's is the last), or a tuple of axes.
      where: boolean mask of the batch shape (drops examples) or of ``scores.shape`` (drops
        labels as if removed: ``C`` counts the labels that remain; a row without labels is
        dropped).
      reduction: ``"none"``, ``"sum"`` or ``"mean"``.

    Returns:
      The loss in float32 (float64 for float64 scores).

    Notes:
      Exact at ``±inf`` logits (0 for the matching target, ``+inf`` for the wrong one), with
      finite gradients ``w (σ(x) - y)/C``.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> x = jnp.array([[0.3, -1.2, 2.0], [1.5, 0.1, -0.4]])
      >>> y = jnp.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
      >>> jaxent.multilabel_soft_margin_loss(x, y, weight=jnp.array([1.0, 2.0, 0.5]))
      Array(0.7985..., dtype=float32)
    """
    fn = "multilabel_soft_margin_loss"
    _checks.check_reduction(fn, reduction)
    x, t = _checks.elementwise_pair(fn, scores, targets, x_name="scores", integer_targets=True)
    axes, example_mask, label_mask = _label_axes(fn, x, axis, where)
    ct = _checks.compute_dtype(x.dtype)
    w = _checks.elementwise_weight(fn, "weight", weight, x.shape, ct, x_name="scores")
    xc, tc = _checks.move_classes_last(x, axes).astype(ct), _checks.move_classes_last(t, axes).astype(ct)
    drop = None if example_mask is None else example_mask[..., None]
    if label_mask is not None:
        drop = label_mask
    if drop is not None:
        # Dropped entries read 0 (a select: exactly zero gradient there, even for NaN padding).
        xc, tc = jnp.where(drop, xc, 0), jnp.where(drop, tc, 0)
    terms = _binary.sigmoid_ce(xc, tc, 1 - tc)
    if w is not None:
        terms = _checks.move_classes_last(w, axes) * terms
    if label_mask is not None:
        terms = jnp.where(label_mask, terms, 0)
    counted = jnp.ones(xc.shape, bool) if label_mask is None else label_mask
    (total,), (count,) = _backend.row_sums((terms,), (counted,))
    # A row without labels sums to 0 and is dropped (this use of the count keeps the reduce variadic).
    losses = jnp.where(count > 0, total, 0) / jnp.maximum(count, 1).astype(ct)
    kept = None if label_mask is None else count > 0
    if example_mask is not None:
        kept = example_mask if kept is None else kept & example_mask
    return _reduction.reduce_kept(losses, kept, reduction)


# Label slots per block of multilabel_margin_loss: the listed labels of a block are compared
# with every class in one fused pass (8 compares per score), so the labels of a list that
# fits in one block are excluded from the competitors exactly (longer lists subtract the
# other blocks' labels' terms again).
_LIST_BLOCK = 8


def _list_lengths(t: jax.Array) -> jax.Array:
    """The number of entries before the first negative one in each row of ``t`` ``[R, C]``."""
    first = jnp.argmax(t < 0, axis=-1).astype(jnp.int32)
    return jnp.where(jnp.take_along_axis(t, first[:, None], -1)[:, 0] < 0, first, t.shape[-1])


class _Slots(NamedTuple):
    label: jax.Array  # int [R, K]: the listed labels (0 where not listed)
    score: jax.Array  # [R, K]: their scores, in the compute dtype
    on: jax.Array  # bool [R, K]: listed, in range, and in this block
    slot: jax.Array  # int32 [K]: the list positions


def _list_block(x: jax.Array, t: jax.Array, lengths: jax.Array, b: jax.Array, k: int, dtype) -> _Slots:
    """List slots ``[b k, b k + k)`` of every row, read from a window clamped into ``[0, C)``."""
    num = t.shape[-1]
    start = jnp.minimum(b * k, num - k)
    label = jax.lax.dynamic_slice_in_dim(t, start, k, axis=1)
    slot = start + jnp.arange(k, dtype=jnp.int32)
    on = (slot[None, :] >= b * k) & (slot[None, :] < lengths[:, None]) & (label < num)
    label = jnp.where(on, label, 0)
    # (A half-precision x tied to b: its upcast is not hoisted out of the loop as a copy.)
    score = jnp.take_along_axis(_backend.tied(x, b), label, axis=1).astype(dtype)
    return _Slots(label, score, on, slot)


def _outside(block: _Slots, num: int) -> jax.Array:
    """bool ``[R, C]``: the classes that are not a listed label of ``block`` (unrolled compares, fused)."""
    classes = jax.lax.broadcasted_iota(block.label.dtype, (block.label.shape[0], num), 1)
    hit = block.on[:, :1] & (classes == block.label[:, :1])
    for q in range(1, block.label.shape[1]):
        hit = hit | (block.on[:, q : q + 1] & (classes == block.label[:, q : q + 1]))
    return ~hit


def _pair_terms(m: _Slots, j: _Slots) -> tuple[jax.Array, jax.Array, jax.Array]:
    """For listed targets ``j`` and listed labels ``m`` (as competitors): the hinge
    ``max(0, 1 - s_j + s_m)`` ``[R, Kj, Km]`` where ``m`` is not a label of ``j``'s block
    (0 elsewhere), and whether ``m`` repeats a label listed earlier in ``j``'s block ``[R, Km]``."""
    same = j.on[:, :, None] & (j.label[:, :, None] == m.label[:, None, :])
    z = 1 - j.score[:, :, None] + m.score[:, None, :]
    live = j.on[:, :, None] & ~jnp.any(same, axis=1)[:, None, :]
    earlier = jnp.any(same & (j.slot[:, None] < m.slot[None, :])[None], axis=1)
    return jnp.where(live, jnp.maximum(z, 0), 0), live & (z > 0), earlier


class _Blocks(NamedTuple):
    needed: jax.Array  # int32: the blocks the longest list needs
    size: int  # K, static
    single: bool  # static: a list fits in one block (C <= K), so no loop is needed

    def fold(self, body, init):
        """``fori_loop(0, needed, body, init)``; ``body(0, init)`` when one block holds every list
        (an empty block changes nothing: its slots are not listed)."""
        return body(jnp.int32(0), init) if self.single else jax.lax.fori_loop(0, self.needed, body, init)


def _multilabel_blocks(t: jax.Array, lengths: jax.Array) -> _Blocks:
    # Up to 2 blocks' worth of classes are one block: no loop at small C.
    num = t.shape[-1]
    k = num if num <= 2 * _LIST_BLOCK else _LIST_BLOCK
    return _Blocks((jnp.max(lengths, initial=0) + k - 1) // k, k, k == num)


@jax.custom_jvp
def _multilabel_hinge(x: jax.Array, t: jax.Array, lengths: jax.Array) -> jax.Array:
    """``Σ_{j listed} Σ_{i not listed} max(0, 1 - s_j + s_i)`` per row of ``x`` ``[R, C]``.

    A loop over blocks of list slots (as many as the longest list needs). For the targets
    ``j`` of a block, one pass over the scores sums the hinge over every class outside the
    block's labels. Then the listed labels of the other blocks, each counted once (its first
    listing), are subtracted as competitors, on ``[R, K, K]`` pairs (the +inf terms counted
    apart on both sides).
    """
    dtype, num = _checks.compute_dtype(x.dtype), x.shape[-1]
    blocks = _multilabel_blocks(t, lengths)
    k = blocks.size

    def pass_over_scores(b, acc):
        # The hinge over the classes outside the block's labels, its +inf terms counted apart:
        # a listed label of another block with a +inf score is subtracted again below, and
        # inf - inf is NaN. (A NaN term stays in the sum.)
        total, infinite = acc
        j = _list_block(x, t, lengths, b, k, dtype)
        outside = _outside(j, num)
        # Upcast in the pass (a half-precision x tied to b: not hoisted as a float32 copy).
        xs = _backend.tied(x, b).astype(dtype)
        z = [1 - j.score[:, q : q + 1] + xs for q in range(k)]
        h = sum(jnp.where(j.on[:, q : q + 1] & (z[q] != jnp.inf), jnp.maximum(z[q], 0), 0) for q in range(k))
        n = sum((j.on[:, q : q + 1] & (z[q] == jnp.inf)).astype(jnp.int32) for q in range(k))
        (h_sum,), (free, n_sum) = _backend.row_sums((jnp.where(outside, h, 0),), (outside, jnp.where(outside, n, 0)))
        # A row whose classes are all labels of the block has no competitor (this use of the
        # count keeps the reduce variadic).
        return total + jnp.where(free > 0, h_sum, 0), infinite + n_sum

    def listed_competitors(mb, acc):
        total, infinite = acc
        m = _list_block(x, t, lengths, mb, k, dtype)

        def against(jb, carry):
            hinge, infinities, repeated = carry
            h, _, earlier = _pair_terms(m, _list_block(x, t, lengths, jb, k, dtype))
            finite = h != jnp.inf  # (a NaN term stays in the sum)
            return (
                hinge + jnp.sum(jnp.where(finite, h, 0), axis=1),
                infinities + jnp.sum(~finite, axis=1, dtype=jnp.int32),
                repeated | earlier,
            )

        zeros = (jnp.zeros(m.score.shape, dtype), jnp.zeros(m.on.shape, jnp.int32), jnp.zeros(m.on.shape, bool))
        hinge, infinities, repeated = blocks.fold(against, zeros)
        first = m.on & ~repeated
        left = jnp.sum(jnp.where(first, infinities, 0), axis=-1, dtype=jnp.int32)
        return total + jnp.sum(jnp.where(first, hinge, 0), axis=-1), infinite + left

    zero = (jnp.zeros(x.shape[:1], dtype), jnp.zeros(x.shape[:1], jnp.int32))
    total, infinite = blocks.fold(pass_over_scores, zero)
    if blocks.single:  # every label is in the block: no label of another block to subtract
        return jnp.where(infinite > 0, jnp.inf, total)
    listed, listed_infinite = blocks.fold(listed_competitors, zero)
    # +inf when an infinite term is left after the listed labels' are taken out.
    return jnp.where(infinite > listed_infinite, jnp.inf, total - listed)


def _multilabel_hinge_grad(x: jax.Array, t: jax.Array, lengths: jax.Array) -> jax.Array:
    """``d/dx`` of :func:`_multilabel_hinge` ``[R, C]``: each class gets +1 per listed target it
    violates (not being a label), each target -1 per class violating it; 0 at the kink
    ``1 - s_j + s_i = 0``. Integer counts, piecewise constant in ``x``: exact in float32, and
    held in ``x``'s dtype when it is half precision (the buffer becomes the gradient, not an
    ``[N, C]`` float32 temporary), where a count above 256 (bfloat16) rounds like the gradient.

    One elementwise pass per block of slots writes the block's part: the pass over the
    scores, and at the block's labels (one-hot compares, no scatter) their per-slot counts.
    """
    x = jax.lax.stop_gradient(x)
    dtype, num = _checks.compute_dtype(x.dtype), x.shape[-1]
    held = x.dtype if x.dtype.itemsize < 4 else dtype
    blocks = _multilabel_blocks(t, lengths)
    k = blocks.size

    def block(b):
        return _list_block(x, t, lengths, b, k, dtype)

    def first_listings(m: _Slots) -> jax.Array:
        def repeats(jb, repeated):
            return repeated | _pair_terms(m, block(jb))[2]

        return m.on & ~blocks.fold(repeats, jnp.zeros(m.on.shape, bool))

    def per_block(b, g):
        j = block(b)

        def as_target(mb, total):
            # The listed labels of other blocks that j's targets counted as competitors.
            m = block(mb)
            return total + jnp.sum(_pair_terms(m, j)[1] & first_listings(m)[:, None, :], axis=2, dtype=jnp.int32)

        def as_competitor(jb, total):
            # The targets of other blocks that counted j's labels (first listings) as competitors.
            return total + jnp.sum(_pair_terms(j, block(jb))[1], axis=1, dtype=jnp.int32)

        zero = jnp.zeros(j.on.shape, jnp.int32)
        listed, undo = zero, zero  # one block holds every label: no other block
        if not blocks.single:
            listed = blocks.fold(as_target, zero)
            undo = jnp.where(first_listings(j), blocks.fold(as_competitor, zero), 0)
        # The classes violating each target in the pass over the scores (its own fused reduce
        # over a barrier-separated read of the scores, else XLA:CPU writes the masks to memory).
        (xb,) = _backend.separately((x,), 0)
        outside, xb = _outside(j, num), _backend.tied(xb, b).astype(dtype)
        violated = [outside & j.on[:, q : q + 1] & (1 - j.score[:, q : q + 1] + xb > 0) for q in range(k)]
        (first_count,), rest = _backend.row_sums((violated[0].astype(dtype),), tuple(violated[1:]) or (outside,))
        counts = jnp.stack([first_count.astype(jnp.int32), *rest[: k - 1]], axis=-1)
        at_labels = jnp.where(j.on, listed - counts, 0) - undo
        xs = _backend.tied(x, b).astype(dtype)
        classes = jax.lax.broadcasted_iota(j.label.dtype, x.shape, 1)
        v = jnp.zeros(x.shape, dtype)
        for q in range(k):
            v = v + (j.on[:, q : q + 1] & (1 - j.score[:, q : q + 1] + xs > 0)).astype(dtype)
        v = jnp.where(_outside(j, num), v, 0)
        for q in range(k):
            v = v + jnp.where(classes == j.label[:, q : q + 1], at_labels[:, q : q + 1], 0).astype(dtype)
        return g + v.astype(held)

    return blocks.fold(per_block, jnp.zeros(x.shape, held))


def _along_multilabel(x, t, lengths, dx):
    # Σ_i (d hinge / d s_i) dx_i, the gradient recomputed from the scores.
    g = _multilabel_hinge_grad(x, t, lengths)
    dtype = _checks.compute_dtype(x.dtype)
    return jnp.sum(g.astype(dtype) * dx.astype(dtype), axis=-1)


@functools.partial(_multilabel_hinge.defjvp, symbolic_zeros=True)
def _multilabel_hinge_jvp(primals, tangents):
    out = _multilabel_hinge(*primals)
    if isinstance(tangents[0], SymbolicZero):
        return out, jnp.zeros_like(out)
    return out, _backend.recomputed(_along_multilabel)(*primals, tangents[0])


def multilabel_margin_loss(
    scores: ArrayLike,
    targets: ArrayLike,
    *,
    axis: int = -1,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
) -> jax.Array:
    r"""Multi-label hinge loss, PyTorch's ``multilabel_margin_loss``.

    The targets of a row are a list of class indices, ended by the first negative entry
    (PyTorch's ``-1`` padding): ``targets[n] = [3, 0, -1, 1]`` means classes ``{3, 0}``. With
    ``J_n`` those entries and ``C`` classes:

    .. math::
        \ell_n = \frac{1}{C} \sum_{j \in J_n} \sum_{i \notin J_n} \max(0,\ 1 - (s_{n,j} - s_{n,i}))

    (a label listed twice counts twice, as in PyTorch). Then ``reduction``: ``"none"`` (the
    batch shape), ``"sum"``, or ``"mean"`` over kept examples (an empty mean is 0.0, not NaN).

    Args:
      scores: ``[..., C, ...]`` floating scores.
      targets: integer class lists of ``scores.shape`` (the same shape, as in PyTorch).
      axis: static class axis (PyTorch's is the last).
      where: optional boolean mask of the batch shape (drops examples).
      reduction: ``"none"``, ``"sum"`` or ``"mean"``.

    Returns:
      The loss in float32 (float64 for float64 scores).

    Notes:
      PyTorch's ``O(|J| C)`` work, without its loop over labels per score: a loop over
      blocks of 8 list slots (as many as the longest list in the batch needs; one block and
      no loop when ``C <= 16``), each one fused pass over the scores that compares every
      class with the block's labels. Nothing of size ``[N, C]`` is written but the gradient
      (held in the scores' dtype; in bfloat16 a count above 256 rounds like the gradient).
      Lists that fit in one block are summed exactly like PyTorch; in longer lists the
      hinge terms of the labels of other blocks (as competitors) are subtracted again,
      which rounds like a sum of those terms (their infinities are counted apart, so a
      ``+inf`` score of a listed label never gives NaN). The gradient is exact (``±1/C``
      per violating pair, 0 at the kink, as in PyTorch); forward and reverse mode work.
      The block loop is a ``while`` loop whose trip count depends on the lists (on a GPU,
      a host read of its predicate per block). A listed label outside ``[0, C)`` gives NaN
      for its example (PyTorch raises).

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> x = jnp.array([[0.1, 0.2, 0.4, 0.8]])
      >>> y = jnp.array([[3, 0, -1, 1]])
      >>> jaxent.multilabel_margin_loss(x, y)
      Array(0.85, dtype=float32)

    References:
      PyTorch ``torch.nn.MultiLabelMarginLoss``.
    """
    fn = "multilabel_margin_loss"
    _checks.check_reduction(fn, reduction)
    x = _checks.as_array(fn, "scores", scores)
    _checks.check_floating(fn, "scores", x)
    t = _checks.target_array(fn, targets)
    if not jnp.issubdtype(t.dtype, jnp.integer):
        raise TypeError(
            f"{fn}: targets must be integer class lists (ended by -1), got dtype {t.dtype}; "
            "cast them with targets.astype(jnp.int32)."
        )
    _checks.check_same_shape(fn, "targets", t, "scores", x.shape)
    if isinstance(axis, (tuple, list)):
        raise TypeError(f"{fn}: axis must be an int, got {axis!r}; the class lists run along one axis.")
    axes, example_mask, label_mask = _label_axes(fn, x, axis, where)
    if label_mask is not None:
        raise ValueError(
            f"{fn}: where has the shape of scores {x.shape}; only a batch mask of shape "
            f"{tuple(d for a, d in enumerate(x.shape) if a not in axes)} (drops examples) is supported."
        )
    xc, tc = _checks.move_classes_last(x, axes), _checks.move_classes_last(t, axes)
    num = xc.shape[-1]
    rows, lists = xc.reshape(-1, num), tc.reshape(-1, num)
    lengths = _list_lengths(lists)
    if example_mask is not None:
        # A dropped example lists no label: loss and gradient exactly 0, even for NaN padding.
        lengths = jnp.where(example_mask.reshape(-1), lengths, 0)
    # The largest listed label of each row (an argmax, one fused reduce); -1 for an empty list.
    classes = jax.lax.broadcasted_iota(jnp.int32, lists.shape, 1)
    at = jnp.argmax(jnp.where(classes < lengths[:, None], lists, -1), axis=-1).astype(jnp.int32)
    largest = jnp.where(at < lengths, jnp.take_along_axis(lists, at[:, None], axis=-1)[:, 0], -1)
    bad = (largest >= num).reshape(xc.shape[:-1])
    totals = _multilabel_hinge(rows, lists, lengths).reshape(xc.shape[:-1])
    # A listed label outside [0, C): NaN for its example (and any mean), never a wrong number.
    losses = jnp.where(bad, jnp.nan, totals / num)
    message = f"{fn}: targets contain a label outside [0, {num}) before the first -1, e.g. {{}}."
    first_bad = jnp.max(largest, initial=-1)
    loss = _reduction.reduce_kept(losses, example_mask, reduction)
    return _checks.attach_check(loss, ~jnp.any(bad), message, first_bad)


# --------------------------------------------------------------------------------------
# Loss objects.


@loss_object
class HingeLoss(LossObject):
    """:func:`hinge_loss` as a frozen dataclass pytree: ``HingeLoss(...)(scores, targets)``.

    ``margin`` is a pytree leaf; ``squared`` and ``reduction`` are static.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.HingeLoss(margin=0.5)(jnp.array([0.3, -0.1]), jnp.array([1, -1]))
      Array(0.3, dtype=float32)
    """

    function: ClassVar = staticmethod(hinge_loss)
    margin: ArrayLike = 1.0
    squared: bool = static_field(default=False)
    reduction: _reduction.Reduction = static_field(default="mean")


@loss_object
class MultiMarginLoss(LossObject):
    """:func:`multi_margin_loss` as a frozen dataclass pytree: ``MultiMarginLoss(...)(scores, targets)``.

    ``margin`` and ``weight`` are pytree leaves; ``p``, ``axis`` and ``reduction`` are static.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.MultiMarginLoss(p=2)(jnp.array([[0.1, 0.2, 0.4, 0.8]]), jnp.array([3]))
      Array(0.1525, dtype=float32)
    """

    function: ClassVar = staticmethod(multi_margin_loss)
    p: int = static_field(default=1)
    margin: ArrayLike = 1.0
    weight: ArrayLike | None = None
    axis: int | tuple[int, ...] = static_field(default=-1)
    reduction: _reduction.Reduction = static_field(default="mean")


@loss_object
class MultiClassHingeLoss(LossObject):
    """:func:`multiclass_hinge_loss` as a frozen dataclass pytree: ``MultiClassHingeLoss(...)(scores, targets)``.

    ``margin`` is a pytree leaf; ``axis`` and ``reduction`` are static.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.MultiClassHingeLoss(margin=0.5)(jnp.array([[0.1, 0.2, 0.4, 0.8]]), jnp.array([3]))
      Array(0.1, dtype=float32)
    """

    function: ClassVar = staticmethod(multiclass_hinge_loss)
    margin: ArrayLike = 1.0
    axis: int | tuple[int, ...] = static_field(default=-1)
    reduction: _reduction.Reduction = static_field(default="mean")


@loss_object
class PerceptronLoss(LossObject):
    """:func:`perceptron_loss` as a frozen dataclass pytree: ``PerceptronLoss(...)(scores, targets)``.

    ``reduction`` is static.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.PerceptronLoss(reduction="sum")(jnp.array([0.3, -0.1]), jnp.array([-1, 1]))
      Array(0.4, dtype=float32)
    """

    function: ClassVar = staticmethod(perceptron_loss)
    reduction: _reduction.Reduction = static_field(default="mean")


@loss_object
class MultiClassPerceptronLoss(LossObject):
    """:func:`multiclass_perceptron_loss` as a frozen dataclass pytree.

    Called as ``MultiClassPerceptronLoss(...)(scores, targets)``.

    ``axis`` and ``reduction`` are static.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.MultiClassPerceptronLoss()(jnp.array([[0.1, 0.2, 0.4, 0.8]]), jnp.array([2]))
      Array(0.4, dtype=float32)
    """

    function: ClassVar = staticmethod(multiclass_perceptron_loss)
    axis: int | tuple[int, ...] = static_field(default=-1)
    reduction: _reduction.Reduction = static_field(default="mean")


@loss_object
class SoftMarginLoss(LossObject):
    """:func:`soft_margin_loss` as a frozen dataclass pytree: ``SoftMarginLoss(...)(scores, targets)``.

    ``reduction`` is static.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.SoftMarginLoss(reduction="sum")(jnp.array([0.0, 0.0]), jnp.array([1, -1]))
      Array(1.3862..., dtype=float32)
    """

    function: ClassVar = staticmethod(soft_margin_loss)
    reduction: _reduction.Reduction = static_field(default="mean")


@loss_object
class MultiLabelSoftMarginLoss(LossObject):
    """:func:`multilabel_soft_margin_loss` as a frozen dataclass pytree.

    Called as ``MultiLabelSoftMarginLoss(...)(scores, targets)``.

    ``weight`` is a pytree leaf; ``axis`` and ``reduction`` are static.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.MultiLabelSoftMarginLoss()(jnp.array([[0.0, 0.0]]), jnp.array([[1.0, 0.0]]))
      Array(0.6931..., dtype=float32)
    """

    function: ClassVar = staticmethod(multilabel_soft_margin_loss)
    weight: ArrayLike | None = None
    axis: int | tuple[int, ...] = static_field(default=-1)
    reduction: _reduction.Reduction = static_field(default="mean")


@loss_object
class MultiLabelMarginLoss(LossObject):
    """:func:`multilabel_margin_loss` as a frozen dataclass pytree: ``MultiLabelMarginLoss(...)(scores, targets)``.

    ``axis`` and ``reduction`` are static.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.MultiLabelMarginLoss()(jnp.array([[0.1, 0.2, 0.4, 0.8]]), jnp.array([[3, 0, -1, 1]]))
      Array(0.85, dtype=float32)
    """

    function: ClassVar = staticmethod(multilabel_margin_loss)
    axis: int = static_field(default=-1)
    reduction: _reduction.Reduction = static_field(default="mean")
