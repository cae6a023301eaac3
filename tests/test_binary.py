"""binary_cross_entropy_with_logits, binary_cross_entropy and sigmoid_focal_loss against
float64 references, PyTorch and optax."""

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
from hypothesis.extra import numpy as hnp
from jax.experimental import checkify
from jax.test_util import check_grads

import jaxent
from tests import programs
from tests import references as ref
from tests.tolerances import GRAD, LOSS, PARITY, assert_close

REDUCTIONS = ("none", "sum", "mean")
F64 = jnp.dtype(jnp.float64)
INF = np.inf


def logits_of(shape, seed=0, scale=2.0, dtype=jnp.float64):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape) * scale).astype(dtype)


def soft_targets_of(shape, seed=1, dtype=jnp.float64, low=0.0, high=1.0):
    return jnp.asarray(np.random.default_rng(seed).uniform(low, high, size=shape)).astype(dtype)


def hard_targets_of(shape, seed=1, dtype=jnp.float64):
    return jnp.asarray(np.random.default_rng(seed).integers(0, 2, size=shape)).astype(dtype)


def positive_of(shape, seed=2, low=0.2, high=2.0):
    return jnp.asarray(np.random.default_rng(seed).uniform(low, high, size=shape))


def torch_of(torch, a, grad=False):
    t = torch.tensor(np.asarray(a, np.float64))
    return t.requires_grad_(True) if grad else t


# --------------------------------------------------------------------------------------
# Golden values.


def test_golden_values_bce_with_logits():
    # loss-semantics.md §3.6, from torch: x=[0.3, -1.2], y=[1, 0.3], pos_weight=[3, 2], weight=[0.5, 2].
    x, y = jnp.array([0.3, -1.2]), jnp.array([1.0, 0.3])
    out = jaxent.binary_cross_entropy_with_logits(
        x, y, weight=jnp.array([0.5, 2.0]), pos_weight=jnp.array([3.0, 2.0]), reduction="none"
    )
    assert_close(out, [0.8315328667027907, 2.124534415078881], LOSS[F64])
    # Keras BinaryCrossentropy(from_logits=True) docstring.
    keras = jaxent.binary_cross_entropy_with_logits(
        jnp.array([-18.6, 0.51, 2.94, -12.8], jnp.float32), jnp.array([0, 1, 0, 0], jnp.float32)
    )
    assert keras.dtype == jnp.float32
    assert_close(keras, 0.8654, dict(rtol=0, atol=1e-4))  # the docstring shows 4 digits
    assert_close(keras, 0.8654579497810974, dict(rtol=1e-6, atol=0))  # torch, float64
    # torch BCEWithLogitsLoss(pos_weight=ones) docstring.
    torch_doc = jaxent.binary_cross_entropy_with_logits(jnp.array([1.5]), jnp.array([1.0]), pos_weight=jnp.ones(1))
    assert_close(torch_doc, 0.2014, dict(rtol=0, atol=5e-5))


def test_golden_values_sigmoid_focal_loss():
    # optax (gamma=2), loss-semantics.md §3.12.
    x, y = jnp.array([2.0, -1.0]), jnp.array([1.0, 0.0])
    tol = dict(rtol=0, atol=5e-8)
    assert_close(jaxent.sigmoid_focal_loss(x, y, reduction="none"), [0.0018036, 0.0226581], tol)
    assert_close(jaxent.sigmoid_focal_loss(x, y, alpha=0.25, reduction="none"), [0.0004509, 0.0169935], tol)


def test_golden_values_bce_on_probabilities():
    p, y = jnp.array([0.8, 0.3, 0.0, 1.0, 0.0]), jnp.array([1.0, 0.0, 1.0, 0.0, 0.0])
    want = [-np.log(0.8), -np.log(0.7), 100.0, 100.0, 0.0]
    assert_close(jaxent.binary_cross_entropy(p, y, reduction="none"), want, LOSS[F64])


# --------------------------------------------------------------------------------------
# PyTorch parity.

N, K, C = 4, 3, 5
BCE_CONFIGS = {
    "plain": dict(),
    "weight_last_axis": dict(weight=(C,)),
    "weight_full": dict(weight="full"),
    "pos_weight": dict(pos_weight=(C,)),
    "weight_and_pos_weight": dict(weight=(C,), pos_weight=(C,)),
    "pos_weight_full": dict(pos_weight="full", weight=(1,)),
}


def _bce_case(name, shape, seed=0):
    options = {}
    for i, (k, spec) in enumerate(BCE_CONFIGS[name].items()):
        options[k] = positive_of(shape if spec == "full" else spec, seed + 10 + i)
    return logits_of(shape, seed), soft_targets_of(shape, seed + 1), options


@pytest.mark.parametrize("shape", [(N, C), (N, K, C)], ids=["NC", "NKC"])
@pytest.mark.parametrize("name", sorted(BCE_CONFIGS))
def test_bce_with_logits_matches_torch(torch, name, shape):
    x, y, options = _bce_case(name, shape)
    t_opts = {k: torch_of(torch, v) for k, v in options.items()}
    for reduction in REDUCTIONS:
        got = jaxent.binary_cross_entropy_with_logits(x, y, reduction=reduction, **options)
        tx, ty = torch_of(torch, x, grad=True), torch_of(torch, y, grad=True)
        want = torch.nn.functional.binary_cross_entropy_with_logits(tx, ty, reduction=reduction, **t_opts)
        assert got.shape == tuple(want.shape)
        assert_close(got, want.detach().numpy(), PARITY)
        # Gradients in logits and (soft) targets against torch's autograd.
        want.sum().backward()
        gx, gy = jax.grad(
            lambda x, y: jnp.sum(jaxent.binary_cross_entropy_with_logits(x, y, reduction=reduction, **options)), (0, 1)
        )(x, y)
        assert_close(gx, tx.grad.numpy(), PARITY)
        assert_close(gy, ty.grad.numpy(), PARITY)


def test_pos_weight_broadcasts_like_torch(torch):
    # A per-channel pos_weight (K, 1) on an (N, K, C) input, PyTorch's [C, 1, 1] recipe.
    x, y = logits_of((N, K, C), 3), hard_targets_of((N, K, C), 4)
    pw = positive_of((K, 1), 5)
    got = jaxent.binary_cross_entropy_with_logits(x, y, pos_weight=pw, reduction="none")
    want = torch.nn.functional.binary_cross_entropy_with_logits(
        torch_of(torch, x), torch_of(torch, y), pos_weight=torch_of(torch, pw), reduction="none"
    )
    assert_close(got, want.numpy(), PARITY)


