"""Input PostgreSQL can store and we can write back out: `text` and `jsonb` hold no U+0000
(NUL), and a NUL that reached a statement failed it with a 500 (issue 15); an integer past
64 bits parses (the standard library keeps it) but orjson cannot write it, so it failed the
send with a 500 (and would break every later read of it). Request models of the notify
routes use these types, so such input is a 422 naming the field and nothing is written."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator

NUL = "\x00"
INT64 = range(-(2**63), 2**63)


def no_nul(value: str) -> str:
    if NUL in value:
        raise ValueError("must not contain U+0000 (NUL)")
    return value


def no_nul_in_json(value: Any) -> Any:
    """`value` when no string in it (keys included) holds a NUL and every integer in it
    fits in 64 bits."""
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
        elif isinstance(item, int) and not isinstance(item, bool) and item not in INT64:
            raise ValueError("integers must fit in 64 bits (-2^63 to 2^63 - 1)")
    return value


StorableText = Annotated[str, AfterValidator(no_nul)]
StorableJson = Annotated[dict[str, Any], AfterValidator(no_nul_in_json)]
