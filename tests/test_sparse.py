"""sparsemax_loss, multiclass_sparsemax_loss and make_fenchel_young_loss against float64 references and optax."""

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
from tests import programs
from tests import references as ref
from tests.tolerances import GRAD, LOSS, PARITY, assert_close

REDUCTIONS = ("none", "sum", "mean")
F64 = jnp.dtype(jnp.float64)


def values_of(shape, seed=0, scale=1.0, dtype=jnp.float64):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape) * scale).astype(dtype)


def labels_of(shape, c, seed=0):
    return jnp.asarray(np.random.default_rng(seed).integers(0, c, size=shape), jnp.int32)


def bits_of(shape, seed=0):
    return jnp.asarray(np.random.default_rng(seed).integers(0, 2, size=shape), jnp.int32)


# --------------------------------------------------------------------------------------
# Binary sparsemax loss.


def test_binary_golden_values_and_optax_parity():
    x = jnp.array([-2.0, 0.0, 0.5, 3.0, -0.5, 1.0])
    y = jnp.array([0, 1, 1, 0, 0, 1])
    # u = x (label 0) or -x (label 1): -2 -> 0, 0 -> 1/4, -0.5 -> 1/16, 3 -> 3, -0.5 -> 1/16, -1 -> 0.
    want = [0.0, 0.25, 0.0625, 3.0, 0.0625, 0.0]
    assert_close(jaxent.sparsemax_loss(x, y, reduction="none"), want, LOSS[F64])
    assert_close(jaxent.sparsemax_loss(x, y, reduction="sum"), sum(want), LOSS[F64])
    assert_close(jaxent.sparsemax_loss(x, y), sum(want) / 6, LOSS[F64])
    # optax on random cases: values and gradients (optax's output is reduction="none").
    cases = 0
    for seed, shape in enumerate([(7,), (3, 4), (2, 3, 2)]):
        x, y = values_of(shape, seed, 1.5), bits_of(shape, seed + 10)
        assert_close(jaxent.sparsemax_loss(x, y, reduction="none"), optax.losses.sparsemax_loss(x, y), PARITY)
        got = jax.grad(lambda x: jaxent.sparsemax_loss(x, y, reduction="sum"))(x)
        assert_close(got, jax.grad(lambda x: optax.losses.sparsemax_loss(x, y).sum())(x), PARITY)
        cases += 1
    assert cases == 3


def test_binary_reference_where_grads_and_bool_labels():
    x, y = values_of((3, 5), 1, 1.5), bits_of((3, 5), 2)
    where = jnp.asarray(np.random.default_rng(3).random((3, 5)) > 0.3)
    for reduction in REDUCTIONS:
        got = jaxent.sparsemax_loss(x, y, where=where, reduction=reduction)
        assert_close(got, ref.sparsemax_loss(x, y, where=where, reduction=reduction), LOSS[F64])
    assert_close(jaxent.sparsemax_loss(x, y == 1), jaxent.sparsemax_loss(x, y), LOSS[F64])
    assert_close(jaxent.sparsemax_loss(x, y.astype(jnp.float64)), jaxent.sparsemax_loss(x, y), LOSS[F64])
    keep = np.asarray(where)
    assert_close(jaxent.sparsemax_loss(x, y, where=where), jaxent.sparsemax_loss(x[keep], y[keep]), LOSS[F64])
    g = jax.grad(lambda x: jaxent.sparsemax_loss(x, y, where=where))(x)
    assert_close(g, jax.grad(lambda x: ref.sparsemax_loss(x, y, where=where))(x), GRAD[F64])
    assert np.all(np.asarray(g)[~keep] == 0)
    check_grads(lambda x: jaxent.sparsemax_loss(x, y, where=where), (x,), order=2, modes=["fwd", "rev"])
    # NaN padding under where stays out; an empty mean is 0 with zero gradient.
    loss, gp = jax.value_and_grad(lambda x: jaxent.sparsemax_loss(x, y, where=where))(jnp.where(where, x, jnp.nan))
    assert_close(loss, jaxent.sparsemax_loss(x, y, where=where), LOSS[F64])
    assert_close(gp, g, GRAD[F64])
    loss, g = jax.value_and_grad(lambda x: jaxent.sparsemax_loss(x, y, where=jnp.zeros((3, 5), bool)))(x)
    assert loss == 0 and np.all(g == 0)