@pytest.mark.parametrize("weighted", [False, True])
def test_bce_on_probabilities_matches_torch(torch, weighted):
    p = jnp.asarray(np.random.default_rng(6).uniform(0.01, 0.99, size=(N, C)))
    y = soft_targets_of((N, C), 7)
    weight = positive_of((C,), 8) if weighted else None
    for reduction in REDUCTIONS:
        got = jaxent.binary_cross_entropy(p, y, weight=weight, reduction=reduction)
        tp, ty = torch_of(torch, p, grad=True), torch_of(torch, y, grad=True)
        want = torch.nn.functional.binary_cross_entropy(
            tp, ty, weight=None if weight is None else torch_of(torch, weight), reduction=reduction
        )
        assert_close(got, want.detach().numpy(), PARITY)
        want.sum().backward()
        gp, gy = jax.grad(
            lambda p, y: jnp.sum(jaxent.binary_cross_entropy(p, y, weight=weight, reduction=reduction)), (0, 1)
        )(p, y)
        assert_close(gp, tp.grad.numpy(), PARITY)
        assert_close(gy, ty.grad.numpy(), PARITY)


def test_bce_on_probabilities_clamp_and_endpoint_gradients_match_torch(torch):
    # Probabilities exactly 0 and 1 and in the clamped range (log p < -100).
    p = jnp.array([0.0, 0.0, 1.0, 1.0, 1e-50, 1.0 - 1e-16, 0.3, 0.0])
    y = jnp.array([0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.6, 0.25])
    w = positive_of((8,), 9)
    tp = torch_of(torch, p, grad=True)
    want = torch.nn.functional.binary_cross_entropy(tp, torch_of(torch, y), weight=torch_of(torch, w), reduction="none")
    want.sum().backward()
    got, grad = jax.value_and_grad(lambda p: jnp.sum(jaxent.binary_cross_entropy(p, y, weight=w, reduction="none")))(p)
    assert_close(jaxent.binary_cross_entropy(p, y, weight=w, reduction="none"), want.detach().numpy(), PARITY)
    assert np.all(np.asarray(jaxent.binary_cross_entropy(p, y, reduction="none")) <= 100)
    assert_close(grad, tp.grad.numpy(), PARITY)  # includes ±1e12 at the endpoints
    assert np.isfinite(got)
    # Target gradients: the derivative of the clamped value, finite where torch's -logit(p) is ±inf.
    gy = jax.grad(lambda y: jnp.sum(jaxent.binary_cross_entropy(p, y, reduction="none")))(y)
    want_gy = jnp.maximum(jnp.log1p(-p), -100) - jnp.maximum(jnp.log(p), -100)
    assert np.all(np.isfinite(gy))
    assert_close(gy, want_gy, LOSS[F64])


# --------------------------------------------------------------------------------------
# optax parity.


def test_bce_with_logits_matches_optax():
    x, y = logits_of((N, K, C), 11), soft_targets_of((N, K, C), 12)
    assert_close(
        jaxent.binary_cross_entropy_with_logits(x, y, reduction="none"),
        optax.losses.sigmoid_binary_cross_entropy(x, y),
        PARITY,
    )
    got = jax.grad(lambda x, y: jaxent.binary_cross_entropy_with_logits(x, y, reduction="sum"), (0, 1))(x, y)
    want = jax.grad(lambda x, y: jnp.sum(optax.losses.sigmoid_binary_cross_entropy(x, y)), (0, 1))(x, y)
    for a, b in zip(got, want):
        assert_close(a, b, PARITY)


@pytest.mark.parametrize("alpha", [None, 0.25])
def test_sigmoid_focal_loss_matches_optax(alpha):
    x, y = logits_of((N, C), 13, scale=3.0), soft_targets_of((N, C), 14)
    f = lambda x, y, g: jaxent.sigmoid_focal_loss(x, y, gamma=g, alpha=alpha, reduction="none")
    o = lambda x, y, g: optax.losses.sigmoid_focal_loss(x, y, gamma=g, alpha=alpha)
    ours = jax.jit(lambda *a: (f(*a), jax.grad(lambda *a: jnp.sum(f(*a)), (0, 1, 2))(*a)))
    theirs = jax.jit(lambda *a: (o(*a), jax.grad(lambda *a: jnp.sum(o(*a)), (0, 1, 2))(*a)))
    for gamma in (0.0, 0.5, 2.0, 3.5):  # traced: one compile
        for a, b in zip(jax.tree_util.tree_leaves(ours(x, y, gamma)), jax.tree_util.tree_leaves(theirs(x, y, gamma))):
            assert_close(a, b, PARITY)


def test_focal_gamma_zero_large_logits_no_nan_unlike_optax_issue_1267():
    # optax#1267: NaN gradients for large logits with a float gamma of 0.
    x = jnp.array([-40.0, -100.0, 100.0, 500.0, 1e4, -1e4], jnp.float32)
    y = jnp.array([0.0, 0.0, 1.0, 1.0, 1.0, 0.0], jnp.float32)
    loss, (gx, gy, gg) = jax.value_and_grad(
        lambda x, y, g: jaxent.sigmoid_focal_loss(x, y, gamma=g, reduction="sum"), (0, 1, 2)
    )(x, y, jnp.float32(0.0))
    assert np.isfinite(loss) and np.all(np.isfinite(gx)) and np.all(np.isfinite(gy)) and np.isfinite(gg)
    # gamma = 0 is binary cross-entropy.
    want = jax.grad(lambda x: jaxent.binary_cross_entropy_with_logits(x, y, reduction="sum"))(x)
    assert_close(gx, want, GRAD[jnp.dtype(jnp.float32)])


# --------------------------------------------------------------------------------------
# float64 reference: every option, including those PyTorch and optax lack.

