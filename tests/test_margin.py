"""hinge_loss, multi_margin_loss and multiclass_hinge_loss against float64 references, PyTorch and optax."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.experimental import checkify
from jax.test_util import check_grads

import jaxent
from tests import programs, torch_cases
from tests import references as ref
from tests.tolerances import GRAD, LOSS, PARITY, assert_close

REDUCTIONS = ("none", "sum", "mean")
F64 = jnp.dtype(jnp.float64)
C = 5
MULTICLASS = {"multi_margin_loss": jaxent.multi_margin_loss, "multiclass_hinge_loss": jaxent.multiclass_hinge_loss}
MULTICLASS_REF = {"multi_margin_loss": ref.multi_margin_loss, "multiclass_hinge_loss": ref.multiclass_hinge_loss}


def scores_of(shape, seed=0, scale=1.5, dtype=jnp.float64):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape) * scale).astype(dtype)


def signs_of(shape, seed=1):
    return jnp.asarray(np.random.default_rng(seed).choice([-1, 1], size=shape), jnp.int32)


def labels_of(shape, num_classes, seed=1):
    return jnp.asarray(np.random.default_rng(seed).integers(0, num_classes, size=shape), jnp.int32)


def torch_of(torch, a, grad=False):
    return torch.tensor(np.asarray(a), requires_grad=grad)


# --------------------------------------------------------------------------------------
# Golden values.


def test_golden_values():
    tol = dict(rtol=1e-6, atol=1e-6)
    # optax hinge_loss(0.3, 1) = 0.7 (loss-semantics §3.8).
    assert_close(jaxent.hinge_loss(0.3, 1), 0.7, tol)
    assert_close(jaxent.hinge_loss(jnp.float32(0.3), True, squared=True), 0.49, tol)
    assert_close(jaxent.hinge_loss(jnp.float32(0.3), -1, margin=2.0), 2.3, tol)
    s, y = jnp.array([[0.1, 0.2, 0.4, 0.8]], jnp.float32), jnp.array([3], jnp.int32)
    out = jaxent.multi_margin_loss(s, y)
    assert out.dtype == jnp.float32
    assert_close(out, 0.325, tol)  # (0.3 + 0.4 + 0.6) / 4
    assert_close(jaxent.multi_margin_loss(s, y, p=2), 0.1525, tol)  # (0.09 + 0.16 + 0.36) / 4
    assert_close(jaxent.multi_margin_loss(s, y, weight=jnp.array([1.0, 1.0, 1.0, 2.0])), 0.65, tol)
    assert_close(jaxent.multiclass_hinge_loss(s, y), 0.6, tol)  # 1 + 0.4 - 0.8
    assert_close(jaxent.multiclass_hinge_loss(s, y, margin=0.3), 0.0, tol)


def test_squared_hinge_is_the_keras_formula():
    # Keras SquaredHinge: mean over the last axis of max(0, 1 - y s)^2 (here reduction="none" then mean(-1)).
    s = np.array([[0.6, -0.4, 1.5], [-2.0, 0.2, 0.9]])
    y = np.array([[1, -1, -1], [1, 1, -1]])
    keras = np.mean(np.maximum(0.0, 1 - y * s) ** 2, axis=-1)
    got = jnp.mean(jaxent.hinge_loss(jnp.asarray(s), jnp.asarray(y), squared=True, reduction="none"), axis=-1)
    assert_close(got, keras, LOSS[F64])


# --------------------------------------------------------------------------------------
# PyTorch parity.


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("margin", [1.0, 0.5, 2.0, -0.3])
@pytest.mark.parametrize("weighted", [False, True])
def test_multi_margin_matches_torch(torch, p, margin, weighted):
    x, y = scores_of((7, C), 2), labels_of((7,), C, 3)
    weight = jnp.asarray(np.random.default_rng(4).uniform(0.2, 2.0, C)) if weighted else None
    w_t = None if weight is None else torch_of(torch, weight)
    for reduction in REDUCTIONS:
        f = lambda x: jaxent.multi_margin_loss(x, y, p=p, margin=margin, weight=weight, reduction=reduction)
        x_t = torch_of(torch, x, grad=True)
        want = torch.nn.functional.multi_margin_loss(
            x_t, torch_of(torch, y).long(), p=p, margin=margin, weight=w_t, reduction=reduction
        )
        assert_close(f(x), want.detach().numpy(), PARITY)
        want.sum().backward()
        assert_close(jax.grad(lambda x: jnp.sum(f(x)))(x), x_t.grad.numpy(), PARITY)


def test_multi_margin_unbatched_matches_torch(torch):
    x = scores_of((C,), 5)
    for reduction in REDUCTIONS:
        got = jaxent.multi_margin_loss(x, jnp.array(2), p=2, margin=0.7, reduction=reduction)
        want = torch.nn.functional.multi_margin_loss(
            torch_of(torch, x), torch.tensor(2), p=2, margin=0.7, reduction=reduction
        )
        assert got.shape == tuple(want.shape)
        assert_close(got, want.numpy(), PARITY)


@pytest.mark.parametrize("squared", [False, True])
@pytest.mark.parametrize("margin", [1.0, 0.4, -0.5])
def test_hinge_matches_torch_two_class_multi_margin(torch, squared, margin):
    # With scores (0, s) and y in {0, 1}, torch's multi_margin_loss is max(0, margin - y± s)^p / 2.
    s, y = scores_of((9,), 6), signs_of((9,), 7)
    got = jaxent.hinge_loss(s, y, margin=margin, squared=squared, reduction="none")
    two = torch.stack([torch.zeros(9), torch_of(torch, s)], dim=1)
    want = 2 * torch.nn.functional.multi_margin_loss(
        two, torch_of(torch, (y + 1) // 2).long(), p=2 if squared else 1, margin=margin, reduction="none"
    )
    assert_close(got, want.numpy(), PARITY)


# --------------------------------------------------------------------------------------
# optax parity.


def test_hinge_matches_optax():
    s, y = scores_of((4, 6), 8), signs_of((4, 6), 9)
    yf = y.astype(jnp.float64)  # optax needs matching dtypes under strict promotion
    assert_close(jaxent.hinge_loss(s, y, reduction="none"), optax.losses.hinge_loss(s, yf), PARITY)
    assert_close(jaxent.hinge_loss(s, y), jnp.mean(optax.losses.hinge_loss(s, yf)), PARITY)
    g = jax.grad(lambda s: jaxent.hinge_loss(s, y, reduction="sum"))(s)
    assert_close(g, jax.grad(lambda s: jnp.sum(optax.losses.hinge_loss(s, yf)))(s), PARITY)


def test_multiclass_hinge_matches_optax():
    x, y = scores_of((3, 4, C), 10), labels_of((3, 4), C, 11)
    want = optax.losses.multiclass_hinge_loss(x, y)
    assert_close(jaxent.multiclass_hinge_loss(x, y, reduction="none"), want, PARITY)
    g = jax.grad(lambda x: jaxent.multiclass_hinge_loss(x, y, reduction="sum"))(x)
    assert_close(g, jax.grad(lambda x: jnp.sum(optax.losses.multiclass_hinge_loss(x, y)))(x), PARITY)


# --------------------------------------------------------------------------------------
# float64 reference: every option, including those PyTorch and optax lack.

MULTICLASS_CONFIGS = {
    "plain": dict(),
    "margin": dict(margin=0.4),
    "negative_margin": dict(margin=-0.2),
    "weight_p2": dict(weight=True, p=2),
    "class_mask": dict(class_mask=True, weight=True),
    "example_mask": dict(example_mask=True, margin=1.5),
    "axis_1": dict(axis=1, p=2),
    "tuple_axis": dict(axis=(2, 1)),
}


def _multiclass_case(fn_name, config, seed=20):
    options = dict(MULTICLASS_CONFIGS[config])
    rng = np.random.default_rng(seed)
    axis = options.pop("axis", -1)
    shape = {-1: (4, 3, C), 1: (4, C, 3), (2, 1): (4, 2, 3)}[axis if isinstance(axis, int) else (2, 1)]
    x = scores_of(shape, seed)
    axes = (axis,) if isinstance(axis, int) else axis
    batch = tuple(d for a, d in enumerate(shape) if a not in [b % len(shape) for b in axes])
    num_classes = int(np.prod([shape[a] for a in axes]))
    if fn_name == "multiclass_hinge_loss":
        options.pop("p", None)
        options.pop("weight", None)
    elif options.pop("weight", False):
        options["weight"] = jnp.asarray(rng.uniform(0.2, 2.0, num_classes))
    if options.pop("class_mask", False):
        mask = rng.random(shape) > 0.3
        x_last = np.moveaxis(mask, axes[0], -1)
        y = np.argmax(np.where(x_last, rng.random(x_last.shape), -1), axis=-1)  # labels on unmasked classes
        options["where"] = jnp.asarray(mask)
    else:
        y = rng.integers(0, num_classes, size=batch)
    if options.pop("example_mask", False):
        options["where"] = jnp.asarray(rng.random(batch) > 0.4)
    return x, jnp.asarray(y, jnp.int32), dict(options, axis=axis)


@pytest.mark.parametrize("config", sorted(MULTICLASS_CONFIGS))
@pytest.mark.parametrize("fn_name", sorted(MULTICLASS))
def test_multiclass_matches_float64_reference(fn_name, config):
    x, y, options = _multiclass_case(fn_name, config)
    for reduction in REDUCTIONS:
        got = MULTICLASS[fn_name](x, y, reduction=reduction, **options)
        want = MULTICLASS_REF[fn_name](x, y, reduction=reduction, **options)
        assert_close(got, want, LOSS[F64])


HINGE_CONFIGS = [
    dict(),
    dict(margin=0.3),
    dict(margin=-0.4, squared=True),
    dict(squared=True),
    dict(where=True, margin=2.0),
]


@pytest.mark.parametrize("config", range(len(HINGE_CONFIGS)))
def test_hinge_matches_float64_reference(config):
    options = dict(HINGE_CONFIGS[config])
    s, y = scores_of((5, 4), 21), signs_of((5, 4), 22)
    if options.pop("where", False):
        options["where"] = jnp.asarray(np.random.default_rng(23).random((5, 4)) > 0.4)
    for targets in (y, y.astype(jnp.float64), y > 0):
        for reduction in REDUCTIONS:
            got = jaxent.hinge_loss(s, targets, reduction=reduction, **options)
            assert_close(got, ref.hinge_loss(s, targets, reduction=reduction, **options), LOSS[F64])


# --------------------------------------------------------------------------------------
# Gradients.


@pytest.mark.parametrize("config", ["plain", "weight_p2", "class_mask", "example_mask", "tuple_axis"])
@pytest.mark.parametrize("fn_name", sorted(MULTICLASS))
def test_multiclass_gradients_match_reference(fn_name, config):
    x, y, options = _multiclass_case(fn_name, config, seed=30)
    f, r = MULTICLASS[fn_name], MULTICLASS_REF[fn_name]
    assert_close(jax.grad(lambda x: f(x, y, **options))(x), jax.grad(lambda x: r(x, y, **options))(x), GRAD[F64])
    check_grads(lambda x: f(x, y, **options), (x,), order=2, modes=["rev"])
    # Hyperparameters: margin always, weight for multi_margin_loss.
    hp = {k: v for k, v in options.items() if k == "weight"}
    hp["margin"] = jnp.asarray(options.get("margin", 1.0))
    rest = {k: v for k, v in options.items() if k not in hp}
    got = jax.grad(lambda hp: f(x, y, **hp, **rest))(hp)
    want = jax.grad(lambda hp: r(x, y, **hp, **rest))(hp)
    for k in hp:
        assert_close(got[k], want[k], GRAD[F64])


def test_hinge_gradients_match_reference():
    s, y = scores_of((5, 4), 31), signs_of((5, 4), 32)
    where = jnp.asarray(np.random.default_rng(33).random((5, 4)) > 0.3)
    for options in (dict(), dict(squared=True, margin=0.7), dict(where=where, margin=1.3)):
        f = lambda s, m: jaxent.hinge_loss(s, y, margin=m, **options)
        r = lambda s, m: ref.hinge_loss(s, y, margin=m, **options)
        m = jnp.asarray(options.pop("margin", 1.0))
        for a, b in zip(jax.grad(f, (0, 1))(s, m), jax.grad(r, (0, 1))(s, m)):
            assert_close(a, b, GRAD[F64])
        check_grads(lambda s: f(s, m), (s,), order=2, modes=["rev"])


def test_gradient_at_the_kink_is_zero():
    # margin - y s = 0 exactly: the gradient is 0 (relu's convention, PyTorch's z > 0).
    assert jax.grad(lambda s: jaxent.hinge_loss(s, 1))(1.0) == 0
    x, y = jnp.array([[0.0, 1.0, 2.0]]), jnp.array([2], jnp.int32)  # 1 - 2 + 1 = 0 for class 1
    assert np.all(jax.grad(lambda x: jaxent.multi_margin_loss(x, y))(x) == 0)
    assert np.all(jax.grad(lambda x: jaxent.multiclass_hinge_loss(x, y))(x) == 0)


def test_forward_mode_works():
    x, y = scores_of((3, C), 34), labels_of((3,), C, 35)
    for f in MULTICLASS.values():
        jvp = jax.jvp(lambda x: f(x, y), (x,), (jnp.ones_like(x),))[1]
        assert_close(jvp, jnp.sum(jax.grad(lambda x: f(x, y))(x)), GRAD[F64])


# --------------------------------------------------------------------------------------
# Masks, axes, transformations.


@pytest.mark.parametrize("fn_name", sorted(MULTICLASS))
def test_example_mask_equals_boolean_indexing(fn_name):
    f = MULTICLASS[fn_name]
    options = dict(margin=0.8) if fn_name == "multiclass_hinge_loss" else dict(p=2, weight=jnp.linspace(0.5, 2, C))
    x, y = scores_of((8, C), 40), labels_of((8,), C, 41)
    keep = np.array([1, 0, 1, 1, 0, 0, 1, 1], bool)
    assert_close(f(x, y, where=jnp.asarray(keep), **options), f(x[keep], y[keep], **options), LOSS[F64])
    g = jax.grad(lambda x: f(x, y, where=jnp.asarray(keep), **options))(x)
    assert np.all(np.asarray(g)[~keep] == 0)
    assert_close(g[keep], jax.grad(lambda x: f(x, y[keep], **options))(x[keep]), GRAD[F64])


def test_hinge_mask_equals_boolean_indexing():
    s, y = scores_of((10,), 42), signs_of((10,), 43)
    keep = np.array([1, 0, 1, 1, 0, 0, 1, 1, 1, 0], bool)
    for options in (dict(), dict(squared=True, margin=0.5)):
        assert_close(
            jaxent.hinge_loss(s, y, where=jnp.asarray(keep), **options),
            jaxent.hinge_loss(s[keep], y[keep], **options),
            LOSS[F64],
        )
        g = jax.grad(lambda s: jaxent.hinge_loss(s, y, where=jnp.asarray(keep), **options))(s)
        assert np.all(np.asarray(g)[~keep] == 0)
        assert_close(g[keep], jax.grad(lambda s: jaxent.hinge_loss(s, y[keep], **options))(s[keep]), GRAD[F64])
    # A row mask of shape (N, 1) broadcasts over the row, like the other elementwise losses.
    s2, y2 = s.reshape(5, 2), y.reshape(5, 2)
    rows = np.array([1, 0, 1, 1, 0], bool)
    assert_close(
        jaxent.hinge_loss(s2, y2, where=jnp.asarray(rows)[:, None]), jaxent.hinge_loss(s2[rows], y2[rows]), LOSS[F64]
    )


@pytest.mark.parametrize("fn_name", sorted(MULTICLASS))
def test_class_mask_equals_removing_the_classes(fn_name):
    f = MULTICLASS[fn_name]
    x = scores_of((6, C), 44)
    y = jnp.array([0, 1, 3, 4, 0, 3], jnp.int32)
    keep = np.array([1, 1, 0, 1, 1], bool)  # drop class 2
    mask = jnp.broadcast_to(jnp.asarray(keep), x.shape)
    new_label = jnp.asarray(np.cumsum(keep) - 1)[y]
    options = dict(margin=0.6)
    extra = dict(weight=jnp.linspace(0.5, 2.0, C), p=2) if fn_name == "multi_margin_loss" else {}
    a = f(x, y, where=mask, reduction="none", **options, **extra)
    if extra:
        extra = dict(extra, weight=extra["weight"][keep])
    assert_close(a, f(x[:, keep], new_label, reduction="none", **options, **extra), LOSS[F64])
    g = jax.grad(lambda x: f(x, y, where=mask, **options))(x)
    assert np.all(np.asarray(g)[:, ~keep] == 0)
    # A target on a masked class is impossible: +inf with zero gradient for that example.
    y_masked = y.at[0].set(2)
    losses = f(x, y_masked, where=mask, reduction="none", **options)
    assert losses[0] == np.inf and np.all(np.isfinite(losses[1:]))
    g = jax.grad(lambda x: jnp.sum(f(x, y_masked, where=mask, reduction="none", **options)))(x)
    assert np.all(np.isfinite(g)) and np.all(g[0] == 0)


@pytest.mark.parametrize("fn_name", sorted(MULTICLASS))
def test_axis_equals_moveaxis(fn_name):
    # PyTorch's multi_margin_loss has no (N, C, d1, ...) layout: axis is checked against moveaxis.
    f = MULTICLASS[fn_name]
    x, y = scores_of((2, C, 3), 45), labels_of((2, 3), C, 46)
    a = f(x, y, axis=1, reduction="none", margin=0.5)
    assert_close(a, f(jnp.moveaxis(x, 1, -1), y, reduction="none", margin=0.5), LOSS[F64])
    ga = jax.grad(lambda x: f(x, y, axis=1))(x)
    gb = jax.grad(lambda x: f(jnp.moveaxis(x, 1, -1), y))(x)
    assert_close(ga, gb, GRAD[F64])


def test_eager_jit_and_vmap_agree():
    x, y = scores_of((6, C), 47), labels_of((6,), C, 48)
    s, t = scores_of((6, 3), 49), signs_of((6, 3), 50)
    cases = [
        (functools.partial(jaxent.multi_margin_loss, p=2, margin=0.7, reduction="none"), x, y),
        (functools.partial(jaxent.multiclass_hinge_loss, margin=0.7, reduction="none"), x, y),
        (functools.partial(jaxent.hinge_loss, squared=True, reduction="none"), s, t),
    ]
    for f, a, b in cases:
        eager = f(a, b)
        assert_close(jax.jit(f)(a, b), eager, LOSS[F64])
        assert_close(jax.vmap(f)(a, b), eager, LOSS[F64])
        g = jax.grad(lambda a: jnp.sum(f(a, b)))(a)
        assert_close(jax.vmap(jax.grad(lambda ai, bi: jnp.sum(f(ai, bi))))(a, b), g, GRAD[F64])


def test_empty_mean_is_zero_with_zero_gradients():
    x, y = scores_of((4, C), 51), labels_of((4,), C, 52)
    for f in MULTICLASS.values():
        for where in (jnp.zeros((4,), bool), jnp.zeros((4, C), bool)):
            loss, g = jax.value_and_grad(lambda x: f(x, y, where=where))(x)
            assert loss == 0 and np.all(g == 0)
    loss, g = jax.value_and_grad(lambda s: jaxent.hinge_loss(s, y > 2, where=jnp.zeros((4,), bool)))(x[:, 0])
    assert loss == 0 and np.all(g == 0)


def test_multi_margin_zero_class_weight_removes_nothing_from_the_mean():
    # PyTorch: "mean" divides by N, not by the weights.
    x, y = scores_of((4, C), 53), jnp.array([0, 1, 0, 2], jnp.int32)
    w = jnp.array([0.0, 1.0, 1.0, 1.0, 1.0])
    total = jaxent.multi_margin_loss(x, y, weight=w, reduction="sum")
    assert_close(jaxent.multi_margin_loss(x, y, weight=w), total / 4, LOSS[F64])


# --------------------------------------------------------------------------------------
# Infinities, extremes, out-of-range labels.


def test_infinite_scores_give_no_nan():
    inf = jnp.inf
    x = jnp.array([[-inf, 0.2, 0.5], [0.3, -inf, 1.0], [inf, 0.0, 0.1], [0.1, inf, -inf], [-inf, -inf, 0.4]])
    y = jnp.array([1, 2, 0, 0, 0], jnp.int32)
    for f in MULTICLASS.values():
        for options in (dict(), dict(margin=0.5)):
            losses = f(x, y, reduction="none", **options)
            assert not np.any(np.isnan(losses))
            # -inf competitors contribute 0 (as a very low score would); a +inf target gives 0;
            # a +inf competitor or a -inf target gives +inf.
            low = jnp.where(x[:2] == -inf, -1e30, x[:2])
            assert_close(losses[:2], MULTICLASS_REF[f.__name__](low, y[:2], reduction="none", **options), LOSS[F64])
            assert losses[2] == 0 and losses[3] == np.inf and losses[4] == np.inf
            g = jax.grad(lambda x: jnp.sum(f(x, y, reduction="none", **options)))(x)
            assert not np.any(np.isnan(g))
            assert np.all(g[4] == 0)  # the -inf target: +inf with zero gradient
    s = jnp.array([inf, -inf, inf, -inf])
    t = jnp.array([1, -1, -1, 1], jnp.int32)
    for squared in (False, True):
        losses = jaxent.hinge_loss(s, t, squared=squared, reduction="none")
        assert list(np.asarray(losses)) == [0, 0, np.inf, np.inf]
        g = jax.grad(lambda s: jnp.sum(jaxent.hinge_loss(s, t, squared=squared, reduction="none")))(s)
        assert not np.any(np.isnan(g)) and g[0] == 0 and g[1] == 0


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_large_scores(dtype):
    x, y = scores_of((5, 7), 60, scale=1e4, dtype=dtype), labels_of((5,), 7, 61)
    tol = LOSS[jnp.dtype(dtype)] if dtype == jnp.float64 else dict(rtol=1e-6, atol=2e-3)
    for fn_name, f in MULTICLASS.items():
        for options in (dict(), dict(margin=3.0)):
            loss, g = jax.value_and_grad(lambda x: f(x, y, reduction="sum", **options))(x)
            assert np.isfinite(loss) and np.all(np.isfinite(g))
            assert_close(loss, MULTICLASS_REF[fn_name](x, y, reduction="sum", **options), tol)
    s, t = x[:, 0], signs_of((5,), 62)
    loss, g = jax.value_and_grad(lambda s: jaxent.hinge_loss(s, t, squared=True))(s)
    assert np.isfinite(loss) and np.all(np.isfinite(g))
    assert_close(loss, ref.hinge_loss(s, t, squared=True), tol)


@pytest.mark.parametrize("bad", [-1, 5, 100])
def test_out_of_range_label_is_nan_never_wrapped(bad):
    x = scores_of((2, C), 63)
    y = jnp.array([bad, 1], jnp.int32)
    for f in MULTICLASS.values():
        losses = f(x, y, reduction="none")
        assert np.isnan(losses[0]) and np.isfinite(losses[1])
        assert np.isnan(f(x, y))
        g = jax.grad(lambda x: jnp.sum(f(x, y, reduction="none")))(x)
        assert np.all(np.isnan(g[0])) and np.all(np.isfinite(g[1]))
        # On a masked example it is dropped.
        assert np.isfinite(f(x, y, where=jnp.array([False, True])))


def test_checkify_names_the_offending_label_and_target():
    x, y = jnp.zeros((3, 4)), jnp.array([1, 9, 2], jnp.int32)
    for name, f in MULTICLASS.items():
        checked = checkify.checkify(jax.jit(f), errors=checkify.user_checks)
        err, _ = checked(x, y)
        with pytest.raises(checkify.JaxRuntimeError, match=rf"{name}: targets contain the label 9, outside \[0, 4\)"):
            err.throw()
        checked(x, jnp.array([1, 3, 0], jnp.int32))[0].throw()
    checked = checkify.checkify(jax.jit(jaxent.hinge_loss), errors=checkify.user_checks)
    checked(jnp.zeros(3), jnp.array([1, -1, 1]))[0].throw()
    err, _ = checked(jnp.zeros(3), jnp.array([1, 0, 1]))
    with pytest.raises(checkify.JaxRuntimeError, match=r"hinge_loss: targets must lie in \{-1, 1\}, got 0"):
        err.throw()


def test_traced_hinge_targets_outside_plus_minus_one_are_nan():
    s = jnp.array([0.3, -0.2, 0.5])
    f = jax.jit(lambda s, t: jaxent.hinge_loss(s, t, reduction="none"))
    losses = f(s, jnp.array([1.0, 0.5, -1.0]))
    assert np.isnan(losses[1]) and np.isfinite(losses[0]) and np.isfinite(losses[2])
    g = jax.jit(jax.grad(lambda s, t: jnp.sum(jaxent.hinge_loss(s, t, reduction="none"))))(s, jnp.array([1, 0, -1]))
    assert np.isnan(g[1]) and np.isfinite(g[0]) and np.isfinite(g[2])
    assert np.isnan(jax.jit(jaxent.hinge_loss)(s, jnp.array([1, 0, -1])))
    # Masked out (e.g. padding with 0): dropped, not an error.
    t, keep = jnp.array([1, 0, -1]), jnp.array([True, False, True])
    assert_close(jaxent.hinge_loss(s, t, where=keep, reduction="none"), [0.7, 0.0, 1.5], LOSS[F64])
    assert_close(jax.jit(lambda s, t, w: jaxent.hinge_loss(s, t, where=w))(s, t, keep), 1.1, LOSS[F64])


# --------------------------------------------------------------------------------------
# Half precision.


def test_multilabel_margin_long_lists_and_repeats():
    # Lists longer than one block of 8 slots (C > 16), with repeated labels (PyTorch counts a
    # repeated target twice and excludes its class once): loss and gradient against the
    # float64 pairwise reference, in reverse and forward mode.
    rng = np.random.default_rng(190)
    c = 41
    x = jnp.asarray(rng.normal(size=(6, c)))
    lists = np.full((6, c), -1)
    for n, length in enumerate([0, 3, 8, 9, 23, c]):
        lists[n, :length] = rng.integers(0, c // 2, size=length)  # repeats, as in PyTorch's tests
    lists[2, 5:] = rng.integers(-3, c, size=c - 5)  # the entries after the first -1 are ignored
    lists[2, 5] = -1
    y = jnp.asarray(lists)
    assert_close(
        jaxent.multilabel_margin_loss(x, y, reduction="none"),
        ref.multilabel_margin_loss(x, y, reduction="none"),
        LOSS[F64],
    )
    want = jax.grad(lambda x: ref.multilabel_margin_loss(x, y, reduction="sum"))(x)
    assert_close(jax.grad(lambda x: jaxent.multilabel_margin_loss(x, y, reduction="sum"))(x), want, GRAD[F64])
    tangent = jnp.asarray(rng.normal(size=x.shape))
    forward = jax.jvp(lambda x: jaxent.multilabel_margin_loss(x, y, reduction="sum"), (x,), (tangent,))[1]
    assert_close(forward, jnp.sum(want * tangent), GRAD[F64])
    # +inf scores with several blocks: of a listed label of another block (finite loss: it is
    # subtracted again, infinities counted apart), of a competitor (+inf), of a target (0).
    xi = x.at[4, int(lists[4, 20])].set(jnp.inf).at[3, c - 1].set(jnp.inf).at[5, int(lists[5, 0])].set(jnp.inf)
    got = jaxent.multilabel_margin_loss(xi, y, reduction="none")
    assert_close(got, ref.multilabel_margin_loss(xi, y, reduction="none"), LOSS[F64])
    assert np.isfinite(got[4]) and got[3] == jnp.inf
    # A NaN score is NaN for its example (never dropped from the sums), with several blocks.
    assert np.isnan(jaxent.multilabel_margin_loss(x.at[4, c - 1].set(jnp.nan), y, reduction="none")[4])
    # bfloat16 scores: the gradient is held in bfloat16 (counts this small are exact).
    xb = x.astype(jnp.bfloat16)
    gb = jax.grad(lambda x: jaxent.multilabel_margin_loss(x, y, reduction="sum"))(xb)
    wantb = jax.grad(lambda x: ref.multilabel_margin_loss(x, y, reduction="sum"))(xb.astype(jnp.float64))
    assert gb.dtype == jnp.bfloat16
    assert_close(gb, wantb, GRAD[jnp.dtype(jnp.bfloat16)])


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_half_precision_is_computed_in_float32(dtype):
    x, y = scores_of((6, 8), 70, dtype=dtype), labels_of((6,), 8, 71)
    x64 = x.astype(F64)  # the reference sees exactly the rounded inputs
    w = jnp.linspace(0.5, 2.0, 8, dtype=jnp.float32)
    cases = [
        (jaxent.multi_margin_loss, ref.multi_margin_loss, dict(p=2, weight=w, margin=0.9)),
        (jaxent.multiclass_hinge_loss, ref.multiclass_hinge_loss, dict(margin=0.9)),
    ]
    for f, r, options in cases:
        loss = f(x, y, **options)
        assert loss.dtype == jnp.float32
        assert_close(loss, r(x64, y, **options), LOSS[jnp.dtype(dtype)])
        g = jax.grad(lambda x: f(x, y, **options))(x)
        assert g.dtype == dtype
        assert_close(g, jax.grad(lambda x: r(x, y, **options))(x64), GRAD[jnp.dtype(dtype)])
    s, t = x[:, :3], signs_of((6, 3), 72)
    loss = jaxent.hinge_loss(s, t, squared=True)
    assert loss.dtype == jnp.float32
    assert_close(loss, ref.hinge_loss(s.astype(F64), t, squared=True), LOSS[jnp.dtype(dtype)])
    g = jax.grad(lambda s: jaxent.hinge_loss(s, t, squared=True))(s)
    assert g.dtype == dtype
    assert_close(g, jax.grad(lambda s: ref.hinge_loss(s, t, squared=True))(s.astype(F64)), GRAD[jnp.dtype(dtype)])


# --------------------------------------------------------------------------------------
# Bad input.

MULTICLASS_BAD_INPUTS = [
    (
        dict(targets=np.zeros((8, 5), np.int32)),
        ValueError,
        r"targets has shape \(8, 5\) but scores has shape \(8, 10\)",
    ),
    (dict(targets=np.zeros((8, 10))), TypeError, "targets must be integer class indices, got dtype float64"),
    (dict(targets=np.zeros((8,), bool)), TypeError, "targets must be integer class indices"),
    (dict(scores=np.zeros((8, 10), np.int32)), TypeError, "scores must be a floating-point array, got dtype int32"),
    (dict(reduction="avg"), ValueError, "reduction must be one of 'none', 'sum' or 'mean', got 'avg'"),
    (dict(margin=np.nan), ValueError, "margin must be a finite number, got nan"),
    (dict(margin=np.inf), ValueError, "margin must be a finite number, got inf"),
    (dict(margin=np.array([1.0, 2.0])), ValueError, "margin must be a scalar"),
    (dict(axis=2), ValueError, r"axis 2 is out of range"),
    (dict(where=np.ones((8, 3), bool)), ValueError, r"where has shape \(8, 3\) but scores has shape \(8, 10\)"),
    (dict(where=np.ones((8,))), TypeError, "where must be a boolean mask"),
]


@pytest.mark.parametrize(("kwargs", "error", "match"), MULTICLASS_BAD_INPUTS)
@pytest.mark.parametrize("fn_name", sorted(MULTICLASS))
def test_multiclass_bad_input_is_a_clear_error(fn_name, kwargs, error, match):
    args = dict(scores=np.zeros((8, 10)), targets=np.zeros((8,), np.int32))
    args.update(kwargs)
    with pytest.raises(error, match=f"{fn_name}: {match}"):
        MULTICLASS[fn_name](args.pop("scores"), args.pop("targets"), **args)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(p=3), "multi_margin_loss: p must be 1 or 2, got 3"),
        (dict(p=0), "p must be 1 or 2, got 0"),
        (dict(p=2.0), "p must be 1 or 2, got 2.0"),
        (dict(p=True), "p must be 1 or 2, got True"),
        (dict(weight=np.ones(9)), r"weight has shape \(9,\) but scores has 10 classes"),
    ],
)
def test_multi_margin_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        jaxent.multi_margin_loss(np.zeros((8, 10)), np.zeros((8,), np.int32), **kwargs)


HINGE_BAD_INPUTS = [
    (dict(targets=np.ones((8, 4))), ValueError, r"hinge_loss: targets has shape \(8, 4\) but scores has shape \(8,\)"),
    (
        dict(targets=np.array([1, 0, 1, 1, -1, 1, 1, 1])),
        ValueError,
        r"targets must lie in \{-1, 1\}, got 0; .*2 \* targets - 1",
    ),
    (dict(targets=np.full((8,), 0.5)), ValueError, r"targets must lie in \{-1, 1\}, got 0.5"),
    (dict(scores=np.zeros((8,), np.int32)), TypeError, "hinge_loss: scores must be a floating-point array"),
    (dict(targets=np.full((8,), 1 + 0j)), TypeError, "targets must be a floating, integer or boolean array"),
    (dict(squared=1), TypeError, "hinge_loss: squared must be a Python bool"),
    (dict(margin=np.nan), ValueError, "hinge_loss: margin must be a finite number"),
    (dict(where=np.ones((8, 1), bool)), ValueError, r"where has shape \(8, 1\) but scores has shape \(8,\)"),
    (dict(where=np.ones((8,), np.int32)), TypeError, "where must be a boolean mask"),
    (dict(reduction="batchmean"), ValueError, "hinge_loss: reduction must be one of"),
]


@pytest.mark.parametrize(("kwargs", "error", "match"), HINGE_BAD_INPUTS)
def test_hinge_bad_input_is_a_clear_error(kwargs, error, match):
    args = dict(scores=np.zeros((8,)), targets=np.ones((8,), np.int32))
    args.update(kwargs)
    with pytest.raises(error, match=match):
        jaxent.hinge_loss(args.pop("scores"), args.pop("targets"), **args)


def test_errors_are_raised_at_trace_time_under_jit():
    with pytest.raises(ValueError, match="p must be 1 or 2"):
        jax.jit(lambda x, y: jaxent.multi_margin_loss(x, y, p=3))(jnp.zeros((2, 3)), jnp.zeros((2,), jnp.int32))
    # Concrete targets closed over by a jitted function are still checked.
    t = jnp.array([0, 1])
    with pytest.raises(ValueError, match="targets must lie in"):
        jax.jit(lambda s: jaxent.hinge_loss(s, t))(jnp.zeros(2))


def test_traced_margin_range_is_checked_under_checkify():
    f = checkify.checkify(
        jax.jit(lambda m: jaxent.multi_margin_loss(jnp.zeros((2, 3)), jnp.array([0, 1]), margin=m)),
        errors=checkify.user_checks,
    )
    f(-0.5)[0].throw()  # negative margins are legal, as in PyTorch
    with pytest.raises(checkify.JaxRuntimeError, match="multi_margin_loss: margin must be a finite number, got nan"):
        f(jnp.nan)[0].throw()


# --------------------------------------------------------------------------------------
# Traced hyperparameters and loss objects.


def test_traced_hyperparameters_do_not_recompile():
    x, y = scores_of((4, C), 80), labels_of((4,), C, 81)
    s, t = x[:, 0], signs_of((4,), 82)
    traces = []

    @jax.jit
    def f(margin, weight):
        traces.append(1)
        return (
            jaxent.multi_margin_loss(x, y, p=2, margin=margin, weight=weight),
            jaxent.multiclass_hinge_loss(x, y, margin=margin),
            jaxent.hinge_loss(s, t, margin=margin),
        )

    weights = [jnp.asarray(np.linspace(0.5, 2.0, C) * k) for k in (1.0, 2.0, 0.5)]
    for margin, weight in zip([1.0, 0.3, -0.2], weights):
        got = f(margin, weight)
        want = (
            jaxent.multi_margin_loss(x, y, p=2, margin=margin, weight=weight),
            jaxent.multiclass_hinge_loss(x, y, margin=margin),
            jaxent.hinge_loss(s, t, margin=margin),
        )
        for a, b in zip(got, want):
            assert_close(a, b, LOSS[F64])
    assert len(traces) == 1


def test_loss_objects_equal_their_functions():
    x, y = scores_of((4, C), 83), labels_of((4,), C, 84)
    s, t = x[:, 0], signs_of((4,), 85)
    w = jnp.linspace(0.5, 2.0, C)
    mask = jnp.array([True, False, True, True])
    pairs = [
        (jaxent.MultiMarginLoss(p=2, margin=0.5, weight=w, reduction="sum"), jaxent.multi_margin_loss, (x, y)),
        (jaxent.MultiClassHingeLoss(margin=0.5, reduction="sum"), jaxent.multiclass_hinge_loss, (x, y)),
        (jaxent.HingeLoss(margin=0.5, squared=True, reduction="sum"), jaxent.hinge_loss, (s, t)),
    ]
    for loss, f, args in pairs:
        options = {k: v for k, v in dataclasses.asdict(loss).items()}
        assert_close(loss(*args), f(*args, **options), LOSS[F64])
        assert_close(loss(*args, where=mask), f(*args, where=mask, **options), LOSS[F64])
        assert_close(jax.jit(lambda loss, a, b: loss(a, b))(loss, *args), f(*args, **options), LOSS[F64])
        g = jax.grad(lambda loss: loss(*args))(loss)
        assert g.reduction == "sum" and np.shape(g.margin) == ()
        with pytest.raises(dataclasses.FrozenInstanceError):
            loss.reduction = "mean"  # type: ignore[misc]
    leaves = jax.tree_util.tree_leaves(pairs[0][0])
    assert len(leaves) == 2 and any(leaf is w for leaf in leaves)  # margin and weight; p, axis, reduction static


# --------------------------------------------------------------------------------------
# Properties.


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.floats(-5, 5), min_size=12, max_size=12),
    st.lists(st.booleans(), min_size=12, max_size=12),
    st.floats(-1, 2),
)
def test_property_hinge_nonnegative_and_zero_beyond_the_margin(raw_scores, raw_targets, margin):
    s, t = jnp.asarray(raw_scores), jnp.asarray(raw_targets)
    y = jnp.where(t, 1.0, -1.0)
    for squared in (False, True):
        losses = np.asarray(jaxent.hinge_loss(s, t, margin=margin, squared=squared, reduction="none"))
        assert np.all(losses >= 0)
        beyond = np.asarray(y * s) >= margin
        assert np.all(losses[beyond] == 0)
        if not squared:  # (a tiny violation squared may underflow to 0)
            assert np.all(losses[~beyond] > 0)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(-5, 5), min_size=12, max_size=12), st.integers(0, 3), st.floats(0, 2))
def test_property_multiclass_nonnegative_and_zero_when_separated(raw_scores, label, margin):
    x = jnp.asarray(raw_scores).reshape(3, 4)
    y = jnp.full((3,), label, jnp.int32)
    ww = jaxent.multi_margin_loss(x, y, margin=margin, reduction="none")
    cs = jaxent.multiclass_hinge_loss(x, y, margin=margin, reduction="none")
    assert np.all(np.asarray(ww) >= 0) and np.all(np.asarray(cs) >= 0)
    # Crammer–Singer is the largest Weston–Watkins term (before the division by C = 4).
    assert np.all(np.asarray(cs) <= np.asarray(ww) * 4 + 1e-12)
    # Separated by the margin (plus a little, against rounding): both are 0.
    sep = x.at[:, label].set(jnp.max(x, axis=-1) + margin + 1e-6)
    assert np.all(np.asarray(jaxent.multi_margin_loss(sep, y, margin=margin, reduction="none")) == 0)
    assert np.all(np.asarray(jaxent.multiclass_hinge_loss(sep, y, margin=margin, reduction="none")) == 0)


# --------------------------------------------------------------------------------------
# Compiled memory, forward mode and higher orders, backend neutrality.

N_BIG = programs.BIG[0]
MEMORY_CASES = [
    ("hinge_loss", "signs", dict()),
    ("hinge_loss", "bool", dict(squared=True, margin="traced", where="full")),
    ("hinge_loss", "signs", dict(squared=True, margin=0.5, where="rows")),
    ("hinge_loss", "float", dict(where="full")),
    ("multi_margin_loss", "labels", dict()),
    ("multi_margin_loss", "labels", dict(p=2, weight="C", margin="traced", where="examples")),
    ("multi_margin_loss", "labels", dict(p=1, weight="C", where="full")),
    ("multi_margin_loss", "labels", dict(p=2, where="full")),
    ("multiclass_hinge_loss", "labels", dict()),
    ("multiclass_hinge_loss", "labels", dict(margin="traced", where="full")),
    ("multiclass_hinge_loss", "labels", dict(margin=0.5, where="examples")),
]
ALL = {"hinge_loss": jaxent.hinge_loss, **MULTICLASS}


def _abstract(targets, options, shape):
    t = {
        "signs": jax.ShapeDtypeStruct(shape, jnp.int32),
        "bool": jax.ShapeDtypeStruct(shape, jnp.bool_),
        "float": jax.ShapeDtypeStruct(shape, jnp.float32),
        "labels": jax.ShapeDtypeStruct(shape[:1], jnp.int32),
    }[targets]
    arrays, static = {}, {}
    specs = {
        "traced": ((), jnp.float32),
        "C": (shape[-1:], jnp.float32),
        "full": (shape, jnp.bool_),
        "rows": (shape[:1] + (1,), jnp.bool_),
        "examples": (shape[:1], jnp.bool_),
    }
    for k, v in options.items():
        if isinstance(v, str):
            arrays[k] = jax.ShapeDtypeStruct(*specs[v])
        else:
            static[k] = v
    return t, arrays, static


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize(
    ("fn_name", "targets", "options"), MEMORY_CASES, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(MEMORY_CASES)]
)
def test_compiled_temp_memory_is_at_most_one_percent_of_the_scores(fn_name, targets, options, dtype):
    # No [N, C] temporary: forward only (every reduction) and value_and_grad in the scores,
    # in float32 and bfloat16 (no float32 copy of the scores).
    f = ALL[fn_name]
    x = jax.ShapeDtypeStruct(programs.BIG, dtype)
    t, arrays, static = _abstract(targets, options, programs.BIG)
    bound = programs.one_percent_of_f32(programs.BIG)
    for reduction in REDUCTIONS:
        loss = functools.partial(lambda r, x, t, a: f(x, t, reduction=r, **a, **static), reduction)
        assert programs.temp_bytes(loss, x, t, arrays) <= bound, ("forward", reduction)
        if reduction != "none":
            assert programs.temp_bytes(jax.value_and_grad(loss), x, t, arrays) <= bound, ("fwd+bwd", reduction)


TRANSFORM_CASES = [
    ("hinge_loss", dict()),
    ("hinge_loss", dict(squared=True, margin=0.7)),
    ("multi_margin_loss", dict()),
    ("multi_margin_loss", dict(p=2, weight=jnp.linspace(0.5, 2.0, C), margin=0.8)),
    ("multiclass_hinge_loss", dict()),
    ("multiclass_hinge_loss", dict(margin=2.5)),
]


@pytest.mark.parametrize(("fn_name", "options"), TRANSFORM_CASES)
def test_forward_mode_and_higher_orders(fn_name, options):
    # (Integer and ±1 targets have no derivative: everything is in the scores.)
    if fn_name == "hinge_loss":
        x, y = scores_of((3, 4), 100), signs_of((3, 4), 101)
        where = jnp.array([[True, False, True, True]] * 3)
    else:
        x, y = scores_of((3, C), 102), jnp.array([0, 3, 4], jnp.int32)  # (no target on the masked class)
        where = jnp.array([[True, True, False, True, True]] * 3)
    f = jax.jit(lambda x: ALL[fn_name](x, y, where=where, **options))
    # check_grads in both modes to second order (the seeded scores are away from the kinks).
    check_grads(f, (x,), order=2, modes=["fwd", "rev"])
    dx = scores_of(x.shape, 104)
    value, tangent = jax.jvp(f, (x,), (dx,))
    g = jax.grad(f)(x)
    assert_close(value, f(x), LOSS[F64])
    assert_close(tangent, jnp.sum(g * dx), GRAD[F64])
    _, linear = jax.linearize(f, x)
    assert_close(linear(dx), tangent, GRAD[F64])
    assert_close(jax.jacfwd(f)(x), g, GRAD[F64])
    hess = jax.hessian(f)(x)
    assert np.all(np.isfinite(hess))
    assert_close(hess, jax.jacrev(jax.jacfwd(f))(x), GRAD[F64])
    assert_close(jax.grad(lambda x: jnp.sum(jax.grad(f)(x) ** 2))(x), 2 * jnp.einsum("ij,ijkl->kl", g, hess), GRAD[F64])


def test_tied_competitors_share_the_gradient_in_forward_and_reverse_mode():
    x = jnp.array([[0.5, 2.0, 2.0, 0.1], [1.0, 1.0, 1.0, 1.0]])
    y = jnp.array([0, 3], jnp.int32)
    f = lambda x: jaxent.multiclass_hinge_loss(x, y, reduction="sum")
    g = jax.grad(f)(x)
    assert_close(g, [[-1.0, 0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3, -1.0]], LOSS[F64])
    assert_close(jax.jacfwd(f)(x), g, LOSS[F64])
    assert_close(g, jax.grad(lambda x: ref.multiclass_hinge_loss(x, y, reduction="sum"))(x), LOSS[F64])


@pytest.mark.parametrize("fn_name", sorted(ALL))
def test_programs_are_backend_neutral(fn_name):
    x = scores_of((8, C), 105, dtype=jnp.float32)
    y = signs_of((8, C), 106) if fn_name == "hinge_loss" else labels_of((8,), C, 107)
    options = dict(margin=0.5) if fn_name != "multi_margin_loss" else dict(p=2, weight=jnp.ones(C, jnp.float32))
    for where in (None, x > -1.0):
        f = lambda x, y: ALL[fn_name](x, y, where=where, **options)
        for g in (f, jax.value_and_grad(f)):
            programs.assert_backend_neutral(g, x, y)


def test_label_checks_carry_no_effect_outside_checkify():
    # The label and target checks cost nothing in an ordinary jitted call (no effect, so
    # JAX's fast dispatch path), and still name the value under checkify, also under vmap.
    x, y = jnp.zeros((3, 4)), jnp.array([1, 2, 0], jnp.int32)
    for f in MULTICLASS.values():
        assert not jax.make_jaxpr(f)(x, y).effects
        assert not jax.make_jaxpr(jax.value_and_grad(f))(x, y).effects
    assert not jax.make_jaxpr(jaxent.hinge_loss)(x, jnp.ones((3, 4), jnp.int32)).effects
    checked = checkify.checkify(jax.jit(jax.vmap(jaxent.multi_margin_loss)), errors=checkify.user_checks)
    with pytest.raises(checkify.JaxRuntimeError, match=r"targets contain the label 7, outside \[0, 4\)"):
        checked(jnp.zeros((2, 3, 4)), jnp.array([[1, 2, 0], [1, 7, 0]], jnp.int32))[0].throw()
    checked(jnp.zeros((2, 3, 4)), jnp.array([[1, 2, 0], [1, 3, 0]], jnp.int32))[0].throw()


# ======================================================================================
# Issue 15: perceptron_loss, multiclass_perceptron_loss (optax), soft_margin_loss,
# multilabel_soft_margin_loss, multilabel_margin_loss (PyTorch).


def label_lists_of(shape, seed):
    """PyTorch-style -1-terminated class lists of ``shape`` [..., C] (some rows empty, some repeats)."""
    rng = np.random.default_rng(seed)
    c = shape[-1]
    out = np.full(shape, -1, np.int32)
    for idx in np.ndindex(shape[:-1]):
        k = rng.integers(0, c)
        out[idx][:k] = rng.choice(c, size=k, replace=bool(rng.random() < 0.3))
        out[idx][k + 1 :] = rng.integers(-1, c, size=c - k - 1)  # after the -1: ignored
    return jnp.asarray(out)


NEW_REF = {
    "perceptron_loss": ref.perceptron_loss,
    "multiclass_perceptron_loss": ref.multiclass_perceptron_loss,
    "soft_margin_loss": ref.soft_margin_loss,
    "multilabel_soft_margin_loss": ref.multilabel_soft_margin_loss,
    "multilabel_margin_loss": ref.multilabel_margin_loss,
}


def new_case(name, seed=120, shape=(4, C), **options):
    x = scores_of(shape, seed)
    if name in ("perceptron_loss", "soft_margin_loss"):
        return x, signs_of(shape, seed + 1), options
    if name == "multiclass_perceptron_loss":
        axis = options.get("axis", -1) % len(shape)
        batch = tuple(d for a, d in enumerate(shape) if a != axis)
        return x, labels_of(batch, shape[axis], seed + 1), options
    if name == "multilabel_soft_margin_loss":
        return x, jnp.asarray(np.random.default_rng(seed + 1).random(shape) > 0.5).astype(jnp.float64), options
    if options.get("axis", -1) % len(shape) == 0:  # lists along axis 0
        return x, label_lists_of(shape[::-1], seed + 1).T, options
    return x, label_lists_of(shape, seed + 1), options


NEW_CONFIGS = [
    ("perceptron_loss", {}),
    ("multiclass_perceptron_loss", {}),
    ("multiclass_perceptron_loss", {"axis": 0}),
    ("soft_margin_loss", {}),
    ("multilabel_soft_margin_loss", {}),
    ("multilabel_soft_margin_loss", {"weight": "C"}),
    ("multilabel_soft_margin_loss", {"weight": "full", "axis": 0}),
    ("multilabel_margin_loss", {}),
    ("multilabel_margin_loss", {"axis": 0}),
]


def _options(name, options, shape):
    out = dict(options)
    rng = np.random.default_rng(7)
    if out.get("weight") == "C":
        out["weight"] = jnp.asarray(rng.uniform(-1.0, 2.0, shape[-1]))  # PyTorch allows negative weights
    elif out.get("weight") == "full":
        out["weight"] = jnp.asarray(rng.uniform(0.2, 2.0, shape))
    return out


def test_new_golden_values():
    tol = dict(rtol=1e-6, atol=1e-6)
    assert_close(jaxent.perceptron_loss(jnp.array([0.3, -2.0, 0.5]), jnp.array([1, 1, -1]), reduction="sum"), 2.5, tol)
    s, y = jnp.array([[0.1, 0.2, 0.4, 0.8]]), jnp.array([2])
    assert_close(jaxent.multiclass_perceptron_loss(s, y), 0.4, tol)  # max - s_y
    assert_close(jaxent.multiclass_perceptron_loss(s, jnp.array([3])), 0.0, tol)
    assert_close(
        jaxent.soft_margin_loss(jnp.array([0.0, 2.0]), jnp.array([1, -1]), reduction="sum"),
        np.log(2) + np.log1p(np.exp(2.0)),
        tol,
    )
    # (3 vs {1, 2}: 0.4 + 0.6; 0 vs {1, 2}: 1.1 + 1.3) / 4 classes.
    assert_close(jaxent.multilabel_margin_loss(s, jnp.array([[3, 0, -1, 1]])), 0.85, tol)
    assert_close(jaxent.multilabel_soft_margin_loss(jnp.zeros((1, 2)), jnp.array([[1.0, 0.0]])), np.log(2), tol)


@pytest.mark.parametrize(("name", "options"), NEW_CONFIGS)
def test_new_losses_match_float64_reference(name, options):
    x, y, _ = new_case(name, **options)
    options = _options(name, options, x.shape)
    f, r = getattr(jaxent, name), NEW_REF[name]
    axis = options.get("axis", -1)
    batch = tuple(d for a, d in enumerate(x.shape) if a != axis % x.ndim)
    if name in ("perceptron_loss", "soft_margin_loss"):
        masks = [None, jnp.asarray(np.random.default_rng(8).random(x.shape) > 0.3)]
    elif name == "multilabel_margin_loss":
        masks = [None, jnp.asarray(np.random.default_rng(8).random(batch) > 0.3)]
    else:
        masks = [None, jnp.asarray(np.random.default_rng(8).random(batch) > 0.3)]
        if name == "multilabel_soft_margin_loss":  # (a label mask; a multiclass target on a masked class is +inf)
            masks.append(jnp.asarray(np.random.default_rng(9).random(x.shape) > 0.3))

    @jax.jit
    def both(x):
        out = []
        for where in masks:
            for reduction in REDUCTIONS:
                k = dict(options, where=where, reduction=reduction)
                out.append(
                    (
                        f(x, y, **k),
                        r(x, y, **k),
                        jax.grad(lambda x: jnp.sum(f(x, y, **k)))(x),
                        jax.grad(lambda x: jnp.sum(r(x, y, **k)))(x),
                    )
                )
        return out

    for got, want, g, gw in both(x):
        assert_close(got, want, LOSS[F64])
        assert_close(g, gw, GRAD[F64])
    where = masks[1]
    check_grads(jax.jit(lambda x: f(x, y, where=where, **options)), (x,), order=2, modes=["fwd", "rev"])


def _torch_own_cases(torch):
    """PyTorch's own test inputs: ``common_modules.module_db`` and ``common_methods_invocations.op_db``."""
    return torch_cases.module_and_op_db()


