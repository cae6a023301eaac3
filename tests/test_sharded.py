"""Many devices (8 CPU devices): data parallel under jit, vocabulary parallel under shard_map."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import jaxent
from tests.tolerances import assert_close

F32 = dict(rtol=2e-5, atol=2e-6)
MESHES = [(1, 8), (2, 4), (8, 1)]  # (batch devices, vocabulary devices)


def test_eight_devices():
    assert len(jax.devices()) == 8


def rand(shape, seed, scale=1.0, dtype=jnp.float32):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape) * scale).astype(dtype)


# --------------------------------------------------------------------------------------
# Data parallel: every loss under jit on batch-sharded inputs equals the single-device result.


def _cases():
    x, xb = rand((16, 6), 0, 2.0), rand((16, 6), 1, 2.0)
    y = jnp.asarray(np.random.default_rng(2).integers(0, 6, 16), jnp.int32).at[3].set(-100)
    p = jax.nn.softmax(rand((16, 6), 3))
    t01 = (rand((16, 6), 4) > 0).astype(jnp.float32)
    pm1 = jnp.where(t01 > 0, 1.0, -1.0)
    keep = jnp.asarray(np.random.default_rng(5).random(16) > 0.3)
    w = jnp.linspace(0.5, 2.0, 6, dtype=jnp.float32)
    h, W = rand((16, 4), 6), rand((6, 4), 7)
    return {
        "cross_entropy": (lambda x: jaxent.cross_entropy(x, y, weight=w, label_smoothing=0.1, where=keep), x),
        "cross_entropy_probs": (lambda x: jaxent.cross_entropy(x, p, z_loss=0.01), x),
        "nll_loss": (lambda x: jaxent.nll_loss(jax.nn.log_softmax(x), y, weight=w), x),
        "bce_logits": (lambda x: jaxent.binary_cross_entropy_with_logits(x, t01, pos_weight=w), x),
        "bce": (lambda x: jaxent.binary_cross_entropy(jax.nn.sigmoid(x), t01), x),
        "kl": (lambda x: jaxent.kl_divergence(jax.nn.log_softmax(x), p, where=keep), x),
        "hinge": (lambda x: jaxent.hinge_loss(x, pm1, squared=True), x),
        "multi_margin": (lambda x: jaxent.multi_margin_loss(x, jnp.abs(y) % 6, p=2, weight=w), x),
        "multiclass_hinge": (lambda x: jaxent.multiclass_hinge_loss(x, jnp.abs(y) % 6), x),
        "focal": (lambda x: jaxent.focal_loss(x, y, gamma=2.0), x),
        "sigmoid_focal": (lambda x: jaxent.sigmoid_focal_loss(x, t01, alpha=0.25), x),
        "poly1": (lambda x: jaxent.poly1_cross_entropy(x, p, epsilon=1.0), x),
        "mse": (lambda x: jaxent.mse_loss(x, xb), x),
        "linear_cross_entropy": (lambda h: jaxent.linear_cross_entropy(h, W, y, label_smoothing=0.1), h),
    }


@pytest.mark.parametrize("axis_type", ["Explicit", "Auto"])
@pytest.mark.parametrize("name", sorted(_cases()))
def test_data_parallel_equals_single_device(name, axis_type):
    loss, x = _cases()[name]
    mesh = jax.make_mesh((8,), ("data",), axis_types=(getattr(jax.sharding.AxisType, axis_type),))
    xs = jax.device_put(x, NamedSharding(mesh, P("data")))
    value, grad = jax.jit(jax.value_and_grad(loss))(xs)
    ref_value, ref_grad = jax.value_and_grad(loss)(x)
    assert_close(value, ref_value, F32)
    assert_close(grad, ref_grad, F32)


# --------------------------------------------------------------------------------------
# Vocabulary parallel.

N, C = 16, 24


def _ce_inputs(seed=0):
    rng = np.random.default_rng(seed)
    x = rand((N, C), seed, 2.0)
    mask = jnp.asarray(rng.random((N, C)) > 0.2)
    y = jnp.argmax(jnp.where(mask, rand((N, C), seed + 1), -jnp.inf), axis=-1).astype(jnp.int32).at[5].set(-100)
    w = jnp.asarray(rng.uniform(0.5, 2.0, C), jnp.float32)
    return x, y, w, mask


@pytest.mark.parametrize("mesh_shape", MESHES)
def test_vocab_parallel_cross_entropy_equals_single_device(mesh_shape):
    mesh = jax.make_mesh(mesh_shape, ("data", "model"))
    x, y, w, mask = _ce_inputs()
    options = dict(label_smoothing=0.1, z_loss=1e-3, logit_softcap=4.0)
    for reduction in ("mean", "sum", "none"):
        for where in (None, mask):

            def sharded(x, w, where=where, reduction=reduction):
                return jaxent.sharded_cross_entropy(
                    x,
                    y,
                    weight=w,
                    where=where,
                    reduction=reduction,
                    mesh=mesh,
                    vocab_axis="model",
                    batch_axis="data",
                    **options,
                )

            def single(x, w, where=where, reduction=reduction):
                return jaxent.cross_entropy(x, y, weight=w, where=where, reduction=reduction, **options)

            scale = jnp.arange(1.0, N + 1.0, dtype=jnp.float32) if reduction == "none" else 1.0
            got = jax.jit(jax.value_and_grad(lambda x, w: jnp.sum(sharded(x, w) * scale), (0, 1)))(x, w)
            want = jax.value_and_grad(lambda x, w: jnp.sum(single(x, w) * scale), (0, 1))(x, w)
            assert_close(got[0], want[0], F32)
            for g, r in zip(got[1], want[1]):
                assert_close(g, r, F32)


def test_vocab_parallel_probability_targets_and_loss_object():
    mesh = jax.make_mesh((2, 4), ("data", "model"))
    x, _, w, _ = _ce_inputs(1)
    t = jax.nn.softmax(rand((N, C), 9))
    got = jaxent.sharded_cross_entropy(
        x, t, weight=w, label_smoothing=0.2, mesh=mesh, vocab_axis="model", batch_axis="data"
    )
    assert_close(got, jaxent.cross_entropy(x, t, weight=w, label_smoothing=0.2), F32)
    # Inside shard_map directly, with the loss object's axis_name.
    loss = jaxent.CrossEntropyLoss(reduction="none", axis_name="model", label_smoothing=0.2)
    mapped = jax.shard_map(lambda x, t: loss(x, t), mesh=mesh, in_specs=(P("data", "model"),) * 2, out_specs=P("data"))
    placed = [jax.device_put(a, NamedSharding(mesh, P("data", "model"))) for a in (x, t)]
    assert_close(jax.jit(mapped)(*placed), jaxent.cross_entropy(x, t, label_smoothing=0.2, reduction="none"), F32)


D, V = 8, 32


def _linear_inputs(seed=0):
    rng = np.random.default_rng(seed)
    h, W, b = rand((N, D), seed), rand((V, D), seed + 1, 0.5), rand((V,), seed + 2)
    y = jnp.asarray(rng.integers(0, V, N), jnp.int32).at[2].set(-100)
    return h, W, b, y


@pytest.mark.parametrize("mesh_shape", MESHES)
def test_vocab_parallel_linear_cross_entropy_equals_single_device(mesh_shape):
    mesh = jax.make_mesh(mesh_shape, ("data", "model"))
    h, W, b, y = _linear_inputs()
    options = dict(label_smoothing=0.1, z_loss=1e-3, logit_softcap=5.0, chunk_size=3)
    for reduction in ("mean", "none"):
        scale = jnp.arange(1.0, N + 1.0, dtype=jnp.float32) if reduction == "none" else 1.0

        def sharded(h, W, b, reduction=reduction):
            return jaxent.sharded_linear_cross_entropy(
                h, W, y, bias=b, reduction=reduction, mesh=mesh, vocab_axis="model", batch_axis="data", **options
            )

        def single(h, W, b, reduction=reduction):
            return jaxent.linear_cross_entropy(h, W, y, bias=b, reduction=reduction, **options)

        got = jax.jit(jax.value_and_grad(lambda *a: jnp.sum(sharded(*a) * scale), (0, 1, 2)))(h, W, b)
        want = jax.value_and_grad(lambda *a: jnp.sum(single(*a) * scale), (0, 1, 2))(h, W, b)
        assert_close(got[0], want[0], F32)
        for g, r in zip(got[1], want[1]):
            assert_close(g, r, F32)


def test_vocab_parallel_linear_cross_entropy_class_weight_and_probability_targets():
    mesh = jax.make_mesh((2, 4), ("data", "model"))
    h, W, b, y = _linear_inputs(3)
    cw = jnp.abs(rand((V,), 7)) + 0.1
    q = jax.nn.softmax(rand((N, V), 8, 2.0))
    options = dict(label_smoothing=0.1, chunk_size=3, bias=b)
    for targets, extra in ((y, dict(class_weight=cw)), (q, dict(class_weight=cw)), (q, dict())):
        sharded = lambda h, W, cw, q, t=targets, e=extra: jaxent.sharded_linear_cross_entropy(
            h,
            W,
            t if t is y else q,
            mesh=mesh,
            vocab_axis="model",
            batch_axis="data",
            **options,
            **({"class_weight": cw} if e else {}),
        )
        single = lambda h, W, cw, q, t=targets, e=extra: jaxent.linear_cross_entropy(
            h, W, t if t is y else q, **options, **({"class_weight": cw} if e else {})
        )
        argnums = (0, 1, 2, 3)
        got = jax.jit(jax.value_and_grad(sharded, argnums))(h, W, cw, q)
        want = jax.value_and_grad(single, argnums)(h, W, cw, q)
        assert_close(got[0], want[0], F32)
        for g, r in zip(got[1], want[1]):
            assert_close(g, r, F32)
    with pytest.raises(ValueError, match="K-dimensional weight"):
        jaxent.sharded_linear_cross_entropy(h, W.reshape(V // 2, 2, D), y, mesh=mesh, vocab_axis="model")


def _collectives(hlo: str) -> list[tuple[str, tuple[int, ...]]]:
    found = []
    for line in hlo.splitlines():
        op = re.search(
            r"= \(?([a-z0-9]+)\[([0-9,]*)\][^=]*? (all-gather|all-reduce|all-to-all|collective-permute)[-a-z]*\(", line
        )
        if op:
            found.append((op.group(3), tuple(int(d) for d in op.group(2).split(",") if d)))
    return found


@pytest.mark.parametrize("vocab", [4096, 8192])
def test_vocab_parallel_hlo_gathers_nothing_that_grows_with_v(vocab):
    mesh = jax.make_mesh((1, 8), ("data", "model"))
    n, d = 64, 16
    args = (
        jax.ShapeDtypeStruct((n, d), jnp.float32, sharding=NamedSharding(mesh, P())),
        jax.ShapeDtypeStruct((vocab, d), jnp.float32, sharding=NamedSharding(mesh, P("model"))),
        jax.ShapeDtypeStruct((n,), jnp.int32, sharding=NamedSharding(mesh, P())),
    )
    f = jax.value_and_grad(
        lambda h, w, y: jaxent.sharded_linear_cross_entropy(h, w, y, mesh=mesh, vocab_axis="model"), (0, 1)
    )
    hlo = jax.jit(f).lower(*args).compile().as_text()
    collectives = _collectives(hlo)
    assert collectives, "expected the pmax/psum collectives"
    assert not [c for c in collectives if c[0] in ("all-gather", "all-to-all")]
    for _, shape in collectives:  # per-token values and d inputs only: never a V-sized buffer
        assert int(np.prod(shape)) <= 2 * n * d and vocab // 8 not in shape and vocab not in shape


def test_vocab_parallel_gradient_all_reduces_once_not_per_chunk():
    # Several vocabulary chunks per device: d inputs is summed over devices after the chunk
    # loop, never inside its body (one [N, D] all-reduce per chunk at a 128k vocabulary).
    mesh = jax.make_mesh((1, 8), ("data", "model"))
    n, d, vocab = 64, 16, 4096
    args = (
        jax.ShapeDtypeStruct((n, d), jnp.float32, sharding=NamedSharding(mesh, P())),
        jax.ShapeDtypeStruct((vocab, d), jnp.float32, sharding=NamedSharding(mesh, P("model"))),
        jax.ShapeDtypeStruct((n,), jnp.int32, sharding=NamedSharding(mesh, P())),
    )
    loss = lambda h, w, y: jaxent.sharded_linear_cross_entropy(h, w, y, mesh=mesh, vocab_axis="model", chunk_size=128)
    hlo = jax.jit(jax.value_and_grad(loss, (0, 1))).lower(*args).compile().as_text()
    bodies = set(re.findall(r"\bwhile\(.*?body=%?([\w.\-]+)", hlo))
    assert bodies, "expected the chunk loop"
    computations = dict(re.findall(r"^%?([\w.\-]+) .*?\{\n(.*?)\n\}", hlo, flags=re.M | re.S))
    assert ("all-reduce", (n, d)) in _collectives(hlo)
    for body in bodies:
        assert not _collectives(computations.get(body, "")), f"a collective inside the loop body {body}"


def test_vocab_parallel_memory_per_device():
    # One chunk covers the whole (local) vocabulary here, so memory scales with V:
    # per device it is the single-device figure over P, plus the [N, D] psum buffers.
    n, d, vocab = 256, 32, 16384
    mesh = jax.make_mesh((1, 8), ("data", "model"))
    single_args = (
        jax.ShapeDtypeStruct((n, d), jnp.float32),
        jax.ShapeDtypeStruct((vocab, d), jnp.float32),
        jax.ShapeDtypeStruct((n,), jnp.int32),
    )
    single = jax.jit(jax.value_and_grad(lambda h, w, y: jaxent.linear_cross_entropy(h, w, y), (0, 1)))
    single_temp = single.lower(*single_args).compile().memory_analysis().temp_size_in_bytes
    sharded_args = (
        jax.ShapeDtypeStruct((n, d), jnp.float32, sharding=NamedSharding(mesh, P())),
        jax.ShapeDtypeStruct((vocab, d), jnp.float32, sharding=NamedSharding(mesh, P("model"))),
        jax.ShapeDtypeStruct((n,), jnp.int32, sharding=NamedSharding(mesh, P())),
    )
    f = jax.value_and_grad(
        lambda h, w, y: jaxent.sharded_linear_cross_entropy(h, w, y, mesh=mesh, vocab_axis="model"), (0, 1)
    )
    per_device = jax.jit(f).lower(*sharded_args).compile().memory_analysis().temp_size_in_bytes
    assert single_temp > 8 * n * vocab  # two [N, V] float32 blocks: the bound below means something
    assert per_device <= single_temp / 8 + 4 * n * d * 4 + 2**16


def test_uneven_vocabulary_is_a_clear_error():
    mesh = jax.make_mesh((1, 8), ("data", "model"))
    h, W, _, y = _linear_inputs()
    with pytest.raises(ValueError, match=r"30 classes do not split evenly over the 8 devices of mesh axis 'model'"):
        jaxent.sharded_linear_cross_entropy(h, W[:30], y % 30, mesh=mesh, vocab_axis="model")
    with pytest.raises(ValueError, match="vocab_axis='vocab' is not an axis of the mesh"):
        jaxent.sharded_cross_entropy(rand((4, 8), 0), jnp.zeros((4,), jnp.int32), mesh=mesh, vocab_axis="vocab")


def test_mean_denominator_gives_the_global_mean_over_micro_batches():
    x, y, w, _ = _ce_inputs(2)
    total = count = 0.0
    for i in range(0, N, 4):
        total = total + jaxent.cross_entropy(x[i : i + 4], y[i : i + 4], weight=w, reduction="sum")
        count = count + jaxent.mean_denominator(y[i : i + 4], weight=w)
    assert_close(total / count, jaxent.cross_entropy(x, y, weight=w), F32)
    with pytest.raises(TypeError, match="mean_denominator: targets must be integer"):
        jaxent.mean_denominator(jnp.zeros((3,)))
