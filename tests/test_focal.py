"""focal_loss and poly1_cross_entropy against float64 references, Keras's formula and optax."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st
from jax.experimental import checkify
from jax.test_util import check_grads

import jaxent
from tests import programs
from tests import references as ref
from tests.tolerances import GRAD, LOSS, PARITY, assert_close

REDUCTIONS = ("none", "sum", "mean")
F64 = jnp.dtype(jnp.float64)
C = 5
ALPHA = jnp.array([0.25, 1.0, 0.5, 2.0, 0.75])


# Jitted once per configuration: eager dispatch compiles every primitive of every call.
STATIC = ("axis", "ignore_index", "reduction")
FOCAL = jax.jit(jaxent.focal_loss, static_argnames=STATIC)
POLY1 = jax.jit(jaxent.poly1_cross_entropy, static_argnames=STATIC[::2])
CE = jax.jit(jaxent.cross_entropy, static_argnames=STATIC)
REF_FOCAL = jax.jit(ref.focal_loss, static_argnames=STATIC)
REF_POLY1 = jax.jit(ref.poly1_cross_entropy, static_argnames=STATIC[::2])


@functools.partial(jax.jit, static_argnames=("fn", "static"))
def every_reduction(fn, x, targets, options, static=()):
    """``fn(x, targets, **options)`` for each reduction; ``static`` holds (name, value) pairs."""
    return tuple(fn(x, targets, reduction=r, **options, **dict(static)) for r in REDUCTIONS)


def logits_of(shape, seed=0, scale=2.0, dtype=jnp.float64):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape) * scale).astype(dtype)


def labels_of(shape, num_classes, seed=1):
    return jnp.asarray(np.random.default_rng(seed).integers(0, num_classes, size=shape), jnp.int32)


def probs_of(shape, axis=-1, seed=2, dtype=jnp.float64):
    return jax.nn.softmax(logits_of(shape, seed), axis=axis).astype(dtype)


def targets_of(integer, shape=(6, C), seed=1):
    return labels_of(shape[:-1], shape[-1], seed) if integer else probs_of(shape, seed=seed)


def keras_focal_numpy(probs, onehot, alpha, gamma):
    """Keras CategoricalFocalCrossentropy on probabilities, in NumPy: sum_c a q (1-p)^g (-log p)."""
    p = np.asarray(probs, np.float64)
    return np.sum(alpha * np.asarray(onehot) * (1 - p) ** gamma * -np.log(p), axis=-1)


# --------------------------------------------------------------------------------------
# Golden values.


def test_focal_golden_values_from_the_keras_docstring():
    # keras.losses.categorical_focal_crossentropy(y_true, y_pred) docstring (alpha=0.25, gamma=2);
    # softmax(log p) = p, and no probability is near Keras's 1e-7 clip.
    probs = np.array([[0.05, 0.9, 0.05], [0.1, 0.85, 0.05]])
    onehot = np.array([[0, 1, 0], [0, 0, 1]])
    keras = [2.63401289e-04, 6.75912094e-01]
    assert_close(keras_focal_numpy(probs, onehot, 0.25, 2.0), keras, dict(rtol=1e-7, atol=0))
    logits = jnp.log(jnp.asarray(probs, jnp.float32))
    for targets in (jnp.array([1, 2], jnp.int32), jnp.asarray(onehot, jnp.float32)):
        none, total, mean = every_reduction(jaxent.focal_loss, logits, targets, dict(alpha=0.25))
        assert none.dtype == jnp.float32
        assert_close(none, keras, dict(rtol=2e-6, atol=0))
        assert_close(total, np.sum(keras), dict(rtol=2e-6, atol=0))
        assert_close(mean, np.mean(keras), dict(rtol=2e-6, atol=0))


def test_focal_golden_values_by_hand():
    # p = softmax([1.2, -0.8, -0.5]) = [0.75871451, 0.10268084, 0.13860464],
    # p = softmax([0.9, -1.2, 1.1]) = [0.42664679, 0.05224564, 0.52110757].
    # Labels [0, 1], gamma 2, alpha [0.25, 0.5, 1]:
    #   0.25 (1 - 0.75871451)^2 (0.27612967) = 0.00401898, 0.5 (1 - 0.05224564)^2 (2.95179909) = 1.32570940.
    x = jnp.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]])
    alpha = jnp.array([0.25, 0.5, 1.0])
    p = np.asarray(jax.nn.softmax(x))
    want = [0.25 * (1 - p[0, 0]) ** 2 * -np.log(p[0, 0]), 0.5 * (1 - p[1, 1]) ** 2 * -np.log(p[1, 1])]
    assert_close(want, [0.00401898, 1.3257094], dict(rtol=1e-6, atol=0))
    y = jnp.array([0, 1], jnp.int32)
    for targets in (y, jax.nn.one_hot(y, 3, dtype=jnp.float64)):
        none, total, mean = every_reduction(jaxent.focal_loss, x, targets, dict(alpha=alpha))
        assert_close(none, want, LOSS[F64])
        assert_close(total, sum(want), LOSS[F64])
        assert_close(mean, sum(want) / 2, LOSS[F64])
    # Soft targets, gamma 1.5, alpha 0.25: every class contributes.
    t = jnp.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    want = keras_focal_numpy(p, t, 0.25, 1.5)
    assert_close(want, [0.14195967, 0.24591026], dict(rtol=1e-6, atol=0))
    assert_close(FOCAL(x, t, gamma=1.5, alpha=0.25, reduction="none"), want, LOSS[F64])


def test_poly1_golden_values():
    logits = jnp.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]], jnp.float32)
    y = jnp.array([0, 1], jnp.int32)
    # CE + 2 (1 - p_y) with CE from the optax docstring, p_y = exp(-CE).
    want = [ce + 2 * (1 - np.exp(-ce)) for ce in (0.2761297, 2.951799)]
    for targets in (y, jax.nn.one_hot(y, 3, dtype=jnp.float32)):
        none, total, mean = every_reduction(jaxent.poly1_cross_entropy, logits, targets, dict(epsilon=2.0))
        assert none.dtype == jnp.float32
        assert_close(none, [0.7587, 4.8473], dict(rtol=0, atol=5e-5))
        assert_close(none, want, dict(rtol=1e-6, atol=1e-6))
        assert_close(total, np.sum(want), dict(rtol=1e-6, atol=1e-6))
        assert_close(mean, np.mean(want), dict(rtol=1e-6, atol=1e-6))


# --------------------------------------------------------------------------------------
# optax parity (poly_loss_cross_entropy takes probability targets: integers via one-hot).

OPTAX_POLY = jax.jit(optax.losses.poly_loss_cross_entropy, static_argnames=("axis",))


def test_poly1_matches_optax():
    x, y = logits_of((6, C), 3), labels_of((6,), C, 4)
    onehot = jax.nn.one_hot(y, C, dtype=jnp.float64)
    t = probs_of((6, C), seed=5)
    for eps in (1.0, 2.0, -1.0, 0.0):
        want = OPTAX_POLY(x, onehot, epsilon=eps)
        assert_close(POLY1(x, y, epsilon=eps, reduction="none"), want, PARITY)
        assert_close(POLY1(x, onehot, epsilon=eps, reduction="none"), want, PARITY)
        assert_close(POLY1(x, t, epsilon=eps, reduction="none"), OPTAX_POLY(x, t, epsilon=eps), PARITY)


def test_poly1_masks_and_axis_match_optax():
    x, t = logits_of((6, C), 6), probs_of((6, C), seed=7)
    class_mask = jnp.asarray(np.random.default_rng(8).random((6, C)) > 0.3)
    want = OPTAX_POLY(x, t, epsilon=2.0, where=class_mask)
    assert_close(POLY1(x, t, epsilon=2.0, where=class_mask, reduction="none"), want, PARITY)
    # A label on an unmasked class, compared through one-hot.
    y = jnp.argmax(jnp.where(class_mask, x, -jnp.inf), axis=-1).astype(jnp.int32)
    want = OPTAX_POLY(x, jax.nn.one_hot(y, C, dtype=jnp.float64), epsilon=1.0, where=class_mask)
    assert_close(POLY1(x, y, epsilon=1.0, where=class_mask, reduction="none"), want, PARITY)
    # optax takes an example mask broadcast over the classes.
    keep = jnp.array([True, False, True, True, False, True])
    want = OPTAX_POLY(x, t, epsilon=2.0, where=jnp.broadcast_to(keep[:, None], x.shape))
    assert_close(POLY1(x, t, epsilon=2.0, where=keep, reduction="none"), want, PARITY)
    xk, tk = logits_of((2, C, 3), 9), probs_of((2, C, 3), axis=1, seed=10)
    want = OPTAX_POLY(xk, tk, epsilon=-0.5, axis=1)
    assert_close(POLY1(xk, tk, epsilon=-0.5, axis=1, reduction="none"), want, PARITY)


def test_poly1_default_epsilon_is_one_unlike_optax():
    # DESIGN.md's default; optax's poly_loss_cross_entropy defaults to epsilon=2.
    x, t = logits_of((6, C), 11), probs_of((6, C), seed=12)
    assert_close(jaxent.poly1_cross_entropy(x, t, reduction="none"), OPTAX_POLY(x, t, epsilon=1.0), PARITY)


# --------------------------------------------------------------------------------------
# float64 reference formulas: every option.


def _case(options, integer, shape=(6, C), axis=-1, seed=10):
    """(logits, targets, options) with the flags neg_inf / class_mask / example_mask applied."""
    options = dict(options)
    rng = np.random.default_rng(seed)
    x = np.array(logits_of(shape, seed))
    if options.pop("neg_inf", False):
        x[rng.random(shape) < 0.3] = -np.inf
    x = jnp.asarray(x)
    where = None
    if options.pop("class_mask", False):
        where = jnp.asarray(rng.random(shape) > 0.3)
    if options.pop("example_mask", False):
        batch = tuple(d for i, d in enumerate(shape) if i != axis % len(shape))
        where = jnp.asarray(rng.random(batch) > 0.4)
    remaining = jnp.isfinite(x) if where is None or where.shape != x.shape else jnp.isfinite(x) & where
    z = jnp.where(remaining, logits_of(shape, seed + 1), -jnp.inf)
    if integer:  # labels on classes that remain, so that the loss stays finite
        y = np.array(jnp.argmax(z, axis=axis).astype(jnp.int32))
        if "ignore_index" in options:
            y.reshape(-1)[::3] = options["ignore_index"]
        targets = jnp.asarray(y)
    else:
        options.pop("ignore_index", None)
        targets = jnp.where(remaining, jax.nn.softmax(z, axis=axis), 0.0)
    return x, targets, dict(options, where=where)


def _static(options):
    """Split the static options (axis, ignore_index) off, as hashable pairs."""
    options = dict(options)
    return options, tuple((k, options.pop(k)) for k in ("axis", "ignore_index") if k in options)


# Configurations in groups of one structure (one compile); the values vary within a group.
FOCAL_GROUPS = {
    "hyperparameters": [
        dict(alpha=ALPHA),
        dict(gamma=0.5, alpha=ALPHA),
        dict(gamma=0.0, alpha=ALPHA * 0.5),
        dict(gamma=3.0, alpha=jnp.ones(C)),
        dict(gamma=0.5, alpha=ALPHA, neg_inf=True),
    ],
    "scalar_alpha": [dict(gamma=0.0, alpha=0.25), dict(gamma=1.0, alpha=1.0)],
    "ignore_index": [dict(ignore_index=1, alpha=ALPHA, gamma=0.5)],
    "class_mask": [dict(class_mask=True, alpha=ALPHA, gamma=1.5), dict(class_mask=True, neg_inf=True, alpha=ALPHA)],
    "example_mask": [dict(example_mask=True, gamma=1.0, alpha=ALPHA)],
}


@pytest.mark.parametrize("integer", [True, False])
@pytest.mark.parametrize("group", sorted(FOCAL_GROUPS))
def test_focal_matches_float64_reference(group, integer):
    for i, config in enumerate(FOCAL_GROUPS[group]):
        x, targets, options = _case(config, integer, seed=10 + i)
        options, static = _static(options)
        got = every_reduction(jaxent.focal_loss, x, targets, options, static)
        want = every_reduction(ref.focal_loss, x, targets, options, static)
        for a, b in zip(got, want):
            assert_close(a, b, LOSS[F64])


POLY_GROUPS = {
    "epsilon": [dict(), dict(epsilon=2.0), dict(epsilon=-1.0), dict(epsilon=-0.5, neg_inf=True)],
    "class_mask": [dict(class_mask=True, epsilon=2.0), dict(class_mask=True, neg_inf=True, epsilon=1.0)],
    "example_mask": [dict(example_mask=True, epsilon=0.5)],
}


@pytest.mark.parametrize("integer", [True, False])
@pytest.mark.parametrize("group", sorted(POLY_GROUPS))
def test_poly1_matches_float64_reference(group, integer):
    for i, config in enumerate(POLY_GROUPS[group]):
        x, targets, options = _case(dict(config, epsilon=config.get("epsilon", 1.0)), integer, seed=20 + i)
        got = every_reduction(jaxent.poly1_cross_entropy, x, targets, options)
        want = every_reduction(ref.poly1_cross_entropy, x, targets, options)
        for a, b in zip(got, want):
            assert_close(a, b, LOSS[F64])


@pytest.mark.parametrize("integer", [True, False])
def test_k_dimensional_and_tuple_axes_match_reference(integer):
    x, targets, _ = _case({}, integer, shape=(2, C, 3), axis=1, seed=30)
    assert_close(
        FOCAL(x, targets, gamma=0.5, alpha=ALPHA, axis=1),
        REF_FOCAL(x, targets, gamma=0.5, alpha=ALPHA, axis=1),
        LOSS[F64],
    )
    assert_close(POLY1(x, targets, epsilon=2.0, axis=1), REF_POLY1(x, targets, epsilon=2.0, axis=1), LOSS[F64])
    # A tuple of class axes is the flattened class axis (integer targets: the flat index).
    x = logits_of((2, 3, 4), 31)
    targets = labels_of((2,), 12, 32) if integer else probs_of((2, 3, 4), axis=(1, 2), seed=33)
    flat = targets if integer else targets.reshape(2, 12)
    alpha = jnp.linspace(0.2, 1.0, 12)
    a = FOCAL(x, targets, axis=(1, 2), alpha=alpha.reshape(3, 4), reduction="none")
    assert_close(a, FOCAL(x.reshape(2, 12), flat, alpha=alpha, reduction="none"), LOSS[F64])
    a = POLY1(x, targets, axis=(1, 2), reduction="none")
    assert_close(a, POLY1(x.reshape(2, 12), flat, reduction="none"), LOSS[F64])


# --------------------------------------------------------------------------------------
# gamma = 0 is cross_entropy, exactly.


def _gamma_zero_cases():
    x, y = logits_of((6, C), 40), labels_of((6,), C, 41)
    y_ignored = y.at[::3].set(-100)
    keep = jnp.array([True, False, True, True, False, True])
    rng = np.random.default_rng(42)
    class_mask = jnp.asarray(rng.random((6, C)) > 0.3).at[jnp.arange(6), y].set(True)
    xk, yk = logits_of((2, C, 3), 43), labels_of((2, 3), C, 44).at[0, 1].set(-100)
    return {
        "plain": (x, y, dict(), ()),
        "ignore_index": (x, y_ignored, dict(), ()),
        "ignore_valid_class": (x, y, dict(), (("ignore_index", 2),)),
        "example_mask": (x, y_ignored, dict(where=keep), ()),
        "class_mask": (x, y, dict(where=class_mask), ()),
        "k_dim": (xk, yk, dict(), (("axis", 1),)),
    }


@functools.partial(jax.jit, static_argnames=("static",))
def _focal_and_cross_entropy(x, targets, alpha, options, static):
    """(focal with gamma 0, cross_entropy) values and gradients for every reduction."""
    out = []
    for r in REDUCTIONS:
        f = lambda x, t: jnp.sum(
            jaxent.focal_loss(x, t, gamma=0.0, alpha=alpha, reduction=r, **options, **dict(static))
        )
        g = lambda x, t: jnp.sum(jaxent.cross_entropy(x, t, reduction=r, **options, **dict(static)))
        argnums = (0,) if jnp.issubdtype(targets.dtype, jnp.integer) else (0, 1)
        out.append(
            ((f(x, targets), *jax.grad(f, argnums)(x, targets)), (g(x, targets), *jax.grad(g, argnums)(x, targets)))
        )
    return out


@pytest.mark.parametrize("name", ["plain", "ignore_index", "ignore_valid_class", "example_mask", "class_mask", "k_dim"])
def test_gamma_zero_is_exactly_cross_entropy_for_integer_targets(name):
    x, y, options, static = _gamma_zero_cases()[name]
    # float32 too, and a unit alpha (a multiplication by 1), on the plain case.
    variants = [(jnp.float64, None)] + ([(jnp.float32, None), (jnp.float64, 1.0)] if name == "plain" else [])
    for dtype, alpha in variants:
        for focal, ce in _focal_and_cross_entropy(x.astype(dtype), y, alpha, options, static):
            for a, b in zip(focal, ce):
                np.testing.assert_array_equal(a, b)
    # Outside jit too (separately compiled primitives).
    f = lambda x: jaxent.focal_loss(x, y, gamma=0.0, reduction="none", **options, **dict(static))
    g = lambda x: jaxent.cross_entropy(x, y, reduction="none", **options, **dict(static))
    np.testing.assert_array_equal(f(x), g(x))


@pytest.mark.parametrize("name", ["plain", "example_mask", "class_mask", "k_dim"])
def test_gamma_zero_is_cross_entropy_for_probability_targets(name):
    x, _, options, static = _gamma_zero_cases()[name]
    t = probs_of(x.shape, axis=dict(static).get("axis", -1), seed=45)
    if name == "class_mask":
        t = jnp.where(options["where"], t, 0.0)
    for focal, ce in _focal_and_cross_entropy(x, t, None, options, static):
        for a, b in zip(focal, ce):
            assert_close(a, b, GRAD[F64])


def test_poly1_with_zero_epsilon_is_cross_entropy():
    x, y = logits_of((6, C), 46), labels_of((6,), C, 47)
    np.testing.assert_array_equal(POLY1(x, y, epsilon=0.0, reduction="none"), CE(x, y, reduction="none"))
    t = probs_of((6, C), seed=48)
    assert_close(POLY1(x, t, epsilon=0.0), CE(x, t), LOSS[F64])


# --------------------------------------------------------------------------------------
# Agreements.

LOSSES = {
    "focal": (jaxent.focal_loss, dict(gamma=0.5, alpha=ALPHA)),
    "poly1": (jaxent.poly1_cross_entropy, dict(epsilon=2.0)),
}


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_integer_and_one_hot_targets_agree(loss):
    fn, options = LOSSES[loss]
    x, y = logits_of((6, C), 50), labels_of((6,), C, 51)
    onehot = jax.nn.one_hot(y, C, dtype=jnp.float64)

    @jax.jit
    def both(x):
        return [
            (fn(x, t, reduction="none", **options), jax.grad(lambda x: fn(x, t, **options))(x)) for t in (y, onehot)
        ]

    (a, ga), (b, gb) = both(x)
    assert_close(a, b, LOSS[F64])
    assert_close(ga, gb, GRAD[F64])


@pytest.mark.parametrize("integer", [True, False])
@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_example_mask_equals_boolean_indexing(loss, integer):
    fn, options = LOSSES[loss]
    x, targets = logits_of((8, C), 52), targets_of(integer, (8, C), 53)
    keep = np.array([1, 0, 1, 1, 0, 0, 1, 1], bool)
    masked = jax.jit(jax.value_and_grad(lambda x: fn(x, targets, where=jnp.asarray(keep), **options)))
    indexed = jax.jit(jax.value_and_grad(lambda x: fn(x, targets[keep], **options)))
    (a, ga), (b, gb) = masked(x), indexed(x[keep])
    assert_close(a, b, LOSS[F64])
    assert np.all(np.asarray(ga)[~keep] == 0)
    assert_close(ga[keep], gb, GRAD[F64])


@pytest.mark.parametrize("integer", [True, False])
@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_class_mask_equals_removing_the_classes(loss, integer):
    fn, options = LOSSES[loss]
    x = logits_of((6, C), 54)
    keep = np.array([1, 1, 0, 1, 1], bool)  # drop class 2
    mask = jnp.broadcast_to(jnp.asarray(keep), x.shape)
    if integer:
        targets = jnp.array([0, 1, 3, 4, 0, 3], jnp.int32)
        removed = jnp.asarray(np.cumsum(keep) - 1)[targets]
    else:
        targets = probs_of((6, C), seed=55)
        removed = targets[:, keep]
    reduced = {k: (v[keep] if k == "alpha" else v) for k, v in options.items()}
    a = jax.jit(jax.value_and_grad(lambda x: fn(x, targets, where=mask, **options)))
    (la, ga), lb = a(x), jax.jit(lambda x: fn(x, removed, **reduced))(x[:, keep])
    assert_close(la, lb, LOSS[F64])
    assert np.all(np.asarray(ga)[:, ~keep] == 0)


@pytest.mark.parametrize("integer", [True, False])
@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_axis_equals_moveaxis(loss, integer):
    fn, options = LOSSES[loss]
    x = logits_of((2, C, 3), 56)
    targets = labels_of((2, 3), C, 57) if integer else probs_of((2, C, 3), axis=1, seed=58)
    moved = targets if integer else jnp.moveaxis(targets, 1, -1)

    @jax.jit
    def both(x):
        a = lambda x: fn(x, targets, axis=1, reduction="none", **options)
        b = lambda x: fn(jnp.moveaxis(x, 1, -1), moved, reduction="none", **options)
        return a(x), b(x), jax.grad(lambda x: jnp.mean(a(x)))(x), jax.grad(lambda x: jnp.mean(b(x)))(x)

    a, b, ga, gb = both(x)
    assert a.shape == (2, 3)
    assert_close(a, b, LOSS[F64])
    assert_close(ga, gb, GRAD[F64])


@pytest.mark.parametrize("integer", [True, False])
@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_eager_jit_and_vmap_agree(loss, integer):
    fn, options = LOSSES[loss]
    x, targets = logits_of((6, C), 59), targets_of(integer, (6, C), 60)
    f = functools.partial(fn, reduction="none", **options)
    eager = f(x, targets)
    assert_close(jax.jit(f)(x, targets), eager, LOSS[F64])
    assert_close(jax.jit(jax.vmap(f))(x, targets), eager, LOSS[F64])
    g = jax.jit(jax.grad(lambda x: jnp.sum(f(x, targets))))(x)
    assert_close(jax.jit(jax.vmap(jax.grad(lambda xi, ti: f(xi, ti))))(x, targets), g, GRAD[F64])
    assert_close(jax.jit(jax.grad(jax.checkpoint(lambda x: jnp.sum(f(x, targets)))))(x), g, GRAD[F64])


# --------------------------------------------------------------------------------------
# Gradients.


@pytest.mark.parametrize("integer", [True, False])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_focal_check_grads_reverse_mode(gamma, integer):
    x, targets, options = _case(dict(alpha=ALPHA[:4], gamma=gamma, class_mask=True), integer, shape=(3, 4), seed=61)
    order = 2 if gamma == 0.5 else 1  # second order once per target kind (it is slow)
    check_grads(jax.jit(lambda x: jaxent.focal_loss(x, targets, **options)), (x,), order=order, modes=["rev"])
    if not integer:
        check_grads(jax.jit(lambda t: jaxent.focal_loss(x, t, **options)), (targets,), order=order, modes=["rev"])
    if gamma > 0:  # finite differences must stay inside gamma >= 0
        hyper = jax.jit(lambda a, g: jaxent.focal_loss(x, targets, alpha=a, gamma=g, where=options["where"]))
        check_grads(hyper, (options["alpha"], jnp.asarray(gamma)), order=1, modes=["rev"])


@pytest.mark.parametrize("integer", [True, False])
@pytest.mark.parametrize("epsilon", [-0.5, 2.0])
def test_poly1_check_grads_reverse_mode(epsilon, integer):
    x, targets, options = _case(dict(epsilon=epsilon, class_mask=True), integer, shape=(3, 4), seed=62)
    order = 2 if epsilon > 0 else 1
    check_grads(jax.jit(lambda x: jaxent.poly1_cross_entropy(x, targets, **options)), (x,), order=order, modes=["rev"])
    if not integer:
        f = jax.jit(lambda t: jaxent.poly1_cross_entropy(x, t, **options))
        check_grads(f, (targets,), order=order, modes=["rev"])
    eps = jax.jit(lambda e: jaxent.poly1_cross_entropy(x, targets, epsilon=e, where=options["where"]))
    check_grads(eps, (jnp.asarray(epsilon),), order=1, modes=["rev"])


@functools.partial(jax.jit, static_argnames=("fn", "argnums", "hessian", "static"))
def _gradients(fn, x, targets, hyper, options, argnums, hessian=False, static=()):
    f = lambda x, t, hyper: fn(x, t, **hyper, **options, **dict(static))
    grads = jax.grad(f, argnums)(x, targets, hyper)
    return (grads, jax.hessian(f)(x, targets, hyper)) if hessian else (grads,)


FOCAL_GRAD_CASES = {
    "gamma_two": dict(),
    "gamma_half": dict(gamma=0.5),
    "gamma_zero": dict(gamma=0.0),
    "class_mask": dict(class_mask=True, gamma=1.5),
    "ignore_index": dict(ignore_index=1, gamma=0.5),
    "example_mask_neg_inf": dict(example_mask=True, neg_inf=True, gamma=0.5),
}


@pytest.mark.parametrize("integer", [True, False])
@pytest.mark.parametrize("name", sorted(FOCAL_GRAD_CASES))
def test_focal_gradients_match_reference_autodiff(name, integer):
    x, targets, options = _case(FOCAL_GRAD_CASES[name], integer, seed=63)
    options, static = _static(options)
    hyper = dict(gamma=jnp.asarray(options.pop("gamma", 2.0)), alpha=ALPHA)
    argnums = (0, 2) if integer else (0, 1, 2)
    hessian = name in ("gamma_half", "class_mask")
    got = _gradients(jaxent.focal_loss, x, targets, hyper, options, argnums, hessian, static)
    want = _gradients(ref.focal_loss, x, targets, hyper, options, argnums, hessian, static)
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        assert_close(a, b, GRAD[F64])


@pytest.mark.parametrize("integer", [True, False])
@pytest.mark.parametrize("config", [dict(class_mask=True), dict(example_mask=True, neg_inf=True)])
def test_poly1_gradients_match_reference_autodiff(config, integer):
    x, targets, options = _case(config, integer, seed=64)
    argnums = (0, 2) if integer else (0, 1, 2)
    hyper = dict(epsilon=jnp.asarray(2.0))
    hessian = "class_mask" in config
    got = _gradients(jaxent.poly1_cross_entropy, x, targets, hyper, options, argnums, hessian)
    want = _gradients(ref.poly1_cross_entropy, x, targets, hyper, options, argnums, hessian)
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        assert_close(a, b, GRAD[F64])


@pytest.mark.parametrize("integer", [True, False])
@pytest.mark.parametrize("name", ["focal", "poly1"])
def test_forward_and_reverse_mode_second_order(name, integer):
    x = logits_of((3, 4), 65)
    targets = jnp.array([0, 1, 3], jnp.int32) if integer else probs_of((3, 4), seed=66)
    if name == "focal":
        f = lambda x, t, h: jaxent.focal_loss(x, t, gamma=h, alpha=jnp.array([0.5, 1.0, 2.0, 1.5]))
        r = lambda x, t, h: ref.focal_loss(x, t, gamma=h, alpha=jnp.array([0.5, 1.0, 2.0, 1.5]))
    else:
        f = lambda x, t, h: jaxent.poly1_cross_entropy(x, t, epsilon=h)
        r = lambda x, t, h: ref.poly1_cross_entropy(x, t, epsilon=h)
    h = jnp.asarray(1.5)
    if integer:
        check_grads(lambda x, h: f(x, targets, h), (x, h), order=2, modes=["fwd", "rev"])
    else:
        check_grads(f, (x, targets, h), order=2, modes=["fwd", "rev"])
    # jacfwd and linearize against the float64 reference's reverse mode.
    assert_close(jax.jacfwd(f)(x, targets, h), jax.jacrev(r)(x, targets, h), GRAD[F64])
    _, linear = jax.linearize(lambda x: f(x, targets, h), x)
    assert_close(linear(x), jax.jvp(lambda x: r(x, targets, h), (x,), (x,))[1], GRAD[F64])


# --------------------------------------------------------------------------------------
# Infinities and extremes.


def naive_keras_focal(x, y, gamma):
    """Keras's formula verbatim in JAX: (1 - p)^gamma (-log p) with p = softmax(x)."""
    p = jnp.take_along_axis(jax.nn.softmax(x), y[:, None], axis=-1)[:, 0]
    return jnp.sum((1 - p) ** gamma * -jnp.log(p))


