"""digest.toml and the environment turned into frozen settings."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from digestcli.errors import ConfigError
from digestcli.transports.registry import is_kind, kinds

SMTP_SECURITY = ("starttls", "ssl", "none")
# Who hosts the unsubscribe link: digest's signed links, or the sending provider (DESIGN §1).
UNSUBSCRIBE_MODES = ("digest", "provider")


@dataclass(frozen=True)
class Publication:
    """Who publishes the digest and where its footer points."""

    name: str
    from_addr: str
    address: str
    reply_to: str | None = None
    web_url: str | None = None


@dataclass(frozen=True)
class Unsubscribe:
    """Where readers unsubscribe: an https URL and an optional mailto address, or the provider."""

    # Empty only while loading: {serve.url}/unsubscribe fills it in when [serve] url is set.
    # Also empty in provider mode without a URL: the provider's own link replaces it.
    url: str = ""
    mailto: str | None = None
    mode: str = "digest"

    @property
    def by_provider(self) -> bool:
        """Whether the sending provider hosts the unsubscribe link and its headers."""
        return self.mode == "provider"


@dataclass(frozen=True)
class TransportSettings:
    """Which transport sends, and its non-secret settings."""

    kind: str = "outbox"
    base_url: str | None = None
    timeout: float = 30.0
    domain: str | None = None
    message_stream: str = "broadcast"
    host: str = "localhost"
    port: int | None = None
    security: str = "starttls"
    username: str | None = None
    batch_size: int | None = None
    # SendGrid's unsubscribe group, used with [unsubscribe] mode = "provider".
    asm_group_id: int | None = None


@dataclass(frozen=True)
class SendingSettings:
    """How fast and how wide a batch send goes."""

    rate: float = 0.0
    requests_per_second: float = 0.0
    concurrency: int = 4


@dataclass(frozen=True)
class ServeSettings:
    """Where `digest serve` is reachable from the internet, when it runs somewhere."""

    url: str | None = None


@dataclass(frozen=True)
class BounceSettings:
    """How readers' bounces count."""

    soft_limit: int = 3


@dataclass(frozen=True)
class ArchiveSettings:
    """Where `digest publish` writes the site, and how much of it the feed carries."""

    # A folder, relative to the workspace unless absolute; None: site/ in the workspace.
    out: str | None = None
    feed_entries: int = 20


@dataclass(frozen=True)
class FeedSettings:
    """The sources `digest collect` follows, and how carefully pages and feeds are fetched."""

    urls: tuple[str, ...] = ()
    timeout: float = 10.0  # seconds per request, connect to last byte
    max_bytes: int = 5_000_000  # a page or feed larger than this is refused


@dataclass(frozen=True)
class Settings:
    """Everything digest.toml says."""

    path: Path
    publication: Publication
    unsubscribe: Unsubscribe
    transport: TransportSettings = field(default_factory=TransportSettings)
    sending: SendingSettings = field(default_factory=SendingSettings)
    serve: ServeSettings = field(default_factory=ServeSettings)
    bounces: BounceSettings = field(default_factory=BounceSettings)
    archive: ArchiveSettings = field(default_factory=ArchiveSettings)
    feeds: FeedSettings = field(default_factory=FeedSettings)


# TOML key -> dataclass field, where they differ.
_RENAMES = {"from": "from_addr"}


