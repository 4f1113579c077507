"""A local HTTP receiver that stands in for webhook, Slack and PagerDuty endpoints.

Notice delivery is only worth testing against something that answers like the
real endpoints do — including badly.  This receiver records every request, in
order (method, path, headers, raw body, parsed JSON), and can be told to fail
(``fail_with(503)``) or to be slow (``delay_with(2.0)``) until told otherwise,
so retries, classification and exactly-once delivery are tested over real HTTP.

Design choices, and why:

* Any path is accepted; tests point each channel at its own path (``/webhook``,
  ``/slack``, ``/pagerduty``) and read them apart with :meth:`Receiver.received`.
* With ``hmac_key=``, requests to the signed paths (default ``/webhook``) are
  checked like a careful consumer would: a bad signature is answered 401.
* Delays wait on an event that :meth:`Receiver.stop` sets, so stopping never
  hangs on a slow request.
* It runs in a background thread like :class:`airlock.sandbox.model.ModelServer`,
  or in its own process: ``python -m airlock.sandbox.receiver --port P`` prints
  one JSON line per request.  ``GET /_records`` lists what was received.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from airlock.sandbox._http_server import BackgroundServer, TrackingHTTPServer

RECORDS_PATH = "/_records"
MAX_BODY = 1 << 20  # 1 MiB: far above any notice, small enough to refuse abuse


@dataclass(frozen=True)
class Record:
    """One received request and the status it was answered with."""

    method: str
    path: str  # without the query string
    query: str
    headers: Mapping[str, str]  # names lower-cased
    body: bytes
    json: Any  # the parsed body, or None if it is not JSON
    status: int
    verified: bool | None = None  # the webhook signature check, if one was made

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def describe(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": dict(self.headers),
            "json": self.json,
            "body": None if self.json is not None else self.body.decode("utf-8", errors="replace"),
            "status": self.status,
            "verified": self.verified,
        }


def verify_webhook(record: Record, key: str, *, tolerance: float | None = None, now: float | None = None) -> bool:
    """Whether ``record`` carries a valid ``X-Airlock-Signature`` for ``key``.

    The signature is ``sha256=`` + hex HMAC-SHA256 of ``"{X-Airlock-Timestamp}.{raw body}"``.
    With ``tolerance`` (seconds) and ``now``, a timestamp further than that from ``now``
    also fails, as a consumer guarding against replays would check.
    """
    timestamp = record.header("X-Airlock-Timestamp")
    signature = record.header("X-Airlock-Signature")
    if not timestamp or not signature or not signature.startswith("sha256="):
        return False
    if tolerance is not None and now is not None:
        try:
            if abs(now - float(timestamp)) > tolerance:
                return False
        except ValueError:
            return False
    expected = hmac.new(key.encode(), timestamp.encode() + b"." + record.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(signature.removeprefix("sha256="), expected)


def delivery_key(record: Record) -> str | None:
    """What makes a request one delivery: PagerDuty's ``dedup_key``/``event_action``, else ``Idempotency-Key``."""
    body = record.json
    if isinstance(body, dict) and isinstance(body.get("dedup_key"), str) and isinstance(body.get("event_action"), str):
        return f"{body['dedup_key']}#{body['event_action']}"
    return record.header("Idempotency-Key")


