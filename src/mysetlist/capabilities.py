"""The capabilities the service is made of, and how the thin layers (api, jobs, cli) find
their parts: a capability that has HTTP routes, background jobs or CLI commands exposes
them in its `routes`, `jobs` or `commands` module; one that has none simply lacks it."""

from __future__ import annotations

import importlib
from types import ModuleType

CAPABILITIES = ("platform", "tracking", "warehouse", "ml", "notify", "dashboard", "privacy")


def capability_modules(part: str) -> list[ModuleType]:
    """Each capability's `part` module (`routes`, `jobs`, `commands`), for those that have one."""
    modules = []
    for name in CAPABILITIES:
        qualified = f"mysetlist.{name}.{part}"
        try:
            modules.append(importlib.import_module(qualified))
        except ModuleNotFoundError as exc:
            if exc.name != qualified:  # the module exists but an import inside it failed
                raise
    return modules
