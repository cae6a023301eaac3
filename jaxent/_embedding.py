"""Embedding, pairwise and contrastive losses: cosine similarity and distance, PyTorch's embedding
losses (cosine embedding, margin ranking, hinge embedding, triplet margin) and NT-Xent (SimCLR).

Each loss here is a few row sums (dot products and squared norms over the feature axis)
followed by elementwise arithmetic, so plain autodiff of the stable formula is already exact
and fast: no custom differentiation rule is used, apart from the linear one of
:func:`jaxent._backend.row_sums`, which keeps the sums fused on every backend. Forward and
reverse mode and higher orders all work. Norms at zero go through double ``where``s (a zero
vector has norm 0, unit vector 0 and a zero gradient), so no ``inf`` or NaN reaches a
gradient; ``-inf`` masking (NT-Xent's diagonal and missing negatives) never meets the
arithmetic.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero
from jax.typing import ArrayLike

from jaxent import _backend, _checks, _reduction
from jaxent._objects import LossObject, loss_object, static_field

# PyTorch's cosine_embedding_loss adds this to each squared norm (its EPSILON), so that a zero
# vector has cosine 0 rather than NaN.
_TORCH_COSINE_EPSILON = 1e-12


# --------------------------------------------------------------------------------------
# Validation and shared pieces.


def _features(
    fn: str, names: tuple[str, ...], arrays: tuple[Any, ...], axis: Any
) -> tuple[list[jax.Array], tuple[int, ...], tuple[int, ...], jnp.dtype]:
    """(arrays with the feature axes moved last and flattened, batch shape, axes, compute dtype).

    Every array must be floating and of the first one's shape.
    """
    xs = [_checks.as_array(fn, n, a) for n, a in zip(names, arrays)]
    for n, x in zip(names, xs):
        _checks.check_floating(fn, n, x)
    for n, x in zip(names[1:], xs[1:]):
        _checks.check_same_shape(fn, n, x, names[0], xs[0].shape)
    axes = _checks.canonical_axes(fn, axis, xs[0].ndim, xs[0].shape, names[0])
    batch = tuple(d for i, d in enumerate(xs[0].shape) if i not in axes)
    ct = jnp.dtype(jnp.float64) if any(x.dtype == jnp.float64 for x in xs) else jnp.dtype(jnp.float32)
    return [_checks.move_classes_last(x, axes) for x in xs], batch, axes, ct


def _signs(
    fn: str, targets: Any, shape: tuple[int, ...], kept: jax.Array | None, ct: Any, x_name: str
) -> tuple[jax.Array, _checks.Check | None]:
    """(±1 labels in ``ct``, their checkify check): ``-1``/``+1`` (integer or floating) or bool.

    A concrete label outside ``{-1, +1}`` on a kept element is a ValueError now; a traced one
    becomes NaN (so its loss and gradients are NaN, never a silently wrong value) and fails a
    ``checkify`` user check that names it. Dropped elements read +1.
    """
    t = _checks.as_array(fn, "targets", targets)
    if not (jnp.issubdtype(t.dtype, jnp.floating) or jnp.issubdtype(t.dtype, jnp.integer) or t.dtype == jnp.bool_):
        raise TypeError(
            f"{fn}: targets must be a floating, integer or boolean array of -1/+1 labels, got dtype {t.dtype}."
        )
    if t.shape != tuple(shape):
        raise ValueError(f"{fn}: targets has shape {t.shape} but must have the shape {tuple(shape)} of {x_name}.")
    y, check = _checks.sign_labels(fn, t, kept, ct)
    return (y if kept is None else jnp.where(kept, y, 1)), check


def _ones(x: jax.Array) -> jax.Array:
    return jnp.ones(x.shape, bool)


def _cosine_terms(a: jax.Array, b: jax.Array, mask: jax.Array, ct: Any) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``a·b``, ``|a|²``, ``|b|²`` terms over the kept entries, each upcast on its own."""
    if a.dtype.itemsize <= 2:
        # Each sum reads half-precision inputs through its own barrier on XLA:CPU, which would
        # otherwise share one float32 upcast between them: an [N, D] copy.
        (a0, b0), (a1,), (b2,) = (
            _backend.separately((a, b), 0),
            _backend.separately((a,), 1),
            _backend.separately((b,), 2),
        )
    else:
        a0, b0, a1, b2 = a, b, a, b
    terms = (a0.astype(ct) * b0.astype(ct), jnp.square(a1.astype(ct)), jnp.square(b2.astype(ct)))
    # A select (not a product with the mask): NaN padding never enters a sum.
    return tuple(jnp.where(mask, t, 0) for t in terms)  # type: ignore[return-value]


@functools.partial(jax.custom_jvp, nondiff_argnums=(3,))
def _cosine_sums(a: jax.Array, b: jax.Array, mask: jax.Array, ct: Any) -> tuple[jax.Array, ...]:
    """(``a·b``, ``|a|²``, ``|b|²``, the number of kept entries) per row, in one fused pass each."""
    (dot, na, nb), (count,) = _backend.row_sums(_cosine_terms(a, b, mask, ct), (mask,))
    return dot, na, nb, count


def _cosine_tangent(ct, live, primals, tangents):
    a, b, mask = primals
    da, db = tangents if live == (True, True) else ((tangents[0], None) if live[0] else (None, tangents[0]))
    # The factors are masked (not the products): NaN padding times a zero cotangent would be NaN.
    a, b = jnp.where(mask, a.astype(ct), 0), jnp.where(mask, b.astype(ct), 0)
    # d(a·b) = b·da + a·db, d|a|² = 2a·da, d|b|² = 2b·db.
    pieces = {"dot": [], "na": [], "nb": []}
    if da is not None:
        da = da.astype(ct)
        pieces["dot"].append(b * da)
        pieces["na"].append(2 * a * da)
    if db is not None:
        db = db.astype(ct)
        pieces["dot"].append(a * db)
        pieces["nb"].append(2 * b * db)
    out = []
    for key in ("dot", "na", "nb"):
        terms = pieces[key]
        if not terms:
            out.append(jnp.zeros(a.shape[:-1], ct))
        else:
            total = terms[0] if len(terms) == 1 else terms[0] + terms[1]
            out.append(jnp.sum(total, axis=-1))
    return tuple(out)


@functools.partial(_cosine_sums.defjvp, symbolic_zeros=True)
def _cosine_sums_jvp(ct, primals, tangents):
    # The sums are quadratic in (a, b): the tangent is linear in (da, db), its factors (a, b)
    # recomputed next to the gradient, so reverse mode saves no [N, D] value (no masked or
    # upcast copy of the inputs).
    out = _cosine_sums(*primals, ct)
    live = tuple(not isinstance(t, SymbolicZero) for t in tangents[:2])
    zero = np.zeros(out[3].shape, jax.dtypes.float0)
    if not any(live):
        return out, (*(jnp.zeros_like(o) for o in out[:3]), zero)
    fn = functools.partial(_cosine_tangent, ct, live)
    dd = _backend.recomputed(fn)(primals, tuple(t for t, ok in zip(tangents[:2], live) if ok))
    return out, (*dd, zero)


