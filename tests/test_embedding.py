"""Embedding, pairwise and contrastive losses against float64 references, PyTorch and optax."""

from __future__ import annotations

import dataclasses
import functools
import math

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
N, D = 6, 5


def values_of(shape, seed=0, scale=1.5, dtype=jnp.float64):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape) * scale).astype(dtype)


def signs_of(shape, seed=1):
    return jnp.asarray(np.random.default_rng(seed).choice([-1, 1], size=shape), jnp.int32)


def mask_of(shape, seed=2, p=0.35):
    keep = np.random.default_rng(seed).random(shape) > p
    keep.flat[0] = True
    return jnp.asarray(keep)


def torch_of(torch, a, grad=False):
    return torch.tensor(
        np.asarray(a, np.float64) if np.asarray(a).dtype.kind == "f" else np.asarray(a), requires_grad=grad
    )


# --------------------------------------------------------------------------------------
# One registry: each loss, its reference, its inputs (the differentiated floating arrays
# first) and the shape of its `where` (rows or elements).


@dataclasses.dataclass(frozen=True)
class Case:
    f: object
    r: object
    floats: int  # how many leading arguments are differentiable floating arrays
    inputs: object  # (shape, seed, dtype) -> tuple of arrays
    where: str  # "rows" (batch shape) or "elements" (the inputs' shape)
    options: tuple = ()  # option dicts tested against the reference


def _pair_rows(shape, seed, dtype):
    return values_of(shape, seed, dtype=dtype), values_of(shape, seed + 1, dtype=dtype), signs_of(shape[:-1], seed + 2)


def _pair_elements(shape, seed, dtype):
    return values_of(shape, seed, dtype=dtype), values_of(shape, seed + 1, dtype=dtype), signs_of(shape, seed + 2)


def _two(shape, seed, dtype):
    return values_of(shape, seed, dtype=dtype), values_of(shape, seed + 1, dtype=dtype)


def _hinge_embedding(shape, seed, dtype):
    return jnp.abs(values_of(shape, seed, dtype=dtype)), signs_of(shape, seed + 2)


def _triplets(shape, seed, dtype):
    return tuple(values_of(shape, seed + i, dtype=dtype) for i in range(3))


def _ntxent(shape, seed, dtype):
    return values_of(shape, seed, dtype=dtype), jnp.asarray(np.arange(shape[0]) % 3, jnp.int32)


def _l1_distance(x, y):
    return jnp.sum(jnp.abs(x - y), axis=-1)


def _ref_with_distance(a, p, n, *, distance_function=None, margin=1.0, swap=False, where=None, reduction="mean"):
    d = ref.pairwise_distance if distance_function is None else distance_function
    d_neg = d(a, n)
    if swap:
        d_neg = jnp.minimum(d_neg, d(p, n))
    return ref._row_reduce(jnp.maximum(margin + d(a, p) - d_neg, 0.0), where, reduction)


CASES = {
    "cosine_similarity": Case(
        jaxent.cosine_similarity,
        ref.cosine_similarity,
        2,
        _two,
        "elements",
        (dict(), dict(epsilon=0.5), dict(axis=0), dict(axis=(1, 0))),
    ),
    "cosine_distance": Case(
        jaxent.cosine_distance, ref.cosine_distance, 2, _two, "elements", (dict(), dict(epsilon=3.0), dict(axis=0))
    ),
    "cosine_embedding_loss": Case(
        jaxent.cosine_embedding_loss,
        ref.cosine_embedding_loss,
        2,
        _pair_rows,
        "rows",
        (dict(), dict(margin=0.3), dict(margin=-0.4)),
    ),
    "margin_ranking_loss": Case(
        jaxent.margin_ranking_loss,
        ref.margin_ranking_loss,
        2,
        _pair_elements,
        "elements",
        (dict(), dict(margin=0.7), dict(margin=-0.2)),
    ),
    "hinge_embedding_loss": Case(
        jaxent.hinge_embedding_loss,
        ref.hinge_embedding_loss,
        1,
        _hinge_embedding,
        "elements",
        (dict(), dict(margin=0.5), dict(margin=2.5)),
    ),
    "triplet_margin_loss": Case(
        jaxent.triplet_margin_loss,
        ref.triplet_margin_loss,
        3,
        _triplets,
        "rows",
        (dict(), dict(p=1), dict(p=3.0, swap=True), dict(p=math.inf, eps=0.0), dict(margin=0.2, eps=1e-3, axis=0)),
    ),
    "triplet_margin_with_distance_loss": Case(
        jaxent.triplet_margin_with_distance_loss,
        _ref_with_distance,
        3,
        _triplets,
        "rows",
        (dict(), dict(swap=True, margin=0.5), dict(distance_function=_l1_distance, swap=True)),
    ),
    "ntxent": Case(
        jaxent.ntxent, ref.ntxent, 1, _ntxent, "rows", (dict(), dict(temperature=0.5), dict(temperature=2.0))
    ),
}
NAMES = sorted(CASES)


def _where(case, arrays, seed=7):
    x = arrays[0]
    if case.where == "elements":
        return mask_of(x.shape, seed)
    return mask_of(x.shape[:1] if case.f is jaxent.ntxent else x.shape[:-1], seed)


def _inputs(name, shape=(N, D), seed=10, dtype=jnp.float64):
    return CASES[name].inputs(shape, seed, dtype)


# --------------------------------------------------------------------------------------
# Golden values.


