"""Transports by name; each module is imported only when chosen."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from digestcli.errors import ConfigError

if TYPE_CHECKING:
    from digestcli.transports.base import Transport

REGISTRY: dict[str, str] = {
    "outbox": "digestcli.transports.outbox:OutboxTransport",
    "smtp": "digestcli.transports.smtp:SMTPTransport",
    "postmark": "digestcli.transports.postmark:PostmarkTransport",
    "sendgrid": "digestcli.transports.sendgrid:SendGridTransport",
    "mailgun": "digestcli.transports.mailgun:MailgunTransport",
    "resend": "digestcli.transports.resend:ResendTransport",
}


def transport_class(kind: str) -> type[Transport]:
    """The Transport class registered under kind."""
    try:
        target = REGISTRY[kind]
    except KeyError:
        raise ConfigError(
            f"unknown transport `{kind}`; choose one of {', '.join(REGISTRY)}."
        ) from None
    module_name, _, attr = target.partition(":")
    cls: type[Transport] = getattr(import_module(module_name), attr)
    return cls
