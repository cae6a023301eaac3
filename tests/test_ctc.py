"""ctc_loss against a brute-force float64 reference, PyTorch's F.ctc_loss (its own suite's cases) and optax."""

from __future__ import annotations

import dataclasses
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
F64 = jnp.dtype(jnp.float64)


def tiny_case(seed=0, b=4, t=5, c=3, s=3, blank=0):
    """Ragged lengths, a repeated label, and an impossible target (sequence 3: 'a a' in 2 frames)."""
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(b, t, c)) * 2.0)
    labels = [v for v in range(c) if v != blank]
    y = np.asarray(rng.choice(labels, size=(b, s)), np.int32)
    y[1, :2] = labels[0]  # a repeat: needs a blank between
    if b > 3:
        y[3, :2] = labels[-1]
    il = np.array([t, t - 1, 3, 2][:b], np.int32)
    tl = np.array([s, 2, 1, 2][:b], np.int32)
    return x, jnp.asarray(y), jnp.asarray(il), jnp.asarray(tl)


STATIC = ("blank", "inputs", "zero_infinity", "reduction")
# Shared jitted functions: an eager call would trace and compile the recursions every time.
ctc = jax.jit(jaxent.ctc_loss, static_argnames=STATIC)


@functools.partial(jax.jit, static_argnames=STATIC)
def value_and_grad(x, y, il, tl, where=None, *, reduction="mean", blank=0, inputs="logits", zero_infinity=False):
    """(loss, gradient of its sum) for one option set."""
    kw = dict(where=where, reduction=reduction, blank=blank, inputs=inputs, zero_infinity=zero_infinity)
    return ctc(x, y, il, tl, **kw), jax.grad(lambda x: jnp.sum(jaxent.ctc_loss(x, y, il, tl, **kw)))(x)


def all_reductions(x, y, il, tl, where=None, **options):
    return [value_and_grad(x, y, il, tl, where, reduction=r, **options) for r in REDUCTIONS]


def test_golden_values():
    # Uniform over {blank, a, b} at 3 frames: "ab" has 5 alignments (ab_, a_b, _ab, aab, abb) of 27.
    x = jnp.zeros((1, 3, 3))
    assert_close(ctc(x, jnp.array([[1, 2]]), reduction="sum"), np.log(27 / 5), LOSS[jnp.dtype(jnp.float32)])
    # "aa" needs a blank between: "a_a" only, 1 of 27; "aa" in 2 frames is impossible.
    assert_close(ctc(x, jnp.array([[1, 1]]), reduction="none"), [np.log(27)], LOSS[jnp.dtype(jnp.float32)])
    got = ctc(x, jnp.array([[1, 1]]), jnp.array([2]), jnp.array([2]), reduction="none")
    assert got.tolist() == [np.inf]
    # One frame, one label: -log p(a); an empty target: -sum_t log p_t(blank).
    x1 = jnp.log(jnp.array([[[0.2, 0.5, 0.3]], [[0.6, 0.1, 0.3]]], jnp.float64))
    y1 = jnp.array([[1], [2]])
    got = ctc(x1, y1, jnp.array([1, 1]), jnp.array([1, 0]), reduction="none")
    assert_close(got, [-np.log(0.5), -np.log(0.6)], LOSS[F64])
    # "mean" divides each loss by its target length (at least 1) first.
    got = ctc(x1, y1, jnp.array([1, 1]), jnp.array([1, 0]))
    assert_close(got, (-np.log(0.5) / 1 - np.log(0.6) / 1) / 2, LOSS[F64])


