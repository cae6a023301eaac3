"""Fused linear + softmax cross-entropy that never materialises the ``[N, V]`` logits.

``linear_cross_entropy(h, W, y)`` equals ``cross_entropy(h @ W.T + b, y)`` but streams
over vocabulary chunks inside a ``jax.custom_jvp``: the primal pass keeps an online
logsumexp, the target logit and (for label smoothing) the sum of the logits, one ``[N]``
vector each. The tangent map recomputes each chunk's logits with the same matmul and
is linear in the input tangents, each chunk under ``jax.checkpoint``: forward mode
evaluates it, and reverse mode transposes it into the fused backward pass, which forms
a chunk's ``d logits`` in float32 and contracts it at once into ``d inputs``
(accumulated in float32) and the chunk's rows of ``d weight``. Peak extra memory is a
few ``[N, chunk]`` float32 blocks, not ``N * V``. That is the vocabulary schedule.

The token schedule (:func:`token_loss_sum`) forms whole ``[B, V]`` rows of logits for a
block of tokens within a memory budget and, when differentiated, the block's gradients
from them at once (``6·N·D·V`` flops against ``8·N·D·V``); :func:`token_config` plans
it and picks the schedule.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable
from typing import ClassVar, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero
from jax.typing import ArrayLike

from jaxent import _backend, _checks, _reduction
from jaxent._objects import LossObject, loss_object, static_field
from jaxent._softmax import (
    GAP_SCALE,
    SoftmaxOptions,
    Stats,
    StatsConfig,
    cap_partial,
    capped,
    log_of_sum,
    scaled,
    scaled_gaps,
    scaled_tangent,
    sharded_labels,
    softmax_losses,
    softmax_options,
    softmax_stats,
)

# Default chunk: about 2**22 float32 logits (16 MiB) per vocabulary chunk, and never
# fewer than 256 vocabulary entries, so that the matmuls stay large.
_CHUNK_ELEMENTS = 2**22
_MIN_CHUNK = 256


def _contract(w: jax.Array) -> tuple:
    """``[N, D] x [chunk, *K, D] -> [N, chunk, *K]``: the hidden size is ``w``'s last axis."""
    return (((1,), (w.ndim - 1,)), ((), ()))


def _classes(v: jax.Array, ndim: int) -> jax.Array:
    """A per-class ``[chunk]`` vector as ``[1, chunk, 1, ...]`` against ``[N, chunk, *K]`` logits."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


class _Plan:
    """How the vocabulary is cut: ``count`` chunks of ``size`` entries, then a ``tail``
    chunk of the ``V - count * size`` remaining entries (none when ``size`` divides V)."""

    def __init__(self, vocab: int, tokens: int, chunk_size: int | None, elements: int = _CHUNK_ELEMENTS):
        target = min(chunk_size or max(elements // max(tokens, 1), _MIN_CHUNK), vocab)
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


class LinearConfig(NamedTuple):
    """The static part of :func:`linear_stats`."""

    smooth: bool  # the label-smoothing sums
    chunk_size: int | None  # vocabulary entries per chunk (None: the default plan)
    axis_name: Hashable | None = None  # the mesh axis the vocabulary is sharded over
    moments: bool = False  # the entropy's moment sum
    argmax: bool = False  # the argmax of the raw logits


def _logits(h, w, bias, start, size):
    """Raw logits ``[N, size, *K]`` of ``h @ W[start:start+size].T + b`` in float32: the same
    matmul in both passes."""
    ct = _checks.compute_dtype(h.dtype)
    wc = jax.lax.dynamic_slice_in_dim(w, start, size)
    x = jax.lax.dot_general(h, wc, _contract(w), preferred_element_type=ct)
    if bias is None:
        return x
    return x + jax.lax.dynamic_slice_in_dim(bias, start, size).astype(ct)[None]


def _local_targets(y, start, size):
    """Column ``[N, 1, *K]`` of each target within the chunk, or ``size`` (dropped) if not in it."""
    col = y - start
    return jnp.where((col >= 0) & (col < size), col, size)[:, None]


def _take(x, y, start, size):
    """Each target's entry of a chunk ``[N, size, *K]`` (0 when the target is in another chunk)."""
    return jnp.take_along_axis(x, _local_targets(y, start, size), axis=1, mode="fill", fill_value=0)[:, 0]


class _Carry(NamedTuple):
    """The running per-token sums of the primal pass over the vocabulary chunks (None: not computed).

    The fields are in alphabetical order: the loop-carry order that XLA:CPU was measured to
    assign the least temporary memory to (other orders cost up to 2 MB more per chunk).
    """

    argmax: jax.Array | None = None  # the index of the largest raw logit so far (as a float)
    counted: jax.Array | None = None  # sum w over the finite logits, label smoothing
    dot: jax.Array | None = None  # sum w q (x - m), probability targets
    lost: jax.Array | None = None  # target mass on -inf logits
    m: jax.Array | None = None  # the running max of the logits (-inf before the first chunk)
    mass: jax.Array | None = None  # sum w q
    moment: jax.Array | None = None  # sum e^(x - m)(x - m), the entropy
    s: jax.Array | None = None  # sum e^(x - m)
    sx: jax.Array | None = None  # sum w (x - m)·g, label smoothing
    target: jax.Array | None = None  # the target's logit (0 until its chunk)
    top: jax.Array | None = None  # the largest raw logit so far