def _inverse_norm(squared_norm: jax.Array, epsilon: jax.Array) -> jax.Array:
    """``1 / sqrt(max(|x|², epsilon))``, and 0 for a zero vector (with ``epsilon = 0``)."""
    clipped = jnp.maximum(squared_norm, epsilon)  # optax: the squared norm is clipped at epsilon
    positive = clipped > 0
    # Double where: a zero vector has no direction: its 1/|x| reads 0 and no inf reaches the gradient.
    return jnp.where(positive, jax.lax.rsqrt(jnp.where(positive, clipped, 1)), 0)


def _check_p(fn: str, p: Any) -> float:
    ok = isinstance(p, (int, float, np.integer, np.floating)) and not isinstance(p, (bool, np.bool_))
    if not ok or not (float(p) > 0):
        raise ValueError(
            f"{fn}: p must be a positive number (a static Python float or int, inf for the max norm), got {p!r}."
        )
    return float(p)


def _powers(v: jax.Array, p: float) -> jax.Array:
    return v * v if p == 2 else (jnp.abs(v) if p == 1 else jnp.abs(v) ** p)


def _power_partials(v: jax.Array, p: float) -> jax.Array:
    # d|v|^p / dv = p |v|^(p-1) sign(v): 2v for p = 2, sign(v) for p = 1 (0 at v = 0).
    return 2 * v if p == 2 else (jnp.sign(v) if p == 1 else p * jnp.abs(v) ** (p - 1) * jnp.sign(v))


def _difference(x, y, eps, ct, i):
    if x.dtype.itemsize <= 2:
        # Each reader of half-precision inputs upcasts through its own barrier on XLA:CPU (else
        # the readers share one float32 copy of x, an [N, D] array).
        x, y = _backend.separately((x, y), i)
    return x.astype(ct) - y.astype(ct) + eps


# The (x, y) pairs of a triplet (anchor, positive, negative): d(a, p), d(a, n) and, with swap, d(p, n).
_PAIRS = ((0, 1), (0, 2), (1, 2))


@functools.partial(jax.custom_jvp, nondiff_argnums=(3, 4, 5, 6))
def _sums_of_powers(xs, eps, mask, p, ct, count, indices):
    """``Σ |x - y + eps|^p`` per row for the first ``count`` pairs of ``xs``, 0 on rows not kept."""
    out = []
    for k, (i, j) in enumerate(_PAIRS[:count]):
        terms = _powers(_difference(xs[i], xs[j], eps, ct, indices + k), p)
        (total,), (n,) = _backend.row_sums((terms,), (_ones(terms),))
        # An empty row sums to 0 (this use of the count keeps the reduce variadic: a lone sum
        # goes to an XLA:CPU kernel fed from a float32 copy of the terms).
        total = jnp.where(n > 0, total, 0)
        # The rows are dropped after the sum (an [N, D] select would be written to memory on
        # XLA:CPU); the tangent drops them before, so NaN padding never reaches a gradient.
        out.append(jnp.where(mask, total, 0))
    return tuple(out)


def _sums_of_powers_tangent(p, ct, count, live, primals, tangents):
    xs, eps, mask = primals
    it = iter(tangents)
    # Only the live tangents are passed (zeros would be written to memory at the barrier).
    dxs = [next(it) if ok else None for ok in live[:3]]
    deps = next(it) if live[3] else None
    out = []
    for i, j in _PAIRS[:count]:
        v = xs[i].astype(ct) - xs[j].astype(ct) + eps
        # Linear in the tangents: Σ p|v|^(p-1) sign(v) (dx - dy + deps), over the kept rows.
        parts = [t for t in (dxs[i], None if dxs[j] is None else -dxs[j].astype(ct), deps) if t is not None]
        if not parts:
            out.append(jnp.zeros(xs[0].shape[:-1], ct))
            continue
        dv = parts[0].astype(ct)
        for t in parts[1:]:
            dv = dv + t
        # The partials are masked (not the products): NaN padding times a zero cotangent is NaN.
        out.append(jnp.sum(jnp.where(mask[..., None], _power_partials(v, p), 0) * dv, axis=-1))
    return tuple(out)


@functools.partial(_sums_of_powers.defjvp, symbolic_zeros=True)
def _sums_of_powers_jvp(p, ct, count, indices, primals, tangents):
    # One rule for every pair: in reverse mode each input's gradient is one fused elementwise
    # pass (its partials recomputed, never saved), written once in the input's dtype.
    out = _sums_of_powers(*primals, p, ct, count, indices)
    dxs, deps, _ = tangents
    live = tuple(not isinstance(t, SymbolicZero) for t in (*dxs, deps))
    if not any(live):
        return out, tuple(jnp.zeros_like(o) for o in out)
    tangent = _backend.recomputed(functools.partial(_sums_of_powers_tangent, p, ct, count, live))
    return out, tangent(primals, [t for t, ok in zip((*dxs, deps), live) if ok])


def _norm(total: jax.Array, p: float) -> jax.Array:
    """``total^(1/p)``, with the zero norm's gradient 0 (d s^(1/p) is inf at s = 0): double where."""
    if p == 1:
        return total
    positive = total > 0
    safe = jnp.where(positive, total, 1)
    return jnp.where(positive, jnp.sqrt(safe) if p == 2 else safe ** (1 / p), 0)


def _triplet_distances(
    xs: tuple[jax.Array, ...], p: float, eps: jax.Array, ct: Any, mask: jax.Array | None, count: int
) -> list[jax.Array]:
    """PyTorch's ``pairwise_distance`` ``||x - y + eps||_p`` over the last axis, in ``ct``, for the
    first ``count`` of (anchor, positive), (anchor, negative), (positive, negative); 0 on the rows
    that ``mask`` (of the batch shape) drops."""
    if p == math.inf:
        out = []
        for i, j in _PAIRS[:count]:
            v = jnp.abs(xs[i].astype(ct) - xs[j].astype(ct) + eps)
            out.append(jnp.max(v if mask is None else jnp.where(mask[..., None], v, 0), axis=-1))
        return out
    kept = jnp.ones(xs[0].shape[:-1], bool) if mask is None else mask
    return [_norm(t, p) for t in _sums_of_powers(tuple(xs), eps, kept, p, ct, count, 0)]


def _sign_values(t: jax.Array, ct: Any, validate: bool) -> jax.Array:
    """Labels as ±1 in ``ct``: bool True = +1; with ``validate`` a value outside {-1, +1} is NaN."""
    if t.dtype == jnp.bool_:
        return jnp.where(t, 1, -1).astype(ct)
    y = t.astype(ct)
    # A label outside {-1, +1} poisons its loss and gradients with NaN (never a wrong value).
    return jnp.where(y * y == 1, y, jnp.nan) if validate else y


