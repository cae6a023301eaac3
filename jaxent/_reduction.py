"""The one place where per-example losses become "none", "sum" or "mean"."""

from __future__ import annotations

from typing import Any, Literal

import jax
import jax.numpy as jnp

from jaxent import _backend

# The ``reduction`` argument every loss takes.
Reduction = Literal["none", "sum", "mean"]


def safe_divide(total: jax.Array, denominator: jax.Array) -> jax.Array:
    """``total / denominator``, and 0 (with zero gradients) when the denominator is 0."""
    empty = denominator == 0
    # Double where: the untaken branch divides by 1, so no NaN reaches the gradient.
    return jnp.where(empty, jnp.zeros_like(total), total / jnp.where(empty, 1, denominator))


def reduce(
    losses: jax.Array, reduction: str, denominator_weights: jax.Array | None = None, axis_name: Any = None
) -> jax.Array:
    """Reduce per-example ``losses`` (already 0 at dropped examples).

    ``"mean"`` divides the sum by ``sum(denominator_weights)`` (PyTorch's weighted mean;
    the count of kept examples when the weights are a 0/1 mask), or by ``losses.size``
    when none are given. An empty mean (denominator 0) is 0.0, not NaN. Inside
    ``jax.shard_map`` with the examples split over the mesh axis ``axis_name``, the sums
    are global: one ``psum`` of this device's sum and denominator.
    """
    if reduction == "none":
        return losses
    total = jnp.sum(losses)
    if reduction == "sum":
        return total if axis_name is None else jax.lax.psum(total, axis_name)
    if denominator_weights is None and axis_name is None:
        return total / max(losses.size, 1)
    weight = (
        jnp.asarray(losses.size, losses.dtype)
        if denominator_weights is None
        else jnp.sum(denominator_weights.astype(losses.dtype))
    )
    if axis_name is not None:
        total, weight = jax.lax.psum((total, weight), axis_name)
    return safe_divide(total, weight)


def reduce_kept(
    losses: jax.Array, kept: jax.Array | None, reduction: str, denominator_weights: jax.Array | None = None
) -> jax.Array:
    """:func:`reduce` of ``losses`` with the examples where ``kept`` is False dropped (set to 0).

    The "mean" divides by ``sum(denominator_weights)``, by default the count of kept
    examples (or ``losses.size`` when ``kept`` is None).
    """
    if kept is None:
        return reduce(losses, reduction, denominator_weights)
    return reduce(jnp.where(kept, losses, 0), reduction, kept if denominator_weights is None else denominator_weights)


def _varying_axes(x: Any) -> frozenset:
    """The manual mesh axes over which ``x`` varies inside ``jax.shard_map`` (empty outside)."""
    mat = getattr(jax.typeof(x), "manual_axis_type", None)
    return frozenset(getattr(mat, "varying", ()))


def sum_over_devices(cotangent: Any, primal: Any) -> Any:
    """A custom_vjp cotangent for ``primal``, summed over the mesh axes it varies over and
    ``primal`` does not: a value shared by several devices gets all of their gradients."""
    if cotangent is None:
        return None
    extra = _varying_axes(cotangent) - _varying_axes(primal)
    return jax.lax.psum(cotangent, tuple(sorted(extra))) if extra else cotangent


def vary_like(tree: Any, *refs: Any) -> Any:
    """``tree`` (e.g. a loop's initial carry) marked as varying over every mesh axis that
    one of ``refs`` varies over, as ``jax.shard_map`` requires of loop carries."""
    axes = frozenset().union(*(_varying_axes(r) for r in jax.tree_util.tree_leaves(refs)))

    def cast(x):
        extra = axes - _varying_axes(x)
        return jax.lax.pcast(x, tuple(sorted(extra)), to="varying") if extra else x

    return jax.tree_util.tree_map(cast, tree)


