"""CSV import of subscribers: streamed, validated row by row, written in one transaction."""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import BinaryIO

from digestcli import subscribers as store
from digestcli.db import transaction
from digestcli.errors import DigestError, UsageError
from digestcli.models import DEFAULT_LIST

# Rows looked up and written per round trip.
CHUNK = 500


class ImportFileError(DigestError):
    """The CSV file cannot be imported as a whole (encoding, header, CSV syntax)."""


@dataclass(frozen=True)
class Skipped:
    """A row left out of the import, and why."""

    line: int
    email: str
    reason: str


@dataclass(frozen=True)
class KeptState:
    """A row for an existing subscriber who is not active and stays so."""

    line: int
    email: str
    state: str


@dataclass
class ImportReport:
    """What an import did (or, in a dry run, would do)."""

    path: Path
    list_name: str
    dry_run: bool
    rows: int = 0
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    added_to_list: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    kept_state: list[KeptState] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Row:
    line: int
    email: str
    key: str
    name: str
    fields: dict[str, str]
    state: str | None


@dataclass(frozen=True)
class _Columns:
    width: int
    email: int
    name: int | None
    state: int | None
    fields: tuple[tuple[int, str], ...]
    ignored: tuple[str, ...]


def import_csv(
    db: sqlite3.Connection,
    path: Path,
    *,
    list_name: str = DEFAULT_LIST,
    dry_run: bool = False,
) -> ImportReport:
    """Import subscribers from a CSV file into a list, all rows or none; dry_run writes nothing."""
    list_name = store.check_list_name(list_name)
    report = ImportReport(path=path, list_name=list_name, dry_run=dry_run)
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file; give the path of a CSV file.") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a folder; give the path of a CSV file.") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it ({exc.strerror}).") from None
    # A dry run reads inside a transaction too, for one consistent view, then rolls back.
    with handle, transaction(db, commit=not dry_run):
        _run(db, handle, report)
    return report


def _run(db: sqlite3.Connection, handle: BinaryIO, report: ImportReport) -> None:
    path = report.path
    lines = _lines(handle, path)
    first = next(lines, None)
    if first is None or not first.strip():
        raise ImportFileError(
            f"{path}: the first line is empty; it must be a header naming the columns, "
            "one of them `email`."
        )
    reader = csv.reader(chain([first], lines), delimiter=_sniff(first), strict=True)
    last_line = 0
    try:
        columns = _columns(next(reader), path)
        report.ignored_columns.extend(columns.ignored)
        # Memory grows with the file only here: one entry per distinct address (about 150
        # bytes each, so ~150 MB for 1,000,000 rows), the price of naming the first line.
        seen: dict[str, int] = {}
        pending: list[_Row] = []
        list_key: int | None = None
        last_line = reader.line_num
        for cells in reader:
            line, last_line = last_line + 1, reader.line_num
            row = _row(line, cells, columns, report)
            if row is None:
                continue
            if (first_line := seen.get(row.key)) is not None:
                report.skipped.append(Skipped(line, row.email, f"duplicate of line {first_line}"))
                continue
            seen[row.key] = line
            pending.append(row)
            if len(pending) >= CHUNK:
                list_key = _flush(db, pending, report, list_key)
                pending.clear()
        if pending:
            _flush(db, pending, report, list_key)
    except csv.Error as exc:
        raise ImportFileError(
            f"{path}, line {last_line + 1}: not valid CSV ({exc}); "
            "check the quotes on that line; nothing was imported."
        ) from None


