"""Input validation shared by every loss.

Every check runs at trace time and raises a ``ValueError`` (shapes, ranges) or a
``TypeError`` (dtypes) whose message names the function, the argument, what was
expected, what was given and how to fix it. Nothing here touches array values
except :func:`concrete`, which reads a hyperparameter only when it is not traced.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify

REDUCTIONS = ("none", "sum", "mean")

# A deferred check of a traced value: (ok, checkify message with one {} for the payload, payload).
Check = tuple[jax.Array, str, jax.Array]


def compute_dtype(dtype: Any) -> jnp.dtype:
    """float64 stays float64; every other float (bf16, f16, f32) computes in float32."""
    return jnp.dtype(jnp.float64) if jnp.dtype(dtype) == jnp.float64 else jnp.dtype(jnp.float32)


def hyperparameter(value: Any, dtype: Any) -> jax.Array:
    """A numeric hyperparameter (a Python number or a traced array) in the compute ``dtype``."""
    return jnp.asarray(value).astype(dtype)


def check_reduction(fn: str, reduction: Any) -> None:
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(
            f"{fn}: reduction must be one of 'none', 'sum' or 'mean', got {reduction!r}; "
            "use 'none' for per-example losses."
        )


def as_array(fn: str, name: str, x: Any) -> jax.Array:
    try:
        return jnp.asarray(x)
    except TypeError as e:
        raise TypeError(f"{fn}: {name} must be an array, got {type(x).__name__}: {e}") from None


_INT32 = np.iinfo(np.int32)


def target_array(fn: str, targets: Any) -> jax.Array:
    """``targets`` as an array; integer labels narrower than 32 bits widened to int32.

    An int8/int16 (or uint8/uint16) label cannot be compared with, or index, a class
    count of 128 or more without wrapping, so it is widened first. Without x64 JAX would
    truncate a 64-bit NumPy label to int32 (2**32 would become class 0): a concrete
    label outside the int32 range is a ValueError before the conversion.
    """
    if not isinstance(targets, jax.Array) and not jax.config.read("jax_enable_x64"):
        host = np.asarray(targets) if isinstance(targets, (np.ndarray, np.generic, list, tuple, int)) else None
        if host is not None and host.dtype.kind in "iu" and host.size:
            low, high = host.min(), host.max()
            if low < _INT32.min or high > _INT32.max:
                bad = low if low < _INT32.min else high
                raise ValueError(
                    f"{fn}: targets contain the label {bad}, outside the int32 range that JAX uses without "
                    "x64 (it would be truncated to a wrong class); pass labels below 2**31, or enable "
                    "jax_enable_x64."
                )
        targets = targets if host is None else host  # converted once
    t = as_array(fn, "targets", targets)
    if jnp.issubdtype(t.dtype, jnp.integer) and t.dtype.itemsize < 4:
        t = t.astype(jnp.int32)
    return t


def check_floating(fn: str, name: str, x: jax.Array) -> None:
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(
            f"{fn}: {name} must be a floating-point array, got dtype {x.dtype}; "
            f"cast it first, e.g. {name}.astype(jnp.float32)."
        )


def check_same_shape(fn: str, name: str, x: jax.Array, other: str, shape: tuple[int, ...]) -> None:
    if x.shape != tuple(shape):
        raise ValueError(
            f"{fn}: {name} has shape {x.shape} but {other} has shape {tuple(shape)}; "
            f"{name} must have the shape of {other}."
        )


def check_scalar(fn: str, name: str, value: Any) -> None:
    """A numeric hyperparameter must be one real number (a Python number or a 0-d array)."""
    if value is None:
        return
    dtype = getattr(value, "dtype", None)
    if dtype is None and isinstance(value, (bool, int, float, list, tuple)):
        dtype = np.asarray(value).dtype
    real = dtype is not None and (
        jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer) or dtype == np.bool_
    )
    if not real:
        raise TypeError(
            f"{fn}: {name} must be a real number (a Python float or a 0-d array), got "
            f"{type(value).__name__} {value!r}; pass e.g. {name}=0.1, not a string."
        )
    if np.ndim(value) != 0:
        raise ValueError(
            f"{fn}: {name} must be a scalar, got shape {np.shape(value)}; "
            "pass one number (a Python float or a 0-d array)."
        )


def concrete(value: Any) -> np.ndarray | None:
    """The value of a hyperparameter as NumPy, or None when it is traced (checked later)."""
    if value is None or isinstance(value, jax.core.Tracer):
        return None
    return np.asarray(value)


def check_range(
    fn: str,
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
) -> None:
    """Scalar and in [low, high] (or (low, high] with ``low_open``): now, or under checkify if traced."""
    check_scalar(fn, name, value)
    v = concrete(value)
    if v is None:
        if value is not None:  # traced: checked at run time under jax.experimental.checkify
            ok = jnp.logical_not(jnp.isnan(value))
            if low is not None:
                ok = ok & ((value > low) if low_open else (value >= low))
            if high is not None:
                ok = ok & (value <= high)
            checkify.debug_check(ok, f"{fn}: {name} must lie in {_interval(low, high, low_open)}, got {{}}.", value)
        return
    too_low = low is not None and (v <= low if low_open else v < low)
    too_high = high is not None and v > high
    if too_low or too_high or np.isnan(v):
        raise ValueError(f"{fn}: {name} must lie in {_interval(low, high, low_open)}, got {v.item()}.")


def _interval(low: float | None, high: float | None, low_open: bool) -> str:
    lo = ("(" if low_open else "[") + ("-inf" if low is None else f"{low}")
    return lo + ", " + ("inf)" if high is None else f"{high}]")


def canonical_axes(fn: str, axis: Any, ndim: int, shape: tuple[int, ...], name: str = "logits") -> tuple[int, ...]:
    """``axis`` (an int or a tuple of ints) as non-negative ints, in the order given."""
    if ndim == 0:
        raise ValueError(
            f"{fn}: {name} is 0-d (shape ()), but it needs a class axis; pass {name} of shape "
            f"[..., C] (e.g. {name}[None] for one example)."
        )
    axes = (axis,) if not isinstance(axis, (tuple, list)) else tuple(axis)
    if not axes:
        raise ValueError(f"{fn}: axis must name at least one class axis, got {axis!r}.")
    out = []
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)):
            raise TypeError(
                f"{fn}: axis must be an int or a tuple of ints, got {axis!r}; "
                "it is static, so pass a Python int (e.g. axis=1 for (N, C, d1, ...) inputs)."
            )
        if not -ndim <= a < ndim:
            raise ValueError(
                f"{fn}: axis {a} is out of range for {name} of shape {shape} (ndim {ndim}); "
                f"pass an axis in [{-ndim}, {ndim})."
            )
        out.append(operator.index(a) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{fn}: axis {axis!r} repeats an axis; name each class axis once.")
    return tuple(out)


class Layout(NamedTuple):
    """Logits (or scores) with the class axes moved last and flattened into one of size C."""

    x: jax.Array  # [*batch, C]
    batch_shape: tuple[int, ...]
    class_shape: tuple[int, ...]
    axes: tuple[int, ...]
    integer_targets: bool
    targets: jax.Array  # [*batch] integer or [*batch, C] probabilities
    class_mask: jax.Array | None  # [*batch, C] bool
    example_mask: jax.Array | None  # [*batch] bool
    weight: jax.Array | None  # [C] in the compute dtype

    @property
    def num_classes(self) -> int:
        return self.x.shape[-1]


def move_classes_last(x: jax.Array, axes: tuple[int, ...]) -> jax.Array:
    """Transpose the class axes to the end (a no-op for axis=-1) and flatten them."""
    rest = [a for a in range(x.ndim) if a not in axes]
    x = jnp.transpose(x, rest + list(axes))
    # The class count, not -1: reshape cannot infer a dimension of a size-0 (empty batch) array.
    return x.reshape(x.shape[: len(rest)] + (math.prod(x.shape[len(rest) :]),))


def class_layout(
    fn: str,
    logits: Any,
    targets: Any,
    *,
    axis: Any,
    where: Any = None,
    weight: Any = None,
    logits_name: str = "logits",
    allow_probabilities: bool = True,
) -> Layout:
    """Validate and canonicalise (logits, targets, where, weight) for a classification loss.

    Integer ``targets`` have the shape of ``logits`` without the class axes (class
    indices, a flat index over the class axes when ``axis`` is a tuple); floating
    ``targets`` have the shape of ``logits`` (probabilities). ``where`` is a boolean
    mask of the batch shape (drops examples) or of ``logits.shape`` (drops classes).
    ``weight`` has one entry per class: shape ``(C,)`` or the shape of the class axes.
    """
    x = as_array(fn, logits_name, logits)
    check_floating(fn, logits_name, x)
    axes = canonical_axes(fn, axis, x.ndim, x.shape, logits_name)
    batch_shape = tuple(d for a, d in enumerate(x.shape) if a not in axes)
    class_shape = tuple(x.shape[a] for a in axes)
    num_classes = int(np.prod(class_shape))
    axis_text = f"axis {axis!r}"

    t = target_array(fn, targets)
    integer = bool(jnp.issubdtype(t.dtype, jnp.integer))
    if integer:
        if t.shape != batch_shape:
            raise ValueError(
                f"{fn}: targets has shape {t.shape} but {logits_name} has shape {x.shape}; "
                f"integer targets must have the shape of {logits_name} without {axis_text} "
                f"{batch_shape}"
                + (f", probability targets the shape of {logits_name}." if allow_probabilities else ".")
            )
    elif jnp.issubdtype(t.dtype, jnp.floating) and allow_probabilities:
        if t.shape != x.shape:
            raise ValueError(
                f"{fn}: targets has shape {t.shape} but {logits_name} has shape {x.shape}; "
                f"integer targets must have the shape of {logits_name} without {axis_text} "
                f"{batch_shape}, probability targets the shape of {logits_name}."
            )
        t = move_classes_last(t, axes)
    else:
        expected = "integer class indices" + (" or floating probabilities" if allow_probabilities else "")
        raise TypeError(
            f"{fn}: targets must be {expected}, got dtype {t.dtype}; cast class indices with targets.astype(jnp.int32)."
        )

    class_mask = example_mask = None
    if where is not None:
        m = as_array(fn, "where", where)
        if m.dtype != jnp.bool_:
            raise TypeError(
                f"{fn}: where must be a boolean mask, got dtype {m.dtype}; pass e.g. where=(lengths_mask > 0)."
            )
        if m.shape == batch_shape:
            example_mask = m
        elif m.shape == x.shape:
            class_mask = move_classes_last(m, axes)
        else:
            raise ValueError(
                f"{fn}: where has shape {m.shape} but {logits_name} has shape {x.shape}; "
                f"pass a batch mask of shape {batch_shape} (drops examples) or a class mask "
                f"of shape {x.shape} (drops classes)."
            )

    w = None
    if weight is not None:
        w = as_array(fn, "weight", weight)
        if not (jnp.issubdtype(w.dtype, jnp.floating) or jnp.issubdtype(w.dtype, jnp.integer)):
            raise TypeError(f"{fn}: weight must be a real array, got dtype {w.dtype}.")
        if w.shape not in ((num_classes,), class_shape):
            raise ValueError(
                f"{fn}: weight has shape {w.shape} but {logits_name} has {num_classes} classes "
                f"along {axis_text}; pass one weight per class, shape ({num_classes},)."
            )
        w = w.reshape(num_classes).astype(compute_dtype(x.dtype))

    return Layout(
        x=move_classes_last(x, axes),
        batch_shape=batch_shape,
        class_shape=class_shape,
        axes=axes,
        integer_targets=integer,
        targets=t,
        class_mask=class_mask,
        example_mask=example_mask,
        weight=w,
    )


def offending_value(values: jax.Array, bad: jax.Array) -> jax.Array:
    """One entry of ``values`` where ``bad`` holds, for an error message: the largest (NaN
    if any is NaN). A reduction, not an indexing, so that it works on sharded arrays."""
    lowest = -jnp.inf if jnp.issubdtype(values.dtype, jnp.floating) else jnp.iinfo(values.dtype).min
    return jnp.max(jnp.where(bad, values, jnp.asarray(lowest, values.dtype)), initial=lowest)


def check_ignore_index(fn: str, ignore_index: Any) -> None:
    if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
        raise TypeError(
            f"{fn}: ignore_index must be a Python int or None, got {ignore_index!r}; "
            "it is static (use where= for a traced mask)."
        )


def check_chunk_size(fn: str, chunk_size: Any) -> None:
    """A vocabulary chunk size is a positive Python int (static: it shapes the loop) or None."""
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size <= 0):
        raise ValueError(f"{fn}: chunk_size must be a positive Python int or None, got {chunk_size!r}.")


def check_ignore_index_for_probabilities(fn: str, ignore_index: int | None, items: str = "examples") -> None:
    """``ignore_index`` names a class to drop, which probability targets do not have: a
    non-negative one with probability targets is an error (a negative one, PyTorch's -100
    default, is ignored)."""
    if ignore_index is not None and ignore_index >= 0:
        raise ValueError(
            f"{fn}: ignore_index={ignore_index} needs integer targets, but targets are "
            f"probabilities; drop {items} with where= instead (or pass ignore_index=None)."
        )


def kept_examples(lay: Layout, ignore_index: int | None, axis_name: Any = None) -> jax.Array:
    """Examples that count: not masked by ``where``, not ``ignore_index``, some class left
    (on any device, when the classes are sharded over the mesh axis ``axis_name``)."""
    kept = jnp.ones(lay.batch_shape, bool) if lay.example_mask is None else lay.example_mask
    if lay.class_mask is not None:
        some = jnp.any(lay.class_mask, axis=-1)
        if axis_name is not None:
            some = jax.lax.psum(some.astype(jnp.int32), axis_name) > 0
        kept = kept & some
    if lay.integer_targets and ignore_index is not None:
        kept = kept & (lay.targets != ignore_index)
    return kept


def drops_examples(lay: Layout, ignore_index: int | None) -> bool:
    """Whether :func:`kept_examples` can drop an example (else it is all True)."""
    return (
        lay.example_mask is not None or lay.class_mask is not None or (lay.integer_targets and ignore_index is not None)
    )


def class_labels(fn: str, lay: Layout, kept: jax.Array, ignore_index: int | None) -> tuple[jax.Array, jax.Array]:
    """:func:`checked_labels` for the integer targets of a :class:`Layout`."""
    return checked_labels(fn, lay.targets, lay.num_classes, kept, ignore_index, lay.weight, compute_dtype(lay.x.dtype))


def checked_labels(
    fn: str,
    y: jax.Array,
    num_classes: int,
    kept: jax.Array,
    ignore_index: int | None,
    weight: jax.Array | None,
    dtype: Any,
) -> tuple[jax.Array, jax.Array]:
    """(labels clipped into range, per-example class weight w_y; 0 where not kept).

    An out-of-range label on a kept example gets weight NaN, so its loss (and any mean
    over it) is NaN, never a wrapped or silently wrong value; under
    ``jax.experimental.checkify`` with ``checkify.user_checks`` it raises an error
    naming the label.
    """
    in_range = (y >= 0) & (y < num_classes)
    bad = kept & ~in_range
    message = (
        f"{fn}: targets contain the label {{}}, outside [0, {num_classes})"
        + ("" if ignore_index is None else f" and not ignore_index={ignore_index}")
        + f"; class indices must lie in [0, {num_classes})."
    )
    first_bad = offending_value(y, bad)
    y = jnp.where(in_range, y, 0)
    wy = jnp.ones(y.shape, dtype) if weight is None else weight[y]
    # An out-of-range label poisons its example (and any mean) with NaN, never a wrong number.
    wy = jnp.where(bad, jnp.nan, jnp.where(kept, wy, 0))
    # The check rides on the class weights, which every loss uses (no effect outside checkify).
    return y, attach_check(wy, ~jnp.any(bad), message, first_bad)


def check_static_bool(fn: str, name: str, value: Any) -> None:
    """A structural flag (``squared``, ``log_target``) must be a Python bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(
            f"{fn}: {name} must be a Python bool, got {value!r}; it is static, so pass True or False "
            "(use a separate jitted function per setting)."
        )


