"""Float64 reference formulas, written from the maths, independent of jaxent's code.

They use ``jax.numpy`` in float64 (the tests enable x64) so that the same formula gives
the reference values and, by plain autodiff, the reference gradients. Each follows the
definition in DESIGN.md literally: per-example first, then the reduction.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

f64 = jnp.float64


def _layout(logits, targets, axis, where, weight):
    x = jnp.asarray(logits).astype(f64)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    axes = tuple(a % x.ndim for a in axes)
    rest = [a for a in range(x.ndim) if a not in axes]
    move = lambda a: jnp.transpose(a, rest + list(axes)).reshape(tuple(x.shape[r] for r in rest) + (-1,))
    batch = tuple(x.shape[r] for r in rest)
    t = jnp.asarray(targets)
    integer = jnp.issubdtype(t.dtype, jnp.integer)
    if not integer:
        t = move(t.astype(f64))
    class_mask = example_mask = None
    if where is not None:
        where = jnp.asarray(where)
        if where.shape == x.shape:
            class_mask = move(where)
        else:
            example_mask = where
    xm = move(x)
    c = xm.shape[-1]
    w = jnp.ones((c,), f64) if weight is None else jnp.asarray(weight).astype(f64).reshape(c)
    cm = jnp.ones(xm.shape, bool) if class_mask is None else class_mask
    em = jnp.ones(batch, bool) if example_mask is None else example_mask
    return xm, t, integer, cm, em, w


def _per_class(w, ndim):
    return w.reshape((1,) * (ndim - 1) + (-1,))


def _reduce(losses, denominator, reduction):
    if reduction == "none":
        return losses
    if reduction == "sum":
        return jnp.sum(losses)
    d = jnp.sum(denominator)
    return jnp.where(d == 0, 0.0, jnp.sum(losses) / jnp.where(d == 0, 1.0, d))


def cross_entropy(
    logits,
    targets,
    *,
    axis=-1,
    weight=None,
    ignore_index=-100,
    label_smoothing=0.0,
    z_loss=0.0,
    logit_softcap=None,
    where=None,
    reduction="mean",
):
    """l_n = -sum_c w_c q_nc log p_nc + z lse_n^2, q = (1-eps) t + eps/C' on the C' remaining classes."""
    x, t, integer, cm, em, w = _layout(logits, targets, axis, where, weight)
    if logit_softcap is not None:
        x = jnp.where(x == -jnp.inf, x, logit_softcap * jnp.tanh(x / logit_softcap))
    remaining = cm & (x > -jnp.inf)
    xm = jnp.where(cm, x, -jnp.inf)
    lse = jax.scipy.special.logsumexp(jnp.where(remaining, xm, -jnp.inf), axis=-1)
    logp = jnp.where(remaining, xm - jnp.where(jnp.isfinite(lse), lse, 0)[..., None], -jnp.inf)
    n_remaining = jnp.sum(remaining, axis=-1)[..., None]
    uniform = jnp.where(remaining, 1.0 / jnp.maximum(n_remaining, 1).astype(f64), 0.0)
    kept = em & jnp.any(cm, axis=-1)
    if integer:
        onehot = jax.nn.one_hot(t, x.shape[-1], dtype=f64)
        q = (1 - label_smoothing) * onehot + label_smoothing * uniform
        if ignore_index is not None:
            kept = kept & (t != ignore_index)
        denominator = jnp.where(kept, w[jnp.clip(t, 0, x.shape[-1] - 1)], 0.0)
    else:
        q = (1 - label_smoothing) * jnp.where(cm, t, 0.0) + label_smoothing * uniform
        denominator = kept.astype(f64)
    a = _per_class(w, x.ndim) * q
    finite = jnp.sum(jnp.where(remaining, -a * jnp.where(remaining, logp, 0.0), 0.0), axis=-1)
    impossible = jnp.any(~remaining & (a != 0), axis=-1)
    losses = jnp.where(impossible, jnp.inf, finite)
    losses = losses + z_loss * jnp.where(jnp.isfinite(lse), lse, 0.0) ** 2
    losses = jnp.where(kept, losses, 0.0)
    return _reduce(losses, denominator, reduction)


def nll_loss(log_probs, targets, *, axis=-1, weight=None, ignore_index=-100, where=None, reduction="mean"):
    """l_n = -sum_c w_c t_nc log p_nc; for integer targets -w_y log p_y."""
    lp, t, integer, cm, em, w = _layout(log_probs, targets, axis, where, weight)
    lp = jnp.where(cm, lp, -jnp.inf)
    kept = em & jnp.any(cm, axis=-1)
    if integer:
        t_full = jax.nn.one_hot(t, lp.shape[-1], dtype=f64)
        if ignore_index is not None:
            kept = kept & (t != ignore_index)
        denominator = jnp.where(kept, w[jnp.clip(t, 0, lp.shape[-1] - 1)], 0.0)
    else:
        t_full = jnp.where(cm, t, 0.0)
        denominator = kept.astype(f64)
    a = _per_class(w, lp.ndim) * t_full
    finite = lp > -jnp.inf
    losses = -jnp.sum(jnp.where(finite, a * jnp.where(finite, lp, 0.0), 0.0), axis=-1)
    losses = jnp.where(jnp.any(~finite & (a != 0), axis=-1), jnp.inf, losses)
    losses = jnp.where(kept, losses, 0.0)
    return _reduce(losses, denominator, reduction)


def numpy_cross_entropy_rows(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Plain NumPy float64 -log softmax(x)_y per row, for cheap golden checks."""
    x = np.asarray(logits, np.float64)
    m = x.max(axis=-1, keepdims=True)
    lse = (m + np.log(np.exp(x - m).sum(axis=-1, keepdims=True)))[..., 0]
    return lse - np.take_along_axis(x, np.asarray(labels)[..., None], axis=-1)[..., 0]
