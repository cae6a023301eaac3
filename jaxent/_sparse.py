"""Sparsemax and Fenchel–Young losses: optax's binary and multiclass sparsemax losses and its factory.

The multiclass sparsemax loss is the Fenchel–Young loss of the Gini negentropy, whose
gradient is ``sparsemax(x) - onehot(y)`` in closed form. It reads a per-row threshold
``τ`` (Michelot's fixed point, a few fused passes; optax sorts) and then one fused pass
over the scores, through a
``jax.custom_jvp`` whose tangent is linear in the score tangents and recomputes
``sparsemax(x) = relu(x - τ)`` next to the gradient; ``τ`` has its own rule (its
derivative is the mean of the tangents over the support), so second order is exact: the
sparsemax Jacobian ``diag(s) - s sᵀ/|s|`` on the support ``s``. The binary loss is
elementwise; its small rule (the sparse sigmoid, recomputed) only keeps reverse mode from saving masks.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero
from jax.typing import ArrayLike

from jaxent import _backend, _checks, _reduction
from jaxent._objects import LossObject, loss_object, static_field


def _sparse_plus_partials(u: jax.Array) -> tuple[jax.Array]:
    # d sparse_plus / du = sparse_sigmoid(u) = clip(u + 1, 0, 2) / 2 (finite at ±inf).
    return (jnp.clip(u + 1, 0, 2) / 2,)


@jax.custom_jvp
def _sparse_plus(u: jax.Array) -> jax.Array:
    # sparse_plus(u) = (clip(u, -1, 1) + 1)² / 4 + relu(u - 1): 0 for u <= -1, (u + 1)²/4 inside,
    # u for u >= 1, without where-branches (no 0·inf at ±inf).
    c = jnp.clip(u, -1, 1) + 1
    return c * c / 4 + jax.nn.relu(u - 1)


@functools.partial(_sparse_plus.defjvp, symbolic_zeros=True)
def _sparse_plus_jvp(primals, tangents):
    # A custom rule only for memory: autodiff of the clips saves their [N, C] boolean masks for the
    # backward pass; this tangent recomputes sparse_sigmoid(u) from u instead (second order works).
    out = _sparse_plus(*primals)
    return out, _backend.linear_tangent(_sparse_plus_partials, out, primals, tangents)


def _binary_parts(validate: bool, x: jax.Array, t: jax.Array, kept: jax.Array, *, partials: bool):
    """``sparse_plus((1 - 2t) x)`` on the kept elements (0 elsewhere), or its partials in (x, t, kept)."""
    ct = _checks.compute_dtype(x.dtype)
    # Dropped elements read 0: NaN padding reaches neither loss nor gradient.
    xf = jnp.where(kept, x.astype(ct), 0)
    # Label 1 scores u = -x, label 0 u = x: u = (1 - 2y) x, exact at ±inf (the factor is ±1), and
    # arithmetic rather than a select on a boolean [N, C] mask that XLA:CPU would write to memory.
    sign = 1 - 2 * t.astype(ct)
    if validate:
        # A kept label outside {0, 1} poisons its element's loss and gradients with NaN.
        sign = jnp.where(((t == 0) | (t == 1)) | ~kept, sign, jnp.nan)
    u = sign * xf
    if not partials:
        return _sparse_plus(u)
    (d_u,) = _sparse_plus_partials(u)
    d_x = jnp.where(kept, d_u * sign, 0)
    return d_x, d_u * -2 * xf, jnp.zeros_like(d_x)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _binary_sparsemax(validate: bool, x: jax.Array, t: jax.Array, kept: jax.Array) -> jax.Array:
    return _binary_parts(validate, x, t, kept, partials=False)


@functools.partial(_binary_sparsemax.defjvp, symbolic_zeros=True)
def _binary_sparsemax_jvp(validate, primals, tangents):
    # A rule over the inputs (not over u): reverse mode saves only x, the labels and the mask
    # and recomputes u and its partials next to the gradient; autodiff would save u, [N, C]
    # float32 for bfloat16 logits, or the label check's mask.
    out = _binary_sparsemax(validate, *primals)
    parts = functools.partial(_binary_parts, validate, partials=True)
    return out, _backend.linear_tangent(parts, out, primals, tangents)


def sparsemax_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
) -> jax.Array:
    r"""Binary sparsemax loss, optax's ``sparsemax_loss``: the Fenchel–Young loss of the sparse sigmoid.

    Elementwise, with ``u = -x`` for label 1 and ``u = x`` for label 0:

    .. math::
        \ell = \operatorname{sparse\_plus}(u) = \begin{cases} 0 & u \le -1 \\ (u+1)^2/4 & -1 < u < 1 \\
               u & u \ge 1 \end{cases}

    It is 0 exactly when ``jax.nn.sparse_sigmoid(x)`` equals the label. Then ``reduction``:
    ``"none"`` (the shape of ``logits``; optax's output), ``"sum"``, or ``"mean"`` over the
    kept elements (an empty mean is 0.0, not NaN).

    Args:
      logits: floating scores of any shape.
      labels: 0/1 labels of ``logits.shape``: integer, floating or bool.
      where: optional boolean mask of ``logits.shape`` (or of the same rank with size-1
        axes that broadcast); False drops an element (0 in ``"none"``, zero gradient).
      reduction: ``"none"``, ``"sum"`` or ``"mean"``.

    Returns:
      The loss in float32 (float64 for float64 logits).

    Notes:
      optax treats any nonzero label as 1; here concrete labels outside ``{0, 1}`` are a
      ``ValueError`` and traced ones give NaN for that element (under
      ``jax.experimental.checkify`` with user checks, an error naming the value). The
      gradient is ``∓ sparse_sigmoid(u)``, recomputed in reverse mode (no saved masks); at ``±inf`` logits the loss
      is exact (0 on the right side, ``+inf`` on the wrong side) with finite gradients.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> x, y = jnp.array([-2.0, 0.0, 0.5, 3.0]), jnp.array([0, 1, 1, 0])
      >>> jaxent.sparsemax_loss(x, y, reduction="none").tolist()
      [0.0, 0.25, 0.0625, 3.0]

    References:
      Blondel, Martins & Niculae, *Learning with Fenchel-Young Losses*, JMLR 2020 (Sec. 4.4).
    """
    fn = "sparsemax_loss"
    _checks.check_reduction(fn, reduction)
    x, t = _checks.elementwise_pair(fn, logits, labels, x_name="logits", integer_targets=True)
    kept = _checks.elementwise_mask(fn, where, x.shape, x_name="logits")
    check = None
    if t.dtype != jnp.bool_:
        fix = "pass 0/1 labels or a bool array (True = 1)."
        # A ValueError now for concrete labels; traced ones are checked and NaN-poisoned in the rule.
        check = _checks.allowed_values_check(fn, "labels", t, (0, 1), kept, fix)
    validate = check is not None
    keep = jnp.ones((), bool) if kept is None else kept
    losses = _binary_sparsemax(validate, x, t, keep)
    return _checks.attach_checks(_reduction.reduce_elements(losses, kept, reduction), [check])


# --------------------------------------------------------------------------------------
# The sparsemax threshold and the multiclass loss.


def shifted(x: jax.Array, shift: jax.Array, possible: jax.Array, classes: jax.Array | None = None) -> jax.Array:
    """``z = x - shift`` in the compute dtype on the rows with a possible class (``shift`` their
    max, so ``max z = 0``), ``-inf`` off the kept ``classes``; 0 on the other rows (double
    where: ``-inf - -inf`` never forms). Recomputed by each pass, never a copy of ``x``."""
    z = x.astype(shift.dtype) - jnp.where(possible, shift, 0)[..., None]
    if classes is not None:
        z = jnp.where(classes, z, -jnp.inf)  # a masked class is an impossible one
    return jnp.where(possible[..., None], z, 0)


def _threshold_value(x: jax.Array, shift: jax.Array, possible: jax.Array, classes: jax.Array | None) -> jax.Array:
    """τ with ``Σ_j relu(z_j - τ) = 1`` per row of ``z = shifted(x, shift, possible, classes)``
    ``[..., C]`` (max 0, finite; -inf allowed).

    Michelot's fixed point, without a sort: from ``τ_0 = max - 1 = -1 <= τ`` (no entry of a
    sparsemax exceeds 1), ``τ_{k+1} = (Σ_{z_j > τ_k} z_j - 1) / #{z_j > τ_k}`` rises to ``τ``
    and stops when the support ``{z_j > τ_k}`` no longer shrinks (at most ``C`` steps; a few
    on real scores). Each step is one fused pass over the row (a sum and a count) that
    recomputes ``z`` from ``x``, so no ``[N, C]`` array is written. A ``while`` loop: its
    trip count depends on the scores.
    """
    rows, dtype = x.shape[:-1], shift.dtype

    def step(state):
        i, tau, count, _ = state
        # (x tied to the step: z is not hoisted out of the loop as an [N, C] array.)
        z = shifted(_backend.tied(x, i, any_dtype=True), shift, possible, classes)
        on = z > tau[..., None]
        # A -inf entry is never in the support (-inf > τ is False).
        (total,), (new_count,) = _backend.row_sums((jnp.where(on, z, 0),), (on,))
        # A support that no longer shrinks is the one τ_k came from: τ_k is the threshold.
        done = new_count >= count
        new_tau = (total - 1) / jnp.maximum(new_count, 1).astype(dtype)
        return i + 1, jnp.where(done, tau, new_tau), jnp.minimum(new_count, count), done

    init = (jnp.int32(0), jnp.full(rows, -1, dtype), jnp.full(rows, x.shape[-1] + 1, jnp.int32), jnp.zeros(rows, bool))
    return jax.lax.while_loop(lambda state: ~jnp.all(state[3]), step, init)[1]


def _tau_tangent(x, shift, possible, classes, tau, dx):
    # dτ = Σ_{j ∈ S} dz_j / |S|, from Σ_{j ∈ S} (z_j - τ) = 1 on the support S = {z_j > τ}.
    on = shifted(x, shift, possible, classes) > tau[..., None]
    count = jnp.sum(on, axis=-1, dtype=jnp.int32)
    dz = jnp.where(possible[..., None], dx.astype(tau.dtype), 0)
    return jnp.sum(jnp.where(on, dz, 0), axis=-1) / jnp.maximum(count, 1).astype(tau.dtype)


@jax.custom_jvp
def _threshold(x: jax.Array, shift: jax.Array, possible: jax.Array, classes: jax.Array | None) -> jax.Array:
    return _threshold_value(x, shift, possible, classes)


@functools.partial(_threshold.defjvp, symbolic_zeros=True)
def _threshold_jvp(primals, tangents):
    x, shift, possible, classes = primals
    dx, dshift, _, _ = tangents
    tau = _threshold(x, shift, possible, classes)
    out = jnp.zeros_like(tau)
    if not isinstance(dx, SymbolicZero):
        # Linear in dx; the support is recomputed from (x, τ), never saved.
        out = out + _backend.recomputed(_tau_tangent)(x, shift, possible, classes, tau, dx)
    if not isinstance(dshift, SymbolicZero):
        out = out - jnp.where(possible, dshift, 0)  # τ(x - shift) moves with the shift
    return tau, out


def sparsemax(x: jax.Array, axis: int = -1) -> jax.Array:
    """The sparsemax of ``x`` over ``axis``: the Euclidean projection onto the probability simplex."""
    z = jnp.moveaxis(x, axis, -1)
    m = jax.lax.stop_gradient(jnp.max(z, axis=-1))
    possible = m > -jnp.inf
    # sparsemax is shift-invariant; the shift keeps the squares below well conditioned.
    zs = shifted(z, m, possible)
    return jnp.moveaxis(jax.nn.relu(zs - _threshold(z, m, possible, None)[..., None]), -1, axis)


def _dual_terms(z, tau):
    """Per class: ``relu(z - τ)²/2`` (the dual's summand) and its derivative in ``z``, ``sparsemax = relu(z - τ)``."""
    p = jax.nn.relu(z - tau[..., None])
    return p * p / 2, p


@jax.custom_jvp
def _conjugate(z: jax.Array, tau: jax.Array, counted: jax.Array) -> jax.Array:
    """``Ω*(z) = τ + ½ Σ_j relu(z_j - τ)²`` per row (the dual form of ``max_p <p, z> - ½‖p‖²`` on the simplex)."""
    half_squares, _ = _dual_terms(z, tau)
    (total,), (count,) = _backend.row_sums((half_squares,), (counted,))
    # (This use of the count keeps the reduce variadic on XLA:CPU.)
    return tau + jnp.where(count > 0, total, 0)


def _conjugate_tangent(z, tau, counted, dz):
    # ∇Ω*(z) = sparsemax(z): Σ_j relu(z_j - τ) dz_j, the closed-form gradient.
    _, p = _dual_terms(z, tau)
    # A plain sum: this map is transposed in reverse mode (row_sums has no transpose).
    return jnp.sum(p * dz, axis=-1)


@functools.partial(_conjugate.defjvp, symbolic_zeros=True)
def _conjugate_jvp(primals, tangents):
    z, tau, counted = primals
    dz = tangents[0]
    out = _conjugate(z, tau, counted)
    # ∂/∂τ = 1 - Σ_j relu(z_j - τ) = 0 at the threshold (the dual's optimality): τ's tangent is
    # dropped. τ stays a differentiable input, so that the derivative of this tangent (through
    # relu(z - τ(z))) is the sparsemax Jacobian diag(s) - s sᵀ/|s|: second order is exact.
    if isinstance(dz, SymbolicZero):
        return out, jnp.zeros_like(out)
    return out, _backend.recomputed(_conjugate_tangent)(z, tau, counted, dz)


def multiclass_sparsemax_loss(
    scores: ArrayLike,
    targets: ArrayLike,
    *,
    axis: int | tuple[int, ...] = -1,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
) -> jax.Array:
    r"""Multiclass sparsemax loss, optax's ``multiclass_sparsemax_loss``: the Fenchel–Young loss of sparsemax.

    With ``p = sparsemax(s) = relu(s - τ)`` (``τ`` the threshold with ``Σ p = 1``):

    .. math::
        \ell_n = \langle p, s_n \rangle - \tfrac12 \lVert p \rVert^2 + \tfrac12 - s_{n,y_n}
               = \tau + \tfrac12 \sum_j \operatorname{relu}(s_{n,j} - \tau)^2 + \tfrac12 - s_{n,y_n}

    with gradient ``p - onehot(y)``. Then ``reduction``: ``"none"`` (the batch shape;
    optax's output), ``"sum"``, or ``"mean"`` over kept examples (an empty mean is 0.0).

    Args:
      scores: ``[..., C, ...]`` floating scores.
      targets: integer class indices of ``scores.shape`` without ``axis`` (a flat index
        over the class axes when ``axis`` is a tuple).
      axis: static class axis, or a tuple of axes (optax has only the last axis).
      where: boolean mask of the batch shape (drops examples) or of ``scores.shape``
        (drops classes as if removed; a row with every class dropped is a dropped example).
      reduction: ``"none"``, ``"sum"`` or ``"mean"``.

    Returns:
      The loss in float32 (float64 for float64 scores).

    Notes:
      The loss is computed on ``s - max(s)`` (it is shift-invariant), so large scores lose
      no precision. ``-inf`` scores are impossible classes (never in the support, zero
      gradient); a target on one, or on a masked class, gives ``+inf`` with a zero
      gradient for that example. An integer target outside ``[0, C)`` gives NaN (optax
      wraps ``-1`` to the last class); under ``jax.experimental.checkify`` with user checks
      it is an error naming the label. The threshold is not sort-based (optax sorts, with
      ``[N, C]`` temporaries): Michelot's fixed point from ``max - 1`` rises to it in a few
      fused passes over the scores (a ``while`` loop until every row's support stops
      shrinking, at most ``C`` passes), with nothing of size ``[N, C]`` written. The
      gradient comes from a ``jax.custom_jvp`` rule: forward and reverse mode and second
      order (the sparsemax Jacobian ``diag(s) - s sᵀ/|s|``) work.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> s = jnp.array([[1.0, 0.5, -1.0], [0.2, 0.1, 0.0]])
      >>> jaxent.multiclass_sparsemax_loss(s, jnp.array([0, 2]), reduction="none").tolist()
      [0.0625, 0.4433...]

    References:
      Martins & Astudillo, *From Softmax to Sparsemax: A Sparse Model of Attention and
      Multi-Label Classification*, ICML 2016; Blondel et al., *Learning with Fenchel-Young
      Losses*, JMLR 2020.
    """
    fn = "multiclass_sparsemax_loss"
    _checks.check_reduction(fn, reduction)
    lay = _checks.class_layout(
        fn, scores, targets, axis=axis, where=where, logits_name="scores", allow_probabilities=False
    )
    ct = _checks.compute_dtype(lay.x.dtype)
    x, classes = lay.x, lay.class_mask  # x in its dtype: each pass upcasts and masks (no copy)
    kept = _checks.kept_examples(lay, None)
    y, wy = _checks.class_labels(fn, lay, kept, None)
    # The shift is a constant (the loss is shift-invariant): no derivative is taken of the max.
    kept_scores = x if classes is None else jnp.where(classes, x, -jnp.inf)
    m = _backend.row_max(jax.lax.stop_gradient(kept_scores)).astype(ct)
    possible = m > -jnp.inf
    if lay.example_mask is not None:
        # A dropped example reads 0 like a row without a possible class (a select: zero
        # gradient even for NaN padding); its loss is 0 below.
        possible = possible & lay.example_mask
    # A row without a possible class reads 0: its loss is set to +inf below.
    z = shifted(x, m, possible, classes)
    target = jax.lax.broadcasted_iota(y.dtype, z.shape, z.ndim - 1) == y[..., None]
    # Paired with a count (a label in range) so that the reduce fuses its select (see row_sums).
    (zy,), (labelled,) = _backend.row_sums((jnp.where(target, z, 0),), (target,))
    zy = jnp.where(labelled > 0, zy, 0)
    counted = jnp.ones(z.shape, bool) if lay.class_mask is None else lay.class_mask
    tau = _threshold(x, m, possible, classes)
    # ℓ = Ω*(z) + ½ - z_y, with Ω(onehot) = ½ (the Gini negentropy ½‖p‖² at a vertex).
    loss = _conjugate(z, tau, counted) + 0.5
    impossible = ~possible | (zy == -jnp.inf)
    # Double where: -z_y = +inf (an impossible target) never meets the arithmetic.
    losses = jnp.where(impossible, jnp.inf, loss - jnp.where(impossible, 0, zy))
    # Not kept: 0; an out-of-range label (w_y = NaN): NaN.
    losses = jnp.where(jnp.isnan(wy), jnp.nan, jnp.where(kept, losses, 0))
    return _reduction.reduce_kept(losses, kept, reduction)


# --------------------------------------------------------------------------------------
# The Fenchel–Young factory.


def make_fenchel_young_loss(max_fun: Callable[..., Any]) -> Callable[..., jax.Array]:
    r"""A Fenchel–Young loss from a convex "max" function, optax's ``make_fenchel_young_loss``.

    .. math::
        \ell(s, t) = \Omega^*(s) - \langle t, s \rangle

    over the last axis, where ``Ω* = max_fun`` maps a vector ``[C]`` to a scalar (e.g.
    ``jax.scipy.special.logsumexp`` gives the softmax cross-entropy up to the target
    entropy). The returned function is ``loss(scores, targets, *args, where=None,
    reduction="mean", **kwargs)``: ``scores`` and ``targets`` are floating ``[..., C]``
    arrays of the same shape, ``*args, **kwargs`` go to ``max_fun`` unvectorised (so ``where`` and
    ``reduction`` are reserved here), ``where`` is an optional boolean mask of the batch
    shape ``[...]`` that drops examples, and ``reduction`` is ``"none"`` (shape ``[...]``,
    optax's output), ``"sum"`` or ``"mean"`` (an empty mean is 0.0). Decision: jaxent's
    default reduction is ``"mean"`` like every other loss; optax's function returns
    ``reduction="none"``.

    Args:
      max_fun: a function of one ``[C]`` vector (plus extra arguments) returning a scalar;
        it is vectorised over the leading axes with ``jnp.vectorize``.

    Returns:
      The loss function. Gradients come from autodiff of ``max_fun`` (as in optax): the
      gradient in ``scores`` is ``∇Ω*(s) - t``, in ``targets`` ``-s``. bf16/f16 scores
      are computed in float32 (float64 stays float64).

    Example:
      >>> import jax, jax.numpy as jnp, jaxent
      >>> fy = jaxent.make_fenchel_young_loss(jax.scipy.special.logsumexp)
      >>> s, t = jnp.array([[1.0, 2.0, 3.0]]), jnp.array([[0.0, 0.0, 1.0]])
      >>> fy(s, t, reduction="none")  # the softmax cross-entropy
      Array([0.4076], dtype=float32)

    References:
      Blondel, Martins & Niculae, *Learning with Fenchel-Young Losses*, JMLR 2020.
    """
    if not callable(max_fun):
        raise TypeError(
            f"make_fenchel_young_loss: max_fun must be a function of a [C] vector returning a scalar, got "
            f"{type(max_fun).__name__}; pass e.g. jax.scipy.special.logsumexp."
        )

    def fenchel_young_loss(
        scores: ArrayLike,
        targets: ArrayLike,
        *args: Any,
        where: ArrayLike | None = None,
        reduction: _reduction.Reduction = "mean",
        **kwargs: Any,
    ) -> jax.Array:
        fn = "fenchel_young_loss"
        _checks.check_reduction(fn, reduction)
        s, t = _checks.elementwise_pair(fn, scores, targets, x_name="scores", integer_targets=False)
        if s.ndim == 0:
            raise ValueError(
                f"{fn}: scores is 0-d (shape ()), but it needs a last axis of classes; pass scores of shape "
                "[..., C] (e.g. scores[None] for one example)."
            )
        ct = _checks.compute_dtype(np.promote_types(s.dtype, t.dtype))
        sf, tf = s.astype(ct), t.astype(ct)
        kept = None
        if where is not None:
            kept = _checks.as_array(fn, "where", where)
            if kept.dtype != jnp.bool_ or kept.shape != s.shape[:-1]:
                raise ValueError(
                    f"{fn}: where must be a boolean mask of the batch shape {s.shape[:-1]} (drops examples), got "
                    f"{kept.dtype}{kept.shape}."
                )
            # Dropped examples read 0: NaN padding reaches neither loss nor gradient.
            sf, tf = jnp.where(kept[..., None], sf, 0), jnp.where(kept[..., None], tf, 0)
        # The extra arguments are bound first, unvectorised (jnp.vectorize would map over them).
        max_last_dim = jnp.vectorize(functools.partial(max_fun, *args, **kwargs), signature="(n)->()")
        losses = jnp.asarray(max_last_dim(sf)).astype(ct) - jnp.sum(tf * sf, axis=-1)
        return _reduction.reduce_kept(losses, kept, reduction)

    fenchel_young_loss.__doc__ = f"The Fenchel–Young loss of ``{getattr(max_fun, '__name__', 'max_fun')}``."
    return fenchel_young_loss


# --------------------------------------------------------------------------------------
# Loss objects.


@loss_object
class SparsemaxLoss(LossObject):
    """:func:`sparsemax_loss` as a frozen dataclass pytree: ``SparsemaxLoss(...)(logits, labels)``.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.SparsemaxLoss(reduction="sum")(jnp.array([0.0, 3.0]), jnp.array([1, 0]))
      Array(3.25, dtype=float32)
    """

    function: ClassVar = staticmethod(sparsemax_loss)
    reduction: _reduction.Reduction = static_field(default="mean")


@loss_object
class MulticlassSparsemaxLoss(LossObject):
    """:func:`multiclass_sparsemax_loss` as a frozen dataclass pytree: ``MulticlassSparsemaxLoss()(scores, targets)``.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.MulticlassSparsemaxLoss()(jnp.array([[1.0, 0.5, -1.0]]), jnp.array([0]))
      Array(0.0625, dtype=float32)
    """

    function: ClassVar = staticmethod(multiclass_sparsemax_loss)
    axis: int | tuple[int, ...] = static_field(default=-1)
    reduction: _reduction.Reduction = static_field(default="mean")