def _primal_stats(cfg: LinearConfig, h, w, bias, y, q, cw, cap, scale, rows) -> Stats:
    smooth, chunk_size, axis_name = cfg.smooth, cfg.chunk_size, cfg.axis_name
    ct = _checks.compute_dtype(h.dtype)
    shape = (h.shape[0],) + w.shape[1:-1]
    tiny = jnp.finfo(ct).min

    def step(start, size, w, c: _Carry) -> _Carry:
        raw = _logits(h, w, bias, start, size)
        x, _ = capped(raw, cap)
        x = scaled(x, scale)
        m, total = c.m, c.s
        assert m is not None and total is not None
        # Online logsumexp: rescale the running sum to the new running max.
        m_new = jnp.maximum(jnp.maximum(m, jnp.max(x, axis=1)), tiny)
        mb = m_new[:, None]
        out = c._replace(m=m_new, s=total * jnp.exp(m - m_new) + jnp.sum(jnp.exp(x - mb), axis=1))
        seen = m > -jnp.inf  # an earlier chunk was summed (m starts at -inf, then is floored at tiny)
        if c.target is not None:
            out = out._replace(target=c.target + _take(x, y, start, size))
        finite = x > -jnp.inf
        wc = None if cw is None else _classes(jax.lax.dynamic_slice_in_dim(cw, start, size), x.ndim)
        if c.sx is not None and c.counted is not None:
            # The running sum of w_c (x_c - m)·g over the finite logits (softmax's scaled_gaps),
            # moved to the new max: sum w (x - m_new) g = sum w (x - m) g + (sum w)(m - m_new) g.
            gaps = jnp.where(finite, scaled_gaps(x, mb), 0)
            sx = jnp.where(seen, c.sx + c.counted * scaled_gaps(m, m_new), 0)
            out = out._replace(
                sx=sx + jnp.sum(gaps if wc is None else wc * gaps, axis=1),
                counted=c.counted + jnp.sum(finite.astype(ct) if wc is None else jnp.where(finite, wc, 0), axis=1),
            )
        if c.dot is not None and c.mass is not None and c.lost is not None:
            qc = jax.lax.dynamic_slice_in_dim(q, start, size, axis=1).astype(ct)
            wt = qc if wc is None else wc * qc
            gap = x - mb
            # dot = sum w q (x - m) moves to the new max like the smoothing sum. A gap that
            # overflows to -inf is clamped (a zero target adds 0, not 0 * -inf = NaN); target mass
            # on a -inf logit (or an overflowing gap) is lost: +inf loss, as in softmax_stats.
            dot = jnp.where(seen, c.dot + c.mass * jnp.maximum(m - m_new, tiny), 0)
            out = out._replace(
                dot=dot + jnp.sum(jnp.where(finite, wt * jnp.maximum(gap, tiny), 0), axis=1),
                mass=c.mass + jnp.sum(jnp.where(finite, wt, 0), axis=1),
                lost=c.lost + jnp.sum(((gap == -jnp.inf) & (wt != 0)).astype(ct), axis=1),
            )
        if c.moment is not None:
            # sum e^(x-m')(x-m') = e^(m-m')(sum e^(x-m)(x-m) + (m - m') sum e^(x-m)) moves the running
            # moment to the new max; gaps are clamped (e^-max·(-max) = 0, never 0·-inf).
            moved = jnp.exp(m - m_new) * (c.moment + jnp.maximum(m - m_new, tiny) * total)
            g = jnp.maximum(x - mb, tiny)
            out = out._replace(moment=jnp.where(seen, moved, 0) + jnp.sum(jnp.where(finite, jnp.exp(g) * g, 0), axis=1))
        if c.top is not None and c.argmax is not None:
            # The first index of the largest raw logit: a later chunk wins only with a larger one.
            top = jnp.max(raw, axis=1)
            better = top > c.top
            index = (jnp.argmax(raw, axis=1) + start).astype(ct)
            out = out._replace(top=jnp.where(better, top, c.top), argmax=jnp.where(better, index, c.argmax))
        return out

    zeros = jnp.zeros(shape, ct)
    lowest = jnp.full(shape, -jnp.inf, ct)
    on = lambda flag: zeros if flag else None
    init = _Carry(
        m=lowest,
        s=zeros,
        target=on(y is not None),
        sx=on(smooth),
        counted=on(smooth),
        dot=on(q is not None),
        mass=on(q is not None),
        lost=on(q is not None),
        moment=on(cfg.moments),
        top=lowest if cfg.argmax else None,
        argmax=on(cfg.argmax),
    )
    init = _reduction.vary_like(init, h, w, bias, y, q, cw, cap, scale)
    plan = _Plan(w.shape[0], int(np.prod(shape)), chunk_size)
    c = plan.fold(step, w, init)
    m = c.m
    assert m is not None and c.s is not None
    if axis_name is not None:
        # Vocabulary sharded over devices: a pmax of the row maxima, then one packed psum
        # of the rescaled sums, the target logit (held by one device) and the other sums.
        m_all = jax.lax.pmax(m, axis_name)
        c = c._replace(s=c.s * jnp.exp(m - m_all))
        if c.sx is not None and c.counted is not None:
            c = c._replace(sx=jnp.where(m > -jnp.inf, c.sx + c.counted * scaled_gaps(m, m_all), 0))
        if c.dot is not None and c.mass is not None:
            c = c._replace(dot=jnp.where(m > -jnp.inf, c.dot + c.mass * jnp.maximum(m - m_all, tiny), 0))
        names = [k for k in ("s", "target", "sx", "dot", "mass", "lost") if getattr(c, k) is not None]
        summed = jax.lax.psum(jnp.stack([getattr(c, k) for k in names]), axis_name)
        c = c._replace(**dict(zip(names, summed)))
        m = m_all
    # Relative to the row max m: x_y - m is exact, so the loss does not cancel at large logits.
    return Stats(
        shift=m,
        log_sum=log_of_sum(c.s),
        target=None if c.target is None else c.target - m,
        smooth_dot=c.sx,
        dot=c.dot,
        mass=c.mass,
        lost=c.lost,
        moment=c.moment,
        argmax=c.argmax,
    )


def _live(t):
    """A tangent, or None when it is symbolically zero, absent or of an integer input (float0)."""
    return None if t is None or isinstance(t, SymbolicZero) or t.dtype == jax.dtypes.float0 else t


