"""Request bodies for the HTTP providers: JSON and multipart encoders, merge slots, headers."""

from __future__ import annotations

import email.utils
import hashlib
import html
import json
import re
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from digestcli.errors import PermanentFailure
from digestcli.models import BatchKey, Content, MergeText, Message


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


# What json.dumps(text, ensure_ascii=False) returns for a str, without making a JSONEncoder
# per call: that made escaping a reader's values a third of a Postmark body's time.
_encode_string: Callable[[str], str] = json.encoder.encode_basestring


def _json_inner(text: str) -> str:
    return _encode_string(text)[1:-1]


def json_string(value: str) -> str:
    """A value as json_body encodes it: a str straight through the C string encoder."""
    if type(value) is not str:
        return json_body(value).decode("utf-8")
    return _encode_string(value)


def json_members(item: Mapping[str, Any]) -> str:
    """An object's members as json_body encodes them, without the braces ('' if none)."""
    return _COMPACT.encode(dict(item))[1:-1]


class JSONText:
    """A MergeText whose fixed pieces are JSON-escaped and UTF-8 encoded once, filled per reader.

    JSON escapes character by character, so escaping the pieces and the values apart gives
    exactly the bytes of escaping the filled text. A reader's text is the shared encoded
    pieces plus its few encoded values: nothing of the ~13 KB issue is copied or re-encoded
    per recipient (joining and encoding it was most of a Postmark or Resend body's time).
    """

    def __init__(self, text: MergeText, *, html_values: bool) -> None:
        literals = [_json_inner(piece).encode("utf-8") for piece in text.literals]
        literals[0] = b'"' + literals[0]
        literals[-1] += b'"'
        self.literals = literals
        self.keys = text.parts[1::2]
        self.html_values = html_values

    def chunks(self, values: Mapping[str, str]) -> list[bytes]:
        """The filled text as a JSON string literal (quotes included), in encoded pieces."""
        out = [self.literals[0]]
        encoded: dict[str, bytes] = {}  # a value fills several slots (the link, the name)
        for key, piece in zip(self.keys, self.literals[1:], strict=True):
            value = encoded.get(key)
            if value is None:
                raw = values.get(key, "")
                if self.html_values:
                    raw = html.escape(raw, quote=True)
                value = encoded[key] = _json_inner(raw).encode("utf-8")
            out.append(value)
            out.append(piece)
        return out

    def literal(self, values: Mapping[str, str]) -> str:
        """The filled text as a JSON string literal, quotes included."""
        return b"".join(self.chunks(values)).decode("utf-8")


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

    def parts(
        self, message: Message, html_field: str, text_field: str
    ) -> list[tuple[bytes, list[bytes]]]:
        """The message's HTML and text bodies as (encoded '"name":', JSON literal chunks)."""
        content = message.content
        return [
            (_field(html_field), self.text(content.html, html_values=True).chunks(message.values)),
            (_field(text_field), self.text(content.text, html_values=False).chunks(message.values)),
        ]

    @staticmethod
    def body(
        items: Sequence[tuple[dict[str, Any] | str, list[tuple[bytes, list[bytes]]]]],
    ) -> Body:
        """A JSON array of objects: each item's small fields, then its pre-encoded ones.

        An item's small fields may come already encoded, as the JSON text of their object.
        """
        # Pieces are encoded one by one and never joined here: a batch of 500 messages is
        # ~12 MB, and every intermediate copy of it is memory held by each batch in flight.
        chunks: list[bytes] = [b"["]
        for index, (item, extra) in enumerate(items):
            if index:
                chunks.append(b",")
            small = item if type(item) is str else _COMPACT.encode(item)
            chunks.append(small[:-1].encode("utf-8"))
            for position, (name, literal) in enumerate(extra):
                if position or len(small) > 2:
                    chunks.append(b",")
                chunks.append(name)
                chunks.extend(literal)
            chunks.append(b"}")
        chunks.append(b"]")
        return Body(chunks)


# One encoder for every small object: json.dumps with options builds a new one per call.
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_FIELDS: dict[str, bytes] = {}


def _field(name: str) -> bytes:
    """'"name":' encoded, made once per field name."""
    found = _FIELDS.get(name)
    if found is None:
        found = _FIELDS[name] = f"{json.dumps(name)}:".encode()
    return found


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


def batch_labels(batch_key: BatchKey | None) -> tuple[str, str]:
    """The (campaign, batch) labels a provider records: ("", "") for a test send."""
    return (batch_key.campaign, str(batch_key)) if batch_key else ("", "")


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
_VALID_NAMES: set[str] = set()


def header_pairs(message: Message, *, message_id: bool = True) -> list[tuple[str, str]]:
    """A message's extra headers (List-Unsubscribe...), with its Message-ID if asked."""
    pairs = list(message.headers)
    if message_id and message.message_id:
        pairs.append(("Message-ID", message.message_id))
    for name, _ in pairs:
        if name not in _VALID_NAMES:
            if not _HEADER_NAME.match(name):
                raise PermanentFailure(
                    f"`{name}` is not a valid mail header name; it cannot be sent."
                )
            if len(_VALID_NAMES) < 256:  # a few names per send, checked once each
                _VALID_NAMES.add(name)
    return pairs
