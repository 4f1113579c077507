"""The inspecting reverse proxy of ``airlock guard`` (SPEC §9).

``POST /v1/chat/completions`` and ``POST /v1/completions`` are guarded: the request is
checked (prompt injection, PII), the canary line goes into the system prompt, and the
answer — whole, or streamed as server-sent events — is scanned and, per detector,
observed, redacted or blocked before the client sees it.  Every other request is
passed through untouched (method, headers minus hop-by-hop ones, body, status,
streaming).  All requests go to the route the AISystem's state dictates
(:mod:`airlock.guard.state`): the model, the fallback, or a ``503``.

Guarantees, each tested in ``tests/guard/``:

* Nothing a client sends or an upstream does crashes the proxy; every refusal is in
  the OpenAI error shape and counted under ``airlock_guard_requests_total{outcome}``.
* With ``redact`` or ``block`` set, no text reaches the client unscanned: streamed
  deltas are held back (``ResponseStream``) while they may begin a finding; an
  upstream error body is redacted too; a cut stream ends with its redacted tail and
  an error event; log-probabilities (which spell out the tokens) are dropped.
* ``block`` never sends the offending text: a request is refused before it reaches
  the model; a whole answer is replaced by the error; a stream already started ends
  with an error event and no further model text.
* A stream served by the model ends (error event ``airlock_contained``) as soon as
  the system is contained mid-answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import structlog
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from airlock.api import guard as guard_api
from airlock.api.guard import Mode
from airlock.domain import detectors
from airlock.domain import openai_api as oa
from airlock.domain.guard import Route
from airlock.guard.metrics import GuardMetrics, Outcome
from airlock.guard.state import SystemState

log = structlog.get_logger("airlock.guard")

# RFC 9110 §7.6.1 hop-by-hop headers, plus what aiohttp recomputes for the new message.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
REQUEST_ONLY = frozenset({"expect"})
# Detectors judged on requests (the rest judge answers).  A request's own PII is counted
# (direction=request) but never altered: a customer quoting their own data is the normal case.
REQUEST_DETECTORS = frozenset({detectors.Detector.PROMPT_INJECTION})


def _detectors(modes: dict[guard_api.Detector, Mode], *wanted: Mode) -> set[detectors.Detector]:
    """The detectors in one of ``wanted`` modes, as the detectors module names them (same values)."""
    return {detectors.Detector(d.value) for d, m in modes.items() if m in wanted}


@dataclass(frozen=True)
class Settings:
    upstream: str  # base URL, may carry a path prefix
    fallback: str | None = None
    max_body_bytes: int = 4 * 1024 * 1024
    max_answer_bytes: int = 16 * 1024 * 1024
    connect_timeout: float = 5.0
    # Longest silence from the upstream: before its headers, or between two chunks of an answer.
    upstream_timeout: float = 60.0
    retry_after: int = 30
    stream_window: int = 256


def _forward_headers(headers: CIMultiDictProxy[str], *, drop: Iterable[str] = ()) -> CIMultiDict[str]:
    named = {h.strip().lower() for h in headers.get("Connection", "").split(",") if h.strip()}
    skip = HOP_BY_HOP | named | set(drop)
    out: CIMultiDict[str] = CIMultiDict()
    for key, value in headers.items():
        if key.lower() not in skip:
            out.add(key, value)
    return out


@dataclass
class _Exchange:
    """One guarded request as it passes through."""

    endpoint: oa.Endpoint
    route: Route
    generation: int
    modes: dict[guard_api.Detector, Mode]
    started: float
    spent: float = 0.0  # seconds of the guard's own work so far
    context: Any = None  # detectors.RequestContext
    client_usage: bool = True
    redacted: bool = False
    outcome: Outcome | None = None
    characters: int = 0
    completion_tokens: int | None = None
    finished: dict[int, str] = field(default_factory=dict)
    choices: set[int] = field(default_factory=set)

    enforce: set[detectors.Detector] = field(default_factory=set)  # redact or block
    redact: set[detectors.Detector] = field(default_factory=set)
    block: set[detectors.Detector] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.enforce = _detectors(self.modes, Mode.REDACT, Mode.BLOCK)
        self.redact = _detectors(self.modes, Mode.REDACT)
        self.block = _detectors(self.modes, Mode.BLOCK)


class _Blocked(Exception):
    def __init__(self, findings: list[Any], direction: str) -> None:
        kinds = sorted({f"{f.detector.value} ({f.kind})" for f in findings})
        super().__init__(f"blocked by airlock guard: {', '.join(kinds)} in the {direction}")


class Guard:
    """The aiohttp application of one guard process."""

    def __init__(
        self,
        *,
        settings: Settings,
        state: SystemState,
        metrics: GuardMetrics,
        canary: Any | None = None,  # detectors.Canary
    ) -> None:
        self.settings = settings
        self.state = state
        self.metrics = metrics
        self.canary = canary if canary is not None else detectors.Canary()
        self._session: aiohttp.ClientSession | None = None
        self._bases = {Route.UPSTREAM: settings.upstream.rstrip("/")}
        if settings.fallback:
            self._bases[Route.FALLBACK] = settings.fallback.rstrip("/")

    # -- lifecycle ---------------------------------------------------------------------------

    def app(self) -> web.Application:
        # client_max_size is enforced by our own reader (for an OpenAI-shaped 413); passthrough streams.
        app = web.Application(client_max_size=1 << 62, handler_args={"max_field_size": 65536})
        app.router.add_route("*", "/{tail:.*}", self.handle)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        return app

    async def _start(self, _: web.Application) -> None:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=30, enable_cleanup_closed=True)
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,  # passthrough keeps the upstream's encoding; guarded calls ask for identity
            timeout=aiohttp.ClientTimeout(
                total=None, connect=self.settings.connect_timeout, sock_read=self.settings.upstream_timeout
            ),
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
        )

    async def _stop(self, _: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "the guard's application is not started"
        return self._session

    # -- dispatch ------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        endpoint = oa.ENDPOINTS.get(request.path) if request.method == "POST" else None
        try:
            if endpoint is not None:
                return await self._guarded(request, endpoint)
            return await self._passthrough(request)
        except asyncio.CancelledError:
            raise
        except (ConnectionResetError, aiohttp.ClientConnectionResetError):
            raise
        except Exception as exc:  # the proxy must outlive any single request; this is a bug, logged as one
            log.exception("guard.request_failed", path=request.path, error=str(exc)[:300])
            return _error(500, "airlock_guard_error", "the guard failed on this request; it has been logged")

    def _unavailable(self) -> web.Response:
        return _error(
            503,
            "airlock_contained",
            f"this model is unavailable: {self.state.reason()} (airlock guard, system "
            f"{self.state.namespace}/{self.state.name})",
            headers={"Retry-After": str(self.settings.retry_after)},
        )

    # -- passthrough ---------------------------------------------------------------------------

    async def _passthrough(self, request: web.Request) -> web.StreamResponse:
        route = self.state.route()
        if route is Route.REFUSE:
            return self._unavailable()
        url = self._bases[route] + request.raw_path
        headers = _forward_headers(request.headers)
        data = request.content if request.body_exists else None
        response: web.StreamResponse | None = None
        try:
            async with self.session.request(
                request.method, url, headers=headers, data=data, allow_redirects=False
            ) as upstream:
                response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
                response.headers.extend(_forward_headers(upstream.headers))
                if upstream.headers.get("Content-Length") is not None and "Content-Encoding" not in upstream.headers:
                    response.content_length = int(upstream.headers["Content-Length"])
                await response.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
                return response
        except (TimeoutError, aiohttp.ClientError, ConnectionResetError) as exc:
            if response is not None and response.prepared:
                # Half an answer is already out (or the client left): end the connection, not a second answer.
                response.force_close()
                return response
            if isinstance(exc, TimeoutError):
                return _error(
                    504, "upstream_timeout", f"the upstream did not answer within {self.settings.upstream_timeout:g}s"
                )
            return _error(502, "upstream_unreachable", f"the upstream could not be reached: {type(exc).__name__}")

    # -- guarded requests --------------------------------------------------------------------

    async def _read_body(self, request: web.Request) -> bytes | None:
        limit = self.settings.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            return None
        chunks, size = [], 0
        async for chunk in request.content.iter_any():
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    def _count(self, exchange: _Exchange, outcome: Outcome) -> None:
        exchange.outcome = outcome
        self.metrics.requests[outcome].inc()

    def _invalid(self, exchange: _Exchange, status: int, code: str, message: str) -> web.Response:
        self._count(exchange, Outcome.INVALID)
        return _error(status, code, message)

    async def _guarded(self, request: web.Request, endpoint: oa.Endpoint) -> web.StreamResponse:
        started = time.perf_counter()
        route = self.state.route()
        exchange = _Exchange(
            endpoint=endpoint,
            route=route,
            generation=self.state.generation,
            modes=self.state.modes,
            started=started,
        )
        if route is Route.REFUSE:
            self._count(exchange, Outcome.UNAVAILABLE)
            return self._unavailable()
        raw = await self._read_body(request)
        mark = time.perf_counter()
        if raw is None:
            return self._invalid(
                exchange, 413, "request_too_large", f"the request body is over {self.settings.max_body_bytes} bytes"
            )
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return self._invalid(exchange, 400, "invalid_encoding", f"the request body is not UTF-8 (byte {exc.start})")
        try:
            body = json.loads(text)
        except ValueError as exc:
            return self._invalid(exchange, 400, "invalid_json", f"the request body is not JSON: {exc}")
        problem = oa.validate_request(endpoint, body)
        if problem:
            return self._invalid(exchange, 400, "invalid_request", problem)
        try:
            self._inspect_request(exchange, body)
        except _Blocked as blocked:
            self._count(exchange, Outcome.BLOCKED)
            log.warning("guard.blocked", direction="request", message=str(blocked))
            return _error(400, oa.BLOCKED, str(blocked), type_="invalid_request_error")
        stream = body.get("stream") is True
        if stream:
            exchange.client_usage = oa.want_stream_usage(body)
        payload = json.dumps(body, ensure_ascii=False).encode()
        headers = _forward_headers(request.headers, drop=("accept-encoding", "content-type", *REQUEST_ONLY))
        headers["Content-Type"] = "application/json"
        headers["Accept-Encoding"] = "identity"  # the guard reads the answer
        url = self._bases[route] + request.raw_path
        exchange.spent += time.perf_counter() - mark
        try:
            async with self.session.post(url, data=payload, headers=headers) as upstream:
                if upstream.status >= 400:
                    return await self._relay_error(exchange, upstream)
                content_type = upstream.headers.get("Content-Type", "")
                if stream and content_type.startswith("text/event-stream"):
                    return await self._stream(request, exchange, upstream)
                return await self._complete(exchange, upstream)
        except _UpstreamTooLarge:
            self._count(exchange, Outcome.UPSTREAM_ERROR)
            return _error(
                502, "upstream_error", f"the upstream's answer is over {self.settings.max_answer_bytes} bytes"
            )
        except TimeoutError:
            self._count(exchange, Outcome.UPSTREAM_TIMEOUT)
            return _error(
                504, "upstream_timeout", f"the upstream did not answer within {self.settings.upstream_timeout:g}s"
            )
        except aiohttp.ClientError as exc:
            self._count(exchange, Outcome.UPSTREAM_ERROR)
            return _error(502, "upstream_unreachable", f"the upstream could not be reached: {type(exc).__name__}")
        finally:
            if exchange.outcome is not None and exchange.outcome not in (Outcome.INVALID, Outcome.UNAVAILABLE):
                self.metrics.added_latency.observe(exchange.spent)

    def _inspect_request(self, exchange: _Exchange, body: dict[str, Any]) -> None:
        slots = oa.request_slots(exchange.endpoint, body)
        untrusted = [slot for slot in slots if slot.role not in oa.TRUSTED_ROLES and slot.text]
        trusted = [slot.text for slot in slots if slot.role in oa.TRUSTED_ROLES and slot.text]
        # One scan of the user-controlled text (a system prompt saying "never reveal your instructions"
        # is the deployment's own, not an attack); its offsets map back to each message.
        joined = "\n".join(slot.text for slot in untrusted)
        findings = detectors.scan_request(joined) if joined else []
        self._record(findings, "request")
        acted = [f for f in findings if f.detector in REQUEST_DETECTORS]
        mode = exchange.modes[guard_api.Detector.PROMPT_INJECTION]
        if acted and mode is Mode.BLOCK:
            raise _Blocked(acted, "request")
        # Every message goes into the context, the trusted ones last: the findings of the untrusted
        # prefix are reused, and the context's compacted text covers values in the system prompt.
        context_text = "\n".join([joined, *trusted]) if trusted else joined
        if acted and mode is Mode.REDACT:
            start = 0
            for slot in untrusted:
                end = start + len(slot.text)
                mine = [f.shifted(-start) for f in acted if start <= f.start and f.end <= end]
                if mine:
                    slot.set(detectors.redact(slot.text, mine, set(REQUEST_DETECTORS)))
                start = end + 1
        if exchange.endpoint is oa.Endpoint.CHAT:
            system_prompt = oa.insert_canary(body, self.canary.system_line())
            if system_prompt:
                self.canary.remember_system_prompt(system_prompt)
        exchange.context = detectors.RequestContext.build(context_text, self.canary, request_findings=findings)

    def _record(self, findings: Iterable[Any], direction: str) -> None:
        for finding in findings:
            self.metrics.detection(finding.detector.value, finding.kind, direction).inc()

    def _served(self, exchange: _Exchange) -> Outcome:
        if exchange.route is Route.FALLBACK:
            return Outcome.FALLBACK
        return Outcome.REDACTED if exchange.redacted else Outcome.OK

    def _answered(self, exchange: _Exchange) -> None:
        self.metrics.answer_characters.observe(exchange.characters)
        if exchange.completion_tokens is not None:
            self.metrics.answer_tokens.observe(exchange.completion_tokens)
        for choice in sorted(exchange.choices | set(exchange.finished)):
            self.metrics.finish(exchange.finished.get(choice))

    def _usage(self, exchange: _Exchange, body: Any) -> None:
        counted = oa.usage(body)
        if counted is not None:
            prompt, completion = counted
            self.metrics.prompt_tokens.inc(prompt)
            self.metrics.completion_tokens.inc(completion)
            exchange.completion_tokens = completion

    def _response_headers(self, exchange: _Exchange, upstream: aiohttp.ClientResponse) -> CIMultiDict[str]:
        headers = _forward_headers(upstream.headers, drop=("content-encoding",))
        headers["X-Airlock-Route"] = exchange.route.value
        return headers

    async def _read_answer(self, upstream: aiohttp.ClientResponse) -> bytes:
        limit = self.settings.max_answer_bytes
        if upstream.content_length is not None and upstream.content_length > limit:
            raise _UpstreamTooLarge
        chunks, size = [], 0
        async for chunk in upstream.content.iter_any():
            size += len(chunk)
            if size > limit:
                raise _UpstreamTooLarge
            chunks.append(chunk)
        return b"".join(chunks)

    async def _relay_error(self, exchange: _Exchange, upstream: aiohttp.ClientResponse) -> web.Response:
        raw = await self._read_answer(upstream)
        mark = time.perf_counter()
        self._count(exchange, Outcome.UPSTREAM_ERROR if upstream.status >= 500 else Outcome.UPSTREAM_REJECTED)
        enforce = exchange.enforce
        if enforce and raw:
            # An error body is not an answer, but it may quote one: redact it all the same.
            text = raw.decode("utf-8", errors="replace")
            findings = [f for f in detectors.scan_response(text, context=exchange.context) if f.detector in enforce]
            if findings:
                raw = detectors.redact(text, findings, enforce).encode()
        exchange.spent += time.perf_counter() - mark
        return web.Response(status=upstream.status, body=raw, headers=self._response_headers(exchange, upstream))

    async def _complete(self, exchange: _Exchange, upstream: aiohttp.ClientResponse) -> web.Response:
        raw = await self._read_answer(upstream)
        mark = time.perf_counter()
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = None
        slots = oa.answer_slots(exchange.endpoint, answer)
        if answer is None or (not slots and not isinstance(answer, dict)):
            exchange.spent += time.perf_counter() - mark
            if exchange.enforce:
                self._count(exchange, Outcome.UPSTREAM_ERROR)
                return _error(502, "upstream_error", "the upstream's answer is not the JSON of a completion")
            self._count(exchange, self._served(exchange))
            return web.Response(status=upstream.status, body=raw, headers=self._response_headers(exchange, upstream))
        findings_all: list[Any] = []
        redact = exchange.redact | exchange.block
        for answer_slot in slots:
            text = answer_slot.slot.text
            exchange.characters += len(text)
            exchange.choices.add(answer_slot.choice)
            findings = detectors.scan_response(text, context=exchange.context)
            if not findings:
                continue
            findings_all.extend(findings)
            acted = [f for f in findings if f.detector in redact]
            if acted:
                answer_slot.slot.set(detectors.redact(text, acted, redact))
                exchange.redacted = True
        self._record(findings_all, "response")
        self._usage(exchange, answer)
        for choice, reason in oa.finish_reasons(answer):
            exchange.finished[choice] = reason
        self._answered(exchange)
        blocked = [f for f in findings_all if f.detector in exchange.block]
        if blocked:
            exchange.spent += time.perf_counter() - mark
            self._count(exchange, Outcome.BLOCKED)
            log.warning("guard.blocked", direction="response", message=str(_Blocked(blocked, "answer")))
            return _error(400, oa.BLOCKED, str(_Blocked(blocked, "answer")))
        if exchange.redacted or exchange.enforce:
            oa.drop_logprobs(answer)
            raw = json.dumps(answer, ensure_ascii=False).encode()
        self._count(exchange, self._served(exchange))
        headers = self._response_headers(exchange, upstream)
        exchange.spent += time.perf_counter() - mark
        return web.Response(status=upstream.status, body=raw, headers=headers)

    # -- streams ---------------------------------------------------------------------------------

    async def _stream(
        self, request: web.Request, exchange: _Exchange, upstream: aiohttp.ClientResponse
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=upstream.status, headers=self._response_headers(exchange, upstream))
        relay = _StreamRelay(self, exchange, response)
        try:
            try:
                await response.prepare(request)
            except (ConnectionResetError, aiohttp.ClientConnectionResetError):
                raise _ClientGone from None
            async for chunk in upstream.content.iter_any():
                if not await relay.feed(chunk):
                    break
            await relay.end_of_upstream()
        except _ClientGone:
            relay.client_gone()
        except TimeoutError:
            await relay.cut(Outcome.UPSTREAM_TIMEOUT, "upstream_timeout", "the upstream went silent mid-answer")
        except aiohttp.ClientError:
            await relay.cut(Outcome.UPSTREAM_ERROR, "upstream_error", "the upstream's stream was cut mid-answer")
        return response


class _UpstreamTooLarge(Exception):
    pass


class _ClientGone(Exception):
    """Writing to the client failed: it went away."""


class _StreamRelay:
    """Scans and forwards one SSE answer, event by event; counts its outcome exactly once."""

    def __init__(self, guard: Guard, exchange: _Exchange, response: web.StreamResponse) -> None:
        self.guard = guard
        self.exchange = exchange
        self.response = response
        self.splitter = oa.SSESplitter()
        self.hold = exchange.redact | exchange.block  # detectors whose findings must never be emitted
        self.streams: dict[tuple[int, str], Any] = {}  # (choice, field) -> detectors.ResponseStream
        self.template: dict[str, Any] | None = None  # a chunk's envelope, for synthetic chunks
        self.blocked: list[Any] = []
        self.done = False
        self.ended = False

    async def _write(self, data: bytes) -> None:
        try:
            await self.response.write(data)
        except (ConnectionResetError, aiohttp.ClientConnectionResetError):
            raise _ClientGone from None

    def _state_changed(self) -> bool:
        # Only the model's own answers are cut; a fallback answer may finish after a release.
        state = self.guard.state
        return (
            self.exchange.route is Route.UPSTREAM
            and state.generation != self.exchange.generation
            and state.route() is not Route.UPSTREAM
        )

    async def feed(self, data: bytes) -> bool:
        """Forward what ``data`` completes; False once the answer has ended."""
        for event in self.splitter.feed(data):
            mark = time.perf_counter()
            if self._state_changed():
                await self.contained()
                return False
            out = self._event(event)
            self.exchange.spent += time.perf_counter() - mark
            if out is _BLOCK:
                await self._end_blocked()
                return False
            if out:
                assert isinstance(out, bytes)
                await self._write(out)
            if self.done:
                return False
        return True

    def _event(self, event: bytes) -> bytes | object:
        payload = oa.event_data(event)
        if payload is None:
            return event  # comments, retry hints
        if payload.strip() == b"[DONE]":
            self.done = True
            tails = self._tails()
            return _BLOCK if self.blocked else tails + event
        try:
            chunk = json.loads(payload)
        except ValueError:
            return b"" if self.hold else event
        if not isinstance(chunk, dict):
            return b"" if self.hold else event
        if "error" in chunk:
            self.exchange.outcome = Outcome.UPSTREAM_ERROR
            return event
        self.guard._usage(self.exchange, chunk)
        if oa.is_usage_only(chunk):
            return event if self.exchange.client_usage else b""
        if self.template is None:
            self.template = {k: v for k, v in chunk.items() if k in _ENVELOPE}
        findings: list[Any] = []
        for answer_slot in oa.chunk_slots(self.exchange.endpoint, chunk):
            key = (answer_slot.choice, answer_slot.field)
            scanner = self.streams.get(key)
            if scanner is None:
                scanner = detectors.ResponseStream(
                    context=self.exchange.context, redact=self.hold, window=self.guard.settings.stream_window
                )
                self.streams[key] = scanner
            delta = answer_slot.slot.text
            self.exchange.characters += len(delta)
            self.exchange.choices.add(answer_slot.choice)
            scan = scanner.feed(delta)
            findings.extend(scan.findings)
            if self.hold:
                answer_slot.slot.set(scan.emit)
        tails = b""
        for choice, reason in oa.finish_reasons(chunk):
            self.exchange.finished[choice] = reason
            tail_findings, tail = self._finish(choice)
            findings.extend(tail_findings)
            tails += tail
        self._judge(findings)
        if self.blocked:
            return _BLOCK
        if not self.hold:
            return event
        oa.drop_logprobs(chunk)
        return tails + oa.sse(json.dumps(chunk, ensure_ascii=False).encode())

    def _judge(self, findings: list[Any]) -> None:
        if findings:
            self.guard._record(findings, "response")
            if any(f.detector in self.exchange.redact for f in findings):
                self.exchange.redacted = True
            self.blocked.extend(f for f in findings if f.detector in self.exchange.block)

    def _finish(self, choice: int) -> tuple[list[Any], bytes]:
        """Judge the held-back tails of one choice; the synthetic chunks that emit them."""
        findings: list[Any] = []
        out = b""
        for key in [k for k in self.streams if k[0] == choice]:
            scan = self.streams.pop(key).finish()
            findings.extend(scan.findings)
            if self.hold and scan.emit:
                out += self._synthetic(choice, key[1], scan.emit)
        return findings, out

    def _tails(self) -> bytes:
        """Every choice's held-back tail, judged (sets ``blocked`` if a block detector fires)."""
        findings: list[Any] = []
        out = b""
        for choice in sorted({k[0] for k in self.streams}):
            tail_findings, tail = self._finish(choice)
            findings.extend(tail_findings)
            out += tail
        self._judge(findings)
        return out

    def _synthetic(self, choice: int, field_name: str, text: str) -> bytes:
        body: dict[str, Any]
        if self.exchange.endpoint is oa.Endpoint.COMPLETIONS:
            body = {"index": choice, "text": text, "finish_reason": None}
        else:
            delta: dict[str, Any]
            if field_name.startswith("tool_calls."):
                number = int(field_name.split(".", 1)[1])
                delta = {"tool_calls": [{"index": number, "function": {"arguments": text}}]}
            elif field_name == "function_call":
                delta = {"function_call": {"arguments": text}}
            else:
                delta = {field_name: text}
            body = {"index": choice, "delta": delta, "finish_reason": None}
        chunk = {**(self.template or {}), "choices": [body]}
        return oa.sse(json.dumps(chunk, ensure_ascii=False).encode())

    def _count(self, outcome: Outcome) -> bool:
        if self.ended:
            return False
        self.ended = True
        self.guard._count(self.exchange, outcome)
        self.guard._answered(self.exchange)
        return True

    async def _end_with_error(self, outcome: Outcome, code: str, message: str) -> None:
        if not self._count(outcome):
            return
        log.warning("guard.stream_ended", outcome=outcome.value, code=code, message=message)
        error = json.dumps(oa.error_body(code, message)).encode()
        try:
            await self.response.write(oa.sse(error))
            await self.response.write_eof()
        except (ConnectionResetError, aiohttp.ClientConnectionResetError):
            pass

    async def _end_blocked(self) -> None:
        await self._end_with_error(Outcome.BLOCKED, oa.BLOCKED, str(_Blocked(self.blocked, "answer")))

    async def end_of_upstream(self) -> None:
        """The upstream closed the stream (or [DONE] came): fine after [DONE], a cut otherwise."""
        if self.ended:
            return
        if not self.done:
            await self.cut(Outcome.UPSTREAM_ERROR, "upstream_error", "the upstream's stream ended before [DONE]")
            return
        self._count(self.exchange.outcome or self.guard._served(self.exchange))
        with contextlib.suppress(ConnectionResetError, aiohttp.ClientConnectionResetError):
            await self.response.write_eof()

    async def cut(self, outcome: Outcome, code: str, message: str) -> None:
        """End early: the judged (and redacted) tails first, then an error event."""
        if self.ended:
            return
        tails = self._tails()
        if self.blocked:
            await self._end_blocked()
            return
        if tails:
            try:
                await self._write(tails)
            except _ClientGone:
                self.client_gone()
                return
        await self._end_with_error(outcome, code, message)

    async def contained(self) -> None:
        """The system was contained mid-answer: not one more character of this model's text."""
        self.streams.clear()
        await self._end_with_error(
            Outcome.UNAVAILABLE, "airlock_contained", "the system was contained during this answer"
        )

    def client_gone(self) -> None:
        self._count(Outcome.CLIENT_CLOSED)


_BLOCK = object()
# The fields of a chunk that a synthetic chunk (a held-back tail) repeats.
_ENVELOPE = frozenset({"id", "object", "created", "model", "system_fingerprint", "service_tier"})


def _error(
    status: int, code: str, message: str, *, type_: str = "airlock_guard", headers: dict[str, str] | None = None
) -> web.Response:
    body = json.dumps(oa.error_body(code, message, type_=type_))
    return web.Response(status=status, text=body, content_type="application/json", headers=headers)
