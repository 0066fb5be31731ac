"""A minimal, fast SMTP sink on 127.0.0.1 for benchmarks: accepts everything, counts it.

It runs in its own process (its CPU is not the sender's), answers commands in order (so a
pipelining client gets its replies in order), offers PIPELINING, 8BITMIME and SMTPUTF8, and
counts messages, recipients, distinct recipients and bytes. Not a test double: the tests use
aiosmtpd (tests/harness/smtp.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import resource
import time
from collections import Counter
from multiprocessing.connection import Connection
from typing import Any

_EHLO = (
    b"250-sink.localhost\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
    b"250 SIZE 104857600\r\n"
)


class Sink:
    """The counters of one sink."""

    def __init__(self) -> None:
        self.messages = 0
        self.bytes_in = 0
        self.rcpts: Counter[str] = Counter()
        self.first = 0.0
        self.last = 0.0

    def stats(self) -> dict[str, Any]:
        """The counters as plain data."""
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "messages": self.messages,
            "recipients": sum(self.rcpts.values()),
            "unique": len(self.rcpts),
            "duplicates": sum(1 for n in self.rcpts.values() if n > 1),
            "bytes_in": self.bytes_in,
            "first": self.first,
            "last": self.last,
            "cpu": usage.ru_utime + usage.ru_stime,
        }

    async def session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One SMTP session: commands in order, one reply each."""
        writer.write(b"220 sink.localhost ESMTP\r\n")
        rcpts: list[str] = []
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                verb = line[:4].upper()
                if verb in (b"EHLO",):
                    writer.write(_EHLO)
                elif verb == b"HELO":
                    writer.write(b"250 sink.localhost\r\n")
                elif verb == b"MAIL":
                    rcpts = []
                    writer.write(b"250 OK\r\n")
                elif verb == b"RCPT":
                    start, end = line.find(b"<"), line.find(b">")
                    rcpts.append(line[start + 1 : end].decode("utf-8", "replace").lower())
                    writer.write(b"250 OK\r\n")
                elif verb == b"DATA":
                    writer.write(b"354 go ahead\r\n")
                    await writer.drain()
                    data = await reader.readuntil(b"\r\n.\r\n")
                    now = time.time()
                    self.first = self.first or now
                    self.last = now
                    self.messages += 1
                    self.bytes_in += len(data)
                    self.rcpts.update(rcpts)
                    writer.write(b"250 2.0.0 OK queued\r\n")
                elif verb == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    await writer.drain()
                    break
                else:  # RSET, NOOP and anything else
                    rcpts = [] if verb == b"RSET" else rcpts
                    writer.write(b"250 OK\r\n")
                # Flush only when the client has nothing more buffered: replies to a
                # pipelined group go out together, as a real server's do.
                if not reader._buffer:  # type: ignore[attr-defined]
                    await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()


def serve(send: Connection, control: Connection) -> None:
    """Run a sink until told to stop; send its port, then answer `stats` and `reset` requests."""
    sink = Sink()

    async def main() -> None:
        server = await asyncio.start_server(
            sink.session, "127.0.0.1", 0, limit=64 * 1024 * 1024, backlog=256
        )
        send.send(server.sockets[0].getsockname()[1])
        loop = asyncio.get_running_loop()
        while True:
            request = await loop.run_in_executor(None, control.recv)
            if request == "stats":
                control.send(sink.stats())
            elif request == "reset":
                sink.__init__()  # type: ignore[misc]
                control.send(True)
            else:
                control.send(True)
                server.close()
                return

    asyncio.run(main())


class SinkProcess:
    """An SMTP sink in its own process on 127.0.0.1."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        receive, send = context.Pipe(duplex=False)
        self.control, theirs = context.Pipe()
        self.process = context.Process(target=serve, args=(send, theirs), daemon=True)
        self.process.start()
        if not receive.poll(30):
            self.process.kill()
            raise RuntimeError("the SMTP sink did not start")
        self.port: int = receive.recv()

    def stats(self) -> dict[str, Any]:
        """The sink's counters."""
        self.control.send("stats")
        data: dict[str, Any] = self.control.recv()
        return data

    def reset(self) -> None:
        """Zero the counters."""
        self.control.send("reset")
        self.control.recv()

    def close(self) -> None:
        """Stop the sink; kill it if it does not stop."""
        with contextlib.suppress(OSError, EOFError):
            self.control.send("stop")
            self.control.poll(5) and self.control.recv()
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()

    def __enter__(self) -> SinkProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if __name__ == "__main__":
    with SinkProcess() as sink:
        print(f"SMTP sink on 127.0.0.1:{sink.port} (pid {os.getpid()}); Ctrl-C to stop")
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(1)