def test_golden_values():
    tol = dict(rtol=1e-6, atol=1e-6)
    a, b = jnp.array([[1.0, 0.0], [3.0, 4.0], [0.0, 0.0]]), jnp.array([[1.0, 1.0], [-3.0, -4.0], [1.0, 2.0]])
    assert_close(jaxent.cosine_similarity(a, b), [2**-0.5, -1.0, 0.0], tol)  # a zero vector: 0
    assert_close(jaxent.cosine_distance(a, b), [1 - 2**-0.5, 2.0, 1.0], tol)
    assert_close(jaxent.cosine_distance(a, b, reduction="mean"), (4 - 2**-0.5) / 3, tol)
    # cos = 1/sqrt(2): y = 1 gives 1 - cos; y = -1 gives max(0, cos - margin).
    y = jnp.array([1, -1, -1])
    assert_close(jaxent.cosine_embedding_loss(a, b, y, margin=0.5, reduction="none"), [1 - 2**-0.5, 0.0, 0.0], tol)
    assert_close(jaxent.cosine_embedding_loss(a[:1], b[:1], y[1:2], margin=0.5), 2**-0.5 - 0.5, tol)
    x1, x2 = jnp.array([0.5, 0.2, 1.0]), jnp.array([0.1, 0.4, 1.0])
    assert_close(
        jaxent.margin_ranking_loss(x1, x2, jnp.array([1, 1, -1]), margin=0.1, reduction="none"), [0.0, 0.3, 0.1], tol
    )
    x = jnp.array([0.3, 0.4, 2.0, 1.5])
    assert_close(jaxent.hinge_embedding_loss(x, jnp.array([1, -1, -1, 1]), reduction="none"), [0.3, 0.6, 0.0, 1.5], tol)
    # Triplets: d(a, p) = |(0.3, 0.4)| = 0.5, d(a, n) = 1; with p = 1: 0.7 and 1.
    anc, pos, neg = jnp.zeros((1, 2)), jnp.array([[0.3, 0.4]]), jnp.array([[1.0, 0.0]])
    assert_close(jaxent.triplet_margin_loss(anc, pos, neg, eps=0.0), 0.5, tol)
    assert_close(jaxent.triplet_margin_loss(anc, pos, neg, eps=0.0, p=1), 0.7, tol)
    assert_close(jaxent.triplet_margin_loss(anc, pos, neg, eps=0.0, p=math.inf), 0.4 + 1 - 1, tol)
    # swap: d(p, n) = |(0.7, -0.4)| = 0.806 < 1.
    assert_close(jaxent.triplet_margin_loss(anc, pos, neg, eps=0.0, swap=True), 1.5 - math.hypot(0.7, 0.4), tol)
    # NT-Xent: two orthogonal pairs of identical vectors, T = 1: each of the 4 positive pairs
    # has s = 1 and two negatives with s = 0: -log(e / (e + 2)).
    e = jnp.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    want = -math.log(math.e / (math.e + 2))
    assert_close(jaxent.ntxent(e, jnp.array([0, 0, 1, 1]), temperature=1.0), want, tol)
    assert_close(jaxent.ntxent(e, jnp.array([0, 0, 1, 1]), temperature=1.0, reduction="none"), [want] * 4, tol)


# --------------------------------------------------------------------------------------
# float64 references, every option and reduction, with and without `where`; gradients.


@pytest.mark.parametrize("name", NAMES)
def test_matches_float64_reference(name):
    case = CASES[name]
    for i, options in enumerate(case.options):
        arrays = _inputs(name, (N, D), seed=20 + 3 * i)
        if case.f is jaxent.ntxent and not options:
            arrays = (arrays[0], jnp.array([0, 0, 1, 1, 2, 3], jnp.int32))  # anchors without positives
        axis = options.get("axis")
        if axis is not None and case.where == "rows":
            # Rows are the other axis: the targets (if any) follow it.
            arrays = arrays[: case.floats] + tuple(signs_of((D,), 5) for _ in arrays[case.floats :])
        for where in (None, "mask"):
            kw = dict(options)
            if where:
                mask = _where(case, arrays)
                if axis is not None:
                    mask = mask_of(arrays[0].shape, 8) if case.where == "elements" else mask_of((D,), 8)
                kw["where"] = mask
            for reduction in REDUCTIONS:
                got = case.f(*arrays, reduction=reduction, **kw)
                assert_close(got, case.r(*arrays, reduction=reduction, **kw), LOSS[F64])
            if not where:
                continue  # gradients with the mask (the harder case) only
            f = lambda *xs: jnp.sum(case.f(*xs, *arrays[case.floats :], **kw))
            r = lambda *xs: jnp.sum(case.r(*xs, *arrays[case.floats :], **kw))
            argnums = tuple(range(case.floats))
            for g, w in zip(jax.grad(f, argnums)(*arrays[: case.floats]), jax.grad(r, argnums)(*arrays[: case.floats])):
                assert_close(g, w, GRAD[F64])


@pytest.mark.parametrize("name", NAMES)
def test_forward_and_reverse_mode_to_second_order(name):
    case = CASES[name]
    arrays = _inputs(name, (4, 3), seed=30)
    options = dict(case.options[-1])
    options.pop("axis", None)
    options["where"] = _where(case, arrays, seed=31)
    f = jax.jit(lambda *xs: jnp.sum(case.f(*xs, *arrays[case.floats :], **options)))
    primals = arrays[: case.floats]
    check_grads(f, primals, order=2, modes=["fwd", "rev"])
    tangents = tuple(values_of(x.shape, 32 + i) for i, x in enumerate(primals))
    value, tangent = jax.jvp(f, primals, tangents)
    grads = jax.grad(f, tuple(range(len(primals))))(*primals)
    assert_close(value, f(*primals), LOSS[F64])
    assert_close(tangent, sum(jnp.sum(g * t) for g, t in zip(grads, tangents)), GRAD[F64])
    hess = jax.hessian(f)(*primals)
    assert np.all(np.isfinite(hess))
    assert_close(hess, jax.jacrev(jax.jacfwd(f))(*primals), GRAD[F64])


def test_hyperparameter_gradients_match_reference():
    # margin, eps, epsilon and temperature may be traced and are differentiable.
    a, p, n = _inputs("triplet_margin_loss", seed=33)
    for f, r in ((jaxent.triplet_margin_loss, ref.triplet_margin_loss),):
        got = jax.grad(lambda m, e: f(a, p, n, margin=m, eps=e), (0, 1))(0.7, 0.01)
        want = jax.grad(lambda m, e: r(a, p, n, margin=m, eps=e), (0, 1))(0.7, 0.01)
        assert_close(got, want, GRAD[F64])
    e, y = _inputs("ntxent", seed=34)
    got = jax.grad(lambda t: jaxent.ntxent(e, y, temperature=t))(0.3)
    assert_close(got, jax.grad(lambda t: ref.ntxent(e, y, temperature=t))(0.3), GRAD[F64])
    x1, x2, s = _inputs("cosine_embedding_loss", seed=35)
    got = jax.grad(lambda m: jaxent.cosine_embedding_loss(x1, x2, s, margin=m))(-0.2)
    assert_close(got, jax.grad(lambda m: ref.cosine_embedding_loss(x1, x2, s, margin=m))(-0.2), GRAD[F64])
    small = x1 * 0.1
    got = jax.grad(lambda eps: jnp.sum(jaxent.cosine_similarity(small, x2, epsilon=eps)))(0.2)
    assert_close(got, jax.grad(lambda eps: jnp.sum(ref.cosine_similarity(small, x2, epsilon=eps)))(0.2), GRAD[F64])


# --------------------------------------------------------------------------------------
# PyTorch parity: every option, then PyTorch's own test inputs.