def _upcast(tangents, ct):
    """Half-precision tangents in the compute dtype (a linear map: its transpose casts the gradient back)."""
    return tuple(t if isinstance(t, SymbolicZero) else t.astype(ct) for t in tangents)


def _ranking_parts(x1, x2, t, m, mask, ct, *, partials: bool):
    """``max(0, m - y (x1 - x2))`` on the kept elements, or its partials in (x1, x2, t, m, mask)."""
    y = _sign_values(t, ct, validate=False)
    d = x1.astype(ct) - x2.astype(ct)
    z = m - y * d
    if not partials:
        return jnp.where(mask, jax.nn.relu(z), 0)
    # Where the margin is violated: -y in x1, +y in x2, -(x1 - x2) in y, 1 in the margin; 0 at the kink.
    active = mask & (z > 0)
    zero = jnp.zeros((), ct)
    return (
        jnp.where(active, -y, zero),
        jnp.where(active, y, zero),
        jnp.where(active, -d, zero),
        jnp.where(active, 1, zero),
        zero,
    )


@functools.partial(jax.custom_jvp, nondiff_argnums=(5,))
def _ranking(x1, x2, t, m, mask, ct):
    return _ranking_parts(x1, x2, t, m, mask, ct, partials=False)


@functools.partial(_ranking.defjvp, symbolic_zeros=True)
def _ranking_jvp(ct, primals, tangents):
    # A rule only so that reverse mode recomputes the partials from the inputs (the labels and
    # masks as given): autodiff would save the float32 labels, an [N, D] array, for the backward.
    out = _ranking(*primals, ct)
    parts = functools.partial(_ranking_parts, ct=ct, partials=True)
    return out, _backend.linear_tangent(parts, out, primals, _upcast(tangents, ct))


def _hinge_embedding_parts(x, t, m, mask, ct, *, partials: bool):
    """``x`` (y = 1) or ``max(0, m - x)`` (y = -1) on the kept elements, or its partials in (x, t, m, mask)."""
    y = _sign_values(t, ct, validate=True)
    xc = x.astype(ct)
    bad = jnp.isnan(y)
    if not partials:
        # A NaN label gives x · NaN: a NaN loss with NaN gradients.
        return jnp.where(mask, jnp.where(bad, xc * y, jnp.where(y > 0, xc, jax.nn.relu(m - xc))), 0)
    hinge = (y < 0) & (m - xc > 0)  # the violated hinge (0 at its kink)
    zero = jnp.zeros((), ct)
    dx = jnp.where(bad, y, jnp.where(y > 0, 1, jnp.where(hinge, -1, zero)))
    # (No derivative in the labels: a ±1 label is a class, not a value.)
    return jnp.where(mask, dx, zero), zero, jnp.where(mask & hinge, 1, zero), zero


@functools.partial(jax.custom_jvp, nondiff_argnums=(4,))
def _hinge_embedding(x, t, m, mask, ct):
    return _hinge_embedding_parts(x, t, m, mask, ct, partials=False)


@functools.partial(_hinge_embedding.defjvp, symbolic_zeros=True)
def _hinge_embedding_jvp(ct, primals, tangents):
    # As for _ranking: the partials are recomputed from the labels as given, never saved.
    out = _hinge_embedding(*primals, ct)
    parts = functools.partial(_hinge_embedding_parts, ct=ct, partials=True)
    return out, _backend.linear_tangent(parts, out, primals, _upcast(tangents, ct))


# --------------------------------------------------------------------------------------
# Cosine similarity and distance (optax's).


def _cosine(fn, predictions, targets, epsilon, axis, where, reduction, *, distance: bool) -> jax.Array:
    _checks.check_reduction(fn, reduction)
    eps_check = _checks.traced_range_check(fn, "epsilon", epsilon, 0.0)
    (a, b), _, axes, ct = _features(fn, ("predictions", "targets"), (predictions, targets), axis)
    mask = _checks.elementwise_mask(fn, where, jnp.shape(predictions), x_name="predictions")
    counted = _ones(a) if mask is None else _checks.move_classes_last(mask, axes)
    # Dropped elements leave the sums (and get zero gradient): NaN padding reaches neither.
    dot, na, nb, count = _cosine_sums(a, b, counted, ct)
    e = _checks.hyperparameter(epsilon, ct)
    # cos = (a / |a|)·(b / |b|) = a·b / (|a| |b|), with each |x|² clipped at epsilon (optax).
    cos = dot * _inverse_norm(na, e) * _inverse_norm(nb, e)
    value = 1 - cos if distance else cos
    kept = None if mask is None else count > 0
    return _checks.attach_checks(_reduction.reduce_elements(value, kept, reduction), [eps_check])


def cosine_similarity(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    epsilon: ArrayLike = 0.0,
    axis: int | tuple[int, ...] = -1,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "none",
) -> jax.Array:
    r"""Cosine similarity of two batches of vectors, optax's ``cosine_similarity``.

    Per row (over the feature ``axis``):

    .. math::
        s = \frac{a \cdot b}{\sqrt{\max(\lVert a\rVert^2, \epsilon)}\,\sqrt{\max(\lVert b\rVert^2, \epsilon)}}

    It is a similarity (higher is closer), not a loss: as in optax the default is
    ``reduction="none"``, one value per row; :func:`cosine_distance` is ``1 - s``.

    Args:
      predictions: floating ``[..., D]`` vectors (bf16/f16 are computed in float32).
      targets: floating vectors of ``predictions.shape``.
      epsilon: the squared norms are clipped at ``epsilon`` (optax's convention; may be traced,
        must be >= 0). PyTorch's ``eps`` clips the norm itself: ``eps=e`` there is
        ``epsilon=e**2`` here (``F.cosine_similarity``'s default ``eps=1e-8`` is ``epsilon=1e-16``).
      axis: static feature axis, or a tuple of axes (optax's default -1; PyTorch's ``dim=1``).
      where: optional boolean mask of ``predictions.shape`` (or of the same rank with size-1
        axes, e.g. ``(N, 1)`` to drop whole rows), as in optax: only the kept elements enter
        the sums. A row with no kept element is dropped (0 in ``"none"``, out of the mean).
      reduction: ``"none"`` (the default, optax's per-row output), ``"sum"`` or ``"mean"``
        over the rows (an empty mean is 0.0, not NaN).

    Returns:
      ``[...]`` (the batch shape) with ``"none"``, else a scalar; float32 (float64 for
      float64 inputs). Gradients come back in each input's dtype.

    Notes:
      A zero vector (with ``epsilon = 0``, optax's default, where optax returns NaN) has no
      direction: its similarity is 0 with zero gradient. Compared with PyTorch's
      ``F.cosine_similarity(x1, x2, dim, eps)``: the same values for vectors whose norms
      exceed ``eps``; PyTorch broadcasts ``x1`` against ``x2``, jaxent requires one shape.
      Squared norms are formed in float32 (float64): entries beyond about ``1e19`` (float32)
      overflow, infinite entries give NaN (the direction is undefined).

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> a, b = jnp.array([[1.0, 0.0], [1.0, 1.0]]), jnp.array([[0.0, 2.0], [2.0, 2.0]])
      >>> jaxent.cosine_similarity(a, b).round(4)
      Array([0., 1.], dtype=float32)

    References:
      optax ``optax.losses.cosine_similarity``; PyTorch ``torch.nn.functional.cosine_similarity``.
    """
    return _cosine("cosine_similarity", predictions, targets, epsilon, axis, where, reduction, distance=False)