def test_binary_infinite_and_extreme_logits_are_exact():
    x = jnp.array([jnp.inf, -jnp.inf, jnp.inf, -jnp.inf, 1e4, -1e4])
    y = jnp.array([1, 0, 0, 1, 0, 0])
    losses, g = jax.vmap(jax.value_and_grad(lambda x, y: jaxent.sparsemax_loss(x, y, reduction="sum")))(x, y)
    np.testing.assert_array_equal(losses, [0, 0, jnp.inf, jnp.inf, 1e4, 0])
    np.testing.assert_array_equal(g, [0, 0, 1, -1, 1, 0])
    hess = jax.vmap(jax.hessian(lambda x, y: jaxent.sparsemax_loss(x, y, reduction="sum")))(x, y)
    assert np.all(np.isfinite(hess))


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float32])
def test_binary_half_precision_and_dtypes(dtype):
    x, y = values_of((4, 5), 4, 1.5, dtype), bits_of((4, 5), 5)
    loss = jaxent.sparsemax_loss(x, y)
    assert loss.dtype == jnp.float32
    assert_close(loss, ref.sparsemax_loss(x.astype(jnp.float64), y), LOSS[jnp.dtype(dtype)])
    g = jax.grad(jaxent.sparsemax_loss)(x, y)
    assert g.dtype == dtype
    assert_close(g, jax.grad(ref.sparsemax_loss)(x.astype(jnp.float64), y), GRAD[jnp.dtype(dtype)])


def test_binary_eager_jit_vmap_and_object():
    x, y = values_of((6, 3), 6, 1.5), bits_of((6, 3), 7)
    f = functools.partial(jaxent.sparsemax_loss, reduction="none")
    assert_close(jax.jit(f)(x, y), f(x, y), LOSS[F64])
    assert_close(jax.vmap(f)(x, y), f(x, y), LOSS[F64])
    loss = jaxent.SparsemaxLoss(reduction="sum")
    assert jax.tree_util.tree_leaves(loss) == []
    assert_close(jax.jit(lambda o, x, y: o(x, y))(loss, x, y), jnp.sum(f(x, y)), LOSS[F64])
    with pytest.raises(dataclasses.FrozenInstanceError):
        loss.reduction = "mean"  # type: ignore[misc]


def test_binary_traced_bad_labels_are_nan():
    x = jnp.array([0.3, 0.2])
    assert np.isnan(jax.jit(lambda x, y: jaxent.sparsemax_loss(x, y, reduction="none"))(x, jnp.array([2, 1]))[0])


BINARY_BAD = [
    (dict(logits=np.zeros((4,), np.int32)), TypeError, "sparsemax_loss: logits must be a floating-point array"),
    (dict(labels=np.zeros((5,))), ValueError, r"sparsemax_loss: targets has shape \(5,\) but logits has shape \(4,\)"),
    (dict(labels=np.array([0, 1, 2, 0])), ValueError, r"sparsemax_loss: labels must lie in \{0, 1\}, got 2"),
    (dict(reduction="batchmean"), ValueError, "sparsemax_loss: reduction must be one of"),
    (dict(where=np.ones((4,), np.int32)), TypeError, "sparsemax_loss: where must be a boolean mask"),
]


@pytest.mark.parametrize(("kwargs", "error", "match"), BINARY_BAD)
def test_binary_bad_input_is_a_clear_error(kwargs, error, match):
    args = dict(logits=np.zeros((4,)), labels=np.zeros((4,), np.int32))
    args.update(kwargs)
    with pytest.raises(error, match=match):
        jaxent.sparsemax_loss(args.pop("logits"), args.pop("labels"), **args)


# --------------------------------------------------------------------------------------
# Multiclass sparsemax loss.

_multi = jax.jit(jaxent.multiclass_sparsemax_loss, static_argnames=("axis", "reduction"))


def test_multiclass_golden_values():
    s = jnp.array([[1.0, 0.5, -1.0], [0.2, 0.1, 0.0], [3.0, 0.0, 0.0]])
    # Row 1: tau = 0.25, p = (0.75, 0.25, 0), loss = 0.75 + 0.25*0.5 - (0.5625 + 0.0625)/2 + 0.5 - 1 = 0.0625.
    # Row 2: tau = 0.1/3 - 0.2... p = (0.4333, 0.3333, 0.2333), y = 2: <p,s> - |p|^2/2 + 1/2 - 0.
    p2 = np.array([0.2, 0.1, 0.0]) - (0.3 - 1) / 3
    row2 = p2 @ np.array([0.2, 0.1, 0.0]) - p2 @ p2 / 2 + 0.5
    want = [0.0625, row2, 0.0]  # row 3: p = onehot(0) = target
    got = jaxent.multiclass_sparsemax_loss(s, jnp.array([0, 2, 0]), reduction="none")
    assert_close(got, want, LOSS[F64])
    g = jax.grad(lambda s: jaxent.multiclass_sparsemax_loss(s, jnp.array([0, 2, 0]), reduction="sum"))(s)
    assert_close(g, [[-0.25, 0.25, 0.0], [p2[0], p2[1], p2[2] - 1], [0, 0, 0]], GRAD[F64])


