"""Per-token statistics of the softmax: target log-probability, entropy, logsumexp, argmax.

What RL fine-tuning (GRPO, PPO) and z-loss logging read from a language model's output
distribution, at a sampling ``temperature``: on materialised logits
(:func:`log_softmax_stats`) and fused with the output projection, without the ``[N, V]``
logits (:func:`linear_log_softmax_stats`). Both come from the same statistics as the
cross-entropies (one row max, one sum of exponentials, the target logit, and the moment
``Σ_c e^(x_c - m)(x_c - m)`` for the entropy), so they are exact at large logits and
differentiable in forward and reverse mode with the loss's memory bounds.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxent import _checks
from jaxent._linear import LinearConfig, checked_operands, linear_stats
from jaxent._softmax import Stats, StatsConfig, softmax_stats


class LogSoftmaxStats(NamedTuple):
    """Per-token statistics of ``softmax(z)`` for ``z = logits / temperature`` (all ``[...]``).

    ``log_prob`` is ``log softmax(z)_y`` of the target (``None`` without targets; ``-inf``
    for a target of probability 0), ``entropy`` is ``-Σ_c p_c log p_c``, ``logsumexp`` is
    ``log Σ_c e^(z_c)`` and ``argmax`` the first index of the largest logit (int32; ``None``
    unless asked for). Every float field is float32 (float64 for float64 inputs) and
    differentiable.
    """

    log_prob: jax.Array | None
    entropy: jax.Array
    logsumexp: jax.Array
    argmax: jax.Array | None


def _options(fn: str, temperature: ArrayLike, logit_softcap: ArrayLike | None, ct) -> tuple:
    """(inverse temperature or None at 1, cap or None, checks for traced values)."""
    checks = [
        _checks.traced_range_check(fn, "temperature", temperature, 0.0, low_open=True),
        _checks.traced_range_check(fn, "logit_softcap", logit_softcap, 0.0, low_open=True),
    ]
    scale = None if _checks.concrete(temperature) == 1 else 1 / _checks.hyperparameter(temperature, ct)
    cap = None if logit_softcap is None else _checks.hyperparameter(logit_softcap, ct)
    return scale, cap, checks


def _assemble(stats: Stats, kept: jax.Array, wy: jax.Array | None, argmax: jax.Array | None, checks):
    """The public fields from the statistics (relative to the row max m); 0 where not kept."""
    log_sum = stats.log_sum
    empty = log_sum == -jnp.inf  # no remaining class
    safe = jnp.where(empty, 0, log_sum)
    # H = lse - Σ p_c z_c = log_sum - Σ_c e^(z_c - m)(z_c - m) / e^log_sum (both terms >= 0: no cancellation).
    assert stats.moment is not None
    entropy = jnp.where(empty, 0, safe - stats.moment * jnp.exp(-safe))
    lse = stats.shift + log_sum
    log_prob = None
    if stats.target is not None and wy is not None:
        # log p_y = (z_y - m) - log_sum; an out-of-range target (weight NaN) is NaN, never a wrong number.
        log_prob = jnp.where(empty, -jnp.inf, stats.target - safe)
        log_prob = jnp.where(kept, log_prob, 0) + 0 * wy
    out = LogSoftmaxStats(log_prob, jnp.where(kept, entropy, 0), jnp.where(kept, lse, 0), argmax)
    return jax.tree.map(lambda v: _checks.attach_checks(v, checks), out)


def log_softmax_stats(
    logits: ArrayLike,
    targets: ArrayLike | None = None,
    *,
    temperature: ArrayLike = 1.0,
    logit_softcap: ArrayLike | None = None,
    axis: int | tuple[int, ...] = -1,
    where: ArrayLike | None = None,
    argmax: bool = False,
) -> LogSoftmaxStats:
    r"""Per-example target log-probability, entropy, logsumexp and argmax of ``softmax(logits / T)``.

    With ``z = logits / temperature`` (after ``logit_softcap``, as in sampling), per example:

    .. math::
        \log p_y = z_y - \operatorname{logsumexp}(z), \qquad
        H = -\sum_c p_c \log p_c = \operatorname{logsumexp}(z) - \sum_c p_c z_c

    computed relative to the row max in one pass over the logits, without an ``[N, C]``
    ``log_softmax``, so that ``sum(advantage * log_prob) + beta * entropy`` trains (RL
    fine-tuning) with the memory of :func:`jaxent.cross_entropy`.

    Args:
      logits: ``[..., C, ...]`` floating logits (bf16 upcasts inside the reductions).
      targets: optional integer targets of the batch shape (``logits.shape`` without
        ``axis``): the sampled tokens whose log-probability is returned. A target outside
        ``[0, C)`` gives NaN.
      temperature: ``T > 0`` (may be traced, and gets gradients).
      logit_softcap: optional ``c > 0``: the logits are ``c·tanh(logits / c)`` first.
      axis: the class axis (or axes, flattened).
      where: optional boolean mask: of the batch shape (drops examples: every field 0,
        zero gradients even for NaN logits) or of ``logits.shape`` (drops classes: the
        distribution is over the remaining ones).
      argmax: also return the argmax (a static Python bool; a flat index over the class
        axes, of the raw logits among the remaining classes).

    Returns:
      :class:`jaxent.LogSoftmaxStats` of ``[batch]`` arrays.

    Example:
      >>> import jax, jax.numpy as jnp, jaxent
      >>> x = jnp.array([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
      >>> s = jaxent.log_softmax_stats(x, jnp.array([0, 2]), temperature=0.5, argmax=True)
      >>> bool(jnp.allclose(s.log_prob, jax.nn.log_softmax(x / 0.5)[jnp.arange(2), jnp.array([0, 2])]))
      True
      >>> [round(float(h), 4) for h in s.entropy], s.argmax.tolist()
      ([0.1069, 1.0986], [0, 0])
    """
    fn = "log_softmax_stats"
    _checks.check_static_bool(fn, "argmax", argmax)
    x = _checks.as_array(fn, "logits", logits)
    if targets is None:
        axes = _checks.canonical_axes(fn, axis, x.ndim, x.shape)
        labels = jnp.zeros(tuple(d for a, d in enumerate(x.shape) if a not in axes), jnp.int32)
    else:
        labels = _checks.target_array(fn, targets)
    lay = _checks.class_layout(fn, x, labels, axis=axis, where=where, allow_probabilities=False)
    ct = _checks.compute_dtype(lay.x.dtype)
    scale, cap, checks = _options(fn, temperature, logit_softcap, ct)
    kept = _checks.kept_examples(lay, None)
    rows = kept if _checks.drops_examples(lay, None) else None
    y = wy = None
    if targets is not None:
        y, wy = _checks.class_labels(fn, lay, kept, None)
    stats = softmax_stats(StatsConfig(False, moments=True), lay.x, cap, lay.class_mask, y, None, None, rows, scale)
    top = None
    if argmax:
        raw = jax.lax.stop_gradient(lay.x)
        top = jnp.argmax(raw if lay.class_mask is None else jnp.where(lay.class_mask, raw, -jnp.inf), axis=-1)
        top = top.astype(jnp.int32)
    return _assemble(stats, kept, wy, top, checks)


def linear_log_softmax_stats(
    inputs: ArrayLike,
    weight: ArrayLike,
    targets: ArrayLike | None = None,
    *,
    bias: ArrayLike | None = None,
    temperature: ArrayLike = 1.0,
    logit_softcap: ArrayLike | None = None,
    where: ArrayLike | None = None,
    argmax: bool = False,
    chunk_size: int | None = None,
) -> LogSoftmaxStats:
    r""":func:`log_softmax_stats` of ``inputs @ weight.T + bias``, without the ``[N, V]`` logits.

    Streams over vocabulary chunks like :func:`jaxent.linear_cross_entropy` (an online
    logsumexp, the target logit and the entropy's moment, rescaled to the running max), with
    one ``jax.custom_jvp`` rule whose tangent recomputes each chunk's logits: forward and
    reverse mode and higher orders work, and reverse-mode memory stays bounded by the chunk.
    The argmax rides on the same pass (no second matmul).

    Args:
      inputs: ``[..., D]`` floating hidden states.
      weight: ``[V, D]`` output embedding.
      targets: optional integer token ids ``inputs.shape[:-1]`` (a token outside
        ``[0, V)`` gives NaN).
      bias: optional ``[V]``; ``-inf`` entries remove vocabulary entries.
      temperature, logit_softcap, argmax: as in :func:`log_softmax_stats`.
      where: optional boolean token mask ``inputs.shape[:-1]`` (dropped tokens: every
        field 0, zero gradients).
      chunk_size: static vocabulary entries per chunk (as in ``linear_cross_entropy``).

    Returns:
      :class:`jaxent.LogSoftmaxStats` of ``inputs.shape[:-1]`` arrays.

    Example:
      >>> import jax, jax.numpy as jnp, jaxent
      >>> h = jax.random.normal(jax.random.key(0), (4, 8))
      >>> w = jax.random.normal(jax.random.key(1), (10, 8))
      >>> y = jnp.array([1, 2, 3, 4])
      >>> fused = jaxent.linear_log_softmax_stats(h, w, y, temperature=0.7, chunk_size=4)
      >>> full = jaxent.log_softmax_stats(h @ w.T, y, temperature=0.7)
      >>> bool(jnp.allclose(fused.log_prob, full.log_prob, atol=1e-5))
      True
      >>> bool(jnp.allclose(fused.entropy, full.entropy, atol=1e-5))
      True
    """
    fn = "linear_log_softmax_stats"
    _checks.check_static_bool(fn, "argmax", argmax)
    h, w, b = checked_operands(fn, inputs, weight, bias, k_dimensional=False)
    _checks.check_chunk_size(fn, chunk_size)
    batch, (vocab, dim) = h.shape[:-1], w.shape
    ct = _checks.compute_dtype(h.dtype)
    scale, cap, checks = _options(fn, temperature, logit_softcap, ct)
    mask = _checks.elementwise_mask(fn, where, batch, x_name="inputs.shape[:-1]")
    n = math.prod(batch)
    h2 = h.reshape(n, dim)
    kept = jnp.ones((n,), bool) if mask is None else mask.reshape(n)
    y = wy = None
    if targets is not None:
        t = _checks.target_array(fn, targets)
        if not jnp.issubdtype(t.dtype, jnp.integer):
            raise TypeError(
                f"{fn}: targets must be integer token ids, got dtype {t.dtype}; "
                "cast them with targets.astype(jnp.int32)."
            )
        _checks.check_same_shape(fn, "targets", t, "inputs.shape[:-1]", batch)
        y, wy = _checks.checked_labels(fn, t.reshape(n), vocab, kept, None, None, ct)
    cfg = LinearConfig(False, chunk_size, None, moments=True, argmax=argmax)
    stats = linear_stats(cfg, h2, w, b, y, None, None, cap, scale, kept)
    top = None if stats.argmax is None else jax.lax.stop_gradient(stats.argmax).astype(jnp.int32)
    out = _assemble(stats, kept, wy, top, checks)
    return jax.tree.map(lambda v: v.reshape(batch), out)