def allowed_values_check(
    fn: str, name: str, values: jax.Array, allowed: tuple[float, ...], kept: jax.Array | None, fix: str
) -> Check | None:
    """Elements of ``values`` outside ``allowed`` (where ``kept``): a ValueError now when both
    are concrete; for traced ones, the ``(ok, message, payload)`` of the same check (naming the
    first bad kept element), for :func:`attach_checks`. The caller poisons bad elements with
    NaN (never a silently wrong value)."""
    listed = ", ".join(f"{a:g}" for a in allowed)
    v, k = concrete(values), (np.ones(values.shape, bool) if kept is None else concrete(kept))
    if v is not None and k is not None:
        bad_np = k & ~np.isin(v, np.asarray(allowed, v.dtype))
        if np.any(bad_np):
            raise ValueError(f"{fn}: {name} must lie in {{{listed}}}, got {v[bad_np].ravel()[0].item()!r}; {fix}")
        return None
    ok = jnp.zeros(values.shape, bool)
    for a in allowed:
        ok = ok | (values == a)
    bad = ~ok if kept is None else kept & ~ok
    message = checkify_text(f"{fn}: {name} must lie in {{{listed}}}, got ") + "{}" + checkify_text(f"; {fix}")
    return ~jnp.any(bad), message, offending_value(values, bad)


