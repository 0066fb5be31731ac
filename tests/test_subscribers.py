"""The subscriber store: addresses, states that never flip back to active, lists, streaming."""

from __future__ import annotations

import io
import sqlite3
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from digestcli import subscribers as store
from digestcli.db import connect, transaction
from digestcli.errors import DigestError, ExitStatus, UsageError
from digestcli.models import Recipient


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    connection = connect(tmp_path / "digest.db")
    yield connection
    connection.close()


def emails(db: sqlite3.Connection, **filters: str) -> list[str]:
    return [s.email for s in store.iter_subscribers(db, **filters)]


def test_add_keeps_the_address_as_given_with_the_domain_lower_cased(
    db: sqlite3.Connection,
) -> None:
    added = store.add(db, "  Alice.Smith@Example.ORG ", name="Alice")
    assert added.created and added.added_to_list and not added.updated
    assert added.subscriber.email == "Alice.Smith@example.org"
    assert added.subscriber.name == "Alice"
    assert added.subscriber.state == "active"
    assert added.subscriber.lists == ("default",)
    fetched = store.get(db, "alice.smith@EXAMPLE.org")
    assert fetched is not None and fetched.id == added.subscriber.id


def test_the_same_address_in_another_case_is_the_same_subscriber(db: sqlite3.Connection) -> None:
    store.add(db, "bob@example.org", name="Bob", fields={"city": "Oslo", "tier": "free"})
    again = store.add(db, "BOB@Example.org", fields={"tier": "gold"}, list_name="weekly")
    assert not again.created and again.updated and again.added_to_list
    assert again.subscriber.email == "bob@example.org"
    assert again.subscriber.name == "Bob"  # no --name: the stored name stays
    assert dict(again.subscriber.fields) == {"city": "Oslo", "tier": "gold"}
    assert again.subscriber.lists == ("default", "weekly")
    assert emails(db) == ["bob@example.org"]


def test_adding_again_with_nothing_new_changes_nothing(db: sqlite3.Connection) -> None:
    store.add(db, "bob@example.org", name="Bob")
    again = store.add(db, "bob@example.org", name="Bob")
    assert (again.created, again.updated, again.added_to_list) == (False, False, False)


@pytest.mark.parametrize("address", ["bob@@example.org", "bob", "bob@localhost", "", "a b@x.org"])
def test_an_invalid_address_is_a_usage_error(db: sqlite3.Connection, address: str) -> None:
    with pytest.raises(store.InvalidAddress) as caught:
        store.add(db, address)
    assert caught.value.status == ExitStatus.USAGE
    assert "not a valid address" in str(caught.value)
    assert emails(db) == []


@pytest.mark.parametrize(
    ("name", "fields"),
    [("Bob\nBcc: x@evil.org", {}), ("Bob", {"city": "Oslo\r\n"}), ("Bob", {"ci\nty": "Oslo"})],
)
def test_line_breaks_in_names_and_fields_are_refused(
    db: sqlite3.Connection, name: str, fields: dict[str, str]
) -> None:
    with pytest.raises(UsageError, match="line break"):
        store.add(db, "bob@example.org", name=name, fields=fields)
    assert emails(db) == []


@pytest.mark.parametrize("key", ["email", "Name", "state", "lists", " "])
def test_reserved_or_empty_field_names_are_refused(db: sqlite3.Connection, key: str) -> None:
    with pytest.raises(UsageError):
        store.add(db, "bob@example.org", fields={key: "x"})


@pytest.mark.parametrize("state", ["unsubscribed", "bounced", "complained"])
def test_add_never_reactivates_an_inactive_address(db: sqlite3.Connection, state: str) -> None:
    store.add(db, "carol@example.org")
    assert store.set_state(db, "CAROL@example.org", state)
    again = store.add(db, "carol@example.org", name="Carol", list_name="weekly")
    assert again.subscriber.state == state
    assert again.subscriber.lists == ("default", "weekly")
    assert again.subscriber.name == "Carol"
    assert list(store.active_recipients(db, "weekly")) == []


def test_unsubscribe_returns_the_state_before_and_keeps_a_bounce(db: sqlite3.Connection) -> None:
    store.add(db, "a@example.org")
    store.add(db, "b@example.org")
    store.set_state(db, "b@example.org", "bounced")
    assert store.unsubscribe(db, "A@example.org") == "active"
    assert store.unsubscribe(db, "a@example.org") == "unsubscribed"
    assert store.unsubscribe(db, "b@example.org") == "bounced"
    assert [s.state for s in store.iter_subscribers(db)] == ["unsubscribed", "bounced"]


