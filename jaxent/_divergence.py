"""Kullback–Leibler divergence between a target distribution and predicted log-probabilities.

Each entry ``t (log t - log q)`` is a ``jax.custom_jvp`` with its partial derivatives
written out and recomputed next to the gradient, so that reverse mode needs no
``[N, C]`` temporary; entries whose value is fixed by convention (zero targets, ``-inf``
log-targets, masked classes, ``+inf`` contributions) get zero partials, so no ``inf`` or
NaN reaches a gradient. Forward and reverse mode, and higher orders, all work.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxent import _backend, _checks, _reduction
from jaxent._objects import LossObject, loss_object, static_field


def _pair_dtype(a: Any, b: Any) -> jnp.dtype:
    """float64 when either input is float64, float32 otherwise (bf16/f16/f32)."""
    f64 = jnp.dtype(jnp.float64)
    return f64 if f64 in (jnp.dtype(a), jnp.dtype(b)) else jnp.dtype(jnp.float32)


def _kl_partials(lq: jax.Array, t: jax.Array, log_target: bool) -> tuple[jax.Array, jax.Array]:
    """The partials in ``lq`` and ``t`` of each entry ``t (log t - log q)``."""
    # An absent class (t = 0, or log t = -inf) contributes 0 whatever log q is; target mass on
    # an impossible prediction (log q = -inf) contributes +inf. Both get zero partials.
    absent = t == -jnp.inf if log_target else t == 0
    present = t > -jnp.inf if log_target else t > 0
    impossible = present & (lq == -jnp.inf)
    skip = absent | impossible
    # Double where: skipped entries see t = 1 (log t = 0) and log q = 0, so neither log nor
    # exp nor a product meets 0 or inf, and no NaN reaches a gradient.
    ts = jnp.where(skip, 0 if log_target else 1, t)
    lqs = jnp.where(skip, 0, lq)
    if log_target:
        # d/d log t of exp(log t)·(log t - log q) is exp(log t)·(log t - log q + 1).
        pt = jnp.exp(ts)
        d_lq, d_t = -pt, pt * (ts - lqs + 1)
    else:
        # d/dt of t (log t - log q) is log t + 1 - log q (exact for subnormal t).
        d_lq, d_t = -ts, jnp.log(ts) + 1 - lqs
    return jnp.where(skip, 0, d_lq), jnp.where(skip, 0, d_t)


def _kl_value(lq: jax.Array, t: jax.Array, log_target: bool) -> jax.Array:
    """Each entry ``t (log t - log q)`` (few operations: no derivative is taken of it)."""
    if log_target:
        # exp(log t)·(log t - log q): 0 for an absent class; on an impossible prediction
        # log t - log q = +inf itself (also where exp(log t) underflows to 0).
        d = t - lq
        return jnp.where(t == -jnp.inf, 0, jnp.where(lq == -jnp.inf, d, jnp.exp(t) * d))
    # t (log t - log q): 0 for an absent class; t·(log t + inf) = +inf on an impossible prediction.
    return jnp.where(t == 0, 0, t * (jnp.log(t) - lq))


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _kl_terms(lq: jax.Array, t: jax.Array, log_target: bool) -> jax.Array:
    return _kl_value(lq, t, log_target)


@functools.partial(_kl_terms.defjvp, symbolic_zeros=True)
def _kl_terms_jvp(log_target, primals, tangents):
    out = _kl_terms(*primals, log_target)
    partials = functools.partial(_kl_partials, log_target=log_target)
    return out, _backend.linear_tangent(partials, out, primals, tangents)


def kl_divergence(
    log_predictions: ArrayLike,
    targets: ArrayLike,
    *,
    log_target: bool = False,
    axis: int | tuple[int, ...] = -1,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
) -> jax.Array:
    r"""Kullback–Leibler divergence ``KL(targets ‖ predictions)``, exact at zero targets.

    With target probabilities ``t`` and predicted log-probabilities ``log q`` (both of
    the same shape), each example's loss is the sum over the class axis

    .. math::
        \ell_n = \sum_c t_{n,c} \,(\log t_{n,c} - \log q_{n,c})

    (with ``log_target=True`` the targets are given as ``log t`` and the summand is
    ``exp(log t)·(log t − log q)``). Then ``reduction``: ``"none"`` (the batch shape),
    ``"sum"``, or ``"mean"`` = the sum over kept examples divided by their number, which
    is PyTorch's ``reduction="batchmean"`` for ``(N, C)`` inputs (PyTorch divides by
    ``N`` only for ``(N, C, d1, ...)`` inputs; here every position is an example). An
    empty mean is 0.0, not NaN. PyTorch's deprecated ``"mean"`` (over every element)
    is ``reduction="sum"`` divided by ``log_predictions.size``.

    Args:
      log_predictions: ``[..., C, ...]`` floating predicted log-probabilities.
      targets: floating target probabilities (or log-probabilities when
        ``log_target=True``) of ``log_predictions.shape``.
      log_target: static; whether ``targets`` are log-probabilities (PyTorch's
        ``log_target``, optax's ``kl_divergence_with_log_targets``).
      axis: static class axis, or a tuple of axes that together form the distribution.
      where: boolean mask of the batch shape (drops examples) or of
        ``log_predictions.shape`` (drops classes from the sum, as optax's ``where``; a
        row with every class dropped is a dropped example).
      reduction: ``"none"``, ``"sum"`` or ``"mean"`` (batchmean).

    Returns:
      The loss in float32 (float64 when either input is float64).

    Notes:
      Zero targets (``log t = -inf`` with ``log_target=True``) contribute exactly 0 with
      a zero gradient with respect to both arguments (the ``t log t`` convention), also
      when ``log q = -inf``; optax and PyTorch return NaN target-gradients there
      (pytorch#89558, optax PR #1786) and PyTorch a NaN value for ``-inf`` log-targets.
      A positive target on ``log q = -inf`` contributes ``+inf``, and that entry gets a
      zero gradient (the others keep theirs). Negative or NaN targets give NaN. The
      gradients are exact: ``−t`` in ``log q`` and ``log t + 1 − log q`` in ``t``
      (``−exp(log t)`` and ``exp(log t)·(log t + 1 − log q)`` in log space), from a
      ``jax.custom_jvp`` rule, so forward mode (``jax.jvp``, ``jax.jacfwd``), reverse
      mode and higher orders all work, and ``value_and_grad`` at any size needs no
      temporary of the inputs' size.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> log_q = jnp.log(jnp.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]]))
      >>> t = jnp.array([[0.0, 0.5, 0.5], [0.7, 0.2, 0.1]])
      >>> jaxent.kl_divergence(log_q, t, reduction="none").tolist()
      [0.2554..., 0.0268...]
      >>> jaxent.kl_divergence(log_q, jnp.log(t), log_target=True)
      Array(0.1411, dtype=float32)

    References:
      PyTorch ``torch.nn.functional.kl_div``; optax ``kl_divergence`` and
      ``kl_divergence_with_log_targets``; Kullback & Leibler (1951).
    """
    fn = "kl_divergence"
    if reduction == "batchmean":
        raise ValueError(
            f"{fn}: reduction must be one of 'none', 'sum' or 'mean', got 'batchmean'; "
            "'mean' here is PyTorch's 'batchmean' (the sum over examples divided by their number)."
        )
    _checks.check_reduction(fn, reduction)
    _checks.check_static_bool(fn, "log_target", log_target)
    x = _checks.as_array(fn, "log_predictions", log_predictions)
    _checks.check_floating(fn, "log_predictions", x)
    t = _checks.as_array(fn, "targets", targets)
    _checks.check_floating(fn, "targets", t)
    _checks.check_same_shape(fn, "targets", t, "log_predictions", x.shape)
    lay = _checks.class_layout(fn, x, t, axis=axis, where=where, logits_name="log_predictions")
    ct = _pair_dtype(x.dtype, t.dtype)
    lq, t = lay.x.astype(ct), lay.targets.astype(ct)

    if lay.class_mask is not None:
        # A masked class is an absent one: it leaves the sum, with zero gradients.
        t = jnp.where(lay.class_mask, t, -jnp.inf if log_target else 0)
    counted = jnp.ones(t.shape, bool) if lay.class_mask is None else lay.class_mask
    (sums,), (classes,) = _backend.row_sums((_kl_terms(lq, t, log_target),), (counted,))
    # A row with no class left sums to 0 (this use of the count also keeps the reduce variadic).
    losses = jnp.where(classes > 0, sums, 0)
    # The examples that count: not masked, with some class left.
    kept = lay.example_mask if lay.class_mask is None else _and(lay.example_mask, classes > 0)
    return _reduction.reduce_kept(losses, kept, reduction)


def _generalized_partials(lq: jax.Array, t: jax.Array, log_target: bool) -> tuple[jax.Array, jax.Array]:
    """The partials of each entry ``t (log t - log q) + q - t`` (``t`` given as ``log t`` with ``log_target``)."""
    d_lq, d_t = _kl_partials(lq, t, log_target)
    # d(q)/d log q = q (0 at log q = -inf); d(-t)/dt = -1, d(-exp(log t))/d log t = -exp(log t).
    return d_lq + jnp.exp(lq), d_t - (jnp.exp(t) if log_target else 1)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _generalized_terms(lq: jax.Array, t: jax.Array, log_target: bool) -> jax.Array:
    # t (log t - log q) + q - t: the Bregman divergence of x log x - x (q = exp(log q) underflows to 0, exactly).
    return _kl_value(lq, t, log_target) + jnp.exp(lq) - (jnp.exp(t) if log_target else t)


@functools.partial(_generalized_terms.defjvp, symbolic_zeros=True)
def _generalized_terms_jvp(log_target, primals, tangents):
    out = _generalized_terms(*primals, log_target)
    partials = functools.partial(_generalized_partials, log_target=log_target)
    return out, _backend.linear_tangent(partials, out, primals, tangents)


def generalized_kl_divergence(
    log_predictions: ArrayLike,
    targets: ArrayLike,
    *,
    log_target: bool = False,
    axis: int | tuple[int, ...] = -1,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
) -> jax.Array:
    r"""Generalized KL divergence of unnormalised distributions, optax's ``generalized_kl_divergence``.

    With targets ``t ≥ 0`` and predictions ``q = exp(log q)`` (neither need sum to 1), each
    example's loss is the sum over the class axis

    .. math::
        \ell_n = \sum_c t_{n,c} (\log t_{n,c} - \log q_{n,c}) + q_{n,c} - t_{n,c}

    the Bregman divergence of ``x log x - x``; it is :func:`kl_divergence` when both sum to 1.
    Then ``reduction``: ``"none"`` (the batch shape; optax's output), ``"sum"``, or
    ``"mean"`` over kept examples (an empty mean is 0.0, not NaN).

    Args:
      log_predictions: ``[..., C, ...]`` floating predicted log-values ``log q``.
      targets: floating targets ``t`` (or ``log t`` with ``log_target=True``) of
        ``log_predictions.shape``.
      log_target: static; whether ``targets`` are given in log space (optax has no such
        option; it is here as in :func:`kl_divergence`).
      axis: static class axis, or a tuple of axes.
      where: boolean mask of the batch shape (drops examples) or of
        ``log_predictions.shape`` (drops entries from the sum, as optax's ``where``; a row
        with every entry dropped is a dropped example).
      reduction: ``"none"``, ``"sum"`` or ``"mean"``.

    Returns:
      The loss in float32 (float64 when either input is float64).

    Notes:
      Zero targets contribute ``q`` (the ``0 log 0 = 0`` convention, exact also at
      ``log q = -inf``); a positive target on ``log q = -inf`` contributes ``+inf`` with a
      zero gradient for that entry. The gradients are exact: ``q - t`` in ``log q`` and
      ``log t - log q`` in ``t``, from a ``jax.custom_jvp`` rule (forward and reverse mode,
      higher orders; no ``[N, C]`` temporary in reverse mode). optax returns NaN target
      gradients at zero targets.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> log_q, t = jnp.log(jnp.array([[0.5, 1.0, 2.0]])), jnp.array([[1.0, 1.0, 0.0]])
      >>> jaxent.generalized_kl_divergence(log_q, t, reduction="none")
      Array([2.1931], dtype=float32)

    References:
      optax ``generalized_kl_divergence``; Bregman (1967); Boyd & Vandenberghe, *Convex
      Optimization*, p. 90.
    """
    return _generalized("generalized_kl_divergence", log_predictions, targets, log_target, axis, where, reduction)


def convex_kl_divergence(
    log_predictions: ArrayLike,
    targets: ArrayLike,
    *,
    log_target: bool = False,
    axis: int | tuple[int, ...] = -1,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
) -> jax.Array:
    r"""optax's ``convex_kl_divergence``, its deprecated name of :func:`generalized_kl_divergence`.

    .. math::
        \ell_n = \sum_c t_{n,c} (\log t_{n,c} - \log q_{n,c}) + q_{n,c} - t_{n,c}

    The same arguments and results as :func:`generalized_kl_divergence` (the batch shape
    for ``reduction="none"``, optax's output); no deprecation warning here. Its loss
    object is :class:`GeneralizedKLDivLoss`.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.convex_kl_divergence(jnp.log(jnp.array([[0.5, 1.0]])), jnp.array([[1.0, 1.0]]))
      Array(0.1931, dtype=float32)
    """
    return _generalized("convex_kl_divergence", log_predictions, targets, log_target, axis, where, reduction)


def _generalized(fn, log_predictions, targets, log_target, axis, where, reduction) -> jax.Array:
    _checks.check_reduction(fn, reduction)
    _checks.check_static_bool(fn, "log_target", log_target)
    x = _checks.as_array(fn, "log_predictions", log_predictions)
    _checks.check_floating(fn, "log_predictions", x)
    t = _checks.as_array(fn, "targets", targets)
    _checks.check_floating(fn, "targets", t)
    _checks.check_same_shape(fn, "targets", t, "log_predictions", x.shape)
    lay = _checks.class_layout(fn, x, t, axis=axis, where=where, logits_name="log_predictions")
    ct = _pair_dtype(x.dtype, t.dtype)
    lq, t = lay.x.astype(ct), lay.targets.astype(ct)
    if lay.example_mask is not None:
        # Dropped examples read 0 (a select: NaN padding reaches neither loss nor gradient).
        lq = jnp.where(lay.example_mask[..., None], lq, 0)
        t = jnp.where(lay.example_mask[..., None], t, 0)
    if lay.class_mask is not None:
        # A masked entry is absent on both sides: t = 0 and q = 0 leave the sum, with zero gradients.
        t = jnp.where(lay.class_mask, t, -jnp.inf if log_target else 0)
        lq = jnp.where(lay.class_mask, lq, -jnp.inf)
    counted = jnp.ones(t.shape, bool) if lay.class_mask is None else lay.class_mask
    (sums,), (classes,) = _backend.row_sums((_generalized_terms(lq, t, log_target),), (counted,))
    # A row with no entry left sums to 0 (this use of the count also keeps the reduce variadic).
    losses = jnp.where(classes > 0, sums, 0)
    kept = lay.example_mask if lay.class_mask is None else _and(lay.example_mask, classes > 0)
    return _reduction.reduce_kept(losses, kept, reduction)


def _and(a: jax.Array | None, b: jax.Array) -> jax.Array:
    return b if a is None else a & b


@loss_object
class KLDivLoss(LossObject):
    """:func:`kl_divergence` as a frozen dataclass pytree: ``KLDivLoss(...)(log_predictions, targets)``.

    Every field (``log_target``, ``axis``, ``reduction``) is static.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> loss = jaxent.KLDivLoss(reduction="sum")
      >>> loss(jnp.log(jnp.array([[0.2, 0.3, 0.5]])), jnp.array([[0.0, 0.5, 0.5]]))
      Array(0.2554, dtype=float32)
    """

    function: ClassVar = staticmethod(kl_divergence)
    log_target: bool = static_field(default=False)
    axis: int | tuple[int, ...] = static_field(default=-1)
    reduction: _reduction.Reduction = static_field(default="mean")


@loss_object
class GeneralizedKLDivLoss(LossObject):
    """:func:`generalized_kl_divergence` as a frozen dataclass pytree: ``GeneralizedKLDivLoss()(log_q, targets)``.

    Every field (``log_target``, ``axis``, ``reduction``) is static. It is also the object of
    :func:`convex_kl_divergence` (optax's deprecated name of the same loss).

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.GeneralizedKLDivLoss(reduction="sum")(jnp.log(jnp.array([[0.5, 1.0]])), jnp.array([[1.0, 1.0]]))
      Array(0.1931, dtype=float32)
    """

    function: ClassVar = staticmethod(generalized_kl_divergence)
    log_target: bool = static_field(default=False)
    axis: int | tuple[int, ...] = static_field(default=-1)
    reduction: _reduction.Reduction = static_field(default="mean")
