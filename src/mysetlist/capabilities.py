"""The capabilities the service is made of, and how the thin layers (api, jobs, cli, startup,
migrations) find their parts: a capability that has HTTP routes, background jobs, CLI
commands or settings exposes them in its `routes`, `jobs`, `commands` or `config` module;
one that has none simply lacks it. This tuple is the one list of capabilities."""

from __future__ import annotations

import importlib
import inspect
from types import ModuleType

from pydantic_settings import BaseSettings

# In dependency order: migrations apply in this order (after core's), so a capability's
# schema may only refer to those before it. Privacy is last: it declares personal data on
# the tables of every capability before it.
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


def settings_classes() -> list[type[BaseSettings]]:
    """Each capability's settings class: the one `BaseSettings` subclass its `config`
    module defines (a second one there is an error: one capability, one settings class)."""
    classes: list[type[BaseSettings]] = []
    for module in capability_modules("config"):
        defined = [
            value
            for value in vars(module).values()
            if inspect.isclass(value)
            and issubclass(value, BaseSettings)
            and value.__module__ == module.__name__
        ]
        if len(defined) != 1:
            names = [cls.__name__ for cls in defined]
            raise TypeError(f"{module.__name__} must define one settings class, not {names}")
        classes.append(defined[0])
    return classes
