"""The one table of per-dtype tolerances used by every test."""

import jax.numpy as jnp
import numpy as np

# Loss values are computed in float32 for every input of at most 32 bits, so their
# tolerance is float32's; gradients come back in the input dtype and use its own.
LOSS = {
    jnp.dtype(jnp.float64): dict(rtol=1e-12, atol=1e-12),
    jnp.dtype(jnp.float32): dict(rtol=2e-6, atol=2e-6),
    jnp.dtype(jnp.bfloat16): dict(rtol=2e-6, atol=2e-6),
    jnp.dtype(jnp.float16): dict(rtol=2e-6, atol=2e-6),
}
GRAD = {
    jnp.dtype(jnp.float64): dict(rtol=1e-10, atol=1e-12),
    jnp.dtype(jnp.float32): dict(rtol=2e-5, atol=2e-6),
    jnp.dtype(jnp.bfloat16): dict(rtol=2**-7, atol=2**-12),
    jnp.dtype(jnp.float16): dict(rtol=2**-10, atol=2**-16),
}
# Parity with another float32/float64 implementation (PyTorch, optax): allow for its own rounding.
PARITY = dict(rtol=1e-5, atol=1e-6)


def assert_close(actual, expected, tol):
    np.testing.assert_allclose(np.asarray(actual, np.float64), np.asarray(expected, np.float64), **tol)