OWN = {
    "SoftMarginLoss": "soft_margin_loss",
    "MultiLabelSoftMarginLoss": "multilabel_soft_margin_loss",
    "MultiLabelMarginLoss": "multilabel_margin_loss",
}
OWN_COUNTS = {"soft_margin_loss": 10, "multilabel_soft_margin_loss": 9, "multilabel_margin_loss": 13}


def test_new_losses_match_torch_on_every_option_and_its_own_test_inputs(torch):
    # Our grid of options, then every module_db and op_db case of the three PyTorch losses
    # (float64): values, and gradients in the scores.
    F = torch.nn.functional
    cases = []
    for name, options in NEW_CONFIGS:
        if name in OWN.values() and options.get("axis", -1) == -1:
            x, y, _ = new_case(name, seed=130)
            options = _options(name, options, x.shape)
            for reduction in REDUCTIONS:
                cases.append((name, np.asarray(x), np.asarray(y), dict(options, reduction=reduction), False))
    module_db, op_db = _torch_own_cases(torch)
    for info in module_db:
        name = OWN.get(info.module_cls.__name__)
        if name is not None:
            for mi in info.module_inputs_func(
                info, device="cpu", dtype=torch.float64, requires_grad=False, training=True
            ):
                x, y = (a.detach().numpy() for a in mi.forward_input.args)
                cases.append((name, x, y, dict(mi.constructor_input.kwargs), True))
    for op in op_db:
        name = op.name.removeprefix("nn.functional.")
        if name in OWN.values():
            for s in op.sample_inputs("cpu", torch.float64, requires_grad=False):
                if name == "multilabel_margin_loss" and s.input.ndim == 0:  # (PyTorch: one class; jaxent: an error)
                    continue
                cases.append((name, s.input.detach().numpy(), s.args[0].detach().numpy(), dict(s.kwargs), True))
    counts = {n: sum(c[0] == n and c[4] for c in cases) for n in OWN.values()}
    assert counts == OWN_COUNTS, sorted(counts.items())
    for name, x, y, options, _ in cases:
        kwargs = {k: (v.detach().numpy() if hasattr(v, "detach") else v) for k, v in options.items()}
        f = lambda x: getattr(jaxent, name)(x, jnp.asarray(y), **kwargs)
        value, grad = f(jnp.asarray(x)), jax.grad(lambda x: jnp.sum(f(x)))(jnp.asarray(x))
        tx = torch_of(torch, x, grad=True)
        tkw = {k: (torch_of(torch, v) if isinstance(v, (np.ndarray, jax.Array)) else v) for k, v in kwargs.items()}
        ty = torch.tensor(np.asarray(y)).long() if name == "multilabel_margin_loss" else torch_of(torch, y)
        want = getattr(F, name)(tx, ty, **tkw)
        assert value.shape == tuple(want.shape), name
        assert_close(value, want.detach().numpy(), PARITY)
        want.sum().backward()
        assert_close(grad, tx.grad.numpy(), PARITY)


