"""An issue to rendered content: Markdown, Jinja2 templates, CSS inlining, merge slots."""

from __future__ import annotations

import logging
import re
import secrets
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from digestcli import markdown
from digestcli.config import Publication, Settings
from digestcli.errors import TemplateError
from digestcli.message import build_message
from digestcli.mime import message_bytes
from digestcli.models import Content, Image, Issue, Link, MergeText, Message, Recipient
from digestcli.scan import scan, squash
from digestcli.tokens import load_secret, sign

HTML_TEMPLATE = "email.html.j2"
TEXT_TEMPLATE = "email.txt.j2"
#: Gmail cuts the HTML of a message above this many bytes behind a "View entire message" link.
GMAIL_CLIP_BYTES = 102 * 1024
SAMPLE_LIST = "default"

_VARIABLES = "issue, publication, subscriber, unsubscribe_url, web_url, web"
_FRIENDLY = {
    "digestcli.render.IssueView": "issue",
    "digestcli.render.ItemView": "item",
    "digestcli.config.Publication": "publication",
    "digestcli.render._Subscriber": "subscriber",
    "digestcli.models.Link": "item.link",
    "digestcli.models.Image": "item.image",
}


# ----- what templates see --------------------------------------------------------------------


@dataclass(frozen=True)
class ItemView:
    """One item as templates see it: numbered, with HTML and text renderings."""

    number: int
    title: str
    title_html: Markup
    title_text: str
    body: str
    body_html: Markup
    body_text: str
    link: Link | None
    image: Image | None


@dataclass(frozen=True)
class IssueView:
    """The issue as templates see it: plain fields plus HTML and text renderings."""

    title: str
    subject: str
    preheader: str
    date: str
    number: int | None
    intro: str
    intro_html: Markup
    intro_text: str
    items: tuple[ItemView, ...]
    outro_title: str
    outro: str
    outro_html: Markup
    outro_text: str


def _link(link: Link | None) -> Link | None:
    url = markdown.safe_url(link.url) if link else None
    return Link(url, link.label or None) if link and url else None


def _image(image: Image | None) -> Image | None:
    url = markdown.safe_url(image.url, markdown.IMAGE_SCHEMES) if image else None
    return Image(url, image.alt) if image and url else None


def _nothing(text: str) -> str:
    return ""


def issue_view(issue: Issue, *, text: bool = True) -> IssueView:
    """Render an issue's Markdown once, for both templates (text=False: the HTML only)."""
    # The web version has no text part: skipping it halves the Markdown work of a publish.
    as_text = markdown.to_text if text else _nothing
    inline_text = markdown.to_inline_text if text else _nothing
    items = tuple(
        ItemView(
            number=number,
            title=item.title,
            title_html=Markup(markdown.to_inline_html(item.title)),
            title_text=inline_text(item.title),
            body=item.body,
            body_html=Markup(markdown.to_html(item.body)),
            body_text=as_text(item.body),
            link=_link(item.link),
            image=_image(item.image),
        )
        for number, item in enumerate(issue.items, start=1)
    )
    return IssueView(
        title=issue.title,
        subject=issue.subject or issue.title,
        preheader=issue.preheader,
        date=issue.date,
        number=issue.number,
        intro=issue.intro,
        intro_html=Markup(markdown.to_html(issue.intro)),
        intro_text=as_text(issue.intro),
        items=items,
        outro_title=issue.outro_title,
        outro=issue.outro,
        outro_html=Markup(markdown.to_html(issue.outro)),
        outro_text=as_text(issue.outro),
    )


# ----- per-recipient slots -------------------------------------------------------------------


class _Slots:
    """Sentinel strings standing in for per-recipient values while the templates render."""

    def __init__(self, nonce: str) -> None:
        self.nonce = nonce
        self.keys: list[str] = []
        self._index: dict[str, int] = {}
        self.pattern = re.compile(rf"digest_{nonce}_(\d+)_")

    def slot(self, key: str) -> str:
        """The sentinel for a merge key, made on first use."""
        if key not in self._index:
            self._index[key] = len(self.keys)
            self.keys.append(key)
        return f"digest_{self.nonce}_{self._index[key]}_"

    def split(self, rendered: str, template: str) -> MergeText:
        """Cut rendered output at the sentinels into literal, key, literal, ... parts."""
        parts = self.pattern.split(rendered)
        for i in range(1, len(parts), 2):
            parts[i] = self.keys[int(parts[i])]
        if any(self.nonce in literal.lower() for literal in parts[0::2]):
            raise TemplateError(
                f"{template}: a per-recipient value (subscriber.* or unsubscribe_url) went "
                "through a filter or was cut; print it as it is, e.g. {{ subscriber.name }}."
            )
        return MergeText(tuple(parts))


class _Fields:
    """subscriber.fields: any name gives that custom field's slot."""

    def __init__(self, slots: _Slots) -> None:
        self._slots = slots

    def __getattr__(self, name: str) -> str:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._slots.slot(f"fields.{name}")

    def __getitem__(self, name: str) -> str:
        return self._slots.slot(f"fields.{name}")


