"""The demo's email: a configured provider is kept; without one, the local outbox under
the data dir, handed to the deliverer through the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from mysetlist.cli import _demo_outbox
from mysetlist.notify.config import load_notify_settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    for name in ("EMAIL_PROVIDERS", "SMTP_URL", "EMAIL_OUTBOX_DIR"):
        # set, then removed: monkeypatch then restores the variable even when the demo's
        # choice wrote it into os.environ
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setenv("MYSETLIST_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def test_without_a_provider_the_demo_mails_into_the_outbox(clean_env: Path) -> None:
    outbox = _demo_outbox()
    assert outbox == clean_env / "data" / "outbox"
    settings = load_notify_settings()  # what the demo's deliverer will load
    assert settings.email_providers == ["outbox"]
    assert settings.email_outbox_dir == outbox


@pytest.mark.parametrize("variable", ["EMAIL_PROVIDERS", "SMTP_URL"])
def test_a_configured_provider_is_kept(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    value = "smtp" if variable == "EMAIL_PROVIDERS" else "smtp://127.0.0.1:2525"
    monkeypatch.setenv(variable, value)
    assert _demo_outbox() is None
    assert load_notify_settings().email_providers == ["smtp"]


def test_the_environment_is_restored_after_the_choice() -> None:
    # Runs after the tests above: the demo's choice did not leak into other tests.
    import os

    assert os.environ.get("EMAIL_PROVIDERS") != "outbox"
