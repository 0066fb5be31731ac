"""CSV import: what is imported, what is skipped (with line numbers), and all-or-nothing."""

from __future__ import annotations

import io
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digestcli import importer
from digestcli import subscribers as store
from digestcli.db import connect
from digestcli.errors import ExitStatus, UsageError
from digestcli.importer import ImportFileError, KeptState, Skipped, import_csv


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    connection = connect(tmp_path / "digest.db")
    yield connection
    connection.close()


def write(tmp_path: Path, content: str | bytes, name: str = "people.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def everyone(db: sqlite3.Connection) -> list[dict[str, Any]]:
    return [s.to_json() for s in store.iter_subscribers(db)]


def test_imports_names_and_other_columns_as_fields(db: sqlite3.Connection, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Email,Name,City,Plan\nann@example.org,Ann,Oslo,gold\nBob@Example.ORG,李小龙,北京,\n",
    )
    report = import_csv(db, path)
    assert (report.rows, report.imported, report.updated, report.added_to_list) == (2, 2, 0, 2)
    assert report.skipped == [] and report.kept_state == []
    assert everyone(db) == [
        {
            "email": "ann@example.org",
            "name": "Ann",
            "state": "active",
            "lists": ["default"],
            "fields": {"City": "Oslo", "Plan": "gold"},
        },
        {
            "email": "Bob@example.org",
            "name": "李小龙",
            "state": "active",
            "lists": ["default"],
            "fields": {"City": "北京", "Plan": ""},
        },
    ]


def test_bad_rows_are_skipped_with_their_line_numbers(
    db: sqlite3.Connection, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "email,name\n"  # line 1
        "ann@example.org,Ann\n"  # 2
        "bob@@example.org,Bob\n"  # 3
        "\n"  # 4: a blank line is not a row
        "ANN@Example.org,Ann again\n"  # 5
        ",Nobody\n"  # 6
        "   ,Spaces\n"  # 7
        "carol@example.org,Carol\n"  # 8
        "carol@example.org,Carol,extra\n"  # 9
        "dave@example.org,Dave,,\n",  # 10: empty trailing cells are fine
    )
    report = import_csv(db, path)
    reasons = [(s.line, s.email, s.reason) for s in report.skipped]
    assert reasons == [
        (
            3,
            "bob@@example.org",
            "not a valid address (The part after the @-sign contains invalid characters: '@')",
        ),
        (5, "ANN@example.org", "duplicate of line 2"),
        (6, "", "no email address"),
        (7, "", "no email address"),
        (9, "carol@example.org", "3 cells but the header has 2 columns"),
    ]
    assert report.rows == 8
    assert [s["email"] for s in everyone(db)] == [
        "ann@example.org",
        "carol@example.org",
        "dave@example.org",
    ]


def test_semicolons_bom_crlf_and_quoted_fields(db: sqlite3.Connection, tmp_path: Path) -> None:
    content = (
        "\ufeffEMAIL;Name;Note\r\n"  # 1
        'ann@example.org;"Smith; Ann";"a, b"\r\n'  # 2
        'bob@example.org;"Bob ""the"" Builder";"two\r\nlines"\r\n'  # 3-4: skipped
        'carol@example.org;Carol;"x"\r\n'  # 5
        "bad address;Bad;\r\n"  # 6
    )
    report = import_csv(db, write(tmp_path, content.encode("utf-8")))
    assert [(s.line, s.email) for s in report.skipped] == [
        (3, "bob@example.org"),
        (6, "bad address"),
    ]
    assert report.skipped[0].reason == (
        "field 'Note' contains a line break (names and fields must be one line)"
    )
    assert [(s["email"], s["name"], s["fields"]) for s in everyone(db)] == [
        ("ann@example.org", "Smith; Ann", {"Note": "a, b"}),
        ("carol@example.org", "Carol", {"Note": "x"}),
    ]


def test_commas_in_quoted_cells_with_a_comma_header(db: sqlite3.Connection, tmp_path: Path) -> None:
    path = write(
        tmp_path, 'name,email,"Street, number"\n"Smith, Ann",ann@example.org,"Main St, 1"\n'
    )
    import_csv(db, path)
    assert [(s["name"], s["fields"]) for s in everyone(db)] == [
        ("Smith, Ann", {"Street, number": "Main St, 1"}),
    ]


def test_a_missing_email_column_names_the_file_and_the_columns(
    db: sqlite3.Connection, tmp_path: Path
) -> None:
    path = write(tmp_path, "E-mail;Name\nann@example.org;Ann\n")
    with pytest.raises(ImportFileError) as caught:
        import_csv(db, path)
    assert str(caught.value) == (
        f"{path}: no `email` column in the header line (columns found: 'E-mail', 'Name'); "
        "name the column holding the addresses `email`."
    )
    assert caught.value.status == ExitStatus.ERROR
    assert store.lists_with_counts(db) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "the first line is empty"),
        ("\n\nemail\n", "the first line is empty"),
        ("email,name,Email\n", r"names the column 'Email' twice \(columns 1 and 3\)"),
    ],
)
def test_unusable_headers(
    db: sqlite3.Connection, tmp_path: Path, content: str, message: str
) -> None:
    with pytest.raises(ImportFileError, match=message):
        import_csv(db, write(tmp_path, content))


