"""Every route of the OpenAPI schema fuzzed with schemathesis: no 5xx, and responses conform
to the schema. A bounded number of examples per operation in CI (MYSETLIST_FUZZ_EXAMPLES,
default 10: every operation in about 10 s); `MYSETLIST_FUZZ_DEEP=1` runs the `slow`
variant with many more."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from mysetlist.core.auth import mint_token
from mysetlist.core.config import Settings

pytestmark = pytest.mark.db
CHECKS = [not_a_server_error, response_schema_conformance]
EXAMPLES = int(os.environ.get("MYSETLIST_FUZZ_EXAMPLES", "10"))


@pytest.fixture(scope="module")
def api_schema(api_url: str) -> Any:
    # Server-sent event streams never end by design: a fuzzed request would wait on one.
    return schemathesis.openapi.from_url(f"{api_url}/openapi.json").exclude(path_regex=r"/stream$")


@pytest.fixture(scope="module")
def operator_headers(settings: Settings) -> dict[str, str]:
    token = mint_token(settings, str(uuid.uuid4()), admin=True)
    return {"Authorization": f"Bearer {token}"}


# Server-sent event streams never end by design: a fuzzed request would wait on one.
schema = schemathesis.pytest.from_fixture("api_schema").exclude(path_regex=r"/stream$")
_HEALTH = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture]


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=_HEALTH, derandomize=True)
def test_no_route_answers_5xx_or_off_schema(
    case: schemathesis.Case[Any], api_url: str, operator_headers: dict[str, str]
) -> None:
    case.call_and_validate(base_url=api_url, headers=operator_headers, checks=CHECKS)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("MYSETLIST_FUZZ_DEEP"), reason="MYSETLIST_FUZZ_DEEP=1")
@schema.parametrize()
@settings(max_examples=200, deadline=None, suppress_health_check=_HEALTH)
def test_deep_fuzz(
    case: schemathesis.Case[Any], api_url: str, operator_headers: dict[str, str]
) -> None:
    case.call_and_validate(base_url=api_url, headers=operator_headers, checks=CHECKS)
