"""Pre-send checks of a rendered issue: size, subject, links, images, footer, CSS, placeholders."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from digestcli import css_support
from digestcli.config import Settings
from digestcli.errors import DraftError
from digestcli.models import Issue, Message
from digestcli.render import (
    GMAIL_CLIP_BYTES,
    HTML_TEMPLATE,
    TEXT_TEMPLATE,
    inbox_snippet,
    issue_view,
)
from digestcli.scan import Page, scan, squash

if TYPE_CHECKING:  # httpx is imported only when links are really checked
    from digestcli.linkcheck import LinkOptions
    from digestcli.workspace import Workspace

Level = Literal["error", "warning"]

#: Warn this far below Gmail's clipping: a reader's name, custom fields and an ESP's tracked
#: links make the real message a few KB bigger than the sample.
CLIP_WARNING_BYTES = 90 * 1024
#: Desktop inboxes show about 60-70 characters of a subject, phones 30-40.
SUBJECT_MAX = 60
#: Inboxes show roughly 90-140 characters of preview text after the subject.
PREHEADER_MAX = 110

_TITLE_SHOWN = 40
# Stands in for each per-recipient value, so URLs carrying one (the unsubscribe link with its
# token, a personalised web version) can be told apart from the issue's own links.
_MARK = "\ufffc"


def _slot(key: str) -> str:
    return f"{_MARK}{key}{_MARK}"


@dataclass(frozen=True)
class Finding:
    """One problem found: its level, a stable code, one sentence, and where it is."""

    level: Level
    code: str
    message: str
    where: str

    def as_dict(self) -> dict[str, str]:
        """The JSON shape: {"level", "code", "message", "where"}."""
        return {
            "level": self.level,
            "code": self.code,
            "message": self.message,
            "where": self.where,
        }


def _error(code: str, message: str, where: str) -> Finding:
    return Finding("error", code, message, where)


def _warning(code: str, message: str, where: str) -> Finding:
    return Finding("warning", code, message, where)


def format_finding(finding: Finding) -> str:
    """One line for the terminal: 'error: <message> [code]'."""
    return f"{finding.level}: {finding.message} [{finding.code}]"


def summary(findings: Sequence[Finding]) -> str:
    """'2 errors, 3 warnings'."""
    errors = sum(f.level == "error" for f in findings)
    warnings = len(findings) - errors
    return f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


# ----- where a URL comes from ----------------------------------------------------------------


@dataclass(frozen=True)
class _Place:
    """A part of the draft: 'item 3' as data, 'item 3 “Title”' in a sentence."""

    where: str
    label: str
    kind: str = "text"  # "text", "link" (an item's link: line) or "image" (its image: line)


def _places(issue: Issue) -> tuple[list[tuple[_Place, str]], dict[str, list[_Place]]]:
    """Every text field of the draft, and where each URL in the draft appears."""
    view = issue_view(issue)
    intro = _Place("intro", "the intro")
    outro = _Place("outro", "the closing section")
    fields: list[tuple[_Place, str]] = [
        (_Place("title", "the title"), issue.title),
        (_Place("subject", "the subject"), issue.subject),
        (_Place("preheader", "the preheader"), issue.preheader),
        (intro, issue.intro),
    ]
    urls: dict[str, list[_Place]] = {}

    def add(url: str, place: _Place) -> None:
        url = url.strip()
        if place not in urls.setdefault(url, []):
            urls[url].append(place)

    for url in scan(str(view.intro_html)).urls:
        add(url, intro)
    for number, (item, shown) in enumerate(zip(issue.items, view.items, strict=True), start=1):
        place = _item_place(number, item.title)
        fields.append((place, item.title))
        fields.append((place, item.body))
        for url in scan(f"{shown.title_html}{shown.body_html}").urls:
            add(url, place)
        if item.link:
            fields.append((place, f"{item.link.url} {item.link.label or ''}"))
            add(item.link.url, _Place(place.where, place.label, "link"))
        if item.image:
            fields.append((place, f"{item.image.url} {item.image.alt}"))
            add(item.image.url, _Place(place.where, place.label, "image"))
    fields.append((outro, f"{issue.outro_title}\n{issue.outro}"))
    for url in scan(str(view.outro_html)).urls:
        add(url, outro)
    return fields, urls


def _item_place(number: int, title: str) -> _Place:
    title = squash(title)
    if len(title) > _TITLE_SHOWN:
        title = title[: _TITLE_SHOWN - 1].rstrip() + "…"
    label = f"item {number} “{title}”" if title else f"item {number}"
    return _Place(f"item {number}", label)


def _label(places: Sequence[_Place]) -> str:
    labels = list(dict.fromkeys(p.label for p in places))
    return ", ".join(labels) if labels else "the template"


def _where(places: Sequence[_Place]) -> str:
    wheres = list(dict.fromkeys(p.where for p in places))
    return ", ".join(wheres) if wheres else "template"


# ----- the checks ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Subject:
    """What every check may read, computed once."""

    issue: Issue
    sample: Message
    settings: Settings
    html: str  # the sample reader's HTML part
    text: str  # the sample reader's text part
    page: Page  # the HTML part with each per-recipient value replaced by its _slot
    fields: list[tuple[_Place, str]]
    urls: dict[str, list[_Place]]

    @classmethod
    def of(cls, issue: Issue, sample: Message, settings: Settings) -> _Subject:
        """Read the sample message and the draft once for all checks."""
        content = sample.content
        marked = content.html.fill({key: _slot(key) for key in content.html.keys})
        fields, urls = _places(issue)
        return cls(
            issue, sample, settings, sample.html(), sample.text(), scan(marked), fields, urls
        )


def _check_size(s: _Subject) -> Iterator[Finding]:
    """The HTML part against Gmail's clipping."""
    size = len(s.html.encode("utf-8"))
    shown = f"{size / 1024:.1f} KB"
    limit = f"{GMAIL_CLIP_BYTES // 1024} KB"
    if size > GMAIL_CLIP_BYTES:
        yield _error(
            "html-size",
            f"The HTML part is {shown}, above the {limit} at which Gmail clips a message and "
            "hides the rest, unsubscribe link included; shorten or remove some items.",
            "HTML part",
        )
    elif size > CLIP_WARNING_BYTES:
        yield _warning(
            "html-size",
            f"The HTML part is {shown}, close to the {limit} at which Gmail clips a message; "
            "trim some text so longer names or tracked links cannot push it over.",
            "HTML part",
        )


