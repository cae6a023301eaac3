"""Softmax cross-entropy and negative log-likelihood.

The heavy lifting is :func:`softmax_stats`, a ``jax.custom_jvp`` that reads the logits
for the row max, then for the sums (one fused reduce; on XLA:CPU one per sum, see
``_backend.row_sums``) and returns only per-example statistics: the log-sum-exp over
the classes that remain (not masked by ``where``, not ``-inf``) and a few weighted sums
of the logits, all relative to the row max. Everything built on those ``[batch]``
statistics (label smoothing, class weights, z-loss, masks, reductions) is ordinary JAX,
so gradients with respect to the hyperparameters come from
autodiff. The tangent map is linear in the input tangents and recomputes the softmax
under ``jax.checkpoint``: forward mode evaluates it, reverse mode transposes it into one
fused elementwise pass over the saved logits. Nothing of size ``[batch, C]`` is saved or
upcast, and the program is the same on every backend (XLA:CPU workarounds live in
``_backend``).
"""

from __future__ import annotations

import functools
from collections.abc import Hashable
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxent import _backend, _checks, _reduction
from jaxent._objects import LossObject, loss_object, static_field

# --------------------------------------------------------------------------------------
# The numerical core: one custom_jvp over per-example statistics.


class Stats(NamedTuple):
    """Per-example statistics over the remaining classes R (not masked, logit > -inf).

    Every logit enters relative to the row's ``shift`` m (the row max over R, a constant
    for differentiation): ``x_c - m`` is exact, so a loss assembled from these values
    does not cancel at large logits. ``remaining`` and ``lost`` are piecewise constant.
    """

    shift: jax.Array  # m: the shift (0 for callers that keep absolute values)
    log_sum: jax.Array  # log sum_{c in R} exp(x_c - m); -inf when R is empty (logsumexp = m + log_sum)
    target: jax.Array | None = None  # x_y - m for integer targets; -inf when y is not in R
    dot: jax.Array | None = None  # sum_{c in R} w_c t_c (x_c - m) for probability targets
    mass: jax.Array | None = None  # sum_{c in R} w_c t_c
    smooth_dot: jax.Array | None = None  # sum_{c in R} w_c (x_c·g - m·g), g = GAP_SCALE (label smoothing)
    smooth_mass: jax.Array | None = None  # sum_{c in R} w_c
    remaining: jax.Array | None = None  # |R|, the classes that get smoothing mass
    lost: jax.Array | None = None  # unmasked classes with x_c - m = -inf and target mass w_c t_c != 0
    moment: jax.Array | None = None  # sum_{c in R} e^(x_c - m) (x_c - m), for the entropy
    argmax: jax.Array | None = None  # the first class of the largest raw logit (as a float; no tangent)


# x_c - m may overflow while the loss does not (x = [M, M, -M] at float max M has a gap
# of 2M, and the smoothing term is about ε·2M/3): the smoothing sum adds x_c·g - m·g,
# which a power of two keeps exact (the same rounding as (x_c - m)·g) and finite for any
# C <= 2^31. Gaps below 2^32 times the smallest normal (5e-29 in float32) flush to 0.
GAP_SCALE = 2.0**-32


def scaled_gaps(x: jax.Array, m: jax.Array) -> jax.Array:
    """``(x - m)·GAP_SCALE``, computed as ``x·g - m·g`` so that it cannot overflow."""
    return x * GAP_SCALE - m * GAP_SCALE


class StatsConfig(NamedTuple):
    """The static part of :func:`softmax_stats`."""

    smooth: bool  # compute the label-smoothing sums
    axis_name: Any = None  # the mesh axis the classes are sharded over (inside shard_map)
    moments: bool = False  # compute the entropy's moment sum


def row_max(x: jax.Array, mask: jax.Array | None) -> jax.Array:
    """Row maximum over unmasked entries, in the input dtype (exact; no gradient: it is a shift).

    NaN propagates (a row holding NaN has a NaN max, so its loss is NaN).
    """
    x = jax.lax.stop_gradient(x)
    return _backend.row_max(x if mask is None else jnp.where(mask, x, -jnp.inf))


def scaled(x: jax.Array, scale: jax.Array | None) -> jax.Array:
    """``x · scale`` (the inverse temperature, > 0, so -inf stays -inf and the max stays the max)."""
    return x if scale is None else x * scale


def scaled_tangent(dx: jax.Array, x: jax.Array, scale: jax.Array | None, dscale: jax.Array | None, r: jax.Array):
    """Tangent of ``x · scale`` for the tangent ``dx`` of ``x`` (finite on ``r``)."""
    if scale is None:
        return dx
    dx = dx * scale
    return dx if dscale is None else dx + jnp.where(r, dscale * jnp.where(r, x, 0), 0)