@pytest.mark.parametrize("shape", [(7, 4), (4,)], ids=["batched", "unbatched"])
def test_cosine_embedding_matches_torch(torch, shape):
    x1, x2 = values_of(shape, 40), values_of(shape, 41)
    # A zero vector with y = 1 (with y = -1 and margin 0 it sits on the hinge's kink, where
    # PyTorch's clamp passes the gradient and jaxent's is 0).
    y = signs_of(shape[:-1], 42).reshape(-1).at[0].set(1).reshape(shape[:-1])
    x1 = x1.at[..., :].set(jnp.where(jnp.arange(shape[-1]) == 0, 0.0, x1)) if len(shape) == 1 else x1.at[0].set(0.0)
    for margin in (0.0, 0.5, -0.3):
        for reduction in REDUCTIONS:
            t1, t2 = torch_of(torch, x1, True), torch_of(torch, x2, True)
            want = torch.nn.functional.cosine_embedding_loss(
                t1, t2, torch_of(torch, y), margin=margin, reduction=reduction
            )
            got = jaxent.cosine_embedding_loss(x1, x2, y, margin=margin, reduction=reduction)
            assert got.shape == tuple(want.shape)
            assert_close(got, want.detach().numpy(), PARITY)
            want.sum().backward()
            g1, g2 = jax.grad(
                lambda a, b: jnp.sum(jaxent.cosine_embedding_loss(a, b, y, margin=margin, reduction=reduction)), (0, 1)
            )(x1, x2)
            assert_close(g1, t1.grad.numpy(), PARITY)
            assert_close(g2, t2.grad.numpy(), PARITY)


@pytest.mark.parametrize("shape", [(), (9,), (3, 4)])
def test_margin_ranking_and_hinge_embedding_match_torch(torch, shape):
    x1, x2 = values_of(shape, 43), values_of(shape, 44)
    y = signs_of(shape, 45)
    real_y = values_of(shape, 46)  # margin_ranking_loss takes any real target, as PyTorch
    F = torch.nn.functional
    for margin in (0.0, 0.6, -0.4):
        for reduction in REDUCTIONS:
            for targets in (y, real_y):
                t1, t2 = torch_of(torch, x1, True), torch_of(torch, x2, True)
                want = F.margin_ranking_loss(t1, t2, torch_of(torch, targets), margin=margin, reduction=reduction)
                f = lambda a, b: jaxent.margin_ranking_loss(a, b, targets, margin=margin, reduction=reduction)
                assert_close(f(x1, x2), want.detach().numpy(), PARITY)
                want.sum().backward()
                g1, g2 = jax.grad(lambda a, b: jnp.sum(f(a, b)), (0, 1))(x1, x2)
                assert_close(g1, t1.grad.numpy(), PARITY)
                assert_close(g2, t2.grad.numpy(), PARITY)
            tx = torch_of(torch, x1, True)
            want = F.hinge_embedding_loss(tx, torch_of(torch, y), margin=margin, reduction=reduction)
            f = lambda x: jaxent.hinge_embedding_loss(x, y, margin=margin, reduction=reduction)
            assert_close(f(x1), want.detach().numpy(), PARITY)
            want.sum().backward()
            assert_close(jax.grad(lambda x: jnp.sum(f(x)))(x1), tx.grad.numpy(), PARITY)


@pytest.mark.parametrize("shape", [(6, 4), (5,)], ids=["batched", "unbatched"])
def test_triplet_losses_match_torch(torch, shape):
    a, p, n = (values_of(shape, 47 + i) for i in range(3))
    F = torch.nn.functional
    options = [
        dict(),
        dict(margin=0.3, p=1.0),
        dict(p=3.0, eps=1e-3, swap=True),
        dict(p=math.inf, margin=2.0),
        dict(eps=0.0, swap=True, margin=0.05),
    ]
    for opts in options:
        for reduction in REDUCTIONS:
            ts = [torch_of(torch, v, True) for v in (a, p, n)]
            want = F.triplet_margin_loss(*ts, reduction=reduction, **opts)
            f = lambda *xs: jnp.sum(jaxent.triplet_margin_loss(*xs, reduction=reduction, **opts))
            assert_close(
                jaxent.triplet_margin_loss(a, p, n, reduction=reduction, **opts), want.detach().numpy(), PARITY
            )
            if reduction != "mean":
                continue  # gradients once per option
            want.sum().backward()
            for g, t in zip(jax.grad(f, (0, 1, 2))(a, p, n), ts):
                assert_close(g, t.grad.numpy(), PARITY)
    pairs = [
        (None, None),
        (lambda x, y: jaxent.cosine_distance(x, y), lambda x, y: 1 - F.cosine_similarity(x, y, dim=-1)),
        (_l1_distance, lambda x, y: (x - y).abs().sum(-1)),
    ]
    for ours, theirs in pairs:
        for opts in (dict(), dict(margin=0.4, swap=True)):
            for reduction in REDUCTIONS:
                ts = [torch_of(torch, v, True) for v in (a, p, n)]
                want = F.triplet_margin_with_distance_loss(*ts, distance_function=theirs, reduction=reduction, **opts)
                got = jaxent.triplet_margin_with_distance_loss(
                    a, p, n, distance_function=ours, reduction=reduction, **opts
                )
                assert_close(got, want.detach().numpy(), PARITY)
                if reduction != "mean":
                    continue  # gradients once per option
                want.sum().backward()
                f = lambda *xs: jnp.sum(
                    jaxent.triplet_margin_with_distance_loss(*xs, distance_function=ours, reduction=reduction, **opts)
                )
                for g, t in zip(jax.grad(f, (0, 1, 2))(a, p, n), ts):
                    assert_close(g, t.grad.numpy(), PARITY)


def test_cosine_similarity_matches_torch_with_eps_squared(torch):
    # PyTorch clamps each norm at eps; jaxent (optax) clamps each squared norm at epsilon = eps².
    x1, x2 = values_of((5, 4), 50), values_of((5, 4), 51)
    x1 = x1.at[1].multiply(1e-3)  # a norm below eps = 0.1: clamped in both
    for eps, dim in ((1e-8, -1), (0.1, -1), (0.5, 0)):
        t1, t2 = torch_of(torch, x1, True), torch_of(torch, x2, True)
        want = torch.nn.functional.cosine_similarity(t1, t2, dim=dim, eps=eps)
        got = jaxent.cosine_similarity(x1, x2, epsilon=eps**2, axis=dim)
        assert_close(got, want.detach().numpy(), PARITY)
        if eps == 1e-8:  # PyTorch's clamp is outside autograd: gradients agree where it is inactive
            want.sum().backward()
            g1, g2 = jax.grad(lambda a, b: jnp.sum(jaxent.cosine_similarity(a, b, epsilon=eps**2, axis=dim)), (0, 1))(
                x1, x2
            )
            assert_close(g1, t1.grad.numpy(), PARITY)
            assert_close(g2, t2.grad.numpy(), PARITY)


