"""HTTP access to one service: bounded timeouts, bounded retries of transient failures, clear errors.

This layer decides what is transient: a connection that fails or times out,
429 and 5xx may change by waiting; any other error status will not. Outside a
wait a call retries those with capped backoff for a budget larger than one
request timeout; inside a wait (`single_attempts`) it tries once and the wait
retries on its own schedule. Every request names the suite in its User-Agent.
"""

from __future__ import annotations

import errno
import json
import re
import ssl
from contextlib import AbstractContextManager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

import httpx
from tenacity import Retrying, retry_if_exception, stop_after_attempt, stop_after_delay, wait_exponential

from conformance.core.redact import redact
from conformance.core.scoped import set_within

BODY_LIMIT = 1000  # characters of an error body kept in messages
HEADLINE_LIMIT = 200  # characters of an error body a headline quotes (the detail keeps BODY_LIMIT)
T = TypeVar("T")
DIST = "monitoring-conformance"


def suite_version() -> str:
    """The suite's version: the installed distribution's, else pyproject.toml's (a checkout)."""
    try:
        return metadata.version(DIST)
    except metadata.PackageNotFoundError:
        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
        found = re.search(r'^version = "([^"]+)"', pyproject.read_text(), re.MULTILINE)
        return found.group(1) if found else "unknown"


# Tells the suite's own requests apart from the system's (the read-only self-tests rely on it).
USER_AGENT = f"{DIST}/{suite_version()}"


@dataclass(frozen=True)
class RetryPolicy:
    """How a single API call retries transient failures (outside a wait)."""

    attempts: int = 4  # Tries in all, the first included.
    delay: float = 0.2  # Pause after the first failure; doubles each time.
    max_delay: float = 2.0  # Cap on one pause.
    budget: float = 30.0  # Seconds after which no new try starts: room for a retry after one 10 s read timeout.


NO_RETRY = RetryPolicy(attempts=1)

_single_attempts: ContextVar[bool] = ContextVar("single_attempts", default=False)


def single_attempts() -> AbstractContextManager[None]:
    """Inside, every call tries once: the caller (a wait) retries transient failures itself."""
    return set_within(_single_attempts, True)


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, httpx.TransportError) or (isinstance(exc, ServiceError) and exc.transient)


def current_policy(default: RetryPolicy) -> RetryPolicy:
    """The policy a call uses now: one attempt inside a wait, else `default`."""
    return NO_RETRY if _single_attempts.get() else default


def with_retries(once: Callable[[], T], policy: RetryPolicy) -> T:
    """Call once() until it returns, retrying transient service errors as the policy allows."""
    retrying = Retrying(
        stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.budget),
        wait=wait_exponential(multiplier=policy.delay, max=policy.max_delay),
        retry=retry_if_exception(_transient),
        reraise=True,
    )
    return retrying(once)


def body_gist(body: str, limit: int = HEADLINE_LIMIT) -> str:
    """An error body in one short line: an HTML page becomes its title, JSON its message, text its first line."""
    text = body.strip()
    if not text:
        return "(empty body)"
    if text[:1] == "<" and re.search(r"<html|<!doctype|<head|<body|<title", text[:500], re.IGNORECASE):
        title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
        heading = re.search(r"<h1[^>]*>(.*?)</h1>", text, re.IGNORECASE | re.DOTALL)
        found = title or heading
        words = re.sub(r"<[^>]+>|\s+", " ", found.group(1)).strip() if found else ""
        return f'an HTML page "{words[:limit]}"' if words else "an HTML page without a title"
    if text[:1] == "{":
        try:
            doc = json.loads(text)
            found = doc.get("message") or doc.get("error") if isinstance(doc, dict) else None
            text = found if isinstance(found, str) and found else text
        except ValueError:  # cut at BODY_LIMIT, or not JSON after all: the quoted message as it stands
            message = re.search(r'"(?:message|error)"\s*:\s*"((?:[^"\\]|\\.)*)"', text)
            text = message.group(1).replace('\\"', '"') if message else text
    first = next((line.strip() for line in text.splitlines() if line.strip()), text)
    return first if len(first) <= limit else first[: limit - 1] + "…"