REF_CASES = {
    "bce_smoothing": ("bce", dict(label_smoothing=0.2)),
    "bce_everything": ("bce", dict(label_smoothing=0.1, weight="last", pos_weight="last", where=True)),
    "bce_probs_weight_where": ("probs", dict(weight="full", where=True)),
    "focal_gamma_half_alpha": ("focal", dict(gamma=0.5, alpha=0.3)),
    "focal_where": ("focal", dict(gamma=2.0, where=True)),
}
FUNCTIONS = {
    "bce": (jaxent.binary_cross_entropy_with_logits, ref.binary_cross_entropy_with_logits),
    "probs": (jaxent.binary_cross_entropy, ref.binary_cross_entropy),
    "focal": (jaxent.sigmoid_focal_loss, ref.sigmoid_focal_loss),
}


def _ref_case(name, shape=(N, C), seed=20):
    kind, spec = REF_CASES[name]
    options = {}
    for i, (k, v) in enumerate(spec.items()):
        if k == "where":
            options[k] = jnp.asarray(np.random.default_rng(seed + 5).random(shape) > 0.3)
        elif k in ("weight", "pos_weight"):
            options[k] = positive_of(shape if v == "full" else shape[-1:], seed + i)
        else:
            options[k] = v
    x = jax.nn.sigmoid(logits_of(shape, seed)) if kind == "probs" else logits_of(shape, seed)
    # Targets away from 0 and 1, so that finite differences stay inside [0, 1].
    return kind, x, soft_targets_of(shape, seed + 1, low=0.05, high=0.95), options


@pytest.mark.parametrize("name", sorted(REF_CASES))
def test_matches_float64_reference_values_and_gradients(name):
    kind, x, y, options = _ref_case(name)
    ours, theirs = FUNCTIONS[kind]
    for reduction in REDUCTIONS:
        assert_close(
            ours(x, y, reduction=reduction, **options), theirs(x, y, reduction=reduction, **options), LOSS[F64]
        )
    hyper = {k: jnp.asarray(v) for k, v in options.items() if k != "where"}
    where = options.get("where")
    got = jax.jit(jax.grad(lambda x, y, h: ours(x, y, where=where, **h), (0, 1, 2)))(x, y, hyper)
    want = jax.jit(jax.grad(lambda x, y, h: theirs(x, y, where=where, **h), (0, 1, 2)))(x, y, hyper)
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        assert_close(a, b, GRAD[F64])
    # Second order (forward-over-reverse; the custom_jvp rules keep forward mode).
    assert_close(
        jax.jit(jax.hessian(lambda x: ours(x, y, where=where, **hyper)))(x),
        jax.jit(jax.hessian(lambda x: theirs(x, y, where=where, **hyper)))(x),
        GRAD[F64],
    )


@pytest.mark.parametrize("kind", sorted(FUNCTIONS))
def test_full_hessian_at_hard_targets_matches_reference(kind):
    # Hard targets put log y and log(1 - y) at -inf inside the rules: second derivatives in
    # every argument (logits, targets, hyperparameters) must still be exact, not NaN.
    ours, theirs = FUNCTIONS[kind]
    x, y = logits_of((2, 3), 35), jnp.array([[0.0, 1.0, 1.0], [0.0, 0.0, 1.0]])
    if kind == "probs":
        x = jax.nn.sigmoid(x)
    hyper = {
        "bce": dict(weight=positive_of((3,), 36), pos_weight=positive_of((3,), 37), label_smoothing=jnp.asarray(0.1)),
        "probs": dict(weight=positive_of((2, 3), 38)),
        "focal": dict(gamma=jnp.asarray(1.5), alpha=jnp.asarray(0.3)),
    }[kind]
    got = jax.jit(jax.hessian(lambda *a: ours(a[0], a[1], **a[2]), (0, 1, 2)))(x, y, hyper)
    want = jax.jit(jax.hessian(lambda *a: theirs(a[0], a[1], **a[2]), (0, 1, 2)))(x, y, hyper)
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        assert_close(a, b, GRAD[F64])


@pytest.mark.parametrize("name", sorted(REF_CASES))
def test_check_grads_reverse_mode_second_order(name):
    kind, x, y, options = _ref_case(name, shape=(2, 3), seed=30)
    ours, _ = FUNCTIONS[kind]
    hyper = {k: jnp.asarray(v) for k, v in options.items() if k != "where"}
    where = options.get("where")
    f = jax.jit(lambda x, y, h: ours(x, y, where=where, **h))
    check_grads(f, (x, y, hyper), order=2, modes=["rev"])
    # Forward mode works too (custom_jvp, not custom_vjp).
    check_grads(f, (x, y, hyper), order=1, modes=["fwd"])


def test_label_smoothing_pulls_targets_toward_one_half():
    # Keras convention: smoothing eps is BCE on y (1 - eps) + eps / 2.
    x, y = logits_of((N, C), 40), hard_targets_of((N, C), 41)
    for eps in (0.1, 1.0):
        a = jaxent.binary_cross_entropy_with_logits(x, y, label_smoothing=eps, reduction="none")
        b = jaxent.binary_cross_entropy_with_logits(x, y * (1 - eps) + eps / 2, reduction="none")
        assert_close(a, b, LOSS[F64])


def test_integer_and_boolean_targets_are_cast():
    x, y = logits_of((N, C), 42), hard_targets_of((N, C), 43)
    p = jax.nn.sigmoid(x)
    for targets in (y.astype(jnp.int32), y.astype(bool)):
        assert_close(
            jaxent.binary_cross_entropy_with_logits(x, targets),
            jaxent.binary_cross_entropy_with_logits(x, y),
            LOSS[F64],
        )
        assert_close(jaxent.sigmoid_focal_loss(x, targets), jaxent.sigmoid_focal_loss(x, y), LOSS[F64])
        assert_close(jaxent.binary_cross_entropy(p, targets), jaxent.binary_cross_entropy(p, y), LOSS[F64])


def test_bce_of_sigmoid_matches_bce_with_logits():
    x, y = logits_of((N, C), 44, scale=1.0), soft_targets_of((N, C), 45)
    w = positive_of((C,), 46)
    assert_close(
        jaxent.binary_cross_entropy(jax.nn.sigmoid(x), y, weight=w),
        jaxent.binary_cross_entropy_with_logits(x, y, weight=w),
        dict(rtol=1e-12, atol=1e-12),
    )


# --------------------------------------------------------------------------------------
# Masks, reductions, transformations.

