"""Real Prometheus processes on loopback: the primary with the remote-write receiver, the remote writing to it.

The binary is the stack's pin (tests/real, v3.14.0), started as prometheus-operator v0.93.1 starts it for
kube-prometheus-stack 88.5.3: the operator's flags and external labels, Prometheus' own remote-write queue
defaults. Only the timing differs in ordinary self-tests (FAST); STACK_TIMING is the stack's own.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from conformance.core.versions import load_versions
from conformance.core.stack import stack_services
from tests import web
import tests.real as real
from tests.real.process import LoopbackServer, http_says


@dataclass(frozen=True)
class Timing:
    """How often the proving ground's Prometheus scrapes, and how long its remote-write queue holds a batch."""

    scrape_interval: float  # seconds; also the evaluation interval
    batch_send_deadline: float | None  # seconds; None keeps Prometheus' default, as the stack does

    @property
    def send_deadline(self) -> float:
        # Prometheus v3.14.0 config/config.go DefaultQueueConfig.BatchSendDeadline.
        return 5.0 if self.batch_send_deadline is None else self.batch_send_deadline


# Ordinary self-tests: remote-write facts show within a few seconds.
FAST = Timing(scrape_interval=1, batch_send_deadline=1)
# The stack's: kube-prometheus-stack's default scrape interval (values.yaml scrapeInterval "" -> the operator's
# 30 s) and no queueConfig in stack/values, so Prometheus' default 5 s batch send deadline.
STACK_TIMING = Timing(scrape_interval=30, batch_send_deadline=None)


def operator_labels() -> dict[str, str]:
    """The external labels prometheus-operator adds besides the user's (buildExternalLabels in pkg/prometheus/promcfg.go).

    prometheus=<namespace>/<Prometheus CR>, prometheus_replica=<pod>; the chart names the CR <release>-prometheus
    and the operator the StatefulSet prometheus-<CR>, so the pod is prometheus-<CR>-0.
    """
    cr = load_versions().charts["kube-prometheus-stack"].release + "-prometheus"
    namespace = stack_services()["prometheus"].namespace
    return {"prometheus": f"{namespace}/{cr}", "prometheus_replica": f"prometheus-{cr}-0"}


