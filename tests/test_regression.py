"""mse_loss against a float64 reference and PyTorch."""

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
from tests import programs, torch_cases
from tests import references as ref
from tests.tolerances import GRAD, LOSS, PARITY, assert_close

REDUCTIONS = ("none", "sum", "mean")
F64 = jnp.dtype(jnp.float64)


def values_of(shape, seed=0, scale=2.0, dtype=jnp.float64):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape) * scale).astype(dtype)


def test_golden_values():
    p, t = jnp.array([1.0, 2.0, 4.0]), jnp.array([1.5, 2.0, 2.0])
    assert_close(jaxent.mse_loss(p, t, reduction="none"), [0.25, 0.0, 4.0], LOSS[F64])
    assert_close(jaxent.mse_loss(p, t, reduction="sum"), 4.25, LOSS[F64])
    assert_close(jaxent.mse_loss(p, t), 4.25 / 3, LOSS[F64])


@pytest.mark.parametrize("shape", [(), (7,), (3, 4, 2)])
def test_matches_torch_values_and_gradients(torch, shape):
    p, t = values_of(shape, 1), values_of(shape, 2)
    for reduction in REDUCTIONS:
        tp = torch.tensor(np.asarray(p), requires_grad=True)
        tt = torch.tensor(np.asarray(t), requires_grad=True)
        want = torch.nn.functional.mse_loss(tp, tt, reduction=reduction)
        got = jaxent.mse_loss(p, t, reduction=reduction)
        assert got.shape == tuple(want.shape)
        assert_close(got, want.detach().numpy(), PARITY)
        want.sum().backward()
        gp, gt = jax.grad(lambda p, t: jnp.sum(jaxent.mse_loss(p, t, reduction=reduction)), (0, 1))(p, t)
        assert_close(gp, tp.grad.numpy(), PARITY)
        assert_close(gt, tt.grad.numpy(), PARITY)


def test_matches_reference_and_check_grads():
    p, t = values_of((3, 4), 3), values_of((3, 4), 4)
    where = jnp.asarray(np.random.default_rng(5).random((3, 4)) > 0.3)
    for reduction in REDUCTIONS:
        got = jaxent.mse_loss(p, t, where=where, reduction=reduction)
        assert_close(got, ref.mse_loss(p, t, where=where, reduction=reduction), LOSS[F64])
    got = jax.grad(lambda p, t: jaxent.mse_loss(p, t, where=where), (0, 1))(p, t)
    want = jax.grad(lambda p, t: ref.mse_loss(p, t, where=where), (0, 1))(p, t)
    for a, b in zip(got, want):
        assert_close(a, b, GRAD[F64])
    check_grads(lambda p, t: jaxent.mse_loss(p, t, where=where), (p, t), order=2, modes=["rev", "fwd"])


def test_where_equals_boolean_indexing_and_blocks_nan_padding():
    p, t = values_of((4, 5), 6), values_of((4, 5), 7)
    keep = np.random.default_rng(8).random((4, 5)) > 0.4
    mask = jnp.asarray(keep)
    assert_close(jaxent.mse_loss(p, t, where=mask), jnp.mean((p[keep] - t[keep]) ** 2), LOSS[F64])
    assert_close(jaxent.mse_loss(p, t, where=mask, reduction="sum"), jnp.sum((p[keep] - t[keep]) ** 2), LOSS[F64])
    g = jax.grad(lambda p: jaxent.mse_loss(p, t, where=mask))(p)
    assert np.all(np.asarray(g)[~keep] == 0)
    p_pad = jnp.where(mask, p, jnp.nan)
    loss, g_pad = jax.value_and_grad(lambda p: jaxent.mse_loss(p, t, where=mask))(p_pad)
    assert_close(loss, jaxent.mse_loss(p, t, where=mask), LOSS[F64])
    assert_close(g_pad, g, GRAD[F64])
    # A same-rank mask with size-1 axes broadcasts: (N, 1) drops whole rows.
    rows = jnp.array([[True], [False], [True], [True]])
    assert_close(
        jaxent.mse_loss(p, t, where=rows), jaxent.mse_loss(p[np.array([0, 2, 3])], t[np.array([0, 2, 3])]), LOSS[F64]
    )
    # Empty mean: 0 with zero gradients.
    loss, g = jax.value_and_grad(lambda p: jaxent.mse_loss(p, t, where=jnp.zeros((4, 5), bool)))(p)
    assert loss == 0 and np.all(g == 0)


def test_eager_jit_and_vmap_agree():
    p, t = values_of((6, 3), 9), values_of((6, 3), 10)
    f = functools.partial(jaxent.mse_loss, reduction="none")
    eager = f(p, t)
    assert_close(jax.jit(f)(p, t), eager, LOSS[F64])
    assert_close(jax.vmap(f)(p, t), eager, LOSS[F64])
    g = jax.grad(lambda p: jnp.sum(f(p, t)))(p)
    assert_close(jax.vmap(jax.grad(lambda pi, ti: jnp.sum(f(pi, ti))))(p, t), g, GRAD[F64])


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16, jnp.float32])
def test_half_precision_is_computed_in_float32(dtype):
    p, t = values_of((4, 5), 11, dtype=dtype), values_of((4, 5), 12, dtype=dtype)
    loss = jaxent.mse_loss(p, t)
    assert loss.dtype == jnp.float32
    p64, t64 = p.astype(jnp.float64), t.astype(jnp.float64)
    assert_close(loss, ref.mse_loss(p64, t64), LOSS[jnp.dtype(dtype)])
    grads = jax.grad(jaxent.mse_loss, (0, 1))(p, t)
    want = jax.grad(ref.mse_loss, (0, 1))(p64, t64)
    for g, w in zip(grads, want):
        assert g.dtype == dtype
        assert_close(g, w, GRAD[jnp.dtype(dtype)])
    # Large values: no float16 overflow of the square (1e4^2 > float16 max).
    big = jnp.full((3,), 1e4, dtype)
    assert_close(jaxent.mse_loss(big, -big), 4e8, dict(rtol=1e-2 if dtype == jnp.bfloat16 else 1e-6, atol=0))


