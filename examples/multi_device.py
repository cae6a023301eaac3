"""A byte-level language-model head trained with vocabulary parallelism over several devices.

The output matrix W [V=256, D] is split along the vocabulary over the mesh axis "model"
(Megatron-style vocabulary parallelism) and the tokens along "data";
jaxent.sharded_linear_cross_entropy runs linear_cross_entropy(..., axis_name="model")
under jax.shard_map, so no device ever holds the whole W or any [tokens, V] logits: only
per-token maxima and sums cross devices, and d W stays sharded. The same model is trained
on one device with jaxent.linear_cross_entropy from the same initial parameters, and the
two loss curves are printed side by side: they agree to float32 rounding.

On a CPU the script makes 8 host devices (a 2 x 4 data x model mesh); on GPUs or TPUs it
uses the devices there are. The text is examples/data/devils_dictionary.txt (public domain).

    python examples/multi_device.py --steps 200 --plot curves.png
"""

from __future__ import annotations

import argparse
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm import tqdm

import jaxent

# Before any computation: 8 host devices when running on a CPU (ignored by GPUs and TPUs).
jax.config.update("jax_num_cpu_devices", 8)

TEXT = pathlib.Path(__file__).resolve().parent / "data" / "devils_dictionary.txt"
VOCAB = 256  # bytes: divisible by any power-of-two number of vocabulary devices


def batches(data: np.ndarray, context: int, batch: int, steps: int, seed: int):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        starts = rng.integers(0, len(data) - context - 1, batch)
        window = data[starts[:, None] + np.arange(context + 1)]
        yield jnp.asarray(window[:, :-1], jnp.int32), jnp.asarray(window[:, -1], jnp.int32)


def init(key, dim: int, context: int):
    k1, k2, k3 = jax.random.split(key, 3)
    return {
        "embed": jax.random.normal(k1, (VOCAB, dim)) * 0.5,
        "hidden": jax.random.normal(k2, (context * dim, dim)) / np.sqrt(context * dim),
        "head": jax.random.normal(k3, (VOCAB, dim)) / np.sqrt(dim),
    }


def features(params, tokens):
    e = params["embed"][tokens].reshape(tokens.shape[0], -1)
    return jax.nn.gelu(e @ params["hidden"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200, help="optimizer steps (default 200)")
    parser.add_argument("--batch", type=int, default=512, help="tokens per step (default 512)")
    parser.add_argument("--dim", type=int, default=64, help="hidden size D (default 64)")
    parser.add_argument("--context", type=int, default=4, help="previous bytes seen (default 4)")
    parser.add_argument("--plot", metavar="PATH", help="write both loss curves to this PNG")
    args = parser.parse_args(argv)

    devices = len(jax.devices())
    model = next(d for d in (4, 2, 1) if devices % d == 0)  # vocabulary-parallel degree
    auto = (jax.sharding.AxisType.Auto,) * 2  # let XLA place the rest of the model
    mesh = jax.make_mesh((devices // model, model), ("data", "model"), axis_types=auto)
    print(f"{devices} devices: mesh data={devices // model} x model={model}; W [{VOCAB}, {args.dim}] split along V")

    data = np.frombuffer(TEXT.read_bytes(), np.uint8)
    optimizer = optax.adam(3e-3)

    def make_step(loss):
        @jax.jit
        def step(params, opt_state, tokens, targets):
            value, grads = jax.value_and_grad(lambda p: loss(features(p, tokens), p["head"], targets))(params)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, value

        return step

    sharded = make_step(
        lambda h, w, y: jaxent.sharded_linear_cross_entropy(
            h, w, y, mesh=mesh, vocab_axis="model", batch_axis="data", label_smoothing=0.05
        )
    )
    single = make_step(lambda h, w, y: jaxent.linear_cross_entropy(h, w, y, label_smoothing=0.05))

    params = init(jax.random.key(0), args.dim, args.context)
    placed = dict(params, head=jax.device_put(params["head"], NamedSharding(mesh, P("model"))))
    runs = {"sharded": [placed, optimizer.init(placed), []], "single": [params, optimizer.init(params), []]}
    steps = {"sharded": sharded, "single": single}
    for tokens, targets in tqdm(batches(data, args.context, args.batch, args.steps, 1), total=args.steps):
        for name, run in runs.items():
            run[0], run[1], value = steps[name](run[0], run[1], tokens, targets)
            run[2].append(float(value))

    a, b = np.array(runs["sharded"][2]), np.array(runs["single"][2])
    for i in sorted({0, len(a) // 4, len(a) // 2, 3 * len(a) // 4, len(a) - 1}):
        print(f"step {i:4d}  sharded {a[i]:.5f}  single-device {b[i]:.5f}")
    shard_of_head = runs["sharded"][0]["head"].addressable_shards[0].data.shape
    print(f"each device holds a {shard_of_head} slice of W (and of its gradient and Adam moments)")
    gap = float(np.max(np.abs(a - b)))
    print(
        f"summary: loss {a[0]:.4f} -> {a[-1]:.4f} on {devices} devices (model axis {model}); "
        f"max |sharded - single| over {len(a)} steps = {gap:.2e}"
    )
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(a, label=f"vocabulary-parallel ({devices} devices)")
        ax.plot(b, "--", label="single device")
        ax.set(xlabel="step", ylabel="cross-entropy (nats/byte)", title="Same training, sharded or not")
        ax.legend()
        fig.savefig(args.plot, dpi=100, bbox_inches="tight")
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
