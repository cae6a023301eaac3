"""Fused linear + softmax cross-entropy that never materialises the ``[N, V]`` logits.

``linear_cross_entropy(h, W, y)`` equals ``cross_entropy(h @ W.T + b, y)`` but streams
over vocabulary chunks inside a ``jax.custom_jvp``: the primal pass keeps an online
logsumexp, the target logit and (for label smoothing) the sum of the logits, one ``[N]``
vector each. The tangent map recomputes each chunk's logits with the same matmul and
is linear in the input tangents, each chunk under ``jax.checkpoint``: forward mode
evaluates it, and reverse mode transposes it into the fused backward pass, which forms
a chunk's ``d logits`` in float32 and contracts it at once into ``d inputs``
(accumulated in float32) and the chunk's rows of ``d weight``. Peak extra memory is a
few ``[N, chunk]`` float32 blocks, not ``N * V``.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

from jaxent import _backend, _checks, _reduction
from jaxent._objects import LossObject, loss_object, static_field
from jaxent._softmax import (
    GAP_SCALE,
    Stats,
    cap_partial,
    capped,
    log_of_sum,
    scaled_gaps,
    sharded_labels,
    softmax_losses,
    softmax_options,
)

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


def _remaining(bias, vocab, ct):
    """How many vocabulary entries get smoothing mass: those without a -inf bias."""
    return jnp.asarray(vocab if bias is None else jnp.sum(bias > -jnp.inf), ct)


def _primal_stats(cfg, h, w, bias, y, cap, rows) -> Stats:
    smooth, chunk_size, axis_name = cfg
    ct = _checks.compute_dtype(h.dtype)
    n = h.shape[0]
    tiny = jnp.finfo(ct).min

    def step(start, size, w, carry):
        m, s, target, sx, count = carry
        x, _ = capped(_logits(h, w, bias, start, size), cap)
        # Online logsumexp: rescale the running sum to the new running max.
        m_new = jnp.maximum(jnp.maximum(m, jnp.max(x, axis=-1)), tiny)
        s = s * jnp.exp(m - m_new) + jnp.sum(jnp.exp(x - m_new[:, None]), axis=-1)
        col = _local_targets(y, start, size)
        target = target + jnp.take_along_axis(x, col, axis=-1, mode="fill", fill_value=0)[:, 0]
        if smooth:
            # The running sum of (x_c - m)·g over the finite logits (softmax's scaled_gaps),
            # moved to the new max.
            finite = x > -jnp.inf
            sx = jnp.where(count > 0, sx + count * scaled_gaps(m, m_new), 0)
            sx = sx + jnp.sum(jnp.where(finite, scaled_gaps(x, m_new[:, None]), 0), axis=-1)
            count = count + jnp.sum(finite.astype(ct), axis=-1)
        return m_new, s, target, sx, count

    zeros = jnp.zeros((n,), ct)
    plan = _Plan(w.shape[0], n, chunk_size)
    init = _reduction.vary_like((jnp.full((n,), -jnp.inf, ct), zeros, zeros, zeros, zeros), h, w, bias, y, cap)
    m, s, target, sx, count = plan.fold(step, w, init)
    remaining = jnp.broadcast_to(_remaining(bias, w.shape[0], ct), (n,))
    if axis_name is not None:
        # Vocabulary sharded over devices: a pmax of the row maxima, then one packed psum
        # of the rescaled sums, the target logit (held by one device) and the smoothing sums.
        m_all = jax.lax.pmax(m, axis_name)
        sx = jnp.where(count > 0, sx + count * scaled_gaps(m, m_all), 0)
        s, target, sx, remaining = jax.lax.psum(jnp.stack([s * jnp.exp(m - m_all), target, sx, remaining]), axis_name)
        m = m_all
    # Relative to the row max m: x_y - m is exact, so the loss does not cancel at large logits.
    stats = Stats(shift=m, log_sum=log_of_sum(s), target=target - m)
    if smooth:
        stats = stats._replace(smooth_dot=sx, smooth_mass=remaining, remaining=remaining)
    return stats


def _live(t):
    """A tangent, or None when it is symbolically zero, absent or of an integer input (float0)."""
    return None if t is None or isinstance(t, SymbolicZero) or t.dtype == jax.dtypes.float0 else t


def _stats_tangent(cfg, primals, stats: Stats, tangents) -> Stats:
    """The tangent of :func:`_linear_stats`, linear in (d inputs, d weight, d bias, d cap).

    Per chunk: ``d logits = dh W_c^T + h dW_c^T + db_c`` (through the soft-cap chain), then
    ``d lse = sum softmax * d logits``, ``d target = d logits_y`` and ``d smooth = sum d logits``.
    Each chunk's body is under ``jax.checkpoint``: reverse mode transposes the scan into
    the fused backward pass (``d logits`` of a chunk contracted at once into ``d inputs``,
    the chunk's rows of ``d weight`` and ``d bias``), saving only the primals and the
    ``[N]`` logsumexp, never a chunk's logits.
    """
    smooth, chunk_size, axis_name = cfg
    h, w, bias, y, cap, rows = primals
    dh, dw, db, _, dcap, _ = map(_live, tangents)
    ct = _checks.compute_dtype(h.dtype)
    n, vocab = h.shape[0], w.shape[0]
    # Dropped tokens get exactly zero tangents and gradients, NaN inputs or not: their
    # inputs are replaced by 0 and their tangents selected away (never multiplied by 0).
    h = jnp.where(rows[:, None], h, 0)
    dh = None if dh is None else jnp.where(rows[:, None], dh, 0)
    shift = jnp.where(rows, stats.shift, 0)[:, None]
    log_sum = jnp.where(rows & (stats.log_sum > -jnp.inf), stats.log_sum, 0)[:, None]
    # Tangents of the inputs enter the matmuls in float32: reverse mode then accumulates
    # d inputs over the chunks in float32 (the transpose of this cast is the final one).
    dh32 = None if dh is None else dh.astype(ct)
    # Varying over the vocabulary axis before the loop, as each chunk's product with W is:
    # the transpose of that cast (the psum of d inputs and d weight) then runs once, not per chunk.
    dh32, dw = _reduction.vary_like((dh32, dw), h, w, bias, y)
    w_all = w

    def chunk(start, size, fresh):
        w = _backend.tied(w_all, start)
        raw = _logits(h, w, bias, start, size)
        x, th = capped(raw, cap)
        parts = []
        if dh32 is not None:
            wc = jax.lax.dynamic_slice_in_dim(w, start, size)
            parts.append(jax.lax.dot_general(dh32, wc, _CONTRACT_D, preferred_element_type=ct))
        if dw is not None:
            dwc = jax.lax.dynamic_slice_in_dim(dw, start, size)
            parts.append(jax.lax.dot_general(h, dwc, _CONTRACT_D, preferred_element_type=ct))
        if db is not None:
            dbc = jax.lax.dynamic_slice_in_dim(db, start, size)
            parts.append(jnp.broadcast_to(dbc.astype(ct)[None, :], (n, size)))
        finite = x > -jnp.inf
        dx = functools.reduce(jnp.add, parts) if parts else jnp.zeros((n, size), ct)
        if th is not None:
            dx = dx * (1 - th * th)  # d/dx c*tanh(x/c) = 1 - tanh^2
            if dcap is not None:
                dx = dx + jnp.where(finite, dcap * cap_partial(jnp.where(finite, raw, 0), th, cap), 0)
        dx = jnp.where(finite if fresh is None else finite & fresh[None, :], dx, 0)
        # d lse / d logits = softmax = exp((x - m) - log_sum); d target = the target's entry.
        out = [jnp.sum(jnp.exp((x - shift) - log_sum) * dx, axis=-1)]
        out.append(jnp.take_along_axis(dx, _local_targets(y, start, size), axis=-1, mode="fill", fill_value=0)[:, 0])
        if smooth:
            out.append(jnp.sum(dx, axis=-1) * GAP_SCALE)
        return tuple(out)

    plan = _Plan(vocab, n, chunk_size)
    body_chunk = jax.checkpoint(chunk, prevent_cse=False, static_argnums=(1,))

    def body(j, acc):
        start = j * plan.size
        if not plan.tail:
            return tuple(a + c for a, c in zip(acc, body_chunk(start, plan.size, None)))
        # With a tail the last chunk is the final ``size`` entries, overlapping the one
        # before it: the loop keeps one chunk shape, and the overlap is masked out.
        clamped = jnp.minimum(start, vocab - plan.size)
        fresh = jnp.arange(plan.size, dtype=start.dtype) >= start - clamped
        return tuple(a + c for a, c in zip(acc, body_chunk(clamped, plan.size, fresh)))

    zeros = jnp.zeros((n,), ct)
    live = [t for t in (dh, dw, db, dcap) if t is not None]
    acc = _reduction.vary_like((zeros,) * (3 if smooth else 2), h, w, bias, y, cap, *live)
    acc = jax.lax.fori_loop(0, plan.count + (plan.tail > 0), body, acc)
    if axis_name is not None:
        acc = jax.lax.psum(acc, axis_name)
    acc = tuple(jnp.where(rows, a, 0) for a in acc)
    out = stats._replace(
        shift=jnp.zeros_like(stats.shift),  # m is a constant for differentiation
        log_sum=acc[0],
        target=acc[1],
    )
    if smooth:
        zero = jnp.zeros_like(acc[0])  # the smoothing mass and the count do not move
        out = out._replace(smooth_dot=acc[2], smooth_mass=zero, remaining=zero)
    return out


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _linear_stats(cfg, h, w, bias, y, cap, rows) -> Stats:
    """:class:`Stats` (relative to the row max) of the logits ``h @ w.T + bias``, streamed over
    vocabulary chunks; tokens outside ``rows`` get zero tangents.

    Forward and reverse mode come from one ``jax.custom_jvp`` whose tangent map is linear
    and recomputes each chunk's logits (:func:`_stats_tangent`).
    """
    return _primal_stats(cfg, h, w, bias, y, cap, rows)


@functools.partial(_linear_stats.defjvp, symbolic_zeros=True)
def _linear_stats_jvp(cfg, primals, tangents):
    stats = _linear_stats(cfg, *primals)
    return stats, _stats_tangent(cfg, primals, stats, tangents)


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
      hyperparameters, in reverse and forward mode (``jax.jvp``, ``jax.jacfwd``,
      ``jax.linearize``, ``jax.hessian``) from one ``jax.custom_jvp`` rule; reverse-mode
      memory stays bounded by the chunk. Class weights are not supported (use
      ``cross_entropy``).

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
    t = _checks.target_array(fn, targets)
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
    stats = _linear_stats((opts.smooth, chunk_size, axis_name), h2, w, b, y, opts.cap, kept)
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