def _check_subject(s: _Subject) -> Iterator[Finding]:
    """The subject is there and short enough to read in an inbox."""
    subject = s.issue.subject.strip()
    if not subject:
        yield _error(
            "subject-empty",
            "The draft has no subject; set one with `digest set subject TEXT`.",
            "subject",
        )
    elif len(subject) > SUBJECT_MAX:
        yield _warning(
            "subject-long",
            f"The subject is {len(subject)} characters and inboxes show about {SUBJECT_MAX} "
            "(phones fewer); put the point first or shorten it with `digest set subject TEXT`.",
            "subject",
        )


def _check_preheader(s: _Subject) -> Iterator[Finding]:
    """The preheader is set, short enough, and shown by the template."""
    preheader = squash(s.issue.preheader)
    if not preheader:
        snippet = inbox_snippet(s.html, 60)
        yield _warning(
            "preheader-empty",
            f"The draft has no preheader, so inboxes show “{snippet}” after the subject; "
            "set one with `digest set preheader TEXT`.",
            "preheader",
        )
        return
    if len(preheader) > PREHEADER_MAX:
        yield _warning(
            "preheader-long",
            f"The preheader is {len(preheader)} characters and inboxes show about "
            f"{PREHEADER_MAX} after the subject; shorten it with `digest set preheader TEXT`.",
            "preheader",
        )
    # The whole snippet, uncut, up to the padding the template puts after the preheader.
    if not inbox_snippet(s.html, len(s.html)).startswith(preheader):
        yield _warning(
            "preheader-hidden",
            f"The preheader is not the first text of the HTML part, so inboxes show “"
            f"{inbox_snippet(s.html, 60)}” instead; print {{{{ issue.preheader }}}} at the top "
            f"of the <body> in {HTML_TEMPLATE}.",
            "preheader",
        )


