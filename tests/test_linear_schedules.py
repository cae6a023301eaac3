"""linear_cross_entropy's token schedule, its planner and gradient filtering.

Oracles: the float64 reference on materialised logits (tests/references.py) and the
vocabulary schedule of the same loss; memory from the compiled programs' analysis.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxent
from jaxent._linear import DEFAULT_BUDGET, token_config, vocabulary_parts
from tests import references
from tests.test_linear import NEW, new_case
from tests.tolerances import GRAD, LOSS, assert_close

# A budget that gives the 9-token cases blocks of 3 tokens (a loop and no tail) or, with
# the K-dimensional weight, of 1 token.
SMALL_BUDGET = 4000


def _case(name):
    out, kind, options = NEW[name]
    h, w, b, y, q, cw = new_case(11, out)
    b = b.at[4].set(-jnp.inf)  # a removed vocabulary entry
    y = jnp.where(y == 4, 5, y).reshape(-1).at[1].set(options.get("ignore_index", -100)).reshape(y.shape)
    q = q.at[..., 4, :].set(0) if out else q.at[:, 4].set(0)
    q = q / jnp.sum(q, axis=1, keepdims=True)
    where = jnp.asarray(np.random.default_rng(1).uniform(size=y.shape) > 0.2)
    t = y if kind == "ids" else q
    weighted = not name.startswith("soft") and name != "kdim_soft"
    return h, w, b, t, (cw if weighted else None), where, kind, options


@pytest.mark.parametrize("name", sorted(NEW))
def test_token_schedule_matches_the_float64_reference(name):
    """Values and gradients (inputs, weight, bias, class weight, probabilities) of "sum" and
    "mean", and the forward-only value, against the materialised float64 reference."""
    h, w, b, t, cw, where, kind, options = _case(name)
    argnums = (0, 1, 2) + ((3,) if cw is not None else ()) + ((4,) if kind == "probs" else ())

    def both(h, w, b, cw, t):
        res = []
        for reduction in ("sum", "mean"):
            kw = dict(bias=b, class_weight=cw, where=where, reduction=reduction, **options)
            tokens = lambda h, w, b, cw, t, kw=kw: jaxent.linear_cross_entropy(
                h, w, t, schedule="tokens", memory_budget=SMALL_BUDGET, **kw
            )
            ref = lambda h, w, b, cw, t, kw=kw: references.linear_cross_entropy(h, w, t, **kw)
            for f in (tokens, ref):
                res.append((f(h, w, b, cw, t), jax.grad(f, argnums)(h, w, b, cw, t)))
        return res

    results = jax.jit(both)(h, w, b, cw, t)
    for (loss, grads), (ref_loss, ref_grads) in zip(results[::2], results[1::2]):
        assert np.isfinite(loss)
        assert_close(loss, ref_loss, LOSS[h.dtype])
        for g, r in zip(grads, ref_grads):
            assert g.dtype == r.dtype
            assert_close(g, r, GRAD[h.dtype])


@pytest.mark.parametrize("name", ["class_weight_smoothing", "soft_weighted_smoothing", "kdim"])
def test_token_schedule_forward_mode_and_second_order(name):
    h, w, b, t, cw, where, _, options = _case(name)
    # A finite bias: check_grads' finite differences at a -inf bias entry are NaN on either schedule.
    b = jnp.where(jnp.isinf(b), 0.0, b)
    kw = dict(class_weight=cw, where=where, schedule="tokens", memory_budget=SMALL_BUDGET, **options)
    f = lambda h, w, b: jaxent.linear_cross_entropy(h, w, t, bias=b, **kw)
    check_grads(f, (h, w, b), order=2, modes=["fwd", "rev"])
    # jacfwd and hessian agree with reverse mode.
    g = jax.grad(f)(h, w, b)
    assert_close(jax.jacfwd(f)(h, w, b), g, GRAD[h.dtype])
    hess = jax.hessian(lambda h: f(h, w, b))(h)
    assert_close(hess, jax.jacrev(jax.grad(lambda h: f(h, w, b)))(h), GRAD[h.dtype])


def test_planner_picks_tokens_within_the_budget_and_vocab_otherwise():
    plan = lambda budget=None, **kw: token_config(
        "f",
        kw.pop("schedule", "auto"),
        budget,
        kw.pop("threshold", None),
        reduction=kw.pop("reduction", "mean"),
        axis_name=None,
        tokens=4096,
        vocab=32000,
        out=1,
        dim=512,
        weight_dtype=kw.pop("dtype", jnp.float32),
        smooth=False,
        chunk_size=None,
    )
    # The default budget holds 128-row blocks of 32000 float32 logits: the token schedule.
    assert plan().block == 128
    assert plan(200_000_000).block == 512
    assert plan(10_000_000) is None  # too small a block to win: the vocabulary schedule
    assert plan(10_000_000, schedule="tokens").block < 128  # asked for: it still runs
    assert plan(reduction="none") is None
    assert plan(schedule="vocab") is None
    # 16-bit weights: a float32 d weight accumulator, counted against the budget.
    assert plan(300_000_000, dtype=jnp.bfloat16).accumulate == "float32"
    assert plan(80_000_000, dtype=jnp.bfloat16) is None


def _temp(loss, n, d, v, dtype, grad=True):
    args = (
        jax.ShapeDtypeStruct((n, d), dtype),
        jax.ShapeDtypeStruct((v, d), dtype),
        jax.ShapeDtypeStruct((n,), jnp.int32),
    )
    f = jax.value_and_grad(loss, argnums=(0, 1)) if grad else loss
    return jax.jit(f).lower(*args).compile().memory_analysis().temp_size_in_bytes


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_token_schedule_temp_memory_stays_within_the_budget(dtype):
    n, d, v = 2048, 128, 32000
    naive = _temp(lambda h, w, y: jaxent.cross_entropy(h @ w.T, y), n, d, v, dtype)
    budget = naive // 10  # 52 MB in float32, 41 MB in bfloat16
    tokens = lambda h, w, y: jaxent.linear_cross_entropy(h, w, y, schedule="tokens", memory_budget=budget)
    assert _temp(tokens, n, d, v, dtype) <= budget
    assert _temp(tokens, n, d, v, dtype, grad=False) <= budget
    # The default ("auto") stays within the default budget (5% of the naive program at
    # 4096x512x32000: tests/test_linear.py::test_memory_is_bounded_by_the_chunk_not_by_n_times_v).
    auto = lambda h, w, y: jaxent.linear_cross_entropy(h, w, y)
    assert _temp(auto, n, d, v, dtype) <= DEFAULT_BUDGET


def _peaked(n=64, d=16, v=512, seed=0):
    """Logits shaped like a trained model's: a steep Zipf prior plus a peak on each target."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(v, d)) / np.sqrt(d)
    w[:, 0] = -2.0 * np.log(np.arange(1, v + 1))
    y = rng.integers(0, 8, size=n)
    h = 6.0 * w[y] + rng.normal(size=(n, d)) * 0.1
    h[:, 0] = 1.0
    return jnp.asarray(h), jnp.asarray(w), jnp.asarray(y, jnp.int32)


