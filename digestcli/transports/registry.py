"""The names of the transports: built-in kinds and the plug-ins installed beside digest."""

from __future__ import annotations

# Each module is imported only when its kind is chosen: editing commands stay fast.
BUILT_IN: dict[str, str] = {
    "outbox": "digestcli.transports.outbox:OutboxTransport",
    "smtp": "digestcli.transports.smtp:SMTPTransport",
    "postmark": "digestcli.transports.postmark:PostmarkTransport",
    "sendgrid": "digestcli.transports.sendgrid:SendGridTransport",
    "mailgun": "digestcli.transports.mailgun:MailgunTransport",
    "resend": "digestcli.transports.resend:ResendTransport",
}
# Third-party transports register here, as Django's EMAIL_BACKEND takes any dotted path:
# [project.entry-points."digest.transports"] mykind = "mypackage.module:MyTransport"
ENTRY_POINT_GROUP = "digest.transports"


def plugins() -> dict[str, str]:
    """Kind -> "module:Class" of every transport an installed distribution registers."""
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def kinds() -> list[str]:
    """Every transport name: the built-in ones, then the installed plug-ins'."""
    return [*BUILT_IN, *(name for name in plugins() if name not in BUILT_IN)]


def is_kind(kind: str) -> bool:
    """Whether a transport is registered under this name."""
    # Entry points are read only for a name that is not built in: they cost start-up time.
    return kind in BUILT_IN or kind in plugins()