@functools.partial(jax.jit, static_argnames=("fn",))
def _value_and_grad(fn, x, targets, options):
    return jax.value_and_grad(lambda x: fn(x, targets, reduction="sum", **options))(x)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_no_nan_at_large_logits(dtype):
    x = logits_of((6, C), 67, scale=1e4, dtype=dtype)
    x = x.at[0].set(jnp.array([1e4, 0.0, -1e4, 0.0, 0.0], dtype))  # p_y = 1 exactly
    y = labels_of((6,), C, 68).at[0].set(0)
    tol = LOSS[jnp.dtype(dtype)] if dtype == jnp.float64 else dict(rtol=1e-6, atol=2e-3)
    for targets in (y, jax.nn.one_hot(y, C, dtype=dtype)):
        for gamma in (0.0, 0.5, 2.0):
            options = dict(gamma=gamma, alpha=ALPHA)
            loss, g = _value_and_grad(jaxent.focal_loss, x, targets, options)
            assert np.isfinite(loss) and np.all(np.isfinite(g))
            assert_close(loss, REF_FOCAL(x, targets, reduction="sum", **options), tol)
            assert np.all(np.asarray(g)[0] == 0)  # p = 1 exactly: the focal term and its gradient are 0
        loss, g = _value_and_grad(jaxent.poly1_cross_entropy, x, targets, dict(epsilon=2.0))
        assert np.isfinite(loss) and np.all(np.isfinite(g))
        assert_close(loss, REF_POLY1(x, targets, epsilon=2.0, reduction="sum"), tol)
    # The trap this avoids (optax#1267 for the sigmoid version): 0 ** gamma in Keras's formula.
    assert np.all(np.isnan(jax.grad(naive_keras_focal)(x[:1], y[:1], 0.5)))


