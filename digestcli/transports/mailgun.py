"""Mailgun: one multipart request per batch, the bodies once, values as recipient-variables."""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from urllib.parse import quote

import httpx

from digestcli.errors import AmbiguousFailure, ConfigError
from digestcli.message import to_header
from digestcli.models import BatchKey, Message, Result
from digestcli.transports.base import Capabilities
from digestcli.transports.http import HTTPTransport
from digestcli.transports.payload import (
    batch_labels,
    fill_slots,
    header_pairs,
    json_body,
    plan_merge,
    shared_content,
)

# Mailgun would substitute any of these in the content, whatever its case.
_RECIPIENT = re.compile(r"%recipient\.", re.IGNORECASE)
# A refusal about a recipient ("to parameter is not a valid address"), not the sender's.
_RECIPIENT_ERROR = re.compile(
    r"\b(?:to|recipients?)\b[^.]*\b(?:invalid|not a valid)\b"
    r"|\b(?:invalid|not a valid)\b[^.]*\b(?:to|recipients?)\b",
    re.IGNORECASE,
)
_TRY_AGAIN = re.compile(r"try again after (\d+(?:\.\d+)?) seconds?", re.IGNORECASE)
# Mailgun tags are ASCII, at most 128 characters.
_TAG_UNSAFE = re.compile(r"[^\x20-\x7e]")
_TAG_LIMIT = 128


def token(name: str) -> str:
    """Mailgun's placeholder for a recipient variable."""
    return f"%recipient.{name}%"


def campaign_tag(campaign: str) -> str:
    """The Mailgun tag a campaign's messages carry (what its event search filters on)."""
    return _TAG_UNSAFE.sub("_", campaign)[:_TAG_LIMIT]


class LiteralEscaper:
    """Keeps literal `%recipient.` text from being substituted by Mailgun.

    Each occurrence becomes a recipient variable whose value is that very text: Mailgun
    substitutes once and does not rescan what it inserted, so the reader sees the original.
    """

    def __init__(self) -> None:
        self.variables: dict[str, str] = {}
        self._names: dict[str, str] = {}

    def __call__(self, text: str) -> str:
        """The text with each literal `%recipient.` replaced by its escape variable."""
        return _RECIPIENT.sub(lambda match: token(self._name(match.group(0))), text)

    def _name(self, literal: str) -> str:
        name = self._names.setdefault(literal, f"lit{len(self._names)}")
        self.variables[name] = literal
        return name


