"""[unsubscribe] mode = "provider": the provider's own unsubscribe link, or a clear refusal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import Cli
from test_cli_send import campaigns

from digestcli.config import load_settings
from digestcli.errors import ConfigError
from digestcli.models import Content, MergeText
from harness.providers import FakeProvider, MailgunFake, PostmarkFake, SendGridFake
from harness.workspaces import REPO, copy_workspace

SECRET = {"DIGEST_SECRET": "provider-unsubscribe-secret"}
READERS = "email,name\nada@example.org,Ada\nbob@example.org,Bob <b>\n"
PLACEHOLDERS = {
    "postmark": "{{{ pm:unsubscribe }}}",
    "sendgrid": "<%asm_group_unsubscribe_raw_url%>",
    "mailgun": "%unsubscribe_url%",
}
FAKES: dict[str, type[FakeProvider]] = {
    "postmark": PostmarkFake,
    "sendgrid": SendGridFake,
    "mailgun": MailgunFake,
}
FIX = 'set [unsubscribe] mode = "digest" or use postmark, sendgrid or mailgun.'


def config(kind: str, *, extra: str = "", unsubscribe: str | None = None) -> str:
    """The repository's digest.toml in provider mode, sending with `kind`."""
    text = (REPO / "digest.toml").read_text(encoding="utf-8")
    digest_mode = '[unsubscribe]\nurl = "https://example.org/unsubscribe"\n'
    digest_mode += 'mailto = "unsubscribe@example.org"'
    assert digest_mode in text
    text = text.replace(digest_mode, unsubscribe or '[unsubscribe]\nmode = "provider"')
    return text.replace('[transport]\nkind = "outbox"', f'[transport]\nkind = "{kind}"{extra}')


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A copy of the repository's workspace (theme and example issue), in provider mode."""
    return copy_workspace(tmp_path / "ws", config=config("outbox"))


@pytest.fixture
def ws(cli: Cli, workspace: Path) -> Path:
    """The workspace with two readers on the default list."""
    (workspace / "readers.csv").write_text(READERS, encoding="utf-8")
    result = cli("subscribers", "import", "readers.csv")
    assert result.exit_code == 0, result.output
    return workspace


def use(ws: Path, text: str) -> None:
    (ws / "digest.toml").write_text(text, encoding="utf-8")


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def transport_lines(fake: FakeProvider) -> str:
    """The [transport] lines that point a send at the fake."""
    lines = f'\nbase_url = "{fake.url}"'
    if fake.provider == "mailgun":
        lines += '\ndomain = "mg.example.org"'
    if fake.provider == "sendgrid":
        lines += "\nasm_group_id = 4242"
    return lines


# ----- sending through each provider -----------------------------------------------------------


@pytest.mark.parametrize("kind", ["postmark", "sendgrid", "mailgun"])
def test_each_reader_gets_the_providers_unsubscribe_link_and_no_headers_of_digests(
    cli: Cli, ws: Path, kind: str
) -> None:
    placeholder = PLACEHOLDERS[kind]
    with FAKES[kind]() as fake:
        use(ws, config(kind, extra=transport_lines(fake)))
        result = cli("send", "--yes", env={**SECRET, **fake.env})
        assert result.exit_code == 0, result.output
        assert fake.violations == []
        received = fake.received()
        sent = [r for r in fake.requests if r.method == "POST"]
    assert sorted(r["to"] for r in received) == ["ada@example.org", "bob@example.org"]
    for mail in received:
        # The bytes the provider documents: the placeholder itself as the href, unescaped,
        # and as the URL of the text part's unsubscribe line.
        assert mail["html"].count(placeholder) == 1
        assert f'<a href="{placeholder}"' in mail["html"]
        assert f"Unsubscribe: {placeholder}\n" in mail["text"]
        assert "token=" not in mail["html"] + mail["text"]
        assert "list-unsubscribe" not in mail["headers"]
        assert "list-unsubscribe-post" not in mail["headers"]
    body = b"".join(request.body for request in sent).decode()
    assert "List-Unsubscribe" not in body
    if kind == "sendgrid":
        (request,) = sent
        assert request.json()["asm"] == {"group_id": 4242}
    if kind == "postmark":
        assert {item["MessageStream"] for r in sent for item in r.json()} == {"broadcast"}