BAD_INPUTS = [
    (
        dict(predictions=np.zeros((4, 5), np.int32)),
        TypeError,
        "mse_loss: predictions must be a floating-point array, got dtype int32",
    ),
    (
        dict(targets=np.zeros((4, 5), np.int32)),
        TypeError,
        "mse_loss: targets must be a floating-point array, got dtype int32",
    ),
    (
        dict(targets=np.zeros((5,))),
        ValueError,
        r"mse_loss: targets has shape \(5,\) but predictions has shape \(4, 5\)",
    ),
    (dict(reduction="avg"), ValueError, "mse_loss: reduction must be one of"),
    (
        dict(where=np.ones((4,), bool)),
        ValueError,
        r"mse_loss: where has shape \(4,\) but predictions has shape \(4, 5\)",
    ),
    (dict(where=np.ones((4, 5), np.int32)), TypeError, "mse_loss: where must be a boolean mask"),
]


@pytest.mark.parametrize(("kwargs", "error", "match"), BAD_INPUTS)
def test_bad_input_is_a_clear_error(kwargs, error, match):
    args = dict(predictions=np.zeros((4, 5)), targets=np.zeros((4, 5)))
    args.update(kwargs)
    with pytest.raises(error, match=match):
        jaxent.mse_loss(args.pop("predictions"), args.pop("targets"), **args)


def test_loss_object_equals_the_function():
    p, t = values_of((4, 5), 13), values_of((4, 5), 14)
    mask = jnp.asarray(np.random.default_rng(15).random((4, 5)) > 0.3)
    loss = jaxent.MSELoss(reduction="sum")
    assert_close(loss(p, t), jaxent.mse_loss(p, t, reduction="sum"), LOSS[F64])
    assert_close(loss(p, t, where=mask), jaxent.mse_loss(p, t, where=mask, reduction="sum"), LOSS[F64])
    assert jax.tree_util.tree_leaves(loss) == []
    assert_close(jax.jit(lambda loss, p, t: loss(p, t))(loss, p, t), jaxent.mse_loss(p, t, reduction="sum"), LOSS[F64])
    with pytest.raises(dataclasses.FrozenInstanceError):
        loss.reduction = "mean"  # type: ignore[misc]


_mse = jax.jit(functools.partial(jaxent.mse_loss, reduction="none"))
# Three decimals: two different values differ by >= 1e-3, so their square cannot underflow.
values = hnp.arrays(np.float64, (3, 4), elements=st.floats(-1e3, 1e3, allow_nan=False).map(lambda v: round(v, 3)))


@settings(max_examples=25, deadline=None, derandomize=True)
@given(p=values, t=values, same=hnp.arrays(np.bool_, (3, 4)))
def test_property_nonnegative_and_zero_iff_equal(p, t, same):
    t = np.where(same, p, t)
    losses = np.asarray(_mse(p, t))
    assert np.all(losses >= 0)
    np.testing.assert_array_equal(losses == 0, p == t)
    np.testing.assert_array_equal(_mse(p, p), 0)


# --------------------------------------------------------------------------------------
# Compiled memory, forward mode and higher orders, backend neutrality.


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize("where", [None, "full", "rows"])
def test_compiled_temp_memory_is_at_most_one_percent_of_the_predictions(where, dtype):
    # No [N, C] temporary: forward only (every reduction) and value_and_grad in the
    # predictions, in float32 and bfloat16 (no float32 copy of the inputs).
    p = t = jax.ShapeDtypeStruct(programs.BIG, dtype)
    masks = {"full": programs.BIG, "rows": programs.BIG[:1] + (1,)}
    arrays = {} if where is None else dict(where=jax.ShapeDtypeStruct(masks[where], jnp.bool_))
    bound = programs.one_percent_of_f32(programs.BIG)
    for reduction in REDUCTIONS:
        loss = functools.partial(lambda r, p, t, w: jaxent.mse_loss(p, t, reduction=r, **w), reduction)
        assert programs.temp_bytes(loss, p, t, arrays) <= bound, ("forward", reduction)
        if reduction != "none":
            assert programs.temp_bytes(jax.value_and_grad(loss), p, t, arrays) <= bound, ("fwd+bwd", reduction)


def test_forward_mode_and_higher_orders():
    p, t = values_of((3, 4), 20), values_of((3, 4), 21)
    where = jnp.asarray(np.random.default_rng(22).random((3, 4)) > 0.3)
    f = jax.jit(lambda p, t: jaxent.mse_loss(p, t, where=where))
    check_grads(f, (p, t), order=2, modes=["fwd", "rev"])
    dp, dt = values_of((3, 4), 23), values_of((3, 4), 24)
    value, tangent = jax.jvp(f, (p, t), (dp, dt))
    gp, gt = jax.grad(f, (0, 1))(p, t)
    assert_close(value, f(p, t), LOSS[F64])
    assert_close(tangent, jnp.sum(gp * dp) + jnp.sum(gt * dt), GRAD[F64])
    _, linear = jax.linearize(f, p, t)
    assert_close(linear(dp, dt), tangent, GRAD[F64])
    assert_close(jax.jacfwd(f, (0, 1))(p, t), (gp, gt), GRAD[F64])
    hess = jax.hessian(f)(p, t)
    n = float(jnp.sum(where))
    assert_close(hess, 2 * jnp.einsum("ik,jl,ij->ijkl", jnp.eye(3), jnp.eye(4), where.astype(F64)) / n, GRAD[F64])
    assert_close(hess, jax.jacrev(jax.jacfwd(f))(p, t), GRAD[F64])


