"""dice_loss, binary_dice_loss and multiclass_generalized_dice_loss against float64 references and optax."""

from __future__ import annotations

import dataclasses

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
F64 = jnp.dtype(jnp.float64)
SHAPE = (2, 4, 3, 3)  # [B, H, W, C]


def logits_of(shape=SHAPE, seed=0, dtype=jnp.float64):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape) * 1.5).astype(dtype)


def onehot_of(shape=SHAPE, seed=1):
    labels = np.random.default_rng(seed).integers(0, shape[-1], size=shape[:-1])
    return jax.nn.one_hot(jnp.asarray(labels), shape[-1], dtype=F64)


def test_golden_value_by_hand():
    x = jnp.array([[[2.0, -1.0], [0.5, 0.5], [-1.0, 1.0]]])
    t = jnp.array([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])
    p = np.asarray(jax.nn.softmax(x, axis=-1))[0]
    tt = np.asarray(t)[0]
    inter, ps, ts = (p * tt).sum(0), p.sum(0), tt.sum(0)
    per_class = 1 - (inter + 1) / (inter + 0.5 * (ps - inter) + 0.5 * (ts - inter) + 1)
    assert_close(jaxent.dice_loss(x, t, reduction="none"), [per_class.mean()], LOSS[F64])
    assert_close(jaxent.dice_loss(x, t, class_reduction="none", reduction="none"), [per_class], LOSS[F64])


OPTIONS = [
    dict(),
    dict(alpha=0.3, beta=0.7),
    dict(class_weights=jnp.array([1.0, 2.0, 0.5])),
    dict(ignore_background=True),
    dict(axis=(1,)),
    dict(smooth=0.0),
    dict(apply_softmax=False),
]


def test_dice_matches_optax_and_reference_on_every_option():
    x, t = logits_of(), onehot_of()
    cases = 0
    for kwargs in OPTIONS:
        inputs = jax.nn.softmax(x, axis=-1) if kwargs.get("apply_softmax") is False else x
        for class_reduction in ("mean", "sum", "none"):
            with jax.numpy_rank_promotion("allow"):  # optax's class weights broadcast implicitly
                want = optax.losses.dice_loss(inputs, t, reduction=class_reduction, **kwargs)
            got = jaxent.dice_loss(inputs, t, class_reduction=class_reduction, reduction="none", **kwargs)
            assert_close(got, want, PARITY)
            cases += 1
        if kwargs.get("apply_softmax") is not False:  # optax's eager probability check cannot be traced
            g = jax.grad(lambda x: jaxent.dice_loss(x, t, reduction="sum", **kwargs))(inputs)
            with jax.numpy_rank_promotion("allow"):
                w = jax.grad(lambda x: jnp.sum(optax.losses.dice_loss(x, t, **kwargs)))(inputs)
            assert_close(g, w, PARITY)
    assert cases == 21
    # The float64 reference and the example reductions.
    probs = jax.nn.softmax(x, axis=-1)
    per_class = ref.dice_per_class(probs, t, (1, 2))
    for reduction, want in (
        ("none", per_class.mean(-1)),
        ("sum", per_class.mean(-1).sum()),
        ("mean", per_class.mean()),
    ):
        assert_close(jaxent.dice_loss(x, t, reduction=reduction), want, LOSS[F64])


def test_binary_and_generalized_match_optax():
    x, t = logits_of(), onehot_of()
    cases = 0
    for xb, tb in ((x[..., 0], t[..., 0]), (x[..., :1], t[..., :1])):
        assert_close(jaxent.binary_dice_loss(xb, tb, reduction="none"), optax.losses.binary_dice_loss(xb, tb), PARITY)
        g = jax.grad(lambda a: jaxent.binary_dice_loss(a, tb, reduction="sum"))(xb)
        assert_close(g, jax.grad(lambda a: jnp.sum(optax.losses.binary_dice_loss(a, tb)))(xb), PARITY)
        cases += 1
    pb = jax.nn.sigmoid(x[..., 0])
    # optax's apply_sigmoid=False raises (its sum-to-1 check needs the one channel to be 1): the reference.
    want = ref.dice_per_class(pb[..., None], t[..., :1], (1, 2), smooth=0.5)[..., 0]
    got = jaxent.binary_dice_loss(pb, t[..., 0], smooth=0.5, apply_sigmoid=False, reduction="none")
    assert_close(got, want, LOSS[F64])
    per = ref.dice_per_class(jax.nn.sigmoid(x[..., :1]), t[..., :1], (1, 2))[..., 0]
    assert_close(jaxent.binary_dice_loss(x[..., 0], t[..., 0]), per.mean(), LOSS[F64])
    for kwargs in (dict(), dict(ignore_background=True), dict(smooth=0.1)):
        with jax.numpy_rank_promotion("allow"):  # optax's class weights broadcast implicitly
            want = optax.losses.multiclass_generalized_dice_loss(x, t, **kwargs)
            w = jax.grad(lambda a: optax.losses.multiclass_generalized_dice_loss(a, t, **kwargs))(x)
        assert_close(jaxent.multiclass_generalized_dice_loss(x, t, **kwargs), want, PARITY)
        g = jax.grad(lambda a: jaxent.multiclass_generalized_dice_loss(a, t, **kwargs))(x)
        assert_close(g, w, PARITY)
        cases += 1
    assert cases == 5