@pytest.mark.parametrize(("blank", "inputs"), [(0, "logits"), (2, "log_probs")])
def test_matches_brute_force_reference_values_and_gradients(blank, inputs):
    x, y, il, tl = tiny_case(1, blank=blank)
    if inputs == "log_probs":
        x = jax.nn.log_softmax(x) + 0.3  # unnormalised scores: the exact partial -gamma is tested
    want = ref.ctc_loss_brute_force(x, y, il, tl, blank=blank, inputs=inputs)
    assert np.isinf(want[3]) and np.all(np.isfinite(want[:3]))
    where = jnp.array([True, False, True, True])
    for zero_infinity in (False, True):
        got = all_reductions(x, y, il, tl, where, blank=blank, inputs=inputs, zero_infinity=zero_infinity)
        w = jnp.where(jnp.isinf(want), 0.0, want) if zero_infinity else want
        for r, (value, grad) in zip(REDUCTIONS, got):
            assert_close(value, ref.ctc_reduce(w, tl, r, where), LOSS[F64])
            # Reference gradient: autodiff of the brute force over the possible sequences (0 elsewhere).
            possible = np.isfinite(np.asarray(want)) & np.asarray(where)
            red = lambda x: jnp.sum(
                ref.ctc_reduce(
                    jnp.where(possible, ref.ctc_loss_brute_force(x, y, il, tl, blank=blank, inputs=inputs), 0.0),
                    tl,
                    r,
                    where,
                )
            )
            if r != "none" and not zero_infinity:
                assert np.isinf(value)  # the impossible sequence 3 is kept
                continue
            assert_close(grad, jax.jit(jax.grad(red))(x), GRAD[F64])


def _torch_ctc(torch, log_probs_tbc, targets, il, tl, **kwargs):
    lp = torch.tensor(np.asarray(log_probs_tbc), requires_grad=True)
    out = torch.nn.functional.ctc_loss(lp, targets, il, tl, **kwargs)
    out.sum().backward()
    return out.detach().numpy(), lp.grad.numpy()


def _as_numpy(v):
    return np.asarray(v.tolist() if hasattr(v, "tolist") else v)


def test_matches_pytorch_on_its_op_db_samples(torch):
    # The samples PyTorch's own OpInfo suite runs for F.ctc_loss (T=50, B=16, C=20, S=30), float64.
    from torch.testing._internal.common_methods_invocations import op_db

    (op,) = [o for o in op_db if o.name == "nn.functional.ctc_loss"]
    cases = 0
    for sample in op.sample_inputs("cpu", torch.float64, requires_grad=True):
        targets, il, tl = sample.args
        kw = sample.kwargs
        want, want_grad = _torch_ctc(torch, sample.input.detach(), targets, il, tl, **kw)
        x = jnp.swapaxes(jnp.asarray(sample.input.detach().numpy()), 0, 1)  # PyTorch is time-major
        y, il, tl = (jnp.asarray(_as_numpy(a), jnp.int32) for a in (targets, il, tl))
        got = value_and_grad(x, y, il, tl, reduction=kw["reduction"], zero_infinity=kw["zero_infinity"])
        assert_close(got[0], want, PARITY)
        # PyTorch's gradient in log_probs is p - gamma (through a log_softmax), jaxent's for inputs="logits".
        assert_close(got[1], np.swapaxes(want_grad, 0, 1), PARITY)
        cases += 1
    assert cases == 12


def test_matches_pytorch_on_its_module_db_samples(torch):
    # nn.CTCLoss's ModuleInfo inputs: (T, B, C) = (50, 3, 15), padded and 1-D concatenated targets,
    # int32 and int64 targets, every reduction, blank = 14.
    from torch.testing._internal.common_modules import module_db

    (info,) = [m for m in module_db if m.module_cls is torch.nn.CTCLoss]
    cases = 0
    for mi in info.module_inputs_func(info, device="cpu", dtype=torch.float64, requires_grad=True, training=True):
        options = mi.constructor_input.kwargs
        lp, targets, il, tl = mi.forward_input.args
        module = torch.nn.CTCLoss(**options)
        tlp = lp.detach().clone().requires_grad_(True)
        want = module(tlp, targets, il, tl)
        want.sum().backward()
        blank, reduction = options.get("blank", 0), options.get("reduction", "mean")
        x = jnp.swapaxes(jnp.asarray(tlp.detach().numpy()), 0, 1)
        y, il, tl = (jnp.asarray(_as_numpy(a), jnp.int32) for a in (targets, il, tl))
        value, grad = value_and_grad(x, y, il, tl, reduction=reduction, blank=blank)
        assert_close(value, want.detach().numpy(), PARITY)
        assert_close(grad, np.swapaxes(tlp.grad.numpy(), 0, 1), PARITY)
        cases += 1
    assert cases == 40


