"""The settings and seams of the scaled-out topology, without it: the direct and replica URLs
derived for a database, prepared statements off behind the pooler, the replica reader's
fallback, Redis Cluster URLs and the one rate-limit storage."""

from __future__ import annotations

import uuid

import pytest
from limits.aio.storage import RedisClusterStorage, RedisStorage

from mysetlist.core.config import ConfigError, load_settings
from mysetlist.core.db import (
    Database,
    behind_pooler,
    database_urls,
    on_server,
    prepare_threshold,
)
from mysetlist.core.live_metrics import events_key, shows_key
from mysetlist.core.redis_client import cluster_nodes, is_cluster_url, limits_storage
from tests.conftest import free_port

POOLER = "postgresql://app:secret@pooler.internal:6432/mysetlist"
PRIMARY = "postgresql://app:secret@primary.internal:5432/mysetlist"
REPLICA = "postgresql://app:secret@replica.internal:5432/mysetlist"


def test_direct_and_replica_default_to_unset_and_the_lag_bound_to_5_seconds() -> None:
    settings = load_settings(DATABASE_URL=PRIMARY, DATABASE_DIRECT_URL="", DATABASE_REPLICA_URL="")
    assert settings.database_direct_url is None
    assert settings.database_replica_url is None
    assert settings.database_replica_max_lag_seconds == 5.0
    urls = database_urls(settings, PRIMARY)
    assert (urls.url, urls.direct, urls.replica) == (PRIMARY, PRIMARY, None)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_DIRECT_URL", "mysql://x@h/db"),
        ("DATABASE_REPLICA_URL", "redis://h:6379/0"),
        ("DATABASE_REPLICA_MAX_LAG_SECONDS", "0"),
        ("REDIS_URL", "redis+sentinel://h:26379"),
    ],
)
def test_a_bad_topology_value_names_its_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings(**{name: value})


def test_the_configured_database_is_reached_on_each_server() -> None:
    settings = load_settings(
        DATABASE_URL=POOLER, DATABASE_DIRECT_URL=PRIMARY, DATABASE_REPLICA_URL=REPLICA
    )
    urls = database_urls(settings, POOLER)
    assert (urls.url, urls.direct, urls.replica) == (POOLER, PRIMARY, REPLICA)


def test_another_database_on_the_pooler_is_reached_by_name_on_the_other_servers() -> None:
    """A test's own database (or another tenant's) behind the same pooler: the same name,
    user and password on the primary and on the replica."""
    settings = load_settings(
        DATABASE_URL=POOLER, DATABASE_DIRECT_URL=PRIMARY, DATABASE_REPLICA_URL=REPLICA
    )
    mine = "postgresql://owner:pw@pooler.internal:6432/mine?sslmode=disable"
    urls = database_urls(settings, mine)
    assert urls.direct == "postgresql://owner:pw@primary.internal:5432/mine?sslmode=disable"
    assert urls.replica == "postgresql://owner:pw@replica.internal:5432/mine?sslmode=disable"
    assert on_server("postgresql://pooler:1/db", PRIMARY) == "postgresql://primary.internal:5432/db"


def test_connections_behind_the_pooler_never_prepare(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", POOLER)
    monkeypatch.setenv("DATABASE_DIRECT_URL", PRIMARY)
    elsewhere = "postgresql://app@pooler.internal:6432/other"
    assert behind_pooler(elsewhere)
    assert prepare_threshold(elsewhere) is None
    assert prepare_threshold(PRIMARY) == 5
    kwargs = Database(POOLER, direct_url=PRIMARY).pool.kwargs
    assert isinstance(kwargs, dict)
    assert kwargs["prepare_threshold"] is None
    # Without a direct URL apart from it, DATABASE_URL is PostgreSQL itself: prepare.
    monkeypatch.setenv("DATABASE_DIRECT_URL", POOLER)
    assert not behind_pooler(POOLER)
    monkeypatch.delenv("DATABASE_DIRECT_URL")
    assert prepare_threshold(POOLER) == 5


@pytest.mark.db
async def test_the_reader_is_the_replica_while_it_answers_and_the_primary_when_it_is_down(
    database_url: str,
) -> None:
    """A server not in recovery reports no lag (a stand-in replica here: the same database);
    a replica nobody listens for is never read, and the primary answers at once."""
    up = Database(database_url, replica_url=database_url, max_size=2)
    down = Database(
        database_url,
        replica_url=f"postgresql://postgres@127.0.0.1:{free_port()}/nothing?connect_timeout=1",
        max_size=2,
    )
    await up.open()
    await down.open()
    try:
        assert await up.reader() is up  # not looked at yet: the primary
        assert await up.check_replica() == 0.0
        assert await up.reader() is up.replica
        assert await down.check_replica() is None
        assert await down.reader() is down
    finally:
        await up.close()
        await down.close()


@pytest.mark.db
async def test_a_replica_further_behind_than_the_bound_is_not_read(database_url: str) -> None:
    db = Database(database_url, replica_url=database_url, replica_max_lag_seconds=5.0, max_size=2)
    await db.open()
    try:
        await db.check_replica()
        assert await db.reader() is db.replica
        db.replica_lag_seconds = 5.5  # as a check on a lagging standby leaves it
        assert await db.reader() is db
    finally:
        await db.close()


def test_redis_cluster_urls_and_the_one_rate_limit_storage() -> None:
    url = "redis+cluster://127.0.0.1:7000,127.0.0.1:7001, 127.0.0.1:7002"
    assert is_cluster_url(url)
    assert not is_cluster_url("redis://127.0.0.1:6379/0")
    assert cluster_nodes(url) == [("127.0.0.1", 7000), ("127.0.0.1", 7001), ("127.0.0.1", 7002)]
    assert load_settings(REDIS_URL=url).redis_url == url
    assert isinstance(limits_storage(url, key_prefix="p"), RedisClusterStorage)
    assert isinstance(limits_storage("redis://127.0.0.1:6379/0", key_prefix="p"), RedisStorage)


def test_keys_one_command_reads_together_share_a_hash_tag() -> None:
    """ZUNION over an hour of minute buckets: one slot on a cluster."""
    prefix = f"p-{uuid.uuid4().hex[:6]}"
    tags = {shows_key(prefix, m).split("{")[1].split("}")[0] for m in range(60)}
    assert tags == {"shows"}
    assert "{" not in events_key(prefix, 1)  # read one key per command: any slot
