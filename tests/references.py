"""Float64 reference formulas, written from the maths, independent of jaxent's code.

They use ``jax.numpy`` in float64 (the tests enable x64) so that the same formula gives
the reference values and, by plain autodiff, the reference gradients. Each follows the
definition in docs/design.md (the design contract) and docs/conventions.md literally:
per-example first, then the reduction.
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


# --------------------------------------------------------------------------------------
# Embedding, pairwise and contrastive losses (jaxent/_embedding.py).


def _rows_last(x, axis):
    x = jnp.asarray(x).astype(f64)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    axes = tuple(a % x.ndim for a in axes)
    rest = [a for a in range(x.ndim) if a not in axes]
    return jnp.transpose(x, rest + list(axes)).reshape(tuple(x.shape[r] for r in rest) + (-1,))


def _row_reduce(losses, where, reduction):
    kept = jnp.ones(losses.shape, bool) if where is None else jnp.asarray(where)
    return _reduce(jnp.where(kept, losses, 0.0), kept.astype(f64), reduction)


def cosine_similarity(predictions, targets, *, epsilon=0.0, axis=-1, where=None, reduction="none"):
    """s = (a / sqrt(max(|a|^2, eps))) . (b / sqrt(max(|b|^2, eps))) per row; a zero vector has s = 0."""
    m = jnp.ones(jnp.shape(predictions), bool) if where is None else jnp.broadcast_to(where, jnp.shape(predictions))
    a = jnp.where(_rows_last(m, axis) > 0, _rows_last(predictions, axis), 0.0)
    b = jnp.where(_rows_last(m, axis) > 0, _rows_last(targets, axis), 0.0)
    na, nb = jnp.maximum(jnp.sum(a * a, -1), epsilon), jnp.maximum(jnp.sum(b * b, -1), epsilon)
    ua = a / jnp.sqrt(jnp.where(na > 0, na, 1.0))[..., None]
    ub = b / jnp.sqrt(jnp.where(nb > 0, nb, 1.0))[..., None]
    s = jnp.sum(ua * ub, -1)
    return _row_reduce(s, jnp.any(_rows_last(m, axis) > 0, -1), reduction)


def cosine_distance(predictions, targets, *, epsilon=0.0, axis=-1, where=None, reduction="none"):
    """1 - cosine_similarity per row."""
    m = jnp.ones(jnp.shape(predictions), bool) if where is None else jnp.broadcast_to(where, jnp.shape(predictions))
    d = 1.0 - cosine_similarity(predictions, targets, epsilon=epsilon, axis=axis, where=where)
    return _row_reduce(d, jnp.any(_rows_last(m, axis) > 0, -1), reduction)


def cosine_embedding_loss(x1, x2, targets, *, margin=0.0, axis=-1, where=None, reduction="mean"):
    """l = 1 - cos (y = 1), max(0, cos - margin) (y = -1); cos = a.b / sqrt((|a|^2 + 1e-12)(|b|^2 + 1e-12))."""
    a, b = _rows_last(x1, axis), _rows_last(x2, axis)
    cos = jnp.sum(a * b, -1) / jnp.sqrt((jnp.sum(a * a, -1) + 1e-12) * (jnp.sum(b * b, -1) + 1e-12))
    y = jnp.asarray(targets)
    y = jnp.where(y, 1.0, -1.0) if y.dtype == bool else y.astype(f64)
    losses = jnp.where(y == 1, 1.0 - cos, jnp.maximum(cos - margin, 0.0))
    return _row_reduce(losses, where, reduction)


def margin_ranking_loss(x1, x2, targets, *, margin=0.0, where=None, reduction="mean"):
    """l = max(0, -y (x1 - x2) + margin) elementwise."""
    y = jnp.asarray(targets)
    y = jnp.where(y, 1.0, -1.0) if y.dtype == bool else y.astype(f64)
    d = jnp.asarray(x1).astype(f64) - jnp.asarray(x2).astype(f64)
    return _elementwise_reduce(jnp.maximum(-y * d + margin, 0.0), where, reduction)


def hinge_embedding_loss(inputs, targets, *, margin=1.0, where=None, reduction="mean"):
    """l = x (y = 1), max(0, margin - x) (y = -1) elementwise."""
    x = jnp.asarray(inputs).astype(f64)
    y = jnp.asarray(targets)
    y = jnp.where(y, 1.0, -1.0) if y.dtype == bool else y.astype(f64)
    return _elementwise_reduce(jnp.where(y == 1, x, jnp.maximum(margin - x, 0.0)), where, reduction)


def pairwise_distance(x, y, *, p=2.0, eps=1e-6, axis=-1):
    """||x - y + eps||_p over axis (PyTorch's pairwise_distance)."""
    v = jnp.abs(_rows_last(x, axis) - _rows_last(y, axis) + eps)
    if p == np.inf:
        return jnp.max(v, -1)
    return jnp.sum(v**p, -1) ** (1.0 / p)


def triplet_margin_loss(
    anchor, positive, negative, *, margin=1.0, p=2.0, eps=1e-6, swap=False, axis=-1, where=None, reduction="mean"
):
    """l = max(0, margin + d(a, p) - d(a, n)), d(a, n) -> min(d(a, n), d(p, n)) with swap."""
    d = lambda x, y: pairwise_distance(x, y, p=p, eps=eps, axis=axis)
    d_neg = d(anchor, negative)
    if swap:
        d_neg = jnp.minimum(d_neg, d(positive, negative))
    return _row_reduce(jnp.maximum(margin + d(anchor, positive) - d_neg, 0.0), where, reduction)


def ntxent(embeddings, labels, *, temperature=0.07, where=None, reduction="mean"):
    """l_i = sum_{j in P(i)} -log(e^{s_ij} / (e^{s_ij} + sum_{k in N(i)} e^{s_ik})), s = cos / T; mean over pairs."""
    e = jnp.asarray(embeddings)
    eps = float(jnp.finfo(e.dtype).eps)
    e = e.astype(f64)
    u = e / jnp.sqrt(jnp.maximum(jnp.sum(e * e, -1), eps))[:, None]
    s = (u @ u.T) / temperature
    n = e.shape[0]
    kept = jnp.ones((n,), bool) if where is None else jnp.asarray(where)
    y = jnp.asarray(labels)
    valid = ~jnp.eye(n, dtype=bool) & kept[:, None] & kept[None, :]
    pos, neg = (y[:, None] == y[None, :]) & valid, (y[:, None] != y[None, :]) & valid
    negatives = jnp.sum(jnp.where(neg, jnp.exp(s), 0.0), -1)
    terms = -(s - jnp.log(jnp.exp(s) + negatives[:, None]))
    losses = jnp.sum(jnp.where(pos, terms, 0.0), -1)
    return _reduce(losses, jnp.sum(pos, -1).astype(f64), reduction)


# --------------------------------------------------------------------------------------
# CTC (jaxent.ctc_loss): every alignment enumerated, for tiny T, S, C.


def _ctc_collapse(path, blank):
    """The labelling of an alignment: repeats merged, then blanks removed."""
    out, previous = [], None
    for c in path:
        if c != previous and c != blank:
            out.append(c)
        previous = c
    return out


def ctc_loss_brute_force(logits, targets, input_lengths, target_lengths, *, blank=0, inputs="logits"):
    """l_b = -log sum_{pi : B(pi) = y_b} prod_t p_t(pi_t) over all C^T_b alignments; [B], +inf if none."""
    x = jnp.asarray(logits).astype(f64)
    lp = jax.nn.log_softmax(x, axis=-1) if inputs == "logits" else x
    import itertools

    targets, input_lengths, target_lengths = (np.asarray(a) for a in (targets, input_lengths, target_lengths))

    losses = []
    for b in range(x.shape[0]):
        frames, label = int(input_lengths[b]), [int(v) for v in np.asarray(targets[b])[: int(target_lengths[b])]]
        paths = [p for p in itertools.product(range(x.shape[2]), repeat=frames) if _ctc_collapse(p, blank) == label]
        if not paths:
            losses.append(jnp.asarray(jnp.inf, f64))
            continue
        idx = jnp.asarray(np.array(paths, dtype=np.int64).reshape(len(paths), frames))
        scores = jnp.sum(lp[b, jnp.arange(frames)[None, :], idx], axis=1)
        losses.append(-jax.nn.logsumexp(scores))
    return jnp.stack(losses)


def ctc_reduce(losses, target_lengths, reduction, where=None):
    """PyTorch's reductions of per-sequence CTC losses: "mean" averages l_b / max(L_b, 1) over the kept ones."""
    kept = jnp.ones(losses.shape, bool) if where is None else jnp.asarray(where)
    losses = jnp.where(kept, losses, 0.0)
    if reduction == "none":
        return losses
    if reduction == "sum":
        return jnp.sum(losses)
    per = losses / jnp.maximum(jnp.asarray(target_lengths), 1).astype(f64)
    return _reduce(per, kept.astype(f64), "mean")


# --------------------------------------------------------------------------------------
# Issue 15: PyTorch's regression and margin losses, optax's elementwise ones. Literal
# formulas in float64 (no stable rewrites), per element or per example, then the reduction.


def _f64(a):
    return jnp.asarray(a).astype(f64)


def l1_loss(predictions, targets, *, weight=None, where=None, reduction="mean"):
    """l = w |p - t|; the weighted "mean" is sum(w l) / sum(w) over kept elements (PyTorch)."""
    losses = jnp.abs(_f64(predictions) - _f64(targets))
    if weight is None:
        return _elementwise_reduce(losses, where, reduction)
    w = _broadcast(weight, losses.shape)
    kept = jnp.ones(losses.shape, bool) if where is None else jnp.broadcast_to(jnp.asarray(where), losses.shape)
    return _reduce(jnp.where(kept, w * losses, 0.0), jnp.where(kept, w, 0.0), reduction)


def smooth_l1_loss(predictions, targets, *, beta=1.0, where=None, reduction="mean"):
    """l = 0.5 d^2 / beta if |d| < beta else |d| - 0.5 beta; beta = 0 is |d|."""
    d = _f64(predictions) - _f64(targets)
    quadratic = jnp.abs(d) < beta  # never at beta = 0
    losses = jnp.where(quadratic, 0.5 * d**2 / jnp.where(quadratic, beta, 1.0), jnp.abs(d) - 0.5 * beta)
    return _elementwise_reduce(losses, where, reduction)


def huber_loss(predictions, targets, *, delta=1.0, weight=None, where=None, reduction="mean"):
    """l = w (0.5 d^2 if |d| < delta else delta (|d| - 0.5 delta)); "mean" divides by the count (PyTorch)."""
    d = _f64(predictions) - _f64(targets)
    losses = jnp.where(jnp.abs(d) < delta, 0.5 * d**2, delta * (jnp.abs(d) - 0.5 * delta))
    if weight is not None:
        losses = _broadcast(weight, losses.shape) * losses
    return _elementwise_reduce(losses, where, reduction)


def log_cosh(predictions, targets, *, where=None, reduction="mean"):
    """l = log(cosh(d)), literally (float64 cosh overflows beyond |d| = 710)."""
    d = _f64(predictions) - _f64(targets)
    return _elementwise_reduce(jnp.log(jnp.cosh(d)), where, reduction)


def l2_loss(predictions, targets, *, where=None, reduction="mean"):
    """l = 0.5 (p - t)^2."""
    d = _f64(predictions) - _f64(targets)
    return _elementwise_reduce(0.5 * d * d, where, reduction)


def poisson_nll_loss(predictions, targets, *, log_input=True, full=False, eps=1e-8, where=None, reduction="mean"):
    """l = exp(x) - t x (log_input) or x - t log(x + eps); full adds t log t - t + 0.5 log(2 pi t) for t > 1."""
    x, t = _f64(predictions), _f64(targets)
    losses = jnp.exp(x) - t * x if log_input else x - t * jnp.log(x + eps)
    if full:
        safe = jnp.where(t > 1, t, 1.0)
        losses = losses + jnp.where(t > 1, safe * jnp.log(safe) - safe + 0.5 * jnp.log(2 * np.pi * safe), 0.0)
    return _elementwise_reduce(losses, where, reduction)


def gaussian_nll_loss(predictions, targets, var, *, full=False, eps=1e-6, where=None, reduction="mean"):
    """l = 0.5 (log v + (p - t)^2 / v), v = max(var, eps) with the clamp invisible to autodiff (PyTorch)."""
    x, t = _f64(predictions), _f64(targets)
    v = _f64(var)
    if v.ndim and v.shape == x.shape[:-1]:
        v = v[..., None]
    v = jnp.broadcast_to(v, x.shape)
    v = v + jax.lax.stop_gradient(jnp.maximum(v, eps) - v)
    losses = 0.5 * (jnp.log(v) + (x - t) ** 2 / v) + (0.5 * np.log(2 * np.pi) if full else 0.0)
    return _elementwise_reduce(losses, where, reduction)


def _signs(targets):
    y = jnp.asarray(targets)
    return jnp.where(y, 1.0, -1.0) if y.dtype == jnp.bool_ else y.astype(f64)


def perceptron_loss(scores, targets, *, where=None, reduction="mean"):
    """l = max(0, -y s)."""
    return hinge_loss(scores, targets, margin=0.0, where=where, reduction=reduction)


def multiclass_perceptron_loss(scores, targets, *, axis=-1, where=None, reduction="mean"):
    """l_n = max_{j != y} s_j - s_y, floored at 0."""
    return multiclass_hinge_loss(scores, targets, margin=0.0, axis=axis, where=where, reduction=reduction)


def soft_margin_loss(scores, targets, *, where=None, reduction="mean"):
    """l = log(1 + exp(-y s)), literally."""
    s, y = _f64(scores), _signs(targets)
    return _elementwise_reduce(jnp.log(1 + jnp.exp(-y * s)), where, reduction)


def multilabel_soft_margin_loss(scores, targets, *, weight=None, axis=-1, where=None, reduction="mean"):
    """l_n = -(1/C') sum_c w_c [y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))] over the C' labels kept."""
    x, y = _f64(scores), _f64(targets)
    w = jnp.ones(x.shape, f64) if weight is None else _broadcast(weight, x.shape)
    p = 1 / (1 + jnp.exp(-x))
    terms = -w * (y * jnp.log(p) + (1 - y) * jnp.log(1 - p))
    x_shape = x.shape
    move = lambda a: jnp.moveaxis(a, axis, -1)
    terms = move(terms)
    label_mask = jnp.ones(terms.shape, bool)
    example_mask = jnp.ones(terms.shape[:-1], bool)
    if where is not None:
        where = jnp.asarray(where)
        if where.shape == x_shape:
            label_mask = move(where)
        else:
            example_mask = where
    count = jnp.sum(label_mask, axis=-1)
    losses = jnp.sum(jnp.where(label_mask, terms, 0.0), axis=-1) / jnp.maximum(count, 1).astype(f64)
    kept = example_mask & (count > 0)
    return _reduce(jnp.where(kept, losses, 0.0), kept.astype(f64), reduction)


def multilabel_margin_loss(scores, targets, *, axis=-1, where=None, reduction="mean"):
    """l_n = (1/C) sum over listed j (before the first negative) and unlisted i of max(0, 1 - s_j + s_i), pairwise."""
    x = jnp.moveaxis(_f64(scores), axis, -1)
    y = jnp.moveaxis(jnp.asarray(targets), axis, -1)
    c = x.shape[-1]
    listed = jnp.cumprod(y >= 0, axis=-1) > 0  # [..., K]
    label = jnp.where(listed, y, 0)
    classes = jnp.arange(c, dtype=label.dtype).reshape((1,) * label.ndim + (c,))
    is_target = jnp.any(listed[..., :, None] & (label[..., :, None] == classes), axis=-2)  # [..., C]
    s_j = jnp.take_along_axis(x, label, axis=-1)  # [..., K]
    z = 1 - s_j[..., :, None] + x[..., None, :]  # [..., K, C]
    pairs = listed[..., :, None] & ~is_target[..., None, :]
    losses = jnp.sum(jnp.where(pairs & (z > 0), z, 0.0), axis=(-2, -1)) / c
    kept = jnp.ones(losses.shape, bool) if where is None else jnp.asarray(where)
    return _reduce(jnp.where(kept, losses, 0.0), kept.astype(f64), reduction)


# --------------------------------------------------------------------------------------
# Issue 15: optax's structured losses (sparsemax, Fenchel-Young, generalized KL, ranking,
# dice, smooth_labels; jaxent/_sparse.py, _divergence.py, _ranking.py, _segmentation.py).


def sparsemax_loss(logits, labels, *, where=None, reduction="mean"):
    """sparse_plus(u), u = -x for label 1, x for label 0: 0 (u <= -1), (u+1)^2/4, u (u >= 1)."""
    x = jnp.asarray(logits).astype(f64)
    u = jnp.where(jnp.asarray(labels) == 1, -x, x)
    mid = jnp.clip(u, -1.0, 1.0)
    losses = jnp.where(u <= -1, 0.0, jnp.where(u >= 1, u, (mid + 1) ** 2 / 4))
    return _elementwise_reduce(losses, where, reduction)


def sparsemax_probabilities(scores):
    """The projection onto the simplex by bisection on tau (Σ relu(x - tau) = 1), float64, last axis."""
    x = np.asarray(scores, np.float64)
    lo = np.max(x, axis=-1, keepdims=True) - 1.0
    hi = np.max(x, axis=-1, keepdims=True)
    for _ in range(200):
        mid = (lo + hi) / 2
        over = np.sum(np.maximum(x - mid, 0), axis=-1, keepdims=True) > 1
        lo, hi = np.where(over, mid, lo), np.where(over, hi, mid)
    return np.maximum(x - (lo + hi) / 2, 0)


def multiclass_sparsemax_loss(scores, targets, *, axis=-1, where=None, reduction="mean"):
    """l = <p, s> - ||p||^2/2 + 1/2 - s_y with p = sparsemax(s) over the classes left (NumPy float64)."""
    x = np.moveaxis(np.asarray(scores, np.float64), axis, -1)
    y = np.asarray(targets)
    keep = np.ones(x.shape[:-1], bool)
    if where is not None:
        w = np.asarray(where)
        if w.shape == np.shape(scores):
            x = np.where(np.moveaxis(w, axis, -1), x, -np.inf)
            keep = np.any(np.moveaxis(w, axis, -1), axis=-1)
        else:
            keep = w
    safe = np.where(keep[..., None], x, 0.0)
    p = sparsemax_probabilities(np.where(np.isfinite(safe), safe, -1e300))
    sy = np.take_along_axis(safe, y[..., None], -1)[..., 0]
    finite = np.where(p > 0, safe, 0.0)
    losses = np.sum(p * finite, -1) - 0.5 * np.sum(p * p, -1) + 0.5 - sy
    losses = np.where(keep, losses, 0.0)
    return _reduce(jnp.asarray(losses), jnp.asarray(keep, f64), reduction)


def generalized_kl_divergence(log_predictions, targets, *, axis=-1, where=None, reduction="mean"):
    """sum_c t (log t - log q) + q - t, with 0 log 0 = 0, per example; then the reduction."""
    lq = jnp.moveaxis(jnp.asarray(log_predictions).astype(f64), axis, -1)
    t = jnp.moveaxis(jnp.asarray(targets).astype(f64), axis, -1)
    cm, em = jnp.ones(lq.shape, bool), jnp.ones(lq.shape[:-1], bool)
    if where is not None:
        where = jnp.asarray(where)
        if where.shape == jnp.shape(log_predictions):
            cm = jnp.moveaxis(where, axis, -1)
        else:
            em = where
    terms = jnp.where(t > 0, t * (jnp.log(jnp.where(t > 0, t, 1.0)) - lq), 0.0) + jnp.exp(lq) - t
    losses = jnp.sum(jnp.where(cm, terms, 0.0), axis=-1)
    kept = em & jnp.any(cm, axis=-1)
    return _reduce(jnp.where(kept, losses, 0.0), kept.astype(f64), reduction)


def ranking_softmax_loss(logits, labels, *, where=None, weights=None, reduction="mean"):
    """l = -sum_i w_i y_i log softmax(s)_i over the valid items of each list; mean over lists with a valid item."""
    x = jnp.asarray(logits).astype(f64)
    y = jnp.asarray(labels).astype(f64)
    if weights is not None:
        y = y * jnp.asarray(weights).astype(f64)
    valid = jnp.ones(x.shape, bool) if where is None else jnp.asarray(where)
    xm = jnp.where(valid, x, -jnp.inf)
    lse = jax.scipy.special.logsumexp(xm, axis=-1, keepdims=True)
    # 0 · log 0 = 0: a zero label on a -inf score contributes nothing; on a finite score it
    # contributes 0 with the derivative -log softmax in its label.
    use = valid & ((y != 0) | (x > -jnp.inf))
    terms = jnp.where(use, y * (lse - jnp.where(use, x, 0.0)), 0.0)
    kept = jnp.any(valid, axis=-1)
    losses = jnp.where(kept, jnp.sum(terms, -1), 0.0)
    return _reduce(losses, kept.astype(f64), reduction)


def dice_per_class(probs, targets, axes, smooth=1.0, alpha=0.5, beta=0.5, where=None):
    """1 - (I + smooth) / (I + alpha (P - I) + beta (T - I) + smooth), sums over ``axes`` (float64)."""
    p, t = jnp.asarray(probs).astype(f64), jnp.asarray(targets).astype(f64)
    if where is not None:
        p, t = jnp.where(where, p, 0.0), jnp.where(where, t, 0.0)
    inter = jnp.sum(p * t, axis=axes)
    ps, ts = jnp.sum(p, axis=axes), jnp.sum(t, axis=axes)
    return 1 - (inter + smooth) / (inter + alpha * (ps - inter) + beta * (ts - inter) + smooth)


def smooth_labels(labels, alpha, *, axis=-1, where=None):
    """(1 - alpha) y + alpha / K, K the number of classes kept; 0 at masked classes."""
    y = jnp.asarray(labels).astype(f64)
    if where is None:
        return (1 - alpha) * y + alpha / y.shape[axis]
    k = jnp.sum(jnp.asarray(where), axis=axis, keepdims=True).astype(f64)
    return jnp.where(where, (1 - alpha) * y + alpha / jnp.maximum(k, 1), 0.0)


# --------------------------------------------------------------------------------------
# Fused linear cross-entropy (linear_cross_entropy): the materialised logits, then the
# cross-entropy formula above with the class axis right after the batch axes (PyTorch's layout).


def linear_cross_entropy(inputs, weight, targets, *, bias=None, class_weight=None, **options):
    """l = cross_entropy(x) with x[..., c, k...] = sum_d h[..., d] W[c, k..., d] + b[c, k...]."""
    h, w = jnp.asarray(inputs).astype(f64), jnp.asarray(weight).astype(f64)
    x = jnp.tensordot(h, w, axes=([h.ndim - 1], [w.ndim - 1]))  # [..., V, K...]
    if bias is not None:
        b = jnp.asarray(bias).astype(f64)
        x = x + b.reshape((1,) * (h.ndim - 1) + b.shape)
    return cross_entropy(x, targets, axis=h.ndim - 1, weight=class_weight, **options)


def log_softmax_stats(logits, targets=None, *, temperature=1.0, logit_softcap=None, where=None):
    """(log p_y, entropy, logsumexp, argmax) of softmax(z), z = softcap(logits) / T, over the last
    axis; ``where`` a class mask of the logits' shape (a removed class has probability 0)."""
    x = jnp.asarray(logits).astype(f64)
    raw = x
    if logit_softcap is not None:
        x = logit_softcap * jnp.tanh(x / logit_softcap)
    z = x / temperature
    if where is not None:
        z = jnp.where(where, z, -jnp.inf)
        raw = jnp.where(where, raw, -jnp.inf)
    lp = jax.nn.log_softmax(z, axis=-1)
    p = jnp.exp(lp)
    entropy = -jnp.sum(jnp.where(p > 0, p * jnp.where(p > 0, lp, 0), 0), axis=-1)
    lse = jax.nn.logsumexp(z, axis=-1)
    log_prob = None
    if targets is not None:
        log_prob = jnp.take_along_axis(lp, jnp.asarray(targets)[..., None], axis=-1)[..., 0]
    return log_prob, entropy, lse, jnp.argmax(raw, axis=-1)
