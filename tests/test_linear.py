"""linear_cross_entropy against its reference composition cross_entropy(h @ W.T + b) and PyTorch."""

from __future__ import annotations

import collections
import functools
import os
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxent
from tests import programs, references
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
    (dict(targets=np.zeros((N,))), ValueError, r"floating targets are probabilities of the logits' shape .* \(9, 23\)"),
    (dict(targets=np.zeros((N,), bool)), TypeError, "targets must be integer token ids or floating probabilities"),
    (dict(targets=np.zeros((N, V)), ignore_index=1), ValueError, "ignore_index=1 needs integer targets"),
    (dict(class_weight=np.ones((V + 1,))), ValueError, r"class_weight has shape \(24,\) but weight has 23 rows"),
    (dict(class_weight=np.ones((V,), bool)), TypeError, "class_weight must be a real array"),
    (dict(weight=np.zeros((V, 2, D)), targets=np.zeros((N,), np.int32)), ValueError, r"inputs.shape\[:-1\] \+ weight"),
    (
        dict(weight=np.zeros((V, 2, D)), targets=np.zeros((N, 2), np.int32), bias=np.zeros((V,))),
        ValueError,
        r"pass bias of shape \(23, 2\)",
    ),
    (
        dict(weight=np.zeros((V, 2, D)), targets=np.zeros((N, 2), np.int32), axis_name="model"),
        ValueError,
        r"axis_name='model' needs a \[V, D\] weight",
    ),
    (dict(targets=np.zeros((N, 2), np.int32)), ValueError, r"targets has shape \(9, 2\)"),
    (dict(chunk_size=0), ValueError, "chunk_size must be a positive Python int or None, got 0"),
    (dict(chunk_size=-3), ValueError, "chunk_size must be a positive"),
    (dict(chunk_size=2.5), ValueError, "chunk_size must be a positive"),
    (dict(bias=np.zeros((V + 1,))), ValueError, r"bias has shape \(24,\) but weight has shape \(23, 6\)"),
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
    # Doubling the vocabulary doubles the naive program's temporaries, not the fused one's
    # (the default schedule stays within its budget; the vocabulary schedule within its chunk).
    assert _temp(4096, 512, 64000, fused) <= 0.05 * naive_small
    vocab = lambda h, w, y: jaxent.linear_cross_entropy(h, w, y, schedule="vocab")
    assert _temp(4096, 512, 64000, vocab) <= _temp(4096, 512, 32000, vocab) + 1e6
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


# --------------------------------------------------------------------------------------
# Class weights, probability targets and the K-dimensional weight (issue 13), against the
# float64 materialised reference (tests/references.py) and PyTorch's own test inputs.


def new_case(seed, out=(), n=N, v=V, d=D):
    rng = np.random.default_rng(seed)
    h = jnp.asarray(rng.normal(size=(n, d)))
    w = jnp.asarray(rng.normal(size=(v,) + out + (d,)) / np.sqrt(d))
    b = jnp.asarray(rng.normal(size=(v,) + out))
    y = jnp.asarray(rng.integers(0, v, size=(n,) + out), jnp.int32)
    q = jax.nn.softmax(jnp.asarray(rng.normal(size=(n, v) + out) * 2), axis=1)
    cw = jnp.asarray(rng.uniform(0.2, 2.0, size=(v,)))
    return h, w, b, y, q, cw


NEW = {
    "class_weight": ((), "ids", dict(ignore_index=3)),
    "class_weight_smoothing": ((), "ids", dict(label_smoothing=0.2, z_loss=0.01, logit_softcap=2.0)),
    "soft": ((), "probs", dict()),
    "soft_weighted_smoothing": ((), "probs", dict(label_smoothing=0.3, logit_softcap=1.5, z_loss=0.02)),
    "kdim": ((2, 3), "ids", dict(label_smoothing=0.1)),
    "kdim_soft": ((2,), "probs", dict(label_smoothing=0.1)),
}