ALL = {
    "bce": lambda x, y, **k: jaxent.binary_cross_entropy_with_logits(
        x, y, pos_weight=jnp.linspace(0.5, 2.0, C), label_smoothing=0.1, **k
    ),
    "probs": lambda x, y, **k: jaxent.binary_cross_entropy(jax.nn.sigmoid(x), y, weight=jnp.linspace(0.5, 2.0, C), **k),
    "focal": lambda x, y, **k: jaxent.sigmoid_focal_loss(x, y, gamma=1.5, alpha=0.4, **k),
}


@pytest.mark.parametrize("kind", sorted(ALL))
def test_where_equals_boolean_indexing(kind):
    f = ALL[kind]
    x, y = logits_of((N, C), 50), soft_targets_of((N, C), 51)
    keep = np.random.default_rng(52).random((N, C)) > 0.4
    mask = jnp.asarray(keep)
    none = f(x, y, reduction="none")
    assert_close(f(x, y, where=mask, reduction="none"), jnp.where(mask, none, 0), LOSS[F64])
    assert_close(f(x, y, where=mask, reduction="sum"), jnp.sum(none[keep]), LOSS[F64])
    assert_close(f(x, y, where=mask), jnp.mean(none[keep]), LOSS[F64])
    g = jax.grad(lambda x: f(x, y, where=mask))(x)
    assert np.all(np.asarray(g)[~keep] == 0)
    assert_close(g[keep], jax.grad(lambda x: f(x, y, reduction="sum"))(x)[keep] / float(keep.sum()), GRAD[F64])
    if kind == "probs":
        return  # (NaN padding through the test's own sigmoid would poison its gradient)
    # NaN padding in dropped elements reaches neither the loss nor the gradient.
    x_pad = jnp.where(mask, x, jnp.nan)
    loss, g_pad = jax.value_and_grad(lambda x: f(x, y, where=mask))(x_pad)
    assert_close(loss, f(x, y, where=mask), LOSS[F64])
    assert_close(g_pad, g, GRAD[F64])


@pytest.mark.parametrize("kind", sorted(ALL))
def test_broadcast_mask_and_empty_mean(kind):
    f = ALL[kind]
    x, y = logits_of((N, C), 53), soft_targets_of((N, C), 54)
    rows = jnp.array([[True], [False], [True], [False]])
    assert_close(f(x, y, where=rows), f(x, y, where=jnp.broadcast_to(rows, (N, C))), LOSS[F64])
    assert_close(f(x, y, where=rows), f(x[::2], y[::2]), LOSS[F64])
    for where in (jnp.zeros((N, C), bool), jnp.zeros((1, 1), bool)):
        loss, g = jax.value_and_grad(lambda x: f(x, y, where=where))(x)
        assert loss == 0 and np.all(g == 0)


@pytest.mark.parametrize("kind", sorted(ALL))
def test_eager_jit_and_vmap_agree(kind):
    f = functools.partial(ALL[kind], reduction="none")
    x, y = logits_of((N, C), 55), soft_targets_of((N, C), 56)
    eager = f(x, y)
    assert eager.shape == (N, C)
    assert_close(jax.jit(f)(x, y), eager, LOSS[F64])
    assert_close(jax.vmap(f)(x, y), eager, LOSS[F64])
    g = jax.grad(lambda x: jnp.sum(f(x, y)))(x)
    assert_close(jax.vmap(jax.grad(lambda xi, yi: jnp.sum(f(xi, yi))))(x, y), g, GRAD[F64])


def test_scan_and_checkpoint():
    x, y = logits_of((3, N, C), 57), soft_targets_of((3, N, C), 58)

    def total(x):
        step = lambda carry, xy: (
            carry + jaxent.sigmoid_focal_loss(*xy) + jaxent.binary_cross_entropy_with_logits(*xy),
            None,
        )
        return jax.lax.scan(step, jnp.zeros((), jnp.float64), (x, y))[0]

    assert_close(jax.grad(total)(x), jax.grad(jax.checkpoint(total))(x), GRAD[F64])


# --------------------------------------------------------------------------------------
# Infinities and large logits.

X_INF = jnp.array([INF, -INF, INF, -INF, INF, -INF])
Y_INF = jnp.array([1.0, 0.0, 0.0, 1.0, 0.3, 0.7])


def test_bce_with_logits_is_exact_at_infinite_logits():
    got = jaxent.binary_cross_entropy_with_logits(X_INF, Y_INF, reduction="none")
    np.testing.assert_array_equal(got, [0, 0, INF, INF, INF, INF])
    pw, w = jnp.array([2.0, 3.0, 0.5, 4.0, 1.5, 2.5]), jnp.array([0.5, 2.0, 1.0, 3.0, 0.0, 1.0])
    for options in (dict(), dict(pos_weight=pw), dict(weight=w, pos_weight=pw)):
        grads = jax.grad(
            lambda x, y, o: jnp.sum(jaxent.binary_cross_entropy_with_logits(x, y, reduction="none", **o)), (0, 1, 2)
        )(X_INF, Y_INF, options)
        for g in jax.tree_util.tree_leaves(grads):
            assert np.all(np.isfinite(g)), (options, grads)
        # The logits gradient is PyTorch's formula w[(1 + (p - 1) y) sigma(x) - p y], at its limits.
        p, ww = options.get("pos_weight", 1.0), options.get("weight", 1.0)
        s = (np.asarray(X_INF) > 0).astype(float)
        assert_close(grads[0], ww * ((1 + (p - 1) * Y_INF) * s - p * Y_INF), LOSS[F64])
    # A zero weight drops an infinite term: 0, not 0 * inf = NaN.
    assert jaxent.binary_cross_entropy_with_logits(X_INF, Y_INF, weight=w, reduction="none")[4] == 0
    # Label smoothing moves hard targets off 0 and 1: the loss at ±inf becomes +inf, the gradients stay finite.
    f = lambda x, eps: jaxent.binary_cross_entropy_with_logits(x, Y_INF, label_smoothing=eps, reduction="sum")
    assert f(X_INF, 0.1) == INF
    assert all(np.all(np.isfinite(g)) for g in jax.grad(f, (0, 1))(X_INF, 0.1))


