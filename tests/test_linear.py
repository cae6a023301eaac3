"""linear_cross_entropy against its reference composition cross_entropy(h @ W.T + b) and PyTorch."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxent
from tests import programs
from tests.tolerances import GRAD, LOSS, PARITY, assert_close

N, D, V = 9, 6, 23


def case(seed=0, dtype=jnp.float64, n=N, v=V):
    rng = np.random.default_rng(seed)
    h = jnp.asarray(rng.normal(size=(n, D))).astype(dtype)
    w = jnp.asarray(rng.normal(size=(v, D)) / np.sqrt(D)).astype(dtype)
    b = jnp.asarray(rng.normal(size=(v,))).astype(dtype)
    y = jnp.asarray(rng.integers(0, v, size=(n,)), jnp.int32).at[2].set(-100)
    return h, w, b, y


OPTIONS = {
    "plain": dict(),
    "smoothing": dict(label_smoothing=0.2),
    "z_loss": dict(z_loss=0.05),
    "softcap": dict(logit_softcap=1.5),
    "everything": dict(label_smoothing=0.3, z_loss=0.01, logit_softcap=2.0, ignore_index=4),
    "where": dict(where=jnp.array([True, False, True, True, True, False, True, True, True])),
}


def _compare(h, w, b, y, options, chunk_size, tol_loss, tol_grad, reductions=("none", "sum", "mean")):
    """Values and gradients (w.r.t. inputs, weight, bias) of the fused loss and its reference."""

    def both(h, w, b):
        out = []
        for reduction in reductions:
            fused = lambda h, w, b: jaxent.linear_cross_entropy(
                h, w, y, bias=b, chunk_size=chunk_size, reduction=reduction, **options
            )
            naive = lambda h, w, b: jaxent.cross_entropy(h @ w.T + b[None, :], y, reduction=reduction, **options)
            for f in (fused, naive):
                scale = jnp.arange(1.0, 1.0 + N).astype(h.dtype) if reduction == "none" else 1.0
                out.append((f(h, w, b), jax.grad(lambda *a: jnp.sum(f(*a) * scale), argnums=(0, 1, 2))(h, w, b)))
        return out

    results = jax.jit(both)(h, w, b)
    for (loss, grads), (ref_loss, ref_grads) in zip(results[::2], results[1::2]):
        assert_close(loss, ref_loss, tol_loss)
        for g, r in zip(grads, ref_grads):
            assert g.dtype == r.dtype
            assert_close(g, r, tol_grad)


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_matches_the_naive_composition(name):
    h, w, b, y = case()
    _compare(h, w, b, y, OPTIONS[name], 5, LOSS[h.dtype], GRAD[h.dtype])


@pytest.mark.parametrize("chunk_size", [None, 1, 4, 7, V - 1, V, V + 5])
def test_uneven_chunk_sizes(chunk_size):
    h, w, b, y = case(1)
    _compare(
        h, w, b, y, dict(label_smoothing=0.1, logit_softcap=3.0), chunk_size, LOSS[h.dtype], GRAD[h.dtype], ("mean",)
    )


def test_batch_dimensions_and_no_bias():
    h, w, _, y = case(2, n=12)
    h3, y3 = h.reshape(3, 4, D), y.reshape(3, 4)
    got = jaxent.linear_cross_entropy(h3, w, y3, reduction="none", chunk_size=8)
    assert got.shape == (3, 4)
    assert_close(got, jaxent.cross_entropy(h3 @ w.T, y3, reduction="none"), LOSS[h.dtype])


def test_neg_inf_bias_removes_vocabulary_entries():
    h, w, b, y = case(3)
    b = b.at[jnp.array([0, 5, 17])].set(-jnp.inf)
    y = y.at[0].set(1)
    _compare(h, w, b, y, dict(label_smoothing=0.2), 4, LOSS[h.dtype], GRAD[h.dtype], ("mean",))
    y = y.at[1].set(5)  # a target on a removed entry: +inf, finite gradients
    losses = jaxent.linear_cross_entropy(h, w, y, bias=b, reduction="none", chunk_size=4)
    assert losses[1] == np.inf and np.isfinite(losses[0])
    grads = jax.grad(lambda h, w: jaxent.linear_cross_entropy(h, w, y, bias=b, chunk_size=4), argnums=(0, 1))(h, w)
    assert all(np.all(np.isfinite(g)) for g in grads)


def test_empty_mean_and_out_of_range_labels():
    h, w, _, y = case(4)
    loss, grads = jax.value_and_grad(
        lambda h, w: jaxent.linear_cross_entropy(h, w, jnp.full((N,), -100, jnp.int32), label_smoothing=0.1), (0, 1)
    )(h, w)
    assert loss == 0 and all(np.all(g == 0) for g in grads)
    bad = y.at[0].set(V)
    losses = jaxent.linear_cross_entropy(h, w, bad, reduction="none")
    assert np.isnan(losses[0]) and np.all(np.isfinite(losses[1:]))
    assert np.isnan(jaxent.linear_cross_entropy(h, w, bad.at[0].set(-1)))


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_half_precision_inputs_against_a_float32_reference(dtype):
    h, w, b, y = case(5, dtype=dtype)
    options = dict(label_smoothing=0.1, z_loss=1e-3)
    loss, grads = jax.value_and_grad(
        lambda h, w, b: jaxent.linear_cross_entropy(h, w, y, bias=b, chunk_size=6, **options), (0, 1, 2)
    )(h, w, b)
    f32 = [a.astype(jnp.float32) for a in (h, w, b)]  # exactly the rounded inputs
    ref_loss, ref_grads = jax.value_and_grad(
        lambda h, w, b: jaxent.cross_entropy(h @ w.T + b[None, :], y, **options), (0, 1, 2)
    )(*f32)
    assert loss.dtype == jnp.float32
    assert_close(loss, ref_loss, dict(rtol=1e-5, atol=1e-5))
    for g, r in zip(grads, ref_grads):
        assert g.dtype == dtype
        assert_close(g, r, GRAD[jnp.dtype(dtype)])


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("chunked", [False, True])
def test_matches_torch_linear_cross_entropy(torch, reduction, chunked):
    h, w, b, y = case(6, n=16)
    # PyTorch's chunked path has no label smoothing (it would warn and fall back).
    for options in (dict(),) if chunked else (dict(), dict(label_smoothing=0.2)):
        got = jaxent.linear_cross_entropy(h, w, y, bias=b, reduction=reduction, chunk_size=8, **options)
        th, tw, tb = (torch.tensor(np.asarray(a)).requires_grad_(True) for a in (h, w, b))
        kw = dict(options=torch.nn.LinearCrossEntropyOptions()) if chunked else {}
        want = torch.nn.functional.linear_cross_entropy(
            th,
            tw,
            torch.tensor(np.asarray(y)).long(),
            linear_bias=tb,
            reduction=reduction,
            ignore_index=-100,
            **options,
            **kw,
        )
        assert_close(got, want.detach().numpy(), PARITY)
        want.sum().backward()
        grads = jax.grad(
            lambda h, w, b: jnp.sum(jaxent.linear_cross_entropy(h, w, y, bias=b, reduction=reduction, **options)),
            (0, 1, 2),
        )(h, w, b)
        for g, t in zip(grads, (th, tw, tb)):
            assert_close(g, t.grad.numpy(), PARITY)


def test_transformations():
    h, w, b, y = case(7, n=8)
    f = lambda h, w, y: jaxent.linear_cross_entropy(h, w, y, bias=b, label_smoothing=0.1, chunk_size=5)
    eager = f(h, w, y)
    assert_close(jax.jit(f)(h, w, y), eager, LOSS[h.dtype])
    hb, yb = h.reshape(2, 4, D), y.reshape(2, 4)
    per_group = jax.vmap(lambda h, y: jaxent.linear_cross_entropy(h, w, y, bias=b, reduction="sum", chunk_size=5))(
        hb, yb
    )
    assert_close(
        per_group,
        [jaxent.linear_cross_entropy(hb[i], w, yb[i], bias=b, reduction="sum") for i in range(2)],
        LOSS[h.dtype],
    )
    g = jax.grad(f, argnums=(0, 1))(h, w, y)
    g_remat = jax.grad(jax.checkpoint(f), argnums=(0, 1))(h, w, y)
    for a, c in zip(g, g_remat):
        assert_close(a, c, GRAD[h.dtype])

    def scanned(w):
        step = lambda carry, hy: (carry + jaxent.linear_cross_entropy(hy[0], w, hy[1], reduction="sum"), None)
        return jax.lax.scan(step, jnp.zeros((), jnp.float64), (hb, yb))[0]

    assert_close(scanned(w), jaxent.linear_cross_entropy(h, w, y, reduction="sum"), LOSS[h.dtype])
    assert_close(
        jax.grad(scanned)(w),
        jax.grad(lambda w: jaxent.linear_cross_entropy(h, w, y, reduction="sum"))(w),
        GRAD[h.dtype],
    )


@pytest.mark.parametrize("name", ["plain", "everything", "where"])
def test_forward_mode_and_higher_orders(name):
    # A tail chunk (chunk 5 of V=23): the last chunk overlaps the one before it.
    h, w, b, y = case(8)
    options = OPTIONS[name]
    fused = lambda h, w, b: jaxent.linear_cross_entropy(h, w, y, bias=b, chunk_size=5, **options)
    naive = lambda h, w, b: jaxent.cross_entropy(h @ w.T + b[None, :], y, **options)
    # check_grads in both modes to second order, in the inputs, the weight and the bias.
    check_grads(fused, (h, w, b), order=2, modes=["fwd", "rev"])
    tangents = tuple(jnp.cos(a) for a in (h, w, b))
    assert_close(jax.jvp(fused, (h, w, b), tangents)[1], jax.jvp(naive, (h, w, b), tangents)[1], GRAD[h.dtype])
    _, linear = jax.linearize(fused, h, w, b)
    assert_close(linear(*tangents), jax.jvp(naive, (h, w, b), tangents)[1], GRAD[h.dtype])
    for argnum in range(3):
        assert_close(jax.jacfwd(fused, argnum)(h, w, b), jax.grad(naive, argnum)(h, w, b), GRAD[h.dtype])
    assert_close(jax.hessian(fused)(h, w, b), jax.hessian(naive)(h, w, b), GRAD[h.dtype])
    # The traced hyperparameters too.
    hyper = lambda eps, z, cap: jaxent.linear_cross_entropy(
        h, w, y, bias=b, chunk_size=5, label_smoothing=eps, z_loss=z, logit_softcap=cap
    )
    check_grads(hyper, (0.2, 0.01, 2.0), order=2, modes=["fwd", "rev"])


def test_traced_hyperparameters_do_not_recompile_and_get_gradients():
    h, w, _, y = case(8)
    traces = []

    @jax.jit
    def f(eps, z, cap):
        traces.append(1)
        return jaxent.linear_cross_entropy(h, w, y, label_smoothing=eps, z_loss=z, logit_softcap=cap, chunk_size=4)

    for eps, z, cap in [(0.0, 0.0, 5.0), (0.2, 0.1, 1.5)]:
        naive = jaxent.cross_entropy(h @ w.T, y, label_smoothing=eps, z_loss=z, logit_softcap=cap)
        assert_close(f(eps, z, cap), naive, LOSS[h.dtype])
    assert len(traces) == 1
    hp = dict(label_smoothing=jnp.array(0.2), z_loss=jnp.array(0.1), logit_softcap=jnp.array(1.5))
    got = jax.grad(lambda hp: jaxent.linear_cross_entropy(h, w, y, chunk_size=4, **hp))(hp)
    want = jax.grad(lambda hp: jaxent.cross_entropy(h @ w.T, y, **hp))(hp)
    for k in hp:
        assert_close(got[k], want[k], GRAD[h.dtype])


def test_loss_object_equals_function():
    h, w, b, y = case(9)
    loss = jaxent.LinearCrossEntropyLoss(bias=b, label_smoothing=0.1, reduction="sum", chunk_size=4)
    assert_close(
        loss(h, w, y), jaxent.linear_cross_entropy(h, w, y, bias=b, label_smoothing=0.1, reduction="sum"), LOSS[h.dtype]
    )
    assert_close(jax.jit(lambda loss, h: loss(h, w, y))(loss, h), loss(h, w, y), LOSS[h.dtype])


BAD = [
    (dict(weight=np.zeros((V, D + 1))), ValueError, r"weight has shape \(23, 7\) but inputs has shape \(9, 6\)"),
    (dict(weight=np.zeros((D, V))), ValueError, "weight must be \\[V, D\\]"),
    (dict(weight=np.zeros((V,))), ValueError, "weight must be \\[V, D\\]"),
    (dict(inputs=np.zeros((N, D), np.int32)), TypeError, "linear_cross_entropy: inputs must be a floating-point array"),
    (dict(weight=np.zeros((V, D), np.int32)), TypeError, "weight must be a floating-point array"),
    (dict(targets=np.zeros((N,))), TypeError, "targets must be integer token ids"),
    (dict(targets=np.zeros((N, 2), np.int32)), ValueError, r"targets has shape \(9, 2\)"),
    (dict(chunk_size=0), ValueError, "chunk_size must be a positive Python int or None, got 0"),
    (dict(chunk_size=-3), ValueError, "chunk_size must be a positive"),
    (dict(chunk_size=2.5), ValueError, "chunk_size must be a positive"),
    (dict(bias=np.zeros((V + 1,))), ValueError, r"bias has shape \(24,\) but weight has 23 rows"),
    (dict(where=np.ones((N, V), bool)), ValueError, r"where has shape \(9, 23\)"),
    (dict(label_smoothing=2.0), ValueError, "label_smoothing must lie in"),
    (dict(reduction="batchmean"), ValueError, "reduction must be one of"),
]


@pytest.mark.parametrize(("kwargs", "error", "match"), BAD)
def test_bad_input_is_a_clear_error(kwargs, error, match):
    args = dict(inputs=np.zeros((N, D)), weight=np.zeros((V, D)), targets=np.zeros((N,), np.int32))
    args.update(kwargs)
    with pytest.raises(error, match=match):
        jaxent.linear_cross_entropy(args.pop("inputs"), args.pop("weight"), args.pop("targets"), **args)


# Compiled memory: deterministic, so it is asserted here (time is for the benchmark).


def _temp(n, d, v, loss, dtype=jnp.float32):
    args = (
        jax.ShapeDtypeStruct((n, d), dtype),
        jax.ShapeDtypeStruct((v, d), dtype),
        jax.ShapeDtypeStruct((n,), jnp.int32),
    )
    compiled = jax.jit(jax.value_and_grad(loss, argnums=(0, 1))).lower(*args).compile()
    return compiled.memory_analysis().temp_size_in_bytes


def test_memory_is_bounded_by_the_chunk_not_by_n_times_v():
    fused = lambda h, w, y: jaxent.linear_cross_entropy(h, w, y)
    naive = lambda h, w, y: jaxent.cross_entropy(h @ w.T, y)
    small, naive_small = _temp(4096, 512, 32000, fused), _temp(4096, 512, 32000, naive)
    assert naive_small > 1e9
    assert small <= 0.05 * naive_small
    # Doubling the vocabulary doubles the naive program's temporaries, not the fused one's.
    large = _temp(4096, 512, 64000, fused)
    assert large <= small + 1e6
    assert _temp(4096, 512, 64000, naive) > 1.9 * naive_small
    # An explicit chunk bounds the transient: two [N, chunk] float32 blocks and the [N, D] accumulator.
    chunked = _temp(4096, 512, 32000, lambda h, w, y: jaxent.linear_cross_entropy(h, w, y, chunk_size=512))
    assert chunked <= 2 * 4096 * 512 * 4 + 4096 * 512 * 4 + 1e6


def test_bfloat16_memory_does_not_grow_with_the_vocabulary():
    # XLA:CPU would hoist a float32 copy of a sliced bf16 weight out of the chunk loop.
    fused = lambda h, w, y: jaxent.linear_cross_entropy(h, w, y)
    small = _temp(1024, 256, 32000, fused, jnp.bfloat16)
    for vocab in (256000, 256001):  # chunks that divide V, and a tail chunk
        large = _temp(1024, 256, vocab, fused, jnp.bfloat16)
        assert large <= small + 2e6
        assert large < vocab * 256 * 2  # below even one bf16 copy of the weight


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_accelerator_programs_have_no_branch_and_no_barrier(dtype):
    h = jnp.ones((8, 4), dtype)
    w = jnp.ones((300, 4), dtype)
    y = jnp.arange(8, dtype=jnp.int32)
    loss = lambda h, w: jaxent.linear_cross_entropy(h, w, y, label_smoothing=0.1, chunk_size=128)
    programs.assert_backend_neutral(jax.value_and_grad(loss, (0, 1)), h, w)