def mean_denominator(
    targets: Any, *, weight: Any = None, ignore_index: int | None = -100, where: Any = None
) -> jax.Array:
    r"""The denominator of ``reduction="mean"`` for integer class targets.

    .. math::
        W = \sum_{n \in K} w_{y_n}

    over the examples K that count (not ``ignore_index``, not masked by a batch-shaped
    ``where``); the number of such examples without ``weight``. It is what
    :func:`jaxent.cross_entropy`, :func:`jaxent.nll_loss` and
    :func:`jaxent.linear_cross_entropy` divide by, so a global mean over micro-batches
    (gradient accumulation) or devices is ``Σ sum_loss / Σ mean_denominator``, as T5X and
    praxis return ``(loss_sum, weight_sum)``; dividing each micro-batch by its own count
    instead weights the tokens of small micro-batches more. (For probability targets the
    denominator is the number of kept examples, ``jnp.sum(where)``.)

    Args:
      targets: integer class indices, any shape.
      weight: optional per-class weights ``[C]``.
      ignore_index: the ignored target value (``None``: none).
      where: optional boolean mask of ``targets.shape``.

    Returns:
      A float32 scalar (float64 for float64 weights).

    Example:
      >>> import jax, jax.numpy as jnp, jaxent
      >>> logits = jax.random.normal(jax.random.key(0), (6, 5))
      >>> y = jnp.array([1, 2, -100, 4, 0, -100])
      >>> total = sum(jaxent.cross_entropy(logits[i:i + 3], y[i:i + 3], reduction="sum") for i in (0, 3))
      >>> count = sum(jaxent.mean_denominator(y[i:i + 3]) for i in (0, 3))
      >>> bool(jnp.isclose(total / count, jaxent.cross_entropy(logits, y)))
      True
    """
    fn = "mean_denominator"
    y = jnp.asarray(targets)
    if not jnp.issubdtype(y.dtype, jnp.integer):
        raise TypeError(
            f"{fn}: targets must be integer class indices, got dtype {y.dtype}; for probability "
            "targets the denominator is the number of kept examples, jnp.sum(where)."
        )
    kept = jnp.ones(y.shape, bool) if where is None else jnp.asarray(where)
    if kept.shape != y.shape or kept.dtype != jnp.bool_:
        raise ValueError(
            f"{fn}: where must be a boolean mask of the targets' shape {y.shape}, got {kept.dtype}{kept.shape}."
        )
    if ignore_index is not None:
        kept = kept & (y != ignore_index)
    if weight is None:
        return jnp.sum(kept, dtype=jnp.float32)
    w = jnp.asarray(weight)
    w = w.astype(jnp.float64 if w.dtype == jnp.float64 else jnp.float32)
    return jnp.sum(jnp.where(kept, w[jnp.clip(y, 0, w.shape[0] - 1)], 0))


def replicated_out(x: Any) -> Any:
    """A replicated output sharding on ``x``'s mesh when that mesh has explicit axes
    (sharding in types), else None.

    Under explicit sharding a matmul that contracts a sharded axis (d weight = d logits^T
    h, over a batch sharded across devices) must be told its output's sharding."""
    sharding = getattr(jax.typeof(x), "sharding", None)
    if sharding is None or not any(t == jax.sharding.AxisType.Explicit for t in sharding.mesh.axis_types):
        return None
    return jax.sharding.NamedSharding(sharding.mesh, jax.sharding.PartitionSpec())


# Up to this many elements one reduce runs over all of them; larger inputs are summed by
# rows first, which XLA:CPU splits over threads (a split that costs more than it saves below).
_ONE_PASS_ELEMENTS = 2**16


def reduce_elements(losses: jax.Array, kept: jax.Array | None, reduction: str) -> jax.Array:
    """``reduction`` of elementwise ``losses``, with the elements where ``kept`` is False dropped.

    ``"mean"`` divides by the number of kept elements (``losses.size`` without ``kept``); an
    empty mean is 0.0 with zero gradients. The sums go through :func:`_backend.row_sums`, so they
    fuse with the computation of ``losses``.
    """
    if kept is not None:
        losses = jnp.where(kept, losses, 0)
    if reduction == "none":
        return losses
    counted = jnp.ones(losses.shape, bool) if kept is None else jnp.broadcast_to(kept, losses.shape)
    if losses.size <= _ONE_PASS_ELEMENTS:
        (total,), (count,) = _backend.row_sums((losses.reshape(-1),), (counted.reshape(-1),))
    else:
        (sums,), (counts,) = _backend.row_sums((losses,), (counted,))
        (total,), (count,) = _backend.row_sums((sums.reshape(-1),), (counts.reshape(-1),))
    # Nothing kept sums to 0 (this use of the count also keeps the reduces variadic).
    total = jnp.where(count > 0, total, 0)
    if reduction == "sum":
        return total
    if kept is None:
        return total / max(losses.size, 1)
    n = count.astype(losses.dtype)
    # Double where: an empty mean divides by 1, so no NaN reaches the gradient.
    return jnp.where(n > 0, total / jnp.where(n > 0, n, 1), 0)
