"""Fused linear + softmax cross-entropy that never materialises the ``[N, V]`` logits.

``linear_cross_entropy(h, W, y)`` equals ``cross_entropy(h @ W.T + b, y)`` but streams
over vocabulary chunks inside a ``jax.custom_vjp``: the forward pass keeps an online
logsumexp, the target logit and (for label smoothing) the sum of the logits, one
``[N]`` vector each; the backward pass recomputes each chunk's logits with the same
matmul, forms that chunk's ``d logits`` in float32 and contracts it at once into
``d inputs`` (accumulated in float32) and the chunk's rows of ``d weight`` (complete
after one matmul over all tokens). Peak extra memory is one ``[N, chunk]`` float32
block, not ``N * V``.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jaxent import _backend, _checks, _reduction
from jaxent._objects import LossObject, loss_object, static_field
from jaxent._softmax import Stats, capped, log_of_sum, put_last, sharded_labels, softmax_losses, softmax_options

# Default chunk: about 2**22 float32 logits (16 MiB) per vocabulary chunk, and never
# fewer than 256 vocabulary entries, so that the matmuls stay large.
_CHUNK_ELEMENTS = 2**22
_MIN_CHUNK = 256

_CONTRACT_D = (((1,), (1,)), ((), ()))  # [N, D] x [chunk, D] -> [N, chunk]
_CONTRACT_CHUNK = (((1,), (0,)), ((), ()))  # [N, chunk] x [chunk, D] -> [N, D]
_CONTRACT_N = (((0,), (0,)), ((), ()))  # [N, chunk] x [N, D] -> [chunk, D]


class _Plan:
    """How the vocabulary is cut: ``count`` chunks of ``size`` entries, then a ``tail``
    chunk of the ``V - count * size`` remaining entries (none when ``size`` divides V)."""

    def __init__(self, vocab: int, tokens: int, chunk_size: int | None):
        target = min(chunk_size or max(_CHUNK_ELEMENTS // max(tokens, 1), _MIN_CHUNK), vocab)
        # Prefer a chunk that divides V (down to half the target): one compiled chunk shape.
        self.size = next((c for c in range(target, (target - 1) // 2, -1) if vocab % c == 0), target)
        self.count, self.tail = divmod(vocab, self.size)

    def fold(self, step, w: jax.Array, carry):
        """``carry = step(start, size, w, carry)`` over the chunks, the tail included.

        For 16-bit weights the loop carries ``w`` behind ``_backend.apart`` (an optimization
        barrier on XLA:CPU only): XLA:CPU
        upcasts a bf16/f16 matrix it slices inside a loop and would hoist that upcast out
        of the loop, a float32 copy of the whole ``[V, D]`` weight. Other dtypes are read
        from the closure (carrying them would copy them).
        """
        carried = w.dtype.itemsize == 2

        def body(j, c):
            c, wc = c
            wl = _backend.apart(wc) if carried else w
            return step(j * self.size, self.size, wl, c), wl if carried else None

        carry, wc = jax.lax.fori_loop(0, self.count, body, (carry, w if carried else None))
        if self.tail:
            carry = step(self.count * self.size, self.tail, _backend.apart(wc) if carried else w, carry)
        return carry


def _logits(h, w, bias, start, size):
    """Raw logits ``h @ W[start:start+size].T + b`` in float32: the same matmul in both passes."""
    ct = _checks.compute_dtype(h.dtype)
    x = jax.lax.dot_general(h, jax.lax.dynamic_slice_in_dim(w, start, size), _CONTRACT_D, preferred_element_type=ct)
    if bias is None:
        return x
    return x + jax.lax.dynamic_slice_in_dim(bias, start, size).astype(ct)[None, :]


def _local_targets(y, start, size):
    """Column ``[N, 1]`` of each token's target within the chunk, or ``size`` (dropped) if not in it."""
    col = y - start
    return jnp.where((col >= 0) & (col < size), col, size)[:, None]


