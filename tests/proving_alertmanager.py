"""A real Alertmanager on loopback (tests/real, the stack's pin v0.34.0) for the alerting self-tests."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

import tests.real as real
from tests.proving_ground import free_port
from tests.real.process import http_ok, log_tail, start_server, stop_process

RULES = Path(__file__).parent / "proving_rules"
WATCHDOG_RULES = RULES / "general.rules.yaml"
BROKEN_RULES = RULES / "broken.rules.yaml"

# The shape of kube-prometheus-stack 88.5.3's default alertmanager.config: everything, Watchdog included,
# to the 'null' receiver (which notifies nobody), grouped by namespace.
DEFAULT_CONFIG: dict[str, Any] = {
    "route": {"receiver": "null", "group_by": ["namespace"], "group_wait": "30s", "group_interval": "5m",
              "repeat_interval": "12h", "routes": [{"receiver": "null", "matchers": ['alertname = "Watchdog"']}]},
    "receivers": [{"name": "null"}],
}
# A configuration Alertmanager refuses: the route names a receiver that does not exist.
REFUSED_CONFIG: dict[str, Any] = {"route": {"receiver": "nobody"}, "receivers": [{"name": "null"}]}


@dataclass
class AlertmanagerProcess:
    """One running alertmanager; stop() ends it and keeps nothing but its tmp folder."""

    folder: Path
    port: int
    proc: subprocess.Popen | None = None
    log: Any = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def target(self) -> str:
        """host:port, as a Prometheus static_configs target."""
        return f"127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.folder / "alertmanager.yml"

    def log_text(self) -> str:
        return log_tail(self.folder / "alertmanager.log", chars=None)

    def start(self, ready_timeout: float = 30.0) -> "AlertmanagerProcess":
        args = [str(real.require("alertmanager")), f"--config.file={self.config_path}",
                f"--storage.path={self.folder / 'data'}", f"--web.listen-address={self.target}",
                "--cluster.listen-address="]  # no gossip port: one replica, and nothing listens off loopback
        self.proc, self.log = start_server(args, self.folder / "alertmanager.log", http_ok(f"{self.url}/-/ready"),
                                           name="alertmanager", timeout=ready_timeout, cwd=self.folder)
        return self

    def reload(self, config: dict[str, Any]) -> httpx.Response:
        """Write config and POST /-/reload, as the operator's config reloader does; the answer says if it took."""
        self.config_path.write_text(yaml.safe_dump(config))
        return httpx.post(f"{self.url}/-/reload", timeout=10)

    def stop(self) -> None:
        stop_process(self.proc, self.log)
        self.log = None


def start_alertmanager(folder: Path, config: dict[str, Any] | None = None) -> AlertmanagerProcess:
    """Start an alertmanager with config (default: the chart's default shape) on a free loopback port."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "alertmanager.yml").write_text(yaml.safe_dump(config or DEFAULT_CONFIG))
    return AlertmanagerProcess(folder, free_port()).start()