def test_new_losses_match_optax():
    s, t = scores_of((4, 6), 140), signs_of((4, 6), 141)
    x, y = scores_of((3, 4, C), 142), labels_of((3, 4), C, 143)
    tf = t.astype(jnp.float64)
    x = x.at[0, 0, 1].set(x[0, 0, y[0, 0]] + 0.3)  # (a competitor above the target)
    assert_close(jaxent.perceptron_loss(s, t, reduction="none"), optax.losses.perceptron_loss(s, tf), PARITY)
    want = optax.losses.multiclass_perceptron_loss(x, y)
    assert_close(jaxent.multiclass_perceptron_loss(x, y, reduction="none"), want, PARITY)
    g = jax.grad(lambda s: jaxent.perceptron_loss(s, t, reduction="sum"))(s)
    assert_close(g, jax.grad(lambda s: jnp.sum(optax.losses.perceptron_loss(s, tf)))(s), PARITY)
    g = jax.grad(lambda x: jaxent.multiclass_perceptron_loss(x, y, reduction="sum"))(x)
    assert_close(g, jax.grad(lambda x: jnp.sum(optax.losses.multiclass_perceptron_loss(x, y)))(x), PARITY)
    # multilabel_soft_margin_loss is optax's sigmoid BCE averaged over the labels.
    q = (scores_of((4, 6), 144) > 0).astype(jnp.float64)
    want = jnp.mean(optax.losses.sigmoid_binary_cross_entropy(s, q), axis=-1)
    assert_close(jaxent.multilabel_soft_margin_loss(s, q, reduction="none"), want, PARITY)


