"""digest.toml's [serve] and [bounces]: where `digest serve` answers, and how bounces count."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_config import refused, write

from digestcli.config import BounceSettings, ServeSettings, Unsubscribe, load_settings

PUBLICATION = """\
[publication]
name = "The Dispatch"
from = "The Dispatch <dispatch@example.org>"
address = "12 Harbour Lane"
"""

UNSUBSCRIBE = """
[unsubscribe]
url = "https://example.org/unsubscribe"
"""


def test_without_serve_or_bounces_the_defaults_hold(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, PUBLICATION + UNSUBSCRIBE))
    assert settings.serve == ServeSettings(url=None)
    assert settings.bounces == BounceSettings(soft_limit=3)
    assert settings.unsubscribe == Unsubscribe(url="https://example.org/unsubscribe")


def test_serve_url_gives_the_unsubscribe_url_when_none_is_set(tmp_path: Path) -> None:
    text = PUBLICATION + '\n[serve]\nurl = "https://news.example.org/"\n'
    settings = load_settings(write(tmp_path, text))
    assert settings.serve.url == "https://news.example.org"
    assert settings.unsubscribe == Unsubscribe(url="https://news.example.org/unsubscribe")


def test_a_mailto_alone_still_takes_the_url_from_serve(tmp_path: Path) -> None:
    text = (
        PUBLICATION
        + '\n[unsubscribe]\nmailto = "unsubscribe@example.org"\n'
        + '\n[serve]\nurl = "https://news.example.org/digest"\n'
    )
    assert load_settings(write(tmp_path, text)).unsubscribe == Unsubscribe(
        url="https://news.example.org/digest/unsubscribe", mailto="unsubscribe@example.org"
    )


def test_an_unsubscribe_url_given_wins_over_serve(tmp_path: Path) -> None:
    text = PUBLICATION + UNSUBSCRIBE + '\n[serve]\nurl = "https://news.example.org"\n'
    settings = load_settings(write(tmp_path, text))
    assert settings.unsubscribe.url == "https://example.org/unsubscribe"


def test_neither_an_unsubscribe_url_nor_serve_is_a_config_error(tmp_path: Path) -> None:
    assert "the [unsubscribe] section is missing" in refused(write(tmp_path, PUBLICATION))
    text = PUBLICATION + '\n[unsubscribe]\nmailto = "unsubscribe@example.org"\n'
    message = refused(write(tmp_path, text))
    assert "[unsubscribe] url is missing; add it, or set [serve] url" in message


@pytest.mark.parametrize(
    "url",
    ["http://news.example.org", "ftp://news.example.org", "news.example.org", "http://127.0.0.1.x"],
)
def test_serve_url_must_be_https(tmp_path: Path, url: str) -> None:
    message = refused(write(tmp_path, PUBLICATION + f'\n[serve]\nurl = "{url}"\n'))
    assert "[serve] url must start with https://" in message


def test_plain_http_is_allowed_on_this_machine(tmp_path: Path) -> None:
    text = PUBLICATION + '\n[serve]\nurl = "http://127.0.0.1:8025"\n'
    assert load_settings(write(tmp_path, text)).serve.url == "http://127.0.0.1:8025"


def test_soft_limit_is_read_and_must_be_at_least_one(tmp_path: Path) -> None:
    base = PUBLICATION + UNSUBSCRIBE
    assert load_settings(write(tmp_path, base + "\n[bounces]\nsoft_limit = 5\n")).bounces == (
        BounceSettings(soft_limit=5)
    )
    message = refused(write(tmp_path, base + "\n[bounces]\nsoft_limit = 0\n"))
    assert "[bounces] soft_limit must be at least 1" in message
    message = refused(write(tmp_path, base + '\n[bounces]\nsoft_limit = "3"\n'))
    assert "`bounces.soft_limit` must be a number" in message


@pytest.mark.parametrize(
    ("section", "key"), [("serve", "host"), ("bounces", "hard_limit"), ("serve", "port")]
)
def test_unknown_keys_in_serve_and_bounces_are_errors(
    tmp_path: Path, section: str, key: str
) -> None:
    message = refused(write(tmp_path, PUBLICATION + UNSUBSCRIBE + f"\n[{section}]\n{key} = 1\n"))
    assert f"unknown key `{key}` in [{section}]" in message