def test_gradient_filtering_error_is_bounded_by_the_threshold():
    h, w, y = _peaked()
    thr = 1e-3
    kw = dict(schedule="tokens", memory_budget=40_000, chunk_size=64, reduction="sum")
    cfg = token_config(
        "f",
        "tokens",
        40_000,
        thr,
        reduction="sum",
        axis_name=None,
        tokens=64,
        vocab=512,
        out=1,
        dim=16,
        weight_dtype=w.dtype,
        smooth=False,
        chunk_size=64,
    )
    assert cfg is not None and cfg.block < 64 and vocabulary_parts(512, 16, cfg) == 64
    exact = jax.value_and_grad(lambda h, w: jaxent.linear_cross_entropy(h, w, y, **kw), argnums=(0, 1))
    filtered = jax.value_and_grad(
        lambda h, w: jaxent.linear_cross_entropy(h, w, y, gradient_threshold=thr, **kw), argnums=(0, 1)
    )
    (loss, (dh, dw)), (loss_f, (dh_f, dw_f)) = exact(h, w), filtered(h, w)
    assert_close(loss_f, loss, LOSS[h.dtype])  # the loss itself is exact (to rounding)
    # Tiles were skipped (the filter acts), and every skipped entry of d logits is below thr:
    # |error of d inputs_n| <= thr * sum_v |W_v|, |error of d W_v| <= thr * sum_n |h_n|.
    assert not np.allclose(dh_f, dh, rtol=0, atol=1e-12)
    assert np.all(np.abs(dh_f - dh) <= thr * jnp.sum(jnp.abs(w), axis=0)[None, :] + 1e-12)
    assert np.all(np.abs(dw_f - dw) <= thr * jnp.sum(jnp.abs(h), axis=0)[None, :] + 1e-12)
    # A threshold below every entry skips nothing: exact.
    tiny = jax.grad(lambda h: jaxent.linear_cross_entropy(h, w, y, gradient_threshold=1e-300, **kw))(h)
    assert_close(tiny, dh, GRAD[h.dtype])