def test_new_losses_where_axis_transforms_and_empty_means():
    x = scores_of((6, C), 150)
    lists, labels, signs = label_lists_of((6, C), 151), labels_of((6,), C, 152), signs_of((6, C), 153)
    multi = (x > 0).astype(jnp.float64)
    keep = np.array([1, 0, 1, 1, 0, 1], bool)
    rows = [
        (jaxent.multiclass_perceptron_loss, labels),
        (jaxent.multilabel_soft_margin_loss, multi),
        (jaxent.multilabel_margin_loss, lists),
    ]

    @jax.jit
    def run(x):
        out = []
        for f, y in rows:
            k = dict(where=jnp.asarray(keep))
            out.append(
                (
                    f(x, y, **k),
                    f(x[keep], y[keep]),
                    jax.grad(lambda x: f(x, y, **k))(x),
                    f(x.T, y.T if y.ndim == 2 else y, axis=0, reduction="none"),
                    f(x, y, reduction="none"),
                    jax.vmap(functools.partial(f, reduction="none"))(x, y),
                    jax.value_and_grad(lambda x: f(x, y, where=jnp.zeros((6,), bool)))(x),
                )
            )
        for f in (jaxent.perceptron_loss, jaxent.soft_margin_loss):
            m = jnp.asarray(keep)[:, None] & (signs > -2)
            out.append(
                (
                    f(x, signs, where=m),
                    f(x[keep], signs[keep]),
                    jax.grad(lambda x: f(x, signs, where=m))(x),
                    f(x, signs, reduction="none"),
                    f(x, signs, reduction="none"),
                    jax.vmap(functools.partial(f, reduction="none"))(x, signs),
                    jax.value_and_grad(lambda x: f(x, signs, where=jnp.zeros((6, C), bool)))(x),
                )
            )
        return out

    for masked, indexed, g, moved, plain, mapped, (empty, g_empty) in run(x):
        assert_close(masked, indexed, LOSS[F64])
        assert np.all(np.asarray(g)[~keep] == 0)
        assert_close(moved, plain, LOSS[F64])
        assert_close(mapped, plain, LOSS[F64])
        assert empty == 0 and np.all(g_empty == 0)
    # A label mask of multilabel_soft_margin_loss removes those labels (C counts the rest).
    lm = jnp.broadcast_to(jnp.array([True, False, True, True, False]), x.shape)
    got = jaxent.multilabel_soft_margin_loss(x, multi, where=lm, reduction="none")
    assert_close(got, jaxent.multilabel_soft_margin_loss(x[:, lm[0]], multi[:, lm[0]], reduction="none"), LOSS[F64])


