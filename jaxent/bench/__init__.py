"""Benchmarks that compare jaxent with optax (and PyTorch when installed) in one process.

Run ``python -m jaxent.bench --help``. Times are medians of repeated
``jax.block_until_ready`` runs after a warm-up, taken alternately so that machine noise
hits every contender alike; what to read is the ratio, not the bare time. Memory is the
compiled program's ``temp_size_in_bytes``, which is deterministic.
"""
