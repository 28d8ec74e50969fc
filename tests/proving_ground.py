"""Real Prometheus processes on loopback: the primary with the remote-write receiver, the remote writing to it."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

INSTALL_HINT = "prometheus is not on PATH; install it (Debian/Ubuntu: apt-get install -y prometheus) or put a prometheus binary on PATH"
SCRAPE_INTERVAL = 1  # seconds; short so remote_write facts show up within a few seconds


def prometheus_binary() -> str | None:
    return shutil.which("prometheus")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PrometheusProcess:
    """One running prometheus; stop() ends it and keeps nothing but its tmp folder."""

    name: str
    port: int
    folder: Path
    args: list[str]
    proc: subprocess.Popen | None = None
    log: Any = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.folder / "prometheus.log"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, ready_timeout: float = 30.0) -> "PrometheusProcess":
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT, cwd=self.folder)
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus {self.name} exited with {self.proc.returncode}:\n{self.log_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"prometheus {self.name} not ready after {ready_timeout} s:\n{self.log_text()[-2000:]}")

    def stop_remote_write(self) -> None:
        """Drop remote_write from the config and reload: the process keeps running, nothing is sent any more."""
        path = self.folder / "prometheus.yml"
        config = yaml.safe_load(path.read_text())
        config.pop("remote_write", None)
        path.write_text(yaml.safe_dump(config))
        httpx.post(f"{self.url}/-/reload", timeout=10).raise_for_status()

    def wait_for_targets(self, count: int, timeout: float = 10.0) -> None:
        """Block until service discovery lists count active targets, each scraped once."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            targets = httpx.get(f"{self.url}/api/v1/targets", timeout=2).json()["data"]["activeTargets"]
            if len(targets) >= count and all(t["health"] != "unknown" for t in targets):
                return
            time.sleep(0.1)
        raise RuntimeError(f"prometheus {self.name}: fewer than {count} scraped targets after {timeout} s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.log:
            self.log.close()
            self.log = None


def start_prometheus(
    name: str,
    folder: Path,
    *,
    cluster: str,
    receiver: bool = False,
    remote_write_url: str | None = None,
    scrape_jobs: list[dict] | None = None,
) -> PrometheusProcess:
    """Start a prometheus with external label cluster=<cluster> that scrapes itself (and scrape_jobs)."""
    binary = prometheus_binary()
    if binary is None:
        raise RuntimeError(INSTALL_HINT)
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config: dict[str, Any] = {
        "global": {
            "scrape_interval": f"{SCRAPE_INTERVAL}s",
            "evaluation_interval": f"{SCRAPE_INTERVAL}s",
            "external_labels": {"cluster": cluster},
        },
        "scrape_configs": [
            {"job_name": "prometheus", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]},
            *(scrape_jobs or []),
        ],
    }
    if remote_write_url:
        # A short send deadline so samples leave within about a second, as the checks expect.
        config["remote_write"] = [{
            "url": remote_write_url,
            "queue_config": {"batch_send_deadline": "1s", "min_backoff": "100ms", "max_backoff": "1s"},
        }]
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    args = [
        binary,
        f"--config.file={folder / 'prometheus.yml'}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
    ]
    if receiver:
        args.append("--web.enable-remote-write-receiver")
    return PrometheusProcess(name, port, folder, args).start()


@dataclass
class PrometheusPair:
    """The primary (receiver on, cluster=oke) and one remote (cluster=workstation, remote_write to the primary)."""

    primary: PrometheusProcess
    remote: PrometheusProcess

    def wait_until_remote_arrives(self, jobs: int = 1, cluster: str = "workstation", timeout: float = 30.0) -> None:
        """Block until the primary has up{cluster=...} for `jobs` remote scrape jobs (remote write ran)."""
        deadline = time.monotonic() + timeout
        query = f'count(up{{cluster="{cluster}"}})'
        while time.monotonic() < deadline:
            result = httpx.get(f"{self.primary.url}/api/v1/query", params={"query": query}, timeout=2).json()["data"]["result"]
            if result and int(float(result[0]["value"][1])) >= jobs:
                time.sleep(1.5)  # one more scrape and send, so every series of those jobs has arrived
                return
            time.sleep(0.2)
        raise RuntimeError(f"no {jobs} remote jobs on the primary after {timeout} s")

    def stop(self) -> None:
        self.remote.stop()
        self.primary.stop()


def start_pair(folder: Path, *, primary_cluster: str = "oke", remote_cluster: str = "workstation",
               receiver: bool = True, remote_scrape_jobs: list[dict] | None = None,
               primary_scrape_jobs: list[dict] | None = None) -> PrometheusPair:
    primary = start_prometheus("primary", folder / "primary", cluster=primary_cluster, receiver=receiver,
                               scrape_jobs=primary_scrape_jobs)
    try:
        remote = start_prometheus("remote", folder / "remote", cluster=remote_cluster,
                                  remote_write_url=f"{primary.url}/api/v1/write", scrape_jobs=remote_scrape_jobs)
    except Exception:
        primary.stop()
        raise
    return PrometheusPair(primary, remote)
