"""SendGrid: one v3 mail/send request per batch, the bodies once, values as substitutions."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx

from digestcli.models import BatchKey, Content, Message, Result
from digestcli.transports.base import Capabilities
from digestcli.transports.http import HTTPTransport, parse_reset_time
from digestcli.transports.payload import (
    address_parts,
    batch_labels,
    fill_slots,
    header_pairs,
    json_body,
    json_string,
    plan_merge,
    shared_content,
)

# The field SendGrid names when one recipient's address fails its validator.
_PERSONALIZATION = re.compile(r"^personalizations\.(\d+)\.(?:to|cc|bcc)\b")
# SendGrid caps a category name at 255 characters.
_CATEGORY_LIMIT = 255


class SendGridTransport(HTTPTransport):
    """Sends a batch as one SendGrid mail with one personalization per recipient.

    The HTML and text travel once per request with a substitution tag in each merge slot;
    each personalization carries that recipient's values (escaped for the HTML part, raw
    for the text part, hence different tags), headers and custom_args.
    """

    name = "sendgrid"
    # An unsubscribe group (asm.group_id) lets SendGrid host the page; the raw-URL tag puts
    # the bare link in an href, where <%asm_group_unsubscribe_url%> would insert link text.
    capabilities = Capabilities(
        max_batch=1000,
        substitution=True,
        unsubscribe_placeholder="<%asm_group_unsubscribe_raw_url%>",
        unsubscribe_setting="asm_group_id",
    )
    provider = "SendGrid"
    secret_env = "DIGEST_SENDGRID_API_KEY"
    default_base_url = "https://api.sendgrid.com"

    def auth_headers(self, secret: str) -> dict[str, str]:
        """SendGrid's bearer token."""
        return {"Authorization": f"Bearer {secret}"}

    def send_batch(
        self, messages: Sequence[Message], *, batch_key: BatchKey | None = None
    ) -> list[Result]:
        """Post the batch as one request; SendGrid accepts or refuses it as a whole."""
        if not messages:
            return []
        self.check_batch(messages)
        response = self.post(
            "/v3/mail/send",
            content=self.body(messages, batch_key),
            headers={"Content-Type": "application/json"},
            messages=messages,
        )
        provider_id = response.headers.get("x-message-id") or None
        return [Result(message.to.email, ok=True, provider_id=provider_id) for message in messages]

    def request_bytes(
        self, messages: Sequence[Message], *, batch_key: BatchKey | None = None
    ) -> int:
        """Bytes of the request body this batch would be sent as."""
        return len(self.body(messages, batch_key)) if messages else 0

    def body(self, messages: Sequence[Message], batch_key: BatchKey | None) -> bytes:
        """The bytes of json_body(payload(...)), each personalization encoded on its own.

        Building a dict per recipient and encoding the whole was a quarter of a SendGrid
        send; a personalization has a fixed shape, so its JSON is a few string joins.
        """
        payload = self.payload(messages, batch_key, personalizations=False)
        items = payload.pop("personalizations")
        head = b'{"personalizations":[' + ",".join(items).encode("utf-8") + b"]"
        return head + b"," + json_body(payload)[1:]  # from, subject...: never empty

    def payload(
        self,
        messages: Sequence[Message],
        batch_key: BatchKey | None,
        *,
        personalizations: bool = True,
    ) -> dict[str, Any]:
        """The mail/send request body for a batch (personalizations=False: each as JSON text)."""
        content = shared_content(messages)
        plan = plan_merge(content, messages)
        nonce = unused_nonce(content, messages)

        def tag(name: str) -> str:
            return f"-{nonce}-{name}-"

        subject = messages[0].subject
        campaign, batch = batch_labels(batch_key)
        parts = [
            ("text/plain", fill_slots(content.text, plan.text_names, tag)),
            ("text/html", fill_slots(content.html, plan.html_names, tag)),
        ]
        from_name, from_email = address_parts(content.from_addr)
        tags: dict[str, str] = {}
        custom_args = {k: v for k, v in (("campaign", campaign), ("batch", batch)) if v}
        if personalizations:
            items: list[Any] = [
                self.personalization(message, values, tags, tag, subject, custom_args)
                for message, values in zip(messages, plan.values, strict=True)
            ]
        else:
            encoded = PersonalizationJSON(tag, subject, custom_args)
            items = [
                encoded(message, values)
                for message, values in zip(messages, plan.values, strict=True)
            ]
        payload: dict[str, Any] = {
            "personalizations": items,
            "from": _address(from_name, from_email),
            "subject": subject,
            # SendGrid refuses an empty part; text first, as MIME alternatives want.
            "content": [{"type": kind, "value": value} for kind, value in parts if value],
            # Subscription tracking would append a second unsubscribe link (and its tag could
            # rewrite text in the issue): digest's signed link, or the ASM group's, is the one.
            "tracking_settings": {"subscription_tracking": {"enable": False}},
        }
        if content.reply_to:
            payload["reply_to"] = _address(*address_parts(content.reply_to))
        if self.settings.asm_group_id is not None:
            # The group whose unsubscribe link the body's ASM tag becomes; SendGrid's own
            # example pairs it with subscription tracking off, as above.
            payload["asm"] = {"group_id": self.settings.asm_group_id}
        if campaign:
            payload["categories"] = [campaign[:_CATEGORY_LIMIT]]
        return payload

    @staticmethod
    def personalization(
        message: Message,
        values: Mapping[str, str],
        tags: dict[str, str],
        tag: Callable[[str], str],
        subject: str,
        custom_args: Mapping[str, str],
    ) -> dict[str, Any]:
        """One recipient's envelope: address, substitutions, headers, custom_args."""
        substitutions = {}
        for name, value in values.items():
            key = tags.get(name)
            if key is None:
                key = tags[name] = tag(name)  # each tag is built once per batch
            substitutions[key] = value
        item: dict[str, Any] = {
            "to": [_address(message.to.name, message.to.email)],
            "substitutions": substitutions,
            "headers": dict(header_pairs(message)),
        }
        if message.subject != subject:
            item["subject"] = message.subject
        if custom_args:
            item["custom_args"] = dict(custom_args)
        return item

    def error_message(self, data: Any) -> str:
        """SendGrid's `errors[].message`, with the field each is about."""
        errors = data.get("errors") if isinstance(data, dict) else None
        if not isinstance(errors, list):
            return super().error_message(data)
        messages = []
        for error in errors:
            if isinstance(error, dict) and error.get("message"):
                field = error.get("field")
                suffix = f" ({field})" if field and field != "null" else ""
                messages.append(f"{error['message']}{suffix}")
        return "; ".join(messages)

    def rejected(
        self, response: httpx.Response, messages: Sequence[Message]
    ) -> dict[int, str] | None:
        """SendGrid refuses a whole request for one bad personalization and names its field
        (`personalizations.3.to.0.email`): that index is the recipient to blame."""
        try:
            errors = response.json().get("errors")
        except (ValueError, AttributeError):
            return None
        if not isinstance(errors, list):
            return None
        blamed: dict[int, str] = {}
        about_recipients = False
        for error in errors:
            if not isinstance(error, dict):
                continue
            field = str(error.get("field") or "")
            if not field.startswith("personalizations"):
                continue
            about_recipients = True
            match = _PERSONALIZATION.match(field)
            if match and int(match[1]) < len(messages):
                reason = f"SendGrid: {error.get('message') or 'rejected'} ({field})"
                blamed[int(match[1])] = self.redact(reason)
        return blamed if about_recipients else None

    def retry_after(self, response: httpx.Response) -> float | None:
        """Retry-After, else X-RateLimit-Reset (a unix time) as seconds from now."""
        seconds = super().retry_after(response)
        if seconds is None:
            seconds = parse_reset_time(response.headers.get("x-ratelimit-reset"), self.clock())
        return seconds