def test_gradient_at_certain_prediction_has_the_right_limit():
    # p_y -> 1: the focal loss ~ CE^(1 + gamma), so its gradient -> 0 for gamma > 0 and is CE's at gamma 0.
    x, y = jnp.array([[40.0, 0.0, 0.0], [0.0, 0.5, -0.5]]), jnp.array([0, 1], jnp.int32)
    for targets in (y, jax.nn.one_hot(y, 3, dtype=jnp.float64)):
        ce_grad = _value_and_grad(jaxent.cross_entropy, x, targets, {})[1][0]
        for gamma in (0.0, 0.25, 0.5, 1.0, 2.0):
            g = _value_and_grad(jaxent.focal_loss, x, targets, dict(gamma=gamma))[1]
            assert np.all(np.isfinite(g))
            assert_close(g[0], ce_grad if gamma == 0 else np.zeros(3), GRAD[F64])
            assert_close(g[1], _value_and_grad(ref.focal_loss, x, targets, dict(gamma=gamma))[1][1], GRAD[F64])


def test_neg_inf_logits_give_no_nan():
    x = jnp.array([[-jnp.inf, 0.0, 1.0], [2.0, -jnp.inf, -jnp.inf], [-jnp.inf, -jnp.inf, 0.5], [0.3, -jnp.inf, 0.1]])
    y = jnp.array([1, 0, 2, 0], jnp.int32)
    alpha = jnp.array([0.5, 1.0, 2.0])
    for targets in (y, jax.nn.one_hot(y, 3, dtype=jnp.float64)):
        for fn, ref_fn, options in (
            (jaxent.focal_loss, ref.focal_loss, dict(gamma=0.0, alpha=alpha)),
            (jaxent.focal_loss, ref.focal_loss, dict(gamma=0.5, alpha=alpha)),
            (jaxent.focal_loss, ref.focal_loss, dict(gamma=2.0, alpha=alpha)),
            (jaxent.poly1_cross_entropy, ref.poly1_cross_entropy, dict(epsilon=2.0)),
        ):
            loss, g = _value_and_grad(fn, x, targets, options)
            assert np.isfinite(loss) and np.all(np.isfinite(g))
            assert np.all(np.asarray(g)[np.isinf(np.asarray(x))] == 0)
            assert_close(loss, _value_and_grad(ref_fn, x, targets, options)[0], LOSS[F64])