def _torch_sample_cases(torch):
    """(name, torch callable, jaxent callable, float arrays, other arrays) from PyTorch's own test inputs:
    ``common_nn.criterion_tests``, ``common_modules.module_db`` and ``common_methods_invocations.op_db``."""
    from torch.testing._internal import common_methods_invocations, common_modules, common_nn

    np_ = lambda t: np.asarray(t.detach().numpy())
    cases = []
    functional = {
        "CosineEmbeddingLoss": jaxent.cosine_embedding_loss,
        "MarginRankingLoss": jaxent.margin_ranking_loss,
        "HingeEmbeddingLoss": jaxent.hinge_embedding_loss,
        "TripletMarginLoss": jaxent.triplet_margin_loss,
    }
    for t in common_nn.criterion_tests:
        name = t["fullname"].split("_")[0]
        if name not in functional:
            continue
        module = t["constructor"]()
        x, target = t["input_fn"](), t["target_fn"]()
        xs = list(x) if isinstance(x, (tuple, list)) else [x]
        if name == "TripletMarginLoss":
            xs, others = xs + [target], []
        else:
            others = [target]
        ours = functools.partial(functional[name], reduction=module.reduction)
        cases.append((t["fullname"], module, ours, [np_(a) for a in xs], [np_(a) for a in others]))
    objects = {
        "CosineEmbeddingLoss": (jaxent.CosineEmbeddingLoss, 2),
        "MarginRankingLoss": (jaxent.MarginRankingLoss, 2),
        "HingeEmbeddingLoss": (jaxent.HingeEmbeddingLoss, 1),
        "TripletMarginLoss": (jaxent.TripletMarginLoss, 3),
        "TripletMarginWithDistanceLoss": (jaxent.TripletMarginWithDistanceLoss, 3),
    }
    for info in common_modules.module_db:
        name = info.module_cls.__name__
        if name not in objects:
            continue
        cls, floats = objects[name]
        for i, mi in enumerate(
            info.module_inputs_func(info, device="cpu", dtype=torch.float64, requires_grad=False, training=True)
        ):
            kwargs = dict(mi.constructor_input.kwargs)
            if "distance_function" in kwargs:
                continue  # a torch callable
            module = info.module_cls(*mi.constructor_input.args, **kwargs)
            args = [np_(a) for a in mi.forward_input.args]
            cases.append((f"{name}[{i}]", module, cls(**kwargs), args[:floats], args[floats:]))
    functions = {
        "nn.functional.cosine_embedding_loss": (jaxent.cosine_embedding_loss, 2),
        "nn.functional.margin_ranking_loss": (jaxent.margin_ranking_loss, 2),
        "nn.functional.hinge_embedding_loss": (jaxent.hinge_embedding_loss, 1),
        "nn.functional.triplet_margin_loss": (jaxent.triplet_margin_loss, 3),
        "nn.functional.triplet_margin_with_distance_loss": (jaxent.triplet_margin_with_distance_loss, 3),
        "nn.functional.cosine_similarity": (jaxent.cosine_similarity, 2),
    }
    for op in common_methods_invocations.op_db:
        if op.name not in functions:
            continue
        ours, floats = functions[op.name]
        for i, s in enumerate(op.sample_inputs("cpu", torch.float64, requires_grad=False)):
            arrays = [np_(s.input)] + [np_(a) if hasattr(a, "shape") else a for a in s.args]
            kwargs = dict(s.kwargs)
            if op.name.endswith("cosine_similarity"):
                if arrays[0].ndim == 0:
                    continue  # 0-d vectors: jaxent needs a feature axis
                # PyTorch broadcasts x1 against x2; jaxent takes one shape.
                arrays = [np.array(a) for a in np.broadcast_arrays(*arrays)]
                kwargs = dict(axis=kwargs.get("dim", 1), epsilon=kwargs.get("eps", 1e-8) ** 2)
            if "distance_function" in kwargs:
                kwargs["distance_function"] = None  # PyTorch's PairwiseDistance(): the default
            if op.name.endswith("hinge_embedding_loss") and not np.all(np.abs(arrays[1]) == 1):
                continue  # random real targets: jaxent takes labels in {-1, +1} only (a ValueError)
            call = functools.partial(op.op, **s.kwargs)
            cases.append((f"{op.name}[{i}]", call, functools.partial(ours, **kwargs), arrays[:floats], arrays[floats:]))
    return cases


def test_pytorch_own_test_inputs(torch):
    cases = _torch_sample_cases(torch)
    counts: dict[str, int] = {}
    for name, theirs, ours, floats, others in cases:
        ts = [torch.tensor(a, requires_grad=True) for a in floats]
        want = theirs(*ts, *(torch.tensor(a) for a in others))
        got = ours(*(jnp.asarray(a) for a in floats), *(jnp.asarray(a) for a in others))
        assert got.shape == tuple(want.shape), name
        assert_close(got, want.detach().numpy(), PARITY)
        key = name.split("[")[0].split("_no_batch")[0].replace("nn.functional.", "")
        counts[key] = counts.get(key, 0) + 1
        if counts[key] > 3:
            continue  # gradients on the first three cases of each source (the rest are compiled values)
        want.sum().backward()
        grads = jax.grad(lambda *xs: jnp.sum(ours(*xs, *(jnp.asarray(a) for a in others))), tuple(range(len(floats))))(
            *(jnp.asarray(a) for a in floats)
        )
        for g, t in zip(grads, ts):
            assert_close(g, t.grad.numpy(), PARITY)
    print("PyTorch test-input cases per loss:", counts)
    assert sum(counts.values()) >= 90 and len(counts) >= 10, counts


# --------------------------------------------------------------------------------------
# optax parity, on optax's own test cases and on random inputs.


def test_cosine_matches_optax():
    # optax's CosineDistanceTest inputs (expected values from SciPy).
    ys = jnp.array([[10.0, 1.0, -2.0], [1.0, 4.0, 0.2]], jnp.float32)
    ts = jnp.array([[0.0, 1.2, 0.2], [1.0, -0.3, 0.0]], jnp.float32)
    scipy = np.array([0.9358251989, 1.0464068465])
    assert_close(jaxent.cosine_distance(ys, ts), scipy, dict(rtol=1e-6, atol=1e-6))
    assert_close(jaxent.cosine_distance(ys[0], ts[0]), scipy[0], dict(rtol=1e-6, atol=1e-6))
    x, y = values_of((4, 5, 6), 60), values_of((4, 5, 6), 61)
    mask = mask_of((4, 5, 6), 62)
    for kw in (dict(), dict(axis=(0, 2)), dict(epsilon=2.0), dict(where=mask)):
        for ours, theirs in (
            (jaxent.cosine_similarity, optax.losses.cosine_similarity),
            (jaxent.cosine_distance, optax.losses.cosine_distance),
        ):
            assert_close(ours(x, y, **kw), theirs(x, y, **kw), PARITY)
        g = jax.grad(lambda a: jnp.sum(jaxent.cosine_distance(a, y, **kw)))(x)
        assert_close(g, jax.grad(lambda a: jnp.sum(optax.losses.cosine_distance(a, y, **kw)))(x), PARITY)
    # optax's mask test: where equals boolean indexing on a vector.
    p, t = values_of((10,), 63), values_of((10,), 64)
    keep = np.asarray(mask_of((10,), 65))
    assert_close(
        jaxent.cosine_similarity(p, t, where=jnp.asarray(keep)), jaxent.cosine_similarity(p[keep], t[keep]), LOSS[F64]
    )