def class_hyperparameter(fn: str, name: str, value: Any, lay: Layout, *, low: float | None = None) -> jax.Array | None:
    """A hyperparameter given as one number or one value per class (``alpha``), or None.

    Returns a 0-d or ``[C]`` array in the compute dtype. Every entry must be at least
    ``low``: checked now when concrete, under ``checkify`` when traced.
    """
    if value is None:
        return None
    v = as_array(fn, name, value)
    if not (jnp.issubdtype(v.dtype, jnp.floating) or jnp.issubdtype(v.dtype, jnp.integer)):
        raise TypeError(f"{fn}: {name} must be a real number or array, got dtype {v.dtype}.")
    num_classes = lay.num_classes
    if v.ndim and v.shape not in ((num_classes,), lay.class_shape):
        raise ValueError(
            f"{fn}: {name} has shape {v.shape} but logits has {num_classes} classes; pass one "
            f"number or one {name} per class, shape ({num_classes},)."
        )
    if low is not None:
        c = concrete(value)
        if c is None:
            checkify.debug_check(
                jnp.all(v >= low), f"{fn}: {name} must be >= {low}, got a minimum of {{}}.", jnp.min(v)
            )
        elif np.any(np.isnan(c)) or np.any(c < low):
            raise ValueError(f"{fn}: {name} must be >= {low} (and not NaN), got {np.min(c).item()}.")
    return v.reshape(-1 if v.ndim else ()).astype(compute_dtype(lay.x.dtype))


