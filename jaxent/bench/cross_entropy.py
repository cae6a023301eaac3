"""``python -m jaxent.bench cross_entropy``: forward+backward of softmax cross-entropy.

Compares ``jax.value_and_grad`` of ``jaxent.cross_entropy(x, y)`` (mean) with optax's
``softmax_cross_entropy_with_integer_labels(x, y).mean()`` and, when installed, PyTorch's
``cross_entropy(x, y).backward()`` on the same inputs.
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

DEFAULT_SHAPES = ((4096, 32000, "float32"), (4096, 32000, "bfloat16"), (2048, 128256, "float32"))
QUICK_SHAPES = ((1024, 8000, "float32"), (1024, 8000, "bfloat16"))
DEFAULT_REPEATS, QUICK_REPEATS = 20, 5
SHAPE_HELP = "NxV[xdtype] shapes, e.g. 4096x32000xbfloat16"


def parse_shape(text: str) -> tuple[int, int, str]:
    n, v, *dtype = text.split("x")
    return int(n), int(v), dtype[0] if dtype else "float32"


def _torch_runner(x: np.ndarray, y: np.ndarray, dtype: str):
    try:
        import torch
    except ImportError:
        return None
    tx = torch.tensor(x).to(getattr(torch, dtype)).requires_grad_(True)
    ty = torch.tensor(y).long()

    def run():
        tx.grad = None
        loss = torch.nn.functional.cross_entropy(tx, ty)
        loss.backward()
        return loss

    return run


def run(shapes=None, repeats: int | None = None, torch: bool = True, quick: bool = False) -> list[dict[str, Any]]:
    shapes = shapes or (QUICK_SHAPES if quick else DEFAULT_SHAPES)
    repeats = repeats or (QUICK_REPEATS if quick else DEFAULT_REPEATS)
    rows = []
    table = Table({"dtype": 8, "jaxent ms": 7, "optax ms": 7, "torch ms": 7})
    for n, v, dtype in shapes:
        rng = np.random.default_rng(0)
        x_np = rng.normal(size=(n, v)).astype(np.float32)
        y_np = rng.integers(0, v, size=(n,)).astype(np.int32)
        x, y = jnp.asarray(x_np, dtype), jnp.asarray(y_np)
        ours = jax.value_and_grad(lambda x, y: jaxent.cross_entropy(x, y))
        theirs = jax.value_and_grad(lambda x, y: optax.losses.softmax_cross_entropy_with_integer_labels(x, y).mean())
        contenders = {
            "jaxent": functools.partial(jax.jit(ours), x, y),
            "optax": functools.partial(jax.jit(theirs), x, y),
        }
        torch_run = _torch_runner(x_np, y_np, dtype) if torch else None
        if torch_run is not None:
            contenders["torch"] = torch_run
        median = alternate(contenders, repeats)
        row = {
            "N": n,
            "V": v,
            "dtype": dtype,
            "jaxent ms": f"{median['jaxent'] * 1e3:.1f}",
            "optax ms": f"{median['optax'] * 1e3:.1f}",
            "jaxent/optax": f"{median['jaxent'] / median['optax']:.2f}",
            "jaxent temp MB": f"{temp_bytes(ours, x, y) / 1e6:.1f}",
            "optax temp MB": f"{temp_bytes(theirs, x, y) / 1e6:.1f}",
        }
        if "torch" in median:
            row["torch ms"] = f"{median['torch'] * 1e3:.1f}"
            row["jaxent/torch"] = f"{median['jaxent'] / median['torch']:.2f}"
        rows.append(row)
        table.add(row)
    return rows