@pytest.mark.parametrize("alpha", [None, 0.25, 1.0])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_sigmoid_focal_loss_is_exact_at_infinite_logits(gamma, alpha):
    got = jaxent.sigmoid_focal_loss(X_INF, Y_INF, gamma=gamma, alpha=alpha, reduction="none")
    a_t = np.ones(6) if alpha is None else alpha * Y_INF + (1 - alpha) * (1 - Y_INF)
    want = np.where(np.arange(6) < 2, 0.0, np.where(a_t > 0, INF, 0.0))
    np.testing.assert_array_equal(got, want)
    grads = jax.grad(
        lambda x, y, g, a: jnp.sum(jaxent.sigmoid_focal_loss(x, y, gamma=g, alpha=a, reduction="none")),
        (0, 1, 2) + ((3,) if alpha is not None else ()),
    )(X_INF, Y_INF, jnp.float64(gamma), None if alpha is None else jnp.float64(alpha))
    for g in grads:
        assert np.all(np.isfinite(g))
    # Logits gradient at the limit: matching hard targets 0; otherwise alpha_t (1 - p_t)^gamma (d BCE / dx).
    q = np.array([0.0, 0.0, 1.0, 1.0, 0.7, 0.7])
    bce_dx = np.sign(np.asarray(X_INF)) * np.where(np.asarray(X_INF) > 0, 1 - Y_INF, Y_INF)
    assert_close(grads[0], np.where(np.arange(6) < 2, 0.0, a_t * q**gamma * bce_dx), LOSS[F64])


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_extreme_grid_has_no_nan_in_values_or_any_gradient(dtype):
    # Every pairing of extreme logits with hard, tiny and soft targets, for gamma < 1, = 1, > 1 and 0.
    xs = [-INF, -1e30, -1e4, -800, -100, -30, 0, 30, 100, 800, 1e4, 1e30, INF]
    ys = [0.0, 1e-30, 1e-8, 0.3, 1 - 1e-7, 1.0]
    x, y = (jnp.asarray(a, dtype) for a in np.array(np.meshgrid(xs, ys)).reshape(2, -1))

    @jax.jit
    def focal(x, y, g, a):
        f = lambda x, y, g, a: jnp.sum(jaxent.sigmoid_focal_loss(x, y, gamma=g, alpha=a, reduction="none"))
        return jaxent.sigmoid_focal_loss(x, y, gamma=g, alpha=a, reduction="none"), jax.grad(f, (0, 1, 2, 3))(
            x, y, g, a
        )

    @jax.jit
    def bce(x, y, e, p):
        f = lambda *a: jaxent.binary_cross_entropy_with_logits(
            *a[:2], label_smoothing=a[2], pos_weight=a[3], reduction="none"
        )
        return f(x, y, e, p), jax.grad(lambda *a: jnp.sum(f(*a)), (0, 1, 2, 3))(x, y, e, p)

    runs = [
        focal(x, y, jnp.asarray(g, dtype), jnp.asarray(a, dtype))
        for g in (0.0, 0.3, 1.0, 2.0)
        for a in (0.0, 0.25, 1.0)
    ]
    runs += [bce(x, y, jnp.asarray(e, dtype), jnp.asarray(p, dtype)) for e in (0.0, 0.1, 1.0) for p in (0.0, 2.0)]
    for values, grads in runs:
        assert not np.any(np.isnan(values))
        for g in grads:
            assert np.all(np.isfinite(g))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_large_logits_match_reference_without_nan(dtype):
    x = jnp.asarray([1e4, -1e4, 1e4, -1e4, 3e3, -50.0, 80.0], dtype)
    for y in (jnp.array([1.0, 0.0, 0.0, 1.0, 0.5, 0.2, 0.9], dtype), jnp.array([0, 1, 1, 0, 1, 0, 1], dtype)):
        tol = LOSS[jnp.dtype(dtype)]
        for kind in ("bce", "focal"):
            ours, theirs = FUNCTIONS[kind]
            opts = dict(gamma=2.0, alpha=0.3) if kind == "focal" else dict(pos_weight=jnp.asarray(2.0, dtype))
            loss, grads = jax.jit(jax.value_and_grad(lambda x, y: ours(x, y, reduction="sum", **opts), (0, 1)))(x, y)
            assert np.isfinite(loss) and all(np.all(np.isfinite(g)) for g in grads)
            assert_close(loss, theirs(x.astype(jnp.float64), y.astype(jnp.float64), reduction="sum", **opts), tol)
            want = jax.grad(lambda x: theirs(x, y.astype(jnp.float64), reduction="sum", **opts))(x.astype(jnp.float64))
            assert_close(grads[0], want, GRAD[jnp.dtype(dtype)])


# --------------------------------------------------------------------------------------
# Half precision.


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
@pytest.mark.parametrize("kind", sorted(FUNCTIONS))
def test_half_precision_is_computed_in_float32(dtype, kind):
    ours, theirs = FUNCTIONS[kind]
    x = logits_of((N, C), 60, dtype=dtype)
    if kind == "probs":
        x = jax.nn.sigmoid(x.astype(jnp.float32)).astype(dtype)
    y = soft_targets_of((N, C), 61, dtype=dtype)
    options = (
        dict(gamma=1.5, alpha=0.3) if kind == "focal" else dict(weight=jnp.linspace(0.5, 2.0, C, dtype=jnp.float32))
    )
    if kind == "bce":
        options.update(pos_weight=jnp.linspace(2.0, 0.5, C, dtype=jnp.float32), label_smoothing=0.1)
    x64, y64 = x.astype(jnp.float64), y.astype(jnp.float64)  # the reference sees exactly the rounded inputs
    loss = ours(x, y, **options)
    assert loss.dtype == jnp.float32
    assert_close(loss, theirs(x64, y64, **options), LOSS[jnp.dtype(dtype)])
    grads = jax.grad(lambda x, y: ours(x, y, **options), (0, 1))(x, y)
    want = jax.grad(lambda x, y: theirs(x, y, **options), (0, 1))(x64, y64)
    for g, w in zip(grads, want):
        assert g.dtype == dtype
        assert_close(g, w, GRAD[jnp.dtype(dtype)])


def test_float32_targets_with_bfloat16_logits():
    x, y = logits_of((N, C), 62, dtype=jnp.bfloat16), soft_targets_of((N, C), 63, dtype=jnp.float32)
    loss, (gx, gy) = jax.value_and_grad(jaxent.binary_cross_entropy_with_logits, (0, 1))(x, y)
    assert loss.dtype == jnp.float32 and gx.dtype == jnp.bfloat16 and gy.dtype == jnp.float32


