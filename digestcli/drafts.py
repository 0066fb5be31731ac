"""The draft format: Markdown with front matter; parse, edit and write it back losslessly.

A draft file::

    ---
    title: Weekly digest
    subject: "..."
    date: 2026-11-30
    number: 12
    ---

    Intro in Markdown.

    ## First headline
    link: https://example.org/story "Read the story"
    image: https://example.org/picture.png "What the picture shows"

    Body in Markdown.

    # Wrapping Up

    Closing section in Markdown.

Every level-2 heading (``## ``) starts an item and the level-1 heading (``# ``) starts the
closing section. The file is kept as raw blocks, so saving gives back the same bytes and
an edit rewrites only the block it touches.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from digestcli import fsutil
from digestcli.errors import DraftError
from digestcli.models import Image, Issue, Item, Link

FIELDS = ("title", "subject", "preheader", "date", "number")
TEXT_FIELDS = ("title", "subject", "preheader")
DEFAULT_OUTRO_TITLE = "Wrapping Up"
URL_SCHEMES = ("http://", "https://", "mailto:")

_ITEM = re.compile(r"^##[ \t]+(?P<title>.*?)[ \t]*$")
_OUTRO = re.compile(r"^#[ \t]+(?P<title>.*?)[ \t]*$")
_META = re.compile(
    r'^(?P<key>link|image):[ \t]+(?P<url>\S+)(?:[ \t]+"(?P<label>.*)")?[ \t]*$', re.I
)
_FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_FM_KEY = re.compile(r"^(?P<key>[A-Za-z_][\w-]*)[ \t]*:")
_PLAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 .,'!?()&/+\-]*$")


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps an impossible date (2026-02-30) as text, for _check to report."""


def _timestamp(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> object:
    try:
        return loader.construct_yaml_timestamp(node)
    except ValueError:
        return loader.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)


def _load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # safe: _Loader is a SafeLoader


def _strip_eol(line: str) -> str:
    return line.rstrip("\r\n")


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


def _split_lines(text: str, *, keepends: bool = False) -> list[str]:
    """Lines broken at LF, CRLF or CR only, as Markdown breaks them.

    str.splitlines also breaks at U+2028, form feeds, U+001C-U+001E and U+0085, which may sit
    inside a title or an alt text and must not split it.
    """
    lines: list[str] = _LINE.findall(text)
    return lines if keepends else [_strip_eol(line) for line in lines]


def _blank(line: str) -> bool:
    return not line.strip()


@dataclass(frozen=True)
class _Marker:
    index: int
    kind: str  # "item" or "outro"
    title: str


def _scan(lines: list[str]) -> tuple[list[_Marker], int | None]:
    """Find section headings outside fenced code; also the line of a fence left open."""
    markers: list[_Marker] = []
    fence: str | None = None
    fence_line: int | None = None
    for i, raw in enumerate(lines):
        line = _strip_eol(raw)
        match = _FENCE.match(line)
        if fence is not None:
            closes = match and match["fence"][0] == fence[0] and len(match["fence"]) >= len(fence)
            if closes and not line.strip().lstrip(fence[0]):
                fence, fence_line = None, None
            continue
        if match:
            fence, fence_line = match["fence"], i
            continue
        if item := _ITEM.match(line):
            markers.append(_Marker(i, "item", item["title"]))
        elif outro := _OUTRO.match(line):
            markers.append(_Marker(i, "outro", outro["title"]))
    return markers, fence_line


def _format_scalar(value: str | int) -> str:
    """A YAML scalar that loads back to exactly value."""
    if isinstance(value, int):
        return str(value)
    if _PLAIN.match(value) and not value.endswith(" "):
        try:
            # Plain only when any YAML reader gets the same text back (2026-13-45 is not).
            if yaml.safe_load(f"k: {value}") == {"k": value}:
                return value
        except (yaml.YAMLError, ValueError):
            pass
    out = ['"']
    for ch in value:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif (
            code < 0x20
            or 0x7F <= code <= 0x9F
            or ch in "\u2028\u2029\ufeff"
            or (0xD800 <= code <= 0xDFFF or code in (0xFFFE, 0xFFFF))
        ):
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _check_line(what: str, value: str) -> str:
    if "\n" in value or "\r" in value:
        raise DraftError(f"the {what} must be one line; remove the line break.")
    return value


