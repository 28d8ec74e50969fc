"""The whole stack on loopback for suite self-tests: real Prometheus pair plus Loki, Promtail, Grafana and Kiali fakes.

Each cluster gets a log file that a FakePromtail tails and ships to FakeLoki with
its external labels, exactly the path the endpoints provider's log canary takes.
With profile="alloy" (issue 12) the agents are FakeAlloy and FakeLoki answers as Loki 3.7.6.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from conformance.core.manifests import ENVOY_POOL
from conformance.probes.dashboards.declared import declared
from conformance.provision.logs import VALUES, moved_schema, tsdb_from
from conformance.probes.platform.scrape_jobs import ChartRelease, required_jobs
from tests.fakes.grafana import FakeGrafana
from tests.fakes.kiali import FakeKiali
from tests.fakes.loki import LOKI_CHART_LAYOUT, FakeLoki
from tests.fakes.loki_volume import Layout, Volume
from tests.fakes.alloy import FakeAlloy
from tests.fakes.promtail import FakePromtail
from tests.proving_ground import PrometheusPair
from tests.provision.test_values import merge
from tests.suite_runner import write_topology

CLUSTERS = ("oke", "workstation")
# Each stack profile's proving ground: (agent fake, the agent's services.yaml key, FakeLoki's version).
PROFILES = {"promtail": (FakePromtail, "promtail", "2.9.3"), "alloy": (FakeAlloy, "alloy", "3.7.6")}
GRAFANA_PASSWORD_ENV = "CONFORMANCE_TEST_GRAFANA_PASSWORD"
GRAFANA_PASSWORD = "not-the-real-one-8f2c"


def declared_dashboards(panels_expr: str = "up") -> list[dict[str, Any]]:
    """Grafana dashboard specs for every dashboard the stack's values declare, one panel each; the file's own uid and
    title where known (a file without a uid gets one of Grafana's making, here uid-<key>)."""
    return [{
        "uid": d.uid or f"uid-{d.key}", "title": d.title or d.key.replace("-", " ").title(), "folder": d.folder,
        "provider": d.provider, "file": f"{d.key}.json",
        "panels": [{"id": 1, "title": "Targets up", "type": "timeseries",
                    "targets": [{"refId": "A", "expr": panels_expr, "datasource": {"type": "prometheus", "uid": "prometheus"}}]}],
    } for d in declared()]


def kiali_spec() -> dict[str, dict]:
    return {
        "oke": {"home": True, "namespaces": {"istio-system": {"controlPlane": True, "workloads": [{"name": "istiod"}]},
                                             "monitoring": {"workloads": [{"name": "kube-prometheus-stack-grafana"}]}}},
        # A remote runs no gateway (Istio's remote profile) and no helloworld (the server is on the primary):
        # the bring-up's sleep and the stopped traffic generator.
        "workstation": {"namespaces": {"istio-system": {"workloads": []},
                                       "sample": {"labels": {"istio-injection": "enabled"},
                                                  "workloads": [{"name": "sleep"}, {"name": "traffic", "podCount": 0}]}}},
    }


@dataclass
class ProvingStack:
    """Running fakes and the topology that points at them."""

    folder: Path
    pair: PrometheusPair
    loki: FakeLoki
    grafana: FakeGrafana
    kiali: FakeKiali
    promtails: dict[str, FakePromtail] = field(default_factory=dict)  # the log agents (FakeAlloy in the alloy profile)
    profile: str = "promtail"

    @property
    def agent_service(self) -> str:
        return PROFILES[self.profile][1]

    def log_file(self, cluster: str) -> Path:
        return self.folder / "logs" / f"{cluster}.log"

    @property
    def grafana_log(self) -> Path:
        return self.folder / "grafana.log"

    def topology(self, name: str = "topology.yaml", drop: dict[str, set[str]] | None = None,
                 grafana_log: bool = True) -> Path:
        """An endpoints topology for the stack; drop={cluster: {service,...}} leaves services out
        ("promtail" names the profile's log agent, whichever it is)."""
        agent = self.agent_service
        drop = {c: {agent if s == "promtail" else s for s in names} for c, names in (drop or {}).items()}
        agents = {c: p.metrics_url.removesuffix("/metrics") for c, p in self.promtails.items()}
        primary_services = {
            agent: agents["oke"],
            "prometheus": self.pair.primary.url,
            "loki": self.loki.url,
            "grafana": {"url": self.grafana.url, "auth": {"basic_user": "admin", "basic_password_env": GRAFANA_PASSWORD_ENV}},
            "kiali": f"{self.kiali.url}/kiali",
        }
        clusters = [
            {"name": "oke", "role": "primary", "provider": "endpoints", "stack": "bring-up",  # the project's stack
             "services": {k: v for k, v in primary_services.items() if k not in drop.get("oke", set())},
             "log_canary": {"file": str(self.log_file("oke"))},
             **({"grafana_log": {"file": str(self.grafana_log)}} if grafana_log else {})},
            {"name": "workstation", "role": "remote", "provider": "endpoints", "stack": "bring-up",
             "services": {k: v for k, v in {"prometheus": self.pair.remote.url, agent: agents["workstation"]}.items()
                          if k not in drop.get("workstation", set())}
             or {"prometheus": self.pair.remote.url},
             "log_canary": {"file": str(self.log_file("workstation"))}},
        ]
        return write_topology(self.folder, clusters, name, None if self.profile == "promtail" else self.profile)

    def move_to_alloy(self, hand_over_positions: bool = True, labels: dict[str, dict[str, str]] | None = None,
                      keep_store: bool = True, killed: bool = False, moved_values: dict | None = None,
                      v13_from: str | None = None) -> None:
        """The profile move on the proving ground: each Promtail stops (its last batch sent), a FakeAlloy takes its
        file and Loki becomes 3.7.6 with its store kept (the old streams stay readable), as the bring-up's move does
        (conformance/provision/logs.py move_steps, on_the_old_store; docs/real-stack.md "The move's Loki store"):

        - loki-stack's Loki writes to a PVC (stack/values/loki-stack.yaml persistence.enabled; grafana/helm-charts
          loki-2.16.0 charts/loki/templates/statefulset.yaml volumeClaimTemplates `storage`) and flushes its chunks
          when it stops (-ingester.flush-on-shutdown, grafana/loki v2.9.3 pkg/ingester/wal.go);
        - the Loki chart's Loki mounts that claim (grafana-community/helm-charts loki-18.11.0 charts/loki/values.yaml
          singleBinary.persistence.dataVolumeParameters) and keeps the old v11 boltdb-shipper period before a v13
          tsdb one from a future date (grafana/loki v3.7.6 docs/sources/setup/migrate/migrate-to-tsdb/_index.md),
          so Loki 3.7.6 reads the streams 2.9.3 wrote;
        - the new Loki replays the old one's write-ahead log (loki-moved.yaml ingester.wal.dir, the old /data/loki/wal
          under /var/loki; grafana/loki v3.7.6 pkg/ingester/ingester.go `starting`), which holds what a killed old
          Loki had not flushed. The fake's paths decide what survives (tests/fakes/loki_volume.py).

        hand_over_positions: Alloy starts at Promtail's offsets, as loki.source.file's legacy_positions_file
        converts Promtail's positions file; without it Alloy reads each file from the start.
        keep_store=False: the new Loki starts on a volume of its own (the move before the store was carried).
        killed: the old Loki dies without flushing (killed, OOM, node lost, a flush longer than its grace period);
        what it held only in memory is on the claim in its WAL, which the new Loki replays only from its own
        `ingester.wal.dir` (moved_layout). moved_values: the move's values in place of stack/values/loki-moved.yaml;
        v13_from: the v13 period's first day in place of the one the move computes (logs.tsdb_from).
        """
        olds = dict(self.promtails)
        for old in olds.values():
            old.stop()
        # Then the Loki pod, before any Alloy ships (the bring-up installs Alloy after the new Loki).
        if keep_store:
            self.loki.replace_pod(PROFILES["alloy"][2], moved_layout(moved_values, v13_from), killed=killed)
        else:  # the plain alloy install: a claim of its own, the chart's paths
            self.loki.replace_pod(PROFILES["alloy"][2], LOKI_CHART_LAYOUT, claim=Volume(), killed=killed)
        for cluster, old in olds.items():
            agent = FakeAlloy(old.loki_url, old.path, external_labels=(labels or {}).get(cluster, old.external_labels))
            if hand_over_positions:
                agent._offset = old._offset
            agent.paused = old.paused
            self.promtails[cluster] = agent.start()
        self.profile = "alloy"

    def __enter__(self) -> "ProvingStack":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        for p in self.promtails.values():
            p.stop()
        for server in (self.kiali, self.grafana, self.loki):
            server.stop()


def moved_layout(moved_values: dict | None = None, v13_from: str | None = None) -> Layout:
    """The Loki chart's Loki after the move, where helm's values put its files: stack/values/loki.yaml, then
    loki-moved.yaml (or moved_values) over it, the chart's defaults for what neither sets; the periods the move's
    --set-json gives (v13 from the day it computes, or v13_from)."""
    values = merge(yaml.safe_load((VALUES / "loki.yaml").read_text()),
                   yaml.safe_load((VALUES / "loki-moved.yaml").read_text()) if moved_values is None else moved_values)
    loki = values.get("loki", {})
    chunks = loki.get("storage", {}).get("filesystem", {}).get("chunks_directory", LOKI_CHART_LAYOUT.chunks_dir)
    wal = loki.get("structuredConfig", {}).get("ingester", {}).get("wal", {}).get("dir", LOKI_CHART_LAYOUT.wal_dir)
    schema = json.loads(moved_schema(v13_from or tsdb_from()).split("=", 1)[1])
    return Layout(LOKI_CHART_LAYOUT.mount, chunks, wal, tuple((p["from"], p["store"]) for p in schema["configs"]))


def start_grafana(pair: PrometheusPair, loki: FakeLoki, dashboards: list[dict] | None = None,
                  log_path: Path | None = None, startup_race: bool = False) -> FakeGrafana:
    """Grafana with the stack's datasources (the real primary Prometheus as default, FakeLoki) and dashboards."""
    grafana = FakeGrafana(
        admin_password=GRAFANA_PASSWORD, log_path=log_path,
        datasources=[
            {"uid": "prometheus", "name": "Prometheus", "type": "prometheus", "url": pair.primary.url, "isDefault": True},
            {"uid": "loki", "name": "Loki", "type": "loki", "url": loki.url},
        ],
        dashboards=declared_dashboards() if dashboards is None else dashboards,
    )
    grafana.startup_race = startup_race
    return grafana.start()


def start_stack(folder: Path, pair: PrometheusPair, *, promtail_labels: dict[str, dict[str, str]] | None = None,
                loki_version: str | None = None, dashboards: list[dict] | None = None,
                silent_agents: tuple[str, ...] = (), grafana_startup_race: bool = False,
                promtail_urls: dict[str, str] | None = None, profile: str = "promtail") -> ProvingStack:
    """Start Loki, one Promtail per cluster, Grafana (datasources on the real primary and FakeLoki) and Kiali.

    The agents of silent_agents run but ship nothing, not even their start-up line (docs/troubleshooting.md#running-but-shipping-nothing);
    promtail_urls={cluster: URL} points an agent's client elsewhere (e.g. a port where nothing listens).
    profile names the stack profile whose agents and Loki run (promtail: FakePromtail and Loki 2.9.3;
    alloy: FakeAlloy and Loki 3.7.6); loki_version overrides its Loki.
    """
    agent_class, _, profile_loki = PROFILES[profile]
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    pair.primary.wait_for_targets(1)  # panel queries such as `up` need the first scrape
    loki = FakeLoki(version=loki_version or profile_loki).start()
    grafana = start_grafana(pair, loki, dashboards, log_path=folder / "grafana.log", startup_race=grafana_startup_race)
    kiali = FakeKiali(kiali_spec()).start()
    stack = ProvingStack(folder, pair, loki, grafana, kiali, profile=profile)
    for cluster in CLUSTERS:
        labels = (promtail_labels or {}).get(cluster, {"cluster": cluster})
        stack.log_file(cluster).touch()
        url = (promtail_urls or {}).get(cluster, f"{loki.url}/loki/api/v1/push")
        agent = agent_class(url, stack.log_file(cluster), external_labels=labels)
        agent.paused = cluster in silent_agents
        stack.promtails[cluster] = agent.start()
        # A real agent always has something to ship; so Loki knows every cluster before any canary.
        with stack.log_file(cluster).open("a") as f:
            f.write(f"level=info msg=\"{cluster} log agent started\"\n")
    return stack


def stack_scrape_jobs(role: str, exporter_url: str, envoys: list[str] = (), *, omit: tuple[str, ...] = (),
                      urls: dict[str, str] | None = None, empty: tuple[str, ...] = (),
                      chart: ChartRelease | None = None, envoy_files: tuple[Path, ...] = ()) -> list[dict]:
    """Scrape jobs that mirror the operator's: one per job the stack requires on a cluster of `role`.

    Each job is named like the operator's scrape pool ('serviceMonitor/monitoring/<name>/0') and relabels
    `job` like the operator does, at the FakeExporter (a path per job); the Envoy PodMonitor's pool scrapes
    `envoys`, the sidecars the bring-up runs on that cluster (no sidecar: a pool without a target, as on the real stack).
    `omit` leaves jobs out (their monitor is not selected); `empty` keeps a job with no target (its monitor is
    selected but its Service has no endpoint); `urls` points a job elsewhere (e.g. a closed port; a URL's own path is
    kept, as a FakeIstiod's /metrics); `chart` names the chart's monitors after another release (a user's);
    `envoy_files` adds file_sd files to the Envoy pool (sidecars that come and go with their pods).
    """
    jobs = []
    for required in required_jobs(role, chart=chart):
        if required.job in omit:
            continue
        if required.monitor == ENVOY_POOL.rsplit("/", 1)[0]:
            targets, path = [urlsplit(u).netloc for u in envoys], "/stats/prometheus"
        else:
            url = urlsplit((urls or {}).get(required.job, exporter_url))
            targets, path = [url.netloc], url.path if url.path.strip("/") else f"/{required.job.replace('/', '-')}/metrics"
        envoy_pool = required.monitor == ENVOY_POOL.rsplit("/", 1)[0]  # selected: a pool even with no sidecar to scrape
        if required.job in empty:
            targets = []
        if targets or envoy_pool or required.job in empty:
            files = {"file_sd_configs": [{"files": [str(f) for f in envoy_files], "refresh_interval": "1s"}]} \
                if envoy_pool and envoy_files else {}
            jobs.append({"job_name": f"{required.monitor}/0", "metrics_path": path,
                         "static_configs": [{"targets": targets}], **files,
                         "relabel_configs": [{"target_label": "job", "replacement": required.job}]})
    return jobs