def _optax_ntxent(e, labels, temperature=0.07):
    with jax.numpy_dtype_promotion("standard"):  # optax's own code needs it (bool - float eye)
        return optax.losses.ntxent(e, labels, temperature)


def test_ntxent_matches_optax():
    # optax's NtxentTest inputs and expected values (computed by optax's authors).
    ys = jnp.array([[-1.9540, 1.0780], [0.2380, -0.5703], [1.8745, -0.0195], [-0.6719, -1.9210]], jnp.float32)
    ys_2 = ys.at[0].set(0.0)  # a zero embedding
    l1, l2 = jnp.array([0, 0, 1, 1]), jnp.array([0, 0, 0, 1])
    for e, labels, want in ((ys, l1, 14.01032), (ys, l2, 8.968544), (ys_2, l1, 9.2889)):
        assert_close(jax.jit(jaxent.ntxent)(e, labels), want, dict(rtol=0, atol=1e-4))
        assert_close(jaxent.ntxent(e, labels), _optax_ntxent(e, labels), PARITY)
    e = values_of((8, 5), 66)
    for labels in (jnp.array([0, 0, 1, 1, 2, 2, 3, 3]), jnp.array([0, 1, 0, 1, 0, 2, 2, 5])):
        for t in (0.07, 0.5):
            assert_close(jaxent.ntxent(e, labels, temperature=t), _optax_ntxent(e, labels, t), PARITY)
        g = jax.grad(lambda x: jaxent.ntxent(x, labels, temperature=0.5))(e)
        assert_close(g, jax.grad(lambda x: _optax_ntxent(x, labels, 0.5))(e), PARITY)


def test_triplet_matches_optax_where_conventions_agree():
    # optax: eps inside the sum of powers, no abs: they agree at eps = 0 for even p.
    # optax's TripletMarginLossTest inputs first, then random ones.
    cases = [
        (jnp.ones((2, 2)), jnp.zeros((2, 2)), 2 * jnp.ones((2, 2))),
        (jnp.zeros((2, 2)), jnp.ones((2, 2)), 2 * jnp.ones((2, 2))),
        tuple(values_of((5, 4), 67 + i) for i in range(3)),
    ]
    for a, p, n in cases:
        for degree, margin in ((2, 1.0), (4, 5.0)):
            got = jaxent.triplet_margin_loss(a, p, n, p=degree, margin=margin, eps=0.0, reduction="none")
            want = optax.losses.triplet_margin_loss(a, p, n, norm_degree=degree, margin=margin, eps=0.0)
            assert_close(got, want, PARITY)
            g = jax.grad(
                lambda x: jaxent.triplet_margin_loss(x, p, n, p=degree, margin=margin, eps=0.0, reduction="sum")
            )
            h = jax.grad(
                lambda x: jnp.sum(optax.losses.triplet_margin_loss(x, p, n, norm_degree=degree, margin=margin, eps=0.0))
            )
            if np.all(np.asarray(a) != np.asarray(p)):
                assert_close(g(a), h(a), PARITY)


# --------------------------------------------------------------------------------------
# Masks, transformations, dtypes.


@pytest.mark.parametrize("name", NAMES)
def test_where_equals_boolean_indexing_and_blocks_nan_padding(name):
    case = CASES[name]
    arrays = _inputs(name, seed=70)
    keep = np.asarray(_where(case, arrays, seed=71))
    if case.where == "elements" and case.f in (jaxent.cosine_similarity, jaxent.cosine_distance):
        keep = np.broadcast_to(keep[:, :1], keep.shape)  # whole rows, so that indexing keeps rows
        rows = keep[:, 0]
        indexed = [a[rows] for a in arrays]
        mask = jnp.asarray(keep[:, :1])
    elif case.where == "elements":
        indexed = [a[keep] for a in arrays]
        mask = jnp.asarray(keep)
    else:
        indexed = [a[keep] for a in arrays]
        mask = jnp.asarray(keep)
    for reduction in ("sum", "mean"):
        got = case.f(*arrays, where=mask, reduction=reduction)
        assert_close(got, case.f(*indexed, reduction=reduction), LOSS[F64])
    floats = arrays[: case.floats]
    f = lambda *xs: jnp.sum(case.f(*xs, *arrays[case.floats :], where=mask))
    grads = jax.grad(f, tuple(range(case.floats)))(*floats)
    drop = ~np.broadcast_to(np.asarray(mask), keep.shape) if mask.ndim == arrays[0].ndim else ~keep
    for g in grads:
        assert np.all(np.asarray(g)[drop] == 0)
    # NaN in the dropped entries changes nothing.
    fill = jnp.asarray(drop if drop.ndim == arrays[0].ndim else drop[:, None])
    padded = tuple(jnp.where(fill, jnp.nan, x) for x in floats)
    loss, grads_pad = jax.value_and_grad(f, tuple(range(case.floats)))(*padded)
    assert_close(loss, f(*floats), LOSS[F64])
    for a, b in zip(grads_pad, grads):
        assert_close(a, b, GRAD[F64])
    # Nothing kept: the mean is 0 with zero gradients.
    empty = jnp.zeros(mask.shape, bool)
    loss, grads = jax.value_and_grad(lambda *xs: case.f(*xs, *arrays[case.floats :], where=empty, reduction="mean"), 0)(
        *floats
    )
    assert loss == 0 and np.all(grads == 0)