def _check_url(what: str, url: str) -> str:
    if not url.startswith(URL_SCHEMES) or any(c.isspace() for c in url):
        raise DraftError(
            f"the {what} `{url}` is not a web address; give an http://, https:// or mailto: URL."
        )
    return url


def _check_markdown(what: str, text: str) -> str:
    """Refuse text that would break the draft's structure (a heading or an open fence)."""
    lines = _split_lines(text, keepends=True)
    markers, open_fence = _scan(lines)
    if markers:
        line = markers[0].index + 1
        level = "##" if markers[0].kind == "item" else "#"
        raise DraftError(
            f"the {what} has a line starting with '{level} ' (its line {line}), which would "
            "start a new section; use '###' for headings inside it."
        )
    if open_fence is not None:
        raise DraftError(
            f"the {what} opens a code fence on its line {open_fence + 1} and never closes it; "
            "close it."
        )
    return text


def _clean_block(text: str) -> str:
    """Text trimmed of leading and trailing blank lines, ending in one newline (or empty)."""
    lines = _split_lines(text)
    while lines and _blank(lines[0]):
        lines.pop(0)
    while lines and _blank(lines[-1]):
        lines.pop()
    return "\n".join(lines) + "\n" if lines else ""


def format_item(item: Item) -> str:
    """The Markdown block for an item, as the CLI writes it."""
    title = _check_line("item title", item.title).strip()
    if not title:
        raise DraftError("an item needs a title; give a non-empty TITLE.")
    lines = [f"## {title}\n"]
    if item.link:
        label = f' "{_check_line("link label", item.link.label)}"' if item.link.label else ""
        lines.append(f"link: {_check_url('link', item.link.url)}{label}\n")
    if item.image:
        alt = _check_line("image alt text", item.image.alt)
        lines.append(f'image: {_check_url("image URL", item.image.url)} "{alt}"\n')
    body = _clean_block(_check_markdown("item body", item.body))
    if body:
        lines.append("\n" + body)
    return "".join(lines)


def parse_item_block(block: str) -> Item:
    """An Item from its raw block (heading, link/image lines, body)."""
    lines = _split_lines(block)
    heading = _ITEM.match(lines[0]) if lines else None
    if heading is None:
        raise DraftError("an item must start with a '## Title' line.")
    link: Link | None = None
    image: Image | None = None
    rest = 1
    while rest < len(lines) and (meta := _META.match(lines[rest])):
        if meta["key"].lower() == "link":
            link = Link(meta["url"], meta["label"])
        else:
            image = Image(meta["url"], meta["label"] or "")
        rest += 1
    body = _clean_block("\n".join(lines[rest:]))
    return Item(title=heading["title"], body=body.rstrip("\n"), link=link, image=image)