def _lines(handle: BinaryIO, path: Path) -> Iterator[str]:
    """The file's lines, decoded one by one so that an encoding error has a line number."""
    for number, raw in enumerate(handle, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ImportFileError(
                f"{path}, line {number}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); "
                "save the file as UTF-8 and import it again; nothing was imported."
            ) from None
        if number == 1:
            text = text.removeprefix("\ufeff")
        yield text


def _sniff(header: str) -> str:
    """Comma or semicolon: the one that yields an email column, else the more frequent."""
    found = [d for d in ",;" if "email" in (c.strip().lower() for c in _split(header, d))]
    if len(found) == 1:
        return found[0]
    counts = {",": 0, ";": 0}
    quoted = False
    for char in header:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    return ";" if counts[";"] > counts[","] else ","


def _split(line: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error:
        return []


def _columns(header: list[str], path: Path) -> _Columns:
    names = [name.strip() for name in header]
    email = name = state = None
    fields: list[tuple[int, str]] = []
    ignored: list[str] = []
    seen: dict[str, int] = {}
    for index, column in enumerate(names):
        lower = column.lower()
        if not column:
            ignored.append(f"column {index + 1} (no name)")
            continue
        if lower in seen:
            raise ImportFileError(
                f"{path}: the header names the column {column!r} twice "
                f"(columns {seen[lower] + 1} and {index + 1}); rename one of them."
            )
        seen[lower] = index
        if "\r" in column or "\n" in column:
            raise ImportFileError(
                f"{path}: the column name {column!r} contains a line break; "
                "column names must be one line."
            )
        if lower == "email":
            email = index
        elif lower == "name":
            name = index
        elif lower == "state":
            state = index
        elif lower == "lists":
            # The export's lists column: list membership comes from --list on import.
            ignored.append(column)
        else:
            fields.append((index, column))
    if email is None:
        found = ", ".join(repr(n) for n in names) or "none"
        raise ImportFileError(
            f"{path}: no `email` column in the header line (columns found: {found}); "
            "name the column holding the addresses `email`."
        )
    return _Columns(len(names), email, name, state, tuple(fields), tuple(ignored))


def _row(line: int, cells: list[str], columns: _Columns, report: ImportReport) -> _Row | None:
    if not any(cell.strip() for cell in cells):
        return None  # a blank line is not a row
    report.rows += 1
    email = cells[columns.email].strip() if columns.email < len(cells) else ""

    def skip(reason: str, address: str = email) -> None:
        report.skipped.append(Skipped(line, address, reason))

    if len(cells) > columns.width and any(cell.strip() for cell in cells[columns.width :]):
        skip(f"{len(cells)} cells but the header has {columns.width} columns")
        return None
    cells = cells + [""] * (columns.width - len(cells))
    if not email:
        skip("no email address")
        return None
    try:
        address = store.normalize_email(email)
    except store.InvalidAddress as exc:
        skip(exc.reason)
        return None
    name = cells[columns.name].strip() if columns.name is not None else ""
    fields = {key: cells[index].strip() for index, key in columns.fields}
    for what, value in (("the name", name), *((f"field {k!r}", v) for k, v in fields.items())):
        if "\r" in value or "\n" in value:
            skip(f"{what} contains a line break (names and fields must be one line)", address)
            return None
    state = cells[columns.state].strip().lower() if columns.state is not None else ""
    if state and state not in store.STATES:
        skip(f"unknown state {state!r} (use {', '.join(store.STATES)})", address)
        return None
    return _Row(
        line,
        address,
        store.fold(address),
        name,
        fields,
        None if state in ("", store.ACTIVE) else state,
    )


def _flush(
    db: sqlite3.Connection, rows: list[_Row], report: ImportReport, list_key: int | None
) -> int | None:
    """Look up one chunk's addresses, work out what changes, write it unless a dry run."""
    if list_key is None:
        list_key = (
            store.list_id(db, report.list_name)
            if report.dry_run
            else store.ensure_list(db, report.list_name)
        )
    known = store.lookup_batch(db, [row.email for row in rows], list_key)
    new: list[store.NewSubscriber] = []
    changed: list[store.Change] = []
    for row in rows:
        found = known.get(row.key)
        if found is None:
            report.imported += 1
            report.added_to_list += 1
            new.append(
                store.NewSubscriber(row.email, row.name, row.fields, row.state or store.ACTIVE)
            )
            continue
        # An empty cell changes nothing: a sparse file never erases what is stored.
        fields = {**found.fields, **{k: v for k, v in row.fields.items() if v}}
        name = row.name or found.name
        # Only ever away from active: an import never re-activates anybody.
        state = row.state if row.state and found.state == store.ACTIVE else found.state
        if found.state != store.ACTIVE:
            report.kept_state.append(KeptState(row.line, row.email, found.state))
        if (name, fields, state) != (found.name, found.fields, found.state):
            report.updated += 1
            changed.append(store.Change(found.id, name, fields, state))
        else:
            report.unchanged += 1
        if not found.member:
            report.added_to_list += 1
    if not report.dry_run:
        assert list_key is not None  # ensure_list made it above
        store.write_batch(db, list_key, new, changed, [row.email for row in rows])
    return list_key