def capped(x: jax.Array, cap: jax.Array | None) -> tuple[jax.Array, jax.Array | None]:
    """(logits in the compute dtype, soft-capped when ``cap`` is given; tanh(x/cap))."""
    xf = x.astype(_checks.compute_dtype(x.dtype))
    if cap is None:
        return xf, None
    th = jnp.tanh(xf / cap)
    # Soft-capping c*tanh(x/c) keeps an impossible class (-inf) impossible.
    return jnp.where(xf > -jnp.inf, cap * th, xf), th


def _remaining(x: jax.Array, mask: jax.Array | None) -> jax.Array:
    """The classes R that remain: not masked out and not -inf."""
    r = x > -jnp.inf
    return r if mask is None else r & mask


def _expand(v: jax.Array | None, ndim: int) -> jax.Array | None:
    """A per-class vector ``[C]`` with leading 1s to broadcast against ``[..., C]``."""
    return None if v is None else v.reshape((1,) * (ndim - 1) + (-1,))


def log_of_sum(s: jax.Array, count: jax.Array | None = None) -> jax.Array:
    """log s of a sum of exponentials; -inf for an empty row (no remaining class, or s = 0
    without ``count``); NaN stays NaN."""
    empty = (s == 0) if count is None else (count == 0)
    return jnp.where(empty, -jnp.inf, jnp.log(jnp.where(empty, 1, s)))


def shift_of(m: jax.Array, ct) -> jax.Array:
    # A floor on the shift keeps an all -inf row at exp(-inf - floor) = 0 (no NaN).
    return jnp.maximum(m.astype(ct), jnp.finfo(ct).min)


