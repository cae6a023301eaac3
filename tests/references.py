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


def kl_divergence(log_predictions, targets, *, log_target=False, axis=-1, where=None, reduction="mean"):
    """l_n = sum_c t_nc (log t_nc - log q_nc), 0 where t = 0; +inf for t > 0 on log q = -inf."""
    lq, t, _, cm, em, _ = _layout(log_predictions, targets, axis, where, None)
    p = jnp.exp(t) if log_target else t
    # Entries with no target mass are 0 by convention (and have no gradient).
    has_mass = cm & (p > 0)
    finite = has_mass & (lq > -jnp.inf)
    tt = jnp.where(finite, t, 1.0)
    log_t = tt if log_target else jnp.log(tt)
    pp = jnp.exp(tt) if log_target else tt
    terms = jnp.where(finite, pp * (log_t - jnp.where(finite, lq, 0.0)), 0.0)
    terms = jnp.where(has_mass & ~finite, jnp.inf, terms)
    kept = em & jnp.any(cm, axis=-1)
    losses = jnp.where(kept, jnp.sum(terms, axis=-1), 0.0)
    return _reduce(losses, kept.astype(f64), reduction)


def hinge_loss(scores, targets, *, margin=1.0, squared=False, where=None, reduction="mean"):
    """l = max(0, margin - y s) elementwise (squared: its square), y = +-1 (bool: True = +1)."""
    s = jnp.asarray(scores).astype(f64)
    y = jnp.asarray(targets)
    y = jnp.where(y, 1.0, -1.0) if y.dtype == jnp.bool_ else y.astype(f64)
    z = margin - y * s
    h = jnp.where(z > 0, z, 0.0)
    h = h * h if squared else h
    kept = jnp.ones(s.shape, bool) if where is None else jnp.asarray(where)
    return _reduce(jnp.where(kept, h, 0.0), kept.astype(f64), reduction)


def _margin_parts(scores, targets, axis, where, weight):
    x, y, _, cm, em, w = _layout(scores, targets, axis, where, weight)
    c = x.shape[-1]
    onehot = jax.nn.one_hot(y, c, dtype=f64) > 0
    sy = jnp.sum(jnp.where(onehot, x, 0.0), axis=-1)
    competitors = cm & ~onehot
    kept = em & jnp.any(cm, axis=-1)
    return x, y, sy, competitors, kept, w, jnp.sum(cm, axis=-1).astype(f64)


def multi_margin_loss(scores, targets, *, p=1, margin=1.0, weight=None, axis=-1, where=None, reduction="mean"):
    """l_n = sum_{j != y} w_y max(0, margin - s_y + s_j)^p / C' (C' = unmasked classes)."""
    x, y, sy, competitors, kept, w, c = _margin_parts(scores, targets, axis, where, weight)
    z = margin - sy[..., None] + x
    h = jnp.where(competitors & (z > 0), z, 0.0) ** p
    losses = w[y] * jnp.sum(h, axis=-1) / c
    return _reduce(jnp.where(kept, losses, 0.0), kept.astype(f64), reduction)


def multiclass_hinge_loss(scores, targets, *, margin=1.0, axis=-1, where=None, reduction="mean"):
    """l_n = max(0, margin + max_{j != y} s_j - s_y) (0 with no competitor)."""
    x, _, sy, competitors, kept, _, _ = _margin_parts(scores, targets, axis, where, None)
    best = jnp.max(jnp.where(competitors, x, -jnp.inf), axis=-1)
    z = margin + best - sy
    losses = jnp.where(z > 0, z, 0.0)
    return _reduce(jnp.where(kept, losses, 0.0), kept.astype(f64), reduction)


def _log_softmax_remaining(x, cm):
    """log p over the remaining classes (unmasked, > -inf); -inf elsewhere. Returns (remaining, log p)."""
    remaining = cm & (x > -jnp.inf)
    lse = jax.scipy.special.logsumexp(jnp.where(remaining, x, -jnp.inf), axis=-1)
    logp = jnp.where(remaining, x - jnp.where(jnp.isfinite(lse), lse, 0)[..., None], -jnp.inf)
    return remaining, logp


def focal_loss(logits, targets, *, gamma=2.0, alpha=None, axis=-1, ignore_index=-100, where=None, reduction="mean"):
    """Keras CategoricalFocalCrossentropy: l_n = -sum_c alpha_c q_nc (1 - p_nc)^gamma log p_nc.

    Written literally in probability space: p = softmax(x) over the unmasked classes,
    then (1 - p)^gamma and log p. "mean" divides by the number of kept examples.
    """
    x, t, integer, cm, em, _ = _layout(logits, targets, axis, where, None)
    c = x.shape[-1]
    a = jnp.ones((c,), f64) if alpha is None else jnp.broadcast_to(jnp.asarray(alpha).astype(f64).reshape(-1), (c,))
    remaining, logp = _log_softmax_remaining(x, cm)
    p = jnp.exp(logp)
    kept = em & jnp.any(cm, axis=-1)
    if integer:
        q = jax.nn.one_hot(t, c, dtype=f64)
        if ignore_index is not None:
            kept = kept & (t != ignore_index)
    else:
        q = jnp.where(cm, t, 0.0)
    wq = _per_class(a, x.ndim) * q
    safe_logp = jnp.where(remaining, logp, 0.0)
    terms = jnp.where(remaining, -wq * jnp.power(1.0 - p, gamma) * safe_logp, 0.0)
    impossible = jnp.any(~remaining & (wq != 0), axis=-1)
    losses = jnp.where(impossible, jnp.inf, jnp.sum(terms, axis=-1))
    losses = jnp.where(kept, losses, 0.0)
    return _reduce(losses, kept.astype(f64), reduction)


