"""mse_loss against a float64 reference and PyTorch."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from jax.test_util import check_grads

import jaxent
from tests import programs
from tests import references as ref
from tests.tolerances import GRAD, LOSS, PARITY, assert_close

REDUCTIONS = ("none", "sum", "mean")
F64 = jnp.dtype(jnp.float64)


def values_of(shape, seed=0, scale=2.0, dtype=jnp.float64):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape) * scale).astype(dtype)


def test_golden_values():
    p, t = jnp.array([1.0, 2.0, 4.0]), jnp.array([1.5, 2.0, 2.0])
    assert_close(jaxent.mse_loss(p, t, reduction="none"), [0.25, 0.0, 4.0], LOSS[F64])
    assert_close(jaxent.mse_loss(p, t, reduction="sum"), 4.25, LOSS[F64])
    assert_close(jaxent.mse_loss(p, t), 4.25 / 3, LOSS[F64])


@pytest.mark.parametrize("shape", [(), (7,), (3, 4, 2)])
def test_matches_torch_values_and_gradients(torch, shape):
    p, t = values_of(shape, 1), values_of(shape, 2)
    for reduction in REDUCTIONS:
        tp = torch.tensor(np.asarray(p), requires_grad=True)
        tt = torch.tensor(np.asarray(t), requires_grad=True)
        want = torch.nn.functional.mse_loss(tp, tt, reduction=reduction)
        got = jaxent.mse_loss(p, t, reduction=reduction)
        assert got.shape == tuple(want.shape)
        assert_close(got, want.detach().numpy(), PARITY)
        want.sum().backward()
        gp, gt = jax.grad(lambda p, t: jnp.sum(jaxent.mse_loss(p, t, reduction=reduction)), (0, 1))(p, t)
        assert_close(gp, tp.grad.numpy(), PARITY)
        assert_close(gt, tt.grad.numpy(), PARITY)


def test_matches_reference_and_check_grads():
    p, t = values_of((3, 4), 3), values_of((3, 4), 4)
    where = jnp.asarray(np.random.default_rng(5).random((3, 4)) > 0.3)
    for reduction in REDUCTIONS:
        got = jaxent.mse_loss(p, t, where=where, reduction=reduction)
        assert_close(got, ref.mse_loss(p, t, where=where, reduction=reduction), LOSS[F64])
    got = jax.grad(lambda p, t: jaxent.mse_loss(p, t, where=where), (0, 1))(p, t)
    want = jax.grad(lambda p, t: ref.mse_loss(p, t, where=where), (0, 1))(p, t)
    for a, b in zip(got, want):
        assert_close(a, b, GRAD[F64])
    check_grads(lambda p, t: jaxent.mse_loss(p, t, where=where), (p, t), order=2, modes=["rev", "fwd"])


def test_where_equals_boolean_indexing_and_blocks_nan_padding():
    p, t = values_of((4, 5), 6), values_of((4, 5), 7)
    keep = np.random.default_rng(8).random((4, 5)) > 0.4
    mask = jnp.asarray(keep)
    assert_close(jaxent.mse_loss(p, t, where=mask), jnp.mean((p[keep] - t[keep]) ** 2), LOSS[F64])
    assert_close(jaxent.mse_loss(p, t, where=mask, reduction="sum"), jnp.sum((p[keep] - t[keep]) ** 2), LOSS[F64])
    g = jax.grad(lambda p: jaxent.mse_loss(p, t, where=mask))(p)
    assert np.all(np.asarray(g)[~keep] == 0)
    p_pad = jnp.where(mask, p, jnp.nan)
    loss, g_pad = jax.value_and_grad(lambda p: jaxent.mse_loss(p, t, where=mask))(p_pad)
    assert_close(loss, jaxent.mse_loss(p, t, where=mask), LOSS[F64])
    assert_close(g_pad, g, GRAD[F64])
    # A same-rank mask with size-1 axes broadcasts: (N, 1) drops whole rows.
    rows = jnp.array([[True], [False], [True], [True]])
    assert_close(
        jaxent.mse_loss(p, t, where=rows), jaxent.mse_loss(p[np.array([0, 2, 3])], t[np.array([0, 2, 3])]), LOSS[F64]
    )
    # Empty mean: 0 with zero gradients.
    loss, g = jax.value_and_grad(lambda p: jaxent.mse_loss(p, t, where=jnp.zeros((4, 5), bool)))(p)
    assert loss == 0 and np.all(g == 0)


def test_eager_jit_and_vmap_agree():
    p, t = values_of((6, 3), 9), values_of((6, 3), 10)
    f = functools.partial(jaxent.mse_loss, reduction="none")
    eager = f(p, t)
    assert_close(jax.jit(f)(p, t), eager, LOSS[F64])
    assert_close(jax.vmap(f)(p, t), eager, LOSS[F64])
    g = jax.grad(lambda p: jnp.sum(f(p, t)))(p)
    assert_close(jax.vmap(jax.grad(lambda pi, ti: jnp.sum(f(pi, ti))))(p, t), g, GRAD[F64])


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16, jnp.float32])
def test_half_precision_is_computed_in_float32(dtype):
    p, t = values_of((4, 5), 11, dtype=dtype), values_of((4, 5), 12, dtype=dtype)
    loss = jaxent.mse_loss(p, t)
    assert loss.dtype == jnp.float32
    p64, t64 = p.astype(jnp.float64), t.astype(jnp.float64)
    assert_close(loss, ref.mse_loss(p64, t64), LOSS[jnp.dtype(dtype)])
    grads = jax.grad(jaxent.mse_loss, (0, 1))(p, t)
    want = jax.grad(ref.mse_loss, (0, 1))(p64, t64)
    for g, w in zip(grads, want):
        assert g.dtype == dtype
        assert_close(g, w, GRAD[jnp.dtype(dtype)])
    # Large values: no float16 overflow of the square (1e4^2 > float16 max).
    big = jnp.full((3,), 1e4, dtype)
    assert_close(jaxent.mse_loss(big, -big), 4e8, dict(rtol=1e-2 if dtype == jnp.bfloat16 else 1e-6, atol=0))


BAD_INPUTS = [
    (
        dict(predictions=np.zeros((4, 5), np.int32)),
        TypeError,
        "mse_loss: predictions must be a floating-point array, got dtype int32",
    ),
    (
        dict(targets=np.zeros((4, 5), np.int32)),
        TypeError,
        "mse_loss: targets must be a floating-point array, got dtype int32",
    ),
    (
        dict(targets=np.zeros((5,))),
        ValueError,
        r"mse_loss: targets has shape \(5,\) but predictions has shape \(4, 5\)",
    ),
    (dict(reduction="avg"), ValueError, "mse_loss: reduction must be one of"),
    (
        dict(where=np.ones((4,), bool)),
        ValueError,
        r"mse_loss: where has shape \(4,\) but predictions has shape \(4, 5\)",
    ),
    (dict(where=np.ones((4, 5), np.int32)), TypeError, "mse_loss: where must be a boolean mask"),
]


@pytest.mark.parametrize(("kwargs", "error", "match"), BAD_INPUTS)
def test_bad_input_is_a_clear_error(kwargs, error, match):
    args = dict(predictions=np.zeros((4, 5)), targets=np.zeros((4, 5)))
    args.update(kwargs)
    with pytest.raises(error, match=match):
        jaxent.mse_loss(args.pop("predictions"), args.pop("targets"), **args)


def test_loss_object_equals_the_function():
    p, t = values_of((4, 5), 13), values_of((4, 5), 14)
    mask = jnp.asarray(np.random.default_rng(15).random((4, 5)) > 0.3)
    loss = jaxent.MSELoss(reduction="sum")
    assert_close(loss(p, t), jaxent.mse_loss(p, t, reduction="sum"), LOSS[F64])
    assert_close(loss(p, t, where=mask), jaxent.mse_loss(p, t, where=mask, reduction="sum"), LOSS[F64])
    assert jax.tree_util.tree_leaves(loss) == []
    assert_close(jax.jit(lambda loss, p, t: loss(p, t))(loss, p, t), jaxent.mse_loss(p, t, reduction="sum"), LOSS[F64])
    with pytest.raises(dataclasses.FrozenInstanceError):
        loss.reduction = "mean"  # type: ignore[misc]


_mse = jax.jit(functools.partial(jaxent.mse_loss, reduction="none"))
# Three decimals: two different values differ by >= 1e-3, so their square cannot underflow.
values = hnp.arrays(np.float64, (3, 4), elements=st.floats(-1e3, 1e3, allow_nan=False).map(lambda v: round(v, 3)))


@settings(max_examples=25, deadline=None, derandomize=True)
@given(p=values, t=values, same=hnp.arrays(np.bool_, (3, 4)))
def test_property_nonnegative_and_zero_iff_equal(p, t, same):
    t = np.where(same, p, t)
    losses = np.asarray(_mse(p, t))
    assert np.all(losses >= 0)
    np.testing.assert_array_equal(losses == 0, p == t)
    np.testing.assert_array_equal(_mse(p, p), 0)


# --------------------------------------------------------------------------------------
# Compiled memory, forward mode and higher orders, backend neutrality.


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize("where", [None, "full", "rows"])
def test_compiled_temp_memory_is_at_most_one_percent_of_the_predictions(where, dtype):
    # No [N, C] temporary: forward only (every reduction) and value_and_grad in the
    # predictions, in float32 and bfloat16 (no float32 copy of the inputs).
    p = t = jax.ShapeDtypeStruct(programs.BIG, dtype)
    masks = {"full": programs.BIG, "rows": programs.BIG[:1] + (1,)}
    arrays = {} if where is None else dict(where=jax.ShapeDtypeStruct(masks[where], jnp.bool_))
    bound = programs.one_percent_of_f32(programs.BIG)
    for reduction in REDUCTIONS:
        loss = functools.partial(lambda r, p, t, w: jaxent.mse_loss(p, t, reduction=r, **w), reduction)
        assert programs.temp_bytes(loss, p, t, arrays) <= bound, ("forward", reduction)
        if reduction != "none":
            assert programs.temp_bytes(jax.value_and_grad(loss), p, t, arrays) <= bound, ("fwd+bwd", reduction)


def test_forward_mode_and_higher_orders():
    p, t = values_of((3, 4), 20), values_of((3, 4), 21)
    where = jnp.asarray(np.random.default_rng(22).random((3, 4)) > 0.3)
    f = jax.jit(lambda p, t: jaxent.mse_loss(p, t, where=where))
    check_grads(f, (p, t), order=2, modes=["fwd", "rev"])
    dp, dt = values_of((3, 4), 23), values_of((3, 4), 24)
    value, tangent = jax.jvp(f, (p, t), (dp, dt))
    gp, gt = jax.grad(f, (0, 1))(p, t)
    assert_close(value, f(p, t), LOSS[F64])
    assert_close(tangent, jnp.sum(gp * dp) + jnp.sum(gt * dt), GRAD[F64])
    _, linear = jax.linearize(f, p, t)
    assert_close(linear(dp, dt), tangent, GRAD[F64])
    assert_close(jax.jacfwd(f, (0, 1))(p, t), (gp, gt), GRAD[F64])
    hess = jax.hessian(f)(p, t)
    n = float(jnp.sum(where))
    assert_close(hess, 2 * jnp.einsum("ik,jl,ij->ijkl", jnp.eye(3), jnp.eye(4), where.astype(F64)) / n, GRAD[F64])
    assert_close(hess, jax.jacrev(jax.jacfwd(f))(p, t), GRAD[F64])


def test_programs_are_backend_neutral():
    p, t = values_of((8, 5), 25, dtype=jnp.float32), values_of((8, 5), 26, dtype=jnp.float32)
    for where in (None, p > 0):
        f = lambda p, t: jaxent.mse_loss(p, t, where=where)
        for g in (f, jax.value_and_grad(f, (0, 1))):
            programs.assert_backend_neutral(g, p, t)