def cosine_distance(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    epsilon: ArrayLike = 0.0,
    axis: int | tuple[int, ...] = -1,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "none",
) -> jax.Array:
    r"""Cosine distance, ``1 -`` :func:`cosine_similarity`, optax's ``cosine_distance``.

    .. math::
        \ell = 1 - \frac{a \cdot b}{\sqrt{\max(\lVert a\rVert^2, \epsilon)}\,\sqrt{\max(\lVert b\rVert^2, \epsilon)}}

    per row, in ``[0, 2]``. As in optax the default is ``reduction="none"`` (one value per
    row); pass ``reduction="mean"`` for a training loss.

    Args:
      predictions: floating ``[..., D]`` vectors (bf16/f16 are computed in float32).
      targets: floating vectors of ``predictions.shape``.
      epsilon: the squared norms are clipped at ``epsilon`` (optax's convention; may be traced,
        must be >= 0). PyTorch's ``eps`` clips the norm itself: ``eps=e`` there is
        ``epsilon=e**2`` here (``F.cosine_similarity``'s default ``eps=1e-8`` is ``epsilon=1e-16``).
      axis: static feature axis, or a tuple of axes (optax's default -1; PyTorch's ``dim=1``).
      where: optional boolean mask of ``predictions.shape`` (or of the same rank with size-1
        axes, e.g. ``(N, 1)`` to drop whole rows), as in optax: only the kept elements enter
        the sums. A row with no kept element is dropped (0 in ``"none"``, out of the mean).
      reduction: ``"none"`` (the default, optax's per-row output), ``"sum"`` or ``"mean"``
        over the rows (an empty mean is 0.0, not NaN).

    Returns:
      ``[...]`` with ``"none"``, else a scalar; float32 (float64 for float64 inputs).

    Notes:
      A zero vector (with ``epsilon = 0``) has distance 1 with zero gradient (optax: NaN).

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> a, b = jnp.array([[1.0, 0.0], [1.0, 1.0]]), jnp.array([[0.0, 2.0], [-2.0, -2.0]])
      >>> jaxent.cosine_distance(a, b)
      Array([1., 2.], dtype=float32)
      >>> jaxent.cosine_distance(a, b, reduction="mean")
      Array(1.5, dtype=float32)

    References:
      optax ``optax.losses.cosine_distance``.
    """
    return _cosine("cosine_distance", predictions, targets, epsilon, axis, where, reduction, distance=True)


# --------------------------------------------------------------------------------------
# PyTorch's embedding losses.


def cosine_embedding_loss(
    x1: ArrayLike,
    x2: ArrayLike,
    targets: ArrayLike,
    *,
    margin: ArrayLike = 0.0,
    axis: int | tuple[int, ...] = -1,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
) -> jax.Array:
    r"""Cosine embedding loss, PyTorch's ``cosine_embedding_loss``.

    Per pair of rows, with :math:`\cos = x_1 \cdot x_2 / \sqrt{(\lVert x_1\rVert^2 + 10^{-12})
    (\lVert x_2\rVert^2 + 10^{-12})}` (PyTorch's constant):

    .. math::
        \ell = \begin{cases} 1 - \cos & y = 1 \\ \max(0, \cos - \mathrm{margin}) & y = -1 \end{cases}

    then ``reduction``: ``"none"`` (the batch shape), ``"sum"``, or ``"mean"`` over the kept
    pairs (an empty mean is 0.0, not NaN).

    Args:
      x1: floating ``[..., D]`` embeddings (PyTorch: ``(N, D)`` or ``(D,)``).
      x2: floating embeddings of ``x1.shape``.
      targets: labels of the batch shape ``x1.shape`` without ``axis``: ``-1``/``+1``
        (integer or floating) or bool (``True`` = +1).
      margin: scalar (may be traced); any finite value (PyTorch suggests [-1, 1]; 0 by default).
      axis: static feature axis, or a tuple of axes (PyTorch: the last).
      where: optional boolean mask of the batch shape: False drops a pair.
      reduction: ``"none"``, ``"sum"`` or ``"mean"``.

    Returns:
      The loss in float32 (float64 for float64 inputs).

    Notes:
      A zero vector has cosine 0 (finite gradients, as in PyTorch). Labels outside
      ``{-1, +1}`` (PyTorch silently gives them 0) are a ``ValueError`` when concrete; traced,
      they give NaN and fail a ``checkify`` user check. The gradient of the ``y = -1`` hinge is
      0 at its kink ``cos = margin`` (PyTorch's ``clamp_min`` passes it there).

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> x1, x2 = jnp.array([[1.0, 0.0], [1.0, 0.0]]), jnp.array([[1.0, 1.0], [0.0, 1.0]])
      >>> jaxent.cosine_embedding_loss(x1, x2, jnp.array([1, -1]), reduction="none")
      Array([0.2928..., 0.        ], dtype=float32)

    References:
      PyTorch ``torch.nn.functional.cosine_embedding_loss``.
    """
    fn = "cosine_embedding_loss"
    _checks.check_reduction(fn, reduction)
    (a, b), batch, _, ct = _features(fn, ("x1", "x2"), (x1, x2), axis)
    kept = _checks.row_mask(fn, where, batch, "x1")
    y, y_check = _signs(fn, targets, batch, kept, ct, "x1 without its feature axis")
    m, m_check = _checks.finite_hyperparameter(fn, "margin", margin, ct)
    rows = _ones(a) if kept is None else jnp.broadcast_to(kept[..., None], a.shape)
    dot, na, nb, _ = _cosine_sums(a, b, rows, ct)
    # a·b / sqrt((|a|² + ε)(|b|² + ε)), as two rsqrt factors: the product of the norms cannot overflow.
    cos = dot * jax.lax.rsqrt(na + _TORCH_COSINE_EPSILON) * jax.lax.rsqrt(nb + _TORCH_COSINE_EPSILON)
    # A NaN label (outside {-1, +1}, traced) gives a NaN loss and NaN gradients: cos · NaN.
    losses = jnp.where(jnp.isnan(y), cos * y, jnp.where(y > 0, 1 - cos, jax.nn.relu(cos - m)))
    return _checks.attach_checks(_reduction.reduce_elements(losses, kept, reduction), [y_check, m_check])


