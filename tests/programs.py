"""What a loss compiles to: temp memory, data-dependent branches, and the accelerator programs.

Memory is read from the compiled program (deterministic, so it is asserted); branches from
the jaxpr (a ``cond`` whose index is computed from the inputs is a host sync per call on a
GPU); barriers from the StableHLO that ``jax.export`` produces for ``cuda`` and ``tpu``,
which runs on this CPU machine.
"""

from __future__ import annotations

import jax
import jax.extend

# float32 [4096, 32000], the shape at which the memory bound is stated.
BIG = (4096, 32000)


def temp_bytes(fn, *args) -> int:
    """Temporary bytes of ``jax.jit(fn)`` compiled for ``args`` on this CPU."""
    return int(jax.jit(fn).lower(*args).compile().memory_analysis().temp_size_in_bytes)


def one_percent_of_f32(shape) -> int:
    """1% of one float32 buffer of ``shape``: the temp bound of every loss, fwd+bwd or forward only."""
    n = 1
    for d in shape:
        n *= d
    return n * 4 // 100


def _subjaxprs(eqn):
    for value in eqn.params.values():
        for v in value if isinstance(value, (tuple, list)) else (value,):
            if isinstance(v, jax.extend.core.ClosedJaxpr):
                yield v.jaxpr
            elif isinstance(v, jax.extend.core.Jaxpr):
                yield v


def data_dependent_branches(jaxpr) -> list[str]:
    """The ``cond``s in ``jaxpr`` (recursively) whose index depends on an input rather than
    only on ``platform_index`` (what ``jax.lax.platform_dependent`` leaves) and constants."""
    found: list[str] = []

    def visit(jx):
        producer = {v: e for e in jx.eqns for v in e.outvars}

        def depends_on_data(var, seen) -> bool:
            if not isinstance(var, jax.extend.core.Var):  # a literal
                return False
            if var in seen:
                return False
            seen.add(var)
            eqn = producer.get(var)
            if eqn is None:  # an input (or a constant) of this jaxpr: data
                return True
            if eqn.primitive.name == "platform_index":
                return False
            return any(depends_on_data(v, seen) for v in eqn.invars)

        for eqn in jx.eqns:
            if eqn.primitive.name == "cond" and depends_on_data(eqn.invars[0], set()):
                found.append(str(eqn)[:200])
            for sub in _subjaxprs(eqn):
                visit(sub)

    visit(jaxpr.jaxpr if hasattr(jaxpr, "jaxpr") else jaxpr)
    return found


def accelerator_programs(fn, *args) -> dict[str, str]:
    """StableHLO text of ``jax.jit(fn)`` exported for cuda and for tpu."""
    return {p: jax.export.export(jax.jit(fn), platforms=[p])(*args).mlir_module() for p in ("cuda", "tpu")}


def assert_backend_neutral(fn, *args) -> None:
    """No data-dependent branch in the jaxpr, no optimization_barrier in the cuda/tpu programs."""
    branches = data_dependent_branches(jax.make_jaxpr(fn)(*args))
    assert not branches, f"data-dependent cond(s): {branches}"
    for platform, text in accelerator_programs(fn, *args).items():
        assert "optimization_barrier" not in text, f"optimization_barrier in the {platform} program"