def test_programs_are_backend_neutral():
    p, t = values_of((8, 5), 25, dtype=jnp.float32), values_of((8, 5), 26, dtype=jnp.float32)
    for where in (None, p > 0):
        f = lambda p, t: jaxent.mse_loss(p, t, where=where)
        for g in (f, jax.value_and_grad(f, (0, 1))):
            programs.assert_backend_neutral(g, p, t)


# ======================================================================================
# Issue 15: l1_loss, smooth_l1_loss, huber_loss, log_cosh, l2_loss, poisson_nll_loss,
# gaussian_nll_loss. JAX compiles dominate test time: each test jits one function per
# configuration that computes everything it checks.


def counts_of(shape, seed):
    return jnp.asarray(np.random.default_rng(seed).poisson(2.0, size=shape).astype(np.float64))


def variances_of(shape, seed):
    v = np.random.default_rng(seed).uniform(0.05, 2.0, size=shape)
    v.flat[0] = 1e-9  # below eps: clamped
    return jnp.asarray(v)


FUNCTIONS = {
    "l1_loss": (jaxent.l1_loss, ref.l1_loss),
    "smooth_l1_loss": (jaxent.smooth_l1_loss, ref.smooth_l1_loss),
    "huber_loss": (jaxent.huber_loss, ref.huber_loss),
    "log_cosh": (jaxent.log_cosh, ref.log_cosh),
    "l2_loss": (jaxent.l2_loss, ref.l2_loss),
    "poisson_nll_loss": (jaxent.poisson_nll_loss, ref.poisson_nll_loss),
    "gaussian_nll_loss": (jaxent.gaussian_nll_loss, ref.gaussian_nll_loss),
}
# (name, options): every option of every function ("weight": a weight of the inputs' shape).
CONFIGS = [
    ("l1_loss", {}),
    ("l1_loss", {"weight": True}),
    ("smooth_l1_loss", {}),
    ("smooth_l1_loss", {"beta": 0.0}),
    ("smooth_l1_loss", {"beta": 0.4}),
    ("smooth_l1_loss", {"beta": 3.0}),
    ("huber_loss", {}),
    ("huber_loss", {"delta": 0.3}),
    ("huber_loss", {"delta": 2.5, "weight": True}),
    ("log_cosh", {}),
    ("l2_loss", {}),
    ("poisson_nll_loss", {}),
    ("poisson_nll_loss", {"full": True}),
    ("poisson_nll_loss", {"log_input": False}),
    ("poisson_nll_loss", {"log_input": False, "full": True, "eps": 1e-3}),
    ("gaussian_nll_loss", {}),
    ("gaussian_nll_loss", {"full": True, "eps": 1e-2}),
    ("gaussian_nll_loss", {"var_shape": (3,)}),
    ("gaussian_nll_loss", {"var_shape": (3, 1)}),
    ("gaussian_nll_loss", {"var_shape": (1, 4), "full": True}),
]
CONFIG_IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in o.items()) or 'default'}" for n, o in CONFIGS]
DEFAULTS = [(n, o) for n, o in CONFIGS if not o]  # one configuration per function


def case(name, options, shape=(3, 4), seed=30):
    """(arrays, options) of one configuration: predictions first, then targets (and var)."""
    options = dict(options)
    rng = np.random.default_rng(seed)
    p, t = values_of(shape, seed), values_of(shape, seed + 1)
    if options.get("weight") is True:
        options["weight"] = jnp.asarray(rng.uniform(0.1, 2.0, shape))
    if name == "poisson_nll_loss":
        rate = jnp.abs(p) + 0.1 if options.get("log_input") is False else 0.5 * p
        return (rate, counts_of(shape, seed + 2)), options
    if name == "gaussian_nll_loss":
        return (p, t, variances_of(options.pop("var_shape", shape), seed + 3)), options
    return (p, t), options


def torch_of(torch, a, grad=False):
    return torch.tensor(np.asarray(a), requires_grad=grad)


def _values_and_grads(f, arrays, options, where=None):
    """(loss, gradients in every array) for each reduction, in one jitted function."""
    argnums = tuple(range(len(arrays)))

    def run(arrays, options):
        out = []
        for r in REDUCTIONS:
            g = jax.grad(lambda *a: jnp.sum(f(*a, where=where, reduction=r, **options)), argnums)(*arrays)
            out.append((f(*arrays, where=where, reduction=r, **options), g))
        return out

    static = {k: v for k, v in options.items() if isinstance(v, bool)}
    traced = {k: v for k, v in options.items() if k not in static}
    return jax.jit(lambda a, o: run(a, {**o, **static}))(arrays, traced)


