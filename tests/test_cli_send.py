"""`digest send` and `digest status` driven as an editor would, good paths and bad."""

from __future__ import annotations

import email
import email.policy
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from conftest import REPO, Cli

from harness.providers import PostmarkFake

SECRET = {"DIGEST_SECRET": "cli-send-secret"}
READERS = "email,name,city\nada@example.org,Ada,London\nbob@example.org,Bob <b>,Oslo\n"
READERS += "mei@example.org,李美,上海\n"


@pytest.fixture
def ws(cli: Cli, workspace: Path) -> Path:
    """The example issue with its theme, and three readers on the default list."""
    shutil.copytree(REPO / "templates", workspace / "templates")
    for draft in (REPO / "drafts").glob("*.md"):
        shutil.copy(draft, workspace / "drafts" / draft.name)
    (workspace / "readers.csv").write_text(READERS, encoding="utf-8")
    result = cli("subscribers", "import", "readers.csv")
    assert result.exit_code == 0, result.output
    return workspace


def outbox_files(ws: Path) -> list[Path]:
    return sorted((ws / ".digest" / "outbox").rglob("*.eml"))


def campaigns(ws: Path) -> int:
    db = sqlite3.connect(ws / ".digest" / "digest.db")
    try:
        return int(db.execute("SELECT COUNT(*) FROM campaigns").fetchone()[0])
    finally:
        db.close()


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr
    return errors[0]


def test_a_test_send_goes_to_the_outbox_marked_test(cli: Cli, ws: Path) -> None:
    result = cli("send", "--test", "me@example.org, you@example.org", env=SECRET)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["me@example.org", "you@example.org"]
    path = Path(lines[0].split("\t")[1])
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert str(message["Subject"]).startswith("[TEST] Week 48")
    assert message["List-Unsubscribe"] is None
    assert campaigns(ws) == 0


def test_a_test_send_as_a_subscriber_uses_their_values(cli: Cli, ws: Path) -> None:
    result = cli("send", "--test", "me@example.org", "--as", "bob@example.org", env=SECRET)
    assert result.exit_code == 0, result.output
    raw = outbox_files(ws)[0].read_bytes()
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert str(message["To"]) == '"Bob <b>" <me@example.org>'


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--test", "not-an-address"), "`not-an-address` is not a valid address"),
        (("--test", "me@example.org", "--as", "nobody@example.org"), "no subscriber"),
        (("--as", "ada@example.org"), "--as goes with --test"),
        (("--resume", "--retry-failed"), "choose one of"),
        (("--resume",), "nothing to resume"),
    ],
)
def test_usage_mistakes_are_refused_before_anything_is_sent(
    cli: Cli, ws: Path, args: tuple[str, ...], needle: str
) -> None:
    result = cli("send", *args, env=SECRET)
    assert result.exit_code == 2
    assert needle in one_error_line(result.stderr)
    assert outbox_files(ws) == [] and campaigns(ws) == 0


def test_a_list_send_needs_confirmation_when_not_interactive(cli: Cli, ws: Path) -> None:
    result = cli("send", env=SECRET)
    assert result.exit_code == 2
    assert "pass --yes" in one_error_line(result.stderr)
    assert outbox_files(ws) == [] and campaigns(ws) == 0


def test_a_list_send_reaches_everyone_once_and_a_second_run_sends_nothing(
    cli: Cli, ws: Path
) -> None:
    result = cli("send", "--yes", env=SECRET)
    assert result.exit_code == 0, result.output
    assert "Recipients: 3" in result.stderr and "Done: 3 sent" in result.stderr
    files = outbox_files(ws)
    assert len(files) == 3
    for path in files:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert "token=" in str(message["List-Unsubscribe"])
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    again = cli("send", "--yes", env=SECRET)
    assert again.exit_code == 0 and "nothing to send" in again.stderr
    assert len(outbox_files(ws)) == 3

    status = cli("status", "--json", env=SECRET)
    data = json.loads(status.stdout)
    assert set(data) == {
        "campaign",
        "draft",
        "list",
        "transport",
        "total",
        "counts",
        "failures",
        "uncertain",
    }
    assert data["total"] == 3 and data["counts"]["sent"] == 3
    assert data["failures"] == [] and data["uncertain"] == []
    assert "sent" in cli("status", env=SECRET).stdout


def test_a_canary_then_resume(cli: Cli, ws: Path) -> None:
    first = cli("send", "--yes", "--limit", "1", env=SECRET)
    assert first.exit_code == 0 and "digest send --resume" in first.stderr
    assert len(outbox_files(ws)) == 1
    unfinished = cli("send", "--yes", env=SECRET)
    assert unfinished.exit_code == 2 and "--resume" in one_error_line(unfinished.stderr)
    rest = cli("send", "--resume", "--yes", env=SECRET)
    assert rest.exit_code == 0, rest.output
    assert len(outbox_files(ws)) == 3


