"""Draft Markdown to sanitised HTML, inline HTML for headlines, and plain text."""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

import nh3
from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

from digestcli.scan import INLINE_TAGS

#: URL schemes a link may keep; anything else (javascript:, data:, vbscript:...) loses its href.
LINK_SCHEMES = frozenset({"http", "https", "mailto"})
#: Images are fetched by the mail client, so only web URLs make sense.
IMAGE_SCHEMES = frozenset({"http", "https"})

# What a headline may hold: the scanner's inline tags but <font>, which is for template authors
# (drafts get their look from the theme), plus line breaks and deletions.
_INLINE_TAGS = (INLINE_TAGS - {"font"}) | {"br", "del"}
_BLOCK_TAGS = _INLINE_TAGS | frozenset(
    {"blockquote", "dd", "div", "dl", "dt", "figcaption", "figure", "h1", "h2", "h3", "h4"}
    | {"h5", "h6", "hr", "img", "li", "ol", "p", "pre", "table", "tbody", "td", "tfoot"}
    | {"th", "thead", "tr", "ul"}
)
# No style, class or on* attributes: the theme owns the look and scripts never run in mail.
_ATTRIBUTES: dict[str, set[str]] = {
    "*": {"dir", "lang", "title"},
    "a": {"href"},
    "abbr": {"title"},
    "img": {"src", "alt", "width", "height"},
    "ol": {"start"},
    "td": {"align", "colspan", "rowspan"},
    "th": {"align", "colspan", "rowspan"},
}

_md = MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False})
_block_cleaner = nh3.Cleaner(
    tags=set(_BLOCK_TAGS),
    attributes=_ATTRIBUTES,
    url_schemes=set(LINK_SCHEMES),
    link_rel=None,
)
_inline_cleaner = nh3.Cleaner(
    tags=set(_INLINE_TAGS),
    attributes=_ATTRIBUTES,
    url_schemes=set(LINK_SCHEMES),
    link_rel=None,
)
# Tags only: turns raw HTML in the text part into its readable words (script/style dropped).
_text_cleaner = nh3.Cleaner(tags=set())
_RAW_OPEN = re.compile(r"<\s*(script|style)\b", re.IGNORECASE)
_RAW_CLOSE = re.compile(r"<\s*/\s*(script|style)\b", re.IGNORECASE)


def safe_url(url: str, schemes: frozenset[str] = LINK_SCHEMES) -> str | None:
    """The URL if its scheme is allowed (or it is relative), else None."""
    url = url.strip()
    scheme = urlsplit(url).scheme.lower()
    if scheme and scheme not in schemes:
        return None
    if not scheme and ":" in url.split("/", 1)[0]:
        # urlsplit gives up on some malformed schemes ("java\tscript:"); refuse those too.
        return None
    return url


def to_html(markdown: str) -> str:
    """Render Markdown blocks as sanitised HTML."""
    if not markdown.strip():
        return ""
    return str(_block_cleaner.clean(_md.render(markdown))).strip()


def to_inline_html(markdown: str) -> str:
    """Render one line of Markdown (a headline) as sanitised inline HTML, no paragraph."""
    if not markdown.strip():
        return ""
    return str(_inline_cleaner.clean(_md.renderInline(markdown))).strip()


def to_text(markdown: str) -> str:
    """Render Markdown as plain text: emphasis dropped, lists marked, links as label (url)."""
    if not markdown.strip():
        return ""
    root = SyntaxTreeNode(_md.parse(markdown))
    return _blocks(root.children).strip("\n")


def to_inline_text(markdown: str) -> str:
    """Render one line of Markdown (a headline) as plain text."""
    if not markdown.strip():
        return ""
    root = SyntaxTreeNode(_md.parseInline(markdown))
    return _join(_inline_children(root)).strip()


def _inline_children(root: SyntaxTreeNode) -> list[SyntaxTreeNode]:
    children: list[SyntaxTreeNode] = []
    for node in root.children:
        children.extend(node.children if node.type == "inline" else [node])
    return children


def _blocks(nodes: list[SyntaxTreeNode], *, tight: bool = False) -> str:
    rendered = [text for node in nodes if (text := _block(node))]
    return ("\n" if tight else "\n\n").join(rendered)


def _block(node: SyntaxTreeNode) -> str:
    kind = node.type
    if kind in ("paragraph", "heading"):
        return _inline_all(node)
    if kind in ("bullet_list", "ordered_list"):
        return _list(node)
    if kind == "blockquote":
        inner = _blocks(node.children)
        return "\n".join(f"> {line}" if line else ">" for line in inner.split("\n"))
    if kind in ("code_block", "fence"):
        return "\n".join(
            f"    {line}" if line else "" for line in node.content.rstrip("\n").split("\n")
        )
    if kind == "hr":
        return "* * *"
    if kind == "html_block":
        return _strip_tags(node.content).strip()
    return _blocks(node.children)


def _list(node: SyntaxTreeNode) -> str:
    start = node.attrs.get("start", 1) if node.type == "ordered_list" else None
    number = int(start) if start is not None else 0
    # Tight lists hide their paragraphs; loose ones get a blank line between items.
    tight = any(child.hidden for item in node.children for child in item.children)
    lines: list[str] = []
    for offset, item in enumerate(node.children):
        marker = f"{number + offset}. " if start is not None else "- "
        body = _blocks(item.children, tight=tight)
        pad = " " * len(marker)
        first, *rest = body.split("\n") if body else [""]
        lines.append("\n".join([marker + first, *(pad + line if line else "" for line in rest)]))
    return ("\n" if tight else "\n\n").join(lines)


def _inline_all(node: SyntaxTreeNode) -> str:
    return _join(_inline_children(node)).strip()


def _join(nodes: list[SyntaxTreeNode]) -> str:
    out: list[str] = []
    skipping = False
    for node in nodes:
        if node.type == "html_inline":
            # Tags vanish and their words stay, as a reader sees them; script and style
            # bodies go too, as the sanitiser drops them from the HTML part.
            if _RAW_OPEN.match(node.content):
                skipping = True
            elif _RAW_CLOSE.match(node.content):
                skipping = False
        elif not skipping:
            out.append(_inline(node))
    return "".join(out)


def _inline(node: SyntaxTreeNode) -> str:
    kind = node.type
    if kind in ("text", "code_inline"):
        return node.content
    if kind in ("softbreak", "hardbreak"):
        return "\n"
    if kind == "link":
        label = _join(node.children)
        url = safe_url(str(node.attrs.get("href", "")))
        if url and url == label and url.lower().startswith("mailto:"):
            return url[len("mailto:") :]  # an autolinked address reads best bare
        if not url or url in (label, f"mailto:{label}"):
            return label or (url or "")
        return f"{label} ({url})" if label else url
    if kind == "image":
        alt = _join(node.children)
        src = safe_url(str(node.attrs.get("src", "")), IMAGE_SCHEMES)
        return f"{alt} ({src})" if src and alt else (alt or src or "")
    return _join(node.children)


def _strip_tags(fragment: str) -> str:
    return html.unescape(str(_text_cleaner.clean(fragment)))
