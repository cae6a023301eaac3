"""kl_divergence against float64 references, PyTorch and optax."""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

import jaxent
from tests import programs
from tests import references as ref
from tests.tolerances import GRAD, LOSS, PARITY, assert_close

REDUCTIONS = ("none", "sum", "mean")
F64 = jnp.dtype(jnp.float64)
C = 5


def probs_of(shape, seed=0, axis=-1, zeros=0.0, dtype=jnp.float64):
    """Random distributions along ``axis``; a fraction ``zeros`` of the entries exactly 0."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 1.0, size=shape) * (rng.random(shape) >= zeros)
    p = np.where(p.sum(axis=axis, keepdims=True) == 0, 1.0, p)
    return jnp.asarray(p / p.sum(axis=axis, keepdims=True)).astype(dtype)


def log_probs_of(shape, seed=1, axis=-1, dtype=jnp.float64):
    x = np.random.default_rng(seed).normal(size=shape) * 2
    return jax.nn.log_softmax(jnp.asarray(x), axis=axis).astype(dtype)


def torch_of(torch, a, grad=False):
    return torch.tensor(np.asarray(a), requires_grad=grad)


def _log(t):
    return jnp.log(t)  # -inf at exact zeros: the log-space form of a zero target


# --------------------------------------------------------------------------------------
# Golden values.


def test_golden_values_by_hand():
    log_q = jnp.log(jnp.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]], jnp.float32))
    t = jnp.array([[0.0, 0.5, 0.5], [0.7, 0.2, 0.1]], jnp.float32)
    row0 = 0.5 * math.log(0.5 / 0.3)  # the 0 target and the equal last class contribute 0
    row1 = 0.7 * math.log(0.7 / 0.6) + 0.2 * math.log(0.2 / 0.3)
    tol = dict(rtol=1e-6, atol=1e-6)
    out = jaxent.kl_divergence(log_q, t, reduction="none")
    assert out.dtype == jnp.float32
    assert_close(out, [row0, row1], tol)
    assert_close(jaxent.kl_divergence(log_q, t), (row0 + row1) / 2, tol)
    assert_close(jaxent.kl_divergence(log_q, t, reduction="sum"), row0 + row1, tol)
    assert_close(jaxent.kl_divergence(log_q, jnp.log(t), log_target=True, reduction="none"), [row0, row1], tol)
    # Identical distributions: exactly 0.
    assert jaxent.kl_divergence(log_q, jnp.exp(log_q), reduction="sum") == pytest.approx(0.0, abs=1e-7)


def test_golden_batchmean_matches_torch(torch):
    # loss-semantics §3.7 quotes a batchmean probe (0.7728 = sum/2) without its inputs;
    # here the same identity, batchmean = sum / N, on fixed inputs.
    x = torch.tensor([[-1.0, -2.0, -0.5], [-0.3, -1.5, -2.0]])
    t = torch.tensor([[0.2, 0.0, 0.8], [0.5, 0.5, 0.0]])
    want = torch.nn.functional.kl_div(x, t, reduction="batchmean")
    assert_close(want.item() * 2, torch.nn.functional.kl_div(x, t, reduction="sum").item(), LOSS[F64])
    assert_close(jaxent.kl_divergence(jnp.asarray(x.numpy()), jnp.asarray(t.numpy())), want.item(), PARITY)


# --------------------------------------------------------------------------------------
# PyTorch parity.


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("log_target", [False, True])
def test_matches_torch(torch, reduction, log_target):
    lq = log_probs_of((6, C), 1)
    t = probs_of((6, C), 2, zeros=0.0 if log_target else 0.3)  # torch's log_target gives NaN at -inf
    tt = jnp.log(t) if log_target else t
    got = jaxent.kl_divergence(lq, tt, log_target=log_target, reduction=reduction)
    torch_reduction = {"none": "none", "sum": "sum", "mean": "batchmean"}[reduction]
    x_t, t_t = torch_of(torch, lq, grad=True), torch_of(torch, tt, grad=True)
    want = torch.nn.functional.kl_div(x_t, t_t, reduction=torch_reduction, log_target=log_target)
    if reduction == "none":
        want = want.sum(-1)  # torch's "none" is elementwise; ours sums the class axis
    assert_close(got, want.detach().numpy(), PARITY)
    # Gradients too, where torch's are defined (positive targets).
    gx, gt = jax.grad(
        lambda a, b: jnp.sum(jaxent.kl_divergence(a, b, log_target=log_target, reduction=reduction)), (0, 1)
    )(lq, tt)
    want.sum().backward()
    assert_close(gx, x_t.grad.numpy(), PARITY)
    positive = np.asarray(t) > 0
    assert_close(np.asarray(gt)[positive], t_t.grad.numpy()[positive], PARITY)


def test_k_dimensional_inputs_match_torch(torch):
    # (N, C, d): torch's batchmean divides by N only; our mean divides by every position N*d.
    lq, t = log_probs_of((3, C, 4), 3, axis=1), probs_of((3, C, 4), 4, axis=1, zeros=0.2)
    x_t, t_t = torch_of(torch, lq), torch_of(torch, t)
    none = torch.nn.functional.kl_div(x_t, t_t, reduction="none").sum(1)
    assert_close(jaxent.kl_divergence(lq, t, axis=1, reduction="none"), none.numpy(), PARITY)
    total = torch.nn.functional.kl_div(x_t, t_t, reduction="sum").item()
    assert_close(jaxent.kl_divergence(lq, t, axis=1, reduction="sum"), total, PARITY)
    assert_close(jaxent.kl_divergence(lq, t, axis=1), total / 12, PARITY)
    batchmean = torch.nn.functional.kl_div(x_t, t_t, reduction="batchmean").item()
    assert_close(jaxent.kl_divergence(lq, t, axis=1) * 4, batchmean, PARITY)


# --------------------------------------------------------------------------------------
# optax parity.


def test_matches_optax():
    lq, t = log_probs_of((4, 3, C), 5), probs_of((4, 3, C), 6)  # strictly positive targets
    assert_close(jaxent.kl_divergence(lq, t, reduction="none"), optax.losses.kl_divergence(lq, t), PARITY)
    assert_close(
        jaxent.kl_divergence(lq, jnp.log(t), log_target=True, reduction="none"),
        optax.losses.kl_divergence_with_log_targets(lq, jnp.log(t)),
        PARITY,
    )
    # Zero targets: optax's value is right (0 contribution); its target gradient is not.
    t0 = probs_of((4, 3, C), 7, zeros=0.3)
    assert_close(jaxent.kl_divergence(lq, t0, reduction="none"), optax.losses.kl_divergence(lq, t0), PARITY)


def test_axis_and_class_mask_match_optax():
    lq, t = log_probs_of((2, 3, 4, 2), 8, axis=(1, 2)), probs_of((2, 3, 4, 2), 9)
    want = optax.losses.kl_divergence(lq, t, axis=(1, 2))
    assert_close(jaxent.kl_divergence(lq, t, axis=(1, 2), reduction="none"), want, PARITY)
    lq, t = log_probs_of((6, C), 10), probs_of((6, C), 11)
    mask = jnp.asarray(np.random.default_rng(12).random((6, C)) > 0.4).at[2].set(False)  # one row fully masked
    for log_target, f in ((False, optax.losses.kl_divergence), (True, optax.losses.kl_divergence_with_log_targets)):
        tt = jnp.log(t) if log_target else t
        want = f(lq, tt, where=mask)
        got = jaxent.kl_divergence(lq, tt, log_target=log_target, where=mask, reduction="none")
        assert_close(got, want, PARITY)


# --------------------------------------------------------------------------------------
# float64 reference.

REFERENCE_CONFIGS = {
    "plain": dict(),
    "zeros": dict(zeros=0.4),
    "class_mask": dict(zeros=0.2, class_mask=True),
    "example_mask": dict(zeros=0.2, example_mask=True),
    "neg_inf_predictions_on_zero_targets": dict(zeros=0.4, neg_inf=True),
    "axis_1": dict(zeros=0.2, axis=1),
    "tuple_axis": dict(zeros=0.2, axis=(2, 1)),
}


def _reference_case(name, shape=(4, 3, C), seed=20):
    options = dict(REFERENCE_CONFIGS[name])
    rng = np.random.default_rng(seed)
    axis = options.pop("axis", -1)
    t = probs_of(shape, seed, axis=axis, zeros=options.pop("zeros", 0.0))
    lq = np.array(log_probs_of(shape, seed + 1, axis=axis))
    if options.pop("neg_inf", False):
        lq[np.asarray(t) == 0] = -np.inf  # impossible predictions exactly where nothing is expected
    where = None
    if options.pop("class_mask", False):
        where = jnp.asarray(rng.random(shape) > 0.3)
    if options.pop("example_mask", False):
        where = jnp.asarray(rng.random((shape[0], shape[1])) > 0.4)
    return jnp.asarray(lq), t, dict(axis=axis, where=where)


@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.parametrize("name", sorted(REFERENCE_CONFIGS))
def test_matches_float64_reference(name, log_target):
    lq, t, options = _reference_case(name)
    tt = _log(t) if log_target else t
    for reduction in REDUCTIONS:
        got = jaxent.kl_divergence(lq, tt, log_target=log_target, reduction=reduction, **options)
        want = ref.kl_divergence(lq, tt, log_target=log_target, reduction=reduction, **options)
        assert np.all(np.isfinite(got))
        assert_close(got, want, LOSS[F64])


# --------------------------------------------------------------------------------------
# Gradients.


@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.parametrize("name", ["zeros", "class_mask", "example_mask", "neg_inf_predictions_on_zero_targets"])
def test_gradients_match_reference_autodiff_including_zero_targets(name, log_target):
    lq, t, options = _reference_case(name, seed=30)
    tt = _log(t) if log_target else t
    f = lambda a, b: jaxent.kl_divergence(a, b, log_target=log_target, **options)
    r = lambda a, b: ref.kl_divergence(a, b, log_target=log_target, **options)
    got = jax.grad(f, (0, 1))(lq, tt)
    want = jax.grad(r, (0, 1))(lq, tt)
    for g, w in zip(got, want):
        assert np.all(np.isfinite(g))
        assert_close(g, w, GRAD[F64])
    # The analytic derivatives: d/dlog q = -t/N, d/dt = (log t + 1 - log q)/N; 0 at zero targets.
    if name == "zeros" and not log_target:
        n = t.shape[0] * t.shape[1]  # no mask: every position is an example
        assert_close(got[0], -t / n, GRAD[F64])
        zero = np.asarray(t) == 0
        assert np.all(np.asarray(got[1])[zero] == 0)
        assert_close(np.asarray(got[1])[~zero], np.asarray(jnp.log(t) + 1 - lq)[~zero] / n, GRAD[F64])


@pytest.mark.parametrize("log_target", [False, True])
def test_check_grads_reverse_mode_second_order(log_target):
    lq, t = log_probs_of((3, 4), 40), probs_of((3, 4), 41)  # finite differences need t > 0
    tt = jnp.log(t) if log_target else t
    mask = jnp.array([[True, True, False, True]] * 3)
    for where in (None, mask):
        f = lambda a, b: jaxent.kl_divergence(a, b, log_target=log_target, where=where)
        check_grads(f, (lq, tt), order=2, modes=["rev"])
    hess = jax.hessian(lambda a: jaxent.kl_divergence(a, tt, log_target=log_target))(lq)
    assert_close(hess, jax.hessian(lambda a: ref.kl_divergence(a, tt, log_target=log_target))(lq), GRAD[F64])


def test_forward_mode_works():
    lq, t = log_probs_of((3, 4), 42), probs_of((3, 4), 43, zeros=0.3)
    f = lambda a, b: jaxent.kl_divergence(a, b)
    jvp = jax.jvp(f, (lq, t), (jnp.ones_like(lq), jnp.ones_like(t)))[1]
    g = jax.grad(f, (0, 1))(lq, t)
    assert_close(jvp, jnp.sum(g[0]) + jnp.sum(g[1]), GRAD[F64])


# --------------------------------------------------------------------------------------
# Masks, axes, transformations.


def test_example_mask_equals_boolean_indexing():
    lq, t = log_probs_of((8, C), 50), probs_of((8, C), 51, zeros=0.2)
    keep = np.array([1, 0, 1, 1, 0, 0, 1, 1], bool)
    for log_target in (False, True):
        tt = _log(t) if log_target else t
        masked = lambda a, b: jaxent.kl_divergence(a, b, log_target=log_target, where=jnp.asarray(keep))
        indexed = lambda a, b: jaxent.kl_divergence(a, b, log_target=log_target)
        assert_close(masked(lq, tt), indexed(lq[keep], tt[keep]), LOSS[F64])
        g = jax.grad(masked, (0, 1))(lq, tt)
        gi = jax.grad(indexed, (0, 1))(lq[keep], tt[keep])
        for a, b in zip(g, gi):
            assert np.all(np.asarray(a)[~keep] == 0)
            assert_close(a[keep], b, GRAD[F64])


def test_class_mask_equals_removing_the_classes():
    lq, t = log_probs_of((6, C), 52), probs_of((6, C), 53, zeros=0.2)
    keep = np.array([1, 1, 0, 1, 1], bool)
    mask = jnp.broadcast_to(jnp.asarray(keep), lq.shape)
    a = jaxent.kl_divergence(lq, t, where=mask, reduction="none")
    assert_close(a, jaxent.kl_divergence(lq[:, keep], t[:, keep], reduction="none"), LOSS[F64])
    g = jax.grad(lambda a, b: jaxent.kl_divergence(a, b, where=mask), (0, 1))(lq, t)
    assert np.all(np.asarray(g[0])[:, ~keep] == 0) and np.all(np.asarray(g[1])[:, ~keep] == 0)
    # A fully masked row is a masked example (out of the mean).
    rows = jnp.ones((6, C), bool).at[1].set(False)
    assert_close(
        jaxent.kl_divergence(lq, t, where=rows),
        jaxent.kl_divergence(lq, t, where=jnp.array([True, False, True, True, True, True])),
        LOSS[F64],
    )


def test_axis_equals_moveaxis():
    lq, t = log_probs_of((2, C, 3), 54, axis=1), probs_of((2, C, 3), 55, axis=1, zeros=0.2)
    a = jaxent.kl_divergence(lq, t, axis=1, reduction="none")
    b = jaxent.kl_divergence(jnp.moveaxis(lq, 1, -1), jnp.moveaxis(t, 1, -1), reduction="none")
    assert_close(a, b, LOSS[F64])
    ga = jax.grad(lambda a, b: jaxent.kl_divergence(a, b, axis=1), (0, 1))(lq, t)
    gb = jax.grad(lambda a, b: jaxent.kl_divergence(jnp.moveaxis(a, 1, -1), jnp.moveaxis(b, 1, -1)), (0, 1))(lq, t)
    for x, y in zip(ga, gb):
        assert_close(x, y, GRAD[F64])


def test_eager_jit_and_vmap_agree():
    lq, t = log_probs_of((6, C), 56), probs_of((6, C), 57, zeros=0.3)
    for log_target in (False, True):
        tt = _log(t) if log_target else t
        f = functools.partial(jaxent.kl_divergence, log_target=log_target, reduction="none")
        eager = f(lq, tt)
        assert_close(jax.jit(f)(lq, tt), eager, LOSS[F64])
        assert_close(jax.vmap(f)(lq, tt), eager, LOSS[F64])
        g = jax.grad(lambda a, b: jnp.sum(f(a, b)), (0, 1))(lq, tt)
        gv = jax.vmap(jax.grad(f, (0, 1)))(lq, tt)
        for a, b in zip(g, gv):
            assert_close(a, b, GRAD[F64])


def test_unbatched_input():
    lq, t = log_probs_of((C,), 58), probs_of((C,), 59)
    out = jaxent.kl_divergence(lq, t, reduction="none")
    assert out.shape == ()
    assert_close(out, jaxent.kl_divergence(lq[None], t[None], reduction="sum"), LOSS[F64])
    assert_close(jaxent.kl_divergence(lq, t), out, LOSS[F64])


def test_empty_mean_is_zero_with_zero_gradients():
    lq, t = log_probs_of((4, C), 60), probs_of((4, C), 61)
    for where in (jnp.zeros((4,), bool), jnp.zeros((4, C), bool)):
        loss, g = jax.value_and_grad(lambda a, b: jaxent.kl_divergence(a, b, where=where), (0, 1))(lq, t)
        assert loss == 0 and np.all(g[0] == 0) and np.all(g[1] == 0)


# --------------------------------------------------------------------------------------
# Infinities and extremes.


def test_zero_targets_and_neg_inf_are_exact():
    inf = jnp.inf
    lq = jnp.array([[-inf, -0.5, -1.0], [-inf, -0.2, -2.0], [-1e4, -1e-4, -3.0]])
    t = jnp.array([[0.0, 0.6, 0.4], [0.3, 0.7, 0.0], [0.0, 1.0, 0.0]])
    for log_target in (False, True):
        tt = _log(t) if log_target else t  # -inf log-targets where t = 0
        losses = jaxent.kl_divergence(lq, tt, log_target=log_target, reduction="none")
        # Row 0: log q = -inf with t = 0 is 0; row 1: t > 0 on log q = -inf is +inf.
        assert np.isfinite(losses[0]) and losses[1] == np.inf and np.isfinite(losses[2])
        want = ref.kl_divergence(lq, tt, log_target=log_target, reduction="none")
        assert_close(losses, want, LOSS[F64])
        g = jax.grad(lambda a, b: jnp.sum(jaxent.kl_divergence(a, b, log_target=log_target, reduction="none")), (0, 1))(
            lq, tt
        )
        for a in g:
            assert np.all(np.isfinite(a))
        zero = np.asarray(t) == 0
        assert np.all(np.asarray(g[0])[zero] == 0) and np.all(np.asarray(g[1])[zero] == 0)
        # The +inf entry gets a zero gradient; the other entries of its row keep theirs.
        assert g[0][1, 0] == 0 and g[1][1, 0] == 0
        assert_close(g[0][1, 1], -0.7, GRAD[F64])


def test_large_magnitudes_give_no_nan():
    lq = jnp.array([[-1e4, -1e-3, -5e3], [-3e3, -2e3, 0.0]], jnp.float32)
    t = jnp.array([[0.25, 0.5, 0.25], [0.0, 0.0, 1.0]], jnp.float32)
    for log_target, tt in ((False, t), (True, jnp.array([[-1e4, -1e-3, -5e3], [-1e4, -2e3, 0.0]], jnp.float32))):
        loss, g = jax.value_and_grad(lambda a, b: jaxent.kl_divergence(a, b, log_target=log_target), (0, 1))(lq, tt)
        assert np.isfinite(loss) and all(np.all(np.isfinite(a)) for a in g)
        want = ref.kl_divergence(lq.astype(F64), tt.astype(F64), log_target=log_target)
        assert_close(loss, want, dict(rtol=1e-6, atol=1e-3))


def test_negative_and_nan_targets_are_nan_not_hidden():
    lq = log_probs_of((2, 3), 62)
    t = jnp.array([[-0.1, 0.6, 0.5], [jnp.nan, 0.5, 0.5]])
    losses = jaxent.kl_divergence(lq, t, reduction="none")
    assert np.all(np.isnan(losses))


# --------------------------------------------------------------------------------------
# Half precision.


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_half_precision_is_computed_in_float32(dtype):
    lq, t = log_probs_of((6, 8), 70, dtype=dtype), probs_of((6, 8), 71, zeros=0.2, dtype=dtype)
    lq64, t64 = lq.astype(F64), t.astype(F64)  # the reference sees exactly the rounded inputs
    for log_target in (False, True):
        tt, tt64 = (jnp.log(t64).astype(dtype), None) if log_target else (t, t64)
        tt64 = tt.astype(F64) if log_target else tt64
        loss = jaxent.kl_divergence(lq, tt, log_target=log_target)
        assert loss.dtype == jnp.float32
        assert_close(loss, ref.kl_divergence(lq64, tt64, log_target=log_target), LOSS[jnp.dtype(dtype)])
        grads = jax.grad(lambda a, b: jaxent.kl_divergence(a, b, log_target=log_target), (0, 1))(lq, tt)
        want = jax.grad(lambda a, b: ref.kl_divergence(a, b, log_target=log_target), (0, 1))(lq64, tt64)
        for g, w in zip(grads, want):
            assert g.dtype == dtype
            assert_close(g, w, GRAD[jnp.dtype(dtype)])
    # Mixed: float32 targets with bfloat16 predictions compute (and return) float32.
    assert jaxent.kl_divergence(lq, t.astype(jnp.float32)).dtype == jnp.float32


# --------------------------------------------------------------------------------------
# Bad input.

BAD_INPUTS = [
    (dict(targets=np.zeros((8, 9))), ValueError, r"kl_divergence: targets has shape \(8, 9\) but log_predictions"),
    (dict(targets=np.zeros((8,))), ValueError, r"targets has shape \(8,\) but log_predictions has shape \(8, 10\)"),
    (dict(targets=np.zeros((8, 10), np.int32)), TypeError, "kl_divergence: targets must be a floating-point array"),
    (dict(log_predictions=np.zeros((8, 10), np.int32)), TypeError, "log_predictions must be a floating-point array"),
    (dict(reduction="batchmean"), ValueError, "'mean' here is PyTorch's 'batchmean'"),
    (dict(reduction="avg"), ValueError, "reduction must be one of 'none', 'sum' or 'mean', got 'avg'"),
    (dict(log_target=1), TypeError, "kl_divergence: log_target must be a Python bool"),
    (dict(axis=2), ValueError, r"axis 2 is out of range"),
    (dict(where=np.ones((8, 3), bool)), ValueError, r"where has shape \(8, 3\) but log_predictions has shape"),
    (dict(where=np.ones((8,))), TypeError, "where must be a boolean mask"),
]


@pytest.mark.parametrize(("kwargs", "error", "match"), BAD_INPUTS)
def test_bad_input_is_a_clear_error(kwargs, error, match):
    args = dict(log_predictions=np.zeros((8, 10)), targets=np.full((8, 10), 0.1))
    args.update(kwargs)
    with pytest.raises(error, match=match):
        jaxent.kl_divergence(args.pop("log_predictions"), args.pop("targets"), **args)


# --------------------------------------------------------------------------------------
# Loss objects and properties.


def test_loss_object_equals_function():
    lq, t = log_probs_of((4, C), 80), probs_of((4, C), 81, zeros=0.2)
    loss = jaxent.KLDivLoss(log_target=True, reduction="sum")
    mask = jnp.array([True, False, True, True])
    assert_close(loss(lq, _log(t)), jaxent.kl_divergence(lq, _log(t), log_target=True, reduction="sum"), LOSS[F64])
    assert_close(
        loss(lq, _log(t), where=mask),
        jaxent.kl_divergence(lq, _log(t), log_target=True, reduction="sum", where=mask),
        LOSS[F64],
    )
    assert jax.tree_util.tree_leaves(loss) == []  # every field is static
    assert_close(jax.jit(lambda loss, a, b: loss(a, b))(loss, lq, _log(t)), loss(lq, _log(t)), LOSS[F64])
    with pytest.raises(dataclasses.FrozenInstanceError):
        loss.reduction = "mean"  # type: ignore[misc]


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.floats(-8, 8), min_size=12, max_size=12),
    st.lists(st.floats(0, 1), min_size=12, max_size=12),
)
def test_property_nonnegative_and_zero_at_equality(raw_logits, raw_targets):
    lq = jax.nn.log_softmax(jnp.asarray(raw_logits).reshape(3, 4))
    t = jnp.asarray(raw_targets).reshape(3, 4)
    t = jnp.where(jnp.sum(t, axis=-1, keepdims=True) > 0, t, 1.0)
    t = t / jnp.sum(t, axis=-1, keepdims=True)
    losses = jaxent.kl_divergence(lq, t, reduction="none")
    assert np.all(np.asarray(losses) >= -1e-12)  # Gibbs' inequality
    assert_close(jaxent.kl_divergence(lq, jnp.exp(lq), reduction="none"), np.zeros(3), dict(rtol=0, atol=1e-12))
    assert_close(jaxent.kl_divergence(jnp.log(t), t, reduction="none"), np.zeros(3), dict(rtol=0, atol=1e-12))
    # Gradients at zero targets are exactly 0, never NaN.
    g = jax.grad(lambda a, b: jaxent.kl_divergence(a, b), (0, 1))(lq, t)
    assert np.all(np.isfinite(g[0])) and np.all(np.isfinite(g[1]))
    assert np.all(np.asarray(g[1])[np.asarray(t) == 0] == 0)


# --------------------------------------------------------------------------------------
# Compiled memory, forward mode and higher orders, backend neutrality.

MEMORY_CASES = [
    (False, None),
    (True, None),
    (False, "classes"),
    (True, "examples"),
    (True, "classes"),
]


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize(("log_target", "where"), MEMORY_CASES)
def test_compiled_temp_memory_is_at_most_one_percent_of_the_logits(log_target, where, dtype):
    # No [N, C] temporary: forward only (every reduction) and value_and_grad in the
    # predictions, in float32 and bfloat16 (no float32 copy of the inputs).
    lq = t = jax.ShapeDtypeStruct(programs.BIG, dtype)
    mask = {"classes": programs.BIG, "examples": programs.BIG[:1]}
    arrays = {} if where is None else dict(where=jax.ShapeDtypeStruct(mask[where], jnp.bool_))
    bound = programs.one_percent_of_f32(programs.BIG)
    for reduction in REDUCTIONS:
        loss = functools.partial(
            lambda r, a, b, w: jaxent.kl_divergence(a, b, log_target=log_target, reduction=r, **w), reduction
        )
        assert programs.temp_bytes(loss, lq, t, arrays) <= bound, ("forward", reduction)
        if reduction != "none":
            assert programs.temp_bytes(jax.value_and_grad(loss), lq, t, arrays) <= bound, ("fwd+bwd", reduction)


@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_forward_mode_and_higher_orders(log_target, masked):
    lq, t = log_probs_of((2, 4), 90), probs_of((2, 4), 91)  # finite differences need t > 0
    tt = jnp.log(t) if log_target else t
    where = jnp.array([[True, True, False, True], [True, True, True, True]]) if masked else None
    f = jax.jit(lambda a, b: jaxent.kl_divergence(a, b, log_target=log_target, where=where))
    # check_grads in both modes to second order, in the predictions and the targets.
    check_grads(f, (lq, tt), order=2, modes=["fwd", "rev"])
    da, db = log_probs_of((2, 4), 92), log_probs_of((2, 4), 93)
    value, tangent = jax.jvp(f, (lq, tt), (da, db))
    ga, gb = jax.grad(f, (0, 1))(lq, tt)
    assert_close(value, f(lq, tt), LOSS[F64])
    assert_close(tangent, jnp.sum(ga * da) + jnp.sum(gb * db), GRAD[F64])
    _, linear = jax.linearize(f, lq, tt)
    assert_close(linear(da, db), tangent, GRAD[F64])
    assert_close(jax.jacfwd(f, (0, 1))(lq, tt), (ga, gb), GRAD[F64])
    for argnum in (0, 1):
        hess = jax.hessian(f, argnum)(lq, tt)
        assert np.all(np.isfinite(hess))
        assert_close(hess, jax.jacrev(jax.jacfwd(f, argnum), argnum)(lq, tt), GRAD[F64])
    # Second order stays finite at a zero target on a -inf prediction.
    t0, lq0 = t.at[0, 0].set(0.0), lq.at[0, 0].set(-jnp.inf)
    tt0 = jnp.log(t0) if log_target else t0
    for argnum in (0, 1):
        assert np.all(np.isfinite(jax.hessian(f, argnum)(lq0, tt0)))


@pytest.mark.parametrize("log_target", [False, True])
def test_programs_are_backend_neutral(log_target):
    lq, t = log_probs_of((8, C), 95, dtype=jnp.float32), probs_of((8, C), 96, zeros=0.2, dtype=jnp.float32)
    tt = jnp.log(t) if log_target else t
    mask = jnp.asarray(np.random.default_rng(97).random((8, C)) > 0.2)
    for where in (None, mask):
        f = lambda a, b: jaxent.kl_divergence(a, b, log_target=log_target, where=where)
        for g in (f, jax.value_and_grad(f, (0, 1))):
            programs.assert_backend_neutral(g, lq, tt)


# --------------------------------------------------------------------------------------
# generalized_kl_divergence (and optax's deprecated convex_kl_divergence), smooth_labels.

_gkl = jax.jit(jaxent.generalized_kl_divergence, static_argnames=("log_target", "axis", "reduction"))


def unnormalised_of(shape, seed=0, zeros=0.0):
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.uniform(0.1, 2.0, size=shape) * (rng.random(shape) >= zeros))


def test_generalized_kl_golden_optax_and_reference():
    log_q, t = jnp.log(jnp.array([[0.5, 1.0, 2.0]])), jnp.array([[1.0, 1.0, 0.0]])
    # 1·log(1/0.5) + 0.5 - 1, + 0 + 1 - 1, + 0 + 2 - 0 = log 2 + 1.5.
    assert_close(jaxent.generalized_kl_divergence(log_q, t, reduction="none"), [math.log(2) + 1.5], LOSS[F64])
    cases = 0
    for shape, axis in (((4, 5), -1), ((2, 5, 3), 1)):
        lq, t = jnp.log(unnormalised_of(shape, 1)), unnormalised_of(shape, 2, zeros=0.2)
        want = optax.losses.generalized_kl_divergence(lq, t, axis=axis)
        assert_close(_gkl(lq, t, axis=axis, reduction="none"), want, PARITY)
        with pytest.warns(DeprecationWarning):
            old = optax.losses.convex_kl_divergence(lq, t, axis=axis)
        assert_close(jaxent.convex_kl_divergence(lq, t, axis=axis, reduction="none"), old, PARITY)
        for reduction in REDUCTIONS:
            got = _gkl(lq, t, axis=axis, reduction=reduction)
            assert_close(got, ref.generalized_kl_divergence(lq, t, axis=axis, reduction=reduction), LOSS[F64])
        # The gradient in log q is optax's; in t, optax's is NaN at zero targets: compare where t > 0.
        g = jax.grad(lambda a, b: _gkl(a, b, axis=axis, reduction="sum"), (0, 1))(lq, t)
        w = jax.grad(lambda a, b: jnp.sum(optax.losses.generalized_kl_divergence(a, b, axis=axis)), (0, 1))(lq, t)
        assert_close(g[0], w[0], PARITY)
        pos = np.asarray(t) > 0
        assert_close(np.asarray(g[1])[pos], np.asarray(w[1])[pos], PARITY)
        assert np.all(np.isfinite(g[1]))
        cases += 1
    assert cases == 2
    # Normalised inputs: the plain KL divergence.
    lq, t = log_probs_of((3, C), 3), probs_of((3, C), 4)
    assert_close(_gkl(lq, t), jaxent.kl_divergence(lq, t), LOSS[F64])


def test_generalized_kl_masks_log_target_grads_and_objects():
    lq, t = jnp.log(unnormalised_of((4, C), 5)), unnormalised_of((4, C), 6, zeros=0.2)
    cm = jnp.asarray(np.random.default_rng(7).random((4, C)) > 0.3).at[2].set(False)
    for reduction in REDUCTIONS:
        got = _gkl(lq, t, where=cm, reduction=reduction)
        assert_close(got, ref.generalized_kl_divergence(lq, t, where=cm, reduction=reduction), LOSS[F64])
    want = optax.losses.generalized_kl_divergence(lq, t, where=cm)
    assert_close(_gkl(lq, t, where=cm, reduction="none"), jnp.where(jnp.any(cm, -1), want, 0), PARITY)
    rows = jnp.array([True, False, True, True])
    keep = np.asarray(rows)
    padded = jnp.where(rows[:, None], lq, jnp.nan)
    loss, g = jax.value_and_grad(lambda a: _gkl(a, t, where=rows))(padded)
    assert_close(loss, _gkl(lq[keep], t[keep]), LOSS[F64])
    assert np.all(np.asarray(g)[~keep] == 0)
    # log_target: the same loss with targets in log space (log 0 = -inf exact).
    assert_close(_gkl(lq, jnp.log(t), log_target=True), _gkl(lq, t), LOSS[F64])
    ga = jax.grad(lambda a, b: _gkl(a, b, where=cm), (0, 1))(lq, t)
    gr = jax.grad(lambda a, b: ref.generalized_kl_divergence(a, b, where=cm), (0, 1))(lq, t + 0.0)
    assert_close(ga[0], gr[0], GRAD[F64])
    pos = np.asarray(t) > 0
    assert_close(np.asarray(ga[1])[pos], np.asarray(gr[1])[pos], GRAD[F64])
    tp = t + 0.1  # strictly positive: the function is smooth in both arguments
    check_grads(lambda a, b: _gkl(a, b, where=cm), (lq, tp), order=2, modes=["fwd", "rev"])
    check_grads(lambda a, b: _gkl(a, b, log_target=True), (lq, jnp.log(tp)), order=2, modes=["fwd", "rev"])
    # Extremes: -inf log q with zero target is exact 0 (q = 0), with a positive one +inf; no NaN gradient.
    lq_inf = lq.at[0, 0].set(-jnp.inf).at[1, 1].set(-jnp.inf)
    t_inf = t.at[0, 0].set(0.0).at[1, 1].set(1.0)
    losses = _gkl(lq_inf, t_inf, reduction="none")
    assert np.isfinite(losses[0]) and losses[1] == jnp.inf
    assert np.all(np.isfinite(jax.grad(lambda a, b: _gkl(a, b, reduction="sum"), (0, 1))(lq_inf, t_inf)))
    big = _gkl(jnp.full((2, 3), 30.0), jnp.full((2, 3), 1e13), reduction="none")
    assert np.all(np.isfinite(big))
    # eager = jit = vmap; dtypes; the loss object; empty mean.
    f = functools.partial(jaxent.generalized_kl_divergence, reduction="none")
    assert_close(jax.vmap(f)(lq, t), f(lq, t), LOSS[F64])
    loss, g = jax.value_and_grad(lambda a: _gkl(a, t, where=jnp.zeros((4,), bool)))(lq)
    assert loss == 0 and np.all(g == 0)
    lb, tb = lq.astype(jnp.bfloat16), t.astype(jnp.bfloat16)
    assert _gkl(lb, tb).dtype == jnp.float32
    assert_close(_gkl(lb, tb), ref.generalized_kl_divergence(lb, tb), LOSS[jnp.dtype(jnp.bfloat16)])
    assert jax.grad(_gkl)(lb, tb).dtype == jnp.bfloat16
    obj = jaxent.GeneralizedKLDivLoss(reduction="sum")
    assert jax.tree_util.tree_leaves(obj) == []
    assert_close(jax.jit(lambda o, a, b: o(a, b))(obj, lq, t), _gkl(lq, t, reduction="sum"), LOSS[F64])
    assert_close(jaxent.convex_kl_divergence(lq, t, where=cm), _gkl(lq, t, where=cm), LOSS[F64])


@pytest.mark.parametrize("fn", [jaxent.generalized_kl_divergence, jaxent.convex_kl_divergence])
def test_generalized_kl_bad_input(fn):
    name = fn.__name__
    with pytest.raises(TypeError, match=f"{name}: targets must be a floating-point array"):
        fn(np.zeros((4, 3)), np.zeros((4, 3), np.int32))
    with pytest.raises(ValueError, match=rf"{name}: targets has shape \(4,\) but log_predictions has shape \(4, 3\)"):
        fn(np.zeros((4, 3)), np.zeros((4,)))
    with pytest.raises(ValueError, match=f"{name}: reduction must be one of"):
        fn(np.zeros((4, 3)), np.zeros((4, 3)), reduction="batchmean")
    with pytest.raises(ValueError, match=rf"{name}: where has shape \(3,\)"):
        fn(np.zeros((4, 3)), np.zeros((4, 3)), where=np.ones((3,), bool))
    with pytest.raises(TypeError, match=f"{name}: log_target must be a Python bool"):
        fn(np.zeros((4, 3)), np.zeros((4, 3)), log_target="yes")


def test_smooth_labels_matches_optax_and_reference():
    y = jax.nn.one_hot(jnp.array([0, 2, 1]), 4, dtype=F64)
    for alpha in (0.0, 0.1, 1.0):
        assert_close(jaxent.smooth_labels(y, alpha), optax.smooth_labels(y, alpha), PARITY)
        assert_close(jaxent.smooth_labels(y, alpha), ref.smooth_labels(y, alpha), LOSS[F64])
    y3 = jnp.moveaxis(jax.nn.one_hot(jnp.array([[0, 2], [1, 1]]), 3, dtype=F64), -1, 1)
    assert_close(jaxent.smooth_labels(y3, 0.3, axis=1), optax.smooth_labels(y3, 0.3, axis=1), PARITY)
    # where: optax's values on the kept classes; 0 on the masked ones (jaxent's decision).
    m = jnp.array([[True, True, False, True], [True, False, True, True], [False, False, False, False]])
    got = jaxent.smooth_labels(y, 0.2, where=m)
    with jax.numpy_dtype_promotion("standard"):
        want = optax.smooth_labels(y, 0.2, where=m)
    assert_close(jnp.where(m, got, 0), jnp.where(m, want, 0), PARITY)
    assert np.all(np.asarray(got)[~np.asarray(m)] == 0)
    assert_close(got, ref.smooth_labels(y, 0.2, where=m), LOSS[F64])
    # Smoothed one-hot targets in cross_entropy equal its label_smoothing option.
    x = jnp.asarray(np.random.default_rng(8).normal(size=(3, 4)))
    assert_close(
        jaxent.cross_entropy(x, jaxent.smooth_labels(y, 0.1)),
        jaxent.cross_entropy(x, jnp.array([0, 2, 1]), label_smoothing=0.1),
        LOSS[F64],
    )
    assert jaxent.smooth_labels(y.astype(jnp.bfloat16), 0.1).dtype == jnp.bfloat16
    assert_close(jax.jit(jaxent.smooth_labels)(y, 0.1), jaxent.smooth_labels(y, 0.1), LOSS[F64])
    g = jax.grad(lambda a: jnp.sum(jaxent.smooth_labels(y, a) * x))(0.1)
    assert_close(g, jnp.sum((1 / 4 - y) * x), GRAD[F64])
    with pytest.raises(ValueError, match=r"smooth_labels: alpha must lie in \[0.0, 1.0\], got 1.5"):
        jaxent.smooth_labels(y, 1.5)
    with pytest.raises(TypeError, match="smooth_labels: labels must be a floating-point array"):
        jaxent.smooth_labels(jnp.array([0, 1]), 0.1)
    with pytest.raises(ValueError, match=r"smooth_labels: where has shape \(3,\) but labels has shape \(3, 4\)"):
        jaxent.smooth_labels(y, 0.1, where=jnp.ones((3,), bool))