# --------------------------------------------------------------------------------------
# Elementwise losses (binary cross-entropy, focal, regression): one value per element.


def elementwise_pair(
    fn: str, x: Any, targets: Any, *, x_name: str, integer_targets: bool
) -> tuple[jax.Array, jax.Array]:
    """(x, targets) for an elementwise loss: floating ``x`` and ``targets`` of ``x.shape``.

    With ``integer_targets`` the targets may also be integer or boolean (the caller
    casts them); otherwise they must be floating.
    """
    x = as_array(fn, x_name, x)
    check_floating(fn, x_name, x)
    t = as_array(fn, "targets", targets)
    ok = jnp.issubdtype(t.dtype, jnp.floating) or (
        integer_targets and (jnp.issubdtype(t.dtype, jnp.integer) or t.dtype == jnp.bool_)
    )
    if not ok:
        expected = "floating, integer or boolean" if integer_targets else "floating-point"
        raise TypeError(
            f"{fn}: targets must be a {expected} array, got dtype {t.dtype}; "
            f"cast it first, e.g. targets.astype({x_name}.dtype)."
        )
    check_same_shape(fn, "targets", t, x_name, x.shape)
    return x, t


def elementwise_mask(fn: str, where: Any, shape: tuple[int, ...], *, x_name: str) -> jax.Array | None:
    """``where`` broadcast to ``shape``: a boolean mask of that shape, or of the same rank with size-1 axes.

    Requiring the same rank keeps a per-row mask of shape ``(N,)`` from silently
    broadcasting along the last axis of an ``(N, N)`` input: write ``(N, 1)``.
    """
    if where is None:
        return None
    m = as_array(fn, "where", where)
    if m.dtype != jnp.bool_:
        raise TypeError(f"{fn}: where must be a boolean mask, got dtype {m.dtype}; pass e.g. where=(lengths_mask > 0).")
    if m.ndim != len(shape) or any(a not in (1, b) for a, b in zip(m.shape, shape)):
        rows = f", or {(shape[0],) + (1,) * (len(shape) - 1)} to drop whole rows" if len(shape) > 1 else ""
        raise ValueError(
            f"{fn}: where has shape {m.shape} but {x_name} has shape {tuple(shape)}; pass a mask of shape "
            f"{tuple(shape)}, or of the same rank with size-1 axes that broadcast{rows}."
        )
    return jnp.broadcast_to(m, shape)


