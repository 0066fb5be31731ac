"""MIME once per issue: the parts encoded once, each reader's message assembled from them."""

from __future__ import annotations

import email.generator
import email.utils
import html
import re
import threading
from collections.abc import Mapping, Sequence
from email import quoprimime

from digestcli.errors import DigestError
from digestcli.message import _POLICY, check_header, to_header, to_mime
from digestcli.models import Content, MergeText, Message, Recipient

# Lines fold at the policy's limit, as the standard library's contentmanager folds them.
_MAX_LINE = _POLICY.max_line_length or 998
_CRLF = "\r\n"
# Header values printed as they are by the standard library's folding (checked by
# tests/test_mime.py against it): printable ASCII, single spaces, no encoded-word opener.
_PLAIN_VALUE = re.compile(r"[!-~]+(?: [!-~]+)*")
# A To header the standard library prints unchanged: an unquoted name of atext words and a
# dot-atom address. Anything else (quoting, non-ASCII, comments) is folded by the library.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_NAME = re.compile(rf"{_ATEXT}(?: {_ATEXT})*")
_PLAIN_ADDRESS = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
_BOUNDARY = re.compile(rb"={15}\d+==")
_TEXT_HEADERS = (
    b'Content-Type: text/plain; charset="utf-8"\r\n'
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
)
# add_alternative() leaves a MIME-Version on the HTML part; the slow path prints it, so do we.
_HTML_HEADERS = (
    b'Content-Type: text/html; charset="utf-8"\r\n'
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"MIME-Version: 1.0\r\n\r\n"
)


def fold(name: str, value: str) -> bytes:
    """One header line exactly as the slow path's generator writes it."""
    header = _POLICY.header_store_parse(name, value)[1]
    return _POLICY.fold_binary(name, header)


def _fast_header(name: str, value: str) -> bytes:
    """A header line, printed directly when the library would print it unchanged."""
    if (
        len(name) + len(value) + 2 <= _MAX_LINE
        and "=?" not in value
        and _PLAIN_VALUE.fullmatch(value)
    ):
        return f"{name}: {value}\r\n".encode("ascii")
    return fold(name, value)


def _qp(text: str) -> str:
    """Quoted-printable of text with "\\n" line breaks, as the slow path encodes a part."""
    return quoprimime.body_encode(text.encode("utf-8").decode("latin-1"), _MAX_LINE, _CRLF)


class PartTemplate:
    """One body part encoded once: constant lines as bytes, the lines with slots per reader.

    Quoted-printable encodes each line on its own (soft breaks and trailing whitespace depend
    only on that line), so the lines without a slot are the same for every reader and only
    the lines touching a slot are encoded again. A value with a line break would change the
    lines themselves: such a reader takes the slow path.
    """

    def __init__(self, text: MergeText, *, escape: bool) -> None:
        parts = list(text.parts)
        self.escape = escape
        # Pieces: bytes (encoded constant lines) or a line template (literal, key, literal...).
        self.pieces: list[bytes | tuple[str, ...]] = []
        self.usable = "\r" not in "".join(parts[0::2]) and bool(parts[-1])
        if not self.usable:
            return  # a CR or a part ending in a slot: its line breaks are the reader's
        if not parts[-1].endswith("\n"):
            parts[-1] += "\n"  # the encoder ends the part with a line break
        constant: list[str] = []
        line: list[str] = []
        for index, part in enumerate(parts):
            if index % 2:
                line.append(part)
                continue
            pieces = part.split("\n")
            if len(pieces) == 1:
                line.append(part)
                continue
            line.append(pieces[0])
            self._line(line, constant)
            constant.extend(pieces[1:-1])
            line = [pieces[-1]]
        self._flush(constant)

    def _line(self, line: list[str], constant: list[str]) -> None:
        if len(line) == 1:
            constant.append(line[0])
            return
        self._flush(constant)
        self.pieces.append(tuple(line))

    def _flush(self, constant: list[str]) -> None:
        if constant:
            self.pieces.append(_qp("\n".join(constant) + "\n").encode("ascii"))
            constant.clear()

    def encode(self, values: Mapping[str, str]) -> list[bytes] | None:
        """The encoded part for these raw values; None when a value holds a line break."""
        out: list[bytes] = []
        for piece in self.pieces:
            if isinstance(piece, bytes):
                out.append(piece)
                continue
            filled = []
            for index, part in enumerate(piece):
                if index % 2:
                    value = values.get(part, "")
                    if "\n" in value or "\r" in value:
                        return None
                    filled.append(html.escape(value, quote=True) if self.escape else value)
                else:
                    filled.append(part)
            out.append((_qp("".join(filled)) + _CRLF).encode("ascii"))
        return out


