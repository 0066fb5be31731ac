"""The exception family of digest and the process exit codes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from digestcli.models import Result


class ExitStatus(IntEnum):
    """Process exit codes, as documented in the CLI contract."""

    OK = 0
    ERROR = 1
    USAGE = 2
    CONFIG = 3
    DRAFT = 4
    PARTIAL = 5
    INTERRUPTED = 130


class DigestError(Exception):
    """Root of every error digest reports to the user as one sentence."""

    status = ExitStatus.ERROR


class UsageError(DigestError):
    """A command was called with arguments that cannot work."""

    status = ExitStatus.USAGE


class ConfigError(DigestError):
    """The workspace, digest.toml, a secret or the environment is wrong."""

    status = ExitStatus.CONFIG


class WorkspaceNotFound(ConfigError):
    """No digest.toml in the current directory or any parent."""


class DraftError(DigestError):
    """A draft is missing, malformed, or an edit on it cannot be done."""

    status = ExitStatus.DRAFT


class TemplateError(DigestError):
    """A template is missing or fails to render."""

    status = ExitStatus.DRAFT


class TransportError(DigestError):
    """A transport could not deliver; subclasses say whether to retry."""


class TemporaryFailure(TransportError):
    """Surely not accepted (429, 5xx, no connection): safe to retry later."""

    def __init__(
        self, message: str, retry_after: float | None = None, *, throttled: bool = False
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        # The provider said "too fast" (429): waiting is the cure, not giving up.
        self.throttled = throttled


class AmbiguousFailure(TransportError):
    """The request may have been accepted (dropped after sending): do not blindly retry."""

    def __init__(self, message: str, results: Sequence[Result | None] = ()) -> None:
        super().__init__(message)
        # A transport that sends message by message (SMTP) knows most outcomes: one entry
        # per message, None where it may have been accepted. Empty: every message is in doubt.
        self.results: tuple[Result | None, ...] = tuple(results)


class PermanentFailure(TransportError):
    """The provider refused the whole request for good (bad payload, bad credentials)."""


class RecipientsRejected(PermanentFailure):
    """The provider refused the whole request because of some recipients: nothing was sent.

    rejected maps a message's index in the batch to the provider's reason, for the recipients
    the answer names; empty when it names none. Either way the rest can be sent again safely.
    """

    def __init__(self, message: str, rejected: Mapping[int, str] | None = None) -> None:
        super().__init__(message)
        self.rejected: dict[int, str] = dict(rejected or {})


class Interrupted(DigestError):
    """Ctrl-C: batches in flight were finished and saved; the rest is pending."""

    status = ExitStatus.INTERRUPTED
