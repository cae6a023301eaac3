"""Command line: ``python -m jaxent.bench BENCHMARK [options]``."""

from __future__ import annotations

import argparse

from jaxent.bench import _timing, cross_entropy

BENCHMARKS = {"cross_entropy": cross_entropy}


def _shape(text: str) -> tuple[int, int, str]:
    n, v, *dtype = text.split("x")
    return int(n), int(v), dtype[0] if dtype else "float32"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m jaxent.bench", description=__doc__)
    parser.add_argument("benchmark", choices=sorted(BENCHMARKS))
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per contender (median reported)")
    parser.add_argument("--shapes", type=_shape, nargs="+", help="NxV[xdtype] shapes, e.g. 4096x32000xbfloat16")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch even when it is installed")
    args = parser.parse_args(argv)
    module = BENCHMARKS[args.benchmark]
    print(f"# {args.benchmark}: forward+backward, median of {args.repeats} alternating runs | {_timing.hardware()}")
    rows = module.run(shapes=args.shapes or module.DEFAULT_SHAPES, repeats=args.repeats, torch=not args.no_torch)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    print(_timing.table(rows, columns))


if __name__ == "__main__":
    main()
