"""``python -m jaxent.bench family``: every loss and option against its peer.

One row per public loss and per option users turn on (label smoothing, one-hot and soft
targets, class masks, weights with ``ignore_index``, z-loss, softcap, bf16, loss objects
passed into ``jax.jit``). Each row times ``jax.jit(jax.value_and_grad(mean loss))``, the
gradient taken with respect to the logits (predictions), of jaxent against its peer: optax
where optax has the loss, else the plain ``jnp`` composition a user would write; and,
when PyTorch is installed, ``loss.backward()`` on the same inputs. It also reads both JAX
programs' compiled temporary memory. ``--quick`` runs 3 repeats at 256x10 and 4096x1000;
``--rows SUBSTR`` keeps the rows whose name (or dtype) contains ``SUBSTR``.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxent
from jaxent.bench._timing import Table, alternate, temp_bytes

DEFAULT_SHAPES = ((256, 10), (4096, 1000), (4096, 32000))
QUICK_SHAPES = ((256, 10), (4096, 1000))
DEFAULT_REPEATS, QUICK_REPEATS = 10, 3
SHAPE_HELP = "NxC shapes of the logits (predictions), e.g. 4096x1000"

Inputs = tuple[Any, ...]  # the differentiated logits (float32 NumPy) first, then targets and options
Builder = Callable[[np.random.Generator, int, int], Inputs]


def parse_shape(text: str) -> tuple[int, int]:
    n, c = text.split("x")
    return int(n), int(c)


@dataclasses.dataclass(frozen=True)
class Row:
    """One benchmark row: three functions of the same inputs, each returning the mean loss."""

    name: str
    jaxent: Callable[..., Any]
    peer: Callable[..., Any]
    peer_name: str
    inputs: Builder
    torch: Callable[..., Any] | None = None  # of torch tensors (integers as int64), or None
    dtype: str = "float32"  # of the logits; every other input keeps its NumPy dtype


# Inputs: seeded normals, [N, C] for every loss (elementwise ones too).


def _normal(rng: np.random.Generator, n: int, c: int) -> np.ndarray:
    return rng.normal(size=(n, c)).astype(np.float32)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _one_hot(y: np.ndarray, c: int) -> np.ndarray:
    out = np.zeros((y.size, c), np.float32)
    out[np.arange(y.size), y] = 1.0
    return out


def _labels(rng: np.random.Generator, n: int, c: int) -> Inputs:
    return _normal(rng, n, c), rng.integers(0, c, size=n).astype(np.int32)


def _one_hot_labels(rng: np.random.Generator, n: int, c: int) -> Inputs:
    x, y = _labels(rng, n, c)
    return x, _one_hot(y, c)


def _soft_labels(rng: np.random.Generator, n: int, c: int) -> Inputs:
    return _normal(rng, n, c), _softmax(_normal(rng, n, c))


def _class_mask(rng: np.random.Generator, n: int, c: int) -> Inputs:
    x, y = _labels(rng, n, c)
    mask = rng.random((n, c)) > 0.25
    mask[np.arange(n), y] = True  # the target class stays in
    return x, y, mask


def _weight_ignore(rng: np.random.Generator, n: int, c: int) -> Inputs:
    x, y = _labels(rng, n, c)
    y[rng.random(n) < 0.1] = -100
    return x, y, rng.uniform(0.5, 1.5, size=c).astype(np.float32)


def _log_probs(rng: np.random.Generator, n: int, c: int) -> Inputs:
    x, y = _labels(rng, n, c)
    return np.log(_softmax(x)), y


def _binary(rng: np.random.Generator, n: int, c: int) -> Inputs:
    return _normal(rng, n, c), (rng.random((n, c)) < 0.5).astype(np.float32)


def _probs(rng: np.random.Generator, n: int, c: int) -> Inputs:
    x, y = _binary(rng, n, c)
    return 1 / (1 + np.exp(-x)), y


def _kl(rng: np.random.Generator, n: int, c: int) -> Inputs:
    x, t = _soft_labels(rng, n, c)
    return np.log(_softmax(x)), t


def _signs(rng: np.random.Generator, n: int, c: int) -> Inputs:
    x, y = _binary(rng, n, c)
    return x, 2 * y - 1


def _regression(rng: np.random.Generator, n: int, c: int) -> Inputs:
    return _normal(rng, n, c), _normal(rng, n, c)


def _with(builder: Builder, *extra: Any) -> Builder:
    """``builder``'s inputs followed by ``extra`` (e.g. a loss object passed into ``jit``)."""
    return lambda rng, n, c: (*builder(rng, n, c), *extra)


# Peers: optax where it has the loss, else the jnp composition a user would write.

_optax_ce = optax.losses.softmax_cross_entropy_with_integer_labels


def _smoothed_ce(x: jax.Array, y: jax.Array, eps: float = 0.1) -> jax.Array:
    labels = optax.smooth_labels(jax.nn.one_hot(y, x.shape[-1], dtype=x.dtype), eps)
    return optax.losses.softmax_cross_entropy(x, labels).mean()


def _weighted_ce(x: jax.Array, y: jax.Array, w: jax.Array) -> jax.Array:
    kept = y != -100
    safe = jnp.where(kept, y, 0)
    wy = jnp.where(kept, w[safe], 0.0)
    log_p = jnp.take_along_axis(jax.nn.log_softmax(x), safe[:, None], -1)[:, 0]
    return -(wy * log_p).sum() / wy.sum()


