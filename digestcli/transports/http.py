"""The shared base of the HTTP mail-service transports: one client, one error boundary."""

from __future__ import annotations

import email.utils
import functools
import math
import ssl
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC
from pathlib import Path
from typing import Any, ClassVar, Self

import httpx

from digestcli import __version__
from digestcli.config import TransportSettings
from digestcli.errors import (
    AmbiguousFailure,
    ConfigError,
    DigestError,
    PermanentFailure,
    RecipientsRejected,
    TemporaryFailure,
)
from digestcli.models import Message
from digestcli.transports.base import Transport
from digestcli.transports.payload import Body, PreEncoded, multipart_body

Clock = Callable[[], float]

# Longest provider text quoted in an error: enough for a sentence, never a whole page.
_DETAIL_LIMIT = 300


class HTTPTransport(Transport):
    """A transport that posts batches to a mail service's HTTP API through one httpx client.

    Every foreign failure is translated here, at one boundary, into digest's own errors:
    TemporaryFailure when the request surely was not accepted, AmbiguousFailure when it
    may have been, PermanentFailure when the provider refused it, ConfigError for
    credentials and endpoints. The secret never appears in a message or a repr.
    """

    provider: ClassVar[str]
    secret_env: ClassVar[str]
    default_base_url: ClassVar[str]

    def __init__(
        self,
        settings: TransportSettings,
        env: Mapping[str, str],
        *,
        http: httpx.BaseTransport | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.settings = settings
        self.env = env
        # Tests pass httpx.MockTransport or nothing (a local server); never a patched module.
        self.http = http
        self.clock = clock
        self.encoder = PreEncoded()
        self._secret = ""
        self._client: httpx.Client | None = None

    @classmethod
    def from_settings(
        cls, settings: TransportSettings, env: Mapping[str, str], *, outbox_dir: Path
    ) -> Self:
        """A transport for the provider's API at [transport] base_url, or its own."""
        return cls(settings, env)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.base_url}>"

    @property
    def base_url(self) -> str:
        """The API root: the configured base_url, else the provider's documented one."""
        return (self.settings.base_url or self.default_base_url).rstrip("/")

    def open(self) -> None:
        """Read the secret and open the HTTP client; fails before any request if unset."""
        self.client()

    def client(self) -> httpx.Client:
        """The open HTTP client, opened on first use."""
        if self._client is not None:
            return self._client
        secret = self.env.get(self.secret_env, "").strip()
        if not secret:
            raise ConfigError(f"{self.secret_env} is not set; export it with your API key.")
        if any(ord(char) < 32 or ord(char) == 127 for char in secret):
            # It would break the auth header; say so rather than fail mid-request.
            raise ConfigError(
                f"{self.secret_env} contains a line break or control character; "
                "export the key alone."
            )
        self.check_settings()
        try:
            client = httpx.Client(
                base_url=self.base_url,
                timeout=httpx.Timeout(self.settings.timeout),
                transport=self.http,
                verify=_ssl_context(),
                headers={
                    "Accept": "application/json",
                    "User-Agent": f"digest/{__version__}",
                    **self.auth_headers(secret),
                },
                follow_redirects=False,
            )
        except httpx.InvalidURL as exc:
            raise ConfigError(
                f"[transport] base_url `{self.base_url}` is not a valid URL; fix it in digest.toml."
            ) from exc
        self._secret = secret
        self._client = client
        return client

    def close(self) -> None:
        """Close the HTTP client and forget the secret."""
        client, self._client = self._client, None
        self._secret = ""
        if client is not None:
            client.close()

    def check_settings(self) -> None:
        """Refuse settings this provider cannot work with (overridden where needed)."""

    def auth_headers(self, secret: str) -> dict[str, str]:
        """The headers that carry the secret."""
        raise NotImplementedError

    def check_batch(self, messages: Sequence[Message]) -> None:
        """Refuse a batch larger than the provider accepts."""
        most = self.capabilities.max_batch
        if len(messages) > most:
            raise ValueError(
                f"{self.provider} takes at most {most} messages per batch, got {len(messages)}."
            )

    def post(
        self,
        path: str,
        *,
        content: bytes | Body | None = None,
        files: list[tuple[str, tuple[None, str]]] | None = None,
        headers: Mapping[str, str] | None = None,
        messages: Sequence[Message] = (),
    ) -> httpx.Response:
        """POST to the API; any answer but 2xx becomes one of digest's errors.

        messages are the batch the request carries, so that a refusal naming some of its
        recipients fails only them (RecipientsRejected).
        """
        client = self.client()
        payload: bytes | Iterator[bytes] | None = None
        if isinstance(content, Body):
            # An explicit length keeps httpx from switching to chunked transfer encoding.
            headers = {**(headers or {}), "Content-Length": str(len(content))}
            payload = content.pieces()
        else:
            payload = content
        if files is not None:
            # One buffer instead of httpx's streamed parts: a socket write per field was a
            # quarter of a Mailgun send's time.
            payload, content_type = multipart_body(files)
            headers = {**(headers or {}), "Content-Type": content_type}
        try:
            response = client.post(path, content=payload, headers=headers)
        except (
            httpx.ConnectError,
            httpx.ConnectTimeout,
            httpx.PoolTimeout,
            httpx.ProxyError,
        ) as exc:
            # No connection was made, so the provider cannot have seen the request.
            raise TemporaryFailure(
                f"could not reach {self.provider} at {self.base_url} ({self.describe(exc)}); "
                "nothing was sent."
            ) from exc
        except httpx.UnsupportedProtocol as exc:
            raise self.bad_base_url() from exc
        except httpx.TransportError as exc:
            # ReadTimeout, RemoteProtocolError, ReadError, WriteError, WriteTimeout: some or
            # all of the request went out, so the provider may have accepted it.
            raise AmbiguousFailure(
                f"the connection to {self.provider} broke after the request was sent "
                f"({self.describe(exc)}); the batch may have been accepted."
            ) from exc
        if not response.is_success:
            error = self.status_error(response)
            if type(error) is PermanentFailure and messages:
                rejected = self.rejected(response, messages)
                if rejected is not None:
                    error = RecipientsRejected(str(error), rejected)
            raise error
        return response

    def bad_base_url(self) -> ConfigError:
        """The error for a base_url httpx cannot speak to."""
        return ConfigError(
            f"[transport] base_url `{self.base_url}` must start with https:// or http://; "
            "fix it in digest.toml."
        )

    def get_json(self, path: str, params: Mapping[str, str | int]) -> Any:
        """GET a JSON document from the API; failures become digest's errors, as for post().

        A GET changes nothing at the provider, so a broken connection is only temporary.
        """
        client = self.client()
        try:
            response = client.get(path, params=dict(params))
        except httpx.UnsupportedProtocol as exc:
            raise self.bad_base_url() from exc
        except httpx.TransportError as exc:
            raise TemporaryFailure(
                f"could not read from {self.provider} at {self.base_url} ({self.describe(exc)})."
            ) from exc
        if not response.is_success:
            raise self.status_error(response)
        try:
            return response.json()
        except ValueError as exc:
            raise TemporaryFailure(
                f"{self.provider} answered {path} with something that is not JSON."
            ) from exc

    def status_error(self, response: httpx.Response) -> DigestError:
        """Translate a non-2xx answer into digest's error for it."""
        status = response.status_code
        detail = self.detail(response)
        if status in (401, 403):
            return ConfigError(
                f"{self.provider} refused the credentials (HTTP {status}: {detail}); "
                f"check {self.secret_env}."
            )
        if status == 429 or status >= 500 or status == 408:
            return TemporaryFailure(
                f"{self.provider} answered HTTP {status} ({detail}); the batch can be retried.",
                retry_after=self.retry_after(response),
                throttled=status == 429,
            )
        if status == 404 or 300 <= status < 400:
            return ConfigError(
                f"{self.provider} answered HTTP {status} for {response.request.url.path} "
                f"({detail}); check [transport] base_url in digest.toml."
            )
        return PermanentFailure(f"{self.provider} rejected the batch (HTTP {status}): {detail}")

    def rejected(
        self, response: httpx.Response, messages: Sequence[Message]
    ) -> dict[int, str] | None:
        """Which messages a whole-request refusal blames: index -> reason, {} when it names
        none, None when the refusal is not about recipients (overridden where known)."""
        return None

    def detail(self, response: httpx.Response) -> str:
        """The provider's own explanation of an error answer, short and without the secret."""
        text = ""
        try:
            data = response.json()
        except ValueError:
            data = None
        if data is not None:
            text = self.error_message(data)
        if not text:
            text = response.text.strip()
        if not text:
            text = response.reason_phrase or "no explanation"
        return self.redact(" ".join(text.split())[:_DETAIL_LIMIT])

    def error_message(self, data: Any) -> str:
        """The human message inside a provider's JSON error body ('' when not found)."""
        if isinstance(data, dict):
            for key in ("message", "Message"):
                if isinstance(data.get(key), str):
                    return str(data[key])
        return ""

    def retry_after(self, response: httpx.Response) -> float | None:
        """Seconds to wait before retrying, from the answer's headers (None if unknown)."""
        return parse_retry_after(response.headers.get("retry-after"), self.clock())

    def describe(self, exc: Exception) -> str:
        """A short, secret-free description of a low-level exception."""
        text = str(exc).strip() or type(exc).__name__
        return self.redact(f"{type(exc).__name__}: {text}"[:_DETAIL_LIMIT])

    def redact(self, text: str) -> str:
        """The text with the secret blanked out, should a provider ever echo it."""
        secret = self._secret or self.env.get(self.secret_env, "").strip()
        return text.replace(secret, "[redacted]") if secret else text

    def response_json(self, response: httpx.Response) -> Any:
        """The JSON of a 2xx answer; one we cannot read may still mean the batch went out."""
        try:
            return response.json()
        except ValueError as exc:
            raise AmbiguousFailure(
                f"{self.provider} accepted the batch (HTTP {response.status_code}) but its "
                "answer is not JSON; the messages may have been sent."
            ) from exc


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle costs tens of milliseconds; one context serves every client.
    return httpx.create_ssl_context()


def parse_retry_after(value: str | None, now: float) -> float | None:
    """A Retry-After value (delta seconds or an HTTP date) as seconds from now."""
    if not value or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def parse_reset_time(value: str | None, now: float) -> float | None:
    """A rate-limit reset given as a unix time, as seconds from now."""
    if not value or not value.strip():
        return None
    try:
        reset = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(reset):
        return None
    return max(0.0, reset - now)


def parse_seconds(value: str | None) -> float | None:
    """A header holding a plain number of seconds."""
    if not value or not value.strip():
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None
