"""Listwise ranking losses: optax's ``ranking_softmax_loss``.

The listwise softmax loss is the softmax cross-entropy of the item scores against the
(weighted, unnormalised) relevance labels, so it is computed by :func:`jaxent.cross_entropy`
with probability targets: its fused pass, exact ``-inf`` and masked-item handling, bf16 in
float32, and its ``jax.custom_jvp`` rule (forward and reverse mode, higher orders, no
``[N, C]`` residual). This module only validates and maps optax's arguments.
"""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxent import _checks, _reduction, _softmax
from jaxent._objects import LossObject, loss_object, static_field


def ranking_softmax_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    axis: int = -1,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
) -> jax.Array:
    r"""Listwise softmax ranking loss, optax's ``ranking_softmax_loss``.

    For the item scores ``s`` of a list, relevance labels ``y`` and item weights ``w``:

    .. math::
        \ell_n = -\sum_i w_{n,i}\, y_{n,i} \log \frac{\exp s_{n,i}}{\sum_{j \text{ valid}} \exp s_{n,j}}

    over the valid items of each list. Then ``reduction``: ``"none"`` (the batch shape,
    optax's ``reduce_fn=None``; lists without a valid item are 0), ``"sum"``
    (``reduce_fn=jnp.sum``), or ``"mean"`` (``reduce_fn=jnp.mean``, optax's default) over
    the lists that have a valid item (an empty mean is 0.0, as in optax).

    Args:
      logits: ``[..., list_size]`` floating item scores (the list axis is ``axis``).
      labels: relevance labels of ``logits.shape``: graded (integer or floating) or bool.
      axis: static list axis (optax: the last).
      where: optional boolean mask: of ``logits.shape`` (the valid items, optax's
        ``where``: invalid items leave the softmax and the sum), or of the batch shape
        (drops whole lists).
      weights: optional per-item weights, broadcastable to ``logits.shape`` (may be
        traced); they multiply the labels.
      reduction: ``"none"``, ``"sum"`` or ``"mean"``.

    Returns:
      The loss in float32 (float64 for float64 logits).

    Notes:
      Labels need not sum to 1 (they are not normalised, as in optax). A ``-inf`` score is
      an item that cannot be ranked: probability 0 and zero gradient; a positive label on
      one gives ``+inf``. Gradients in ``logits`` are ``(Σ_j w_j y_j) softmax(s) - w y``;
      labels and weights get gradients too.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> s, y = jnp.array([[2.0, 1.0, 0.0]]), jnp.array([[1.0, 0.0, 2.0]])
      >>> jaxent.ranking_softmax_loss(s, y, reduction="none")
      Array([5.2228], dtype=float32)

    References:
      Cao et al., *Learning to Rank: From Pairwise Approach to Listwise Approach*, ICML
      2007; Bruch et al., *An Analysis of the Softmax Cross Entropy Loss for
      Learning-to-Rank with Binary Relevance*, ICTIR 2019; optax ``ranking_softmax_loss``.
    """
    fn = "ranking_softmax_loss"
    _checks.check_reduction(fn, reduction)
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise TypeError(f"{fn}: axis must be a Python int (the list axis), got {axis!r}.")
    x = _checks.as_array(fn, "logits", logits)
    _checks.check_floating(fn, "logits", x)
    _checks.canonical_axes(fn, axis, x.ndim, x.shape)
    y = _checks.as_array(fn, "labels", labels)
    if not (jnp.issubdtype(y.dtype, jnp.floating) or jnp.issubdtype(y.dtype, jnp.integer) or y.dtype == jnp.bool_):
        raise TypeError(f"{fn}: labels must be a real or boolean array, got dtype {y.dtype}.")
    _checks.check_same_shape(fn, "labels", y, "logits", x.shape)
    ct = _checks.compute_dtype(
        jnp.promote_types(x.dtype, y.dtype) if jnp.issubdtype(y.dtype, jnp.floating) else x.dtype
    )
    targets = y.astype(ct)
    if weights is not None:
        w = _checks.elementwise_weight(fn, "weights", weights, x.shape, ct, x_name="logits")
        assert w is not None
        targets = targets * w
    if where is not None:
        m = _checks.as_array(fn, "where", where)
        batch = x.shape[: axis % x.ndim] + x.shape[axis % x.ndim + 1 :]
        if m.dtype != jnp.bool_:
            raise TypeError(f"{fn}: where must be a boolean mask, got dtype {m.dtype}; pass e.g. where=(labels >= 0).")
        if m.shape not in (x.shape, batch):
            raise ValueError(
                f"{fn}: where has shape {m.shape} but logits has shape {x.shape}; pass a mask of the valid items "
                f"{x.shape} (optax's where) or of the lists {batch}."
            )
    # -Σ_i t_i log softmax(s)_i with t = w·y: the softmax cross-entropy with unnormalised targets.
    return _softmax.cross_entropy(x, targets, axis=axis, ignore_index=None, where=where, reduction=reduction)


@loss_object
class RankingSoftmaxLoss(LossObject):
    """:func:`ranking_softmax_loss` as a frozen dataclass pytree: ``RankingSoftmaxLoss(...)(logits, labels)``.

    ``weights`` is a pytree leaf; ``axis`` and ``reduction`` are static.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.RankingSoftmaxLoss()(jnp.array([[2.0, 1.0, 0.0]]), jnp.array([[1.0, 0.0, 0.0]]))
      Array(0.4076, dtype=float32)
    """

    function: ClassVar = staticmethod(ranking_softmax_loss)
    axis: int = static_field(default=-1)
    weights: ArrayLike | None = None
    reduction: _reduction.Reduction = static_field(default="mean")