def test_a_test_send_carries_the_placeholder_and_sendgrids_group(cli: Cli, ws: Path) -> None:
    with SendGridFake() as fake:
        use(ws, config("sendgrid", extra=transport_lines(fake)))
        result = cli("send", "--test", "me@example.org", env={**SECRET, **fake.env})
        assert result.exit_code == 0, result.output
        assert fake.violations == []
        (request,) = fake.requests
        (mail,) = fake.received()
    assert request.json()["asm"] == {"group_id": 4242}
    assert '<a href="<%asm_group_unsubscribe_raw_url%>"' in mail["html"]


def test_digest_mode_sends_no_sendgrid_group_even_when_one_is_configured(
    cli: Cli, ws: Path
) -> None:
    digest_mode = '[unsubscribe]\nurl = "https://example.org/unsubscribe"'
    with SendGridFake() as fake:
        use(ws, config("sendgrid", extra=transport_lines(fake), unsubscribe=digest_mode))
        result = cli("send", "--yes", env={**SECRET, **fake.env})
        assert result.exit_code == 0, result.output
        (request,) = [r for r in fake.requests if r.method == "POST"]
        received = fake.received()
    assert "asm" not in request.json()
    for mail in received:
        assert "https://example.org/unsubscribe?token=" in mail["headers"]["list-unsubscribe"]
        assert "<%asm" not in mail["html"]


def test_an_issue_that_already_holds_the_placeholder_is_refused(cli: Cli, ws: Path) -> None:
    draft = next((ws / "drafts").glob("*.md"))
    draft.write_text(draft.read_text() + "\nWrite %unsubscribe_url% to leave.\n")
    with MailgunFake() as fake:
        use(ws, config("mailgun", extra=transport_lines(fake)))
        result = cli("send", "--yes", env={**SECRET, **fake.env})
        assert fake.requests == []
    assert result.exit_code == 4
    assert "contains `%unsubscribe_url%`, which mailgun would turn into its unsubscribe link" in (
        one_error_line(result.stderr)
    )
    assert campaigns(ws) == 0


# ----- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["resend", "smtp", "outbox"])
def test_a_transport_that_cannot_host_unsubscribes_is_refused_before_sending(
    cli: Cli, ws: Path, kind: str
) -> None:
    use(ws, config(kind))
    result = cli("send", "--yes", env=SECRET)
    assert result.exit_code == 3
    line = one_error_line(result.stderr)
    assert "digest.toml" in line and f"and {kind} cannot" in line and line.endswith(FIX)
    assert campaigns(ws) == 0
    assert not (ws / ".digest" / "outbox").exists()


def test_a_test_send_and_check_refuse_it_too(cli: Cli, ws: Path) -> None:
    use(ws, config("resend"))
    for args in (("send", "--test", "me@example.org"), ("check", "--no-links")):
        result = cli(*args, env=SECRET)
        assert result.exit_code == 3, args
        assert one_error_line(result.stderr).endswith(FIX), args


def test_the_transport_option_is_checked_as_well(cli: Cli, ws: Path) -> None:
    with PostmarkFake() as fake:
        use(ws, config("postmark", extra=transport_lines(fake)))
        result = cli("send", "--yes", "--transport", "outbox", env={**SECRET, **fake.env})
    assert result.exit_code == 3
    assert "and outbox cannot" in one_error_line(result.stderr)


def test_sendgrid_without_an_unsubscribe_group_is_refused(cli: Cli, ws: Path) -> None:
    with SendGridFake() as fake:
        use(ws, config("sendgrid", extra=f'\nbase_url = "{fake.url}"'))
        result = cli("send", "--yes", env={**SECRET, **fake.env})
        assert [r for r in fake.requests if r.method == "POST"] == []
    assert result.exit_code == 3
    line = one_error_line(result.stderr)
    assert "digest.toml" in line and "needs [transport] asm_group_id" in line
    assert campaigns(ws) == 0