def elementwise_weight(
    fn: str, name: str, value: Any, shape: tuple[int, ...], dtype: Any, *, x_name: str
) -> jax.Array | None:
    """A real ``value`` broadcast to ``shape`` by NumPy's rules (as PyTorch), cast to ``dtype``."""
    if value is None:
        return None
    w = as_array(fn, name, value)
    if not (jnp.issubdtype(w.dtype, jnp.floating) or jnp.issubdtype(w.dtype, jnp.integer)):
        raise TypeError(f"{fn}: {name} must be a real array, got dtype {w.dtype}.")
    try:
        ok = np.broadcast_shapes(w.shape, tuple(shape)) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        last = f"({shape[-1]},) for one value per entry of the last axis, or " if shape else ""
        raise ValueError(
            f"{fn}: {name} has shape {w.shape}, which does not broadcast to the shape {tuple(shape)} of "
            f"{x_name}; pass shape {last}{tuple(shape)}."
        )
    return jnp.broadcast_to(w.astype(dtype), shape)


def check_finite(fn: str, name: str, value: Any) -> None:
    """A scalar hyperparameter that may be any finite real number: now, or under checkify if traced."""
    check_scalar(fn, name, value)
    v = concrete(value)
    if v is None:
        if value is not None:
            checkify.debug_check(jnp.isfinite(value), f"{fn}: {name} must be a finite number, got {{}}.", value)
        return
    if not np.isfinite(v):
        raise ValueError(f"{fn}: {name} must be a finite number, got {v.item()}.")


