"""Resend: /emails/batch with an Idempotency-Key per batch, so retries never send twice."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from digestcli.errors import AmbiguousFailure, DigestError, PermanentFailure, TemporaryFailure
from digestcli.message import to_header
from digestcli.models import BatchKey, Message, Result
from digestcli.transports.base import Capabilities
from digestcli.transports.http import HTTPTransport, parse_seconds
from digestcli.transports.payload import (
    Body,
    batch_labels,
    header_pairs,
    json_body,
    json_members,
    json_string,
)

# Resend tag names and values: ASCII letters, digits, underscore and dash, at most 256.
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_TAG_LIMIT = 256


def idempotency_key(batch_key: BatchKey | None, body: Body) -> str:
    """The Idempotency-Key of a batch: the same for every attempt, in any process.

    Derived from the batch key (hashed, so any key fits Resend's 1-256 characters), whose
    random campaign nonce keeps two campaigns of the same draft and list name (another
    workspace, a re-created store) from sharing keys within Resend's 24 hours; without a
    batch key (a test send), from the request body, which is the same for the same batch.
    """
    if batch_key is None:
        return "digest-body-" + body.sha256()
    name = str(batch_key)
    if batch_key.nonce:
        name = f"{batch_key.nonce}\n{name}"
    return "digest-" + hashlib.sha256(name.encode("utf-8")).hexdigest()


def tag_value(text: str) -> str:
    """Text made fit for a Resend tag."""
    return _TAG_UNSAFE.sub("_", text)[:_TAG_LIMIT]


class ResendTransport(HTTPTransport):
    """Sends a batch through Resend's /emails/batch, idempotently.

    Every attempt of a batch carries the same Idempotency-Key, and the payload is the same
    for the same batch, so Resend answers a retry from its record of the first attempt
    instead of sending again. A dropped
    connection or read timeout still raises AmbiguousFailure, as for any transport: the
    sender sees `idempotent` and retries with the same key rather than marking the rows
    uncertain.
    """

    name = "resend"
    # Resend's documented default rate: 2 requests/s per team.
    capabilities = Capabilities(max_batch=100, idempotent=True, requests_per_second=2.0)
    provider = "Resend"
    secret_env = "DIGEST_RESEND_API_KEY"
    default_base_url = "https://api.resend.com"

    def auth_headers(self, secret: str) -> dict[str, str]:
        """Resend's bearer token."""
        return {"Authorization": f"Bearer {secret}"}

    def send_batch(
        self, messages: Sequence[Message], *, batch_key: BatchKey | None = None
    ) -> list[Result]:
        """Post the batch; a bad address fails alone (permissive validation)."""
        if not messages:
            return []
        self.check_batch(messages)
        body = self.body(messages, batch_key)
        response = self.post(
            "/emails/batch",
            content=body,
            headers={
                "Content-Type": "application/json",
                "Idempotency-Key": idempotency_key(batch_key, body),
                # One invalid email must not fail its batch-mates.
                "x-batch-validation": "permissive",
            },
        )
        return self.results(messages, self.response_json(response))

    def body(self, messages: Sequence[Message], batch_key: BatchKey | None) -> Body:
        """The JSON request body of a batch (message bodies encoded via a per-issue cache)."""
        campaign, _ = batch_labels(batch_key)
        encode = self.item_json(messages[0], campaign)
        return self.encoder.body(
            [(encode(message), self.encoder.parts(message, "html", "text")) for message in messages]
        )

    def item_json(self, first: Message, campaign: str) -> Callable[[Message], str]:
        """Encodes payload(message, campaign, bodies=False) as JSON text, as json_body would.

        What every message of the batch shares is encoded once: building and encoding a
        dict per message was a third of a Resend body's time.
        """
        content = first.content
        head = f'{{"from":{json_string(content.from_addr)},"to":['
        reply_to = f',"reply_to":{json_string(content.reply_to)}' if content.reply_to else ""
        tags = self.payload(first, campaign, bodies=False).get("tags")
        tail = f',"tags":{json_body(tags).decode("utf-8")}}}' if tags else "}"

        def encode(message: Message) -> str:
            if message.content is not content:  # not one rendered issue: no shared parts
                return f"{{{json_members(self.payload(message, campaign, bodies=False))}}}"
            headers = ",".join(
                f"{json_string(name)}:{json_string(value)}"
                for name, value in dict(header_pairs(message)).items()
            )
            to = json_string(to_header(message.to))
            subject = json_string(message.subject)
            return f'{head}{to}],"subject":{subject}{reply_to},"headers":{{{headers}}}{tail}'

        return encode

    def request_bytes(
        self, messages: Sequence[Message], *, batch_key: BatchKey | None = None
    ) -> int:
        """Bytes of the request body this batch would be sent as."""
        return len(self.body(messages, batch_key)) if messages else 0

    @staticmethod
    def payload(message: Message, campaign: str, *, bodies: bool = True) -> dict[str, Any]:
        """One email of the batch, rendered in full (bodies=False: without html and text)."""
        content = message.content
        item: dict[str, Any] = {
            "from": content.from_addr,
            "to": [to_header(message.to)],
            "subject": message.subject,
        }
        if bodies:
            item["html"] = message.html()
            item["text"] = message.text()
        if content.reply_to:
            item["reply_to"] = content.reply_to
        # Resend refuses a known key with a different payload, so every field here must be
        # the same on every attempt: the sender builds the Message-ID from the campaign and
        # the address for exactly that reason.
        item["headers"] = dict(header_pairs(message))
        if campaign:
            item["tags"] = [{"name": "campaign", "value": tag_value(campaign)}]
        return item

    def results(self, messages: Sequence[Message], data: Any) -> list[Result]:
        """Match Resend's ids (in order, skipping the failed indexes) to the recipients."""
        ids = data.get("data") if isinstance(data, dict) else None
        errors = (data.get("errors") if isinstance(data, dict) else None) or []
        failed: dict[int, str] = {}
        if isinstance(errors, list):
            for error in errors:
                if isinstance(error, dict) and isinstance(error.get("index"), int):
                    failed[error["index"]] = str(error.get("message") or "rejected")
        if (
            not isinstance(ids, list)
            or not isinstance(errors, list)
            or len(ids) + len(failed) != len(messages)
            or any(not 0 <= index < len(messages) for index in failed)
            or not all(isinstance(item, dict) and isinstance(item.get("id"), str) for item in ids)
        ):
            raise AmbiguousFailure(
                "Resend accepted the batch but its answer does not match the messages; "
                "they may have been sent."
            )
        accepted = iter(ids)
        results = []
        for index, message in enumerate(messages):
            if index in failed:
                reason = self.redact(f"Resend: {failed[index]}")
                results.append(Result(message.to.email, ok=False, error=reason, permanent=True))
            else:
                results.append(Result(message.to.email, ok=True, provider_id=next(accepted)["id"]))
        return results

    def status_error(self, response: httpx.Response) -> DigestError:
        """Resend's idempotency conflicts (409), else the common translation."""
        if response.status_code == 409:
            try:
                name = response.json().get("name")
            except (ValueError, AttributeError):
                name = None
            if name == "concurrent_idempotent_requests":
                return TemporaryFailure(
                    "Resend is still processing an earlier attempt of this batch "
                    "(409 concurrent_idempotent_requests); it can be retried shortly.",
                    retry_after=self.retry_after(response),
                )
            if name == "invalid_idempotent_request":
                return PermanentFailure(
                    "Resend refused this batch because its Idempotency-Key was used in the "
                    "last 24 hours with a different payload: the issue or its recipients "
                    "changed since the first attempt, so nothing was sent again "
                    f"({self.detail(response)})."
                )
        return super().status_error(response)

    def error_message(self, data: Any) -> str:
        """Resend's `message`, with its error `name`."""
        message = super().error_message(data)
        name = data.get("name") if isinstance(data, dict) else None
        return f"{message} ({name})" if message and isinstance(name, str) else message

    def retry_after(self, response: httpx.Response) -> float | None:
        """retry-after, else ratelimit-reset (seconds until the window resets)."""
        seconds = super().retry_after(response)
        if seconds is None:
            seconds = parse_seconds(response.headers.get("ratelimit-reset"))
        return seconds
