"""Reading fields of a platform's JSON defensively: a wrong-typed or empty field is absent.

Every platform adapter reads bodies it does not control; none guesses at a field of the wrong
type (a number where an id belongs, an object where a string belongs).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def dig(value: Any, *keys: str) -> Any:
    for key in keys:
        value = obj(value).get(key)
    return value


def text(value: Any) -> str | None:
    """A wrong-typed or empty field is treated as absent rather than guessed at."""
    return value if isinstance(value, str) and value else None


def first_text(values: Iterable[Any]) -> str | None:
    return next((found for found in map(text, values) if found is not None), None)


def user_id(value: Any) -> str | None:
    # Integrators sometimes store numeric ids; bool is an int subclass and never an id.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return text(value)
