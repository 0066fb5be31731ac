"""Local fakes of Postmark, SendGrid, Mailgun and Resend that speak each API over real sockets.

Each fake is a threaded HTTP server on 127.0.0.1 (port 0). It checks the credentials,
parses the JSON or multipart body, validates the request against the provider's official
spec in ../shared/specs with openapi-core, records the raw request, performs the provider's
server-side substitution (SendGrid substitutions, Mailgun %recipient.X%) so a test sees
what each reader gets, and can be scripted to answer as the provider does when things go
wrong: 401, 400/422 with the real error body shape, 429 with the real rate-limit headers,
500/503, a dropped connection, a stalled answer, Postmark's per-message ErrorCode, Resend's
idempotency records.

Spec gaps the fakes fill from ../shared/providers.md (each is tested in the transport
tests): Postmark's 2017 Swagger spec lacks MessageStream and Metadata; Resend's spec has no
batch maxItems, no tag character rule and no x-batch-validation header; SendGrid's spec types
top-level custom_args as a string; openapi-core's multipart decoder reads Mailgun's
string-or-array fields as bytes and keeps only the first repeated field, so the Mailgun fake
plugs in a form decoder that keeps repeated fields as lists.
"""

from __future__ import annotations

import base64
import copy
import email.utils
import functools
import hashlib
import html
import json
import os
import re
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Literal, Self

import yaml
from openapi_core import OpenAPI
from openapi_core.configurations import Config
from openapi_core.testing import MockRequest, MockResponse

from digestcli.config import TransportSettings, Unsubscribe
from digestcli.message import build_message
from digestcli.models import Content, MergeText, Message, Recipient
from digestcli.transports import Factory
from digestcli.transports.base import Transport
from digestcli.transports.http import Clock, HTTPTransport
from digestcli.transports.mailgun import MailgunTransport
from digestcli.transports.postmark import PostmarkTransport
from digestcli.transports.resend import ResendTransport
from digestcli.transports.sendgrid import SendGridTransport
from harness.mime import Received

SPECS = Path(__file__).resolve().parents[2] / ".." / "shared" / "specs"
SPEC_FILES = {
    "postmark": "postmark-send.swagger2.yaml",
    "sendgrid": "sendgrid-mail-send.openapi.json",
    "mailgun": "mailgun.openapi.patched.yaml",
    "resend": "resend.openapi.json",
}

# A secret shaped like each provider's keys; tests check it never leaks.
SECRETS = {
    "postmark": "pm-secret-0f3c9a7e-token",
    "sendgrid": "SG.secret-8d1b2c.key-value",
    "mailgun": "mg-secret-key-5e6f7a8b9c",
    "resend": "re_secret_4d5e6f7a8b",
}

# Fields Postmark documents today but its old Swagger spec does not list.
POSTMARK_UNLISTED_FIELDS = frozenset({"MessageStream", "Metadata"})
_RESEND_TAG = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_MAILGUN_VARIABLE = re.compile(r"%recipient\.([^%]+)%")


def spec_path(provider: str) -> Path:
    """Where the provider's official spec lives (it may be absent outside this checkout)."""
    return SPECS / SPEC_FILES[provider]


class SpecMissing(AssertionError):
    """A provider's spec is absent in CI, where the fakes must validate against it."""


def in_ci() -> bool:
    """Whether this run is CI (CI set and not empty, as test_browser.py reads it too)."""
    return bool(os.environ.get("CI"))


def has_spec(provider: str) -> bool:
    """Whether the provider's spec is there to validate against; in CI it must be.

    Every test and fake that checks for a spec asks here, so one rule holds for all: outside
    CI an absent ../shared only skips validation, in CI it fails the test that needed it.
    """
    path = spec_path(provider)
    if path.is_file():
        return True
    if in_ci():
        raise SpecMissing(
            f"{path.resolve()} is missing: in CI the fake {provider} must validate requests "
            "against the provider's spec. Put ../shared (with specs/) beside the repository; "
            "without the CI variable set, validation is skipped."
        )
    return False


# ----- specs, loaded once per test session ---------------------------------------------------


def _load(provider: str) -> Any:
    text = spec_path(provider).read_text(encoding="utf-8")
    if provider in ("sendgrid", "resend"):
        return json.loads(text)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(text, Loader=loader)  # a safe loader, C-accelerated when available


_BOUNDARY = re.compile(r'boundary="?([^";]+)"?')
_FIELD_NAME = re.compile(rb'^content-disposition:\s*form-data;\s*name="([^"]*)"', re.I | re.M)


def form_fields(body: bytes, content_type: str) -> list[tuple[str, str]]:
    """The (name, value) fields of a multipart/form-data body, repeats kept, in order.

    A strict RFC 7578 reader (the email package's parser is far too slow for 1,000 fields).
    """
    found = _BOUNDARY.search(content_type)
    if not found:
        raise ValueError("multipart/form-data without a boundary")
    chunks = (b"\r\n" + body).split(b"\r\n--" + found.group(1).encode())
    if chunks[0] or not chunks[-1].startswith(b"--"):
        raise ValueError("the body does not start and end with the boundary")
    fields = []
    for chunk in chunks[1:-1]:
        head, sep, value = chunk.partition(b"\r\n\r\n")
        name = _FIELD_NAME.search(head)
        if not sep or not head.startswith(b"\r\n") or name is None:
            raise ValueError(f"a part without a form-data name: {head[:80]!r}")
        fields.append((name.group(1).decode(), value.decode("utf-8")))
    return fields


