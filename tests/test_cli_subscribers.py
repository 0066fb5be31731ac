"""`digest subscribers ...`, `digest lists` and `digest unsubscribe`, run as a user would."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Cli

from digestcli import tokens

SECRET = {"DIGEST_SECRET": "the-workspace-secret"}


def csv_file(workspace: Path, content: str | bytes, name: str = "people.csv") -> str:
    (workspace / name).write_bytes(content.encode() if isinstance(content, str) else content)
    return name


def test_import_reports_skipped_rows_on_stderr_and_prints_no_data(
    cli: Cli, workspace: Path
) -> None:
    name = csv_file(
        workspace,
        "email;name;city\nann@example.org;Ann;Oslo\nbob@@x;Bob;\nANN@example.org;Ann;\n;Nobody;\n",
    )
    result = cli("subscribers", "import", name, "--list", "weekly")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "line 3: bob@@x: not a valid address "
        "(The part after the @-sign contains invalid characters: '@')",
        "line 4: ANN@example.org: duplicate of line 2",
        "line 5: (no address): no email address",
        "Imported people.csv: 1 new, 0 updated, 0 unchanged, 1 added to list 'weekly', "
        "3 skipped (of 4 rows).",
    ]


def test_import_reports_addresses_that_stay_inactive(cli: Cli, workspace: Path) -> None:
    cli("subscribers", "add", "ann@example.org")
    cli("subscribers", "unsubscribe", "ann@example.org")
    result = cli("subscribers", "import", csv_file(workspace, "email\nann@example.org\n"))
    assert result.exit_code == 0
    assert result.stderr.splitlines()[0] == (
        "line 2: ann@example.org: unsubscribed, and stays so "
        "(an import never re-activates an address)"
    )
    shown = json.loads(cli("subscribers", "list", "--json").stdout)
    assert [s["state"] for s in shown] == ["unsubscribed"]


def test_a_dry_run_on_a_new_workspace_creates_no_store(cli: Cli, workspace: Path) -> None:
    result = cli(
        "subscribers", "import", csv_file(workspace, "email\nann@example.org\n"), "--dry-run"
    )
    assert result.exit_code == 0
    assert result.stderr == (
        "Dry run of people.csv, nothing written: 1 new, 0 updated, 0 unchanged, "
        "1 added to list 'default', 0 skipped (of 1 rows).\n"
    )
    assert not (workspace / ".digest" / "digest.db").exists()


def test_a_dry_run_leaves_an_existing_store_alone(cli: Cli, workspace: Path) -> None:
    cli("subscribers", "add", "ann@example.org")
    name = csv_file(workspace, "email,name\nann@example.org,Ann\nbob@example.org,Bob\n")
    assert cli("subscribers", "import", name, "--dry-run").exit_code == 0
    shown = json.loads(cli("subscribers", "list", "--json").stdout)
    assert shown == [
        {
            "email": "ann@example.org",
            "name": "",
            "state": "active",
            "lists": ["default"],
            "fields": {},
        }
    ]


def test_import_errors_are_one_sentence_and_nothing_is_written(cli: Cli, workspace: Path) -> None:
    missing = cli("subscribers", "import", csv_file(workspace, "mail,name\na@example.org,A\n"))
    assert missing.exit_code == 1
    assert missing.stdout == ""
    assert missing.stderr == (
        "error: people.csv: no `email` column in the header line "
        "(columns found: 'mail', 'name'); name the column holding the addresses `email`.\n"
    )
    latin1 = csv_file(
        workspace, "email,name\na@example.org,A\nb@example.org,Andr\xe9\n".encode("latin-1")
    )
    broken = cli("subscribers", "import", latin1)
    assert broken.exit_code == 1
    assert broken.stderr == (
        "error: people.csv, line 3: not UTF-8 text (byte 0xe9); "
        "save the file as UTF-8 and import it again; nothing was imported.\n"
    )
    assert cli("subscribers", "list", "--json").stdout == "[\n]\n"
    absent = cli("subscribers", "import", "nowhere.csv")
    assert absent.exit_code == 2
    assert absent.stderr == "error: nowhere.csv: no such file; give the path of a CSV file.\n"


def test_add_list_and_the_json_shape(cli: Cli) -> None:
    added = cli("subscribers", "add", "Ann@Example.ORG", "--name", "Ann", "-f", "city=Oslo")
    assert added.exit_code == 0
    assert added.stderr == "Added Ann@example.org to list 'default'.\n"
    cli("subscribers", "add", "bob@example.org", "--name", "李小龙", "--list", "weekly")
    again = cli("subscribers", "add", "ann@example.org", "--list", "weekly", "--field", "tier=a=b")
    assert again.stderr == (
        "Ann@example.org was a subscriber already: added to list 'weekly'; "
        "name and fields updated.\n"
    )
    listed = cli("subscribers", "list", "--json")
    assert listed.exit_code == 0
    assert json.loads(listed.stdout) == [
        {
            "email": "Ann@example.org",
            "name": "Ann",
            "state": "active",
            "lists": ["default", "weekly"],
            "fields": {"city": "Oslo", "tier": "a=b"},
        },
        {
            "email": "bob@example.org",
            "name": "李小龙",
            "state": "active",
            "lists": ["weekly"],
            "fields": {},
        },
    ]
    text = cli("subscribers", "list", "--list", "weekly")
    assert text.stdout == (
        "Ann@example.org  Ann  [active]  default,weekly\n"
        "bob@example.org  李小龙  [active]  weekly\n"
    )
    only = cli("subscribers", "list", "--list", "default", "--json")
    assert [s["email"] for s in json.loads(only.stdout)] == ["Ann@example.org"]


def test_lists_json_shape(cli: Cli) -> None:
    assert json.loads(cli("lists", "--json").stdout) == []
    cli("subscribers", "add", "a@example.org")
    cli("subscribers", "add", "b@example.org", "--list", "weekly")
    cli("subscribers", "add", "c@example.org", "--list", "weekly")
    cli("subscribers", "unsubscribe", "c@example.org")
    result = cli("lists", "--json")
    assert json.loads(result.stdout) == [
        {"name": "default", "subscribers": 1, "active": 1},
        {"name": "weekly", "subscribers": 2, "active": 1},
    ]
    assert cli("lists").stdout == (
        "default  1 subscriber, 1 active\nweekly  2 subscribers, 1 active\n"
    )


def test_reading_commands_do_not_create_the_store(cli: Cli, workspace: Path) -> None:
    listed = cli("subscribers", "list")
    assert (listed.exit_code, listed.stdout) == (0, "")
    assert "No subscribers" in listed.stderr
    assert cli("lists").exit_code == 0
    assert cli("subscribers", "export").stdout == "email,name,state,lists\n"
    assert not (workspace / ".digest" / "digest.db").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "bob@@example.org"), "not a valid address"),
        (("add", "bob@example.org", "--name", "Bob\r\nBcc: x@example.org"), "line break"),
        (("add", "bob@example.org", "--field", "novalue"), "--field takes KEY=VALUE"),
        (("add", "bob@example.org", "--field", "email=x"), "reserved"),
        (("list", "--list", "nope"), "there is no list named 'nope'"),
        (("list", "--state", "gone"), "unknown state 'gone'"),
    ],
)
def test_usage_errors_exit_2_with_one_line(cli: Cli, args: tuple[str, ...], message: str) -> None:
    result = cli("subscribers", *args)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1


def test_export_is_csv_on_stdout(cli: Cli, workspace: Path) -> None:
    cli("subscribers", "add", "ann@example.org", "--name", "Smith, Ann", "-f", "city=Oslo")
    cli("subscribers", "add", "bob@example.org", "--list", "weekly", "-f", "tier=gold")
    result = cli("subscribers", "export")
    assert result.exit_code == 0
    assert result.stdout == (
        "email,name,state,lists,city,tier\n"
        'ann@example.org,"Smith, Ann",active,default,Oslo,\n'
        "bob@example.org,,active,weekly,,gold\n"
    )
    assert result.stderr == "Exported 2 subscribers.\n"
    weekly = cli("subscribers", "export", "--list", "weekly")
    assert weekly.stdout == "email,name,state,lists,tier\nbob@example.org,,active,weekly,gold\n"
    # What export writes, import reads back.
    name = csv_file(workspace, result.stdout, "backup.csv")
    again = cli("subscribers", "import", name)
    assert again.stderr.splitlines()[-1] == (
        "Imported backup.csv: 0 new, 0 updated, 2 unchanged, 1 added to list 'default', "
        "0 skipped (of 2 rows)."
    )


def test_remove_and_unsubscribe_by_address(cli: Cli) -> None:
    cli("subscribers", "add", "ann@example.org")
    cli("subscribers", "add", "ann@example.org", "--list", "weekly")
    cli("subscribers", "add", "bob@example.org")
    off = cli("subscribers", "remove", "ANN@example.org", "--list", "weekly")
    assert off.stderr == "Took ANN@example.org off list 'weekly'.\n"
    gone = cli("subscribers", "remove", "bob@example.org")
    assert gone.stderr == "Removed bob@example.org and their list memberships.\n"
    first = cli("subscribers", "unsubscribe", "ann@example.org")
    assert first.stderr == "Unsubscribed ann@example.org; no more issues go to this address.\n"
    second = cli("subscribers", "unsubscribe", "ann@example.org")
    assert second.stderr == "ann@example.org is unsubscribed already; nothing to do.\n"
    missing = cli("subscribers", "remove", "bob@example.org")
    assert missing.exit_code == 1
    assert missing.stderr == (
        "error: bob@example.org is not a subscriber; `digest subscribers list` shows who is.\n"
    )


def test_unsubscribe_with_a_token_or_a_link_leaves_that_list(cli: Cli) -> None:
    cli("subscribers", "add", "Ann@Example.org", "--list", "weekly")
    cli("subscribers", "add", "bob@example.org", "--list", "weekly")
    secret = SECRET["DIGEST_SECRET"].encode()
    token = tokens.sign("ann@example.org", "weekly", secret)
    by_token = cli("unsubscribe", token, env=SECRET)
    assert by_token.exit_code == 0
    assert by_token.stderr == (
        "Unsubscribed Ann@example.org from `weekly`; no more issues from that list.\n"
    )
    bob = tokens.sign("bob@example.org", "weekly", secret)
    link = f"https://example.org/unsubscribe?list=weekly&token={bob}"
    by_link = cli("unsubscribe", link, env=SECRET)
    assert by_link.exit_code == 0
    assert by_link.stderr == (
        "Unsubscribed bob@example.org from `weekly`; no more issues from that list.\n"
    )
    # They left `weekly`; they are still subscribers, for any other list they are on.
    people = json.loads(cli("subscribers", "list", "--json").stdout)
    assert [p["state"] for p in people] == ["active", "active"]
    weekly = json.loads(cli("lists", "--json").stdout)
    assert {row["name"]: row["active"] for row in weekly} == {"weekly": 0}
    again = cli("unsubscribe", link, env=SECRET)
    assert (again.exit_code, again.stderr) == (
        0,
        "bob@example.org left `weekly` already; nothing to do.\n",
    )
    shown = json.loads(cli("subscribers", "show", "bob@example.org", "--json").stdout)
    assert shown["lists_left"] == ["weekly"]


def test_unsubscribe_finds_an_address_with_a_non_ascii_capital(cli: Cli) -> None:
    cli("subscribers", "add", "Ärger@Example.org")
    secret = SECRET["DIGEST_SECRET"].encode()
    result = cli("unsubscribe", tokens.sign("Ärger@example.org", "default", secret), env=SECRET)
    assert result.stderr == (
        "Unsubscribed Ärger@example.org from `default`; no more issues from that list.\n"
    )


def test_unsubscribe_uses_the_workspace_secret_file(cli: Cli, workspace: Path) -> None:
    cli("subscribers", "add", "ann@example.org")
    secret = tokens.load_secret(workspace / ".digest", {})
    result = cli("unsubscribe", tokens.sign("ann@example.org", "default", secret))
    assert result.exit_code == 0, result.stderr


def test_a_valid_token_for_someone_removed_is_not_an_error(cli: Cli) -> None:
    token = tokens.sign("gone@example.org", "default", SECRET["DIGEST_SECRET"].encode())
    result = cli("unsubscribe", token, env=SECRET)
    assert (result.exit_code, result.stderr) == (
        0,
        "gone@example.org is not a subscriber any more; nothing to do.\n",
    )


def _tampered(token: str) -> str:
    payload, _, mac = token.partition(".")
    return f"{payload}.{('A' if mac[0] != 'A' else 'B')}{mac[1:]}"


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda: _tampered(tokens.sign("ann@example.org", "default", b"s")), id="mac"),
        pytest.param(
            lambda: (
                tokens.sign("bob@example.org", "default", b"s").split(".")[0]
                + "."
                + tokens.sign("ann@example.org", "default", b"s").split(".")[1]
            ),
            id="payload",
        ),
        pytest.param(
            lambda: tokens.sign("ann@example.org", "default", b"another-secret"), id="secret"
        ),
        pytest.param(lambda: "not-a-token", id="garbage"),
    ],
)
def test_a_forged_token_is_refused(cli: Cli, forge: Callable[[], str]) -> None:
    cli("subscribers", "add", "ann@example.org")
    cli("subscribers", "add", "bob@example.org")
    result = cli("unsubscribe", forge(), env={"DIGEST_SECRET": "s"})
    assert result.exit_code == 2
    assert result.stderr == (
        "error: that unsubscribe token is not valid for this workspace; "
        "copy the whole link from the email.\n"
    )
    states = [s["state"] for s in json.loads(cli("subscribers", "list", "--json").stdout)]
    assert states == ["active", "active"]


def test_a_link_without_a_token_is_refused(cli: Cli) -> None:
    result = cli("unsubscribe", "https://example.org/unsubscribe?list=weekly", env=SECRET)
    assert result.exit_code == 2
    assert result.stderr == (
        "error: that link carries no ?token=...; copy the whole unsubscribe link from the email.\n"
    )


def test_adding_again_keeps_an_answer_until_the_reader_asks_to_come_back(cli: Cli) -> None:
    cli("subscribers", "add", "ann@example.org", "--list", "weekly")
    cli("subscribers", "add", "bob@example.org", "--list", "weekly")
    cli("subscribers", "unsubscribe", "ann@example.org")
    secret = SECRET["DIGEST_SECRET"].encode()
    assert (
        cli("unsubscribe", tokens.sign("bob@example.org", "weekly", secret), env=SECRET).exit_code
        == 0
    )
    kept = cli("subscribers", "add", "ann@example.org", "--list", "weekly")
    assert kept.stderr == (
        "ann@example.org was a subscriber already: already on list 'weekly'; "
        "stays unsubscribed (--reactivate if they asked to come back).\n"
    )
    left = cli("subscribers", "add", "bob@example.org", "--list", "weekly")
    assert left.stderr == (
        "bob@example.org was a subscriber already: already on list 'weekly'; "
        "stays unsubscribed from list 'weekly' (--reactivate if they asked to come back).\n"
    )
    assert {row["name"]: row["active"] for row in json.loads(cli("lists", "--json").stdout)} == {
        "weekly": 0
    }
    for who in ("ann@example.org", "bob@example.org"):
        back = cli("subscribers", "add", who, "--list", "weekly", "--reactivate")
        assert back.stderr == (
            f"{who} was a subscriber already: already on list 'weekly'; "
            "active again on list 'weekly'.\n"
        )
    assert {row["name"]: row["active"] for row in json.loads(cli("lists", "--json").stdout)} == {
        "weekly": 2
    }
    people = json.loads(cli("subscribers", "list", "--json").stdout)
    assert [p["state"] for p in people] == ["active", "active"]
    shown = json.loads(cli("subscribers", "show", "bob@example.org", "--json").stdout)
    assert shown["lists_left"] == []
