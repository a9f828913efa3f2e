"""Every route of the OpenAPI schema fuzzed with schemathesis: no 5xx, and responses conform
to the schema, as each kind of caller (an operator, a fan, nobody), one operation at a time
and in stateful sequences (schemathesis chains operations whose outputs feed others' inputs).
A bounded number of examples per operation in CI (MYSETLIST_FUZZ_EXAMPLES,
default 10: every operation in about 10 s); `MYSETLIST_FUZZ_DEEP=1` runs the `slow`
variant with many more.

Schema conformance only judges what the schema declares: a status code it does not list,
or a 2xx without a schema, passes unchecked. So typed routes must also answer only declared
status codes and media types (`STRICT_CHECKS`), and `test_typed_routes_declare_...` keeps
their schema complete: a typed 2xx JSON schema, problem+json for every error."""

from __future__ import annotations

import os
import uuid
from typing import Any

import httpx
import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from mysetlist.core.auth import mint_token
from mysetlist.core.config import Settings
from mysetlist.core.errors import PROBLEM_JSON

pytestmark = pytest.mark.db
CHECKS = [not_a_server_error, response_schema_conformance]
STRICT_CHECKS = [status_code_conformance, content_type_conformance]
EXAMPLES = int(os.environ.get("MYSETLIST_FUZZ_EXAMPLES", "10"))


def checks_for(case: schemathesis.Case[Any]) -> list[Any]:
    # Every route is typed (issue 16), so every one gets the strict checks.
    return CHECKS + STRICT_CHECKS


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
    case: schemathesis.Case[Any],
    api_url: str,
    operator_headers: dict[str, str],
    fan_headers: dict[str, str],
) -> None:
    # The same request as an operator, as a fan and as nobody: a route that trusts its
    # caller's kind (an operator-only branch reached by a fan) must still answer a 4xx.
    for headers in (operator_headers, fan_headers, {}):
        case.call_and_validate(base_url=api_url, headers=headers, checks=checks_for(case))


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
        def get_call_kwargs(self, case: schemathesis.Case[Any]) -> dict[str, Any]:
            return {"base_url": api_url, "headers": headers}

        def validate_response(
            self, response: Any, case: schemathesis.Case[Any], *args: Any, **kwargs: Any
        ) -> None:
            calls.append(case.operation.label)
            case.validate_response(response, checks=checks_for(case))

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
def test_deep_fuzz(
    case: schemathesis.Case[Any], api_url: str, operator_headers: dict[str, str]
) -> None:
    case.call_and_validate(base_url=api_url, headers=operator_headers, checks=checks_for(case))


def test_every_declared_error_is_a_problem_document(api_url: str) -> None:
    """Each error a route declares is problem+json (never FastAPI's HTTPValidationError: our
    422 is a problem document). 2xx bodies: tests/core/test_openapi_contract.py."""
    spec = httpx.get(f"{api_url}/openapi.json").json()
    assert "ProblemDocument" in spec["components"]["schemas"]
    gaps: list[str] = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                where = f"{method.upper()} {path} {status}"
                content = response.get("content", {})
                if status[0] not in "23" and (method, path, status) != ("get", "/readyz", "503"):
                    problem = content.get(PROBLEM_JSON, {}).get("schema")
                    if set(content) != {PROBLEM_JSON} or problem != {
                        "$ref": "#/components/schemas/ProblemDocument"
                    }:
                        gaps.append(f"{where}: not declared as problem+json")
    assert not gaps, "\n".join(gaps)


def test_conformance_fails_on_an_answer_off_the_schema(api_url: str, settings: Settings) -> None:
    """The fuzz's check judges these routes: their real answers pass it, the same answers
    with a field missing or a status value unknown (or an error not a problem) fail it."""
    spec = schemathesis.openapi.from_url(f"{api_url}/openapi.json")
    # An operator of its own: the fuzz may have revoked the shared one's tokens.
    token = mint_token(settings, str(uuid.uuid4()), admin=True)
    with httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {token}"}) as client:
        for template, url, broken in (
            ("/healthz", "/healthz", lambda body: {**body, "status": "fine"}),
            ("/api/analytics/etl", "/api/analytics/etl", lambda body: {**body, "runs": None}),
            ("/api/privacy/audit", "/api/privacy/audit", lambda body: {"entries": [{"id": 1}]}),
            ("/api/analytics/etl/{run_id}", "/api/analytics/etl/999999999", lambda body: {}),
        ):
            operation = spec[template]
            real = client.get(url)
            assert real.status_code == (404 if template.endswith("}") else 200), real.text
            operation["GET"].validate_response(real)  # raises if the real answer is off
            forged = httpx.Response(
                real.status_code,
                headers={"content-type": real.headers["content-type"]},
                content=orjson.dumps(broken(real.json())),
                request=real.request,
            )
            forged.elapsed = real.elapsed
            with pytest.raises((Failure, FailureGroup)):
                operation["GET"].validate_response(forged)
