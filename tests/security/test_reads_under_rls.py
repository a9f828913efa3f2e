"""Every read a fan's request makes of the database goes through `as_caller`, under RLS
(issue 16, item 7): an owner connection in such a request is recorded by core/db.py unless
the request names its owner work with `db.as_owner(reason)`.

The mechanism is tested on its own (what is caught, what is not, and that a task spawned
from a fan's request is not the request), then every route of the API that a fan's bearer
token reaches is called as a fan, and no owner connection may have been taken outside
`as_owner` during any of those requests. A probe route that reads as the owner on purpose
proves the whole chain (auth marks the request, the database records, the test sees it)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from prometheus_client import REGISTRY

from mysetlist.core import auth
from mysetlist.core.auth import CurrentUser
from mysetlist.core.config import Settings
from mysetlist.core.db import (
    CallerViolation,
    CallerViolationError,
    Database,
    caller_request,
    mark_caller_request,
    unmark_caller_request,
)
from mysetlist.core.runtime import Runtime, RuntimeDep
from tests.conftest import serve_app
from tests.security.fans import bearer, new_fan

pytestmark = pytest.mark.db


# -- the mechanism ----------------------------------------------------------------------


@pytest.fixture(scope="module")
async def lenient(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url, max_size=3)
    await db.open()
    yield db
    await db.close()


@pytest.fixture(scope="module")
async def strict(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url, max_size=3, strict_caller_reads=True)
    await db.open()
    yield db
    await db.close()


def sites(db: Database) -> list[str]:
    return [use.site for use in db.caller_violations]


async def as_fan_request(work: Any, user_id: str | None = None) -> Any:
    """`work()` run in a task of its own marked as a fan's request (as core/auth.py marks
    one), so the mark leaves nothing behind in the test's context."""

    async def request() -> Any:
        mark_caller_request(user_id or str(uuid.uuid4()), "authenticated")
        return await work()

    return await asyncio.create_task(request())


async def test_owner_reads_in_a_fans_request_are_caught(lenient: Database) -> None:
    lenient.caller_violations.clear()

    async def owner_reads() -> None:
        await lenient.fetch_one("SELECT 1")
        await lenient.fetch_all("SELECT 1")
        async with lenient.transaction() as conn:
            await conn.execute("SELECT 1")
        async with lenient.pool.connection() as conn:
            await conn.execute("SELECT 1")

    first = f"{__name__}:{owner_reads.__code__.co_firstlineno + 1} in owner_reads"

    def counted() -> float:
        value = REGISTRY.get_sample_value("mysetlist_caller_violations_total", {"site": first})
        return value or 0.0

    before = counted()
    await as_fan_request(owner_reads)
    assert counted() == before + 1  # in /metrics, by call site
    # Each names the line that asked, not core/db.py.
    assert len(sites(lenient)) == 4, sites(lenient)
    assert all(site.startswith(f"{__name__}:") for site in sites(lenient)), sites(lenient)
    assert all(site.endswith(" in owner_reads") for site in sites(lenient)), sites(lenient)


async def test_strict_setting_refuses_the_owner_read(strict: Database) -> None:
    with pytest.raises(CallerViolationError, match="as_caller"):
        await as_fan_request(lambda: strict.fetch_one("SELECT 1"))


async def test_as_caller_and_as_owner_are_not_caught(strict: Database, claims_for: Any) -> None:
    claims = claims_for(uuid.uuid4())

    async def fan_work() -> None:
        async with strict.as_caller(claims) as conn:
            await conn.execute("SELECT 1")
        async with strict.as_role("anon", {"role": "anon"}) as conn:
            await conn.execute("SELECT 1")
        async with strict.as_owner("why: the test's own owner write") as conn:
            await conn.execute("SELECT 1")

    await as_fan_request(fan_work, claims.user_id)
    with pytest.raises(ValueError, match="reason"):
        async with strict.as_owner(" "):
            pass


async def test_a_role_not_the_callers_is_caught(lenient: Database, claims_for: Any) -> None:
    """`as_user` for a service token reads as `authenticated` (what
    notify/preference_service.py did), and as another user is no read of the caller's."""
    lenient.caller_violations.clear()
    service_id, other = str(uuid.uuid4()), str(uuid.uuid4())

    async def service_request() -> None:
        mark_caller_request(service_id, "service_role")
        async with lenient.as_role("service_role", {"sub": service_id, "role": "service_role"}):
            pass
        async with lenient.as_user(service_id):
            pass

    async def fan_request() -> None:
        async with lenient.as_user(other):
            pass

    await asyncio.create_task(service_request())
    await as_fan_request(fan_request)
    assert [v.what for v in lenient.caller_violations] == [
        f"authenticated as {service_id}",
        f"authenticated as {other}",
    ]