@dataclass
class _State:
    """What the handler threads share; every field is guarded by ``lock``."""

    hmac_key: str | None
    signed_paths: frozenset[str]
    ok_status: int
    on_record: Callable[[Record], None] | None
    lock: threading.Lock = field(default_factory=threading.Lock)
    records: list[Record] = field(default_factory=list)
    fail_status: int | None = None
    delay: float | None = None
    stopping: threading.Event = field(default_factory=threading.Event)


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request would drown test output

    def _send(self, status: int, payload: Any) -> None:
        data = (json.dumps(payload) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():  # trailers
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    raise ValueError("body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # the CRLF after each chunk
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        state = self.server.state
        path, _, query = self.path.partition("?")
        if self.command == "GET" and path == RECORDS_PATH:
            with state.lock:
                records = list(state.records)
            self._send(200, {"records": [r.describe() for r in records]})
            return
        try:
            body = self._read_body()
        except ValueError as exc:
            self.close_connection = True
            self._send(413, {"error": str(exc)})
            return
        try:
            parsed: Any = json.loads(body) if body else None
        except ValueError:
            parsed = None
        headers = {name.lower(): value for name, value in self.headers.items()}
        with state.lock:
            fail_status, delay, key = state.fail_status, state.delay, state.hmac_key
        record = Record(self.command, path, query, headers, body, parsed, state.ok_status)
        verified: bool | None = None
        if key is not None and path in state.signed_paths:
            verified = verify_webhook(record, key)
        if fail_status is not None:
            status = fail_status
        elif verified is False:
            status = 401
        else:
            status = state.ok_status
        record = Record(self.command, path, query, headers, body, parsed, status, verified)
        with state.lock:
            state.records.append(record)
        if state.on_record is not None:
            state.on_record(record)
        if delay:
            state.stopping.wait(delay)
        if 200 <= status < 300:
            self._send(status, {"status": "success", "message": "recorded"})
        elif status == 401:
            self._send(status, {"error": "bad signature"})
        else:
            self._send(status, {"error": f"injected failure {status}"})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


class _HTTPServer(TrackingHTTPServer):
    def __init__(self, address: tuple[str, int], state: _State) -> None:
        self.state = state
        super().__init__(address, _Handler)


class Receiver(BackgroundServer):
    """Records notice deliveries over HTTP; see the module docstring.

    ``ok_status`` is the answer to a request that is neither failed on purpose nor
    badly signed (PagerDuty answers 202, Slack 200; either is a success).
    """

    def __init__(
        self,
        port: int = 0,
        *,
        host: str = "127.0.0.1",
        hmac_key: str | None = None,
        signed_paths: Iterable[str] = ("/webhook",),
        ok_status: int = 202,
        on_record: Callable[[Record], None] | None = None,
    ) -> None:
        self._state = _State(
            hmac_key=hmac_key, signed_paths=frozenset(signed_paths), ok_status=ok_status, on_record=on_record
        )
        super().__init__(host, port)

    thread_name = "receiver"

    def _make_server(self, address: tuple[str, int]) -> TrackingHTTPServer:
        self._state.stopping.clear()
        return _HTTPServer(address, self._state)

    def _stopping(self) -> None:
        self._state.stopping.set()  # wake delayed requests

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    # -- behaviour ------------------------------------------------------------------

    def fail_with(self, status: int | None) -> None:
        """Answer every request with ``status`` (still recording it) until ``fail_with(None)``."""
        if status is not None and not 100 <= status <= 599:
            raise ValueError(f"not an HTTP status: {status}")
        with self._state.lock:
            self._state.fail_status = status

    def delay_with(self, seconds: float | None) -> None:
        """Hold every answer back by ``seconds`` until ``delay_with(None)``; to test timeouts."""
        with self._state.lock:
            self._state.delay = seconds

    def set_hmac_key(self, key: str | None) -> None:
        """Check (or stop checking) webhook signatures from now on."""
        with self._state.lock:
            self._state.hmac_key = key

    def clear(self) -> None:
        """Forget the recorded requests."""
        with self._state.lock:
            self._state.records.clear()

    # -- what was received ------------------------------------------------------------

    @property
    def records(self) -> list[Record]:
        """Every request so far, in arrival order."""
        with self._state.lock:
            return list(self._state.records)

    def received(self, path: str | None = None) -> list[Record]:
        """The requests to ``path`` (all if ``None``), in arrival order, whatever they were answered."""
        return [r for r in self.records if path is None or r.path == path]

    def distinct_keys(self, path: str | None = None) -> list[str]:
        """The distinct deliveries to ``path`` that were *accepted* (2xx), in first-seen order.

        A delivery is told by its ``Idempotency-Key`` header, or for PagerDuty events by
        ``dedup_key`` and ``event_action``; so retries of one notice count once.
        """
        keys: dict[str, None] = {}
        for record in self.received(path):
            key = delivery_key(record)
            if record.accepted and key is not None:
                keys.setdefault(key, None)
        return list(keys)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m airlock.sandbox.receiver",
        description="Receive notices (webhook, Slack, PagerDuty) and print each request as a JSON line.",
    )
    parser.add_argument("--port", type=int, default=0, help="listen port (0: pick a free one)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--hmac-key", default=None, help="check X-Airlock-Signature on /webhook (401 if bad)")
    parser.add_argument("--fail-with", type=int, default=None, metavar="STATUS", help="answer every request so")
    args = parser.parse_args(argv)

    def show(record: Record) -> None:
        print(json.dumps(record.describe()), flush=True)

    receiver = Receiver(args.port, host=args.host, hmac_key=args.hmac_key, on_record=show).start()
    receiver.fail_with(args.fail_with)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"receiving on {receiver.url} (records: {receiver.url}{RECORDS_PATH})", file=sys.stderr, flush=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        receiver.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
