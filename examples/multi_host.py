"""The vocabulary-parallel language-model head of multi_device.py, trained by several processes.

Real runs are multi-process: each host runs one process that owns its devices, and
jax.distributed.initialize joins the processes into one global set of devices; collectives
then cross process boundaries (on CPUs through gloo). Here the byte-level model of
examples/multi_device.py is trained that way: a data x model mesh over every process's
devices, W [V=256, D] split along the vocabulary (jaxent.sharded_linear_cross_entropy), each
process feeding only its rows of each global batch (jax.make_array_from_process_local_data),
and padded sequences of random lengths (ignore_index, so the padding is uneven across the
processes) under the global weighted mean, accumulated over micro-batches. Process 0 also runs
the same training on one of its devices with jaxent.linear_cross_entropy, the whole batch at
once: the curves agree to float32 rounding.

On one machine, --launch N starts N local processes (localhost; 8/N CPU devices each):

    python examples/multi_host.py --launch 2 --plot curves.png

On a cluster, run one process per host, each with the coordinator's (host 0's) address:

    python examples/multi_host.py --coordinator HOST0:1234 --num-processes N --process-id I   # on host I

Under SLURM, on Cloud TPU pods, with Open MPI or on Kubernetes (JobSet), JAX finds the
coordinator, the number of processes and each process's id itself:

    srun --nodes=N --ntasks-per-node=1 python examples/multi_host.py --cluster
    gcloud compute tpus tpu-vm ssh NAME --worker=all --command="python examples/multi_host.py --cluster"

Without any of these flags it is one process on the devices there are (8 on a CPU).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm import tqdm

import jaxent

TEXT = pathlib.Path(__file__).resolve().parent / "data" / "devils_dictionary.txt"
VOCAB = 256  # bytes: divisible by any power-of-two number of vocabulary devices


def global_batches(data: np.ndarray, context: int, batch: int, sequence: int, steps: int, seed: int):
    """Each step's global batch, the same on every process: ``batch // sequence`` passages of
    ``sequence`` next-byte predictions, each cut at a random length and padded with -100."""
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        starts = rng.integers(0, len(data) - context - sequence, batch // sequence)
        positions = (starts[:, None] + np.arange(sequence)).reshape(-1)
        window = data[positions[:, None] + np.arange(context + 1)].astype(np.int32)
        lengths = rng.integers(1, sequence + 1, batch // sequence)
        padding = (np.arange(sequence) >= lengths[:, None]).reshape(-1)
        yield window[:, :-1], np.where(padding, -100, window[:, -1])


# --8<-- [start:local-rows]
def local_rows(sharding: jax.sharding.Sharding, shape: tuple[int, ...], axis: int = 0) -> slice:
    """The rows (indices along ``axis``) of a global ``shape`` array that this process's devices hold."""
    spans = {index[axis].indices(shape[axis])[:2] for index in sharding.addressable_devices_indices_map(shape).values()}
    start, stop = min(a for a, _ in spans), max(b for _, b in spans)
    assert sum(b - a for a, b in spans) == stop - start, f"this process's rows are not one block: {spans}"
    return slice(start, stop)


# --8<-- [end:local-rows]


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


def all_reduced_bytes(hlo: str) -> int:
    """Bytes that each device all-reduces in a compiled program (its text): the all-reduce operands."""
    size = {"f64": 8, "f32": 4, "s32": 4, "bf16": 2, "f16": 2}
    total = 0
    for line in hlo.splitlines():
        result = re.search(r"= (.*?) all-reduce(?:-start)?\(", line)
        for dtype, dims in re.findall(r"([a-z]+\d+)\[([\d,]*)\]", result.group(1) if result else ""):
            total += size[dtype] * int(np.prod([int(d) for d in dims.split(",") if d]))
    return total


def traffic(loss, mesh, tokens: int, dim: int) -> tuple[float, int]:
    """Bytes per token and per step that ``loss(inputs, weight, targets)`` and its gradient all-reduce on
    each device, read from the compiled programs at ``tokens`` and twice as many tokens per batch."""

    def compiled_bytes(n):
        args = (
            jax.ShapeDtypeStruct((n, dim), jnp.float32, sharding=NamedSharding(mesh, P("data"))),
            jax.ShapeDtypeStruct((VOCAB, dim), jnp.float32, sharding=NamedSharding(mesh, P("model"))),
            jax.ShapeDtypeStruct((n,), jnp.int32, sharding=NamedSharding(mesh, P("data"))),
        )
        return all_reduced_bytes(jax.jit(jax.value_and_grad(loss, (0, 1))).lower(*args).compile().as_text())

    local = tokens // mesh.shape["data"]  # tokens per device
    once, twice = compiled_bytes(tokens), compiled_bytes(2 * tokens)
    per_token = (twice - once) / local
    return per_token, round(once - per_token * local)