def test_where_grads_transforms_dtypes_and_extremes():
    x, t = logits_of(), onehot_of()
    pixels = jnp.asarray(np.random.default_rng(2).random(SHAPE[:-1]) > 0.3)
    # A pixel mask equals the sums over the kept pixels only (NaN padding stays out).
    probs = jax.nn.softmax(x, axis=-1)
    want = ref.dice_per_class(probs, t, (1, 2), where=pixels[..., None]).mean(-1)
    padded = jnp.where(pixels[..., None], x, jnp.nan)
    got, g = jax.value_and_grad(lambda a: jaxent.dice_loss(a, t, where=pixels, reduction="sum"))(padded)
    assert_close(got, jnp.sum(want), LOSS[F64])
    assert np.all(np.asarray(g)[~np.asarray(pixels)] == 0)
    f = lambda a, b: jaxent.dice_loss(a, b, where=pixels, alpha=0.3, beta=0.7)
    check_grads(f, (x, t), order=2, modes=["fwd", "rev"])
    check_grads(lambda a: jaxent.multiclass_generalized_dice_loss(a, t), (x,), order=2, modes=["fwd", "rev"])
    check_grads(lambda a: jaxent.binary_dice_loss(a, t[..., 0]), (x[..., 0],), order=2, modes=["fwd", "rev"])
    gr = jax.grad(lambda a: jnp.sum(ref.dice_per_class(jax.nn.softmax(a, -1), t, (1, 2)).mean(-1)))(x)
    assert_close(jax.grad(lambda a: jaxent.dice_loss(a, t, reduction="sum"))(x), gr, GRAD[F64])
    # eager = jit = vmap (per example: the Dice sums are per example).
    fn = lambda a, b: jaxent.dice_loss(a, b, reduction="none")
    assert_close(jax.jit(fn)(x, t), fn(x, t), LOSS[F64])
    assert_close(jax.vmap(lambda a, b: fn(a[None], b[None])[0])(x, t), fn(x, t), LOSS[F64])
    # bf16 in float32; gradients in bf16; extreme and -inf logits give no NaN.
    xb = x.astype(jnp.bfloat16)
    assert jaxent.dice_loss(xb, t).dtype == jnp.float32
    assert_close(jaxent.dice_loss(xb, t), jaxent.dice_loss(xb.astype(F64), t), LOSS[jnp.dtype(jnp.bfloat16)])
    assert jax.grad(jaxent.dice_loss)(xb, t).dtype == jnp.bfloat16
    extreme = (x * 1e4).at[0, 0, 0, 0].set(-jnp.inf)
    for fn in (jaxent.dice_loss, jaxent.multiclass_generalized_dice_loss):
        value, g = jax.value_and_grad(fn)(extreme, t)
        assert np.isfinite(value) and np.all(np.isfinite(g))
    value, g = jax.value_and_grad(jaxent.binary_dice_loss)(extreme[..., 0].at[0, 1, 1].set(jnp.inf), t[..., 0])
    assert np.isfinite(value) and np.all(np.isfinite(g))


def test_loss_objects_equal_the_functions():
    x, t = logits_of(), onehot_of()
    w = jnp.array([1.0, 2.0, 0.5])
    obj = jaxent.DiceLoss(class_weights=w, alpha=0.3, beta=0.7, reduction="sum")
    assert len(jax.tree_util.tree_leaves(obj)) == 4  # class_weights, smooth, alpha, beta (no static field)
    want = jaxent.dice_loss(x, t, class_weights=w, alpha=0.3, beta=0.7, reduction="sum")
    assert_close(jax.jit(lambda o, a, b: o(a, b))(obj, x, t), want, LOSS[F64])
    assert_close(
        jaxent.BinaryDiceLoss(smooth=0.5)(x[..., 0], t[..., 0]),
        jaxent.binary_dice_loss(x[..., 0], t[..., 0], smooth=0.5),
        LOSS[F64],
    )
    gd = jaxent.MulticlassGeneralizedDiceLoss(ignore_background=True)
    assert_close(gd(x, t), jaxent.multiclass_generalized_dice_loss(x, t, ignore_background=True), LOSS[F64])
    with pytest.raises(dataclasses.FrozenInstanceError):
        obj.reduction = "mean"  # type: ignore[misc]


