"""The HTML scanner that render and checks share: what a reader sees, links, images, CSS."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from digestcli.scan import scan, squash

PAGE = """\
<!doctype html>
<html><head><title>Not shown</title>
<style>/* theme */ .item { display: flex; }</style>
<link rel="stylesheet" href="https://cdn.example.org/x.css">
</head>
<body>
<script>var hidden = 1;</script>
<p>Hel<b>lo</b>, <font color="red">wor</font>ld</p><p>Next&nbsp;para&amp;graph</p>
<td class="item" style="float: left"><a href=" https://a.example.org/ ">A</a>
<img src=" https://i.example.org/p.png " alt="Pic" width="600"/><br/>end</td>
<a href="#top">Top</a>
</body></html>
"""


def test_the_visible_text_skips_head_style_and_script_and_joins_inline_tags() -> None:
    # Inline tags (<b>, <font>) sit inside words; block tags (<p>, <td>, <br>) separate them.
    assert scan(PAGE).text == "Hello, world Next para&graph A end Top"


def test_the_raw_text_keeps_the_whitespace_for_finding_the_preheader_padding() -> None:
    page = scan("<div>Preview\u200c \u200c \u200c </div><p>Body</p>")
    assert page.raw_text == " Preview\u200c \u200c \u200c   Body "
    assert page.text == "Preview\u200c \u200c \u200c Body"


def test_links_and_images_come_out_in_document_order_trimmed() -> None:
    page = scan(PAGE)
    assert page.anchors == ("https://a.example.org/", "#top")
    assert page.urls == ["https://a.example.org/", "#top", "https://i.example.org/p.png"]
    ((src, attrs),) = page.images
    assert src == "https://i.example.org/p.png"
    assert attrs == {"src": " https://i.example.org/p.png ", "alt": "Pic", "width": "600"}


def test_css_comes_out_with_where_it_was_written() -> None:
    page = scan(PAGE)
    assert page.styles == (('<td class="item">', "float: left"),)
    assert page.style_blocks == ("/* theme */ .item { display: flex; }",)
    assert page.stylesheets == ("https://cdn.example.org/x.css",)


def test_a_fragment_without_markup_is_its_own_text() -> None:
    page = scan("just words")
    assert (page.text, page.urls, page.styles) == ("just words", [], ())


@given(st.text(alphabet=st.characters(exclude_characters="<&")))
def test_plain_text_scans_to_itself_with_whitespace_collapsed(text: str) -> None:
    assert scan(text).text == squash(text)