def test_unknown_addresses(db: sqlite3.Connection) -> None:
    assert store.get(db, "nobody@example.org") is None
    assert not store.set_state(db, "nobody@example.org", "bounced")
    for action in (store.unsubscribe, store.remove):
        with pytest.raises(store.SubscriberNotFound) as caught:
            action(db, "nobody@example.org")
        assert isinstance(caught.value, DigestError)
        assert caught.value.status == ExitStatus.ERROR


def test_set_state_refuses_to_reactivate(db: sqlite3.Connection) -> None:
    store.add(db, "a@example.org")
    with pytest.raises(ValueError, match="active"):
        store.set_state(db, "a@example.org", "active")


def test_remove_deletes_the_subscriber_or_only_a_membership(db: sqlite3.Connection) -> None:
    store.add(db, "a@example.org")
    store.add(db, "a@example.org", list_name="weekly")
    store.add(db, "b@example.org", list_name="weekly")
    assert store.remove(db, "A@example.org", list_name="weekly")
    assert not store.remove(db, "a@example.org", list_name="weekly")
    assert emails(db, list_name="weekly") == ["b@example.org"]
    assert store.remove(db, "b@example.org")
    assert emails(db) == ["a@example.org"]
    assert [(i.name, i.subscribers) for i in store.lists_with_counts(db)] == [
        ("default", 1),
        ("weekly", 0),
    ]


def test_listing_is_in_id_order_and_filters_by_list_and_state(db: sqlite3.Connection) -> None:
    for address, list_name in [
        ("z@example.org", "default"),
        ("a@example.org", "weekly"),
        ("m@example.org", "default"),
        ("b@example.org", "weekly"),
    ]:
        store.add(db, address, list_name=list_name)
    store.unsubscribe(db, "m@example.org")
    assert emails(db) == ["z@example.org", "a@example.org", "m@example.org", "b@example.org"]
    assert emails(db, list_name="default") == ["z@example.org", "m@example.org"]
    assert emails(db, state="unsubscribed") == ["m@example.org"]
    assert emails(db, list_name="default", state="active") == ["z@example.org"]
    assert store.count_subscribers(db, list_name="weekly") == 2
    assert store.count_subscribers(db, state="active") == 3


def test_listing_an_unknown_list_or_state_is_a_usage_error(db: sqlite3.Connection) -> None:
    store.add(db, "a@example.org", list_name="weekly")
    with pytest.raises(UsageError, match=r"no list named 'monthly'; the lists are: weekly"):
        emails(db, list_name="monthly")
    with pytest.raises(UsageError, match="unknown state"):
        emails(db, state="gone")


def test_lists_with_counts(db: sqlite3.Connection) -> None:
    assert store.lists_with_counts(db) == []
    store.add(db, "a@example.org", list_name="weekly")
    store.add(db, "b@example.org", list_name="weekly")
    store.add(db, "c@example.org")
    store.set_state(db, "a@example.org", "complained")
    assert store.lists_with_counts(db) == [
        store.ListInfo("default", 1, 1),
        store.ListInfo("weekly", 2, 1),
    ]


def test_active_recipients_streams_the_active_members_of_one_list(
    db: sqlite3.Connection,
) -> None:
    store.add(db, "a@example.org", name="A", fields={"city": "Oslo"})
    store.add(db, "b@example.org", name="B")
    store.add(db, "c@example.org", list_name="weekly")
    store.add(db, "d@example.org", name="D")
    store.set_state(db, "b@example.org", "bounced")
    found = store.active_recipients(db, "default")
    assert isinstance(found, types.GeneratorType)  # lazy: the sender streams it
    assert list(found) == [
        Recipient("a@example.org", "A", {"city": "Oslo"}),
        Recipient("d@example.org", "D", {}),
    ]
    ids = [subscriber_id for subscriber_id, _ in store.active_members(db, "default")]
    assert ids == sorted(ids) and len(ids) == 2
    assert list(store.active_recipients(db, "no-such-list")) == []