# --------------------------------------------------------------------------------------
# A run-time check that costs nothing outside checkify.


def _check_batch(args, dims, *, message):
    # Under vmap: one check for the whole batch, naming the first failing example's value.
    x, ok, payload = args
    dx, dok, dpayload = dims
    first = 0
    if dok is not None:
        ok = jnp.moveaxis(ok, dok, 0)
        first = jnp.argmin(ok)
        ok = jnp.all(ok)
    if dpayload is not None:
        payload = jnp.moveaxis(payload, dpayload, 0)[first]
    return _check_p.bind(x, ok, payload, message=message), dx


try:
    from jax._src import checkify as _checkify_internals
    from jax.extend.core import Primitive
    from jax.interpreters import ad, batching, mlir

    # ``attach_check(x, ok, ...)`` is ``x``; under ``checkify`` with user checks it also
    # reports ``message`` (formatted with ``payload``) when ``ok`` is False. Unlike
    # ``checkify.debug_check`` it carries no effect, so a jitted loss keeps JAX's fast
    # dispatch path (a debug_check costs ~40 us per call, more than a small loss itself).
    _check_p = Primitive("jaxent_check")
    _check_p.def_impl(lambda x, ok, payload, *, message: x)
    _check_p.def_abstract_eval(lambda x, ok, payload, *, message: x)
    mlir.register_lowering(_check_p, lambda ctx, x, ok, payload, *, message: [x])
    ad.primitive_jvps[_check_p] = lambda primals, tangents, *, message: (
        _check_p.bind(*primals, message=message),
        tangents[0],
    )
    batching.primitive_batchers[_check_p] = _check_batch

    def _check_rule(error, enabled_errors, x, ok, payload, *, message):
        failed = _checkify_internals.FailedCheckError
        if failed in enabled_errors:
            new_error = failed(_checkify_internals.get_traceback(), message, payload)
            error = _checkify_internals.assert_func(error, jnp.logical_not(ok), new_error)
        return error, x

    _checkify_internals.error_checks[_check_p] = _check_rule

    def attach_check(x: jax.Array, ok: jax.Array, message: str, payload: jax.Array) -> jax.Array:
        """``x``, with a ``checkify`` user check that ``ok`` (a scalar bool) holds.

        ``message`` is formatted with ``payload`` (``{}`` marks it, other braces doubled).
        Outside ``checkify`` the check compiles to nothing and adds no effect. Attach it to
        the loss itself, so that it is not dropped as dead code.
        """
        return _check_p.bind(x, ok, payload, message=message)