# --------------------------------------------------------------------------------------
# Bad input.

X8 = np.zeros((8, 10))
BAD_INPUTS = [
    (
        "bce",
        dict(logits=np.zeros((8, 10), np.int32)),
        TypeError,
        "binary_cross_entropy_with_logits: logits must be a floating-point array, got dtype int32",
    ),
    (
        "bce",
        dict(targets=np.zeros((8, 9))),
        ValueError,
        r"binary_cross_entropy_with_logits: targets has shape \(8, 9\) but logits has shape \(8, 10\); "
        "targets must have the shape of logits",
    ),
    ("bce", dict(targets=np.zeros((10,))), ValueError, "targets has shape"),
    (
        "bce",
        dict(targets=np.zeros((8, 10), np.complex64)),
        TypeError,
        "targets must be a floating, integer or boolean array",
    ),
    (
        "bce",
        dict(reduction="batchmean"),
        ValueError,
        "reduction must be one of 'none', 'sum' or 'mean', got 'batchmean'",
    ),
    ("bce", dict(label_smoothing=1.5), ValueError, r"label_smoothing must lie in \[0.0, 1.0\], got 1.5"),
    ("bce", dict(label_smoothing=np.array([0.1, 0.2])), ValueError, "label_smoothing must be a scalar"),
    (
        "bce",
        dict(pos_weight=np.ones(9)),
        ValueError,
        r"pos_weight has shape \(9,\), which does not broadcast to the shape \(8, 10\) of logits; pass shape \(10,\)",
    ),
    ("bce", dict(weight=np.ones((2, 8, 10))), ValueError, "weight has shape .* which does not broadcast"),
    ("bce", dict(weight=np.ones(10, bool)), TypeError, "weight must be a real array"),
    (
        "bce",
        dict(where=np.ones((8,), bool)),
        ValueError,
        r"where has shape \(8,\) but logits has shape \(8, 10\); .* \(8, 1\) to drop whole rows",
    ),
    ("bce", dict(where=np.ones((8, 10))), TypeError, "where must be a boolean mask"),
    (
        "probs",
        dict(logits=np.zeros((8, 10), np.int32)),
        TypeError,
        "binary_cross_entropy: probs must be a floating-point array",
    ),
    ("probs", dict(targets=np.zeros((8, 1))), ValueError, "binary_cross_entropy: targets has shape"),
    ("probs", dict(weight=np.ones(3)), ValueError, "binary_cross_entropy: weight has shape"),
    ("focal", dict(gamma=-1.0), ValueError, r"sigmoid_focal_loss: gamma must lie in \[0.0, inf\), got -1.0"),
    ("focal", dict(alpha=1.5), ValueError, r"sigmoid_focal_loss: alpha must lie in \[0.0, 1.0\], got 1.5"),
    ("focal", dict(alpha=np.ones(10) * 0.25), ValueError, "alpha must be a scalar"),
    ("focal", dict(targets=np.zeros((8, 10), np.complex64)), TypeError, "sigmoid_focal_loss: targets must be"),
]


@pytest.mark.parametrize(("kind", "kwargs", "error", "match"), BAD_INPUTS)
def test_bad_input_is_a_clear_error(kind, kwargs, error, match):
    args = dict(logits=X8, targets=np.zeros((8, 10)))
    args.update(kwargs)
    with pytest.raises(error, match=match):
        FUNCTIONS[kind][0](args.pop("logits"), args.pop("targets"), **args)


def test_traced_hyperparameter_ranges_are_checked_under_checkify():
    x, y = jnp.zeros((2, 3)), jnp.ones((2, 3))
    cases = [
        (
            lambda v: jaxent.binary_cross_entropy_with_logits(x, y, label_smoothing=v),
            0.5,
            1.5,
            "label_smoothing must lie in",
        ),
        (lambda v: jaxent.sigmoid_focal_loss(x, y, gamma=v), 0.0, -0.5, r"gamma must lie in \[0.0, inf\), got -0.5"),
        (lambda v: jaxent.sigmoid_focal_loss(x, y, alpha=v), 1.0, 1.25, r"alpha must lie in \[0.0, 1.0\], got 1.25"),
    ]
    for f, good, bad, match in cases:
        checked = checkify.checkify(jax.jit(f), errors=checkify.user_checks)
        checked(good)[0].throw()
        with pytest.raises(checkify.JaxRuntimeError, match=match):
            checked(bad)[0].throw()


def test_probabilities_outside_unit_interval_are_nan_and_named_under_checkify():
    p, y = jnp.array([0.5, 1.2, -0.1, 0.3]), jnp.array([1.0, 1.0, 0.0, 0.0])
    losses = jaxent.binary_cross_entropy(p, y, reduction="none")
    assert np.all(np.isnan(losses[1:3])) and np.all(np.isfinite(losses[np.array([0, 3])]))
    f = checkify.checkify(jax.jit(jaxent.binary_cross_entropy), errors=checkify.user_checks)
    with pytest.raises(checkify.JaxRuntimeError, match=r"binary_cross_entropy: probs must lie in \[0, 1\], got 1.2"):
        f(p, y)[0].throw()
    f(jnp.array([0.0, 1.0, 0.5]), jnp.array([0.0, 1.0, 1.0]))[0].throw()


# --------------------------------------------------------------------------------------
# Traced hyperparameters and loss objects.


def test_traced_hyperparameters_do_not_recompile():
    x, y = logits_of((N, C), 70), soft_targets_of((N, C), 71)
    traces = []

    @jax.jit
    def f(x, y, w, pw, eps, gamma, alpha):
        traces.append(1)
        bce = jaxent.binary_cross_entropy_with_logits(x, y, weight=w, pos_weight=pw, label_smoothing=eps)
        return bce, jaxent.sigmoid_focal_loss(x, y, gamma=gamma, alpha=alpha)

    for eps, gamma, alpha in [(0.0, 0.0, 0.25), (0.1, 2.0, 0.5), (0.3, 0.5, 1.0)]:
        w, pw = positive_of((C,), int(10 * gamma)), positive_of((N, C), int(10 * eps))
        got = f(x, y, w, pw, eps, gamma, alpha)
        assert_close(
            got[0],
            jaxent.binary_cross_entropy_with_logits(x, y, weight=w, pos_weight=pw, label_smoothing=eps),
            LOSS[F64],
        )
        assert_close(got[1], jaxent.sigmoid_focal_loss(x, y, gamma=gamma, alpha=alpha), LOSS[F64])
    assert len(traces) == 1


