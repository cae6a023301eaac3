"""Test configuration: float64 available, strict promotion, seeded keys, the torch oracle."""

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
        pytest.skip("PyTorch is not installed; pip install 'jaxent[test]' (torch==2.13.0) for the parity tests")
    torch.set_default_dtype(torch.float64)
    return torch
