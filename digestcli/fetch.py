"""One careful HTTP GET for pages and feeds: User-Agent, timeouts, a size cap, the charset."""

from __future__ import annotations

import codecs
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import TYPE_CHECKING

from digestcli import __version__
from digestcli.errors import DigestError

if TYPE_CHECKING:
    import httpx

    from digestcli.config import FeedSettings

USER_AGENT = f"digest/{__version__} (newsletter composer; fetches pages and feeds it is given)"
ACCEPT_PAGE = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"
ACCEPT_FEED = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
# The HTML standard's prescan looks at the first 1024 bytes; some pages put a long <head>
# comment first, so a few more cost nothing.
_SNIFF_BYTES = 4096


class FetchError(DigestError):
    """A page or feed could not be fetched: no answer, an error status, too slow or too big."""


@dataclass(frozen=True)
class Fetched:
    """What a GET brought back: the final URL, status, headers and the body (304: empty)."""

    url: str
    status: int
    headers: Mapping[str, str]
    body: bytes = b""
    content_type: str = ""
    charset: str | None = None  # from the Content-Type header only

    @property
    def not_modified(self) -> bool:
        """The server said the copy we hold is current (304)."""
        return self.status == 304

    def text(self) -> str:
        """The body decoded: BOM, then the header's charset, then <meta charset>, then UTF-8."""
        return decode(self.body, self.charset)


@dataclass(frozen=True)
class FetchOptions:
    """How careful a fetch is; tests pass a short timeout and a transport."""

    timeout: float = 10.0
    max_bytes: int = 5_000_000
    headers: Mapping[str, str] = field(default_factory=dict)


def options_for(settings: FeedSettings) -> FetchOptions:
    """The fetch options digest.toml's [feeds] table sets."""
    return FetchOptions(timeout=settings.timeout, max_bytes=settings.max_bytes)


def client(options: FetchOptions, transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """An httpx client that follows redirects and names digest in its User-Agent."""
    import httpx

    return httpx.Client(
        transport=transport,
        timeout=httpx.Timeout(options.timeout),
        follow_redirects=True,
        max_redirects=10,
        headers={"User-Agent": USER_AGENT},
        limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
    )


def get(
    session: httpx.Client,
    url: str,
    options: FetchOptions,
    *,
    accept: str = ACCEPT_PAGE,
    headers: Mapping[str, str] | None = None,
) -> Fetched:
    """GET url, streamed: refuse a body over max_bytes and a fetch longer than the timeout.

    The timeout bounds each connect and read, and the whole transfer too, so a server that
    trickles a byte at a time is cut off like one that never answers. Raises FetchError.
    """
    import httpx

    check_url(url)
    deadline = time.monotonic() + options.timeout
    sent = {"Accept": accept, **options.headers, **(headers or {})}
    try:
        with session.stream("GET", url, headers=sent) as response:
            if response.status_code == 304:
                return Fetched(str(response.url), 304, dict(response.headers))
            if response.status_code >= 400:
                reason = response.reason_phrase or ""
                raise FetchError(
                    f"{url} answered {response.status_code} {reason}".rstrip()
                    + "; check the address in a browser."
                )
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > options.max_bytes:
                raise FetchError(_too_big(url, options))
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > options.max_bytes:
                    raise FetchError(_too_big(url, options))
                if time.monotonic() > deadline:
                    raise FetchError(_too_slow(url, options))
                chunks.append(chunk)
            content_type = response.headers.get("content-type", "")
            return Fetched(
                str(response.url),
                response.status_code,
                dict(response.headers),
                b"".join(chunks),
                content_type.partition(";")[0].strip().lower(),
                response.charset_encoding,
            )
    except httpx.TimeoutException:
        raise FetchError(_too_slow(url, options)) from None
    except httpx.TooManyRedirects:
        raise FetchError(f"{url} redirects too many times; check the address.") from None
    except httpx.HTTPError as exc:
        raise FetchError(
            f"{url} could not be fetched ({type(exc).__name__}: {exc}); check the address "
            "and your connection."
        ) from None
    except (httpx.InvalidURL, UnicodeError, ValueError) as exc:  # a bad port, host or label
        raise FetchError(f"{url} is not a valid web address ({exc}); check it.") from None


def check_url(url: str) -> None:
    """Refuse anything but an http or https address before any request is made."""
    from urllib.parse import urlsplit

    try:
        host = urlsplit(url).hostname
    except ValueError:
        host = None
    if not url.startswith(("http://", "https://")) or not host or any(c.isspace() for c in url):
        raise FetchError(f"`{url}` is not a web address; give an http:// or https:// URL.")


def _too_big(url: str, options: FetchOptions) -> str:
    return (
        f"{url} is larger than {options.max_bytes:,} bytes, so digest stopped reading it; "
        "raise [feeds] max_bytes in digest.toml if it is really wanted."
    )


def _too_slow(url: str, options: FetchOptions) -> str:
    return (
        f"{url} did not answer within {options.timeout:g} s; try again later, or raise "
        "[feeds] timeout in digest.toml."
    )


def decode(body: bytes, declared: str | None) -> str:
    """Bytes to text: a BOM wins, then the declared charset, then <meta charset>, then UTF-8."""
    for bom in (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        if body.startswith(bom):
            codec = "utf-8" if bom == codecs.BOM_UTF8 else "utf-16"
            return body.decode(codec, errors="replace").lstrip("\ufeff")
    for label in (declared, sniff_charset(body[:_SNIFF_BYTES])):
        if encoding := _codec(label):
            return body.decode(encoding, errors="replace")
    return body.decode("utf-8", errors="replace")


def _codec(name: str | None) -> str | None:
    """A Python codec for a charset label; latin-1 means windows-1252, as browsers read it."""
    if not name:
        return None
    try:
        found = codecs.lookup(name.strip().strip("\"'")).name
    except LookupError:
        return None
    return "cp1252" if found in ("latin-1", "iso8859-1", "ascii") else found


class _MetaCharset(HTMLParser):
    """Finds the charset a page declares in <meta charset> or <meta http-equiv>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.charset: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "meta" or self.charset:
            return
        values = {name.lower(): (value or "") for name, value in attrs}
        if values.get("charset"):
            self.charset = values["charset"]
        elif values.get("http-equiv", "").lower() == "content-type":
            for part in values.get("content", "").split(";"):
                key, _, value = part.strip().partition("=")
                if key.strip().lower() == "charset" and value:
                    self.charset = value.strip()


def sniff_charset(head: bytes) -> str | None:
    """The charset an HTML page's <meta> declares in its first bytes, if any."""
    parser = _MetaCharset()
    # Latin-1 maps every byte to a character, so the ASCII markup reads the same in any
    # ASCII-compatible charset the page may be in.
    parser.feed(head.decode("latin-1"))
    return parser.charset
