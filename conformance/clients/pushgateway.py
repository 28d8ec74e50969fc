"""The Pushgateway's HTTP API (api/v1/api.go at v1.11.0): the groups it holds, with their push times."""

from __future__ import annotations

from dataclasses import dataclass

from conformance.clients.base import ServiceClient


@dataclass(frozen=True)
class PushGroup:
    """One group: its grouping labels, when it was last pushed (push_time_seconds), whether that push succeeded."""

    labels: dict[str, str]
    push_time: float
    last_push_successful: bool


class PushgatewayClient(ServiceClient):
    """One Pushgateway."""

    def groups(self) -> list[PushGroup]:
        """GET /api/v1/metrics: [{labels, last_push_successful, <metric name>: {time_stamp, type, help, metrics}}]."""
        out = []
        for g in self.http.get_json("/api/v1/metrics").get("data") or []:
            pushed = ((g.get("push_time_seconds") or {}).get("metrics") or [{}])[0].get("value", "0")
            out.append(PushGroup(dict(g.get("labels") or {}), float(pushed), bool(g.get("last_push_successful"))))
        return out