def _chunk_grad(raw, col, lse, g_lse, g_smooth, g_target, cap):
    """d loss / d raw logits of a chunk ``[rows, size]``, and the chunk's d loss / d cap.

    ``col`` ``[rows, 1]`` is each row's target column in the chunk (``size``: none);
    ``lse``, ``g_lse``, ``g_smooth`` are ``[rows, 1]``, ``g_target`` ``[rows]``.
    """

    def entries(raw, target_term):
        x, th = capped(raw, cap)
        finite = x > -jnp.inf
        # d lse / dx = softmax; d target / dx = one-hot; d sum(x) / dx = 1 on finite entries.
        d = g_lse * jnp.exp(x - lse)
        if g_smooth is not None:
            d = d + jnp.where(finite, g_smooth, 0)
        d = d + target_term
        if th is None:
            return d, None
        # d/dx c*tanh(x/c) = 1 - tanh^2;  d/dc c*tanh(x/c) = tanh - (x/c)(1 - tanh^2).
        dcap = jnp.where(finite, d * (th - jnp.where(finite, raw, 0) / cap * (1 - th * th)), 0)
        return d * (1 - th * th), dcap

    d, dcap = entries(raw, 0)
    # The target entries, recomputed from their logits and written in place in float32
    # (no [rows, size] one-hot select, and the softmax pass stays one fused loop).
    raw_t = jnp.take_along_axis(raw, col, axis=-1, mode="fill", fill_value=0)
    d_t, dcap_t = entries(raw_t, g_target[:, None])
    d = put_last(d, col, d_t)
    if dcap is None:
        return d, None
    # The target entries' d/dcap, swapped for their value with the target term.
    swap = jnp.where(col < raw.shape[-1], dcap_t - entries(raw_t, 0)[1], 0)
    return d, jnp.sum(dcap) + jnp.sum(swap)


def _remaining(bias, vocab, ct):
    """How many vocabulary entries get smoothing mass: those without a -inf bias."""
    return jnp.asarray(vocab if bias is None else jnp.sum(bias > -jnp.inf), ct)


def _stats_fwd(cfg, h, w, bias, y, cap):
    smooth, chunk_size, axis_name = cfg
    ct = _checks.compute_dtype(h.dtype)
    n = h.shape[0]
    tiny = jnp.finfo(ct).min

    def step(start, size, w, carry):
        m, s, target, sx = carry
        x, _ = capped(_logits(h, w, bias, start, size), cap)
        # Online logsumexp: rescale the running sum to the new running max.
        m_new = jnp.maximum(jnp.maximum(m, jnp.max(x, axis=-1)), tiny)
        s = s * jnp.exp(m - m_new) + jnp.sum(jnp.exp(x - m_new[:, None]), axis=-1)
        col = _local_targets(y, start, size)
        target = target + jnp.take_along_axis(x, col, axis=-1, mode="fill", fill_value=0)[:, 0]
        if smooth:
            sx = sx + jnp.sum(jnp.where(x > -jnp.inf, x, 0), axis=-1)
        return m_new, s, target, sx

    zeros = jnp.zeros((n,), ct)
    plan = _Plan(w.shape[0], n, chunk_size)
    init = _reduction.vary_like((jnp.full((n,), -jnp.inf, ct), zeros, zeros, zeros), h, w, bias, y, cap)
    m, s, target, sx = plan.fold(step, w, init)
    remaining = jnp.broadcast_to(_remaining(bias, w.shape[0], ct), (n,))
    if axis_name is not None:
        # Vocabulary sharded over devices: a pmax of the row maxima, then one packed psum
        # of the rescaled sums, the target logit (held by one device) and the smoothing sums.
        m_all = jax.lax.pmax(m, axis_name)
        s, target, sx, remaining = jax.lax.psum(jnp.stack([s * jnp.exp(m - m_all), target, sx, remaining]), axis_name)
        m = m_all
    lse = m + log_of_sum(s)
    # Absolute values (shift 0): the vocabulary is streamed, so no single row max is known up front.
    stats = Stats(shift=jnp.zeros_like(lse), log_sum=lse, target=target)
    if smooth:
        stats = stats._replace(smooth_dot=sx, smooth_mass=remaining, remaining=remaining)
    return stats, (h, w, bias, y, cap, lse)