BAD_INPUTS = [
    (
        jaxent.dice_loss,
        dict(predictions=np.zeros((2, 3, 3), np.int32)),
        TypeError,
        "dice_loss: predictions must be a floating",
    ),
    (
        jaxent.dice_loss,
        dict(targets=np.zeros((2, 4, 3))),
        ValueError,
        r"dice_loss: targets has shape \(2, 4, 3\) but predictions",
    ),
    (jaxent.dice_loss, dict(axis=(1, 2)), ValueError, r"dice_loss: axis \(1, 2\) includes the class axis"),
    (jaxent.dice_loss, dict(class_reduction="avg"), ValueError, "dice_loss: class_reduction must be one of"),
    (jaxent.dice_loss, dict(reduction="avg"), ValueError, "dice_loss: reduction must be one of"),
    (jaxent.dice_loss, dict(class_weights=np.ones((2,))), ValueError, r"dice_loss: class_weights has shape \(2,\)"),
    (jaxent.dice_loss, dict(smooth=-1.0), ValueError, r"dice_loss: smooth must lie in \[0.0, inf\)"),
    (jaxent.dice_loss, dict(where=np.ones((2,), bool)), ValueError, r"dice_loss: where has shape \(2,\)"),
    (jaxent.binary_dice_loss, dict(reduction="avg"), ValueError, "binary_dice_loss: reduction must be one of"),
    (
        jaxent.multiclass_generalized_dice_loss,
        dict(targets=np.zeros((2, 3, 4))),
        ValueError,
        "multiclass_generalized_dice_loss: targets has shape",
    ),
]


@pytest.mark.parametrize(("fn", "kwargs", "error", "match"), BAD_INPUTS)
def test_bad_input_is_a_clear_error(fn, kwargs, error, match):
    args = dict(predictions=np.zeros((2, 3, 3)), targets=np.zeros((2, 3, 3)))
    args.update(kwargs)
    with pytest.raises(error, match=match):
        fn(args.pop("predictions"), args.pop("targets"), **args)


@pytest.mark.parametrize("chunks", [3, 512])
def test_column_sums_in_slices_equal_the_direct_sums(monkeypatch, chunks):
    # On CPU, large inputs are summed over the pixels in slices (a loop; the last window
    # overlaps the one before and must not count its rows twice): forced here at a small
    # shape, 3 slices of 2 rows for 5 rows (or one row per slice), against the reference.
    from jaxent import _backend

    monkeypatch.setattr(_backend, "_COLUMN_DIRECT", 0)
    monkeypatch.setattr(_backend, "_COLUMN_CHUNKS", chunks)
    shape = (2, 5, 3, 4)
    x, t = logits_of(shape, seed=3), onehot_of(shape, seed=4)
    pixels = jnp.asarray(np.random.default_rng(5).random(shape[:-1]) > 0.3)
    fn = lambda a: jaxent.dice_loss(a, t, where=pixels, reduction="sum")
    want = lambda a: jnp.sum(ref.dice_per_class(jax.nn.softmax(a, -1), t, (1, 2), where=pixels[..., None]).mean(-1))
    got, g = jax.value_and_grad(fn)(x)
    assert_close(got, want(x), LOSS[F64])
    assert_close(g, jax.grad(want)(x), GRAD[F64])
    gd = lambda a: jaxent.multiclass_generalized_dice_loss(a, t, reduction="sum")
    assert_close(gd(x), jax.jit(gd)(x), LOSS[F64])
    monkeypatch.setattr(_backend, "_COLUMN_DIRECT", 2**22)
    assert_close(gd(x), jaxent.multiclass_generalized_dice_loss(x, t, reduction="sum"), LOSS[F64])


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["f32", "bf16"])
def test_compiled_temp_memory_has_no_pixel_by_class_buffer(dtype):
    # 4096 x 32000 as [8, 512, 32000] images: forward and value_and_grad hold at most 1% of
    # one float32 [N, C] buffer plus a few per-class [B, C] arrays (the sums and their
    # cotangents; class_reduction="none" returns [B, C]); optax holds whole [N, C] buffers.
    from tests import programs

    n, c = programs.BIG
    x = jax.ShapeDtypeStruct((8, n // 8, c), dtype)
    bound = programs.one_percent_of_f32(programs.BIG) + 8 * (8 * c * 4)
    for f in (jaxent.dice_loss, jaxent.multiclass_generalized_dice_loss):
        for g in (f, jax.value_and_grad(f)):
            assert programs.temp_bytes(g, x, x) <= bound, f.__name__
    flat = jax.ShapeDtypeStruct(programs.BIG, dtype)
    for g in (jaxent.binary_dice_loss, jax.value_and_grad(jaxent.binary_dice_loss)):
        assert programs.temp_bytes(g, flat, flat) <= programs.one_percent_of_f32(programs.BIG)
