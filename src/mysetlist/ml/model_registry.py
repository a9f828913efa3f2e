"""The model registry (`analytics.ml_models`): register trained versions, promote a version
only when its offline metric is no worse than the active one's, and load the active
version in API processes, which notice a newly promoted version within `refresh_seconds`
without a restart (a cheap indexed lookup of the active id, not a reload of the artifact).

Paired promotion: a caller that passes `score_active` has the active version's artifact
scored on the new version's own evaluation split, or passes `active_measured` (the active
version's metric it measured there itself), so both metrics are measured on the same users;
both numbers go into the new row's metrics (`active_<metric>`, `active_version`). Without
either, the active version's metric as registered (measured on its own, older split) is
what the new one is compared with.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Generic, Self, TypeVar

import orjson
import psycopg

from mysetlist.core.db import Database, fetch_all_in, fetch_one_in, lock_key, read_sql

_PACKAGE = "mysetlist.ml"
T = TypeVar("T")
log = logging.getLogger(__name__)
# The active version's artifact -> its primary metric on the new version's evaluation split.
ScoreActive = Callable[[bytes], float]


class PickledArtifact:
    """A model whose registry artifact is its own pickle: written by `dumps`, read back by
    `loads` only from our own registry (never user input)."""

    def dumps(self) -> bytes:
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def loads(cls, artifact: bytes) -> Self:
        model = pickle.loads(artifact)
        if not isinstance(model, cls):
            raise TypeError(f"the artifact holds a {type(model).__name__}, not a {cls.__name__}")
        return model


@dataclass(frozen=True)
class ActiveMeasured:
    """The active version's primary metric, measured by the caller on the new version's
    evaluation split (e.g. by replaying its choices there, which takes longer than the
    registration lock should be held). It counts only if `version_id` is still active."""

    version_id: int
    value: float


@dataclass(frozen=True)
class ModelVersion:
    id: int
    name: str
    version: int
    trained_at: datetime
    data_from: date | None
    data_to: date | None
    params: dict[str, Any]
    metrics: dict[str, float]
    primary_metric: str
    active: bool
    decision: str


@dataclass(frozen=True)
class Registered:
    version: ModelVersion
    activated: bool


@dataclass
class TrainingOutcome:
    """What registering a newly trained version decided, as a training run reports it."""

    version: int
    activated: bool
    decision: str


@dataclass(frozen=True)
class ActiveRef:
    """Which version is active: enough to tell whether a loaded copy is still current."""

    id: int
    version: int
    trained_at: datetime


def _sql(name: str) -> str:
    return read_sql(_PACKAGE, name)


async def _versions(
    conn: psycopg.AsyncConnection[Any],
    *,
    name: str | None = None,
    version_id: int | None = None,
    active_only: bool = False,
) -> list[ModelVersion]:
    rows = await fetch_all_in(
        conn, _sql("model_versions.sql"),
        {"name": name, "id": version_id, "active_only": active_only},
    )  # fmt: skip
    return [ModelVersion(**row) for row in rows]


def _no_worse(new: float, old: float, higher_is_better: bool) -> bool:
    return new >= old if higher_is_better else new <= old


async def register_model(
    conn: psycopg.AsyncConnection[Any],
    name: str,
    *,
    metrics: dict[str, float],
    primary_metric: str,
    params: dict[str, Any] | None = None,
    artifact: bytes | None = None,
    artifact_format: str | None = None,
    data_from: date | None = None,
    data_to: date | None = None,
    higher_is_better: bool = True,
    score_active: ScoreActive | None = None,
    active_measured: ActiveMeasured | None = None,
) -> Registered:
    """Store a trained version (in the caller's transaction) and make it active when its
    `primary_metric` is no worse than the active version's, measured on the same split when
    the caller gives `active_measured` (still the active version) or `score_active` (see the
    module's docstring), else as registered."""
    if primary_metric not in metrics:
        raise ValueError(f"metrics lack the primary metric {primary_metric!r}")
    await conn.execute(_sql("lock_registration.sql"), {"key": lock_key(f"ml.registry:{name}")})
    active = await fetch_one_in(conn, _sql("lock_active_model.sql"), {"name": name})
    new = float(metrics[primary_metric])
    if active is None:
        activate, decision = True, "first version"
    else:
        old = float(active["metrics"].get(primary_metric, float("nan")))
        basis = "as registered"
        if active_measured is not None and active_measured.version_id == active["id"]:
            old, basis = active_measured.value, "on the same split"
            metrics = {**metrics, f"active_{primary_metric}": old,
                       "active_version": float(active["version"])}  # fmt: skip
        elif score_active is not None:
            old, basis = await _score_active_on_this_split(conn, active, score_active)
            if old == old:  # both numbers, measured on the same users, stay on the new row
                metrics = {**metrics, f"active_{primary_metric}": old,
                           "active_version": float(active["version"])}  # fmt: skip
        activate = old != old or _no_worse(new, old, higher_is_better)  # NaN: incomparable
        decision = (
            f"{primary_metric} {new:.4f} vs active v{active['version']} {old:.4f} {basis}: "
            + ("promoted" if activate else "kept the active version")
        )
        if activate:
            await conn.execute(_sql("deactivate_model.sql"), {"id": active["id"]})
    row = await fetch_one_in(
        conn,
        _sql("register_model.sql"),
        {
            "name": name, "data_from": data_from, "data_to": data_to,
            "params": orjson.dumps(params or {}).decode(),
            "metrics": orjson.dumps(metrics).decode(), "primary_metric": primary_metric,
            "higher_is_better": higher_is_better, "artifact": artifact,
            "artifact_format": artifact_format, "activate": activate, "decision": decision,
        },
    )  # fmt: skip
    assert row is not None
    (version,) = await _versions(conn, version_id=row["id"])
    return Registered(version, activate)


async def _score_active_on_this_split(
    conn: psycopg.AsyncConnection[Any], active: dict[str, Any], score_active: ScoreActive
) -> tuple[float, str]:
    """(the active version's metric on the new split, how it was measured); NaN (so the new
    version is promoted) when its artifact cannot be loaded or scored by this code."""
    artifact = await model_artifact(conn, active["id"])
    if artifact is None:
        return float("nan"), "(no artifact to score)"
    try:
        return float(await asyncio.to_thread(score_active, artifact)), "on the same split"
    # Any failure of an old artifact (moved classes, other features, another library
    # version) means it cannot be compared; it is recorded in the decision, not raised.
    except Exception as exc:
        log.warning("active %s v%s could not be scored: %r", active["name"], active["version"], exc)
        return float("nan"), f"(could not be scored on this split: {type(exc).__name__})"


async def active_version(conn: psycopg.AsyncConnection[Any], name: str) -> ModelVersion | None:
    versions = await _versions(conn, name=name, active_only=True)
    return versions[0] if versions else None


async def list_versions(
    conn: psycopg.AsyncConnection[Any], name: str | None = None
) -> list[ModelVersion]:
    return await _versions(conn, name=name)


async def active_ref(conn: psycopg.AsyncConnection[Any], name: str) -> ActiveRef | None:
    """The active version of `name`, by an indexed lookup that reads no artifact."""
    row = await fetch_one_in(conn, _sql("active_model.sql"), {"name": name})
    return ActiveRef(**row) if row is not None else None


async def model_artifact(conn: psycopg.AsyncConnection[Any], version_id: int) -> bytes | None:
    row = await fetch_one_in(conn, _sql("model_artifact.sql"), {"id": version_id})
    return bytes(row["artifact"]) if row is not None and row["artifact"] is not None else None


async def serving_model(
    conn: psycopg.AsyncConnection[Any], registered: Registered, fitted: T,
    load: Callable[[bytes], T],
) -> tuple[int, T]:  # fmt: skip
    """(version number, model) to score with after `registered`: the model just fitted
    when it was promoted, else the active version, loaded from its artifact."""
    if registered.activated:
        return registered.version.version, fitted
    ref = await active_ref(conn, registered.version.name)
    assert ref is not None, "register_model leaves an active version"
    artifact = await model_artifact(conn, ref.id)
    assert artifact is not None, f"v{ref.version} has no artifact"
    return ref.version, load(artifact)


class ActiveModel(Generic[T]):
    """The active version of model `name`, loaded by `load(artifact)` and kept in this
    process; at most every `refresh_seconds` a lookup of the active id tells whether a new
    version was promoted (then it is loaded once, under a lock). Asked about another
    database than the last (one process serving several, as the tests do), it looks at
    once instead of answering with the other database's model."""

    def __init__(
        self, name: str, load: Callable[[bytes], T], *, refresh_seconds: float = 10.0
    ) -> None:
        self.name = name
        self._load = load
        self._refresh = refresh_seconds
        self._checked = float("-inf")
        self._current: tuple[ModelVersion, T] | None = None
        self._database: str | None = None  # the URL the current copy was read from
        self._lock = asyncio.Lock()

    def _fresh_for(self, db: Database) -> bool:
        return db.url == self._database and time.monotonic() - self._checked < self._refresh

    async def get(self, db: Database) -> tuple[ModelVersion, T] | None:
        if self._fresh_for(db):
            return self._current
        async with self._lock:
            if self._fresh_for(db):
                return self._current
            if db.url != self._database:
                self._database, self._current = db.url, None
            fresh: tuple[ModelVersion, bytes | None] | None = None
            # Model versions are not user rows; a fan's request may load the one it serves.
            async with db.as_owner("why: loads the active model version, not user data") as conn:
                ref = await active_ref(conn, self.name)
                if ref is not None and (self._current is None or self._current[0].id != ref.id):
                    versions = await _versions(conn, version_id=ref.id)
                    if versions:
                        fresh = (versions[0], await model_artifact(conn, ref.id))
            if ref is None:
                self._current = None
            elif fresh is not None:  # loaded after the transaction: no connection held
                self._current = (fresh[0], await asyncio.to_thread(self._load, fresh[1] or b""))
            self._checked = time.monotonic()
            return self._current