def test_new_losses_infinities_out_of_range_and_kinks():
    inf = jnp.inf
    s, t = jnp.array([inf, -inf, inf, -inf]), jnp.array([1, -1, -1, 1])
    for f in (jaxent.perceptron_loss, jaxent.soft_margin_loss):
        losses = f(s, t, reduction="none")
        assert list(np.asarray(losses)) == [0, 0, inf, inf]
        g = jax.grad(lambda s: f(s, t, reduction="sum"))(s)
        assert not np.any(np.isnan(g)) and g[0] == 0 and g[1] == 0
    x = jnp.array([[inf, 0.0, -inf], [0.2, -inf, 0.1]])
    losses = jaxent.multilabel_soft_margin_loss(x, jnp.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]), reduction="none")
    assert np.all(np.isfinite(losses))
    lists = jnp.array([[0, -1, 2], [2, 0, -1]])
    losses = jaxent.multilabel_margin_loss(jnp.array([[inf, 0.0, 1.0], [0.0, 5.0, -inf]]), lists, reduction="none")
    assert losses[0] == 0 and losses[1] == inf
    # A listed label outside [0, C) is NaN for its example, and named under checkify.
    bad = jnp.array([[0, 7, -1], [1, -1, 9]])  # the 9 comes after the -1: ignored
    losses = jaxent.multilabel_margin_loss(jnp.zeros((2, 3)), bad, reduction="none")
    assert np.isnan(losses[0]) and np.isfinite(losses[1])
    checked = checkify.checkify(jax.jit(jaxent.multilabel_margin_loss), errors=checkify.user_checks)
    with pytest.raises(
        checkify.JaxRuntimeError, match=r"multilabel_margin_loss: targets contain a label outside \[0, 3\)"
    ):
        checked(jnp.zeros((2, 3)), bad)[0].throw()
    # Kinks: perceptron at s = 0 has gradient 0; multilabel margin at z = 0 too (PyTorch's z > 0).
    assert jax.grad(lambda s: jaxent.perceptron_loss(s, 1))(0.0) == 0
    g = jax.grad(lambda x: jaxent.multilabel_margin_loss(x, jnp.array([[1, -1, 0]])))(jnp.array([[0.0, 1.0, 0.5]]))
    assert_close(g, [[0.0, -1 / 3, 1 / 3]], LOSS[F64])  # class 0 at the kink z = 0: no gradient


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_new_losses_half_precision(dtype):
    x = scores_of((6, C), 160, dtype=dtype)
    x64 = x.astype(F64)
    cases = [(name, *new_case(name, seed=161, shape=(6, C))[1:2]) for name in NEW_REF]
    for name, y in cases:
        f, r = getattr(jaxent, name), NEW_REF[name]
        loss, g = jax.value_and_grad(lambda x: f(x, y))(x)
        assert loss.dtype == jnp.float32 and g.dtype == dtype, name
        assert_close(loss, r(x64, y), LOSS[jnp.dtype(dtype)])
        assert_close(g, jax.grad(lambda x: r(x, y))(x64), GRAD[jnp.dtype(dtype)])