def prometheus_binary() -> str:
    """The stack's Prometheus (tests/real); a test without it is skipped saying how to get it (failed under CI=true)."""
    return str(real.require("prometheus"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_HELD: list[socket.socket] = []


def closed_port() -> int:
    """A loopback port that refuses connections for the rest of this process: bound and never listening, so no server
    started meanwhile (by this test or one beside it) is given it, as a port closed again could be."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    _HELD.append(s)
    return s.getsockname()[1]


@dataclass
class PrometheusProcess(LoopbackServer):
    """One running prometheus; stop() ends it and keeps nothing but its tmp folder."""

    LOG = "prometheus.log"
    name: str
    port: int
    folder: Path
    args: list[str]
    timing: Timing = FAST

    def start(self, ready_timeout: float = 30.0) -> "PrometheusProcess":
        # /-/ready answers "<AppName> is Ready." (web/web.go at v3.14.0; cmd/prometheus names it "Prometheus Server"):
        # not another real server that took a port free_port() handed out twice.
        return self.launch(self.args, http_says(f"{self.url}/-/ready", "Prometheus Server is Ready."), name=f"prometheus {self.name}",
                           timeout=ready_timeout, cwd=self.folder)

    def stop_remote_write(self) -> None:
        """Drop remote_write from the config and reload: the process keeps running, nothing is sent any more."""
        path = self.folder / "prometheus.yml"
        config = yaml.safe_load(path.read_text())
        config.pop("remote_write", None)
        path.write_text(yaml.safe_dump(config))
        web.post(f"{self.url}/-/reload", timeout=10).raise_for_status()

    def drop_from_remote_write(self, job: str) -> None:
        """Keep remote_write but drop one job's series from it (write_relabel_configs) and reload."""
        path = self.folder / "prometheus.yml"
        config = yaml.safe_load(path.read_text())
        for queue in config.get("remote_write") or []:
            queue["write_relabel_configs"] = [{"source_labels": ["job"], "regex": job, "action": "drop"}]
        path.write_text(yaml.safe_dump(config))
        web.post(f"{self.url}/-/reload", timeout=10).raise_for_status()

    @property
    def sender_window(self) -> float:
        """The window the sender check judges at this timing (suites/test_metrics.py): one scrape and one send, >= 5 s."""
        return max(5.0, self.timing.scrape_interval + self.timing.send_deadline)

    def wait_for_own_past(self, seconds: float | None = None, timeout: float | None = None) -> None:
        """Block until its TSDB holds its own queue counters of `seconds` ago, as on a stack that has run a while."""
        from conformance.clients.prometheus import PrometheusClient
        from conformance.core.http import HTTPService
        from conformance.probes.metrics.remote_write import past_snapshots

        seconds = seconds or self.sender_window
        timeout = timeout or 30.0 + seconds + 2 * self.timing.scrape_interval
        client, deadline = PrometheusClient(HTTPService(f"{self.name} Prometheus", self.url)), time.monotonic() + timeout
        while not past_snapshots(client, seconds):
            if time.monotonic() > deadline:
                raise RuntimeError(f"prometheus {self.name}: no self-scraped queue counters of {seconds:g} s ago after {timeout:g} s")
            time.sleep(0.5)

    def wait_for_targets(self, count: int, timeout: float | None = None) -> None:
        """Block until service discovery lists count active targets, each scraped once (first scrape within an interval)."""
        timeout = timeout or 10.0 + 2 * self.timing.scrape_interval
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            targets = web.get(f"{self.url}/api/v1/targets", timeout=2).json()["data"]["activeTargets"]
            if len(targets) >= count and all(t["health"] != "unknown" for t in targets):
                return
            time.sleep(0.1)
        raise RuntimeError(f"prometheus {self.name}: fewer than {count} scraped targets after {timeout} s")


def start_prometheus(
    name: str,
    folder: Path,
    *,
    cluster: str,
    receiver: bool = False,
    remote_write_url: str | None = None,
    scrape_jobs: list[dict] | None = None,
    timing: Timing = FAST,
    rule_files: list[Path] | None = None,
    alertmanagers: list[str] | None = None,
    self_scrape: bool = True,
    resend_delay: str | None = None,
    label: str = "cluster",
) -> PrometheusProcess:
    """Start a prometheus with external label <label>=<cluster> (and the operator's) that scrapes itself (and scrape_jobs).

    self_scrape=False leaves out its own job, as on a stack without the chart's selfMonitor ServiceMonitor;
    resend_delay (--rules.alert.resend-delay, default 1m) shortens how soon a firing alert is sent again.

    rule_files are evaluated every scrape interval; alertmanagers (host:port) receive its alerts, as the
    operator's alerting.alertmanagers (or a remote's additionalAlertManagerConfigs) point it at one.
    """
    binary = prometheus_binary()
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    interval = f"{timing.scrape_interval:g}s"
    config: dict[str, Any] = {
        "global": {
            "scrape_interval": interval,
            "evaluation_interval": interval,
            "external_labels": {label: cluster, **operator_labels()},
        },
        "scrape_configs": [
            *([{"job_name": "prometheus", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}] if self_scrape else []),
            *(scrape_jobs or []),
        ],
    }
    if rule_files:
        config["rule_files"] = [str(f) for f in rule_files]
    if alertmanagers:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": list(alertmanagers)}]}]}
    if remote_write_url:
        # The stack sets no queueConfig: Prometheus' defaults, but for the send deadline of the timing.
        queue = {} if timing.batch_send_deadline is None else {"batch_send_deadline": f"{timing.batch_send_deadline:g}s"}
        config["remote_write"] = [{"url": remote_write_url, **({"queue_config": queue} if queue else {})}]
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    args = [binary, *operator_args(folder, receiver), f"--web.listen-address=127.0.0.1:{port}",
            *([f"--rules.alert.resend-delay={resend_delay}"] if resend_delay else [])]
    return PrometheusProcess(name, port, folder, args, timing).start()


def operator_args(folder: Path, receiver: bool) -> list[str]:
    """The flags prometheus-operator passes Prometheus 3.x for the chart's Prometheus CR, paths made local.

    BuildCommonPrometheusArgs (pkg/prometheus/promcfg.go) and buildServerArgs (pkg/prometheus/server/statefulset.go):
    config.file, web.enable-lifecycle (HTTP reload strategy), web.enable-remote-write-receiver when the CR's
    enableRemoteWriteReceiver is true, web.route-prefix, storage.tsdb.path. No retention flag from 3.11 on
    (it moved into the configuration file), no console flags on 3.x.
    """
    args = [f"--config.file={folder / 'prometheus.yml'}", "--web.enable-lifecycle"]
    if receiver:
        args.append("--web.enable-remote-write-receiver")
    return [*args, "--web.route-prefix=/", f"--storage.tsdb.path={folder / 'data'}"]


@dataclass
class PrometheusPair:
    """The primary (receiver on, cluster=oke) and one remote (cluster=workstation, remote_write to the primary);
    `label` is the external label both carry the cluster's name in (`cluster`, as the bring-up's)."""

    primary: PrometheusProcess
    remote: PrometheusProcess
    label: str = "cluster"

    def wait_until_remote_arrives(self, jobs: int = 1, cluster: str = "workstation", timeout: float | None = None) -> None:
        """Block until the primary has up{<label>=...} for `jobs` remote scrape jobs (remote write ran)."""
        timing = self.remote.timing
        timeout = timeout or 30.0 + 2 * (timing.scrape_interval + timing.send_deadline)
        deadline = time.monotonic() + timeout
        query = f'count(up{{{self.label}="{cluster}"}})'
        while time.monotonic() < deadline:
            result = web.get(f"{self.primary.url}/api/v1/query", params={"query": query}, timeout=2).json()["data"]["result"]
            if result and int(float(result[0]["value"][1])) >= jobs:
                # One more scrape and send, so every series of those jobs has arrived.
                time.sleep(timing.scrape_interval + timing.send_deadline / 2)
                return
            time.sleep(0.2)
        raise RuntimeError(f"no {jobs} remote jobs on the primary after {timeout} s")

    def stop(self) -> None:
        self.remote.stop()
        self.primary.stop()


def start_pair(folder: Path, *, primary_cluster: str = "oke", remote_cluster: str = "workstation",
               receiver: bool = True, remote_scrape_jobs: list[dict] | None = None,
               primary_scrape_jobs: list[dict] | None = None, timing: Timing = FAST,
               rule_files: list[Path] | None = None, primary_alertmanagers: list[str] | None = None,
               remote_alertmanagers: list[str] | None = None, label: str = "cluster") -> PrometheusPair:
    primary = start_prometheus("primary", folder / "primary", cluster=primary_cluster, receiver=receiver,
                               scrape_jobs=primary_scrape_jobs, timing=timing, rule_files=rule_files,
                               alertmanagers=primary_alertmanagers, label=label)
    try:
        remote = start_prometheus("remote", folder / "remote", cluster=remote_cluster, timing=timing,
                                  remote_write_url=f"{primary.url}/api/v1/write", scrape_jobs=remote_scrape_jobs,
                                  rule_files=rule_files, alertmanagers=remote_alertmanagers, label=label)
    except Exception:
        primary.stop()
        raise
    return PrometheusPair(primary, remote, label)