def _onehot(labels: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """True at each row's label (int32 iota: any label dtype, any number of classes)."""
    return jax.lax.broadcasted_iota(jnp.int32, shape, len(shape) - 1) == labels.astype(jnp.int32)[..., None]


def _primal_stats(cfg: StatsConfig, x, cap, mask, labels, probs, weight, rows=None, scale=None) -> Stats:
    """``labels`` are indices into this device's classes; ``C`` (= x.shape[-1]) marks a
    target held by another device when the class axis is sharded over ``axis_name``."""
    ct = _checks.compute_dtype(x.dtype)
    m = row_max(x, mask).astype(ct)
    if cfg.axis_name is not None:
        m = jax.lax.pmax(m, cfg.axis_name)  # one collective: the global row max
    if cap is not None:
        # tanh is increasing: the max of the capped logits is the capped max.
        m = cap * jnp.tanh(m / cap)
    m = shift_of(scaled(m, scale), ct)
    mb = m[..., None]
    stats: dict[str, jax.Array] = {}
    if labels is not None:
        idx = labels[..., None]
        take = functools.partial(jnp.take_along_axis, indices=idx, axis=-1, mode="fill")
        xy, _ = capped(take(_backend.apart(x), fill_value=0)[..., 0], cap)
        xy = scaled(xy, scale)
        # A NaN target logit stays (a NaN loss), not an impossible class (+inf).
        ry = _remaining(jnp.where(jnp.isnan(xy), 0, xy), None if mask is None else take(mask, fill_value=False)[..., 0])
        ry = ry & (labels < x.shape[-1])
        # x_y - m is exact (no cancellation at large logits).
        stats["target"] = jnp.where(ry, xy - m, -jnp.inf)
    xc, _ = capped(x, cap)
    xc = scaled(xc, scale)
    r = _remaining(xc, mask)
    if mask is None and cap is None and probs is None and not cfg.smooth and not cfg.moments:
        # Only the sum of exponentials (exp(-inf - m) = 0 needs no select) and the count of R.
        (s,), (remaining,) = _backend.row_sums((jnp.exp(xc - mb),), (r,))
        sums = {"s": s, "remaining": remaining.astype(ct)}
    else:
        gap = xc - mb
        xs = jnp.where(r, gap, 0)  # x_c - m on R, 0 off R (never -inf - m)
        # Double where: entries off R never reach exp, so no inf/NaN leaks into gradients.
        values = {"s": jnp.where(r, jnp.exp(xs), 0)}
        counts = {"remaining": r}
        w = _expand(weight, x.ndim)
        if probs is not None:
            t = probs.astype(ct)
            wt = t if w is None else w * t
            # x_c - m overflows to -inf below m - float max: a zero target there adds 0 (the
            # gap is clamped, not 0 * -inf = NaN), a nonzero one is lost like a -inf logit.
            lowest = jnp.finfo(ct).min
            values.update(dot=jnp.where(r, wt * jnp.maximum(xs, lowest), 0), mass=jnp.where(r, wt, 0))
            lost = (gap == -jnp.inf) if mask is None else (gap == -jnp.inf) & mask
            counts["lost"] = lost & (wt != 0)
        if cfg.smooth:
            gaps = jnp.where(r, scaled_gaps(xc, mb), 0)
            values["smooth_dot"] = gaps if w is None else w * gaps
            if w is not None:
                values["smooth_mass"] = jnp.where(r, w, 0)
        if cfg.moments:
            # e^g·g with the gap clamped (an overflowing gap adds e^-max·(-max) = 0, not 0·-inf).
            g = jnp.maximum(xs, jnp.finfo(ct).min)
            values["moment"] = jnp.where(r, jnp.exp(g) * g, 0)
        value_sums, count_sums = _backend.row_sums(tuple(values.values()), tuple(counts.values()))
        sums = dict(zip(values, value_sums)) | {k: v.astype(ct) for k, v in zip(counts, count_sums)}
        if cfg.smooth and w is None:
            sums["smooth_mass"] = sums["remaining"]
    if cfg.axis_name is not None:
        # The other collective: every per-example sum, and the target (held by one device),
        # packed into a single psum.
        if labels is not None:
            sums.update(target=jnp.where(ry, stats["target"], 0), present=ry.astype(ct))
        packed = jax.lax.psum(jnp.stack(list(sums.values())), cfg.axis_name)
        sums = dict(zip(sums, packed))
        if labels is not None:
            present = sums.pop("present")
            stats["target"] = jnp.where(present > 0, sums.pop("target"), -jnp.inf)
    s = sums.pop("s")
    # An empty row (no remaining class) has s = 0; the count says so when there is one.
    remaining = sums["remaining"] if cfg.smooth else sums.pop("remaining")
    return Stats(shift=m, log_sum=log_of_sum(s, remaining), **stats, **sums)


def cap_partial(x: jax.Array, th: jax.Array, cap: jax.Array) -> jax.Array:
    """d/dc c·tanh(x/c) = tanh(u) - u (1 - tanh(u)^2) with u = x/c, for finite ``x``."""
    u = x / cap
    # u (1 - tanh^2 u) < 4u exp(-2u) is below 1e-33 for |u| >= 40, and u may overflow to
    # inf (x near float max, a small cap), where the product would be inf * 0 = NaN.
    return th - jnp.where(jnp.abs(u) < 40, u * (1 - th * th), 0)


def _capped_tangent(dx, x, th, cap, dcap, r):
    """Tangent of the soft-capped logits ``c·tanh(x/c)`` (``x`` finite on ``r``, 0 elsewhere)."""
    if th is None:
        return dx
    # d/dx c*tanh(x/c) = 1 - tanh^2.
    return dx * (1 - th * th) + jnp.where(r, dcap * cap_partial(x, th, cap), 0)


def _stats_tangent(cfg: StatsConfig, primals, stats: Stats, tangents) -> Stats:
    """The tangent of :func:`softmax_stats`: linear in ``tangents`` (d logits, d cap,
    d probs, d weight), with the softmax recomputed from the primals. Under
    ``jax.checkpoint`` reverse mode transposes it into one pass over the logits that
    saves nothing of size ``[batch, C]``."""
    x, cap, mask, labels, probs, weight, rows, scale = primals
    dx, dcap, _, _, dprobs, dweight, _, dscale = tangents
    ct = _checks.compute_dtype(x.dtype)
    x = _backend.apart(x)
    if rows is not None:
        # Dropped examples get exactly zero tangents and gradients, even where their logits
        # (or statistics) are NaN or inf: their logits (after the barrier: each reader selects
        # on its own) and statistics are replaced by 0 here, so that every partial is finite,
        # and their tangents selected away at the end (transposed: their cotangents are 0, and
        # 0 times a finite partial is 0). No [N, C] select of dx.
        x = jnp.where(rows[..., None], x, 0)
        stats = stats._replace(shift=jnp.where(rows, stats.shift, 0), log_sum=jnp.where(rows, stats.log_sum, 0))
    xc, th = capped(x, cap)
    r = _remaining(xc, mask)
    dxc = dx.astype(ct)
    if th is not None:
        dxc = _capped_tangent(jnp.where(r, dxc, 0), jnp.where(r, x.astype(ct), 0), th, cap, dcap, r)
    dxc = scaled_tangent(dxc, xc, scale, dscale, r)
    xc = scaled(xc, scale)
    # d lse / dx_c = softmax_c = exp(x_c - lse) over R (0 off R), with lse = hi + lo as an
    # exact sum (TwoSum of m and log_sum: at large logits hi = m rounds log_sum away, lo
    # keeps it). Its own row values (not the forward pass's m), so that XLA does not share
    # one broadcast of m between the passes and write it to memory. Without a mask R is the
    # finite logits, and exp(-inf - hi) = 0 needs no select.
    hi, lo = _backend.two_sum(stats.shift, jnp.where(stats.log_sum > -jnp.inf, stats.log_sum, 0))
    hi, lo = hi[..., None], lo[..., None]
    p = jnp.exp((xc - hi) - lo) if mask is None else jnp.where(r, jnp.exp((jnp.where(r, xc, hi) - hi) - lo), 0)
    shift = stats.shift[..., None]
    out: dict[str, jax.Array] = {"log_sum": jnp.sum(p * dxc, axis=-1)}
    if labels is not None:
        here = labels < x.shape[-1]
        y = jnp.where(here, labels, 0)
        # The target's raw tangent, then the soft-cap chain on [batch] values, so that the
        # transpose writes the target entries of the gradient once, in place. (A target
        # off R has a -inf statistic, which the loss drops with its tangent.)
        dy = _backend.take_last(dx.astype(ct), y, _onehot(labels, x.shape), x.dtype)
        if th is not None or scale is not None:
            xy = jnp.take_along_axis(x, y[..., None], axis=-1)[..., 0].astype(ct)
            ry = xy > -jnp.inf
            xy = jnp.where(ry, xy, 0)
            xyc, thy = capped(xy, cap)
            if thy is not None:
                dy = _capped_tangent(dy, xy, thy, cap, dcap, ry)
            dy = scaled_tangent(dy, xyc, scale, dscale, ry)
        out["target"] = jnp.where(here, dy, 0)
    if probs is not None or cfg.smooth or cfg.moments:
        xs = jnp.where(r, xc - shift, 0)
        dxc = jnp.where(r, dxc, 0)  # the sums below run over R only
    w = _expand(weight, x.ndim)
    dw = _expand(dweight, x.ndim)
    assert w is None or dw is not None  # a weight has a tangent (zero when not differentiated)
    if probs is not None:
        t = probs.astype(ct)
        dt = dprobs.astype(ct)
        wt = t if w is None else w * t
        # d(w t) = dw t + w dt; dot = sum w t (x - m) with m a constant.
        dwt = jnp.where(r, dt if w is None else w * dt + dw * t, 0)
        out["dot"] = jnp.sum(dwt * xs + wt * dxc, axis=-1)
        out["mass"] = jnp.sum(dwt, axis=-1)
    if cfg.smooth:
        if w is None or dw is None:
            out["smooth_dot"] = jnp.sum(dxc, axis=-1) * GAP_SCALE
        else:
            dwr = jnp.where(r, dw, 0)
            gaps = jnp.where(r, scaled_gaps(xc, shift), 0)
            out["smooth_dot"] = jnp.sum(w * dxc, axis=-1) * GAP_SCALE + jnp.sum(dwr * gaps, axis=-1)
            out["smooth_mass"] = jnp.sum(dwr, axis=-1)
    if cfg.moments:
        # d/dx_c e^(x_c - m)(x_c - m) = e^(x_c - m)(x_c - m + 1), m a constant; clamped as in the primal.
        g = jnp.maximum(xs, jnp.finfo(ct).min)
        out["moment"] = jnp.sum(jnp.exp(g) * (g + 1) * dxc, axis=-1)
    if cfg.axis_name is not None:
        out = dict(zip(out, jax.lax.psum(tuple(out.values()), cfg.axis_name)))
    if rows is not None:
        out = {k: jnp.where(rows, v, 0) for k, v in out.items()}
    zero = jnp.zeros_like(stats.log_sum)
    return stats._replace(**{k: out.get(k, zero) for k, v in stats._asdict().items() if v is not None})


def put_last(arr: jax.Array, idx: jax.Array, values: jax.Array) -> jax.Array:
    """``jnp.put_along_axis(arr, idx, values, axis=-1)`` for ``idx``/``values`` ``[..., 1]``,
    out-of-range indices dropped: one scatter with batch dimensions, which (unlike
    ``put_along_axis``) also works on arrays with sharding in their types."""
    nb = arr.ndim - 1
    dnums = jax.lax.ScatterDimensionNumbers(
        update_window_dims=(),
        inserted_window_dims=(nb,),
        scatter_dims_to_operand_dims=(nb,),
        operand_batching_dims=tuple(range(nb)),
        scatter_indices_batching_dims=tuple(range(nb)),
    )
    return jax.lax.scatter(
        arr, idx, values[..., 0], dnums, mode=jax.lax.GatherScatterMode.FILL_OR_DROP, unique_indices=True
    )


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def softmax_stats(cfg: StatsConfig, x, cap, mask, labels, probs, weight, rows=None, scale=None) -> Stats:
    """:class:`Stats` of logits ``x`` ``[..., C]`` (any float dtype; computed in float32 or
    float64) with an optional soft-cap, class mask ``[..., C]``, integer ``labels``
    ``[...]``, probability targets ``[..., C]``, class weights ``[C]``, the examples
    that count, ``rows`` ``[...]`` (the others get zero tangents, NaN logits or not), and
    an inverse temperature ``scale`` (the logits are ``scale·softcap(x)``; it gets a tangent).

    Forward and reverse mode come from one ``jax.custom_jvp``: its tangent map is linear
    and recomputes the softmax under ``jax.checkpoint``, so reverse mode saves only the
    inputs and the ``[batch]`` statistics.
    """
    return _primal_stats(cfg, x, cap, mask, labels, probs, weight, scale=scale)


@softmax_stats.defjvp
def _softmax_stats_jvp(cfg, primals, tangents):
    stats = softmax_stats(cfg, *primals)
    # Integer labels and boolean masks have no tangent (float0): the tangent map ignores them.
    floats = tuple(None if t is None or t.dtype == jax.dtypes.float0 else t for t in tangents)
    tangent = jax.checkpoint(functools.partial(_stats_tangent, cfg), prevent_cse=False)
    return stats, tangent(primals, stats, floats)


# --------------------------------------------------------------------------------------
# Shared assembly helpers.


def _drop_inf(v: jax.Array) -> jax.Array:
    """-inf -> 0, so that products with a zero coefficient stay finite (and NaN stays NaN)."""
    return jnp.where(v == -jnp.inf, 0, v)


class SoftmaxOptions(NamedTuple):
    """Validated options shared by the softmax cross-entropies (static flags + traced values)."""

    smooth: bool  # label_smoothing may be non-zero
    eps: jax.Array
    z_loss: jax.Array | None  # None when statically 0
    cap: jax.Array | None
    checks: tuple = ()  # (ok, message, payload) of traced hyperparameters, for _checks.attach_checks


def softmax_options(
    fn: str, dtype: Any, reduction: Any, ignore_index: Any, label_smoothing: Any, z_loss: Any, logit_softcap: Any
) -> SoftmaxOptions:
    _checks.check_reduction(fn, reduction)
    _checks.check_ignore_index(fn, ignore_index)
    # Traced values are checked under checkify, through a check that costs nothing outside it.
    checks = (
        _checks.traced_range_check(fn, "label_smoothing", label_smoothing, 0.0, 1.0),
        _checks.traced_range_check(fn, "z_loss", z_loss, 0.0),
        _checks.traced_range_check(fn, "logit_softcap", logit_softcap, 0.0, low_open=True),
    )
    ct = _checks.compute_dtype(dtype)
    return SoftmaxOptions(
        checks=checks,
        smooth=bool(_checks.concrete(label_smoothing) != 0),
        eps=_checks.hyperparameter(label_smoothing, ct),
        z_loss=None if _checks.concrete(z_loss) == 0 else _checks.hyperparameter(z_loss, ct),
        cap=None if logit_softcap is None else _checks.hyperparameter(logit_softcap, ct),
    )


def softmax_losses(stats: Stats, kept: jax.Array, class_weight: jax.Array | None, opts: SoftmaxOptions) -> jax.Array:
    """Per-example loss from the statistics; 0 where not kept.

    ``class_weight`` is w_y per example for integer targets (NaN for an out-of-range
    label), None for probability targets (whose weights are inside ``stats.dot/mass``).
    """
    eps = opts.eps
    if class_weight is not None:
        assert stats.target is not None
        coef, target_dot = (1 - eps) * class_weight, class_weight * _drop_inf(stats.target)
        # The target class is impossible (-inf) while it carries weight: +inf loss.
        impossible = (stats.target == -jnp.inf) & (coef != 0) & ~jnp.isnan(coef)
    else:
        assert stats.dot is not None and stats.mass is not None and stats.lost is not None
        coef, target_dot = (1 - eps) * stats.mass, stats.dot
        # Target mass on an unmasked -inf class (while it carries weight): +inf loss.
        impossible = (stats.lost != 0) & (1 - eps != 0)
    ls = _drop_inf(stats.log_sum)
    # -log p_c = lse - x_c = log_sum - (x_c - m): from shifted values, no cancellation.
    # -sum_c a_c log p_c = (sum_c a_c) log_sum - sum_c a_c (x_c - m), with a = (1-ε) w t.
    losses = coef * ls - (1 - eps) * target_dot
    if opts.smooth:
        assert stats.smooth_dot is not None and stats.smooth_mass is not None and stats.remaining is not None
        # The uniform part ε/C' over the C' remaining classes: (ε/C') sum_c w_c (log_sum - (x_c - m)),
        # scaled back from the gap scale last (smooth_dot / g may overflow where the loss does not).
        share = eps / jnp.maximum(stats.remaining, 1)
        losses = losses + (share * stats.smooth_mass * ls - (share * stats.smooth_dot) / GAP_SCALE)
    if opts.z_loss is not None:
        lse = jnp.where(stats.log_sum == -jnp.inf, 0, stats.shift + stats.log_sum)
        losses = losses + opts.z_loss * lse * lse
    losses = jnp.where(kept & impossible, jnp.inf, losses)
    return _checks.attach_checks(jnp.where(kept, losses, 0), opts.checks)


# --------------------------------------------------------------------------------------
# Public functions.


def cross_entropy(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    axis: int | tuple[int, ...] = -1,
    weight: ArrayLike | None = None,
    ignore_index: int | None = -100,
    label_smoothing: ArrayLike = 0.0,
    z_loss: ArrayLike = 0.0,
    logit_softcap: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
    axis_name: Hashable | None = None,
) -> jax.Array:
    r"""Softmax cross-entropy with PyTorch's options, safe at ``-inf`` and in bfloat16.

    With ``p = softmax(x)`` over the class axis and the target distribution
    ``q = (1 - ε)·t + ε/C'`` (``t`` one-hot for integer targets, ``C'`` the classes
    left after ``where`` masking and ``-inf`` logits), each example's loss is

    .. math::
        \ell_n = -\sum_c w_c\, q_{n,c} \log p_{n,c} + z \,(\operatorname{logsumexp} x_n)^2

    so for integer targets without smoothing ``ℓ_n = -w_{y_n} log p_{n,y_n}``. Then
    ``reduction``: ``"none"``, ``"sum"``, or ``"mean"``, which for integer targets is
    PyTorch's weighted mean ``Σ ℓ_n / Σ w_{y_n}`` over kept examples and for probability
    targets ``Σ ℓ_n / (number of kept examples)``. An empty mean is 0.0, not NaN.

    Args:
      logits: ``[..., C, ...]`` floating logits (bf16/f16 are computed in float32).
      targets: integer class indices of shape ``logits.shape`` without ``axis``, or
        floating probabilities (one-hot or soft) of ``logits.shape``.
      axis: static class axis, or a tuple of axes whose flat index the integer targets
        give (optax's convention). ``axis=1`` is PyTorch's ``(N, C, d1, ..., dk)``.
      weight: optional per-class weights ``[C]`` (may be traced). They also weight the
        smoothing term, as in PyTorch.
      ignore_index: static integer target to drop (0 loss, 0 gradient, out of the
        mean); may be a valid class, which then stays in the softmax. ``None`` turns it
        off. Probability targets do not use it (a non-negative value is an error).
      label_smoothing: ε in [0, 1] (may be traced); PyTorch's ``(1-ε)·onehot + ε/C``,
        with no smoothing mass on masked or ``-inf`` classes.
      z_loss: coefficient of the PaLM/T5X penalty ``z·logsumexp(x)²`` added to each kept
        example (unweighted by ``weight``).
      logit_softcap: optional ``c > 0``: logits become ``c·tanh(x/c)`` first (Gemma 2);
        ``-inf`` stays ``-inf``.
      where: boolean mask of the batch shape (drops examples) or of ``logits.shape``
        (drops classes exactly as if they were removed from logits and targets; a row
        with every class dropped is a dropped example).
      reduction: ``"none"`` (batch shape), ``"sum"`` or ``"mean"`` (scalars).
      axis_name: inside ``jax.shard_map``, the mesh axis over which the class axis is
        sharded (each device holds a contiguous slice, in device order; ``weight`` and a
        class ``where`` are sliced alike, integer targets stay global ids). Only a
        ``pmax`` and one packed ``psum`` of per-example values cross devices; the
        gradient stays sharded. "sum"/"mean" reduce the device's own examples: see
        :func:`jaxent.mean_denominator` and :func:`jaxent.sharded_cross_entropy` for a
        mean over a sharded batch.

    Returns:
      The loss in float32 (float64 for float64 logits).

    Notes:
      ``-inf`` logits are impossible classes: probability 0, zero gradient, no
      smoothing mass; a target on one gives ``+inf`` with finite (zero) gradients for
      that example. An integer target outside ``[0, C)`` that is not ``ignore_index``
      gives NaN for that example (and under ``jax.experimental.checkify`` with
      ``checkify.user_checks`` an error naming the label). Gradients come from one
      ``jax.custom_jvp`` rule: forward mode (``jax.jvp``, ``jax.jacfwd``,
      ``jax.linearize``), reverse mode (``grad``, grad-of-grad) and ``jax.hessian`` all
      work, and reverse mode saves only the logits and a few numbers per example.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> logits = jnp.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]])
      >>> jaxent.cross_entropy(logits, jnp.array([0, 1]), reduction="none").tolist()
      [0.2761..., 2.9517...]
      >>> jaxent.cross_entropy(logits, jnp.array([0, 1]), label_smoothing=0.1)
      Array(1.6023, dtype=float32)

    References:
      PyTorch ``torch.nn.functional.cross_entropy``; optax
      ``softmax_cross_entropy_with_integer_labels``; Chowdhery et al., *PaLM* (z-loss).
    """
    losses, denominator = cross_entropy_parts(
        logits,
        targets,
        axis=axis,
        weight=weight,
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        z_loss=z_loss,
        logit_softcap=logit_softcap,
        where=where,
        reduction=reduction,
        axis_name=axis_name,
    )
    return _reduction.reduce(losses, reduction, denominator)


def cross_entropy_parts(
    logits, targets, *, axis, weight, ignore_index, label_smoothing, z_loss, logit_softcap, where, reduction, axis_name
) -> tuple[jax.Array, jax.Array]:
    """(per-example losses, per-example weights of the "mean" denominator) of :func:`cross_entropy`."""
    fn = "cross_entropy"
    lay = _checks.class_layout(fn, logits, targets, axis=axis, where=where, weight=weight)
    if not lay.integer_targets:
        _checks.check_ignore_index_for_probabilities(fn, ignore_index)
    opts = softmax_options(fn, lay.x.dtype, reduction, ignore_index, label_smoothing, z_loss, logit_softcap)
    kept = _checks.kept_examples(lay, ignore_index, axis_name)
    rows = kept if _checks.drops_examples(lay, ignore_index) else None
    cfg = StatsConfig(opts.smooth, axis_name)
    if not lay.integer_targets:
        stats = softmax_stats(cfg, lay.x, opts.cap, lay.class_mask, None, lay.targets, lay.weight, rows)
        return softmax_losses(stats, kept, None, opts), kept
    if axis_name is None:
        y, wy = _checks.class_labels(fn, lay, kept, ignore_index)
    else:
        y, wy = sharded_labels(
            fn, lay.targets, lay.num_classes, kept, ignore_index, lay.weight, axis_name, opts.eps.dtype
        )
    stats = softmax_stats(cfg, lay.x, opts.cap, lay.class_mask, y, None, lay.weight, rows)
    return softmax_losses(stats, kept, wy, opts), wy


def sharded_labels(fn, targets, local_classes, kept, ignore_index, weight, axis_name, dtype):
    """(labels as indices into this device's slice of classes, ``local_classes`` when
    another device holds the target; per-example class weight as :func:`checked_labels`)."""
    offset = jax.lax.axis_index(axis_name) * local_classes
    y, wy = _checks.checked_labels(
        fn, targets, local_classes * jax.lax.axis_size(axis_name), kept, ignore_index, None, dtype
    )
    local = y - offset
    here = (local >= 0) & (local < local_classes)
    local = jnp.where(here, local, local_classes)
    if weight is not None:
        # The target's class weight lives on one device.
        wy = wy * jax.lax.psum(jnp.where(here, weight[jnp.minimum(local, local_classes - 1)], 0), axis_name)
    return local, wy


def nll_loss(
    log_probs: ArrayLike,
    targets: ArrayLike,
    *,
    axis: int | tuple[int, ...] = -1,
    weight: ArrayLike | None = None,
    ignore_index: int | None = -100,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
) -> jax.Array:
    r"""Negative log-likelihood of log-probabilities, PyTorch's ``nll_loss``.

    .. math::
        \ell_n = -\sum_c w_c\, t_{n,c} \log p_{n,c} \qquad (= -w_{y_n} \log p_{n, y_n})

    for integer targets ``y`` (or probability targets ``t`` of ``log_probs.shape``), then
    ``reduction`` exactly as :func:`cross_entropy`:
    ``cross_entropy(x, y) == nll_loss(jax.nn.log_softmax(x), y)``. A class dropped by a
    ``where`` mask of ``log_probs.shape`` has log-probability ``-inf``; a target on a
    ``-inf`` log-probability gives ``+inf`` with finite gradients. Plain JAX autodiff:
    forward and reverse mode both work.

    Args:
      log_probs: ``[..., C, ...]`` floating log-probabilities.
      targets: integer class indices (``log_probs.shape`` without ``axis``) or floating
        probabilities of ``log_probs.shape``.
      axis, weight, ignore_index, where, reduction: as in :func:`cross_entropy`.

    Returns:
      The loss in float32 (float64 for float64 inputs).

    Example:
      >>> import jax, jax.numpy as jnp, jaxent
      >>> log_probs = jax.nn.log_softmax(jnp.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]]))
      >>> jaxent.nll_loss(log_probs, jnp.array([0, 1]), weight=jnp.array([1.0, 2.0, 1.0]))
      Array(2.0599, dtype=float32)
    """
    fn = "nll_loss"
    _checks.check_reduction(fn, reduction)
    _checks.check_ignore_index(fn, ignore_index)
    lay = _checks.class_layout(fn, log_probs, targets, axis=axis, where=where, weight=weight, logits_name="log_probs")
    if not lay.integer_targets:
        _checks.check_ignore_index_for_probabilities(fn, ignore_index)
    ct = _checks.compute_dtype(lay.x.dtype)
    kept = _checks.kept_examples(lay, ignore_index)
    if lay.integer_targets:
        y, wy = _checks.class_labels(fn, lay, kept, ignore_index)
        lpy = jnp.take_along_axis(lay.x, y[..., None], axis=-1)[..., 0].astype(ct)
        if lay.class_mask is not None:
            lpy = jnp.where(jnp.take_along_axis(lay.class_mask, y[..., None], axis=-1)[..., 0], lpy, -jnp.inf)
        losses = -wy * _drop_inf(lpy)
        impossible = (lpy == -jnp.inf) & (wy != 0) & ~jnp.isnan(wy)
        denominator = wy
    else:
        lp = lay.x.astype(ct)
        t = lay.targets.astype(ct)
        wt = t if lay.weight is None else lay.weight.reshape((1,) * (t.ndim - 1) + (-1,)) * t
        if lay.class_mask is not None:
            wt = jnp.where(lay.class_mask, wt, 0)  # a masked class is removed from the targets too
        # -sum_c w_c t_c log p_c; target mass on a -inf log-probability makes it +inf.
        (dot,), (lost,) = _backend.row_sums((wt * _drop_inf(lp),), ((lp == -jnp.inf) & (wt != 0),))
        losses, impossible = -dot, lost != 0
        denominator = kept
    losses = jnp.where(kept & impossible, jnp.inf, losses)
    return _reduction.reduce_kept(losses, kept, reduction, denominator)


# --------------------------------------------------------------------------------------
# Loss objects.


@loss_object
class CrossEntropyLoss(LossObject):
    """:func:`cross_entropy` as a frozen dataclass pytree: ``CrossEntropyLoss(...)(logits, targets)``.

    Array fields (``weight``, ``label_smoothing``, ``z_loss``, ``logit_softcap``) are pytree
    leaves; ``axis``, ``ignore_index`` and ``reduction`` are static.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> loss = jaxent.CrossEntropyLoss(label_smoothing=0.1)
      >>> loss(jnp.array([[1.2, -0.8, -0.5]]), jnp.array([0]))
      Array(0.3995, dtype=float32)
    """

    function: ClassVar = staticmethod(cross_entropy)
    axis: int | tuple[int, ...] = static_field(default=-1)
    weight: ArrayLike | None = None
    ignore_index: int | None = static_field(default=-100)
    label_smoothing: ArrayLike = 0.0
    z_loss: ArrayLike = 0.0
    logit_softcap: ArrayLike | None = None
    reduction: _reduction.Reduction = static_field(default="mean")
    axis_name: Hashable | None = static_field(default=None)


@loss_object
class NLLLoss(LossObject):
    """:func:`nll_loss` as a frozen dataclass pytree: ``NLLLoss(...)(log_probs, targets)``.

    Example:
      >>> import jax, jax.numpy as jnp, jaxent
      >>> jaxent.NLLLoss()(jax.nn.log_softmax(jnp.array([[1.2, -0.8, -0.5]])), jnp.array([0]))
      Array(0.2761, dtype=float32)
    """

    function: ClassVar = staticmethod(nll_loss)
    axis: int | tuple[int, ...] = static_field(default=-1)
    weight: ArrayLike | None = None
    ignore_index: int | None = static_field(default=-100)
    reduction: _reduction.Reduction = static_field(default="mean")


def smooth_labels(
    labels: ArrayLike,
    alpha: ArrayLike,
    *,
    axis: int | tuple[int, ...] = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""Label smoothing of one-hot (or soft) labels, optax's ``smooth_labels``.

    .. math::
        \tilde y_c = (1 - \alpha)\, y_c + \alpha / K

    with ``K`` the number of classes over ``axis`` (those kept by ``where``). A utility, not a
    loss: pass the result to :func:`cross_entropy` as probability targets (or use
    ``cross_entropy(..., label_smoothing=α)``, which needs no ``[N, C]`` array).

    Args:
      labels: floating labels ``[..., C, ...]``.
      alpha: the smoothing factor in ``[0, 1]`` (may be traced; checked when concrete).
      axis: static class axis, or a tuple of axes that together form the classes.
      where: optional boolean mask of ``labels.shape``: the classes to keep. Decision: masked
        classes get 0 (no smoothing mass, as ``cross_entropy`` treats them; optax returns
        ``(1 - α) y + α / K`` there too), and ``K`` counts the kept classes of each row.

    Returns:
      The smoothed labels, of ``labels.shape`` and dtype.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.smooth_labels(jnp.array([[0.0, 1.0, 0.0, 0.0]]), 0.2).tolist()
      [[0.05..., 0.85..., 0.05..., 0.05...]]

    References:
      Müller, Kornblith & Hinton, *When does label smoothing help?*, NeurIPS 2019.
    """
    fn = "smooth_labels"
    y = _checks.as_array(fn, "labels", labels)
    _checks.check_floating(fn, "labels", y)
    axes = _checks.canonical_axes(fn, axis, y.ndim, y.shape, "labels")
    _checks.check_range(fn, "alpha", alpha, 0.0, 1.0)
    a = _checks.hyperparameter(alpha, y.dtype)
    if where is None:
        k = 1
        for i in axes:
            k *= y.shape[i]
        # (1 - α) y + α / K, in the labels' dtype.
        return (1 - a) * y + a / jnp.asarray(k, y.dtype)
    m = _checks.elementwise_mask(fn, where, y.shape, x_name="labels")
    assert m is not None
    kept = jnp.sum(m, axis=axes, keepdims=True).astype(y.dtype)
    # Double where: a row with no class kept divides by 1 and returns 0.
    return jnp.where(m, (1 - a) * y + a / jnp.where(kept > 0, kept, 1), 0)