def _stats_tangent(cfg, primals, stats: Stats, tangents) -> Stats:
    """The tangent of :func:`linear_stats`, linear in (d inputs, d weight, d bias, d probs,
    d class weight, d cap).

    Per chunk: ``d logits = dh W_c^T + h dW_c^T + db_c`` (through the soft-cap chain), then
    ``d lse = sum softmax * d logits``, ``d target = d logits_y``,
    ``d smooth = sum w d logits + sum dw (x - m)``, and for probability targets
    ``d dot = sum w q d logits + sum d(w q) (x - m)`` and ``d mass = sum d(w q)``.
    Each chunk's body is under ``jax.checkpoint``: reverse mode transposes the scan into
    the fused backward pass (``d logits`` of a chunk contracted at once into ``d inputs``,
    the chunk's rows of ``d weight`` and ``d bias``, its columns of ``d probs``), saving
    only the primals and the ``[N]`` statistics, never a chunk's logits.
    """
    smooth, chunk_size, axis_name = cfg.smooth, cfg.chunk_size, cfg.axis_name
    h, w, bias, y, q, cw, cap, scale, rows = primals
    dh, dw, db, _, dq, dcw, dcap, dscale, _ = map(_live, tangents)
    ct = _checks.compute_dtype(h.dtype)
    n, vocab = h.shape[0], w.shape[0]
    shape = (n,) + w.shape[1:-1]
    tiny = jnp.finfo(ct).min
    # Dropped tokens get exactly zero tangents and gradients, NaN inputs or not: their
    # inputs are replaced by 0 and their tangents selected away (never multiplied by 0).
    # (In the K-dimensional form a token's input is dropped when all its positions are.)
    token_rows = rows if rows.ndim == 1 else jnp.any(rows, axis=tuple(range(1, rows.ndim)))
    h = jnp.where(token_rows[:, None], h, 0)
    dh = None if dh is None else jnp.where(token_rows[:, None], dh, 0)
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
            parts.append(jax.lax.dot_general(dh32, wc, _contract(w), preferred_element_type=ct))
        if dw is not None:
            dwc = jax.lax.dynamic_slice_in_dim(dw, start, size)
            parts.append(jax.lax.dot_general(h, dwc, _contract(dw), preferred_element_type=ct))
        if db is not None:
            dbc = jax.lax.dynamic_slice_in_dim(db, start, size)
            parts.append(jnp.broadcast_to(dbc.astype(ct)[None], x.shape))
        finite = x > -jnp.inf
        dx = functools.reduce(jnp.add, parts) if parts else jnp.zeros(x.shape, ct)
        if th is not None:
            dx = dx * (1 - th * th)  # d/dx c*tanh(x/c) = 1 - tanh^2
            if dcap is not None:
                dx = dx + jnp.where(finite, dcap * cap_partial(jnp.where(finite, raw, 0), th, cap), 0)
        dx = scaled_tangent(dx, x, scale, dscale, finite)
        x = scaled(x, scale)
        r = finite if fresh is None else finite & _classes(fresh, x.ndim)  # the chunk's own finite logits
        dx = jnp.where(r, dx, 0)
        # d lse / d logits = softmax = exp((x - m) - log_sum); d target = the target's entry.
        out = [jnp.sum(jnp.exp((x - shift) - log_sum) * dx, axis=1)]
        if y is not None:
            out.append(_take(dx, y, start, size))
        per_class = lambda v: None if v is None else _classes(jax.lax.dynamic_slice_in_dim(v, start, size), x.ndim)
        wc, dwc = per_class(cw), per_class(dcw)
        if smooth:
            d = jnp.sum(dx if wc is None else wc * dx, axis=1) * GAP_SCALE
            if dwc is not None:
                # A selected gap (0 off R): its product with a zero cotangent stays 0, not NaN.
                d = d + jnp.sum(dwc * jnp.where(r, scaled_gaps(x, shift), 0), axis=1)
            out.append(d)
        if q is not None:
            qc = jax.lax.dynamic_slice_in_dim(q, start, size, axis=1).astype(ct)
            wt = qc if wc is None else wc * qc
            dwt = []  # d(w q) = w dq + dw q
            if dq is not None:
                dqc = jax.lax.dynamic_slice_in_dim(dq, start, size, axis=1).astype(ct)
                dwt.append(dqc if wc is None else wc * dqc)
            if dwc is not None:
                dwt.append(dwc * qc)
            d_dot = jnp.sum(wt * dx, axis=1)
            d_mass = jnp.zeros(shape, ct)
            if dwt:
                dwt_r = jnp.where(r, functools.reduce(jnp.add, dwt), 0)
                xs = jnp.where(r, jnp.maximum(x - shift, tiny), 0)  # as in the primal: clamped, 0 off R
                d_dot = d_dot + jnp.sum(dwt_r * xs, axis=1)
                d_mass = jnp.sum(dwt_r, axis=1)
            out += [d_dot, d_mass]
        if cfg.moments:
            # d/dx_c e^(x_c - m)(x_c - m) = e^(x_c - m)(x_c - m + 1), m a constant; clamped as in the primal.
            g = jnp.maximum(x - shift, tiny)
            out.append(jnp.sum(jnp.exp(g) * (g + 1) * dx, axis=1))
        return tuple(out)

    plan = _Plan(vocab, int(np.prod(shape)), chunk_size)
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

    zeros = jnp.zeros(shape, ct)
    live = [t for t in (dh, dw, db, dq, dcw, dcap, dscale) if t is not None]
    count = 1 + (y is not None) + smooth + 2 * (q is not None) + cfg.moments
    acc = _reduction.vary_like((zeros,) * count, h, w, bias, y, q, cw, cap, scale, *live)
    acc = jax.lax.fori_loop(0, plan.count + (plan.tail > 0), body, acc)
    if axis_name is not None:
        acc = jax.lax.psum(acc, axis_name)
    it = iter(jnp.where(rows, a, 0) for a in acc)
    out = stats._replace(shift=jnp.zeros_like(stats.shift), log_sum=next(it))  # m is a constant for differentiation
    if y is not None:
        out = out._replace(target=next(it))
    if smooth:
        out = out._replace(smooth_dot=next(it))
    if q is not None:
        out = out._replace(dot=next(it), mass=next(it), lost=jnp.zeros_like(stats.shift))  # a count does not move
    if cfg.moments:
        out = out._replace(moment=next(it))
    if cfg.argmax:
        out = out._replace(argmax=jnp.zeros_like(stats.shift))  # an index does not move
    return out


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def linear_stats(cfg: LinearConfig, h, w, bias, y, q, cw, cap, scale, rows) -> Stats:
    """:class:`Stats` (relative to the row max) of the logits ``h @ w.T + bias`` (``[N, V, *K]``
    for a ``[V, *K, D]`` weight, the class axis 1), streamed over vocabulary chunks, for integer
    targets ``y`` or probabilities ``q``, with class weights ``cw``; tokens outside ``rows`` get
    zero tangents. ``smooth_mass`` and ``remaining`` depend on the bias and class weights only:
    :func:`linear_parts` adds them.

    Forward and reverse mode come from one ``jax.custom_jvp`` whose tangent map is linear
    and recomputes each chunk's logits (:func:`_stats_tangent`): autodiff of the streamed
    loop would save every chunk's logits (``N * V``) for reverse mode.
    """
    return _primal_stats(cfg, h, w, bias, y, q, cw, cap, scale, rows)


@functools.partial(linear_stats.defjvp, symbolic_zeros=True)
def _linear_stats_jvp(cfg, primals, tangents):
    stats = linear_stats(cfg, *primals)
    return stats, _stats_tangent(cfg, primals, stats, tangents)


# --------------------------------------------------------------------------------------
# The token-chunked schedule: whole rows of logits for a block of tokens; a differentiated
# call forms the gradients in the same pass (6·N·D·V flops instead of 8·N·D·V).

Schedule = Literal["auto", "vocab", "tokens"]
SCHEDULES = ("auto", "vocab", "tokens")
# The default memory_budget: about the vocabulary schedule's own temporary memory at its
# default chunk (three [N, chunk] float32 blocks).
DEFAULT_BUDGET = 3 * 4 * _CHUNK_ELEMENTS
# "auto" takes the token schedule only with blocks of at least this many rows: below it,
# the d weight accumulator is read and written once per block too often to win.
_MIN_BLOCK = 128
# Elements of one [chunk, D] part of d weight per update (float32): 8 MiB.
_PART_ELEMENTS = 2**21
# Vocabulary entries per filtered tile at most: finer tiles skip more of the tail.
_FILTER_TILE = 2048


class TokenConfig(NamedTuple):
    """The static part of :func:`token_loss_sum`."""

    block: int  # tokens per block: whole rows of logits, one [block, V, *K] float32 array
    chunk: int | None  # vocabulary entries per update of d weight (None: ``part`` elements of it)
    smooth: bool  # the label-smoothing sums
    accumulate: str  # dtype of the d weight and d bias accumulators over the token blocks (float32 or wider)
    part: int = 2**21  # elements of d weight per update (of one vocabulary chunk), when chunk is None
    threshold: float | None = None  # gradient filtering: skip a tile whose |d logits| are all below it


