"""Configuration from the environment and `.env` (pydantic-settings).

A bad value fails at start with one line naming the variable (see `ConfigError`).
Secrets that a newcomer should not have to invent (JWT secret, field-encryption key)
are generated once into the data directory when unset, so every process that shares
`MYSETLIST_DATA_DIR` agrees on them.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import os
import secrets
import tempfile
from functools import cache, cached_property
from pathlib import Path
from typing import Annotated, Any, TypeVar

import platformdirs
from croniter import croniter
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

S = TypeVar("S", bound=BaseSettings)


def _valid_cron(value: str) -> str:
    if not croniter.is_valid(value):
        raise ValueError(f"not a valid cron expression: {value!r}")
    return value


# A five-field cron expression (minute hour day month weekday), checked at load.
CronExpression = Annotated[str, AfterValidator(_valid_cron)]


def _json_or(value: Any, opening: str) -> Any:
    """`value` parsed as JSON when it is a string starting with `opening`, else as it is."""
    if isinstance(value, str) and value.strip().startswith(opening):
        return json.loads(value)
    return value


def comma_list(value: Any) -> Any:
    """A list setting as the environment writes it: "a, b,c" (blanks dropped) or a JSON
    list; a value that is not a string is left to pydantic."""
    value = _json_or(value, "[")
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def counts_by_name(value: Any) -> Any:
    """A name-to-number setting as the environment writes it: "a=1, b=2" or a JSON object."""
    value = _json_or(value, "{")
    if isinstance(value, str):
        pairs = (part.split("=", 1) for part in value.split(",") if part.strip())
        return {name.strip(): int(number) for name, number in pairs}
    return value


# Settings of those shapes (NoDecode: pydantic-settings would read them as JSON only).
CommaList = Annotated[list[str], NoDecode, BeforeValidator(comma_list)]
CountsByName = Annotated[dict[str, int], NoDecode, BeforeValidator(counts_by_name)]


# Loopback, private (RFC 1918), unique-local and link-local ranges: "inside".
PRIVATE_NETWORKS = (
    "127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7",
    "169.254.0.0/16", "fe80::/10",
)  # fmt: skip


# A Redis Cluster is `redis+cluster://host:port[,host:port...]` (core/redis_client.py).
REDIS_SCHEMES = ("redis://", "rediss://", "unix://", "redis+cluster://")


class ConfigError(Exception):
    """A configuration value is unusable; the message names the variable."""


class Settings(BaseSettings):
    """What core reads. A capability's own knobs (providers, feature flags, limits) belong
    to its own settings class (the one in its `config` module), read through `of`."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    # The same database without a transaction pooler in front (pgbouncer's transaction mode
    # breaks sessions): migrations, session advisory locks (task locks, the ETL's claim),
    # LISTEN (SSE wake-ups, the job queue's worker) and the ETL's session-configured work
    # connections go here. Unset: DATABASE_URL is direct. When it differs from DATABASE_URL,
    # connections through DATABASE_URL's server never prepare statements (pgbouncer < 1.21).
    database_direct_url: str | None = Field(default=None, validation_alias="DATABASE_DIRECT_URL")
    # A hot-standby replica of the primary (streaming replication): the dashboard and the
    # read-only public routes that may be a few seconds stale read there (docs/topology.md).
    database_replica_url: str | None = Field(default=None, validation_alias="DATABASE_REPLICA_URL")
    # A replica further behind than this (or down) is not read: the primary answers.
    database_replica_max_lag_seconds: float = Field(
        default=5.0, gt=0, le=3600, validation_alias="DATABASE_REPLICA_MAX_LAG_SECONDS"
    )
    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL")
    data_dir: Path = Field(
        default_factory=lambda: Path(platformdirs.user_data_dir("mysetlist")),
        validation_alias="MYSETLIST_DATA_DIR",
    )

    jwt_secret: str | None = Field(default=None, validation_alias="JWT_SECRET")
    jwt_jwks_url: str | None = Field(default=None, validation_alias="JWT_JWKS_URL")
    # Every token must carry this `aud`; Supabase issues user tokens with "authenticated".
    jwt_audience: str = Field(
        default="authenticated", min_length=1, validation_alias="JWT_AUDIENCE"
    )
    encryption_key: str | None = Field(default=None, validation_alias="MYSETLIST_ENCRYPTION_KEY")
    # Keys that still decrypt (newest first) until `mysetlist privacy rotate-keys` has
    # re-encrypted everything under MYSETLIST_ENCRYPTION_KEY (core/field_encryption.py).
    encryption_previous_keys: CommaList = Field(
        default_factory=list, validation_alias="MYSETLIST_ENCRYPTION_PREVIOUS_KEYS"
    )

    analytics_batch_size: int = Field(
        default=1000, ge=1, le=100_000, validation_alias="ANALYTICS_BATCH_SIZE"
    )
    etl_schedule_cron: CronExpression = Field(
        default="0 2 * * *", validation_alias="ETL_SCHEDULE_CRON"
    )
    write_keys: CommaList = Field(default_factory=list, validation_alias="MYSETLIST_WRITE_KEYS")
    # Browser origins allowed to call the API cross-origin (comma-separated); none by default.
    cors_allow_origins: CommaList = Field(
        default_factory=list, validation_alias="MYSETLIST_CORS_ORIGINS"
    )
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, validation_alias="MYSETLIST_MAX_BODY_BYTES"
    )
    # Namespace of every Redis key of ours (live metrics, rate-limit windows, caches), so
    # deployments or test runs that share one Redis keep apart.
    redis_key_prefix: str = Field(
        default="mysetlist",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        validation_alias="MYSETLIST_REDIS_KEY_PREFIX",
    )
    log_level: str = Field(default="INFO", validation_alias="LOG_LEVEL")
    db_pool_max: int = Field(default=20, ge=1, le=500, validation_alias="MYSETLIST_DB_POOL_MAX")
    # How long a request waits for a pooled connection before it is answered 503 with
    # Retry-After: a fan's client gives up long before psycopg_pool's default 30 s.
    db_pool_timeout_seconds: float = Field(
        default=10.0, gt=0, le=300, validation_alias="MYSETLIST_DB_POOL_TIMEOUT_SECONDS"
    )
    # An owner-role connection in a fan's request outside as_caller/as_owner (core/db.py) is
    # refused (500) rather than logged and counted: on in tests, off in production so an
    # unforeseen path degrades to a warning, not an outage.
    strict_caller_reads: bool = Field(
        default=False, validation_alias="MYSETLIST_STRICT_CALLER_READS"
    )
    # Garbage-collector tuning for API processes (core.gc_tuning); 0 leaves Python's defaults.
    gc_gen0_threshold: int = Field(
        default=10_000, ge=0, validation_alias="MYSETLIST_GC_GEN0_THRESHOLD"
    )

    # Addresses or networks (comma-separated) of the proxies / load balancers in front of the
    # API: only from these is `X-Forwarded-For` believed (the client address that rate
    # limits, audit entries and /metrics rules see). None by default: without a proxy, a
    # client could otherwise pick its own address.
    trusted_proxies: CommaList = Field(
        default_factory=list, validation_alias="MYSETLIST_TRUSTED_PROXIES"
    )
    # Failed authentications per client address: bearer tokens and tracking's failed
    # write-key checks count in this one window (tracking reads both from here).
    auth_failure_rate_limit: str = Field(
        default="30/minute", validation_alias="MYSETLIST_RATE_LIMIT_AUTH_FAILURES"
    )
    # Off switch of every rate limit that counts failures (core's and tracking's).
    rate_limit_enabled: bool = Field(default=True, validation_alias="MYSETLIST_RATE_LIMIT_ENABLED")
    # How often an API process reads new token revocations (core/token_revocation.py): the
    # longest a revoked token still works in a process other than the revoking one.
    token_revocation_refresh_seconds: float = Field(
        default=1.0, ge=0.05, le=60, validation_alias="MYSETLIST_TOKEN_REVOCATION_REFRESH_SECONDS"
    )
    # Who may read /metrics: clients from these networks (default: loopback and private
    # ranges; `*` for anyone) and, when a token is set, only with `Authorization: Bearer
    # <token>`. Anyone else gets 404.
    metrics_allow_from: CommaList = Field(
        default_factory=lambda: list(PRIVATE_NETWORKS),
        validation_alias="MYSETLIST_METRICS_ALLOW_FROM",
    )
    metrics_token: str | None = Field(default=None, validation_alias="MYSETLIST_METRICS_TOKEN")

    # Variables `load_settings` was given beyond core's (tests, benches): `of` applies those
    # of a capability's class on top of the environment.
    _variables: dict[str, Any] = PrivateAttr(default_factory=dict)

    def of(self, cls: type[S]) -> S:
        """A capability's settings (`capability_settings`) with the variables of its class
        this object was loaded with: what a route or task holding the runtime reads."""
        names = variables_of(cls)
        return capability_settings(cls, **{k: v for k, v in self._variables.items() if k in names})

    def with_variables(self, **variables: Any) -> Settings:
        """A copy whose capability settings also take these variables (an app of its own
        in a test or bench, e.g. `NOTIFY_PUSH_ALLOWED_HOSTS="*"`)."""
        copy = self.model_copy()
        copy._variables = {**self._variables, **variables}
        return copy

    @field_validator("trusted_proxies", "metrics_allow_from")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            if item != "*":
                try:
                    ipaddress.ip_network(item, strict=False)
                except ValueError:
                    raise ValueError(f"not an IP address or network: {item!r}") from None
        return value

    @field_validator("auth_failure_rate_limit")
    @classmethod
    def _valid_limit(cls, value: str) -> str:
        from limits import parse

        parse(value)
        return value

    @field_validator("metrics_token")
    @classmethod
    def _long_enough(cls, value: str | None) -> str | None:
        if value is not None and len(value) < 16:
            raise ValueError("must be at least 16 characters")
        return value

    @field_validator(
        "database_url", "database_direct_url", "database_replica_url", "redis_url", "jwt_secret",
        "jwt_jwks_url", "metrics_token", mode="before",
    )  # fmt: skip
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("database_url", "database_direct_url", "database_replica_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must start with postgresql://")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(REDIS_SCHEMES):
            raise ValueError("must start with " + ", ".join(REDIS_SCHEMES))
        return value

    @field_validator("encryption_key")
    @classmethod
    def _key_is_32_bytes(cls, value: str | None) -> str | None:
        if value is not None and len(_decode_key(value)) != 32:
            raise ValueError("must be 32 bytes, base64 (urlsafe) encoded")
        return value

    @field_validator("encryption_previous_keys")
    @classmethod
    def _keys_are_32_bytes(cls, value: list[str]) -> list[str]:
        if any(len(_decode_key(k)) != 32 for k in value):
            raise ValueError("each key must be 32 bytes, base64 (urlsafe) encoded")
        return value

    # -- derived values ---------------------------------------------------

    @cached_property
    def _generated_secrets(self) -> dict[str, str]:
        """Secrets persisted in the data dir, created on first use (0600)."""
        path = self.data_dir / "secrets.json"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if path.exists():
            stored: dict[str, str] = json.loads(path.read_text())
            return stored
        fresh = {
            "jwt_secret": secrets.token_urlsafe(48),
            "encryption_key": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        }
        # A temp file of this process's own (mkstemp: 0600, unique): with one shared name,
        # two workers starting together unlinked each other's file before linking it.
        fd, name = tempfile.mkstemp(prefix="secrets.", suffix=".tmp", dir=self.data_dir)
        tmp = Path(name)
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(fresh, fh)
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)  # atomic "create if absent": a concurrent process may win
        finally:
            tmp.unlink(missing_ok=True)
        winner: dict[str, str] = json.loads(path.read_text())
        return winner

    @property
    def effective_jwt_secret(self) -> str:
        return self.jwt_secret or self._generated_secrets["jwt_secret"]

    @property
    def effective_encryption_key(self) -> bytes:
        return _decode_key(self.encryption_key or self._generated_secrets["encryption_key"])

    @property
    def previous_encryption_keys(self) -> list[bytes]:
        return [_decode_key(k) for k in self.encryption_previous_keys]


