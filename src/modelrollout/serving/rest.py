"""REST adapter: TF Serving's HTTP/JSON API and ``/metrics`` on a small asyncio HTTP/1.1 server.

A hand-written server instead of aiohttp: the whole job is "read one request
with Content-Length (or chunked) body, answer one JSON response", and doing it
on asyncio streams costs a fraction of a framework's per-request overhead.
Keep-alive, ``Expect: 100-continue``, chunked request bodies, size limits and
graceful draining are handled; errors map to HTTP statuses in one place.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from modelrollout.serving import restcodec
from modelrollout.serving.dataplane import DataPlane, State
from modelrollout.serving.errors import InvalidArgument, ServingError

log = logging.getLogger(__name__)

_REASONS = {
    100: "Continue",
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}
_JSON = b"application/json"
_METRICS = b"text/plain; version=0.0.4; charset=utf-8"
_MAX_HEADER_BYTES = 64 * 1024


_MODEL_METHODS = frozenset({"predict", "classify", "regress"})


@dataclass
class _Pending:
    """A request whose head is read: its route, start time and admission slot."""

    method: str
    path: str
    route: restcodec.Route | None
    start: float
    admitted: bool = False


class HttpError(Exception):
    """A request that cannot be read; answered and the connection closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class RestServer:
    """TF Serving's REST paths over one data plane."""

    def __init__(
        self,
        plane: DataPlane,
        *,
        host: str,
        port: int,
        max_body_bytes: int,
        idle_timeout_s: float = 75.0,
        max_connections: int = 1024,
        reuse_port: bool = False,
        metrics_text: Callable[[], Awaitable[str]] | None = None,
    ) -> None:
        self.plane = plane
        self.reuse_port = reuse_port
        self.metrics_text = metrics_text
        """Renders ``/metrics`` (default: this process's own metrics)."""
        self.host = host
        self.port = port
        self.max_body_bytes = max_body_bytes
        self.idle_timeout_s = idle_timeout_s
        self.max_connections = max_connections
        self.server: asyncio.Server | None = None
        self.closing = False
        self._idle: set[asyncio.StreamWriter] = set()
        self._connections: set[asyncio.Task[None]] = set()
        self._metadata_cache: bytes | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(
            self._connection,
            self.host,
            self.port,
            limit=_MAX_HEADER_BYTES,
            backlog=1024,
            reuse_port=self.reuse_port or None,
        )
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self, grace_s: float) -> None:
        """Stop accepting, close idle keep-alive connections, let busy ones finish."""
        self.closing = True
        if self.server is not None:
            self.server.close()
        for writer in list(self._idle):
            writer.close()
        if self._connections:
            _, pending = await asyncio.wait(self._connections, timeout=grace_s)
            for task in pending:
                task.cancel()

    # -- connection handling ------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._connections) >= self.max_connections:
            body = _error_body(f"more than {self.max_connections} open connections")
            writer.write(_response(503, _JSON, body, False))
            writer.close()
            return
        self._connections.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self._idle.discard(writer)
            self._connections.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        while not self.closing:
            self._idle.add(writer)
            # An idle or slow client (headers or body) is disconnected after the idle timeout.
            timer = loop.call_later(self.idle_timeout_s, writer.transport.close)
            refused: ServingError | None = None
            try:
                head = await reader.readuntil(b"\r\n\r\n")
                self._idle.discard(writer)
                method, target, keep_alive, headers = _parse_head(head)
                # Admission before the body is read: a saturated server holds at most
                # max_concurrency request bodies in memory, however many clients send.
                try:
                    pending = self._begin(method, target)
                except ServingError as err:
                    refused = err
                    keep_alive = keep_alive and await self._discard_body(reader, headers)
                else:
                    body = await self._read_body(pending, reader, writer, headers)
            except asyncio.LimitOverrunError:
                writer.write(_response(431, _JSON, _error_body("request headers too large"), False))
                return
            except HttpError as err:
                writer.write(_response(err.status, _JSON, _error_body(str(err)), False))
                await writer.drain()
                return
            finally:
                timer.cancel()
                self._idle.discard(writer)
            if refused is not None:
                answer = (refused.http_status, _JSON, _error_body(refused.message))
            else:
                answer = await self.dispatch(pending, body)
            if not await self._write(writer, answer, keep_alive and not self.closing):
                return

    async def _write(
        self, writer: asyncio.StreamWriter, answer: tuple[int, bytes, bytes], keep_alive: bool
    ) -> bool:
        """Send a response; False when the connection is to be closed."""
        writer.write(_response(*answer, keep_alive))
        if not keep_alive or writer.transport.get_write_buffer_size() > 65536:
            await writer.drain()
        return keep_alive

    async def _read_body(
        self,
        pending: _Pending,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        headers: dict[str, str],
    ) -> bytes:
        try:
            return await self._body(reader, writer, headers)
        except BaseException:
            self._finish(pending, None)
            raise

    async def _discard_body(self, reader: asyncio.StreamReader, headers: dict[str, str]) -> bool:
        """Drop a refused request's body in small reads; False if the connection must close."""
        length_text = headers.get("content-length", "0").strip()
        if "transfer-encoding" in headers or "expect" in headers or not length_text.isdigit():
            return False
        left = int(length_text)
        if left > self.max_body_bytes:
            return False
        while left:
            left -= len(await reader.readexactly(min(left, 65536)))
        return True

    async def _body(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, headers: dict[str, str]
    ) -> bytes:
        if headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return await _read_chunked(reader, self.max_body_bytes)
        length_text = headers.get("content-length", "0").strip()
        if not length_text.isdigit():
            raise HttpError(400, f"invalid Content-Length {length_text!r}")
        length = int(length_text)
        if length > self.max_body_bytes:
            raise HttpError(413, f"request body of {length} bytes exceeds {self.max_body_bytes}")
        return await reader.readexactly(length) if length else b""

    # -- routing -----------------------------------------------------------
    def _begin(self, http_method: str, target: str) -> _Pending:
        """Route a request line and, for model calls, take an admission slot."""
        path = target.split("?", 1)[0]
        route = None if path == "/metrics" else restcodec.parse_path(http_method, path)
        pending = _Pending(http_method, path, route, time.perf_counter())
        if route is not None and route.method in _MODEL_METHODS:
            try:
                self.plane.admit()
            except ServingError as err:
                self._finish(pending, err.code)
                raise
            pending.admitted = True
        return pending

    def _finish(self, pending: _Pending, code: str | None) -> None:
        """Release the admission slot; count the request (``code`` None: not answered)."""
        if pending.admitted:
            pending.admitted = False
            self.plane.release()
        if pending.route is not None and code is not None:
            elapsed = time.perf_counter() - pending.start
            self.plane.metrics.record(pending.route.method, "rest", code, elapsed)

    async def dispatch(self, pending: _Pending, body: bytes) -> tuple[int, bytes, bytes]:
        """Answer one request: (status, content type, body)."""
        if pending.path == "/metrics" and pending.method == "GET":
            if self.metrics_text is not None:
                return 200, _METRICS, (await self.metrics_text()).encode()
            return 200, _METRICS, self.plane.metrics.render().encode()
        if pending.route is None:
            status = 400 if pending.path.startswith("/v1/") else 404
            message = f"Malformed request: {pending.method} {pending.path}"
            return status, _JSON, _error_body(message)
        code = "OK"
        try:
            status, payload = await self._route(pending.route, body)
            return status, _JSON, payload
        except ServingError as err:
            code = err.code
            return err.http_status, _JSON, _error_body(err.message)
        finally:
            self._finish(pending, code)

    async def _route(self, route: restcodec.Route, body: bytes) -> tuple[int, bytes]:
        plane = self.plane
        if route.method == "status":
            entries = plane.status(route.spec)
            ready = entries[0].state is State.AVAILABLE
            return (200 if ready else 503), _dumps(restcodec.status_body(entries))
        if route.method == "metadata":
            version, signatures = plane.metadata(route.spec)
            if self._metadata_cache is None:
                self._metadata_cache = _dumps(
                    restcodec.metadata_body(
                        plane.name, version, signatures, plane.runtime_metadata()
                    )
                )
            return 200, self._metadata_cache
        obj = restcodec.load_object(body)
        signature_name = obj.get("signature_name", "")
        if not isinstance(signature_name, str):
            raise InvalidArgument("'signature_name' must be a string")
        spec = replace(route.spec, signature_name=signature_name)
        if route.method == "predict":
            x, columnar = restcodec.predict_request(obj)
            outputs = await plane.predict(spec, x)
            return 200, _dumps(restcodec.predict_response(outputs, columnar))
        x = plane.resolve(spec).examples_to_rows(restcodec.examples(obj))
        if route.method == "classify":
            labels, scores, predicted = await plane.classify(spec, x)
            return 200, _dumps(restcodec.classify_response(labels, scores, predicted))
        values = await plane.regress(spec, x)
        return 200, _dumps({"results": np.asarray(values).tolist()})


