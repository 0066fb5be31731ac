"""Hypothesis strategies for readers: addresses, names without line breaks, a few fields."""

from __future__ import annotations

from hypothesis import strategies as st

from digestcli.models import Recipient

_text = st.text(max_size=12)
names = _text.filter(lambda name: "\r" not in name and "\n" not in name)  # no header breaks
readers = st.lists(
    st.builds(
        Recipient,
        st.from_regex(r"[a-z0-9.+]{1,8}@example\.(org|net)", fullmatch=True),
        names,
        st.dictionaries(st.sampled_from(["city", "plan"]), _text, max_size=2),
    ),
    min_size=1,
    max_size=6,
)