def _stats_bwd(cfg, res, g):
    smooth, chunk_size, _ = cfg
    h, w, bias, y, cap, lse = res
    ct = _checks.compute_dtype(h.dtype)
    lse = jnp.where(lse > -jnp.inf, lse, 0)[:, None]
    g_smooth = g.smooth_dot[:, None] if smooth else None

    def step(start, size, w, carry):
        dh, dw, db, dcap = carry
        raw = _logits(h, w, bias, start, size)
        d, dcap_j = _chunk_grad(raw, _local_targets(y, start, size), lse, g.log_sum[:, None], g_smooth, g.target, cap)
        dl = d.astype(h.dtype)  # matmul operands in the input dtype, float32 accumulation
        wj = jax.lax.dynamic_slice_in_dim(w, start, size)
        dh = dh + jax.lax.dot_general(dl, wj, _CONTRACT_CHUNK, preferred_element_type=ct)
        # The chunk's rows of d weight are complete after one matmul over all tokens.
        dwj = jax.lax.dot_general(dl, h, _CONTRACT_N, preferred_element_type=ct, out_sharding=replicated)
        dw = jax.lax.dynamic_update_slice_in_dim(dw, dwj.astype(dw.dtype), start, 0)
        if db is not None:
            db = jax.lax.dynamic_update_slice_in_dim(db, jnp.sum(d, axis=0).astype(db.dtype), start, 0)
        return dh, dw, db, None if dcap is None else dcap + dcap_j

    replicated = _reduction.replicated_out(h)  # d weight's sharding under explicit sharding
    init = (
        jnp.zeros(h.shape, ct),
        jnp.zeros(w.shape, w.dtype, out_sharding=replicated),
        None if bias is None else jnp.zeros(bias.shape, bias.dtype, out_sharding=replicated),
        None if cap is None else jnp.zeros((), ct),
    )
    init = _reduction.vary_like(init, h, w, bias, y, cap, g)
    dh, dw, db, dcap = _Plan(w.shape[0], h.shape[0], chunk_size).fold(step, w, init)
    # The inputs (and the cap) are shared by every device's slice of the vocabulary: one
    # psum of d inputs over the vocabulary axis (and of d weight over a batch axis).
    grads = (dh.astype(h.dtype), dw, db, None, dcap)
    return tuple(map(_reduction.sum_over_devices, grads, (h, w, bias, y, cap)))


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _linear_stats(cfg, h, w, bias, y, cap) -> Stats:
    return _stats_fwd(cfg, h, w, bias, y, cap)[0]


_linear_stats.defvjp(_stats_fwd, _stats_bwd)


def linear_cross_entropy(
    inputs: Any,
    weight: Any,
    targets: Any,
    *,
    bias: Any = None,
    ignore_index: int | None = -100,
    label_smoothing: Any = 0.0,
    z_loss: Any = 0.0,
    logit_softcap: Any = None,
    where: Any = None,
    reduction: str = "mean",
    chunk_size: int | None = None,
    axis_name: Any = None,
) -> jax.Array:
    r"""Fused ``inputs @ weight.T + bias`` and softmax cross-entropy, without the logits.

    Same value and gradients as ``cross_entropy(inputs @ weight.T + bias, targets, ...)``
    (its reference, to float32 precision), but the ``[N, V]`` logits and their gradient
    are never materialised: the loss streams over chunks of the vocabulary with an
    online logsumexp, and the backward pass recomputes each chunk's logits (``8·N·D·V``
    flops instead of ``6·N·D·V``) to contract them at once into the gradients.

    .. math::
        \ell_n = -\sum_c q_{n,c} \log \operatorname{softmax}(W h_n + b)_c
                 + z \,(\operatorname{logsumexp}(W h_n + b))^2

    Args:
      inputs: ``[..., D]`` floating hidden states (bf16 stays bf16 in the matmuls, with
        float32 accumulation).
      weight: ``[V, D]`` output embedding (PyTorch's ``nn.Linear(D, V).weight`` layout).
      targets: integer token ids of shape ``inputs.shape[:-1]``.
      bias: optional ``[V]``; ``-inf`` entries remove vocabulary entries (probability 0,
        no smoothing mass; a target on one gives ``+inf``).
      ignore_index, label_smoothing, z_loss, logit_softcap, reduction: as in
        :func:`jaxent.cross_entropy` (``label_smoothing``, ``z_loss`` and
        ``logit_softcap`` may be traced).
      where: optional boolean mask of shape ``inputs.shape[:-1]`` (drops tokens). To
        remove vocabulary entries use ``bias=-inf`` there.
      chunk_size: static number of vocabulary entries per chunk. Temporary memory is
        about two ``[N, chunk_size]`` float32 blocks; the default keeps one block near
        16 MiB (and at least 256 entries). V need not be a multiple of it.
      axis_name: inside ``jax.shard_map``, the mesh axis over which the vocabulary is
        sharded (Megatron-style): ``weight`` (and ``bias``) hold this device's contiguous
        ``[V/P, D]`` slice, in device order; ``targets`` stay global ids. Only a ``pmax``
        and one packed ``psum`` of per-token values cross devices in the forward pass,
        and one ``psum`` of ``d inputs`` in the backward; ``d weight`` stays sharded.

    Returns:
      The loss in float32 (float64 for float64 inputs): shape ``inputs.shape[:-1]`` for
      ``reduction="none"``, a scalar otherwise.

    Notes:
      Gradients flow to ``inputs``, ``weight``, ``bias`` and the traced
      hyperparameters. Reverse mode only (``jax.custom_vjp``): ``jax.jvp`` raises a
      ``TypeError``. Class weights are not supported (use ``cross_entropy``).

    Example:
      >>> import jax, jax.numpy as jnp, jaxent
      >>> h = jax.random.normal(jax.random.key(0), (4, 8))
      >>> w = jax.random.normal(jax.random.key(1), (10, 8))
      >>> y = jnp.array([1, 2, 3, -100])
      >>> fused = jaxent.linear_cross_entropy(h, w, y, chunk_size=4)
      >>> bool(jnp.allclose(fused, jaxent.cross_entropy(h @ w.T, y), rtol=1e-6))
      True
    """
    losses, denominator = linear_parts(
        inputs,
        weight,
        targets,
        bias=bias,
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        z_loss=z_loss,
        logit_softcap=logit_softcap,
        where=where,
        reduction=reduction,
        chunk_size=chunk_size,
        axis_name=axis_name,
    )
    return _reduction.reduce(losses, reduction, denominator)