def test_auto_schedule_and_loss_object_match_the_vocabulary_schedule():
    h, w, b, t, cw, _, _, options = _case("class_weight_smoothing")
    kw = dict(bias=b, class_weight=cw, **options)
    vocab = jax.value_and_grad(lambda h, w: jaxent.linear_cross_entropy(h, w, t, schedule="vocab", **kw), (0, 1))
    loss = jaxent.LinearCrossEntropyLoss(schedule="tokens", memory_budget=SMALL_BUDGET, **kw)
    tokens = jax.jit(jax.value_and_grad(lambda h, w: loss(h, w, t), (0, 1)))
    for a, r in zip(jax.tree.leaves(tokens(h, w)), jax.tree.leaves(vocab(h, w))):
        assert_close(a, r, GRAD[h.dtype])


BAD = [
    (dict(schedule="rows"), "schedule must be one of"),
    (dict(memory_budget=-1), "memory_budget must be a positive"),
    (dict(memory_budget=1.5e8), "memory_budget must be a positive"),
    (dict(memory_budget=True), "memory_budget must be a positive"),
    (dict(gradient_threshold=0.0), "gradient_threshold must be a positive"),
    (dict(gradient_threshold="2**-12"), "gradient_threshold must be a positive"),
    (dict(schedule="tokens", reduction="none"), 'does not support reduction="none"'),
    (dict(gradient_threshold=1e-3, reduction="none"), 'does not support reduction="none"'),
    (dict(gradient_threshold=1e-3, schedule="vocab"), 'got schedule="vocab"'),
    (dict(schedule="tokens", memory_budget=100), "cannot hold one row"),
]


@pytest.mark.parametrize(("kwargs", "match"), BAD)
def test_bad_schedule_options_are_clear_errors(kwargs, match):
    h, w, _, t, *_ = _case("class_weight")
    with pytest.raises(ValueError, match=match) as info:
        jaxent.linear_cross_entropy(h, w, t, **kwargs)
    assert "linear_cross_entropy" in str(info.value)


@pytest.mark.parametrize("schedule", ["tokens", "vocab"])
def test_a_dropped_nan_token_leaves_every_gradient_exact(schedule):
    h, w, b, t, cw, where, *_ = _case("class_weight")
    h = h.at[0].set(jnp.nan)
    where = where.at[0].set(False)
    f = lambda h, w: jaxent.linear_cross_entropy(h, w, t, bias=b, class_weight=cw, where=where, schedule=schedule)
    ref = lambda h, w: references.linear_cross_entropy(h, w, t, bias=b, class_weight=cw, where=where)
    loss, (dh, dw) = jax.value_and_grad(f, (0, 1))(h, w)
    clean = h.at[0].set(0.0)
    ref_loss, (ref_dh, ref_dw) = jax.value_and_grad(ref, (0, 1))(clean, w)
    assert_close(loss, ref_loss, LOSS[h.dtype])
    assert np.all(dh[0] == 0) and np.all(np.isfinite(dw))
    assert_close(dh, ref_dh, GRAD[h.dtype])
    assert_close(dw, ref_dw, GRAD[h.dtype])
