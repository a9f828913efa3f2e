"""Every route of the OpenAPI schema fuzzed with schemathesis: no 5xx, and responses conform
to the schema, as each kind of caller (an operator, a fan, nobody), one operation at a time
and in stateful sequences (schemathesis chains operations whose outputs feed others' inputs).
A bounded number of examples per operation in CI (MYSETLIST_FUZZ_EXAMPLES, default 10);
`MYSETLIST_FUZZ_DEEP=1` runs the `slow` variant with many more."""

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


@pytest.fixture(scope="module")
def fan_headers(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(settings, str(uuid.uuid4()))}"}


# Server-sent event streams never end by design: a fuzzed request would wait on one.
schema = schemathesis.pytest.from_fixture("api_schema").exclude(path_regex=r"/stream$")
_HEALTH = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture]


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=_HEALTH, derandomize=True)
def test_no_route_answers_5xx_or_off_schema(
    case: schemathesis.Case,
    api_url: str,
    operator_headers: dict[str, str],
    fan_headers: dict[str, str],
) -> None:
    # The same request as an operator, as a fan and as nobody: a route that trusts its
    # caller's kind (an operator-only branch reached by a fan) must still answer a 4xx.
    for headers in (operator_headers, fan_headers, {}):
        case.call_and_validate(base_url=api_url, headers=headers, checks=CHECKS)


@pytest.mark.parametrize("caller", ["operator", "fan"])
def test_stateful_sequences_answer_no_5xx(
    api_schema: Any,
    api_url: str,
    operator_headers: dict[str, str],
    fan_headers: dict[str, str],
    caller: str,
) -> None:
    headers = operator_headers if caller == "operator" else fan_headers
    calls: list[str] = []

    class Sequences(api_schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"base_url": api_url, "headers": headers}

        def validate_response(
            self, response: Any, case: schemathesis.Case, *args: Any, **kwargs: Any
        ) -> None:
            calls.append(case.operation.label)
            case.validate_response(response, checks=CHECKS)

    Sequences.run(
        settings=settings(
            max_examples=EXAMPLES, stateful_step_count=6, deadline=None,
            suppress_health_check=_HEALTH, derandomize=True,
        )
    )  # fmt: skip
    # The schema's links did chain operations (a schema without any would run nothing).
    assert len(calls) > EXAMPLES, calls


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("MYSETLIST_FUZZ_DEEP"), reason="MYSETLIST_FUZZ_DEEP=1")
@schema.parametrize()
@settings(max_examples=200, deadline=None, suppress_health_check=_HEALTH)
def test_deep_fuzz(case: schemathesis.Case, api_url: str, operator_headers: dict[str, str]) -> None:
    case.call_and_validate(base_url=api_url, headers=operator_headers, checks=CHECKS)
