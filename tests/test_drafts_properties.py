"""Hypothesis properties of the draft format: lossless round trips and edits that stay local."""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digestcli.drafts import (
    FIELDS,
    Draft,
    FrontMatter,
    format_item,
    new_draft_text,
    parse_draft,
)
from digestcli.models import Image, Issue, Item, Link

PATH = Path("drafts/property.md")

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ----- text --------------------------------------------------------------------------------------

# Anything on one line: every code point but surrogates and the CR/LF line breaks, so also
# control characters, U+0085, U+2028/9, BOMs, RTL marks.
ANY_CHAR = st.characters(exclude_categories=["Cs"], exclude_characters="\r\n")

SNIPPETS = (
    "**bold**",
    "_em_",
    "`code`",
    "[the label](https://example.org/story?a=1&b=2)",
    "![alt text](https://example.org/pic.png)",
    "<https://example.org/auto>",
    "{{ 7*7 }}",
    "{% if x %}yes{% endif %}",
    "%recipient.email%",
    "%recipient.name%",
    "-unsub-",
    "*|FNAME|*",
    "中国数字文摘",
    "抖音测试PC购物功能",
    "📰🚀🇨🇳",
    "עברית",
    "مرحبا بالعالم",
    "\u202eevil\u202c",
    '"double quotes"',
    "'single quotes'",
    "key: value",
    "a: b # c",
    "> a quote",
    "- a list item",
    "1. numbered",
    "### a sub-heading",
    "#hashtag",
    "<b>raw html</b>",
    "<script>alert(1)</script>",
    "back\\slash",
    "---",
    "...",
    "    indented code",
    "&amp; &lt;",
    "link: https://example.org/not-meta",
)

WORD = st.one_of(st.sampled_from(SNIPPETS), st.text(ANY_CHAR, min_size=1, max_size=12))

_STRUCTURAL = re.compile(r"^(#{1,2}[ \t]| {0,3}(```|~~~))")


def _is_content_line(line: str) -> bool:
    """A line that neither starts a section nor opens a fence."""
    return not _STRUCTURAL.match(line)


LINE = st.lists(WORD, min_size=1, max_size=5).map(" ".join).filter(_is_content_line)

FENCE = st.builds(
    lambda fence, info, lines: "\n".join([fence + info, *lines, fence]),
    st.sampled_from(["```", "~~~", "````"]),
    st.sampled_from(["", "python", "sh"]),
    st.lists(
        st.one_of(st.sampled_from(["## not an item", "# not a closing section", "", "---"]), LINE),
        max_size=4,
    ),
)

PARAGRAPH = st.one_of(st.lists(LINE, min_size=1, max_size=3).map("\n".join), FENCE)


def _canonical(text: str) -> bool:
    """Text as a section keeps it: no blank first or last line."""
    lines = text.split("\n")
    return bool(lines[0].strip() and lines[-1].strip())


MARKDOWN = (
    st.lists(
        st.tuples(PARAGRAPH, st.sampled_from(["\n\n", "\n\n\n", "\n"])), min_size=1, max_size=4
    )
    .map(lambda parts: "".join(p + sep for p, sep in parts[:-1]) + parts[-1][0])
    .filter(_canonical)
)
OPTIONAL_MARKDOWN = st.one_of(st.just(""), MARKDOWN)

ONE_LINE = st.text(ANY_CHAR, min_size=1, max_size=30)
TITLE = st.one_of(st.sampled_from(SNIPPETS), ONE_LINE).filter(lambda t: t == t.strip() != "")

URL_CHARS = st.characters(
    codec="utf-8", exclude_categories=("Cs", "Zs", "Zl", "Zp", "Cc"), exclude_characters="\x85"
)
URL = st.builds(
    lambda scheme, rest: scheme + rest,
    st.sampled_from(["https://example.org/", "http://example.com/a?b=", "mailto:ed@"]),
    st.text(URL_CHARS, max_size=20),
).filter(lambda url: not any(c.isspace() for c in url))

LINK = st.builds(Link, URL, st.one_of(st.none(), st.sampled_from(SNIPPETS), ONE_LINE))
IMAGE = st.builds(Image, URL, st.one_of(st.just(""), st.sampled_from(SNIPPETS), ONE_LINE))
ITEM = st.builds(
    Item,
    title=TITLE,
    body=OPTIONAL_MARKDOWN,
    link=st.one_of(st.none(), LINK),
    image=st.one_of(st.none(), IMAGE),
)

FIELD_TEXT = st.one_of(
    st.sampled_from(
        [
            "yes",
            "no",
            "null",
            "~",
            "1.0",
            "0x1F",
            "2026-01-01",
            "2026-13-45",
            "# not a comment",
            "a: b",
            "  leading spaces",
            "trailing ",
            'say "hi"',
            "back\\slash",
            "line\u2028separator",
            "tab\there",
            "\x00\x07\x1b[31m",
            "\ufeffbom",
            "- list",
            "[flow]",
            "{flow: map}",
            "&anchor",
            "*alias",
            "!tag",
            "|",
            ">",
            "@at",
            "`tick",
            "%percent",
        ]
    ),
    st.text(ANY_CHAR, min_size=1, max_size=30),
)
TITLE_FIELD = FIELD_TEXT.filter(lambda t: t.strip() != "")