@pytest.mark.parametrize("name", NAMES)
def test_eager_jit_and_vmap_agree(name):
    case = CASES[name]
    arrays = _inputs(name, (3, 4, D), seed=72) if name != "ntxent" else None
    if name == "ntxent":
        e = values_of((3, 6, D), 72)
        labels = jnp.asarray(np.arange(6) % 3, jnp.int32)
        f = lambda e: jaxent.ntxent(e, labels, reduction="none")
        eager = jnp.stack([f(e[i]) for i in range(3)])
        assert_close(jax.jit(jax.vmap(f))(e), eager, LOSS[F64])
        assert_close(jax.vmap(f)(e), eager, LOSS[F64])
        return
    f = functools.partial(case.f, reduction="none")
    eager = f(*arrays)
    assert_close(jax.jit(f)(*arrays), eager, LOSS[F64])
    assert_close(jax.vmap(f)(*arrays), eager, LOSS[F64])
    g = jax.grad(lambda x: jnp.sum(f(x, *arrays[1:])))(arrays[0])
    gv = jax.vmap(jax.grad(lambda x, *rest: jnp.sum(f(x, *rest))))(*arrays)
    assert_close(gv, g, GRAD[F64])


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_half_precision_is_computed_in_float32(dtype):
    for name in NAMES:
        case = CASES[name]
        arrays = _inputs(name, seed=73, dtype=dtype)
        wide = tuple(a.astype(F64) if jnp.issubdtype(a.dtype, jnp.floating) else a for a in arrays)
        loss = case.f(*arrays)
        assert loss.dtype == jnp.float32, name
        r = case.r
        if name == "ntxent":  # the norm clip is the input dtype's machine epsilon, as optax
            r = lambda e, y, **kw: ref.ntxent(e, y, **kw)
        tol = LOSS[jnp.dtype(dtype)]
        assert_close(loss, r(*wide) if name != "ntxent" else ref.ntxent(wide[0], wide[1]), tol)
        grads = jax.grad(lambda *xs: jnp.sum(case.f(*xs, *arrays[case.floats :])), tuple(range(case.floats)))(
            *arrays[: case.floats]
        )
        want = jax.grad(lambda *xs: jnp.sum(case.r(*xs, *wide[case.floats :])), tuple(range(case.floats)))(
            *wide[: case.floats]
        )
        for g, w in zip(grads, want):
            assert g.dtype == dtype, name
            # (A few ulps: the float32 gradient is rounded once, after a cancellation in some rows.)
            assert_close(g, w, dict(GRAD[jnp.dtype(dtype)], atol=4 * GRAD[jnp.dtype(dtype)]["atol"]))


# --------------------------------------------------------------------------------------
# Infinities, extremes, zero vectors.


def test_zero_vectors_and_zero_differences_have_finite_gradients():
    z, x = jnp.zeros((2, 3)), values_of((2, 3), 80)
    for f in (jaxent.cosine_similarity, jaxent.cosine_distance):
        value, grads = jax.value_and_grad(lambda a, b: jnp.sum(f(a, b)), (0, 1))(z, x)
        assert np.all(np.isfinite(value)) and all(np.all(np.isfinite(g)) for g in grads)
        assert np.all(jnp.isfinite(jax.hessian(lambda a: jnp.sum(f(a, x)))(z)))
    y = jnp.array([1, -1])
    value, grads = jax.value_and_grad(lambda a, b: jaxent.cosine_embedding_loss(a, b, y), (0, 1))(z, x)
    assert np.isfinite(value) and all(np.all(np.isfinite(g)) for g in grads)
    assert_close(value, 0.5, LOSS[F64])  # cos = 0: 1 - 0 for y = 1, max(0, 0 - 0) for y = -1
    for p in (1.0, 2.0, 3.0, math.inf):
        value, grads = jax.value_and_grad(
            lambda a, b: jaxent.triplet_margin_loss(a, a, b, p=p, eps=0.0, margin=2.0), (0, 1)
        )(x, x + 1)
        assert np.isfinite(value) and all(np.all(np.isfinite(g)) for g in grads)
    e = jnp.zeros((4, 3)).at[2:].set(x[:2].at[:, 0].set(1.0))
    value, g = jax.value_and_grad(lambda e: jaxent.ntxent(e, jnp.array([0, 0, 1, 1])))(e)
    assert np.isfinite(value) and np.all(np.isfinite(g))


def test_infinite_and_extreme_inputs():
    inf = jnp.inf
    x1 = jnp.array([inf, -inf, inf, -inf, 2.0])
    x2 = jnp.array([0.0, 0.0, 0.0, 0.0, -inf])
    y = jnp.array([1, -1, -1, 1, 1])
    losses = jaxent.margin_ranking_loss(x1, x2, y, margin=0.5, reduction="none")
    assert list(np.asarray(losses)) == [0, 0, inf, inf, 0]
    g = jax.grad(lambda a, b: jnp.sum(jaxent.margin_ranking_loss(a, b, y, margin=0.5, reduction="none")), (0, 1))(
        x1, x2
    )
    assert all(np.all(np.isfinite(gi)) for gi in g)
    x = jnp.array([inf, inf, -inf, 0.5])
    t = jnp.array([1, -1, -1, -1])
    losses = jaxent.hinge_embedding_loss(x, t, reduction="none")
    assert list(np.asarray(losses)) == [inf, 0, inf, 0.5]
    assert np.all(np.isfinite(jax.grad(lambda x: jnp.sum(jaxent.hinge_embedding_loss(x, t, reduction="none")))(x)))
    # Large finite values: exact, no overflow of the squared norms (float32 up to ~1e19).
    for dtype in (jnp.float32, jnp.float64):
        big = values_of((4, 6), 81, scale=1e15, dtype=dtype)
        other = values_of((4, 6), 82, scale=1e15, dtype=dtype)
        wide = big.astype(F64), other.astype(F64)
        tol = dict(rtol=1e-5, atol=1e-5) if dtype == jnp.float32 else LOSS[F64]
        for name in ("cosine_similarity", "cosine_distance", "cosine_embedding_loss"):
            args = (big, other) + (
                () if name.startswith("cosine_") and name != "cosine_embedding_loss" else (signs_of((4,), 83),)
            )
            loss, grads = jax.value_and_grad(lambda a, b: jnp.sum(CASES[name].f(a, b, *args[2:])), (0, 1))(big, other)
            assert np.isfinite(loss) and all(np.all(np.isfinite(g)) for g in grads), name
            assert_close(loss, jnp.sum(CASES[name].r(*wide, *args[2:])), tol)
        loss = jaxent.ntxent(big, jnp.array([0, 0, 1, 1]), temperature=0.07)
        assert np.isfinite(loss)
        assert_close(
            loss,
            ref.ntxent(*wide[:1], jnp.array([0, 0, 1, 1])),
            dict(rtol=1e-4, atol=1e-4) if dtype == jnp.float32 else LOSS[F64],
        )
    # NT-Xent at a tiny temperature: the log-sum-exp is shifted, nothing overflows.
    e, labels = _inputs("ntxent", seed=84)
    loss, g = jax.value_and_grad(lambda e: jaxent.ntxent(e, labels, temperature=1e-3))(e.astype(jnp.float32))
    assert np.isfinite(loss) and np.all(np.isfinite(g))
    # An anchor without negatives (one label only): loss 0 with zero gradient, no NaN.
    loss, g = jax.value_and_grad(lambda e: jaxent.ntxent(e, jnp.zeros((N,), jnp.int32)))(e)
    assert loss == 0 and np.all(g == 0)
    # No positive pair: the mean is 0.0 (optax: NaN).
    assert jaxent.ntxent(e, jnp.arange(N, dtype=jnp.int32)) == 0


# --------------------------------------------------------------------------------------
# Bad input.

