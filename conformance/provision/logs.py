"""The log pipeline's installs for the stack profile (issue 12): loki-stack (promtail), the Loki and Alloy charts, or
OpenSearch, OpenSearch Dashboards and Vector (vector-opensearch, issue 20).

Primary: the log store and the agent, writing to it in-cluster. Remote: the agent only, writing to the primary's
store through its MetalLB address (the `{primary}.loki_ip` or `{primary}.opensearch_ip` fact the stack phase
captures, LOG_STORES). --dry-run shows each argv.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from conformance.core.errors import ConfigError
from conformance.provision.dashboards import KPS_OVERLAYS
from conformance.provision.parts import charts_of_absent_parts
from conformance.provision.steps import Step
from conformance.core.versions import Versions
from conformance.core.stack import STACK_DIR, stack_namespace, stack_services
from conformance.core.topology import Topology

VALUES = STACK_DIR / "values"
# The charts (stack/versions.yaml charts: keys) of each profile's log pipeline; no other profile installs them.
PROFILE_CHARTS = {"promtail": ("loki-stack",), "alloy": ("loki", "alloy"),
                  "vector-opensearch": ("opensearch", "opensearch-dashboards", "vector")}
HELM_STEP_TIMEOUT = 11 * 60.0
PUSH_PATH = "/loki/api/v1/push"
LOKI_CHART_INSTALL = "install Loki (Loki chart, monolithic, Loki 3.x)"
# loki-stack 2.10.3's Loki subchart 2.16.0 values.yaml config.schema_config: the period its store was written in.
OLD_PERIOD = {"from": "2020-10-24", "store": "boltdb-shipper", "object_store": "filesystem", "schema": "v11",
              "index": {"prefix": "index_", "period": "24h"}}
# Loki 3.7.6 docs/sources/setup/migrate/migrate-to-tsdb: a new period from a future date, the old one kept.
NEW_PERIOD = {"store": "tsdb", "object_store": "filesystem", "schema": "v13", "index": {"prefix": "index_", "period": "24h"}}
# The from date is read as 00:00 UTC and must still be ahead when the new Loki first starts (schema docs). It is
# computed as the move is applied (TSDB_FROM_FACT), just before the Loki chart's install, which ends with the new Loki
# Ready or fails within HELM_STEP_TIMEOUT: a midnight closer than this margin counts as passed.
MIDNIGHT_MARGIN = timedelta(hours=1)
TSDB_FROM_FACT = "move.tsdb_from"
# loki-stack's claim as each Loki sees it: mounted at /data (loki 2.16.0 templates/statefulset.yaml), the old Loki's
# files under /data/loki (values.yaml config); then at /var/loki (loki 18.11.0 templates/_pod.tpl).
OLD_MOUNT, NEW_MOUNT = "/data", "/var/loki"
OLD_WAL_DIR = "/data/loki/wal"  # loki 2.16.0 values.yaml config.ingester.wal.dir
OLD_CHUNKS_DIR = "/data/loki/chunks"  # loki 2.16.0 values.yaml config.storage_config.filesystem.directory
NEW_DEFAULT_WAL_DIR = "/var/loki/wal"  # Loki 3.7.6 config_wrapper.go: <common.path_prefix>/wal, the chart's /var/loki
NEW_DEFAULT_CHUNKS_DIR = "/var/loki/chunks"  # loki 18.11.0 values.yaml loki.storage.filesystem.chunks_directory
Clock = Callable[[], datetime]


def promtail_clients(base_url: str, cluster: str) -> str:
    """--set-json for promtail.config.clients: replaces the whole list, so external_labels stays with the URL."""
    return "promtail.config.clients=" + json.dumps(
        [{"url": f"{base_url}{PUSH_PATH}", "external_labels": {"cluster": cluster}}])


def alloy_target(base_url: str, cluster: str) -> str:
    """--set-json for stack/values/alloy.yaml's `conformance:` block, which loki.write's url and external_labels read."""
    return "conformance=" + json.dumps({"cluster": cluster, "lokiPushUrl": f"{base_url}{PUSH_PATH}"})


def vector_target(base_url: str, cluster: str) -> str:
    """--set-json for stack/values/vector.yaml's `conformance:` block: the remap's cluster field, the sink's endpoint."""
    return "conformance=" + json.dumps({"cluster": cluster, "opensearchUrl": base_url})


@dataclass(frozen=True)
class LogStore:
    """Where a profile's agents write on the primary: its services.yaml key, and the fact holding its MetalLB address."""

    service: str
    title: str

    def fact(self, primary: str) -> str:
        return f"{primary}.{self.service}_ip"