@pytest.mark.parametrize("name", sorted(NEW))
def test_new_options_match_the_float64_reference_with_per_token_cotangents(name):
    """Values and reverse-mode gradients (inputs, weight, bias, class weight, probabilities) for every
    reduction; "none" gets an arbitrary random cotangent per token, so each token's gradient is checked."""
    out, kind, options = NEW[name]
    h, w, b, y, q, cw = new_case(11, out)
    # Removed vocabulary entries (-inf bias), dropped tokens, ignored labels.
    b = b.at[4].set(-jnp.inf)
    y = jnp.where(y == 4, 5, y).reshape(-1).at[1].set(options.get("ignore_index", -100)).reshape(y.shape)
    q = q.at[..., 4, :].set(0) if out else q.at[:, 4].set(0)
    q = q / jnp.sum(q, axis=1, keepdims=True)
    where = jnp.asarray(np.random.default_rng(1).uniform(size=y.shape) > 0.2)
    t = y if kind == "ids" else q
    weighted = name != "soft" and name != "kdim_soft"
    cot = jnp.asarray(np.random.default_rng(2).normal(size=y.shape))

    def both(h, w, b, cw, t):
        res = []
        for reduction in ("none", "sum", "mean"):
            kw = dict(bias=b, class_weight=cw if weighted else None, where=where, reduction=reduction, **options)
            fused = lambda h, w, b, cw, t, kw=kw: jaxent.linear_cross_entropy(h, w, t, chunk_size=5, **kw)
            ref = lambda h, w, b, cw, t, kw=kw: references.linear_cross_entropy(h, w, t, **kw)
            for f in (fused, ref):
                c = cot if reduction == "none" else 1.0
                argnums = (0, 1, 2, 3) + ((4,) if kind == "probs" else ())
                grads = jax.grad(lambda *a, f=f: jnp.sum(f(*a) * c), argnums)(h, w, b, cw, t)
                res.append((f(h, w, b, cw, t), grads))
        return res

    results = jax.jit(both)(h, w, b, cw, t)
    for (loss, grads), (ref_loss, ref_grads) in zip(results[::2], results[1::2]):
        assert np.all(np.isfinite(loss))
        assert_close(loss, ref_loss, LOSS[h.dtype])
        for g, r in zip(grads, ref_grads):
            assert g.dtype == r.dtype
            assert_close(g, r, GRAD[h.dtype])


@pytest.mark.parametrize("name", ["class_weight_smoothing", "soft_weighted_smoothing", "kdim"])
def test_new_options_forward_mode_and_second_order(name):
    out, kind, options = NEW[name]
    h, w, b, y, q, cw = new_case(12, out, n=4, v=7, d=3)
    if kind == "ids":
        fused = lambda h, w, b, cw: jaxent.linear_cross_entropy(
            h, w, y, bias=b, class_weight=cw, chunk_size=3, **options
        )
        args = (h, w, b, cw)
    else:
        fused = lambda h, w, b, cw, q: jaxent.linear_cross_entropy(
            h, w, q, bias=b, class_weight=cw, chunk_size=3, **options
        )
        args = (h, w, b, cw, q)
    # Second order in both modes in the arguments that are new here (the inputs, weight and bias
    # are checked so by test_forward_mode_and_higher_orders); first order in the forward mode below.
    new = (0, 3) if kind == "ids" and not out else (0, 1) if out else (3, 4)
    partial = lambda *n: fused(*[n[new.index(i)] if i in new else a for i, a in enumerate(args)])
    check_grads(jax.jit(partial), tuple(args[i] for i in new), order=2, modes=["fwd", "rev"])
    ref = lambda *a: references.linear_cross_entropy(
        a[0], a[1], a[4] if kind == "probs" else y, bias=a[2], class_weight=a[3], **options
    )
    tangents = tuple(jnp.cos(a) for a in args)
    assert_close(jax.jvp(fused, args, tangents)[1], jax.jvp(ref, args, tangents)[1], GRAD[h.dtype])
    assert_close(jax.jacfwd(fused, 0)(*args), jax.grad(ref, 0)(*args), GRAD[h.dtype])


def test_new_options_under_vmap_and_loss_object():
    h, w, b, y, q, cw = new_case(13, (2,), n=8)
    loss = jaxent.LinearCrossEntropyLoss(bias=b, class_weight=cw, label_smoothing=0.1, reduction="none", chunk_size=4)
    per_group = jax.jit(jax.vmap(lambda loss, h, y: loss(h, w, y), (None, 0, 0)))(
        loss, h.reshape(2, 4, D), y.reshape(2, 4, 2)
    )
    assert_close(
        per_group.reshape(8, 2),
        jaxent.linear_cross_entropy(h, w, y, bias=b, class_weight=cw, label_smoothing=0.1, reduction="none"),
        LOSS[h.dtype],
    )
    soft = jaxent.LinearCrossEntropyLoss(class_weight=cw)
    assert_close(
        jax.jit(lambda obj, q: obj(h, w, q))(soft, q),
        references.linear_cross_entropy(h, w, q, class_weight=cw),
        LOSS[h.dtype],
    )


# PyTorch's own test inputs for linear_cross_entropy: its op_db samples (reference, chunked and
# chunked reduction="none" variants) and its module_db inputs of nn.LinearCrossEntropyLoss, float64.


