"""Regression losses: the squared error, for regression heads next to the classifiers."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from jaxent import _checks, _reduction
from jaxent._objects import LossObject, static_field


def mse_loss(predictions: Any, targets: Any, *, where: Any = None, reduction: str = "mean") -> jax.Array:
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
      each input's dtype. Plain JAX autodiff: forward and reverse mode work.

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
    diff = x.astype(ct) - t.astype(ct)
    if mask is not None:
        # Zero dropped differences before squaring: NaN padding reaches neither loss nor gradient.
        diff = jnp.where(mask, diff, 0)
    return _reduction.reduce(diff * diff, reduction, mask)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class MSELoss(LossObject):
    """:func:`mse_loss` as a frozen dataclass pytree: ``MSELoss(...)(predictions, targets)``.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.MSELoss(reduction="sum")(jnp.array([1.0, 2.0]), jnp.array([0.0, 0.0]))
      Array(5., dtype=float32)
    """

    function: ClassVar = staticmethod(mse_loss)
    reduction: str = static_field("mean")