LOG_STORES = {"vector-opensearch": LogStore("opensearch", "OpenSearch")}
LOKI = LogStore("loki", "Loki")


def log_store(profile: str) -> LogStore:
    """The primary's log store of the profile: OpenSearch on vector-opensearch, Loki on the others."""
    return LOG_STORES.get(profile, LOKI)


def charts_in_use(topology: Topology, charts: dict) -> list:
    """The pinned charts the topology's profile and parts install, in versions.yaml order."""
    others = {c for name, keys in PROFILE_CHARTS.items() if name != topology.profile for c in keys}
    others |= charts_of_absent_parts(topology)
    return [c for key, c in charts.items() if key not in others]


def kps_values(topology: Topology) -> list[Path]:
    """kube-prometheus-stack overlays the profile needs on the primary."""
    overlay = KPS_OVERLAYS.get(topology.profile)
    return [overlay] if overlay else []


def vector_steps(topology: Topology, versions: Versions, cluster: str, kube, base_url: str,
                 helm_install: Callable[..., tuple[str, ...]]) -> list[Step]:
    """Vector on one cluster: a DaemonSet writing logs-%Y-%m-%d to the primary's OpenSearch, with cluster=<cluster>."""
    return [Step("stack", cluster, "install Vector (DaemonSet, elasticsearch sink to the primary OpenSearch)",
                 helm_install(kube, versions.charts["vector"], stack_namespace(), [VALUES / "vector.yaml"],
                              set_json=[vector_target(base_url, cluster)]),
                 timeout=HELM_STEP_TIMEOUT, waits_for="Vector DaemonSet Ready")]


# The index pattern people search in OpenSearch Dashboards (the guides' `logs-*`), over Vector's daily indices; its
# time field is the event's `timestamp` (kubernetes_logs with Vector's default log schema). Created through the
# saved-objects API, which refuses a write without the osd-xsrf header; overwrite=true makes a second `up` a no-op.
INDEX_PATTERN = {"attributes": {"title": "logs-*", "timeFieldName": "timestamp"}}
INDEX_PATTERN_ID = "logs"
INDEX_PATTERN_POD = "conformance-index-pattern"
INDEX_PATTERN_WAIT = 240  # seconds curl retries while Dashboards, Ready on its TCP probe, still answers 503


def index_pattern_step(kube, versions: Versions, primary: str) -> Step:
    """logs-* in OpenSearch Dashboards, posted from a one-off curl pod (the preloaded curl image) in the stack namespace."""
    ns, ui = stack_namespace(), stack_services(profile="vector-opensearch")["opensearch-dashboards"]
    image = next(i for i in versions.images if "/curlimages/curl:" in i)
    url = f"http://{ui.service}:{ui.port}/api/saved_objects/index-pattern/{INDEX_PATTERN_ID}?overwrite=true"
    return Step("stack", primary, "index pattern logs-* in OpenSearch Dashboards",
                kube.kubectl("run", INDEX_PATTERN_POD, "--namespace", ns, "--image", image, "--restart=Never",
                             "--rm", "--attach", "--quiet", "--pod-running-timeout=120s", "--command", "--",
                             "curl", "--silent", "--show-error", "--fail", "--max-time", "20",
                             "--retry", "40", "--retry-delay", "5", "--retry-all-errors",
                             "--retry-max-time", str(INDEX_PATTERN_WAIT), "--request", "POST",
                             "--header", "osd-xsrf: true", "--header", "Content-Type: application/json",
                             "--data", json.dumps(INDEX_PATTERN), url),
                timeout=INDEX_PATTERN_WAIT + 180, waits_for="OpenSearch Dashboards answering its saved-objects API")


def opensearch_primary_steps(topology: Topology, versions: Versions, kube,
                             helm_install: Callable[..., tuple[str, ...]]) -> list[Step]:
    """OpenSearch (one node), OpenSearch Dashboards pointed at it, and the primary's own Vector."""
    ns, p, charts = stack_namespace(), topology.primary.name, versions.charts
    store = stack_services(profile=topology.profile)["opensearch"]
    local = f"http://{store.service}:{store.port}"
    return [
        Step("stack", p, "install OpenSearch (opensearch chart, one node, security plugin off)",
             helm_install(kube, charts["opensearch"], ns, [VALUES / "opensearch.yaml"]),
             timeout=HELM_STEP_TIMEOUT, waits_for="OpenSearch StatefulSet Ready"),
        Step("stack", p, "install OpenSearch Dashboards (log search on logs-*)",
             helm_install(kube, charts["opensearch-dashboards"], ns, [VALUES / "opensearch-dashboards.yaml"],
                          sets=[f"opensearchHosts={local}"]),
             timeout=HELM_STEP_TIMEOUT, waits_for="OpenSearch Dashboards Ready"),
        Step("stack", p, "no leftover index-pattern pod (an interrupted earlier run)",
             kube.kubectl("delete", "pod", INDEX_PATTERN_POD, "--namespace", ns, "--ignore-not-found",
                          "--wait=true", "--timeout=60s"), timeout=90),
        index_pattern_step(kube, versions, p),
        *vector_steps(topology, versions, p, kube, local, helm_install),
    ]


