"""A real Alertmanager on loopback (tests/real, the stack's pin v0.34.0) for the alerting self-tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests import web
import tests.real as real
from tests.proving_ground import free_port
from tests.real.process import LoopbackServer, http_ok

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
class AlertmanagerProcess(LoopbackServer):
    """One running alertmanager; stop() ends it and keeps nothing but its tmp folder."""

    LOG = "alertmanager.log"
    folder: Path
    port: int

    @property
    def config_path(self) -> Path:
        return self.folder / "alertmanager.yml"

    def start(self, ready_timeout: float = 30.0) -> "AlertmanagerProcess":
        args = [str(real.require("alertmanager")), f"--config.file={self.config_path}",
                f"--storage.path={self.folder / 'data'}", f"--web.listen-address={self.target}",
                "--cluster.listen-address="]  # no gossip port: one replica, and nothing listens off loopback
        return self.launch(args, http_ok(f"{self.url}/-/ready"), name="alertmanager", timeout=ready_timeout, cwd=self.folder)

    def reload(self, config: dict[str, Any]) -> httpx.Response:
        """Write config and POST /-/reload, as the operator's config reloader does; the answer says if it took."""
        self.config_path.write_text(yaml.safe_dump(config))
        return web.post(f"{self.url}/-/reload", timeout=10)


def start_alertmanager(folder: Path, config: dict[str, Any] | None = None) -> AlertmanagerProcess:
    """Start an alertmanager with config (default: the chart's default shape) on a free loopback port."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "alertmanager.yml").write_text(yaml.safe_dump(config or DEFAULT_CONFIG))
    return AlertmanagerProcess(folder, free_port()).start()