BAD_INPUTS = [
    (
        "cosine_similarity",
        dict(targets=np.zeros((4, 3))),
        ValueError,
        r"targets has shape \(4, 3\) but predictions has shape \(4, 5\)",
    ),
    (
        "cosine_similarity",
        dict(predictions=np.zeros((4, 5), np.int32)),
        TypeError,
        "predictions must be a floating-point array",
    ),
    ("cosine_similarity", dict(epsilon=-1.0), ValueError, r"epsilon must lie in \[0.0, inf\)"),
    ("cosine_similarity", dict(axis=2), ValueError, "axis 2 is out of range"),
    (
        "cosine_similarity",
        dict(where=np.ones((4,), bool)),
        ValueError,
        r"where has shape \(4,\) but predictions has shape \(4, 5\)",
    ),
    ("cosine_distance", dict(reduction="avg"), ValueError, "reduction must be one of"),
    (
        "cosine_embedding_loss",
        dict(targets=np.zeros((4,), np.int32)),
        ValueError,
        r"targets must lie in \{-1, 1\}, got 0",
    ),
    (
        "cosine_embedding_loss",
        dict(targets=np.ones((4, 5))),
        ValueError,
        r"targets has shape \(4, 5\) but must have the shape \(4,\)",
    ),
    (
        "cosine_embedding_loss",
        dict(x2=np.zeros((4, 6))),
        ValueError,
        r"x2 has shape \(4, 6\) but x1 has shape \(4, 5\)",
    ),
    ("cosine_embedding_loss", dict(margin=np.nan), ValueError, "margin must be a finite number"),
    (
        "cosine_embedding_loss",
        dict(where=np.ones((4, 5), bool)),
        ValueError,
        r"where has shape \(4, 5\) but x1 has the batch shape \(4,\)",
    ),
    (
        "margin_ranking_loss",
        dict(targets=np.ones((4,))),
        ValueError,
        r"targets has shape \(4,\) but x1 has shape \(4, 5\)",
    ),
    (
        "margin_ranking_loss",
        dict(targets=np.full((4, 5), 1 + 0j)),
        TypeError,
        "targets must be a floating, integer or boolean",
    ),
    ("margin_ranking_loss", dict(x1=np.zeros((4, 5), np.int32)), TypeError, "x1 must be a floating-point array"),
    ("hinge_embedding_loss", dict(targets=np.zeros((4, 5))), ValueError, r"targets must lie in \{-1, 1\}, got 0.0"),
    ("hinge_embedding_loss", dict(margin=np.array([1.0, 2.0])), ValueError, "margin must be a scalar"),
    ("hinge_embedding_loss", dict(where=np.ones((4, 5), np.int32)), TypeError, "where must be a boolean mask"),
    ("triplet_margin_loss", dict(p=0), ValueError, "p must be a positive number"),
    ("triplet_margin_loss", dict(p=True), ValueError, "p must be a positive number"),
    ("triplet_margin_loss", dict(swap=1), TypeError, "swap must be a Python bool"),
    ("triplet_margin_loss", dict(eps=np.inf), ValueError, "eps must be a finite number"),
    (
        "triplet_margin_loss",
        dict(negative=np.zeros((4, 4))),
        ValueError,
        r"negative has shape \(4, 4\) but anchor has shape",
    ),
    (
        "triplet_margin_with_distance_loss",
        dict(distance_function="l2"),
        TypeError,
        "distance_function must be a callable",
    ),
    (
        "triplet_margin_with_distance_loss",
        dict(distance_function=lambda x, y: x - y),
        ValueError,
        r"where has shape \(4,\) but the distances",
    ),
    (
        "triplet_margin_with_distance_loss",
        dict(distance_function=lambda x, y: 1),
        TypeError,
        "distance_function must return a floating array",
    ),
    ("ntxent", dict(labels=np.zeros((4,))), TypeError, "labels must be integer group labels"),
    (
        "ntxent",
        dict(labels=np.zeros((3,), np.int32)),
        ValueError,
        r"labels has shape \(3,\) but embeddings has shape \(4, 5\)",
    ),
    ("ntxent", dict(embeddings=np.zeros((2, 4, 5))), ValueError, r"embeddings must be \[N, D\]"),
    ("ntxent", dict(temperature=0.0), ValueError, r"temperature must lie in \(0.0, inf\)"),
]
ARGS = {
    "cosine_similarity": ("predictions", "targets"),
    "cosine_distance": ("predictions", "targets"),
    "cosine_embedding_loss": ("x1", "x2", "targets"),
    "margin_ranking_loss": ("x1", "x2", "targets"),
    "hinge_embedding_loss": ("inputs", "targets"),
    "triplet_margin_loss": ("anchor", "positive", "negative"),
    "triplet_margin_with_distance_loss": ("anchor", "positive", "negative"),
    "ntxent": ("embeddings", "labels"),
}


@pytest.mark.parametrize(
    ("name", "kwargs", "error", "match"), BAD_INPUTS, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD_INPUTS)]
)
def test_bad_input_is_a_clear_error(name, kwargs, error, match):
    defaults = dict(
        predictions=np.ones((4, 5)),
        targets=np.ones((4, 5)),
        x1=np.ones((4, 5)),
        x2=np.ones((4, 5)),
        inputs=np.ones((4, 5)),
        anchor=np.ones((4, 5)),
        positive=np.ones((4, 5)),
        negative=np.ones((4, 5)),
        embeddings=np.ones((4, 5)),
        labels=np.zeros((4,), np.int32),
    )
    if name == "cosine_embedding_loss":
        defaults["targets"] = np.ones((4,))
    with_function = name == "triplet_margin_with_distance_loss" and callable(kwargs.get("distance_function"))
    if with_function and "where" not in kwargs:
        kwargs = dict(kwargs, where=np.ones((4,), bool))
    args = {**defaults, **kwargs}
    positional = [args.pop(a) for a in ARGS[name]]
    options = {k: v for k, v in args.items() if k in kwargs}
    with pytest.raises(error, match=f"{name}: {match}"):
        getattr(jaxent, name)(*positional, **options)


