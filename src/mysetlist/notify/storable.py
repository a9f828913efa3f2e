"""Input PostgreSQL can store: `text` and `jsonb` hold no U+0000 (NUL), and a NUL that
reached a statement failed it with a 500 (issue 15). Request models of the notify routes
use these types, so such input is a 422 naming the field and nothing is written."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator

NUL = "\x00"


def no_nul(value: str) -> str:
    if NUL in value:
        raise ValueError("must not contain U+0000 (NUL)")
    return value


def no_nul_in_json(value: Any) -> Any:
    """`value` when no string in it (keys included) holds a NUL."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            no_nul(item)
        elif isinstance(item, dict):
            for key, inner in item.items():
                no_nul(str(key))
                stack.append(inner)
        elif isinstance(item, list):
            stack.extend(item)
    return value


StorableText = Annotated[str, AfterValidator(no_nul)]
StorableJson = Annotated[dict[str, Any], AfterValidator(no_nul_in_json)]