NEW_BAD_INPUTS = [
    ("perceptron_loss", dict(targets=np.zeros((8, 4))), ValueError, r"perceptron_loss: targets must lie in \{-1, 1\}"),
    ("perceptron_loss", dict(reduction="avg"), ValueError, "perceptron_loss: reduction must be one of"),
    (
        "multiclass_perceptron_loss",
        dict(targets=np.zeros((8, 4))),
        TypeError,
        "multiclass_perceptron_loss: targets must be integer class indices",
    ),
    ("soft_margin_loss", dict(targets=np.ones((8,))), ValueError, r"soft_margin_loss: targets has shape \(8,\)"),
    (
        "soft_margin_loss",
        dict(scores=np.ones((8, 4), np.int32)),
        TypeError,
        "soft_margin_loss: scores must be a floating",
    ),
    (
        "multilabel_soft_margin_loss",
        dict(weight=np.ones((3,))),
        ValueError,
        r"multilabel_soft_margin_loss: weight has shape \(3,\)",
    ),
    (
        "multilabel_soft_margin_loss",
        dict(where=np.ones((4,), bool)),
        ValueError,
        r"multilabel_soft_margin_loss: where has shape \(4,\) but scores has shape \(8, 4\)",
    ),
    ("multilabel_soft_margin_loss", dict(where=np.ones((8,))), TypeError, "where must be a boolean mask"),
    (
        "multilabel_margin_loss",
        dict(targets=np.ones((8, 4))),
        TypeError,
        "multilabel_margin_loss: targets must be integer class lists",
    ),
    (
        "multilabel_margin_loss",
        dict(targets=np.ones((8,), np.int32)),
        ValueError,
        r"multilabel_margin_loss: targets has shape \(8,\) but scores has shape \(8, 4\)",
    ),
    ("multilabel_margin_loss", dict(axis=(0, 1)), TypeError, "multilabel_margin_loss: axis must be an int"),
    ("multilabel_margin_loss", dict(where=np.ones((8, 4), bool)), ValueError, "only a batch mask"),
]