# ----- (1) load . save is the identity on files the CLI wrote ------------------------------------


@dataclass(frozen=True)
class Composed:
    """An issue as the editor typed it, piece by piece."""

    title: str
    subject: str
    preheader: str
    date: str
    number: int
    intro: str
    items: tuple[Item, ...]
    outro: str
    outro_title: str | None


COMPOSED = st.builds(
    Composed,
    title=TITLE_FIELD,
    subject=st.one_of(st.just(""), FIELD_TEXT),
    preheader=st.one_of(st.just(""), FIELD_TEXT),
    date=st.dates().map(lambda d: d.isoformat()),
    number=st.integers(1, 10**6),
    intro=OPTIONAL_MARKDOWN,
    items=st.lists(ITEM, max_size=5).map(tuple),
    outro=OPTIONAL_MARKDOWN,
    outro_title=st.one_of(st.none(), TITLE),
)


def compose(c: Composed, rnd: random.Random) -> Draft:
    """Build a draft the way the CLI does: `new`, then set/intro/add/outro in a random order."""
    draft = parse_draft(new_draft_text("Placeholder", "", "", "2000-01-01", None), PATH)
    fields: list[Callable[[], object]] = [
        lambda: draft.set_field("title", c.title),
        lambda: draft.set_field("subject", c.subject),
        lambda: draft.set_field("preheader", c.preheader),
        lambda: draft.set_field("date", c.date),
        lambda: draft.set_field("number", str(c.number)),
        lambda: draft.set_intro(c.intro),
        lambda: draft.set_outro(c.outro, c.outro_title),
    ]
    adds: list[Callable[[], object]] = [functools.partial(draft.add, item) for item in c.items]
    # Random interleaving; the adds keep their relative order so the items end up in order.
    keys = [rnd.random() for _ in fields] + sorted(rnd.random() for _ in adds)
    for _, step in sorted(zip(keys, fields + adds, strict=True), key=lambda pair: pair[0]):
        step()
    return draft


@FAST
@given(COMPOSED, st.randoms(use_true_random=False))
def test_cli_written_drafts_round_trip(c: Composed, rnd: random.Random) -> None:
    draft = compose(c, rnd)
    text = draft.text()
    again = parse_draft(text, PATH)
    assert again.text() == text
    assert again.issue == Issue(
        title=c.title,
        subject=c.subject or c.title,
        preheader=c.preheader,
        date=c.date,
        number=c.number,
        intro=c.intro,
        items=c.items,
        outro_title=c.outro_title or "Wrapping Up",
        outro=c.outro,
    )


@FAST
@given(ITEM)
def test_an_item_block_parses_back_to_the_item(item: Item) -> None:
    block = format_item(item)
    draft = parse_draft("---\ntitle: t\n---\n\n" + block, PATH)
    assert draft.issue.items == (item,)


# ----- (2) any hand-written file: parse . text is the identity -----------------------------------

EOL = st.sampled_from(["\n", "\r\n"])


@st.composite
def hand_written(draw: st.DrawFn) -> str:
    """A draft as a person might type it: odd spacing, CRLF, comments, fences, no final EOL."""
    eol = draw(st.one_of(EOL, st.just("mixed")))

    def nl() -> str:
        return draw(EOL) if eol == "mixed" else eol

    def blank_lines(most: int = 3) -> str:
        return "".join(nl() for _ in range(draw(st.integers(0, most))))

    def block(text: str) -> str:
        return "".join(line + nl() for line in text.split("\n"))

    front = ["---" + nl(), *(draw(st.sampled_from(FRONT_LINES)) + nl() for _ in range(3))]
    parts = [
        *dict.fromkeys(front),
        draw(st.sampled_from(["---", "..."])) + nl(),
        blank_lines(),
        block(draw(MARKDOWN)) if draw(st.booleans()) else "",
    ]
    for item in draw(st.lists(ITEM, max_size=4)):
        parts.append(blank_lines())
        lines = format_item(item).rstrip("\n").split("\n")
        parts.append(block("\n".join(lines)))
    if draw(st.booleans()):
        parts.append(blank_lines())
        parts.append(block("# " + draw(TITLE)))
        parts.append(blank_lines())
        parts.append(block(draw(OPTIONAL_MARKDOWN)))
    parts.append(blank_lines())
    text = "".join(parts)
    if draw(st.booleans()):
        text = text.rstrip("\r\n")
    return text


FRONT_LINES = (
    "title: Week 9",
    "subject: 'Single: quoted'",
    'preheader: "Double \\u00e9 quoted"',
    "# a comment: with a colon",
    "",
    "number: 9",
    "date: 2026-03-02",
)


@FAST
@given(hand_written())
def test_hand_written_drafts_round_trip(text: str) -> None:
    assert parse_draft(text, PATH).text() == text


# ----- (3) add / move / remove match a list model and stay local ---------------------------------


def _trimmed(block: str) -> str:
    return block.rstrip("\r\n")