@pytest.mark.parametrize("shape", [(5, 4), (3, 2, 6), (1, 9)])
def test_multiclass_matches_optax_and_reference(shape):
    s, y = values_of(shape, 8, 1.0), labels_of(shape[:-1], shape[-1], 9)
    with jax.numpy_dtype_promotion("standard"):  # optax's projection needs it
        want = optax.losses.multiclass_sparsemax_loss(s.reshape(-1, shape[-1]), y.reshape(-1)).reshape(shape[:-1])
        flat = lambda s: optax.losses.multiclass_sparsemax_loss(s.reshape(-1, shape[-1]), y.reshape(-1)).sum()
        want_grad = jax.grad(flat)(s)
    assert_close(_multi(s, y, reduction="none"), want, PARITY)
    for reduction in REDUCTIONS:
        assert_close(
            _multi(s, y, reduction=reduction), ref.multiclass_sparsemax_loss(s, y, reduction=reduction), LOSS[F64]
        )
    g = jax.grad(lambda s: _multi(s, y, reduction="sum"))(s)
    p = ref.sparsemax_probabilities(s)
    assert_close(g, p - jax.nn.one_hot(y, shape[-1], dtype=F64), GRAD[F64])
    assert_close(g, want_grad, PARITY)


def test_multiclass_second_order_is_the_sparsemax_jacobian():
    s, y = values_of((4, 6), 10, 0.4), labels_of((4,), 6, 11)
    f = lambda s: jaxent.multiclass_sparsemax_loss(s, y, reduction="sum")
    check_grads(f, (s,), order=2, modes=["fwd", "rev"])
    p = ref.sparsemax_probabilities(s)
    assert np.all(np.sum(p > 0, -1) >= 2)  # supports of several classes
    hess = jax.hessian(f)(s)
    for n in range(4):
        on = (p[n] > 0).astype(np.float64)
        assert_close(hess[n, :, n, :], np.diag(on) - np.outer(on, on) / on.sum(), GRAD[F64])
    assert_close(jax.jacfwd(jax.grad(f))(s), hess, GRAD[F64])
    ds = values_of((4, 6), 12)
    _, tangent = jax.jvp(f, (s,), (ds,))
    assert_close(tangent, jnp.sum(jax.grad(f)(s) * ds), GRAD[F64])


def test_multiclass_where_axis_and_masks():
    s, y = values_of((4, 5), 13), labels_of((4,), 5, 14)
    rows = jnp.array([True, False, True, True])
    keep = np.asarray(rows)
    assert_close(_multi(s, y, where=rows), _multi(s[keep], y[keep]), LOSS[F64])
    loss, gp = jax.value_and_grad(lambda s: _multi(s, y, where=rows))(jnp.where(rows[:, None], s, jnp.nan))
    assert_close(loss, _multi(s, y, where=rows), LOSS[F64])
    assert np.all(np.asarray(gp)[~keep] == 0)
    # A class mask removes those classes (as if deleted from scores); fully masked rows drop out.
    cm = np.random.default_rng(15).random((4, 5)) > 0.3
    cm[np.arange(4), np.asarray(y)] = True
    cm[2] = False
    got = _multi(s, y, where=jnp.asarray(cm), reduction="none")
    want = ref.multiclass_sparsemax_loss(s, y, where=cm, reduction="none")
    assert_close(got, want, LOSS[F64])
    assert got[2] == 0
    assert_close(_multi(s, y, where=jnp.asarray(cm)), ref.multiclass_sparsemax_loss(s, y, where=cm), LOSS[F64])
    removed = jaxent.multiclass_sparsemax_loss(s[0][cm[0]][None], jnp.sum(cm[0][: int(y[0])])[None])
    assert_close(got[0], removed, LOSS[F64])
    # axis=1 on (N, C, d) equals moveaxis.
    s3, y3 = values_of((2, 5, 3), 16), labels_of((2, 3), 5, 17)
    assert_close(
        _multi(s3, y3, axis=1, reduction="none"), _multi(jnp.moveaxis(s3, 1, -1), y3, reduction="none"), LOSS[F64]
    )
    # Empty mean: 0 with zero gradients.
    loss, g = jax.value_and_grad(lambda s: _multi(s, y, where=jnp.zeros((4,), bool)))(s)
    assert loss == 0 and np.all(g == 0)


