"""`digest sync`: readers' answers pulled from the provider's suppression lists (§10)."""

from __future__ import annotations

from digestcli.sync.run import SourceReport, SyncReport, sync

__all__ = ["SourceReport", "SyncReport", "sync"]
