"""Transports by name: the class registered under a kind, and the factory a send uses."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING

from digestcli.errors import ConfigError
from digestcli.transports.registry import BUILT_IN, ENTRY_POINT_GROUP, is_kind, kinds, plugins

__all__ = ["BUILT_IN", "ENTRY_POINT_GROUP", "Factory", "factory", "is_kind", "kinds"]

if TYPE_CHECKING:
    from digestcli.config import TransportSettings
    from digestcli.transports.base import Capabilities, Transport


def transport_class(kind: str) -> type[Transport]:
    """The Transport class registered under kind."""
    from digestcli.transports.base import Transport

    if not is_kind(kind):
        raise ConfigError(f"unknown transport `{kind}`; choose one of {', '.join(kinds())}.")
    target = BUILT_IN.get(kind) or plugins()[kind]
    module_name, _, attr = target.partition(":")
    try:
        cls = getattr(import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"the transport `{kind}` ({target}) cannot be loaded: {exc}.") from None
    if not (isinstance(cls, type) and issubclass(cls, Transport)):
        raise ConfigError(f"the transport `{kind}` ({target}) is not a digest Transport class.")
    return cls


@dataclass(frozen=True)
class Factory:
    """Makes new, unopened transports of one kind; what they can do is known without one."""

    kind: str
    make: Callable[[], Transport]
    capabilities: Capabilities
    batch_size: int
    # The request rate to keep: configured, else the provider's documented default.
    requests_per_second: float

    def __call__(self) -> Transport:
        """A new, unopened transport."""
        return self.make()


def factory(
    settings: TransportSettings,
    env: Mapping[str, str],
    *,
    outbox_dir: Path,
    requests_per_second: float = 0.0,
) -> Factory:
    """The factory of the configured transport; an unknown kind is a ConfigError."""
    cls = transport_class(settings.kind)
    caps = cls.capabilities
    return Factory(
        kind=settings.kind,
        make=lambda: cls.from_settings(settings, env, outbox_dir=outbox_dir),
        capabilities=caps,
        batch_size=caps.batch_size(settings.batch_size),
        requests_per_second=requests_per_second or caps.requests_per_second,
    )
