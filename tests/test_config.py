"""digest.toml: what it accepts, what it refuses, and how a workspace is found."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from digestcli.config import (
    Publication,
    SendingSettings,
    Settings,
    TransportSettings,
    Unsubscribe,
    load_settings,
)
from digestcli.errors import ConfigError, ExitStatus, WorkspaceNotFound
from digestcli.workspace import CONFIG_NAME, find_workspace, init_workspace

MINIMAL = """\
[publication]
name = "The Dispatch"
from = "The Dispatch <dispatch@example.org>"
address = "12 Harbour Lane"

[unsubscribe]
url = "https://example.org/unsubscribe"
"""


def write(folder: Path, text: str) -> Path:
    path = folder / CONFIG_NAME
    path.write_text(text, encoding="utf-8")
    return path


def refused(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.status == ExitStatus.CONFIG
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    return message


def test_the_repository_config_loads(workspace: Path) -> None:
    path = workspace / CONFIG_NAME
    assert load_settings(path) == Settings(
        path=path,
        publication=Publication(
            name="The Terminal Dispatch",
            from_addr="The Terminal Dispatch <dispatch@example.org>",
            address="Dispatch Desk, 12 Harbour Lane, Example City",
            reply_to="editor@example.org",
            web_url="https://example.org/dispatch/",
        ),
        unsubscribe=Unsubscribe(
            url="https://example.org/unsubscribe", mailto="unsubscribe@example.org"
        ),
        transport=TransportSettings(kind="outbox"),
        sending=SendingSettings(rate=0.0, concurrency=4),
    )


def test_a_minimal_config_takes_the_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, MINIMAL))
    assert settings.transport == TransportSettings()
    assert settings.sending == SendingSettings()
    assert settings.publication.reply_to is None


def test_every_setting(tmp_path: Path) -> None:
    settings = load_settings(
        write(
            tmp_path,
            MINIMAL
            + """
[transport]
kind = "smtp"
base_url = "http://127.0.0.1:8025"
timeout = 5
domain = "mg.example.org"
message_stream = "outbound"
host = "smtp.example.org"
port = 587
security = "ssl"
username = "digest"
batch_size = 50

