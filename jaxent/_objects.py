"""Loss objects: the "class version" of each loss function.

Each is a frozen dataclass registered as a JAX pytree. Array-valued fields (``weight``,
``label_smoothing=jnp.array(0.1)``, ...) and non-zero numbers are leaves, so the object
can be passed into ``jax.jit`` and differentiated through, and a traced value schedules
without recompiling. Structural fields (``axis``, ``reduction``, ...) are static
metadata, and so is a Python number at its "off" value (``0``/``0.0``; ``None`` has no
leaves): under ``jit`` it stays a constant, so ``CrossEntropyLoss()`` compiles the
function's default path instead of a smoothing or z-loss path for a traced zero.
Calling the object calls its function with the fields as keyword arguments.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import jax
from jax.typing import ArrayLike

T = TypeVar("T")


def static_field(default: Any) -> Any:
    """A dataclass field that is pytree metadata (hashable, not traced)."""
    return dataclasses.field(default=default, metadata={"static": True})


def _is_off(value: Any) -> bool:
    """A Python number equal to 0: an option that is switched off."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0


def _loss_object(cls: type[T]) -> type[T]:
    """``cls`` as a frozen dataclass and a pytree whose leaves are its non-static, non-off fields."""
    cls = dataclasses.dataclass(frozen=True)(cls)
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    static = tuple(f.name for f in fields if f.metadata.get("static"))
    optional = tuple(f.name for f in fields if not f.metadata.get("static"))

    def flatten(obj):
        leaves = tuple(n for n in optional if not _is_off(getattr(obj, n)))
        constants = tuple((n, getattr(obj, n)) for n in static + optional if n not in leaves)
        return tuple(getattr(obj, n) for n in leaves), (leaves, constants)

    def unflatten(aux, children):
        leaves, constants = aux
        return cls(**dict(constants), **dict(zip(leaves, children)))

    jax.tree_util.register_pytree_node(cls, flatten, unflatten)
    return cls


if TYPE_CHECKING:  # type checkers see a frozen dataclass (its __init__ and fields)
    from typing_extensions import dataclass_transform

    @dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, static_field))
    def loss_object(cls: type[T]) -> type[T]: ...

else:
    loss_object = _loss_object


class LossObject:
    """Base of the loss objects: ``loss(*arrays, where=None)`` calls ``function``."""

    function: ClassVar[Callable[..., Any]]

    def __call__(self, *arrays: ArrayLike, where: ArrayLike | None = None) -> jax.Array:
        options = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        return type(self).function(*arrays, where=where, **options)
