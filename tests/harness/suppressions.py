"""Local fakes of the four providers' suppression lists, over real sockets.

Each fake is a threaded HTTP server on 127.0.0.1 holding entries per list and answering
GETs the way its provider pages them: SendGrid by limit/offset with start_time, Mailgun by
paging.next URLs until an empty page, Resend by the `after` cursor and has_more, Postmark's
suppressions dump and its bounces by count/offset (count + offset <= 10,000). Requests (and
the fake's own answers) are validated against the specs in ../shared/specs where one covers
the endpoint: SendGrid's suppressions spec, Mailgun's and Resend's. Mailgun's spec marks
`page`, `address` and `term` required; providers.md says they are optional (the first page
has none), so the fake validates against a copy with them optional; the copy also types the
RFC 822 `created_at` as the string its own examples send (the spec says `object`).

`fault(n, reply)` answers the n-th request (1-based) with `reply` instead: a 429 mid-paging.
`break_list(name, status)` makes one list answer an error always: a failing source.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import functools
import json
import re
import threading
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlencode, urlsplit

from openapi_core import OpenAPI
from openapi_core.configurations import Config
from openapi_core.testing import MockRequest, MockResponse

from digestcli.transports.http import HTTPTransport
from digestcli.transports.mailgun import MailgunTransport
from digestcli.transports.postmark import PostmarkTransport
from digestcli.transports.resend import ResendTransport
from digestcli.transports.sendgrid import SendGridTransport
from fakes import store
from harness.providers import (
    SECRETS,
    SPECS,
    LocalServer,
    Reply,
    Request,
    SpecMissing,
    _explain,
    in_ci,
    json_reply,
    raw_spec,
)
from harness.workspaces import copy_workspace

REPO = Path(__file__).resolve().parents[2]
SPEC_FILES = {
    "sendgrid": "sendgrid-suppressions.openapi.json",
    "mailgun": "mailgun.openapi.patched.yaml",
    "resend": "resend.openapi.json",
}
_MAILGUN_LISTS = ("bounces", "complaints", "unsubscribes")


def has_spec(provider: str) -> bool:
    """Whether the spec covering this provider's suppression API is there (in CI it must be)."""
    if provider not in SPEC_FILES:
        return False
    path = SPECS / SPEC_FILES[provider]
    if path.is_file():
        return True
    if in_ci():
        raise SpecMissing(f"{path.resolve()} is missing: in CI the fake must validate against it.")
    return False


@functools.cache
def suppression_openapi(provider: str) -> OpenAPI:
    """An openapi-core validator for the provider's suppression endpoints (built once)."""
    if provider == "sendgrid":
        spec: Any = json.loads((SPECS / SPEC_FILES[provider]).read_text(encoding="utf-8"))
    else:
        spec = copy.deepcopy(raw_spec(provider))
    if provider == "mailgun":
        for name in _MAILGUN_LISTS:
            for param in spec["paths"][f"/v3/{{domain_name}}/{name}"]["get"]["parameters"]:
                if param["name"] in ("page", "address", "term"):
                    param["required"] = False
        # The spec types created_at as an object whose allOf is the RFC 822 string; its own
        # examples (and Mailgun) send the string.
        schemas = spec["components"]["schemas"]
        schemas["github.com-mailgun-mime-RFC822Time"] = {"type": "string"}
        for schema in schemas.values():
            created = (schema.get("properties") or {}).get("created_at") or {}
            if "allOf" in created:
                created.pop("type", None)
    return OpenAPI.from_dict(spec, config=Config(spec_validator_cls=None))