class MailgunTransport(HTTPTransport):
    """Sends a batch as one Mailgun message to many `to`, personalised by recipient-variables.

    The HTML and text travel once per request with `%recipient.X%` in each merge slot;
    HTML-escaped and raw values get different variables. Per-recipient headers
    (List-Unsubscribe) are substituted the same way. Mailgun sets the Message-Id itself
    (one id for the request), so no h:Message-Id is sent.
    """

    name = "mailgun"
    # With unsubscribe tracking on for the domain, Mailgun replaces %unsubscribe_url% with a
    # link that unsubscribes the reader from the whole domain (its "tracking messages" guide).
    capabilities = Capabilities(
        max_batch=1000,
        substitution=True,
        unsubscribe_placeholder="%unsubscribe_url%",
        message_ids=False,
    )
    provider = "Mailgun"
    secret_env = "DIGEST_MAILGUN_API_KEY"
    default_base_url = "https://api.mailgun.net"

    def check_settings(self) -> None:
        """Mailgun sends from a domain; without it there is no endpoint."""
        if not self.settings.domain:
            raise ConfigError(
                "the mailgun transport needs a sending domain; set "
                '[transport] domain = "mg.example.org" in digest.toml.'
            )

    def auth_headers(self, secret: str) -> dict[str, str]:
        """HTTP Basic with user `api` and the API key as password."""
        pair = base64.b64encode(f"api:{secret}".encode()).decode("ascii")
        return {"Authorization": f"Basic {pair}"}

    def send_batch(
        self, messages: Sequence[Message], *, batch_key: BatchKey | None = None
    ) -> list[Result]:
        """Post the batch as one request; Mailgun accepts or refuses it as a whole."""
        if not messages:
            return []
        self.check_batch(messages)
        domain = quote(self.settings.domain or "", safe="")
        response = self.post(
            f"/v3/{domain}/messages", files=self.files(messages, batch_key), messages=messages
        )
        data = self.response_json(response)
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise AmbiguousFailure(
                "Mailgun accepted the batch but its answer has no id; "
                "the messages may have been sent."
            )
        return [Result(message.to.email, ok=True, provider_id=data["id"]) for message in messages]

    def files(
        self, messages: Sequence[Message], batch_key: BatchKey | None
    ) -> list[tuple[str, tuple[None, str]]]:
        """The form as httpx multipart fields: no file name, so plain form-data parts."""
        return [(key, (None, value)) for key, value in self.form(messages, batch_key)]

    def request_bytes(
        self, messages: Sequence[Message], *, batch_key: BatchKey | None = None
    ) -> int:
        """Bytes of the multipart body this batch would be sent as."""
        if not messages:
            return 0
        request = httpx.Request("POST", "http://localhost/", files=self.files(messages, batch_key))
        return len(request.read())

    def form(
        self, messages: Sequence[Message], batch_key: BatchKey | None
    ) -> list[tuple[str, str]]:
        """The multipart fields of a batch, in order (`to` repeated)."""
        content = shared_content(messages)
        plan = plan_merge(content, messages)
        rows = [dict(values) for values in plan.values]
        escape = LiteralEscaper()
        html = fill_slots(content.html, plan.html_names, token, escape)
        text = fill_slots(content.text, plan.text_names, token, escape)

        subjects = [message.subject for message in messages]
        if len(set(subjects)) == 1:
            subject = escape(subjects[0])
        else:
            subject = token("subject")
            for row, value in zip(rows, subjects, strict=True):
                row["subject"] = value

        headers: list[tuple[str, str]] = []
        per_message = [dict(header_pairs(message, message_id=False)) for message in messages]
        names = list(dict.fromkeys(name for pairs in per_message for name in pairs))
        for j, name in enumerate(names):
            values = [pairs.get(name, "") for pairs in per_message]
            if len(set(values)) == 1:
                headers.append((f"h:{name}", escape(values[0])))
                continue
            headers.append((f"h:{name}", token(f"hd{j}")))
            for row, value in zip(rows, values, strict=True):
                row[f"hd{j}"] = value
        if content.reply_to:
            headers.append(("h:Reply-To", escape(content.reply_to)))

        for row in rows:
            row.update(escape.variables)
        variables = {m.to.email: row for m, row in zip(messages, rows, strict=True)}

        campaign, batch = batch_labels(batch_key)
        form: list[tuple[str, str]] = [("from", content.from_addr)]
        form += [("to", to_header(message.to)) for message in messages]
        form += [
            ("subject", subject),
            ("text", text),
            ("html", html),
            ("recipient-variables", json_body(variables).decode("utf-8")),
            *headers,
        ]
        if campaign:
            form += [
                ("o:tag", campaign_tag(campaign)),
                ("v:campaign", campaign),
            ]
        if batch:
            form.append(("v:batch", batch))
        return form

    def rejected(
        self, response: httpx.Response, messages: Sequence[Message]
    ) -> dict[int, str] | None:
        """Mailgun refuses a whole message for one bad `to`, naming the address or nobody."""
        if response.status_code != 400:
            return None
        text = self.detail(response)
        lowered = text.lower()
        blamed = {
            i: f"Mailgun: {text}"
            for i, message in enumerate(messages)
            if re.search(rf"(?<![\w.+-]){re.escape(message.to.email.lower())}(?![\w.-])", lowered)
        }
        if blamed or _RECIPIENT_ERROR.search(text):
            return blamed
        return None

    def retry_after(self, response: httpx.Response) -> float | None:
        """Retry-After, else the N of Mailgun's "try again after N seconds"."""
        seconds = super().retry_after(response)
        if seconds is None:
            match = _TRY_AGAIN.search(response.text)
            if match:
                seconds = float(match.group(1))
        return seconds