def test_multiclass_infinite_and_extreme_scores():
    s = jnp.array([[1e4, 0.5, -jnp.inf], [0.2, 0.1, -jnp.inf], [-1e4, 1e4, 0.0], [-jnp.inf, -jnp.inf, -jnp.inf]])
    y = jnp.array([0, 2, 0, 1])
    losses = _multi(s, y, reduction="none")
    # Row 1 right with certainty: 0; row 2 targets a -inf class: +inf; row 3: 1e4 - (-1e4) exact; row 4: +inf.
    assert_close(losses[:1], [0.0], LOSS[F64])
    assert losses[1] == jnp.inf and losses[3] == jnp.inf
    assert_close(losses[2], 2e4, LOSS[F64])
    g = jax.grad(lambda s: _multi(s, y, reduction="sum"))(s)
    assert np.all(np.isfinite(g))
    assert_close(g[2], [-1.0, 1.0, 0.0], GRAD[F64])
    finite = jax.hessian(lambda s: _multi(s, y[:1], reduction="sum"))(s[:1])
    assert np.all(np.isfinite(finite))


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float32])
def test_multiclass_half_precision(dtype):
    s, y = values_of((4, 6), 18, 1.0, dtype), labels_of((4,), 6, 19)
    loss = _multi(s, y)
    assert loss.dtype == jnp.float32
    s64 = s.astype(jnp.float64)
    assert_close(loss, ref.multiclass_sparsemax_loss(s64, y), LOSS[jnp.dtype(dtype)])
    g = jax.grad(_multi)(s, y)
    assert g.dtype == dtype
    want = (ref.sparsemax_probabilities(s64) - jax.nn.one_hot(y, 6, dtype=F64)) / 4
    assert_close(g, want, GRAD[jnp.dtype(dtype)])


def test_multiclass_eager_jit_vmap_object_and_out_of_range():
    s, y = values_of((6, 4), 20), labels_of((6,), 4, 21)
    f = functools.partial(jaxent.multiclass_sparsemax_loss, reduction="none")
    assert_close(jax.jit(f)(s, y), f(s, y), LOSS[F64])
    assert_close(jax.vmap(f)(s, y), f(s, y), LOSS[F64])
    g = jax.grad(lambda s: jnp.sum(f(s, y)))(s)
    assert_close(jax.vmap(jax.grad(lambda si, yi: jnp.sum(f(si, yi))))(s, y), g, GRAD[F64])
    loss = jaxent.MulticlassSparsemaxLoss(axis=-1, reduction="sum")
    assert jax.tree_util.tree_leaves(loss) == []
    assert_close(jax.jit(lambda o, s, y: o(s, y))(loss, s, y), jnp.sum(f(s, y)), LOSS[F64])
    # Out-of-range labels: NaN (optax wraps -1 to the last class).
    bad = f(s, y.at[0].set(4).at[1].set(-1))
    assert np.isnan(bad[0]) and np.isnan(bad[1]) and np.all(np.isfinite(bad[2:]))


MULTI_BAD = [
    (dict(scores=np.zeros((4, 3), np.int32)), TypeError, "multiclass_sparsemax_loss: scores must be a floating"),
    (dict(targets=np.zeros((4, 3))), TypeError, "multiclass_sparsemax_loss: targets must be integer class indices"),
    (dict(targets=np.zeros((5,), np.int32)), ValueError, r"multiclass_sparsemax_loss: targets has shape \(5,\)"),
    (dict(axis=2), ValueError, "multiclass_sparsemax_loss: axis 2 is out of range"),
    (dict(reduction="avg"), ValueError, "multiclass_sparsemax_loss: reduction must be one of"),
    (dict(where=np.ones((3,), bool)), ValueError, r"multiclass_sparsemax_loss: where has shape \(3,\)"),
]


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("labels", [jnp.int32, jnp.float32, jnp.bool_])
@pytest.mark.parametrize("masked", [False, True])
def test_binary_compiled_temp_memory_is_at_most_one_percent_of_the_logits(dtype, labels, masked):
    # Traced labels (jit arguments) take the checkify path; its NaN poisoning must not save an
    # [N, C] mask for the backward pass.
    shape = (4096, 32000)
    x, y = jax.ShapeDtypeStruct(shape, dtype), jax.ShapeDtypeStruct(shape, labels)
    m = jax.ShapeDtypeStruct(shape, jnp.bool_)

    def loss(x, y, m):
        return jaxent.sparsemax_loss(x, y, where=m if masked else None, reduction="mean")

    budget = 0.01 * 4 * shape[0] * shape[1]
    assert programs.temp_bytes(jax.value_and_grad(loss), x, y, m) <= budget
    assert programs.temp_bytes(loss, x, y, m) <= budget