def connection_problem(exc: BaseException) -> str:
    """Why no answer came, in words (connection refused, timed out, TLS: ..., name not resolved), from any cause chain."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    found: list[str] = []
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, ssl.SSLCertVerificationError):
            found.append(f"TLS: certificate verify failed ({e.verify_message})" if e.verify_message else "TLS: certificate verify failed")
        elif isinstance(e, ssl.SSLError):
            found.append(f"TLS: {e.reason or e}")
        elif isinstance(e, ConnectionRefusedError) or getattr(e, "errno", None) == errno.ECONNREFUSED:
            found.append("connection refused")
        elif isinstance(e, ConnectionResetError):
            found.append("connection reset")
        elif isinstance(e, httpx.ConnectTimeout) or type(e).__name__ == "ConnectTimeoutError":
            found.append("connect timed out")
        elif isinstance(e, (httpx.ReadTimeout, httpx.WriteTimeout)) or type(e).__name__ == "ReadTimeoutError":
            found.append("read timed out")
        elif isinstance(e, (TimeoutError, httpx.TimeoutException)):
            found.append("timed out")
        elif type(e).__name__ == "NameResolutionError" or "Name or service not known" in str(e) or "nodename nor servname" in str(e):
            found.append("host name not resolved")
        elif getattr(e, "errno", None) in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            found.append("no route to host")
        for attr in ("reason", "__cause__", "__context__"):
            nested = getattr(e, attr, None)
            if isinstance(nested, BaseException):
                stack.append(nested)
        stack += [a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]
    if found:
        return found[0]
    text = re.sub(r"<[^>]* at 0x[0-9a-f]+>", "", str(exc)) or type(exc).__name__
    return text if len(text) <= HEADLINE_LIMIT else text[: HEADLINE_LIMIT - 1] + "…"


class ServiceError(Exception):
    """A call to a service gave no usable answer; `transient` says whether waiting may change that."""

    service: str
    transient: bool
    suite_access = False  # the suite's own access is refused (kubeconfig, credentials), not the system's answer

    @property
    def headline(self) -> str:
        raise NotImplementedError

    @property
    def detail(self) -> str:
        return ""

    def __str__(self) -> str:
        return self.headline


class APIError(ServiceError):
    """A service answered with an error status; keeps the status and the server's body."""

    def __init__(self, service: str, method: str, url: str, status: int, body: str) -> None:
        self.service = service
        self.method = method
        self.url = redact(url)
        self.status = status
        self.body = redact(body.strip())[:BODY_LIMIT]
        super().__init__(self.headline)

    @property
    def transient(self) -> bool:
        """True when waiting may change the answer (429, 5xx)."""
        return self.status == 429 or self.status >= 500

    @property
    def path(self) -> str:
        """The request's path without its query, as the headline names the call."""
        return httpx.URL(self.url).path

    @property
    def headline(self) -> str:
        """One line for a check's message: the service, the call, the status and the gist of the body."""
        return f"{self.service} {self.method} {self.path} answered {self.status}: {body_gist(self.body)}"

    @property
    def detail(self) -> str:
        """The whole exchange for the evidence: the call, the status and the (redacted, bounded) body."""
        return f"{self.method} {self.url} -> {self.status}\n{self.body}"


class Unreachable(ServiceError):
    """No answer at all: the connection failed or timed out. Waiting may help; a wait decides."""

    transient = True

    def __init__(self, service: str, url: str, reason: str) -> None:
        self.service = service
        self.url = redact(url)
        self.reason = redact(reason)
        super().__init__(self.headline)

    @property
    def headline(self) -> str:
        return f"{self.service} unreachable at {self.url}: {self.reason}"


@cache
def default_tls() -> ssl.SSLContext:
    """httpx's default context (verifying, its CA bundle), made once: each one reads the bundle, ~65 ms of CPU
    (encode/httpx#838), and a run makes a client per service and cluster."""
    return httpx.create_ssl_context()


@dataclass
class HTTPService:
    """An HTTP API at base_url; every call has a timeout and transient failures are retried."""

    name: str
    base_url: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    auth: httpx.Auth | tuple[str, str] | None = field(default=None, repr=False)  # an httpx.Auth may refresh per request
    verify: Any = True
    cert: Any = None
    timeout: float = 10.0  # Seconds for each of connect, read, write and pool.
    retry: RetryPolicy = RetryPolicy()
    _client: httpx.Client | None = field(default=None, init=False, repr=False)

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                base_url=self.base_url.rstrip("/"),
                headers={"User-Agent": USER_AGENT, **self.headers},
                auth=self.auth,
                verify=default_tls() if self.verify is True and self.cert is None else self.verify,
                cert=self.cert,
                timeout=self.timeout,
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def url(self, path: str) -> str:
        """The full URL of a path under this service."""
        return self.base_url.rstrip("/") + path

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        ok: tuple[int, ...] = (),
        retry: RetryPolicy | None = None,
    ) -> httpx.Response:
        """Send one request; return the response if 2xx or in ok, else raise APIError or Unreachable."""

        def once() -> httpx.Response:
            try:
                response = self.client.request(method, path, params=params, json=json, content=content, headers=headers)
            except httpx.TransportError as e:
                raise Unreachable(self.name, self.url(path), connection_problem(e)) from None
            if response.is_success or response.status_code in ok:
                return response
            raise APIError(self.name, method, str(response.request.url), response.status_code, response.text)

        return with_retries(once, current_policy(retry or self.retry))

    def get_json(self, path: str, params: Any = None, **kw: Any) -> Any:
        """GET a JSON document."""
        return self.request("GET", path, params=params, **kw).json()
