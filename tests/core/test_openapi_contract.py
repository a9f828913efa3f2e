"""The HTTP contract: every 2xx JSON response in /openapi.json says what its body is, so the
TypeScript client generated from it (clients/typescript, CI stage 4) types every body.

A response without a schema, or with a free-form object (`dict[str, Any]`), comes out of
openapi-typescript as `unknown` or `{[key: string]: unknown}`: the fan app could read no
field of it without a cast. The failure lists every such route."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

# Keywords that describe a schema without constraining the value it allows.
_ANNOTATIONS = frozenset(
    {"title", "description", "examples", "example", "default", "deprecated", "readOnly",
     "writeOnly", "$comment", "nullable"}
)  # fmt: skip


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        target: Any = document
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        schema = target
    return schema


def _why_untyped(document: dict[str, Any], schema: Any, depth: int = 0) -> str | None:
    """Why a body of this schema would be (or hold only) `unknown` in TypeScript; None when
    it is typed. Looks through unions and array items, not into an object's fields."""
    if not isinstance(schema, dict) or depth > 20:
        return "no schema"
    schema = _resolve(document, schema)
    if not set(schema) - _ANNOTATIONS:
        return "no schema"
    for union in ("anyOf", "oneOf"):
        for branch in schema.get(union, []):
            if (why := _why_untyped(document, branch, depth + 1)) is not None:
                return why  # one unknown member makes the whole union unknown
    if "allOf" in schema:
        reasons = [_why_untyped(document, s, depth + 1) for s in schema["allOf"]]
        if all(reasons):
            return reasons[0]
    kind = schema.get("type")
    if kind == "array":
        why = _why_untyped(document, schema.get("items"), depth + 1)
        return None if why is None else f"array of {why}"
    if kind == "object" and "properties" not in schema:  # a model has it, even with no fields
        extra = schema.get("additionalProperties", True)
        if extra is True or (extra is not False and _why_untyped(document, extra, depth + 1)):
            return "free-form object"
    return None


def untyped_responses(document: dict[str, Any]) -> list[str]:
    """`METHOD /path STATUS media-type: why` for each 2xx JSON response the contract leaves
    untyped."""
    found = []
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue  # path-level `parameters`, `summary`, ...
            for status, response in operation["responses"].items():
                if not str(status).startswith("2"):
                    continue
                for media, content in _resolve(document, response).get("content", {}).items():
                    if not (media == "application/json" or media.endswith("+json")):
                        continue
                    if (why := _why_untyped(document, content.get("schema"))) is not None:
                        found.append(f"{method.upper()} {path} {status} {media}: {why}")
    return sorted(found)


def _document(properties: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "paths": {"/x": {"get": {"responses": {"200": {"content": {"application/json": {
            "schema": schema}}}}}}},
        "components": {"schemas": {"Thing": {"type": "object", "properties": properties}}},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("schema", "why"),
    [
        ({}, "no schema"),
        ({"title": "Response X"}, "no schema"),
        ({"type": "object", "additionalProperties": True, "title": "R"}, "free-form object"),
        ({"type": "object"}, "free-form object"),
        ({"type": "array", "items": {}}, "array of no schema"),
        ({"anyOf": [{"$ref": "#/components/schemas/Thing"}, {}]}, "no schema"),
        ({"$ref": "#/components/schemas/Empty"}, "no schema"),
        ({"$ref": "#/components/schemas/Thing"}, None),
        ({"type": "array", "items": {"$ref": "#/components/schemas/Thing"}}, None),
        ({"anyOf": [{"$ref": "#/components/schemas/Thing"}, {"type": "null"}]}, None),
        ({"type": "object", "additionalProperties": {"type": "integer"}}, None),
        ({"type": "object", "properties": {}}, None),  # a model without fields: `{}`
        ({"type": "object", "additionalProperties": False}, None),
        ({"type": "string", "enum": ["ok"]}, None),
    ],
)
def test_the_check_finds_what_typescript_would_type_unknown(
    schema: dict[str, Any], why: str | None
) -> None:
    document = _document({"id": {"type": "integer"}}, schema)
    document["components"]["schemas"]["Empty"] = {"title": "Empty"}
    expected = [] if why is None else [f"GET /x 200 application/json: {why}"]
    assert untyped_responses(document) == expected


def test_the_check_skips_what_is_not_a_2xx_json_body() -> None:
    document = {"paths": {"/x": {"get": {"responses": {
        "204": {"description": "No Content"},
        "200": {"content": {"application/zip": {}, "text/event-stream": {"schema": {}}}},
        "422": {"content": {"application/problem+json": {"schema": {}}}},
    }}}}}  # fmt: skip
    assert untyped_responses(document) == []
    document["paths"]["/x"]["get"]["responses"]["201"] = {
        "content": {"application/problem+json": {"schema": {}}}
    }
    assert untyped_responses(document) == ["GET /x 201 application/problem+json: no schema"]


def test_every_2xx_json_response_declares_a_schema() -> None:
    """The document as CI hands it to openapi-typescript: `mysetlist openapi`."""
    dumped = subprocess.run(
        [sys.executable, "-m", "mysetlist", "openapi"],
        env=os.environ, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert dumped.returncode == 0, dumped.stderr
    document = json.loads(dumped.stdout)
    assert document["paths"], "an empty contract types nothing"
    untyped = untyped_responses(document)
    assert not untyped, f"{len(untyped)} 2xx JSON responses are untyped:\n" + "\n".join(untyped)
