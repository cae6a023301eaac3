"""Shared timing and reporting helpers for the benchmarks."""

from __future__ import annotations

import math
import platform
import statistics
import time
from collections.abc import Callable, Hashable, Mapping
from typing import Any, TypeVar

import jax


def temp_bytes(fn: Callable[..., Any], *args: Any) -> int:
    """Temporary memory of ``jax.jit(fn)`` compiled for ``args`` (deterministic, per device)."""
    return memory_bytes(fn, *args)[0]


def memory_bytes(fn: Callable[..., Any], *args: Any) -> tuple[int, int]:
    """(temporary, argument) bytes per device of ``jax.jit(fn)`` compiled for ``args`` (-1: unknown)."""
    analysis = jax.jit(fn).lower(*args).compile().memory_analysis()
    if analysis is None:
        return -1, -1
    return int(analysis.temp_size_in_bytes), int(analysis.argument_size_in_bytes)


K = TypeVar("K", bound=Hashable)


def alternate(
    contenders: Mapping[K, Callable[[], Any]], repeats: int, warmup: int = 1, sample_s: float = 2e-3
) -> dict[K, float]:
    """Median seconds per call of each contender, timed round-robin after a warm-up.

    A sample is a run of back-to-back calls (the same number for every contender) lasting at
    least ``sample_s`` for the fastest one, so that sub-millisecond calls are not timed at
    the resolution of the clock and the dispatcher's jitter.
    """
    for _ in range(warmup):
        for run in contenders.values():
            jax.block_until_ready(run())
    fastest = float("inf")
    for run in contenders.values():  # one timed call each, after the compiles, sizes the samples
        start = time.perf_counter()
        jax.block_until_ready(run())
        fastest = min(fastest, time.perf_counter() - start)
    calls = max(1, min(1000, math.ceil(sample_s / max(fastest, 1e-9))))
    times: dict[K, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, run in contenders.items():
            start = time.perf_counter()
            for _ in range(calls - 1):
                run()
            jax.block_until_ready(run())
            times[name].append((time.perf_counter() - start) / calls)
    return {name: statistics.median(ts) for name, ts in times.items()}


def hardware() -> str:
    devices = jax.devices()
    kind = devices[0].device_kind if devices else "?"
    return f"{platform.processor() or platform.machine()} | jax {jax.__version__} on {len(devices)} x {kind}"


class Table:
    """A table printed as it grows: the header with the first row, then one aligned line per row.

    Columns are the first row's keys; each is as wide as its name, the first row's value and
    ``widths`` (a hint for values that grow later). The first column is left-aligned.
    """

    def __init__(self, widths: Mapping[str, int] | None = None) -> None:
        self.widths: dict[str, int] = dict(widths or {})
        self.columns: list[str] = []

    def _line(self, values: list[str]) -> str:
        cells = [
            v.ljust(self.widths[c]) if i == 0 else v.rjust(self.widths[c])
            for i, (c, v) in enumerate(zip(self.columns, values))
        ]
        return "  ".join(cells).rstrip()

    def add(self, row: Mapping[str, Any]) -> None:
        if not self.columns:
            self.columns = list(row)
            self.widths = {c: max(len(c), len(str(row[c])), self.widths.get(c, 0)) for c in self.columns}
            print(self._line(self.columns))
            print(self._line(["-" * self.widths[c] for c in self.columns]))
        print(self._line([str(row.get(c, "")) for c in self.columns]), flush=True)