def test_target_on_neg_inf_class_is_inf_with_finite_gradients():
    x = jnp.array([[-jnp.inf, 0.0, 1.0], [0.0, 1.0, 2.0]])
    y = jnp.array([0, 1], jnp.int32)
    calls = (
        (jaxent.focal_loss, dict(gamma=0.0)),
        (jaxent.focal_loss, dict(gamma=0.5, alpha=jnp.array([1.0, 2.0, 1.0]))),
        (jaxent.poly1_cross_entropy, dict(epsilon=-1.0)),
        # alpha 0 on the impossible class: that target carries no weight, so 0 and not 0 * inf.
        (jaxent.focal_loss, dict(alpha=jnp.array([0.0, 1.0, 1.0]))),
    )

    @jax.jit
    def run(x):
        return [
            (fn(x, t, reduction="none", **o), jax.grad(lambda x: fn(x, t, **o))(x))
            for t in (y, jax.nn.one_hot(y, 3, dtype=jnp.float64))
            for fn, o in calls
        ]

    for i, (losses, g) in enumerate(run(x)):
        assert losses[0] == (0 if i % len(calls) == 3 else np.inf) and np.isfinite(losses[1])
        assert np.all(np.isfinite(g))


def test_all_neg_inf_row():
    x = jnp.array([[-jnp.inf, -jnp.inf, -jnp.inf], [0.0, 1.0, 2.0]])
    dropped = jnp.array([False, True])

    @jax.jit
    def run(x):
        return [
            (fn(x, t, where=w, reduction="none"), jax.grad(lambda x: fn(x, t, where=w))(x))
            for fn in (jaxent.focal_loss, jaxent.poly1_cross_entropy)
            for t in (jnp.array([1, 2], jnp.int32), jnp.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))
            for w in (None, dropped)
        ]

    for i, (losses, g) in enumerate(run(x)):
        assert losses[0] == (np.inf if i % 2 == 0 else 0) and np.isfinite(losses[1])
        assert np.all(np.isfinite(g)) and (i % 2 == 0 or np.all(g[0] == 0))