def _pick(x: jax.Array, y: jax.Array) -> jax.Array:
    return jnp.take_along_axis(x, y[:, None], -1)[:, 0]


def _focal(x: jax.Array, y: jax.Array, gamma: float = 2.0) -> jax.Array:  # Keras CategoricalFocalCrossentropy
    log_p = _pick(jax.nn.log_softmax(x), y)
    return -((1 - jnp.exp(log_p)) ** gamma * log_p).mean()


def _bce_probs(p: jax.Array, y: jax.Array) -> jax.Array:  # PyTorch's clamped logs
    return -(y * jnp.maximum(jnp.log(p), -100) + (1 - y) * jnp.maximum(jnp.log1p(-p), -100)).mean()


def _multi_margin(x: jax.Array, y: jax.Array, margin: float = 1.0) -> jax.Array:
    terms = jnp.maximum(0.0, margin - _pick(x, y)[:, None] + x)
    terms = jnp.where(jnp.arange(x.shape[-1], dtype=y.dtype)[None, :] == y[:, None], 0.0, terms)
    return terms.sum(-1).mean() / x.shape[-1]


# PyTorch: the same quantities on torch tensors.


def _t_smoothed(x: Any, y: Any) -> Any:
    import torch.nn.functional as F

    return F.cross_entropy(x, y, label_smoothing=0.1)


def _t_ce(x: Any, y: Any, *_: Any) -> Any:
    import torch.nn.functional as F

    return F.cross_entropy(x, y)


def _t_masked_ce(x: Any, y: Any, mask: Any) -> Any:
    import torch.nn.functional as F

    return F.cross_entropy(x.masked_fill(~mask, float("-inf")), y)


def _t_weighted_ce(x: Any, y: Any, w: Any) -> Any:
    import torch.nn.functional as F

    return F.cross_entropy(x, y, weight=w, ignore_index=-100)


def _t_z_loss(x: Any, y: Any) -> Any:
    import torch.nn.functional as F

    return (F.cross_entropy(x, y, reduction="none") + 1e-4 * x.logsumexp(-1) ** 2).mean()


def _t_softcap(x: Any, y: Any) -> Any:
    import torch.nn.functional as F

    return F.cross_entropy(30 * (x / 30).tanh(), y)


def _t_nll(x: Any, y: Any) -> Any:
    import torch.nn.functional as F

    return F.nll_loss(x, y)


def _rl_objective(x: jax.Array, y: jax.Array) -> jax.Array:
    # The RL use: mean target log-probability plus an entropy bonus, at a sampling temperature.
    log_prob, entropy, _, _ = jaxent.log_softmax_stats(x, y, temperature=0.7)
    assert log_prob is not None
    return jnp.mean(log_prob) + 0.01 * jnp.mean(entropy)


def _jnp_rl_objective(x: jax.Array, y: jax.Array) -> jax.Array:
    lp = jax.nn.log_softmax(x.astype(jnp.float32) / 0.7, axis=-1)
    entropy = -jnp.sum(jnp.exp(lp) * lp, axis=-1)
    return jnp.mean(_pick(lp, y)) + 0.01 * jnp.mean(entropy)


def _t_rl_objective(x: Any, y: Any) -> Any:
    lp = (x.float() / 0.7).log_softmax(-1)
    entropy = -(lp.exp() * lp).sum(-1)
    return lp.gather(-1, y[:, None])[:, 0].mean() + 0.01 * entropy.mean()


def _t_focal(x: Any, y: Any) -> Any:
    log_p = x.log_softmax(-1).gather(-1, y[:, None])[:, 0]
    return -((1 - log_p.exp()) ** 2 * log_p).mean()


def _t_poly1(x: Any, y: Any) -> Any:
    import torch.nn.functional as F

    ce = F.cross_entropy(x, y, reduction="none")
    return (ce + 2.0 * (1 - (-ce).exp())).mean()


def _t_poly1_probs(x: Any, q: Any) -> Any:
    import torch.nn.functional as F

    return (F.cross_entropy(x, q, reduction="none") + 2.0 * (1 - (q * x.softmax(-1)).sum(-1))).mean()


def _t_bce_logits(x: Any, y: Any) -> Any:
    import torch.nn.functional as F

    return F.binary_cross_entropy_with_logits(x, y)


def _t_bce(p: Any, y: Any) -> Any:
    import torch.nn.functional as F

    return F.binary_cross_entropy(p, y)


def _t_sigmoid_focal(x: Any, y: Any) -> Any:  # torchvision's sigmoid_focal_loss with alpha=-1 (off)
    import torch.nn.functional as F

    p = x.sigmoid()
    p_t = p * y + (1 - p) * (1 - y)
    return (F.binary_cross_entropy_with_logits(x, y, reduction="none") * (1 - p_t) ** 2).mean()


def _t_kl(log_q: Any, t: Any) -> Any:
    import torch.nn.functional as F

    return F.kl_div(log_q, t, reduction="batchmean")


def _t_hinge(s: Any, y: Any) -> Any:
    return (1 - s * y).clamp(min=0).mean()


def _t_multi_margin(s: Any, y: Any) -> Any:
    import torch.nn.functional as F

    return F.multi_margin_loss(s, y)


