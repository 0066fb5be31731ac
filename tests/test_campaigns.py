"""Planning a send from a mode and the journal, then running the plan (outbox transport)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from digestcli import journal
from digestcli.campaigns import (
    Action,
    Mode,
    Plan,
    SendSetup,
    plan_send,
    prepare,
    run_send,
    start_campaign,
)
from digestcli.db import opened
from digestcli.errors import Interrupted, UsageError
from digestcli.workspace import Workspace
from fakes import store
from harness.workspaces import copy_workspace

READERS = 12


@pytest.fixture
def setup(tmp_path: Path) -> SendSetup:
    """The example issue, ready to send through the outbox to READERS subscribers."""
    root = copy_workspace(tmp_path / "ws")
    store(root / ".digest" / "digest.db", READERS).close()
    draft = sorted((root / "drafts").glob("*.md"))[0]
    return prepare(Workspace(root), draft, {"DIGEST_SECRET": "plan-test-secret"})


def test_a_first_send_plans_to_start_with_a_summary(setup: SendSetup) -> None:
    plan = plan_send(setup, "default")
    assert (plan.action, plan.sends, plan.campaign) == (Action.START, True, None)
    summary = plan.summary
    assert (summary.recipients, summary.transport, summary.batches) == (READERS, "outbox", 1)
    assert summary.subject == setup.content.subject


def test_resuming_or_retrying_what_was_never_sent_is_refused(setup: SendSetup) -> None:
    for mode in (Mode.RESUME, Mode.RETRY_FAILED, Mode.RETRY_UNCERTAIN):
        with pytest.raises(UsageError, match="never sent"):
            plan_send(setup, "default", mode)


def test_a_finished_campaign_plans_nothing_and_says_so(setup: SendSetup) -> None:
    report = run_send(plan_send(setup, "default"))
    assert report.counts.sent == READERS
    again = plan_send(setup, "default")
    assert (again.action, again.sends) == (Action.FINISHED, False)
    assert "Already sent" in again.note() and f"{READERS} sent" in again.note()
    nothing = plan_send(setup, "default", Mode.RETRY_FAILED)
    assert nothing.action is Action.NOTHING_TO_RETRY
    assert nothing.note() == "No failed recipients in this campaign; nothing to send."
    with pytest.raises(UsageError, match="nothing to send"):
        run_send(again)


def test_an_unfinished_campaign_must_be_resumed_explicitly(setup: SendSetup) -> None:
    with opened(setup.workspace.db_path) as db:
        start_campaign(db, setup, "default")
    with pytest.raises(UsageError, match=r"unfinished.*--resume"):
        plan_send(setup, "default")
    plan = plan_send(setup, "default", Mode.RESUME)
    assert (plan.action, plan.summary.recipients) == (Action.RESUME, READERS)
    assert run_send(plan).counts.sent == READERS


def test_a_retry_requeues_only_after_the_plan_runs(setup: SendSetup) -> None:
    with opened(setup.workspace.db_path) as db:
        campaign = start_campaign(db, setup, "default")
        rows = journal.claim(db, campaign.id, 1, 3)
        journal.set_state(db, campaign.id, rows, "uncertain", "dropped")
    plan: Plan = plan_send(setup, "default", Mode.RETRY_UNCERTAIN)
    assert (plan.action, plan.summary.recipients) == (Action.RETRY, READERS)
    with opened(setup.workspace.db_path) as db:
        assert journal.counts(db, campaign.id).uncertain == 3  # planning changed nothing
    report = run_send(plan)
    assert report.requeued == 3 and report.counts.sent == READERS


def test_a_stop_before_the_first_batch_saves_everything_as_pending(setup: SendSetup) -> None:
    stop = threading.Event()
    stop.set()
    with pytest.raises(Interrupted):
        run_send(plan_send(setup, "default"), stop=stop)
    with opened(setup.workspace.db_path) as db:
        campaign = journal.latest_campaign(db, setup.draft.name)
        assert campaign is not None
        counts = journal.counts(db, campaign.id)
    assert counts.pending == READERS and counts.sent == 0
