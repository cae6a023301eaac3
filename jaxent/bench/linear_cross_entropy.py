"""``python -m jaxent.bench linear_cross_entropy``: fused linear + cross-entropy.

Forward+backward (gradients w.r.t. inputs and weight) of the mean loss for jaxent's
fused ``linear_cross_entropy`` on each schedule, the naive JAX composition
``jaxent.cross_entropy(inputs @ weight.T, y)``, optax's integer-label cross-entropy on
the same materialised logits and, when installed, PyTorch 2.13's
``linear_cross_entropy`` on its reference path and on its chunked path:

- ``jaxent``: the default (``schedule="auto"`` within the default memory budget);
- ``vocab``: vocabulary streaming, 8·N·D·V flops, memory of one chunk;
- ``tokens``: the token schedule (6·N·D·V) with ``memory_budget`` at 9.5% of the naive
  program's temp memory (or the least of 15%, 25%, 40% that holds a block: 16-bit weights
  add a float32 d weight accumulator);
- ``filtered``: ``tokens`` with ``gradient_threshold=2**-12``, on random logits (where it
  skips nothing and should cost nothing) and, in a second row per shape, on a peaked
  distribution shaped like a trained model's (``dist=zipf``: a Zipf prior of exponent 2
  over the vocabulary plus a peak on each target), with the share of skipped tiles;
- ``stats``: ``linear_log_softmax_stats`` (fwd+bwd of ``sum(adv·log p) + 0.01·entropy``)
  against the same composition on materialised logits (``jax.nn.log_softmax``).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxent
from jaxent.bench._timing import Table, alternate, temp_bytes

DEFAULT_SHAPES = (
    (4096, 512, 32000, "float32"),
    (4096, 512, 32000, "bfloat16"),
    (1024, 512, 128256, "float32"),
    (1024, 512, 128256, "bfloat16"),
)
QUICK_SHAPES = ((512, 128, 4096, "float32"),)
DEFAULT_REPEATS, QUICK_REPEATS = 5, 3
SHAPE_HELP = "NxDxV[xdtype] shapes, e.g. 4096x512x32000 or 1024x512x128256xbfloat16"


def parse_shape(text: str) -> tuple[int, int, int, str]:
    n, d, v, *dtype = text.split("x")
    return int(n), int(d), int(v), dtype[0] if dtype else "float32"


def _torch_runners(h: np.ndarray, w: np.ndarray, y: np.ndarray, dtype: str) -> dict[str, Any]:
    try:
        import torch
    except ImportError:
        return {}
    th = torch.tensor(h).to(getattr(torch, dtype)).requires_grad_(True)
    tw = torch.tensor(w).to(getattr(torch, dtype)).requires_grad_(True)
    ty = torch.tensor(y).long()

    def runner(options):
        def run():
            th.grad = tw.grad = None
            loss = torch.nn.functional.linear_cross_entropy(th, tw, ty, options=options)
            loss.backward()
            return loss

        return run

    return {"torch": runner(None), "torch chunked": runner(torch.nn.LinearCrossEntropyOptions())}


THRESHOLD = 2.0**-12


def peaked(n: int, d: int, v: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs, weight and targets whose softmax is shaped like a trained model's: a Zipf
    prior (exponent 2) over the vocabulary and a peak of 6 on each token's target, which
    is drawn from the prior."""
    w = (rng.normal(size=(v, d)) / np.sqrt(d)).astype(np.float32)
    w[:, 0] = -2.0 * np.log(np.arange(1, v + 1))
    prior = np.exp(w[:, 0] - w[:, 0].max())
    y = rng.choice(v, size=n, p=prior / prior.sum()).astype(np.int32)
    h = (6.0 * w[y] + rng.normal(size=(n, d)) * 0.3 / np.sqrt(d)).astype(np.float32)
    h[:, 0] = 1.0
    return h, w, y