def margin_ranking_loss(
    x1: ArrayLike,
    x2: ArrayLike,
    targets: ArrayLike,
    *,
    margin: ArrayLike = 0.0,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
) -> jax.Array:
    r"""Margin ranking loss, PyTorch's ``margin_ranking_loss``.

    Elementwise, with ``y = 1`` when ``x1`` should rank higher than ``x2`` and ``y = -1``
    when lower:

    .. math::
        \ell = \max(0,\ -y\,(x_1 - x_2) + \mathrm{margin})

    then ``reduction``: ``"none"`` (the shape of ``x1``), ``"sum"``, or ``"mean"`` over the
    kept elements (an empty mean is 0.0, not NaN).

    Args:
      x1: floating scores of any shape.
      x2: floating scores of ``x1.shape`` (PyTorch broadcasts; here the shapes must match).
      targets: labels of ``x1.shape``: ``-1``/``+1`` (integer or floating) or bool (``True`` = +1).
        As in PyTorch any real value is accepted (and scales the difference; 0 gives ``margin``).
      margin: scalar (may be traced); any finite value.
      where: optional boolean mask of ``x1.shape`` (or of the same rank with size-1 axes).
      reduction: ``"none"``, ``"sum"`` or ``"mean"``.

    Returns:
      The loss in float32 (float64 for float64 inputs).

    Notes:
      The gradient is ``∓y`` where the margin is violated and 0 elsewhere and at the kink. At
      infinite scores the loss is exact: 0 on the right side, ``+inf`` (finite gradient) on
      the wrong one; only ``x1 = x2 = ±inf`` (``inf - inf``) is NaN.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.margin_ranking_loss(jnp.array([0.5, 0.2]), jnp.array([0.1, 0.4]), jnp.array([1, 1]), margin=0.1)
      Array(0.15, dtype=float32)

    References:
      PyTorch ``torch.nn.functional.margin_ranking_loss``.
    """
    fn = "margin_ranking_loss"
    _checks.check_reduction(fn, reduction)
    a, b = (_checks.as_array(fn, n, x) for n, x in (("x1", x1), ("x2", x2)))
    _checks.check_floating(fn, "x1", a)
    _checks.check_floating(fn, "x2", b)
    _checks.check_same_shape(fn, "x2", b, "x1", a.shape)
    shape = a.shape
    ct = jnp.dtype(jnp.float64) if jnp.float64 in (a.dtype, b.dtype) else jnp.dtype(jnp.float32)
    kept = _checks.elementwise_mask(fn, where, shape, x_name="x1")
    t = _checks.as_array(fn, "targets", targets)
    if not (jnp.issubdtype(t.dtype, jnp.floating) or jnp.issubdtype(t.dtype, jnp.integer) or t.dtype == jnp.bool_):
        raise TypeError(f"{fn}: targets must be a floating, integer or boolean array, got dtype {t.dtype}.")
    _checks.check_same_shape(fn, "targets", t, "x1", shape)
    m, m_check = _checks.finite_hyperparameter(fn, "margin", margin, ct)
    # The mask as given (size-1 axes broadcast inside the fused pass); dropped elements read 0.
    mask = jnp.ones((1,) * len(shape), bool) if where is None else jnp.asarray(where)
    losses = _ranking(a, b, t, m, mask, ct)
    return _checks.attach_checks(_reduction.reduce_elements(losses, kept, reduction), [m_check])


def hinge_embedding_loss(
    inputs: ArrayLike,
    targets: ArrayLike,
    *,
    margin: ArrayLike = 1.0,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
) -> jax.Array:
    r"""Hinge embedding loss, PyTorch's ``hinge_embedding_loss``.

    Elementwise, for a distance (or dissimilarity) ``x`` and a label ``y``:

    .. math::
        \ell = \begin{cases} x & y = 1 \\ \max(0,\ \mathrm{margin} - x) & y = -1 \end{cases}

    then ``reduction``: ``"none"`` (the shape of ``inputs``), ``"sum"``, or ``"mean"`` over
    the kept elements (an empty mean is 0.0, not NaN).

    Args:
      inputs: floating distances of any shape (e.g. an L1 pairwise distance).
      targets: labels of ``inputs.shape``: ``-1``/``+1`` (integer or floating) or bool
        (``True`` = +1, similar).
      margin: scalar (may be traced); any finite value.
      where: optional boolean mask of ``inputs.shape`` (or of the same rank with size-1 axes).
      reduction: ``"none"``, ``"sum"`` or ``"mean"``.

    Returns:
      The loss in float32 (float64 for float64 inputs).

    Notes:
      Labels outside ``{-1, +1}`` are a ``ValueError`` when concrete (PyTorch adds both
      terms for them); traced, they give NaN and fail a ``checkify`` user check. The hinge's
      gradient is 0 at its kink ``x = margin``.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.hinge_embedding_loss(jnp.array([0.3, 0.4, 2.0]), jnp.array([1, -1, -1]), reduction="none")
      Array([0.3, 0.6, 0. ], dtype=float32)

    References:
      PyTorch ``torch.nn.functional.hinge_embedding_loss``.
    """
    fn = "hinge_embedding_loss"
    _checks.check_reduction(fn, reduction)
    x = _checks.as_array(fn, "inputs", inputs)
    _checks.check_floating(fn, "inputs", x)
    ct = _checks.compute_dtype(x.dtype)
    kept = _checks.elementwise_mask(fn, where, x.shape, x_name="inputs")
    _, y_check = _signs(fn, targets, x.shape, kept, ct, "inputs")  # validation and the checkify check
    t = _checks.as_array(fn, "targets", targets)
    m, m_check = _checks.finite_hyperparameter(fn, "margin", margin, ct)
    mask = jnp.ones((1,) * x.ndim, bool) if where is None else jnp.asarray(where)
    losses = _hinge_embedding(x, t, m, mask, ct)
    return _checks.attach_checks(_reduction.reduce_elements(losses, kept, reduction), [y_check, m_check])


def _triplet_reduce(fn, d_pos, d_neg, d_swap, m, kept, reduction, checks):
    if d_swap is not None:
        d_neg = jnp.minimum(d_neg, d_swap)
    losses = jax.nn.relu(m + d_pos - d_neg)
    return _checks.attach_checks(_reduction.reduce_elements(losses, kept, reduction), checks)


