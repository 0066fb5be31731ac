"""Resolving links concurrently over HTTP: HEAD (GET when refused), redirects, timeouts."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from digestcli import __version__

#: HEAD answers that mean "this server does not do HEAD", not "this page is missing".
HEAD_REFUSED = frozenset({405, 501})
USER_AGENT = f"digest-linkcheck/{__version__} (newsletter pre-send check)"


@dataclass(frozen=True)
class LinkOptions:
    """How links are resolved: per-request timeout, requests in flight, an httpx transport."""

    timeout: float = 10.0
    concurrency: int = 8
    # One site linked from every item should not see the whole batch at once.
    per_host: int = 4
    max_redirects: int = 10
    # Tests inject httpx.MockTransport or a transport bound to a local server.
    transport: httpx.AsyncBaseTransport | None = None


@dataclass(frozen=True)
class LinkStatus:
    """What one URL gave: the final status, or why there was none."""

    url: str
    status: int | None = None
    reason: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the link resolved to a page (2xx or 3xx after redirects)."""
        return self.error is None and self.status is not None and self.status < 400

    @property
    def problem(self) -> str:
        """What went wrong, as a phrase: 'answered 404 Not Found', 'did not answer ...'."""
        if self.error is not None:
            return self.error
        return f"answered {self.status} {self.reason}".rstrip()


def check_links(urls: Iterable[str], options: LinkOptions | None = None) -> list[LinkStatus]:
    """Resolve each distinct URL once, concurrently; results in the order first given."""
    distinct = list(dict.fromkeys(urls))
    if not distinct:
        return []
    return asyncio.run(_check_all(distinct, options or LinkOptions()))


async def _check_all(urls: list[str], options: LinkOptions) -> list[LinkStatus]:
    limits = httpx.Limits(
        max_connections=options.concurrency, max_keepalive_connections=options.concurrency
    )
    overall = asyncio.Semaphore(options.concurrency)
    hosts: dict[str, asyncio.Semaphore] = {}
    async with httpx.AsyncClient(
        transport=options.transport,
        timeout=httpx.Timeout(options.timeout),
        limits=limits,
        follow_redirects=True,
        max_redirects=options.max_redirects,
        headers={"User-Agent": USER_AGENT, "Accept": "*/*"},
    ) as client:

        async def one(url: str) -> LinkStatus:
            host = _host(url)
            per_host = hosts.setdefault(host, asyncio.Semaphore(options.per_host))
            async with overall, per_host:
                return await _check_one(client, url, options.timeout)

        return list(await asyncio.gather(*(one(url) for url in urls)))


async def _request(client: httpx.AsyncClient, method: str, url: str) -> httpx.Response:
    # Stream so a GET reads the status line and headers, never a whole page or file.
    async with client.stream(method, url) as response:
        return response


async def _check_one(client: httpx.AsyncClient, url: str, timeout: float) -> LinkStatus:
    try:
        # httpx's timeout bounds each read; this bounds the whole request, redirects included,
        # so a server that trickles bytes cannot hold the check up.
        async with asyncio.timeout(timeout):
            response = await _request(client, "HEAD", url)
        if response.status_code in HEAD_REFUSED:
            async with asyncio.timeout(timeout):
                response = await _request(client, "GET", url)
    except (TimeoutError, httpx.TimeoutException):
        return LinkStatus(url, error=f"did not answer within {timeout:g} s")
    except httpx.TooManyRedirects:
        return LinkStatus(url, error="redirects in a loop")
    except httpx.ConnectError as exc:
        return LinkStatus(url, error=f"could not be reached ({_detail(exc)})")
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return LinkStatus(url, error=f"could not be fetched ({_detail(exc)})")
    return LinkStatus(url, status=response.status_code, reason=response.reason_phrase)


def _host(url: str) -> str:
    try:
        return urlsplit(url).netloc.lower()
    except ValueError:  # httpx reports the malformed URL when it is requested
        return ""


def _detail(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
