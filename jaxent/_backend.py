"""The one module with workarounds for a single compiler (XLA:CPU).

The numerical code is written once for every backend. Where XLA:CPU needs a different
program to reach the same speed or memory, the alternative is chosen here with
:func:`jax.lax.platform_dependent`, which resolves at compile time: a program exported for
``cuda`` or ``tpu`` holds only its ``default`` branch (no ``optimization_barrier``, no
data-dependent branch). Each function names the behaviour it works around.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


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


@jax.custom_jvp
def row_sums(*terms: jax.Array) -> tuple[jax.Array, ...]:
    """Sums over the last axis of several same-shape arrays, as one variadic reduce.

    Backend-neutral HLO that also suits XLA:CPU, which hands a single-operand sum to a
    YNNPACK kernel that cannot fuse a select, compare or convert with it, so the summed
    values (an ``[N, C]`` float32 array) would be written to memory first; a variadic
    reduce stays one fused loop there. Callers pass at least two terms and use every
    result (XLA drops an unused one, leaving a single-operand sum): a count of the
    remaining classes is the usual partner.
    """
    init = tuple(jnp.zeros((), t.dtype) for t in terms)
    return tuple(jax.lax.reduce(terms, init, lambda a, b: tuple(u + v for u, v in zip(a, b)), (terms[0].ndim - 1,)))


@row_sums.defjvp
def _row_sums_jvp(primals, tangents):
    # Summation is linear: the tangent of a sum is the sum of the tangents.
    return row_sums(*primals), tuple(jnp.sum(t, axis=-1) for t in tangents)


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