def test_loss_objects_equal_their_functions():
    x, y = logits_of((N, C), 72), soft_targets_of((N, C), 73)
    w, pw = positive_of((C,), 74), positive_of((C,), 75)
    mask = jnp.asarray(np.random.default_rng(76).random((N, C)) > 0.3)
    pairs = [
        (
            jaxent.BCEWithLogitsLoss(weight=w, pos_weight=pw, label_smoothing=0.1, reduction="sum"),
            functools.partial(
                jaxent.binary_cross_entropy_with_logits, weight=w, pos_weight=pw, label_smoothing=0.1, reduction="sum"
            ),
            x,
        ),
        (jaxent.BCELoss(weight=w), functools.partial(jaxent.binary_cross_entropy, weight=w), jax.nn.sigmoid(x)),
        (
            jaxent.SigmoidFocalLoss(gamma=1.5, alpha=0.25, reduction="none"),
            functools.partial(jaxent.sigmoid_focal_loss, gamma=1.5, alpha=0.25, reduction="none"),
            x,
        ),
    ]
    for loss, fn, inputs in pairs:
        assert_close(loss(inputs, y), fn(inputs, y), LOSS[F64])
        assert_close(loss(inputs, y, where=mask), fn(inputs, y, where=mask), LOSS[F64])
        assert "sum" not in jax.tree_util.tree_leaves(loss) and "none" not in jax.tree_util.tree_leaves(loss)
        assert_close(jax.jit(lambda loss, x, y: loss(x, y))(loss, inputs, y), fn(inputs, y), LOSS[F64])
        with pytest.raises(dataclasses.FrozenInstanceError):
            loss.reduction = "mean"  # type: ignore[misc]
    # Array fields are leaves: differentiable through the object.
    g = jax.grad(lambda loss: loss(x, y))(pairs[0][0])
    assert g.pos_weight.shape == (C,) and g.reduction == "sum"
    want = jax.grad(
        lambda pw: jaxent.binary_cross_entropy_with_logits(
            x, y, weight=w, pos_weight=pw, label_smoothing=0.1, reduction="sum"
        )
    )(pw)
    assert_close(g.pos_weight, want, GRAD[F64])


# --------------------------------------------------------------------------------------
# Properties.

SHAPE = (3, 4)
finite_logits = hnp.arrays(np.float64, SHAPE, elements=st.floats(-50, 50, allow_nan=False))
unit = hnp.arrays(np.float64, SHAPE, elements=st.floats(0, 1, allow_nan=False))
hard = hnp.arrays(np.float64, SHAPE, elements=st.sampled_from([0.0, 1.0]))
_bce = jax.jit(functools.partial(jaxent.binary_cross_entropy_with_logits, reduction="none"))
_focal = jax.jit(functools.partial(jaxent.sigmoid_focal_loss, reduction="none"))
_probs = jax.jit(functools.partial(jaxent.binary_cross_entropy, reduction="none"))


@settings(max_examples=25, deadline=None, derandomize=True)
@given(x=finite_logits, y=unit, hard_y=hard, eps=st.floats(0, 1))
def test_property_bce_is_nonnegative_and_zero_at_matching_infinities(x, y, hard_y, eps):
    assert np.all(np.asarray(_bce(x, y)) >= 0)
    assert np.all(np.asarray(_bce(x, hard_y, label_smoothing=eps)) >= 0)
    matching = np.where(hard_y == 1, INF, -INF)
    np.testing.assert_array_equal(_bce(matching, hard_y), 0)
    np.testing.assert_array_equal(_bce(-matching, hard_y), INF)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(x=finite_logits, y=unit, gamma=st.floats(0, 5))
def test_property_focal_is_at_most_bce(x, y, gamma):
    focal = np.asarray(_focal(x, y, gamma=gamma))
    bce = np.asarray(_bce(x, y))
    assert np.all(focal >= 0)
    assert np.all(focal <= bce * (1 + 1e-12) + 1e-300)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(p=unit, y=unit)
def test_property_bce_on_probabilities_lies_in_0_100(p, y):
    losses = np.asarray(_probs(p, y))
    assert np.all(losses >= 0) and np.all(losses <= 100)


# --------------------------------------------------------------------------------------
# Compiled memory: no [N, C] temporary, fwd+bwd or forward only, for every option.

MEMORY_CASES = [
    ("bce", dict()),
    ("bce", dict(weight="C", pos_weight="C", label_smoothing=0.1, where="full")),
    ("bce", dict(weight="full", pos_weight="full", label_smoothing="traced", where="rows")),
    ("probs", dict()),
    ("probs", dict(weight="full", where="full")),
    ("focal", dict()),
    ("focal", dict(alpha=0.25, where="full")),
    ("focal", dict(gamma=0.5, alpha="traced")),
    ("focal", dict(gamma="traced", where="rows")),
    ("focal", dict(gamma=0.0, alpha=0.75)),
    ("focal", dict(gamma=3.0)),
]


def _abstract_options(options, shape):
    """(arrays, static options): abstract arrays for the specs "C", "full", "rows", "traced"."""
    arrays, static = {}, {}
    for k, v in options.items():
        if v == "C":
            arrays[k] = jax.ShapeDtypeStruct(shape[-1:], jnp.float32)
        elif v == "full":
            arrays[k] = jax.ShapeDtypeStruct(shape, jnp.bool_ if k == "where" else jnp.float32)
        elif v == "rows":
            arrays[k] = jax.ShapeDtypeStruct(shape[:1] + (1,), jnp.bool_)
        elif v == "traced":
            arrays[k] = jax.ShapeDtypeStruct((), jnp.float32)
        else:
            static[k] = v
    return arrays, static


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize(("kind", "options"), MEMORY_CASES, ids=[f"{k}-{i}" for i, (k, _) in enumerate(MEMORY_CASES)])
def test_compiled_temp_memory_is_at_most_one_percent_of_the_logits(kind, options, dtype):
    fn = FUNCTIONS[kind][0]
    x = t = jax.ShapeDtypeStruct(programs.BIG, dtype)
    arrays, static = _abstract_options(options, programs.BIG)
    bound = programs.one_percent_of_f32(programs.BIG)
    for reduction in REDUCTIONS:
        loss = functools.partial(lambda r, x, t, a: fn(x, t, reduction=r, **a, **static), reduction)
        assert programs.temp_bytes(loss, x, t, arrays) <= bound, ("forward", reduction)
        if reduction != "none":
            assert programs.temp_bytes(jax.value_and_grad(loss), x, t, arrays) <= bound, ("fwd+bwd", reduction)


