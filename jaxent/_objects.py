"""Loss objects: the "class version" of each loss function.

Each is a frozen dataclass registered as a JAX pytree: array-valued fields (``weight``,
``label_smoothing``, ...) are leaves, so the object can be passed into ``jax.jit`` and
differentiated through; structural fields (``axis``, ``reduction``, ...) are static
metadata. Calling the object calls its function with the fields as keyword arguments.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar


def static_field(default: Any) -> Any:
    """A dataclass field that is pytree metadata (hashable, not traced)."""
    return dataclasses.field(default=default, metadata={"static": True})


class LossObject:
    """Base of the loss objects: ``loss(*arrays, where=None)`` calls ``function``."""

    function: ClassVar[Callable[..., Any]]

    def __call__(self, *arrays: Any, where: Any = None) -> Any:
        options = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        return type(self).function(*arrays, where=where, **options)