def triplet_margin_loss(
    anchor: ArrayLike,
    positive: ArrayLike,
    negative: ArrayLike,
    *,
    margin: ArrayLike = 1.0,
    p: float = 2.0,
    eps: ArrayLike = 1e-6,
    swap: bool = False,
    axis: int | tuple[int, ...] = -1,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
) -> jax.Array:
    r"""Triplet margin loss, PyTorch's ``triplet_margin_loss`` (optax has one too; see Notes).

    Per triplet of rows, with PyTorch's pairwise distance :math:`d(x, y) = \lVert x - y +
    \mathrm{eps} \rVert_p` over the feature ``axis``:

    .. math::
        \ell = \max\bigl(0,\ \mathrm{margin} + d(a, p) - d(a, n)\bigr)

    where with ``swap`` :math:`d(a, n)` becomes :math:`\min(d(a, n), d(p, n))` (the distance
    swap). Then ``reduction``: ``"none"`` (the batch shape), ``"sum"``, or ``"mean"`` over the
    kept triplets (an empty mean is 0.0, not NaN).

    Args:
      anchor: floating ``[..., D]`` embeddings (PyTorch: ``(N, D)`` or ``(D,)``).
      positive: floating embeddings of ``anchor.shape``.
      negative: floating embeddings of ``anchor.shape``.
      margin: scalar (may be traced); any finite value.
      p: static norm degree, any positive number (``math.inf``: the max norm).
      eps: added to every difference (PyTorch's convention; may be traced).
      swap: static; use the distance swap.
      axis: static feature axis, or a tuple of axes (PyTorch: the last).
      where: optional boolean mask of the batch shape: False drops a triplet.
      reduction: ``"none"``, ``"sum"`` or ``"mean"``.

    Returns:
      The loss in float32 (float64 for float64 inputs).

    Notes:
      A zero difference has distance 0 with gradient 0 (the norm's subgradient at 0, as in
      PyTorch). optax's ``triplet_margin_loss(anchors, positives, negatives, axis,
      norm_degree, margin, eps)`` differs: it returns the per-row losses (``reduction="none"``
      here), adds ``eps`` inside the sum of powers (:math:`(\sum_i d_i^p + \mathrm{eps})^{1/p}`),
      takes no absolute value (odd ``p`` is not a norm there) and has no ``swap``; with
      ``eps=0`` and an even ``p`` both agree. Squared differences beyond about ``1e19``
      (float32) overflow.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> a, p, n = jnp.array([[0.0, 0.0]]), jnp.array([[0.3, 0.4]]), jnp.array([[1.0, 0.0]])
      >>> jaxent.triplet_margin_loss(a, p, n, eps=0.0)
      Array(0.5, dtype=float32)

    References:
      PyTorch ``torch.nn.functional.triplet_margin_loss``; Balntas et al., *Learning shallow
      convolutional feature descriptors with triplet losses* (BMVC 2016).
    """
    fn = "triplet_margin_loss"
    _checks.check_reduction(fn, reduction)
    p = _check_p(fn, p)
    _checks.check_static_bool(fn, "swap", swap)
    names = ("anchor", "positive", "negative")
    xs, batch, _, ct = _features(fn, names, (anchor, positive, negative), axis)
    kept = _checks.row_mask(fn, where, batch, "anchor")
    m, m_check = _checks.finite_hyperparameter(fn, "margin", margin, ct)
    e, e_check = _checks.finite_hyperparameter(fn, "eps", eps, ct)
    a, pos, neg = xs
    # Dropped rows leave the sums (and get zero gradient): NaN padding reaches neither.
    d_pos, d_neg, *d_swap = _triplet_distances((a, pos, neg), p, e, ct, kept, 3 if swap else 2)
    return _triplet_reduce(fn, d_pos, d_neg, d_swap[0] if swap else None, m, kept, reduction, [m_check, e_check])


def triplet_margin_with_distance_loss(
    anchor: ArrayLike,
    positive: ArrayLike,
    negative: ArrayLike,
    *,
    distance_function: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
    margin: ArrayLike = 1.0,
    swap: bool = False,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
) -> jax.Array:
    r"""Triplet margin loss with any distance, PyTorch's ``triplet_margin_with_distance_loss``.

    .. math::
        \ell = \max\bigl(0,\ \mathrm{margin} + d(a, p) - d(a, n)\bigr)

    per triplet, ``d`` being ``distance_function`` (by default PyTorch's
    ``pairwise_distance``, :math:`\lVert x - y + 10^{-6}\rVert_2` over the last axis); with
    ``swap``, :math:`d(a, n)` becomes :math:`\min(d(a, n), d(p, n))`. Then ``reduction`` over
    the triplets (an empty mean is 0.0, not NaN).

    Args:
      anchor: floating embeddings, e.g. ``[N, D]``.
      positive: floating embeddings of ``anchor.shape``.
      negative: floating embeddings of ``anchor.shape``.
      distance_function: static callable ``(x, y) -> distances`` (e.g.
        ``lambda x, y: jaxent.cosine_distance(x, y)``), called on the arrays as given (in
        their dtype, rows dropped by ``where`` zeroed); it returns one floating value per
        triplet, the same shape for each pair. ``None``: the default distance above,
        computed in float32 (float64).
      margin: scalar (may be traced); any finite value (PyTorch requires > 0).
      swap: static; use the distance swap.
      where: optional boolean mask of the distances' shape: False drops a triplet.
      reduction: ``"none"`` (the distances' shape), ``"sum"`` or ``"mean"``.

    Returns:
      The loss in float32 (float64 for float64 distances).

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> a, p, n = jnp.array([[1.0, 0.0]]), jnp.array([[1.0, 1.0]]), jnp.array([[0.0, 1.0]])
      >>> jaxent.triplet_margin_with_distance_loss(a, p, n, distance_function=jaxent.cosine_distance)
      Array(0.2928..., dtype=float32)

    References:
      PyTorch ``torch.nn.functional.triplet_margin_with_distance_loss``.
    """
    fn = "triplet_margin_with_distance_loss"
    _checks.check_reduction(fn, reduction)
    _checks.check_static_bool(fn, "swap", swap)
    if distance_function is not None and not callable(distance_function):
        raise TypeError(
            f"{fn}: distance_function must be a callable (x, y) -> distances or None, got "
            f"{type(distance_function).__name__}; pass e.g. distance_function=jaxent.cosine_distance."
        )
    names = ("anchor", "positive", "negative")
    if distance_function is None:
        xs, batch, _, ct = _features(fn, names, (anchor, positive, negative), -1)
        kept = _checks.row_mask(fn, where, batch, "anchor")
        d = _triplet_distances(tuple(xs), 2.0, jnp.asarray(1e-6, ct), ct, kept, 3 if swap else 2)
    else:
        xs = [_checks.as_array(fn, n, x) for n, x in zip(names, (anchor, positive, negative))]
        for n, x in zip(names, xs):
            _checks.check_floating(fn, n, x)
        for n, x in zip(names[1:], xs[1:]):
            _checks.check_same_shape(fn, n, x, "anchor", xs[0].shape)
        kept = None
        if where is not None:
            # The distances' shape is known only after a call: the mask is checked against it
            # below. A mask of the leading (row) axes zeroes the dropped rows first, so that NaN
            # padding reaches neither the value nor the gradient.
            mask = _checks.as_array(fn, "where", where)
            if mask.dtype == jnp.bool_ and mask.shape == xs[0].shape[: mask.ndim]:
                fill = mask.reshape(mask.shape + (1,) * (xs[0].ndim - mask.ndim))
                xs = [jnp.where(fill, x, jnp.zeros((), x.dtype)) for x in xs]
        a, pos, neg = xs
        d = [distance_function(a, pos), distance_function(a, neg)] + ([distance_function(pos, neg)] if swap else [])
    for di in d:
        if not isinstance(di, jax.Array | np.ndarray) or not jnp.issubdtype(di.dtype, jnp.floating):
            raise TypeError(f"{fn}: distance_function must return a floating array, got {type(di).__name__}.")
        if di.shape != d[0].shape:
            raise ValueError(
                f"{fn}: distance_function returned shapes {d[0].shape} and {di.shape}; it must return one "
                "distance per triplet, the same shape for every pair."
            )
    ct = _checks.compute_dtype(jnp.result_type(*(di.dtype for di in d)))
    d = [di.astype(ct) for di in d]
    if distance_function is not None:
        kept = _checks.row_mask(fn, where, d[0].shape, "the distances")
    m, m_check = _checks.finite_hyperparameter(fn, "margin", margin, ct)
    return _triplet_reduce(fn, d[0], d[1], d[2] if swap else None, m, kept, reduction, [m_check])


