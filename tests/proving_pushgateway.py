"""A real Pushgateway on loopback (tests/real, the stack's pin v1.11.0) and the kube-bench push step, faked.

kube-bench does not build here (not on the Go module proxy). The fake push step does what the CronJob's push
step does after kube-bench: the manifest's own jq program (stack/manifests/kube-bench.yaml, totals.jq) turns a
kube-bench `--json` document into the text format, POSTed to the manifest's own URL path for the node.
The Pushgateway stamps push_time_seconds itself.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import web
import tests.real as real
from conformance.probes.kubebench import pushes as kb
from conformance.core.stack import stack_services
from tests.proving_ground import free_port
from tests.real.process import LoopbackServer, http_ok

# The job name the operator gives the chart's ServiceMonitor targets: the Service's name.
SCRAPE_JOB = stack_services()["pushgateway"].service


def kube_bench_json(totals: dict[str, int]) -> dict[str, Any]:
    """A kube-bench v0.15.6 `--json` document (check.OverallControls) with these totals (pass, fail, warn, info)."""
    summary = {f"total_{k}": totals.get(k, 0) for k in ("pass", "fail", "warn", "info")}
    return {"Controls": [{"id": "4", "version": "cis-1.10", "detected_version": "1.35", "text": "Worker Node Security Configuration",
                          "node_type": "node", "tests": [], **summary}], "Totals": summary}


def push_text(document: dict[str, Any]) -> str:
    """What the push step's `totals` container writes: jq -r -f totals.jq over kube-bench's JSON."""
    jq = shutil.which("jq")
    if jq is None:
        pytest.skip("jq is not on PATH: the push step's program (totals.jq) runs with jq")
    out = subprocess.run([jq, "-r", kb.push_program()], input=json.dumps(document), capture_output=True, text=True,
                         check=True, timeout=30)
    return out.stdout


def fake_push(pushgateway_url: str, node: str, totals: dict[str, int]) -> httpx.Response:
    """The push step for one node: its curl --data-binary POST to <Pushgateway>/metrics/job/.../node/<node>."""
    r = web.post(pushgateway_url + kb.push_path(node), content=push_text(kube_bench_json(totals)).encode(), timeout=10)
    r.raise_for_status()
    return r


def scrape_job(target: str, honor_labels: bool = True) -> dict:
    """The scrape config prometheus-operator makes of the chart's ServiceMonitor (honorLabels -> honor_labels): the
    pool serviceMonitor/<namespace>/<name>/0, its targets' job the Service's name (promcfg.go)."""
    return {"job_name": kb.pushgateway_pool(), "honor_labels": honor_labels, "static_configs": [{"targets": [target]}],
            "relabel_configs": [{"target_label": "job", "replacement": SCRAPE_JOB}]}


@dataclass
class PushgatewayProcess(LoopbackServer):
    """One running pushgateway; stop() ends it (persisting its groups when it has a persistence file)."""

    LOG = "pushgateway.log"
    folder: Path
    port: int
    persistence: bool = False

    @property
    def persistence_file(self) -> Path:
        return self.folder / "pushgateway.db"

    def start(self, ready_timeout: float = 30.0) -> "PushgatewayProcess":
        args = [str(real.require("pushgateway")), f"--web.listen-address={self.target}"]
        if self.persistence:
            args.append(f"--persistence.file={self.persistence_file}")
        # Appended to: a restart (age_group) keeps the first run's log.
        return self.launch(args, http_ok(f"{self.url}/-/ready"), name="pushgateway", timeout=ready_timeout,
                           cwd=self.folder, append=True)

    def push_time(self, node: str) -> float:
        """The group's push_time_seconds, as the Pushgateway's /metrics prints it (Go's shortest round-trip float)."""
        for line in web.get(f"{self.url}/metrics", timeout=5).text.splitlines():
            if line.startswith(kb.PUSH_TIME + "{") and f'node="{node}"' in line:
                return float(line.rsplit(" ", 1)[1])
        raise KeyError(node)

    def age_group(self, node: str, seconds: float) -> float:
        """Make the node's group `seconds` older, as a Pushgateway restarted from its persistence file serves it.

        The file is the real one it wrote on shutdown (gob of protobuf MetricFamily); the group's push_time_seconds
        gauge is a protobuf double (tag 0x09, 8 bytes little-endian): exactly one such value is rewritten.
        """
        pushed = self.push_time(node)
        self.stop()
        data = self.persistence_file.read_bytes()
        old = b"\x09" + struct.pack("<d", pushed)
        if data.count(old) != 1:
            raise RuntimeError(f"push time {pushed!r} of {node} found {data.count(old)} times in the persistence file")
        self.persistence_file.write_bytes(data.replace(old, b"\x09" + struct.pack("<d", pushed - seconds)))
        self.start()
        return pushed - seconds


def start_pushgateway(folder: Path, persistence: bool = False) -> PushgatewayProcess:
    folder.mkdir(parents=True, exist_ok=True)
    return PushgatewayProcess(folder, free_port(), persistence).start()