def primary_steps(topology: Topology, versions: Versions, kube, helm_install: Callable[..., tuple[str, ...]]) -> list[Step]:
    """The log store (Loki, or OpenSearch and its Dashboards) and the primary's own agent."""
    if topology.profile == "vector-opensearch":
        return opensearch_primary_steps(topology, versions, kube, helm_install)
    ns, p = stack_namespace(), topology.primary.name
    loki = stack_services(profile=topology.profile)["loki"]
    local = f"http://{loki.service}:{loki.port}"
    charts = versions.charts
    if topology.profile == "alloy":
        return [
            Step("stack", p, LOKI_CHART_INSTALL,
                 helm_install(kube, charts["loki"], ns, [VALUES / "loki.yaml"]),
                 timeout=HELM_STEP_TIMEOUT, waits_for="Loki StatefulSet Ready"),
            Step("stack", p, "install Alloy (DaemonSet, loki.write to the primary Loki)",
                 helm_install(kube, charts["alloy"], ns, [VALUES / "alloy.yaml"], set_json=[alloy_target(local, p)]),
                 timeout=HELM_STEP_TIMEOUT, waits_for="Alloy DaemonSet Ready"),
        ]
    return [Step("stack", p, "install loki-stack (Loki + Promtail)",
                 helm_install(kube, charts["loki-stack"], ns, [VALUES / "loki-stack.yaml"],
                              set_json=[promtail_clients(local, p)]),
                 timeout=HELM_STEP_TIMEOUT, waits_for="Loki and Promtail Ready")]


def remote_steps(topology: Topology, versions: Versions, remote: str, kube,
                 helm_install: Callable[..., tuple[str, ...]]) -> list[Step]:
    """The remote's agent, writing to the primary's log store through its MetalLB address."""
    if topology.profile == "vector-opensearch":
        store = stack_services(profile=topology.profile)["opensearch"]
        far = f"http://@{{{log_store(topology.profile).fact(topology.primary.name)}}}:{store.port}"
        return vector_steps(topology, versions, remote, kube, far, helm_install)
    ns, p = stack_namespace(), topology.primary.name
    loki = stack_services(profile=topology.profile)["loki"]
    far = f"http://@{{{p}.loki_ip}}:{loki.port}"
    if topology.profile == "alloy":
        return [Step("stack", remote, "install Alloy (DaemonSet, loki.write to the primary Loki)",
                     helm_install(kube, versions.charts["alloy"], ns, [VALUES / "alloy.yaml"],
                                  set_json=[alloy_target(far, remote)]),
                     timeout=HELM_STEP_TIMEOUT, waits_for="Alloy DaemonSet Ready")]
    return [Step("stack", remote, "install loki-stack (Promtail only, pushing to the primary)",
                 helm_install(kube, versions.charts["loki-stack"], ns, [VALUES / "loki-stack-remote.yaml"],
                              set_json=[promtail_clients(far, remote)]),
                 timeout=HELM_STEP_TIMEOUT, waits_for="Promtail Ready")]


def old_claim(old: Versions) -> str:
    """loki-stack's Loki PVC: volumeClaimTemplates `storage` of StatefulSet <release> (loki 2.16.0 loki.fullname is
    the release name when it contains "loki"), pod 0."""
    return f"storage-{old.charts['loki-stack'].release}-0"


def tsdb_from(now: datetime | None = None) -> str:
    """The v13 tsdb period's first day: tomorrow (UTC), or the day after when midnight is under MIDNIGHT_MARGIN away."""
    now = now or datetime.now(timezone.utc)
    return ((now.astimezone(timezone.utc) + MIDNIGHT_MARGIN).date() + timedelta(days=1)).isoformat()


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def on_new_mount(old_path: str) -> str:
    """Where a path on loki-stack's claim, as its Loki saw it, is in the Loki chart's pod."""
    rest = Path(old_path).relative_to(OLD_MOUNT)
    return str(Path(NEW_MOUNT) / rest)


