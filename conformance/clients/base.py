"""What every service client is: one service's HTTP API, named as messages name it."""

from __future__ import annotations

from conformance.core.http import HTTPService


class ServiceClient:
    """A client of one service's HTTP API (every call bounded, every error a ServiceError: conformance/core/http.py)."""

    def __init__(self, http: HTTPService) -> None:
        self.http = http

    @property
    def name(self) -> str:
        """How messages name the service, e.g. 'oke Prometheus'."""
        return self.http.name
