"""The README's quickstart, the main example and the benchmark command keep working."""

import pathlib
import re

import jax
import jax.numpy as jnp
import pytest

import jaxent
from jaxent.bench import family
from jaxent.bench.__main__ import RUN_TIMES
from jaxent.bench.__main__ import main as bench_main

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_readme_quickstart_runs_learns_and_prints(capsys):
    readme = (ROOT / "README.md").read_text()
    code = re.search(r"## Quickstart\s+```python\n(.*?)```", readme, re.S).group(1)
    namespace: dict = {}
    # As a user runs it: float32, NumPy-style promotion (optax's own update code needs it).
    with jax.enable_x64(False), jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        exec(compile(code, "README.md", "exec"), namespace)
        first = jaxent.cross_entropy(
            namespace["x"] @ jnp.zeros_like(namespace["params"]), namespace["y"], label_smoothing=0.1
        )
    assert float(namespace["loss"]) < float(first)
    # It prints the loss before and after training, the figures the README's prose quotes.
    before, after = (float(v) for v in re.findall(r"^loss [^:]+:\s+([\d.]+)$", capsys.readouterr().out, re.M))
    assert before == round(float(first), 4) and after == round(float(namespace["loss"]), 4)
    prose = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0].split("```", 2)[2]
    assert f"`{before:.4f}`" in prose and f"`{after:.4f}`" in prose


def test_readme_lists_every_public_function():
    readme = (ROOT / "README.md").read_text()
    for name in jaxent.__all__:
        assert f"`{name}" in readme, name


def test_benchmark_command_prints_ratios(capsys):
    bench_main(["cross_entropy", "--repeats", "2", "--shapes", "8x100", "8x100xbfloat16"])
    out = capsys.readouterr().out
    assert "jaxent/optax" in out and "optax temp MB" in out
    assert out.count("jaxent/optax") == 1 and "{" not in out  # one table, no row dicts
    assert len(re.findall(r"^\s*8\s+100\s", out, re.M)) == 2


def test_benchmark_help_is_plain_text_and_states_each_quick_run(capsys):
    with pytest.raises(SystemExit):
        bench_main(["--help"])
    out = capsys.readouterr().out
    assert "``" not in out and ":func:" not in out and "--quick" in out
    for name in RUN_TIMES:  # shapes, repeats and wall time of the default and the quick run
        assert re.search(
            rf"^  {name}\n    default: .+ repeats; .+\n    --quick: .+ repeats; about \d+ (s|min)$", out, re.M
        )


def test_linear_and_sharded_benchmarks_print_their_ratios(capsys):
    bench_main(["linear_cross_entropy", "--repeats", "1", "--no-torch", "--shapes", "16x8x64"])
    out = capsys.readouterr().out
    for column in ("jaxent/naive", "vocab/naive", "tokens/naive", "filtered/tokens", "skipped", "jaxent temp %naive"):
        assert column in out, column
    assert len(re.findall(r"^16\s+8\s+64\s+float32\s+(random|zipf|stats)\s", out, re.M)) == 3
    bench_main(["sharded", "--repeats", "1", "--shapes", "16x8x64"])
    out = capsys.readouterr().out
    assert "temp MB per device" in out and len(re.findall(r"^\s*\S*cross_entropy\s+16\s+8\s+64\s", out, re.M)) == 8


def test_family_benchmark_prints_one_table_row_per_loss_and_option(capsys):
    # As a user runs it: default float32 and NumPy-style promotion (the suite runs strict x64),
    # which optax's own code (e.g. its float one-hot labels) needs.
    with jax.enable_x64(False), jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        bench_main(["family", "--shapes", "8x5", "--repeats", "1"])
    out = capsys.readouterr().out
    assert out.count("jaxent/peer") == 1 and "peer temp MB" in out and "{" not in out
    for row in family.ROWS:
        dtype = {"float32": "f32", "bfloat16": "bf16"}[row.dtype]
        cells = rf"^{re.escape(row.name)}\s+8x5\s+{dtype}\s+[\d.]+\s+{re.escape(row.peer_name)}\s+[\d.]+\s+\d+\.\d\d\s"
        assert re.search(cells, out, re.M), (row.name, row.dtype)
    assert len(re.findall(r"\s8x5\s", out)) == len(family.ROWS)
    assert {r.name.split()[0].split("(")[0] for r in family.ROWS} >= {
        # ctc_loss takes sequences, not [N, C] rows: it has its own benchmark, python -m jaxent.bench ctc.
        n
        for n in jaxent.__all__
        if n.islower() and not n.startswith(("linear", "sharded", "mean", "ctc"))
    }
