"""Key rotation: old keys decrypt, the newest encrypts, `rotate_keys` re-encrypts every
value under load, resumably, and every value reads back with the newest key alone."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from mysetlist.core.db import Database, fetch_all_in
from mysetlist.core.field_encryption import FieldCipher
from mysetlist.privacy.key_rotation import rotate_keys
from tests.conftest import Servers, migrated_database

pytestmark = pytest.mark.db
OLD, NEW = b"o" * 32, b"n" * 32


@pytest.fixture
async def own_db(servers: Servers, database_url: str) -> AsyncIterator[Database]:
    """A database of its own: a rotation re-encrypts every value in the database it runs on."""
    with migrated_database(servers.admin_url, prefix="mysetlist_rotation") as url:
        db = Database(url, max_size=4)
        await db.open()
        yield db
        await db.close()


def test_the_keyring_decrypts_old_values_and_encrypts_with_the_newest() -> None:
    old = FieldCipher(OLD)
    ring = FieldCipher(NEW, previous_keys=[OLD])
    blob = old.encrypt("fan@example.test", context=b"users.email")
    assert ring.decrypt(blob, context=b"users.email") == "fan@example.test"
    assert not ring.is_current(blob)
    assert ring.is_current(ring.encrypt("x"))
    with pytest.raises(ValueError, match="keyring"):
        FieldCipher(NEW).decrypt(blob, context=b"users.email")
    # The lookup hash stays the one the data was written with (suppressions keep only it).
    assert ring.lookup_hash("Fan@Example.test") == old.lookup_hash("fan@example.test")
    # A version-1 value (before key ids) still decrypts.
    legacy = b"\x01" + blob[5:]
    assert ring.decrypt(legacy, context=b"users.email") == "fan@example.test"


async def test_rotation_under_load_rewrites_every_value_and_reads_back(own_db: Database) -> None:
    old, ring, new_only = FieldCipher(OLD), FieldCipher(NEW, previous_keys=[OLD]), FieldCipher(NEW)
    tag = uuid.uuid4().hex[:8]
    emails = {str(uuid.uuid4()): f"rot-{tag}-{n}@example.test" for n in range(400)}
    async with own_db.transaction() as conn, conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO app.users (id, display_name, email_encrypted, email_hash)"
            " VALUES (%s, 'Fan', %s, %s)",
            [(u, old.encrypt(e, context=b"users.email"), old.lookup_hash(e))
             for u, e in emails.items()],
        )  # fmt: skip
    stop = asyncio.Event()
    written: dict[str, str] = {}

    async def signups_meanwhile() -> None:
        # The API keeps writing (with the ring) while the rotation runs.
        n = 0
        while not stop.is_set():
            user, email = str(uuid.uuid4()), f"live-{tag}-{n}@example.test"
            async with own_db.transaction() as conn:
                await conn.execute(
                    "INSERT INTO app.users (id, display_name, email_encrypted)"
                    " VALUES (%s, 'Fan', %s)",
                    (user, ring.encrypt(email, context=b"users.email")),
                )
            written[user] = email
            n += 1
            await asyncio.sleep(0)  # yield to the rotation (not a wait for a condition)

    load = asyncio.create_task(signups_meanwhile())
    seen: list[int] = []

    # A first run cut short (its progress callback raises half-way), then a resumed one.
    class Stop(Exception):
        pass

    def stop_half_way(column: str, done: int, total: int) -> None:
        seen.append(done)
        if done >= 200:
            raise Stop

    with pytest.raises(Stop):
        await rotate_keys(own_db, ring, batch_size=50, progress=stop_half_way)
    result = await rotate_keys(own_db, ring, batch_size=50)
    stop.set()
    await load
    assert result.undecryptable == {}
    assert written  # the load did run alongside
    async with own_db.transaction() as conn:
        rows = await fetch_all_in(
            conn,
            "SELECT id::text, email_encrypted FROM app.users WHERE id = ANY(%s::uuid[])",
            ([*emails, *written],),
        )
        audited = await fetch_all_in(
            conn,
            "SELECT details FROM analytics.audit_log WHERE action = 'privacy.key_rotation'"
            " ORDER BY id DESC LIMIT 1",
        )
    assert len(rows) == len(emails) + len(written)
    expected = {**emails, **written}
    for row in rows:
        value = bytes(row["email_encrypted"])
        assert new_only.decrypt(value, context=b"users.email") == expected[row["id"]]
    assert audited[0]["details"]["key_id"] == ring.key_id.hex()
    assert seen[:4] == [50, 100, 150, 200]
