"""The per-issue MIME template gives every reader the slow path's exact bytes."""

from __future__ import annotations

import contextlib
import functools
import random
from collections.abc import Callable
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from digestcli import mime
from digestcli.config import Unsubscribe, load_settings
from digestcli.drafts import load_draft
from digestcli.errors import DigestError
from digestcli.message import build_message
from digestcli.models import Content, MergeText, Message, Recipient
from digestcli.render import render_issue
from digestcli.sending import campaign_message

REPO = Path(__file__).resolve().parents[1]
KEYS = ("email", "name", "unsubscribe_url", "fields.city", "fields.plan")


def _outcome(build: Callable[[], bytes]) -> bytes | str:
    try:
        return build()
    except (ValueError, DigestError) as exc:  # the slow path refuses some header values
        return f"{type(exc).__name__}: {exc}"


def both(message: Message, date: float = 1_700_000_000.5) -> tuple[bytes | str, bytes | str]:
    """The fast and the slow bytes of a message, the boundary drawn from the same seed."""
    with contextlib.suppress(ValueError, DigestError):
        mime.template_for(message.content)  # made (and self-checked) before the seed
    seed = random.random()
    random.seed(seed)
    fast = _outcome(lambda: mime.message_bytes(message, date=date))
    random.seed(seed)
    slow = _outcome(lambda: mime.slow_bytes(message, date=date))
    return fast, slow


