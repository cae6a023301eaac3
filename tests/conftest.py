"""Test configuration: float64 available, strict promotion, seeded keys, the torch oracle."""

import collections
import os

import jax
import pytest

# Eight CPU devices for the multi-device tests (must precede any JAX computation);
# every other test runs on the default device 0.
jax.config.update("jax_num_cpu_devices", 8)
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture(scope="session")
def torch():
    """PyTorch (CPU), the oracle for every option it has; skipped when absent unless required."""
    try:
        import torch
    except ImportError:
        if os.environ.get("JAXENT_REQUIRE_TORCH") == "1":
            pytest.fail("JAXENT_REQUIRE_TORCH=1 but PyTorch is not installed: pip install 'jaxent[test]'")
        pytest.skip("PyTorch is not installed: pip install 'jaxent[test]' (torch 2.13; README.md: the CPU build)")
    torch.set_default_dtype(torch.float64)
    return torch


# The fast subset, python -m pytest -m "not slow" -n 2: a couple of minutes on two CPU cores,
# and every test file still runs. By a rule, so that new test files follow it: a test is slow
# when its file is in SLOW_FILES, its name in SLOW_TESTS, its name contains one of SLOW_WORDS
# (the heavy compiles: second-order gradient checks, memory bounds, backend programs, property
# tests), it is a parametrized case past the first of its test function, or its file already
# has FAST_PER_FILE fast tests before it (a file's first tests are its golden values and parity
# checks). CI runs everything: the README's test command has no -m.
SLOW_FILES = {"test_examples.py", "test_multihost.py"}
SLOW_TESTS = {"test_site_builds_strict", "test_family_benchmark_prints_one_table_row_per_loss_and_option"}
SLOW_WORDS = (
    "temp_memory",
    "memory_bound",
    "check_grads",
    "higher_orders",
    "second_order",
    "forward_mode",
    "hessian",
    "backend_neutral",
    "accelerator_programs",
    "property",
    "checkpoint",
    "long_rows",
    "sharding",
    "gradients_match_reference",
    "autodiff_table",
    "page_examples",
    "every_option",
    "transforms",
)
FAST_PER_FILE = 3


def pytest_collection_modifyitems(config, items):
    functions: set[tuple[str, str]] = set()
    fast: collections.Counter[str] = collections.Counter()
    for item in items:
        name = getattr(item, "originalname", None) or item.name
        function = (item.path.name, name)
        slow = (
            item.path.name in SLOW_FILES
            or name in SLOW_TESTS
            or any(word in name for word in SLOW_WORDS)
            or function in functions
            or fast[item.path.name] >= FAST_PER_FILE
        )
        functions.add(function)
        if slow:
            item.add_marker(pytest.mark.slow)
        else:
            fast[item.path.name] += 1
