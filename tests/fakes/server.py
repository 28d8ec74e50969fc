"""A loopback HTTP server base for the contract-faithful fakes.

Each fake subclasses FakeServer, registers routes, and answers with the real
server's status codes, headers and bodies. Every request is recorded, with its
User-Agent, so tests can assert who sent what (for example, that --read-only
sent no write from the suite, while the log agents go on pushing).
"""

from __future__ import annotations

import json
import re
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class Request:
    """One request as the fake received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # named groups of the route pattern
    raw_query: str = ""  # the query string exactly as sent (for fakes that forward requests)

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The first value of a query parameter (or form field for form-encoded POSTs)."""
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    @property
    def is_write(self) -> bool:
        return self.method in WRITE_METHODS

    @property
    def user_agent(self) -> str:
        """Who sent it: the suite (monitoring-conformance/<version>), a log agent, ..."""
        return next((v for k, v in self.headers.items() if k.lower() == "user-agent"), "")


@dataclass
class Response:
    """What a handler returns."""

    status: int = 200
    body: bytes | str | dict | list | None = None
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, (dict, list)):
            return json.dumps(self.body).encode(), self.content_type or "application/json"
        if isinstance(self.body, str):
            return self.body.encode(), self.content_type or "text/plain; charset=utf-8"
        return self.body or b"", self.content_type or "text/plain; charset=utf-8"


Handler = Callable[[Request], Response]


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (its read timeout) before a slow answer is not a server error.
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


class FakeServer:
    """A threaded HTTP server on 127.0.0.1 with a free port; use as a context manager."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.bind_port = 0  # 0: a free port; a fake that restarts (FakeKiali) keeps its own

    # -- routes --------------------------------------------------------------
    def route(self, method: str, pattern: str, handler: Handler) -> None:
        """Answer METHOD requests whose path fully matches the regex pattern."""
        self._routes.append((method, re.compile(pattern), handler))

    def not_found(self, request: Request) -> Response:
        """The answer for an unknown path; subclasses mimic their server's 404."""
        return Response(404, "404 page not found\n")

    # -- lifecycle -----------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._httpd, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeServer":
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _serve(self) -> None:
                fake.serve(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

        self._httpd = _HTTPServer(("127.0.0.1", self.bind_port), _Handler)
        # A short poll interval keeps stop() (shutdown) fast in tests.
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "FakeServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the request loop ----------------------------------------------------
    def serve(self, handler: BaseHTTPRequestHandler) -> None:
        """One request: record it, answer it, write the answer (unless answer() took the connection over)."""
        request = self.received(handler)
        response = self.answer(request, handler)
        if response is not None:
            write_response(handler, response)

    def received(self, handler: BaseHTTPRequestHandler) -> Request:
        """The handler's request read (with a form body's fields in its query) and recorded."""
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        split = urlsplit(handler.path)
        query = parse_qs(split.query, keep_blank_values=True)
        if handler.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            for k, v in parse_qs(body.decode(), keep_blank_values=True).items():
                query.setdefault(k, []).extend(v)
        request = Request(handler.command, split.path, query, dict(handler.headers.items()), body,
                          raw_query=split.query)
        with self._lock:
            self.requests.append(request)
        return request

    def answer(self, request: Request, handler: BaseHTTPRequestHandler) -> Response | None:
        """The routed answer; a fake that upgrades a connection (a websocket, a tunnel) serves it here, answering None."""
        return self.dispatch(request)

    # -- dispatch ------------------------------------------------------------
    def dispatch(self, request: Request) -> Response:
        path_matched = False
        for method, pattern, handler in self._routes:
            m = pattern.fullmatch(request.path)
            if not m:
                continue
            path_matched = True
            if method != request.method and not (method == "GET" and request.method == "HEAD"):
                continue
            request.params = m.groupdict()
            return handler(request)
        if path_matched:
            return Response(405, "405 method not allowed\n")
        return self.not_found(request)

    def writes(self) -> list[Request]:
        """Every recorded request that could change state."""
        with self._lock:
            return [r for r in self.requests if r.is_write]

    def sent_by(self, user_agent: str) -> list[Request]:
        """Every recorded request whose User-Agent is user_agent."""
        with self._lock:
            return [r for r in self.requests if r.user_agent == user_agent]


def write_response(handler: BaseHTTPRequestHandler, response: Response) -> None:
    """The answer on the wire: status, Content-Type, Content-Length, its headers, and its body (none for HEAD)."""
    payload, ctype = response.encoded()
    handler.send_response(response.status)
    handler.send_header("Content-Type", ctype)
    handler.send_header("Content-Length", str(len(payload)))
    for k, v in response.headers.items():
        handler.send_header(k, v)
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(payload)
