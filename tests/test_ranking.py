"""ranking_softmax_loss against a float64 reference and optax."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

import jaxent
from tests import references as ref
from tests.tolerances import GRAD, LOSS, PARITY, assert_close

REDUCTIONS = ("none", "sum", "mean")
OPTAX_REDUCE = {"none": None, "sum": jnp.sum, "mean": jnp.mean}
F64 = jnp.dtype(jnp.float64)

_rank = jax.jit(jaxent.ranking_softmax_loss, static_argnames=("axis", "reduction"))


def scores_of(shape, seed=0, dtype=jnp.float64):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape)).astype(dtype)


def grades_of(shape, seed=0):
    return jnp.asarray(np.random.default_rng(seed).integers(0, 3, size=shape), jnp.int32)


def test_golden_values():
    s, y = jnp.array([[2.0, 1.0, 0.0]]), jnp.array([[1.0, 0.0, 2.0]])
    lse = np.log(np.exp(2.0) + np.exp(1.0) + 1.0)
    assert_close(jaxent.ranking_softmax_loss(s, y, reduction="none"), [(lse - 2) + 2 * lse], LOSS[F64])


def test_matches_optax_on_every_option():
    s, y = scores_of((4, 6), 1), grades_of((4, 6), 2)
    where = np.random.default_rng(3).random((4, 6)) > 0.3
    where[3] = False  # a list without valid items
    weights = jnp.asarray(np.random.default_rng(4).uniform(0.5, 2.0, (4, 6)))
    cases = 0
    for kwargs in (
        dict(),
        dict(where=jnp.asarray(where)),
        dict(weights=weights),
        dict(where=jnp.asarray(where), weights=weights),
    ):
        for reduction in REDUCTIONS:
            with jax.numpy_dtype_promotion("standard"):
                want = optax.losses.ranking_softmax_loss(s, y, reduce_fn=OPTAX_REDUCE[reduction], **kwargs)
                gw = jax.grad(
                    lambda s: jnp.sum(
                        optax.losses.ranking_softmax_loss(s, y, reduce_fn=OPTAX_REDUCE[reduction], **kwargs)
                    )
                )(s)
            got = _rank(s, y, reduction=reduction, **kwargs)
            assert_close(got, want, PARITY)
            assert_close(got, ref.ranking_softmax_loss(s, y, reduction=reduction, **kwargs), LOSS[F64])
            g = jax.grad(lambda s: jnp.sum(_rank(s, y, reduction=reduction, **kwargs)))(s)
            assert_close(g, gw, PARITY)
            cases += 1
    assert cases == 12


def test_gradients_masks_axis_and_transforms():
    s, y = scores_of((3, 5), 5), grades_of((3, 5), 6).astype(jnp.float64)
    where = jnp.asarray(np.random.default_rng(7).random((3, 5)) > 0.3)
    f = lambda s, y: _rank(s, y, where=where)
    ga = jax.grad(f, (0, 1))(s, y)
    gr = jax.grad(lambda s, y: ref.ranking_softmax_loss(s, y, where=where), (0, 1))(s, y)
    for a, b in zip(ga, gr):
        assert_close(a, b, GRAD[F64])
    check_grads(f, (s, y), order=2, modes=["fwd", "rev"])
    # Invalid items equal removing them; list masks equal boolean indexing (NaN padding too).
    keep = np.asarray(where)[0]
    assert_close(
        _rank(s, y, where=where, reduction="none")[0],
        _rank(s[0][keep][None], y[0][keep][None], reduction="none")[0],
        LOSS[F64],
    )
    rows = jnp.array([True, False, True])
    padded = jnp.where(rows[:, None], s, jnp.nan)
    loss, g = jax.value_and_grad(lambda s: _rank(s, y, where=rows))(padded)
    assert_close(loss, _rank(s[np.array([0, 2])], y[np.array([0, 2])]), LOSS[F64])
    assert np.all(np.asarray(g)[1] == 0)
    # axis=0 equals moveaxis; eager = jit = vmap; bool labels; empty mean.
    assert_close(_rank(s.T, y.T, axis=0, reduction="none"), _rank(s, y, reduction="none"), LOSS[F64])
    fn = functools.partial(jaxent.ranking_softmax_loss, reduction="none")
    assert_close(jax.vmap(fn)(s, y), fn(s, y), LOSS[F64])
    assert_close(fn(s, y > 0), fn(s, (y > 0).astype(jnp.float64)), LOSS[F64])
    loss, g = jax.value_and_grad(lambda s: _rank(s, y, where=jnp.zeros((3, 5), bool)))(s)
    assert loss == 0 and np.all(g == 0)


def test_infinite_extreme_half_precision_and_object():
    s = jnp.array([[1e4, -1e4, 0.0], [-jnp.inf, 1.0, 2.0], [-jnp.inf, 1.0, 2.0]])
    y = jnp.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    losses = _rank(s, y, reduction="none")
    assert_close(losses[:2], ref.ranking_softmax_loss(s[:2], y[:2], reduction="none"), LOSS[F64])
    assert losses[2] == jnp.inf
    assert np.all(np.isfinite(jax.grad(lambda s: jnp.sum(_rank(s[:2], y[:2], reduction="none")))(s)))
    sb, yb = scores_of((4, 6), 8, jnp.bfloat16), grades_of((4, 6), 9)
    assert _rank(sb, yb).dtype == jnp.float32
    assert_close(_rank(sb, yb), ref.ranking_softmax_loss(sb.astype(F64), yb), LOSS[jnp.dtype(jnp.bfloat16)])
    assert jax.grad(_rank)(sb, yb).dtype == jnp.bfloat16
    w = jnp.asarray(np.random.default_rng(10).uniform(0.5, 2.0, (4, 6)))
    obj = jaxent.RankingSoftmaxLoss(weights=w, reduction="sum")
    assert len(jax.tree_util.tree_leaves(obj)) == 1
    s64, y64 = sb.astype(F64), yb
    assert_close(
        jax.jit(lambda o, s, y: o(s, y))(obj, s64, y64), _rank(s64, y64, weights=w, reduction="sum"), LOSS[F64]
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        obj.reduction = "mean"  # type: ignore[misc]


BAD_INPUTS = [
    (dict(logits=np.zeros((4, 3), np.int32)), TypeError, "ranking_softmax_loss: logits must be a floating-point array"),
    (
        dict(labels=np.zeros((4,))),
        ValueError,
        r"ranking_softmax_loss: labels has shape \(4,\) but logits has shape \(4, 3\)",
    ),
    (dict(where=np.ones((3,), bool)), ValueError, r"ranking_softmax_loss: where has shape \(3,\)"),
    (dict(where=np.ones((4, 3), np.int32)), TypeError, "ranking_softmax_loss: where must be a boolean mask"),
    (dict(weights=np.ones((2,))), ValueError, r"ranking_softmax_loss: weights has shape \(2,\)"),
    (dict(reduction="avg"), ValueError, "ranking_softmax_loss: reduction must be one of"),
    (dict(axis=(0, 1)), TypeError, "ranking_softmax_loss: axis must be a Python int"),
]


@pytest.mark.parametrize(("kwargs", "error", "match"), BAD_INPUTS)
def test_bad_input_is_a_clear_error(kwargs, error, match):
    args = dict(logits=np.zeros((4, 3)), labels=np.zeros((4, 3)))
    args.update(kwargs)
    with pytest.raises(error, match=match):
        jaxent.ranking_softmax_loss(args.pop("logits"), args.pop("labels"), **args)