except (ImportError, AttributeError):  # a JAX without these internals: an ordinary debug_check

    def attach_check(x: jax.Array, ok: jax.Array, message: str, payload: jax.Array) -> jax.Array:
        """``x``, with a ``checkify.debug_check`` that ``ok`` holds (see above)."""
        checkify.debug_check(ok, message, payload)
        return x


def traced_range_check(
    fn: str,
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
) -> Check | None:
    """:func:`check_range` (a ValueError now) for a concrete ``value``; for a traced one, the
    ``(ok, message, payload)`` of the same check, for :func:`attach_check`."""
    if value is None or concrete(value) is not None:
        check_range(fn, name, value, low, high, low_open=low_open)
        return None
    check_scalar(fn, name, value)
    v = jnp.asarray(value)
    ok = ~jnp.isnan(v)
    if low is not None:
        ok = ok & ((v > low) if low_open else (v >= low))
    if high is not None:
        ok = ok & (v <= high)
    return jnp.all(ok), f"{fn}: {name} must lie in {_interval(low, high, low_open)}, got {{}}.", v


def traced_finite_check(fn: str, name: str, value: Any) -> Check | None:
    """:func:`check_finite` (a ValueError now) for a concrete ``value``; for a traced one, the
    ``(ok, message, payload)`` of the same check, for :func:`attach_check`."""
    if value is None or concrete(value) is not None:
        check_finite(fn, name, value)
        return None
    check_scalar(fn, name, value)
    v = jnp.asarray(value)
    return jnp.isfinite(v), f"{fn}: {name} must be a finite number, got {{}}.", v


def finite_hyperparameter(fn: str, name: str, value: Any, dtype: Any) -> tuple[jax.Array, Check | None]:
    """(a finite scalar hyperparameter such as ``margin`` or ``eps`` in ``dtype``, its check).

    Any finite value is legal (PyTorch accepts negative margins); NaN and inf are a
    ValueError now when concrete and a checkify check (for :func:`attach_checks`) when traced.
    """
    check = traced_finite_check(fn, name, value)  # first: it names a non-number value
    return hyperparameter(value, dtype), check


def checkify_text(text: str) -> str:
    """``text`` as literal text of a checkify message (which ``str.format`` fills in)."""
    return text.replace("{", "{{").replace("}", "}}")


def sign_labels(fn: str, t: jax.Array, kept: jax.Array | None, ct: Any) -> tuple[jax.Array, Check | None]:
    """(±1 labels in ``ct``, their check): ``-1``/``+1`` (integer or floating) or bool (True = +1).

    A concrete label outside ``{-1, +1}`` on a kept element is a ValueError now; a traced one
    becomes NaN (its loss and gradients are NaN, never a silently wrong value) and fails a
    checkify check that names it. Dropped elements keep their value (the caller masks them).
    """
    if t.dtype == jnp.bool_:
        return jnp.where(t, 1, -1).astype(ct), None
    fix = "pass -1/+1 labels, a bool array (True = +1), or map {0, 1} labels with 2 * targets - 1."
    check = allowed_values_check(fn, "targets", t, (-1, 1), kept, fix)
    y = t.astype(ct)
    ok = y * y == 1
    # A kept label outside {-1, +1} (y² != 1) is NaN: its loss and its gradient -y·(...) are NaN.
    return jnp.where(ok if kept is None else ok | ~kept, y, jnp.nan), check


def row_mask(fn: str, where: Any, batch_shape: tuple[int, ...], x_name: str) -> jax.Array | None:
    """``where`` as one bool per row (per pair or triplet of embeddings): a mask of ``batch_shape``."""
    if where is None:
        return None
    m = as_array(fn, "where", where)
    if m.dtype != jnp.bool_:
        raise TypeError(f"{fn}: where must be a boolean mask, got dtype {m.dtype}; pass e.g. where=(lengths_mask > 0).")
    if m.shape != tuple(batch_shape):
        raise ValueError(
            f"{fn}: where has shape {m.shape} but {x_name} has the batch shape {tuple(batch_shape)} (its shape "
            f"without the feature axis); pass one bool per row, shape {tuple(batch_shape)}."
        )
    return m


def attach_checks(x: jax.Array, checks: Sequence[Check | None]) -> jax.Array:
    """:func:`attach_check` for each of ``checks`` that is not None."""
    for check in checks:
        if check is not None:
            x = attach_check(x, *check)
    return x