def moved_schema(first_day: str = f"@{{{TSDB_FROM_FACT}}}") -> str:
    """--set-json for loki.schemaConfig after the move: loki-stack's v11 boltdb-shipper period, then v13 tsdb from
    first_day (by default the day the move computes as it is applied)."""
    return "loki.schemaConfig=" + json.dumps({"configs": [OLD_PERIOD, {"from": first_day, **NEW_PERIOD}]})


def tsdb_from_step(cluster: str, clock: Clock) -> Step:
    """The v13 period's first day, computed as the move is applied (a plan made hours before could be a day late)."""
    hours = f"{MIDNIGHT_MARGIN.total_seconds() / 3600:g} h"
    return Step("upgrade", cluster, f"the v13 period's first day from the clock now: tomorrow (UTC), or the day after "
                                    f"within {hours} of midnight ({tsdb_from(clock())} if applied now)",
                action=lambda facts: facts.set(TSDB_FROM_FACT, tsdb_from(clock())))


def move_steps(topology: Topology, from_profile: str, kube: dict, old: Versions) -> list[Step]:
    """The move promtail → alloy before the new pipeline's installs: each Promtail stops (it saves its positions on
    the way out, which Alloy's legacy_positions_file then reads), so no two agents ship the same file at once;
    then loki-stack's Loki stops (flushing on shutdown) and its pod is gone before the new Loki mounts its claim."""
    if from_profile == topology.profile:
        return []
    if (from_profile, topology.profile) != ("promtail", "alloy"):
        raise ConfigError(f"profile move {from_profile} → {topology.profile}: only promtail → alloy is planned")
    ns, chart = stack_namespace(), old.charts["loki-stack"]  # the release as the old pins installed it
    off = lambda c, key: kube[c].helm(  # noqa: E731
        "upgrade", chart.release, chart.name, "--repo", chart.repo, "--version", chart.version, "--namespace", ns,
        "--reuse-values", "--set", f"{key}.enabled=false", "--wait", "--timeout", "10m")
    p = topology.primary.name
    stops = [Step("upgrade", c.name, "stop Promtail (loki-stack promtail.enabled=false; positions kept on the node)",
                  off(c.name, "promtail"), timeout=HELM_STEP_TIMEOUT, waits_for="Promtail DaemonSet gone")
             for c in topology.clusters]
    # After every Promtail's last batch. The StatefulSet goes; its claim stays (Kubernetes keeps a StatefulSet's
    # PVCs unless persistentVolumeClaimRetentionPolicy says otherwise; the 2.16.0 chart sets none).
    pod = f"pod/{old_claim(old).removeprefix('storage-')}"
    return stops + [
        Step("upgrade", p, f"stop loki-stack's Loki (loki.enabled=false; claim {old_claim(old)} kept)",
             off(p, "loki"), timeout=HELM_STEP_TIMEOUT, waits_for="Loki StatefulSet gone"),
        # helm --wait does not wait for deletions; the claim is ReadWriteOnce, which binds a node, not a pod.
        Step("upgrade", p, "loki-stack's Loki pod gone (its ingester flushed its chunks on shutdown)",
             kube[p].kubectl("wait", "--for=delete", pod, "--namespace", ns, "--timeout=600s"),
             timeout=620, waits_for=f"{pod} deleted"),
    ]


def on_the_old_store(steps: list[Step], old: Versions, clock: Clock = utc_now) -> list[Step]:
    """The Loki chart's install after the move: loki-stack's claim, its WAL and both schema periods (loki-moved.yaml),
    the v13 one from the day computed just before (tsdb_from_step)."""
    def moved(step: Step) -> list[Step]:
        if step.title != LOKI_CHART_INSTALL:
            return [step]
        at = step.argv.index("--wait")
        claim = "singleBinary.persistence.dataVolumeParameters=" + json.dumps(
            {"persistentVolumeClaim": {"claimName": old_claim(old)}})
        extra = ("--values", str(VALUES / "loki-moved.yaml"), "--set-json", claim, "--set-json", moved_schema())
        return [tsdb_from_step(step.cluster, clock),
                dataclasses.replace(step, argv=(*step.argv[:at], *extra, *step.argv[at:]),
                                    title=f"{step.title} on loki-stack's store (its WAL replayed; v11 boltdb-shipper, "
                                          f"v13 tsdb from the day just computed)")]
    return [s for step in steps for s in moved(step)]
