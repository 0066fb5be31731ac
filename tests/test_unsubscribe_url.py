"""Unsubscribe links: the token goes into the query of the configured URL, and back out of it."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digestcli.config import Unsubscribe
from digestcli.errors import UsageError
from digestcli.message import build_message, unsubscribe_url
from digestcli.models import Recipient
from digestcli.tokens import sign, token_from_link
from fakes import content

TOKEN = sign("ann@example.org", "weekly", b"secret")


def test_a_fragment_in_the_configured_url_stays_after_the_token() -> None:
    assert unsubscribe_url("https://example.org/u#top", "abc.def") == (
        "https://example.org/u?token=abc.def#top"
    )


def test_the_configured_url_keeps_its_parameters_and_its_own_token_gives_way() -> None:
    base = "https://example.org/u?token=old&list=weekly&utm_source=news%20letter#bye"
    assert unsubscribe_url(base, "new.t") == (
        "https://example.org/u?list=weekly&utm_source=news%20letter&token=new.t#bye"
    )


def test_a_plain_url_gets_the_token_appended_as_before() -> None:
    assert unsubscribe_url("https://example.org/unsubscribe", TOKEN) == (
        f"https://example.org/unsubscribe?token={TOKEN}"
    )
    assert unsubscribe_url("https://example.org/u?list=weekly", "a b&c") == (
        "https://example.org/u?list=weekly&token=a+b%26c"
    )


def test_the_list_unsubscribe_header_reaches_the_server_with_the_token() -> None:
    unsubscribe = Unsubscribe(url="https://example.org/u#top", mailto="leave@example.org")
    message = build_message(
        content(), Recipient("ann@example.org"), token="t.1", unsubscribe=unsubscribe
    )
    assert dict(message.headers)["List-Unsubscribe"] == (
        "<https://example.org/u?token=t.1#top>, "
        "<mailto:leave@example.org?subject=unsubscribe%20t.1>"
    )
    assert message.values["unsubscribe_url"] == "https://example.org/u?token=t.1#top"


@pytest.mark.parametrize(
    "link",
    [
        TOKEN,
        f"  {TOKEN}\n",
        f"https://example.org/unsubscribe?token={TOKEN}",
        f"https://example.org/unsubscribe?list=weekly&token={TOKEN}&utm_medium=email#bye",
        # As digest wrote them before the token moved out of the fragment and past old tokens:
        f"https://example.org/u#top?token={TOKEN}",
        f"https://example.org/u?token=from-the-config&token={TOKEN}",
    ],
)
def test_digest_unsubscribe_finds_the_token_in_any_link_it_sent(link: str) -> None:
    assert token_from_link(link) == TOKEN


@pytest.mark.parametrize(
    "link", ["https://example.org/u?list=weekly", "https://example.org/u?token=#top?token="]
)
def test_a_link_without_a_token_is_refused(link: str) -> None:
    with pytest.raises(UsageError, match=r"that link carries no \?token=\.\.\."):
        token_from_link(link)


# ----- properties --------------------------------------------------------------------------------

TEXT = st.text(max_size=12)
HOSTS = st.sampled_from(["example.org", "news.example.org:8443", "xn--fiqs8s.example"])
PATHS = st.lists(TEXT, max_size=3).map(lambda parts: "".join("/" + quote(p) for p in parts))
KEYS = st.one_of(st.just("token"), st.sampled_from(["list", "utm_source", "a", ""]), TEXT)
QUERIES = st.builds(
    lambda pairs, quote_via: urlencode(pairs, quote_via=quote_via),
    st.lists(st.tuples(KEYS, TEXT), max_size=4),
    st.sampled_from([quote, quote_plus]),
)
# Fragments may look like queries themselves ("top?token=x"): they must stay fragments.
FRAGMENTS = st.one_of(st.just("top?token=x"), TEXT.map(lambda f: quote(f, safe="/?=&")))
TOKENS = st.one_of(st.builds(sign, st.emails(), st.sampled_from(["default", "weekly"])), TEXT)


def _others(query: str) -> list[tuple[str, str]]:
    return [pair for pair in parse_qsl(query, keep_blank_values=True) if pair[0] != "token"]


@st.composite
def bases(draw: st.DrawFn) -> str:
    """A configured unsubscribe URL: a path, maybe a query (maybe with token=), maybe a fragment."""
    base = f"https://{draw(HOSTS)}{draw(PATHS)}"
    if draw(st.booleans()):
        base += f"?{draw(QUERIES)}"
    if draw(st.booleans()):
        base += f"#{draw(FRAGMENTS)}"
    return base


@settings(max_examples=300)
@given(bases(), TOKENS)
def test_the_token_reaches_the_server_and_the_rest_of_the_url_is_kept(
    base: str, token: str
) -> None:
    url, want = urlsplit(unsubscribe_url(base, token)), urlsplit(base)
    assert (url.scheme, url.netloc, url.path) == (want.scheme, want.netloc, want.path)
    assert [v for k, v in parse_qsl(url.query, keep_blank_values=True) if k == "token"] == [token]
    assert _others(url.query) == _others(want.query)
    assert url.fragment == want.fragment


@given(bases(), st.emails(), st.sampled_from(["default", "weekly"]))
def test_digest_unsubscribe_reads_back_the_token_of_every_link_digest_makes(
    base: str, email: str, list_name: str
) -> None:
    token = sign(email, list_name, b"secret")
    assert token_from_link(unsubscribe_url(base, token)) == token