class PersonalizationJSON:
    """Encodes personalizations as compact JSON text, byte for byte as json_body would."""

    def __init__(
        self, tag: Callable[[str], str], subject: str, custom_args: Mapping[str, str]
    ) -> None:
        self.tag = tag
        self.subject = subject
        self.keys: dict[str, str] = {}  # each variable's '"tag":', made once per batch
        args = json_body(dict(custom_args)).decode("utf-8")
        self.tail = f',"custom_args":{args}}}' if custom_args else "}"

    def __call__(self, message: Message, values: Mapping[str, str]) -> str:
        """The JSON of SendGridTransport.personalization(message, values, ...)."""
        keys = self.keys
        parts = ['{"to":[{"email":', json_string(message.to.email)]
        if message.to.name:
            parts += [',"name":', json_string(message.to.name)]
        parts.append('}],"substitutions":{')
        first = True
        for name, value in values.items():
            key = keys.get(name)
            if key is None:
                key = keys[name] = json_string(self.tag(name)) + ":"
            parts += [key, json_string(value)] if first else [",", key, json_string(value)]
            first = False
        parts.append('},"headers":{')
        first = True
        for header, value in dict(header_pairs(message)).items():
            if not first:
                parts.append(",")
            parts += [json_string(header), ":", json_string(value)]
            first = False
        parts.append("}")
        if message.subject != self.subject:
            parts += [',"subject":', json_string(message.subject)]
        parts.append(self.tail)
        return "".join(parts)


def _address(name: str, email: str) -> dict[str, str]:
    return {"email": email, "name": name} if name else {"email": email}


# Each rendered issue's fixed text, lowered, for unused_nonce: joining and lowering ~40 KB
# for every batch was a twentieth of a SendGrid send.
_FIXED_TEXT: dict[int, tuple[Content, str]] = {}


def _fixed_text(content: Content) -> str:
    cached = _FIXED_TEXT.get(id(content))
    if cached is None or cached[0] is not content:
        text = "\0".join(
            [
                *content.html.literals,
                *content.text.literals,
                content.from_addr,
                content.reply_to or "",
            ]
        ).lower()
        if len(_FIXED_TEXT) >= 8:
            _FIXED_TEXT.clear()
        cached = _FIXED_TEXT[id(content)] = (content, text)
    return cached[1]


def unused_nonce(content: Content, messages: Sequence[Message]) -> str:
    """A random nonce that occurs nowhere in the batch, so no tag can match real text."""
    fixed = _fixed_text(content)
    # Hex cannot span the NUL between two texts, so two haystacks are as good as one.
    varying = "\0".join(
        [
            *(message.subject for message in messages),
            *(value for message in messages for value in message.values.values()),
        ]
    ).lower()
    while True:
        nonce = secrets.token_hex(8)
        if nonce not in fixed and nonce not in varying:
            return nonce