def _t_multiclass_hinge(s: Any, y: Any) -> Any:
    import torch.nn.functional as F

    target = s.gather(-1, y[:, None])[:, 0]
    return ((s + 1 - F.one_hot(y, s.shape[-1])).amax(-1) - target).mean()


def _t_mse(p: Any, t: Any) -> Any:
    import torch.nn.functional as F

    return F.mse_loss(p, t)


# Embedding, pairwise and contrastive losses: [N, C] embeddings (C the feature size).


def _embedding_pairs(rng: np.random.Generator, n: int, c: int) -> Inputs:
    return _normal(rng, n, c), _normal(rng, n, c), rng.choice([-1.0, 1.0], size=n).astype(np.float32)


def _ranking(rng: np.random.Generator, n: int, c: int) -> Inputs:
    return _normal(rng, n, c), _normal(rng, n, c), rng.choice([-1.0, 1.0], size=(n, c)).astype(np.float32)


def _distances(rng: np.random.Generator, n: int, c: int) -> Inputs:
    return np.abs(_normal(rng, n, c)), rng.choice([-1.0, 1.0], size=(n, c)).astype(np.float32)


def _triplets(rng: np.random.Generator, n: int, c: int) -> Inputs:
    return _normal(rng, n, c), _normal(rng, n, c), _normal(rng, n, c)


# NT-Xent is O(N^2 C) in optax (it forms [N, N, C] products): the rows cap the batch and the width.
_NTXENT_N, _NTXENT_C = 1024, 128