def test_golden_values_of_the_new_losses():
    p, t = jnp.array([-2.0, 0.5, 0.0, 0.5, 2.0, 4.0]), jnp.array([0.0, -0.5, 0.0, 1.0, 1.0, 2.0])
    none = dict(reduction="none")
    assert_close(jaxent.l1_loss(p, t, **none), [2.0, 1.0, 0.0, 0.5, 1.0, 2.0], LOSS[F64])
    assert_close(jaxent.huber_loss(p, t, **none), [1.5, 0.5, 0.0, 0.125, 0.5, 1.5], LOSS[F64])
    assert_close(jaxent.smooth_l1_loss(p, t, beta=2.0, **none), [1.0, 0.25, 0.0, 0.0625, 0.25, 1.0], LOSS[F64])
    assert_close(jaxent.smooth_l1_loss(p, t, beta=0.0, **none), [2.0, 1.0, 0.0, 0.5, 1.0, 2.0], LOSS[F64])
    assert_close(jaxent.l2_loss(p, t, **none), [2.0, 0.5, 0.0, 0.125, 0.5, 2.0], LOSS[F64])
    assert_close(jaxent.log_cosh(p, t, **none), np.log(np.cosh(np.asarray(p - t))), LOSS[F64])
    # loss-semantics §3.9: x = 0.5, t = 2 gives 0.6487 (full: 1.3005); x = .5, t = 2, var = .25 gives 3.8069.
    tol = dict(rtol=0, atol=5e-5)
    assert_close(jaxent.poisson_nll_loss(0.5, 2.0), 0.6487, tol)
    assert_close(jaxent.poisson_nll_loss(0.5, 2.0, full=True), 1.3005, tol)
    assert_close(jaxent.gaussian_nll_loss(0.5, 2.0, 0.25), 3.8069, tol)
    w = jnp.array([1.0, 2.0, 0.0, 1.0, 1.0, 4.0])
    assert_close(jaxent.l1_loss(p, t, weight=w), (2 + 2 + 0.5 + 1 + 8) / 9, LOSS[F64])  # sum(w l) / sum(w)
    assert_close(jaxent.huber_loss(p, t, weight=w), (1.5 + 1 + 0.125 + 0.5 + 6) / 6, LOSS[F64])  # mean(w l)


@pytest.mark.parametrize(("name", "options"), CONFIGS, ids=CONFIG_IDS)
def test_new_losses_match_torch_and_the_float64_reference(torch, name, options):
    # Every option: values and gradients in every input against PyTorch (where it has the loss)
    # and against the float64 reference, with and without a mask.
    arrays, options = case(name, options)
    f, r = FUNCTIONS[name]
    where = jnp.asarray(np.random.default_rng(41).random(arrays[0].shape) > 0.3)
    for w in (None, where):
        got, want = _values_and_grads(f, arrays, options, w), _values_and_grads(r, arrays, options, w)
        for (value, grads), (ref_value, ref_grads) in zip(got, want):
            assert_close(value, ref_value, dict(rtol=1e-12, atol=1e-10))
            for a, b in zip(grads, ref_grads):
                assert_close(a, b, dict(rtol=1e-9, atol=1e-10))
    if name in ("log_cosh", "l2_loss"):
        return  # optax's: test_new_losses_match_optax
    for reduction, (value, grads) in zip(REDUCTIONS, _values_and_grads(f, arrays, options)):
        tensors = [torch_of(torch, a, grad=True) for a in arrays]
        kwargs = {k: (torch_of(torch, v) if k == "weight" else v) for k, v in options.items()}
        want = getattr(torch.nn.functional, name)(*tensors, reduction=reduction, **kwargs)
        assert value.shape == tuple(want.shape)
        assert_close(value, want.detach().numpy(), PARITY)
        want.sum().backward()
        for g, tensor in zip(grads, tensors):
            theirs = tensor.grad.numpy()
            # PyTorch's target gradient with full=True is NaN at zero counts (log 0 before its
            # masked_fill); jaxent's is finite there (0: the Stirling term is off below 1).
            finite = np.isfinite(theirs)
            assert np.all(np.isfinite(g)) and (name == "poisson_nll_loss" or np.all(finite))
            assert_close(np.asarray(g)[finite], theirs[finite], PARITY)


@pytest.mark.parametrize(
    ("name", "options"),
    [c for c in CONFIGS if c[0] in ("poisson_nll_loss", "gaussian_nll_loss")][::2]
    + [c for c in DEFAULTS if c[0] not in ("poisson_nll_loss", "gaussian_nll_loss")],
)
def test_new_losses_check_grads_to_second_order(name, options):
    arrays, options = case(name, options)
    # Away from the non-smooth points: the Stirling term's switch at a count of 1, the clamp of var.
    if name == "poisson_nll_loss":
        arrays = (arrays[0], arrays[1] + 0.3)
    if name == "gaussian_nll_loss":
        arrays = arrays[:2] + (jnp.maximum(arrays[2], 0.5),)
    where = jnp.asarray(np.random.default_rng(42).random(arrays[0].shape) > 0.3)
    check_grads(
        jax.jit(lambda *a: FUNCTIONS[name][0](*a, where=where, **options)), arrays, order=2, modes=["fwd", "rev"]
    )


def _torch_own_cases(torch):
    """PyTorch's own test inputs: ``common_modules.module_db`` and ``common_methods_invocations.op_db``."""
    return torch_cases.module_and_op_db()


OWN = {
    "L1Loss": "l1_loss",
    "SmoothL1Loss": "smooth_l1_loss",
    "HuberLoss": "huber_loss",
    "PoissonNLLLoss": "poisson_nll_loss",
    "GaussianNLLLoss": "gaussian_nll_loss",
}
# How many of PyTorch's own cases ran, per loss (module_db + op_db); at least these many must.
OWN_COUNTS = {
    "l1_loss": 11,
    "smooth_l1_loss": 16,
    "huber_loss": 13,
    "poisson_nll_loss": 79,
    "gaussian_nll_loss": 41,
}


