"""The dashboard's JSON routes in /openapi.json: typed answers, problem+json errors."""

from __future__ import annotations

import httpx
import pytest

from tests.notify.test_api_contract import contract_gaps, operations

pytestmark = pytest.mark.db


async def test_every_dashboard_route_has_a_typed_answer_and_problem_errors(api_url: str) -> None:
    async with httpx.AsyncClient(base_url=api_url) as c:
        doc = (await c.get("/openapi.json")).json()
    assert len(operations(doc, ("/api/analytics/dashboard",))) == 5
    assert contract_gaps(doc, ("/api/analytics/dashboard",)) == []
    panel = doc["components"]["schemas"]["PanelRead"]
    # JSON whose shape is the panel's own: a recursive JSON type, not an untyped `{}`.
    assert panel["properties"]["data"]["$ref"] == "#/components/schemas/JsonValue"
