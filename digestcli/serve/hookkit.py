"""What every webhook reader shares: refusals, keys, clocks, JSON and the fields of payloads."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable, Mapping
from email.utils import parseaddr
from typing import Any

from digestcli.events import Event

# A delivery timestamped further than this from the receiving clock is refused (DESIGN §10).
TOLERANCE = 300.0
DETAIL_MAX = 200

# provider -> reader: (headers, body, env, now) -> events; raises WebhookRefused.
Reader = Callable[[Mapping[str, str], bytes, Mapping[str, str], float], list[Event]]

_UNIX = re.compile(r"[0-9]{1,12}")
# Unix seconds digest accepts as an event time: 2000-01-01 .. 2100-01-01.
_EARLIEST, _LATEST = 946_684_800.0, 4_102_444_800.0


class WebhookRefused(Exception):
    """A webhook delivery digest will not record: the HTTP status to answer, and why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def require_key(env: Mapping[str, str], name: str, provider: str) -> str:
    """The webhook key in env[name], or a 404 saying which variable to set."""
    value = env.get(name, "").strip()
    if not value:
        raise WebhookRefused(404, f"no webhook key configured for {provider}; set {name}")
    return value


def unusable_key(name: str, provider: str, expected: str) -> WebhookRefused:
    """The 404 for a key that is set but cannot be used (its value never appears)."""
    return WebhookRefused(
        404, f"no usable webhook key configured for {provider}; {name} must be {expected}"
    )


def header(headers: Mapping[str, str], name: str) -> str:
    """A header digest needs to verify a delivery, or a 401 naming it (never its value)."""
    value = headers.get(name, "").strip()
    if not value:
        raise WebhookRefused(401, f"missing {name} header")
    return value


def check_fresh(stamp: str, now: float) -> None:
    """Refuse a delivery signed more than five minutes away from now (a replay, or a bad clock)."""
    if not _UNIX.fullmatch(stamp):
        raise WebhookRefused(401, "the signature timestamp is not Unix seconds")
    if abs(int(stamp) - now) > TOLERANCE:
        raise WebhookRefused(401, "the signature timestamp is more than 5 minutes from now")


def parse_json(body: bytes) -> object:
    """The JSON of a verified body, or a 400."""
    try:
        return json.loads(body)
    # RecursionError: "[[[[..." nested deeper than the parser's stack.
    except (ValueError, RecursionError):
        raise WebhookRefused(400, "the body is not JSON") from None


def obj(value: object, what: str) -> dict[str, Any]:
    """value as a JSON object, or a 400 naming what it should have been."""
    if not isinstance(value, dict):
        raise WebhookRefused(400, f"{what} is not a JSON object")
    return value


def text(data: Mapping[str, object], key: str, what: str) -> str:
    """A required non-empty string field, or a 400."""
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise WebhookRefused(400, f"{what} has no {key}")
    return value.strip()


def optional_text(data: Mapping[str, object], key: str) -> str:
    """A string field when it is one, else empty (numbers too: ids are sometimes numbers)."""
    value = data.get(key)
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return ""


def address(value: str, what: str) -> str:
    """The bare address of "Name <a@b>" or "a@b", or a 400 when it is not one."""
    _, bare = parseaddr(value)
    bare = bare.strip()
    if "@" not in bare or any(c.isspace() for c in bare) or len(bare) > 320:
        raise WebhookRefused(400, f"{what} is not an email address")
    return bare


def iso_from_unix(value: object, what: str) -> str:
    """Unix seconds (a number, or its text) as ISO 8601 UTC, or a 400."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise WebhookRefused(400, f"{what} is not a time") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise WebhookRefused(400, f"{what} is not a time")
    seconds = float(value)
    if not math.isfinite(seconds) or not _EARLIEST <= seconds <= _LATEST:
        raise WebhookRefused(400, f"{what} is not a time")
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="seconds")


def iso_from_text(value: object, what: str) -> str:
    """An ISO 8601 time with any offset (none means UTC) as ISO 8601 UTC, or a 400."""
    if not isinstance(value, str):
        raise WebhookRefused(400, f"{what} is not a time")
    try:
        # Python 3.11 reads "Z" and Postmark's seven fractional digits.
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise WebhookRefused(400, f"{what} is not a time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    try:
        return moment.astimezone(dt.UTC).isoformat(timespec="seconds")
    except OverflowError:
        raise WebhookRefused(400, f"{what} is not a time") from None


def short(detail: object) -> str:
    """A provider's reason on one line, at most DETAIL_MAX characters."""
    if not isinstance(detail, str):
        return ""
    line = " ".join(detail.split())
    return line if len(line) <= DETAIL_MAX else line[: DETAIL_MAX - 1] + "…"


def when(value: object, what: str, now: float, parse: Callable[[object, str], str]) -> str:
    """The event's own time read by parse; the receiving time when the provider leaves it out."""
    if value is None or value == "":
        return dt.datetime.fromtimestamp(now, dt.UTC).isoformat(timespec="seconds")
    return parse(value, what)
