"""``python -m jaxent.bench linear_cross_entropy``: fused linear + cross-entropy.

Forward+backward (gradients w.r.t. inputs and weight) of the mean loss for jaxent's
fused ``linear_cross_entropy``, the naive JAX composition
``jaxent.cross_entropy(inputs @ weight.T, y)``, optax's integer-label cross-entropy on
the same materialised logits and, when installed, PyTorch 2.13's
``linear_cross_entropy`` on its reference path and on its chunked path.
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

DEFAULT_SHAPES = ((4096, 512, 32000, "float32"), (1024, 512, 128256, "float32"))
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


def run(shapes=None, repeats: int | None = None, torch: bool = True, quick: bool = False) -> list[dict[str, Any]]:
    shapes = shapes or (QUICK_SHAPES if quick else DEFAULT_SHAPES)
    repeats = repeats or (QUICK_REPEATS if quick else DEFAULT_REPEATS)
    rows = []
    table = Table({"dtype": 8})
    for n, d, v, dtype in shapes:
        rng = np.random.default_rng(0)
        h_np = rng.normal(size=(n, d)).astype(np.float32)
        w_np = (rng.normal(size=(v, d)) / np.sqrt(d)).astype(np.float32)
        y_np = rng.integers(0, v, size=(n,)).astype(np.int32)
        h, w, y = jnp.asarray(h_np, dtype), jnp.asarray(w_np, dtype), jnp.asarray(y_np)
        grads = functools.partial(jax.value_and_grad, argnums=(0, 1))
        programs = {
            "jaxent": grads(lambda h, w, y: jaxent.linear_cross_entropy(h, w, y)),
            "naive": grads(lambda h, w, y: jaxent.cross_entropy(h @ w.T, y)),
            "optax": grads(lambda h, w, y: optax.losses.softmax_cross_entropy_with_integer_labels(h @ w.T, y).mean()),
        }
        contenders = {name: functools.partial(jax.jit(f), h, w, y) for name, f in programs.items()}
        if torch:
            runners = _torch_runners(h_np, w_np, y_np, dtype)
            if quick:  # PyTorch's chunked path takes seconds per call on a CPU even at the quick shape
                runners.pop("torch chunked", None)
            contenders.update(runners)
        median = alternate(contenders, repeats)
        row: dict[str, Any] = {"N": n, "D": d, "V": v, "dtype": dtype}
        row.update({f"{name} ms": f"{t * 1e3:.0f}" for name, t in median.items()})
        row["jaxent/naive"] = f"{median['jaxent'] / median['naive']:.2f}"
        for other in ("torch", "torch chunked"):
            if other in median:
                row[f"jaxent/{other}"] = f"{median['jaxent'] / median[other]:.2f}"
        row.update({f"{name} temp MB": f"{temp_bytes(f, h, w, y) / 1e6:.1f}" for name, f in programs.items()})
        rows.append(row)
        table.add(row)
    return rows
