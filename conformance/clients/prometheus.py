"""Prometheus HTTP API (docs/querying/api.md): queries, series, targets, status, and the remote-write receiver probe."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from conformance.core import yamltext
from conformance.core.http import APIError, NO_RETRY
from conformance.clients.base import ServiceClient

# What Prometheus answers on /api/v1/write when the receiver is off. 2.x names the
# feature flag (seen on 2.42: "... with --enable-feature=remote-write-receiver"),
# 3.x names --web.enable-remote-write-receiver (prometheus/prometheus#16209).
RECEIVER_DISABLED_TEXT = "remote write receiver needs to be enabled"
RECEIVER_SETTING = "prometheus.prometheusSpec.enableRemoteWriteReceiver: true (flag --web.enable-remote-write-receiver)"


@dataclass(frozen=True)
class ReceiverStatus:
    """Whether a Prometheus accepts remote write, and how we know."""

    enabled: bool
    evidence: str


class PrometheusClient(ServiceClient):
    """One Prometheus server."""

    def _data(self, path: str, params: Any = None) -> Any:
        body = self.http.get_json(path, params=params)
        if body.get("status") != "success":
            raise APIError(self.name, "GET", self.http.url(path), 200, json.dumps(body))
        return body["data"]

    def ready(self) -> tuple[bool, str]:
        """GET /-/ready once: (ready, body)."""
        r = self.http.request("GET", "/-/ready", ok=(503,), retry=NO_RETRY)
        return r.status_code == 200, r.text.strip()

    def query(self, expr: str, time: float | None = None) -> list[dict]:
        """Instant query; the result list (vector samples carry `metric` and `value`)."""
        return self.query_data(expr, time)["result"]

    def query_data(self, expr: str, time: float | None = None) -> dict:
        """Instant query; the whole data object (resultType and result)."""
        params = {"query": expr}
        if time is not None:
            params["time"] = f"{time:.3f}"
        return self._data("/api/v1/query", params)

    def series(self, match: list[str], start: float | None = None, end: float | None = None) -> list[dict]:
        """Label sets of the series matching any selector in match."""
        params: list[tuple[str, str]] = [("match[]", m) for m in match]
        if start is not None:
            params.append(("start", f"{start:.3f}"))
        if end is not None:
            params.append(("end", f"{end:.3f}"))
        return self._data("/api/v1/series", params)

    def targets(self, state: str = "active") -> dict:
        """{activeTargets: [...], droppedTargets: [...]} for state active, dropped or any."""
        return self._data("/api/v1/targets", {"state": state})

    def active_targets(self) -> list[dict]:
        return self.targets("active").get("activeTargets", [])

    def scrape_pools(self) -> list[str]:
        """GET /api/v1/scrape_pools: the job names of the loaded scrape configuration (Prometheus >= 2.42)."""
        return self._data("/api/v1/scrape_pools").get("scrapePools") or []

    def rule_groups(self) -> list[dict]:
        """GET /api/v1/rules: every rule group with its rules' health, lastError and lastEvaluation."""
        return self._data("/api/v1/rules")["groups"]

    def alerts(self) -> list[dict]:
        """GET /api/v1/alerts: the active alerts (pending and firing)."""
        return self._data("/api/v1/alerts")["alerts"]

    def alertmanagers(self) -> dict:
        """GET /api/v1/alertmanagers: {activeAlertmanagers: [{url}], droppedAlertmanagers: [...]}."""
        return self._data("/api/v1/alertmanagers")

    def flags(self) -> dict[str, str]:
        return self._data("/api/v1/status/flags")

    def buildinfo(self) -> dict:
        return self._data("/api/v1/status/buildinfo")

    def runtimeinfo(self) -> dict:
        return self._data("/api/v1/status/runtimeinfo")

    def tsdb_status(self) -> dict:
        return self._data("/api/v1/status/tsdb")

    def config_yaml(self) -> str:
        """The loaded configuration as YAML text (external_labels, remote_write, scrape configs)."""
        return self._data("/api/v1/status/config")["yaml"]

    def configured_jobs(self) -> set[str] | None:
        """The job names of the loaded configuration's scrape_configs; None when it cannot say (scrape_config_files
        keep some elsewhere). Unlike /api/v1/scrape_pools, a job is here before discovery finds it a target."""
        config = yamltext.parse(self.config_yaml()) or {}
        if config.get("scrape_config_files"):
            return None
        return {str(c.get("job_name")) for c in config.get("scrape_configs") or []}

    def receiver_from_flags(self) -> ReceiverStatus:
        """Read-only receiver check: the flag, or the pre-3.0 feature flag."""
        flags = self.flags()
        if flags.get("web.enable-remote-write-receiver") == "true":
            return ReceiverStatus(True, "flag web.enable-remote-write-receiver=true")
        features = flags.get("enable-feature", "")
        if "remote-write-receiver" in features.split(","):
            return ReceiverStatus(True, "deprecated feature flag remote-write-receiver is on")
        return ReceiverStatus(False, f"flag web.enable-remote-write-receiver={flags.get('web.enable-remote-write-receiver', 'absent')}")

    def probe_receiver(self) -> ReceiverStatus:
        """POST an empty remote-write request: 404 means the receiver is off, any other answer means on.

        The empty body carries no samples, so nothing is written.
        """
        r = self.http.request(
            "POST", "/api/v1/write", content=b"",
            headers={
                "Content-Type": "application/x-protobuf",
                "Content-Encoding": "snappy",
                "X-Prometheus-Remote-Write-Version": "0.1.0",
            },
            ok=tuple(range(400, 500)),
        )
        body = r.text.strip()
        if r.status_code == 404 and '"kind":"Status"' not in body.replace(" ", ""):
            return ReceiverStatus(False, f"POST /api/v1/write answered 404: {body or '(empty body)'}")
        if r.status_code == 404:
            raise APIError(self.name, "POST", self.http.url("/api/v1/write"), 404, body)
        return ReceiverStatus(True, f"POST /api/v1/write answered {r.status_code}")
