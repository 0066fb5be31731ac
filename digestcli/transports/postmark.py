"""Postmark: each message rendered in full and posted to /email/batch."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from digestcli.errors import AmbiguousFailure, PermanentFailure
from digestcli.message import to_header
from digestcli.models import BatchKey, Message, Result
from digestcli.transports.base import Capabilities
from digestcli.transports.http import HTTPTransport
from digestcli.transports.payload import (
    Body,
    batch_labels,
    header_pairs,
    json_members,
    json_string,
)

# Postmark's documented ceiling for one /email/batch request.
MAX_REQUEST_BYTES = 50 * 1000 * 1000
# ErrorCode of a message to an address Postmark has suppressed (bounced, complained...).
INACTIVE_RECIPIENT = 406
# Postmark keeps metadata values up to 80 characters.
_METADATA_LIMIT = 80


class PostmarkTransport(HTTPTransport):
    """Sends a batch through Postmark's /email/batch and reads every message's ErrorCode."""

    name = "postmark"
    # Each message is ~25 KB of JSON, but its bodies are chunks shared by the whole batch
    # (payload.PreEncoded), so Postmark's full 500 a request costs little memory and saves a
    # journal claim and record per 100 readers: 9,200-10,200 readers/s at 500 against
    # 7,400-7,700/s at 100, 87-88 MB peak against 77 MB (bench/README.md). Broadcast streams
    # host the unsubscribe link where the HTML and text bodies hold {{{ pm:unsubscribe }}}
    # (postmarkapp.com/support/article/1208-how-to-add-an-unsubscribe-link).
    capabilities = Capabilities(max_batch=500, unsubscribe_placeholder="{{{ pm:unsubscribe }}}")
    provider = "Postmark"
    secret_env = "DIGEST_POSTMARK_TOKEN"
    default_base_url = "https://api.postmarkapp.com"

    def auth_headers(self, secret: str) -> dict[str, str]:
        """Postmark's server token header."""
        return {"X-Postmark-Server-Token": secret}

    def send_batch(
        self, messages: Sequence[Message], *, batch_key: BatchKey | None = None
    ) -> list[Result]:
        """Post the batch; a 200 can still carry per-message errors, so read each one."""
        if not messages:
            return []
        self.check_batch(messages)
        body = self.body(messages, batch_key)
        if len(body) > MAX_REQUEST_BYTES:
            raise PermanentFailure(
                f"this Postmark batch is {len(body) // 1_000_000} MB, over Postmark's 50 MB "
                "limit; lower [transport] batch_size in digest.toml."
            )
        response = self.post(
            "/email/batch", content=body, headers={"Content-Type": "application/json"}
        )
        answers = self.response_json(response)
        if (
            not isinstance(answers, list)
            or len(answers) != len(messages)
            or not all(isinstance(a, dict) and isinstance(a.get("ErrorCode"), int) for a in answers)
        ):
            # Postmark took the batch but we cannot tell which message went out.
            raise AmbiguousFailure(
                f"Postmark accepted the batch but answered {len(messages)} messages with an "
                "unreadable list; the messages may have been sent."
            )
        return [self.result(m, a) for m, a in zip(messages, answers, strict=True)]

    def body(self, messages: Sequence[Message], batch_key: BatchKey | None) -> Body:
        """The JSON request body of a batch (message bodies encoded via a per-issue cache)."""
        campaign, batch = batch_labels(batch_key)
        encode = self.item_json(messages[0], campaign, batch)
        return self.encoder.body(
            [
                (encode(message), self.encoder.parts(message, "HtmlBody", "TextBody"))
                for message in messages
            ]
        )

    def item_json(self, first: Message, campaign: str, batch: str) -> Callable[[Message], str]:
        """Encodes payload(message, ..., bodies=False) as JSON text, as json_body would.

        What every message of the batch shares is encoded once: building and encoding a
        dict per message was half of a Postmark body's time.
        """
        shared = self.payload(first, campaign, batch, bodies=False)
        head = f'{{"From":{json_string(shared.pop("From"))},"To":'
        stream = f',"MessageStream":{json_string(shared["MessageStream"])},"Headers":['
        for name in ("To", "Subject", "MessageStream", "Headers"):
            del shared[name]
        rest = json_members(shared)
        tail = f"],{rest}}}" if rest else "]}"
        content = first.content

        def encode(message: Message) -> str:
            if message.content is not content:  # not one rendered issue: no shared parts
                return f"{{{json_members(self.payload(message, campaign, batch, bodies=False))}}}"
            headers = ",".join(
                f'{{"Name":{json_string(name)},"Value":{json_string(value)}}}'
                for name, value in header_pairs(message)
            )
            to = json_string(to_header(message.to))
            subject = json_string(message.subject)
            return f'{head}{to},"Subject":{subject}{stream}{headers}{tail}'

        return encode

    def request_bytes(
        self, messages: Sequence[Message], *, batch_key: BatchKey | None = None
    ) -> int:
        """Bytes of the request body this batch would be sent as."""
        return len(self.body(messages, batch_key)) if messages else 0

    def payload(
        self, message: Message, campaign: str, batch: str, *, bodies: bool = True
    ) -> dict[str, Any]:
        """One element of the batch: the whole rendered message for one recipient."""
        content = message.content
        item: dict[str, Any] = {
            "From": content.from_addr,
            "To": to_header(message.to),
            "Subject": message.subject,
        }
        if bodies:
            item["HtmlBody"] = message.html()
            item["TextBody"] = message.text()
        item |= {
            "MessageStream": self.settings.message_stream or "broadcast",
            "Headers": [{"Name": n, "Value": v} for n, v in header_pairs(message)],
        }
        if content.reply_to:
            item["ReplyTo"] = content.reply_to
        if campaign:
            item["Tag"] = campaign
        metadata = {"campaign": campaign, "batch": batch}
        metadata = {k: v[:_METADATA_LIMIT] for k, v in metadata.items() if v}
        if metadata:
            item["Metadata"] = metadata
        return item

    def result(self, message: Message, answer: dict[str, Any]) -> Result:
        """One recipient's outcome from its element of Postmark's answer."""
        email = message.to.email
        code = answer["ErrorCode"]
        if code == 0:
            return Result(email, ok=True, provider_id=str(answer.get("MessageID") or "") or None)
        reason = self.redact(f"Postmark: {answer.get('Message') or 'rejected'} (ErrorCode {code})")
        return Result(
            email, ok=False, error=reason, permanent=True, inactive=code == INACTIVE_RECIPIENT
        )

    def error_message(self, data: Any) -> str:
        """Postmark's `Message`, with its ErrorCode."""
        if isinstance(data, dict) and isinstance(data.get("Message"), str):
            code = data.get("ErrorCode")
            return f"{data['Message']} (ErrorCode {code})" if code is not None else data["Message"]
        return ""