def _form_loads(value: bytes, **parameters: str) -> dict[str, str | list[str]]:
    # openapi-core's own decoder reads anyOf fields as bytes and only the first of repeated
    # fields; Mailgun repeats `to` and `o:tag`, so repeated fields must become lists.
    content_type = f'multipart/form-data; boundary="{parameters["boundary"]}"'
    out: dict[str, str | list[str]] = {}
    for name, text in form_fields(value, content_type):
        if name in out:
            previous = out[name]
            out[name] = [*previous, text] if isinstance(previous, list) else [previous, text]
        else:
            out[name] = text
    return out


def _swagger_to_openapi(swagger: dict[str, Any], path: str) -> dict[str, Any]:
    """An OpenAPI 3.0 document for one Swagger 2.0 POST operation (openapi-core reads 3.x)."""

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: (
                    v.replace("#/definitions/", "#/components/schemas/")
                    if k == "$ref" and isinstance(v, str)
                    else rewrite(v)
                )
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [rewrite(v) for v in node]
        return node

    operation = swagger["paths"][path]["post"]
    parameters = []
    body_schema: Any = None
    for param in operation["parameters"]:
        if param["in"] == "body":
            body_schema = rewrite(param["schema"])
        else:
            parameters.append(
                {
                    "name": param["name"],
                    "in": param["in"],
                    "required": param.get("required", False),
                    "schema": {"type": param.get("type", "string")},
                }
            )
    responses: dict[str, Any] = {}
    for status, listed in operation["responses"].items():
        response = listed
        if "$ref" in listed:
            response = swagger["responses"][listed["$ref"].rpartition("/")[2]]
        converted: dict[str, Any] = {"description": response.get("description", status)}
        if "schema" in response:
            converted["content"] = {"application/json": {"schema": rewrite(response["schema"])}}
        responses[status] = converted
    return {
        "openapi": "3.0.3",
        "info": {"title": swagger["info"]["title"], "version": swagger["info"]["version"]},
        "servers": [{"url": f"https://{swagger['host']}"}],
        "paths": {
            path: {
                "post": {
                    "operationId": operation["operationId"],
                    "parameters": parameters,
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": body_schema}},
                    },
                    "responses": responses,
                }
            }
        },
        "components": {"schemas": rewrite(swagger["definitions"])},
    }


@functools.cache
def raw_spec(provider: str) -> Any:
    """The provider's spec as loaded from its file (cached: Mailgun's is 650 KB of YAML)."""
    return _load(provider)


@functools.cache
def openapi(provider: str) -> OpenAPI:
    """An openapi-core validator for the provider's send operation (built once per session)."""
    spec = raw_spec(provider)
    extra: dict[str, Callable[[bytes], Any]] = {}
    if provider == "postmark":
        spec = _swagger_to_openapi(spec, "/email/batch")
    if provider == "mailgun":
        extra = {"multipart/form-data": _form_loads}
    # The specs are the providers' own; checking the documents themselves is not our job
    # and costs seconds for Mailgun's.
    config = Config(spec_validator_cls=None, extra_media_type_deserializers=extra)
    return OpenAPI.from_dict(copy.deepcopy(spec), config=config)


# ----- the server --------------------------------------------------------------------------


@dataclass(frozen=True)
class Accepted:
    """One message in the provider's own record: to whom, its tags and variables, its id."""

    email: str
    message_id: str
    tags: tuple[str, ...] = ()
    variables: Mapping[str, str] = field(default_factory=dict)


def query(request: Request) -> dict[str, str]:
    """The request's query parameters (last value wins)."""
    from urllib.parse import parse_qsl, urlsplit

    return dict(parse_qsl(urlsplit(request.path).query))


@dataclass(frozen=True)
class Request:
    """One request as the fake received it."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


@dataclass
class Reply:
    """What the fake answers; `drop` closes the socket unanswered, `stall` answers too late.

    With `process=True` the fake handles the request fully (delivers, keeps idempotency
    records) before dropping or stalling: the provider accepted it, the client never knows.
    """

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    action: Literal["answer", "drop", "stall"] = "answer"
    process: bool = False


def json_reply(status: int, data: Any, headers: Mapping[str, str] | None = None) -> Reply:
    """A JSON answer."""
    return Reply(
        status,
        json.dumps(data).encode(),
        {"Content-Type": "application/json", **(headers or {})},
    )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: LocalServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and left is part of the tests, not an error.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; Nagle would hold the body ~40 ms.
    disable_nagle_algorithm = True
    server: _Server

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                chunk = self.rfile.read(size)
                self.rfile.readline()
                if not size:
                    return b"".join(chunks)
                chunks.append(chunk)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _serve(self) -> None:
        fake = self.server.fake
        request = Request(
            self.command,
            self.path,
            {name.lower(): value for name, value in self.headers.items()},
            self._read_body(),
        )
        # A GET reads the provider's records: no send, so no script, no hold, no request count.
        reply = fake.read(request) if request.method == "GET" else fake.dispatch(request)
        if reply.action == "drop":
            self.close_connection = True
            return
        if reply.action == "stall":
            fake.release.wait(10)
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except OSError:
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


class LocalServer:
    """A threaded HTTP server on 127.0.0.1 (port 0) that a fake answers; a context manager.

    The handler calls `read` for a GET and `dispatch` for anything else.
    """

    secret: str
    transport_cls: ClassVar[type[HTTPTransport]]

    def __init__(self) -> None:
        self.release = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.005}, daemon=True
        )

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    @property
    def url(self) -> str:
        """The base URL to give the transport."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def env(self) -> dict[str, str]:
        """An environment holding this fake's secret."""
        return {self.transport_cls.secret_env: self.secret}

    def read(self, request: Request) -> Reply:
        """The answer to a GET."""
        raise NotImplementedError

    def dispatch(self, request: Request) -> Reply:
        """The answer to any other request."""
        raise NotImplementedError