# The primal operands of token_loss_sum, in order; the differentiable ones get gradients.
_OPERANDS = ("h", "w", "bias", "y", "wy", "q", "cw", "eps", "z", "cap", "kept")


def _block_loss(smooth, x, y, wy, q, cw, eps, z, cap, kept):
    """The summed loss of one block of tokens from its materialised logits ``x`` ``[B, V, *K]``."""
    if x.ndim > 2:  # the K-dimensional form: the class axis last, where softmax_stats reads it
        x = jnp.moveaxis(x, 1, -1)
        q = None if q is None else jnp.moveaxis(q, 1, -1)
    stats = softmax_stats(StatsConfig(smooth), x, cap, None, y, q, cw, kept)
    return jnp.sum(softmax_losses(stats, kept, wy, SoftmaxOptions(smooth, eps, z, cap)))


def _token_pass(cfg: TokenConfig, primals, want: frozenset) -> tuple[jax.Array, dict]:
    """(the summed loss, its gradients w.r.t. the operands named in ``want``), block by block.

    Each block of tokens forms its logits ``[B, V, *K]`` once. With gradients asked for,
    the block's ``d logits`` (from the materialised loss's own rule) are contracted at once
    into the block's rows of ``d inputs`` and, chunk by chunk of the vocabulary, added to
    ``d weight``: three matmuls per block and no recomputation.
    """
    ops = dict(zip(_OPERANDS, primals))
    h, w, bias = ops["h"], ops["w"], ops["bias"]
    ct = _checks.compute_dtype(h.dtype)
    n, vocab = h.shape[0], w.shape[0]
    acc = jnp.dtype(cfg.accumulate)
    sliced = ("y", "wy", "q", "kept")  # per-token operands, read block by block
    per_block = [k for k in ("wy", "q") if k in want]  # per-token gradients, written block by block
    shared = [k for k in ("cw", "eps", "z", "cap") if k in want]  # gradients summed over the blocks
    # The matmul operands of d logits: 16-bit weights take them in their dtype (float32 accumulation).
    md = w.dtype if w.dtype.itemsize == 2 else ct
    parts = _Plan(vocab, int(np.prod(w.shape[1:])), cfg.chunk, cfg.part)
    inner = tuple(range(1, w.ndim))  # the vocabulary and K axes of d logits [B, V, *K]

    def step(start, size, c):
        total, g = c
        hb = jax.lax.dynamic_slice_in_dim(h, start, size)
        x = _logits(hb, w, bias, 0, vocab)
        args = {
            k: ops[k] if k not in sliced or ops[k] is None else jax.lax.dynamic_slice_in_dim(ops[k], start, size)
            for k in _OPERANDS[3:]
        }
        if not want:
            return total + _block_loss(cfg.smooth, x, **args), g
        keys = per_block + shared
        loss, vjp = jax.vjp(
            lambda x, *v: _block_loss(cfg.smooth, x, **(args | dict(zip(keys, v)))), x, *(args[k] for k in keys)
        )
        dx, *dv = vjp(jnp.ones((), loss.dtype))
        g = dict(g)
        for k, d in zip(keys, dv):
            if k in per_block:
                g[k] = jax.lax.dynamic_update_slice_in_dim(g[k], d.astype(g[k].dtype), start, 0)
            else:
                g[k] = g[k] + d
        if "bias" in want:
            g["bias"] = (g["bias"].astype(ct) + jnp.sum(dx, axis=0)).astype(acc)
        if "h" in want or "w" in want:
            # A dropped token's inputs are replaced by 0 (its d logits are 0): d weight stays
            # exact when they are NaN, as on the vocabulary schedule.
            kb = args["kept"]
            token_rows = kb if kb.ndim == 1 else jnp.any(kb, axis=tuple(range(1, kb.ndim)))
            dxm, th = dx.astype(md), cfg.threshold
            hm = jnp.where(token_rows[:, None], hb, 0).astype(md)
            # Both matmuls of d logits chunk by chunk of the vocabulary, each chunk read once
            # for both while it is in cache (measured faster than one d inputs matmul).

            def chunk(vstart, vsize, wc, c):
                # (Sliced before a filtering cond: XLA:CPU would convert all of a 16-bit W inside it.)
                dxc = jax.lax.dynamic_slice_in_dim(dxm, vstart, vsize, axis=1)
                wl = jax.lax.dynamic_slice_in_dim(wc, vstart, vsize)

                def update(c):
                    dh, gw = c
                    if dh is not None:  # d inputs += d logits_c · W_c
                        dh = dh + jax.lax.dot_general(
                            dxc, wl, ((inner, tuple(i - 1 for i in inner)), ((), ())), preferred_element_type=ct
                        )
                    if gw is not None:  # d W_c += d logits_c^T · h
                        part = jax.lax.dot_general(dxc, hm, (((0,), (0,)), ((), ())), preferred_element_type=ct)
                        old = jax.lax.dynamic_slice_in_dim(gw, vstart, vsize)
                        gw = jax.lax.dynamic_update_slice_in_dim(gw, (old.astype(ct) + part).astype(acc), vstart, 0)
                    return dh, gw

                if th is None:
                    return update(c)
                # Gradient filtering: the tile's matmuls unless every |d logits| entry is below the
                # threshold (a NaN entry is not below it: NaN reaches the gradients).
                big = ~(jnp.max(jnp.abs(jax.lax.dynamic_slice_in_dim(dx, vstart, vsize, axis=1))) < th)
                return jax.lax.cond(big, update, lambda c: c, c)

            dh0 = jnp.zeros((size, h.shape[1]), ct) if "h" in want else None
            dh, gw = parts.fold(chunk, w, (dh0, g.get("w")))
            if gw is not None:
                g["w"] = gw
            if dh is not None:
                g["h"] = jax.lax.dynamic_update_slice_in_dim(g["h"], dh.astype(g["h"].dtype), start, 0)
        return total + loss, g

    zero = lambda v, dtype=None: jnp.zeros_like(v, dtype or v.dtype)  # (keeps an explicit sharding)
    g0 = {}
    for k in want:
        v = ops[k]
        g0[k] = zero(v, acc if k in ("w", "bias") else (ct if k in shared else None))
    count, tail = divmod(n, cfg.block)
    carry = (jnp.zeros((), ct), g0)
    carry = jax.lax.fori_loop(0, count, lambda i, c: step(i * cfg.block, cfg.block, c), carry)
    if tail:
        carry = step(count * cfg.block, tail, carry)
    return carry


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def token_loss_sum(cfg: TokenConfig, h, w, bias, y, wy, q, cw, eps, z, cap, kept) -> jax.Array:
    """The summed cross-entropy of ``h @ w.T + bias`` (``[N, V, *K]`` for a ``[V, *K, D]``
    weight) over token blocks of whole logit rows (:func:`_token_pass`): integer targets
    ``y`` with per-token class weights ``wy``, or probabilities ``q``; class weights ``cw``
    (the smoothing term's), smoothing ``eps``, z-loss ``z`` (None: off) and soft-cap ``cap``;
    only tokens in ``kept`` count.

    A call that is not differentiated forms the logits only (``2·N·D·V`` flops). The
    ``jax.custom_jvp`` rule forms the gradients in the same pass (``6·N·D·V``), and its
    tangent is their inner product with the input tangents: forward mode evaluates it, and
    reverse mode transposes it into a scaling of the gradients by the cotangent.
    """
    return _token_pass(cfg, (h, w, bias, y, wy, q, cw, eps, z, cap, kept), frozenset())[0]