@functools.cache
def _torch_samples(torch):
    try:
        from torch.testing._internal.common_methods_invocations import op_db
        from torch.testing._internal.common_modules import module_db
    except ImportError as e:  # torch's testing package needs expecttest
        if os.environ.get("JAXENT_REQUIRE_TORCH") == "1":
            pytest.fail(f"JAXENT_REQUIRE_TORCH=1 but torch's test inputs do not import ({e}): pip install expecttest")
        pytest.skip(f"torch.testing._internal does not import ({e}); pip install expecttest")
    samples = []
    for op in op_db:
        if op.name == "nn.functional.linear_cross_entropy":
            for s in op.sample_inputs("cpu", torch.float64, requires_grad=True):
                samples.append(("op_db/" + (op.variant_test_name or "reference"), None, s.input, *s.args, s.kwargs))
    info = next(m for m in module_db if m.module_cls is torch.nn.LinearCrossEntropyLoss)
    for i, m in enumerate(
        info.module_inputs_func(info, device="cpu", dtype=torch.float64, requires_grad=True, training=True)
    ):
        torch.manual_seed(i)
        module = info.module_cls(*m.constructor_input.args, **m.constructor_input.kwargs)
        samples.append(("module_db", module, *m.forward_input.args, {}))
    return samples


def _compile_key(sample):
    """The shapes and static options that one compiled jaxent function serves."""
    _, module, inp, *rest = sample
    if module is None:
        lw, target, kw = rest
        reduction, ignore = kw.get("reduction", "mean"), kw.get("ignore_index")
        shapes = (inp.shape, lw.shape)
    else:
        target = rest[0]
        reduction, ignore = module.reduction, module.ignore_index
        shapes = (inp.shape, (module.num_classes, *module.out_features))
    return repr((shapes, target.shape, target.dtype, reduction, -100 if ignore is None else ignore))


def _part(samples, part, parts=4):
    """Every ``parts``-th group of samples that share a compiled function (compiled in one test only)."""
    keys = sorted({_compile_key(s) for s in samples})
    mine = set(keys[part::parts])
    return [s for s in samples if _compile_key(s) in mine]


def _torch_loss(torch, module, leaves, target, bias, class_weight, kw, reduction, ignore_index, eps):
    """PyTorch's loss: the op_db sample's own call, or the module_db module's functional call."""
    fn = torch.nn.functional.linear_cross_entropy
    if module is None:
        return fn(leaves[0], leaves[1], target, linear_bias=bias, weight=class_weight, **kw)
    return fn(
        *leaves,
        target,
        linear_bias=bias,
        weight=class_weight,
        reduction=reduction,
        ignore_index=ignore_index,
        label_smoothing=eps,
        options=module.options,
    )


@functools.cache
def _parity_function(reduction, ignore_index):
    """One jitted (loss, vjp) per static configuration (compiled once per shape): every case passes a bias
    and class weights (zeros / ones when PyTorch's has none) and a traced label smoothing."""

    def run(h, w, t, b, cw, eps, cot):
        f = lambda h, w, b, t: jaxent.linear_cross_entropy(
            h,
            w,
            t,
            bias=b,
            class_weight=cw,
            label_smoothing=eps,
            ignore_index=ignore_index,
            reduction=reduction,
            chunk_size=3,
        )
        if jnp.issubdtype(t.dtype, jnp.integer):
            loss, vjp = jax.vjp(lambda h, w, b: f(h, w, b, t), h, w, b)
        else:
            loss, vjp = jax.vjp(f, h, w, b, t)
        return loss, vjp(cot)

    return jax.jit(run)