# Text around slots: lines of every length near the 998-character fold, trailing blanks,
# "=" and dots, and any Unicode.
_chunk = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["\n", " \n", "\t\n", "=", ".", "\n.\n", "<p>", "&", "é", "✉", "\u2028"]),
    st.integers(min_value=990, max_value=1000).map(lambda n: "x" * n),
    st.integers(min_value=990, max_value=1000).map(lambda n: "=" * (n // 3) + "a" * (n % 7)),
)
_literal = st.lists(_chunk, max_size=5).map("".join)


@st.composite
def merge_texts(draw: st.DrawFn) -> MergeText:
    """Rendered text with random literals and slots."""
    keys = draw(st.lists(st.sampled_from(KEYS), max_size=4))
    parts = [draw(_literal)]
    for key in keys:
        parts += [key, draw(_literal)]
    return MergeText(tuple(parts))


_names = st.one_of(
    st.just(""),
    st.text(max_size=40).filter(lambda s: "\r" not in s and "\n" not in s),
    st.from_regex(r"[A-Za-z][A-Za-z0-9' -]{0,30}", fullmatch=True),
    st.sampled_from(["José Núñez", "O'Brien, Pat", 'Dr. "Q"', "李小龙", "a (b) c", "=?x?="]),
)
_locals = st.from_regex(r"[A-Za-z0-9._%+-]{1,20}", fullmatch=True)
_emails = st.one_of(
    st.builds(
        lambda local, dom: f"{local}@{dom}",
        _locals,
        st.sampled_from(["example.org", "x-y.example.com"]),
    ),
    st.sampled_from(["üser@example.org", "a@b", '"q r"@example.org']),
)
_values = st.text(max_size=40)


@given(
    html=merge_texts(),
    text=merge_texts(),
    name=_names,
    address=_emails,
    fields=st.dictionaries(st.sampled_from(["city", "plan"]), _values, max_size=2),
    subject=st.text(min_size=1, max_size=80).filter(lambda s: "\r" not in s and "\n" not in s),
    reply_to=st.sampled_from([None, "editor@example.org", "Éditeur <ed@example.org>"]),
    token=st.one_of(st.from_regex(r"[A-Za-z0-9_.-]{1,60}", fullmatch=True), st.text(max_size=20)),
    mailto=st.sampled_from([None, "unsubscribe@example.org"]),
    test=st.booleans(),
)
@example(
    html=MergeText(("<p>", "name", "</p>\n")),
    text=MergeText(("Hi ", "name", "\n")),
    name="Ann",
    address="ann@example.org",
    fields={},
    subject="S",
    reply_to=None,
    token="t",
    mailto=None,
    test=False,
)
def test_fast_bytes_are_the_slow_bytes(
    html: MergeText,
    text: MergeText,
    name: str,
    address: str,
    fields: dict[str, str],
    subject: str,
    reply_to: str | None,
    token: str,
    mailto: str | None,
    test: bool,
) -> None:
    """Any issue, any reader: the template's bytes are the standard library's, to the byte."""
    content = Content(
        subject=subject,
        from_addr="The Dispatch <dispatch@example.org>",
        html=html,
        text=text,
        reply_to=reply_to,
    )
    unsubscribe = Unsubscribe(url="https://example.org/unsubscribe?list=a", mailto=mailto)
    message = build_message(
        content,
        Recipient(address, name, fields),
        token=token,
        unsubscribe=unsubscribe,
        test=test,
        message_id="<0f1e2d3c4b5a69788796a5b4c3d2e1f0@example.org>",
    )
    fast, slow = both(message)
    assert fast == slow


@functools.cache  # rendering takes ~0.2 s; one Content serves every example
def _sample() -> tuple[Content, Unsubscribe]:
    settings = load_settings(REPO / "digest.toml")
    draft = load_draft(next((REPO / "drafts").glob("*.md")))
    return render_issue(draft.issue, settings, REPO / "templates"), settings.unsubscribe


@given(name=_names, address=_emails, city=_values)
def test_the_example_issue_is_the_same_for_any_reader(name: str, address: str, city: str) -> None:
    """The repository's issue, as a campaign sends it: same bytes by either path."""
    content, unsubscribe = _sample()
    message = campaign_message(
        content,
        Recipient(address, name, {"city": city}),
        campaign_key="2026-11-30:default",
        list_name="default",
        secret=b"k" * 32,
        unsubscribe=unsubscribe,
        reference="r1",
    )
    fast, slow = both(message)
    assert fast == slow


def test_the_example_issue_takes_the_fast_path() -> None:
    """A plain reader of the example issue is assembled from the template, not re-encoded."""
    content, unsubscribe = _sample()
    message = build_message(
        content, Recipient("ann@example.org", "Ann Lee"), token="t", unsubscribe=unsubscribe
    )
    assert mime.template_for(content).usable
    assert mime.template_for(content).render(message) is not None


def test_a_value_with_a_line_break_falls_back_to_the_slow_path() -> None:
    """A field holding a line break changes the part's lines: that reader is built slowly."""
    content = Content(
        subject="S",
        from_addr="d@example.org",
        html=MergeText(("<p>", "fields.city", "</p>\n")),
        text=MergeText(("City: ", "fields.city", "\n")),
    )
    unsubscribe = Unsubscribe(url="https://example.org/u")
    message = build_message(
        content,
        Recipient("a@example.org", "A", {"city": "x\ny"}),
        token="t",
        unsubscribe=unsubscribe,
    )
    assert mime.template_for(content).render(message) is None
    fast, slow = both(message)
    assert fast == slow


def test_an_internationalised_address_falls_back_to_the_slow_path() -> None:
    """A non-ASCII address needs SMTPUTF8 headers: the slow path builds that message."""
    content = Content(
        subject="S", from_addr="d@example.org", html=MergeText(("x\n",)), text=MergeText(("x\n",))
    )
    message = build_message(
        content,
        Recipient("üser@example.org"),
        token="t",
        unsubscribe=Unsubscribe(url="https://e/u"),
    )
    assert mime.template_for(content).render(message) is None
    assert mime.message_bytes(message) != b""


def test_text_ending_in_a_slot_uses_the_slow_path() -> None:
    """A part ending in a slot has its last line break decided by the value: never templated."""
    content = Content(
        subject="S",
        from_addr="d@example.org",
        html=MergeText(("<p>", "name", "")),
        text=MergeText(("Hi\n",)),
    )
    assert not mime.template_for(content).usable


def test_text_with_a_carriage_return_uses_the_slow_path_and_the_same_bytes() -> None:
    """A bare CR in the issue is a line break of its own to the encoder: never templated."""
    content = Content(
        subject="S",
        from_addr="d@example.org",
        html=MergeText(("<p>a\rb ", "name", "</p>\n")),
        text=MergeText(("Hi\r", "name", "\n")),
    )
    message = build_message(
        content,
        Recipient("a@example.org", "Ann"),
        token="t",
        unsubscribe=Unsubscribe(url="https://e/u"),
    )
    assert not mime.template_for(content).usable
    fast, slow = both(message)
    assert fast == slow