def _dumps(value: Any) -> bytes:
    return restcodec.dumps(value)


def _error_body(message: str) -> bytes:
    return _dumps({"error": message})


def _parse_head(head: bytes) -> tuple[str, str, bool, dict[str, str]]:
    """Request line and headers; keep-alive per HTTP/1.0 and 1.1 rules."""
    try:
        text = head.decode("latin-1")
        request_line, *lines = text[:-4].split("\r\n")
        method, target, version = request_line.split(" ", 2)
    except ValueError as err:
        raise HttpError(400, "malformed request line") from err
    headers: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep:
            raise HttpError(400, f"malformed header line {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    connection = headers.get("connection", "").lower()
    keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
    return method, target, keep_alive, headers


async def _read_chunked(reader: asyncio.StreamReader, limit: int) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError as err:
            raise HttpError(400, "malformed chunk size") from err
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass  # trailers
            return b"".join(parts)
        total += size
        if total > limit:
            raise HttpError(413, f"request body exceeds {limit} bytes")
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


def _response(status: int, ctype: bytes, body: bytes, keep_alive: bool) -> bytes:
    reason = _REASONS.get(status, "Unknown")
    connection = b"keep-alive" if keep_alive else b"close"
    return b"".join(
        (
            f"HTTP/1.1 {status} {reason}\r\n".encode(),
            b"Content-Type: ",
            ctype,
            b"\r\nContent-Length: ",
            str(len(body)).encode(),
            b"\r\nConnection: ",
            connection,
            b"\r\n\r\n",
            body,
        )
    )