def poly1_cross_entropy(logits, targets, *, epsilon=1.0, axis=-1, where=None, reduction="mean"):
    """l_n = CE_n + epsilon sum_c q_nc (1 - p_nc): CE + epsilon (1 - p_t) for targets summing to 1."""
    x, t, integer, cm, em, _ = _layout(logits, targets, axis, where, None)
    c = x.shape[-1]
    remaining, logp = _log_softmax_remaining(x, cm)
    q = jax.nn.one_hot(t, c, dtype=f64) if integer else t
    # Mass on an impossible (-inf) class makes CE +inf already; summing over the remaining
    # classes only gives that class the zero gradient that cross_entropy gives it.
    one_minus_pt = jnp.sum(jnp.where(remaining, q * (1.0 - jnp.exp(logp)), 0.0), axis=-1)
    ce = cross_entropy(logits, targets, axis=axis, ignore_index=None, where=where, reduction="none")
    kept = em & jnp.any(cm, axis=-1)
    losses = jnp.where(kept, ce + epsilon * one_minus_pt, 0.0)
    return _reduce(losses, kept.astype(f64), reduction)


def _elementwise_reduce(losses, where, reduction):
    """Elementwise losses: drop masked elements, "mean" over the kept ones (PyTorch)."""
    kept = jnp.ones(losses.shape, bool) if where is None else jnp.broadcast_to(jnp.asarray(where), losses.shape)
    return _reduce(jnp.where(kept, losses, 0.0), kept.astype(f64), reduction)


def _broadcast(a, shape):
    return None if a is None else jnp.broadcast_to(jnp.asarray(a).astype(f64), shape)


def binary_cross_entropy_with_logits(
    logits, targets, *, weight=None, pos_weight=None, label_smoothing=0.0, where=None, reduction="mean"
):
    """l = -w [p y' log sigmoid(x) + (1 - y') log(1 - sigmoid(x))], y' = y (1 - eps) + eps/2 (Keras)."""
    x = jnp.asarray(logits).astype(f64)
    y = jnp.asarray(targets).astype(f64)
    y = y * (1 - label_smoothing) + 0.5 * label_smoothing
    w = _broadcast(weight, x.shape)
    p = _broadcast(pos_weight, x.shape)
    log_p, log_not_p = jax.nn.log_sigmoid(x), jax.nn.log_sigmoid(-x)
    losses = -((1.0 if p is None else p) * y * log_p + (1 - y) * log_not_p)
    if w is not None:
        losses = w * losses
    return _elementwise_reduce(losses, where, reduction)


def binary_cross_entropy(probs, targets, *, weight=None, where=None, reduction="mean"):
    """l = -w [y max(log p, -100) + (1 - y) max(log(1 - p), -100)] (PyTorch's clamp)."""
    p = jnp.asarray(probs).astype(f64)
    y = jnp.asarray(targets).astype(f64)
    losses = -(y * jnp.maximum(jnp.log(p), -100.0) + (1 - y) * jnp.maximum(jnp.log(1 - p), -100.0))
    if weight is not None:
        losses = _broadcast(weight, p.shape) * losses
    return _elementwise_reduce(losses, where, reduction)


def sigmoid_focal_loss(logits, targets, *, gamma=2.0, alpha=None, where=None, reduction="mean"):
    """l = -alpha_t (1 - p_t)^gamma [y log p + (1 - y) log(1 - p)], p = sigmoid(x), literally."""
    x = jnp.asarray(logits).astype(f64)
    y = jnp.asarray(targets).astype(f64)
    p = jax.nn.sigmoid(x)
    p_t = p * y + (1 - p) * (1 - y)
    ce = -(y * jax.nn.log_sigmoid(x) + (1 - y) * jax.nn.log_sigmoid(-x))
    losses = (1 - p_t) ** gamma * ce
    if alpha is not None:
        losses = (alpha * y + (1 - alpha) * (1 - y)) * losses
    return _elementwise_reduce(losses, where, reduction)


def mse_loss(predictions, targets, *, where=None, reduction="mean"):
    """l = (prediction - target)^2 elementwise."""
    d = jnp.asarray(predictions).astype(f64) - jnp.asarray(targets).astype(f64)
    return _elementwise_reduce(d * d, where, reduction)