class FrontMatter:
    """The YAML header kept as its raw lines, edited a key at a time."""

    def __init__(self, lines: list[str], path: Path) -> None:
        self.lines = lines
        self.path = path
        self.data = self._parse()

    def _parse(self) -> dict[str, Any]:
        body = "".join(self.lines[1:-1])
        try:
            data = _load_yaml(body)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = (mark.line + 2) if mark is not None else 1
            problem = getattr(exc, "problem", None) or "invalid YAML"
            raise DraftError(
                f"{self.path}:{line}: the front matter is not valid YAML ({problem}); "
                "fix that line."
            ) from None
        if data is None:  # empty, or only comments
            data = {}
        if not isinstance(data, dict):
            raise DraftError(
                f"{self.path}:2: the front matter must be `field: value` lines; fix it."
            )
        for key, value in data.items():
            if key not in FIELDS:
                raise DraftError(
                    f"{self.path}:{self._line_of(str(key))}: unknown front-matter field "
                    f"`{key}`; known fields are {', '.join(FIELDS)}."
                )
            data[key] = self._check(str(key), value)
        return data

    def _check(self, key: str, value: Any) -> Any:
        where = f"{self.path}:{self._line_of(key)}"
        if value is None:
            return None
        if key == "number":
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise DraftError(f"{where}: `number` must be a whole number from 1 up.")
            return value
        if key == "date":
            if isinstance(value, dt.date):
                return value.isoformat()
            if isinstance(value, str) and _DATE.match(value):
                try:
                    return dt.date.fromisoformat(value).isoformat()
                except ValueError:
                    pass
            raise DraftError(f"{where}: `date` must be a date written YYYY-MM-DD.")
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            text = str(value)
            if "\n" in text or "\r" in text:
                raise DraftError(f"{where}: `{key}` must be one line; remove the line break.")
            return text
        raise DraftError(f"{where}: `{key}` must be text, not a list or table.")

    def _line_of(self, key: str) -> int:
        for i, line in enumerate(self.lines[1:-1], start=2):
            match = _FM_KEY.match(line)
            if match and match["key"] == key:
                return i
        return 1

    def _span(self, key: str) -> tuple[int, int] | None:
        """The line range [start, end) holding key's value, continuation lines included."""
        start: int | None = None
        end = len(self.lines) - 1
        for i in range(1, len(self.lines) - 1):
            line = self.lines[i]
            match = _FM_KEY.match(line)
            if start is None:
                if match and match["key"] == key:
                    start = i
            elif match or (line[:1] not in (" ", "\t") and not _blank(line)):
                end = i
                break
        if start is None:
            return None
        while end > start + 1 and _blank(self.lines[end - 1]):
            end -= 1  # blank lines after the value belong to the layout, not to the value
        return start, end

    def set(self, key: str, value: str | int | None) -> None:
        """Set or (value None) remove a field, touching only its own lines."""
        if key not in FIELDS:
            raise DraftError(f"unknown field `{key}`; known fields are {', '.join(FIELDS)}.")
        if value is None:
            new = []
        elif key == "date" and isinstance(value, str) and _DATE.match(value):
            new = [f"{key}: {value}\n"]  # plain, so YAML reads it as a date like a hand-written one
        else:
            new = [f"{key}: {_format_scalar(value)}\n"]
        span = self._span(key)
        lines = list(self.lines)
        if span is None:
            closing = len(lines) - 1
            if not lines[closing - 1].endswith("\n"):
                lines[closing - 1] += "\n"
            lines[closing:closing] = new
        else:
            lines[span[0] : span[1]] = new
        old = self.lines
        self.lines = lines
        try:
            self.data = self._parse()
        except DraftError:
            self.lines = old
            raise

    def text(self) -> str:
        """The raw front matter, delimiters included."""
        return "".join(self.lines)