def test_new_losses_match_torch_on_its_own_test_inputs(torch):
    # Every module_db (module inputs) and op_db (functional sample inputs) case of these five
    # losses, in float64: the value, and the gradients in every input PyTorch differentiates.
    module_db, op_db = _torch_own_cases(torch)
    cases = []  # (name, arrays, options)
    for info in module_db:
        name = OWN.get(info.module_cls.__name__)
        if name is not None:
            for mi in info.module_inputs_func(
                info, device="cpu", dtype=torch.float64, requires_grad=False, training=True
            ):
                arrays = [a.detach().numpy() for a in mi.forward_input.args]
                cases.append((name, arrays, dict(mi.constructor_input.kwargs)))
    for op in op_db:
        name = op.name.removeprefix("nn.functional.")
        if name in OWN.values():
            samples = list(op.sample_inputs("cpu", torch.float64, requires_grad=False))
            # gaussian_nll_loss has 324: 36 groups of (shapes, full, eps) by 9 reductions/values, of
            # which one each (a compile per group dominates this test's time).
            for s in samples[::9] if name == "gaussian_nll_loss" else samples:
                arrays = [np.asarray(a.detach().numpy() if hasattr(a, "detach") else a) for a in [s.input, *s.args]]
                cases.append((name, arrays, dict(s.kwargs)))
    counts = {n: sum(c[0] == n for c in cases) for n in OWN.values()}
    assert counts == OWN_COUNTS, sorted(counts.items())
    jitted = {}
    for name, arrays, options in cases:
        reduction = options.pop("reduction", "mean")
        static = tuple(sorted((k, v) for k, v in options.items() if isinstance(v, bool)))
        traced = {k: jnp.asarray(v) for k, v in options.items() if not isinstance(v, bool)}
        key = (name, reduction, static, tuple(traced))
        if key not in jitted:

            def loss(arrays, traced, name=name, reduction=reduction, static=static):
                return FUNCTIONS[name][0](*arrays, reduction=reduction, **dict(static), **traced)

            jitted[key] = jax.jit(lambda a, t, loss=loss: (loss(a, t), jax.grad(lambda a: jnp.sum(loss(a, t)))(a)))
        value, grads = jitted[key]([jnp.asarray(a) for a in arrays], traced)
        tensors = [torch_of(torch, a, grad=True) for a in arrays]
        kwargs = {k: (torch_of(torch, v) if isinstance(v, np.ndarray) else v) for k, v in options.items()}
        want = getattr(torch.nn.functional, name)(*tensors, reduction=reduction, **kwargs)
        assert_close(value, want.detach().numpy(), PARITY)
        want.sum().backward()
        for g, tensor in zip(grads, tensors):
            theirs = tensor.grad.numpy()
            finite = np.isfinite(theirs)  # PyTorch's NaN target gradient at zero counts with full=True
            assert np.all(np.isfinite(g)) and (options.get("full") is True or np.all(finite))
            assert_close(np.asarray(g)[finite], theirs[finite], dict(rtol=1e-7, atol=1e-9))


def test_new_losses_match_optax():
    # optax's own test inputs (optax/losses/_regression_test.py: huber, and log-cosh's overflow
    # case), then seeded normals; values and gradients of huber_loss, log_cosh and l2_loss.
    inputs = (
        (np.array([-2.0, 0.5, 0.0, 0.5, 2.0, 4.0, 132.0]), np.array([0.0, -0.5, 0.0, 1.0, 1.0, 2.0, 0.3])),
        (np.array([500.0, -2.0, -1.0, 0.5, 1.0]), np.array([-200.0, -1.5, 0.0, -1.0, 1.0])),
        (np.asarray(values_of((12,), 50)), np.asarray(values_of((12,), 51))),
    )
    pairs = [
        (functools.partial(jaxent.huber_loss, delta=d), functools.partial(optax.losses.huber_loss, delta=d))
        for d in (1.0, 0.4, 3.0)
    ] + [(jaxent.log_cosh, optax.losses.log_cosh), (jaxent.l2_loss, optax.losses.l2_loss)]

    @jax.jit
    def both(p, t):
        ours = [(f(p, t, reduction="none"), jax.grad(lambda p: f(p, t, reduction="sum"))(p)) for f, _ in pairs]
        theirs = [(g(p, t), jax.grad(lambda p: jnp.sum(g(p, t)))(p)) for _, g in pairs]
        return ours, theirs

    for p, t in inputs:
        for dtype in (jnp.float32, jnp.float64):
            ours, theirs = both(jnp.asarray(p, dtype), jnp.asarray(t, dtype))
            for (a, ga), (b, gb) in zip(ours, theirs):
                assert_close(a, b, PARITY)
                assert_close(ga, gb, PARITY)


def _all_losses(p, t, v, y, where=None, reduction="none"):
    """Every new regression loss of (predictions, targets, variances, counts), as a tuple."""
    k = dict(where=where, reduction=reduction)
    return (
        jaxent.l1_loss(p, t, **k),
        jaxent.smooth_l1_loss(p, t, beta=0.7, **k),
        jaxent.huber_loss(p, t, delta=0.7, **k),
        jaxent.log_cosh(p, t, **k),
        jaxent.l2_loss(p, t, **k),
        jaxent.poisson_nll_loss(p, y, full=True, **k),
        jaxent.poisson_nll_loss(jnp.abs(p), y, log_input=False, **k),
        jaxent.gaussian_nll_loss(p, t, v, full=True, **k),
    )


def _all_inputs(shape, seed, dtype=jnp.float64):
    return (
        values_of(shape, seed, dtype=dtype),
        values_of(shape, seed + 1, dtype=dtype),
        variances_of(shape, seed + 2).astype(dtype),
        counts_of(shape, seed + 3).astype(dtype),
    )