# --------------------------------------------------------------------------------------
# NT-Xent (SimCLR).


def ntxent(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    temperature: ArrayLike = 0.07,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
) -> jax.Array:
    r"""Normalized temperature-scaled cross-entropy (NT-Xent, SimCLR), optax's ``ntxent``.

    With :math:`s_{ij} = \cos(e_i, e_j) / T` (each squared norm clipped at the machine
    epsilon of the embeddings' dtype, as optax), the positives :math:`P(i)` of anchor ``i``
    (the other rows with its label) and its negatives :math:`N(i)` (the rows with another
    label):

    .. math::
        \ell_i = \sum_{j \in P(i)} -\log \frac{e^{s_{ij}}}{e^{s_{ij}} + \sum_{k \in N(i)} e^{s_{ik}}}
               = \sum_{j \in P(i)} \operatorname{softplus}\Bigl(\log\sum_{k \in N(i)} e^{s_{ik}} - s_{ij}\Bigr)

    ``"mean"`` (the default, optax's scalar) is :math:`\sum_i \ell_i / \sum_i |P(i)|`, the
    average over positive pairs; ``"sum"`` is :math:`\sum_i \ell_i`; ``"none"`` returns the
    per-anchor :math:`\ell_i`, ``[N]``. Without any positive pair the mean is 0.0 (optax: NaN).

    Args:
      embeddings: floating ``[N, D]`` embeddings (bf16/f16 are computed in float32, the
        similarity matmul at full precision).
      labels: integer ``[N]`` group labels: rows with one label are positive pairs (e.g.
        ``[0, 0, 1, 1]`` for two views of two images).
      temperature: scalar > 0 (may be traced).
      where: optional boolean ``[N]`` mask: False removes a row everywhere (as an anchor, a
        positive and a negative), e.g. padding.
      reduction: ``"none"``, ``"sum"`` or ``"mean"``.

    Returns:
      The loss in float32 (float64 for float64 embeddings).

    Notes:
      The log-sum-exp over the negatives is shifted by its row maximum; the diagonal and the
      positives are masked out with ``where`` rather than with ``-inf`` arithmetic, so an
      anchor without negatives has loss 0 with zero gradient and nothing is NaN. Memory is
      that of the ``[N, N]`` similarities, as in optax (which also forms ``[N, N, D]``
      products: jaxent uses one matmul).

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> e = jnp.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
      >>> jaxent.ntxent(e, jnp.array([0, 0, 1, 1]), temperature=0.5)
      Array(0.4301..., dtype=float32)

    References:
      Chen et al., *A Simple Framework for Contrastive Learning of Visual Representations*
      (ICML 2020); optax ``optax.losses.ntxent``; pytorch-metric-learning ``NTXentLoss``.
    """
    fn = "ntxent"
    _checks.check_reduction(fn, reduction)
    e = _checks.as_array(fn, "embeddings", embeddings)
    _checks.check_floating(fn, "embeddings", e)
    if e.ndim != 2:
        raise ValueError(
            f"{fn}: embeddings must be [N, D], got shape {e.shape}; reshape a batch of views to (N, D) first."
        )
    y = _checks.as_array(fn, "labels", labels)
    if not jnp.issubdtype(y.dtype, jnp.integer):
        raise TypeError(
            f"{fn}: labels must be integer group labels, got dtype {y.dtype}; cast with labels.astype(int)."
        )
    if y.shape != e.shape[:1]:
        raise ValueError(
            f"{fn}: labels has shape {y.shape} but embeddings has shape {e.shape}; pass one label per row, "
            f"shape {e.shape[:1]}."
        )
    kept = _checks.row_mask(fn, where, e.shape[:1], "embeddings")
    t_check = _checks.traced_range_check(fn, "temperature", temperature, 0.0, low_open=True)
    ct = _checks.compute_dtype(e.dtype)
    temp = _checks.hyperparameter(temperature, ct)
    if kept is not None:
        # Dropped rows read 0 (a select: NaN padding reaches neither the value nor the gradient).
        e = jnp.where(kept[:, None], e, jnp.zeros((), e.dtype))
    eps = jnp.asarray(jnp.finfo(e.dtype).eps, ct)
    # In float32 (float64): the gradient's matmul would otherwise round its cotangent to bf16.
    ec = e.astype(ct)
    (n2,), _ = _backend.row_sums((ec * ec,), (_ones(ec),))
    # optax: each squared norm clipped at the dtype's machine epsilon.
    r = _inverse_norm(n2, eps)
    gram = jnp.matmul(ec, ec.T, precision=jax.lax.Precision.HIGHEST)
    s = gram * (r[:, None] * r[None, :]) / temp
    n = e.shape[0]
    same = y[:, None] == y[None, :]
    valid = ~jnp.eye(n, dtype=bool) if kept is None else ~jnp.eye(n, dtype=bool) & kept[:, None] & kept[None, :]
    positive, negative = same & valid, ~same & valid
    # log Σ_{k∈N(i)} exp(s_ik), shifted by the row maximum; an anchor without negatives is handled apart.
    m = jax.lax.stop_gradient(jnp.max(jnp.where(negative, s, -jnp.inf), axis=-1))
    has_negative = jnp.any(negative, axis=-1)
    m = jnp.where(has_negative, m, 0)
    total = jnp.sum(jnp.where(negative, jnp.exp(jnp.where(negative, s - m[:, None], 0)), 0), axis=-1)
    lse = m + jnp.log(jnp.where(has_negative, total, 1))
    # -log(e^s / (e^s + Σ e^{s_k})) = softplus(LSE - s); double where: no negatives, no term.
    live = positive & has_negative[:, None]
    terms = jnp.where(live, jax.nn.softplus(jnp.where(live, lse[:, None] - s, 0)), 0)
    losses = jnp.sum(terms, axis=-1)
    pairs = jnp.sum(positive, axis=-1)
    return _checks.attach_checks(_reduction.reduce(losses, reduction, pairs), [t_check])