def _decode_key(value: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except ValueError as exc:
        raise ValueError("not valid base64") from exc


def load_settings_class(cls: type[S], **overrides: Any) -> S:
    """Build `cls`, turning a validation error into one line naming the variable (core's
    `Settings`; a capability's class goes through `capability_settings`)."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = first["loc"][0] if first["loc"] else "?"
        field = cls.model_fields.get(str(loc))
        alias = field.validation_alias if field is not None else None
        name = alias if isinstance(alias, str) else str(loc).upper()
        raise ConfigError(f"configuration error: {name}: {first['msg']}") from None


@cache
def variables_of(cls: type[BaseSettings]) -> tuple[str, ...]:
    """The environment variables a settings class reads (its fields' aliases)."""
    aliases = (field.validation_alias for field in cls.model_fields.values())
    return tuple(alias for alias in aliases if isinstance(alias, str))


# Capability settings read so far, by class, overrides and environment values: a handful
# of entries per process.
_read: dict[tuple[type[BaseSettings], str, tuple[str | None, ...]], BaseSettings] = {}


def capability_settings(cls: type[S], **overrides: Any) -> S:
    """The one way a capability's settings class is read: the environment (and `.env`)
    plus `overrides`, validated (`ConfigError` names a bad variable) and read once per
    distinct set of values, so a route or task may ask on every call and sees a changed
    environment. Startup reads every capability's before anything runs (`startup.py`)."""
    given = repr(sorted(overrides.items())) if overrides else ""
    key = (cls, given, tuple(map(os.environ.get, variables_of(cls))))
    settings = _read.get(key)
    if settings is None:
        settings = _read[key] = load_settings_class(cls, **overrides)
    assert isinstance(settings, cls)
    return settings


def load_settings(**overrides: Any) -> Settings:
    """Core settings from the environment and `overrides`; overrides that name a
    capability's variables (e.g. `NOTIFY_PUSH_ALLOWED_HOSTS="*"`) apply to `settings.of`."""
    settings = load_settings_class(Settings, **overrides)
    settings._variables = dict(overrides)
    return settings