class FakeProvider(LocalServer):
    """A local server speaking one provider's send API; use as a context manager."""

    provider: ClassVar[str]
    transport_cls: ClassVar[type[HTTPTransport]]
    path_pattern: ClassVar[str]

    def __init__(
        self, *, secret: str | None = None, validate: bool = True, record: bool = True
    ) -> None:
        # Before the server opens its socket: in CI a missing spec raises here.
        self.validating = validate and has_spec(self.provider)
        super().__init__()
        self.secret = secret or SECRETS[self.provider]
        # Benchmarks send 100,000 recipients: they turn validation and records off.
        self.recording = record
        self.requests: list[Request] = []
        self.delivered: list[Received] = []
        self.violations: list[str] = []
        self.answered: list[Reply] = []
        # What the provider accepted, as its own record (message search, events) holds it.
        self.accepted: list[Accepted] = []
        # Addresses the provider's own validator refuses (stricter than email-validator),
        # with the reason it gives where it gives one per address (Resend).
        self.refused: dict[str, str] = {}
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()

    def transport(
        self,
        *,
        env: Mapping[str, str] | None = None,
        clock: Clock | None = None,
        **settings: Any,
    ) -> HTTPTransport:
        """A transport of this provider pointed at the fake."""
        values: dict[str, Any] = {"kind": self.provider, "base_url": self.url, **settings}
        config = TransportSettings(**values)
        if clock is None:
            return self.transport_cls(config, self.env if env is None else env)
        return self.transport_cls(config, self.env if env is None else env, clock=clock)

    def factory(self, **settings: Any) -> Factory:
        """A factory of this provider's transports pointed at the fake, as a send uses."""
        caps = self.transport_cls.capabilities
        return Factory(
            kind=self.provider,
            make=lambda: self.transport(**settings),
            capabilities=caps,
            batch_size=caps.batch_size(settings.get("batch_size")),
            requests_per_second=0.0,
        )

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with these replies, in order."""
        with self._lock:
            self._script.extend(replies)

    def received(self) -> list[Received]:
        """What readers got so far, one dict per delivered message (see harness docs)."""
        with self._lock:
            return copy.deepcopy(self.delivered)

    def dispatch(self, request: Request) -> Reply:
        """What goes back on the wire for a request."""
        reply = self.handle(request)[0]
        with self._lock:
            if self.recording:
                self.answered.append(reply)
        return reply

    def handle(self, request: Request) -> tuple[Reply, Reply | None]:
        """Record, authenticate, validate, then answer: scripted, or as the provider would.

        Returns the reply for the wire and the provider's own answer (None when the request
        was never processed); they differ when a scripted reply replaces the real one.
        """
        with self._lock:
            if self.recording:
                self.requests.append(request)
            scripted = self._script.popleft() if self._script else None
        if not re.fullmatch(self.path_pattern, request.path) or request.method != "POST":
            return json_reply(404, {"message": "Not Found"}), None
        denied = self.check_auth(request)
        if denied is not None:
            return denied, None
        try:
            problems = self.validate(request) if self.validating else []
            problems += self.check(request)
        except Exception as exc:  # a malformed request must not kill the handler thread
            problems = [f"unreadable request: {exc!r}"]
        if problems:
            with self._lock:
                self.violations.extend(problems)
            status = 422 if self.provider == "postmark" else 400
            return self.error(status, "; ".join(problems)), None
        if scripted is not None and not scripted.process:
            return scripted, None
        refusal = self.refuse(request)
        if refusal is not None:
            return refusal, None
        reply = self.accept(request)
        if self.validating and reply.status < 300:
            self.validate_reply(request, reply)
        return (scripted or reply), reply

    # ----- provider specifics ------------------------------------------------------------------

    host_url: ClassVar[str]

    def check_auth(self, request: Request) -> Reply | None:
        """The provider's refusal when the credentials are wrong, else None."""
        raise NotImplementedError

    def mock_request(self, request: Request) -> MockRequest:
        """The request as openapi-core sees it, addressed to the spec's server."""
        return MockRequest(
            self.host_url,
            "post",
            request.path.partition("?")[0],
            headers=dict(request.headers),
            data=request.body,
            content_type=request.headers.get("content-type", ""),
        )

    def validate(self, request: Request) -> list[str]:
        """Spec violations of the request, from openapi-core."""
        result = openapi(self.provider).unmarshal_request(self.mock_request(request))
        return [f"spec: {_explain(error)}" for error in result.errors]

    def validate_reply(self, request: Request, reply: Reply) -> None:
        """Record where the fake's own success answer breaks the spec."""
        response = MockResponse(
            reply.body,
            status_code=reply.status,
            headers=reply.headers,
            content_type=reply.headers.get("Content-Type", "application/json"),
        )
        result = openapi(self.provider).unmarshal_response(self.mock_request(request), response)
        if result.errors:
            with self._lock:
                self.violations.extend(f"response: {_explain(e)}" for e in result.errors)

    def check(self, request: Request) -> list[str]:
        """Rules from the provider's documentation that its spec does not state."""
        return []

    def refuse(self, request: Request) -> Reply | None:
        """The provider's answer to a request holding an address it refuses, else None."""
        return None

    def read(self, request: Request) -> Reply:
        """Answer a GET: the credentials checked, then the provider's search."""
        return self.check_auth(request) or self.search(request)

    def search(self, request: Request) -> Reply:
        """A GET of the provider's record of accepted messages (404 where it has none)."""
        return json_reply(404, {"message": "Not Found"})

    def remember(self, record: Accepted) -> None:
        """Keep what the provider accepted, for its search API."""
        with self._lock:
            self.accepted.append(record)

    def found(self, email: str, tag: str | None = None) -> list[Accepted]:
        """What was accepted for an address (and a tag)."""
        with self._lock:
            return [
                a
                for a in self.accepted
                if a.email.lower() == email.lower() and (tag is None or tag in a.tags)
            ]

    def accept(self, request: Request) -> Reply:
        """Deliver the batch and answer as the provider does on success."""
        raise NotImplementedError

    def error(self, status: int, message: str | None = None, **options: Any) -> Reply:
        """An error answer in the provider's own shape and headers."""
        raise NotImplementedError

    def deliver(self, mail: Received) -> None:
        """Record what one reader receives."""
        with self._lock:
            if self.recording:
                self.delivered.append(mail)