def test_matches_pytorch_on_ragged_batches_with_repeats_and_impossible_targets(torch):
    rng = np.random.default_rng(3)
    b, t, c, s = 6, 9, 5, 4
    x = jnp.asarray(rng.normal(size=(b, t, c)) * 3)
    y = rng.integers(1, c, size=(b, s)).astype(np.int64)
    y[0] = [2, 2, 2, 2]  # needs 7 frames
    y[1] = [3, 3, 1, 1]
    il = np.array([9, 6, 8, 3, 1, 0])
    tl = np.array([4, 4, 3, 2, 0, 0])  # sequence 3: 2 labels in 3 frames, possible; 5: nothing at all
    lp = jax.nn.log_softmax(x)
    for zero_infinity in (False, True):
        got = all_reductions(x, jnp.asarray(y), jnp.asarray(il), jnp.asarray(tl), zero_infinity=zero_infinity)
        for r, (value, grad) in zip(REDUCTIONS, got):
            want, want_grad = _torch_ctc(
                torch,
                jnp.swapaxes(lp, 0, 1),
                torch.tensor(y),
                torch.tensor(il),
                torch.tensor(tl),
                reduction=r,
                zero_infinity=zero_infinity,
            )
            assert_close(value, want, PARITY)
            if zero_infinity:  # PyTorch's gradient is NaN at an infinite loss; with zero_infinity it is 0 as ours
                assert_close(grad, np.swapaxes(want_grad, 0, 1), PARITY)
    # A PyTorch-style 1-D concatenated target gives the same as the padded one.
    flat = np.concatenate([y[i, : tl[i]] for i in range(b)])
    assert_close(
        ctc(x, flat, il, tl, reduction="none"),
        ctc(x, y, il, tl, reduction="none"),
        LOSS[F64],
    )


def _optax_ctc(x, logit_pad, y, label_pad):
    with jax.numpy_dtype_promotion("standard"):
        return optax.losses.ctc_loss(x, logit_pad, y, label_pad)


def test_matches_optax_in_its_padding_convention():
    rng = np.random.default_rng(4)
    b, t, c, s = 5, 10, 6, 4
    x = jnp.asarray(rng.normal(size=(b, t, c)) * 2)
    y = jnp.asarray(rng.integers(1, c, size=(b, s)))
    logit_pad = jnp.asarray(np.arange(t)[None, :] >= np.array([10, 8, 7, 9, 6])[:, None], jnp.float64)
    logit_pad = logit_pad.at[2, 3].set(1.0)  # a padding frame in the middle is skipped, as in optax
    label_pad = jnp.asarray(np.arange(s)[None, :] >= np.array([4, 2, 3, 0, 1])[:, None], jnp.float64)
    want = _optax_ctc(x, logit_pad, y, label_pad)
    loss = lambda x: ctc(x, y, logit_paddings=logit_pad, label_paddings=label_pad, reduction="none")
    assert_close(loss(x), want, PARITY)
    grad = jax.grad(lambda x: jnp.sum(loss(x) * jnp.arange(1.0, b + 1)))(x)
    want_grad = jax.grad(lambda x: jnp.sum(_optax_ctc(x, logit_pad, y, label_pad) * jnp.arange(1.0, b + 1)))(x)
    assert_close(grad, want_grad, PARITY)
    # Boolean paddings, and lengths instead of paddings, say the same thing.
    lengths = jnp.sum(label_pad == 0, axis=1).astype(jnp.int32)
    assert_close(ctc(x, y, None, lengths, logit_paddings=logit_pad > 0, reduction="none"), want, PARITY)


