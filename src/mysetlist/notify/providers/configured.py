"""The email providers `EMAIL_PROVIDERS` names, in its order, built from NotifySettings.
Each provider's module is imported only when named (SES pulls in boto3)."""

from __future__ import annotations

from collections.abc import Callable

from mysetlist.notify.config import NotifySettings
from mysetlist.notify.providers.base import EmailProvider


def _smtp(settings: NotifySettings) -> EmailProvider | None:
    from mysetlist.notify.providers.smtp import SmtpProvider

    return SmtpProvider(settings.smtp_url, connections=settings.smtp_connections,
                        timeout=settings.provider_timeout_seconds,
                        data_timeout=settings.smtp_data_timeout_seconds)  # fmt: skip


def _sendgrid(settings: NotifySettings) -> EmailProvider | None:
    from mysetlist.notify.providers.sendgrid import SendGridProvider

    return SendGridProvider(settings.sendgrid_api_url, settings.sendgrid_api_key or "",
                            timeout=settings.provider_timeout_seconds)  # fmt: skip


def _outbox(settings: NotifySettings) -> EmailProvider | None:
    from mysetlist.notify.providers.outbox import OutboxProvider

    directory = settings.email_outbox_dir  # the settings refuse "outbox" without one
    return None if directory is None else OutboxProvider(directory)


def _ses(settings: NotifySettings) -> EmailProvider | None:
    from mysetlist.notify.providers.ses import SesProvider

    return SesProvider(settings.aws_region, endpoint_url=settings.ses_endpoint_url,
                       configuration_set=settings.ses_configuration_set,
                       timeout=settings.provider_timeout_seconds)  # fmt: skip


_BUILDERS: dict[str, Callable[[NotifySettings], EmailProvider | None]] = {
    "smtp": _smtp, "sendgrid": _sendgrid, "outbox": _outbox, "ses": _ses,
}  # fmt: skip


def email_providers(settings: NotifySettings) -> list[EmailProvider]:
    built = (_BUILDERS[name](settings) for name in settings.email_providers)
    return [provider for provider in built if provider is not None]