async def test_an_owner_transaction_nested_in_as_caller_is_caught(
    lenient: Database, claims_for: Any
) -> None:
    lenient.caller_violations.clear()
    claims = claims_for(uuid.uuid4())

    async def nested() -> None:
        async with lenient.as_caller(claims), lenient.transaction() as conn:
            await conn.execute("SELECT 1")

    await as_fan_request(nested, claims.user_id)
    assert len(sites(lenient)) == 1, sites(lenient)


async def test_outside_a_fans_request_nothing_is_caught(strict: Database) -> None:
    assert caller_request.get() is None
    await strict.fetch_one("SELECT 1")
    async with strict.transaction() as conn:
        await conn.execute("SELECT 1")


async def test_background_work_spawned_from_a_fans_request_is_not_the_request(
    lenient: Database,
) -> None:
    """`asyncio.create_task` copies the mark into the task. Background work (a group
    commit's flusher, a fire-and-forget audit write) unmarks itself first; a task that
    outlives the request is unmarked when the request ends. Work the request drives
    through a task of its own (how Starlette streams a body, how stream_zip pulls an
    export) stays the request's."""
    lenient.caller_violations.clear()
    request_over = asyncio.Event()
    outlived = asyncio.Event()

    async def background() -> None:
        unmark_caller_request()
        await lenient.fetch_one("SELECT 1")

    async def outliving() -> None:
        await request_over.wait()
        await lenient.fetch_one("SELECT 1")
        outlived.set()

    async def drives() -> None:
        await lenient.fetch_one("SELECT 1")

    async def request() -> asyncio.Task[None]:
        await asyncio.create_task(background())
        async with anyio.create_task_group() as group:
            group.start_soon(drives)
        await asyncio.create_task(drives())
        return asyncio.create_task(outliving())

    later = await as_fan_request(request)
    request_over.set()
    await later
    assert outlived.is_set()
    assert sites(lenient) == [f"{__name__}:{drives.__code__.co_firstlineno + 1} in drives"] * 2


# -- every route a fan's token reaches ----------------------------------------------------

PROBE = "/test/owner-read-probe"
ERASE_ME = ("DELETE", "/api/privacy/me")
probe_router = APIRouter()


@probe_router.get(PROBE)
async def owner_read_probe(runtime: RuntimeDep, claims: CurrentUser) -> dict[str, str]:
    """Reads as the owner in a fan's request, on purpose: the test must see this one."""
    await runtime.db.fetch_one("SELECT 1")
    return {"user": claims.user_id}


@pytest.fixture(scope="module")
def app(settings: Settings, database_url: str, redis_url: str) -> FastAPI:
    from mysetlist.api import create_app

    app = create_app(settings, database_url, redis_url, with_worker=False)
    app.include_router(probe_router)
    return app


@pytest.fixture(scope="module")
def app_url(app: FastAPI) -> Iterator[str]:
    with serve_app(app) as url:
        yield url


def _dependencies(route: APIRoute) -> set[Any]:
    seen: set[Any] = set()
    todo = list(route.dependant.dependencies)
    while todo:
        dependant = todo.pop()
        seen.add(dependant.call)
        todo.extend(dependant.dependencies)
    return seen


def _routes(routes: list[Any]) -> Iterator[Any]:
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's included routers
        if included is not None:
            yield from _routes(included.routes)
        else:
            yield route