class MessageTemplate:
    """An issue's message for every reader: shared encoded parts plus each reader's headers."""

    def __init__(self, content: Content) -> None:
        self.content = content
        self.text = PartTemplate(content.text, escape=False)
        self.html = PartTemplate(content.html, escape=True)
        self.from_line = fold("From", check_header("From", content.from_addr))
        reply_to = content.reply_to
        self.reply_line = fold("Reply-To", check_header("Reply-To", reply_to)) if reply_to else b""
        self._subjects: dict[str, bytes] = {}
        self._dates: dict[str, bytes] = {}
        self.usable = self.text.usable and self.html.usable and self._agrees()

    def _agrees(self) -> bool:
        """Whether a probe reader's message is the slow path's, byte for byte (boundary aside)."""
        keys = sorted(self.content.text.keys | self.content.html.keys)
        probe = Message(
            content=self.content,
            to=Recipient("probe.reader@example.org", "Probe Reader"),
            subject=self.content.subject,
            message_id="<0123456789abcdef@example.org>",
            values={key: f"probe {key} & <value>" for key in keys},
            headers=(("List-Unsubscribe", "<https://example.org/u?token=probe>"),),
        )
        self.usable = True
        try:
            fast = self.render(probe, date=0)
            slow = slow_bytes(probe, date=0)
        except (ValueError, DigestError):
            return False  # then every reader takes the slow path, which says what is wrong
        return fast is not None and _BOUNDARY.sub(b"B", fast) == _BOUNDARY.sub(b"B", slow)

    def _subject(self, subject: str) -> bytes:
        line = self._subjects.get(subject)
        if line is None:
            if len(self._subjects) >= 16:
                self._subjects.clear()
            line = self._subjects[subject] = fold("Subject", check_header("Subject", subject))
        return line

    def _date(self, date: float | None) -> bytes:
        value = email.utils.formatdate(date, localtime=False)
        line = self._dates.get(value)
        if line is None:
            if len(self._dates) >= 16:
                self._dates.clear()
            line = self._dates[value] = fold("Date", value)
        return line

    def render(self, message: Message, *, date: float | None = None) -> bytes | None:
        """The reader's message bytes, or None when only the slow path can build them."""
        to = message.to
        if not self.usable or not to.email.isascii():
            return None  # an internationalised address changes the policy (SMTPUTF8)
        text = self.text.encode(message.values)
        body = self.html.encode(message.values) if text is not None else None
        if text is None or body is None:
            return None
        to_value = check_header("To", to_header(to))
        if _PLAIN_ADDRESS.fullmatch(to.email) and (not to.name or _PLAIN_NAME.fullmatch(to.name)):
            to_line = _fast_header("To", to_value)
        else:
            to_line = fold("To", to_value)
        head = [self.from_line, to_line, self._subject(message.subject), self._date(date)]
        if message.message_id:
            head.append(_fast_header("Message-ID", check_header("Message-ID", message.message_id)))
        if self.reply_line:
            head.append(self.reply_line)
        for name, value in message.headers:
            if value:
                head.append(_fast_header(name, check_header(name, value)))
        # The generator's own boundary: the same random draw, and quoted-printable text can
        # never hold "==", so its collision check would never draw again.
        boundary = email.generator.Generator._make_boundary().encode("ascii")  # type: ignore[attr-defined]
        head.append(b"MIME-Version: 1.0\r\n")
        head.append(b'Content-Type: multipart/alternative; boundary="' + boundary + b'"\r\n')
        head += [b"\r\n--", boundary, b"\r\n", _TEXT_HEADERS, *text]
        head += [b"\r\n--", boundary, b"\r\n", _HTML_HEADERS, *body]
        head += [b"\r\n--", boundary, b"--\r\n"]
        return b"".join(head)


_TEMPLATES: dict[int, MessageTemplate] = {}
_LOCK = threading.Lock()


def template_for(content: Content) -> MessageTemplate:
    """The issue's template, made once per rendered issue (and checked against the slow path)."""
    found = _TEMPLATES.get(id(content))
    if found is not None and found.content is content:
        return found
    with _LOCK:
        found = _TEMPLATES.get(id(content))
        if found is None or found.content is not content:
            if len(_TEMPLATES) >= 8:
                _TEMPLATES.clear()
            found = _TEMPLATES[id(content)] = MessageTemplate(content)
    return found


def slow_bytes(message: Message, *, date: float | None = None) -> bytes:
    """The reference: the message serialised by the standard library's generator."""
    return to_mime(message, date=date).as_bytes()


def message_bytes(message: Message, *, date: float | None = None) -> bytes:
    """The message as bytes with CRLF line endings: the template's, else the slow path's."""
    fast = template_for(message.content).render(message, date=date)
    return fast if fast is not None else slow_bytes(message, date=date)


def batch_bytes(messages: Sequence[Message], *, date: float | None = None) -> list[bytes]:
    """Each message's bytes, for a batch of one issue."""
    return [message_bytes(message, date=date) for message in messages]