def test_new_losses_where_equals_boolean_indexing():
    keep = np.random.default_rng(45).random((4, 5)) > 0.4
    m = jnp.asarray(keep)
    args = _all_inputs((4, 5), 46)
    padded = tuple(jnp.where(m, a, jnp.nan) for a in args)

    @jax.jit
    def masked(args, padded):
        out = {}
        for r in ("sum", "mean"):
            out[r] = _all_losses(*args, where=m, reduction=r)
        # NaN padding at dropped elements reaches neither the loss nor the gradient; an empty mean is 0.
        out["padded"] = jax.value_and_grad(lambda a: sum(_all_losses(*a, where=m, reduction="mean")))(padded)
        nothing = jnp.zeros((4, 5), bool)
        out["empty"] = jax.value_and_grad(lambda a: sum(_all_losses(*a, where=nothing, reduction="mean")))(args)
        return out

    out = masked(args, padded)
    indexed = jax.jit(lambda a: {r: _all_losses(*a, reduction=r) for r in ("sum", "mean")})(
        tuple(a[keep] for a in args)
    )
    for r in ("sum", "mean"):
        assert_close(out[r], indexed[r], LOSS[F64])
    loss, grads = out["padded"]
    assert_close(loss, sum(out["mean"]), LOSS[F64])
    for g in grads:
        assert np.all(np.asarray(g)[~keep] == 0) and np.all(np.isfinite(g))
    loss, grads = out["empty"]
    assert loss == 0 and all(np.all(g == 0) for g in grads)


def test_new_losses_eager_jit_and_vmap_agree():
    args = _all_inputs((6, 3), 47)
    eager = _all_losses(*args)
    assert_close(jax.jit(_all_losses)(*args), eager, LOSS[F64])
    assert_close(jax.jit(jax.vmap(_all_losses))(*args), eager, LOSS[F64])
    total = lambda *a: sum(jnp.sum(x) for x in _all_losses(*a))
    g = jax.jit(jax.grad(total, (0, 1, 2, 3)))(*args)
    assert_close(jax.jit(jax.vmap(jax.grad(total, (0, 1, 2, 3))))(*args), g, GRAD[F64])


def test_kinks_follow_pytorch(torch):
    # |d| at d = 0 has gradient sign(0) = 0 (jnp.abs's is 1); smooth_l1 with beta = 0 is l1, also in
    # its gradient; at |d| = delta (beta) both branches give the same derivative.
    F = torch.nn.functional
    p = jnp.array([0.0, 1.0, -1.0, 2.0, 0.3])
    t = jnp.array([0.0, 0.0, 0.0, 0.0, 0.3])
    cases = [
        (jaxent.l1_loss, F.l1_loss, {}),
        (jaxent.smooth_l1_loss, F.smooth_l1_loss, dict(beta=0.0)),
        (jaxent.smooth_l1_loss, F.smooth_l1_loss, dict(beta=1.0)),
        (jaxent.huber_loss, F.huber_loss, dict(delta=1.0)),
        (jaxent.huber_loss, F.huber_loss, dict(delta=2.0)),
    ]
    grads = jax.jit(lambda p: [jax.grad(lambda p: f(p, t, reduction="sum", **k))(p) for f, _, k in cases])(p)
    for g, (_, theirs, k) in zip(grads, cases):
        tp = torch_of(torch, p, grad=True)
        theirs(tp, torch_of(torch, t), reduction="sum", **k).backward()
        assert_close(g, tp.grad.numpy(), LOSS[F64])
    assert grads[0][0] == 0 and grads[1][0] == 0
    # log-cosh: the exact second derivative sech²(0) = 1 at d = 0 (autodiff of |d| + ... gives 0).
    assert_close(jax.hessian(lambda p: jaxent.log_cosh(p, t, reduction="sum"))(p)[0, 0], 1.0, LOSS[F64])


def test_new_losses_extreme_and_infinite_inputs():
    inf = jnp.inf
    p = jnp.array([1e4, -1e4, 3e3, inf, -inf])
    t = jnp.zeros(5)
    y = jnp.array([0.0, 3.0, 0.0, 0.0, 3.0])

    @jax.jit
    def run(p):
        losses = _all_losses(p, t, jnp.zeros(5), y)[:5]
        grads = jax.grad(lambda p: sum(jnp.sum(x) for x in _all_losses(p, t, jnp.zeros(5), y)[:5]))(p)
        # Poisson: a zero count at a -inf log-rate is exactly 0, a positive count gives +inf.
        x = jnp.array([-inf, -inf, 100.0, -700.0])
        c = jnp.array([0.0, 3.0, 0.0, 0.0])
        poisson = (
            jaxent.poisson_nll_loss(x, c, reduction="none"),
            jax.grad(lambda x: jaxent.poisson_nll_loss(x, c, reduction="sum"))(x),
        )
        rates = [
            jax.value_and_grad(lambda r: jaxent.poisson_nll_loss(r, c[:3], log_input=False, full=f, reduction="sum"))(
                jnp.array([0.0, 0.0, 1e4])
            )
            for f in (False, True)
        ]
        # Gaussian: a zero variance is clamped at eps (finite); a huge error stays finite.
        gauss = jax.value_and_grad(jaxent.gaussian_nll_loss, (0, 1, 2))(p[:3], t[:3], jnp.zeros(3))
        return losses, grads, poisson, rates, gauss

    losses, grads, poisson, rates, gauss = run(p)
    for loss in losses:
        assert np.all(np.isfinite(loss[:3])) and np.all(loss[3:] == inf)
    assert not np.any(np.isnan(grads)) and np.all(np.isfinite(grads[:3]))
    # log cosh 1e4 = 1e4 - log 2 (cosh itself overflows).
    assert_close(losses[3][:3], jnp.abs(p[:3]) - np.log(2.0), LOSS[F64])
    assert list(np.asarray(poisson[0])[:2]) == [0, inf] and not np.any(np.isnan(poisson[1]))
    for value, g in rates + [gauss]:
        assert np.isfinite(value) and all(np.all(np.isfinite(x)) for x in jax.tree_util.tree_leaves(g))


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_new_losses_half_precision_is_computed_in_float32(dtype):
    p, t, v, y = _all_inputs((4, 5), 48)
    # (A variance clamped at eps = 1e-6 would give float16 gradients beyond its range.)
    args = tuple(a.astype(dtype) for a in (p, t, jnp.maximum(v, 0.05), y))
    args64 = tuple(a.astype(F64) for a in args)  # the reference sees exactly the rounded inputs
    total = lambda *a: _all_losses(*a, reduction="mean")
    losses, want = jax.jit(total)(*args), jax.jit(total)(*args64)
    for loss, w in zip(losses, want):
        assert loss.dtype == jnp.float32
        assert_close(loss, w, dict(rtol=1e-5, atol=1e-6))
    # Each loss's gradients on their own (a sum of several half-precision gradients rounds each).
    each = lambda *a: [jax.grad(lambda *a: total(*a)[i], (0, 1, 2, 3))(*a) for i in range(len(losses))]
    for grads, want in zip(jax.jit(each)(*args), jax.jit(each)(*args64)):
        for g, w in zip(grads, want):
            assert g.dtype == dtype
            assert_close(g, w, GRAD[jnp.dtype(dtype)])


