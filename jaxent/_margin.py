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

from jaxent import _backend, _checks, _reduction
from jaxent._objects import LossObject, loss_object, static_field


def _margin(fn: str, margin: Any, dtype: Any) -> tuple[jax.Array, tuple | None]:
    """(margin in ``dtype``, its check for :func:`_checks.attach_checks`)."""
    # Any finite margin is legal (PyTorch accepts negative ones); NaN and inf are not: a
    # ValueError now when concrete, a checkify check when traced.
    check = _checks.traced_finite_check(fn, "margin", margin)  # first: it names a non-number margin
    return _checks.hyperparameter(margin, dtype), check


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
    fn = "hinge_loss"
    _checks.check_reduction(fn, reduction)
    _checks.check_static_bool(fn, "squared", squared)
    s, t = _checks.elementwise_pair(fn, scores, targets, x_name="scores", integer_targets=True)
    kept = _checks.elementwise_mask(fn, where, s.shape, x_name="scores")
    ct = _checks.compute_dtype(s.dtype)
    m, margin_check = _margin(fn, margin, ct)
    sc = s.astype(ct)

    check: tuple[jax.Array, str, jax.Array] | None = None
    if t.dtype == jnp.bool_:
        y = jnp.where(t, 1, -1).astype(ct)
    else:
        fix = "pass -1/+1 labels, a bool array (True = +1), or map {0, 1} labels with 2 * targets - 1."
        y = t.astype(ct)
        ok = y * y == 1
        if _checks.concrete(t) is not None and (kept is None or _checks.concrete(kept) is not None):
            _checks.check_allowed_values(fn, "targets", t, (-1, 1), kept, fix)  # a ValueError now
        else:  # traced: a checkify check that names the first bad target
            bad = ~ok if kept is None else kept & ~ok
            message = _escape(f"{fn}: targets must lie in {{-1, 1}}, got ") + "{}" + _escape(f"; {fix}")
            check = (~jnp.any(bad), message, _checks.offending_value(t, bad))
        # A kept target outside {-1, +1} (y² != 1) poisons its element (and the mean) with NaN:
        # y = NaN makes the loss NaN, and the gradient -y·(...) NaN.
        y = jnp.where(ok if kept is None else ok | ~kept, y, jnp.nan)

    return _checks.attach_checks(
        _reduction.reduce_elements(_hinge(sc, y, m, squared), kept, reduction), [check, margin_check]
    )


def _escape(text: str) -> str:
    """``text`` as literal text of a checkify message (which ``str.format`` fills in)."""
    return text.replace("{", "{{").replace("}", "}}")


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
    margin_check: tuple | None


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
    m, margin_check = _margin(fn, margin, ct)
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
    fn = "multiclass_hinge_loss"
    _checks.check_reduction(fn, reduction)
    mm = _margins(fn, scores, targets, axis, where, None, margin)
    best = _best_competitor(mm.x, mm.label, mm.lay.class_mask)
    has_competitor = best.best > -jnp.inf
    # Double where: with no competitor the best is -inf; it never meets the arithmetic.
    z = jax.nn.relu(mm.margin + jnp.where(has_competitor, best.best, 0) - mm.target_score)
    return _finish(fn, mm, best.classes, jnp.where(has_competitor, z, 0), reduction, best.nans > 0)


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
    margin: Any = 1.0
    squared: bool = static_field(default=False)
    reduction: str = static_field(default="mean")


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
    margin: Any = 1.0
    weight: Any = None
    axis: int | tuple[int, ...] = static_field(default=-1)
    reduction: str = static_field(default="mean")


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
    margin: Any = 1.0
    axis: int | tuple[int, ...] = static_field(default=-1)
    reduction: str = static_field(default="mean")
