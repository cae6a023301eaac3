"""Command line: ``python -m jaxent.bench BENCHMARK [options]``.

Each benchmark times forward+backward of jaxent against optax (and PyTorch when it is
installed) alternately in one process and prints a table, one line per row as it is
measured, with the ratios and compiled memory.
"""

from __future__ import annotations

import argparse
from typing import Any

import jax

from jaxent.bench import _timing, cross_entropy, family, linear_cross_entropy, sharded

BENCHMARKS = {
    "cross_entropy": cross_entropy,
    "family": family,
    "linear_cross_entropy": linear_cross_entropy,
    "sharded": sharded,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m jaxent.bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("benchmark", choices=sorted(BENCHMARKS))
    parser.add_argument(
        "--repeats", type=int, help="timed runs per contender, median reported (default: per benchmark)"
    )
    parser.add_argument("--shapes", nargs="+", help="; ".join(f"{k}: {m.SHAPE_HELP}" for k, m in BENCHMARKS.items()))
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch even when it is installed")
    parser.add_argument(
        "--quick", action="store_true", help=f"family: {family.QUICK_REPEATS} repeats, shapes 256x10 and 4096x1000"
    )
    parser.add_argument("--rows", metavar="SUBSTR", help="family: only the rows whose name or dtype contains SUBSTR")
    args = parser.parse_args(argv)
    if (args.quick or args.rows) and args.benchmark != "family":
        parser.error("--quick and --rows apply to the family benchmark only")
    module = BENCHMARKS[args.benchmark]
    if args.benchmark == "sharded":
        jax.config.update("jax_num_cpu_devices", 8)  # on a CPU: 8 host devices (before any computation)
    options: dict[str, Any] = {"repeats": args.repeats} if args.repeats else {}
    if args.shapes:
        options["shapes"] = [module.parse_shape(s) for s in args.shapes]
    if args.benchmark == "family":
        options.update(quick=args.quick, rows=args.rows)
    print(f"# {args.benchmark}: forward+backward, medians of alternating runs | {_timing.hardware()}")
    module.run(torch=not args.no_torch, **options)  # prints its table, one line per row


if __name__ == "__main__":
    main()