NEW_BAD_INPUTS = [
    ("l1_loss", dict(predictions=np.zeros((4, 5), np.int32)), TypeError, "l1_loss: predictions must be a floating"),
    ("l1_loss", dict(targets=np.zeros((5,))), ValueError, r"l1_loss: targets has shape \(5,\) but predictions"),
    ("l1_loss", dict(weight=np.ones((3,))), ValueError, r"l1_loss: weight has shape \(3,\), which does not broadcast"),
    ("l1_loss", dict(reduction="batchmean"), ValueError, "l1_loss: reduction must be one of"),
    ("smooth_l1_loss", dict(beta=-0.5), ValueError, r"smooth_l1_loss: beta must lie in \[0.0, inf\), got -0.5"),
    ("smooth_l1_loss", dict(beta=np.ones(2)), ValueError, "smooth_l1_loss: beta must be a scalar"),
    ("huber_loss", dict(delta=0.0), ValueError, r"huber_loss: delta must lie in \(0.0, inf\), got 0.0"),
    ("huber_loss", dict(where=np.ones((4,), bool)), ValueError, r"huber_loss: where has shape \(4,\)"),
    ("log_cosh", dict(targets=np.zeros((4, 5), np.int32)), TypeError, "log_cosh: targets must be a floating"),
    ("l2_loss", dict(where=np.ones((4, 5), np.int32)), TypeError, "l2_loss: where must be a boolean mask"),
    ("poisson_nll_loss", dict(log_input=1), TypeError, "poisson_nll_loss: log_input must be a Python bool"),
    ("poisson_nll_loss", dict(full="yes"), TypeError, "poisson_nll_loss: full must be a Python bool"),
    ("poisson_nll_loss", dict(eps=-1.0), ValueError, r"poisson_nll_loss: eps must lie in \[0.0, inf\)"),
    ("gaussian_nll_loss", dict(var=np.ones((5,))), ValueError, r"gaussian_nll_loss: var has shape \(5,\) but"),
    ("gaussian_nll_loss", dict(var=np.ones((4, 5, 1))), ValueError, r"gaussian_nll_loss: var has shape \(4, 5, 1\)"),
    ("gaussian_nll_loss", dict(var=np.ones((1, 1))), ValueError, r"gaussian_nll_loss: var has shape \(1, 1\)"),
    ("gaussian_nll_loss", dict(var=-np.ones((4, 5))), ValueError, "gaussian_nll_loss: var has a negative entry -1.0"),
    ("gaussian_nll_loss", dict(var=np.ones((4, 5), bool)), TypeError, "gaussian_nll_loss: var must be a real array"),
    ("gaussian_nll_loss", dict(eps=0.0), ValueError, r"gaussian_nll_loss: eps must lie in \(0.0, inf\)"),
    ("gaussian_nll_loss", dict(full=None), TypeError, "gaussian_nll_loss: full must be a Python bool"),
]


@pytest.mark.parametrize(("name", "kwargs", "error", "match"), NEW_BAD_INPUTS)
def test_new_losses_bad_input_is_a_clear_error(name, kwargs, error, match):
    args = dict(predictions=np.zeros((4, 5)), targets=np.zeros((4, 5)))
    if name == "gaussian_nll_loss":
        args["var"] = np.ones((4, 5))
    args.update(kwargs)
    positional = [args.pop(k) for k in ("predictions", "targets", "var") if k in args]
    with pytest.raises(error, match=match):
        FUNCTIONS[name][0](*positional, **args)


def test_traced_hyperparameters_are_checked_and_do_not_recompile():
    p, t = values_of((3, 4), 49), values_of((3, 4), 50)
    traces = []

    def losses(beta, delta, eps, w, v):
        traces.append(1)
        return (
            jaxent.smooth_l1_loss(p, t, beta=beta),
            jaxent.huber_loss(p, t, delta=delta, weight=w),
            jaxent.poisson_nll_loss(jnp.abs(p), jnp.abs(t), log_input=False, eps=eps),
            jaxent.l1_loss(p, t, weight=w),
            jaxent.gaussian_nll_loss(p, t, v, reduction="none"),
        )

    f = jax.jit(losses)
    ones = jnp.ones((3, 4))
    for beta, delta, eps in ((1.0, 1.0, 1e-8), (0.3, 2.0, 1e-3), (0.0, 0.1, 0.0)):
        w = ones * (1 + beta)
        for a, b in zip(f(beta, delta, eps, w, ones), losses(beta, delta, eps, w, ones)):
            assert_close(a, b, LOSS[F64])
    assert len(traces) == 4  # one trace for the jitted function, three eager calls
    checked = checkify.checkify(f, errors=checkify.user_checks)
    checked(0.5, 1.0, 0.0, ones, ones)[0].throw()
    with pytest.raises(checkify.JaxRuntimeError, match=r"smooth_l1_loss: beta must lie in \[0.0, inf\), got -1"):
        checked(-1.0, 1.0, 0.0, ones, ones)[0].throw()
    with pytest.raises(checkify.JaxRuntimeError, match=r"huber_loss: delta must lie in \(0.0, inf\), got 0"):
        checked(0.5, 0.0, 0.0, ones, ones)[0].throw()
    err, out = checked(0.5, 1.0, 0.0, ones, ones.at[1, 2].set(-2.0))
    with pytest.raises(checkify.JaxRuntimeError, match="gaussian_nll_loss: var must be >= 0, got -2"):
        err.throw()
    # A traced negative variance poisons its element with NaN, never a silently clamped value.
    assert np.isnan(out[4][1, 2]) and np.sum(np.isnan(out[4])) == 1