@dataclass(frozen=True)
class _Subscriber:
    email: str
    name: str
    fields: _Fields


def _strings(issue: Issue, settings: Settings) -> Iterator[str]:
    yield from (issue.title, issue.subject, issue.preheader, issue.date, issue.intro)
    yield from (issue.outro_title, issue.outro)
    for item in issue.items:
        yield from (item.title, item.body)
        if item.link:
            yield from (item.link.url, item.link.label or "")
        if item.image:
            yield from (item.image.url, item.image.alt)
    pub = settings.publication
    yield from (pub.name, pub.address, pub.from_addr, pub.web_url or "", settings.unsubscribe.url)


def _nonce(
    issue: Issue, settings: Settings, token: Callable[[int], str] = secrets.token_hex
) -> str:
    # A content string that held the nonce would be split as if it were a slot.
    texts = [text.lower() for text in _strings(issue, settings)]
    while True:
        nonce = token(8)
        if not any(nonce in text for text in texts):
            return nonce


# ----- templates -----------------------------------------------------------------------------


def _autoescape(name: str | None) -> bool:
    # Escape everything but the plain-text templates, so a new HTML partial is safe by default.
    return not (name or "").endswith((".txt.j2", ".txt"))


def environment(templates_dir: Path, fallback: Path | None = None) -> jinja2.Environment:
    """The Jinja2 environment for a workspace's templates (then `fallback`'s, when given)."""
    loader: jinja2.BaseLoader = jinja2.FileSystemLoader(templates_dir)
    if fallback is not None:
        loader = jinja2.ChoiceLoader([loader, jinja2.FileSystemLoader(fallback)])
    return jinja2.Environment(
        loader=loader,
        autoescape=_autoescape,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _template_line(exc: BaseException, templates_dir: Path) -> tuple[str, int] | None:
    # Jinja rewrites tracebacks so template frames carry the template's file name and line.
    root = str(templates_dir.resolve())
    found = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        filename = frame.f_code.co_filename
        if filename.startswith(root) and filename.endswith(".j2"):
            found = (filename, lineno)
    return found


def _template_error(exc: Exception, name: str, templates_dir: Path) -> TemplateError:
    if isinstance(exc, jinja2.TemplateSyntaxError):
        source = Path(exc.filename) if exc.filename else templates_dir / (exc.name or name)
        return TemplateError(
            f"{_shown(source)}, line {exc.lineno}: {exc.message}; fix the template syntax there."
        )
    located = _template_line(exc, templates_dir)
    where = f"{_shown(Path(located[0]))}, line {located[1]}" if located else None
    if isinstance(exc, jinja2.TemplateNotFound):
        missing = _shown(templates_dir / str(exc.name))
        if where:
            return TemplateError(f"{where}: includes {missing}, which does not exist; create it.")
        return TemplateError(
            f"{missing} does not exist; restore it from the default theme "
            "(`digest init` in an empty folder makes a copy)."
        )
    detail = exc.message if isinstance(exc, jinja2.TemplateError) else str(exc)
    # Jinja names the Python class ("'digestcli.render.ItemView object' has no attribute");
    # the template author knows it by its variable name.
    for cls, variable in _FRIENDLY.items():
        detail = (detail or "").replace(f"'{cls} object'", variable)
    return TemplateError(
        f"{where or _shown(templates_dir / name)}: {detail}; fix that line "
        f"(templates may use {_VARIABLES})."
    )


def _render(env: jinja2.Environment, name: str, context: Mapping[str, Any], root: Path) -> str:
    try:
        return env.get_template(name).render(context)
    except (
        jinja2.TemplateError,
        TypeError,
        ValueError,
        ArithmeticError,
        LookupError,
        AttributeError,
    ) as exc:
        raise _template_error(exc, name, root) from exc


def render_template(
    env: jinja2.Environment, name: str, context: Mapping[str, Any], root: Path
) -> str:
    """Render one template; any failure is a TemplateError naming the template and line."""
    return _render(env, name, context, root)


# ----- CSS inlining --------------------------------------------------------------------------


def inline_css(html: str, template: str = HTML_TEMPLATE) -> str:
    """Inline the <style> rules into style attributes; @media and :hover rules stay behind."""
    import premailer  # lxml and cssutils are slow to import: only when rendering

    try:
        inlined = str(
            premailer.Premailer(
                html,
                keep_style_tags=False,
                strip_important=False,
                disable_validation=True,
                cssutils_logging_level=logging.CRITICAL,
                allow_network=False,
                allow_loading_external_files=False,
                remove_classes=False,
                # The template's width/height attributes are what Outlook sizes images and
                # tables by; CSS like width:100% must not overwrite them.
                disable_basic_attributes=["width", "height"],
            ).transform(pretty_print=False)
        )
    # premailer runs lxml and cssutils over the template's output; any failure of theirs
    # means the template produced HTML or CSS they cannot read.
    except Exception as exc:
        raise TemplateError(
            f"{template}: the rendered HTML could not be inlined ({type(exc).__name__}: "
            f"{exc}); check its markup and <style> block."
        ) from exc
    # lxml drops the template's final newline; files and MIME parts read better with it.
    return inlined if inlined.endswith("\n") else inlined + "\n"


# ----- the pipeline --------------------------------------------------------------------------


def render_issue(
    issue: Issue, settings: Settings, templates_dir: Path, *, web_url: str | None = None
) -> Content:
    """Render an issue once: HTML (CSS inlined) and text, with slots for each recipient.

    `web_url` is the issue's web page (a send fixes it); without one, [publication] web_url.
    """
    templates_dir = templates_dir.resolve()
    view = issue_view(issue)
    slots = _Slots(_nonce(issue, settings))
    publication = settings.publication
    context = {
        "issue": view,
        "publication": publication,
        "web_url": web_url or publication.web_url,
        # The email, not the web version `digest publish` renders from the same template.
        "web": False,
        "subscriber": _Subscriber(slots.slot("email"), slots.slot("name"), _Fields(slots)),
        "unsubscribe_url": slots.slot("unsubscribe_url"),
    }
    env = environment(templates_dir)
    html = _render(env, HTML_TEMPLATE, context, templates_dir)
    text = _render(env, TEXT_TEMPLATE, context, templates_dir)
    html_shown = _shown(templates_dir / HTML_TEMPLATE)
    return Content(
        subject=view.subject,
        from_addr=publication.from_addr,
        html=slots.split(inline_css(html, html_shown), html_shown),
        text=slots.split(text, _shown(templates_dir / TEXT_TEMPLATE)),
        reply_to=publication.reply_to,
    )


# ----- previews and files --------------------------------------------------------------------


def sample_recipient() -> Recipient:
    """The reader previews and rendered files are addressed to."""
    return Recipient(email="reader@example.org", name="Sample Reader")


def sample_message(
    content: Content,
    settings: Settings,
    state_dir: Path,
    env: Mapping[str, str],
    recipient: Recipient | None = None,
) -> Message:
    """The message a list send would give the sample reader, with a real unsubscribe token."""
    recipient = recipient or sample_recipient()
    token = sign(recipient.email, SAMPLE_LIST, load_secret(state_dir, env))
    return build_message(content, recipient, token=token, unsubscribe=settings.unsubscribe)


@dataclass(frozen=True)
class RenderedFiles:
    """Where `digest render` wrote the issue."""

    html: Path
    text: Path
    eml: Path


def write_files(message: Message, out_dir: Path) -> RenderedFiles:
    """Write issue.html, issue.txt and issue.eml for one message."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = RenderedFiles(out_dir / "issue.html", out_dir / "issue.txt", out_dir / "issue.eml")
    files.html.write_text(message.html(), encoding="utf-8", newline="")
    files.text.write_text(message.text(), encoding="utf-8", newline="")
    files.eml.write_bytes(message_bytes(message))
    return files


# The preheader's &zwnj;&nbsp; padding: where an inbox preview runs out of visible text.
_PADDING = re.compile(r"(?:\u200c\s*){3,}")


def inbox_snippet(html: str, limit: int = 140) -> str:
    """The text an inbox shows after the subject: the body's start, up to preheader padding."""
    text = _PADDING.split(scan(html).raw_text, maxsplit=1)[0]
    snippet = squash(text)
    return snippet if len(snippet) <= limit else snippet[: limit - 1].rstrip() + "…"


@dataclass(frozen=True)
class Preview:
    """What the terminal preview shows, taken from the rendered sample message."""

    issue: IssueView
    message: Message
    publication: Publication
    snippet: str
    html_bytes: int

    @property
    def unsubscribe_url(self) -> str:
        """The sample reader's unsubscribe link, as the footer carries it."""
        # In provider mode there is none yet: the provider writes it into each message.
        return self.message.values.get("unsubscribe_url", "(the provider's link, added when sent)")


def build_preview(
    issue: Issue,
    settings: Settings,
    templates_dir: Path,
    state_dir: Path,
    env: Mapping[str, str],
    *,
    web_url: str | None = None,
) -> Preview:
    """Render the issue and address it to the sample reader, for previews and files.

    In provider mode the unsubscribe link is the provider's placeholder, as the provider gets it.
    `web_url` is the issue's web page, as a send would link it.
    """
    content = render_issue(issue, settings, templates_dir, web_url=web_url)
    if settings.unsubscribe.by_provider:
        from digestcli.transports import transport_class

        placeholder = transport_class(settings.transport.kind).capabilities.unsubscribe_placeholder
        # A transport that cannot host the link is refused by send and check; a preview shows
        # the issue all the same, the link left empty.
        if placeholder:
            content = content.with_literal("unsubscribe_url", placeholder)
    message = sample_message(content, settings, state_dir, env)
    html = message.html()
    return Preview(
        issue=issue_view(issue),
        message=message,
        publication=settings.publication,
        snippet=inbox_snippet(html),
        html_bytes=len(html.encode("utf-8")),
    )