def _explain(error: Exception) -> str:
    cause = error.__cause__
    details = getattr(cause, "schema_errors", None)
    if details:
        return "; ".join(getattr(d, "message", str(d)) for d in details)
    return f"{error}" + (f" ({cause})" if cause else "")


def _bare(address: str) -> str:
    return email.utils.parseaddr(address)[1] or address


# ----- Postmark ------------------------------------------------------------------------------


def postmark_listed_fields() -> frozenset[str]:
    """The message fields Postmark's spec lists (empty when the spec is absent)."""
    if not has_spec("postmark"):
        return frozenset()
    return frozenset(raw_spec("postmark")["definitions"]["SendEmailRequest"]["properties"])


class PostmarkFake(FakeProvider):
    """Postmark's /email/batch: every message whole, an ErrorCode for each in the 200."""

    provider = "postmark"
    transport_cls = PostmarkTransport
    path_pattern = r"/email/batch"
    host_url = "https://api.postmarkapp.com"

    def __init__(
        self, *, secret: str | None = None, validate: bool = True, record: bool = True
    ) -> None:
        super().__init__(secret=secret, validate=validate, record=record)
        # address -> (ErrorCode, Message) answered inside a 200 for that element
        self.element_errors: dict[str, tuple[int, str]] = {}

    def inactive(self, address: str) -> None:
        """Answer ErrorCode 406 for this address, as for a suppressed recipient."""
        self.element_errors[address] = (
            406,
            "You tried to send to recipient(s) that have been marked as inactive. Found "
            f"inactive addresses: {address}. Inactive recipients are ones that have "
            "generated a hard bounce, a spam complaint, or a manual suppression.",
        )

    def check_auth(self, request: Request) -> Reply | None:
        """401 with ErrorCode 10 unless the server token matches."""
        if request.headers.get("x-postmark-server-token") != self.secret:
            return self.error(401)
        return None

    def check(self, request: Request) -> list[str]:
        """Postmark's documented rules: JSON both ways, 500 messages, the newer fields."""
        problems = []
        if "application/json" not in request.headers.get("accept", ""):
            problems.append("Accept must be application/json")
        if request.headers.get("content-type", "").partition(";")[0] != "application/json":
            problems.append("Content-Type must be application/json")
            return problems
        batch = request.json()
        if not isinstance(batch, list) or not 1 <= len(batch) <= 500:
            return [*problems, "the batch must be a list of 1 to 500 messages"]
        listed = postmark_listed_fields()
        for i, item in enumerate(batch):
            if not isinstance(item, dict):
                continue
            unknown = set(item) - listed - POSTMARK_UNLISTED_FIELDS if listed else set()
            if unknown:
                problems.append(f"message {i}: unknown fields {sorted(unknown)}")
            if not isinstance(item.get("MessageStream", ""), str):
                problems.append(f"message {i}: MessageStream must be a string")
            metadata = item.get("Metadata", {})
            if not isinstance(metadata, dict) or not all(
                isinstance(v, str) for v in metadata.values()
            ):
                problems.append(f"message {i}: Metadata must map strings to strings")
            for name in ("From", "To", "Subject"):
                if not item.get(name):
                    problems.append(f"message {i}: {name} is required")
        return problems

    def accept(self, request: Request) -> Reply:
        """Deliver each message unless scripted to fail; one answer element per message."""
        answers = []
        for item in request.json():
            address = _bare(item["To"])
            if address in self.element_errors:
                code, message = self.element_errors[address]
                answers.append({"ErrorCode": code, "Message": message, "To": item["To"]})
                continue
            headers = {h["Name"].lower(): h["Value"] for h in item.get("Headers", [])}
            headers["from"] = item["From"]
            headers["to"] = item["To"]
            if item.get("ReplyTo"):
                headers["reply-to"] = item["ReplyTo"]
            self.deliver(
                {
                    "to": address,
                    "subject": item["Subject"],
                    "text": item.get("TextBody", ""),
                    "html": item.get("HtmlBody", ""),
                    "headers": headers,
                }
            )
            message_id = str(uuid.uuid4())
            tags = (item["Tag"],) if item.get("Tag") else ()
            self.remember(Accepted(address, message_id, tags, item.get("Metadata") or {}))
            answers.append(
                {
                    "ErrorCode": 0,
                    "Message": "OK",
                    "MessageID": message_id,
                    "SubmittedAt": "2024-05-06T07:08:09.1234567-04:00",
                    "To": item["To"],
                }
            )
        return json_reply(200, answers)

    def search(self, request: Request) -> Reply:
        """GET /messages/outbound: accepted messages by recipient and tag."""
        if not request.path.startswith("/messages/outbound"):
            return json_reply(404, {"ErrorCode": 404, "Message": "Not Found"})
        asked = query(request)
        found = self.found(asked.get("recipient", ""), asked.get("tag"))
        messages = [
            {
                "MessageID": a.message_id,
                "Recipients": [a.email],
                "Tag": a.tags[0] if a.tags else "",
                "Metadata": dict(a.variables),
                "Status": "Sent",
                "ReceivedAt": "2026-11-30T08:00:00Z",
            }
            for a in found
        ]
        return json_reply(200, {"TotalCount": len(messages), "Messages": messages})

    def error(self, status: int, message: str | None = None, **options: Any) -> Reply:
        """Postmark's {"ErrorCode", "Message"} body; it documents no rate-limit headers."""
        defaults = {
            401: (10, "Request does not contain a valid Server token."),
            422: (300, "Invalid 'From' address: 'nobody'."),
            413: (0, "Request Entity Too Large"),
            429: (0, "Rate limit exceeded."),
            500: (0, "Internal Server Error"),
            503: (0, "Service Unavailable"),
        }
        code, text = defaults.get(status, (0, "Error"))
        return json_reply(
            status, {"ErrorCode": options.get("code", code), "Message": message or text}
        )