def test_export_writes_one_column_per_field(db: sqlite3.Connection) -> None:
    store.add(db, "a@example.org", name="Smith, Ann", fields={"city": "Oslo"})
    store.add(db, "a@example.org", list_name="weekly")
    store.add(db, "b@example.org", name="李小龙", fields={"tier": "gold"}, list_name="weekly")
    store.unsubscribe(db, "b@example.org")
    stream = io.StringIO()
    assert store.export_csv(db, stream) == 2
    assert stream.getvalue() == (
        "email,name,state,lists,city,tier\n"
        'a@example.org,"Smith, Ann",active,default;weekly,Oslo,\n'
        "b@example.org,李小龙,unsubscribed,weekly,,gold\n"
    )
    only = io.StringIO()
    store.export_csv(db, only, list_name="default")
    assert only.getvalue() == (
        'email,name,state,lists,city\na@example.org,"Smith, Ann",active,default;weekly,Oslo\n'
    )


def test_lookup_batch_finds_addresses_in_any_case_with_their_membership_of_one_list(
    db: sqlite3.Connection,
) -> None:
    store.add(db, "Ann@example.org", name="Ann", fields={"city": "Oslo"})
    store.add(db, "bob@example.org", list_name="weekly")
    store.set_state(db, "bob@example.org", "bounced")
    ann, bob = store.get(db, "ann@example.org"), store.get(db, "bob@example.org")
    assert ann is not None and bob is not None
    weekly = store.list_id(db, "weekly")
    asked = ["ANN@example.org", "bob@EXAMPLE.org", "carol@example.org"]
    assert store.lookup_batch(db, asked, weekly) == {
        "ann@example.org": store.Known(ann.id, "Ann", {"city": "Oslo"}, "active", member=False),
        "bob@example.org": store.Known(bob.id, "", {}, "bounced", member=True),
    }
    # A dry run's list may not exist yet: nobody is a member of it.
    assert [known.member for known in store.lookup_batch(db, asked, None).values()] == [
        False,
        False,
    ]


def test_lookup_batch_takes_more_addresses_than_one_statement_can_bind(
    db: sqlite3.Connection,
) -> None:
    store.add(db, "last@example.org")
    limit = db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    asked = [f"user{i}@example.org" for i in range(limit)] + ["LAST@example.org"]
    assert list(store.lookup_batch(db, asked, None)) == ["last@example.org"]


def test_write_batch_creates_rewrites_and_puts_every_address_on_the_list(
    db: sqlite3.Connection,
) -> None:
    store.add(db, "ann@example.org", name="Ann", fields={"city": "Oslo"})
    ann = store.get(db, "ann@example.org")
    assert ann is not None
    weekly = store.ensure_list(db, "weekly")
    with transaction(db):
        store.write_batch(
            db,
            weekly,
            new=[store.NewSubscriber("Bob@example.org", "Bob", {"tier": "gold"}, "bounced")],
            changed=[store.Change(ann.id, "Ann S", {"city": "Bergen"}, "unsubscribed")],
            members=["ANN@example.org", "Bob@example.org"],
        )
    with transaction(db):  # already on the list: nothing to do, and no error
        store.write_batch(db, weekly, new=[], changed=[], members=["ann@example.org"])
    assert [s.to_json() for s in store.iter_subscribers(db)] == [
        {
            "email": "ann@example.org",
            "name": "Ann S",
            "state": "unsubscribed",
            "lists": ["default", "weekly"],
            "fields": {"city": "Bergen"},
        },
        {
            "email": "Bob@example.org",
            "name": "Bob",
            "state": "bounced",
            "lists": ["weekly"],
            "fields": {"tier": "gold"},
        },
    ]
    bob = store.get(db, "bob@example.org")
    assert bob is not None and bob.created_at == bob.updated_at != ""


def test_list_names_must_be_one_non_empty_line(db: sqlite3.Connection) -> None:
    with pytest.raises(UsageError, match="empty"):
        store.add(db, "a@example.org", list_name="  ")
    with pytest.raises(UsageError, match="line break"):
        store.add(db, "a@example.org", list_name="a\nb")


def test_a_store_locked_by_another_writer_is_a_clear_error(tmp_path: Path) -> None:
    holder = connect(tmp_path / "digest.db")
    holder.execute("BEGIN IMMEDIATE")
    waiting = sqlite3.connect(tmp_path / "digest.db", timeout=0.05, isolation_level=None)
    try:
        with pytest.raises(DigestError, match="the store is busy"):
            store.add(waiting, "a@example.org")
        assert not waiting.in_transaction
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        waiting.close()
