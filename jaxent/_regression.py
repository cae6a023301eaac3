"""Regression losses: squared, absolute, Huber/smooth-L1, log-cosh, Poisson and Gaussian NLL.

Every loss here is elementwise (one value per element of ``predictions``), then reduced by
:func:`jaxent._reduction.reduce_elements`. Most are plain ``jnp`` formulas whose autodiff is
exact and, measured, needs no temporary of the inputs' size (XLA fuses the gradient with the
recomputed formula); a ``jax.custom_jvp`` rule is used only where it buys something, and the
reason is given next to it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxent import _backend, _checks, _reduction
from jaxent._objects import LossObject, loss_object, static_field


def mse_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
) -> jax.Array:
    r"""Squared error, PyTorch's ``mse_loss``.

    .. math::
        \ell = (\hat y - y)^2

    elementwise, then ``reduction``: ``"none"`` (the shape of ``predictions``),
    ``"sum"``, or ``"mean"`` over the kept elements (an empty mean is 0.0, not NaN).

    Args:
      predictions: floating array of any shape (bf16/f16 are computed in float32).
      targets: floating array of ``predictions.shape`` (PyTorch broadcasts other shapes
        with a warning; here they are an error). Cast integer targets first.
      where: boolean mask of ``predictions.shape`` (or of the same rank with size-1
        axes, e.g. ``(N, 1)`` to drop whole rows); dropped elements are 0 in ``"none"``,
        get zero gradient and leave the mean's denominator.
      reduction: ``"none"``, ``"sum"`` or ``"mean"``.

    Returns:
      The loss in float32 (float64 for float64 predictions); gradients come back in
      each input's dtype.

    Notes:
      The gradients are ``2(ŷ - y)`` in ``predictions`` and ``-2(ŷ - y)`` in
      ``targets`` (over the reduction's denominator), from a ``jax.custom_jvp`` rule that
      recomputes them next to the gradient: forward and reverse mode and higher orders
      work, and ``value_and_grad`` needs no temporary of the inputs' size.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.mse_loss(jnp.array([1.0, 2.0, 4.0]), jnp.array([1.5, 2.0, 2.0]))
      Array(1.4167, dtype=float32)
    """
    fn = "mse_loss"
    _checks.check_reduction(fn, reduction)
    x, t = _checks.elementwise_pair(fn, predictions, targets, x_name="predictions", integer_targets=False)
    mask = _checks.elementwise_mask(fn, where, x.shape, x_name="predictions")
    ct = _checks.compute_dtype(x.dtype)
    xf, tf = x.astype(ct), t.astype(ct)
    if mask is not None:
        # Zero dropped elements before squaring: NaN padding reaches neither loss nor gradient.
        xf, tf = jnp.where(mask, xf, 0), jnp.where(mask, tf, 0)
    return _reduction.reduce_elements(_squared_error(xf, tf), mask, reduction)


def _squared_error_partials(x: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
    # d(x - t)^2 = 2 (x - t) (dx - dt).
    d = 2 * (x - t)
    return d, -d


@jax.custom_jvp
def _squared_error(x: jax.Array, t: jax.Array) -> jax.Array:
    d = x - t
    return d * d


@functools.partial(_squared_error.defjvp, symbolic_zeros=True)
def _squared_error_jvp(primals, tangents):
    out = _squared_error(*primals)
    return out, _backend.linear_tangent(_squared_error_partials, out, primals, tangents)


@loss_object
class MSELoss(LossObject):
    """:func:`mse_loss` as a frozen dataclass pytree: ``MSELoss(...)(predictions, targets)``.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.MSELoss(reduction="sum")(jnp.array([1.0, 2.0]), jnp.array([0.0, 0.0]))
      Array(5., dtype=float32)
    """

    function: ClassVar = staticmethod(mse_loss)
    reduction: _reduction.Reduction = static_field(default="mean")


# --------------------------------------------------------------------------------------
# Shared validation and reduction.


def _pair(fn: str, predictions: Any, targets: Any, where: Any) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    """(predictions, targets) in the compute dtype, dropped elements replaced by 0, and the mask.

    Replacing them (not only zeroing their loss) keeps NaN or inf padding out of the
    gradient of the kept elements: a dropped element gets exactly zero gradient.
    """
    x, t = _checks.elementwise_pair(fn, predictions, targets, x_name="predictions", integer_targets=False)
    mask = _checks.elementwise_mask(fn, where, x.shape, x_name="predictions")
    ct = _checks.compute_dtype(x.dtype)
    xf, tf = x.astype(ct), t.astype(ct)
    if mask is not None:
        xf, tf = jnp.where(mask, xf, 0), jnp.where(mask, tf, 0)
    return xf, tf, mask


def _weighted(
    fn: str, losses: jax.Array, weight: Any, mask: jax.Array | None, reduction: str, *, mean_by_weight: bool
) -> jax.Array:
    """``reduction`` of ``w · losses``; ``"mean"`` divides by ``Σ w`` over the kept elements
    (``mean_by_weight``, PyTorch's ``l1_loss``) or by their number (PyTorch's ``huber_loss``)."""
    if weight is None:
        return _reduction.reduce_elements(losses, mask, reduction)
    w = _checks.elementwise_weight(fn, "weight", weight, losses.shape, losses.dtype, x_name="predictions")
    assert w is not None  # (weight is not None)
    weighted = w * losses
    if reduction != "mean" or not mean_by_weight:
        return _reduction.reduce_elements(weighted, mask, reduction)
    total = _reduction.reduce_elements(weighted, mask, "sum")
    # An empty (or zero-weight) mean is 0 with zero gradients, not NaN.
    return _reduction.safe_divide(total, _reduction.reduce_elements(w, mask, "sum"))


def _elementwise_rule(parts: Callable[..., Any]) -> Callable[..., jax.Array]:
    """``parts(*args, partials=False)`` as a ``jax.custom_jvp`` whose tangent is
    ``Σ_i parts(*args, partials=True)[i] · d args_i``.

    Used where plain autodiff was measured to hold temporaries of the inputs' size (XLA:CPU
    saves a branch mask, an ``exp`` or a ``log`` of the inputs between the passes):
    :func:`_backend.linear_tangent` recomputes the partials from the primals next to the
    gradient, so reverse mode saves only the inputs. The tangent is linear in the input
    tangents, so forward and reverse mode and higher orders all work.
    """

    @jax.custom_jvp
    def rule(*args):
        return parts(*args, partials=False)

    def jvp(primals, tangents):
        out = rule(*primals)
        return out, _backend.linear_tangent(functools.partial(parts, partials=True), out, primals, tangents)

    rule.defjvp(jvp, symbolic_zeros=True)
    return rule


# --------------------------------------------------------------------------------------
# Absolute, smooth-L1, Huber, log-cosh and halved squared errors.


def l1_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    weight: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
) -> jax.Array:
    r"""Absolute error, PyTorch's ``l1_loss`` (optax has none; ``optax.losses.l2_loss`` is :func:`l2_loss`).

    .. math::
        \ell = w\, |\hat y - y|

    elementwise, then ``reduction``: ``"none"`` (the shape of ``predictions``), ``"sum"``,
    or ``"mean"``: ``Σ w ℓ / Σ w`` over the kept elements with ``weight`` (PyTorch's
    weighted mean), their average without. An empty mean is 0.0, not NaN.

    Args:
      predictions: floating array of any shape (bf16/f16 are computed in float32).
      targets: floating array of ``predictions.shape``.
      weight: optional real weights that broadcast to ``predictions.shape`` (PyTorch requires
        the same shape; broadcasting is jaxent's extension), may be traced.
      where: boolean mask of ``predictions.shape`` (or of the same rank with size-1 axes);
        dropped elements are 0 in ``"none"``, get zero gradient and leave the mean.
      reduction: ``"none"``, ``"sum"`` or ``"mean"``.

    Returns:
      The loss in float32 (float64 for float64 predictions); gradients come back in each
      input's dtype.

    Notes:
      The gradient in ``predictions`` is ``w·sign(ŷ - y)``: 0 at ``ŷ = y``, as in PyTorch.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.l1_loss(jnp.array([1.0, 2.0, 4.0]), jnp.array([1.5, 2.0, 2.0]))
      Array(0.8333..., dtype=float32)
    """
    fn = "l1_loss"
    _checks.check_reduction(fn, reduction)
    x, t, mask = _pair(fn, predictions, targets, where)
    # Plain autodiff (exact, and measured to need no temporary): |d|' = sign(d), 0 at d = 0.
    return _weighted(fn, _abs(x - t), weight, mask, reduction, mean_by_weight=True)


def _abs(d: jax.Array) -> jax.Array:
    """``|d|`` whose derivative is ``sign(d)``: 0 at ``d = 0``, PyTorch's convention (``jnp.abs``'s is 1)."""
    # |d| = sign(d)·d, and sign has derivative 0.
    return jnp.sign(d) * d


def _huber_parts(d: jax.Array, delta: jax.Array, *, partials: bool):
    """``0.5 d²`` for ``|d| < δ``, ``δ(|d| - δ/2)`` beyond (or its partials in ``d`` and ``δ``)."""
    a = _abs(d)
    quadratic = a < delta
    if not partials:
        return jnp.where(quadratic, 0.5 * d * d, delta * (a - 0.5 * delta))
    # d/dd: d inside, δ sign(d) outside (continuous at |d| = δ); d/dδ: 0 inside, |d| - δ outside.
    return jnp.where(quadratic, d, delta * jnp.sign(d)), jnp.where(quadratic, 0, a - delta)


def _smooth_l1_parts(d: jax.Array, beta: jax.Array, *, partials: bool):
    """``0.5 d²/β`` for ``|d| < β``, ``|d| - β/2`` beyond (or its partials in ``d`` and ``β``)."""
    a = _abs(d)
    quadratic = a < beta  # never at beta = 0: the loss is |d|
    # Double where: beta = 0 never divides (the quadratic branch is not taken there).
    b = jnp.where(quadratic, beta, 1)
    if not partials:
        return jnp.where(quadratic, 0.5 * d * d / b, a - 0.5 * beta)
    # d/dd: d/β inside, sign(d) outside (0 at d = 0); d/dβ: -d²/(2β²) inside, -1/2 outside.
    return jnp.where(quadratic, d / b, jnp.sign(d)), jnp.where(quadratic, -0.5 * (d / b) ** 2, -0.5)


_huber = _elementwise_rule(_huber_parts)
_smooth_l1 = _elementwise_rule(_smooth_l1_parts)


def smooth_l1_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    beta: ArrayLike = 1.0,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
) -> jax.Array:
    r"""Smooth L1 error, PyTorch's ``smooth_l1_loss``: Huber's loss divided by ``beta``.

    .. math::
        \ell = \begin{cases} \tfrac{1}{2} d^2 / \beta & |d| < \beta \\
                             |d| - \tfrac{1}{2}\beta & \text{otherwise} \end{cases}
        \qquad d = \hat y - y

    elementwise, then ``reduction`` (``"mean"`` over the kept elements; an empty mean is
    0.0, not NaN). ``beta = 0`` is :func:`l1_loss`, as in PyTorch.

    Args:
      predictions: floating array of any shape (bf16/f16 are computed in float32).
      targets: floating array of ``predictions.shape``.
      beta: scalar ``>= 0`` (may be traced; a negative value is an error, as in PyTorch).
      where: boolean mask of ``predictions.shape`` (or of the same rank with size-1 axes).
      reduction: ``"none"``, ``"sum"`` or ``"mean"``.

    Returns:
      The loss in float32 (float64 for float64 predictions).

    Notes:
      ``smooth_l1_loss(ŷ, y, beta=b) = huber_loss(ŷ, y, delta=b) / b`` for ``b > 0``. The
      gradient in ``predictions`` is ``d/β`` inside and ``sign(d)`` outside (0 at ``d = 0``).

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.smooth_l1_loss(jnp.array([0.5, 3.0]), jnp.array([0.0, 0.0]), reduction="none")
      Array([0.125, 2.5  ], dtype=float32)

    References:
      Girshick, *Fast R-CNN* (2015).
    """
    fn = "smooth_l1_loss"
    _checks.check_reduction(fn, reduction)
    check = _checks.traced_range_check(fn, "beta", beta, 0.0)
    x, t, mask = _pair(fn, predictions, targets, where)
    b = _checks.hyperparameter(beta, x.dtype)
    losses = _smooth_l1(x - t, b)
    return _checks.attach_checks(_reduction.reduce_elements(losses, mask, reduction), [check])


def huber_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    delta: ArrayLike = 1.0,
    weight: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
) -> jax.Array:
    r"""Huber loss, PyTorch's ``huber_loss`` and optax's ``huber_loss`` (with a reduction).

    .. math::
        \ell = w \begin{cases} \tfrac{1}{2} d^2 & |d| < \delta \\
                               \delta\,(|d| - \tfrac{1}{2}\delta) & \text{otherwise} \end{cases}
        \qquad d = \hat y - y

    elementwise, then ``reduction``. As in PyTorch, ``"mean"`` averages ``w ℓ`` over the
    kept elements (it divides by their number, not by ``Σ w``, unlike :func:`l1_loss`); an
    empty mean is 0.0, not NaN. optax's ``huber_loss(p, t, delta)`` is
    ``reduction="none"`` (optax has no reduction and no weight).

    Args:
      predictions: floating array of any shape (bf16/f16 are computed in float32).
      targets: floating array of ``predictions.shape`` (optax's default of zeros: pass
        ``jnp.zeros_like(predictions)``).
      delta: scalar ``> 0`` (may be traced; PyTorch also rejects ``delta <= 0``).
      weight: optional real weights that broadcast to ``predictions.shape`` (may be traced).
      where: boolean mask of ``predictions.shape`` (or of the same rank with size-1 axes).
      reduction: ``"none"``, ``"sum"`` or ``"mean"``.

    Returns:
      The loss in float32 (float64 for float64 predictions).

    Notes:
      The gradient in ``predictions`` is ``w·d`` inside and ``w·δ·sign(d)`` outside.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.huber_loss(jnp.array([0.5, 3.0]), jnp.array([0.0, 0.0]), reduction="none")
      Array([0.125, 2.5  ], dtype=float32)

    References:
      Huber, *Robust estimation of a location parameter* (1964).
    """
    fn = "huber_loss"
    _checks.check_reduction(fn, reduction)
    check = _checks.traced_range_check(fn, "delta", delta, 0.0, low_open=True)
    x, t, mask = _pair(fn, predictions, targets, where)
    losses = _huber(x - t, _checks.hyperparameter(delta, x.dtype))
    return _checks.attach_checks(_weighted(fn, losses, weight, mask, reduction, mean_by_weight=False), [check])


def _log_cosh_partials(d: jax.Array) -> tuple[jax.Array]:
    # d/dd log cosh d = tanh d: exact at 0 and at ±inf (±1).
    return (jnp.tanh(d),)


@jax.custom_jvp
def _log_cosh(d: jax.Array) -> jax.Array:
    a = jnp.abs(d)
    # log cosh d = |d| + log1p(exp(-2|d|)) - log 2: no overflow of cosh, exact at ±inf.
    return a + jnp.log1p(jnp.exp(-2 * a)) - jnp.log(2.0).astype(d.dtype)


# A custom rule: autodiff of the stable formula above goes through |d|, whose second
# derivative JAX takes as 0, so its Hessian at d = 0 would be 0 instead of sech²(0) = 1.
# The tangent tanh(d)·dd is exact to every order (tanh' = 1 - tanh²).
@functools.partial(_log_cosh.defjvp, symbolic_zeros=True)
def _log_cosh_jvp(primals, tangents):
    out = _log_cosh(*primals)
    return out, _backend.linear_tangent(_log_cosh_partials, out, primals, tangents)


def log_cosh(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
) -> jax.Array:
    r"""Log-cosh error, optax's ``log_cosh`` (PyTorch has none).

    .. math::
        \ell = \log\cosh(\hat y - y) = |d| + \log(1 + e^{-2|d|}) - \log 2

    elementwise (about ``d²/2`` for small ``d`` and ``|d| - log 2`` for large), then
    ``reduction`` (``"mean"`` over the kept elements; an empty mean is 0.0, not NaN).
    optax's output is ``reduction="none"``.

    Args:
      predictions: floating array of any shape (bf16/f16 are computed in float32).
      targets: floating array of ``predictions.shape`` (required: optax's default of zeros
        is ``jnp.zeros_like(predictions)``).
      where: boolean mask of ``predictions.shape`` (or of the same rank with size-1 axes).
      reduction: ``"none"``, ``"sum"`` or ``"mean"``.

    Returns:
      The loss in float32 (float64 for float64 predictions).

    Notes:
      Finite for every finite error (``cosh`` itself overflows beyond 710 in float64), and
      ``+inf`` with gradient ``±1`` at infinite ones. The gradient is ``tanh(d)``, from a
      ``jax.custom_jvp`` rule that keeps the second derivative exact at ``d = 0``.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.log_cosh(jnp.array([0.0, 1.0, 1000.0]), jnp.zeros(3), reduction="none").tolist()
      [0.0, 0.4337..., 999.3068...]

    References:
      Chen et al., *Log hyperbolic cosine loss improves variational auto-encoder* (2019).
    """
    fn = "log_cosh"
    _checks.check_reduction(fn, reduction)
    x, t, mask = _pair(fn, predictions, targets, where)
    return _reduction.reduce_elements(_log_cosh(x - t), mask, reduction)


def l2_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
) -> jax.Array:
    r"""Half the squared error, optax's ``l2_loss`` (with a reduction).

    .. math::
        \ell = \tfrac{1}{2} (\hat y - y)^2

    elementwise, then ``reduction`` (``"mean"`` over the kept elements; an empty mean is
    0.0, not NaN). :func:`mse_loss` is twice this (optax's ``squared_error``); optax's
    ``l2_loss`` output is ``reduction="none"``.

    Args:
      predictions: floating array of any shape (bf16/f16 are computed in float32).
      targets: floating array of ``predictions.shape`` (required: optax's default of zeros
        is ``jnp.zeros_like(predictions)``).
      where: boolean mask of ``predictions.shape`` (or of the same rank with size-1 axes).
      reduction: ``"none"``, ``"sum"`` or ``"mean"``.

    Returns:
      The loss in float32 (float64 for float64 predictions).

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.l2_loss(jnp.array([1.0, 2.0, 4.0]), jnp.array([1.5, 2.0, 2.0]), reduction="sum")
      Array(2.125, dtype=float32)
    """
    fn = "l2_loss"
    _checks.check_reduction(fn, reduction)
    x, t, mask = _pair(fn, predictions, targets, where)
    # The same rule as mse_loss (no temporary of the inputs' size in value_and_grad), halved.
    return _reduction.reduce_elements(0.5 * _squared_error(x, t), mask, reduction)


# --------------------------------------------------------------------------------------
# Likelihoods: Poisson and Gaussian negative log-likelihoods.

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _poisson_parts(x: jax.Array, t: jax.Array, eps: jax.Array, *, log_input: bool, full: bool, partials: bool):
    """The Poisson NLL elementwise (or its partials in ``x``, ``t`` and ``eps``)."""
    if log_input:
        # y·x with 0·(±inf) = 0: a zero count contributes nothing, whatever the log-rate.
        xs = jnp.where((t == 0) & jnp.isinf(x), 0, x)
        rate = jnp.exp(x)
        value, dx, dt, de = rate - t * xs, rate - t, -xs, jnp.zeros_like(x)
    else:
        shifted = x + eps
        log_rate = jnp.log(shifted)
        value, dx, dt, de = x - t * log_rate, 1 - t / shifted, -log_rate, -t / shifted
    if full:
        big = t > 1
        # Double where: y <= 1 never reaches the log (log 0 would put NaN in the gradient).
        ts = jnp.where(big, t, 1)
        log_t = jnp.log(ts)
        # Stirling: y log y - y + ½ log(2π y) = (y + ½) log y - y + ½ log 2π; d/dy = log y + 1/(2y).
        value = value + jnp.where(big, (ts + 0.5) * log_t - ts + _HALF_LOG_2PI, 0)
        dt = dt + jnp.where(big, log_t + 0.5 / ts, 0)
    return (dx, dt, de) if partials else value


_POISSON = {
    (log_input, full): _elementwise_rule(functools.partial(_poisson_parts, log_input=log_input, full=full))
    for log_input in (False, True)
    for full in (False, True)
}


def poisson_nll_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    log_input: bool = True,
    full: bool = False,
    eps: ArrayLike = 1e-8,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
) -> jax.Array:
    r"""Poisson negative log-likelihood, PyTorch's ``poisson_nll_loss``.

    With ``log_input`` the predictions are log-rates, otherwise rates:

    .. math::
        \ell = e^{x} - y\,x \quad(\texttt{log\_input}) \qquad
        \ell = x - y \log(x + \varepsilon) \quad(\text{otherwise})

    plus, with ``full``, Stirling's approximation of ``log y!``,
    ``y log y - y + ½ log(2π y)``, for ``y > 1`` (0 for ``y <= 1``, as in PyTorch). Then
    ``reduction`` (``"mean"`` over the kept elements; an empty mean is 0.0, not NaN).

    Args:
      predictions: floating log-rates (``log_input=True``) or rates ``>= 0``, any shape.
      targets: floating counts ``>= 0`` of ``predictions.shape`` (cast integer counts first).
      log_input: static; whether ``predictions`` are log-rates.
      full: static; add the Stirling term.
      eps: scalar ``>= 0`` added to the rate inside the log (``log_input=False`` only); may be
        traced.
      where: boolean mask of ``predictions.shape`` (or of the same rank with size-1 axes).
      reduction: ``"none"``, ``"sum"`` or ``"mean"``.

    Returns:
      The loss in float32 (float64 for float64 predictions). Gradients flow to
      ``predictions`` and ``targets``, as in PyTorch.

    Notes:
      A zero count with a ``-inf`` log-rate gives 0 (``0·(-inf)`` is taken as 0), not NaN.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.poisson_nll_loss(jnp.array([0.5]), jnp.array([2.0]), reduction="none")
      Array([0.6487...], dtype=float32)
      >>> jaxent.poisson_nll_loss(jnp.array([0.5]), jnp.array([2.0]), full=True, reduction="none")
      Array([1.3005...], dtype=float32)
    """
    fn = "poisson_nll_loss"
    _checks.check_reduction(fn, reduction)
    _checks.check_static_bool(fn, "log_input", log_input)
    _checks.check_static_bool(fn, "full", full)
    check = _checks.traced_range_check(fn, "eps", eps, 0.0)
    x, t, mask = _pair(fn, predictions, targets, where)
    losses = _POISSON[log_input, full](x, t, _checks.hyperparameter(eps, x.dtype))
    return _checks.attach_checks(_reduction.reduce_elements(losses, mask, reduction), [check])


def _gaussian_parts(d: jax.Array, v: jax.Array, *, partials: bool):
    """``½(log v + d²/v)`` elementwise (or its partials in ``d`` and ``v``)."""
    r = d / v
    if not partials:
        return 0.5 * (jnp.log(v) + d * r)
    # d/dd = d/v; d/dv = ½(1/v - d²/v²).
    return r, 0.5 * (1 / v - r * r)


_gaussian = _elementwise_rule(_gaussian_parts)


def _variance(fn: str, var: Any, shape: tuple[int, ...], dtype: Any) -> jax.Array:
    """``var`` broadcast to ``shape`` by PyTorch's rules for ``gaussian_nll_loss``."""
    v = _checks.as_array(fn, "var", var)
    if not (jnp.issubdtype(v.dtype, jnp.floating) or jnp.issubdtype(v.dtype, jnp.integer)):
        raise TypeError(f"{fn}: var must be a real array, got dtype {v.dtype}; pass variances, e.g. var.astype(float).")
    if v.shape != shape and v.ndim:
        if v.shape == shape[:-1]:
            v = v[..., None]  # one dimension short: one variance per row (homoscedastic)
        elif v.ndim != len(shape) or sum(b for a, b in zip(shape, v.shape) if a != b) != 1:
            raise ValueError(
                f"{fn}: var has shape {v.shape} but predictions has shape {shape}; pass var of shape {shape}, "
                f"{shape[:-1]} (one variance per row), or {shape} with one axis of size 1, as in PyTorch."
            )
    return jnp.broadcast_to(v.astype(dtype), shape)


def gaussian_nll_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    var: ArrayLike,
    *,
    full: bool = False,
    eps: ArrayLike = 1e-6,
    where: ArrayLike | None = None,
    reduction: _reduction.Reduction = "mean",
) -> jax.Array:
    r"""Gaussian negative log-likelihood, PyTorch's ``gaussian_nll_loss``.

    .. math::
        \ell = \tfrac{1}{2}\Bigl(\log v + \frac{(\hat y - y)^2}{v}\Bigr)
               \ (+\ \tfrac{1}{2}\log 2\pi \text{ with } \texttt{full}),
        \qquad v = \max(\mathrm{var}, \varepsilon)

    elementwise, then ``reduction`` (``"mean"`` over the kept elements; an empty mean is
    0.0, not NaN).

    Args:
      predictions: floating means of any shape (bf16/f16 are computed in float32).
      targets: floating array that broadcasts to ``predictions.shape`` (as in PyTorch).
      var: variances ``>= 0``: of ``predictions.shape``, or of ``predictions.shape[:-1]``
        (one per row), or of ``predictions.shape`` with one axis of size 1, or a scalar
        (PyTorch's rules; PyTorch takes a Python float, jaxent any scalar).
      full: static; add the constant ``½ log 2π``.
      eps: scalar ``> 0``, the clamp of ``var`` (may be traced).
      where: boolean mask of ``predictions.shape`` (or of the same rank with size-1 axes).
      reduction: ``"none"``, ``"sum"`` or ``"mean"``.

    Returns:
      The loss in float32 (float64 for float64 predictions). Gradients flow to
      ``predictions``, ``targets`` and ``var``.

    Notes:
      As in PyTorch, the clamp ``max(var, eps)`` is invisible to autodiff: the gradient in
      ``var`` is ``½(1/v - d²/v²)`` at the clamped ``v`` even where ``var < eps``. Negative
      concrete variances are a ``ValueError``; traced ones give NaN for their elements (and
      a named error under ``jax.experimental.checkify`` with ``checkify.user_checks``).

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.gaussian_nll_loss(jnp.array([0.5]), jnp.array([2.0]), jnp.array([0.25]))
      Array(3.8068..., dtype=float32)
    """
    fn = "gaussian_nll_loss"
    _checks.check_reduction(fn, reduction)
    _checks.check_static_bool(fn, "full", full)
    check = _checks.traced_range_check(fn, "eps", eps, 0.0, low_open=True)
    x = _checks.as_array(fn, "predictions", predictions)
    t = _checks.as_array(fn, "targets", targets)
    try:
        broadcasts = np.broadcast_shapes(t.shape, x.shape) == x.shape
    except ValueError:
        broadcasts = False
    if t.shape != x.shape and broadcasts:
        t = jnp.broadcast_to(t, x.shape)  # as in PyTorch, whose (input - target)² broadcasts
    x, t, mask = _pair(fn, x, t, where)
    v = _variance(fn, var, x.shape, x.dtype)
    negative = v < 0 if mask is None else mask & (v < 0)
    lowest = jnp.min(v) if v.size else jnp.zeros((), v.dtype)
    concrete = _checks.concrete(var)
    if concrete is not None and np.any(concrete < 0):
        raise ValueError(f"{fn}: var has a negative entry {np.min(concrete).item()}; variances must be >= 0.")
    if mask is not None:
        v = jnp.where(mask, v, 1)
    e = _checks.hyperparameter(eps, x.dtype)
    # PyTorch clamps under no_grad: the value is max(var, eps), the derivative that of var.
    v = v + jax.lax.stop_gradient(jnp.maximum(v, e) - v)
    losses = _gaussian(x - t, v)
    if full:
        losses = losses + _HALF_LOG_2PI
    # A negative variance poisons its element with NaN (never a silently clamped value).
    losses = jnp.where(negative, jnp.nan, losses)
    text = _checks.checkify_text
    message = text(f"{fn}: var must be >= 0, got ") + "{}" + text("; pass variances, not log-variances.")
    var_check = (~jnp.any(negative), message, lowest)
    return _checks.attach_checks(_reduction.reduce_elements(losses, mask, reduction), [check, var_check])


