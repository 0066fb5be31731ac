"""Feeds for curating tests: RSS 2.0, Atom and JSON Feed sources, a broken one, a 304er."""

from __future__ import annotations

import json

from harness.web import Page, Route, Seen

ETAG = '"rss-v1"'

RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel>
<title>Rising Tide (RSS)</title><link>{base}/</link><description>News</description>
<item><title>RSS newest: chips &amp; tariffs</title><link>{base}/a/rss-1</link>
 <description>&lt;p&gt;Export rules   &lt;b&gt;tighten&lt;/b&gt;
 again.&lt;/p&gt;&lt;script&gt;alert(1)&lt;/script&gt;</description>
 <pubDate>Sat, 28 Nov 2026 10:00:00 GMT</pubDate></item>
<item><title>A link that is not one</title><link>javascript:alert(1)</link>
 <pubDate>Sat, 28 Nov 2026 11:00:00 GMT</pubDate></item>
<item><title>RSS old</title><link>{base}/a/rss-2</link>
 <description>Older news.</description><pubDate>Fri, 20 Nov 2026 10:00:00 GMT</pubDate></item>
</channel></rss>
"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
<title>Atom Weekly</title><id>urn:x-test:atom</id><updated>2026-11-27T09:00:00Z</updated>
<entry><title>Atom newest</title><link href="{base}/a/atom-1"/><id>urn:x-test:atom:1</id>
 <updated>2026-11-27T09:00:00Z</updated><summary>Atom summary.</summary></entry>
<entry><title>Atom old</title><link href="{base}/a/atom-2"/><id>urn:x-test:atom:2</id>
 <updated>2026-11-21T09:00:00Z</updated>
 <content type="html">&lt;p&gt;Content, not a summary.&lt;/p&gt;</content></entry>
</feed>
"""


def json_feed(base: str) -> bytes:
    """A JSON Feed 1.1 with two items."""
    return json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "JSON Journal",
            "items": [
                {
                    "id": "1",
                    "url": f"{base}/a/json-1",
                    "title": "JSON newest",
                    "content_html": "<p>JSON <em>content</em>.</p>",
                    "date_published": "2026-11-26T08:00:00+01:00",
                },
                {
                    "id": "2",
                    "url": f"{base}/a/json-2",
                    "title": "JSON old",
                    "content_text": "Plain JSON text.",
                    "date_published": "2026-11-22T08:00:00Z",
                },
            ],
        }
    ).encode()


def rss_route(base: str) -> Route:
    """The RSS feed, answering 304 to a request that names its ETag."""

    def answer(seen: Seen) -> Page:
        if seen.headers.get("if-none-match") == ETAG:
            return Page(status=304, headers={"ETag": ETAG})
        return Page(
            RSS.format(base=base).encode(),
            content_type="application/rss+xml",
            headers={"ETag": ETAG, "Last-Modified": "Sat, 28 Nov 2026 10:00:00 GMT"},
        )

    return answer


# What a hostile (or careless) feed may hold: markup, template syntax, script links.
HOSTILE = """<?xml version="1.0"?><rss version="2.0"><channel>
<title>{{{{ 7*7 }}}} &lt;b&gt;News</title>
<item><title>&lt;script&gt;alert(1)&lt;/script&gt; {{{{ 7*7 }}}} [x](javascript:alert(2))</title>
 <link>{base}/a/hostile</link><pubDate>Sun, 29 Nov 2026 10:00:00 GMT</pubDate>
 <description><![CDATA[<img src=x onerror=alert(3)> &lt;a href="javascript:alert(4)"&gt;
 click&lt;/a&gt; {{% if x %}}{{{{ 7*7 }}}}{{% endif %}} %recipient.email% *loud*]]>
 </description></item>
</channel></rss>
"""


def feed_routes(base: str) -> dict[str, Route]:
    """Every feed, by path."""
    return {
        "/feeds/rss": rss_route(base),
        "/feeds/atom": Page(ATOM.format(base=base).encode(), content_type="application/atom+xml"),
        "/feeds/json": Page(json_feed(base), content_type="application/feed+json"),
        "/feeds/as-html": Page(ATOM.format(base=base).encode(), content_type="text/html"),
        "/feeds/hostile": Page(HOSTILE.format(base=base).encode(), content_type="text/xml"),
        "/feeds/broken": Page(b"this is { not a feed", content_type="application/rss+xml"),
        "/blog": Page(
            b'<html><head><title>A blog</title><link rel="alternate" '
            b'type="application/atom+xml" title="Feed" href="/feeds/atom"></head></html>'
        ),
        "/nofeed": Page(b"<html><head><title>No feed here</title></head></html>"),
    }