@pytest.mark.parametrize(("kwargs", "error", "match"), MULTI_BAD)
def test_multiclass_bad_input_is_a_clear_error(kwargs, error, match):
    args = dict(scores=np.zeros((4, 3)), targets=np.zeros((4,), np.int32))
    args.update(kwargs)
    with pytest.raises(error, match=match):
        jaxent.multiclass_sparsemax_loss(args.pop("scores"), args.pop("targets"), **args)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize("masked", [False, True])
def test_multiclass_compiled_memory_and_backend_neutral(dtype, masked):
    # The threshold is Michelot's fixed point (one fused pass per step), not a sort: forward
    # and value_and_grad hold at most 1% of one float32 [N, C] buffer (optax sorts: 2 GB).
    # Batch and class masks too (each pass applies them; no masked copy of the scores).
    s = jax.ShapeDtypeStruct(programs.BIG, dtype)
    y = jax.ShapeDtypeStruct(programs.BIG[:1], jnp.int32)
    for shape in (programs.BIG[:1], programs.BIG) if masked else (programs.BIG[:1],):
        m = jax.ShapeDtypeStruct(shape, jnp.bool_)

        def loss(s, y, m):
            return jaxent.multiclass_sparsemax_loss(s, y, where=m if masked else None)

        for g in (loss, jax.value_and_grad(loss)):
            assert programs.temp_bytes(g, s, y, m) <= programs.one_percent_of_f32(programs.BIG), shape


def test_multiclass_programs_are_backend_neutral():
    x, t = values_of((8, 5), 22, dtype=jnp.float32), labels_of((8,), 5, 23)
    for g in (jaxent.multiclass_sparsemax_loss, jax.value_and_grad(jaxent.multiclass_sparsemax_loss)):
        programs.assert_backend_neutral(g, x, t)
    programs.assert_backend_neutral(jax.value_and_grad(jaxent.sparsemax_loss), x, (t[:, None] > 2) & (x > 0))


# --------------------------------------------------------------------------------------
# The Fenchel-Young factory.


def test_fenchel_young_matches_optax_and_is_cross_entropy_for_logsumexp():
    lse = jax.scipy.special.logsumexp
    ours, theirs = jaxent.make_fenchel_young_loss(lse), optax.losses.make_fenchel_young_loss(lse)
    s, t = values_of((3, 2, 5), 24), jax.nn.softmax(values_of((3, 2, 5), 25))
    assert_close(ours(s, t, reduction="none"), theirs(s, t), PARITY)
    assert_close(ours(s, t), jnp.mean(theirs(s, t)), PARITY)
    assert_close(ours(s, t, reduction="sum"), jnp.sum(theirs(s, t)), PARITY)
    g = jax.grad(lambda s, t: ours(s, t, reduction="sum"), (0, 1))(s, t)
    w = jax.grad(lambda s, t: jnp.sum(theirs(s, t)), (0, 1))(s, t)
    for a, b in zip(g, w):
        assert_close(a, b, PARITY)
    # For a one-hot target, the logsumexp Fenchel-Young loss is the softmax cross-entropy.
    y = labels_of((3, 2), 5, 26)
    onehot = jax.nn.one_hot(y, 5, dtype=F64)
    assert_close(ours(s, onehot, reduction="none"), jaxent.cross_entropy(s, y, reduction="none"), LOSS[F64])
    # Extra arguments reach max_fun; where drops examples (NaN padding too).
    scaled = jaxent.make_fenchel_young_loss(lambda v, temperature: temperature * lse(v / temperature))
    assert_close(scaled(s, t, temperature=1.0, reduction="none"), ours(s, t, reduction="none"), LOSS[F64])
    rows = jnp.array([[True, False], [True, True], [False, True]])
    keep = np.asarray(rows)
    assert_close(ours(jnp.where(rows[..., None], s, jnp.nan), t, where=rows), ours(s[keep], t[keep]), LOSS[F64])
    check_grads(lambda s, t: ours(s, t, where=rows), (s, t), order=2, modes=["fwd", "rev"])
    # Output dtype: float32 for bf16 scores, the gradient in bf16.
    sb = s.astype(jnp.bfloat16)
    assert ours(sb, t.astype(jnp.bfloat16)).dtype == jnp.float32
    assert jax.grad(ours)(sb, t.astype(jnp.bfloat16)).dtype == jnp.bfloat16
    assert_close(jax.jit(ours)(s, t), ours(s, t), LOSS[F64])