def _check_images(s: _Subject) -> Iterator[Finding]:
    """Images have alt text (for screen readers, blocked images) and a width (for Outlook)."""
    for place, alt in _item_images(s):
        if not alt.strip():
            yield _warning(
                "image-alt",
                f"The image of {place.label} has no alt text; describe it in quotes after the "
                'URL on its image: line, e.g. image: URL "What the picture shows".',
                place.where,
            )
    item_images = {url for url, places in s.urls.items() if any(p.kind == "image" for p in places)}
    seen: set[tuple[str, str, str]] = set()
    for src, attrs in s.page.images:
        # A logo or spacer repeated in every item is one finding, not one per copy.
        key = (src, attrs.get("alt", "").strip(), attrs.get("width", "").strip())
        if key in seen:
            continue
        seen.add(key)
        places = s.urls.get(src, [])
        where, label = _where(places), _label(places)
        in_template = not places
        if src not in item_images and not attrs.get("alt", "").strip():
            fix = (
                f'add alt="what it shows" to its <img> tag in {HTML_TEMPLATE} or its partials'
                if in_template
                else "write a description in the brackets: ![what it shows](URL)"
            )
            yield _warning(
                "image-alt", f"The image {_shown(src)} in {label} has no alt text; {fix}.", where
            )
        if not attrs.get("width", "").strip():
            fix = (
                f'add width="..." (in pixels) to its <img> tag in {HTML_TEMPLATE} or its partials'
                if in_template
                else 'write it as <img src="URL" alt="..." width="600"> with its width in pixels'
            )
            yield _warning(
                "image-width",
                f"The image {_shown(src)} in {label} has no width attribute, so Outlook shows it "
                f"at full size; {fix}.",
                where,
            )


def _item_images(s: _Subject) -> Iterator[tuple[_Place, str]]:
    for number, item in enumerate(s.issue.items, start=1):
        if item.image:
            yield _item_place(number, item.title), item.image.alt


def _shown(url: str, limit: int = 80) -> str:
    if _MARK in url:
        return "with a per-recipient address"
    return url if len(url) <= limit else url[: limit - 1] + "…"


def _check_footer(s: _Subject) -> Iterator[Finding]:
    """Both parts carry the reader's unsubscribe link and the publication's postal address."""
    content = s.sample.content
    footer = "the footer (partials/footer.html.j2 in the default theme)"
    if "unsubscribe_url" not in content.html.keys:
        yield _error(
            "no-unsubscribe",
            f'The HTML part has no unsubscribe link; add <a href="{{{{ unsubscribe_url }}}}">'
            f"Unsubscribe</a> to {footer}.",
            HTML_TEMPLATE,
        )
    elif not any(_slot("unsubscribe_url") in href for href in s.page.anchors):
        yield _error(
            "no-unsubscribe",
            f"The HTML part prints the unsubscribe URL but not as a link; write it as <a href="
            f'"{{{{ unsubscribe_url }}}}">Unsubscribe</a> in {footer}.',
            HTML_TEMPLATE,
        )
    if "unsubscribe_url" not in content.text.keys:
        yield _error(
            "no-unsubscribe",
            "The text part has no unsubscribe link; add a line "
            f"`Unsubscribe: {{{{ unsubscribe_url }}}}` at the end of {TEXT_TEMPLATE}.",
            TEXT_TEMPLATE,
        )
    address = squash(s.settings.publication.address)
    if not address:
        yield _error(
            "no-address",
            f"{s.settings.path.name} has no postal address; set `address` in [publication], "
            "which anti-spam laws require in every message.",
            s.settings.path.name,
        )
        return
    if address.casefold() not in s.page.text.casefold():
        yield _error(
            "no-address",
            "The HTML part does not show the publication's postal address; print "
            f"{{{{ publication.address }}}} in {footer}.",
            HTML_TEMPLATE,
        )
    if address.casefold() not in squash(s.text).casefold():
        yield _error(
            "no-address",
            "The text part does not show the publication's postal address; add "
            f"{{{{ publication.address }}}} near the end of {TEXT_TEMPLATE}.",
            TEXT_TEMPLATE,
        )


# ----- CSS that major clients ignore ---------------------------------------------------------


