"""``python -m jaxent.bench ctc``: forward+backward of the CTC loss.

Compares ``jax.value_and_grad`` of ``jaxent.ctc_loss(logits, labels, input_lengths,
target_lengths, reduction="sum")`` with optax's ``ctc_loss(logits, logit_paddings, labels,
label_paddings).sum()`` (autodiff through its ``lax.scan``) and, when installed, PyTorch's
``F.ctc_loss(log_softmax(x), ..., reduction="sum").backward()`` on the same inputs: full-length
frames, targets of length S with random labels (repeats included).
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

DEFAULT_SHAPES = ((32, 500, 32, 100, "float32"), (8, 1500, 1024, 300, "float32"))
QUICK_SHAPES = ((8, 100, 32, 20, "float32"),)
DEFAULT_REPEATS, QUICK_REPEATS = 10, 3
SHAPE_HELP = "BxTxCxS[xdtype] shapes (batch, frames, classes, target length), e.g. 32x500x32x100"


def parse_shape(text: str) -> tuple[int, int, int, int, str]:
    b, t, c, s, *dtype = text.split("x")
    return int(b), int(t), int(c), int(s), dtype[0] if dtype else "float32"


def _torch_runner(x: np.ndarray, y: np.ndarray, dtype: str):
    try:
        import torch
    except ImportError:
        return None
    b, t, _ = x.shape
    tx = torch.tensor(x).to(getattr(torch, dtype)).requires_grad_(True)
    ty = torch.tensor(y).long()
    il = torch.full((b,), t, dtype=torch.long)
    tl = torch.full((b,), y.shape[1], dtype=torch.long)

    def run():
        tx.grad = None
        log_probs = torch.log_softmax(tx.float(), dim=-1).transpose(0, 1)  # PyTorch is time-major
        loss = torch.nn.functional.ctc_loss(log_probs, ty, il, tl, reduction="sum")
        loss.backward()
        return loss

    return run


def run(shapes=None, repeats: int | None = None, torch: bool = True, quick: bool = False) -> list[dict[str, Any]]:
    shapes = shapes or (QUICK_SHAPES if quick else DEFAULT_SHAPES)
    repeats = repeats or (QUICK_REPEATS if quick else DEFAULT_REPEATS)
    rows = []
    table = Table({"dtype": 8, "jaxent ms": 7, "optax ms": 7, "torch ms": 7})
    for b, t, c, s, dtype in shapes:
        rng = np.random.default_rng(0)
        x_np = rng.normal(size=(b, t, c)).astype(np.float32)
        y_np = rng.integers(1, c, size=(b, s)).astype(np.int32)
        x, y = jnp.asarray(x_np, dtype), jnp.asarray(y_np)
        il, tl = jnp.full((b,), t, jnp.int32), jnp.full((b,), s, jnp.int32)
        logit_pad, label_pad = jnp.zeros((b, t), jnp.float32), jnp.zeros((b, s), jnp.float32)
        ours = jax.value_and_grad(lambda x, y, il, tl: jaxent.ctc_loss(x, y, il, tl, reduction="sum"))
        theirs = jax.value_and_grad(lambda x, y, lp, sp: optax.losses.ctc_loss(x, lp, y, sp).sum())
        contenders = {
            "jaxent": functools.partial(jax.jit(ours), x, y, il, tl),
            "optax": functools.partial(jax.jit(theirs), x, y, logit_pad, label_pad),
        }
        torch_run = _torch_runner(x_np, y_np, dtype) if torch else None
        if torch_run is not None:
            contenders["torch"] = torch_run
        median = alternate(contenders, repeats)
        row = {
            "B": b,
            "T": t,
            "C": c,
            "S": s,
            "dtype": dtype,
            "jaxent ms": f"{median['jaxent'] * 1e3:.1f}",
            "optax ms": f"{median['optax'] * 1e3:.1f}",
            "jaxent/optax": f"{median['jaxent'] / median['optax']:.2f}",
            "jaxent temp MB": f"{temp_bytes(ours, x, y, il, tl) / 1e6:.1f}",
            "optax temp MB": f"{temp_bytes(theirs, x, y, logit_pad, label_pad) / 1e6:.1f}",
        }
        if "torch" in median:
            row["torch ms"] = f"{median['torch'] * 1e3:.1f}"
            row["jaxent/torch"] = f"{median['jaxent'] / median['torch']:.2f}"
        rows.append(row)
        table.add(row)
    return rows
