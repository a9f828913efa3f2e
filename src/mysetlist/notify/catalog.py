"""What kinds of notification exist: each type's category, default channels and template.

Categories are either transactional (security, account: always delivered, never folded
into a digest, no unsubscribe, past quiet hours and caps) or product (everything a user may
turn off, fold into a digest or silence at night).
"""

from __future__ import annotations

from dataclasses import dataclass

CHANNELS = ("email", "push", "in_app")
TRANSACTIONAL_CATEGORIES = ("security", "account")
PRODUCT_CATEGORIES = (
    "show_reminders",
    "new_shows",
    "artist_updates",
    "vote_results",
    "digests",
    "marketing",
)
CATEGORIES = TRANSACTIONAL_CATEGORIES + PRODUCT_CATEGORIES
DIGEST_FREQUENCIES = ("immediate", "daily", "weekly")
# Renders the title and message alone (templates/shipped/generic.*): the template of types
# that have no layout of their own, and of a send whose type's template lacks variables.
GENERIC_TEMPLATE = "generic"
# What a template name and a locale look like (send requests and the template API).
TEMPLATE_NAME = r"^[a-z][a-z0-9_]{0,63}$"
LOCALE = r"^[a-z]{2}(-[A-Z]{2})?$"


@dataclass(frozen=True)
class NotificationType:
    name: str
    category: str
    channels: tuple[str, ...]  # in order of preference
    template: str
    # "all": every allowed channel; "best": the one allowed channel this user engages with most
    routing: str = "all"
    # data field whose value names the throttle window (a burst on one show -> one message)
    throttle_field: str | None = None

    @property
    def transactional(self) -> bool:
        return self.category in TRANSACTIONAL_CATEGORIES


TYPES: dict[str, NotificationType] = {
    t.name: t
    for t in (
        NotificationType("welcome", "account", ("email", "in_app"), "welcome"),
        NotificationType("security_alert", "security", ("email", "in_app"), GENERIC_TEMPLATE),
        NotificationType("account_notice", "account", ("email", "in_app"), GENERIC_TEMPLATE),
        NotificationType(
            "show_reminder",
            "show_reminders",
            ("push", "email", "in_app"),
            "show_reminder",
            routing="best",
            throttle_field="showId",
        ),
        NotificationType(
            "new_show_announced",
            "new_shows",
            ("email", "push", "in_app"),
            "new_show_announced",
            routing="best",
            throttle_field="showId",
        ),
        NotificationType(
            "followed_artist_update",
            "artist_updates",
            ("in_app", "email"),
            "followed_artist_update",
            throttle_field="artistId",
        ),
        NotificationType(
            "vote_summary",
            "vote_results",
            ("email", "in_app"),
            "vote_summary",
            throttle_field="showId",
        ),
        NotificationType(
            "vote_activity",
            "vote_results",
            ("in_app", "email"),
            GENERIC_TEMPLATE,
            routing="best",
            throttle_field="showId",
        ),
        NotificationType("weekly_digest", "digests", ("email",), "weekly_digest"),
        NotificationType("marketing", "marketing", ("email", "in_app"), GENERIC_TEMPLATE),
    )
}