def test_check_finds_the_themes_unsubscribe_link_in_provider_mode(cli: Cli, ws: Path) -> None:
    use(ws, config("postmark"))
    result = cli("check", "--no-links", "--json", env=SECRET)
    assert result.exit_code == 0, result.output
    assert "no-unsubscribe" not in {finding["code"] for finding in json.loads(result.stdout)}


# ----- configuration -----------------------------------------------------------------------------


def test_provider_mode_needs_no_unsubscribe_url(tmp_path: Path) -> None:
    path = tmp_path / "digest.toml"
    path.write_text(config("postmark"), encoding="utf-8")
    settings = load_settings(path)
    assert settings.unsubscribe.by_provider and settings.unsubscribe.url == ""


def test_digest_mode_still_needs_one(tmp_path: Path) -> None:
    path = tmp_path / "digest.toml"
    path.write_text(config("postmark", unsubscribe='[unsubscribe]\nmode = "digest"'))
    with pytest.raises(ConfigError, match=r"\[unsubscribe\] url is missing"):
        load_settings(path)


@pytest.mark.parametrize(
    ("unsubscribe", "extra", "message"),
    [
        (
            '[unsubscribe]\nmode = "sendgrid"',
            "",
            r"\[unsubscribe\] mode must be \"digest\" or \"provider\", not 'sendgrid'\.",
        ),
        ("[unsubscribe]\nmode = 1", "", r"`unsubscribe.mode` must be a string, not 1\."),
        (None, '\nasm_group_id = "12"', r"`transport.asm_group_id` must be a number"),
        (None, "\nasm_group_id = 0", r"\[transport\] asm_group_id must be a SendGrid"),
        (None, "\nasm_group = 12", r"unknown key `asm_group` in \[transport\]"),
    ],
)
def test_bad_values_name_the_key_and_the_file(
    tmp_path: Path, unsubscribe: str | None, extra: str, message: str
) -> None:
    path = tmp_path / "digest.toml"
    path.write_text(config("sendgrid", extra=extra, unsubscribe=unsubscribe), encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as caught:
        load_settings(path)
    assert str(caught.value).startswith(f"{path}: ")


# ----- the content, once per issue ---------------------------------------------------------------


def test_the_placeholder_becomes_fixed_text_in_every_slot_of_its_key() -> None:
    html = MergeText(
        ('<a href="', "unsubscribe_url", '">x</a> ', "name", " ", "unsubscribe_url", "")
    )
    content = Content("S", "a@example.org", html, MergeText(("U: ", "unsubscribe_url", "\n")))
    done = content.with_literal("unsubscribe_url", "<%asm_group_unsubscribe_raw_url%>")
    assert done.html.parts == (
        '<a href="<%asm_group_unsubscribe_raw_url%>">x</a> ',
        "name",
        " <%asm_group_unsubscribe_raw_url%>",
    )
    assert done.text.parts == ("U: <%asm_group_unsubscribe_raw_url%>\n",)
    # Values fill the other slots around it; the tag itself stays as written.
    assert done.html.fill({"name": "<b>"}) == (
        '<a href="<%asm_group_unsubscribe_raw_url%>">x</a> <b> <%asm_group_unsubscribe_raw_url%>'
    )


def test_render_writes_the_placeholder_where_the_provider_will_find_it(cli: Cli, ws: Path) -> None:
    use(ws, config("postmark"))
    result = cli("render", "--out", "out", env=SECRET)
    assert result.exit_code == 0, result.output
    html = (ws / "out" / "issue.html").read_text(encoding="utf-8")
    assert '<a href="{{{ pm:unsubscribe }}}"' in html  # not URL-encoded by the CSS inliner
    assert "Unsubscribe: {{{ pm:unsubscribe }}}\n" in (ws / "out" / "issue.txt").read_text()
    assert b"List-Unsubscribe" not in (ws / "out" / "issue.eml").read_bytes()
