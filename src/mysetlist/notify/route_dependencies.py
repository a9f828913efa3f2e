"""What notify's routes take from the app: its notify settings (those the runtime's
settings carry, read once per app) and the signing keys of the links in messages."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from mysetlist.core.config import Settings
from mysetlist.core.runtime import RuntimeDep
from mysetlist.notify.config import NotifySettings
from mysetlist.notify.signed_links import SignedLinks

# Per app (a test or bench may serve several, each with its own variables): read once,
# not at every request (a read parses the environment and .env).
_READ: dict[int, tuple[Settings, NotifySettings]] = {}


def notify_settings(runtime: RuntimeDep) -> NotifySettings:
    read = _READ.get(id(runtime.settings))
    if read is None or read[0] is not runtime.settings:
        read = (runtime.settings, runtime.settings.of(NotifySettings))
        _READ[id(runtime.settings)] = read
    return read[1]


def signed_links(runtime: RuntimeDep) -> SignedLinks:
    return SignedLinks(runtime.settings.effective_encryption_key)


NotifySettingsDep = Annotated[NotifySettings, Depends(notify_settings)]
SignedLinksDep = Annotated[SignedLinks, Depends(signed_links)]