# --------------------------------------------------------------------------------------
# Loss objects.


@loss_object
class L1Loss(LossObject):
    """:func:`l1_loss` as a frozen dataclass pytree: ``L1Loss(...)(predictions, targets)``.

    ``weight`` is a pytree leaf; ``reduction`` is static.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.L1Loss(reduction="sum")(jnp.array([1.0, 2.0]), jnp.array([0.0, 0.0]))
      Array(3., dtype=float32)
    """

    function: ClassVar = staticmethod(l1_loss)
    weight: ArrayLike | None = None
    reduction: _reduction.Reduction = static_field(default="mean")


@loss_object
class SmoothL1Loss(LossObject):
    """:func:`smooth_l1_loss` as a frozen dataclass pytree: ``SmoothL1Loss(...)(predictions, targets)``.

    ``beta`` is a pytree leaf; ``reduction`` is static.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.SmoothL1Loss(beta=2.0)(jnp.array([1.0, 3.0]), jnp.array([0.0, 0.0]))
      Array(1.125, dtype=float32)
    """

    function: ClassVar = staticmethod(smooth_l1_loss)
    beta: ArrayLike = 1.0
    reduction: _reduction.Reduction = static_field(default="mean")


@loss_object
class HuberLoss(LossObject):
    """:func:`huber_loss` as a frozen dataclass pytree: ``HuberLoss(...)(predictions, targets)``.

    ``delta`` and ``weight`` are pytree leaves; ``reduction`` is static.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.HuberLoss(delta=2.0)(jnp.array([1.0, 3.0]), jnp.array([0.0, 0.0]))
      Array(2.25, dtype=float32)
    """

    function: ClassVar = staticmethod(huber_loss)
    delta: ArrayLike = 1.0
    weight: ArrayLike | None = None
    reduction: _reduction.Reduction = static_field(default="mean")


