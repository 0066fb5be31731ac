"""The draft format: parsing, edits that keep hand edits, and errors naming file and line."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from digestcli import drafts
from digestcli.drafts import Draft, load_draft, parse_draft, save_draft
from digestcli.errors import DraftError, ExitStatus
from digestcli.fsutil import write_atomic
from digestcli.models import Image, Issue, Item, Link

PATH = Path("drafts/2026-03-02-week-9.md")

HAND_WRITTEN = """\
---
# The editor's own notes survive every edit.
title: Week 9
subject: "Week 9: TikTok, Alibaba and more"
preheader: Nine stories   # an inline comment
date: 2026-03-02
number: 9
---

Hi folks, we are *back*.

## Canada bans TikTok on government devices
link: https://example.org/canada "Read the story"
image: https://example.org/canada.png "A phone with TikTok"

Taking effect on **February 28**.

Second paragraph.
## Alibaba Cloud works with Shell China
link: https://example.org/alibaba

```python
## not a heading inside a fence
# nor this
```


## Douyin tests a PC shopping feature

No link here, and {{ 7*7 }} stays literal.

# Wrapping Up

See you next week.
"""


def parse(text: str) -> Draft:
    return parse_draft(text, PATH)


def error_of(text: str) -> str:
    with pytest.raises(DraftError) as caught:
        parse(text)
    assert caught.value.status == ExitStatus.DRAFT
    message = str(caught.value)
    assert "\n" not in message
    return message


# ----- reading ---------------------------------------------------------------------------------


def test_hand_written_draft_parses_into_its_issue() -> None:
    draft = parse(HAND_WRITTEN)
    assert draft.issue == Issue(
        title="Week 9",
        subject="Week 9: TikTok, Alibaba and more",
        preheader="Nine stories",
        date="2026-03-02",
        number=9,
        intro="Hi folks, we are *back*.",
        items=(
            Item(
                title="Canada bans TikTok on government devices",
                body="Taking effect on **February 28**.\n\nSecond paragraph.",
                link=Link("https://example.org/canada", "Read the story"),
                image=Image("https://example.org/canada.png", "A phone with TikTok"),
            ),
            Item(
                title="Alibaba Cloud works with Shell China",
                body="```python\n## not a heading inside a fence\n# nor this\n```",
                link=Link("https://example.org/alibaba"),
            ),
            Item(
                title="Douyin tests a PC shopping feature",
                body="No link here, and {{ 7*7 }} stays literal.",
            ),
        ),
        outro_title="Wrapping Up",
        outro="See you next week.",
    )


def test_load_then_save_gives_the_same_bytes(tmp_path: Path) -> None:
    path = tmp_path / "draft.md"
    data = HAND_WRITTEN.replace("\n", "\r\n").encode()
    path.write_bytes(data)
    save_draft(load_draft(path))
    assert path.read_bytes() == data


def test_a_byte_order_mark_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "draft.md"
    data = ("\ufeff" + HAND_WRITTEN).encode()
    path.write_bytes(data)
    draft = load_draft(path)
    assert draft.issue.title == "Week 9"
    save_draft(draft)
    assert path.read_bytes() == data


def test_subject_defaults_to_the_title_and_missing_parts_are_empty() -> None:
    issue = parse("---\ntitle: Only a title\n---\n").issue
    assert issue == Issue(title="Only a title", subject="Only a title")


def test_item_without_body_and_link_label_quotes() -> None:
    draft = parse('---\ntitle: t\n---\n## A\nlink: https://e.org/x "He said "hi""\n')
    assert draft.item(1) == Item("A", link=Link("https://e.org/x", 'He said "hi"'))


def test_new_draft_text_is_what_new_writes() -> None:
    text = drafts.new_draft_text("Week: 9", "", "yes", "2026-03-02", 3)
    assert text == (
        '---\ntitle: "Week: 9"\nsubject: "Week: 9"\npreheader: "yes"\n'
        "date: 2026-03-02\nnumber: 3\n---\n\n"
    )
    assert parse(text).issue == Issue(
        title="Week: 9", subject="Week: 9", preheader="yes", date="2026-03-02", number=3
    )


# ----- edits keep hand edits -------------------------------------------------------------------


def test_add_inserts_one_block_and_touches_nothing_else() -> None:
    draft = parse(HAND_WRITTEN)
    position = draft.add(
        Item(
            "Kuaishou cosmetics GMV up 245%",
            body="Up to **300** sales.\n\n- one\n- two",
            link=Link("https://example.org/k", "Kuaishou"),
            image=Image("https://example.org/k.png", ""),
        ),
        at=3,
    )
    assert position == 3
    expected = HAND_WRITTEN.replace(
        "## Douyin",
        "## Kuaishou cosmetics GMV up 245%\n"
        'link: https://example.org/k "Kuaishou"\n'
        'image: https://example.org/k.png ""\n'
        "\nUp to **300** sales.\n\n- one\n- two\n\n## Douyin",
    )
    assert draft.text() == expected


def test_add_at_the_end_after_a_file_without_final_newline() -> None:
    draft = parse("---\ntitle: t\n---\nIntro\n## A\nbody")
    draft.add(Item("B", body="b"))
    assert draft.text() == "---\ntitle: t\n---\nIntro\n## A\nbody\n\n## B\n\nb\n"
    assert [item.title for item in draft.issue.items] == ["A", "B"]


def test_add_goes_before_the_closing_section() -> None:
    draft = parse("---\ntitle: t\n---\n\n## A\n\n# Wrapping Up\n\nBye.\n")
    assert draft.add(Item("B")) == 2
    assert draft.text() == "---\ntitle: t\n---\n\n## A\n\n## B\n\n# Wrapping Up\n\nBye.\n"


def test_move_and_remove_renumber_and_keep_blocks() -> None:
    draft = parse(HAND_WRITTEN)
    blocks = list(draft.items)
    draft.move(3, 1)
    assert [i.title for i in draft.issue.items] == [
        "Douyin tests a PC shopping feature",
        "Canada bans TikTok on government devices",
        "Alibaba Cloud works with Shell China",
    ]
    assert draft.items[1] == blocks[0]  # its neighbour below is still the Alibaba item
    assert draft.items[2] == blocks[1]  # already ends in blank lines before the closing section
    removed = draft.remove(2)
    assert removed.title == "Canada bans TikTok on government devices"
    assert draft.items[0] == blocks[2]
    assert draft.text().startswith(HAND_WRITTEN[: HAND_WRITTEN.index("## Canada")])
    assert draft.text().endswith("# Wrapping Up\n\nSee you next week.\n")


def test_set_field_rewrites_only_its_line() -> None:
    draft = parse(HAND_WRITTEN)
    draft.set_field("subject", "Nine stories: TikTok & co")
    draft.set_field("number", "10")
    draft.set_field("date", "2026-03-09")
    assert draft.text() == HAND_WRITTEN.replace(
        'subject: "Week 9: TikTok, Alibaba and more"', 'subject: "Nine stories: TikTok & co"'
    ).replace("number: 9", "number: 10").replace("date: 2026-03-02", "date: 2026-03-09")


def test_set_field_with_empty_value_removes_an_optional_field() -> None:
    draft = parse(HAND_WRITTEN)
    draft.set_field("preheader", "")
    assert "preheader" not in draft.text()
    assert draft.issue.preheader == ""
    draft.set_field("preheader", "Back again")
    assert draft.text().count("preheader: Back again\n---\n") == 1


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("title", "", "title cannot be empty"),
        ("number", "two", "whole number"),
        ("number", "0", "whole number"),
        ("date", "2026-02-30", "YYYY-MM-DD"),
        ("subject", "two\nlines", "one line"),
        ("author", "me", "unknown field `author`"),
    ],
)
def test_set_field_refuses_bad_values_and_changes_nothing(
    field: str, value: str, fragment: str
) -> None:
    draft = parse(HAND_WRITTEN)
    with pytest.raises(DraftError, match=re.escape(fragment)):
        draft.set_field(field, value)
    assert draft.text() == HAND_WRITTEN


def test_set_intro_and_outro() -> None:
    draft = parse("---\ntitle: t\n---\n")
    draft.set_intro("\n\nHello *there*.\n\n")
    draft.add(Item("A"))
    draft.set_outro("Bye.")
    assert draft.text() == "---\ntitle: t\n---\n\nHello *there*.\n\n## A\n\n# Wrapping Up\n\nBye.\n"
    draft.set_outro("Later.", title="Until next week")
    assert draft.issue.outro_title == "Until next week"
    assert draft.text().endswith("## A\n\n# Until next week\n\nLater.\n")
    draft.set_outro("Again.")  # keeps the heading it has
    assert draft.issue.outro_title == "Until next week"


def test_replace_item_keeps_the_gap_after_it() -> None:
    draft = parse(HAND_WRITTEN)
    draft.replace_item(2, "\n## Alibaba and Shell\nlink: https://example.org/a2\n\nNew body.\n\n\n")
    assert draft.item(2) == Item("Alibaba and Shell", "New body.", Link("https://example.org/a2"))
    assert "New body.\n\n\n## Douyin" in draft.text()


@pytest.mark.parametrize(
    "block",
    [
        "no heading\n",
        "## A\n\n## B\n",
        "## A\n\n# Closing\n",
        "## A\n\n```\nopen fence\n",
    ],
)
def test_replace_item_refuses_text_that_is_not_one_item(block: str) -> None:
    draft = parse(HAND_WRITTEN)
    with pytest.raises(DraftError):
        draft.replace_item(1, block)
    assert draft.text() == HAND_WRITTEN


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("Para.\n\n## Sneaky section\n\nmore", "its line 3"),
        ("Para.\n# Sneaky closing", "'# '"),
        ("```\ncode\n", "never closes"),
    ],
)
def test_add_refuses_a_body_that_breaks_the_structure(body: str, fragment: str) -> None:
    draft = parse(HAND_WRITTEN)
    with pytest.raises(DraftError, match=re.escape(fragment)):
        draft.add(Item("A", body=body))
    assert draft.text() == HAND_WRITTEN
    with pytest.raises(DraftError):
        draft.set_intro(body)
    with pytest.raises(DraftError):
        draft.set_outro(body)
    assert draft.text() == HAND_WRITTEN


def test_add_accepts_headings_inside_a_code_fence() -> None:
    draft = parse(HAND_WRITTEN)
    body = "~~~\n## shell comment\n# another\n~~~"
    draft.add(Item("Code", body=body))
    assert draft.item(4).body == body


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        (Item("Two\nlines"), "one line"),
        (Item("   "), "needs a title"),
        (Item("A", link=Link("javascript:alert(1)")), "not a web address"),
        (Item("A", link=Link("https://e.org/a b")), "not a web address"),
        (Item("A", link=Link("https://e.org", "two\nlines")), "one line"),
        (Item("A", image=Image("file:///etc/passwd", "x")), "not a web address"),
    ],
)
def test_add_refuses_bad_items(item: Item, fragment: str) -> None:
    draft = parse(HAND_WRITTEN)
    with pytest.raises(DraftError, match=re.escape(fragment)):
        draft.add(item)
    assert draft.text() == HAND_WRITTEN


@pytest.mark.parametrize("position", [0, 4, -1])
def test_positions_out_of_range(position: int) -> None:
    draft = parse(HAND_WRITTEN)
    with pytest.raises(DraftError, match="positions go from 1 to 3"):
        draft.move(position, 1)
    with pytest.raises(DraftError, match="positions go from 1 to 3"):
        draft.remove(position)
    with pytest.raises(DraftError, match="positions go from 1 to 3"):
        draft.item(position)
    assert draft.text() == HAND_WRITTEN


def test_add_at_one_past_the_end_is_allowed_but_not_further() -> None:
    draft = parse(HAND_WRITTEN)
    assert draft.add(Item("Last"), at=4) == 4
    with pytest.raises(DraftError, match="positions go from 1 to 5"):
        draft.add(Item("Too far"), at=6)


def test_an_empty_draft_says_how_to_add_items() -> None:
    with pytest.raises(DraftError, match="no items yet"):
        parse("---\ntitle: t\n---\n").remove(1)


# ----- errors name the file and the line -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("Hello\n", 1, "starts with front matter"),
        ("", 1, "starts with front matter"),
        ("---\ntitle: x\n\nIntro\n", 1, "never closed"),
        ("---\ntitle: x\nsubject: [unclosed\n---\n", 4, "not valid YAML"),
        ("---\ntitle: x\n  bad: indent\n---\n", 3, "not valid YAML"),
        ("---\n- a list\n---\n", 2, "`field: value` lines"),
        ("---\ntitle: x\nauthor: me\n---\n", 3, "unknown front-matter field `author`"),
        ("---\ntitle: x\ndate: yesterday\n---\n", 3, "`date`"),
        ("---\ntitle: x\n\ndate: 2026-13-45\n---\n", 4, "`date`"),
        ("---\ntitle: x\ndate: 2026-02-30\n---\n", 3, "`date`"),
        ("---\ntitle: x\nnumber: 1.5\n---\n", 3, "`number`"),
        ("---\ntitle: x\nnumber: two\n---\n", 3, "`number`"),
        ("---\ntitle: x\nnumber: 0\n---\n", 3, "`number`"),
        ("---\ntitle: x\nnumber: true\n---\n", 3, "`number`"),
        ("---\ntitle: [a, b]\n---\n", 2, "`title` must be text"),
        ("---\ntitle: x\n---\n\n# Wrapping Up\n\n## Late item\n", 7, "after the closing section"),
        ("---\ntitle: x\n---\n# Wrapping Up\n\n# Again\n", 6, "second '# '"),
        ("---\ntitle: x\n---\nIntro\n\n## A\n\n```\n## B\n", 8, "code fence"),
        ("---\ntitle: x\n---\n##  \n", 4, "without a title"),
    ],
)
def test_broken_files_name_file_and_line(text: str, line: int, fragment: str) -> None:
    message = error_of(text)
    assert message.startswith(f"{PATH}:{line}: "), message
    assert fragment in message


def test_load_draft_of_non_utf8_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.md"
    data = "---\ntitle: x\n---\n\nCaf\u00e9\n".encode("latin-1")
    path.write_bytes(data)
    with pytest.raises(DraftError, match=re.escape(f"{path}:5: not UTF-8")):
        load_draft(path)
    assert path.read_bytes() == data


def test_load_draft_of_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DraftError, match="no such draft"):
        load_draft(tmp_path / "nope.md")


# ----- writing ---------------------------------------------------------------------------------


def test_write_atomic_replaces_the_file_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "draft.md"
    path.write_text("old", encoding="utf-8")
    os.chmod(path, 0o600)
    write_atomic(path, "new \u4e2d\u6587\r\n")
    assert path.read_bytes() == "new \u4e2d\u6587\r\n".encode()
    assert (path.stat().st_mode & 0o777) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["draft.md"]


def test_save_draft_refuses_a_draft_that_would_not_parse(tmp_path: Path) -> None:
    path = tmp_path / "draft.md"
    path.write_text(HAND_WRITTEN, encoding="utf-8")
    draft = load_draft(path)
    draft.items[0] = "not an item\n"  # bypassing the editing methods
    draft.outro += "\n## After the end\n"
    with pytest.raises(DraftError):
        save_draft(draft)
    assert path.read_text(encoding="utf-8") == HAND_WRITTEN


# ----- regressions found by the properties -----------------------------------------------------


def test_unicode_line_separators_stay_inside_their_line() -> None:
    # str.splitlines() would break these lines at U+2028, U+001E and the form feed.
    item = Item(
        "A\u2028title",
        body="one\x0cline\n\nsee\u2028## not a heading",
        image=Image("https://e.org/i.png", "\x1e"),
    )
    with_fence = Item("B", body="text\u2028## still text")
    draft = parse("---\ntitle: t\n---\n")
    draft.add(item)
    draft.add(with_fence)
    again = parse(draft.text())
    assert again.text() == draft.text()
    assert again.issue.items == (item, with_fence)


def test_front_matter_of_only_comments_is_empty() -> None:
    draft = parse("---\n# title: not yet\n---\n")
    assert draft.issue.title == ""
    draft.set_field("title", "Now")
    assert draft.text() == "---\n# title: not yet\ntitle: Now\n---\n"


def test_set_keeps_the_blank_line_after_the_field() -> None:
    draft = parse("---\ntitle: Old\n\n# notes\nsubject: S\n\n---\n")
    draft.set_field("title", "New")
    draft.set_field("subject", "T")
    assert draft.text() == "---\ntitle: New\n\n# notes\nsubject: T\n\n---\n"


def test_an_impossible_date_is_a_draft_error_not_a_crash() -> None:
    draft = parse(HAND_WRITTEN)
    draft.set_field("subject", "2026-13-45")
    assert draft.issue.subject == "2026-13-45"
    assert 'subject: "2026-13-45"\n' in draft.text()


def test_edits_in_a_crlf_file_keep_crlf_between_blocks() -> None:
    text = "---\r\ntitle: t\r\n---\r\n\r\nIntro\r\n## A\r\n\r\nBody\r\n\r\n"
    draft = parse(text)
    draft.add(Item("B"), at=1)
    assert draft.intro == "\r\nIntro\r\n\r\n"
    assert draft.items[1] == "## A\r\n\r\nBody\r\n\r\n"  # already ends in a blank line