def _check_css(s: _Subject) -> Iterator[Finding]:
    """Properties and values that Gmail, Outlook or Apple Mail ignore or strip."""
    found: dict[str, list[str]] = {}
    for where, prop, value in css_support.declarations(s.page):
        for rule in css_support.CSS_RULES:
            if rule.matches(prop, value):
                found.setdefault(rule.label, []).append(where)
    for rule in css_support.CSS_RULES:
        if wheres := found.get(rule.label):
            yield _css_finding(rule.label, rule.clients, rule.fix, wheres)
    css = css_support.style_block_css(s.page)
    for at_rule in css_support.AT_RULES:
        if at_rule.keyword in css:
            yield _css_finding(at_rule.keyword, at_rule.clients, at_rule.fix, ["<style> block"])
    if s.page.stylesheets:
        yield _css_finding(
            "<link rel=stylesheet>",
            "mail clients do not load external stylesheets",
            f"move its rules into the <style> block of {HTML_TEMPLATE}",
            ["<head>"] * len(s.page.stylesheets),
        )


def _css_finding(label: str, clients: str, fix: str, wheres: Sequence[str]) -> Finding:
    more = len(wheres) - 1
    at = wheres[0] + (f" and {_plural(more, 'more place')}" if more else "")
    return _warning(
        "unsupported-css",
        f"The template's CSS uses `{label}` ({at}): {clients}; {fix}.",
        wheres[0],
    )


# ----- leftovers in the draft ----------------------------------------------------------------

_PLACEHOLDER = re.compile(
    r"\b(?:TODO|FIXME|TKTK|TK|XXX)\b|(?i:lorem ipsum)|(?i:\[(?:link|url|tk|todo|insert[^\]\n]*)\])"
)
# RFC 2606 and RFC 6761: names that never belong to a real site.
_PLACEHOLDER_HOSTS = frozenset({"example.com", "example.net", "example.org", "localhost"})
_PLACEHOLDER_SUFFIXES = (
    ".example.com",
    ".example.net",
    ".example.org",
    ".example",
    ".invalid",
    ".test",
    ".localhost",
)


