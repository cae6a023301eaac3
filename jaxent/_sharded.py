"""Cross-entropy over many devices: vocabulary (class) parallelism with ``jax.shard_map``.

Inside a ``shard_map`` every classification loss of :mod:`jaxent._softmax` and
:func:`~jaxent.linear_cross_entropy` takes ``axis_name=``: the mesh axis over which the
classes are sharded. The functions here are the convenience wrappers that build that
``shard_map`` from a ``Mesh``: the class axis (or the weight's vocabulary rows) over
``vocab_axis``, the leading batch axis over ``batch_axis``, and a global "mean" (the same
number as on one device) from a ``psum`` of the per-device sums and denominators.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from jax.typing import ArrayLike

from jaxent import _checks, _reduction
from jaxent._linear import linear_parts
from jaxent._softmax import cross_entropy_parts


def _check_mesh(fn: str, mesh: Any, vocab_axis: Any, batch_axis: Any, vocab: int) -> int:
    names = tuple(mesh.axis_names)
    for name, axis in (("vocab_axis", vocab_axis), ("batch_axis", batch_axis)):
        if axis is not None and axis not in names:
            raise ValueError(f"{fn}: {name}={axis!r} is not an axis of the mesh, whose axes are {names}.")
    devices = mesh.shape[vocab_axis]
    if vocab % devices:
        raise ValueError(
            f"{fn}: {vocab} classes do not split evenly over the {devices} devices of mesh axis "
            f"{vocab_axis!r}; pad the vocabulary to a multiple of {devices} (logits with -inf, or weight rows "
            "with zeros and bias=-inf there): padded entries are impossible classes and change nothing."
        )
    return devices


def _placed(mesh, specs, args):
    return [None if a is None else jax.device_put(a, NamedSharding(mesh, s)) for a, s in zip(args, specs)]


def sharded_cross_entropy(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    mesh: jax.sharding.Mesh,
    vocab_axis: str,
    batch_axis: str | None = None,
    weight: ArrayLike | None = None,
    ignore_index: int | None = -100,
    label_smoothing: ArrayLike = 0.0,
    z_loss: ArrayLike = 0.0,
    logit_softcap: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
) -> jax.Array:
    """:func:`jaxent.cross_entropy` with the class axis (last) sharded over ``vocab_axis``.

    Runs ``cross_entropy(..., axis_name=vocab_axis)`` under ``jax.shard_map`` on ``mesh``:
    ``logits[..., C]`` is split along C over ``vocab_axis`` and along the leading batch
    axis over ``batch_axis`` (if given), as are ``targets``, ``where`` and ``weight``.
    No logits are gathered: per example, one ``pmax`` and one packed ``psum`` cross the
    vocabulary devices, and "mean" is the global weighted mean (the same number as on one
    device) from one ``psum`` over the batch devices. Works eagerly and under ``jax.jit``;
    inputs are moved to the needed sharding first.

    Example:
      >>> import jax, jax.numpy as jnp, jaxent
      >>> mesh = jax.make_mesh((1,), ("model",))
      >>> logits = jnp.array([[1.2, -0.8, -0.5, 0.3], [0.9, -1.2, 1.1, 0.0]])
      >>> loss = jaxent.sharded_cross_entropy(logits, jnp.array([0, 1]), mesh=mesh, vocab_axis="model")
      >>> bool(jnp.allclose(loss, jaxent.cross_entropy(logits, jnp.array([0, 1]))))
      True
    """
    fn = "sharded_cross_entropy"
    x = _checks.as_array(fn, "logits", logits)
    if x.ndim < 1:
        raise ValueError(f"{fn}: logits must have a class axis (the last), got shape {x.shape}.")
    _checks.check_reduction(fn, reduction)
    _check_mesh(fn, mesh, vocab_axis, batch_axis, x.shape[-1])
    rest = (None,) * (x.ndim - 2)
    x_spec = P(batch_axis, *rest, vocab_axis) if x.ndim > 1 else P(vocab_axis)
    y_spec = P(batch_axis, *rest) if x.ndim > 1 else P()
    t = _checks.target_array(fn, targets)
    t_spec = x_spec if t.shape == x.shape and jnp.issubdtype(t.dtype, jnp.floating) else y_spec
    m = None if where is None else _checks.as_array(fn, "where", where)
    m_spec = x_spec if m is not None and m.shape == x.shape else y_spec
    specs = (x_spec, t_spec, P(vocab_axis), m_spec)
    options = dict(
        ignore_index=ignore_index, label_smoothing=label_smoothing, z_loss=z_loss, logit_softcap=logit_softcap
    )

    def local(x, t, w, m):
        losses, denominator = cross_entropy_parts(
            x, t, axis=-1, weight=w, where=m, reduction=reduction, axis_name=vocab_axis, **options
        )
        return _reduction.reduce(losses, reduction, denominator, axis_name=batch_axis)

    out = y_spec if reduction == "none" else P()
    mapped = jax.shard_map(local, mesh=mesh, in_specs=specs, out_specs=out)
    return mapped(*_placed(mesh, specs, (x, t, weight, m)))


def sharded_linear_cross_entropy(
    inputs: ArrayLike,
    weight: ArrayLike,
    targets: ArrayLike,
    *,
    mesh: jax.sharding.Mesh,
    vocab_axis: str,
    batch_axis: str | None = None,
    bias: ArrayLike | None = None,
    class_weight: ArrayLike | None = None,
    ignore_index: int | None = -100,
    label_smoothing: ArrayLike = 0.0,
    z_loss: ArrayLike = 0.0,
    logit_softcap: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
    chunk_size: int | None = None,
) -> jax.Array:
    """:func:`jaxent.linear_cross_entropy` with ``weight`` ``[V, D]`` sharded along V (Megatron-style).

    Runs ``linear_cross_entropy(..., axis_name=vocab_axis)`` under ``jax.shard_map`` on
    ``mesh``: each device of ``vocab_axis`` holds a contiguous ``[V/P, D]`` slice of the
    weight (and of ``bias``, ``class_weight`` and probability ``targets``), ``inputs[..., D]``
    and ``targets`` are split along their leading axis over ``batch_axis`` (if given). The
    K-dimensional weight ``[V, d1, ..., dK, D]`` is not supported here (a ValueError).
    Neither logits nor the weight are gathered: per token, a ``pmax`` and one packed ``psum``
    in the forward pass, one ``psum`` of ``d inputs`` in the backward; ``d weight`` stays
    sharded. "mean" is the global mean.

    Example:
      >>> import jax, jax.numpy as jnp, jaxent
      >>> mesh = jax.make_mesh((1,), ("model",))
      >>> h, w = jnp.ones((2, 3)), jnp.eye(4, 3)
      >>> loss = jaxent.sharded_linear_cross_entropy(h, w, jnp.array([0, 3]), mesh=mesh, vocab_axis="model")
      >>> bool(jnp.allclose(loss, jaxent.linear_cross_entropy(h, w, jnp.array([0, 3]))))
      True
    """
    fn = "sharded_linear_cross_entropy"
    h = _checks.as_array(fn, "inputs", inputs)
    w = _checks.as_array(fn, "weight", weight)
    if h.ndim < 1 or w.ndim != 2:
        raise ValueError(
            f"{fn}: inputs must be [..., D] and weight [V, D], got shapes {h.shape} and {w.shape}; the "
            "K-dimensional weight [V, d1, ..., dK, D] is not sharded: call linear_cross_entropy on one device."
        )
    _checks.check_reduction(fn, reduction)
    _check_mesh(fn, mesh, vocab_axis, batch_axis, w.shape[0])
    rest = (None,) * (h.ndim - 2)
    h_spec = P(batch_axis, *rest, None) if h.ndim > 1 else P(None)
    y_spec = P(batch_axis, *rest) if h.ndim > 1 else P()
    t = _checks.target_array(fn, targets)
    # Probability targets [..., V] are split along V like the weight; token ids are global.
    t_spec = P(*h_spec[:-1], vocab_axis) if jnp.issubdtype(t.dtype, jnp.floating) else y_spec
    specs = (h_spec, P(vocab_axis, None), t_spec, P(vocab_axis), y_spec, P(vocab_axis))
    options = dict(
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        z_loss=z_loss,
        logit_softcap=logit_softcap,
        chunk_size=chunk_size,
    )

    def local(h, w, y, b, m, cw):
        losses, denominator = linear_parts(
            h, w, y, bias=b, class_weight=cw, where=m, reduction=reduction, axis_name=vocab_axis, **options
        )
        return _reduction.reduce(losses, reduction, denominator, axis_name=batch_axis)

    out = y_spec if reduction == "none" else P()
    mapped = jax.shard_map(local, mesh=mesh, in_specs=specs, out_specs=out)
    return mapped(*_placed(mesh, specs, (h, w, t, bias, where, class_weight)))