class Draft:
    """A parsed draft that remembers its bytes: front matter, intro, items, closing section."""

    def __init__(
        self, path: Path, front: FrontMatter, intro: str, items: list[str], outro: str
    ) -> None:
        self.path = path
        self.front = front
        self.intro = intro
        self.items = items
        self.outro = outro

    # ----- reading -------------------------------------------------------------------------
    def text(self) -> str:
        """The whole file."""
        return self.front.text() + self.intro + "".join(self.items) + self.outro

    def item(self, position: int) -> Item:
        """The item at a 1-based position."""
        return parse_item_block(self.items[self._index(position)])

    @property
    def outro_title(self) -> str:
        """The closing section's heading."""
        if not self.outro:
            return ""
        match = _OUTRO.match(_strip_eol(_split_lines(self.outro)[0]))
        return match["title"] if match else ""

    @property
    def outro_body(self) -> str:
        """The closing section's Markdown."""
        return _clean_block("\n".join(_split_lines(self.outro)[1:])).rstrip("\n")

    @property
    def issue(self) -> Issue:
        """The draft's content as data."""
        data = self.front.data
        title = data.get("title") or ""
        number = data.get("number")
        return Issue(
            title=title,
            subject=data.get("subject") or title,
            preheader=data.get("preheader") or "",
            date=data.get("date") or "",
            number=number if isinstance(number, int) else None,
            intro=_clean_block(self.intro).rstrip("\n"),
            items=tuple(parse_item_block(block) for block in self.items),
            outro_title=self.outro_title,
            outro=self.outro_body,
        )

    # ----- editing -------------------------------------------------------------------------
    def _index(self, position: int, *, extra: int = 0) -> int:
        count = len(self.items) + extra
        if not 1 <= position <= count:
            if count == 0:
                raise DraftError(f"{self.path.name} has no items yet; add one with `digest add`.")
            raise DraftError(
                f"there is no item {position} in {self.path.name}; "
                f"positions go from 1 to {count} (see `digest items`)."
            )
        return position - 1

    def _blocks(self) -> list[str]:
        return [self.intro, *self.items, self.outro]

    def _normalise(self, before: list[str]) -> None:
        """Keep blocks separated: a block that now has a new neighbour ends with a blank line.

        Blocks whose neighbour did not change keep their bytes, so an edit shows in a diff
        only where it happened.
        """
        if not self.front.lines[-1].endswith("\n"):
            self.front.lines[-1] += "\n"
        blocks = self._blocks()
        present = [i for i, b in enumerate(blocks) if b]
        old = [b for b in before if b]
        old_pairs = set(itertools.pairwise(old))
        for i, j in itertools.pairwise(present):
            block = blocks[i]
            eol = "\r\n" if "\r\n" in block else "\n"  # a CRLF file stays CRLF
            if not block.endswith("\n"):
                block += eol
            new_neighbour = (blocks[i], blocks[j]) not in old_pairs
            if new_neighbour and block.strip() and not block.endswith(("\n\n", "\n\r\n")):
                block += eol
            blocks[i] = block
        self.intro, self.items, self.outro = blocks[0], blocks[1:-1], blocks[-1]

    def set_field(self, key: str, value: str) -> None:
        """Set a front-matter field from its text form."""
        converted: str | int | None
        if key == "number":
            if not value.isdigit() or int(value) < 1:
                raise DraftError(f"`number` must be a whole number from 1 up, not `{value}`.")
            converted = int(value)
        elif key == "date":
            try:
                converted = dt.date.fromisoformat(value).isoformat()
            except ValueError:
                raise DraftError(f"`date` must be written YYYY-MM-DD, not `{value}`.") from None
        else:
            converted = _check_line(key, value) if value else (None if key != "title" else "")
            if key == "title" and not value.strip():
                raise DraftError("the title cannot be empty.")
        self.front.set(key, converted)

    def set_intro(self, text: str) -> None:
        """Replace the intro."""
        body = _clean_block(_check_markdown("intro", text))
        before = self._blocks()
        self.intro = "\n" + body
        self._normalise(before)

    def set_outro(self, text: str, title: str | None = None) -> None:
        """Replace the closing section (and its heading, when given)."""
        heading = _check_line("closing title", title or self.outro_title or DEFAULT_OUTRO_TITLE)
        body = _clean_block(_check_markdown("closing section", text))
        before = self._blocks()
        self.outro = f"# {heading.strip()}\n" + ("\n" + body if body else "")
        self._normalise(before)

    def add(self, item: Item, at: int | None = None) -> int:
        """Insert an item at a 1-based position (default: last); return its position."""
        block = format_item(item)
        index = len(self.items) if at is None else self._index(at, extra=1)
        before = self._blocks()
        self.items.insert(index, block)
        self._normalise(before)
        return index + 1

    def move(self, source: int, target: int) -> None:
        """Move the item at source to target (1-based)."""
        i, j = self._index(source), self._index(target)
        before = self._blocks()
        block = self.items.pop(i)
        self.items.insert(j, block)
        self._normalise(before)

    def remove(self, position: int) -> Item:
        """Remove and return the item at position."""
        item = self.item(position)
        before = self._blocks()
        del self.items[self._index(position)]
        self._normalise(before)
        return item

    def replace_item(self, position: int, block: str) -> None:
        """Replace an item's block with hand-edited text holding exactly one item."""
        lines = _split_lines(block, keepends=True)
        markers, open_fence = _scan(lines)
        if not markers or markers[0].index != next(
            (i for i, line in enumerate(lines) if not _blank(line)), -1
        ):
            raise DraftError("the edited item must start with a '## Title' line; nothing changed.")
        if len(markers) > 1 or markers[0].kind != "item":
            raise DraftError(
                "the edited text holds more than one section; keep one '## Title' item."
            )
        if open_fence is not None:
            raise DraftError("the edited item leaves a code fence open; close it.")
        index = self._index(position)
        before = self._blocks()
        old = self.items[index]
        gap = old[len(old.rstrip("\r\n \t")) :]
        content = "".join(lines[markers[0].index :]).rstrip("\r\n \t")
        self.items[index] = content + (gap if "\n" in gap else "\n")
        parse_item_block(self.items[index])
        self._normalise(before)


