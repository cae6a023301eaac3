"""One process of tests/test_multihost.py, and the single-device run it is compared with.

``python tests/multihost_worker.py COORDINATOR PROCESSES PROCESS_ID DEVICES OUT`` joins the
other processes with ``jax.distributed`` (gloo CPU collectives, ``DEVICES`` CPU devices here),
builds a data x model mesh over all of their devices, feeds its own rows of every global batch
with ``jax.make_array_from_process_local_data`` and trains a small model for ``STEPS`` optax
steps with four forms of the losses across devices, on batches whose ``ignore_index`` padding
is uneven across processes. It writes its loss curves and the gathered final parameters to ``OUT`` (.npz).
:func:`train` with ``mesh=None`` is the same training on one device with the unsharded losses.
float64 throughout, so that a real difference stands far above rounding.
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import jaxent

STEPS, BATCH, CONTEXT, DIM, VOCAB, TAGS = 20, 32, 3, 8, 32, 5
TERMS = ("linear", "softmax", "axis_name", "data_parallel")


def batches():
    """The global batches, the same on every process. The first quarter of the rows (all on the
    first process) is all padding on even steps and 60% padding on odd ones; the rest is 20%."""
    rng = np.random.default_rng(0)
    first = np.arange(BATCH) < BATCH // 4
    for step in range(STEPS):
        tokens = rng.integers(0, VOCAB, (BATCH, CONTEXT))
        padded = rng.random(BATCH) < np.where(first, 1.0 if step % 2 == 0 else 0.6, 0.2)
        y = np.where(padded, -100, (tokens[:, -1] + 1) % VOCAB)  # learnable: the next token follows the last
        tag = np.where(padded | (rng.random(BATCH) < 0.2), -100, tokens[:, 0] % TAGS)
        yield tokens.astype(np.int32), y.astype(np.int32), tag.astype(np.int32)


def init(key):
    k1, k2, k3, k4 = jax.random.split(key, 4)
    return {
        "embed": jax.random.normal(k1, (VOCAB, DIM)),
        "hidden": jax.random.normal(k2, (CONTEXT * DIM, DIM)) / np.sqrt(CONTEXT * DIM),
        "head": jax.random.normal(k3, (VOCAB, DIM)) / np.sqrt(DIM),
        "tag": jax.random.normal(k4, (DIM, TAGS)) / np.sqrt(DIM),
    }


def terms(params, x, y, tag, mesh):
    """The four losses, each a global (weighted) mean over the non-padded rows."""
    h = jnp.tanh(params["embed"][x].reshape(x.shape[0], -1) @ params["hidden"])
    w, class_weight = params["head"], jnp.linspace(0.5, 2.0, VOCAB)
    if mesh is None:
        return {
            "linear": jaxent.linear_cross_entropy(h, w, y, label_smoothing=0.1, chunk_size=8),
            "softmax": jaxent.cross_entropy(h @ w.T, y, weight=class_weight, z_loss=1e-3),
            "axis_name": jaxent.cross_entropy(h @ w.T, y, logit_softcap=3.0),
            "data_parallel": jaxent.cross_entropy(h @ params["tag"], tag),
        }

    def vocab_parallel(h, w, y):  # each device: its rows, its slice of the vocabulary
        total = jaxent.cross_entropy(h @ w.T, y, logit_softcap=3.0, axis_name="model", reduction="sum")
        total, count = jax.lax.psum((total, jaxent.mean_denominator(y)), "data")
        return total / count

    on = dict(mesh=mesh, vocab_axis="model", batch_axis="data")
    specs = (P("data"), P("model"), P("data"))
    return {
        "linear": jaxent.sharded_linear_cross_entropy(h, w, y, label_smoothing=0.1, chunk_size=8, **on),
        "softmax": jaxent.sharded_cross_entropy(h @ w.T, y, weight=class_weight, z_loss=1e-3, **on),
        "axis_name": jax.shard_map(vocab_parallel, mesh=mesh, in_specs=specs, out_specs=P())(h, w, y),
        "data_parallel": jaxent.cross_entropy(h @ params["tag"], tag),  # plain jit: XLA all-reduces the sums
    }


def train(mesh=None):
    """Loss curves ``{term: [STEPS]}`` and final parameters, on ``mesh`` or (None) on one device."""
    optimizer = optax.adam(0.05)

    @jax.jit
    def step(params, opt_state, x, y, tag):
        def loss(p):
            values = terms(p, x, y, tag, mesh)
            return sum(values.values()), values

        (_, values), grads = jax.value_and_grad(loss, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, values

    if mesh is None:
        params, place = init(jax.random.key(0)), lambda a: a
    else:
        shardings = {
            k: NamedSharding(mesh, P("model") if k == "head" else P()) for k in ("embed", "hidden", "head", "tag")
        }
        params = jax.jit(init, out_shardings=shardings)(jax.random.key(0))  # each process makes its own shards
        rows = NamedSharding(mesh, P(("data", "model")))  # the batch over every device: process p holds a block
        start, stop = local_rows(rows, BATCH)
        place = lambda a: jax.make_array_from_process_local_data(rows, a[start:stop], a.shape)
    opt_state = optimizer.init(params)
    if mesh is not None:  # Adam's step count on every device, as the step returns it (else a second compile)
        opt_state = jax.tree.map(lambda a: a if a.ndim else jax.device_put(a, NamedSharding(mesh, P())), opt_state)
    curves = {name: [] for name in TERMS}
    for batch in batches():
        params, opt_state, values = step(params, opt_state, *map(place, batch))
        for name in TERMS:
            curves[name].append(float(values[name]))  # replicated on every device: readable on every process
    return {k: np.array(v) for k, v in curves.items()}, params


def local_rows(sharding, n):
    """The rows ``[start, stop)`` of an ``n``-row global batch that this process's devices hold."""
    spans = [index[0].indices(n)[:2] for index in sharding.addressable_devices_indices_map((n,)).values()]
    start, stop = min(a for a, _ in spans), max(b for _, b in spans)
    assert sum(b - a for a, b in set(spans)) == stop - start, f"this process's rows are not contiguous: {spans}"
    return start, stop


def main(coordinator, processes, process_id, devices, out):
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_num_cpu_devices", devices)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator,
        num_processes=processes,
        process_id=process_id,
        coordinator_bind_address=coordinator,  # localhost only
        initialization_timeout=60,
    )
    count = len(jax.devices())
    mesh = jax.make_mesh((2, count // 2), ("data", "model"), axis_types=(jax.sharding.AxisType.Auto,) * 2)
    curves, params = train(mesh)
    gathered = multihost_utils.process_allgather(params, tiled=True)
    np.savez(out, devices=count, **curves, **{f"param_{k}": v for k, v in gathered.items()})


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