@pytest.mark.parametrize("case", ["all_ignored", "all_masked", "class_masked"])
def test_empty_mean_is_zero_with_zero_gradients(case):
    x, y = logits_of((4, C), 69), labels_of((4,), C, 70)
    t = probs_of((4, C), seed=71)
    where = {"all_masked": jnp.zeros((4,), bool), "class_masked": jnp.zeros((4, C), bool)}.get(case)
    if case == "all_ignored":
        y = jnp.full((4,), -100, jnp.int32)
    calls = [(jaxent.focal_loss, y, dict(alpha=ALPHA))]
    if case != "all_ignored":
        calls += [(jaxent.focal_loss, t, {}), (jaxent.poly1_cross_entropy, y, {}), (jaxent.poly1_cross_entropy, t, {})]

    @jax.jit
    def run(x):
        return [jax.value_and_grad(lambda x: fn(x, targets, where=where, **o))(x) for fn, targets, o in calls]

    for loss, g in run(x):
        assert loss == 0 and np.all(g == 0)


def test_out_of_range_label_is_nan_never_wrapped():
    x = jnp.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]])
    for bad in (-1, 3, 100, -100):
        y = jnp.array([bad, 1], jnp.int32)
        ignore = None if bad == -100 else -100
        # poly1_cross_entropy has no ignore_index: -100 is out of range too.
        for fn, options in (
            (jaxent.focal_loss, dict(ignore_index=None) if ignore is None else {}),
            (jaxent.poly1_cross_entropy, {}),
        ):
            losses, _, mean = every_reduction(fn, x, y, options)
            assert np.isnan(losses[0]) and np.isfinite(losses[1]) and np.isnan(mean)
            g = _value_and_grad(fn, x, y, options)[1]
            assert np.all(np.isnan(g[0])) and np.all(np.isfinite(g[1]))


