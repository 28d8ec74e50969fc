"""Alertmanager's HTTP API (api/v2/openapi.yaml at v0.34.0): readiness, status, alerts, and its own metrics."""

from __future__ import annotations

from conformance.core.exposition import Sample, parse_samples
from conformance.core.http import NO_RETRY
from conformance.clients.base import ServiceClient


class AlertmanagerClient(ServiceClient):
    """One Alertmanager."""

    def ready(self) -> tuple[bool, str]:
        """GET /-/ready once: (ready, body); 503 while it is still starting."""
        r = self.http.request("GET", "/-/ready", ok=(503,), retry=NO_RETRY)
        return r.status_code == 200, r.text.strip()

    def status(self) -> dict:
        """GET /api/v2/status: {cluster: {status, peers}, versionInfo, config: {original}, uptime}."""
        return self.http.get_json("/api/v2/status")

    def alerts(self, *matchers: str) -> list[dict]:
        """GET /api/v2/alerts with filter matchers (e.g. 'alertname="Watchdog"'): the gettable alerts."""
        return self.http.get_json("/api/v2/alerts", params=[("filter", m) for m in matchers])

    def metrics(self) -> list[Sample]:
        """Its own /metrics (alertmanager_config_last_reload_successful and friends)."""
        return parse_samples(self.http.request("GET", "/metrics").text)
