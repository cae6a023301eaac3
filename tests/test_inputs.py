"""Every input class, for every classification loss it applies to: NaN inputs, dropped NaN
examples, empty batches, narrow label dtypes, extreme logits, soft-cap gradients at
overflow, and hyperparameters of the wrong type. Each case once failed (issue 12)."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxent
from tests import references as ref
from tests.tolerances import assert_close

F32 = jnp.float32
M = float(np.finfo(np.float32).max)
NAN_ROW = np.array([[0.1, np.nan, 0.3], [0.2, -0.4, 1.0]], np.float32)

# Losses of (logits [N, C], integer labels [N]); each takes where= and reduction=.
INTEGER = {
    "cross_entropy": jaxent.cross_entropy,
    "cross_entropy smoothing": functools.partial(jaxent.cross_entropy, label_smoothing=0.1),
    "cross_entropy weight": lambda x, y, **k: jaxent.cross_entropy(
        x, y, weight=jnp.linspace(0.5, 2.0, x.shape[-1], dtype=x.dtype), **k
    ),
    "cross_entropy z_loss softcap": functools.partial(jaxent.cross_entropy, z_loss=1e-2, logit_softcap=5.0),
    "nll_loss": jaxent.nll_loss,  # the logits stand in for log-probabilities
    "focal_loss": jaxent.focal_loss,
    "poly1_cross_entropy": jaxent.poly1_cross_entropy,
    "multi_margin_loss": jaxent.multi_margin_loss,
    "multiclass_hinge_loss": jaxent.multiclass_hinge_loss,
    "linear_cross_entropy": lambda x, y, **k: jaxent.linear_cross_entropy(
        x, jnp.eye(x.shape[-1], dtype=x.dtype), y, chunk_size=2, **k
    ),
}
# Losses of (logits [N, C], probability targets [N, C]).
PROBABILITY = {
    "cross_entropy": jaxent.cross_entropy,
    "cross_entropy smoothing": functools.partial(jaxent.cross_entropy, label_smoothing=0.1),
    "focal_loss": jaxent.focal_loss,
    "poly1_cross_entropy": jaxent.poly1_cross_entropy,
}
# Which integer-target losses propagate a NaN score to the example's loss. PyTorch's
# multi_margin_loss skips NaN terms; jaxent gives NaN, like optax and cross-entropy.
# multiclass_hinge_loss counts NaN scores beside its max (XLA's max may skip a NaN).
# nll_loss reads only the target's log-probability (as PyTorch's does).
NAN_PROPAGATES = set(INTEGER) - {"nll_loss"}


def _soft(x):
    return jax.nn.softmax(jnp.asarray(x, F32) * 0.5 + 0.1, axis=-1)


@pytest.mark.parametrize("name", sorted(NAN_PROPAGATES))
def test_a_nan_logit_gives_a_nan_loss_for_its_example(name):
    fn = INTEGER[name]
    for y in ([0, 2], [1, 2]):  # the NaN on a competitor, then on the target
        losses = jax.jit(lambda x: fn(x, jnp.array(y), reduction="none"))(jnp.asarray(NAN_ROW))
        assert np.isnan(losses[0]) and np.isfinite(losses[1]), y


@pytest.mark.parametrize("name", sorted(PROBABILITY))
def test_a_nan_logit_gives_a_nan_loss_with_probability_targets(name):
    losses = PROBABILITY[name](jnp.asarray(NAN_ROW), _soft(np.nan_to_num(NAN_ROW)), reduction="none")
    assert np.isnan(losses[0]) and np.isfinite(losses[1])


def _dropped_row_gradient(fn, x, t, **kwargs):
    loss, g = jax.value_and_grad(lambda x: fn(x, t, **kwargs))(jnp.asarray(x))
    assert np.isfinite(loss)
    np.testing.assert_array_equal(np.asarray(g[0]), 0.0)
    assert np.all(np.isfinite(np.asarray(g[1])))
    return g


@pytest.mark.parametrize("name", sorted(INTEGER))
def test_a_masked_nan_example_gets_zero_gradient(name):
    _dropped_row_gradient(INTEGER[name], NAN_ROW, jnp.array([0, 2]), where=jnp.array([False, True]))


# The losses with an ignore_index.
@pytest.mark.parametrize(
    "name", sorted(set(INTEGER) - {"multi_margin_loss", "multiclass_hinge_loss", "poly1_cross_entropy"})
)
def test_an_ignored_nan_example_gets_zero_gradient(name):
    _dropped_row_gradient(INTEGER[name], NAN_ROW, jnp.array([-100, 2]))


@pytest.mark.parametrize("name", sorted(PROBABILITY))
def test_a_masked_nan_example_gets_zero_gradient_with_probability_targets(name):
    q = _soft(np.nan_to_num(NAN_ROW))
    _dropped_row_gradient(PROBABILITY[name], NAN_ROW, q, where=jnp.array([False, True]))


def test_linear_cross_entropy_dropped_nan_token_leaves_every_gradient_finite():
    h = jnp.array([[np.nan, 1.0], [0.5, -0.25]], F32)
    w = jnp.arange(6.0, dtype=F32).reshape(3, 2) / 6
    for kwargs in (dict(where=jnp.array([False, True])), dict()):
        y = jnp.array([1, 2]) if kwargs else jnp.array([-100, 2])
        gh, gw = jax.grad(lambda h, w: jaxent.linear_cross_entropy(h, w, y, chunk_size=2, **kwargs), (0, 1))(h, w)
        np.testing.assert_array_equal(np.asarray(gh[0]), 0.0)
        assert np.all(np.isfinite(np.asarray(gw)))


EMPTY_PROBABILITY = dict(PROBABILITY, kl_divergence=jaxent.kl_divergence)


@pytest.mark.parametrize("name", sorted(INTEGER) + [f"probability {n}" for n in sorted(EMPTY_PROBABILITY)])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_an_empty_batch(name, reduction):
    x = jnp.zeros((0, 5), F32)
    if name.startswith("probability "):
        fn, t = EMPTY_PROBABILITY[name.removeprefix("probability ")], jnp.zeros((0, 5), F32)
    else:
        fn, t = INTEGER[name], jnp.zeros((0,), jnp.int32)
    out = fn(x, t, reduction=reduction)
    assert out.shape == ((0,) if reduction == "none" else ())
    if reduction != "none":
        assert float(out) == 0.0
        assert jax.grad(lambda x: fn(x, t, reduction=reduction))(x).shape == (0, 5)


@pytest.mark.parametrize("name", sorted(INTEGER))
@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16])
def test_narrow_label_dtypes_work_for_any_class_count(name, dtype):
    c = 300
    x = jnp.asarray(np.random.default_rng(0).normal(size=(3, c)), F32)
    labels = np.array([5, 100 if dtype == np.int8 else 200, 44])
    fn = INTEGER[name]
    wide = fn(x, jnp.asarray(labels, jnp.int32), reduction="none")
    narrow = jax.jit(lambda x, y: fn(x, y, reduction="none"))(x, jnp.asarray(labels.astype(dtype)))
    assert_close(narrow, wide, dict(rtol=1e-6, atol=1e-6))


def test_int16_labels_beyond_32767_classes():
    x = jnp.zeros((2, 40000), F32)
    assert_close(
        jaxent.cross_entropy(x, jnp.array([5, 30000], jnp.int16), reduction="none"),
        [math.log(40000)] * 2,
        dict(rtol=1e-6, atol=0),
    )


@pytest.mark.parametrize(
    "name", ["cross_entropy", "nll_loss", "focal_loss", "multi_margin_loss", "linear_cross_entropy"]
)
@pytest.mark.parametrize("label", [2**31, 2**32, -(2**32)])
def test_a_64_bit_label_that_int32_cannot_hold_is_an_error_without_x64(name, label):
    with jax.enable_x64(False):
        x = jnp.zeros((1, 5), F32)
        with pytest.raises(ValueError, match=r"outside the int32 range"):
            INTEGER[name](x, np.array([label], np.int64))


def test_large_logits_do_not_cancel():
    x = jnp.array([[1e30, 1e30, 0.0]], F32)
    y = jnp.array([0])
    assert_close(jaxent.cross_entropy(x, y), math.log(2), dict(rtol=1e-6, atol=0))
    assert_close(jax.jit(jax.grad(jaxent.cross_entropy))(x, y), [[-0.5, 0.5, 0.0]], dict(rtol=1e-6, atol=1e-7))
    assert_close(jaxent.cross_entropy(jnp.full((1, 3), 1e8, F32), y), math.log(3), dict(rtol=1e-6, atol=0))
    assert_close(
        jaxent.cross_entropy(jnp.full((1, 3), 1e8, F32), y, label_smoothing=0.1), math.log(3), dict(rtol=1e-6, atol=0)
    )
    # The fused loss, with a real matmul (D = 2) giving the same logits.
    h = jnp.array([[1e15, 0.0]] * 4, F32)
    w = jnp.array([[1e15, 0.0], [1e15, 0.0], [0.0, 0.0]], F32)
    for fn in (jaxent.linear_cross_entropy, jax.jit(jaxent.linear_cross_entropy)):
        assert_close(fn(h, w, jnp.zeros(4, jnp.int32)), math.log(2), dict(rtol=1e-6, atol=0))


@pytest.mark.parametrize("scale", [1.0, 10.0, 100.0, 1e3, 1e4, 1e6])
def test_float32_stays_near_float64_at_every_logit_scale(scale):
    rng = np.random.default_rng(1)
    x = (rng.normal(size=(64, 50)) * scale).astype(np.float32)
    y = rng.integers(0, 50, size=64)
    # The float64 loss of the same float32 inputs: at most a few float32 ulps of the
    # log-sum (about 1) apart, at every scale; PyTorch's float32 is as far.
    want = ref.numpy_cross_entropy_rows(x.astype(np.float64), y)
    got = np.asarray(jaxent.cross_entropy(jnp.asarray(x), jnp.asarray(y), reduction="none"), np.float64)
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=4e-7)


def test_finite_logits_near_float32_max():
    x = jnp.array([[-M, M, M / 2]], F32)
    f = lambda x: jaxent.cross_entropy(x, jnp.array([1]), weight=jnp.array([1.0, 2.0, 3.0], F32))
    assert float(f(x)) == 0.0 and float(jax.jit(f)(x)) == 0.0
    # A zero target on a class whose relative logit overflows adds nothing (no 0 * inf).
    q = jnp.array([[1.0, 0.0, 0.0]], F32)
    for name, fn in PROBABILITY.items():
        if name == "cross_entropy smoothing":
            continue
        out = jax.jit(fn)(jnp.array([[M, -M, 0.0]], F32), q)
        assert float(out) == 0.0, name
        assert np.all(np.isfinite(np.asarray(jax.grad(fn)(jnp.array([[M, -M, 0.0]], F32), q)))), name


def test_label_smoothing_near_float32_max():
    # x_c - m = -2M overflows, the loss (about 0.1 * 2M / 3) does not.
    x = jnp.array([[M, M, -M]], F32)
    want = 0.9 * math.log(2) + 0.1 / 3 * (3 * math.log(2) + 2 * float(M))
    smooth = dict(label_smoothing=0.1)
    for fn in (
        lambda x: jaxent.cross_entropy(x, jnp.array([0]), **smooth),
        jax.jit(lambda x: jaxent.cross_entropy(x, jnp.array([0]), **smooth)),
        lambda x: jaxent.cross_entropy(x, jnp.array([0]), weight=jnp.ones(3, F32), **smooth),
        lambda x: jaxent.cross_entropy(x, jnp.array([[1.0, 0.0, 0.0]], F32), **smooth),
        lambda x: jaxent.linear_cross_entropy(x, jnp.eye(3, dtype=F32), jnp.array([0]), chunk_size=2, **smooth),
    ):
        assert_close(fn(x), want, dict(rtol=1e-6, atol=0))
        # softmax - smoothed target: [0.5, 0.5, 0] - [0.9 + 0.1/3, 0.1/3, 0.1/3].
        assert_close(jax.grad(fn)(x), [[0.5 - 0.9 - 0.1 / 3, 0.5 - 0.1 / 3, -0.1 / 3]], dict(rtol=1e-6, atol=1e-7))


def test_label_smoothing_at_many_classes_stays_near_float64():
    # C = 2^17 + 1: the smoothing sum over many classes, relative to float64 of the same inputs.
    rng = np.random.default_rng(3)
    x = (rng.normal(size=(4, 2**17 + 1)) * 3).astype(np.float32)
    y = rng.integers(0, x.shape[1], size=4)
    x64 = x.astype(np.float64)
    lse = np.log(np.exp(x64 - x64.max(1, keepdims=True)).sum(1)) + x64.max(1)
    want = 0.9 * (lse - x64[np.arange(4), y]) + 0.1 * (lse - x64.mean(1))
    got = jaxent.cross_entropy(jnp.asarray(x), jnp.asarray(y), label_smoothing=0.1, reduction="none")
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=1e-6, atol=0)


def test_softcap_gradient_when_logits_over_the_cap_overflow():
    x = jnp.array([[3.4e38, -3.4e38, 0.0]], F32)
    c = 1e-3
    # The capped logits are (c, -c, 0): d/dc logsumexp(c, -c, 0) = (e^c - e^-c) / (e^c + e^-c + 1).
    want = (math.exp(c) - math.exp(-c)) / (math.exp(c) + math.exp(-c) + 1)
    fns = {
        "cross_entropy": lambda cap: jaxent.cross_entropy(x, jnp.array([2]), logit_softcap=cap),
        "linear_cross_entropy": lambda cap: jaxent.linear_cross_entropy(
            x, jnp.eye(3, dtype=F32), jnp.array([2]), logit_softcap=cap
        ),
    }
    for fn in fns.values():
        for g in (jax.grad(fn)(c), jax.jit(jax.grad(fn))(c), jax.jvp(fn, (c,), (1.0,))[1]):
            assert_close(g, want, dict(rtol=1e-4, atol=0))
    both = jax.grad(
        lambda cap: jaxent.cross_entropy(x, jnp.array([2]), logit_softcap=cap, label_smoothing=0.1, z_loss=1e-3)
    )(c)
    assert np.isfinite(both)


@pytest.mark.parametrize("logit, target", [(50.0, 1.0), (60.0, 1.0), (-50.0, 0.0), (100.0, 1.0), (-100.0, 0.0)])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0])
def test_sigmoid_focal_second_derivatives_are_finite_at_large_logits(logit, target, gamma):
    f = lambda x: jaxent.sigmoid_focal_loss(x, jnp.array([target], F32), gamma=gamma, alpha=0.25, reduction="sum")
    x = jnp.array([logit], F32)
    assert np.all(np.isfinite(np.asarray(jax.hessian(f)(x))))
    assert np.all(np.isfinite(np.asarray(jax.jacrev(jax.jacrev(f))(x))))


@pytest.mark.parametrize("p, t", [([0.0, 1.0], [0.0, 1.0]), ([0.0], [0.0]), ([1.0], [1.0]), ([0.0, 1.0], [0.3, 0.7])])
def test_binary_cross_entropy_is_linear_in_the_targets_to_second_order(p, t):
    f = lambda p, t: jaxent.binary_cross_entropy(p, t, reduction="sum")
    h = jax.hessian(f, argnums=(0, 1))(jnp.array(p, F32), jnp.array(t, F32))
    np.testing.assert_array_equal(np.asarray(h[1][1]), 0.0)
    assert np.all(np.isfinite(np.asarray(h[0][1]))) and np.all(np.isfinite(np.asarray(h[1][0])))


def test_target_on_a_neg_inf_logit_second_order():
    x = jnp.array([[-jnp.inf, 0.5, 1.0]], F32)
    for fn in (jaxent.cross_entropy, jaxent.focal_loss, jaxent.poly1_cross_entropy):
        f = lambda x: fn(x, jnp.array([1]))
        assert np.all(np.isfinite(np.asarray(jax.jacrev(jax.jacrev(f))(x)[..., 1:])))


STRINGS = [
    (
        "cross_entropy",
        "label_smoothing",
        lambda v: jaxent.cross_entropy(jnp.zeros((2, 3)), jnp.array([0, 1]), label_smoothing=v),
    ),
    ("cross_entropy", "z_loss", lambda v: jaxent.cross_entropy(jnp.zeros((2, 3)), jnp.array([0, 1]), z_loss=v)),
    (
        "cross_entropy",
        "logit_softcap",
        lambda v: jaxent.cross_entropy(jnp.zeros((2, 3)), jnp.array([0, 1]), logit_softcap=v),
    ),
    (
        "linear_cross_entropy",
        "label_smoothing",
        lambda v: jaxent.linear_cross_entropy(jnp.zeros((2, 3)), jnp.eye(3), jnp.array([0, 1]), label_smoothing=v),
    ),
    ("focal_loss", "gamma", lambda v: jaxent.focal_loss(jnp.zeros((2, 3)), jnp.array([0, 1]), gamma=v)),
    ("sigmoid_focal_loss", "gamma", lambda v: jaxent.sigmoid_focal_loss(jnp.zeros((2, 3)), jnp.zeros((2, 3)), gamma=v)),
    ("sigmoid_focal_loss", "alpha", lambda v: jaxent.sigmoid_focal_loss(jnp.zeros((2, 3)), jnp.zeros((2, 3)), alpha=v)),
    (
        "poly1_cross_entropy",
        "epsilon",
        lambda v: jaxent.poly1_cross_entropy(jnp.zeros((2, 3)), jnp.array([0, 1]), epsilon=v),
    ),
    ("multi_margin_loss", "margin", lambda v: jaxent.multi_margin_loss(jnp.zeros((2, 3)), jnp.array([0, 1]), margin=v)),
    (
        "multiclass_hinge_loss",
        "margin",
        lambda v: jaxent.multiclass_hinge_loss(jnp.zeros((2, 3)), jnp.array([0, 1]), margin=v),
    ),
    ("hinge_loss", "margin", lambda v: jaxent.hinge_loss(jnp.zeros(3), jnp.ones(3), margin=v)),
    (
        "binary_cross_entropy_with_logits",
        "label_smoothing",
        lambda v: jaxent.binary_cross_entropy_with_logits(jnp.zeros(3), jnp.ones(3), label_smoothing=v),
    ),
]


@pytest.mark.parametrize("fn, arg, call", STRINGS, ids=[f"{f}-{a}" for f, a, _ in STRINGS])
def test_a_hyperparameter_given_as_a_string_is_a_clear_type_error(fn, arg, call):
    with pytest.raises(TypeError, match=rf"^{fn}: {arg} must be a real number"):
        call("0.1")


@pytest.mark.parametrize("fn", [jaxent.multi_margin_loss, jaxent.multiclass_hinge_loss])
def test_0d_scores_error_names_scores(fn):
    with pytest.raises(ValueError, match=r"scores is 0-d") as info:
        fn(jnp.float32(1.0), jnp.int32(0))
    assert "logits" not in str(info.value) and "[0, 0)" not in str(info.value)