def _views(rng: np.random.Generator, n: int, c: int) -> Inputs:
    n, c = min(n, _NTXENT_N), min(c, _NTXENT_C)
    return _normal(rng, n, c), (np.arange(n) // 2).astype(np.int32)


def _cosine_embedding(x1: jax.Array, x2: jax.Array, y: jax.Array) -> jax.Array:  # PyTorch's formula
    cos = (x1 * x2).sum(-1) / jnp.sqrt(((x1 * x1).sum(-1) + 1e-12) * ((x2 * x2).sum(-1) + 1e-12))
    return jnp.where(y == 1, 1 - cos, jnp.maximum(cos, 0.0)).mean()


def _pairwise(x: jax.Array, y: jax.Array) -> jax.Array:  # PyTorch's pairwise_distance
    return jnp.sqrt(jnp.sum((x - y + 1e-6) ** 2, axis=-1))


def _triplet(a: jax.Array, p: jax.Array, n: jax.Array, swap: bool = False) -> jax.Array:
    d_neg = _pairwise(a, n)
    if swap:
        d_neg = jnp.minimum(d_neg, _pairwise(p, n))
    return jnp.maximum(1.0 + _pairwise(a, p) - d_neg, 0.0).mean()


def _t_cosine_similarity(x: Any, y: Any) -> Any:
    import torch.nn.functional as F

    return F.cosine_similarity(x, y, dim=-1).mean()


def _t_cosine_distance(x: Any, y: Any, *_: Any) -> Any:
    import torch.nn.functional as F

    return (1 - F.cosine_similarity(x, y, dim=-1)).mean()


def _t_cosine_embedding(x1: Any, x2: Any, y: Any) -> Any:
    import torch.nn.functional as F

    return F.cosine_embedding_loss(x1, x2, y)


def _t_margin_ranking(x1: Any, x2: Any, y: Any) -> Any:
    import torch.nn.functional as F

    return F.margin_ranking_loss(x1, x2, y)


def _t_hinge_embedding(x: Any, y: Any) -> Any:
    import torch.nn.functional as F

    return F.hinge_embedding_loss(x, y)


def _t_triplet(a: Any, p: Any, n: Any) -> Any:
    import torch.nn.functional as F

    return F.triplet_margin_loss(a, p, n)


def _t_triplet_swap(a: Any, p: Any, n: Any) -> Any:
    import torch.nn.functional as F

    return F.triplet_margin_loss(a, p, n, swap=True)


def _t_triplet_distance(a: Any, p: Any, n: Any) -> Any:
    import torch.nn.functional as F

    return F.triplet_margin_with_distance_loss(a, p, n)


def _embedding_rows() -> list[Row]:
    return [
        Row(
            "cosine_similarity",
            lambda x, y: jaxent.cosine_similarity(x, y, reduction="mean"),
            lambda x, y: optax.losses.cosine_similarity(x, y).mean(),
            "optax",
            _regression,
            _t_cosine_similarity,
        ),
        Row(
            "cosine_distance",
            lambda x, y: jaxent.cosine_distance(x, y, reduction="mean"),
            lambda x, y: optax.losses.cosine_distance(x, y).mean(),
            "optax",
            _regression,
            _t_cosine_distance,
        ),
        Row(
            "cosine_distance where=[N,C]",
            lambda x, y, m: jaxent.cosine_distance(x, y, where=m, reduction="mean"),
            lambda x, y, m: optax.losses.cosine_distance(x, y, where=m).mean(),
            "optax where",
            lambda rng, n, c: (*_regression(rng, n, c), rng.random((n, c)) > 0.25),
            None,
        ),
        Row(
            "cosine_distance",
            lambda x, y: jaxent.cosine_distance(x, y, reduction="mean"),
            lambda x, y: optax.losses.cosine_distance(x, y).mean(),
            "optax",
            _regression,
            _t_cosine_distance,
            "bfloat16",
        ),
        Row(
            "cosine_embedding_loss",
            lambda x1, x2, y: jaxent.cosine_embedding_loss(x1, x2, y),
            _cosine_embedding,
            "jnp (PyTorch's)",
            _embedding_pairs,
            _t_cosine_embedding,
        ),
        Row(
            "margin_ranking_loss",
            lambda x1, x2, y: jaxent.margin_ranking_loss(x1, x2, y),
            lambda x1, x2, y: jnp.maximum(-y * (x1 - x2), 0.0).mean(),
            "jnp",
            _ranking,
            _t_margin_ranking,
        ),
        Row(
            "hinge_embedding_loss",
            lambda x, y: jaxent.hinge_embedding_loss(x, y),
            lambda x, y: jnp.where(y == 1, x, jnp.maximum(1.0 - x, 0.0)).mean(),
            "jnp",
            _distances,
            _t_hinge_embedding,
        ),
        Row(
            "triplet_margin_loss",
            lambda a, p, n: jaxent.triplet_margin_loss(a, p, n),
            lambda a, p, n: optax.losses.triplet_margin_loss(a, p, n).mean(),
            "optax",
            _triplets,
            _t_triplet,
        ),
        Row(
            "triplet_margin_loss swap=True",
            lambda a, p, n: jaxent.triplet_margin_loss(a, p, n, swap=True),
            lambda a, p, n: _triplet(a, p, n, swap=True),
            "jnp",
            _triplets,
            _t_triplet_swap,
        ),
        Row(
            "triplet_margin_loss",
            lambda a, p, n: jaxent.triplet_margin_loss(a, p, n),
            lambda a, p, n: optax.losses.triplet_margin_loss(a, p, n).mean(),
            "optax",
            _triplets,
            _t_triplet,
            "bfloat16",
        ),
        Row(
            "triplet_margin_with_distance_loss",
            lambda a, p, n: jaxent.triplet_margin_with_distance_loss(a, p, n),
            _triplet,
            "jnp",
            _triplets,
            _t_triplet_distance,
        ),
        Row(
            "TripletMarginLoss(swap=True) under jit",
            lambda a, p, n, loss: loss(a, p, n),
            lambda a, p, n, loss: _triplet(a, p, n, swap=True),
            "jnp",
            _with(_triplets, jaxent.TripletMarginLoss(swap=True)),
            lambda a, p, n, loss: _t_triplet_swap(a, p, n),
        ),
        Row(
            f"ntxent [N<={_NTXENT_N}, C<={_NTXENT_C}]",
            lambda e, y: jaxent.ntxent(e, y),
            lambda e, y: optax.losses.ntxent(e, y),
            "optax",
            _views,
            None,
        ),
    ]


# Issue 15, optax's structured losses: sparsemax, Fenchel-Young, generalized KL, ranking, Dice, smooth_labels.


def _positive(rng: np.random.Generator, n: int, c: int) -> Inputs:  # unnormalised log q and targets
    return _normal(rng, n, c) * 0.5, rng.uniform(0.1, 2.0, size=(n, c)).astype(np.float32)


def _graded(rng: np.random.Generator, n: int, c: int) -> Inputs:  # scores, relevance grades 0..2
    return _normal(rng, n, c), rng.integers(0, 3, size=(n, c)).astype(np.float32)


def _segments(x: Any) -> Any:  # [N, C] as [8, N/8, C] images of N/8 pixels
    return x.reshape(8, -1, x.shape[-1])


def _t_sparse_plus(x: Any, y: Any) -> Any:
    u = (1 - 2 * y) * x
    return ((u.clamp(-1, 1) + 1) ** 2 / 4 + (u - 1).clamp(min=0)).mean()


def _t_multiclass_sparsemax(s: Any, y: Any) -> Any:
    import torch

    z = s - s.amax(-1, keepdim=True).detach()
    u = z.sort(-1, descending=True).values
    k = torch.arange(1, s.shape[-1] + 1, dtype=s.dtype)
    support = (1 + k * u > u.cumsum(-1)).sum(-1, keepdim=True)
    tau = ((u.cumsum(-1).gather(-1, support - 1) - 1) / support).detach()
    p = (z - tau).clamp(min=0)
    return (tau[:, 0] + (p * p).sum(-1) / 2 + 0.5 - z.gather(-1, y[:, None])[:, 0]).mean()


def _t_fenchel_young(s: Any, t: Any) -> Any:
    return (s.logsumexp(-1) - (t * s).sum(-1)).mean()


def _t_generalized_kl(lq: Any, t: Any) -> Any:
    return (t * (t.log() - lq) + lq.exp() - t).sum(-1).mean()


def _t_ranking(s: Any, y: Any) -> Any:
    return -(y * s.log_softmax(-1)).sum(-1).mean()


def _t_dice(x: Any, t: Any) -> Any:
    p, t = x.softmax(-1).reshape(8, -1, x.shape[-1]), t.reshape(8, -1, x.shape[-1])
    inter, ps, ts = (p * t).sum(1), p.sum(1), t.sum(1)
    return (1 - (inter + 1) / (inter + 0.5 * (ps - inter) + 0.5 * (ts - inter) + 1)).mean()


def _t_binary_dice(x: Any, t: Any) -> Any:
    p = x.sigmoid()
    inter, ps, ts = (p * t).sum(1), p.sum(1), t.sum(1)
    return (1 - (inter + 1) / (inter + 0.5 * (ps - inter) + 0.5 * (ts - inter) + 1)).mean()


def _t_generalized_dice(x: Any, t: Any) -> Any:
    p, t = x.softmax(-1).reshape(8, -1, x.shape[-1]), t.reshape(8, -1, x.shape[-1])
    inter, ps, ts = (p * t).sum(1), p.sum(1), t.sum(1)
    inverse = 1 / (t.sum((0, 1)) ** 2 + 1e-7)
    w = inverse / inverse.sum() * x.shape[-1]
    return (w * (1 - (inter + 1) / (inter + 0.5 * (ps - inter) + 0.5 * (ts - inter) + 1))).mean()


def _t_smoothed_soft(x: Any, q: Any) -> Any:
    import torch.nn.functional as F

    return F.cross_entropy(x, 0.9 * q + 0.1 / x.shape[-1])


def _structured_rows() -> list[Row]:
    lse = jax.scipy.special.logsumexp
    ours_fy, optax_fy = jaxent.make_fenchel_young_loss(lse), optax.losses.make_fenchel_young_loss(lse)
    return [
        Row(
            "sparsemax_loss",
            lambda x, y: jaxent.sparsemax_loss(x, y),
            lambda x, y: optax.losses.sparsemax_loss(x, y).mean(),
            "optax",
            _binary,
            _t_sparse_plus,
        ),
        Row(
            "multiclass_sparsemax_loss",
            lambda s, y: jaxent.multiclass_sparsemax_loss(s, y),
            lambda s, y: optax.losses.multiclass_sparsemax_loss(s, y).mean(),
            "optax",
            _labels,
            _t_multiclass_sparsemax,
        ),
        Row(
            "make_fenchel_young_loss(logsumexp)",
            lambda s, t: ours_fy(s, t),
            lambda s, t: optax_fy(s, t).mean(),
            "optax",
            _soft_labels,
            _t_fenchel_young,
        ),
        Row(
            "generalized_kl_divergence",
            lambda lq, t: jaxent.generalized_kl_divergence(lq, t),
            lambda lq, t: optax.losses.generalized_kl_divergence(lq, t).mean(),
            "optax",
            _positive,
            _t_generalized_kl,
        ),
        Row(  # optax's convex_kl_divergence warns (deprecated): its new name is the peer
            "convex_kl_divergence",
            lambda lq, t: jaxent.convex_kl_divergence(lq, t),
            lambda lq, t: optax.losses.generalized_kl_divergence(lq, t).mean(),
            "optax generalized",
            _positive,
            _t_generalized_kl,
        ),
        Row(
            "ranking_softmax_loss",
            lambda s, y: jaxent.ranking_softmax_loss(s, y),
            lambda s, y: optax.losses.ranking_softmax_loss(s, y),
            "optax",
            _graded,
            _t_ranking,
        ),
        Row(
            "dice_loss",
            lambda x, t: jaxent.dice_loss(_segments(x), _segments(t)),
            lambda x, t: optax.losses.dice_loss(_segments(x), _segments(t)).mean(),
            "optax",
            _one_hot_labels,
            _t_dice,
        ),
        Row(
            "binary_dice_loss",
            lambda x, t: jaxent.binary_dice_loss(x, t),
            lambda x, t: optax.losses.binary_dice_loss(x, t).mean(),
            "optax",
            _binary,
            _t_binary_dice,
        ),
        Row(
            "multiclass_generalized_dice_loss",
            lambda x, t: jaxent.multiclass_generalized_dice_loss(_segments(x), _segments(t)),
            lambda x, t: optax.losses.multiclass_generalized_dice_loss(_segments(x), _segments(t)),
            "optax",
            _one_hot_labels,
            _t_generalized_dice,
        ),
        Row(
            "smooth_labels + cross_entropy",
            lambda x, q: jaxent.cross_entropy(x, jaxent.smooth_labels(q, 0.1)),
            lambda x, q: optax.losses.softmax_cross_entropy(x, optax.smooth_labels(q, 0.1)).mean(),
            "optax",
            _soft_labels,
            _t_smoothed_soft,
        ),
    ]


def _torch_fn(name: str, **kwargs: Any) -> Callable[..., Any]:
    """``torch.nn.functional.<name>(*tensors, **kwargs)``, imported when called."""

    def call(*tensors: Any, **more: Any) -> Any:
        import torch.nn.functional as F

        return getattr(F, name)(*tensors, **kwargs, **more)

    return call


def _counts(rng: np.random.Generator, n: int, c: int) -> Inputs:
    return 0.5 * _normal(rng, n, c), rng.poisson(2.0, size=(n, c)).astype(np.float32)


def _gaussian(rng: np.random.Generator, n: int, c: int) -> Inputs:
    return _normal(rng, n, c), _normal(rng, n, c), rng.uniform(0.1, 2.0, size=(n, c)).astype(np.float32)


def _multi_hot(rng: np.random.Generator, n: int, c: int) -> Inputs:
    return _normal(rng, n, c), (rng.random((n, c)) < 0.1).astype(np.float32)


def _label_lists(rng: np.random.Generator, n: int, c: int) -> Inputs:
    """PyTorch's -1-terminated class lists: 4 labels per row."""
    lists = np.full((n, c), -1, np.int32)
    lists[:, : min(4, c - 1)] = np.argsort(rng.random((n, c)), axis=-1)[:, : min(4, c - 1)]
    return _normal(rng, n, c), lists


def _jnp_multilabel_margin(x: jax.Array, lists: jax.Array) -> jax.Array:
    # The jnp composition for lists of at most 4 labels (a user who knows that bound): each listed
    # target against every non-target, [N, C] per label slot.
    k = 4
    listed = jnp.cumprod(lists[:, :k] >= 0, axis=-1) > 0
    label = jnp.where(listed, lists[:, :k], 0)
    is_target = jnp.zeros(x.shape, bool).at[jnp.arange(x.shape[0])[:, None], label].max(listed)
    total = jnp.zeros(x.shape[:1], x.dtype)
    for j in range(k):
        s_j = jnp.take_along_axis(x, label[:, j : j + 1], -1)
        h = jnp.where(~is_target & listed[:, j : j + 1], jnp.maximum(0.0, 1 - s_j + x), 0.0)
        total = total + h.sum(-1)
    return (total / x.shape[-1]).mean()


def _jnp_poisson_full(x: jax.Array, y: jax.Array) -> jax.Array:
    ys = jnp.maximum(y, 1)
    stirling = jnp.where(y > 1, ys * jnp.log(ys) - ys + 0.5 * jnp.log(2 * jnp.pi * ys), 0)
    return (jnp.exp(x) - y * x + stirling).mean()


def _regression_and_margin_rows() -> list[Row]:
    """Issue 15: PyTorch's regression and margin losses and optax's elementwise ones."""
    return [
        Row(
            "l1_loss",
            lambda p, t: jaxent.l1_loss(p, t),
            lambda p, t: jnp.abs(p - t).mean(),
            "jnp",
            _regression,
            _torch_fn("l1_loss"),
        ),
        Row(
            "l1_loss weight",
            lambda p, t, w: jaxent.l1_loss(p, t, weight=w),
            lambda p, t, w: (w * jnp.abs(p - t)).sum() / jnp.broadcast_to(w, p.shape).sum(),
            "jnp",
            _with_weight,
            lambda p, t, w: _torch_fn("l1_loss")(p, t, weight=w.expand_as(p)),
        ),
        Row(
            "smooth_l1_loss",
            lambda p, t: jaxent.smooth_l1_loss(p, t, beta=0.5),
            lambda p, t: optax.losses.huber_loss(p, t, delta=0.5).mean() / 0.5,
            "optax huber / beta",
            _regression,
            _torch_fn("smooth_l1_loss", beta=0.5),
        ),
        Row(
            "huber_loss",
            lambda p, t: jaxent.huber_loss(p, t),
            lambda p, t: optax.losses.huber_loss(p, t).mean(),
            "optax",
            _regression,
            _torch_fn("huber_loss"),
        ),
        Row(
            "log_cosh",
            lambda p, t: jaxent.log_cosh(p, t),
            lambda p, t: optax.losses.log_cosh(p, t).mean(),
            "optax",
            _regression,
        ),
        Row(
            "l2_loss",
            lambda p, t: jaxent.l2_loss(p, t),
            lambda p, t: optax.losses.l2_loss(p, t).mean(),
            "optax",
            _regression,
        ),
        Row(
            "poisson_nll_loss",
            lambda x, y: jaxent.poisson_nll_loss(x, y),
            lambda x, y: (jnp.exp(x) - y * x).mean(),
            "jnp",
            _counts,
            _torch_fn("poisson_nll_loss"),
        ),
        Row(
            "poisson_nll_loss full",
            lambda x, y: jaxent.poisson_nll_loss(x, y, full=True),
            _jnp_poisson_full,
            "jnp",
            _counts,
            _torch_fn("poisson_nll_loss", full=True),
        ),
        Row(
            "gaussian_nll_loss",
            lambda p, t, v: jaxent.gaussian_nll_loss(p, t, v),
            lambda p, t, v: (0.5 * (jnp.log(jnp.maximum(v, 1e-6)) + (p - t) ** 2 / jnp.maximum(v, 1e-6))).mean(),
            "jnp",
            _gaussian,
            _torch_fn("gaussian_nll_loss"),
        ),
        Row(
            "soft_margin_loss",
            lambda s, y: jaxent.soft_margin_loss(s, y),
            lambda s, y: jax.nn.softplus(-y * s).mean(),
            "jnp",
            _signs,
            _torch_fn("soft_margin_loss"),
        ),
        Row(
            "multilabel_soft_margin_loss",
            lambda x, y: jaxent.multilabel_soft_margin_loss(x, y),
            lambda x, y: optax.losses.sigmoid_binary_cross_entropy(x, y).mean(-1).mean(),
            "optax",
            _multi_hot,
            _torch_fn("multilabel_soft_margin_loss"),
        ),
        Row(
            "multilabel_margin_loss",
            lambda x, y: jaxent.multilabel_margin_loss(x, y),
            _jnp_multilabel_margin,
            "jnp (4 labels)",
            _label_lists,
            lambda x, y: _torch_fn("multilabel_margin_loss")(x, y),
        ),
        Row(
            "perceptron_loss",
            lambda s, y: jaxent.perceptron_loss(s, y),
            lambda s, y: optax.losses.perceptron_loss(s, y).mean(),
            "optax",
            _signs,
            lambda s, y: (-s * y).clamp(min=0).mean(),
        ),
        Row(
            "multiclass_perceptron_loss",
            lambda s, y: jaxent.multiclass_perceptron_loss(s, y),
            lambda s, y: optax.losses.multiclass_perceptron_loss(s, y).mean(),
            "optax",
            _labels,
            lambda s, y: (s.amax(-1) - s.gather(-1, y[:, None])[:, 0]).mean(),
        ),
    ]


def _with_weight(rng: np.random.Generator, n: int, c: int) -> Inputs:
    return (*_regression(rng, n, c), rng.uniform(0.5, 1.5, size=(c,)).astype(np.float32))


def _ce_rows(dtype: str) -> list[Row]:
    return [
        Row(
            "cross_entropy",
            lambda x, y: jaxent.cross_entropy(x, y),
            lambda x, y: _optax_ce(x, y).mean(),
            "optax",
            _labels,
            _t_ce,
            dtype,
        ),
        Row(
            "cross_entropy label_smoothing=0.1",
            lambda x, y: jaxent.cross_entropy(x, y, label_smoothing=0.1),
            _smoothed_ce,
            "optax smooth_labels",
            _labels,
            _t_smoothed,
            dtype,
        ),
    ]


ROWS: Sequence[Row] = (
    *_ce_rows("float32"),
    *_ce_rows("bfloat16"),
    *_embedding_rows(),
    Row(
        "cross_entropy one-hot",
        lambda x, q: jaxent.cross_entropy(x, q),
        lambda x, q: optax.losses.softmax_cross_entropy(x, q).mean(),
        "optax",
        _one_hot_labels,
        _t_ce,
    ),
    Row(
        "cross_entropy soft",
        lambda x, q: jaxent.cross_entropy(x, q),
        lambda x, q: optax.losses.softmax_cross_entropy(x, q).mean(),
        "optax",
        _soft_labels,
        _t_ce,
    ),
    Row(
        "cross_entropy where=[N,C]",
        lambda x, y, m: jaxent.cross_entropy(x, y, where=m),
        lambda x, y, m: _optax_ce(x, y, where=m).mean(),
        "optax where",
        _class_mask,
        _t_masked_ce,
    ),
    Row(
        "cross_entropy weight+ignore_index",
        lambda x, y, w: jaxent.cross_entropy(x, y, weight=w, ignore_index=-100),
        _weighted_ce,
        "jnp",
        _weight_ignore,
        _t_weighted_ce,
    ),
    Row(
        "cross_entropy z_loss=1e-4",
        lambda x, y: jaxent.cross_entropy(x, y, z_loss=1e-4),
        lambda x, y: (_optax_ce(x, y) + 1e-4 * jax.nn.logsumexp(x, -1) ** 2).mean(),
        "optax + jnp",
        _labels,
        _t_z_loss,
    ),
    Row(
        "cross_entropy logit_softcap=30",
        lambda x, y: jaxent.cross_entropy(x, y, logit_softcap=30.0),
        lambda x, y: _optax_ce(30 * jnp.tanh(x / 30), y).mean(),
        "optax + jnp",
        _labels,
        _t_softcap,
    ),
    Row(
        "CrossEntropyLoss() under jit",
        lambda x, y, loss: loss(x, y),
        lambda x, y, loss: _optax_ce(x, y).mean(),
        "optax",
        _with(_labels, jaxent.CrossEntropyLoss()),
        _t_ce,
    ),
    Row(
        "CrossEntropyLoss(label_smoothing=0.1) under jit",
        lambda x, y, loss: loss(x, y),
        lambda x, y, loss: _smoothed_ce(x, y),
        "optax smooth_labels",
        _with(_labels, jaxent.CrossEntropyLoss(label_smoothing=0.1)),
        lambda x, y, loss: _t_smoothed(x, y),
    ),
    Row(
        "nll_loss", lambda lp, y: jaxent.nll_loss(lp, y), lambda lp, y: -_pick(lp, y).mean(), "jnp", _log_probs, _t_nll
    ),
    Row(
        "log_softmax_stats temperature=0.7",
        _rl_objective,
        _jnp_rl_objective,
        "jnp log_softmax",
        _labels,
        _t_rl_objective,
    ),
    Row("focal_loss", lambda x, y: jaxent.focal_loss(x, y), _focal, "jnp (Keras)", _labels, _t_focal),
    Row(
        "poly1_cross_entropy",
        lambda x, y: jaxent.poly1_cross_entropy(x, y, epsilon=2.0),
        lambda x, y: optax.losses.poly_loss_cross_entropy(
            x, jax.nn.one_hot(y, x.shape[-1], dtype=x.dtype), epsilon=2.0
        ).mean(),
        "optax one-hot",
        _labels,
        _t_poly1,
    ),
    Row(
        "poly1_cross_entropy one-hot",
        lambda x, q: jaxent.poly1_cross_entropy(x, q, epsilon=2.0),
        lambda x, q: optax.losses.poly_loss_cross_entropy(x, q, epsilon=2.0).mean(),
        "optax",
        _one_hot_labels,
        _t_poly1_probs,
    ),
    Row(
        "binary_cross_entropy_with_logits",
        lambda x, y: jaxent.binary_cross_entropy_with_logits(x, y),
        lambda x, y: optax.losses.sigmoid_binary_cross_entropy(x, y).mean(),
        "optax",
        _binary,
        _t_bce_logits,
    ),
    Row(
        "binary_cross_entropy",
        lambda p, y: jaxent.binary_cross_entropy(p, y),
        _bce_probs,
        "jnp",
        _probs,
        _t_bce,
    ),
    Row(
        "sigmoid_focal_loss",
        lambda x, y: jaxent.sigmoid_focal_loss(x, y),
        lambda x, y: optax.losses.sigmoid_focal_loss(x, y).mean(),
        "optax",
        _binary,
        _t_sigmoid_focal,
    ),
    Row(
        "kl_divergence",
        lambda lq, t: jaxent.kl_divergence(lq, t),
        lambda lq, t: optax.losses.kl_divergence(lq, t).mean(),
        "optax",
        _kl,
        _t_kl,
    ),
    Row(
        "hinge_loss",
        lambda s, y: jaxent.hinge_loss(s, y),
        lambda s, y: optax.losses.hinge_loss(s, y).mean(),
        "optax",
        _signs,
        _t_hinge,
    ),
    Row(
        "multi_margin_loss",
        lambda s, y: jaxent.multi_margin_loss(s, y),
        _multi_margin,
        "jnp",
        _labels,
        _t_multi_margin,
    ),
    Row(
        "multiclass_hinge_loss",
        lambda s, y: jaxent.multiclass_hinge_loss(s, y),
        lambda s, y: optax.losses.multiclass_hinge_loss(s, y).mean(),
        "optax",
        _labels,
        _t_multiclass_hinge,
    ),
    Row(
        "mse_loss",
        lambda p, t: jaxent.mse_loss(p, t),
        lambda p, t: optax.losses.squared_error(p, t).mean(),
        "optax",
        _regression,
        _t_mse,
    ),
    *_regression_and_margin_rows(),
    *_structured_rows(),
)


def jax_inputs(row: Row, inputs: Inputs) -> Inputs:
    """The row's inputs as JAX arrays, the logits in ``row.dtype`` (non-arrays, e.g. loss objects, as they are)."""
    x, *rest = inputs
    return (jnp.asarray(x, row.dtype), *(jnp.asarray(a) if isinstance(a, np.ndarray) else a for a in rest))


def _torch_runner(row: Row, inputs: Inputs) -> Callable[[], Any] | None:
    if row.torch is None:
        return None
    try:
        import torch
    except ImportError:
        return None
    x, *rest = inputs
    tx = torch.tensor(x).to(getattr(torch, row.dtype)).requires_grad_(True)
    targs = [
        torch.from_numpy(a.astype(np.int64) if a.dtype.kind in "iu" else a) if isinstance(a, np.ndarray) else a
        for a in rest
    ]
    fn = row.torch

    def run() -> Any:
        tx.grad = None
        loss = fn(tx, *targs)
        loss.backward()
        return loss

    return run


def _short(dtype: str) -> str:
    return {"float32": "f32", "bfloat16": "bf16"}.get(dtype, dtype)


def run(
    shapes: Sequence[tuple[int, int]] | None = None,
    repeats: int | None = None,
    torch: bool = True,
    quick: bool = False,
    rows: str | None = None,
) -> list[dict[str, Any]]:
    if shapes is None:
        shapes = QUICK_SHAPES if quick else DEFAULT_SHAPES
    if repeats is None:
        repeats = QUICK_REPEATS if quick else DEFAULT_REPEATS
    torch = torch and importlib.util.find_spec("torch") is not None
    selected = [r for r in ROWS if rows is None or rows in f"{r.name} {r.dtype}"]
    table = Table({"loss": max((len(r.name) for r in selected), default=4), "peer": 19, "shape": 10})
    results = []
    for n, c in shapes:
        for row in selected:
            inputs = row.inputs(np.random.default_rng(0), n, c)
            args = jax_inputs(row, inputs)
            ours, theirs = jax.value_and_grad(row.jaxent), jax.value_and_grad(row.peer)
            contenders: dict[str, Callable[[], Any]] = {
                "jaxent": functools.partial(jax.jit(ours), *args),
                "peer": functools.partial(jax.jit(theirs), *args),
            }
            torch_run = _torch_runner(row, inputs) if torch else None
            if torch_run is not None:
                contenders["torch"] = torch_run
            median = alternate(contenders, repeats)
            result = {
                "loss": row.name,
                "shape": f"{n}x{c}",
                "dtype": _short(row.dtype),
                "jaxent ms": f"{median['jaxent'] * 1e3:.2f}",
                "peer": row.peer_name,
                "peer ms": f"{median['peer'] * 1e3:.2f}",
                "jaxent/peer": f"{median['jaxent'] / median['peer']:.2f}",
                "jaxent temp MB": f"{temp_bytes(ours, *args) / 1e6:.1f}",
                "peer temp MB": f"{temp_bytes(theirs, *args) / 1e6:.1f}",
            }
            if torch:
                result["torch ms"] = f"{median['torch'] * 1e3:.2f}" if "torch" in median else "-"
                result["jaxent/torch"] = f"{median['jaxent'] / median['torch']:.2f}" if "torch" in median else "-"
            table.add(result)
            results.append(result)
    return results