class SuppressionFake(LocalServer):
    """A local server speaking one provider's suppression-list API; a context manager."""

    provider: ClassVar[str]
    transport_cls: ClassVar[type[HTTPTransport]]
    host_url: ClassVar[str]

    def __init__(self, *, validate: bool = True, record: bool = True) -> None:
        # Before the server opens its socket: in CI a missing spec raises here.
        self.validating = validate and has_spec(self.provider)
        super().__init__()
        self.secret = SECRETS[self.provider]
        self.recording = record
        self.lists: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.requests: list[Request] = []
        self.violations: list[str] = []
        self.faults: dict[int, Reply] = {}
        self.broken: dict[str, int] = {}
        self.count = 0
        self._lock = threading.Lock()

    def fault(self, number: int, reply: Reply) -> None:
        """Answer the number-th request from now on (1-based, counted overall) with reply."""
        with self._lock:
            self.faults[self.count + number] = reply

    def break_list(self, name: str, status: int = 500) -> None:
        """Make one list answer this error status every time."""
        self.broken[name] = status

    def paths(self) -> list[str]:
        """The path and query of every request received, in order."""
        with self._lock:
            return [r.path for r in self.requests]

    def read(self, request: Request) -> Reply:
        """Every request to these fakes is a read (GET): answer it like any other."""
        return self.dispatch(request)

    def dispatch(self, request: Request) -> Reply:
        """The answer to one request: a scripted fault, a refusal, or the page asked for."""
        with self._lock:
            self.count += 1
            if self.recording:
                self.requests.append(request)
            fault = self.faults.pop(self.count, None)
        if fault is not None:
            return fault
        if request.method != "GET":
            return json_reply(405, {"message": "Method Not Allowed"})
        if not self.authorised(request):
            return json_reply(401, {"message": "Unauthorized"})
        parts = urlsplit(request.path)
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        mock = MockRequest(
            self.host_url, "get", parts.path, args=query, headers=dict(request.headers)
        )
        if self.validating:
            result = suppression_openapi(self.provider).unmarshal_request(mock)
            if result.errors:
                problems = [f"spec: {_explain(e)}" for e in result.errors]
                with self._lock:
                    self.violations.extend(problems)
                return json_reply(400, {"message": "; ".join(problems)})
        try:
            reply = self.answer(parts.path, query)
        except (KeyError, ValueError) as exc:
            return json_reply(400, {"message": f"bad request: {exc}"})
        if self.validating and reply.status == 200:
            response = MockResponse(reply.body, status_code=200, content_type="application/json")
            checked = suppression_openapi(self.provider).unmarshal_response(mock, response)
            if checked.errors:
                with self._lock:
                    self.violations.extend(f"response: {_explain(e)}" for e in checked.errors)
        return reply

    def authorised(self, request: Request) -> bool:
        """Whether the request carries this fake's secret as the provider expects it."""
        return request.headers.get("authorization") == f"Bearer {self.secret}"

    def answer(self, path: str, query: dict[str, str]) -> Reply:
        """The provider's answer to a well-formed, authorised GET."""
        raise NotImplementedError


def _unix(at: dt.datetime) -> int:
    return int(at.timestamp())


class SendGridSuppressions(SuppressionFake):
    """/v3/suppression/{list}: newest first, limit <= 500 and offset, start_time/end_time."""

    provider = "sendgrid"
    transport_cls = SendGridTransport
    host_url = "https://api.sendgrid.com"

    def add(self, list_name: str, email: str, created: int, **extra: Any) -> None:
        """One entry on a list."""
        self.lists[list_name].append({"created": created, "email": email, **extra})

    def answer(self, path: str, query: dict[str, str]) -> Reply:
        """A bare JSON array: the page asked for (a group's: every address, no paging)."""
        group = re.fullmatch(r"/v3/asm/groups/(\d+)/suppressions", path)
        if group:
            return json_reply(200, [e["email"] for e in self.lists[f"asm_group:{group[1]}"]])
        list_name = path.removeprefix("/v3/suppression/")
        if list_name in self.broken:
            return json_reply(self.broken[list_name], {"errors": [{"message": "internal error"}]})
        if list_name not in ("bounces", "blocks", "spam_reports", "invalid_emails", "unsubscribes"):
            return json_reply(404, {"errors": [{"message": "not found"}]})
        start = int(query.get("start_time", 0))
        end = int(query.get("end_time", 2**62))
        limit = int(query.get("limit", 500))
        offset = int(query.get("offset", 0))
        entries = sorted(
            (e for e in self.lists[list_name] if start <= e["created"] <= end),
            key=lambda e: -int(e["created"]),
        )
        return json_reply(200, entries[offset : offset + limit])


def rfc822(at: dt.datetime) -> str:
    """Mailgun's spelling of a time: "Thu, 11 Dec 2025 01:49:40 UTC"."""
    return at.astimezone(dt.UTC).strftime("%a, %d %b %Y %H:%M:%S UTC")


class MailgunSuppressions(SuppressionFake):
    """/v3/{domain}/{list}: pages by address, next URLs until an empty page; no time filter."""

    provider = "mailgun"
    transport_cls = MailgunTransport
    host_url = "https://api.mailgun.net"
    domain = "mg.example.org"

    def authorised(self, request: Request) -> bool:
        """HTTP Basic api:<key>."""
        expected = base64.b64encode(f"api:{self.secret}".encode()).decode()
        return request.headers.get("authorization") == f"Basic {expected}"

    def add(self, list_name: str, address: str, created: dt.datetime, **extra: Any) -> None:
        """One entry on a list."""
        self.lists[list_name].append({"address": address, "created_at": rfc822(created), **extra})

    def answer(self, path: str, query: dict[str, str]) -> Reply:
        """{"items", "paging"}: entries after `address` when page=next."""
        _, _, domain, list_name = path.split("/")
        if domain != self.domain or list_name not in _MAILGUN_LISTS:
            return json_reply(404, {"message": "not found"})
        if list_name in self.broken:
            return json_reply(self.broken[list_name], {"message": "internal error"})
        limit = int(query.get("limit", 100))
        if limit > 1000:
            return json_reply(400, {"message": "limit must be at most 1000"})
        entries = sorted(self.lists[list_name], key=lambda e: str(e["address"]))
        after = query.get("address", "") if query.get("page") == "next" else ""
        items = [e for e in entries if str(e["address"]) > after][:limit]
        last = str(items[-1]["address"]) if items else after
        base = f"{self.url}/v3/{domain}/{list_name}"
        paging = {
            "first": f"{base}?{urlencode({'page': 'first', 'limit': limit})}",
            "last": f"{base}?{urlencode({'page': 'last', 'limit': limit})}",
            "next": f"{base}?{urlencode({'page': 'next', 'address': last, 'limit': limit})}",
            "previous": f"{base}?{urlencode({'page': 'previous', 'address': after})}",
        }
        return json_reply(200, {"items": items, "paging": paging})


