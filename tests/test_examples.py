"""The examples and notebooks run as users run them, and still teach what they claim.

Each example runs in a fresh Python process (no x64, default dtype promotion: as a user
runs it) on the checkout's jaxent, and its printed ``summary:`` line is checked; each
notebook is executed top to bottom in a fresh Jupyter kernel. They need the ``examples``
extra (scikit-learn, matplotlib, tqdm) and the ``test`` extra (nbclient, ipykernel).
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import re
import struct
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
NEEDED = ("sklearn", "matplotlib", "tqdm", "nbclient", "nbformat", "ipykernel")


@pytest.fixture(scope="module", autouse=True)
def _requirements():
    missing = [name for name in NEEDED if importlib.util.find_spec(name) is None]
    if missing:
        pytest.fail(f"the examples and notebooks need {missing}: pip install '.[test,examples]'")


def _env() -> dict[str, str]:
    """The caller's environment, with the checkout first on the path and a headless matplotlib."""
    env = dict(os.environ, MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    for name in ("JAX_ENABLE_X64", "JAX_NUMPY_DTYPE_PROMOTION", "JAX_NUMPY_RANK_PROMOTION"):
        env.pop(name, None)
    return env


def run_example(name: str, *args: str, cwd: pathlib.Path, progress_bar: bool = True) -> tuple[str, str]:
    """Run ``examples/<name>`` with ``args``; return its stdout and its ``summary:`` line."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), *args],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=cwd,
        timeout=600,
    )
    assert result.returncode == 0, f"{name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    summaries = re.findall(r"^summary: (.*)$", result.stdout, re.M)
    assert len(summaries) == 1, f"{name} should print one 'summary:' line:\n{result.stdout[-3000:]}"
    if progress_bar:
        assert "100%" in result.stderr, f"{name} should show a tqdm progress bar on stderr"
    return result.stdout, summaries[0]


def number(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not found in {text!r}"
    return float(match.group(1))


def assert_png(path: pathlib.Path) -> None:
    """A real PNG image of a plausible size: the signature, then the IHDR width and height."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 300 and height >= 200 and len(data) > 10_000, (width, height, len(data))


def test_every_example_has_help_and_is_listed_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    names = [path.name for path in EXAMPLES]
    assert {"logistic_regression.py", "digits_classifier.py", "svm.py", "tiny_language_model.py"} <= set(names)
    processes = [
        subprocess.Popen([sys.executable, str(path), "--help"], stdout=subprocess.PIPE, text=True, env=_env())
        for path in EXAMPLES
    ]
    for path, process in zip(EXAMPLES, processes):
        out, _ = process.communicate(timeout=300)
        assert process.returncode == 0 and out.startswith("usage:"), (path.name, out)
        if path.name != "quickstart.py":
            assert "--plot PATH" in out, path.name
        assert f"examples/{path.name}" in readme, f"README.md should link examples/{path.name}"
    for notebook in NOTEBOOKS:
        assert f"notebooks/{notebook.name}" in readme, f"README.md should link notebooks/{notebook.name}"


def test_quickstart(tmp_path):
    # The quickstart predates the progress-bar convention: it prints every 100 steps instead.
    _, summary = run_example("quickstart.py", "--steps", "200", cwd=tmp_path, progress_bar=False)
    assert number(r"train accuracy ([\d.]+)%", summary) > 90


def test_logistic_regression(tmp_path):
    out, summary = run_example("logistic_regression.py", "--plot", "curves.png", cwd=tmp_path)
    assert number(r"test accuracy ([\d.]+)", summary) > 0.95
    assert number(r"train accuracy ([\d.]+)", summary) > 0.95
    # BCE on logits and the Bernoulli NLL are the same loss: the same curve to float32 rounding.
    assert number(r"curve gap ([\d.e+-]+)", summary) < 1e-5
    assert number(r"loss after \d+ steps: train ([\d.]+)", out) < 0.1
    assert_png(tmp_path / "curves.png")


def test_digits_classifier(tmp_path):
    # README's example command runs the defaults; here label smoothing (default 0.1) and class weights together.
    args = ("--epochs", "20", "--class-weights", "balanced", "--plot", "digits.png")
    out, summary = run_example("digits_classifier.py", *args, cwd=tmp_path)
    assert number(r"test accuracy ([\d.]+)", summary) > 0.95
    # The weighted mean of the vmapped per-example gradients is the batch gradient.
    assert number(r"largest difference ([\d.e+-]+)", out) < 1e-5
    assert number(r"gradient norm median ([\d.e+-]+)", summary) < number(r"max ([\d.e+-]+)", summary)
    assert_png(tmp_path / "digits.png")


def test_svm(tmp_path):
    out, summary = run_example("svm.py", "--plot", "svm.png", cwd=tmp_path)
    for name in ("multi_margin_loss", "multiclass_hinge_loss", "cross_entropy"):
        assert number(rf"{name} ([\d.]+)", summary) > 0.93, name
    # Hinge losses are exactly zero beyond the margin (few support vectors); cross-entropy never is.
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.endswith("%")}
    assert float(rows["multi_margin_loss"][-1].rstrip("%")) < 60
    assert float(rows["multiclass_hinge_loss"][-1].rstrip("%")) < 60
    assert float(rows["cross_entropy"][-1].rstrip("%")) == 100
    assert_png(tmp_path / "svm.png")


