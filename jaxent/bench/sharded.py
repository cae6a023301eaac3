"""``python -m jaxent.bench sharded``: vocabulary-parallel losses on 1, 2, 4 and 8 devices.

Times forward+backward of ``sharded_linear_cross_entropy`` (the weight split along the
vocabulary) and ``sharded_cross_entropy`` (logits split along the classes) on meshes with
a vocabulary axis of 1, 2, 4 and 8 devices, and reads each program's per-device
temporary and argument memory. On a CPU the devices are host devices created by
``jax_num_cpu_devices`` that share the machine's cores, so time shows the overhead of
the collectives rather than a speed-up. Memory is the figure that scales: each device's
arguments (its slice of the weight or of the logits) shrink as ``1/P``, while the
temporary memory stays flat, one vocabulary chunk of the fused loss, not ``N * V/P``.
The ratio column is the time relative to the 1-device run of the same loss.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import jaxent
from jaxent.bench._timing import Table, alternate, memory_bytes

DEFAULT_SHAPES = ((2048, 512, 32768, "float32"),)
QUICK_SHAPES = ((512, 256, 8192, "float32"),)
DEFAULT_REPEATS, QUICK_REPEATS = 5, 3
SHAPE_HELP = "NxDxV[xdtype] shapes, e.g. 2048x512x32768"
DEVICE_COUNTS = (1, 2, 4, 8)


def parse_shape(text: str) -> tuple[int, int, int, str]:
    n, d, v, *dtype = text.split("x")
    return int(n), int(d), int(v), dtype[0] if dtype else "float32"


def run(shapes=None, repeats: int | None = None, torch: bool = False, quick: bool = False) -> list[dict[str, Any]]:
    del torch  # PyTorch has no counterpart here
    shapes = shapes or (QUICK_SHAPES if quick else DEFAULT_SHAPES)
    repeats = repeats or (QUICK_REPEATS if quick else DEFAULT_REPEATS)
    rows = []
    table = Table({"loss": 20, "dtype": 8})
    for n, d, v, dtype in shapes:
        rng = np.random.default_rng(0)
        h = jnp.asarray(rng.normal(size=(n, d)), dtype)
        w = jnp.asarray(rng.normal(size=(v, d)) / np.sqrt(d), dtype)
        y = jnp.asarray(rng.integers(0, v, n), jnp.int32)
        logits = h @ w.T
        counts = [p for p in DEVICE_COUNTS if p <= len(jax.devices()) and v % p == 0]
        contenders: dict[tuple[str, int], Any] = {}
        programs: dict[tuple[str, int], tuple[Any, tuple[Any, ...]]] = {}
        for p in counts:
            mesh = jax.make_mesh((p,), ("model",), devices=jax.devices()[:p], axis_types=(jax.sharding.AxisType.Auto,))
            w_p = jax.device_put(w, NamedSharding(mesh, P("model")))
            x_p = jax.device_put(logits, NamedSharding(mesh, P(None, "model")))
            linear = jax.value_and_grad(
                lambda h, w, y, mesh=mesh: jaxent.sharded_linear_cross_entropy(h, w, y, mesh=mesh, vocab_axis="model"),
                (0, 1),
            )
            softmax = jax.value_and_grad(
                lambda x, y, mesh=mesh: jaxent.sharded_cross_entropy(x, y, mesh=mesh, vocab_axis="model")
            )
            programs[("linear_cross_entropy", p)] = (linear, (h, w_p, y))
            programs[("cross_entropy", p)] = (softmax, (x_p, y))
        for key, (f, args) in programs.items():
            contenders[key] = functools.partial(jax.jit(f), *args)
        median = alternate(contenders, repeats)
        for (name, p), (f, args) in programs.items():
            temp, argument = memory_bytes(f, *args)
            row = {
                "loss": name,
                "N": n,
                "D": d,
                "V": v,
                "dtype": dtype,
                "devices": p,
                "ms": f"{median[(name, p)] * 1e3:.1f}",
                "vs 1 device": f"{median[(name, p)] / median[(name, 1)]:.2f}",
                "temp MB per device": f"{temp / 1e6:.1f}",
                "args MB per device": f"{argument / 1e6:.1f}",
            }
            rows.append(row)
            table.add(row)
    return rows