def fan_operations(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route a fan's bearer token is verified for: those depending
    on the caller's claims, except operator-only ones."""
    out = set()
    for route in _routes(app.routes):
        if not isinstance(route, APIRoute):
            continue
        calls = _dependencies(route)
        if auth.optional_claims in calls and auth.operator_claims not in calls:
            out |= {(method, route.path) for method in route.methods or ()}
    return out


# Bodies a fan's app would send, for the routes that take one; a route not listed gets {}
# (a 422 still runs its dependencies, so its caller is marked and anything read is seen).
BODIES: dict[tuple[str, str], Any] = {
    ("PATCH", "/api/me"): {"discoverable": True},
    ("POST", "/api/analytics/events"): {
        "event_type": "page_view", "page_url": "https://mysetlist.example/artists/x",
        "event_data": {"referrer": "https://www.google.com/"},
    },
    ("POST", "/api/analytics/recommendations"): {"limit": 10},
    ("PUT", "/api/notifications/preferences"): {
        "channels": {"new_shows": {"email": False}}, "timezone": "America/New_York",
    },
    ("DELETE", "/api/notifications/push-subscriptions"): {
        "endpoint": "https://push.example.test/sub/1"
    },
}  # fmt: skip


def _value(name: str, schema: dict[str, Any], fan_id: str) -> Any:
    """A plausible value of a parameter: the fan's own id for a user, else the schema's."""
    if "user" in name.lower():
        return fan_id
    for option in [schema, *schema.get("anyOf", [])]:
        if "enum" in option:
            return option["enum"][0]
        if "default" in option and option["default"] is not None:
            return option["default"]
        if option.get("type") == "integer":
            return max(int(option.get("minimum", 1)), 1)
        if option.get("format") == "uuid":
            return str(uuid.uuid4())
        if option.get("type") == "string":
            return "overview"
    return "1"


async def _call(
    client: httpx.AsyncClient, method: str, path: str, operation: dict[str, Any], fan_id: str,
    token: str,
) -> int:  # fmt: skip
    url, params, headers = path, {}, bearer(token)
    for parameter in operation.get("parameters", []):
        value = _value(parameter["name"], parameter.get("schema", {}), fan_id)
        if parameter["in"] == "path":
            url = url.replace("{" + parameter["name"] + "}", str(value))
        elif parameter["in"] == "query" and parameter.get("required"):
            params[parameter["name"]] = value
    body = BODIES.get((method, path), {} if "requestBody" in operation else None)
    try:
        async with client.stream(method, url, params=params, json=body, headers=headers) as r:
            if r.headers.get("content-type", "").startswith("text/event-stream"):
                # The first event, whose reads the stream's body makes in a task of its own.
                async for _ in r.aiter_raw():
                    break
            else:
                await r.aread()
            return r.status_code
    except httpx.TransportError:
        return 599  # the server failed mid-answer: what it read until then is recorded


@pytest.mark.parametrize("caller", ["fan", "service"])
async def test_no_fan_route_reads_as_the_owner(
    app: FastAPI, app_url: str, runtime: Runtime, token_for: Any, caller: str
) -> None:
    """As a fan, and as a service token acting for the fan (the platform's backend: routes
    that are not operator-only serve it too, and must read as `service_role`)."""
    fan_id = await new_fan(runtime, "RLS fan")
    caller_id = fan_id if caller == "fan" else str(uuid.uuid4())
    token = token_for(caller_id, role="authenticated" if caller == "fan" else "service_role")
    spec = app.openapi()  # what /openapi.json serves
    operations = {
        (method.upper(), path): operation
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
    }
    fan_routes = fan_operations(app)
    assert ("GET", PROBE) in fan_routes
    assert len(fan_routes) >= 20, sorted(fan_routes)  # the enumeration found the API
    missing = fan_routes - set(operations)
    assert not missing, f"fan routes missing from /openapi.json: {sorted(missing)}"

    db: Database = app.state.runtime.db
    found: dict[tuple[str, str], list[CallerViolation]] = {}
    statuses: dict[tuple[str, str], int] = {}
    # No keep-alive: a route that fails mid-answer must not fail the next one's call.
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=app_url, timeout=30, limits=limits) as client:
        # Erasing the fan revokes their tokens: that route comes last.
        for method, path in sorted(fan_routes, key=lambda op: (op == ERASE_ME, op)):
            before = len(db.caller_violations)
            statuses[(method, path)] = await _call(
                client, method, path, operations[(method, path)], fan_id, token
            )
            found[(method, path)] = list(db.caller_violations)[before:]

    # The token got through on every route (a 401 would mean nothing was marked or read).
    assert not [op for op, status in statuses.items() if status == 401], statuses
    # The probe's owner read was seen: the chain from token to record works in the app.
    assert [use.user_id for use in found.pop(("GET", PROBE))] == [caller_id]
    owner_reads = {
        f"{method} {path} ({statuses[(method, path)]})": sorted({use.site for use in uses})
        for (method, path), uses in found.items()
        if uses
    }
    assert not owner_reads, (
        "owner connections in fans' requests (read through as_caller, or name the owner "
        f"work with db.as_owner(reason)): {owner_reads}\nanswers: {statuses}"
    )