# ----- SendGrid ------------------------------------------------------------------------------


def substitute_all(text: str, substitutions: Mapping[str, str]) -> str:
    """SendGrid's substitution: every tag replaced by its value, in one pass."""
    if not substitutions:
        return text
    pattern = re.compile("|".join(re.escape(tag) for tag in sorted(substitutions, key=len)[::-1]))
    return pattern.sub(lambda match: substitutions[match.group(0)], text)


class SendGridFake(FakeProvider):
    """SendGrid's v3 /mail/send: one mail, personalizations with substitutions, a 202."""

    provider = "sendgrid"
    transport_cls = SendGridTransport
    path_pattern = r"/v3/mail/send"
    host_url = "https://api.sendgrid.com"

    def check_auth(self, request: Request) -> Reply | None:
        """401 unless the bearer token matches."""
        if request.headers.get("authorization") != f"Bearer {self.secret}":
            return self.error(401)
        return None

    def check(self, request: Request) -> list[str]:
        """Limits from SendGrid's documentation that the spec does not state."""
        try:
            mail = request.json()
        except ValueError:
            return ["the body is not JSON"]
        if not isinstance(mail, dict):
            return ["the body must be an object"]
        problems = []
        seen: set[str] = set()
        personalizations = mail.get("personalizations") or []
        total = 0
        for i, item in enumerate(personalizations):
            for address in item.get("to", []):
                total += 1
                key = str(address.get("email", "")).lower()
                if key in seen:
                    problems.append(
                        "Each email address in the personalization block should be unique "
                        f"between to, cc, and bcc. We found the first duplicate instance of "
                        f"[{key}] in the personalizations.{i}.to field."
                    )
                seen.add(key)
            size = len(json_body_bytes(item.get("substitutions", {})))
            if size > 10_000:
                problems.append(f"personalizations.{i}.substitutions is over 10,000 bytes")
            args = item.get("custom_args", {})
            if not all(isinstance(v, str) for v in args.values()):
                problems.append(f"personalizations.{i}.custom_args values must be strings")
        if total > 1000:
            problems.append("at most 1000 recipients per request")
        types = [part.get("type") for part in mail.get("content", [])]
        if "text/plain" in types and types.index("text/plain") != 0:
            problems.append("content: text/plain must come first")
        return problems

    def search(self, request: Request) -> Reply:
        """GET /v3/messages: email activity is a paid add-on this account lacks (403)."""
        return self.error(403)

    def refuse(self, request: Request) -> Reply | None:
        """400 for the whole request, naming each refused address's personalization field."""
        errors = [
            {
                "message": "Does not contain a valid address.",
                "field": f"personalizations.{i}.to.{j}.email",
                "help": "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html",
            }
            for i, item in enumerate(request.json()["personalizations"])
            for j, address in enumerate(item.get("to", []))
            if str(address.get("email", "")).lower() in self.refused
        ]
        return json_reply(400, {"errors": errors}) if errors else None

    def accept(self, request: Request) -> Reply:
        """Deliver one mail per personalization, substitutions done; 202 with an id."""
        mail = request.json()
        parts = {part["type"]: part["value"] for part in mail.get("content", [])}
        for item in mail["personalizations"]:
            subs = item.get("substitutions", {})
            headers = {k.lower(): v for k, v in (mail.get("headers") or {}).items()}
            headers.update({k.lower(): v for k, v in (item.get("headers") or {}).items()})
            headers["from"] = mail["from"]["email"]
            if mail.get("reply_to"):
                headers["reply-to"] = mail["reply_to"]["email"]
            for address in item["to"]:
                self.deliver(
                    {
                        "to": address["email"],
                        "subject": substitute_all(item.get("subject", mail["subject"]), subs),
                        "text": substitute_all(parts.get("text/plain", ""), subs),
                        "html": substitute_all(parts.get("text/html", ""), subs),
                        "headers": dict(headers),
                    }
                )
        return Reply(202, b"", {"X-Message-Id": uuid.uuid4().hex[:22]})

    def error(self, status: int, message: str | None = None, **options: Any) -> Reply:
        """SendGrid's {"errors": [...]}; 429 carries X-RateLimit-* (reset: a unix time)."""
        defaults = {
            400: ("The from email does not contain a valid address.", "from.email"),
            401: ("The provided authorization grant is invalid, expired, or revoked", None),
            403: ("access forbidden", None),
            413: ("The JSON payload you have included in your request is too large.", None),
            429: ("too many requests", None),
            500: ("internal server error", None),
            503: ("service unavailable", None),
        }
        text, field_name = defaults.get(status, ("error", None))
        headers = {}
        if status == 429:
            headers = {
                "X-RateLimit-Limit": "600",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(options.get("reset", 0)),
            }
        body = {"errors": [{"message": message or text, "field": field_name, "help": None}]}
        return json_reply(status, body, headers)


