"""log_softmax_stats and linear_log_softmax_stats: per-token log-probability, entropy,
logsumexp and argmax against float64 jax.nn.log_softmax, with gradients, forward mode,
memory and bad inputs."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxent
from tests import programs
from tests import references as ref
from tests.tolerances import GRAD, LOSS, assert_close

F64, F32 = jnp.dtype(jnp.float64), jnp.dtype(jnp.float32)


def normal(shape, seed, scale=1.0, dtype=jnp.float64):
    return (scale * jax.random.normal(jax.random.key(seed), shape, jnp.float64)).astype(dtype)


def tokens(shape, v, seed):
    return jax.random.randint(jax.random.key(seed), shape, 0, v)


def fields(s):
    return s.log_prob, s.entropy, s.logsumexp


OPTIONS = [
    dict(),
    dict(temperature=0.7),
    dict(temperature=1.3, logit_softcap=3.0),
]


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32])
def test_materialised_matches_float64_log_softmax(options, dtype):
    x = normal((6, 3, 11), 0, scale=3.0, dtype=dtype)
    y = tokens((6, 3), 11, 1)
    ours = jaxent.log_softmax_stats(x, y, argmax=True, **options)
    want = ref.log_softmax_stats(x, y, **options)
    for a, b in zip(fields(ours), want[:3]):
        assert a.dtype == jnp.dtype(dtype)
        assert_close(a, b, LOSS[jnp.dtype(dtype)])
    np.testing.assert_array_equal(ours.argmax, want[3])
    # Without targets: the same entropy and logsumexp, no log_prob.
    bare = jaxent.log_softmax_stats(x, **options)
    assert bare.log_prob is None and bare.argmax is None
    assert_close(bare.entropy, want[1], LOSS[jnp.dtype(dtype)])


def test_materialised_axis_class_and_example_masks():
    x = normal((4, 7, 5), 2, scale=2.0)
    y = tokens((4, 5), 7, 3)
    moved = jnp.moveaxis(x, 1, -1)
    ours = jaxent.log_softmax_stats(x, y, axis=1, temperature=0.5)
    for a, b in zip(fields(ours), ref.log_softmax_stats(moved, y, temperature=0.5)[:3]):
        assert_close(a, b, LOSS[F64])
    # A class mask: the distribution over the remaining classes (the targets among them).
    cm = jax.random.bernoulli(jax.random.key(4), 0.7, moved.shape).at[..., 0].set(True)
    yk = jnp.zeros((4, 5), jnp.int32)
    ours = jaxent.log_softmax_stats(moved, yk, where=cm, argmax=True)
    want = ref.log_softmax_stats(moved, yk, where=cm)
    for a, b in zip(fields(ours), want[:3]):
        assert_close(a, b, LOSS[F64])
    np.testing.assert_array_equal(ours.argmax, want[3])
    # An example mask: dropped rows read 0 and get zero gradients, NaN logits or not.
    em = jnp.array([[True, False, True, True, False]] * 4)
    bad = jnp.where(em[:, None, :], x, jnp.nan)

    def total(x):
        s = jaxent.log_softmax_stats(x, y, axis=1, where=em)
        return jnp.sum(s.log_prob) + jnp.sum(s.entropy) + jnp.sum(s.logsumexp)

    out = jaxent.log_softmax_stats(bad, y, axis=1, where=em)
    for v in fields(out):
        assert np.all(np.asarray(v)[~np.asarray(em)] == 0) and np.all(np.isfinite(v))
    g = jax.grad(total)(bad)
    assert np.all(np.isfinite(g)) and np.all(np.asarray(jnp.moveaxis(g, 1, -1))[~np.asarray(em)] == 0)


def rl_objective(stats_fn, ref_fn, beta=0.1):
    """sum(adv · log p_y) + beta · sum(entropy): the RL use, ours and the reference."""

    def ours(*args):
        s = stats_fn(*args)
        return jnp.sum(adv * s.log_prob) + beta * jnp.sum(s.entropy) + 0.01 * jnp.sum(s.logsumexp)

    def theirs(*args):
        lp, h, lse, _ = ref_fn(*args)
        return jnp.sum(adv * lp) + beta * jnp.sum(h) + 0.01 * jnp.sum(lse)

    adv = normal((5,), 9)
    return ours, theirs


def test_materialised_gradients_match_autodiff_of_the_reference():
    x, y = normal((5, 9), 5, scale=2.0), tokens((5,), 9, 6)
    ours, theirs = rl_objective(
        lambda x, t: jaxent.log_softmax_stats(x, y, temperature=t, logit_softcap=4.0),
        lambda x, t: ref.log_softmax_stats(x, y, temperature=t, logit_softcap=4.0),
    )
    for a, b in zip(jax.grad(ours, (0, 1))(x, 0.8), jax.grad(theirs, (0, 1))(x, 0.8)):
        assert_close(a, b, GRAD[F64])
    check_grads(ours, (x, 0.8), order=2, modes=["fwd", "rev"])
    assert_close(jax.hessian(ours)(x, 0.8), jax.hessian(theirs)(x, 0.8), GRAD[F64])


def test_large_and_infinite_logits_are_exact():
    x = jnp.array([[1e30, 1e30, -jnp.inf], [3.0, -jnp.inf, -jnp.inf]], jnp.float32)
    s = jaxent.log_softmax_stats(x, jnp.array([0, 0]), argmax=True)
    assert_close(s.entropy, [np.log(2.0), 0.0], LOSS[F32])
    assert_close(s.log_prob, [-np.log(2.0), 0.0], LOSS[F32])
    assert s.argmax.tolist() == [0, 0]
    g = jax.grad(lambda x: jnp.sum(jaxent.log_softmax_stats(x, jnp.array([0, 0])).entropy))(x)
    assert np.all(np.isfinite(g))
    # A target of probability 0 has log p = -inf; an out-of-range one is NaN.
    assert jaxent.log_softmax_stats(x, jnp.array([2, 0])).log_prob.tolist()[0] == -np.inf
    assert np.isnan(jax.jit(jaxent.log_softmax_stats)(x, jnp.array([5, 0])).log_prob[0])


def linear_reference(h, w, b, y, **options):
    logits = h.astype(jnp.float64) @ w.astype(jnp.float64).T
    if b is not None:
        logits = logits + b.astype(jnp.float64).reshape((1,) * (logits.ndim - 1) + (-1,))
    return ref.log_softmax_stats(logits, y, **options)


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("chunk_size", [None, 4])
def test_linear_matches_the_materialised_float64_reference(options, chunk_size):
    h, w, b = normal((3, 5, 8), 10), normal((11, 8), 11), normal((11,), 12)
    y = tokens((3, 5), 11, 13)
    ours = jaxent.linear_log_softmax_stats(h, w, y, bias=b, argmax=True, chunk_size=chunk_size, **options)
    want = linear_reference(h, w, b, y, **options)
    for a, r in zip(fields(ours), want[:3]):
        assert a.shape == (3, 5)
        assert_close(a, r, LOSS[F64])
    np.testing.assert_array_equal(ours.argmax, want[3])
    h32, w32 = h.astype(jnp.float32), w.astype(jnp.float32)
    ours32 = jaxent.linear_log_softmax_stats(h32, w32, y, chunk_size=chunk_size, **options)
    for a, r in zip(fields(ours32), linear_reference(h32, w32, None, y, **options)[:3]):
        assert a.dtype == F32
        assert_close(a, r, dict(rtol=1e-5, atol=1e-5))


def test_linear_gradients_forward_mode_and_second_order():
    h, w, b = normal((5, 6), 14), normal((9, 6), 15), normal((9,), 16)
    y = tokens((5,), 9, 17)
    ours, theirs = rl_objective(
        lambda h, w, b, t: jaxent.linear_log_softmax_stats(h, w, y, bias=b, temperature=t, chunk_size=4),
        lambda h, w, b, t: linear_reference(h, w, b, y, temperature=t),
    )
    args = (h, w, b, 0.9)
    for a, r in zip(jax.grad(ours, (0, 1, 2, 3))(*args), jax.grad(theirs, (0, 1, 2, 3))(*args)):
        assert_close(a, r, GRAD[F64])
    check_grads(ours, args, order=2, modes=["fwd", "rev"])
    tangent = jax.jvp(ours, args, (h, w, b, 0.1))[1]
    assert_close(tangent, jax.jvp(theirs, args, (h, w, b, 0.1))[1], GRAD[F64])


def test_linear_where_drops_tokens_and_eager_is_jit_is_vmap():
    h, w = normal((6, 8), 18), normal((13, 8), 19)
    y = tokens((6,), 13, 20)
    keep = jnp.array([True, False, True, True, False, True])
    fn = functools.partial(jaxent.linear_log_softmax_stats, chunk_size=5, argmax=True)
    eager = fn(h, w, y, where=keep)
    for v in fields(eager):
        assert np.all(np.asarray(v)[~np.asarray(keep)] == 0)
    g = jax.grad(lambda h: jnp.sum(fn(h, w, y, where=keep).entropy))(jnp.where(keep[:, None], h, jnp.nan))
    assert np.all(np.isfinite(g)) and np.all(np.asarray(g)[~np.asarray(keep)] == 0)
    jitted = jax.jit(fn)(h, w, y, where=keep)
    mapped = jax.vmap(lambda h, y, k: fn(h[None], w, y[None], where=k[None]))(h, y, keep)
    for a, b, c in zip(jax.tree.leaves(eager), jax.tree.leaves(jitted), jax.tree.leaves(mapped)):
        assert_close(a, b, LOSS[F64])
        assert_close(a, c.reshape(a.shape), LOSS[F64])


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_memory_is_bounded(dtype):
    # Materialised: fwd+bwd of the RL objective holds no [N, C] temporary.
    x = jax.ShapeDtypeStruct(programs.BIG, dtype)
    y = jax.ShapeDtypeStruct(programs.BIG[:1], jnp.int32)

    def objective(x, y):
        s = jaxent.log_softmax_stats(x, y, temperature=0.7)
        return jnp.sum(s.log_prob) + 0.1 * jnp.sum(s.entropy)

    for f in (objective, jax.value_and_grad(objective)):
        assert programs.temp_bytes(f, x, y) <= programs.one_percent_of_f32(programs.BIG)
    # Fused: temp stays a few vocabulary chunks (two [N, chunk] float32 blocks, the loss's
    # bound), far below the [N, V] logits.
    n, d, v = 1024, 64, 32000
    h, w = jax.ShapeDtypeStruct((n, d), dtype), jax.ShapeDtypeStruct((v, d), dtype)
    t = jax.ShapeDtypeStruct((n,), jnp.int32)

    def fused(h, w, t):
        s = jaxent.linear_log_softmax_stats(h, w, t, temperature=0.7, argmax=True)
        return jnp.sum(s.log_prob) + 0.1 * jnp.sum(s.entropy)

    loss = programs.temp_bytes(
        jax.value_and_grad(lambda h, w, t: jaxent.linear_cross_entropy(h, w, t), (0, 1)), h, w, t
    )
    assert programs.temp_bytes(jax.value_and_grad(fused, (0, 1)), h, w, t) <= 1.05 * loss
    assert programs.temp_bytes(fused, h, w, t) <= 1.05 * loss
    assert loss <= 0.3 * n * v * 4


BAD = [
    (dict(temperature=0.0), ValueError, "log_softmax_stats: temperature must lie in"),
    (dict(logit_softcap=-1.0), ValueError, "log_softmax_stats: logit_softcap must lie in"),
    (dict(argmax=1), TypeError, "log_softmax_stats: argmax must be a Python bool"),
    (dict(targets=np.zeros((4,), np.float32)), TypeError, "log_softmax_stats: targets must be integer"),
    (dict(targets=np.zeros((3,), np.int32)), ValueError, r"log_softmax_stats: targets has shape \(3,\)"),
]


@pytest.mark.parametrize(("kwargs", "error", "match"), BAD)
def test_bad_input_is_a_clear_error(kwargs, error, match):
    args = dict(logits=np.zeros((4, 5), np.float32), targets=np.zeros((4,), np.int32)) | kwargs
    with pytest.raises(error, match=match):
        jaxent.log_softmax_stats(args.pop("logits"), args.pop("targets"), **args)
    linear = dict(inputs=np.zeros((4, 3), np.float32), weight=np.zeros((5, 3), np.float32)) | kwargs
    with pytest.raises(error, match=match.replace("log_softmax_stats", "linear_log_softmax_stats")):
        jaxent.linear_log_softmax_stats(
            linear.pop("inputs"), linear.pop("weight"), linear.pop("targets", np.zeros((4,), np.int32)), **linear
        )


def test_linear_bad_shapes_are_clear_errors():
    h, y = np.zeros((4, 3), np.float32), np.zeros((4,), np.int32)
    with pytest.raises(ValueError, match=r"linear_log_softmax_stats: weight has shape \(5, 2\)"):
        jaxent.linear_log_softmax_stats(h, np.zeros((5, 2), np.float32), y)
    with pytest.raises(ValueError, match=r"weight must be \[V, D\] with D"):
        jaxent.linear_log_softmax_stats(h, np.zeros((5, 2, 3), np.float32), y)
    with pytest.raises(ValueError, match=r"linear_log_softmax_stats: bias has shape \(4,\)"):
        jaxent.linear_log_softmax_stats(h, np.zeros((5, 3), np.float32), y, bias=np.zeros((4,), np.float32))