def test_where_equals_boolean_indexing_and_blocks_nan_padding():
    x, y, il, tl = tiny_case(5)
    keep = np.array([True, False, True, False])
    where = jnp.asarray(keep)
    for r in REDUCTIONS:
        got = ctc(x, y, il, tl, where=where, reduction=r)
        sub = ctc(x[keep], y[keep], il[keep], tl[keep], reduction=r)
        assert_close(got if r != "none" else got[keep], sub, LOSS[F64])
    # NaN in padding frames and in dropped sequences reaches neither the loss nor the gradient.
    frames = np.arange(x.shape[1])[None, :, None] < np.asarray(il)[:, None, None]
    padded = jnp.where(jnp.asarray(frames & keep[:, None, None]), x, jnp.nan)
    f = lambda x: ctc(x, y, il, tl, where=where)
    loss, g = jax.value_and_grad(f)(padded)
    assert_close(loss, f(x), LOSS[F64])
    assert np.all(np.isfinite(g)) and np.all(np.asarray(g)[~(frames & keep[:, None, None]).repeat(3, 2)] == 0)
    assert_close(g, jax.grad(f)(x), GRAD[F64])
    # Nothing kept: an empty mean is 0 with zero gradients.
    loss, g = jax.value_and_grad(lambda x: ctc(x, y, il, tl, where=jnp.zeros(4, bool)))(x)
    assert loss == 0 and np.all(g == 0)


def test_impossible_alignments_and_extreme_logits_are_never_nan():
    x, y, il, tl = tiny_case(6)
    big = x * 1e4
    minus_inf = x.at[0, :, 2].set(-jnp.inf)  # class 2 impossible in sequence 0
    for z in (False, True):
        for inp in (big, minus_inf):
            losses = ctc(inp, y, il, tl, zero_infinity=z, reduction="none")
            assert not np.any(np.isnan(losses))
            assert (losses[3] == 0) if z else (losses[3] == np.inf)
            g = jax.grad(lambda x: jnp.sum(ctc(x, y, il, tl, zero_infinity=z, reduction="sum")))(inp)
            assert np.all(np.isfinite(g))
            assert np.all(g[3] == 0)  # an impossible target: zero gradient
    # The -inf class gets zero gradient, and the loss is the brute force's (+inf when the target needs it).
    want = ref.ctc_loss_brute_force(minus_inf, y, il, tl)
    assert_close(ctc(minus_inf, y, il, tl, reduction="none"), want, LOSS[F64])
    g = jax.grad(lambda x: ctc(x, y, il, tl, zero_infinity=True))(minus_inf)
    assert np.all(g[0, :, 2] == 0)
    # A frame with every class -inf makes its sequence impossible, not NaN.
    dead = x.at[1, 0].set(-jnp.inf)
    assert ctc(dead, y, il, tl, reduction="none")[1] == np.inf
    assert np.all(np.isfinite(jax.grad(lambda x: ctc(x, y, il, tl, zero_infinity=True))(dead)))


def test_eager_jit_and_vmap_agree():
    x, y, il, tl = tiny_case(7)
    f = functools.partial(jaxent.ctc_loss, reduction="none")
    eager = f(x, y, il, tl)
    assert_close(ctc(x, y, il, tl, reduction="none"), eager, LOSS[F64])
    # One sequence at a time ([T, C] logits, [S] targets, scalar lengths), under vmap.
    assert_close(jax.jit(jax.vmap(f))(x, y, il, tl), eager, LOSS[F64])
    possible = lambda loss: jnp.where(jnp.isinf(loss), 0, loss)
    g = jax.jit(jax.grad(lambda x: jnp.sum(possible(f(x, y, il, tl)))))(x)
    gv = jax.jit(jax.vmap(jax.grad(lambda xi, yi, a, b: possible(f(xi, yi, a, b)))))(x, y, il, tl)
    assert_close(gv, g, GRAD[F64])
    # Traced lengths with 1-D concatenated targets (under jit the padded width is min(total, T)).
    flat = jnp.concatenate([y[i, : int(tl[i])] for i in range(4)])
    assert_close(ctc(x, flat, il, tl, reduction="none"), eager, LOSS[F64])


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16, jnp.float32])
def test_half_precision_is_computed_in_float32(dtype):
    x, y, il, tl = tiny_case(8)
    xd = x.astype(dtype)
    loss = ctc(xd, y, il, tl, zero_infinity=True)
    assert loss.dtype == jnp.float32
    x64 = xd.astype(jnp.float64)
    want = ref.ctc_loss_brute_force(x64, y, il, tl)
    assert_close(loss, ref.ctc_reduce(jnp.where(jnp.isinf(want), 0, want), tl, "mean"), dict(rtol=2e-6, atol=2e-6))
    g = jax.grad(lambda x: ctc(x, y, il, tl, zero_infinity=True))(xd)
    assert g.dtype == dtype
    assert_close(g, jax.grad(lambda x: ctc(x, y, il, tl, zero_infinity=True))(x64), GRAD[jnp.dtype(dtype)])


