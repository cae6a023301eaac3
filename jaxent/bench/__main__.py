"""Command line: python -m jaxent.bench BENCHMARK [options].

Each benchmark times forward+backward (jax.value_and_grad of the mean loss) of jaxent
against optax, or the plain jnp composition, and PyTorch when it is installed,
alternately in one process, and prints one table, a line per row as it is measured,
with the time ratios and the compiled temporary memory. Ratios are what to read; the
bare times depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import inspect
from typing import Any

import jax

try:
    from jaxent.bench import _timing, cross_entropy, ctc, family, linear_cross_entropy, sharded
except ModuleNotFoundError as error:  # optax is the peer of every benchmark, and not a dependency of jaxent
    if error.name != "optax":
        raise
    raise SystemExit('python -m jaxent.bench needs optax: pip install "jaxent[bench]" (or pip install optax)') from None

BENCHMARKS = {
    "cross_entropy": cross_entropy,
    "ctc": ctc,
    "family": family,
    "linear_cross_entropy": linear_cross_entropy,
    "sharded": sharded,
}


# Wall time of a run on this project's 2-core CPU machines with other work running beside it
# (compiling dominates the quick runs); measured with the command, rerun to update.
RUN_TIMES = {
    "cross_entropy": ("over 3 min", "about 30 s"),
    "ctc": ("about a minute", "about 15 s"),
    "family": ("well over 10 min", "about 5 min"),
    "linear_cross_entropy": ("well over 15 min", "about 30 s"),
    "sharded": ("a few minutes", "about 45 s"),
}


def _shapes(shapes: Any) -> str:
    return ", ".join("x".join(str(d) for d in shape) for shape in shapes)


def _epilog() -> str:
    lines = ["benchmarks (default run, then --quick; times on 2 CPU cores):"]
    for name, module in sorted(BENCHMARKS.items()):
        times = RUN_TIMES.get(name, ("", ""))
        lines.append(f"  {name}")
        for label, kind, time in (("default", "DEFAULT", times[0]), ("--quick", "QUICK", times[1])):
            if hasattr(module, f"{kind}_SHAPES"):
                shapes, repeats = _shapes(getattr(module, f"{kind}_SHAPES")), getattr(module, f"{kind}_REPEATS", "?")
                lines.append(f"    {label}: {shapes}, {repeats} repeats" + (f"; {time}" if time else ""))
    lines += ["", "example: python -m jaxent.bench family --quick --rows focal"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m jaxent.bench",
        description=__doc__,
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("benchmark", choices=sorted(BENCHMARKS))
    parser.add_argument("--repeats", type=int, help="timed runs per contender, median reported (default: see below)")
    parser.add_argument(
        "--shapes", nargs="+", help="; ".join(f"{k}: {m.SHAPE_HELP}" for k, m in sorted(BENCHMARKS.items()))
    )
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch even when it is installed")
    parser.add_argument("--quick", action="store_true", help="small shapes and few repeats (run times below)")
    parser.add_argument("--rows", metavar="SUBSTR", help="family: only the rows whose name or dtype contains SUBSTR")
    args = parser.parse_args(argv)
    if args.rows and args.benchmark != "family":
        parser.error("--rows applies to the family benchmark only")
    module = BENCHMARKS[args.benchmark]
    if args.quick and "quick" not in inspect.signature(module.run).parameters:
        parser.error(f"{args.benchmark} has no quick run; pass small --shapes and --repeats instead")
    if args.benchmark == "sharded":
        jax.config.update("jax_num_cpu_devices", 8)  # on a CPU: 8 host devices (before any computation)
    options: dict[str, Any] = {"repeats": args.repeats} if args.repeats else {}
    if args.shapes:
        options["shapes"] = [module.parse_shape(s) for s in args.shapes]
    if args.quick:
        options["quick"] = True
    if args.benchmark == "family":
        options["rows"] = args.rows
    print(f"# {args.benchmark}: forward+backward, medians of alternating runs | {_timing.hardware()}")
    module.run(torch=not args.no_torch, **options)  # prints its table, one line per row


if __name__ == "__main__":
    main()