@loss_object
class LogCoshLoss(LossObject):
    """:func:`log_cosh` as a frozen dataclass pytree: ``LogCoshLoss(...)(predictions, targets)``.

    ``reduction`` is static.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.LogCoshLoss(reduction="sum")(jnp.array([1.0, -1.0]), jnp.array([0.0, 0.0]))
      Array(0.867562, dtype=float32)
    """

    function: ClassVar = staticmethod(log_cosh)
    reduction: _reduction.Reduction = static_field(default="mean")


@loss_object
class L2Loss(LossObject):
    """:func:`l2_loss` as a frozen dataclass pytree: ``L2Loss(...)(predictions, targets)``.

    ``reduction`` is static.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.L2Loss(reduction="sum")(jnp.array([1.0, 2.0]), jnp.array([0.0, 0.0]))
      Array(2.5, dtype=float32)
    """

    function: ClassVar = staticmethod(l2_loss)
    reduction: _reduction.Reduction = static_field(default="mean")


@loss_object
class PoissonNLLLoss(LossObject):
    """:func:`poisson_nll_loss` as a frozen dataclass pytree: ``PoissonNLLLoss(...)(predictions, targets)``.

    ``eps`` is a pytree leaf; ``log_input``, ``full`` and ``reduction`` are static.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.PoissonNLLLoss(full=True)(jnp.array([0.5]), jnp.array([2.0]))
      Array(1.3005..., dtype=float32)
    """

    function: ClassVar = staticmethod(poisson_nll_loss)
    log_input: bool = static_field(default=True)
    full: bool = static_field(default=False)
    eps: ArrayLike = 1e-8
    reduction: _reduction.Reduction = static_field(default="mean")


@loss_object
class GaussianNLLLoss(LossObject):
    """:func:`gaussian_nll_loss` as a frozen dataclass pytree: ``GaussianNLLLoss(...)(predictions, targets, var)``.

    ``eps`` is a pytree leaf; ``full`` and ``reduction`` are static.

    Example:
      >>> import jax.numpy as jnp, jaxent
      >>> jaxent.GaussianNLLLoss()(jnp.array([0.5]), jnp.array([2.0]), jnp.array([0.25]))
      Array(3.8068..., dtype=float32)
    """

    function: ClassVar = staticmethod(gaussian_nll_loss)
    full: bool = static_field(default=False)
    eps: ArrayLike = 1e-6
    reduction: _reduction.Reduction = static_field(default="mean")