def test_a_dry_run_counts_bytes_and_writes_nothing(cli: Cli, ws: Path) -> None:
    result = cli("send", "--dry-run", env=SECRET)
    assert result.exit_code == 0, result.output
    assert "Dry run: 3 recipients in 1 batches" in result.stderr
    assert outbox_files(ws) == [] and campaigns(ws) == 0


def test_a_missing_api_key_is_reported_before_anything_is_written(cli: Cli, ws: Path) -> None:
    config = ws / "digest.toml"
    config.write_text(config.read_text().replace('kind = "outbox"', 'kind = "postmark"'))
    result = cli("send", "--yes", env=SECRET)
    assert result.exit_code == 3
    assert "DIGEST_POSTMARK_TOKEN is not set" in one_error_line(result.stderr)
    assert campaigns(ws) == 0


def test_a_rejected_api_key_stops_the_send_and_never_shows_the_secret(cli: Cli, ws: Path) -> None:
    with PostmarkFake(secret="the-right-token") as fake:
        config = ws / "digest.toml"
        config.write_text(
            config.read_text().replace(
                'kind = "outbox"', f'kind = "postmark"\nbase_url = "{fake.url}"'
            )
        )
        wrong = "wrong-token-5f2e9d"
        result = cli("send", "--yes", env={**SECRET, "DIGEST_POSTMARK_TOKEN": wrong})
        assert result.exit_code == 3
        assert "DIGEST_POSTMARK_TOKEN" in one_error_line(result.stderr)
        assert wrong not in result.output
        status = json.loads(cli("status", "--json", env=SECRET).stdout)
        assert status["counts"]["pending"] == 3  # nobody lost: all still to send
        for path in (ws / ".digest").rglob("*"):
            if path.is_file():
                assert wrong.encode() not in path.read_bytes(), path


def test_a_template_error_stops_the_send_before_anything_is_written(cli: Cli, ws: Path) -> None:
    template = ws / "templates" / "email.html.j2"
    template.write_text(template.read_text() + "\n{{ issue.no_such_thing }}\n")
    result = cli("send", "--yes", env=SECRET)
    assert result.exit_code == 4
    assert "email.html.j2" in one_error_line(result.stderr)
    assert outbox_files(ws) == [] and campaigns(ws) == 0


def test_an_empty_list_is_refused(cli: Cli, ws: Path) -> None:
    result = cli("send", "--yes", "--list", "nobody", env=SECRET)
    assert result.exit_code == 2
    assert "no list named 'nobody'" in one_error_line(result.stderr)


def test_status_before_any_send_says_so(cli: Cli, ws: Path) -> None:
    result = cli("status", env=SECRET)
    assert result.exit_code == 2
    assert "has not been sent yet" in one_error_line(result.stderr)


def test_retry_failed_with_nothing_failed_sends_nothing(cli: Cli, ws: Path) -> None:
    assert cli("send", "--yes", env=SECRET).exit_code == 0
    result = cli("send", "--retry-failed", "--yes", env=SECRET)
    assert result.exit_code == 0 and "nothing to send" in result.stderr
    assert len(outbox_files(ws)) == 3


def test_retry_failed_moves_nothing_until_confirmed(cli: Cli, ws: Path) -> None:
    config = ws / "digest.toml"
    with PostmarkFake() as fake:
        config.write_text(
            config.read_text().replace(
                'kind = "outbox"', f'kind = "postmark"\nbase_url = "{fake.url}"'
            )
        )
        env = {**SECRET, **fake.env}
        fake.inactive("bob@example.org")
        first = cli("send", "--yes", env=env)
        assert first.exit_code == 5 and "1 recipients failed" in first.stderr
        dry = cli("send", "--retry-failed", "--dry-run", env=env)
        assert dry.exit_code == 0 and "Dry run: 1 recipients" in dry.stderr
        refused = cli("send", "--retry-failed", env=env)  # not interactive, no --yes
        assert refused.exit_code == 2
        status = json.loads(cli("status", "--json", env=SECRET).stdout)
        assert status["counts"]["failed"] == 1 and status["counts"]["pending"] == 0
        assert status["failures"][0]["email"] == "bob@example.org"
        assert len(fake.received()) == 2


def test_a_draft_with_check_errors_is_not_sent(cli: Cli, ws: Path) -> None:
    template = ws / "templates" / "partials" / "footer.html.j2"
    template.write_text(template.read_text().replace("unsubscribe_url", "web_url"))
    result = cli("send", "--yes", env=SECRET)
    assert result.exit_code == 4
    assert "not ready to send" in one_error_line(result.stderr)
    assert outbox_files(ws) == [] and campaigns(ws) == 0


def test_a_draft_edited_between_canary_and_resume_goes_out_with_a_warning(
    cli: Cli, ws: Path
) -> None:
    assert cli("send", "--yes", "--limit", "1", env=SECRET).exit_code == 0
    assert cli("set", "subject", "Week 48, corrected").exit_code == 0
    rest = cli("send", "--resume", "--yes", env=SECRET)
    assert rest.exit_code == 0, rest.output
    assert "warning: the draft changed since this campaign started" in rest.stderr
    assert len(outbox_files(ws)) == 3
