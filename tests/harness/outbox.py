"""The outbox harness: the far side is the campaign folders under a temporary outbox."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.headerregistry import Address
from email.parser import BytesHeaderParser
from email.policy import default
from pathlib import Path

from digestcli.transports.base import Transport
from digestcli.transports.outbox import OutboxTransport
from harness.mime import Received, parse_eml


def outbox_files(root: Path) -> list[Path]:
    """Every message file under an outbox, campaign by campaign, in file-number order."""
    return sorted(root.glob("*/*.eml"))


def read_outbox(root: Path) -> list[Received]:
    """The messages in an outbox, normalised; "to" is the address in each file's To header."""
    received = []
    for path in outbox_files(root):
        raw = path.read_bytes()
        headers = BytesHeaderParser(policy=default).parsebytes(raw)
        (address,) = headers["to"].addresses
        assert isinstance(address, Address)
        received.append(parse_eml(raw, to=address.addr_spec))
    return received


@contextmanager
def outbox_harness() -> Iterator[tuple[Transport, Callable[[], list[Received]]]]:
    """An OutboxTransport writing into a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="digest-outbox-") as tmp:
        root = Path(tmp)
        transport = OutboxTransport(root)
        yield transport, lambda: read_outbox(root)
