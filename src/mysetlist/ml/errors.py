"""The ML capability's refusals, in its own words: its services raise these and know no
HTTP; `core/errors.py` maps each kind (NotAllowed, NotFound, …) to its problem+json status."""

from __future__ import annotations

from mysetlist.core.errors import NotAllowed, NotFound


class OnlyYourself(NotAllowed):
    """A fan asked about another user (operators may ask about anyone)."""

    def __init__(self) -> None:
        super().__init__("you may only ask about yourself")


class UnknownUser(NotFound):
    """No such user, or the user was erased."""

    def __init__(self, user_id: str) -> None:
        super().__init__(f"no user {user_id}")


class UnknownShow(NotFound):
    def __init__(self, show_id: int) -> None:
        super().__init__(f"no show {show_id}")


class NoPrediction(NotFound):
    """The show exists, but no prediction of this kind is there for the caller to see."""


class NoHistory(NotFound):
    """The show's artist has no played setlist to predict from."""

    def __init__(self) -> None:
        super().__init__("the artist has no past setlists to learn from yet")