class ResendSuppressions(SuppressionFake):
    """/suppressions: newest first, limit <= 100, `after` an id, has_more."""

    provider = "resend"
    transport_cls = ResendTransport
    host_url = "https://api.resend.com"

    def add(self, email: str, origin: str, created: dt.datetime) -> str:
        """One suppression; returns its id."""
        ident = str(uuid.uuid4())
        stamp = created.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "+00"
        self.lists["suppressions"].append(
            {
                "id": ident,
                "email": email,
                "origin": origin,
                "source_id": str(uuid.uuid4()),
                "created_at": stamp,
            }
        )
        return ident

    def answer(self, path: str, query: dict[str, str]) -> Reply:
        """{"object": "list", "has_more", "data"}."""
        if path != "/suppressions":
            return json_reply(404, {"statusCode": 404, "name": "not_found", "message": "Not found"})
        if "suppressions" in self.broken:
            return json_reply(
                self.broken["suppressions"], {"statusCode": 500, "name": "internal_server_error"}
            )
        limit = int(query.get("limit", 20))
        entries = sorted(self.lists["suppressions"], key=lambda e: str(e["created_at"]))[::-1]
        start = 0
        if "after" in query:
            ids = [e["id"] for e in entries]
            start = ids.index(query["after"]) + 1
        data = entries[start : start + limit]
        more = start + limit < len(entries)
        return json_reply(200, {"object": "list", "has_more": more, "data": data})


class PostmarkSuppressions(SuppressionFake):
    """The stream's suppressions dump (fromdate) and /bounces (count <= 500, offset)."""

    provider = "postmark"
    transport_cls = PostmarkTransport
    host_url = "https://api.postmarkapp.com"
    stream = "broadcast"

    def authorised(self, request: Request) -> bool:
        """The server token header."""
        return request.headers.get("x-postmark-server-token") == self.secret

    def suppress(self, email: str, reason: str, created: dt.datetime, origin: str = "") -> None:
        """One suppressed address of the stream."""
        self.lists["suppressions"].append(
            {
                "EmailAddress": email,
                "SuppressionReason": reason,
                "Origin": origin or ("Recipient" if reason != "ManualSuppression" else "Customer"),
                "CreatedAt": created.astimezone(dt.UTC).isoformat(),
            }
        )

    def bounce(self, email: str, kind: str, at: dt.datetime, *, inactive: bool = False) -> None:
        """One bounce."""
        bounces = self.lists["bounces"]
        bounces.append(
            {
                "ID": len(bounces) + 1,
                "Type": kind,
                "Email": email,
                "BouncedAt": at.astimezone(dt.UTC).isoformat(),
                "Inactive": inactive,
                "MessageID": str(uuid.uuid4()),
                "Tag": "",
            }
        )

    def answer(self, path: str, query: dict[str, str]) -> Reply:
        """The dump (no paging) or a page of bounces, from `fromdate` (a date, inclusive)."""
        since = query.get("fromdate", "")
        if path == f"/message-streams/{self.stream}/suppressions/dump":
            if "suppressions" in self.broken:
                return json_reply(
                    self.broken["suppressions"], {"ErrorCode": 0, "Message": "internal error"}
                )
            found = [e for e in self.lists["suppressions"] if e["CreatedAt"][:10] >= since]
            return json_reply(200, {"Suppressions": found})
        if path != "/bounces":
            return json_reply(404, {"ErrorCode": 0, "Message": "not found"})
        if "bounces" in self.broken:
            return json_reply(self.broken["bounces"], {"ErrorCode": 0, "Message": "internal error"})
        count, offset = int(query["count"]), int(query["offset"])
        if count > 500 or count + offset > 10_000:
            return json_reply(422, {"ErrorCode": 609, "Message": "count and offset too large"})
        found = [e for e in self.lists["bounces"] if e["BouncedAt"][:10] >= since][::-1]
        return json_reply(
            200, {"TotalCount": len(found), "Bounces": found[offset : offset + count]}
        )


def sync_workspace(
    root: Path, fake: SuppressionFake, *, subscribers: int = 0, extra: str = ""
) -> Path:
    """A workspace whose transport is the fake's provider at the fake, with a store of
    `subscribers` active readers user0@example.org..."""
    config = (REPO / "digest.toml").read_text(encoding="utf-8")
    domain = f'\ndomain = "{MailgunSuppressions.domain}"' if fake.provider == "mailgun" else ""
    config = config.replace(
        '[transport]\nkind = "outbox"',
        f'[transport]\nkind = "{fake.provider}"\nbase_url = "{fake.url}"\ntimeout = 10{domain}'
        + extra,
    )
    copy_workspace(root, config=config)
    store(root / ".digest" / "digest.db", subscribers).close()
    return root