def linear_parts(
    inputs,
    weight,
    targets,
    *,
    bias,
    ignore_index,
    label_smoothing,
    z_loss,
    logit_softcap,
    where,
    reduction,
    chunk_size,
    axis_name,
) -> tuple[jax.Array, jax.Array]:
    """(per-token losses, per-token weights of the "mean" denominator) of :func:`linear_cross_entropy`."""
    fn = "linear_cross_entropy"
    h = _checks.as_array(fn, "inputs", inputs)
    w = _checks.as_array(fn, "weight", weight)
    _checks.check_floating(fn, "inputs", h)
    _checks.check_floating(fn, "weight", w)
    if h.ndim < 1 or w.ndim != 2 or w.shape[1] != h.shape[-1]:
        raise ValueError(
            f"{fn}: weight has shape {w.shape} but inputs has shape {h.shape}; weight must be "
            f"[V, D] with D = inputs.shape[-1] = {h.shape[-1] if h.ndim else '?'} (transpose a [D, V] matrix)."
        )
    vocab, dim = w.shape
    batch = h.shape[:-1]
    t = _checks.as_array(fn, "targets", targets)
    if not jnp.issubdtype(t.dtype, jnp.integer):
        raise TypeError(
            f"{fn}: targets must be integer token ids, got dtype {t.dtype}; cast with targets.astype(jnp.int32)."
        )
    _checks.check_same_shape(fn, "targets", t, "inputs.shape[:-1]", batch)
    b = None
    if bias is not None:
        b = _checks.as_array(fn, "bias", bias)
        _checks.check_floating(fn, "bias", b)
        if b.shape != (vocab,):
            raise ValueError(
                f"{fn}: bias has shape {b.shape} but weight has {vocab} rows; pass bias of shape ({vocab},)."
            )
    mask = _checks.elementwise_mask(fn, where, batch, x_name="inputs.shape[:-1]")
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size <= 0):
        raise ValueError(f"{fn}: chunk_size must be a positive Python int or None, got {chunk_size!r}.")
    opts = softmax_options(fn, h.dtype, reduction, ignore_index, label_smoothing, z_loss, logit_softcap)
    ct = _checks.compute_dtype(h.dtype)
    n = int(np.prod(batch))
    h2, t2 = h.reshape(n, dim), t.reshape(n)
    kept = jnp.ones((n,), bool) if mask is None else mask.reshape(n)
    if ignore_index is not None:
        kept = kept & (t2 != ignore_index)
    if axis_name is None:
        y, wy = _checks.checked_labels(fn, t2, vocab, kept, ignore_index, None, ct)
    else:
        y, wy = sharded_labels(fn, t2, vocab, kept, ignore_index, None, axis_name, ct)
    stats = _linear_stats((opts.smooth, chunk_size, axis_name), h2, w, b, y, opts.cap)
    return softmax_losses(stats, kept, wy, opts).reshape(batch), wy.reshape(batch)


@loss_object
class LinearCrossEntropyLoss(LossObject):
    """:func:`linear_cross_entropy` as a frozen dataclass pytree: ``loss(inputs, weight, targets)``.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> loss = jaxent.LinearCrossEntropyLoss(label_smoothing=0.1)
      >>> loss(jnp.ones((2, 3)), jnp.eye(4, 3), jnp.array([0, 3]))
      Array(1.6892..., dtype=float32)
    """

    function: ClassVar = staticmethod(linear_cross_entropy)
    bias: Any = None
    ignore_index: int | None = static_field(default=-100)
    label_smoothing: Any = 0.0
    z_loss: Any = 0.0
    logit_softcap: Any = None
    reduction: str = static_field(default="mean")
    chunk_size: int | None = static_field(default=None)
    axis_name: str | None = static_field(default=None)
