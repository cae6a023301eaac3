"""Command line: ``python -m jaxent.bench BENCHMARK [options]``.

Each benchmark times forward+backward of jaxent against optax (and PyTorch when it is
installed) alternately in one process and prints the ratios and compiled memory.
"""

from __future__ import annotations

import argparse

import jax

from jaxent.bench import _timing, cross_entropy, linear_cross_entropy, sharded

BENCHMARKS = {"cross_entropy": cross_entropy, "linear_cross_entropy": linear_cross_entropy, "sharded": sharded}


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
    args = parser.parse_args(argv)
    module = BENCHMARKS[args.benchmark]
    if args.benchmark == "sharded":
        jax.config.update("jax_num_cpu_devices", 8)  # on a CPU: 8 host devices (before any computation)
    shapes = [module.parse_shape(s) for s in args.shapes] if args.shapes else module.DEFAULT_SHAPES
    options = {"repeats": args.repeats} if args.repeats else {}
    print(f"# {args.benchmark}: forward+backward, medians of alternating runs | {_timing.hardware()}")
    rows = module.run(shapes=shapes, torch=not args.no_torch, **options)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    print(_timing.table(rows, columns))


if __name__ == "__main__":
    main()
