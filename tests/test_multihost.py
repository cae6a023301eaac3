"""Many hosts: 2 and 4 local processes joined by ``jax.distributed`` train like one device.

Each process (tests/multihost_worker.py, a fresh Python) owns 2 CPU devices; gloo carries the
collectives between processes over localhost. Together they train a small model with
``sharded_linear_cross_entropy``, ``sharded_cross_entropy``, ``cross_entropy(axis_name=)`` in a
``shard_map`` and plain data-parallel ``cross_entropy``, on batches whose ``ignore_index``
padding is uneven across processes, and every process's loss curves and final parameters must
equal the single-device run of the same steps (float64, computed here). Every process has a
deadline and is killed, with its process group, whatever happens.
"""

from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxent
from tests import multihost_worker as worker

ROOT = pathlib.Path(__file__).resolve().parent.parent
TIMEOUT = 120  # seconds for a whole run, start-up and compilation included


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(processes: int, devices: int, folder: pathlib.Path) -> list[pathlib.Path]:
    """Run the worker as ``processes`` local processes; return their result files."""
    address = f"127.0.0.1:{free_port()}"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    for name in ("XLA_FLAGS", "JAX_PLATFORMS", "JAX_ENABLE_X64", "JAX_NUMPY_DTYPE_PROMOTION"):
        env.pop(name, None)
    outs, logs, running = [folder / f"{i}.npz" for i in range(processes)], [], []
    try:
        for i in range(processes):
            logs.append(open(folder / f"{i}.log", "w+"))  # noqa: SIM115 (closed below)
            command = [sys.executable, str(ROOT / "tests" / "multihost_worker.py"), address]
            command += [str(processes), str(i), str(devices), str(outs[i])]
            running.append(
                subprocess.Popen(command, stdout=logs[i], stderr=subprocess.STDOUT, env=env, start_new_session=True)
            )
        deadline = time.monotonic() + TIMEOUT
        while True:
            codes = [p.poll() for p in running]
            # Done, or one failed (the others would wait for it until their own timeouts), or out of time.
            if None not in codes or any(codes) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    finally:
        for p in running:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)  # the worker and anything it started
            p.wait()
        for log in logs:
            log.seek(0)
        text = [log.read()[-2000:] for log in logs]
        for log in logs:
            log.close()
    report = "\n".join(f"--- process {i} (exit {c}):\n{t}" for i, (c, t) in enumerate(zip(codes, text)))
    assert codes == [0] * processes, f"{processes} processes: exit codes {codes} (None: killed)\n{report}"
    return outs


@pytest.fixture(scope="module")
def reference():
    # As the workers run it: float64, NumPy-style promotion (optax's update code needs it), one device.
    with jax.enable_x64(True), jax.numpy_dtype_promotion("standard"):
        curves, params = worker.train(mesh=None)
    return curves, {k: np.asarray(v) for k, v in params.items()}


@pytest.mark.parametrize("processes", [2, 4])
def test_processes_train_like_one_device(processes, reference, tmp_path):
    curves, params = reference
    for i, out in enumerate(launch(processes, 2, tmp_path)):
        with np.load(out) as got:
            assert int(got["devices"]) == 2 * processes
            for name in worker.TERMS:
                np.testing.assert_allclose(got[name], curves[name], rtol=0, atol=1e-6, err_msg=f"process {i}: {name}")
            for name, value in params.items():
                got_value = got[f"param_{name}"]
                np.testing.assert_allclose(got_value, value, rtol=0, atol=1e-6, err_msg=f"process {i}: {name}")
    assert curves["linear"][-1] < curves["linear"][0] - 0.5  # it learns: the parameters move


def test_padding_is_uneven_enough_to_matter():
    # Averaging per-process means instead of the global weighted mean would miss by far more than 1e-6.
    _, y, _ = next(worker.batches())
    with jax.enable_x64(True):
        logits = jax.random.normal(jax.random.key(1), (worker.BATCH, worker.VOCAB))
        halves = [jaxent.cross_entropy(logits[s], y[s]) for s in (slice(0, 16), slice(16, 32))]
        assert jaxent.mean_denominator(jnp.asarray(y[:8])) == 0  # step 0: rows 0:8 (first process) all padding
        assert abs(float(jaxent.cross_entropy(logits, y)) - float(sum(halves) / 2)) > 1e-2