def _only_gained_blank_lines(before: str, after: str) -> bool:
    """after is before, plus at most some line breaks appended to keep blocks apart."""
    if before.endswith(("\n\n", "\n\r\n")) or not before:
        return after == before
    return after.startswith(before) and not after[len(before) :].strip("\r\n")


OP = st.one_of(
    st.tuples(st.just("add"), ITEM, st.integers(0, 10)),
    st.tuples(st.just("move"), st.integers(0, 10), st.integers(0, 10)),
    st.tuples(st.just("remove"), st.integers(0, 10)),
)


@FAST
@given(
    st.one_of(hand_written(), COMPOSED.map(lambda c: compose(c, random.Random(0)).text())),
    st.lists(OP, min_size=1, max_size=6),
)
def test_edits_follow_a_list_model_and_touch_nothing_else(
    text: str, ops: list[tuple[object, ...]]
) -> None:
    draft = parse_draft(text, PATH)
    model = [_trimmed(b) for b in draft.items]
    front, intro, outro = draft.front.text(), draft.intro, draft.outro
    for op in ops:
        count = len(model)
        if op[0] == "add":
            item, at = op[1], op[2]
            assert isinstance(item, Item) and isinstance(at, int)
            position = None if at == 0 else (at - 1) % (count + 1) + 1
            draft.add(item, position)
            model.insert(count if position is None else position - 1, _trimmed(format_item(item)))
        elif count == 0:
            continue
        elif op[0] == "move":
            assert isinstance(op[1], int) and isinstance(op[2], int)
            source, target = op[1] % count + 1, op[2] % count + 1
            draft.move(source, target)
            model.insert(target - 1, model.pop(source - 1))
        else:
            assert isinstance(op[1], int)
            position = op[1] % count + 1
            draft.remove(position)
            del model[position - 1]

        assert [_trimmed(b) for b in draft.items] == model
        assert draft.front.text().rstrip("\r\n") == front.rstrip("\r\n")
        assert draft.front.text() == front or not front.endswith("\n")
        assert _only_gained_blank_lines(intro, draft.intro)
        assert draft.outro == outro
        again = parse_draft(draft.text(), PATH)
        assert (again.intro, again.items, again.outro) == (draft.intro, draft.items, draft.outro)
        assert again.issue.items == tuple(parse_draft(draft.text(), PATH).issue.items)
        intro = draft.intro


# ----- (4) FrontMatter.set of any text value loads back exactly ----------------------------------

OTHER_LINES = st.sampled_from(
    [
        "# a hand-written comment",
        "# title: commented out",
        "#",
        "",
    ]
)
VALUE_LINES = {
    "title": ["title: Week 9", "title: 'Quoted: title'", "title: >-\n  folded\n  title"],
    "subject": ['subject: "Subject"', "subject: plain # with a comment", "subject:"],
    "preheader": ["preheader: |-\n  literal", "preheader: Hello", "preheader: null"],
    "date": ["date: 2026-03-02", "date: '2026-03-02'"],
    "number": ["number: 9", "number: 12   # the twelfth"],
}


@st.composite
def front_matter(draw: st.DrawFn) -> list[list[str]]:
    """Front matter as segments: each key's own lines, and comment or blank lines between."""
    keys = draw(st.lists(st.sampled_from(FIELDS), unique=True))
    segments: list[list[str]] = []
    for key in keys:
        segments.extend([[draw(OTHER_LINES) + "\n"] for _ in range(draw(st.integers(0, 2)))])
        value = draw(st.sampled_from(VALUE_LINES[key]))
        segments.append([line + "\n" for line in value.split("\n")])
    segments.extend([[draw(OTHER_LINES) + "\n"] for _ in range(draw(st.integers(0, 2)))])
    return segments


def _lines(segments: list[list[str]]) -> list[str]:
    return ["---\n", *(line for seg in segments for line in seg), "---\n"]


@FAST
@given(front_matter(), st.sampled_from(["title", "subject", "preheader"]), FIELD_TEXT)
def test_front_matter_set_loads_back_and_keeps_other_lines(
    segments: list[list[str]], key: str, value: str
) -> None:
    front = FrontMatter(_lines(segments), PATH)
    front.set(key, value)
    assert front.data[key] == value
    assert FrontMatter(list(front.lines), PATH).data[key] == value
    body = "".join(front.lines[1:-1])
    assert yaml.safe_load(body)[key] == value

    new_lines = [i for i, line in enumerate(front.lines) if line.startswith(f"{key}:")]
    assert len(new_lines) == 1
    kept = front.lines[: new_lines[0]] + front.lines[new_lines[0] + 1 :]
    untouched = [seg for seg in segments if not seg[0].startswith(f"{key}:")]
    assert kept == _lines(untouched)


@FAST
@given(front_matter(), st.dates(), st.integers(1, 10**9))
def test_front_matter_set_date_and_number(
    segments: list[list[str]], date: object, number: int
) -> None:
    front = FrontMatter(_lines(segments), PATH)
    front.set("date", str(date))
    front.set("number", number)
    assert front.data["date"] == str(date)
    assert front.data["number"] == number
    assert FrontMatter(list(front.lines), PATH).data == front.data