def _placeholder_url(url: str) -> bool:
    if url in ("", "#"):
        return True
    try:
        host = (urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:
        return False
    return host in _PLACEHOLDER_HOSTS or host.endswith(_PLACEHOLDER_SUFFIXES)


def _check_placeholders(s: _Subject) -> Iterator[Finding]:
    """Leftover TODOs, lorem ipsum, [link] and example.com-style URLs in the draft."""
    found: dict[_Place, list[str]] = {}
    for place, text in s.fields:
        for match in _PLACEHOLDER.finditer(text):
            words = found.setdefault(place, [])
            if match.group() not in words:
                words.append(match.group())
    for place, words in found.items():
        yield _warning(
            "placeholder",
            f"{_capital(place.label)} still has placeholder text ({', '.join(words)}); "
            "replace it before sending.",
            place.where,
        )
    for url, places in s.urls.items():
        if _placeholder_url(url):
            shown = f"`{url}`" if url else "an empty address"
            yield _warning(
                "placeholder",
                f"{_capital(_label(places))} points to {shown}, a placeholder address; "
                "put in the real link.",
                _where(places),
            )
    # An empty Markdown link target ([text]()) renders as href="" and is not in s.urls.
    if "" in s.page.anchors and "" not in s.urls:
        yield _warning(
            "placeholder",
            "A link in the message has an empty address; give it its URL.",
            "HTML part",
        )


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _check_structure(s: _Subject) -> Iterator[Finding]:
    """A title, items with titles and bodies, an intro and a closing section."""
    issue = s.issue
    if not issue.title.strip():
        yield _error(
            "no-title", "The draft has no title; set one with `digest set title TEXT`.", "title"
        )
    if not issue.items:
        yield _error(
            "no-items", "The draft has no items; add one with `digest add TITLE`.", "items"
        )
    for number, item in enumerate(issue.items, start=1):
        place = _item_place(number, item.title)
        if not item.title.strip():
            yield _error(
                "item-untitled",
                f"Item {number} has no title; write one after its '## ' with `digest edit "
                f"{number}`.",
                place.where,
            )
        if not item.body.strip():
            yield _warning(
                "item-empty",
                f"{_capital(place.label)} has no body text; write one with `digest edit "
                f"{number}` or remove it with `digest remove {number}`.",
                place.where,
            )
    if not issue.intro.strip():
        yield _warning(
            "no-intro", "The draft has no intro; write one with `digest intro`.", "intro"
        )
    if not issue.outro.strip():
        yield _warning(
            "no-outro",
            "The draft has no closing section; write one with `digest outro`.",
            "outro",
        )


def _scheme(url: str) -> str:
    try:
        return urlsplit(url).scheme.lower()
    except ValueError:  # e.g. an unclosed IPv6 bracket: not a usable web address either
        return ""


def _check_relative_links(s: _Subject) -> Iterator[Finding]:
    """Links without a scheme go nowhere in a mail client."""
    seen: set[str] = set()
    for url in s.page.urls:
        if url in seen or _MARK in url or url in ("", "#") or url.startswith("#"):
            continue
        seen.add(url)
        if not _scheme(url):
            places = s.urls.get(url, [])
            yield _warning(
                "relative-link",
                f"{_capital(_label(places))} points to `{url}`, which a mail client cannot open "
                "without https:// and the site's name; write the full address.",
                _where(places),
            )


_OFFLINE_CHECKS: tuple[Callable[[_Subject], Iterable[Finding]], ...] = (
    _check_size,
    _check_footer,
    _check_structure,
    _check_subject,
    _check_preheader,
    _check_images,
    _check_relative_links,
    _check_css,
    _check_placeholders,
)


def _link_targets(s: _Subject) -> dict[str, list[_Place]]:
    """The http(s) URLs to resolve: the HTML's links and images and the items' links.

    URLs that carry a per-recipient value (the unsubscribe link and its token) are left out:
    the sample reader's token would only prove that the sample reader can unsubscribe.
    """
    targets: dict[str, list[_Place]] = {}
    draft_urls = [url for url, places in s.urls.items() if any(p.kind != "text" for p in places)]
    for url in [*s.page.urls, *draft_urls]:
        if _MARK in url or _scheme(url) not in ("http", "https"):
            continue
        targets.setdefault(url, s.urls.get(url, []))
    return targets


def _check_links(s: _Subject, options: LinkOptions) -> Iterator[Finding]:
    """Every link and image URL resolves (network)."""
    from digestcli import linkcheck

    targets = _link_targets(s)
    for status in linkcheck.check_links(targets, options):
        if not status.ok:
            places = targets[status.url]
            yield _warning(
                "broken-link",
                f"The link {_shown(status.url, 120)} in {_label(places)} {status.problem}; "
                "fix or remove it.",
                _where(places),
            )


# ----- entry points --------------------------------------------------------------------------


def _ordered(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: f.level != "error")


def run_checks(
    issue: Issue, sample: Message, settings: Settings, *, links: LinkOptions | None = None
) -> list[Finding]:
    """Every check of the issue as the sample reader gets it, errors first.

    `links` turns on the network check of every URL; None (the default) stays offline.
    """
    subject = _Subject.of(issue, sample, settings)
    findings = [f for check in _OFFLINE_CHECKS for f in check(subject)]
    if links is not None:
        findings.extend(_check_links(subject, links))
    return _ordered(findings)


def error_checks(issue: Issue, sample: Message, settings: Settings) -> list[Finding]:
    """Only the errors, found offline: what `digest send` refuses to send with."""
    return [f for f in run_checks(issue, sample, settings) if f.level == "error"]


def raise_for_errors(findings: Sequence[Finding], draft: Path) -> None:
    """Raise DraftError (exit 4) naming the first error, when there is any."""
    errors = [f for f in findings if f.level == "error"]
    if not errors:
        return
    first = errors[0].message.rstrip(".")
    more = f" (and {_plural(len(errors) - 1, 'more error')})" if len(errors) > 1 else ""
    raise DraftError(
        f"{draft.name} is not ready to send: {first}{more}; `digest check` lists every problem."
    )


def check_draft(
    workspace: Workspace, draft: Path, env: Mapping[str, str], *, links: LinkOptions | None
) -> list[Finding]:
    """Load and render a draft for the sample reader, then run every check on it."""
    from digestcli.drafts import load_draft
    from digestcli.render import render_issue, sample_message
    from digestcli.unsubscribing import unsubscribe_placeholder

    settings = workspace.settings()
    # A provider mode the transport cannot honour fails here as it would at send time.
    unsubscribe_placeholder(settings, settings.transport)
    issue = load_draft(draft).issue
    content = render_issue(issue, settings, workspace.templates_dir)
    sample = sample_message(content, settings, workspace.state_dir, env)
    return run_checks(issue, sample, settings, links=links)
