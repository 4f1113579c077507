"""A TCP relay between one client and the sandbox API server that a test can cut, like a network partition.

``airlock run`` points its kubeconfig at the relay instead of the API server.
:meth:`Relay.cut` blackholes it: bytes stop flowing both ways on open
connections and new connections are accepted but never forwarded — the client
sees requests that never answer (as behind a dead link), not a refusal.
:meth:`Relay.heal` drops the stalled connections (the client reconnects) and
forwards again.  Only that client is cut off: others reach the server directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Self


class Relay:
    def __init__(self, upstream_host: str, upstream_port: int, *, host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.host = host
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._open = asyncio.Event()  # set: forwarding; clear: cut
        self._writers: set[asyncio.StreamWriter] = set()
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, name="sandbox-relay", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise TimeoutError("the relay did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._server is not None:
            self._call(self._close)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def cut(self) -> None:
        """Stop forwarding: open connections stall, new ones are accepted and left hanging."""
        self._call(self._open.clear)

    def heal(self) -> None:
        """Drop the stalled connections and forward again."""
        self._call(self._heal)

    # -- the relay's own loop ------------------------------------------------------------

    def _call(self, fn: object) -> None:
        assert self._loop is not None
        done = threading.Event()

        def run() -> None:
            try:
                fn()  # type: ignore[operator]
            finally:
                done.set()

        self._loop.call_soon_threadsafe(run)
        done.wait(10)

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    async def _start(self) -> None:
        self._open.set()
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    def _heal(self) -> None:
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()
        self._open.set()

    def _close(self) -> None:
        assert self._server is not None
        self._server.close()
        self._heal()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            await self._open.wait()
            if writer.is_closing():
                return  # accepted while cut, dropped by heal(): what it sent is lost
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        self._writers.add(up_writer)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True)
        for w in (writer, up_writer):
            self._writers.discard(w)
            w.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                if not self._open.is_set():
                    await self._open.wait()  # cut: hold the bytes; heal() closes this connection
                    return
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(OSError, RuntimeError):
            writer.write_eof()
