"""HTTP access to one service: bounded timeouts, bounded retries of transient failures, clear errors.

This layer decides what is transient: a connection that fails or times out,
429 and 5xx may change by waiting; any other error status will not. Outside a
wait a call retries those with capped backoff for a budget larger than one
request timeout; inside a wait (`single_attempts`) it tries once and the wait
retries on its own schedule. Every request names the suite in its User-Agent.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator, Mapping

import httpx
from tenacity import Retrying, retry_if_exception, stop_after_attempt, stop_after_delay, wait_exponential

from conformance.redact import redact

BODY_LIMIT = 1000  # characters of an error body kept in messages
DIST = "monitoring-conformance"


def suite_version() -> str:
    """The suite's version: the installed distribution's, else pyproject.toml's (a checkout)."""
    try:
        return metadata.version(DIST)
    except metadata.PackageNotFoundError:
        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
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


@contextmanager
def single_attempts() -> Iterator[None]:
    """Inside, every call tries once: the caller (a wait) retries transient failures itself."""
    token = _single_attempts.set(True)
    try:
        yield
    finally:
        _single_attempts.reset(token)


class ServiceError(Exception):
    """A call to a service gave no usable answer; `transient` says whether waiting may change that."""

    service: str
    transient: bool

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
        return httpx.URL(self.url).path

    @property
    def headline(self) -> str:
        first = self.body.splitlines()[0] if self.body else "(empty body)"
        return f"{self.service} {self.method} {self.path} answered {self.status}: {first}"

    @property
    def detail(self) -> str:
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


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, httpx.TransportError) or (isinstance(exc, ServiceError) and exc.transient)


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
                verify=self.verify,
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
        policy = NO_RETRY if _single_attempts.get() else (retry or self.retry)

        def once() -> httpx.Response:
            try:
                response = self.client.request(method, path, params=params, json=json, content=content, headers=headers)
            except httpx.TransportError as e:
                raise Unreachable(self.name, self.url(path), f"{type(e).__name__}: {e}") from None
            if response.is_success or response.status_code in ok:
                return response
            raise APIError(self.name, method, str(response.request.url), response.status_code, response.text)

        retrying = Retrying(
            stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.budget),
            wait=wait_exponential(multiplier=policy.delay, max=policy.max_delay),
            retry=retry_if_exception(_transient),
            reraise=True,
        )
        return retrying(once)

    def get_json(self, path: str, params: Any = None, **kw: Any) -> Any:
        """GET a JSON document."""
        return self.request("GET", path, params=params, **kw).json()
