"""The editing commands through the CLI, as an editor types them."""

from __future__ import annotations

import html
import json
import re
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from conftest import REPO, Cli

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "samples" / "china-digital-digest.txt"


# ----- helpers ---------------------------------------------------------------------------------


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return result


def data(result: Result) -> Any:
    return json.loads(ok(result).stdout)


def fails(result: Result, status: int) -> str:
    """The one error line of a failed command, after checking its shape."""
    assert result.exit_code == status, (result.exit_code, result.stdout, result.stderr)
    assert isinstance(result.exception, SystemExit)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    assert result.stdout == ""
    return lines[0]


def new(cli: Cli, title: str, *options: str) -> Path:
    result = ok(cli("new", title, *options))
    path = Path(result.stdout.strip())
    assert result.stdout == f"{path}\n"
    assert path.is_file()
    return path


def editor(tmp_path: Path, name: str, code: str) -> dict[str, str]:
    """An $EDITOR: a tiny Python script run on the file, as `EDITOR=... digest ...` would."""
    script = tmp_path / f"{name}.py"
    script.write_text(
        "import pathlib, sys\npath = pathlib.Path(sys.argv[1])\n" + code, encoding="utf-8"
    )
    return {"EDITOR": f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"}


def titles(cli: Cli, *options: str) -> list[str]:
    return [item["title"] for item in data(cli("items", "--json", *options))]


@pytest.fixture
def draft(cli: Cli) -> Path:
    """A draft with an intro, three items and a closing section."""
    path = new(cli, "Week 9", "--date", "2026-03-02")
    ok(cli("intro", "Hi folks."))
    for title in ("One", "Two", "Three"):
        ok(cli("add", title, "--body", f"Body of {title.lower()}."))
    ok(cli("outro", "Bye."))
    return path


# ----- new, drafts, show, items ----------------------------------------------------------------


def test_new_prints_the_path_and_numbers_the_issues(cli: Cli, workspace: Path) -> None:
    first = new(cli, "China's Digital Digest", "--date", "2026-03-02")
    assert first == workspace / "drafts" / "2026-03-02-china-s-digital-digest.md"
    assert first.read_text(encoding="utf-8") == (
        "---\ntitle: China's Digital Digest\nsubject: China's Digital Digest\n"
        "date: 2026-03-02\nnumber: 1\n---\n\n"
    )
    second = new(cli, "China's Digital Digest", "--date", "2026-03-02")
    assert second.name == "2026-03-02-china-s-digital-digest-2.md"
    third = new(
        cli, "Week: 3", "--subject", "Subject: three", "--preheader", "Pre", "--date", "2026-03-16"
    )
    assert [
        data(cli("show", "--json", "-d", p.name))["number"] for p in (first, second, third)
    ] == [
        1,
        2,
        3,
    ]
    shown = data(cli("show", "--json"))
    assert (shown["title"], shown["subject"], shown["preheader"]) == (
        "Week: 3",
        "Subject: three",
        "Pre",
    )


def test_new_refuses_a_bad_date(cli: Cli, workspace: Path) -> None:
    assert "YYYY-MM-DD" in fails(cli("new", "T", "--date", "2026-02-30"), 4)
    assert list((workspace / "drafts").iterdir()) == []


def test_drafts_lists_every_draft(cli: Cli, workspace: Path) -> None:
    assert ok(cli("drafts")).stdout == ""
    assert data(cli("drafts", "--json")) == []
    a = new(cli, "Week 9", "--date", "2026-03-02")
    ok(cli("add", "Item", "-d", str(a)))
    b = new(cli, "Week 10", "--date", "2026-03-09")
    assert ok(cli("drafts")).stdout == (
        "  #1  2026-03-02  Week 9  (1 items, draft)\n  #2  2026-03-09  Week 10  (0 items, draft)\n"
    )
    assert data(cli("drafts", "--json")) == [
        {
            "path": str(a),
            "number": 1,
            "date": "2026-03-02",
            "title": "Week 9",
            "items": 1,
            "state": "draft",
            "error": None,
        },
        {
            "path": str(b),
            "number": 2,
            "date": "2026-03-09",
            "title": "Week 10",
            "items": 0,
            "state": "draft",
            "error": None,
        },
    ]


def test_drafts_shows_a_broken_draft_with_its_error(cli: Cli, workspace: Path) -> None:
    new(cli, "Week 9", "--date", "2026-03-02")
    broken = workspace / "drafts" / "broken.md"
    broken.write_text("---\ntitle: x\nauthor: me\n---\n", encoding="utf-8")
    listing = data(cli("drafts", "--json"))
    assert [row["state"] for row in listing] == ["broken", "draft"]
    assert listing[0]["error"].startswith(f"{broken}:3: unknown front-matter field `author`")
    assert "[broken]" in ok(cli("drafts")).stdout
    assert titles(cli) == []  # the good draft is still the current one


def test_show_json_has_the_whole_draft(cli: Cli, draft: Path) -> None:
    ok(cli("add", "Four", "--link", "https://example.org/4", "--label", "Read it"))
    ok(cli("add", "Five", "--image", "https://example.org/5.png", "--alt", "A chart"))
    shown = data(cli("show", "--json"))
    assert shown == {
        "title": "Week 9",
        "subject": "Week 9",
        "preheader": "",
        "date": "2026-03-02",
        "number": 1,
        "intro": "Hi folks.",
        "items": [
            {
                "position": 1,
                "title": "One",
                "body": "Body of one.",
                "link": None,
                "link_label": None,
                "image": None,
            },
            {
                "position": 2,
                "title": "Two",
                "body": "Body of two.",
                "link": None,
                "link_label": None,
                "image": None,
            },
            {
                "position": 3,
                "title": "Three",
                "body": "Body of three.",
                "link": None,
                "link_label": None,
                "image": None,
            },
            {
                "position": 4,
                "title": "Four",
                "body": "",
                "link": "https://example.org/4",
                "link_label": "Read it",
                "image": None,
            },
            {
                "position": 5,
                "title": "Five",
                "body": "",
                "link": None,
                "link_label": None,
                "image": {"url": "https://example.org/5.png", "alt": "A chart"},
            },
        ],
        "outro_title": "Wrapping Up",
        "outro": "Bye.",
    }
    assert data(cli("items", "--json")) == shown["items"]


def test_show_and_items_as_text(cli: Cli, draft: Path) -> None:
    ok(cli("add", "Four", "--link", "https://example.org/4"))
    assert ok(cli("items")).stdout == (
        " 1. One\n 2. Two\n 3. Three\n 4. Four  <https://example.org/4>\n"
    )
    shown = ok(cli("show")).stdout
    assert shown.startswith(f"Draft:     {draft}\nTitle:     Week 9\n")
    assert "\n1. One\nBody of one.\n" in shown
    assert shown.endswith("\nWrapping Up\nBye.\n")


def test_items_of_an_empty_draft(cli: Cli) -> None:
    new(cli, "Week 9")
    result = ok(cli("items"))
    assert result.stdout == ""
    assert "digest add" in result.stderr
    assert data(cli("items", "--json")) == []


# ----- editing ---------------------------------------------------------------------------------


def test_set_fields(cli: Cli, draft: Path) -> None:
    ok(cli("set", "subject", "Week 9: TikTok & Alibaba"))
    ok(cli("set", "preheader", "yes"))
    ok(cli("set", "number", "12"))
    ok(cli("set", "date", "2026-03-03"))
    ok(cli("set", "title", "Week nine"))
    assert draft.read_text(encoding="utf-8").startswith(
        '---\ntitle: Week nine\nsubject: "Week 9: TikTok & Alibaba"\ndate: 2026-03-03\n'
        'number: 12\npreheader: "yes"\n---\n'
    )
    shown = data(cli("show", "--json"))
    assert (shown["subject"], shown["preheader"], shown["number"], shown["date"]) == (
        "Week 9: TikTok & Alibaba",
        "yes",
        12,
        "2026-03-03",
    )
    ok(cli("set", "subject", ""))
    assert data(cli("show", "--json"))["subject"] == "Week nine"


def test_intro_from_argument_stdin_and_editor(cli: Cli, draft: Path, tmp_path: Path) -> None:
    ok(cli("intro", "Hello **readers**, {{ 7*7 }} and %recipient.name%."))
    assert data(cli("show", "--json"))["intro"] == (
        "Hello **readers**, {{ 7*7 }} and %recipient.name%."
    )
    ok(cli("intro", "-", input="From stdin.\n\nSecond paragraph.\n"))
    assert data(cli("show", "--json"))["intro"] == "From stdin.\n\nSecond paragraph."

    seen = tmp_path / "seen.txt"
    env = editor(
        tmp_path,
        "rewrite",
        f"pathlib.Path({str(seen)!r}).write_text(path.read_text())\n"
        "path.write_text('Written in the *editor*.\\n')\n",
    )
    ok(cli("intro", env=env))
    assert seen.read_text() == "From stdin.\n\nSecond paragraph.\n"
    assert data(cli("show", "--json"))["intro"] == "Written in the *editor*."
    assert "\nWritten in the *editor*.\n\n## One\n" in draft.read_text(encoding="utf-8")


def test_intro_without_text_or_editor_is_a_usage_error(cli: Cli, draft: Path) -> None:
    before = draft.read_bytes()
    assert "$EDITOR" in fails(cli("intro"), 2)
    assert draft.read_bytes() == before


def test_outro_with_title(cli: Cli, draft: Path) -> None:
    ok(cli("outro", "See you next week.", "--title", "Until next time"))
    shown = data(cli("show", "--json"))
    assert (shown["outro_title"], shown["outro"]) == ("Until next time", "See you next week.")
    ok(cli("outro", "-", input="From stdin."))
    shown = data(cli("show", "--json"))
    assert (shown["outro_title"], shown["outro"]) == ("Until next time", "From stdin.")
    assert draft.read_text(encoding="utf-8").endswith("\n# Until next time\n\nFrom stdin.\n")


def test_add_with_every_option(cli: Cli, draft: Path) -> None:
    ok(cli("add", "Stdin body", "--body", "-", input="Line one.\n\n```\n## code\n```\n"))
    result = ok(
        cli(
            "add",
            "Linked",
            "--body",
            "Text.",
            "--link",
            "https://example.org/story",
            "--label",
            'The "story"',
            "--image",
            "https://example.org/pic.png",
            "--alt",
            "A picture",
            "--at",
            "2",
        )
    )
    assert result.stdout == ""
    assert "Added item 2" in result.stderr
    items = data(cli("items", "--json"))
    assert [i["title"] for i in items] == ["One", "Linked", "Two", "Three", "Stdin body"]
    assert items[1] == {
        "position": 2,
        "title": "Linked",
        "body": "Text.",
        "link": "https://example.org/story",
        "link_label": 'The "story"',
        "image": {"url": "https://example.org/pic.png", "alt": "A picture"},
    }
    assert items[4]["body"] == "Line one.\n\n```\n## code\n```"
    assert (
        '## Linked\nlink: https://example.org/story "The "story""\n'
        'image: https://example.org/pic.png "A picture"\n\nText.\n\n## Two\n'
    ) in draft.read_text(encoding="utf-8")


def test_move_and_remove(cli: Cli, draft: Path) -> None:
    ok(cli("move", "3", "1"))
    assert titles(cli) == ["Three", "One", "Two"]
    ok(cli("move", "1", "3"))
    assert titles(cli) == ["One", "Two", "Three"]
    result = ok(cli("remove", "2"))
    assert "Removed item 2 (Two)" in result.stderr
    assert titles(cli) == ["One", "Three"]
    assert draft.read_text(encoding="utf-8") == (
        "---\ntitle: Week 9\nsubject: Week 9\ndate: 2026-03-02\nnumber: 1\n---\n\n"
        "Hi folks.\n\n## One\n\nBody of one.\n\n## Three\n\nBody of three.\n\n"
        "# Wrapping Up\n\nBye.\n"
    )


def test_edits_keep_hand_edits(cli: Cli, draft: Path) -> None:
    text = draft.read_text(encoding="utf-8")
    hand = text.replace("---\ntitle", "---\n# my notes\ntitle").replace(
        "Body of two.", "Body of two,\nedited  by hand.\n\n\n<!-- keep me -->"
    )
    draft.write_text(hand, encoding="utf-8")
    ok(cli("add", "Four", "--at", "1"))
    ok(cli("move", "4", "2"))
    ok(cli("set", "subject", "New subject"))
    ok(cli("remove", "1"))
    after = draft.read_text(encoding="utf-8")
    assert after.startswith("---\n# my notes\ntitle: Week 9\nsubject: New subject\n")
    assert "## Two\n\nBody of two,\nedited  by hand.\n\n\n<!-- keep me -->\n\n" in after
    assert titles(cli) == ["Three", "One", "Two"]


def test_edit_item_in_the_editor(cli: Cli, draft: Path, tmp_path: Path) -> None:
    seen = tmp_path / "seen.txt"
    env = editor(
        tmp_path,
        "item",
        f"pathlib.Path({str(seen)!r}).write_text(path.read_text())\n"
        "path.write_text(path.read_text().replace('Two', 'Deux') + '\\nMore.\\n')\n",
    )
    ok(cli("edit", "2", env=env))
    assert seen.read_text() == "## Two\n\nBody of two.\n"
    items = data(cli("items", "--json"))
    assert (items[1]["title"], items[1]["body"]) == ("Deux", "Body of two.\n\nMore.")
    assert titles(cli) == ["One", "Deux", "Three"]


def test_edit_item_that_becomes_two_items_is_refused(cli: Cli, draft: Path, tmp_path: Path) -> None:
    before = draft.read_bytes()
    env = editor(tmp_path, "split", "path.write_text(path.read_text() + '\\n## Sneaky\\n')\n")
    assert "more than one section" in fails(cli("edit", "2", env=env), 4)
    assert draft.read_bytes() == before
    assert "no item 7" in fails(cli("edit", "7", env=env), 4)


def test_edit_whole_file_in_the_editor(cli: Cli, draft: Path, tmp_path: Path) -> None:
    env = editor(
        tmp_path, "whole", "path.write_text(path.read_text().replace('## Two', '## Zwei'))\n"
    )
    expected = draft.read_text(encoding="utf-8").replace("## Two", "## Zwei")
    ok(cli("edit", env=env))
    assert draft.read_text(encoding="utf-8") == expected
    assert titles(cli) == ["One", "Zwei", "Three"]


def test_edit_that_breaks_the_file_keeps_the_draft_and_the_edit(
    cli: Cli, draft: Path, workspace: Path, tmp_path: Path
) -> None:
    before = draft.read_bytes()
    env = editor(
        tmp_path,
        "break",
        "path.write_text(path.read_text().replace('number: 1', 'number: one'))\n",
    )
    line = fails(cli("edit", env=env), 4)
    assert f"{draft}:5:" in line
    assert "`number`" in line
    kept = workspace / ".digest" / "rejected" / draft.name
    assert f"kept in {kept}" in line
    assert draft.read_bytes() == before
    assert kept.read_bytes() == before.replace(b"number: 1", b"number: one")


def test_a_failing_editor_changes_nothing(cli: Cli, draft: Path, tmp_path: Path) -> None:
    before = draft.read_bytes()
    env = editor(tmp_path, "fail", "path.write_text('garbage')\nsys.exit(3)\n")
    assert "exited with status 3" in fails(cli("edit", env=env), 2)
    assert "exited with status 3" in fails(cli("intro", env=env), 2)
    assert draft.read_bytes() == before


# ----- choosing the draft ----------------------------------------------------------------------


def test_draft_option_by_path_file_name_and_number(cli: Cli, workspace: Path) -> None:
    first = new(cli, "Week 9", "--date", "2026-03-02")
    second = new(cli, "Week 10", "--date", "2026-03-09")
    ok(cli("add", "By path", "--draft", str(first)))
    ok(cli("add", "By relative path", "-d", f"drafts/{first.name}"))
    ok(cli("add", "By file name", "-d", first.name))
    ok(cli("add", "By stem", "-d", first.stem))
    ok(cli("add", "By number", "-d", "1"))
    assert titles(cli, "-d", "1") == [
        "By path",
        "By relative path",
        "By file name",
        "By stem",
        "By number",
    ]
    assert titles(cli, "-d", second.name) == []
    line = fails(cli("items", "-d", "7"), 4)
    assert "no draft matches `7`" in line


def test_current_draft_is_the_newest_by_date(cli: Cli) -> None:
    later = new(cli, "Later", "--date", "2026-04-01")
    new(cli, "Earlier", "--date", "2026-03-01")
    ok(cli("add", "Goes to the later one"))
    assert titles(cli, "-d", later.name) == ["Goes to the later one"]
    assert data(cli("show", "--json"))["title"] == "Later"


def test_no_draft_yet(cli: Cli) -> None:
    assert "digest new" in fails(cli("items"), 4)


# ----- errors: one line, the documented code, nothing changed ----------------------------------


@pytest.mark.parametrize(
    ("args", "status", "fragment"),
    [
        (("move", "5", "1"), 4, "there is no item 5"),
        (("move", "1", "0"), 4, "there is no item 0"),
        (("remove", "9"), 4, "positions go from 1 to 3"),
        (("add", "X", "--at", "9"), 4, "positions go from 1 to 4"),
        (("set", "author", "me"), 4, "unknown field `author`"),
        (("set", "number", "two"), 4, "`number`"),
        (("set", "date", "tomorrow"), 4, "YYYY-MM-DD"),
        (("add", "X", "--label", "L"), 2, "--label needs --link"),
        (("add", "X", "--image", "https://example.org/i.png"), 2, "--alt"),
        (("add", "X", "--link", "javascript:alert(1)"), 4, "not a web address"),
        (("add", "X", "--body", "a\n## b"), 4, "'## '"),
        (("add", "X", "--body", "```\nopen"), 4, "code fence"),
        (("intro", "# Heading"), 4, "'# '"),
        (("edit", "0"), 4, "there is no item 0"),
    ],
)
def test_errors_are_one_line_with_the_documented_code(
    cli: Cli, draft: Path, args: tuple[str, ...], status: int, fragment: str
) -> None:
    before = draft.read_bytes()
    line = fails(cli(*args), status)
    assert fragment in line
    assert draft.read_bytes() == before


def test_broken_front_matter_names_file_and_line(cli: Cli, draft: Path) -> None:
    broken = draft.read_text(encoding="utf-8").replace("number: 1", "number: [1")
    draft.write_text(broken, encoding="utf-8")
    line = fails(cli("items", "-d", draft.name), 4)
    assert f"{draft}:5:" in line or f"{draft}:6:" in line
    assert draft.read_text(encoding="utf-8") == broken
    fails(cli("add", "X", "-d", draft.name), 4)
    assert draft.read_text(encoding="utf-8") == broken


def test_unknown_front_matter_field_on_items(cli: Cli, draft: Path) -> None:
    broken = draft.read_text(encoding="utf-8").replace("number: 1", "number: 1\nauthor: me")
    draft.write_text(broken, encoding="utf-8")
    line = fails(cli("items", "-d", str(draft)), 4)
    assert line == (
        f"error: {draft}:6: unknown front-matter field `author`; "
        "known fields are title, subject, preheader, date, number."
    )


def test_no_workspace(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    line = fails(cli("items"), 3)
    assert "digest init" in line
    assert fails(cli("new", "T"), 3) == line
    assert list(elsewhere.iterdir()) == []


def test_unknown_config_key(cli: Cli, workspace: Path, draft: Path) -> None:
    config = workspace / "digest.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace("[sending]", "[sending]\nburst = 10"),
        encoding="utf-8",
    )
    before = draft.read_bytes()
    line = fails(cli("add", "X"), 3)
    assert "`burst`" in line
    assert str(config) in line
    assert draft.read_bytes() == before


def test_workspace_option_and_environment(cli: Cli, workspace: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "digest.toml").write_bytes((workspace / "digest.toml").read_bytes())
    path = Path(ok(cli("--workspace", str(other), "new", "Elsewhere")).stdout.strip())
    assert path.parent == other / "drafts"
    assert titles(cli, "-d", str(path)) == []
    ok(cli("add", "Via env", env={"DIGEST_WORKSPACE": str(other)}))
    assert data(cli("--workspace", str(other), "items", "--json"))[0]["title"] == "Via env"
    assert "digest init" in fails(cli("--workspace", str(tmp_path), "items"), 3)


def test_found_from_a_subfolder(cli: Cli, workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deep = workspace / "notes" / "deeper"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    path = new(cli, "From below", "--date", "2026-03-02")
    assert path.parent == workspace / "drafts"


# ----- the sample issue, composed with the CLI alone ---------------------------------------------

_HEADLINE = re.compile(r"^(\d+)\. (.+)$")


def parse_sample(text: str) -> tuple[str, list[tuple[str, str]], str]:
    """The sample newsletter as (intro, [(headline, body)], outro)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    intro = lines[0]
    items: list[tuple[str, list[str]]] = []
    outro: list[str] = []
    in_outro = False
    for line in lines[1:]:
        if line == "Wrapping Up":
            in_outro = True
        elif in_outro:
            outro.append(line)
        elif match := _HEADLINE.match(line):
            assert int(match[1]) == len(items) + 1
            items.append((match[2], []))
        else:
            items[-1][1].append(line)
    if outro and outro[-1] == "Comments":  # the web page's comment widget, not the newsletter
        outro.pop()
    return intro, [(h, "\n\n".join(p)) for h, p in items], "\n\n".join(outro)


def test_the_sample_issue_composed_with_the_cli(cli: Cli, workspace: Path) -> None:
    if not SAMPLE.is_file():
        pytest.skip(f"the sample newsletter is not at {SAMPLE}")
    intro, items, outro = parse_sample(SAMPLE.read_text(encoding="utf-8"))
    assert len(items) == 9

    path = new(cli, "China's Digital Digest", "--date", "2023-03-03")
    ok(cli("intro", intro))
    for headline, body in items:
        ok(cli("add", headline, "--body", body))
    ok(cli("outro", outro))

    shown = data(cli("show", "--json"))
    assert shown["intro"] == intro
    assert (shown["outro_title"], shown["outro"]) == ("Wrapping Up", outro)
    listed = data(cli("items", "--json"))
    assert [(i["position"], i["title"], i["body"]) for i in listed] == [
        (n, h, b) for n, (h, b) in enumerate(items, start=1)
    ]
    assert rendered_headlines(cli, workspace, "before") == list(
        enumerate((h for h, _ in items), start=1)
    )

    headlines = [h for h, _ in items]
    ok(cli("move", "9", "1"))
    moved = [headlines[8], *headlines[:8]]
    assert titles(cli) == moved
    ok(cli("remove", "5"))
    assert titles(cli) == moved[:4] + moved[5:]
    assert "TikTok Is Coming to Cars, Starting With Mercedes Benz" not in titles(cli)
    assert titles(cli)[4] == "Douyin Tests Out A PC Shopping Feature to Boost E-Commerce"
    assert path.read_text(encoding="utf-8").count("\n## ") == 8
    assert rendered_headlines(cli, workspace, "after") == list(
        enumerate(moved[:4] + moved[5:], start=1)
    )


def rendered_headlines(cli: Cli, workspace: Path, out: str) -> list[tuple[int, str]]:
    """`digest render`, then the numbered headlines of issue.html, checked against issue.txt."""
    if not (workspace / "templates").exists():
        shutil.copytree(REPO / "templates", workspace / "templates")
    ok(cli("render", "--out", out, env={"DIGEST_SECRET": "s"}))
    page = (workspace / out / "issue.html").read_text(encoding="utf-8")
    found = [
        (int(number), html.unescape(re.sub(r"<[^>]+>", "", title)).strip())
        for number, title in re.findall(
            r'<span class="item-number"[^>]*>(\d+)\.</span>(.*?)</h2>', page, re.S
        )
    ]
    text = (workspace / out / "issue.txt").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if re.match(r"^\d+\. ", line)]
    assert lines == [f"{n}. {title}" for n, title in found]
    return found
