"""Softmax cross-entropy and negative log-likelihood.

The heavy lifting is :func:`_softmax_stats`, a ``jax.custom_vjp`` that reads the logits
once per pass and returns only per-example statistics: the logsumexp over the classes
that remain (not masked by ``where``, not ``-inf``) and a few weighted sums of the
logits. Everything built on those ``[batch]`` statistics (label smoothing, class
weights, z-loss, masks, reductions) is ordinary JAX, so gradients with respect to the
hyperparameters come from autodiff. The backward pass recomputes ``softmax`` from the
saved logits and logsumexp in one fused elementwise pass; nothing of size
``[batch, C]`` is saved or upcast.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxent import _checks, _reduction
from jaxent._objects import LossObject, static_field

# --------------------------------------------------------------------------------------
# The custom_vjp core.


class _Stats(NamedTuple):
    """Per-example statistics over the remaining classes R (not masked, logit > -inf).

    ``lse``, ``target``, ``dot``, ``mass``, ``smooth_dot`` and ``smooth_mass`` are
    differentiable; ``remaining`` and ``lost`` are piecewise constant (no gradient).
    """

    lse: jax.Array  # log sum_{c in R} exp(x_c); -inf when R is empty
    target: jax.Array | None = None  # x_y for integer targets; -inf when y is not in R
    dot: jax.Array | None = None  # sum_{c in R} w_c t_c x_c for probability targets
    mass: jax.Array | None = None  # sum_{c in R} w_c t_c
    smooth_dot: jax.Array | None = None  # sum_{c in R} w_c x_c (label smoothing)
    smooth_mass: jax.Array | None = None  # sum_{c in R} w_c
    remaining: jax.Array | None = None  # |R|, the classes that get smoothing mass
    lost: jax.Array | None = None  # number of unmasked -inf classes with target mass w_c t_c != 0


# XLA:CPU runs a row reduction over up to 2**15 entries in one fast fused kernel and
# longer rows about 7x slower, so the forward pass reduces long rows as equal pieces.
_MAX_ROW = 2**15


class _Rows:
    """Views ``[..., C]`` arrays as ``[rows, C/k]`` pieces and combines per-piece results."""

    def __init__(self, shape: tuple[int, ...]):
        self.batch, c = shape[:-1], shape[-1]
        self.k = next((k for k in range(-(-c // _MAX_ROW), c // 1024 + 1) if c % k == 0), 1) if c > _MAX_ROW else 1
        self.width = c // self.k

    def view(self, a: jax.Array) -> jax.Array:
        """``[..., C]``, a per-class ``[1.., C]`` or a per-row ``[..., 1]`` array, as pieces."""
        if self.k == 1:
            return a
        if a.shape[-1] == 1:  # one value per row: repeat it for each piece
            return jnp.broadcast_to(a, a.shape[:-1] + (self.k,)).reshape(-1, 1)
        a = a.reshape(a.shape[:-1] + (self.k, self.width))
        return jnp.broadcast_to(a, self.batch + a.shape[-2:]).reshape(-1, self.width)

    def combine(self, partial: jax.Array, op) -> jax.Array:
        return partial if self.k == 1 else op(partial.reshape(self.batch + (self.k,)), axis=-1)


@jax.custom_jvp
def _row_sums(*terms: jax.Array) -> tuple[jax.Array, ...]:
    """Sums over the last axis of several same-shape arrays in one fused pass.

    One variadic reduce keeps XLA from materialising each (select-containing) term:
    on CPU a single-operand reduce is handed to a kernel that needs its input in
    memory, a float32 copy of the logits; a variadic reduce fuses its producers.
    """
    init = tuple(jnp.zeros((), t.dtype) for t in terms)
    return tuple(jax.lax.reduce(terms, init, lambda a, b: tuple(u + v for u, v in zip(a, b)), (terms[0].ndim - 1,)))


@_row_sums.defjvp
def _row_sums_jvp(primals, tangents):
    # Summation is linear: the tangent of a sum is the sum of the tangents.
    return _row_sums(*primals), tuple(jnp.sum(t, axis=-1) for t in tangents)


def _row_max(x: jax.Array, mask: jax.Array | None) -> jax.Array:
    """Row maximum over unmasked entries, in the input dtype (exact; no gradient: a shift)."""
    x = jax.lax.stop_gradient(x)
    if mask is None:
        return jnp.max(x, axis=-1)
    # Paired with a count so that the reduce is variadic and fuses the select (see _row_sums).
    init = (jnp.array(-jnp.inf, x.dtype), jnp.zeros((), x.dtype))
    terms = (jnp.where(mask, x, -jnp.inf), mask.astype(x.dtype))
    return jax.lax.reduce(terms, init, lambda a, b: (jnp.maximum(a[0], b[0]), a[1] + b[1]), (x.ndim - 1,))[0]


def _capped(x: jax.Array, cap: jax.Array | None) -> tuple[jax.Array, jax.Array | None]:
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


def _lse(m: jax.Array, s: jax.Array) -> jax.Array:
    # logsumexp(x) = m + log(sum(exp(x - m))); -inf for an empty row (s = 0).
    return jnp.where(s > 0, m + jnp.log(jnp.where(s > 0, s, 1)), -jnp.inf)


def _two_pass_lse(x: jax.Array) -> jax.Array:
    """logsumexp over the last axis: the row max, then one fused exp-sum."""
    rows, ct = _Rows(x.shape), _checks.compute_dtype(x.dtype)
    xv = rows.view(x)
    # A floor on the shift keeps an all -inf row at exp(-inf - floor) = 0 (no NaN).
    m = jnp.maximum(rows.combine(_row_max(xv, None), jnp.max).astype(ct), jnp.finfo(ct).min)
    s = rows.combine(jnp.sum(jnp.exp(xv.astype(ct) - rows.view(m[..., None])), axis=-1), jnp.sum)
    return _lse(m, s)


# Largest sum(exp(x - shift)) accepted from the one-pass logsumexp (see _stats_fwd).
_ONE_PASS_LIMIT = float(np.exp(60.0))


def _stats_fwd(cfg, x, cap, mask, labels, probs, weight):
    """``labels`` are indices into this device's classes; ``C`` (= x.shape[-1]) marks a
    target held by another device when the class axis is sharded over ``axis_name``."""
    smooth, axis_name = cfg
    ct = _checks.compute_dtype(x.dtype)
    rows = _Rows(x.shape)
    xv = rows.view(x)
    stats: dict[str, jax.Array] = {}
    if labels is not None:
        take = functools.partial(jnp.take_along_axis, indices=labels[..., None], axis=-1, mode="fill")
        xy, _ = _capped(take(_apart(x), fill_value=0)[..., 0], cap)
        ry = _remaining(xy, None if mask is None else take(mask, fill_value=False)[..., 0])
        ry = ry & (labels < x.shape[-1])
        stats["target"] = jnp.where(ry, xy, -jnp.inf)
    if axis_name is None and mask is None and cap is None and probs is None and not smooth:
        # Fast path, one pass: shift by the target logit instead of the row max. Any
        # shift at most 60 below the max neither overflows nor loses precision, and
        # s = sum(exp(x - x_y)) >= 1 says so: s <= e^60 implies max - x_y <= 60. Only a
        # batch with an example whose loss exceeds ~60 (or an -inf target) takes the
        # exact two-pass route. exp and sum fuse into one kernel (no select in it).
        s = rows.combine(jnp.sum(jnp.exp(xv.astype(ct) - rows.view(xy[..., None])), axis=-1), jnp.sum)
        lse = jax.lax.cond(jnp.all(s <= _ONE_PASS_LIMIT), lambda: xy + jnp.log(s), lambda: _two_pass_lse(_apart(x)))
        return _Stats(lse=lse, **stats), (x, cap, mask, labels, probs, weight, lse)

    mv = None if mask is None else rows.view(mask)
    m = rows.combine(_row_max(xv, mv), jnp.max).astype(ct)
    if axis_name is not None:
        m = jax.lax.pmax(m, axis_name)  # one collective: the global row max
    if cap is not None:
        # tanh is increasing: the max of the capped logits is the capped max.
        m = cap * jnp.tanh(m / cap)
    m = jnp.maximum(m, jnp.finfo(ct).min)
    mb = rows.view(m[..., None])
    xc, _ = _capped(xv, cap)
    r = _remaining(xc, mv)
    # Double where: masked entries never reach exp, so no inf/NaN leaks into gradients.
    terms = {"s": jnp.where(r, jnp.exp(jnp.where(r, xc, mb) - mb), 0), "remaining": r.astype(ct)}
    xr = jnp.where(r, xc, 0)
    w = None if weight is None else rows.view(_expand(weight, x.ndim))
    if probs is not None:
        t = rows.view(probs).astype(ct)
        wt = t if w is None else w * t
        terms.update(dot=wt * xr, mass=jnp.where(r, wt, 0))
        lost = (xc == -jnp.inf) if mv is None else (xc == -jnp.inf) & mv
        terms["lost"] = (lost & (wt != 0)).astype(ct)
    if smooth:
        terms["smooth_dot"] = xr if w is None else w * xr
        if w is not None:
            terms["smooth_mass"] = jnp.where(r, w, 0)
    sums = {name: rows.combine(v, jnp.sum) for name, v in zip(terms, _row_sums(*terms.values()))}
    if axis_name is not None:
        # The other collective: every per-example sum, and the target logit (held by one
        # device), packed into a single psum.
        if labels is not None:
            sums.update(target=jnp.where(ry, xy, 0), present=ry.astype(ct))
        packed = jax.lax.psum(jnp.stack(list(sums.values())), axis_name)
        sums = dict(zip(sums, packed))
        if labels is not None:
            present = sums.pop("present")
            stats["target"] = jnp.where(present > 0, sums.pop("target"), -jnp.inf)
    s = sums.pop("s")
    if smooth and w is None:
        sums["smooth_mass"] = sums["remaining"]
    if not smooth:
        del sums["remaining"]
    lse = _lse(m, s)
    return _Stats(lse=lse, **stats, **sums), (x, cap, mask, labels, probs, weight, lse)


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


def _apart(x: jax.Array) -> jax.Array:
    """``x`` behind an optimization barrier when it is half precision.

    XLA's CPU backend fuses the forward's ``sum(exp(float32(x) - m))`` into one kernel
    only if nothing else shares its ``float32(x)``; the backward pass and bf16 gathers
    (which XLA upcasts) would, and a shared upcast is materialised: an [N, C] float32
    copy. Reading ``x`` through a barrier there keeps the upcasts apart. No-op for f32.
    """
    return x if x.dtype == _checks.compute_dtype(x.dtype) else jax.lax.optimization_barrier(x)


def _dlogits(smooth, g, lse, x, cap, mask, weight, probs, target):
    """d loss / d logits on a block of classes ``x`` ([..., K]).

    ``target`` marks the entries that are the integer target (a boolean array, True
    for gathered targets) or is None. Returns (gradient in the compute dtype, per-entry
    d loss / d cap or None, the remaining-class mask).
    """
    xc, th = _capped(x, cap)
    r = _remaining(xc, mask)
    # d lse / dx_c = softmax_c over R; exp(x - lse) <= 1 on R and exp(-inf) = 0 off it.
    p = jnp.exp(xc - lse) if mask is None else jnp.where(r, jnp.exp(jnp.where(r, xc, lse) - lse), 0)
    d = g.lse[..., None] * p
    if target is not None:
        d = d + jnp.where(target & r, g.target[..., None], 0)
    if probs is not None:
        t = probs.astype(xc.dtype)
        d = d + jnp.where(r, g.dot[..., None] * (t if weight is None else weight * t), 0)
    if smooth:
        d = d + jnp.where(r, g.smooth_dot[..., None] * (1 if weight is None else weight), 0)
    if th is None:
        return d, None, r
    # d/dx c*tanh(x/c) = 1 - tanh^2;  d/dc c*tanh(x/c) = tanh - (x/c)(1 - tanh^2).
    xf = jnp.where(r, x.astype(xc.dtype), 0)
    dcap = jnp.where(r, d * (th - xf / cap * (1 - th * th)), 0)
    return d * (1 - th * th), dcap, r


def _stats_bwd(cfg, res, g):
    smooth, _ = cfg
    x, cap, mask, labels, probs, weight, lse = res
    ct = _checks.compute_dtype(x.dtype)
    x = _apart(x)
    w = _expand(weight, x.ndim)
    lse = jnp.where(lse > -jnp.inf, lse, 0)[..., None]
    scatter_targets = labels is not None and x.dtype == ct
    onehot = None
    if labels is not None and not scatter_targets:
        onehot = jax.lax.broadcasted_iota(labels.dtype, x.shape, x.ndim - 1) == labels[..., None]
    dx, dcap, r = _dlogits(smooth, g, lse, x, cap, mask, w, probs, onehot)
    dx = dx.astype(x.dtype)
    if scatter_targets:
        # float32/64: overwrite the target entries in place (XLA CPU runs a per-entry
        # one-hot select ~1.6x slower). Half precision keeps the select: XLA upcasts a
        # bf16 scatter through an [N, C] float32 copy. Both round the target entry once.
        idx = labels[..., None]
        take = functools.partial(jnp.take_along_axis, indices=idx, axis=-1, mode="clip")
        wy = None if weight is None or not smooth else weight[labels][..., None]
        my = None if mask is None else take(mask)
        dy, dcap_y, _ = _dlogits(smooth, g, lse, take(x), cap, my, wy, None, True)
        dx = put_last(dx, idx, dy.astype(x.dtype))
        if dcap is not None:
            # Swap each target entry's d/dcap for its value with the target term.
            dcap_y = dcap_y - _dlogits(smooth, g, lse, take(x), cap, my, wy, None, None)[1]
            dcap = jnp.sum(dcap) + jnp.sum(jnp.where(idx < x.shape[-1], dcap_y, 0))
    if dcap is not None and dcap.ndim:
        dcap = jnp.sum(dcap)
    dprobs = dweight = None
    xr = jnp.where(r, _capped(x, cap)[0], 0)
    if probs is not None:
        t = probs.astype(ct)
        # dot and mass are linear in t (and in w): d/dt_c = w_c (g_dot x_c + g_mass) on R.
        dt = jnp.where(r, g.dot[..., None] * xr + g.mass[..., None], 0)
        dprobs = (dt if w is None else w * dt).astype(probs.dtype)
        if w is not None:
            dweight = jnp.sum((t * dt).reshape(-1, x.shape[-1]), axis=0)
    if smooth and w is not None:
        ds = jnp.where(r, g.smooth_dot[..., None] * xr + g.smooth_mass[..., None], 0)
        ds = jnp.sum(ds.reshape(-1, x.shape[-1]), axis=0)
        dweight = ds if dweight is None else dweight + ds
    if weight is not None and dweight is None:
        dweight = jnp.zeros_like(weight)
    primals = (res[0], cap, mask, labels, probs, weight)
    return tuple(map(_reduction.sum_over_devices, (dx, dcap, None, None, dprobs, dweight), primals))


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _softmax_stats(cfg, x, cap, mask, labels, probs, weight) -> _Stats:
    return _stats_fwd(cfg, x, cap, mask, labels, probs, weight)[0]


_softmax_stats.defvjp(_stats_fwd, _stats_bwd)


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


def softmax_options(
    fn: str, dtype: Any, reduction: Any, ignore_index: Any, label_smoothing: Any, z_loss: Any, logit_softcap: Any
) -> SoftmaxOptions:
    _checks.check_reduction(fn, reduction)
    _checks.check_ignore_index(fn, ignore_index)
    _checks.check_range(fn, "label_smoothing", label_smoothing, 0.0, 1.0)
    _checks.check_range(fn, "z_loss", z_loss, 0.0)
    _checks.check_range(fn, "logit_softcap", logit_softcap, 0.0, low_open=True)
    ct = _checks.compute_dtype(dtype)
    return SoftmaxOptions(
        smooth=bool(_checks.concrete(label_smoothing) != 0),
        eps=_checks.hyperparameter(label_smoothing, ct),
        z_loss=None if _checks.concrete(z_loss) == 0 else _checks.hyperparameter(z_loss, ct),
        cap=None if logit_softcap is None else _checks.hyperparameter(logit_softcap, ct),
    )


def softmax_losses(stats: _Stats, kept: jax.Array, class_weight: jax.Array | None, opts: SoftmaxOptions) -> jax.Array:
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
    lse = _drop_inf(stats.lse)
    # -sum_c a_c log p_c = (sum_c a_c) lse - sum_c a_c x_c, with a = (1-ε) w t.
    losses = coef * lse - (1 - eps) * target_dot
    if opts.smooth:
        assert stats.smooth_dot is not None and stats.smooth_mass is not None and stats.remaining is not None
        # The uniform part ε/C' over the C' remaining classes: (ε/C') sum_c w_c (lse - x_c).
        losses = losses + eps / jnp.maximum(stats.remaining, 1) * (stats.smooth_mass * lse - stats.smooth_dot)
    if opts.z_loss is not None:
        losses = losses + opts.z_loss * lse * lse
    losses = jnp.where(kept & impossible, jnp.inf, losses)
    return jnp.where(kept, losses, 0)


# --------------------------------------------------------------------------------------
# Public functions.


def cross_entropy(
    logits: Any,
    targets: Any,
    *,
    axis: int | tuple[int, ...] = -1,
    weight: Any = None,
    ignore_index: int | None = -100,
    label_smoothing: Any = 0.0,
    z_loss: Any = 0.0,
    logit_softcap: Any = None,
    where: Any = None,
    reduction: str = "mean",
    axis_name: Any = None,
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
      ``checkify.user_checks`` an error naming the label). Reverse mode (``grad``,
      grad-of-grad, ``jax.hessian``) is supported through a ``jax.custom_vjp``; forward
      mode (``jax.jvp``, ``jax.jacfwd`` alone) raises a ``TypeError``: compose
      ``jax.nn.log_softmax`` by hand if you need it.

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
    if not lay.integer_targets and ignore_index is not None and ignore_index >= 0:
        raise ValueError(
            f"{fn}: ignore_index={ignore_index} needs integer targets, but targets are "
            "probabilities; drop examples with where= instead (or pass ignore_index=None)."
        )
    opts = softmax_options(fn, lay.x.dtype, reduction, ignore_index, label_smoothing, z_loss, logit_softcap)
    kept = _checks.kept_examples(lay, ignore_index, axis_name)
    cfg = (opts.smooth, axis_name)
    if not lay.integer_targets:
        stats = _softmax_stats(cfg, lay.x, opts.cap, lay.class_mask, None, lay.targets, lay.weight)
        return softmax_losses(stats, kept, None, opts), kept
    if axis_name is None:
        y, wy = _checks.class_labels(fn, lay, kept, ignore_index)
    else:
        y, wy = sharded_labels(
            fn, lay.targets, lay.num_classes, kept, ignore_index, lay.weight, axis_name, opts.eps.dtype
        )
    stats = _softmax_stats(cfg, lay.x, opts.cap, lay.class_mask, y, None, lay.weight)
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
    log_probs: Any,
    targets: Any,
    *,
    axis: int | tuple[int, ...] = -1,
    weight: Any = None,
    ignore_index: int | None = -100,
    where: Any = None,
    reduction: str = "mean",
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
    if not lay.integer_targets and ignore_index is not None and ignore_index >= 0:
        raise ValueError(
            f"{fn}: ignore_index={ignore_index} needs integer targets, but targets are "
            "probabilities; drop examples with where= instead (or pass ignore_index=None)."
        )
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
        dot, lost = _row_sums(wt * _drop_inf(lp), ((lp == -jnp.inf) & (wt != 0)).astype(ct))
        losses, impossible = -dot, lost != 0
        denominator = kept
    losses = jnp.where(kept & impossible, jnp.inf, losses)
    return _reduction.reduce_kept(losses, kept, reduction, denominator)


# --------------------------------------------------------------------------------------
# Loss objects.


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
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
    axis: int | tuple[int, ...] = static_field(-1)
    weight: Any = None
    ignore_index: int | None = static_field(-100)
    label_smoothing: Any = 0.0
    z_loss: Any = 0.0
    logit_softcap: Any = None
    reduction: str = static_field("mean")
    axis_name: str | None = static_field(None)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class NLLLoss(LossObject):
    """:func:`nll_loss` as a frozen dataclass pytree: ``NLLLoss(...)(log_probs, targets)``.

    Example:
      >>> import jax, jax.numpy as jnp, jaxent
      >>> jaxent.NLLLoss()(jax.nn.log_softmax(jnp.array([[1.2, -0.8, -0.5]])), jnp.array([0]))
      Array(0.2761, dtype=float32)
    """

    function: ClassVar = staticmethod(nll_loss)
    axis: int | tuple[int, ...] = static_field(-1)
    weight: Any = None
    ignore_index: int | None = static_field(-100)
    reduction: str = static_field("mean")