def test_ctc_alignment(tmp_path):
    _, summary = run_example("ctc_alignment.py", "--steps", "250", "--plot", "ctc.png", cwd=tmp_path)
    # Learned from unsegmented frames: greedy decoding reads most held-out sequences exactly.
    assert number(r"test loss ([\d.]+)", summary) < number(r"first loss ([\d.]+)", summary) / 10
    assert number(r"greedy decoding exact ([\d.]+)", summary) > 0.8
    assert number(r"label error rate ([\d.]+)", summary) < 0.1
    assert_png(tmp_path / "ctc.png")


def test_tiny_language_model(tmp_path):
    out, summary = run_example(
        "tiny_language_model.py", "--steps", "300", "--sample", "40", "--plot", "lm.png", cwd=tmp_path
    )
    # Well below the unigram entropy: the model uses its context.
    assert number(r"validation loss ([\d.]+) nats", summary) < number(r"unigram baseline ([\d.]+)", summary) - 0.5
    # The fused loss never holds the 4096 x 131072 logits (2.1 GB); the materialised one does.
    fused, materialised = number(r"fused ([\d.]+) MB", summary), number(r"materialised ([\d.]+) MB", summary)
    assert materialised > 4096 * 131072 * 4 / 1e6 and fused < materialised / 20
    assert "sample (temperature 0.7):\nLOVE, n." in out
    assert_png(tmp_path / "lm.png")


def test_multi_device(tmp_path):
    _, summary = run_example("multi_device.py", "--steps", "60", "--plot", "md.png", cwd=tmp_path)
    assert "on 8 devices (model axis 4)" in summary
    assert number(r"loss ([\d.]+) ->", summary) - number(r"-> ([\d.]+) on", summary) > 1.0
    assert number(r"= ([\d.e+-]+)$", summary) < 1e-4  # sharded and single-device runs agree
    assert_png(tmp_path / "md.png")


def test_multi_host(tmp_path):
    out, summary = run_example("multi_host.py", "--launch", "2", "--steps", "30", "--plot", "mh.png", cwd=tmp_path)
    assert "on 2 processes x 4 devices (model axis 4)" in summary
    assert "every process saw the same losses (spread 0.0e+00)" in summary
    assert number(r"loss ([\d.]+) ->", summary) - number(r"-> ([\d.]+) on", summary) > 1.0
    # Two micro-batches, each split over both processes: the same steps as one device on the whole batch.
    assert number(r"= ([\d.e+-]+)$", summary) < 1e-4
    assert "process 0: tokens 0:64 of each micro-batch" in out and "process 1: tokens 64:128" in out
    # Per token: d inputs (4 * D bytes) and a few float32 statistics, nothing that grows with V = 256.
    assert number(r"all-reduces ([\d.]+) bytes per token", out) <= 4 * 64 + 32
    assert_png(tmp_path / "mh.png")


def test_shipped_text_is_documented():
    text = (ROOT / "examples" / "data" / "devils_dictionary.txt").read_bytes()
    assert 100_000 < len(text) < 500_000 and text.isascii()
    assert b"A Public Domain Text, Copyright Expired" in text
    notes = (ROOT / "examples" / "data" / "README.md").read_text()
    assert "devils_dictionary.txt" in notes and "public domain" in notes.lower()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook(path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    stored = nbformat.read(path, as_version=4)
    code = [cell for cell in stored.cells if cell.cell_type == "code"]
    # Stored with its outputs (so it renders on GitHub), in order, from a fresh kernel.
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1)), path.name
    assert any("image/png" in output.get("data", {}) for cell in code for output in cell.outputs), path.name
    assert not [output for cell in code for output in cell.outputs if output.output_type == "error"], path.name

    # The kernel inherits this environment: the checkout's jaxent, JAX's default configuration.
    monkeypatch.setenv("PYTHONPATH", _env()["PYTHONPATH"])
    for name in ("JAX_ENABLE_X64", "JAX_NUMPY_DTYPE_PROMOTION", "JAX_NUMPY_RANK_PROMOTION", "MPLBACKEND"):
        monkeypatch.delenv(name, raising=False)
    executed = nbformat.from_dict(json.loads(json.dumps(stored)))
    client = NotebookClient(
        executed, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()  # raises CellExecutionError, with the cell and its traceback, if any cell fails
    images = [
        o
        for cell in executed.cells
        if cell.cell_type == "code"
        for o in cell.outputs
        if "image/png" in o.get("data", {})
    ]
    assert len(images) >= 1, f"{path.name}: no plot rendered"