def test_traced_labels_outside_plus_minus_one_are_nan_and_named_under_checkify():
    x1, x2 = values_of((3, 4), 90), values_of((3, 4), 91)
    f = jax.jit(lambda a, b, y: jaxent.cosine_embedding_loss(a, b, y, reduction="none"))
    losses = f(x1, x2, jnp.array([1, 0, -1]))
    assert np.isnan(losses[1]) and np.all(np.isfinite(losses[jnp.array([0, 2])]))
    g = jax.jit(jax.grad(lambda a, y: jaxent.cosine_embedding_loss(a, x2, y, reduction="sum")))(
        x1, jnp.array([1, 0, -1])
    )
    assert np.all(np.isnan(g[1])) and np.all(np.isfinite(g[0]))
    checked = checkify.checkify(jax.jit(jaxent.hinge_embedding_loss), errors=checkify.user_checks)
    checked(x1, jnp.ones((3, 4), jnp.int32))[0].throw()
    err, _ = checked(x1, jnp.ones((3, 4), jnp.int32).at[1, 2].set(2))
    with pytest.raises(checkify.JaxRuntimeError, match=r"hinge_embedding_loss: targets must lie in \{-1, 1\}, got 2"):
        err.throw()
    # A masked label is padding, not an error.
    y = jnp.array([1, 0, -1])
    keep = jnp.array([True, False, True])
    assert np.isfinite(jax.jit(lambda y: jaxent.cosine_embedding_loss(x1, x2, y, where=keep))(y))
    assert not jax.make_jaxpr(jaxent.cosine_embedding_loss)(x1, x2, y).effects


def test_traced_hyperparameters_do_not_recompile_and_are_checked():
    a, p, n = _inputs("triplet_margin_loss", seed=92)
    e, labels = _inputs("ntxent", seed=93)
    traces = []

    @jax.jit
    def f(margin, eps, temperature):
        traces.append(1)
        return (
            jaxent.triplet_margin_loss(a, p, n, margin=margin, eps=eps),
            jaxent.ntxent(e, labels, temperature=temperature),
            jaxent.cosine_similarity(a, p, epsilon=eps, reduction="mean"),
        )

    for margin, eps, t in ((1.0, 1e-6, 0.07), (0.3, 0.0, 0.5), (-0.2, 1e-3, 1.0)):
        got = f(margin, eps, t)
        want = (
            jaxent.triplet_margin_loss(a, p, n, margin=margin, eps=eps),
            jaxent.ntxent(e, labels, temperature=t),
            jaxent.cosine_similarity(a, p, epsilon=eps, reduction="mean"),
        )
        for x, y in zip(got, want):
            assert_close(x, y, LOSS[F64])
    assert len(traces) == 1
    checked = checkify.checkify(jax.jit(lambda t: jaxent.ntxent(e, labels, temperature=t)), errors=checkify.user_checks)
    checked(0.5)[0].throw()
    with pytest.raises(checkify.JaxRuntimeError, match=r"ntxent: temperature must lie in \(0.0, inf\), got -1"):
        checked(-1.0)[0].throw()


# --------------------------------------------------------------------------------------
# Loss objects.


OBJECTS = [
    (jaxent.CosineSimilarity(epsilon=0.1, axis=0), "cosine_similarity"),
    (jaxent.CosineDistanceLoss(reduction="mean"), "cosine_distance"),
    (jaxent.CosineEmbeddingLoss(margin=0.2, reduction="sum"), "cosine_embedding_loss"),
    (jaxent.MarginRankingLoss(margin=0.3), "margin_ranking_loss"),
    (jaxent.HingeEmbeddingLoss(margin=2.0, reduction="none"), "hinge_embedding_loss"),
    (jaxent.TripletMarginLoss(margin=0.5, p=1, eps=1e-3, swap=True), "triplet_margin_loss"),
    (
        jaxent.TripletMarginWithDistanceLoss(distance_function=_l1_distance, swap=True),
        "triplet_margin_with_distance_loss",
    ),
    (jaxent.NTXentLoss(temperature=0.3, reduction="sum"), "ntxent"),
]


@pytest.mark.parametrize(("loss", "name"), OBJECTS, ids=[n for _, n in OBJECTS])
def test_loss_objects_equal_their_functions(loss, name):
    case = CASES[name]
    arrays = _inputs(name, seed=94)
    options = {f.name: getattr(loss, f.name) for f in dataclasses.fields(loss)}
    want = case.f(*arrays, **options)
    assert_close(loss(*arrays), want, LOSS[F64])
    mask = _where(case, arrays, 95)
    if "axis" in options and options["axis"] == 0:
        mask = mask_of(arrays[0].shape, 95)
    assert_close(loss(*arrays, where=mask), case.f(*arrays, where=mask, **options), LOSS[F64])
    assert_close(jax.jit(lambda loss, *xs: loss(*xs))(loss, *arrays), want, LOSS[F64])
    g = jax.grad(lambda loss: jnp.sum(loss(*arrays)))(loss)
    assert g.reduction == loss.reduction
    with pytest.raises(dataclasses.FrozenInstanceError):
        loss.reduction = "mean"  # type: ignore[misc]


# --------------------------------------------------------------------------------------
# Compiled memory and backend neutrality.

MEMORY_CASES = [
    ("cosine_similarity", dict()),
    ("cosine_distance", dict(where="full")),
    ("cosine_embedding_loss", dict(margin=0.5)),
    ("margin_ranking_loss", dict(where="full")),
    ("hinge_embedding_loss", dict()),
    ("triplet_margin_loss", dict()),
    ("triplet_margin_loss", dict(swap=True, p=1, where="rows")),
    ("triplet_margin_with_distance_loss", dict()),
]


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize(("name", "options"), MEMORY_CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(MEMORY_CASES)])
def test_compiled_temp_memory_is_at_most_one_percent_of_the_inputs(name, options, dtype):
    # Per-row and elementwise losses: no [N, D] temporary in fwd+bwd (w.r.t. the first input).
    shape = programs.BIG
    case = CASES[name]
    x = jax.ShapeDtypeStruct(shape, dtype)
    others = [x] * (case.floats - 1)
    if name in ("cosine_embedding_loss",):
        others.append(jax.ShapeDtypeStruct(shape[:1], jnp.int32))
    elif name in ("margin_ranking_loss", "hinge_embedding_loss"):
        others.append(jax.ShapeDtypeStruct(shape, jnp.int32))
    arrays, static = {}, {}
    for k, v in options.items():
        if v == "full":
            arrays[k] = jax.ShapeDtypeStruct(shape, jnp.bool_)
        elif v == "rows":
            arrays[k] = jax.ShapeDtypeStruct(shape[:1], jnp.bool_)
        else:
            static[k] = v
    loss = lambda x, rest, a: case.f(x, *rest, reduction="mean", **a, **static)
    bound = programs.one_percent_of_f32(shape)
    assert programs.temp_bytes(jax.value_and_grad(loss), x, others, arrays) <= bound


@pytest.mark.parametrize("name", NAMES)
def test_programs_are_backend_neutral(name):
    case = CASES[name]
    arrays = tuple(
        a.astype(jnp.float32) if jnp.issubdtype(a.dtype, jnp.floating) else a for a in _inputs(name, seed=96)
    )
    where = _where(case, arrays, 97)
    f = lambda x, *rest: jnp.sum(case.f(x, *rest, where=where))
    for g in (f, jax.value_and_grad(f)):
        programs.assert_backend_neutral(g, *arrays)
