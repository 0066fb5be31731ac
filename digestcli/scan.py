"""One HTML scanner for render and checks: a page's visible text, links, images and CSS."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from html.parser import HTMLParser

#: Elements that sit inside a line of text: no word break before or after them.
INLINE_TAGS = frozenset(
    {"a", "abbr", "b", "code", "em", "i", "mark", "s", "small", "span", "strong", "sub", "sup"}
    | {"u", "font"}
)
# Never shown in a message body; <style> is kept apart for the CSS checks.
_HIDDEN_TAGS = frozenset({"head", "style", "script", "title"})


def squash(text: str) -> str:
    """Text with every run of whitespace made one space, as a reader sees it."""
    return " ".join(text.split())


@dataclass(frozen=True)
class Page:
    """What an HTML part holds for a reader: words, link and image URLs, and its CSS."""

    #: The visible text as written, whitespace kept (a word break is at least one space).
    raw_text: str
    #: Every <a href>, in document order.
    anchors: tuple[str, ...]
    #: Every <img>: its src and all its attributes.
    images: tuple[tuple[str, Mapping[str, str]], ...]
    #: Every style attribute, with a short name of its element: ('<td class="item">', css).
    styles: tuple[tuple[str, str], ...]
    #: The contents of every <style> element.
    style_blocks: tuple[str, ...]
    #: The href of every <link rel=stylesheet>.
    stylesheets: tuple[str, ...]

    @property
    def text(self) -> str:
        """The visible text with whitespace collapsed."""
        return squash(self.raw_text)

    @property
    def urls(self) -> list[str]:
        """The link URLs, then the image URLs."""
        return [*self.anchors, *(src for src, _ in self.images)]


def scan(html: str) -> Page:
    """Read an HTML document or fragment once."""
    scanner = _Scanner()
    scanner.feed(html)
    scanner.close()
    return Page(
        raw_text="".join(scanner.chunks),
        anchors=tuple(scanner.anchors),
        images=tuple(scanner.images),
        styles=tuple(scanner.styles),
        style_blocks=tuple(scanner.style_blocks),
        stylesheets=tuple(scanner.stylesheets),
    )


class _Scanner(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[str] = []
        self.images: list[tuple[str, Mapping[str, str]]] = []
        self.styles: list[tuple[str, str]] = []
        self.style_blocks: list[str] = []
        self.stylesheets: list[str] = []
        self.chunks: list[str] = []
        self._hidden = 0
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "a" and "href" in values:
            self.anchors.append(values["href"].strip())
        elif tag == "img":
            self.images.append((values.get("src", "").strip(), values))
        elif tag == "link" and "stylesheet" in values.get("rel", "").lower().split():
            self.stylesheets.append(values.get("href", ""))
        if values.get("style", "").strip():
            self.styles.append((_describe(tag, values), values["style"]))
        if tag in _HIDDEN_TAGS:
            self._hidden += 1
            self._in_style = tag == "style"
        elif tag not in INLINE_TAGS:
            self.chunks.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag in _HIDDEN_TAGS:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden = max(0, self._hidden - 1)
            self._in_style = False
        elif tag not in INLINE_TAGS:
            self.chunks.append(" ")

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.style_blocks.append(data)
        elif not self._hidden:
            self.chunks.append(data)


def _describe(tag: str, attrs: Mapping[str, str]) -> str:
    """A short name for an element: <td class="item">."""
    for name in ("class", "id"):
        if attrs.get(name):
            return f'<{tag} {name}="{attrs[name]}">'
    return f"<{tag}>"