def _section(data: dict[str, Any], name: str, cls: type[Any], path: Path, *, required: bool) -> Any:
    raw = data.get(name)
    if raw is None:
        if required:
            raise ConfigError(
                f"{path}: the [{name}] section is missing; add it (see `digest init`)."
            )
        return cls()
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: `{name}` must be a table, written [{name}].")
    known = {f.name: f for f in fields(cls)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        attr = _RENAMES.get(key, key)
        if attr not in known or key in _RENAMES.values():
            raise ConfigError(
                f"{path}: unknown key `{key}` in [{name}]; "
                f"known keys are {', '.join(sorted(_toml_name(k) for k in known))}."
            )
        values[attr] = _check_type(value, known[attr].type, f"{name}.{key}", path)
    try:
        return cls(**values)
    except TypeError as exc:
        missing = [_toml_name(f.name) for f in fields(cls) if f.name not in values and _required(f)]
        raise ConfigError(
            f"{path}: [{name}] is missing {', '.join(f'`{m}`' for m in missing)}; add it."
        ) from exc


def _toml_name(attr: str) -> str:
    for key, value in _RENAMES.items():
        if value == attr:
            return key
    return attr


def _required(f: Any) -> bool:
    from dataclasses import MISSING

    return bool(f.default is MISSING and f.default_factory is MISSING)


def _check_type(value: Any, annotation: Any, where: str, path: Path) -> Any:
    text = str(annotation)
    if "float" in text and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if "int" in text and isinstance(value, int) and not isinstance(value, bool):
        return value
    if "str" in text and isinstance(value, str):
        if "\n" in value or "\r" in value:
            raise ConfigError(f"{path}: `{where}` must be one line; remove the line break.")
        return value
    expected = "a number" if ("int" in text or "float" in text) else "a string"
    raise ConfigError(f"{path}: `{where}` must be {expected}, not {value!r}.")


_TOP = (
    "publication",
    "unsubscribe",
    "transport",
    "sending",
    "serve",
    "bounces",
    "archive",
    "feeds",
)
# Plain http is fine only where nobody else can listen: a serve on this machine.
_LOOPBACK = ("http://127.0.0.1", "http://localhost", "http://[::1]")


def load_settings(path: Path) -> Settings:
    """Read and validate a digest.toml file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: not found; run `digest init` to create a workspace.") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text; save it as UTF-8.") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc}); fix that line.") from exc
    for key in data:
        if key not in _TOP:
            raise ConfigError(f"{path}: unknown key `{key}`; known sections are {', '.join(_TOP)}.")
    publication = _section(data, "publication", Publication, path, required=True)
    transport = _section(data, "transport", TransportSettings, path, required=False)
    sending = _section(data, "sending", SendingSettings, path, required=False)
    serve = _serve(data, path)
    bounces = _section(data, "bounces", BounceSettings, path, required=False)
    unsubscribe = _unsubscribe(data, serve, path)
    archive = _section(data, "archive", ArchiveSettings, path, required=False)
    if not is_kind(transport.kind):
        raise ConfigError(
            f"{path}: [transport] kind `{transport.kind}` is not one of {', '.join(kinds())}."
        )
    if transport.security not in SMTP_SECURITY:
        raise ConfigError(
            f"{path}: [transport] security must be one of {', '.join(SMTP_SECURITY)}."
        )
    if transport.asm_group_id is not None and transport.asm_group_id < 1:
        raise ConfigError(
            f"{path}: [transport] asm_group_id must be a SendGrid unsubscribe group id (1 or more)."
        )
    if sending.concurrency < 1:
        raise ConfigError(f"{path}: [sending] concurrency must be at least 1.")
    if sending.rate < 0:
        raise ConfigError(f"{path}: [sending] rate must be 0 (provider default) or more.")
    if sending.requests_per_second < 0:
        raise ConfigError(
            f"{path}: [sending] requests_per_second must be 0 (provider default) or more."
        )
    if bounces.soft_limit < 1:
        raise ConfigError(f"{path}: [bounces] soft_limit must be at least 1.")
    if archive.feed_entries < 1:
        raise ConfigError(f"{path}: [archive] feed_entries must be at least 1.")
    feeds = _feeds(data, path)
    return Settings(
        path, publication, unsubscribe, transport, sending, serve, bounces, archive, feeds
    )


def _feeds(data: dict[str, Any], path: Path) -> FeedSettings:
    """[feeds]: a list of URLs (which _section cannot check) and the fetch limits."""
    raw = data.get("feeds", {})
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: `feeds` must be a table, written [feeds].")
    urls = raw.get("urls", [])
    if not isinstance(urls, list) or not all(isinstance(url, str) for url in urls):
        raise ConfigError(f'{path}: [feeds] urls must be a list of strings, like ["https://..."].')
    rest = {key: value for key, value in raw.items() if key != "urls"}
    settings: FeedSettings = _section({"feeds": rest}, "feeds", FeedSettings, path, required=False)
    if settings.timeout <= 0:
        raise ConfigError(f"{path}: [feeds] timeout must be more than 0 seconds.")
    if settings.max_bytes < 1:
        raise ConfigError(f"{path}: [feeds] max_bytes must be at least 1.")
    return replace(settings, urls=tuple(urls))


def _serve(data: dict[str, Any], path: Path) -> ServeSettings:
    serve: ServeSettings = _section(data, "serve", ServeSettings, path, required=False)
    if serve.url is None:
        return serve
    url = serve.url.rstrip("/")
    if not url.startswith("https://") and not any(
        url == base or url.startswith((f"{base}:", f"{base}/")) for base in _LOOPBACK
    ):
        raise ConfigError(
            f"{path}: [serve] url must start with https:// (plain http only on this machine)."
        )
    return ServeSettings(url=url)


def _unsubscribe(data: dict[str, Any], serve: ServeSettings, path: Path) -> Unsubscribe:
    given = serve.url is None or "unsubscribe" in data
    unsubscribe: Unsubscribe = _section(data, "unsubscribe", Unsubscribe, path, required=given)
    if unsubscribe.mode not in UNSUBSCRIBE_MODES:
        raise ConfigError(
            f'{path}: [unsubscribe] mode must be "digest" or "provider", not {unsubscribe.mode!r}.'
        )
    if unsubscribe.url:
        if not unsubscribe.url.startswith("https://"):
            raise ConfigError(f"{path}: [unsubscribe] url must start with https://.")
        return unsubscribe
    if serve.url is None and unsubscribe.by_provider:
        return unsubscribe  # the provider's link stands in for digest's
    if serve.url is None:
        raise ConfigError(
            f"{path}: [unsubscribe] url is missing; add it, or set [serve] url "
            "to have `digest serve` answer the unsubscribe links."
        )
    return replace(unsubscribe, url=f"{serve.url}/unsubscribe")