def test_checkify_names_the_offending_label():
    x = jnp.zeros((3, 4))
    for name, f in (("focal_loss", jaxent.focal_loss), ("poly1_cross_entropy", jaxent.poly1_cross_entropy)):
        checked = checkify.checkify(jax.jit(lambda x, y: f(x, y)), errors=checkify.user_checks)
        err, _ = checked(x, jnp.array([1, 9, 2], jnp.int32))
        with pytest.raises(checkify.JaxRuntimeError, match=rf"{name}: targets contain the label 9, outside \[0, 4\)"):
            err.throw()
        checked(x, jnp.array([1, 3, 2], jnp.int32))[0].throw()


# --------------------------------------------------------------------------------------
# Half precision.


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
@pytest.mark.parametrize("integer", [True, False])
def test_half_precision_is_computed_in_float32(dtype, integer):
    x = logits_of((6, 8), 72, dtype=dtype)
    y = labels_of((6,), 8, 73) if integer else probs_of((6, 8), seed=74).astype(dtype)
    x64, y64 = x.astype(jnp.float64), (y if integer else y.astype(jnp.float64))  # exactly the rounded inputs
    argnums = (0,) if integer else (0, 1)
    for fn, ref_fn, options in (
        (jaxent.focal_loss, ref.focal_loss, dict(gamma=2.0, alpha=jnp.linspace(0.25, 1.0, 8, dtype=jnp.float32))),
        (jaxent.poly1_cross_entropy, ref.poly1_cross_entropy, dict(epsilon=2.0)),
    ):
        loss, grads = jax.jit(jax.value_and_grad(lambda x, y: fn(x, y, **options), argnums))(x, y)
        want, want_grads = jax.jit(jax.value_and_grad(lambda x, y: ref_fn(x, y, **options), argnums))(x64, y64)
        assert loss.dtype == jnp.float32
        assert_close(loss, want, LOSS[jnp.dtype(dtype)])
        for g, w, arg in zip(grads, want_grads, (x, y)):
            assert g.dtype == arg.dtype
            assert_close(g, w, GRAD[jnp.dtype(dtype)])


