"""Pre-encoded JSON bodies: the shared encoded pieces plus a reader's values are json.dumps."""

from __future__ import annotations

import html
import json

from hypothesis import given
from hypothesis import strategies as st

from digestcli.models import MergeText
from digestcli.transports.payload import JSONText, PreEncoded

_KEYS = ("name", "email", "fields.city")


@st.composite
def merge_texts(draw: st.DrawFn) -> MergeText:
    """Rendered text with random literals (any Unicode, quotes, controls) and slots."""
    keys = draw(st.lists(st.sampled_from(_KEYS), max_size=4))
    parts = [draw(st.text())]
    for key in keys:
        parts += [key, draw(st.text())]
    return MergeText(tuple(parts))


@given(
    text=merge_texts(),
    values=st.dictionaries(st.sampled_from(_KEYS), st.text()),
    html_values=st.booleans(),
)
def test_chunks_are_the_json_of_the_filled_text(
    text: MergeText, values: dict[str, str], html_values: bool
) -> None:
    escaped = {k: html.escape(v, quote=True) for k, v in values.items()} if html_values else values
    expected = json.dumps(text.fill(escaped), ensure_ascii=False).encode("utf-8")
    encoded = JSONText(text, html_values=html_values)
    assert b"".join(encoded.chunks(values)) == expected
    assert encoded.literal(values) == expected.decode("utf-8")


@given(
    items=st.lists(
        st.dictionaries(st.text(max_size=5).filter(lambda k: k != "H"), st.text(max_size=5)),
        max_size=4,
    )
)
def test_a_body_is_the_json_array_of_its_items(items: list[dict[str, str]]) -> None:
    text = MergeText(("<p>", "name", "</p>"))
    encoder = PreEncoded()
    pieces = encoder.text(text, html_values=True)
    body = encoder.body([(item, [(b'"H":', pieces.chunks({"name": "<A>"}))]) for item in items])
    expected = [{**item, "H": "<p>&lt;A&gt;</p>"} for item in items]
    assert json.loads(bytes(body)) == expected
    assert bytes(body) == json.dumps(expected, ensure_ascii=False, separators=(",", ":")).encode()
