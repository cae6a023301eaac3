"""cross_entropy and nll_loss against float64 references, PyTorch and optax."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.experimental import checkify
from jax.test_util import check_grads

import jaxent
from tests import programs
from tests import references as ref
from tests.tolerances import GRAD, LOSS, PARITY, assert_close

REDUCTIONS = ("none", "sum", "mean")


def logits_of(shape, seed=0, scale=2.0, dtype=jnp.float64):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape) * scale).astype(dtype)


def labels_of(shape, num_classes, seed=1):
    return jnp.asarray(np.random.default_rng(seed).integers(0, num_classes, size=shape), jnp.int32)


def probs_of(shape, axis=-1, seed=2):
    return jax.nn.softmax(logits_of(shape, seed), axis=axis)


def torch_of(torch, a):
    return torch.tensor(np.asarray(a))


# --------------------------------------------------------------------------------------
# Golden values.


def test_golden_values_from_the_optax_docstring():
    logits = jnp.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]], jnp.float32)
    out = jaxent.cross_entropy(logits, jnp.array([0, 1]), reduction="none")
    assert out.dtype == jnp.float32
    assert_close(out, [0.2761297, 2.951799], dict(rtol=1e-6, atol=1e-6))
    assert_close(jaxent.cross_entropy(logits, jnp.array([0, 1])), (0.2761297 + 2.951799) / 2, PARITY)


def test_golden_value_matches_hand_formula():
    x = np.array([[0.5, 1.5, -1.0, 2.0]])
    expected = ref.numpy_cross_entropy_rows(x, np.array([2]))
    assert_close(
        jaxent.cross_entropy(jnp.asarray(x), jnp.array([2]), reduction="none"), expected, LOSS[jnp.dtype("float64")]
    )


# --------------------------------------------------------------------------------------
# PyTorch parity.

C = 5
INTEGER_CONFIGS = {
    "plain": dict(),
    "weight": dict(weight=True),
    "ignore_valid_class": dict(ignore_index=1),
    "ignore_negative": dict(ignore_index=-1),
    "ignore_large": dict(ignore_index=255),
    "smoothing": dict(label_smoothing=0.2),
    "weight_smoothing": dict(weight=True, label_smoothing=0.3),
    # pytorch#91383: weight + smoothing + mean with a negative ignore_index.
    "weight_ignore_smoothing": dict(weight=True, ignore_index=-100, label_smoothing=0.1),
    "all_options": dict(weight=True, ignore_index=2, label_smoothing=0.25),
}


def _integer_case(name, shape=(7,), axis=-1, seed=0):
    options = dict(INTEGER_CONFIGS[name])
    logits_shape = shape[:1] + (C,) + shape[1:] if axis == 1 else shape + (C,)
    x = logits_of(logits_shape, seed)
    y = np.array(labels_of(shape, C, seed + 1))
    ii = options.get("ignore_index", -100)
    y.reshape(-1)[::3] = ii  # some ignored targets (never all)
    if options.pop("weight", False):
        options["weight"] = jnp.asarray(np.random.default_rng(seed + 2).uniform(0.2, 2.0, C))
    return x, jnp.asarray(y), options


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", sorted(INTEGER_CONFIGS))
def test_integer_targets_match_torch(torch, name, reduction):
    x, y, options = _integer_case(name)
    got = jaxent.cross_entropy(x, y, reduction=reduction, **options)
    t_opts = {k: (torch_of(torch, v) if k == "weight" else v) for k, v in options.items()}
    want = torch.nn.functional.cross_entropy(
        torch_of(torch, x), torch_of(torch, y).long(), reduction=reduction, **t_opts
    )
    assert_close(got, want.numpy(), PARITY)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ["plain", "weight_ignore_smoothing", "all_options"])
def test_k_dimensional_inputs_match_torch(torch, name, reduction):
    x, y, options = _integer_case(name, shape=(2, 3, 2), axis=1)
    got = jaxent.cross_entropy(x, y, axis=1, reduction=reduction, **options)
    t_opts = {k: (torch_of(torch, v) if k == "weight" else v) for k, v in options.items()}
    want = torch.nn.functional.cross_entropy(
        torch_of(torch, x), torch_of(torch, y).long(), reduction=reduction, **t_opts
    )
    assert got.shape == want.shape
    assert_close(got, want.numpy(), PARITY)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.15])
@pytest.mark.parametrize("axis", [-1, 1])
def test_probability_targets_match_torch(torch, reduction, weighted, smoothing, axis):
    shape = (3, C, 2) if axis == 1 else (6, C)
    x, t = logits_of(shape, 3), probs_of(shape, axis=axis, seed=4)
    weight = jnp.asarray(np.linspace(0.5, 2.0, C)) if weighted else None
    got = jaxent.cross_entropy(x, t, axis=axis, weight=weight, label_smoothing=smoothing, reduction=reduction)
    want = torch.nn.functional.cross_entropy(
        torch_of(torch, x),
        torch_of(torch, t),
        weight=None if weight is None else torch_of(torch, weight),
        label_smoothing=smoothing,
        reduction=reduction,
    )
    assert_close(got, want.numpy(), PARITY)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ["plain", "weight", "ignore_valid_class", "ignore_large"])
@pytest.mark.parametrize("axis", [-1, 1])
def test_nll_loss_matches_torch(torch, name, reduction, axis):
    x, y, options = _integer_case(name, shape=(3, 2) if axis == 1 else (7,), axis=axis)
    options.pop("label_smoothing", None)
    log_probs = jax.nn.log_softmax(x, axis=axis)
    got = jaxent.nll_loss(log_probs, y, axis=axis, reduction=reduction, **options)
    t_opts = {k: (torch_of(torch, v) if k == "weight" else v) for k, v in options.items()}
    want = torch.nn.functional.nll_loss(
        torch_of(torch, log_probs), torch_of(torch, y).long(), reduction=reduction, **t_opts
    )
    assert_close(got, want.numpy(), PARITY)


def test_unbatched_input_matches_torch(torch):
    x, y = logits_of((C,)), jnp.array(3)
    for reduction in REDUCTIONS:
        got = jaxent.cross_entropy(x, y, reduction=reduction, label_smoothing=0.1)
        want = torch.nn.functional.cross_entropy(
            torch_of(torch, x), torch.tensor(3), reduction=reduction, label_smoothing=0.1
        )
        assert got.shape == tuple(want.shape)
        assert_close(got, want.numpy(), PARITY)


# --------------------------------------------------------------------------------------
# optax parity (the shared subset).


def test_integer_labels_match_optax():
    x, y = logits_of((4, 3, C)), labels_of((4, 3), C)
    want = optax.losses.softmax_cross_entropy_with_integer_labels(x, y)
    assert_close(jaxent.cross_entropy(x, y, reduction="none"), want, PARITY)


def test_probabilities_match_optax():
    x, t = logits_of((6, C)), probs_of((6, C))
    assert_close(jaxent.cross_entropy(x, t, reduction="none"), optax.losses.softmax_cross_entropy(x, t), PARITY)


def test_tuple_axis_matches_optax_flat_index():
    x = logits_of((2, 3, 4, 2), 5)
    y = labels_of((2, 2), 12, 6)  # flat index into the (3, 4) slice
    want = optax.losses.softmax_cross_entropy_with_integer_labels(x, y, axis=(1, 2))
    assert_close(jaxent.cross_entropy(x, y, axis=(1, 2), reduction="none"), want, PARITY)


def test_reversed_tuple_axis_follows_the_given_order():
    x = logits_of((2, 3, 4), 5)
    y = labels_of((2,), 12, 6)
    want = optax.losses.softmax_cross_entropy_with_integer_labels(x, y, axis=(2, 1))
    assert_close(jaxent.cross_entropy(x, y, axis=(2, 1), reduction="none"), want, PARITY)
    assert_close(
        jaxent.cross_entropy(x, y, axis=(2, 1), reduction="none"),
        jaxent.cross_entropy(jnp.swapaxes(x, 1, 2), y, axis=(1, 2), reduction="none"),
        LOSS[x.dtype],
    )


def test_example_mask_matches_optax():
    x, y = logits_of((6, C)), labels_of((6,), C)
    where = jnp.array([True, False, True, True, False, True])
    want = optax.losses.softmax_cross_entropy_with_integer_labels(x, y, where=where)
    assert_close(jaxent.cross_entropy(x, y, where=where, reduction="none"), want, PARITY)


def test_class_mask_matches_optax_for_unmasked_labels():
    x, t = logits_of((6, C)), probs_of((6, C))
    mask = jnp.asarray(np.random.default_rng(7).random((6, C)) > 0.3)
    y = jnp.argmax(jnp.where(mask, x, -jnp.inf), axis=-1).astype(jnp.int32)  # a label on an unmasked class
    want = optax.losses.softmax_cross_entropy_with_integer_labels(x, y, where=mask)
    assert_close(jaxent.cross_entropy(x, y, where=mask, reduction="none"), want, PARITY)
    want = optax.losses.softmax_cross_entropy(x, t, where=mask)
    assert_close(jaxent.cross_entropy(x, t, where=mask, reduction="none"), want, PARITY)


# --------------------------------------------------------------------------------------
# float64 reference: every option, including those PyTorch and optax lack.

REFERENCE_CONFIGS = {
    "z_loss": dict(z_loss=1e-2),
    "softcap": dict(logit_softcap=1.5),
    "everything": dict(weight=True, label_smoothing=0.2, z_loss=1e-3, logit_softcap=3.0, ignore_index=0),
    "class_mask": dict(class_mask=True),
    "class_mask_smoothing": dict(class_mask=True, label_smoothing=0.3, weight=True),
    "example_mask": dict(example_mask=True, weight=True),
    "neg_inf": dict(neg_inf=True, label_smoothing=0.1),
    "neg_inf_softcap": dict(neg_inf=True, logit_softcap=2.0, z_loss=1e-2),
}


def _reference_case(name, integer=True, shape=(5, 4), axis=-1, seed=10):
    options = dict(REFERENCE_CONFIGS[name])
    rng = np.random.default_rng(seed)
    x = np.array(logits_of(shape, seed))
    num_classes = shape[axis]
    if options.pop("neg_inf", False):
        x[rng.random(shape) < 0.3] = -np.inf
    x = jnp.asarray(x)
    if options.pop("weight", False):
        options["weight"] = jnp.asarray(rng.uniform(0.2, 2.0, num_classes))
    where = None
    if options.pop("class_mask", False):
        where = jnp.asarray(rng.random(shape) > 0.3)
    if options.pop("example_mask", False):
        where = jnp.asarray(rng.random(shape[:-1]) > 0.4)
    finite = jnp.isfinite(x) if where is None or where.shape != x.shape else jnp.isfinite(x) & where
    if integer:
        # Targets on classes that remain, so that the loss stays finite.
        y = jnp.argmax(jnp.where(finite, logits_of(shape, seed + 1), -jnp.inf), axis=axis).astype(jnp.int32)
    else:
        y = jax.nn.softmax(jnp.where(finite, logits_of(shape, seed + 1), -jnp.inf), axis=axis)
        y = jnp.where(finite, y, 0.0)
    return x, y, dict(options, where=where)


@pytest.mark.parametrize("integer", [True, False])
@pytest.mark.parametrize("name", sorted(REFERENCE_CONFIGS))
def test_matches_float64_reference(name, integer):
    x, y, options = _reference_case(name, integer)
    if not integer:
        options.pop("ignore_index", None)
    for reduction in REDUCTIONS:
        got = jaxent.cross_entropy(x, y, reduction=reduction, **options)
        want = ref.cross_entropy(x, y, reduction=reduction, **options)
        assert_close(got, want, LOSS[x.dtype])


@pytest.mark.parametrize("num_classes", [2**15 + 2**11, 2**15 + 3])
def test_long_rows_match_reference(num_classes):
    # Rows longer than 2**15 are reduced in pieces (or whole when C has no divisor).
    x, y = logits_of((3, num_classes), 11, dtype=jnp.float32), labels_of((3,), num_classes)
    want = ref.cross_entropy(x, y, reduction="none")
    assert_close(jaxent.cross_entropy(x, y, reduction="none"), want, dict(rtol=1e-5, atol=1e-5))
    want = ref.cross_entropy(x, y, label_smoothing=0.1, reduction="none")
    assert_close(jaxent.cross_entropy(x, y, label_smoothing=0.1, reduction="none"), want, dict(rtol=1e-5, atol=1e-5))


def test_nll_loss_matches_reference_with_masks_and_probabilities():
    x, y, options = _reference_case("class_mask_smoothing")
    options.pop("label_smoothing")
    lp = jax.nn.log_softmax(x)
    t = probs_of(x.shape, seed=3)
    for targets in (y, t):
        for reduction in REDUCTIONS:
            got = jaxent.nll_loss(lp, targets, reduction=reduction, **options)
            assert_close(got, ref.nll_loss(lp, targets, reduction=reduction, **options), LOSS[x.dtype])


# --------------------------------------------------------------------------------------
# Agreements.


@pytest.mark.parametrize("reduction", ["none", "sum"])
def test_integer_and_one_hot_targets_agree(reduction):
    x, y = logits_of((6, C)), labels_of((6,), C)
    onehot = jax.nn.one_hot(y, C, dtype=jnp.float64)
    w = jnp.asarray(np.linspace(0.5, 2.0, C))
    for options in (dict(), dict(weight=w), dict(label_smoothing=0.2, weight=w), dict(z_loss=0.1, logit_softcap=2.0)):
        a = jaxent.cross_entropy(x, y, reduction=reduction, **options)
        b = jaxent.cross_entropy(x, onehot, reduction=reduction, **options)
        assert_close(a, b, LOSS[x.dtype])
        ga = jax.grad(lambda x: jnp.sum(jaxent.cross_entropy(x, y, reduction=reduction, **options)))(x)
        gb = jax.grad(lambda x: jnp.sum(jaxent.cross_entropy(x, onehot, reduction=reduction, **options)))(x)
        assert_close(ga, gb, GRAD[x.dtype])


def test_integer_and_one_hot_means_agree_without_weights():
    x, y = logits_of((6, C)), labels_of((6,), C)
    onehot = jax.nn.one_hot(y, C, dtype=jnp.float64)
    assert_close(
        jaxent.cross_entropy(x, y, label_smoothing=0.1),
        jaxent.cross_entropy(x, onehot, label_smoothing=0.1),
        LOSS[x.dtype],
    )


def test_example_mask_equals_boolean_indexing():
    x, y = logits_of((8, C)), labels_of((8,), C)
    keep = np.array([1, 0, 1, 1, 0, 0, 1, 1], bool)
    w = jnp.asarray(np.linspace(0.5, 2.0, C))
    for options in (dict(), dict(weight=w, label_smoothing=0.2)):
        masked = jaxent.cross_entropy(x, y, where=jnp.asarray(keep), **options)
        indexed = jaxent.cross_entropy(x[keep], y[keep], **options)
        assert_close(masked, indexed, LOSS[x.dtype])
        g = jax.grad(lambda x: jaxent.cross_entropy(x, y, where=jnp.asarray(keep), **options))(x)
        assert np.all(np.asarray(g)[~keep] == 0)
        assert_close(g[keep], jax.grad(lambda x: jaxent.cross_entropy(x, y[keep], **options))(x[keep]), GRAD[x.dtype])


def test_class_mask_equals_removing_the_classes():
    x, t = logits_of((6, C)), probs_of((6, C))
    y = jnp.array([0, 1, 3, 4, 0, 3], jnp.int32)
    keep = np.array([1, 1, 0, 1, 1], bool)  # drop class 2
    mask = jnp.broadcast_to(jnp.asarray(keep), x.shape)
    w = jnp.asarray(np.linspace(0.5, 2.0, C))
    new_label = jnp.asarray(np.cumsum(keep) - 1)[y]
    for options in (dict(), dict(label_smoothing=0.3, z_loss=0.01)):
        a = jaxent.cross_entropy(x, y, where=mask, weight=w, reduction="none", **options)
        b = jaxent.cross_entropy(x[:, keep], new_label, weight=w[keep], reduction="none", **options)
        assert_close(a, b, LOSS[x.dtype])
        a = jaxent.cross_entropy(x, t, where=mask, reduction="none", **options)
        b = jaxent.cross_entropy(x[:, keep], t[:, keep], reduction="none", **options)
        assert_close(a, b, LOSS[x.dtype])
    g = jax.grad(lambda x: jaxent.cross_entropy(x, y, where=mask, label_smoothing=0.3))(x)
    assert np.all(np.asarray(g)[:, ~keep] == 0)


def test_fully_masked_row_is_a_masked_example():
    x, y = logits_of((4, C)), labels_of((4,), C)
    mask = jnp.ones((4, C), bool).at[1].set(False)
    a = jaxent.cross_entropy(x, y, where=mask, label_smoothing=0.1)
    b = jaxent.cross_entropy(x, y, where=jnp.array([True, False, True, True]), label_smoothing=0.1)
    assert_close(a, b, LOSS[x.dtype])


def test_axis_equals_moveaxis():
    x, y = logits_of((2, C, 3)), labels_of((2, 3), C)
    a = jaxent.cross_entropy(x, y, axis=1, reduction="none", label_smoothing=0.1)
    b = jaxent.cross_entropy(jnp.moveaxis(x, 1, -1), y, reduction="none", label_smoothing=0.1)
    assert_close(a, b, LOSS[x.dtype])
    ga = jax.grad(lambda x: jaxent.cross_entropy(x, y, axis=1))(x)
    gb = jax.grad(lambda x: jaxent.cross_entropy(jnp.moveaxis(x, 1, -1), y))(x)
    assert_close(ga, gb, GRAD[x.dtype])


def test_eager_jit_and_vmap_agree():
    x, y = logits_of((6, C)), labels_of((6,), C)
    f = functools.partial(jaxent.cross_entropy, reduction="none", label_smoothing=0.1, z_loss=1e-3)
    eager = f(x, y)
    assert_close(jax.jit(f)(x, y), eager, LOSS[x.dtype])
    assert_close(jax.vmap(f)(x, y), eager, LOSS[x.dtype])
    g = jax.grad(lambda x: jnp.sum(f(x, y)))(x)
    assert_close(jax.vmap(jax.grad(lambda xi, yi: f(xi, yi)))(x, y), g, GRAD[x.dtype])


def test_cross_entropy_equals_nll_of_log_softmax():
    x, y = logits_of((6, C)), labels_of((6,), C)
    w = jnp.asarray(np.linspace(0.5, 2.0, C))
    for reduction in REDUCTIONS:
        a = jaxent.cross_entropy(x, y, weight=w, reduction=reduction)
        b = jaxent.nll_loss(jax.nn.log_softmax(x), y, weight=w, reduction=reduction)
        assert_close(a, b, LOSS[x.dtype])


def test_scan_and_checkpoint():
    x, y = logits_of((3, 4, C)), labels_of((3, 4), C)

    def total(x):
        def step(carry, xy):
            return carry + jaxent.cross_entropy(*xy, label_smoothing=0.1), None

        return jax.lax.scan(step, jnp.zeros((), jnp.float64), (x, y))[0]

    direct = sum(jaxent.cross_entropy(x[i], y[i], label_smoothing=0.1) for i in range(3))
    assert_close(total(x), direct, LOSS[x.dtype])
    assert_close(jax.grad(total)(x), jax.grad(jax.checkpoint(total))(x), GRAD[x.dtype])


# --------------------------------------------------------------------------------------
# Infinities, extremes and empty means.


def test_neg_inf_logits_give_no_nan():
    x = jnp.array([[-jnp.inf, 0.0, 1.0], [2.0, -jnp.inf, -jnp.inf], [-jnp.inf, -jnp.inf, 0.5]])
    y = jnp.array([1, 0, 2], jnp.int32)
    t = jax.nn.one_hot(y, 3, dtype=jnp.float64)
    for targets in (y, t):
        for options in (dict(), dict(label_smoothing=0.2), dict(z_loss=0.1, logit_softcap=2.0)):
            loss, g = jax.value_and_grad(lambda x: jaxent.cross_entropy(x, targets, **options))(x)
            assert np.isfinite(loss) and np.all(np.isfinite(g))
            assert np.all(np.asarray(g)[np.isinf(np.asarray(x))] == 0)
            assert_close(loss, ref.cross_entropy(x, targets, **options), LOSS[x.dtype])
    # optax's safe variant agrees on the first row (its plain variant is NaN there).
    assert_close(
        jaxent.cross_entropy(x[:1], t[:1], reduction="none"),
        optax.losses.safe_softmax_cross_entropy(x[:1], t[:1]),
        PARITY,
    )


def test_mostly_neg_inf_rows():
    # flash-attention#1930: rows where almost every logit is -inf (top-p masking).
    x = np.full((3, 4096), -np.inf)
    x[0, 7], x[1, [3, 4000]], x[2, 100] = 1.0, (0.5, -2.0), 3.0
    x = jnp.asarray(x, jnp.float32)
    y = jnp.array([7, 4000, 100], jnp.int32)
    loss, g = jax.value_and_grad(lambda x: jaxent.cross_entropy(x, y, label_smoothing=0.1))(x)
    assert np.isfinite(loss) and np.all(np.isfinite(g))
    assert_close(loss, ref.cross_entropy(x, y, label_smoothing=0.1), dict(rtol=1e-6, atol=1e-6))


def test_target_on_neg_inf_class_is_inf_with_finite_gradients():
    x = jnp.array([[-jnp.inf, 0.0, 1.0], [0.0, 1.0, 2.0]])
    y = jnp.array([0, 1], jnp.int32)
    for targets in (y, jax.nn.one_hot(y, 3, dtype=jnp.float64)):
        for options in (dict(), dict(label_smoothing=0.1, weight=jnp.array([1.0, 2.0, 1.0]))):
            losses = jaxent.cross_entropy(x, targets, reduction="none", **options)
            g = jax.grad(lambda x: jaxent.cross_entropy(x, targets, **options))(x)
            assert losses[0] == np.inf and np.isfinite(losses[1])
            assert np.all(np.isfinite(g))


def test_all_neg_inf_row():
    x = jnp.array([[-jnp.inf, -jnp.inf, -jnp.inf], [0.0, 1.0, 2.0]])
    y = jnp.array([1, 2], jnp.int32)
    losses = jaxent.cross_entropy(x, y, reduction="none", label_smoothing=0.1)
    assert losses[0] == np.inf and np.isfinite(losses[1])
    assert np.all(np.isfinite(jax.grad(lambda x: jaxent.cross_entropy(x, y))(x)))
    ignored = jnp.array([-100, 2], jnp.int32)
    assert jaxent.cross_entropy(x, ignored, reduction="none")[0] == 0
    assert np.all(jax.grad(lambda x: jaxent.cross_entropy(x, ignored))(x)[0] == 0)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_large_logits(dtype):
    x = logits_of((5, 7), 12, scale=1e4, dtype=dtype)
    y = labels_of((5,), 7)
    tol = LOSS[jnp.dtype(dtype)] if dtype == jnp.float64 else dict(rtol=1e-6, atol=2e-3)  # |lse| ~ 1e4
    for options in (dict(), dict(label_smoothing=0.1), dict(logit_softcap=30.0)):
        loss, g = jax.value_and_grad(lambda x: jaxent.cross_entropy(x, y, reduction="sum", **options))(x)
        assert np.isfinite(loss) and np.all(np.isfinite(g))
        assert_close(loss, ref.cross_entropy(x, y, reduction="sum", **options), tol)


def test_one_pass_fallback_for_high_loss_batches():
    # An example with loss > 60 makes the one-pass shift unsafe; the exact pass must take over.
    x = jnp.array([[0.0, 1.0, 200.0], [0.5, 0.2, 0.1]], jnp.float32)
    y = jnp.array([0, 1], jnp.int32)
    got = jaxent.cross_entropy(x, y, reduction="none")
    assert_close(got, ref.numpy_cross_entropy_rows(np.asarray(x), np.asarray(y)), dict(rtol=1e-6, atol=1e-6))
    assert_close(jax.jit(jaxent.cross_entropy)(x, y), jnp.mean(got), dict(rtol=1e-6, atol=1e-6))


@pytest.mark.parametrize("case", ["all_ignored", "all_masked", "zero_weights", "class_masked"])
def test_empty_mean_is_zero_with_zero_gradients(case):
    x, y = logits_of((4, C)), labels_of((4,), C)
    options: dict = dict(label_smoothing=0.1, z_loss=0.01)
    if case == "all_ignored":
        y = jnp.full((4,), -100, jnp.int32)
    elif case == "all_masked":
        options["where"] = jnp.zeros((4,), bool)
    elif case == "zero_weights":
        options["weight"] = jnp.zeros((C,))
    else:
        options["where"] = jnp.zeros((4, C), bool)
    loss, g = jax.value_and_grad(lambda x: jaxent.cross_entropy(x, y, **options))(x)
    assert loss == 0 and np.all(g == 0)


# --------------------------------------------------------------------------------------
# Gradients.

GRAD_CASES = {
    "plain": dict(),
    "weight_smoothing": dict(weight=jnp.array([0.5, 1.0, 2.0, 1.5]), label_smoothing=0.2),
    "z_loss_softcap": dict(z_loss=0.05, logit_softcap=2.0),
    "ignore_mean": dict(ignore_index=1),
    "class_mask": dict(where=jnp.array([[True, True, False, True]] * 3)),
}


@pytest.mark.parametrize("integer", [True, False])
@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_check_grads_forward_and_reverse_mode_second_order(name, integer):
    x = logits_of((3, 4), 20)
    y = jnp.array([0, 1, 3], jnp.int32)
    options = dict(GRAD_CASES[name])
    if not integer:
        y = probs_of((3, 4), seed=21)
        options.pop("ignore_index", None)
    check_grads(lambda x: jaxent.cross_entropy(x, y, **options), (x,), order=2, modes=["fwd", "rev"])
    if not integer:
        check_grads(lambda t: jaxent.cross_entropy(x, t, **options), (y,), order=2, modes=["fwd", "rev"])


@pytest.mark.parametrize("integer", [True, False])
@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_gradients_match_reference_autodiff(name, integer):
    x = logits_of((3, 4), 22)
    y = jnp.array([0, 1, 3], jnp.int32)
    options = dict(GRAD_CASES[name])
    if not integer:
        y = probs_of((3, 4), seed=23)
        options.pop("ignore_index", None)
    argnums = (0,) if integer else (0, 1)
    got = jax.grad(lambda x, y: jaxent.cross_entropy(x, y, **options), argnums)(x, y)
    want = jax.grad(lambda x, y: ref.cross_entropy(x, y, **options), argnums)(x, y)
    for a, b in zip(got, want):
        assert_close(a, b, GRAD[x.dtype])
    got = jax.hessian(lambda x: jaxent.cross_entropy(x, y, **options))(x)
    want = jax.hessian(lambda x: ref.cross_entropy(x, y, **options))(x)
    assert_close(got, want, GRAD[x.dtype])


def test_hyperparameter_gradients_match_reference():
    x, y = logits_of((3, 4), 24), jnp.array([0, 2, 3], jnp.int32)
    t = probs_of((3, 4), seed=25)
    hp = dict(
        weight=jnp.array([0.5, 1.0, 2.0, 1.5]),
        label_smoothing=jnp.array(0.2),
        z_loss=jnp.array(0.05),
        logit_softcap=jnp.array(2.5),
    )
    for targets in (y, t):
        got = jax.grad(lambda hp: jaxent.cross_entropy(x, targets, **hp))(hp)
        want = jax.grad(lambda hp: ref.cross_entropy(x, targets, **hp))(hp)
        for k in hp:
            assert_close(got[k], want[k], GRAD[x.dtype])


def test_hessian_vector_products():
    x, y = logits_of((3, 4), 26), jnp.array([0, 2, 3], jnp.int32)
    v = logits_of((3, 4), 27)
    f = lambda x: jaxent.cross_entropy(x, y, label_smoothing=0.1, logit_softcap=3.0)
    r = lambda x: ref.cross_entropy(x, y, label_smoothing=0.1, logit_softcap=3.0)
    rev_rev = jax.grad(lambda x: jnp.vdot(jax.grad(f)(x), v))(x)
    fwd_rev = jax.jvp(jax.grad(f), (x,), (v,))[1]
    want = jax.jvp(jax.grad(r), (x,), (v,))[1]
    assert_close(rev_rev, want, GRAD[x.dtype])
    assert_close(fwd_rev, want, GRAD[x.dtype])


@pytest.mark.parametrize("integer", [True, False])
@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_forward_mode_transforms_match_the_reference(name, integer):
    x = logits_of((3, 4), 28)
    y = jnp.array([0, 1, 3], jnp.int32)
    options = dict(GRAD_CASES[name])
    if not integer:
        y = probs_of((3, 4), seed=29)
        options.pop("ignore_index", None)
    f = lambda x: jaxent.cross_entropy(x, y, reduction="none", **options)
    r = lambda x: ref.cross_entropy(x, y, reduction="none", **options)
    assert_close(jax.jacfwd(f)(x), jax.jacrev(r)(x), GRAD[x.dtype])
    value, linear = jax.linearize(f, x)
    v = logits_of((3, 4), 30)
    assert_close(value, r(x), LOSS[x.dtype])
    assert_close(linear(v), jax.jvp(r, (x,), (v,))[1], GRAD[x.dtype])
    # nll_loss is plain autodiff of a stable formula: forward mode too.
    assert_close(
        jax.jacfwd(lambda x: jaxent.nll_loss(jax.nn.log_softmax(x), jnp.array([0, 1, 3])))(x),
        jax.jacrev(lambda x: ref.cross_entropy(x, jnp.array([0, 1, 3])))(x),
        GRAD[x.dtype],
    )


# --------------------------------------------------------------------------------------
# Half precision.


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
@pytest.mark.parametrize("integer", [True, False])
def test_half_precision_is_computed_in_float32(dtype, integer):
    x = logits_of((6, 8), 30, dtype=dtype)
    y = labels_of((6,), 8) if integer else probs_of((6, 8), seed=31).astype(dtype)
    x64 = x.astype(jnp.float64)  # the reference sees exactly the rounded inputs
    y64 = y if integer else y.astype(jnp.float64)
    options = dict(label_smoothing=0.1, weight=jnp.linspace(0.5, 2.0, 8, dtype=jnp.float32))
    loss = jaxent.cross_entropy(x, y, **options)
    assert loss.dtype == jnp.float32
    assert_close(loss, ref.cross_entropy(x64, y64, **options), LOSS[jnp.dtype(dtype)])
    argnums = (0,) if integer else (0, 1)
    grads = jax.grad(lambda x, y: jaxent.cross_entropy(x, y, **options), argnums)(x, y)
    want = jax.grad(lambda x, y: ref.cross_entropy(x, y, **options), argnums)(x64, y64)
    for g, w in zip(grads, want):
        assert g.dtype == dtype
        assert_close(g, w, GRAD[jnp.dtype(dtype)])


def test_bfloat16_loss_is_not_quantised_unlike_optax():
    x = jnp.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]], jnp.bfloat16)
    y = jnp.array([0, 1], jnp.int32)
    exact = ref.cross_entropy(x.astype(jnp.float64), y, reduction="none")
    ours = jaxent.cross_entropy(x, y, reduction="none")
    theirs = optax.losses.softmax_cross_entropy_with_integer_labels(x, y)
    assert theirs.dtype == jnp.bfloat16  # optax#1020
    assert np.max(np.abs(np.asarray(ours, np.float64) - exact)) < 1e-6
    assert np.max(np.abs(np.asarray(theirs, np.float64) - exact)) > 1e-3


# --------------------------------------------------------------------------------------
# Bad input.

BAD_INPUTS = [
    (
        dict(logits=np.zeros((8, 10)), targets=np.zeros((8, 5), np.int32)),
        ValueError,
        r"cross_entropy: targets has shape \(8, 5\) but logits has shape \(8, 10\); integer targets must have",
    ),
    (
        dict(logits=np.zeros((8, 10), np.int32), targets=np.zeros((8,), np.int32)),
        TypeError,
        "cross_entropy: logits must be a floating-point array, got dtype int32",
    ),
    (dict(logits=np.zeros((8, 10)), targets=np.zeros((8, 9))), ValueError, "probability targets the shape of logits"),
    (dict(logits=np.zeros((8, 10)), targets=np.zeros((8,), bool)), TypeError, "targets must be integer class indices"),
    (dict(reduction="avg"), ValueError, "reduction must be one of 'none', 'sum' or 'mean', got 'avg'"),
    (dict(label_smoothing=1.5), ValueError, r"label_smoothing must lie in \[0.0, 1.0\], got 1.5"),
    (dict(label_smoothing=-0.1), ValueError, "label_smoothing must lie in"),
    (dict(label_smoothing=np.array([0.1, 0.2])), ValueError, "label_smoothing must be a scalar"),
    (dict(z_loss=-1.0), ValueError, "z_loss must lie in"),
    (dict(logit_softcap=0.0), ValueError, r"logit_softcap must lie in \(0.0, inf\)"),
    (dict(weight=np.ones(9)), ValueError, r"weight has shape \(9,\) but logits has 10 classes .* shape \(10,\)"),
    (dict(axis=2), ValueError, r"axis 2 is out of range for logits of shape \(8, 10\)"),
    (dict(axis=(1, 1)), ValueError, "repeats an axis"),
    (dict(axis=1.0), TypeError, "axis must be an int or a tuple of ints"),
    (dict(where=np.ones((8, 3), bool)), ValueError, r"where has shape \(8, 3\) but logits has shape \(8, 10\)"),
    (dict(where=np.ones((8,))), TypeError, "where must be a boolean mask"),
    (dict(ignore_index=1.5), TypeError, "ignore_index must be a Python int or None"),
    (dict(targets=np.full((8, 10), 0.1), ignore_index=3), ValueError, "ignore_index=3 needs integer targets"),
]


@pytest.mark.parametrize(("kwargs", "error", "match"), BAD_INPUTS)
def test_bad_input_is_a_clear_error(kwargs, error, match):
    args = dict(logits=np.zeros((8, 10)), targets=np.zeros((8,), np.int32))
    args.update(kwargs)
    with pytest.raises(error, match=match):
        jaxent.cross_entropy(args.pop("logits"), args.pop("targets"), **args)


NLL_BAD_INPUTS = [
    (dict(log_probs=np.zeros((8, 10), np.int32)), TypeError, "nll_loss: log_probs must be a floating-point array"),
    (dict(targets=np.zeros((8, 5), np.int32)), ValueError, r"nll_loss: targets has shape \(8, 5\) but log_probs"),
    (dict(reduction="batchmean"), ValueError, "nll_loss: reduction must be one of"),
    (dict(weight=np.ones(3)), ValueError, "nll_loss: weight has shape"),
    (dict(axis=-3), ValueError, "nll_loss: axis -3 is out of range"),
]


@pytest.mark.parametrize(("kwargs", "error", "match"), NLL_BAD_INPUTS)
def test_nll_loss_bad_input_is_a_clear_error(kwargs, error, match):
    args = dict(log_probs=np.zeros((8, 10)), targets=np.zeros((8,), np.int32))
    args.update(kwargs)
    with pytest.raises(error, match=match):
        jaxent.nll_loss(args.pop("log_probs"), args.pop("targets"), **args)


def test_traced_hyperparameter_range_is_checked_under_checkify():
    f = checkify.checkify(
        jax.jit(lambda eps: jaxent.cross_entropy(jnp.zeros((2, 3)), jnp.array([0, 1]), label_smoothing=eps)),
        errors=checkify.user_checks,
    )
    f(0.5)[0].throw()
    with pytest.raises(checkify.JaxRuntimeError, match=r"label_smoothing must lie in \[0.0, 1.0\], got 1.5"):
        f(1.5)[0].throw()


def test_errors_are_raised_at_trace_time_under_jit():
    with pytest.raises(ValueError, match="label_smoothing"):
        jax.jit(lambda x, y: jaxent.cross_entropy(x, y, label_smoothing=2.0))(
            jnp.zeros((2, 3)), jnp.zeros((2,), jnp.int32)
        )


# --------------------------------------------------------------------------------------
# Out-of-range labels.


@pytest.mark.parametrize("bad", [-1, 3, 100, -100])
def test_out_of_range_label_is_nan_never_wrapped(bad):
    # optax wraps -1 to the last class and gives NaN or a wrong gradient for >= C.
    x = jnp.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]])
    y = jnp.array([bad, 1], jnp.int32)
    ignore = None if bad == -100 else -100
    losses = jaxent.cross_entropy(x, y, reduction="none", ignore_index=ignore)
    assert np.isnan(losses[0]) and np.isfinite(losses[1])
    assert np.isnan(jaxent.cross_entropy(x, y, ignore_index=ignore))
    g = jax.grad(lambda x: jnp.sum(jaxent.cross_entropy(x, y, reduction="none", ignore_index=ignore)))(x)
    assert np.all(np.isnan(g[0])) and np.all(np.isfinite(g[1]))
    assert np.isnan(jaxent.nll_loss(x, y, reduction="none", ignore_index=ignore)[0])


def test_out_of_range_label_on_a_masked_example_is_dropped():
    x = jnp.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]])
    y = jnp.array([7, 1], jnp.int32)
    assert np.isfinite(jaxent.cross_entropy(x, y, where=jnp.array([False, True])))


def test_checkify_names_the_offending_label():
    x, y = jnp.zeros((3, 4)), jnp.array([1, 9, 2], jnp.int32)
    f = checkify.checkify(jax.jit(lambda x, y: jaxent.cross_entropy(x, y)), errors=checkify.user_checks)
    err, _ = f(x, y)
    with pytest.raises(checkify.JaxRuntimeError, match=r"cross_entropy: targets contain the label 9, outside \[0, 4\)"):
        err.throw()
    err, _ = f(x, jnp.array([1, -100, 2], jnp.int32))
    err.throw()  # ignore_index is not out of range


# --------------------------------------------------------------------------------------
# Traced hyperparameters and loss objects.


def test_traced_hyperparameters_do_not_recompile():
    x, y = logits_of((4, C)), labels_of((4,), C)
    traces = []

    @jax.jit
    def f(x, y, eps, z, cap, w):
        traces.append(1)
        return jaxent.cross_entropy(x, y, label_smoothing=eps, z_loss=z, logit_softcap=cap, weight=w)

    w = jnp.ones((C,))
    for eps, z, cap in [(0.0, 0.0, 5.0), (0.1, 0.01, 2.0), (0.3, 0.0, 1.0)]:
        got = f(x, y, eps, z, cap, w)
        assert_close(
            got, jaxent.cross_entropy(x, y, label_smoothing=eps, z_loss=z, logit_softcap=cap, weight=w), LOSS[x.dtype]
        )
    assert len(traces) == 1


def test_loss_objects_equal_their_functions():
    x, y = logits_of((4, C)), labels_of((4,), C)
    w = jnp.asarray(np.linspace(0.5, 2.0, C))
    loss = jaxent.CrossEntropyLoss(weight=w, label_smoothing=0.1, z_loss=1e-3, reduction="sum")
    want = jaxent.cross_entropy(x, y, weight=w, label_smoothing=0.1, z_loss=1e-3, reduction="sum")
    assert_close(loss(x, y), want, LOSS[x.dtype])
    mask = jnp.array([True, False, True, True])
    assert_close(
        loss(x, y, where=mask),
        jaxent.cross_entropy(x, y, weight=w, label_smoothing=0.1, z_loss=1e-3, reduction="sum", where=mask),
        LOSS[x.dtype],
    )
    assert_close(
        jaxent.NLLLoss(weight=w)(jax.nn.log_softmax(x), y),
        jaxent.nll_loss(jax.nn.log_softmax(x), y, weight=w),
        LOSS[x.dtype],
    )
    # A pytree: array fields are leaves, structural fields static; usable as a jit argument.
    leaves = jax.tree_util.tree_leaves(loss)
    assert any(leaf is w for leaf in leaves) and "sum" not in leaves
    assert_close(jax.jit(lambda loss, x, y: loss(x, y))(loss, x, y), want, LOSS[x.dtype])
    g = jax.grad(lambda loss: loss(x, y))(loss)
    assert g.weight.shape == (C,) and g.reduction == "sum"
    with pytest.raises(dataclasses_frozen_error()):
        loss.reduction = "mean"  # type: ignore[misc]


def dataclasses_frozen_error():
    import dataclasses

    return dataclasses.FrozenInstanceError


# --------------------------------------------------------------------------------------
# Compiled memory (deterministic, unlike time).

N_MEM, V_MEM = 4096, 32000
F32_BUFFER = N_MEM * V_MEM * 4


MEMORY_OPTIONS = {
    "int": dict(),
    "smoothing": dict(label_smoothing=0.1),
    "weight_ignore_smoothing": dict(weight=np.ones(V_MEM, np.float32), ignore_index=3, label_smoothing=0.1),
    "z_loss": dict(z_loss=1e-4),
    "softcap": dict(logit_softcap=30.0),
    "class_where": dict(),
    "probs": dict(),
    "probs_smoothing": dict(label_smoothing=0.1),
}


def _memory_case(name, dtype, gradient):
    x = jax.ShapeDtypeStruct((N_MEM, V_MEM), dtype)
    options = MEMORY_OPTIONS[name]
    if name.startswith("probs"):
        args, f = (x, x), lambda x, t: jaxent.cross_entropy(x, t, **options)
    elif name == "class_where":
        m = jax.ShapeDtypeStruct((N_MEM, V_MEM), jnp.bool_)
        args, f = (x, jax.ShapeDtypeStruct((N_MEM,), jnp.int32), m), lambda x, y, m: jaxent.cross_entropy(x, y, where=m)
    else:
        args, f = (x, jax.ShapeDtypeStruct((N_MEM,), jnp.int32)), lambda x, y: jaxent.cross_entropy(x, y, **options)
    return (jax.value_and_grad(f) if gradient else f), args


@pytest.mark.parametrize("gradient", [True, False], ids=["value_and_grad", "forward"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("name", sorted(MEMORY_OPTIONS))
def test_temp_memory_is_at_most_one_percent_of_the_logits(name, dtype, gradient):
    # Compiled temporary memory (deterministic, unlike time), fwd+bwd and forward only:
    # at most 1% of one float32 [N, V] buffer, so no float32 copy of half-precision logits.
    f, args = _memory_case(name, jnp.dtype(dtype), gradient)
    assert programs.temp_bytes(f, *args) <= programs.one_percent_of_f32((N_MEM, V_MEM))


def test_memory_bound_is_meaningful():
    # optax holds float32 copies of bf16 logits in fwd+bwd: the bound can fail.
    x = jax.ShapeDtypeStruct((N_MEM, V_MEM), jnp.bfloat16)
    y = jax.ShapeDtypeStruct((N_MEM,), jnp.int32)
    theirs = jax.value_and_grad(lambda x, y: optax.losses.softmax_cross_entropy_with_integer_labels(x, y).mean())
    assert programs.temp_bytes(theirs, x, y) > F32_BUFFER


# --------------------------------------------------------------------------------------
# What GPUs and TPUs get: no data-dependent branch, no optimization_barrier.

NEUTRAL_CASES = {
    "int": dict(),
    "smoothing_weight_ignore": dict(weight=np.ones(7, np.float32), ignore_index=3, label_smoothing=0.1),
    "z_loss_softcap": dict(z_loss=1e-4, logit_softcap=30.0),
    "class_where": dict(where=np.tile(np.array([True] * 6 + [False]), (4, 1))),
    "probs": dict(),
}


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("name", sorted(NEUTRAL_CASES))
def test_accelerator_programs_have_no_branch_and_no_barrier(name, dtype):
    x = logits_of((4, 7)).astype(dtype)
    y = probs_of((4, 7), seed=3).astype(dtype) if name == "probs" else labels_of((4,), 7)
    options = NEUTRAL_CASES[name]
    for f in (
        jax.value_and_grad(lambda x: jaxent.cross_entropy(x, y, **options)),
        lambda x: jax.jvp(lambda x: jaxent.cross_entropy(x, y, **options), (x,), (x,)),
        jax.value_and_grad(lambda x: jaxent.nll_loss(jax.nn.log_softmax(x.astype(jnp.float32)), labels_of((4,), 7))),
    ):
        programs.assert_backend_neutral(f, x)


def test_branch_check_can_fail():
    f = lambda x: jax.lax.cond(jnp.sum(x) > 0, lambda: x, lambda: -x)
    assert programs.data_dependent_branches(jax.make_jaxpr(f)(jnp.ones(3)))
    g = lambda x: jax.lax.platform_dependent(x, cpu=jax.lax.optimization_barrier, default=lambda x: x)
    assert not programs.data_dependent_branches(jax.make_jaxpr(g)(jnp.ones(3)))
    assert "optimization_barrier" in programs.accelerator_programs(jax.lax.optimization_barrier, jnp.ones(3))["cuda"]
