"""HTTP access to one service: bounded timeouts, bounded retries of transient failures, clear errors.

Connection errors, 429 and 5xx are retried with capped backoff; any other
error status raises APIError carrying the status and the server's own body.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import httpx
from tenacity import Retrying, retry_if_exception, stop_after_attempt, stop_after_delay, wait_exponential

from conformance.outcomes import PreconditionUnmet
from conformance.redact import redact

BODY_LIMIT = 1000  # characters of an error body kept in messages


@dataclass(frozen=True)
class RetryPolicy:
    """How a single API call retries transient failures."""

    attempts: int = 4  # Tries in all, the first included.
    delay: float = 0.2  # Pause after the first failure; doubles each time.
    max_delay: float = 2.0  # Cap on one pause.
    budget: float = 10.0  # Seconds after which no new try starts.


NO_RETRY = RetryPolicy(attempts=1)


class APIError(Exception):
    """A service answered with an error status; keeps the status and the server's body."""

    def __init__(self, service: str, method: str, url: str, status: int, body: str) -> None:
        self.service = service
        self.method = method
        self.url = redact(url)
        self.status = status
        self.body = redact(body.strip())[:BODY_LIMIT]
        super().__init__(str(self))

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

    def __str__(self) -> str:
        return self.headline


class Unreachable(PreconditionUnmet):
    """The service could not be reached at all after the retries; waiting longer will not help."""

    def __init__(self, service: str, url: str, reason: str) -> None:
        self.service = service
        self.url = redact(url)
        self.reason = redact(reason)
        super().__init__(f"conformance → {service}", f"{service} unreachable at {self.url}: {self.reason}")

    def __str__(self) -> str:
        return self.diagnosis


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, httpx.TransportError):
        return True
    return isinstance(exc, APIError) and exc.transient


@dataclass
class HTTPService:
    """An HTTP API at base_url; every call has a timeout and transient failures are retried."""

    name: str
    base_url: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    auth: tuple[str, str] | None = field(default=None, repr=False)
    verify: Any = True
    cert: Any = None
    timeout: float = 10.0
    retry: RetryPolicy = RetryPolicy()
    _client: httpx.Client | None = field(default=None, init=False, repr=False)

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                base_url=self.base_url.rstrip("/"),
                headers=dict(self.headers),
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
        policy = retry or self.retry

        def once() -> httpx.Response:
            response = self.client.request(method, path, params=params, json=json, content=content, headers=headers)
            if response.is_success or response.status_code in ok:
                return response
            raise APIError(self.name, method, str(response.request.url), response.status_code, response.text)

        retrying = Retrying(
            stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.budget),
            wait=wait_exponential(multiplier=policy.delay, max=policy.max_delay),
            retry=retry_if_exception(_transient),
            reraise=True,
        )
        try:
            return retrying(once)
        except httpx.TransportError as e:
            raise Unreachable(self.name, self.url(path), f"{type(e).__name__}: {e}") from None

    def get_json(self, path: str, params: Any = None, **kw: Any) -> Any:
        """GET a JSON document."""
        return self.request("GET", path, params=params, **kw).json()