def test_a_missing_file_is_a_usage_error(db: sqlite3.Connection, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        import_csv(db, tmp_path / "missing.csv")


def test_existing_subscribers_are_merged_but_never_reactivated(
    db: sqlite3.Connection, tmp_path: Path
) -> None:
    store.add(db, "ann@example.org", name="Ann", fields={"city": "Oslo", "plan": "free"})
    store.add(db, "bob@example.org", name="Bob")
    store.add(db, "carol@example.org", list_name="weekly")
    store.unsubscribe(db, "bob@example.org")
    store.set_state(db, "carol@example.org", "bounced")
    path = write(
        tmp_path,
        "email,name,plan,team\n"
        "ANN@example.org,,gold,\n"  # empty cells change nothing
        "bob@example.org,Robert,,\n"
        "carol@example.org,,,\n"
        "dave@example.org,Dave,free,\n",
    )
    report = import_csv(db, path, list_name="weekly")
    assert (report.imported, report.updated, report.unchanged) == (1, 2, 1)
    # ann and bob join weekly; carol is on it already; dave is new.
    assert report.added_to_list == 3
    assert report.kept_state == [
        KeptState(3, "bob@example.org", "unsubscribed"),
        KeptState(4, "carol@example.org", "bounced"),
    ]
    assert [(s["email"], s["name"], s["state"], s["lists"], s["fields"]) for s in everyone(db)] == [
        (
            "ann@example.org",
            "Ann",
            "active",
            ["default", "weekly"],
            {"city": "Oslo", "plan": "gold"},
        ),
        ("bob@example.org", "Robert", "unsubscribed", ["default", "weekly"], {}),
        ("carol@example.org", "", "bounced", ["weekly"], {}),
        ("dave@example.org", "Dave", "active", ["weekly"], {"plan": "free", "team": ""}),
    ]
    assert [r.email for r in store.active_recipients(db, "weekly")] == [
        "ann@example.org",
        "dave@example.org",
    ]


def test_a_state_column_can_only_move_away_from_active(
    db: sqlite3.Connection, tmp_path: Path
) -> None:
    store.add(db, "ann@example.org")
    store.add(db, "bob@example.org")
    store.unsubscribe(db, "bob@example.org")
    path = write(
        tmp_path,
        "email,state,lists\n"
        "ann@example.org,Unsubscribed,default\n"
        "bob@example.org,active,default\n"
        "carol@example.org,bounced,default\n"
        "dave@example.org,,default\n"
        "erin@example.org,gone,\n",
    )
    report = import_csv(db, path)
    assert report.ignored_columns == ["lists"]
    assert report.skipped == [
        Skipped(
            6,
            "erin@example.org",
            "unknown state 'gone' (use active, unsubscribed, bounced, complained)",
        )
    ]
    assert [(s["email"], s["state"]) for s in everyone(db)] == [
        ("ann@example.org", "unsubscribed"),
        ("bob@example.org", "unsubscribed"),
        ("carol@example.org", "bounced"),
        ("dave@example.org", "active"),
    ]


def test_reimporting_the_same_file_changes_nothing(db: sqlite3.Connection, tmp_path: Path) -> None:
    path = write(tmp_path, "email,name\nann@example.org,Ann\n")
    import_csv(db, path)
    before = everyone(db)
    report = import_csv(db, path)
    assert (report.imported, report.updated, report.unchanged, report.added_to_list) == (
        0,
        0,
        1,
        0,
    )
    assert everyone(db) == before


def test_a_dry_run_reports_the_same_and_writes_nothing(
    db: sqlite3.Connection, tmp_path: Path
) -> None:
    store.add(db, "ann@example.org", name="Ann")
    store.unsubscribe(db, "ann@example.org")
    before = everyone(db)
    changes = db.total_changes
    path = write(
        tmp_path,
        "email,name\nann@example.org,Ann B\nbob@example.org,Bob\nbob@example.org,Bob\nbad,x\n",
    )
    dry = import_csv(db, path, list_name="weekly", dry_run=True)
    assert db.total_changes == changes
    assert everyone(db) == before
    assert [i.name for i in store.lists_with_counts(db)] == ["default"]
    real = import_csv(db, path, list_name="weekly")
    assert (dry.dry_run, real.dry_run) == (True, False)
    for report in (dry, real):
        assert (report.imported, report.updated, report.added_to_list) == (1, 1, 2)
        assert [s.line for s in report.skipped] == [4, 5]
        assert report.kept_state == [KeptState(2, "ann@example.org", "unsubscribed")]


def test_the_import_is_one_transaction(
    db: sqlite3.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "CHUNK", 10)  # so that several chunks are written first
    store.add(db, "old@example.org", name="Old")
    good = "".join(f"user{i}@example.org,User {i}\n" for i in range(95))
    content = ("email,name\n" + good).encode() + b"late@example.org,Andr\xe9\n"
    path = write(tmp_path, content)
    with pytest.raises(ImportFileError) as caught:
        import_csv(db, path)
    assert str(caught.value) == (
        f"{path}, line 97: not UTF-8 text (byte 0xe9); "
        "save the file as UTF-8 and import it again; nothing was imported."
    )
    assert [s["email"] for s in everyone(db)] == ["old@example.org"]
    assert not db.in_transaction
    # The store is usable afterwards, and the same rows import once the file is fixed.
    fixed = write(tmp_path, ("email,name\n" + good).encode(), "fixed.csv")
    assert import_csv(db, fixed).imported == 95


def test_broken_csv_quoting_fails_the_whole_import(db: sqlite3.Connection, tmp_path: Path) -> None:
    path = write(tmp_path, 'email,name\nann@example.org,Ann\nbob@example.org,"Bob" Smith\n')
    with pytest.raises(ImportFileError, match=r"line 3: not valid CSV"):
        import_csv(db, path)
    assert everyone(db) == []


def test_the_importer_does_not_load_the_network_or_rendering_stack() -> None:
    code = (
        "import sys, digestcli.importer, digestcli.subscribers\n"
        "print(sorted(m for m in ('httpx', 'premailer', 'lxml', 'typer', 'rich')"
        " if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


one_line = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\u2028\u2029\x85"),
    max_size=12,
).map(str.strip)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    people=st.lists(
        st.tuples(
            st.from_regex(r"[a-z0-9]{1,8}(\.[A-Za-z0-9+_-]{1,5})?", fullmatch=True),
            one_line,
            st.dictionaries(st.sampled_from(["city", "Plan", "Über", "x y"]), one_line),
            st.sampled_from(store.STATES),
        ),
        max_size=8,
        unique_by=lambda person: person[0].lower(),
    )
)
def test_export_then_import_round_trips(
    tmp_path_factory: pytest.TempPathFactory,
    people: list[tuple[str, str, dict[str, str], str]],
) -> None:
    folder = tmp_path_factory.mktemp("roundtrip")
    source = connect(folder / "source.db")
    for local, name, fields, state in people:
        store.add(source, f"{local}@Example.org", name=name, fields=fields, list_name="weekly")
        if state != "active":
            store.set_state(source, f"{local}@example.org", state)
    exported = io.StringIO()
    store.export_csv(source, exported)
    path = write(folder, exported.getvalue())
    target = connect(folder / "target.db")
    report = import_csv(target, path, list_name="weekly")
    assert report.skipped == []
    # Fields missing for one subscriber come back empty, as the export writes them.
    keys = store.field_keys(source)
    expected = [
        {**s, "fields": {k: s["fields"].get(k, "") for k in keys}} for s in everyone(source)
    ]
    assert everyone(target) == expected
    source.close()
    target.close()


@pytest.mark.parametrize(
    ("header", "fields"),
    [
        ("email,a;b;c;d\n", {"a;b;c;d": "1"}),
        ("email;Street, number, floor\n", {"Street, number, floor": "1"}),
    ],
)
def test_the_separator_is_the_one_that_finds_the_email_column(
    db: sqlite3.Connection, tmp_path: Path, header: str, fields: dict[str, str]
) -> None:
    separator = header[len("email")]
    path = write(tmp_path, header + f"ann@example.org{separator}1\n")
    import_csv(db, path)
    assert [s["fields"] for s in everyone(db)] == [fields]