@pytest.mark.parametrize(("name", "kwargs", "error", "match"), NEW_BAD_INPUTS)
def test_new_losses_bad_input_is_a_clear_error(name, kwargs, error, match):
    targets = {
        "multiclass_perceptron_loss": np.zeros((8,), np.int32),
        "multilabel_margin_loss": -np.ones((8, 4), np.int32),
    }
    args = dict(scores=np.zeros((8, 4)), targets=targets.get(name, np.ones((8, 4))))
    args.update(kwargs)
    with pytest.raises(error, match=match):
        getattr(jaxent, name)(args.pop("scores"), args.pop("targets"), **args)


def test_new_loss_objects_equal_their_functions():
    x = scores_of((4, C), 170)
    w = jnp.linspace(0.5, 2.0, C)
    pairs = [
        (jaxent.PerceptronLoss(reduction="sum"), signs_of((4, C), 171), 0),
        (jaxent.MultiClassPerceptronLoss(reduction="sum"), labels_of((4,), C, 172), 0),
        (jaxent.SoftMarginLoss(), signs_of((4, C), 173), 0),
        (jaxent.MultiLabelSoftMarginLoss(weight=w, reduction="none"), (x > 0).astype(jnp.float64), 1),
        (jaxent.MultiLabelMarginLoss(reduction="sum"), label_lists_of((4, C), 174), 0),
    ]
    got = jax.jit(lambda objects, x: [o(x, y) for o, (_, y, _) in zip(objects, pairs)])([p[0] for p in pairs], x)
    for (loss, y, n_leaves), value in zip(pairs, got):
        assert_close(value, loss.function(x, y, **dataclasses.asdict(loss)), LOSS[F64])
        assert len(jax.tree_util.tree_leaves(loss)) == n_leaves
        with pytest.raises(dataclasses.FrozenInstanceError):
            loss.reduction = "mean"  # type: ignore[misc]


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["f32", "bf16"])
def test_new_losses_compiled_temp_memory(dtype):
    # Elementwise and per-row losses: at most 1% of one float32 [N, C] buffer, forward and
    # value_and_grad in the scores.
    x = jax.ShapeDtypeStruct(programs.BIG, dtype)
    bound = programs.one_percent_of_f32(programs.BIG)
    cases = [
        (jaxent.perceptron_loss, jax.ShapeDtypeStruct(programs.BIG, jnp.bool_)),
        (jaxent.soft_margin_loss, jax.ShapeDtypeStruct(programs.BIG, jnp.int32)),
        (jaxent.multilabel_soft_margin_loss, jax.ShapeDtypeStruct(programs.BIG, jnp.float32)),
        (jaxent.multiclass_perceptron_loss, jax.ShapeDtypeStruct(programs.BIG[:1], jnp.int32)),
        (jaxent.multilabel_margin_loss, jax.ShapeDtypeStruct(programs.BIG, jnp.int32)),
    ]
    for f, t in cases:
        assert programs.temp_bytes(f, x, t) <= bound, f.__name__
        assert programs.temp_bytes(jax.value_and_grad(f), x, t) <= bound, f.__name__


def test_new_losses_programs_are_backend_neutral():
    x = scores_of((8, C), 180, dtype=jnp.float32)
    for name in NEW_REF:
        y = new_case(name, seed=181, shape=(8, C))[1]
        f = lambda x: getattr(jaxent, name)(x, y)
        for g in (f, jax.value_and_grad(f)):
            programs.assert_backend_neutral(g, x)