def launch(args) -> int:
    """Run this script as ``args.launch`` local processes; process 0 prints, the others only if one fails."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # a free port for the coordinator
        coordinator = f"127.0.0.1:{s.getsockname()[1]}"
    devices = args.cpu_devices or max(8 // args.launch, 1)
    command = [sys.executable, __file__, "--coordinator", coordinator, "--num-processes", str(args.launch)]
    command += ["--steps", str(args.steps), "--batch", str(args.batch), "--dim", str(args.dim)]
    command += [
        "--accumulate",
        str(args.accumulate),
        "--context",
        str(args.context),
        "--sequence",
        str(args.sequence),
        "--cpu-devices",
        str(devices),
    ]
    command += ["--plot", args.plot] if args.plot else []
    with contextlib.ExitStack() as stack:
        logs = [None] + [stack.enter_context(tempfile.TemporaryFile("w+")) for _ in range(1, args.launch)]
        running: list[subprocess.Popen] = []
        try:
            for i, log in enumerate(logs):  # each in a session of its own: killed below with all it started
                running.append(
                    subprocess.Popen([*command, "--process-id", str(i)], stdout=log, stderr=log, start_new_session=True)
                )
            deadline = time.monotonic() + args.timeout
            codes = [p.poll() for p in running]
            while None in codes and not any(codes) and time.monotonic() < deadline:
                time.sleep(0.1)
                codes = [p.poll() for p in running]
        finally:
            for p in running:
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        if codes == [0] * args.launch:
            return 0
        for i, log in enumerate(logs[1:], 1):
            log.seek(0)
            print(f"--- process {i}:\n{log.read()[-3000:]}", file=sys.stderr)
    print(
        f"exit codes {codes} (None: killed after another failed, or at --timeout {args.timeout:g} s)", file=sys.stderr
    )
    return 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100, help="optimizer steps (default 100)")
    parser.add_argument("--batch", type=int, default=256, help="tokens per global batch (default 256)")
    parser.add_argument("--accumulate", type=int, default=2, help="micro-batches per step (default 2)")
    parser.add_argument("--sequence", type=int, default=16, help="tokens per padded sequence (default 16)")
    parser.add_argument("--dim", type=int, default=64, help="hidden size D (default 64)")
    parser.add_argument("--context", type=int, default=4, help="previous bytes seen (default 4)")
    parser.add_argument("--plot", metavar="PATH", help="write both loss curves to this PNG")
    parser.add_argument("--launch", type=int, metavar="N", help="start N local processes and run them")
    parser.add_argument("--timeout", type=float, default=600, help="seconds before --launch kills its processes")
    parser.add_argument("--coordinator", metavar="HOST:PORT", help="process 0's address: be one of N processes")
    parser.add_argument("--num-processes", type=int, metavar="N", help="with --coordinator: how many processes")
    parser.add_argument("--process-id", type=int, metavar="I", help="with --coordinator: this process's id")
    parser.add_argument("--cluster", action="store_true", help="jax.distributed.initialize() finds the rest")
    parser.add_argument("--cpu-devices", type=int, metavar="K", help="CPU devices per process (default 8/N)")
    args = parser.parse_args(argv)
    if args.launch:
        return launch(args)

    # Before any computation: host devices and cross-process collectives for CPUs (ignored by GPUs and TPUs).
    jax.config.update("jax_num_cpu_devices", args.cpu_devices or max(8 // (args.num_processes or 1), 1))
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if args.cluster:
        jax.distributed.initialize()
    elif args.coordinator:
        local = args.coordinator.startswith(("127.", "localhost:"))  # then listen on localhost only
        jax.distributed.initialize(
            args.coordinator,
            args.num_processes,
            args.process_id,
            coordinator_bind_address=args.coordinator if local else None,
        )
    lead = jax.process_index() == 0
    say = print if lead else lambda *a, **k: None

    devices, processes = jax.device_count(), jax.process_count()
    model = next(d for d in (4, 2, 1) if devices % d == 0)  # vocabulary-parallel degree
    auto = (jax.sharding.AxisType.Auto,) * 2  # let XLA place the rest of the model
    mesh = jax.make_mesh((devices // model, model), ("data", "model"), axis_types=auto)
    named = f"{processes} process{'es' if processes > 1 else ''} x {jax.local_device_count()} devices"
    say(
        f"{named} ({jax.devices()[0].platform.upper()}): "
        f"mesh data={devices // model} x model={model}; W [{VOCAB}, {args.dim}] split along V"
    )

    micro = args.batch // args.accumulate  # tokens per micro-batch
    # --8<-- [start:process-data]
    rows = NamedSharding(mesh, P(None, "data"))  # [micro-batch, token]: tokens over "data", replicated over "model"
    mine = local_rows(rows, (args.accumulate, micro), axis=1)  # this process's tokens of every micro-batch

    def to_global(batch):  # batch [accumulate, micro, ...]: only its `mine` tokens are read here
        return jax.make_array_from_process_local_data(rows, batch[:, mine], batch.shape)

    # --8<-- [end:process-data]

    optimizer = optax.adam(1e-2)

    # --8<-- [start:accumulate]
    def sharded(h, w, y, reduction="mean"):  # W [V, D] split along V over "model", the tokens over "data"
        return jaxent.sharded_linear_cross_entropy(
            h, w, y, mesh=mesh, vocab_axis="model", batch_axis="data", reduction=reduction
        )

    def update(params, opt_state, grads):
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    @jax.jit
    def step(params, opt_state, tokens, targets):  # tokens [accumulate, micro, context], targets [accumulate, micro]
        def add(sums, batch):
            x, y = batch
            loss_sum, grads = jax.value_and_grad(lambda p: sharded(features(p, x), p["head"], y, "sum"))(params)
            return jax.tree.map(jnp.add, sums, (loss_sum, jaxent.mean_denominator(y), grads)), None

        zeros = (jnp.zeros(()), jnp.zeros(()), jax.tree.map(jnp.zeros_like, params))
        (loss_sum, count, grads), _ = jax.lax.scan(add, zeros, (tokens, targets))
        # Every sum is over all processes' tokens: the global weighted mean of the whole batch.
        loss, grads = jax.tree.map(lambda a: a / jnp.maximum(count, 1), (loss_sum, grads))
        return *update(params, opt_state, grads), loss

    # --8<-- [end:accumulate]

    per_token, per_call = traffic(sharded, mesh, micro, args.dim)
    say(
        f"per call of the loss and its gradient each device all-reduces {per_token:g} bytes per token and "
        f"{per_call} bytes more (compiled program), never a [tokens, V] array"
    )

    @jax.jit
    def single(params, opt_state, tokens, targets):  # the reference: one device, the whole batch at once
        loss_fn = lambda p: jaxent.linear_cross_entropy(features(p, tokens), p["head"], targets)
        loss, grads = jax.value_and_grad(loss_fn)(params)
        return *update(params, opt_state, grads), loss

    data = np.frombuffer(TEXT.read_bytes(), np.uint8)
    batches = lambda: global_batches(data, args.context, args.batch, args.sequence, args.steps, seed=1)
    key = jax.random.key(0)
    shardings = {
        name: NamedSharding(mesh, P("model") if name == "head" else P()) for name in ("embed", "hidden", "head")
    }
    params = jax.jit(init, static_argnums=(1, 2), out_shardings=shardings)(key, args.dim, args.context)
    # optax makes Adam's step count on one device: put it on all of them, as the step returns it.
    replicated = NamedSharding(mesh, P())
    opt_state = jax.tree.map(lambda a: a if a.ndim else jax.device_put(a, replicated), optimizer.init(params))
    losses, times, padding = [], [], []
    for tokens, targets in tqdm(batches(), total=args.steps, disable=not lead):
        tokens, targets = tokens.reshape(args.accumulate, micro, -1), targets.reshape(args.accumulate, micro)
        start = time.perf_counter()
        params, opt_state, value = step(params, opt_state, to_global(tokens), to_global(targets))
        losses.append(float(value))  # the global mean, replicated: every process can read it
        times.append(time.perf_counter() - start)
        padding.append(np.mean(targets[:, mine] == -100))

    # Every process's view, gathered: its loss curve, how much of its rows was padding, its step time.
    curves = multihost_utils.process_allgather(np.array(losses))
    padded = multihost_utils.process_allgather(np.array([np.min(padding), np.mean(padding), np.max(padding)]))
    spans = multihost_utils.process_allgather(np.array([mine.start, mine.stop]))
    step_ms = multihost_utils.process_allgather(np.array(np.median(times[1:]) * 1e3))
    if not lead:
        return 0
    # The reference: the same steps on one device of this process, on the whole batches.
    reference = jax.device_put(init(key, args.dim, args.context), jax.local_devices()[0])
    reference = [reference, optimizer.init(reference)]
    single_losses = []
    for tokens, targets in batches():
        *reference, value = single(*reference, tokens, targets)
        single_losses.append(float(value))
    a, b = curves[0], np.array(single_losses)
    for i in sorted({0, len(a) // 4, len(a) // 2, 3 * len(a) // 4, len(a) - 1}):
        print(f"step {i:4d}  {named} {a[i]:.5f}  single device {b[i]:.5f}")
    for i, ((start, stop), (least, mean, most), curve) in enumerate(zip(spans, 100 * padded, curves)):
        print(
            f"process {i}: tokens {start}:{stop} of each micro-batch, padding {mean:.0f}% ({least:.0f}-{most:.0f}% "
            f"per step); its final loss {curve[-1]:.7f}"
        )
    spread = float(np.max(np.abs(curves - a)))
    print(
        f"summary: loss {a[0]:.4f} -> {a[-1]:.4f} on {named} (model axis {model}); every process saw the same "
        f"losses (spread {spread:.1e}); {np.max(step_ms):.1f} ms per step; "
        f"max |multi-process - single device| over {len(a)} steps = {float(np.max(np.abs(a - b))):.2e}"
    )
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(a, label=named)
        ax.plot(b, "--", label="one device")
        ax.set(xlabel="step", ylabel="cross-entropy (nats/byte)", title="The same training across processes")
        ax.legend()
        fig.savefig(args.plot, dpi=100, bbox_inches="tight")
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