# --------------------------------------------------------------------------------------
# Loss objects.


@loss_object
class CosineSimilarity(LossObject):
    """:func:`cosine_similarity` as a frozen dataclass pytree: ``CosineSimilarity(...)(predictions, targets)``.

    ``epsilon`` is a pytree leaf; ``axis`` and ``reduction`` are static (PyTorch's module of this
    name clips the norm at ``eps``, see :func:`cosine_similarity`).

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.CosineSimilarity()(jnp.array([[1.0, 0.0]]), jnp.array([[1.0, 1.0]]))
      Array([0.70710677], dtype=float32)
    """

    function: ClassVar = staticmethod(cosine_similarity)
    epsilon: ArrayLike = 0.0
    axis: int | tuple[int, ...] = static_field(default=-1)
    reduction: _reduction.Reduction = static_field(default="none")


@loss_object
class CosineDistanceLoss(LossObject):
    """:func:`cosine_distance` as a frozen dataclass pytree: ``CosineDistanceLoss(...)(predictions, targets)``.

    ``epsilon`` is a pytree leaf; ``axis`` and ``reduction`` (``"none"`` by default, as the
    function) are static.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.CosineDistanceLoss(reduction="mean")(jnp.array([[1.0, 0.0]]), jnp.array([[0.0, 1.0]]))
      Array(1., dtype=float32)
    """

    function: ClassVar = staticmethod(cosine_distance)
    epsilon: ArrayLike = 0.0
    axis: int | tuple[int, ...] = static_field(default=-1)
    reduction: _reduction.Reduction = static_field(default="none")


@loss_object
class CosineEmbeddingLoss(LossObject):
    """:func:`cosine_embedding_loss` as a frozen dataclass pytree: ``CosineEmbeddingLoss(...)(x1, x2, targets)``.

    ``margin`` is a pytree leaf; ``axis`` and ``reduction`` are static.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.CosineEmbeddingLoss(margin=0.5)(jnp.array([[1.0, 1.0]]), jnp.array([[1.0, 0.0]]), jnp.array([-1]))
      Array(0.20710677, dtype=float32)
    """

    function: ClassVar = staticmethod(cosine_embedding_loss)
    margin: ArrayLike = 0.0
    axis: int | tuple[int, ...] = static_field(default=-1)
    reduction: _reduction.Reduction = static_field(default="mean")


@loss_object
class MarginRankingLoss(LossObject):
    """:func:`margin_ranking_loss` as a frozen dataclass pytree: ``MarginRankingLoss(...)(x1, x2, targets)``.

    ``margin`` is a pytree leaf; ``reduction`` is static.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.MarginRankingLoss(margin=0.5)(jnp.array([0.2]), jnp.array([0.4]), jnp.array([1]))
      Array(0.7, dtype=float32)
    """

    function: ClassVar = staticmethod(margin_ranking_loss)
    margin: ArrayLike = 0.0
    reduction: _reduction.Reduction = static_field(default="mean")


@loss_object
class HingeEmbeddingLoss(LossObject):
    """:func:`hinge_embedding_loss` as a frozen dataclass pytree: ``HingeEmbeddingLoss(...)(inputs, targets)``.

    ``margin`` is a pytree leaf; ``reduction`` is static.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.HingeEmbeddingLoss(margin=2.0)(jnp.array([0.5, 0.5]), jnp.array([1, -1]))
      Array(1., dtype=float32)
    """

    function: ClassVar = staticmethod(hinge_embedding_loss)
    margin: ArrayLike = 1.0
    reduction: _reduction.Reduction = static_field(default="mean")


@loss_object
class TripletMarginLoss(LossObject):
    """:func:`triplet_margin_loss` as a frozen dataclass pytree: ``TripletMarginLoss(...)(anchor, positive, negative)``.

    ``margin`` and ``eps`` are pytree leaves; ``p``, ``swap``, ``axis`` and ``reduction`` are static.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> a, p, n = jnp.array([[0.0, 0.0]]), jnp.array([[0.3, 0.4]]), jnp.array([[1.0, 0.0]])
      >>> jaxent.TripletMarginLoss(eps=0.0, p=1)(a, p, n)
      Array(0.7, dtype=float32)
    """

    function: ClassVar = staticmethod(triplet_margin_loss)
    margin: ArrayLike = 1.0
    p: float = static_field(default=2.0)
    eps: ArrayLike = 1e-6
    swap: bool = static_field(default=False)
    axis: int | tuple[int, ...] = static_field(default=-1)
    reduction: _reduction.Reduction = static_field(default="mean")


@loss_object
class TripletMarginWithDistanceLoss(LossObject):
    """:func:`triplet_margin_with_distance_loss` as a frozen dataclass pytree:
    ``TripletMarginWithDistanceLoss(...)(anchor, positive, negative)``.

    ``margin`` is a pytree leaf; ``distance_function``, ``swap`` and ``reduction`` are static
    (the function must be hashable, e.g. a named function rather than a fresh lambda per step).

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> a, p, n = jnp.array([[1.0, 0.0]]), jnp.array([[1.0, 1.0]]), jnp.array([[0.0, 1.0]])
      >>> jaxent.TripletMarginWithDistanceLoss(distance_function=jaxent.cosine_distance)(a, p, n)
      Array(0.2928..., dtype=float32)
    """

    function: ClassVar = staticmethod(triplet_margin_with_distance_loss)
    distance_function: Callable[[jax.Array, jax.Array], jax.Array] | None = static_field(default=None)
    margin: ArrayLike = 1.0
    swap: bool = static_field(default=False)
    reduction: _reduction.Reduction = static_field(default="mean")


@loss_object
class NTXentLoss(LossObject):
    """:func:`ntxent` as a frozen dataclass pytree: ``NTXentLoss(...)(embeddings, labels)``.

    ``temperature`` is a pytree leaf; ``reduction`` is static.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> e = jnp.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
      >>> jaxent.NTXentLoss(temperature=0.5)(e, jnp.array([0, 0, 1, 1]))
      Array(0.4301..., dtype=float32)
    """

    function: ClassVar = staticmethod(ntxent)
    temperature: ArrayLike = 0.07
    reduction: _reduction.Reduction = static_field(default="mean")