def parse_draft(text: str, path: Path) -> Draft:
    """Parse a draft's text; errors name the file and line."""
    lines = _split_lines(text, keepends=True)
    first = _strip_eol(lines[0]).lstrip("\ufeff") if lines else ""
    if first != "---":
        raise DraftError(
            f"{path}:1: a draft starts with front matter between two '---' lines; add them."
        )
    close = next((i for i in range(1, len(lines)) if _strip_eol(lines[i]) in ("---", "...")), None)
    if close is None:
        raise DraftError(f"{path}:1: the front matter is never closed; add a '---' line after it.")
    front = FrontMatter(lines[: close + 1], path)
    body = lines[close + 1 :]
    markers, open_fence = _scan(body)
    if open_fence is not None:
        raise DraftError(
            f"{path}:{close + 2 + open_fence}: a code fence opens here and never closes; close it."
        )
    outro_at = None
    for marker in markers:
        line = close + 2 + marker.index
        if marker.kind == "outro":
            if outro_at is not None:
                raise DraftError(
                    f"{path}:{line}: a second '# ' closing section; a draft has one "
                    "(use '##' for an item or '###' inside a section)."
                )
            outro_at = marker.index
        elif outro_at is not None:
            raise DraftError(
                f"{path}:{line}: item '{marker.title}' comes after the closing section; "
                "move it above the '# ' heading."
            )
        if not marker.title:
            raise DraftError(f"{path}:{line}: a heading without a title; write its title.")
    starts = [m.index for m in markers]
    ends = [*starts[1:], len(body)] if starts else []
    intro = "".join(body[: starts[0] if starts else len(body)])
    items: list[str] = []
    outro = ""
    for marker, start, end in zip(markers, starts, ends, strict=True):
        block = "".join(body[start:end])
        if marker.kind == "item":
            items.append(block)
        else:
            outro = block
    return Draft(path, front, intro, items, outro)


def load_draft(path: Path) -> Draft:
    """Read and parse a draft file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DraftError(f"{path}: no such draft; `digest drafts` lists them.") from None
    except OSError as exc:
        raise DraftError(f"{path}: cannot read it ({exc.strerror}).") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DraftError(f"{path}:{line}: not UTF-8 text; save the file as UTF-8.") from None
    return parse_draft(text, path)


def save_draft(draft: Draft) -> None:
    """Write a draft back, checking first that the result parses."""
    text = draft.text()
    parse_draft(text, draft.path)
    fsutil.write_atomic(draft.path, text)


def new_draft_text(title: str, subject: str, preheader: str, date: str, number: int | None) -> str:
    """The text of a fresh draft file."""
    lines = ["---\n", f"title: {_format_scalar(_check_line('title', title))}\n"]
    lines.append(f"subject: {_format_scalar(_check_line('subject', subject or title))}\n")
    if preheader:
        lines.append(f"preheader: {_format_scalar(_check_line('preheader', preheader))}\n")
    lines.append(f"date: {date}\n")
    if number is not None:
        lines.append(f"number: {number}\n")
    lines.append("---\n\n")
    return "".join(lines)
