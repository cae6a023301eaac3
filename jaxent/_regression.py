"""Regression losses: the squared error, for regression heads next to the classifiers."""

from __future__ import annotations

import functools
from typing import ClassVar

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxent import _backend, _checks, _reduction
from jaxent._objects import LossObject, loss_object, static_field


def mse_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
) -> jax.Array:
    r"""Squared error, PyTorch's ``mse_loss``.

    .. math::
        \ell = (\hat y - y)^2

    elementwise, then ``reduction``: ``"none"`` (the shape of ``predictions``),
    ``"sum"``, or ``"mean"`` over the kept elements (an empty mean is 0.0, not NaN).

    Args:
      predictions: floating array of any shape (bf16/f16 are computed in float32).
      targets: floating array of ``predictions.shape`` (PyTorch broadcasts other shapes
        with a warning; here they are an error). Cast integer targets first.
      where: boolean mask of ``predictions.shape`` (or of the same rank with size-1
        axes, e.g. ``(N, 1)`` to drop whole rows); dropped elements are 0 in ``"none"``,
        get zero gradient and leave the mean's denominator.
      reduction: ``"none"``, ``"sum"`` or ``"mean"``.

    Returns:
      The loss in float32 (float64 for float64 predictions); gradients come back in
      each input's dtype.

    Notes:
      The gradients are ``2(ŷ - y)`` in ``predictions`` and ``-2(ŷ - y)`` in
      ``targets`` (over the reduction's denominator), from a ``jax.custom_jvp`` rule that
      recomputes them next to the gradient: forward and reverse mode and higher orders
      work, and ``value_and_grad`` needs no temporary of the inputs' size.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.mse_loss(jnp.array([1.0, 2.0, 4.0]), jnp.array([1.5, 2.0, 2.0]))
      Array(1.4167, dtype=float32)
    """
    fn = "mse_loss"
    _checks.check_reduction(fn, reduction)
    x, t = _checks.elementwise_pair(fn, predictions, targets, x_name="predictions", integer_targets=False)
    mask = _checks.elementwise_mask(fn, where, x.shape, x_name="predictions")
    ct = _checks.compute_dtype(x.dtype)
    xf, tf = x.astype(ct), t.astype(ct)
    if mask is not None:
        # Zero dropped elements before squaring: NaN padding reaches neither loss nor gradient.
        xf, tf = jnp.where(mask, xf, 0), jnp.where(mask, tf, 0)
    return _reduction.reduce_elements(_squared_error(xf, tf), mask, reduction)


def _squared_error_partials(x: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
    # d(x - t)^2 = 2 (x - t) (dx - dt).
    d = 2 * (x - t)
    return d, -d


@jax.custom_jvp
def _squared_error(x: jax.Array, t: jax.Array) -> jax.Array:
    d = x - t
    return d * d


@functools.partial(_squared_error.defjvp, symbolic_zeros=True)
def _squared_error_jvp(primals, tangents):
    out = _squared_error(*primals)
    return out, _backend.linear_tangent(_squared_error_partials, out, primals, tangents)


@loss_object
class MSELoss(LossObject):
    """:func:`mse_loss` as a frozen dataclass pytree: ``MSELoss(...)(predictions, targets)``.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.MSELoss(reduction="sum")(jnp.array([1.0, 2.0]), jnp.array([0.0, 0.0]))
      Array(5., dtype=float32)
    """

    function: ClassVar = staticmethod(mse_loss)
    reduction: str = static_field(default="mean")
