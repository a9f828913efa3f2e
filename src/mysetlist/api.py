"""The HTTP application: mounts each capability's router and nothing else."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from mysetlist.capabilities import capability_modules
from mysetlist.core.auth_routes import router as auth_router
from mysetlist.core.config import Settings, load_settings
from mysetlist.core.errors import install_error_handlers
from mysetlist.core.gc_tuning import tune_gc
from mysetlist.core.health_routes import DependencyMonitor
from mysetlist.core.health_routes import router as health_router
from mysetlist.core.http_middleware import (
    BodySizeLimitMiddleware,
    MetricsAccessMiddleware,
    RequestContextMiddleware,
    ResponseObserver,
    SecurityHeadersMiddleware,
)
from mysetlist.core.openapi_docs import router as docs_router
from mysetlist.core.operator_auth import OperatorSession
from mysetlist.core.runtime import open_runtime

log = logging.getLogger(__name__)


def create_app(
    settings: Settings, database_url: str, redis_url: str, *, with_worker: bool = False
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await open_runtime(settings, database_url, redis_url)
        app.state.runtime = runtime
        app.state.verifier = runtime.verifier
        tune_gc(settings.gc_gen0_threshold)
        app.state.dependencies = DependencyMonitor(runtime)
        # Every revocation before the first request; new ones every refresh interval.
        await runtime.revocations.refresh(runtime.db)
        background = [
            asyncio.create_task(app.state.dependencies.run()),
            asyncio.create_task(
                runtime.revocations.run(runtime.db, settings.token_revocation_refresh_seconds)
            ),
        ]
        if with_worker:
            from mysetlist.jobs import run_worker

            background.append(
                asyncio.create_task(run_worker(database_url, redis_url, settings, runtime=runtime))
            )
        try:
            yield
        finally:
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await runtime.close()

    app = FastAPI(
        title="MySetlist analytics & notifications",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served by core.openapi_docs, with a CSP that lets them load
        redoc_url=None,
    )
    install_error_handlers(app)
    app.include_router(health_router)
    app.include_router(auth_router)
    app.include_router(docs_router)
    observers: list[ResponseObserver] = []
    operator_sessions: list[OperatorSession] = []
    for module in capability_modules("routes"):
        app.include_router(module.router)
        # Optional: what a capability wants to know of every response (metrics), and the
        # browser sessions it keeps that stand for an operator (core.operator_auth).
        observers.extend(getattr(module, "response_observers", ()))
        operator_sessions.extend(getattr(module, "operator_sessions", ()))
    app.state.operator_sessions = tuple(operator_sessions)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.cors_allow_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_allow_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID", "Idempotency-Key"],
            expose_headers=["X-Request-ID", "Retry-After"],
            max_age=600,
        )
    app.add_middleware(
        MetricsAccessMiddleware,
        allow_from=settings.metrics_allow_from,
        token=settings.metrics_token,
    )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RequestContextMiddleware, observers=observers)
    if settings.trusted_proxies:
        # Outermost: everything inside sees the client the trusted proxy names. uvicorn's own
        # handling is off (core.http_middleware.SERVER_OPTIONS).
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    return app


def create_app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` worker processes: URLs come from the environment
    (the parent `mysetlist api` resolved embedded servers and exported them)."""
    settings = load_settings()
    database_url = os.environ["DATABASE_URL"]
    redis_url = os.environ["REDIS_URL"]
    return create_app(settings, database_url, redis_url)
