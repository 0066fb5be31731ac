"""Running the app under uvicorn: the socket, and an access log without query strings."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any

from digestcli.errors import UsageError


class WithoutQuery(logging.Filter):
    """Drop the query string from uvicorn's access lines: unsubscribe links carry tokens there."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the path argument of an access record; keep every record."""
        args = record.args
        # uvicorn logs access as (client, method, path with query, http version, status).
        if isinstance(args, tuple) and len(args) == 5:
            client, method, path, version, status = args
            record.args = (client, method, str(path).partition("?")[0], version, status)
        return True


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: any free one); a clear error when that fails."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, UnicodeError) as exc:
        raise UsageError(f"cannot listen on {host}:{port} ({exc}); check --host.") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise UsageError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); pick another --port."
        ) from None
    return sock


def run(app: Any, host: str, port: int, *, announce: Callable[[str], None]) -> None:
    """Serve app until Ctrl-C or SIGTERM; announce(url) once the socket listens."""
    import uvicorn

    sock = bind(host, port)
    # server_header off: the uvicorn version is nobody's business.
    config = uvicorn.Config(app, log_level="info", server_header=False)
    # After Config, which (re)configures uvicorn's loggers; the filter then stays for the run.
    logging.getLogger("uvicorn.access").addFilter(WithoutQuery())
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    announce(f"http://{shown}:{bound_port}")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
