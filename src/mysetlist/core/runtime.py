"""What one process holds open: settings, the database pool, Redis, the token verifier (with
the revocations it checks) and the auth-failure limiter.

Whoever opens it passes it on; nothing finds it through a global. The API keeps it on
`app.state.runtime` (routes receive it as `RuntimeDep`); a worker hands it to every task
through procrastinate's job context (`core.job_queue.worker_context` / `job_runtime`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from mysetlist.core.auth import TokenVerifier
from mysetlist.core.auth_failures import AuthFailureLimiter
from mysetlist.core.config import Settings
from mysetlist.core.db import Database, database_urls
from mysetlist.core.field_encryption import FieldCipher
from mysetlist.core.redis_client import RedisClient, make_redis
from mysetlist.core.time_zones import load_time_zones
from mysetlist.core.token_revocation import TokenRevocations


@dataclass
class Runtime:
    settings: Settings
    database_url: str
    redis_url: str
    db: Database
    redis: RedisClient
    verifier: TokenVerifier
    cipher: FieldCipher
    revocations: TokenRevocations
    auth_failures: AuthFailureLimiter

    @property
    def direct_url(self) -> str:
        """The database without the transaction pooler (`DATABASE_DIRECT_URL`): for LISTEN,
        session advisory locks and session-configured connections."""
        return self.db.direct_url

    async def close(self) -> None:
        await self.db.close()
        await self.redis.aclose()


async def open_runtime(settings: Settings, database_url: str, redis_url: str) -> Runtime:
    urls = database_urls(settings, database_url)
    db = Database(
        database_url,
        max_size=settings.db_pool_max,
        pool_timeout_seconds=settings.db_pool_timeout_seconds,
        strict_caller_reads=settings.strict_caller_reads,
        direct_url=urls.direct,
        replica_url=urls.replica,
        replica_max_lag_seconds=settings.database_replica_max_lag_seconds,
    )
    await db.open()
    # PostgreSQL's zone names, read once per process here at start: the query reads its tz
    # database (~50 ms of server time), which a worker's first drain or the API's first
    # send otherwise paid while fans waited.
    await load_time_zones(db)
    cipher = FieldCipher(
        settings.effective_encryption_key, previous_keys=settings.previous_encryption_keys
    )
    revocations = TokenRevocations(cipher.lookup_hash)
    runtime = Runtime(
        settings=settings,
        database_url=database_url,
        redis_url=redis_url,
        db=db,
        redis=make_redis(redis_url),
        verifier=TokenVerifier(settings, revocations),
        cipher=cipher,
        revocations=revocations,
        auth_failures=AuthFailureLimiter(
            redis_url, settings.auth_failure_rate_limit,
            key_prefix=settings.redis_key_prefix, enabled=settings.rate_limit_enabled,
        ),
    )  # fmt: skip
    return runtime


async def runtime_of(request: Request) -> Runtime:
    """The runtime the API process opened (`api.create_app` puts it on `app.state`); async,
    so FastAPI calls it on the loop rather than hopping to its thread pool per request."""
    runtime: Runtime = request.app.state.runtime
    return runtime


# How a route receives the runtime: `async def route(runtime: RuntimeDep) -> ...`.
RuntimeDep = Annotated[Runtime, Depends(runtime_of)]