# --------------------------------------------------------------------------------------
# Forward mode and higher orders, and the programs handed to accelerators.

TRANSFORM_CASES = {
    "bce": dict(weight=positive_of((3,), 80), pos_weight=positive_of((2, 3), 81), label_smoothing=0.1),
    "probs": dict(weight=positive_of((3,), 82)),
    "focal": dict(gamma=2.0, alpha=0.3),
    "focal_traced_gamma": dict(gamma=jnp.asarray(0.7)),
    "focal_gamma_1": dict(gamma=1),
}


def _transform_case(name):
    kind = name.split("_")[0]
    # Probabilities and targets away from 0 and 1, where finite differences are accurate.
    x = soft_targets_of((2, 3), 83, low=0.2, high=0.8) if kind == "probs" else logits_of((2, 3), 83)
    y = soft_targets_of((2, 3), 84, low=0.1, high=0.9)
    where = jnp.array([[True, False, True], [True, True, True]])
    return FUNCTIONS[kind][0], x, y, dict(TRANSFORM_CASES[name], where=where)


@pytest.mark.parametrize("name", sorted(TRANSFORM_CASES))
def test_forward_mode_and_higher_orders(name):
    fn, x, y, options = _transform_case(name)
    f = jax.jit(lambda x, y: fn(x, y, **options))
    # check_grads in both modes to second order, in the predictions and the (soft) targets.
    check_grads(f, (x, y), order=2, modes=["fwd", "rev"])
    dx, dy = logits_of((2, 3), 85), logits_of((2, 3), 86)
    value, tangent = jax.jvp(f, (x, y), (dx, dy))
    gx, gy = jax.grad(f, (0, 1))(x, y)
    assert_close(value, f(x, y), LOSS[F64])
    assert_close(tangent, jnp.sum(gx * dx) + jnp.sum(gy * dy), GRAD[F64])
    _, linear = jax.linearize(f, x, y)
    assert_close(linear(dx, dy), tangent, GRAD[F64])
    assert_close(jax.jacfwd(f)(x, y), gx, GRAD[F64])
    # Forward-over-reverse and reverse-over-forward Hessians, and grad of grad.
    hess = jax.hessian(f)(x, y)
    assert_close(hess, jax.jacrev(jax.jacfwd(f))(x, y), GRAD[F64])
    assert np.all(np.isfinite(hess))
    assert_close(
        jax.grad(lambda x: jnp.sum(jax.grad(f)(x, y) ** 2))(x), 2 * jnp.einsum("ij,ijkl->kl", gx, hess), GRAD[F64]
    )


@pytest.mark.parametrize("kind", sorted(FUNCTIONS))
def test_programs_are_backend_neutral(kind):
    fn = FUNCTIONS[kind][0]
    x, y = logits_of((8, 5), 87, dtype=jnp.float32), soft_targets_of((8, 5), 88, dtype=jnp.float32)
    if kind == "probs":
        x = jax.nn.sigmoid(x)
    options = {
        "bce": [dict(pos_weight=jnp.ones(5, jnp.float32), label_smoothing=0.1)],
        "focal": [dict(alpha=0.25), dict(gamma=0.5)],  # whole and log-space gamma
    }
    for extra in options.get(kind, [{}]):
        f = lambda x, y: fn(x, y, where=x > 0.2, **extra)
        for g in (f, jax.value_and_grad(f, (0, 1))):
            programs.assert_backend_neutral(g, x, y)


def test_whole_gamma_powers_equal_the_log_space_path():
    # A concrete whole gamma computes q^gamma directly; a traced one in log space: same values
    # and derivatives (first and second order), also at extreme and infinite logits.
    x = jnp.array([-INF, -800.0, -30.0, -1.0, 0.0, 0.5, 30.0, 800.0, INF, 3.0])
    y = jnp.array([1.0, 0.0, 1.0, 0.3, 0.5, 1.0, 0.0, 1.0, 1.0, 0.9])
    for gamma, alpha in ((1, None), (2.0, 0.25), (3, 0.6)):
        whole = jax.jit(lambda x, y: jaxent.sigmoid_focal_loss(x, y, gamma=gamma, alpha=alpha, reduction="sum"))
        logs = jax.jit(lambda x, y, g: jaxent.sigmoid_focal_loss(x, y, gamma=g, alpha=alpha, reduction="sum"))
        g = jnp.asarray(gamma, jnp.float64)
        assert_close(whole(x, y), logs(x, y, g), LOSS[F64])
        for a, b in zip(jax.grad(whole, (0, 1))(x, y), jax.grad(logs, (0, 1))(x, y, g)):
            assert np.all(np.isfinite(a))
            assert_close(a, b, GRAD[F64])
        finite = slice(2, 8)
        h_whole = jax.hessian(whole)(x[finite], y[finite])
        h_logs = jax.hessian(logs)(x[finite], y[finite], g)
        assert_close(h_whole, h_logs, GRAD[F64])


def test_checks_carry_no_effect_outside_checkify():
    # The probability-range check costs nothing in an ordinary jitted call (no effect, so
    # JAX's fast dispatch path), and still names the value under checkify.
    p, y = jnp.array([0.5, 0.2]), jnp.array([1.0, 0.0])
    assert not jax.make_jaxpr(jaxent.binary_cross_entropy)(p, y).effects
    assert not jax.make_jaxpr(jax.value_and_grad(jaxent.binary_cross_entropy))(p, y).effects
    f = checkify.checkify(jax.jit(jax.vmap(jaxent.binary_cross_entropy)), errors=checkify.user_checks)
    with pytest.raises(checkify.JaxRuntimeError, match=r"probs must lie in \[0, 1\], got 1.5"):
        f(jnp.array([[0.5, 0.2], [1.5, 0.3]]), jnp.ones((2, 2)))[0].throw()