@functools.partial(token_loss_sum.defjvp, symbolic_zeros=True)
def _token_loss_sum_jvp(cfg, primals, tangents):
    live = {k: t for k, t in zip(_OPERANDS, map(_live, tangents)) if t is not None}
    total, grads = token_gradients(cfg, tuple(live), *primals)
    # Linear in the tangents: <d loss/d operand, d operand>, summed in the compute dtype.
    terms = [jnp.sum(g.astype(total.dtype) * t.astype(total.dtype)) for g, t in zip(grads, live.values())]
    return total, functools.reduce(jnp.add, terms, jnp.zeros_like(total))


@functools.partial(jax.custom_jvp, nondiff_argnums=(0, 1))
def token_gradients(cfg: TokenConfig, want: tuple, *primals) -> tuple[jax.Array, tuple]:
    """(the summed loss, its gradients w.r.t. the operands named in ``want``) of the token pass.

    Its own ``jax.custom_jvp`` gives the derivatives of the gradients (Hessian-vector
    products, for second-order autodiff of :func:`token_loss_sum`) from the vocabulary
    schedule of the same loss, whose rule supports every order: differentiating the token
    loop itself would differentiate the materialised loss's primal code, not its rule.
    """
    total, grads = _token_pass(cfg, primals, frozenset(want))
    return total, tuple(grads[k] for k in want)


@token_gradients.defjvp
def _token_gradients_jvp(cfg, want, primals, tangents):
    total, grads = token_gradients(cfg, want, *primals)
    index = [_OPERANDS.index(k) for k in want]

    def value_and_grads(*ops):
        def summed(*chosen):
            full = list(ops)
            for i, v in zip(index, chosen):
                full[i] = v
            return _vocab_sum(cfg, *full)

        return jax.value_and_grad(summed, argnums=tuple(range(len(want))))(*(ops[i] for i in index))

    _, (d_total, d_grads) = jax.jvp(value_and_grads, primals, tangents)
    return (total, grads), (d_total, tuple(d.astype(g.dtype) for d, g in zip(d_grads, grads)))


def _vocab_sum(cfg: TokenConfig, h, w, bias, y, wy, q, cw, eps, z, cap, kept) -> jax.Array:
    """:func:`token_loss_sum` on the vocabulary schedule (the same function)."""
    o = Operands(h, w, bias, y, wy, q, cw, kept, SoftmaxOptions(cfg.smooth, eps, z, cap), kept.shape)
    return jnp.sum(vocab_parts(o, cfg.chunk, None)[0])


