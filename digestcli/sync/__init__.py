"""`digest sync`: readers' answers brought home (suppressions, a remote serve); sends settled."""

from __future__ import annotations

from digestcli.sync.run import SourceReport, SyncReport, sync

__all__ = ["SourceReport", "SyncReport", "sync"]
