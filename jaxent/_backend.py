"""The one module with workarounds for a single compiler (XLA:CPU).

The numerical code is written once for every backend. Where XLA:CPU needs a different
program to reach the same speed or memory, the alternative is chosen here with
:func:`jax.lax.platform_dependent`, which resolves at compile time: a program exported for
``cuda`` or ``tpu`` holds only its ``default`` branch (no ``optimization_barrier``, no
data-dependent branch). Each function names the behaviour it works around.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero


def _identity(x: jax.Array) -> jax.Array:
    return x


def apart(x: jax.Array) -> jax.Array:
    """``x``, read through an optimization barrier on XLA:CPU when it is half precision.

    Works around XLA:CPU, which fuses ``sum(exp(float32(x) - m))`` into one kernel only
    if nothing else shares its ``float32(x)``: a second reader of a bf16 array (a gather,
    the backward pass) makes it materialise the shared upcast, an ``[N, C]`` float32 copy.
    Each reader of the barrier's output upcasts on its own. Identity elsewhere and for
    float32/float64 inputs.
    """
    if x.dtype.itemsize > 2:
        return x
    return jax.lax.platform_dependent(x, cpu=jax.lax.optimization_barrier, default=_identity)


def row_max(x: jax.Array) -> jax.Array:
    """The maximum over the last axis, in float32 or wider (NaN propagates; -inf for an all -inf row).

    Works around XLA:CPU, which fuses a single-operand max with the broadcast subtraction
    ``x - m`` that follows it into one YNNPACK kernel writing ``x - m``, an ``[N, C]``
    array, for the loops that read it. On CPU the max is a variadic reduce with a count of
    the entries above -inf (not a YNNPACK candidate), which decides an all -inf row.
    """

    def paired(x):
        init = (jnp.array(-jnp.inf, x.dtype), jnp.int32(0))
        m, above = jax.lax.reduce(
            (x, (x != -jnp.inf).astype(jnp.int32)),
            init,
            lambda a, b: (jnp.maximum(a[0], b[0]), a[1] + b[1]),
            (x.ndim - 1,),
        )
        return jnp.where(above > 0, m, -jnp.inf)

    # In float32 or wider: exact, and XLA:CPU vectorises the loop.
    x = x.astype(jnp.float32) if x.dtype.itemsize < 4 else x
    return jax.lax.platform_dependent(x, cpu=paired, default=lambda x: jnp.max(x, axis=-1))


def tied(x: jax.Array, i: jax.Array, *, any_dtype: bool = False) -> jax.Array:
    """``x``, read through an optimization barrier with the loop index ``i`` on XLA:CPU when
    it is half precision (or always, with ``any_dtype``).

    Works around XLA:CPU, which upcasts a bf16/f16 matrix that a loop slices and hoists
    that upcast out of the loop: a float32 copy of the whole matrix (e.g. a ``[V, D]``
    output embedding). Tied to ``i`` the barrier's output is not loop-invariant, so each
    iteration upcasts only its slice. With ``any_dtype`` the same holds for any value the
    loop computes from ``x`` alone (e.g. ``x`` minus its row max), which XLA would hoist
    and write to memory as an ``[N, C]`` array. Identity elsewhere and, without
    ``any_dtype``, for float32/float64 inputs.
    """
    if x.dtype.itemsize > 2 and not any_dtype:
        return x

    def barrier(x, i):
        return jax.lax.optimization_barrier((x, i))[0]

    return jax.lax.platform_dependent(x, i, cpu=barrier, default=lambda x, i: x)


def take_last(x: jax.Array, labels: jax.Array, onehot: jax.Array, gradient_dtype: jnp.dtype) -> jax.Array:
    """``x[..., labels]`` for in-range ``labels`` ``[...]`` (``onehot`` marks them in ``x``'s shape).

    Linear in ``x``: used for the target's tangent, whose transpose writes the target
    entries of the gradient. The default is a one-hot select-sum (it transposes to an
    elementwise select that fuses with the rest of the gradient). Works around XLA:CPU,
    where that per-entry select is ~1.6x slower than the gather for float32 (whose
    transpose, a scatter, XLA:CPU performs in place); for half precision XLA:CPU upcasts a
    scatter through an ``[N, C]`` float32 copy, so the select stays when the gradient
    (of ``gradient_dtype``, the logits' dtype) is half precision.
    """

    def select(x, labels, onehot):
        return jnp.sum(jnp.where(onehot, x, 0), axis=-1)

    def gather(x, labels, onehot):
        return jnp.take_along_axis(x, labels[..., None], axis=-1, mode="clip")[..., 0]

    if jnp.dtype(gradient_dtype).itemsize <= 2:
        return select(x, labels, onehot)
    return jax.lax.platform_dependent(x, labels, onehot, cpu=gather, default=select)


def row_sums(
    values: Sequence[jax.Array], counts: Sequence[jax.Array], together: bool = False
) -> tuple[tuple[jax.Array, ...], tuple[jax.Array, ...]]:
    """(sums of the floating ``values``, int32 counts of the boolean ``counts``) over the last axis.

    The reduction of a fused loss pass: the values are computed from the logits (exp,
    selects, products) in the same loop that sums them, with nothing of size ``[N, C]``
    written to memory. Backend-neutral HLO is one variadic reduce of every operand. Works
    around XLA:CPU in two ways (:func:`jax.lax.platform_dependent`): it hands a
    single-operand sum to a YNNPACK kernel that cannot fuse a select, compare or convert
    (the summed values would be written to memory first), and it vectorises a reduce loop
    with one floating accumulator (and any integer ones) but not one with several, which
    runs 3-10x slower. On CPU each value is therefore summed in its own reduce with a count
    as its integer partner (so at least one count is needed; the first value should be one
    that the caller always uses, as it carries the counts).
    Values that share an expensive producer (an exp or log of the logits) are summed
    ``together`` in one loop on every backend (on CPU stacked, so that one floating
    accumulator sums them all): XLA:CPU would write the shared values to memory rather
    than compute them in each of several loops.

    The sums are plain float32 (or wider) sums. A vectorised or tree reduce keeps their
    relative error near 1e-7 even at C = 2^17 (measured against float64 for smoothed and
    soft targets: 2e-7 to 4e-7, the same as the logsumexp of the default path), so no
    compensation is spent on them: a second floating accumulator would stop XLA:CPU
    vectorising the loop (2x slower at C = 32000).
    """
    assert counts, "row_sums needs a count to pair with the values"
    ints = tuple(c.astype(jnp.int32) for c in counts)
    return _row_sums(together, tuple(values), ints)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _sums_together(axes: tuple[int, ...], values: tuple[jax.Array, ...]) -> tuple[jax.Array, ...]:
    """The sums of ``values`` over ``axes`` in one variadic reduce."""
    zeros = tuple(jnp.zeros((), v.dtype) for v in values)
    return tuple(jax.lax.reduce(values, zeros, lambda a, b: tuple(u + v for u, v in zip(a, b)), axes))


@_sums_together.defjvp
def _sums_together_jvp(axes, primals, tangents):
    # Summation is linear (a rule of its own: JAX's rule for a variadic reduce is not one).
    return _sums_together(axes, *primals), tuple(jnp.sum(t, axis=axes) for t in tangents[0])


# column_sums on XLA:CPU: up to this many elements the values are written once and summed by
# XLA's vectorised column reduce (a temporary of at most 16 MB in float32); above it, in
# _COLUMN_CHUNKS slices along the summed axis (each under 1% of the values, written and summed).
_COLUMN_DIRECT = 2**22
_COLUMN_CHUNKS = 512


def column_sums(
    values: Callable[..., tuple[jax.Array, ...]], operands: tuple[jax.Array, ...], axes: tuple[int, ...]
) -> tuple[jax.Array, ...]:
    """The sums over ``axes`` of each of ``values(*operands)`` (arrays of one shape; the
    operands have its rank and may be 1 along an axis they broadcast over, or None).

    Backend-neutral HLO is one variadic reduce that computes the values in its loop, with
    nothing of their size written to memory. Works around XLA:CPU, whose loop for a
    reduce over a non-minor axis (a column sum) with several outputs is scalar: an ``exp``
    in it runs 4-6x slower than in a vectorised elementwise loop. On CPU small inputs are
    written once and summed one value at a time; large float32 ones in slices along
    ``axes[0]`` (a loop, each slice written and summed), so that the temporary stays under
    1% of one value's size.
    """

    def fused(*ops):
        return _sums_together(axes, tuple(values(*ops)))

    def on_cpu(*ops):
        vs = jax.eval_shape(values, *ops)
        shape, axis = vs[0].shape, axes[0]
        length = shape[axis]
        half = any(o is not None and jnp.issubdtype(o.dtype, jnp.floating) and o.dtype.itemsize < 4 for o in ops)
        if half or int(np.prod(shape[max(axes) + 1 :])) == 1:
            # A row sum (nothing kept after the summed axes) is vectorised. Half-precision
            # operands are summed in one pass too: sliced in a loop, XLA:CPU upcasts them
            # whole before it when their gradient also reads them.
            return fused(*ops)
        if int(np.prod(shape)) <= _COLUMN_DIRECT or length == 1:
            return tuple(jnp.sum(v, axis=axes) for v in values(*ops))
        step = -(-length // min(length, _COLUMN_CHUNKS))
        index_shape = [1] * vs[0].ndim
        index_shape[axis] = step

        def body(i, totals):
            # A window clamped into the axis; its rows before i·step were summed already.
            start = jnp.minimum(i * step, length - step)
            sliced = tuple(
                o if o is None or o.shape[axis] == 1 else jax.lax.dynamic_slice_in_dim(o, start, step, axis)
                for o in ops
            )
            rows = start + jax.lax.broadcasted_iota(jnp.int32, tuple(index_shape), axis)
            fresh = rows >= i * step
            return tuple(t + jnp.sum(jnp.where(fresh, v, 0), axis=axes) for t, v in zip(totals, values(*sliced)))

        init = tuple(jnp.zeros(tuple(d for a, d in enumerate(v.shape) if a not in axes), v.dtype) for v in vs)
        return jax.lax.fori_loop(0, -(-length // step), body, init)

    if not axes:
        return tuple(values(*operands))
    return tuple(jax.lax.platform_dependent(*operands, cpu=on_cpu, default=fused))


def two_sum(a: jax.Array, b: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(s, e)`` with ``s = fl(a + b)`` and ``a + b = s + e`` exactly (Knuth's TwoSum)."""
    s = a + b
    b_part = s - a
    return s, (a - (s - b_part)) + (b - b_part)


def _reduce_sums(values: tuple[jax.Array, ...], counts: tuple[jax.Array, ...], axis=-1):
    """One variadic reduce over ``axis``: the sums of ``values`` and of ``counts``."""
    k, axis = len(values), axis % values[0].ndim
    operands = values + counts
    sums = jax.lax.reduce(
        operands,
        tuple(jnp.zeros((), t.dtype) for t in operands),
        lambda a, b: tuple(u + v for u, v in zip(a, b)),
        (axis,),
    )
    return tuple(sums[:k]), tuple(sums[k:])


def _paired_sums(values, counts):
    # One reduce per value with an integer partner, which keeps its loop vectorised: the
    # first value carries every count; each other value a copy of the first count, which
    # its sum reads (a count is never negative) so that XLA keeps the partner exactly when
    # it keeps the sum. (An unused sum goes with its whole reduce.)
    (first,), totals = _reduce_sums(values[:1], counts)
    sums = [first]
    for v in values[1:]:
        (total,), (count,) = _reduce_sums((v,), counts[:1])
        sums.append(jnp.where(count >= 0, total, jnp.nan))
    return tuple(sums), totals


def _stacked_sums(values, counts):
    # One loop for several values with a single floating accumulator, which XLA:CPU
    # vectorises: the values are stacked on a new last axis and summed as one.
    if len(values) == 1:
        return _reduce_sums(values, counts)
    stacked = jnp.stack(values, axis=-1)
    (totals,), counted = _reduce_sums(
        (stacked,), tuple(jnp.broadcast_to(c[..., None], stacked.shape) for c in counts), -2
    )
    return tuple(totals[..., i] for i in range(len(values))), tuple(c[..., 0] for c in counted)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _row_sums(together: bool, values: tuple[jax.Array, ...], counts: tuple[jax.Array, ...]):
    return jax.lax.platform_dependent(
        values, counts, cpu=_stacked_sums if together else _paired_sums, default=_reduce_sums
    )


@_row_sums.defjvp
def _row_sums_jvp(together, primals, tangents):
    # Summation is linear: the tangent of a sum is the sum of the tangents; a count has none.
    sums, totals = _row_sums(together, *primals)
    zeros = tuple(np.zeros(t.shape, jax.dtypes.float0) for t in totals)
    return (sums, totals), (tuple(jnp.sum(t, axis=-1) for t in tangents[0]), zeros)


def separately(arrays: tuple[jax.Array, ...], i: int) -> tuple[jax.Array, ...]:
    """``arrays``, read through an optimization barrier numbered ``i`` on XLA:CPU.

    Works around XLA:CPU, which merges the same ``[N, C]`` intermediates recomputed for
    several gradients (d logits, d targets, d alpha, ...) and with the forward pass, and
    materialises the shared values in float32 to do so. Each gradient that reads its
    inputs through its own barrier (distinct ``i``, so that XLA does not merge the
    barriers) recomputes them in its own fused loop. Identity elsewhere.
    """

    def barrier(*arrays):
        return jax.lax.optimization_barrier((*arrays, jnp.int32(i)))[:-1]

    return tuple(jax.lax.platform_dependent(*arrays, cpu=barrier, default=lambda *a: a))


def recomputed(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` under ``jax.checkpoint``: in reverse mode its primal-only values are recomputed
    next to the gradient from ``fn``'s inputs, never saved.

    XLA:CPU neither fuses a reduce with an elementwise output nor duplicates a value that
    two fusions use when it is expensive (exp, log) or narrower than its inputs (a mask):
    a value that a loss and its gradient both compute is written to memory, an ``[N, C]``
    array, when XLA merges the recomputation with the forward pass. On CPU alone a barrier
    (``prevent_cse=True``) keeps the recomputation apart, so that each pass computes its
    own values; other platforms get no barrier, which would block their fusion.
    """
    return functools.partial(
        jax.lax.platform_dependent,
        cpu=jax.checkpoint(fn, prevent_cse=True),
        default=jax.checkpoint(fn, prevent_cse=False),
    )


def linear_tangent(
    partials: Callable[..., Sequence[jax.Array]], out: jax.Array, primals: Sequence[Any], tangents: Sequence[Any]
) -> jax.Array:
    """The tangent ``Σ_i ∂f/∂p_i · dp_i`` of a ``jax.custom_jvp`` rule defined with ``symbolic_zeros=True``.

    ``partials(*primals)`` gives the partial derivatives; only those with a nonzero tangent
    are used. They are :func:`recomputed` from the primals: reverse mode transposes this
    map, which is linear in the tangents, and so saves only the primals (never an
    ``[N, C]`` partial) and recomputes the partials next to the gradient.
    """
    live = [i for i, t in enumerate(tangents) if not isinstance(t, SymbolicZero)]
    if not live:
        return jnp.zeros_like(out)

    def term(p, t):
        # A half-precision tangent of a primal that the partials upcast (a cast is linear).
        dtype = p.dtype if p.dtype.itemsize >= t.dtype.itemsize else t.dtype
        return p.astype(dtype) * t.astype(dtype)

    def tangent(primals, live_tangents):
        ps = partials(*primals)
        total = term(ps[live[0]], live_tangents[0])
        for i, t in zip(live[1:], live_tangents[1:]):
            total = total + term(ps[i], t)
        return jnp.broadcast_to(total, out.shape).astype(out.dtype)

    return recomputed(tangent)(tuple(primals), [tangents[i] for i in live])