N_MEM, V_MEM = 1024, 8192
F32_BUFFER = N_MEM * V_MEM * 4


@pytest.mark.parametrize("integer", [True, False])
def test_value_and_grad_memory_bfloat16(integer):
    # Compiled temporary memory (deterministic): no float32 copy of the [N, V] logits, for the
    # gradient with respect to the logits or (soft targets, distillation) to the targets.
    x = jax.ShapeDtypeStruct((N_MEM, V_MEM), jnp.bfloat16)
    y = jax.ShapeDtypeStruct((N_MEM,), jnp.int32) if integer else x
    for f in (
        lambda x, y: jaxent.focal_loss(x, y, gamma=2.0, alpha=0.25),
        lambda x, y: jaxent.poly1_cross_entropy(x, y, epsilon=2.0),
    ):
        for argnums in [(0,)] if integer else [(0,), (1,)]:
            compiled = jax.jit(jax.value_and_grad(f, argnums)).lower(x, y).compile()
            assert compiled.memory_analysis().temp_size_in_bytes < 0.05 * F32_BUFFER


# --------------------------------------------------------------------------------------
# Bad input.

BAD_INPUTS = [
    (dict(gamma=-0.5), ValueError, r"focal_loss: gamma must lie in \[0.0, inf\), got -0.5"),
    (dict(gamma=np.array([1.0, 2.0])), ValueError, "focal_loss: gamma must be a scalar"),
    (dict(alpha=np.ones(4)), ValueError, r"focal_loss: alpha has shape \(4,\) but logits has 10 classes"),
    (dict(alpha=np.ones((10, 1))), ValueError, r"alpha has shape \(10, 1\)"),
    (dict(alpha=-0.25), ValueError, r"focal_loss: alpha must be >= 0.0"),
    (dict(alpha=np.array([0.5] * 9 + [-1.0])), ValueError, "alpha must be >= 0.0"),
    (dict(alpha=np.ones(10, bool)), TypeError, "focal_loss: alpha must be a real number or array"),
    (dict(reduction="batchmean"), ValueError, "focal_loss: reduction must be one of"),
    (dict(targets=np.zeros((8, 9), np.int32)), ValueError, r"focal_loss: targets has shape \(8, 9\) but logits"),
    (dict(targets=np.zeros((8, 9))), ValueError, "probability targets the shape of logits"),
    (dict(logits=np.zeros((8, 10), np.int32)), TypeError, "focal_loss: logits must be a floating-point array"),
    (dict(where=np.ones((8, 3), bool)), ValueError, r"focal_loss: where has shape \(8, 3\)"),
    (dict(axis=2), ValueError, "focal_loss: axis 2 is out of range"),
    (dict(ignore_index=1.5), TypeError, "focal_loss: ignore_index must be a Python int or None"),
    (dict(targets=np.full((8, 10), 0.1), ignore_index=3), ValueError, "focal_loss: ignore_index=3 needs integer"),
]


@pytest.mark.parametrize(("kwargs", "error", "match"), BAD_INPUTS)
def test_focal_bad_input_is_a_clear_error(kwargs, error, match):
    args = dict(logits=np.zeros((8, 10)), targets=np.zeros((8,), np.int32))
    args.update(kwargs)
    with pytest.raises(error, match=match):
        jaxent.focal_loss(args.pop("logits"), args.pop("targets"), **args)


POLY_BAD_INPUTS = [
    (dict(epsilon=-1.5), ValueError, r"poly1_cross_entropy: epsilon must lie in \[-1.0, inf\), got -1.5"),
    (dict(epsilon=np.ones(2)), ValueError, "poly1_cross_entropy: epsilon must be a scalar"),
    (dict(reduction=None), ValueError, "poly1_cross_entropy: reduction must be one of"),
    (dict(targets=np.zeros((8, 5), np.int32)), ValueError, r"poly1_cross_entropy: targets has shape \(8, 5\)"),
    (dict(targets=np.zeros((8,), bool)), TypeError, "poly1_cross_entropy: targets must be integer class indices"),
    (dict(where=np.ones((8,))), TypeError, "poly1_cross_entropy: where must be a boolean mask"),
    (dict(axis=(1, 1)), ValueError, "poly1_cross_entropy: axis .* repeats an axis"),
]


@pytest.mark.parametrize(("kwargs", "error", "match"), POLY_BAD_INPUTS)
def test_poly1_bad_input_is_a_clear_error(kwargs, error, match):
    args = dict(logits=np.zeros((8, 10)), targets=np.zeros((8,), np.int32))
    args.update(kwargs)
    with pytest.raises(error, match=match):
        jaxent.poly1_cross_entropy(args.pop("logits"), args.pop("targets"), **args)


def test_traced_hyperparameter_ranges_are_checked_under_checkify():
    x, y = jnp.zeros((2, 3)), jnp.array([0, 1], jnp.int32)
    f = checkify.checkify(
        jax.jit(
            lambda g, a, e: jaxent.focal_loss(x, y, gamma=g, alpha=a) + jaxent.poly1_cross_entropy(x, y, epsilon=e)
        ),
        errors=checkify.user_checks,
    )
    f(0.5, jnp.ones(3), -1.0)[0].throw()
    with pytest.raises(checkify.JaxRuntimeError, match=r"focal_loss: gamma must lie in \[0.0, inf\), got -1.0"):
        f(-1.0, jnp.ones(3), 0.0)[0].throw()
    with pytest.raises(checkify.JaxRuntimeError, match=r"focal_loss: alpha must be >= 0.0, got a minimum of -2.0"):
        f(1.0, jnp.array([1.0, -2.0, 0.5]), 0.0)[0].throw()
    with pytest.raises(checkify.JaxRuntimeError, match=r"poly1_cross_entropy: epsilon must lie in \[-1.0, inf\)"):
        f(1.0, jnp.ones(3), -2.0)[0].throw()


# --------------------------------------------------------------------------------------
# Traced hyperparameters and loss objects.