@pytest.mark.parametrize("part", range(4))
def test_matches_torch_on_its_own_test_inputs(torch, part):
    samples = _torch_samples(torch)
    rng = np.random.default_rng(part)
    counts = collections.Counter()
    tol = dict(rtol=1e-9, atol=1e-10)
    for source, module, inp, *rest in _part(samples, part):
        if module is None:
            lw, target, kw = rest
            kw = dict(kw)
            lb, cw = kw.pop("linear_bias", None), kw.pop("weight", None)
            reduction, ignore, eps = kw.get("reduction", "mean"), kw.get("ignore_index"), kw.get("label_smoothing", 0.0)
        else:
            (target, _), kw = rest, {}
            out = module.out_features
            lw = module.linear.weight.reshape((module.num_classes, *out, module.linear.in_features))
            lb = None if module.linear.bias is None else module.linear.bias.reshape((module.num_classes, *out))
            cw, reduction, ignore, eps = module.weight, module.reduction, module.ignore_index, module.label_smoothing
        leaves = [a.detach().clone().requires_grad_(True) for a in (inp, lw)]
        lb_leaf = None if lb is None else lb.detach().clone().requires_grad_(True)
        probs = target.dtype.is_floating_point
        t_leaf = target.detach().clone().requires_grad_(probs)
        try:
            with warnings.catch_warnings():  # PyTorch warns where its chunked path falls back (K-dim)
                warnings.simplefilter("ignore", UserWarning)
                got_torch = _torch_loss(torch, module, leaves, t_leaf, lb_leaf, cw, kw, reduction, ignore, eps)
        except RuntimeError as e:
            # PyTorch refuses an explicit ignore_index with probability targets; so does jaxent (for a
            # non-negative one; a negative one can never match a probability and is accepted).
            assert "ignore_index cannot be specified" in str(e)
            if ignore >= 0:
                with pytest.raises(ValueError, match="needs integer targets"):
                    jaxent.linear_cross_entropy(
                        inp.detach().numpy(), lw.detach().numpy(), target.detach().numpy(), ignore_index=ignore
                    )
            counts["torch refuses"] += 1
            continue
        cot = rng.normal(size=tuple(got_torch.shape))
        (got_torch * torch.tensor(cot)).sum().backward()
        np_ = lambda a: jnp.asarray(a.detach().numpy())
        vocab = lw.shape[0]
        b = jnp.zeros(lw.shape[:-1], jnp.float64) if lb is None else np_(lb)
        c = jnp.ones((vocab,), jnp.float64) if cw is None else np_(cw)
        t = np_(target) if probs else jnp.asarray(target.numpy(), jnp.int32)
        fn = _parity_function(reduction, -100 if ignore is None else ignore)
        loss, grads = fn(np_(inp), np_(lw), t, b, c, jnp.float64(eps), jnp.asarray(cot))
        want = got_torch.detach().numpy()
        if reduction == "mean" and np.isnan(want):
            # Every token ignored: PyTorch's empty mean is NaN, jaxent's 0.0 (DESIGN.md).
            assert loss == 0
            counts["empty mean"] += 1
            continue
        assert_close(loss, want, tol)
        expected = [leaves[0].grad, leaves[1].grad, lb_leaf.grad if lb is not None else None]
        expected += [t_leaf.grad] if probs else []
        for g, e in zip(grads, expected):
            if e is not None:
                assert_close(g, e.numpy(), tol)
        counts[source] += 1
    assert sum(counts.values()) == len(_part(samples, part))


def _temp_of(loss, args, argnums):
    compiled = jax.jit(jax.value_and_grad(loss, argnums=argnums)).lower(*args).compile()
    return compiled.memory_analysis().temp_size_in_bytes


@pytest.mark.parametrize("name", ["class_weight", "soft", "kdim"])
def test_new_options_memory_is_bounded_by_the_chunk(name):
    n, d, chunk = 1024, 128, 512
    f32 = lambda *s: jax.ShapeDtypeStruct(s, jnp.float32)
    temps = []
    for v in (8192, 16384):  # doubling the vocabulary adds nothing
        cw = jnp.linspace(0.5, 2.0, v, dtype=jnp.float32)
        if name == "class_weight":  # with label smoothing: the weighted smoothing sums
            loss = lambda h, w, y, cw=cw: jaxent.linear_cross_entropy(
                h, w, y, class_weight=cw, label_smoothing=0.1, chunk_size=chunk
            )
            args, argnums, blocks = (f32(n, d), f32(v, d), jax.ShapeDtypeStruct((n,), jnp.int32)), (0, 1), 3
        elif name == "soft":  # probability targets [N, V] are an input, their gradient an output
            loss = lambda h, w, q, cw=cw: jaxent.linear_cross_entropy(
                h, w, q, class_weight=cw, label_smoothing=0.1, chunk_size=chunk
            )
            args, argnums, blocks = (f32(n, d), f32(v, d), f32(n, v)), (0, 1, 2), 6
        else:  # [V/4, 4, D]: 4 positions per token, chunks of chunk/4 classes (the same block size)
            loss = lambda h, w, y: jaxent.linear_cross_entropy(h, w, y, chunk_size=chunk // 4)
            args, argnums, blocks = (f32(n, d), f32(v // 4, 4, d), jax.ShapeDtypeStruct((n, 4), jnp.int32)), (0, 1), 4
        temps.append(_temp_of(loss, args, argnums))
    # A few [N, chunk] float32 blocks and the [N, D] accumulator; never N * V (32 MB here).
    assert temps[0] <= blocks * n * chunk * 4 + n * d * 4 + 1e6
    assert temps[1] <= temps[0] + 1e6