def json_body_bytes(data: Any) -> bytes:
    """Compact JSON bytes, as sizes are counted."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


# ----- Mailgun -------------------------------------------------------------------------------


def substitute_recipient(text: str, variables: Mapping[str, Any]) -> str:
    """Mailgun's %recipient.KEY% substitution: one pass, inserted text is not rescanned.

    An unknown KEY becomes empty here, so a literal that escaped escaping shows up in tests.
    """
    return _MAILGUN_VARIABLE.sub(lambda match: str(variables.get(match.group(1), "")), text)


class MailgunFake(FakeProvider):
    """Mailgun's /v3/{domain}/messages: repeated `to`, recipient-variables, one id."""

    provider = "mailgun"
    transport_cls = MailgunTransport
    path_pattern = r"/v3/[^/]+/messages"
    host_url = "https://api.mailgun.net"
    domain = "mg.example.org"

    def transport(
        self,
        *,
        env: Mapping[str, str] | None = None,
        clock: Clock | None = None,
        **settings: Any,
    ) -> HTTPTransport:
        """A Mailgun transport with the fake's sending domain unless told otherwise."""
        settings.setdefault("domain", self.domain)
        return super().transport(env=env, clock=clock, **settings)

    def check_auth(self, request: Request) -> Reply | None:
        """A plain-text 401 Forbidden unless Basic api:<key> matches."""
        expected = base64.b64encode(f"api:{self.secret}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return self.error(401)
        return None

    def fields(self, request: Request) -> list[tuple[str, str]]:
        """The request's form fields, repeats kept."""
        return form_fields(request.body, request.headers.get("content-type", ""))

    def check(self, request: Request) -> list[str]:
        """Mailgun's documented limits and the shape recipient-variables must have."""
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            return ["the body must be multipart/form-data"]
        fields = self.fields(request)
        problems = []
        to = [_bare(value) for name, value in fields if name == "to"]
        if len(to) > 1000:
            problems.append("at most 1000 recipients per request")
        options = sum(
            len(name.encode()) + len(value.encode())
            for name, value in fields
            if name[:2] in ("o:", "h:", "v:", "t:")
        )
        if options > 16 * 1024:
            problems.append("Send options (parameters starting with o:, h:, or v:) are limited")
        raw = [value for name, value in fields if name == "recipient-variables"]
        if len(to) > 1 and not raw:
            problems.append("a batch without recipient-variables shows every address to all")
        if raw:
            try:
                variables = json.loads(raw[0])
            except ValueError:
                return [*problems, "recipient-variables is not JSON"]
            missing = [address for address in to if address not in variables]
            if missing:
                problems.append(f"recipient-variables lacks {missing}")
        return problems

    # Whether a refusal names the address; Mailgun's answers do both.
    names_refused = True

    def refuse(self, request: Request) -> Reply | None:
        """400 for the whole message when a `to` is refused, naming it or not."""
        bad = [
            address
            for name, value in self.fields(request)
            if name == "to" and (address := _bare(value)).lower() in self.refused
        ]
        if not bad:
            return None
        if self.names_refused:
            return json_reply(400, {"message": f"'{bad[0]}' is not a valid address"})
        return self.error(400)

    def accept(self, request: Request) -> Reply:
        """Deliver one message per `to`, its variables substituted in a single pass."""
        fields = self.fields(request)
        one = {name: value for name, value in reversed(fields)}
        raw = one.get("recipient-variables")
        variables = json.loads(raw) if raw else {}
        domain = request.path.split("/")[2]
        header_fields = [(key[2:].lower(), text) for key, text in fields if key.startswith("h:")]
        message_id = f"<{uuid.uuid4().hex}@{domain}>"
        tags = tuple(value for key, value in fields if key == "o:tag")
        user_variables = {key[2:]: value for key, value in fields if key.startswith("v:")}
        for name, value in fields:
            if name != "to":
                continue
            address = _bare(value)
            mine = variables.get(address, {})
            headers = {key: substitute_recipient(text, mine) for key, text in header_fields}
            headers["from"] = one["from"]
            headers["to"] = value
            self.deliver(
                {
                    "to": address,
                    "subject": substitute_recipient(one.get("subject", ""), mine),
                    "text": substitute_recipient(one.get("text", ""), mine),
                    "html": substitute_recipient(one.get("html", ""), mine),
                    "headers": headers,
                }
            )
            self.remember(Accepted(address, message_id, tags, user_variables))
        return json_reply(200, {"id": message_id, "message": "Queued. Thank you."})

    def search(self, request: Request) -> Reply:
        """GET /v3/{domain}/events?event=accepted: by recipient and tag; one page."""
        if not re.fullmatch(r"/v3/[^/]+/events(\?.*)?", request.path):
            return json_reply(404, {"message": "Not Found"})
        asked = query(request)
        found = (
            []
            if asked.get("event") != "accepted"
            else self.found(asked.get("recipient", ""), asked.get("tags"))
        )
        items = [
            {
                "event": "accepted",
                "id": uuid.uuid4().hex[:22],
                "recipient": a.email,
                "tags": list(a.tags),
                "user-variables": dict(a.variables),
                "message": {"headers": {"message-id": a.message_id.strip("<>")}},
            }
            for a in found
        ]
        return json_reply(200, {"items": items, "paging": {"next": f"{self.url}/v3/next"}})

    def error(self, status: int, message: str | None = None, **options: Any) -> Reply:
        """Mailgun's {"message"} (401: plain Forbidden; 429: "try again after N seconds")."""
        if status == 401:
            return Reply(401, b"Forbidden", {"Content-Type": "text/plain"})
        if status == 429 and message is None:
            message = (
                f"Domain {self.domain} is not allowed to send: account-requests-per-sec "
                f"limit exceeded, try again after {options.get('seconds', 120)} seconds"
            )
        defaults = {
            400: "to parameter is not a valid address. please check documentation",
            500: "Internal Server Error",
            503: "Service Unavailable",
        }
        return json_reply(status, {"message": message or defaults.get(status, "Error")})


# ----- Resend --------------------------------------------------------------------------------


@dataclass
class _Record:
    digest: str
    reply: Reply | None = None


class ResendFake(FakeProvider):
    """Resend's /emails/batch with Idempotency-Key records and batch validation modes."""

    provider = "resend"
    transport_cls = ResendTransport
    path_pattern = r"/emails/batch"
    host_url = "https://api.resend.com"

    def __init__(
        self, *, secret: str | None = None, validate: bool = True, record: bool = True
    ) -> None:
        super().__init__(secret=secret, validate=validate, record=record)
        self.records: dict[str, _Record] = {}

    def check_auth(self, request: Request) -> Reply | None:
        """401 without a key, 403 with a wrong one."""
        auth = request.headers.get("authorization")
        if not auth:
            return self.error(401)
        if auth != f"Bearer {self.secret}":
            return self.error(403)
        return None

    def check(self, request: Request) -> list[str]:
        """Resend's documented rules the spec leaves out."""
        problems = []
        key = request.headers.get("idempotency-key")
        if key is not None and not 1 <= len(key) <= 256:
            problems.append("Idempotency-Key must be 1 to 256 characters")
        try:
            batch = request.json()
        except ValueError:
            return [*problems, "the body is not JSON"]
        if not isinstance(batch, list) or not 1 <= len(batch) <= 100:
            return [*problems, "a batch holds 1 to 100 emails"]
        for i, item in enumerate(batch):
            if not isinstance(item, dict):
                continue
            for name in ("attachments", "scheduled_at"):
                if name in item:
                    problems.append(f"email {i}: `{name}` is not supported in a batch")
            to = item.get("to", [])
            if isinstance(to, list) and len(to) > 50:
                problems.append(f"email {i}: at most 50 recipients")
            for tag in item.get("tags", []):
                for part in ("name", "value"):
                    if not _RESEND_TAG.match(str(tag.get(part, ""))):
                        problems.append(
                            f"email {i}: tag {part} {tag.get(part)!r} may only contain ASCII "
                            "letters, numbers, underscores, or dashes"
                        )
        return problems

    def handle(self, request: Request) -> tuple[Reply, Reply | None]:
        """Answer a known Idempotency-Key from its record, else handle and record."""
        key = request.headers.get("idempotency-key")
        if key is None:
            return super().handle(request)
        digest = hashlib.sha256(request.body).hexdigest()
        with self._lock:
            record = self.records.get(key)
            if record is None:
                self.records[key] = _Record(digest)
        if record is not None:
            with self._lock:
                if self.recording:
                    self.requests.append(request)
            denied = self.check_auth(request)
            if denied is not None:
                return denied, None
            if record.digest != digest:
                return self.error(409, name="invalid_idempotent_request"), None
            if record.reply is None:
                return self.error(409, name="concurrent_idempotent_requests"), None
            return record.reply, None
        wire, processed = super().handle(request)
        with self._lock:
            if processed is not None and processed.status < 300:
                self.records[key].reply = processed
            else:
                # Refused or never processed: no record, the key can be used again.
                del self.records[key]
        return wire, processed

    def accept(self, request: Request) -> Reply:
        """Deliver the valid emails; permissive mode reports the others by index."""
        batch = request.json()
        permissive = request.headers.get("x-batch-validation") == "permissive"
        errors: list[dict[str, Any]] = []
        for index, item in enumerate(batch):
            to = item["to"] if isinstance(item["to"], list) else [item["to"]]
            for address in to:
                if _bare(address) in self.refused or "@" not in address:
                    reason = self.refused.get(_bare(address), "Invalid `to` field.")
                    errors.append({"index": index, "message": reason})
        if errors and not permissive:
            return self.error(422, errors[0]["message"], name="validation_error")
        failed = {error["index"] for error in errors}
        data = []
        for index, item in enumerate(batch):
            if index in failed:
                continue
            to = item["to"] if isinstance(item["to"], list) else [item["to"]]
            headers = {k.lower(): v for k, v in (item.get("headers") or {}).items()}
            headers["from"] = item["from"]
            if item.get("reply_to"):
                headers["reply-to"] = item["reply_to"]
            for address in to:
                self.deliver(
                    {
                        "to": _bare(address),
                        "subject": item["subject"],
                        "text": item.get("text", ""),
                        "html": item.get("html", ""),
                        "headers": dict(headers),
                    }
                )
            data.append({"id": str(uuid.uuid4())})
        body: dict[str, Any] = {"data": data}
        if permissive:
            body["errors"] = errors
        return json_reply(200, body)

    def error(self, status: int, message: str | None = None, **options: Any) -> Reply:
        """Resend's {"statusCode", "name", "message"}; 429 with retry-after and ratelimit-*."""
        defaults = {
            401: ("missing_api_key", "Missing API key in the authorization header."),
            403: ("invalid_api_key", "API key is invalid"),
            409: (
                "invalid_idempotent_request",
                "Same idempotency key used with a different request payload. Change your "
                "idempotency key or payload.",
            ),
            422: ("validation_error", "The `to` field must be a valid email address."),
            429: (
                "rate_limit_exceeded",
                "Too many requests. You can only make 2 requests per second. See rate "
                "limit response headers for more information.",
            ),
            500: ("internal_server_error", "An unexpected error occurred."),
            503: ("application_error", "Service unavailable."),
        }
        name, text = defaults.get(status, ("application_error", "Error"))
        name = options.get("name", name)
        if name == "concurrent_idempotent_requests" and message is None:
            text = (
                "Same idempotency key used while original request is still in progress. "
                "Try the request again later."
            )
        headers = {}
        if status == 429:
            headers = {
                "ratelimit-limit": "2",
                "ratelimit-remaining": "0",
                "ratelimit-reset": str(options.get("reset", 1)),
            }
            if options.get("retry_after") is not None:
                headers["retry-after"] = str(options["retry_after"])
        body = {"statusCode": status, "name": name, "message": message or text}
        return json_reply(status, body, headers)


FAKES: dict[str, type[FakeProvider]] = {
    "postmark": PostmarkFake,
    "sendgrid": SendGridFake,
    "mailgun": MailgunFake,
    "resend": ResendFake,
}


# ----- contract-suite harnesses ---------------------------------------------------------------


Harnessed = tuple[Transport, Callable[[], list[Received]]]


@contextmanager
def provider_harness(provider: str) -> Iterator[Harnessed]:
    """A provider's transport wired to its fake; fails on exit if a request broke the spec."""
    with FAKES[provider]() as fake:
        transport = fake.transport()
        try:
            yield transport, fake.received
        finally:
            transport.close()
        assert not fake.violations, fake.violations


def postmark_harness() -> AbstractContextManager[Harnessed]:
    """Postmark's transport against the Postmark fake."""
    return provider_harness("postmark")


def sendgrid_harness() -> AbstractContextManager[Harnessed]:
    """SendGrid's transport against the SendGrid fake."""
    return provider_harness("sendgrid")


def mailgun_harness() -> AbstractContextManager[Harnessed]:
    """Mailgun's transport against the Mailgun fake."""
    return provider_harness("mailgun")


def resend_harness() -> AbstractContextManager[Harnessed]:
    """Resend's transport against the Resend fake."""
    return provider_harness("resend")


# ----- messages for transport tests ----------------------------------------------------------

UNSUBSCRIBE = Unsubscribe(url="https://example.org/unsubscribe", mailto="unsubscribe@example.org")

# Text a provider could mistake for its own syntax; it must reach readers literally.
LITERALS = (
    "{{ 7*7 }} {% if x %} %recipient.email% %RECIPIENT.t0% %recipient.v1% "
    "-unsub- 100%recipient. [unsubscribe] %unsubscribe_url%"
)
# A distinctive chunk of the HTML, to count how often the HTML travels.
HTML_MARKER = "<style>p{margin:0 0 1em;width:100%}</style>"


def make_content(*, subject: str = "Digest #12: chips & 5G 🚀") -> Content:
    """A rendered issue with every kind of merge slot and provider-lookalike text."""
    return Content(
        subject=subject,
        from_addr="China's Digital Digest <digest@example.org>",
        reply_to="editor@example.org",
        html=MergeText(
            (
                f"<!DOCTYPE html><html><head>{HTML_MARKER}</head><body><p>Hello ",
                "name",
                f",</p><p>{html.escape(LITERALS, quote=False)}</p><p>City: ",
                "fields.city",
                '</p><p>Sent to <a href="mailto:',
                "email",
                '">',
                "email",
                '</a>. <a href="',
                "unsubscribe_url",
                '">Unsubscribe</a></p></body></html>',
            )
        ),
        text=MergeText(
            (
                "Hello ",
                "name",
                f",\n\n{LITERALS}\n\nCity: ",
                "fields.city",
                "\nSent to ",
                "email",
                ". Unsubscribe: ",
                "unsubscribe_url",
                "\n",
            )
        ),
    )


RECIPIENTS = (
    Recipient("alice@example.org", "Alice <b>Bold</b>", {"city": "Zürich & Co"}),
    Recipient("bob@example.net", 'Bob "the builder" & Co', {"city": "%recipient.t0%"}),
    Recipient("carol@example.com", "卡罗尔 🌸", {"city": "Chengdu"}),
)


def make_messages(
    count: int = 3, *, content: Content | None = None, test: bool = False
) -> list[Message]:
    """Messages to `count` recipients (the three above, then plain readers)."""
    content = content or make_content()
    recipients = list(RECIPIENTS[:count])
    recipients += [
        Recipient(f"reader{i}@example.org", f"Reader {i}") for i in range(len(recipients), count)
    ]
    return [
        build_message(
            content,
            recipient,
            token=f"token-{recipient.email.partition('@')[0]}",
            unsubscribe=UNSUBSCRIBE,
            test=test,
            message_id=f"<{i}.fixed@example.org>",
        )
        for i, recipient in enumerate(recipients)
    ]
