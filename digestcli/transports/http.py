"""The shared base of the HTTP mail-service transports: one client, one error boundary."""

from __future__ import annotations

import email.utils
import functools
import hashlib
import html
import json
import math
import re
import secrets
import ssl
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any, ClassVar

import httpx

from digestcli import __version__
from digestcli.config import TransportSettings
from digestcli.errors import (
    AmbiguousFailure,
    ConfigError,
    DigestError,
    PermanentFailure,
    TemporaryFailure,
)
from digestcli.models import Content, MergeText, Message
from digestcli.transports.base import Transport

Clock = Callable[[], float]

# Longest provider text quoted in an error: enough for a sentence, never a whole page.
_DETAIL_LIMIT = 300


class HTTPTransport(Transport):
    """A transport that posts batches to a mail service's HTTP API through one httpx client.

    Every foreign failure is translated here, at one boundary, into digest's own errors:
    TemporaryFailure when the request surely was not accepted, AmbiguousFailure when it
    may have been, PermanentFailure when the provider refused it, ConfigError for
    credentials and endpoints. The secret never appears in a message or a repr.
    """

    provider: ClassVar[str]
    secret_env: ClassVar[str]
    default_base_url: ClassVar[str]

    def __init__(
        self,
        settings: TransportSettings,
        env: Mapping[str, str],
        *,
        outbox_dir: Path | None = None,
        http: httpx.BaseTransport | None = None,
        clock: Clock = time.time,
    ) -> None:
        super().__init__(settings, env, outbox_dir=outbox_dir, http=http)
        self.clock = clock
        self.encoder = PreEncoded()
        self._secret = ""
        self._client: httpx.Client | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.base_url}>"

    @property
    def base_url(self) -> str:
        """The API root: the configured base_url, else the provider's documented one."""
        return (self.settings.base_url or self.default_base_url).rstrip("/")

    def open(self) -> None:
        """Read the secret and open the HTTP client; fails before any request if unset."""
        self.client()

    def client(self) -> httpx.Client:
        """The open HTTP client, opened on first use."""
        if self._client is not None:
            return self._client
        secret = self.env.get(self.secret_env, "").strip()
        if not secret:
            raise ConfigError(f"{self.secret_env} is not set; export it with your API key.")
        if any(ord(char) < 32 or ord(char) == 127 for char in secret):
            # It would break the auth header; say so rather than fail mid-request.
            raise ConfigError(
                f"{self.secret_env} contains a line break or control character; "
                "export the key alone."
            )
        self.check_settings()
        try:
            client = httpx.Client(
                base_url=self.base_url,
                timeout=httpx.Timeout(self.settings.timeout),
                transport=self.http,
                verify=_ssl_context(),
                headers={
                    "Accept": "application/json",
                    "User-Agent": f"digest/{__version__}",
                    **self.auth_headers(secret),
                },
                follow_redirects=False,
            )
        except httpx.InvalidURL as exc:
            raise ConfigError(
                f"[transport] base_url `{self.base_url}` is not a valid URL; fix it in digest.toml."
            ) from exc
        self._secret = secret
        self._client = client
        return client

    def close(self) -> None:
        """Close the HTTP client and forget the secret."""
        client, self._client = self._client, None
        self._secret = ""
        if client is not None:
            client.close()

    def check_settings(self) -> None:
        """Refuse settings this provider cannot work with (overridden where needed)."""

    def auth_headers(self, secret: str) -> dict[str, str]:
        """The headers that carry the secret."""
        raise NotImplementedError

    def check_batch(self, messages: Sequence[Message]) -> None:
        """Refuse a batch larger than the provider accepts."""
        if len(messages) > self.max_batch:
            raise ValueError(
                f"{self.provider} takes at most {self.max_batch} messages per batch, "
                f"got {len(messages)}."
            )

    def post(
        self,
        path: str,
        *,
        content: bytes | Body | None = None,
        files: list[tuple[str, tuple[None, str]]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """POST to the API; any answer but 2xx becomes one of digest's errors."""
        client = self.client()
        payload: bytes | Iterator[bytes] | None = None
        if isinstance(content, Body):
            # An explicit length keeps httpx from switching to chunked transfer encoding.
            headers = {**(headers or {}), "Content-Length": str(len(content))}
            payload = content.pieces()
        else:
            payload = content
        if files is not None:
            # One buffer instead of httpx's streamed parts: a socket write per field was a
            # quarter of a Mailgun send's time.
            payload, content_type = multipart_body(files)
            headers = {**(headers or {}), "Content-Type": content_type}
        try:
            response = client.post(path, content=payload, headers=headers)
        except (
            httpx.ConnectError,
            httpx.ConnectTimeout,
            httpx.PoolTimeout,
            httpx.ProxyError,
        ) as exc:
            # No connection was made, so the provider cannot have seen the request.
            raise TemporaryFailure(
                f"could not reach {self.provider} at {self.base_url} ({self.describe(exc)}); "
                "nothing was sent."
            ) from exc
        except httpx.UnsupportedProtocol as exc:
            raise ConfigError(
                f"[transport] base_url `{self.base_url}` must start with https:// or http://; "
                "fix it in digest.toml."
            ) from exc
        except httpx.TransportError as exc:
            # ReadTimeout, RemoteProtocolError, ReadError, WriteError, WriteTimeout: some or
            # all of the request went out, so the provider may have accepted it.
            raise AmbiguousFailure(
                f"the connection to {self.provider} broke after the request was sent "
                f"({self.describe(exc)}); the batch may have been accepted."
            ) from exc
        if not response.is_success:
            raise self.status_error(response)
        return response

    def status_error(self, response: httpx.Response) -> DigestError:
        """Translate a non-2xx answer into digest's error for it."""
        status = response.status_code
        detail = self.detail(response)
        if status in (401, 403):
            return ConfigError(
                f"{self.provider} refused the credentials (HTTP {status}: {detail}); "
                f"check {self.secret_env}."
            )
        if status == 429 or status >= 500 or status == 408:
            return TemporaryFailure(
                f"{self.provider} answered HTTP {status} ({detail}); the batch can be retried.",
                retry_after=self.retry_after(response),
                throttled=status == 429,
            )
        if status == 404 or 300 <= status < 400:
            return ConfigError(
                f"{self.provider} answered HTTP {status} for {response.request.url.path} "
                f"({detail}); check [transport] base_url in digest.toml."
            )
        return PermanentFailure(f"{self.provider} rejected the batch (HTTP {status}): {detail}")

    def detail(self, response: httpx.Response) -> str:
        """The provider's own explanation of an error answer, short and without the secret."""
        text = ""
        try:
            data = response.json()
        except ValueError:
            data = None
        if data is not None:
            text = self.error_message(data)
        if not text:
            text = response.text.strip()
        if not text:
            text = response.reason_phrase or "no explanation"
        return self.redact(" ".join(text.split())[:_DETAIL_LIMIT])

    def error_message(self, data: Any) -> str:
        """The human message inside a provider's JSON error body ('' when not found)."""
        if isinstance(data, dict):
            for key in ("message", "Message"):
                if isinstance(data.get(key), str):
                    return str(data[key])
        return ""

    def retry_after(self, response: httpx.Response) -> float | None:
        """Seconds to wait before retrying, from the answer's headers (None if unknown)."""
        return parse_retry_after(response.headers.get("retry-after"), self.clock())

    def describe(self, exc: Exception) -> str:
        """A short, secret-free description of a low-level exception."""
        text = str(exc).strip() or type(exc).__name__
        return self.redact(f"{type(exc).__name__}: {text}"[:_DETAIL_LIMIT])

    def redact(self, text: str) -> str:
        """The text with the secret blanked out, should a provider ever echo it."""
        secret = self._secret or self.env.get(self.secret_env, "").strip()
        return text.replace(secret, "[redacted]") if secret else text

    def response_json(self, response: httpx.Response) -> Any:
        """The JSON of a 2xx answer; one we cannot read may still mean the batch went out."""
        try:
            return response.json()
        except ValueError as exc:
            raise AmbiguousFailure(
                f"{self.provider} accepted the batch (HTTP {response.status_code}) but its "
                "answer is not JSON; the messages may have been sent."
            ) from exc


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle costs tens of milliseconds; one context serves every client.
    return httpx.create_ssl_context()


def parse_retry_after(value: str | None, now: float) -> float | None:
    """A Retry-After value (delta seconds or an HTTP date) as seconds from now."""
    if not value or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def parse_reset_time(value: str | None, now: float) -> float | None:
    """A rate-limit reset given as a unix time, as seconds from now."""
    if not value or not value.strip():
        return None
    try:
        reset = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(reset):
        return None
    return max(0.0, reset - now)


def parse_seconds(value: str | None) -> float | None:
    """A header holding a plain number of seconds."""
    if not value or not value.strip():
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


def json_body(payload: Any) -> bytes:
    """Compact UTF-8 JSON: fewer bytes on the wire, and the same bytes for the same batch."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def multipart_body(fields: Sequence[tuple[str, tuple[None, str]]]) -> tuple[bytes, str]:
    """A multipart/form-data body of plain text fields, and its Content-Type."""
    boundary = secrets.token_hex(16)
    while any(boundary in value for _, (_, value) in fields):
        boundary = secrets.token_hex(16)  # never in practice; but a value must not hold it
    opening = f"--{boundary}\r\n".encode()
    chunks = []
    for name, (_, value) in fields:
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        chunks.append(opening)
        chunks.append(f'Content-Disposition: form-data; name="{quoted}"\r\n\r\n'.encode())
        chunks.append(value.encode("utf-8"))
        chunks.append(b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def _json_inner(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)[1:-1]


class JSONText:
    """A MergeText whose fixed pieces are JSON-escaped once, filled per recipient.

    JSON escapes character by character, so escaping the pieces and the values apart gives
    exactly the bytes of escaping the filled text; it saves re-escaping ~13 KB per recipient.
    """

    def __init__(self, text: MergeText, *, html_values: bool) -> None:
        self.literals = [_json_inner(piece) for piece in text.literals]
        self.keys = text.parts[1::2]
        self.html_values = html_values

    def literal(self, values: Mapping[str, str]) -> str:
        """The filled text as a JSON string literal, quotes included."""
        out = ['"', self.literals[0]]
        for key, piece in zip(self.keys, self.literals[1:], strict=True):
            value = values.get(key, "")
            out.append(_json_inner(html.escape(value, quote=True) if self.html_values else value))
            out.append(piece)
        out.append('"')
        return "".join(out)


class PreEncoded:
    """Builds JSON array bodies whose message parts are appended already encoded."""

    def __init__(self) -> None:
        self._texts: dict[int, tuple[MergeText, JSONText]] = {}

    def text(self, text: MergeText, *, html_values: bool) -> JSONText:
        """The JSONText of a MergeText, made once per rendered issue."""
        cached = self._texts.get(id(text))
        if cached is None or cached[0] is not text:
            cached = (text, JSONText(text, html_values=html_values))
            self._texts[id(text)] = cached
        return cached[1]

    def parts(self, message: Message, html_field: str, text_field: str) -> list[tuple[str, str]]:
        """The message's HTML and text bodies as (field name, JSON literal) pairs."""
        content = message.content
        return [
            (html_field, self.text(content.html, html_values=True).literal(message.values)),
            (text_field, self.text(content.text, html_values=False).literal(message.values)),
        ]

    @staticmethod
    def body(items: Sequence[tuple[dict[str, Any], list[tuple[str, str]]]]) -> Body:
        """A JSON array of objects: each item's small fields, then its pre-encoded ones."""
        # Pieces are encoded one by one and joined once: a batch of 500 messages is ~12 MB,
        # and every intermediate copy of it is memory held by each batch in flight.
        chunks: list[bytes] = [b"["]
        for index, (item, extra) in enumerate(items):
            if index:
                chunks.append(b",")
            small = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
            chunks.append(small[:-1].encode("utf-8"))
            for position, (name, literal) in enumerate(extra):
                comma = "," if position or len(small) > 2 else ""
                chunks.append(f"{comma}{json.dumps(name)}:".encode())
                chunks.append(literal.encode("utf-8"))
            chunks.append(b"}")
        chunks.append(b"]")
        return Body(chunks)


class Body:
    """A request body kept as the chunks it was built from, sent without joining them.

    Joining would hold a second copy of a ~12 MB batch for every batch in flight.
    """

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.size = sum(len(chunk) for chunk in chunks)

    def __len__(self) -> int:
        return self.size

    def __bytes__(self) -> bytes:
        return b"".join(self.chunks)

    def pieces(self, size: int = 1 << 20) -> Iterator[bytes]:
        """The body in pieces of about `size` bytes: few socket writes, little extra memory."""
        group: list[bytes] = []
        held = 0
        for chunk in self.chunks:
            group.append(chunk)
            held += len(chunk)
            if held >= size:
                yield b"".join(group)
                group, held = [], 0
        if group:
            yield b"".join(group)

    def sha256(self) -> str:
        """The hex SHA-256 of the whole body."""
        digest = hashlib.sha256()
        for chunk in self.chunks:
            digest.update(chunk)
        return digest.hexdigest()


def batch_labels(batch_key: str) -> tuple[str, str]:
    """The (campaign, batch) labels of a batch key shaped `<campaign>:<batch>`."""
    campaign, sep, _ = batch_key.rpartition(":")
    return (campaign if sep else batch_key), batch_key


def shared_content(messages: Sequence[Message]) -> Content:
    """The one Content every message of a batch shares; a batch is one rendered issue."""
    content = messages[0].content
    for message in messages[1:]:
        if message.content is not content and message.content != content:
            raise ValueError("a batch must hold messages of one rendered issue.")
    return content


def address_parts(value: str) -> tuple[str, str]:
    """(display name, address) of a header value like `Name <addr@example.org>`."""
    name, addr = email.utils.parseaddr(value)
    return name, addr or value


@dataclass(frozen=True)
class MergePlan:
    """A batch's merge slots as provider variables: names per part, values per recipient.

    HTML and text get different variables for a key when escaping changes a value, because
    the HTML part needs it escaped and the text part needs it raw.
    """

    html_names: Mapping[str, str]
    text_names: Mapping[str, str]
    values: Sequence[Mapping[str, str]]


def plan_merge(content: Content, messages: Sequence[Message]) -> MergePlan:
    """Name one variable per merge key and part, and collect every recipient's values."""
    html_keys, text_keys = content.html.keys, content.text.keys
    html_names: dict[str, str] = {}
    text_names: dict[str, str] = {}
    rows: list[dict[str, str]] = [{} for _ in messages]
    for i, key in enumerate(sorted(html_keys | text_keys)):
        raw = [message.values.get(key, "") for message in messages]
        escaped = [html.escape(value, quote=True) for value in raw]
        if key in html_keys and key in text_keys and escaped == raw:
            # Escaping changes nothing in this batch: one variable serves both parts.
            html_names[key] = text_names[key] = f"v{i}"
            for row, value in zip(rows, raw, strict=True):
                row[f"v{i}"] = value
            continue
        if key in html_keys:
            html_names[key] = f"h{i}"
            for row, value in zip(rows, escaped, strict=True):
                row[f"h{i}"] = value
        if key in text_keys:
            text_names[key] = f"t{i}"
            for row, value in zip(rows, raw, strict=True):
                row[f"t{i}"] = value
    return MergePlan(html_names, text_names, rows)


def fill_slots(
    text: MergeText,
    names: Mapping[str, str],
    token: Callable[[str], str],
    literal: Callable[[str], str] = str,
) -> str:
    """The text with each slot replaced by its variable's token; literals pass `literal`."""
    return "".join(
        token(names[part]) if i % 2 else literal(part) for i, part in enumerate(text.parts)
    )


# RFC 5322 field names: printable ASCII except the colon (and so no space either).
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")


def header_pairs(message: Message, *, message_id: bool = True) -> list[tuple[str, str]]:
    """A message's extra headers (List-Unsubscribe...), with its Message-ID if asked."""
    pairs = list(message.headers)
    if message_id and message.message_id:
        pairs.append(("Message-ID", message.message_id))
    for name, _ in pairs:
        if not _HEADER_NAME.match(name):
            raise PermanentFailure(f"`{name}` is not a valid mail header name; it cannot be sent.")
    return pairs
