"""Provider-managed unsubscribe: the placeholder a transport hosts, put into an issue once."""

from __future__ import annotations

from pathlib import Path

from digestcli.config import Settings, TransportSettings
from digestcli.errors import ConfigError, DraftError
from digestcli.models import Content
from digestcli.transports import BUILT_IN, transport_class


def unsubscribe_placeholder(settings: Settings, transport: TransportSettings) -> str | None:
    """The provider's unsubscribe placeholder in provider mode (None in digest mode).

    Refuses a transport that cannot host the unsubscribe link, or lacks the setting it needs
    for one, before anything is sent.
    """
    if not settings.unsubscribe.by_provider:
        return None
    kind = transport.kind
    caps = transport_class(kind).capabilities
    if caps.unsubscribe_placeholder is None:
        able = [k for k in BUILT_IN if transport_class(k).capabilities.provider_unsubscribe]
        choices = ", ".join(able[:-1]) + f" or {able[-1]}" if len(able) > 1 else "".join(able)
        raise ConfigError(
            f'{settings.path}: [unsubscribe] mode = "provider" needs a provider that hosts the '
            f'unsubscribe link, and {kind} cannot; set [unsubscribe] mode = "digest" '
            f"or use {choices}."
        )
    setting = caps.unsubscribe_setting
    if setting and getattr(transport, setting, None) is None:
        raise ConfigError(
            f'{settings.path}: [unsubscribe] mode = "provider" with {kind} needs [transport] '
            f"{setting} (the unsubscribe group readers leave); add it, or set [unsubscribe] "
            'mode = "digest".'
        )
    return caps.unsubscribe_placeholder


def provider_content(content: Content, placeholder: str, kind: str, draft: Path) -> Content:
    """The issue with its unsubscribe slot made the provider's placeholder, once for everyone.

    Fixed text, not a per-recipient value: Mailgun does not rescan the values it substitutes,
    and escaping `<%...%>` for HTML would break SendGrid's tag. Put in after the CSS inlining,
    which would have written Postmark's as `{{{%20pm:unsubscribe%20}}}` in an href. An issue
    that already holds the placeholder is refused: the provider would make that a link too.
    """
    needle = placeholder.lower()
    pieces = (content.subject, *content.html.literals, *content.text.literals)
    if any(needle in piece.lower() for piece in pieces):
        raise DraftError(
            f"{draft.name}: the issue contains `{placeholder}`, which {kind} would turn into "
            'its unsubscribe link; reword it, or set [unsubscribe] mode = "digest".'
        )
    return content.with_literal("unsubscribe_url", placeholder)