def test_fenchel_young_of_sparsemax_is_the_multiclass_sparsemax_loss():
    def gini_conjugate(v):  # Ω*(v) = <p, v> - |p|^2/2 with p = sparsemax(v)
        p = optax.projections.projection_simplex(v)
        return jnp.dot(p, v) - 0.5 * jnp.dot(p, p)

    fy = jaxent.make_fenchel_young_loss(gini_conjugate)
    s, y = values_of((4, 5), 27), labels_of((4,), 5, 28)
    # Ω(onehot) = 1/2 is the constant that makes the loss 0 at the target.
    with jax.numpy_dtype_promotion("standard"):  # optax's projection needs it
        got = fy(s, jax.nn.one_hot(y, 5, dtype=F64), reduction="none") + 0.5
    assert_close(got, jaxent.multiclass_sparsemax_loss(s, y, reduction="none"), LOSS[F64])


def test_fenchel_young_bad_input():
    fy = jaxent.make_fenchel_young_loss(jax.scipy.special.logsumexp)
    with pytest.raises(TypeError, match="make_fenchel_young_loss: max_fun must be a function"):
        jaxent.make_fenchel_young_loss(3.0)
    with pytest.raises(ValueError, match=r"fenchel_young_loss: targets has shape \(4,\) but scores has shape \(4, 3\)"):
        fy(np.zeros((4, 3)), np.zeros((4,)))
    with pytest.raises(ValueError, match="fenchel_young_loss: where must be a boolean mask of the batch shape"):
        fy(np.zeros((4, 3)), np.zeros((4, 3)), where=np.ones((4, 3), bool))
    with pytest.raises(ValueError, match="fenchel_young_loss: reduction must be one of"):
        fy(np.zeros((4, 3)), np.zeros((4, 3)), reduction="avg")
    with pytest.raises(TypeError, match="fenchel_young_loss: scores must be a floating-point array"):
        fy(np.zeros((4, 3), np.int32), np.zeros((4, 3)))


def test_multiclass_threshold_on_hard_rows_matches_the_sort():
    # Michelot's iteration against the sort-based threshold (numpy, float64) on rows where a
    # fixed point might stall or take many steps: ties, a geometric ladder, one dominant
    # score, -inf classes, a constant row, and a wide spread.
    c = 64
    rows = [
        np.zeros(c),
        np.repeat(np.arange(8.0), 8) / 8,
        -(0.5 ** np.arange(c)),
        np.r_[50.0, np.zeros(c - 1)],
        np.r_[1.0, 1.0, np.full(c - 2, -np.inf)],
        np.linspace(-3, 3, c) ** 3,
        np.r_[np.arange(c // 2) * 1e-9, np.full(c // 2, -1.0)],
    ]
    x = jnp.asarray(np.stack(rows))

    def sort_threshold(z):
        u = np.sort(z)[::-1]
        s = np.cumsum(u)
        k = np.arange(1, len(z) + 1)
        support = np.sum(1 + k * u > s)
        return (s[support - 1] - 1) / support

    p = np.maximum(np.asarray(x) - np.array([sort_threshold(r) for r in np.asarray(x)])[:, None], 0)
    y = jnp.zeros((len(rows),), jnp.int32)
    # The gradient is sparsemax(x) - onehot(y).
    g = jax.grad(lambda x: jaxent.multiclass_sparsemax_loss(x, y, reduction="sum"))(x)
    assert_close(g + jax.nn.one_hot(y, c, dtype=F64), p, LOSS[F64])
    got = jaxent.multiclass_sparsemax_loss(x, y, reduction="none")
    xn = np.asarray(x)
    # ℓ = <p, x> - ½‖p‖² + ½ - x_y (p = 0 on the -inf classes).
    want = np.sum(p * np.where(p > 0, xn, 0), -1) - 0.5 * np.sum(p * p, -1) + 0.5 - xn[:, 0]
    assert_close(got, want, LOSS[F64])
