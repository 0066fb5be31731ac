"""The transport registry: one list of kinds, open to plug-ins through an entry-point group."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from digestcli.config import TransportSettings
from digestcli.errors import ConfigError
from digestcli.transports import BUILT_IN, ENTRY_POINT_GROUP, factory, kinds, transport_class
from digestcli.transports.memory import MAILBOX, MemoryTransport
from fakes import content
from harness.providers import make_messages


@pytest.fixture
def plugin(tmp_path: Path) -> Iterator[None]:
    """An installed distribution that registers two transports, as a third party would."""
    info = tmp_path / "digest_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: digest-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\n"
        "pigeon = digestcli.transports.memory:MemoryTransport\n"
        "broken = digestcli.models:Result\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        yield
    finally:
        sys.path.remove(str(tmp_path))


def test_the_built_in_kinds_are_the_only_list() -> None:
    assert list(BUILT_IN) == ["outbox", "smtp", "postmark", "sendgrid", "mailgun", "resend"]
    for kind in BUILT_IN:
        cls = transport_class(kind)
        assert cls.name == kind
        assert cls.capabilities.max_batch >= 1


def test_capabilities_are_known_without_making_a_transport() -> None:
    resend = transport_class("resend").capabilities
    assert resend.idempotent and resend.requests_per_second == 2.0
    assert transport_class("sendgrid").capabilities.substitution
    assert transport_class("mailgun").capabilities.provider_unsubscribe
    assert not transport_class("smtp").capabilities.provider_unsubscribe
    assert transport_class("smtp").capabilities.batch_size(None) == 50
    assert transport_class("postmark").capabilities.batch_size(10_000) == 500


def test_an_unknown_kind_names_the_choices() -> None:
    with pytest.raises(ConfigError, match="unknown transport `pigeon`; choose one of outbox"):
        transport_class("pigeon")


def test_a_plugin_transport_is_chosen_by_name_and_sends(plugin: None, tmp_path: Path) -> None:
    assert "pigeon" in kinds()
    transports = factory(TransportSettings(kind="pigeon"), {}, outbox_dir=tmp_path)
    assert transports.capabilities == MemoryTransport.capabilities
    before = MAILBOX.requests
    with transports() as transport:
        assert isinstance(transport, MemoryTransport)
        (result,) = transport.send_batch(make_messages(1, content=content()))
    assert result.ok and MAILBOX.requests == before + 1


def test_a_plugin_that_is_not_a_transport_is_a_clear_error(plugin: None) -> None:
    with pytest.raises(ConfigError, match=r"`broken`.*is not a digest Transport class"):
        transport_class("broken")
