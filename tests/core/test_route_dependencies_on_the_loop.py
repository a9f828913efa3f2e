"""Every dependency of every HTTP route is `async def`: FastAPI runs a plain function in its
thread pool, one hop there and back per request, which on a busy 2-core host cost more than
the work it wraps (issue 19: a sync settings lookup on the preferences routes and the
stream's hub lookup showed as thread-pool handoffs in the ramp's profile). The failure
names each such dependency and the routes that use it."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from mysetlist.core.config import Settings


def _calls(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    """The app's routes, through included routers (FastAPI 0.165 keeps an included router
    as one entry wrapping the original; the count check below fails if that changes)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
            continue
        router = getattr(route, "original_router", route)
        yield from _api_routes(getattr(router, "routes", []))


def _on_the_loop(call: Any) -> bool:
    if inspect.isroutine(call) or inspect.isclass(call):
        return inspect.iscoroutinefunction(call)
    return inspect.iscoroutinefunction(getattr(call, "__call__", None))  # noqa: B004


def test_no_route_dependency_runs_in_the_thread_pool(
    settings: Settings, database_url: str, redis_url: str
) -> None:
    from mysetlist.api import create_app

    app = create_app(settings, database_url, redis_url, with_worker=False)
    offenders: dict[str, set[str]] = {}
    routes = list(_api_routes(app.routes))
    assert len(routes) > 20  # the whole API, not an empty app
    for route in routes:
        for call in _calls(route.dependant):
            if not _on_the_loop(call):
                name = f"{call.__module__}.{getattr(call, '__qualname__', repr(call))}"
                offenders.setdefault(name, set()).add(
                    f"{sorted(route.methods or ())[0]} {route.path}"
                )
    assert offenders == {}, offenders