def token_config(
    fn: str,
    schedule: str,
    memory_budget: int | None,
    gradient_threshold: float | None,
    *,
    reduction: str,
    axis_name: Hashable | None,
    tokens: int,
    vocab: int,
    out: int,
    dim: int,
    weight_dtype,
    smooth: bool,
    chunk_size: int | None,
) -> TokenConfig | None:
    """The token schedule's plan, or None for the vocabulary schedule (validated options)."""
    if schedule not in SCHEDULES:
        raise ValueError(f"{fn}: schedule must be one of {SCHEDULES}, got {schedule!r}.")
    if memory_budget is not None and (
        isinstance(memory_budget, bool) or not isinstance(memory_budget, int) or memory_budget <= 0
    ):
        raise ValueError(f"{fn}: memory_budget must be a positive Python int (bytes) or None, got {memory_budget!r}.")
    if gradient_threshold is not None and (
        isinstance(gradient_threshold, bool)
        or not isinstance(gradient_threshold, (int, float))
        or not gradient_threshold > 0
    ):
        raise ValueError(
            f"{fn}: gradient_threshold must be a positive Python float or None, got {gradient_threshold!r}; "
            "e.g. gradient_threshold=2.0**-12."
        )
    why = None
    if reduction == "none":
        why = 'reduction="none" (per-token cotangents need the vocabulary schedule\'s backward pass)'
    elif axis_name is not None:
        why = "axis_name (a sharded vocabulary)"
    if why is not None:
        if schedule == "tokens" or gradient_threshold is not None:
            option = 'schedule="tokens"' if schedule == "tokens" else "gradient_threshold"
            raise ValueError(
                f"{fn}: {option} needs the token schedule, which does not support {why}; "
                'use reduction="mean" or "sum", or drop the option.'
            )
        return None
    if schedule == "vocab" or (schedule == "auto" and chunk_size is not None and gradient_threshold is None):
        # (A chunk size asked for under "auto" is the vocabulary schedule's chunk.)
        if gradient_threshold is not None:
            raise ValueError(
                f'{fn}: gradient_threshold needs the token schedule, got schedule="vocab"; '
                'pass schedule="tokens" (or "auto") with gradient_threshold, or drop it.'
            )
        return None
    budget = DEFAULT_BUDGET if memory_budget is None else memory_budget
    half = jnp.dtype(weight_dtype).itemsize == 2
    wide = max(4, jnp.dtype(weight_dtype).itemsize)  # bytes of the compute dtype
    row = wide * vocab * out  # one row of logits
    weight = vocab * out * dim
    # One part of d weight per update: 8 MiB, a quarter of the budget at most.
    part = wide * min(_PART_ELEMENTS, weight, budget // (4 * wide))
    if gradient_threshold is not None:
        part = min(part, wide * _FILTER_TILE * out * dim)

    # Temp memory of blocks of B rows (measured: about 2.2 rows per token, the logits and
    # d logits, plus the materialised loss's rule) and a part of d weight; for 16-bit
    # weights also a float32 copy of the inputs and the float32 d weight accumulator (a
    # 16-bit one was measured slower and no smaller on XLA:CPU).
    extra = 4 * weight + 4 * tokens * dim if half else 0
    block = min(tokens, max(0, 2 * (budget - part - extra) // (5 * row)))
    if schedule == "auto" and gradient_threshold is None and block < min(_MIN_BLOCK, tokens):
        return None
    if block < 1:
        raise ValueError(
            f"{fn}: memory_budget={budget} bytes cannot hold one row of the token schedule "
            f"(about {(5 * row) // 2 + part} bytes for V={vocab}, more for 16-bit weights); raise memory_budget, "
            'or use schedule="vocab".'
        )
    # Prefer a block that divides the tokens (down to 3/4 of it: no tail block to compile),
    # else a multiple of 8 rows.
    fits = [b for b in range(block, (3 * block) // 4, -1) if tokens % b == 0]
    block = fits[0] if fits else max(block - block % 8, min(block, 8))
    accumulate = jnp.dtype(jnp.float32 if half else weight_dtype)
    return TokenConfig(block, chunk_size, smooth, accumulate.name, part // wide, gradient_threshold)


def vocabulary_parts(vocab: int, dim: int, cfg: TokenConfig) -> int:
    """Vocabulary entries per tile of the token schedule's d weight update (and filtering)."""
    return _Plan(vocab, dim, cfg.chunk, cfg.part).size


def linear_cross_entropy(
    inputs: ArrayLike,
    weight: ArrayLike,
    targets: ArrayLike,
    *,
    bias: ArrayLike | None = None,
    class_weight: ArrayLike | None = None,
    ignore_index: int | None = -100,
    label_smoothing: ArrayLike = 0.0,
    z_loss: ArrayLike = 0.0,
    logit_softcap: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
    chunk_size: int | None = None,
    axis_name: Hashable | None = None,
    schedule: Schedule = "auto",
    memory_budget: int | None = None,
    gradient_threshold: float | None = None,
) -> jax.Array:
    r"""Fused ``inputs @ weight.T + bias`` and softmax cross-entropy, without the logits.

    Same value and gradients as ``cross_entropy(inputs @ weight.T + bias, targets, weight=class_weight, ...)``
    (its reference, to float32 precision), but the ``[N, V]`` logits and their gradient
    are never materialised, on one of two schedules:

    - ``"vocab"``: the loss streams over chunks of the vocabulary with an online
      logsumexp, and the backward pass recomputes each chunk's logits (``8·N·D·V`` flops
      instead of the naive program's ``6·N·D·V``) to contract them at once into the
      gradients. Temporary memory is about three ``[N, chunk_size]`` float32 blocks.
    - ``"tokens"`` (``"mean"`` and ``"sum"`` only): whole rows of logits for a block of
      tokens at a time. A differentiated call forms the block's ``d logits`` from the same
      logits and contracts them at once into its rows of ``d inputs`` and into ``d weight``
      (``6·N·D·V`` flops; the backward pass only scales these gradients by the
      cotangent). A call that is not differentiated only forms the logits. Blocks are as
      large as ``memory_budget`` allows; ``d weight`` is accumulated over the blocks in
      float32 (for 16-bit weights that accumulator counts against the budget).

    .. math::
        \ell_n = -\sum_c w_c\, q_{n,c} \log \operatorname{softmax}(W h_n + b)_c
                 + z \,(\operatorname{logsumexp}(W h_n + b))^2

    with ``q = (1 - ε)·t + ε/V'`` (``t`` one-hot for token ids, the given probabilities
    otherwise; ``V'`` the entries without a ``-inf`` bias). ``"mean"`` is PyTorch's: for
    token ids ``Σ ℓ_n / Σ w_{y_n}`` over kept tokens, for probability targets
    ``Σ ℓ_n / (number of kept tokens)``; an empty mean is 0.0, not NaN.

    PyTorch's ``F.linear_cross_entropy(input, linear_weight, target, linear_bias=b,
    weight=cw, ...)`` is ``linear_cross_entropy(input, linear_weight, target, bias=b,
    class_weight=cw, ...)``: ``linear_weight`` is ``weight``, ``linear_bias`` is ``bias``
    and PyTorch's per-class ``weight`` is ``class_weight`` (``weight`` stays the matrix,
    so existing calls keep their meaning).

    Args:
      inputs: ``[..., D]`` floating hidden states (bf16 stays bf16 in the matmuls, with
        float32 accumulation).
      weight: ``[V, D]`` output embedding (PyTorch's ``nn.Linear(D, V).weight`` layout), or
        ``[V, d1, ..., dK, D]`` for PyTorch's K-dimensional loss: the logits are then
        ``[..., V, d1, ..., dK]`` (class axis right after the batch axes, as in PyTorch) and
        every position ``(d1, ..., dK)`` is one example with its own ``[V, D]`` slice.
      targets: integer token ids of shape ``inputs.shape[:-1] + weight.shape[1:-1]``, or
        floating probabilities (soft labels, e.g. for distillation) of the logits' shape
        ``inputs.shape[:-1] + weight.shape[:-1]``; they get gradients too.
      bias: optional ``[V]`` (``[V, d1, ..., dK]`` for the K-dimensional weight); ``-inf``
        entries remove vocabulary entries (probability 0, no smoothing mass; a target on
        one gives ``+inf``).
      class_weight: optional per-class weights ``[V]`` (PyTorch's ``weight``; may be traced,
        and gets gradients). They weight the smoothing term too, as in PyTorch.
      ignore_index, label_smoothing, z_loss, logit_softcap, reduction: as in
        :func:`jaxent.cross_entropy` (``label_smoothing``, ``z_loss`` and
        ``logit_softcap`` may be traced; ``z_loss`` is not weighted by ``class_weight``).
        Probability targets do not use ``ignore_index`` (a non-negative value is an error).
      where: optional boolean mask of the targets' batch shape
        ``inputs.shape[:-1] + weight.shape[1:-1]`` (drops tokens or positions). To remove
        vocabulary entries use ``bias=-inf`` there.
      chunk_size: static number of vocabulary entries per chunk of the ``"vocab"``
        schedule (giving one under ``"auto"`` picks it). Temporary memory is about two
        ``[N, chunk_size]`` float32 blocks (times ``d1···dK``); the default keeps one block
        near 16 MiB (and at least 256 entries). V need not be a multiple of it. On the
        token schedule: the vocabulary entries per ``d weight`` update (and filtered tile).
      axis_name: inside ``jax.shard_map``, the mesh axis over which the vocabulary is
        sharded (Megatron-style): ``weight``, ``bias``, ``class_weight`` and probability
        ``targets`` hold this device's contiguous slice of V, in device order; token ids
        stay global. Only a ``pmax`` and one packed ``psum`` of per-token values cross
        devices in the forward pass, and one ``psum`` of ``d inputs`` in the backward;
        ``d weight`` stays sharded. Not with the K-dimensional weight (a ValueError).
        Runs on the ``"vocab"`` schedule.
      schedule: ``"auto"`` (default) takes ``"tokens"`` when blocks of at least 128 tokens
        (or all of them) fit ``memory_budget``, with ``reduction`` "mean" or "sum", no
        ``axis_name`` and no ``chunk_size``: there it is the faster schedule. Otherwise
        ``"vocab"``. Or name one.
      memory_budget: static bytes of temporary memory for the token schedule's blocks
        (None: 48 MiB, about the vocabulary schedule's own at its default chunk, so that
        the default keeps today's memory bound). The compiled program stays within it.
      gradient_threshold: opt-in gradient filtering on the token schedule (None: exact).
        A ``[block, chunk]`` tile of ``d logits`` whose entries are all below the threshold
        in magnitude is skipped in the ``d inputs`` and ``d weight`` matmuls (the loss
        itself stays exact). Every skipped entry is below the threshold, so for
        ``reduction="sum"`` the error of ``d inputs_n`` is at most
        ``threshold·Σ_v |W_v|`` and that of ``d W_v`` at most ``threshold·Σ_n |h_n|``
        (divide by the denominator for "mean"). On a trained model most of a token's
        vocabulary has a softmax far below ``2**-12`` (Cut Cross-Entropy's choice), which
        is where the saving is; on random logits it skips nothing. It is a
        data-dependent ``lax.cond`` per tile (under ``vmap``, both branches run).

    Returns:
      The loss in float32 (float64 for float64 inputs): the targets' batch shape
      ``inputs.shape[:-1] + weight.shape[1:-1]`` for ``reduction="none"``, a scalar otherwise.

    Notes:
      Gradients flow to ``inputs``, ``weight``, ``bias``, probability ``targets``,
      ``class_weight`` and the traced hyperparameters, in reverse and forward mode
      (``jax.jvp``, ``jax.jacfwd``, ``jax.linearize``, ``jax.hessian``) from one
      ``jax.custom_jvp`` rule; reverse-mode memory stays bounded by the chunk. Unlike
      PyTorch, the K-dimensional form also accepts unbatched and multi-axis ``inputs``.

    Example:
      >>> import jax, jax.numpy as jnp, jaxent
      >>> h = jax.random.normal(jax.random.key(0), (4, 8))
      >>> w = jax.random.normal(jax.random.key(1), (10, 8))
      >>> y = jnp.array([1, 2, 3, -100])
      >>> fused = jaxent.linear_cross_entropy(h, w, y, chunk_size=4)
      >>> bool(jnp.allclose(fused, jaxent.cross_entropy(h @ w.T, y), rtol=1e-6))
      True
      >>> cw = jnp.linspace(0.5, 2.0, 10)
      >>> weighted = jaxent.linear_cross_entropy(h, w, y, class_weight=cw, label_smoothing=0.1)
      >>> bool(jnp.allclose(weighted, jaxent.cross_entropy(h @ w.T, y, weight=cw, label_smoothing=0.1)))
      True
      >>> soft = jax.nn.softmax(jax.random.normal(jax.random.key(2), (4, 10)))
      >>> jaxent.linear_cross_entropy(h, w, soft).shape
      ()
      >>> tokens = jaxent.linear_cross_entropy(h, w, y, schedule="tokens", memory_budget=2**20)
      >>> bool(jnp.allclose(tokens, fused, rtol=1e-6))
      True
      >>> g = jax.grad(jaxent.linear_cross_entropy)(h, w, y, schedule="tokens", gradient_threshold=2.0**-12)
      >>> g.shape
      (4, 8)

    References:
      PyTorch 2.13 ``torch.nn.functional.linear_cross_entropy``; Wijmans et al., *Cut Your
      Losses in Large-Vocabulary Language Models* (2024).
    """
    fn = "linear_cross_entropy"
    o = linear_operands(
        fn,
        inputs,
        weight,
        targets,
        bias=bias,
        class_weight=class_weight,
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        z_loss=z_loss,
        logit_softcap=logit_softcap,
        where=where,
        reduction=reduction,
        chunk_size=chunk_size,
        axis_name=axis_name,
    )
    cfg = token_config(
        fn,
        schedule,
        memory_budget,
        gradient_threshold,
        reduction=reduction,
        axis_name=axis_name,
        tokens=o.h.shape[0],
        vocab=o.w.shape[0],
        out=int(np.prod(o.w.shape[1:-1])),
        dim=o.w.shape[-1],
        weight_dtype=o.w.dtype,
        smooth=o.opts.smooth,
        chunk_size=chunk_size,
    )
    if cfg is None:
        losses, denominator = vocab_parts(o, chunk_size, axis_name)
        return _reduction.reduce(losses, reduction, denominator)
    opts = o.opts
    total = token_loss_sum(cfg, o.h, o.w, o.bias, o.y, o.wy, o.q, o.cw, opts.eps, opts.z_loss, opts.cap, o.kept)
    total = _checks.attach_checks(total, opts.checks)
    if reduction == "sum":
        return total
    denominator = o.kept if o.wy is None else o.wy
    return _reduction.safe_divide(total, jnp.sum(denominator.astype(total.dtype)))


def checked_operands(
    fn: str, inputs: ArrayLike, weight: ArrayLike, bias: ArrayLike | None, *, k_dimensional: bool = True
) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    """(inputs ``[..., D]``, weight ``[V, *K, D]``, bias ``[V, *K]`` or None), validated."""
    h = _checks.as_array(fn, "inputs", inputs)
    w = _checks.as_array(fn, "weight", weight)
    _checks.check_floating(fn, "inputs", h)
    _checks.check_floating(fn, "weight", w)
    forms = "[V, D] (or [V, d1, ..., dK, D] for the K-dimensional loss)" if k_dimensional else "[V, D]"
    if h.ndim < 1 or w.ndim < 2 or w.shape[-1] != h.shape[-1] or (w.ndim > 2 and not k_dimensional):
        raise ValueError(
            f"{fn}: weight has shape {w.shape} but inputs has shape {h.shape}; weight must be "
            f"{forms} with D = inputs.shape[-1] = {h.shape[-1] if h.ndim else '?'} (transpose a [D, V] matrix)."
        )
    b = None
    if bias is not None:
        b = _checks.as_array(fn, "bias", bias)
        _checks.check_floating(fn, "bias", b)
        if b.shape != w.shape[:-1]:
            raise ValueError(
                f"{fn}: bias has shape {b.shape} but weight has shape {w.shape}; pass bias of shape "
                f"{w.shape[:-1]} (weight.shape[:-1])."
            )
    return h, w, b


class Operands(NamedTuple):
    """The validated operands of :func:`linear_cross_entropy`, flattened to ``N`` tokens."""

    h: jax.Array  # [N, D]
    w: jax.Array  # [V, *K, D] (K: the product of the K-dimensional axes, or none)
    bias: jax.Array | None  # [V, *K]
    y: jax.Array | None  # [N, *K] checked token ids (None for probability targets)
    wy: jax.Array | None  # [N, *K] the targets' class weights (None without class weights or ids)
    q: jax.Array | None  # [N, V, *K] probability targets
    cw: jax.Array | None  # [V] class weights in the compute dtype
    kept: jax.Array  # [N, *K] the tokens that count
    opts: SoftmaxOptions
    shape: tuple  # the targets' batch shape, of reduction="none"


def linear_operands(
    fn,
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
    class_weight=None,
) -> Operands:
    """:class:`Operands` of :func:`linear_cross_entropy`, with every check of its arguments."""
    h, w, b = checked_operands(fn, inputs, weight, bias)
    vocab, dim, out = w.shape[0], w.shape[-1], w.shape[1:-1]
    if out and axis_name is not None:
        raise ValueError(
            f"{fn}: axis_name={axis_name!r} needs a [V, D] weight, got the K-dimensional weight of shape {w.shape}; "
            "shard a [V, D] weight (one call per position), or call it without axis_name."
        )
    batch = h.shape[:-1]
    shape = batch + out  # one example per token and position
    out_text = " + weight.shape[1:-1]" if out else ""
    t = _checks.target_array(fn, targets)
    probabilities = bool(jnp.issubdtype(t.dtype, jnp.floating))
    if probabilities:
        if t.shape != batch + (vocab,) + out:
            raise ValueError(
                f"{fn}: targets has shape {t.shape} and dtype {t.dtype}; floating targets are probabilities of "
                f"the logits' shape inputs.shape[:-1] + weight.shape[:-1] = {batch + (vocab,) + out}, token ids "
                f"are integers of shape {shape}: cast token ids with targets.astype(jnp.int32)."
            )
        _checks.check_ignore_index_for_probabilities(fn, ignore_index, "tokens")
    elif jnp.issubdtype(t.dtype, jnp.integer):
        _checks.check_same_shape(fn, "targets", t, "inputs.shape[:-1]" + out_text, shape)
    else:
        raise TypeError(
            f"{fn}: targets must be integer token ids or floating probabilities, got dtype {t.dtype}; "
            "cast token ids with targets.astype(jnp.int32)."
        )
    ct = _checks.compute_dtype(h.dtype)
    cw = None
    if class_weight is not None:
        cw = _checks.as_array(fn, "class_weight", class_weight)
        if not (jnp.issubdtype(cw.dtype, jnp.floating) or jnp.issubdtype(cw.dtype, jnp.integer)):
            raise TypeError(f"{fn}: class_weight must be a real array, got dtype {cw.dtype}.")
        if cw.shape != (vocab,):
            raise ValueError(
                f"{fn}: class_weight has shape {cw.shape} but weight has {vocab} rows (classes); "
                f"pass one weight per class, shape ({vocab},) (PyTorch's weight=)."
            )
        cw = cw.astype(ct)
    mask = _checks.elementwise_mask(fn, where, shape, x_name="inputs.shape[:-1]" + out_text)
    _checks.check_chunk_size(fn, chunk_size)
    opts = softmax_options(fn, h.dtype, reduction, ignore_index, label_smoothing, z_loss, logit_softcap)
    n = int(np.prod(batch))
    k = (int(np.prod(out)),) if out else ()
    # The K-dimensional form as one [V, K, D] weight: logits [N, V, K], statistics [N, K].
    h2, w2 = h.reshape(n, dim), w.reshape((vocab,) + k + (dim,))
    b2 = None if b is None else b.reshape((vocab,) + k)
    kept = jnp.ones((n,) + k, bool) if mask is None else mask.reshape((n,) + k)
    y = q = wy = None
    if probabilities:
        q = t.reshape((n, vocab) + k)
    else:
        t2 = t.reshape((n,) + k)
        if ignore_index is not None:
            kept = kept & (t2 != ignore_index)
        if axis_name is None:
            y, wy = _checks.checked_labels(fn, t2, vocab, kept, ignore_index, cw, ct)
        else:
            y, wy = sharded_labels(fn, t2, vocab, kept, ignore_index, cw, axis_name, ct)
    return Operands(h2, w2, b2, y, wy, q, cw, kept, opts, shape)


def linear_parts(inputs, weight, targets, **options) -> tuple[jax.Array, jax.Array]:
    """(per-token losses, per-token weights of the "mean" denominator) of :func:`linear_cross_entropy`
    on the vocabulary schedule; ``options`` are :func:`linear_operands`' keywords."""
    o = linear_operands("linear_cross_entropy", inputs, weight, targets, **options)
    return vocab_parts(o, options["chunk_size"], options["axis_name"])


def vocab_parts(o: Operands, chunk_size: int | None, axis_name: Hashable | None) -> tuple[jax.Array, jax.Array]:
    """(per-token losses, "mean" denominator weights) of the vocabulary schedule."""
    opts, ct = o.opts, _checks.compute_dtype(o.h.dtype)
    vocab, k = o.w.shape[0], o.w.shape[1:-1]
    cfg = LinearConfig(opts.smooth, chunk_size, axis_name)
    stats = linear_stats(cfg, o.h, o.w, o.bias, o.y, o.q, o.cw, opts.cap, None, o.kept)
    if opts.smooth:
        # The classes that get smoothing mass (no -inf bias) and their total class weight:
        # plain JAX of the bias and class weights (their gradients come from autodiff).
        live = jnp.ones((vocab,) + k, bool) if o.bias is None else o.bias > -jnp.inf
        remaining = jnp.sum(live.astype(ct), axis=0)
        cw = o.cw
        mass = remaining if cw is None else jnp.sum(jnp.where(live, cw.reshape((vocab,) + (1,) * len(k)), 0), axis=0)
        if axis_name is not None:
            remaining, mass = jax.lax.psum((remaining, mass), axis_name)
        stats = stats._replace(
            smooth_mass=jnp.broadcast_to(mass, o.kept.shape), remaining=jnp.broadcast_to(remaining, o.kept.shape)
        )
    losses = softmax_losses(stats, o.kept, o.wy, opts).reshape(o.shape)
    return losses, (o.kept if o.wy is None else o.wy).reshape(o.shape)


@loss_object
class LinearCrossEntropyLoss(LossObject):
    """:func:`linear_cross_entropy` as a frozen dataclass pytree: ``loss(inputs, weight, targets)``.

    ``bias``, ``class_weight`` and the numeric hyperparameters are pytree leaves; the
    schedule options are static.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> loss = jaxent.LinearCrossEntropyLoss(label_smoothing=0.1)
      >>> loss(jnp.ones((2, 3)), jnp.eye(4, 3), jnp.array([0, 3]))
      Array(1.6892..., dtype=float32)
    """

    function: ClassVar = staticmethod(linear_cross_entropy)
    bias: ArrayLike | None = None
    class_weight: ArrayLike | None = None
    ignore_index: int | None = static_field(default=-100)
    label_smoothing: ArrayLike = 0.0
    z_loss: ArrayLike = 0.0
    logit_softcap: ArrayLike | None = None
    reduction: _reduction.Reduction = static_field(default="mean")
    chunk_size: int | None = static_field(default=None)
    axis_name: Hashable | None = static_field(default=None)
    schedule: Schedule = static_field(default="auto")
    memory_budget: int | None = static_field(default=None)
    gradient_threshold: float | None = static_field(default=None)
