"""Which suppressed addresses still get transactional mail.

Suppressed for a bounce (the mailbox does not exist) or by hand: no email at all, not
even transactional. Mailing a dead address again only hurts the sender's reputation.

Suppressed for a complaint or an unsubscribe: no product email, but security and account
mail (a password reset, a new sign-in alert) still goes. A spam complaint is about what
the user did not ask for; the mail their own actions trigger is expected, as on most
platforms, and withholding it could lock them out of their account.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from mysetlist.core.db import read_sql

_PACKAGE = "mysetlist.notify.delivery"

TRANSACTIONAL_DESPITE = frozenset({"complaint", "unsubscribe"})


def blocks_email(suppressed: bool, reason: str | None, *, transactional: bool) -> bool:
    """Whether a suppression keeps this email from the address (an unknown reason does)."""
    if not suppressed:
        return False
    return not (transactional and reason in TRANSACTIONAL_DESPITE)


async def suppress(
    conn: AsyncConnection[Any], hashes: list[bytes], *, reason: str, source: str,
    detail: str | None,
) -> None:  # fmt: skip
    """Put addresses (their keyed hashes) on the suppression list every later send checks."""
    await conn.execute(
        read_sql(_PACKAGE, "suppressions_insert.sql"),
        {"hashes": hashes, "reasons": [reason] * len(hashes), "sources": [source] * len(hashes),
         "details": [detail] * len(hashes)},
    )  # fmt: skip