[sending]
rate = 12.5
concurrency = 2
""",
        )
    )
    assert settings.transport == TransportSettings(
        kind="smtp",
        base_url="http://127.0.0.1:8025",
        timeout=5.0,
        domain="mg.example.org",
        message_stream="outbound",
        host="smtp.example.org",
        port=587,
        security="ssl",
        username="digest",
        batch_size=50,
    )
    assert settings.sending == SendingSettings(rate=12.5, concurrency=2)


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ("publication", "title"),
        ("publication", "from_addr"),  # the TOML spelling is `from`
        ("unsubscribe", "link"),
        ("transport", "password"),  # secrets never go in digest.toml
        ("sending", "burst"),
    ],
)
def test_an_unknown_key_in_a_section_names_the_key_and_the_file(
    tmp_path: Path, section: str, key: str
) -> None:
    text = MINIMAL + "\n[transport]\n\n[sending]\n"
    text = text.replace(f"[{section}]\n", f'[{section}]\n{key} = "x"\n')
    message = refused(write(tmp_path, text))
    assert f"unknown key `{key}` in [{section}]" in message


def test_an_unknown_top_level_key_names_the_key_and_the_file(tmp_path: Path) -> None:
    message = refused(write(tmp_path, "version = 2\n" + MINIMAL))
    assert "unknown key `version`" in message
    message = refused(write(tmp_path, MINIMAL + "\n[publicaton]\nname = 'typo'\n"))
    assert "unknown key `publicaton`" in message


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        ('name = "The Dispatch"', "name = 1", "`publication.name` must be a string"),
        ('name = "The Dispatch"', 'name = """two\nlines"""', "must be one line"),
        ("[unsubscribe]", "[unsubscribe]\nmailto = true", "`unsubscribe.mailto` must be a string"),
    ],
)
def test_wrong_types(tmp_path: Path, old: str, new: str, fragment: str) -> None:
    assert fragment in refused(write(tmp_path, MINIMAL.replace(old, new, 1)))


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ("[transport]\ntimeout = 'slow'", "`transport.timeout` must be a number"),
        ("[transport]\nport = '25'", "`transport.port` must be a number"),
        ("[transport]\nport = 25.5", "`transport.port` must be a number"),
        ("[sending]\nconcurrency = '4'", "`sending.concurrency` must be a number"),
        ("[sending]\nrate = true", "`sending.rate` must be a number"),
        ("[sending]\nconcurrency = 0", "concurrency must be at least 1"),
        ("[sending]\nrate = -1", "rate must be 0"),
        ("[transport]\nsecurity = 'tls'", "security must be one of starttls, ssl, none"),
    ],
)
def test_wrong_values_in_optional_sections(tmp_path: Path, extra: str, fragment: str) -> None:
    assert fragment in refused(write(tmp_path, MINIMAL + "\n" + extra + "\n"))


@pytest.mark.parametrize("section", ["transport", "sending"])
def test_a_section_must_be_a_table(tmp_path: Path, section: str) -> None:
    message = refused(write(tmp_path, f"{section} = 'smtp'\n" + MINIMAL))
    assert f"`{section}` must be a table, written [{section}]" in message


def test_a_transport_kind_not_in_the_list(tmp_path: Path) -> None:
    message = refused(write(tmp_path, MINIMAL + "\n[transport]\nkind = 'mailchimp'\n"))
    assert "kind `mailchimp` is not one of outbox, smtp, postmark, sendgrid, mailgun, resend" in (
        message
    )


@pytest.mark.parametrize("kind", ["outbox", "smtp", "postmark", "sendgrid", "mailgun", "resend"])
def test_every_documented_transport_kind_is_accepted(tmp_path: Path, kind: str) -> None:
    settings = load_settings(write(tmp_path, MINIMAL + f"\n[transport]\nkind = '{kind}'\n"))
    assert settings.transport.kind == kind


def test_missing_sections_and_keys(tmp_path: Path) -> None:
    without_publication = MINIMAL[MINIMAL.index("[unsubscribe]") :]
    assert "the [publication] section is missing" in refused(write(tmp_path, without_publication))
    without_unsubscribe = MINIMAL[: MINIMAL.index("[unsubscribe]")]
    assert "the [unsubscribe] section is missing" in refused(write(tmp_path, without_unsubscribe))
    message = refused(write(tmp_path, MINIMAL.replace('address = "12 Harbour Lane"\n', "")))
    assert "[publication] is missing `address`" in message
    message = refused(write(tmp_path, MINIMAL.replace('from = "The', 'reply_to = "The')))
    assert "[publication] is missing `from`" in message


def test_unsubscribe_url_must_be_https(tmp_path: Path) -> None:
    text = MINIMAL.replace("https://example.org/unsubscribe", "http://example.org/unsubscribe")
    assert "url must start with https://" in refused(write(tmp_path, text))


def test_invalid_toml_and_non_utf8(tmp_path: Path) -> None:
    message = refused(write(tmp_path, MINIMAL.replace('name = "The Dispatch"', "name = ")))
    assert "invalid TOML" in message
    assert re.search(r"line 2\b", message)
    path = tmp_path / CONFIG_NAME
    path.write_bytes(MINIMAL.replace("Dispatch", "D\u00e9p\u00eache").encode("latin-1"))
    assert "not UTF-8" in refused(path)


def test_a_missing_file(tmp_path: Path) -> None:
    assert "digest init" in refused(tmp_path / CONFIG_NAME)


# ----- finding the workspace -------------------------------------------------------------------


@pytest.fixture
def no_env_workspace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIGEST_WORKSPACE", raising=False)


@pytest.mark.usefixtures("no_env_workspace")
def test_found_from_a_subfolder(workspace: Path) -> None:
    deep = workspace / "drafts" / "a" / "b"
    deep.mkdir(parents=True)
    assert find_workspace(start=deep).root == workspace


@pytest.mark.usefixtures("no_env_workspace")
def test_found_from_the_current_directory(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workspace / "drafts")
    assert find_workspace().root == workspace


@pytest.mark.usefixtures("no_env_workspace")
def test_not_found(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceNotFound, match="digest init") as caught:
        find_workspace(start=tmp_path)
    assert caught.value.status == ExitStatus.CONFIG


def test_override_and_environment(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    write(other, MINIMAL)
    monkeypatch.setenv("DIGEST_WORKSPACE", str(other))
    assert find_workspace(start=workspace).root == other
    assert find_workspace(start=other, override=str(workspace)).root == workspace
    monkeypatch.setenv("DIGEST_WORKSPACE", str(tmp_path))
    with pytest.raises(WorkspaceNotFound, match=re.escape(f"digest init {tmp_path}")):
        find_workspace(start=workspace)


@pytest.mark.usefixtures("no_env_workspace")
def test_finding_a_workspace_checks_its_config(workspace: Path) -> None:
    config = workspace / CONFIG_NAME
    config.write_text(config.read_text(encoding="utf-8") + "\nextra = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(f"{config}: unknown key `extra`")):
        find_workspace(start=workspace)


# ----- init --------------------------------------------------------------------------------------


def test_init_writes_a_config_that_loads(tmp_path: Path) -> None:
    workspace = init_workspace(tmp_path / "new", "Weekly Notes")
    settings = workspace.settings()
    assert settings.publication.name == "Weekly Notes"
    assert settings.transport.kind == "outbox"
    assert (workspace.root / "drafts").is_dir()
    assert (workspace.templates_dir / "email.html.j2").is_file()
    assert (workspace.templates_dir / "email.txt.j2").is_file()
    assert ".digest/" in (workspace.root / ".gitignore").read_text(encoding="utf-8")
    with pytest.raises(ConfigError, match="already"):
        init_workspace(workspace.root)