def test_forward_mode_and_higher_orders():
    x, y, il, tl = tiny_case(9, b=3, t=4, c=3, s=2)
    f = jax.jit(lambda x: jaxent.ctc_loss(x, y, il, tl, zero_infinity=True))
    check_grads(f, (x,), order=2, modes=["fwd", "rev"])
    # The Hessian matches the brute force's (logits and unnormalised log-probabilities).
    for inputs in ("logits", "log_probs"):
        want = jax.jit(jax.hessian(lambda x: jnp.sum(ref.ctc_loss_brute_force(x, y, il, tl, inputs=inputs)[:2])))(x)
        got = jax.jit(
            jax.hessian(lambda x: jnp.sum(jaxent.ctc_loss(x, y, il, tl, inputs=inputs, reduction="none")[:2]))
        )(x)
        assert_close(got, want, GRAD[F64])


def test_first_order_derivatives_do_not_differentiate_the_recursion():
    x, y, il, tl = tiny_case(10)

    def scans(fn, *args):
        text = str(jax.make_jaxpr(fn)(*args))
        return text.count("scan[")

    f = lambda x: jaxent.ctc_loss(x, y, il, tl)
    assert scans(f, x) == 1  # the forward recursion
    assert scans(jax.grad(f), x) == 2  # forward and backward recursions, no transposed scan
    assert scans(lambda x, v: jax.jvp(f, (x,), (v,)), x, x) == 2


def test_compiled_temp_memory_is_the_lattice_not_the_logits():
    # C much larger than S: any [B, T, C] temporary would stand out. Bound: 1% of one float32
    # [B, T, C] buffer plus the lattice (the [T, B, S + 1] log-probabilities, the [T, B, 2S + 1]
    # forward variables, the occupancies): no float32 copy of bf16 logits either.
    b, t, c, s = 4, 128, 8192, 8
    bound = programs.one_percent_of_f32((b, t, c)) + 4 * b * t * (4 * s + 3) * 2
    for dtype in (jnp.float32, jnp.bfloat16):
        x = jax.ShapeDtypeStruct((b, t, c), dtype)
        y, lengths = jax.ShapeDtypeStruct((b, s), jnp.int32), jax.ShapeDtypeStruct((b,), jnp.int32)
        for inputs in ("logits", "log_probs"):
            loss = functools.partial(lambda i, *a: jaxent.ctc_loss(*a, inputs=i), inputs)
            assert programs.temp_bytes(loss, x, y, lengths, lengths) <= bound, ("forward", dtype, inputs)
            assert programs.temp_bytes(jax.value_and_grad(loss), x, y, lengths, lengths) <= bound, (dtype, inputs)


def test_backend_neutral_programs():
    x, y, il, tl = tiny_case(11)
    f = lambda x, y, il, tl: jaxent.ctc_loss(x, y, il, tl)
    programs.assert_backend_neutral(jax.value_and_grad(f), x, y, il, tl)


def test_batch_sharding_gives_the_same_result():
    devices = jax.devices()[:4]
    mesh = jax.sharding.Mesh(np.array(devices), ("batch",))
    rng = np.random.default_rng(12)
    x = jnp.asarray(rng.normal(size=(8, 6, 4)))
    y = jnp.asarray(rng.integers(1, 4, size=(8, 3)))
    il, tl = jnp.full((8,), 6), jnp.asarray(rng.integers(0, 4, size=(8,)))
    spec = lambda *dims: jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("batch", *dims))
    args = [jax.device_put(a, spec(*[None] * (a.ndim - 1))) for a in (x, y, il, tl)]
    f = jax.jit(jax.value_and_grad(lambda x, y, il, tl: ctc(x, y, il, tl)))
    loss, g = f(*args)
    want_loss, want_g = f(x, y, il, tl)
    assert_close(loss, want_loss, LOSS[F64])
    assert_close(g, want_g, GRAD[F64])