def test_new_loss_objects_equal_their_functions():
    p, t = values_of((4, 5), 53), values_of((4, 5), 54)
    var = jnp.abs(values_of((4, 5), 55)) + 0.1
    mask = jnp.asarray(np.random.default_rng(56).random((4, 5)) > 0.3)
    w = jnp.linspace(0.5, 2.0, 5)
    pairs = [
        (jaxent.L1Loss(weight=w, reduction="sum"), jaxent.l1_loss, (p, t), 1),
        (jaxent.SmoothL1Loss(beta=0.5), jaxent.smooth_l1_loss, (p, t), 1),
        (jaxent.HuberLoss(delta=0.7, weight=w), jaxent.huber_loss, (p, t), 2),
        (jaxent.LogCoshLoss(reduction="sum"), jaxent.log_cosh, (p, t), 0),
        (jaxent.L2Loss(), jaxent.l2_loss, (p, t), 0),
        (jaxent.PoissonNLLLoss(log_input=False, full=True, eps=1e-3), jaxent.poisson_nll_loss, (var, jnp.abs(t)), 1),
        (jaxent.GaussianNLLLoss(full=True, eps=1e-3, reduction="none"), jaxent.gaussian_nll_loss, (p, t, var), 1),
    ]
    objects = [loss for loss, *_ in pairs]
    inputs = [args for _, _, args, _ in pairs]
    got = jax.jit(lambda objects, inputs: [(o(*a), o(*a, where=mask)) for o, a in zip(objects, inputs)])(
        objects, inputs
    )
    for (loss, f, args, n_leaves), (plain, masked) in zip(pairs, got):
        options = dataclasses.asdict(loss)
        assert_close(plain, f(*args, **options), LOSS[F64])
        assert_close(masked, f(*args, where=mask, **options), LOSS[F64])
        assert len(jax.tree_util.tree_leaves(loss)) == n_leaves, type(loss).__name__
        with pytest.raises(dataclasses.FrozenInstanceError):
            loss.reduction = "mean"  # type: ignore[misc]
    g = jax.grad(lambda loss: loss(p, t))(jaxent.HuberLoss(delta=0.7))
    assert_close(g.delta, jax.grad(lambda d: jaxent.huber_loss(p, t, delta=d))(0.7), GRAD[F64])


NEW_MEMORY = [
    ("l1_loss", {"weight": "row"}),
    ("smooth_l1_loss", {"beta": "traced"}),
    ("huber_loss", {"weight": "full", "where": "rows"}),
    ("log_cosh", {"where": "full"}),
    ("l2_loss", {}),
    ("poisson_nll_loss", {"full": True}),
    ("poisson_nll_loss", {"log_input": False, "full": True}),
    ("gaussian_nll_loss", {"var": "full"}),
    ("gaussian_nll_loss", {"var": "rows", "full": True, "where": "full"}),
]


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize(("name", "options"), NEW_MEMORY, ids=[f"{n}-{i}" for i, (n, _) in enumerate(NEW_MEMORY)])
def test_new_losses_compiled_temp_memory_is_at_most_one_percent(name, options, dtype):
    # No temporary of the inputs' size: forward, and value_and_grad in the predictions (as for mse_loss).
    big = programs.BIG
    x = jax.ShapeDtypeStruct(big, dtype)
    specs = {
        "full": jax.ShapeDtypeStruct(big, dtype),
        "rows": jax.ShapeDtypeStruct(big[:1] + (1,), dtype),
        "row": jax.ShapeDtypeStruct(big[-1:], dtype),
        "traced": jax.ShapeDtypeStruct((), jnp.float32),
    }
    arrays = {k: specs[v] for k, v in options.items() if isinstance(v, str) and k != "where"}
    where = {k: jax.ShapeDtypeStruct(specs[v].shape, jnp.bool_) for k, v in options.items() if k == "where"}
    static = {k: v for k, v in options.items() if not isinstance(v, str)}
    f = FUNCTIONS[name][0]
    bound = programs.one_percent_of_f32(big)
    loss = lambda p, t, a, w: f(p, t, **a, **w, **static)
    assert programs.temp_bytes(loss, x, x, arrays, where) <= bound, "forward"
    assert programs.temp_bytes(jax.value_and_grad(loss), x, x, arrays, where) <= bound, "fwd+bwd"


def test_new_losses_programs_are_backend_neutral():
    args = _all_inputs((8, 5), 57, dtype=jnp.float32)
    f = lambda *a: sum(_all_losses(*a, where=a[0] > a[1], reduction="mean"))
    for g in (f, jax.value_and_grad(f, (0, 1, 2, 3))):
        programs.assert_backend_neutral(g, *args)
