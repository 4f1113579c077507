"""The threading HTTP server of the sandbox's stand-ins (model server, notice receiver).

Clients keep connections alive (Prometheus scrapes, aiohttp), so a stopped server
would go on answering over them: connections are tracked and shut down on stop, so
a stopped stand-in looks like a dead endpoint, as an outage test needs.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self


class TrackingHTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # a hung client must not block interpreter exit

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that drops its kept-alive connection (a proxy closing its pool, a killed
        # operator) is how HTTP clients behave, not a server fault: no traceback for it.
        exc = sys.exception()
        if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections, self._connections = self._connections, set()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class BackgroundServer:
    """A :class:`TrackingHTTPServer` in a daemon thread; ``stop()`` then ``start()`` comes back on the same port.

    Subclasses build the server (``_make_server``) and may wake their own waiters on stop (``_stopping``).
    """

    thread_name = "sandbox-server"

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._requested_port = port
        self._httpd: TrackingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def _make_server(self, address: tuple[str, int]) -> TrackingHTTPServer:
        raise NotImplementedError

    def _stopping(self) -> None:
        """Called first thing in :meth:`stop` (e.g. to wake requests that are waiting)."""

    def start(self) -> Self:
        if self._httpd is None:
            self._httpd = self._make_server((self._host, self._requested_port))
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.1},
                name=f"{self.thread_name}-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop open connections; ``start()`` again reuses the same port."""
        if self._httpd is not None:
            # A restart must come back on the same port: clients (Prometheus) keep the address.
            self._requested_port = self.port
            self._stopping()
            self._httpd.shutdown()
            # Connections first: server_close() joins the handler threads, which would
            # otherwise wait on idle keep-alive connections.
            self._httpd.close_connections()
            self._httpd.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._httpd = None
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return int(self._httpd.server_address[1])