def test_bad_labels_are_nan_and_named_under_checkify():
    x, y, il, tl = tiny_case(13)
    bad = y.at[0, 0].set(0)  # the blank
    losses = jax.jit(functools.partial(jaxent.ctc_loss, reduction="none"))(x, bad, il, tl)
    assert np.isnan(losses[0]) and np.all(~np.isnan(losses[1:]))
    err, _ = checkify.checkify(jax.jit(jaxent.ctc_loss), errors=checkify.user_checks)(x, bad.at[0, 0].set(7), il, tl)
    with pytest.raises(checkify.JaxRuntimeError, match="ctc_loss: targets contain the label 7"):
        err.throw()


BAD_INPUTS = [
    (dict(logits=np.zeros((4, 5, 3), np.int32)), TypeError, "ctc_loss: logits must be a floating-point array"),
    (
        dict(logits=np.zeros((5, 3, 2, 1))),
        ValueError,
        r"ctc_loss: logits has shape \(5, 3, 2, 1\), expected \[B, T, C\]",
    ),
    (dict(targets=np.zeros((4, 2))), TypeError, "ctc_loss: targets must be integer labels"),
    (dict(targets=np.ones((3, 2), np.int32)), ValueError, r"ctc_loss: targets has shape \(3, 2\)"),
    (dict(reduction="avg"), ValueError, "ctc_loss: reduction must be one of"),
    (dict(blank=3), ValueError, r"ctc_loss: blank must be a Python int in \[0, 3\)"),
    (dict(inputs="probs"), ValueError, "ctc_loss: inputs must be 'logits' or 'log_probs'"),
    (dict(zero_infinity=1), TypeError, "ctc_loss: zero_infinity must be a Python bool"),
    (dict(input_lengths=np.full(4, 6)), ValueError, r"ctc_loss: input_lengths contains 6, outside \[0, 5\]"),
    (dict(input_lengths=np.full(4, 5.0)), TypeError, "ctc_loss: input_lengths must be an integer array"),
    (dict(target_lengths=np.full(3, 2)), ValueError, r"ctc_loss: target_lengths has shape \(3,\), expected \(4,\)"),
    (dict(logit_paddings=np.zeros((4, 5))), ValueError, "ctc_loss: pass input_lengths or logit_paddings, not both"),
    (dict(where=np.ones(4, np.int32)), ValueError, r"ctc_loss: where must be a boolean mask of shape \(4,\)"),
    (
        dict(targets=np.ones(5, np.int32), target_lengths=np.array([1, 1, 1, 1])),
        ValueError,
        "ctc_loss: 1-D targets hold 5 labels but target_lengths sum to 4",
    ),
]


@pytest.mark.parametrize(("kwargs", "error", "match"), BAD_INPUTS)
def test_bad_input_is_a_clear_error(kwargs, error, match):
    args = dict(
        logits=np.zeros((4, 5, 3)),
        targets=np.ones((4, 2), np.int32),
        input_lengths=np.full(4, 5),
        target_lengths=np.full(4, 2),
    )
    args.update(kwargs)
    with pytest.raises(error, match=match):
        jaxent.ctc_loss(
            args.pop("logits"), args.pop("targets"), args.pop("input_lengths"), args.pop("target_lengths"), **args
        )


def test_loss_object_equals_the_function():
    x, y, il, tl = tiny_case(14)
    loss = jaxent.CTCLoss(reduction="sum", zero_infinity=True)
    want = ctc(x, y, il, tl, reduction="sum", zero_infinity=True)
    assert_close(loss(x, y, il, tl), want, LOSS[F64])
    assert jax.tree_util.tree_leaves(loss) == []
    assert_close(jax.jit(lambda loss, *a: loss(*a))(loss, x, y, il, tl), want, LOSS[F64])
    pads = jnp.asarray(np.arange(5)[None, :] >= np.asarray(il)[:, None])
    labels = jnp.asarray(np.arange(3)[None, :] >= np.asarray(tl)[:, None])
    assert_close(loss(x, y, logit_paddings=pads, label_paddings=labels), want, LOSS[F64])
    with pytest.raises(dataclasses.FrozenInstanceError):
        loss.reduction = "mean"  # type: ignore[misc]
