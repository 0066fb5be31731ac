"""Reading a provider's API for sync: GET JSON through the transport's client, 429s waited out."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from digestcli.errors import DigestError, TemporaryFailure
from digestcli.transports.http import HTTPTransport

Sleep = Callable[[float], None]

# Answers worth asking again: rate limits and the provider's own hiccups.
_RETRYABLE = frozenset({429, 500, 502, 503, 504})


class ProviderAPI:
    """GET requests to a provider with the transport's base URL, auth headers and error rules.

    A 429 or 5xx is waited out (the provider's Retry-After or rate-limit reset, else a
    doubling back-off) at most `retries` times and never longer than `max_wait` seconds at
    once; everything else that is not 2xx becomes one of digest's errors.
    """

    def __init__(
        self,
        transport: HTTPTransport,
        *,
        sleep: Sleep = time.sleep,
        retries: int = 5,
        max_wait: float = 120.0,
    ) -> None:
        self.transport = transport
        self.sleep = sleep
        self.retries = retries
        self.max_wait = max_wait
        self.requests = 0

    @property
    def provider(self) -> str:
        """The provider's name, for messages."""
        return self.transport.provider

    def get(self, path: str, params: Mapping[str, str | int] | None = None) -> Any:
        """The JSON answer to GET path (relative to the base URL) with these query parameters."""
        client = self.transport.client()
        attempt = 0
        while True:
            self.requests += 1
            try:
                response = client.get(path, params=dict(params) if params else None)
            except httpx.TransportError as exc:
                raise TemporaryFailure(
                    f"could not read {path} from {self.provider} at {self.transport.base_url} "
                    f"({self.transport.describe(exc)}); run `digest sync` again later."
                ) from exc
            if response.status_code in _RETRYABLE and attempt < self.retries:
                wait = self.transport.retry_after(response)
                if wait is None:
                    wait = float(2**attempt)
                if wait <= self.max_wait:
                    attempt += 1
                    self.sleep(wait)
                    continue
            if not response.is_success:
                raise self.error(response, path)
            try:
                return response.json()
            except ValueError:
                raise TemporaryFailure(
                    f"{self.provider} answered {path} with something that is not JSON; "
                    "run `digest sync` again later."
                ) from None

    def error(self, response: httpx.Response, path: str) -> DigestError:
        """Digest's error for a refused read: credential and endpoint hints as for sends."""
        status = response.status_code
        if status in (401, 403, 404):
            return self.transport.status_error(response)
        detail = self.transport.detail(response)
        if status in _RETRYABLE:
            return TemporaryFailure(
                f"{self.provider} still answered HTTP {status} for {path} after "
                f"{self.retries} retries ({detail}); run `digest sync` again later.",
                throttled=status == 429,
            )
        return DigestError(f"{self.provider} answered HTTP {status} for {path}: {detail}")


def relative(url: str) -> str:
    """The path and query of a paging URL, so that it is read through the configured base URL.

    The auth headers then never go to a host named in an answer.
    """
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")