def test_traced_hyperparameters_do_not_recompile():
    x, y, t = logits_of((4, C), 75), labels_of((4,), C, 76), probs_of((4, C), seed=77)
    traces = []

    def losses(x, y, t, gamma, alpha, eps):
        return (
            jaxent.focal_loss(x, y, gamma=gamma, alpha=alpha),
            jaxent.focal_loss(x, t, gamma=gamma, alpha=alpha),
            jaxent.poly1_cross_entropy(x, y, epsilon=eps),
            jaxent.poly1_cross_entropy(x, t, epsilon=eps),
        )

    @jax.jit
    def f(*args):
        traces.append(1)
        return losses(*args)

    for gamma, alpha, eps in [(0.0, ALPHA, -1.0), (0.5, jnp.ones(C), 2.0), (3.0, ALPHA * 0.5, 0.0)]:
        want = (
            REF_FOCAL(x, y, gamma=gamma, alpha=alpha),
            REF_FOCAL(x, t, gamma=gamma, alpha=alpha),
            REF_POLY1(x, y, epsilon=eps),
            REF_POLY1(x, t, epsilon=eps),
        )
        for a, b in zip(f(x, y, t, gamma, alpha, eps), want):
            assert_close(a, b, LOSS[F64])
    assert len(traces) == 1


def test_loss_objects_equal_their_functions():
    x, y = logits_of((4, C), 78), labels_of((4,), C, 79)
    mask = jnp.array([True, False, True, True])
    loss = jaxent.FocalLoss(gamma=0.5, alpha=ALPHA, reduction="sum")
    want = jaxent.focal_loss(x, y, gamma=0.5, alpha=ALPHA, reduction="sum")
    assert_close(loss(x, y), want, LOSS[F64])
    masked = jaxent.focal_loss(x, y, gamma=0.5, alpha=ALPHA, reduction="sum", where=mask)
    assert_close(loss(x, y, where=mask), masked, LOSS[F64])
    poly = jaxent.Poly1CrossEntropyLoss(epsilon=2.0, axis=-1)
    assert_close(poly(x, y), jaxent.poly1_cross_entropy(x, y, epsilon=2.0), LOSS[F64])
    assert_close(poly(x, y, where=mask), jaxent.poly1_cross_entropy(x, y, epsilon=2.0, where=mask), LOSS[F64])
    # Pytrees: hyperparameters are leaves, structural fields static; usable as jit arguments.
    leaves = jax.tree_util.tree_leaves(loss)
    assert any(leaf is ALPHA for leaf in leaves) and "sum" not in leaves
    assert_close(jax.jit(lambda loss, x, y: loss(x, y))(loss, x, y), want, LOSS[F64])
    assert_close(jax.jit(lambda poly, x, y: poly(x, y))(poly, x, y), poly(x, y), LOSS[F64])
    g = jax.jit(jax.grad(lambda loss: loss(x, y)))(dataclasses.replace(loss, gamma=jnp.asarray(0.5)))
    assert g.alpha.shape == (C,) and g.gamma.shape == () and g.reduction == "sum"
    assert float(jax.jit(jax.grad(lambda p: p(x, y)))(poly).epsilon) > 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        loss.gamma = 1.0  # type: ignore[misc]


# --------------------------------------------------------------------------------------
# Properties (fixed shapes, compiled once; hypothesis varies the values).


@jax.jit
def _focal_property(x, targets, gamma, alpha):
    f = lambda x, gamma: jaxent.focal_loss(x, targets, gamma=gamma, alpha=alpha, reduction="none")
    return (
        jaxent.cross_entropy(x, targets, reduction="none"),
        f(x, gamma),
        f(x, gamma + 1),
        ref.focal_loss(x, targets, gamma=gamma, alpha=alpha, reduction="none"),
        jax.grad(lambda x: jnp.sum(f(x, gamma)))(x),
    )


@seed(20260601)
@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.floats(-30, 30), min_size=12, max_size=12),
    st.lists(st.integers(0, 3), min_size=3, max_size=3),
    st.floats(0, 4),
    st.lists(st.floats(0, 1), min_size=4, max_size=4),
)
def test_property_focal_is_below_cross_entropy_and_decreasing_in_gamma(raw_logits, raw_labels, gamma, raw_alpha):
    x = jnp.asarray(raw_logits).reshape(3, 4)
    for targets in (jnp.asarray(raw_labels, jnp.int32), jax.nn.softmax(x[::-1], axis=-1)):
        ce, focal, steeper, want, grad = _focal_property(x, targets, gamma, jnp.asarray(raw_alpha))
        assert np.all(np.asarray(focal) >= 0) and np.all(np.asarray(focal) <= np.asarray(ce) * (1 + 1e-12))
        assert np.all(np.asarray(steeper) <= np.asarray(focal) * (1 + 1e-12))
        assert_close(focal, want, LOSS[F64])
        assert np.all(np.isfinite(grad))


@jax.jit
def _poly_property(x, y, t, epsilon):
    return (
        jaxent.cross_entropy(x, y, reduction="none"),
        jaxent.poly1_cross_entropy(x, y, epsilon=epsilon, reduction="none"),
        jaxent.poly1_cross_entropy(x, t, epsilon=epsilon, reduction="none"),
        ref.poly1_cross_entropy(x, t, epsilon=epsilon, reduction="none"),
    )


@seed(20260602)
@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.floats(-30, 30), min_size=12, max_size=12),
    st.lists(st.integers(0, 3), min_size=3, max_size=3),
    st.floats(-1, 5),
)
def test_property_poly1_is_cross_entropy_plus_epsilon_one_minus_pt(raw_logits, raw_labels, epsilon):
    x = jnp.asarray(raw_logits).reshape(3, 4)
    t = jax.nn.softmax(x[::-1], axis=-1)
    ce, poly, soft, want = _poly_property(x, jnp.asarray(raw_labels, jnp.int32), t, epsilon)
    assert_close(poly, ce + epsilon * (1 - jnp.exp(-ce)), LOSS[F64])
    # -log p >= 1 - p, so epsilon >= -1 keeps the loss non-negative.
    assert np.all(np.asarray(poly) >= -1e-15) and np.all(np.asarray(soft) >= -1e-15)
    assert_close(soft, want, LOSS[F64])


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("integer", [True, False])
def test_accelerator_programs_have_no_branch_and_no_barrier(integer, dtype):
    x = logits_of((4, C), 80).astype(dtype)
    targets = jnp.array([0, 1, 3, 4], jnp.int32) if integer else probs_of((4, C), seed=81).astype(dtype)
    for loss in (
        lambda x: jaxent.focal_loss(x, targets, gamma=2.0, alpha=ALPHA),
        lambda x: jaxent.poly1_cross_entropy(x, targets, epsilon=2.0),
    ):
        programs.assert_backend_neutral(jax.value_and_grad(loss), x)
        programs.assert_backend_neutral(lambda x: jax.jvp(loss, (x,), (x,)), x)