def skipped_tiles(h: jax.Array, w: jax.Array, y: jax.Array, budget: int) -> float:
    """The share of (token block, vocabulary part) tiles that ``gradient_threshold`` skips."""
    from jaxent._linear import vocabulary_parts

    n, d = h.shape
    v = w.shape[0]
    cfg = _token_plan(budget, n, d, v, w.dtype, THRESHOLD)
    assert cfg is not None
    part = vocabulary_parts(v, d, cfg)

    @jax.jit
    def share(h, w, y):
        z = jnp.dot(h, w.T, preferred_element_type=jnp.float32)
        big = jnp.abs(jax.nn.softmax(z) - jax.nn.one_hot(y, v, dtype=z.dtype)) >= THRESHOLD
        rows = -(-n // cfg.block) * cfg.block
        cols = -(-v // part) * part
        big = jnp.pad(big, ((0, rows - n), (0, cols - v)))
        return jnp.mean(~jnp.any(big.reshape(rows // cfg.block, cfg.block, cols // part, part), axis=(1, 3)))

    return float(share(h, w, y))


def run(shapes=None, repeats: int | None = None, torch: bool = True, quick: bool = False) -> list[dict[str, Any]]:
    shapes = shapes or (QUICK_SHAPES if quick else DEFAULT_SHAPES)
    repeats = repeats or (QUICK_REPEATS if quick else DEFAULT_REPEATS)
    rows = []
    table = Table({"dtype": 8})
    for n, d, v, dtype in shapes:
        naive = _GRADS(_naive)
        spec = (jax.ShapeDtypeStruct((n, d), dtype), jax.ShapeDtypeStruct((v, d), dtype))
        # 9.5% of the naive program's temp memory, or the least share of it that holds a
        # block (16-bit weights add a float32 d weight accumulator), 1 MiB at least.
        naive_temp = temp_bytes(naive, *spec, jax.ShapeDtypeStruct((n,), jnp.int32))
        budget = next(
            b
            for b in (max(int(f * naive_temp), 2**20) for f in (0.095, 0.15, 0.25, 0.4, 1.0))
            if _fits(b, n, d, v, dtype)
        )
        fused = lambda **kw: _GRADS(functools.partial(_fused, **kw))
        tokens = dict(schedule="tokens", memory_budget=budget)
        for dist in ("random", "zipf"):
            rng = np.random.default_rng(0)
            if dist == "random":
                h_np = rng.normal(size=(n, d)).astype(np.float32)
                w_np = (rng.normal(size=(v, d)) / np.sqrt(d)).astype(np.float32)
                y_np = rng.integers(0, v, size=(n,)).astype(np.int32)
            else:
                h_np, w_np, y_np = peaked(n, d, v, rng)
            h, w, y = jnp.asarray(h_np, dtype), jnp.asarray(w_np, dtype), jnp.asarray(y_np)
            programs: dict[str, Any] = {"naive": naive}
            if dist == "random":
                programs.update(
                    jaxent=fused(),
                    vocab=fused(schedule="vocab"),
                    optax=_GRADS(
                        lambda h, w, y: optax.losses.softmax_cross_entropy_with_integer_labels(h @ w.T, y).mean()
                    ),
                )
            programs.update(tokens=fused(**tokens), filtered=fused(**tokens, gradient_threshold=THRESHOLD))
            contenders = {name: functools.partial(jax.jit(f), h, w, y) for name, f in programs.items()}
            if torch and dist == "random":
                runners = _torch_runners(h_np, w_np, y_np, dtype)
                if quick:  # PyTorch's chunked path takes seconds per call on a CPU even at the quick shape
                    runners.pop("torch chunked", None)
                contenders.update(runners)
            median = alternate(contenders, repeats)
            temps = {name: temp_bytes(f, h, w, y) for name, f in programs.items()}
            row: dict[str, Any] = {"N": n, "D": d, "V": v, "dtype": dtype, "dist": dist}
            row["naive ms"] = f"{median['naive'] * 1e3:.0f}"
            for name in ("jaxent", "vocab", "tokens", "filtered", "optax", "torch", "torch chunked"):
                if name in median:
                    row[f"{name}/naive"] = f"{median[name] / median['naive']:.2f}"
            row["filtered/tokens"] = f"{median['filtered'] / median['tokens']:.3f}"
            row["skipped"] = f"{skipped_tiles(h, w, y, budget):.0%}"
            for name in ("jaxent", "vocab", "tokens"):
                if name in temps:
                    row[f"{name} temp %naive"] = f"{100 * temps[name] / temps['naive']:.1f}"
            row["naive temp MB"] = f"{temps['naive'] / 1e6:.0f}"
            rows.append(row)
            table.add(row)
        rows.append(_stats_row(n, d, v, dtype, repeats))
        table.add(rows[-1])
    return rows


_GRADS = functools.partial(jax.value_and_grad, argnums=(0, 1))


def _token_plan(budget: int, n: int, d: int, v: int, dtype: Any, threshold: float | None = None) -> Any:
    """The token schedule's plan for ``[n, d]`` inputs and a ``[v, d]`` weight (ValueError if no block fits)."""
    from jaxent._linear import token_config

    return token_config(
        "bench",
        "tokens",
        budget,
        threshold,
        reduction="mean",
        axis_name=None,
        tokens=n,
        vocab=v,
        out=1,
        dim=d,
        weight_dtype=jnp.dtype(dtype),
        smooth=False,
        chunk_size=None,
    )


def _fits(budget: int, n: int, d: int, v: int, dtype: str) -> bool:
    try:
        _token_plan(budget, n, d, v, dtype)
    except ValueError:
        return False
    return True


def _naive(h, w, y):
    return jaxent.cross_entropy(h @ w.T, y)


def _fused(h, w, y, **kw):
    return jaxent.linear_cross_entropy(h, w, y, **kw)


def _stats_row(n: int, d: int, v: int, dtype: str, repeats: int) -> dict[str, Any]:
    """``linear_log_softmax_stats`` (the RL objective) against the materialised composition."""
    rng = np.random.default_rng(0)
    h = jnp.asarray(rng.normal(size=(n, d)), dtype)
    w = jnp.asarray(rng.normal(size=(v, d)) / np.sqrt(d), dtype)
    y = jnp.asarray(rng.integers(0, v, size=(n,)), jnp.int32)
    adv = jnp.asarray(rng.normal(size=(n,)), jnp.float32)

    def fused(h, w, y):
        s = jaxent.linear_log_softmax_stats(h, w, y, temperature=0.7)
        return jnp.sum(adv * s.log_prob) + 0.01 * jnp.sum(s.entropy)

    def naive(h, w, y):
        logp = jax.nn.log_softmax((h @ w.T).astype(jnp.float32) / 0.7)
        target = jnp.take_along_axis(logp, y[:, None], axis=-1)[:, 0]
        return jnp.sum(adv * target) - 0.01 * jnp.sum(jnp.exp(logp) * logp)

    programs = {"stats": fused, "naive": naive}
    grads = {k: jax.value_and_grad(f, argnums=(0, 1)) for k, f in programs.items()}
    median = alternate({k: functools.partial(jax.jit(f), h, w, y) for k, f in grads.items()}, repeats)
    temps = {k: temp_bytes(f, h, w, y) for k, f in grads.items()}
    return {
        "N": n,
        "D": d,
        "V": v,
        "dtype": dtype,
        "dist": "stats",
        "naive ms": f"{median['naive'] * 1e3:.0f}",
        "jaxent/naive": f"{median['stats'] / median['naive']:.2f}",
        "jaxent temp %naive": f"{100 * temps['stats'] / temps['naive']:.1f}",
        "naive temp MB": f"{temps['naive'] / 1e6:.0f}",
    }
