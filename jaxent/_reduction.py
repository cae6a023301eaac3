"""The one place where per-example losses become "none", "sum" or "mean"."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def safe_divide(total: jax.Array, denominator: jax.Array) -> jax.Array:
    """``total / denominator``, and 0 (with zero gradients) when the denominator is 0."""
    empty = denominator == 0
    # Double where: the untaken branch divides by 1, so no NaN reaches the gradient.
    return jnp.where(empty, jnp.zeros_like(total), total / jnp.where(empty, 1, denominator))


def reduce(losses: jax.Array, reduction: str, denominator_weights: jax.Array | None = None) -> jax.Array:
    """Reduce per-example ``losses`` (already 0 at dropped examples).

    ``"mean"`` divides the sum by ``sum(denominator_weights)`` (PyTorch's weighted mean;
    the count of kept examples when the weights are a 0/1 mask), or by ``losses.size``
    when none are given. An empty mean (denominator 0) is 0.0, not NaN.
    """
    if reduction == "none":
        return losses
    total = jnp.sum(losses)
    if reduction == "sum":
        return total
    if denominator_weights is None:
        return total / max(losses.size, 1)
    return safe_divide(total, jnp.sum(denominator_weights.astype(losses.dtype)))
