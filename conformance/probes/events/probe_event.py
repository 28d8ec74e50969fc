"""The events part's probe: a Kubernetes Event the check creates, and where it went on its way to the primary Loki.

kubernetes-event-exporter v1.6.1 (resmoio) watches core/v1 Events (pkg/kube/watcher.go: an informer's adds;
updates are ignored), looks up the involved object, and its loki sink (pkg/sinks/loki.go) pushes one JSON entry
per event to /loki/api/v1/push: stream labels = the receiver's streamLabels, line = the event as JSON
(kube.EnhancedEvent: reason, message, involvedObject.{kind,name,namespace,...}) when no layout is set.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

import yaml

from conformance.core import yamltext
from conformance.core.access import Access
from conformance.clients.loki import LokiClient
from conformance.core.exposition import parse_samples
from conformance.core.http import NO_RETRY, ServiceError
from conformance.core.kube import KubeAccess
from conformance.core.on_use import imported_on_use
from conformance.core.topology import Cluster
from conformance.probes.metrics.remote_write.config import parse_duration

kubernetes = imported_on_use("kubernetes")

# The stream label job= every cluster's exporter pushes with (issue 11, part 2; stack/values and the bring-up).
EVENTS_JOB = "kubernetes-event"
REASON = "ConformanceProbe"  # the probe Event's reason: no Kubernetes component writes it
COMPONENT = "monitoring-conformance"
LOOKBACK = 300  # seconds of Loki searched around the probe
# The exporter's pod as the Bitnami chart 3.0.2 labels it (common.labels.matchLabels: the chart's name), and its own
# /metrics: the chart passes only -conf, so main.go's -metrics-address default :2112; names carry metricsNamePrefix.
EXPORTER_SELECTOR = "app.kubernetes.io/name=kubernetes-event-exporter"
EXPORTER_METRICS_PORT = 2112
METRICS_PREFIX = "event_exporter_"  # stack/values/kubernetes-event-exporter.yaml config.metricsNamePrefix


@dataclass(frozen=True)
class ProbeEvent:
    """The Event the check created: its involved object is a ConfigMap of the same name, created with it."""

    cluster: str
    namespace: str
    name: str
    created_at: float

    @property
    def involved(self) -> str:
        """The probe's involved object as `kind/name`."""
        return f"ConfigMap/{self.name}"

    @property
    def selector(self) -> str:
        """The check's LogQL: the cluster's event streams, the lines naming the probe's involved object."""
        return f'{{job="{EVENTS_JOB}", cluster="{self.cluster}"}} |= "{REASON}" |= "{self.name}"'


def probe_namespace(access: Access, cluster: Cluster) -> str:
    """Where the probe Event is made: the exporter's own namespace (one it watches even when config.namespace narrows
    it), as found; NotFound (not observed, naming what was looked for) or Ambiguous when it cannot be told."""
    return access.located(cluster, "event-exporter").spec.namespace


def new_probe_name(cluster: str) -> str:
    return f"conformance-event-{cluster}-{uuid.uuid4().hex[:12]}"


def _stamp(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventCauser:
    """Creates the probe (a ConfigMap and an Event about it) in one cluster, and deletes both afterwards."""

    def __init__(self, kube: KubeAccess, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self.created: list[ProbeEvent] = []

    def cause(self) -> ProbeEvent:
        name = new_probe_name(self.kube.cluster.name)
        core = self.kube.core()
        cm = self.kube.call("create the probe's ConfigMap", core.create_namespaced_config_map, self.namespace, {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": COMPONENT}},
            "data": {"why": "the involved object of a Kubernetes event the events check follows into Loki"}})
        now = time.time()
        probe = ProbeEvent(self.kube.cluster.name, self.namespace, name, now)
        self.created.append(probe)
        # lastTimestamp now: the exporter drops an event older than its maxEventAgeSeconds (watcher.go).
        self.kube.call("create the probe Event", core.create_namespaced_event, self.namespace, {
            "apiVersion": "v1", "kind": "Event", "metadata": {"name": name},
            "involvedObject": {"apiVersion": "v1", "kind": "ConfigMap", "name": name, "namespace": self.namespace,
                               "uid": cm.metadata.uid},
            "reason": REASON, "type": "Normal", "count": 1, "source": {"component": COMPONENT},
            "message": f"{COMPONENT} follows this event into the primary Loki",
            "firstTimestamp": _stamp(now), "lastTimestamp": _stamp(now)})
        return probe

    def still_there(self, probe: ProbeEvent) -> bool:
        """The Event is still in the API server (Kubernetes keeps events an hour by default)."""
        found = self.kube.call("read the probe Event", self.kube.core().read_namespaced_event, probe.name,
                               probe.namespace, ok=(404,), _request_timeout=10)
        return found is not None

    def cleanup(self) -> None:
        core = self.kube.core()
        for probe in self.created:
            for what, delete in (("delete the probe Event", core.delete_namespaced_event),
                                 ("delete the probe's ConfigMap", core.delete_namespaced_config_map)):
                self.kube.call(what, delete, probe.name, probe.namespace, ok=(404,), _request_timeout=10)
        self.created.clear()


@dataclass(frozen=True)
class Arrival:
    """The probe's entry in Loki: its stream labels and the event it carries."""

    labels: dict[str, str]
    event: dict
    line: str


def find_probe(loki: LokiClient, probe: ProbeEvent, now: float) -> Arrival | None:
    """The probe's entry under job=kubernetes-event, whatever its cluster label (None: not there yet)."""
    query = f'{{job="{EVENTS_JOB}"}} |= "{REASON}" |= "{probe.name}"'
    for stream in loki.streams(query, start=probe.created_at - LOOKBACK, end=now + 60, limit=20):
        for _, line in stream.get("values") or []:
            try:
                event = json.loads(line)
            except ValueError:
                event = {}
            return Arrival(dict(stream.get("stream") or {}), event if isinstance(event, dict) else {}, line)
    return None


def line_problem(arrival: Arrival, probe: ProbeEvent) -> str | None:
    """What the entry lacks of the issue's line (the event's reason and its involved object), or None."""
    involved = arrival.event.get("involvedObject") or {}
    missing = []
    if arrival.event.get("reason") != REASON:
        missing.append(f"reason {REASON}")
    if involved.get("kind") != "ConfigMap" or involved.get("name") != probe.name:
        missing.append(f"involvedObject {probe.involved}")
    if not missing:
        return None
    shape = "is not the event as JSON" if not arrival.event else "has no " + " and no ".join(missing)
    return f"the entry {shape} (a receiver layout that drops them?)"


def label_problem(arrival: Arrival, cluster: str) -> str | None:
    """The entry's stream labels against job=kubernetes-event, cluster=<cluster>; None when they match."""
    have = arrival.labels.get("cluster")
    if have == cluster:
        return None
    carried = f"cluster={have}" if have is not None else "no cluster label"
    return (f"the event arrived under job={EVENTS_JOB} with {carried}, not cluster={cluster} "
            f"(the exporter's loki receiver streamLabels: {json.dumps(arrival.labels, sort_keys=True)})")


def why_not_in_loki(loki: LokiClient, probe: ProbeEvent, in_api: bool | None, now: float) -> str:
    """Where the probe stopped: the exporters' streams in Loki by cluster label, and whether the event still exists."""
    start = now - LOOKBACK
    streams = loki.streams(f'{{job="{EVENTS_JOB}"}}', start=start, end=now, limit=200)
    api = {True: f"the Event {probe.namespace}/{probe.name} is in {probe.cluster}'s API server",
           False: f"the Event {probe.namespace}/{probe.name} is gone from {probe.cluster}'s API server",
           None: f"whether {probe.cluster}'s API server still has the Event is unknown"}[in_api]
    if not streams:
        return (f"{api}, but Loki has no stream with job={EVENTS_JOB} at all in the last {LOOKBACK // 60} min: "
                "no exporter pushes to it (not running, or its push does not reach this Loki; its log names the error)")
    by_cluster: dict[str | None, list[dict]] = {}
    for s in streams:
        by_cluster.setdefault((s.get("stream") or {}).get("cluster"), []).append(s)
    unlabelled = len(by_cluster.pop(None, []))
    clauses = []
    if probe.cluster in by_cluster:
        # The loki sink stamps each entry with its send time, in whole seconds (pkg/sinks/loki.go).
        newest = max(int(v[0]) for s in by_cluster[probe.cluster] for v in s.get("values") or [["0"]]) / 1e9
        if newest < int(probe.created_at):
            clauses.append(f"{api}; {probe.cluster}'s exporter pushed here before the Event was created (its newest "
                           f"entry is {now - newest:.0f} s old) and nothing since: it stopped pushing (not running, "
                           "or its push no longer reaches this Loki: its send_event_errors counter and its log)")
        else:
            clauses.append(f"{api}, and {probe.cluster}'s exporter pushes (its newest entry is {now - newest:.0f} s "
                           f"old), but not this event: does it see events of namespace {probe.namespace} "
                           "(config.namespace), or drop it (maxEventAgeSeconds, a route that does not match)?")
    else:
        others = sorted(c for c in by_cluster)
        seen = f"events of cluster={', cluster='.join(others)}" if others else "events"
        clauses.append(f"{api}; Loki has {seen} under job={EVENTS_JOB} but none with cluster={probe.cluster}: "
                       f"{probe.cluster}'s exporter does not push here")
    if unlabelled:
        clauses.append(f"{unlabelled} stream(s) with job={EVENTS_JOB} carry no cluster label: an exporter pushes "
                       "without cluster in its streamLabels")
    return "; ".join(clauses)


@dataclass(frozen=True)
class SendCounts:
    """The exporter's own counters: events it received (pkg/kube/watcher.go onEvent: events_sent) and sends that
    failed (pkg/exporter/channel_registry.go: send_event_errors, one counter over every receiver); and how many sends
    one event makes at most, from its config (None: the config was not read), with where it was read."""

    received: float
    failed: float
    sends_per_event: int | None = None
    config: str = ""


def sending_rules(route: dict) -> int:
    """The most sends one event causes: every match rule naming a receiver, over the whole route tree
    (pkg/exporter/route.go ProcessEvent sends once per matching rule; a drop rule or a failed match sends fewer)."""
    rules = sum(1 for r in route.get("match") or [] if isinstance(r, dict) and r.get("receiver"))
    return rules + sum(sending_rules(r) for r in route.get("routes") or [] if isinstance(r, dict))


def exporter_config(kube: KubeAccess, pod) -> tuple[dict, str] | None:
    """The exporter's config file: the one data entry with a route or receivers in the ConfigMaps its pod mounts (the
    chart mounts its ConfigMap at /data and passes -conf=/data/config.yaml); None when none or several."""
    found = []
    for volume in pod.spec.volumes or []:
        source = volume.config_map
        if source is None:
            continue
        cm = kube.call(f"read ConfigMap {pod.metadata.namespace}/{source.name}", kube.core().read_namespaced_config_map,
                       source.name, pod.metadata.namespace, ok=(403, 404))
        for key, text in ((cm.data or {}) if cm is not None else {}).items():
            try:
                doc = yamltext.parse(text)
            except yaml.YAMLError:
                continue
            if isinstance(doc, dict) and ("route" in doc or "receivers" in doc):
                found.append((doc, f"ConfigMap {pod.metadata.namespace}/{source.name} {key}"))
    return found[0] if len(found) == 1 else None


def exporter_counts(kube: KubeAccess, namespace: str) -> SendCounts | None:
    """The counters of the cluster's one running exporter, through the API server's pod proxy; None when they
    cannot be read (no such pod, more than one, no permission, no answer): then the wait decides."""
    try:
        pods = kube.call("list the event exporter's pods", kube.core().list_namespaced_pod, namespace,
                         label_selector=EXPORTER_SELECTOR).items
        running = [p for p in pods if p.status and p.status.phase == "Running"]
        if len(running) != 1:
            return None
        path = f"/api/v1/namespaces/{namespace}/pods/{running[0].metadata.name}:{EXPORTER_METRICS_PORT}/proxy"
        text = kube.http("the event exporter's metrics", path, timeout=5, retry=NO_RETRY).request("GET", "/metrics").text
        samples = parse_samples(text)
        config = exporter_config(kube, running[0])
    except (ServiceError, ValueError):
        return None

    def total(name: str) -> float:
        return sum(x.value for x in samples if x.name in (METRICS_PREFIX + name, METRICS_PREFIX + name + "_total"))

    if config is None:
        return SendCounts(total("events_sent"), total("send_event_errors"))
    doc, where = config
    return SendCounts(total("events_sent"), total("send_event_errors"), sending_rules(doc.get("route") or {}), where)


def sends_hopeless(before: SendCounts | None, now: SendCounts | None, cluster: str) -> str | None:
    """Why the probe cannot arrive: every event the exporter received since it was created failed to send, and a
    failed event is dropped (logged at debug level, never retried); None when that is not shown."""
    if before is None or now is None or not now.sends_per_event:
        return None  # without the config, a failed send may be another receiver's: the wait decides
    received, failed = now.received - before.received, now.failed - before.failed
    if received < 1 or failed < received * now.sends_per_event:
        return None
    rules = (f"{now.sends_per_event} sends per event at most, counted from the match rules naming a receiver in its "
             f"{now.config}")
    return (f"{cluster}'s exporter received {received:.0f} event(s) since the probe was created and every send failed "
            f"(event_exporter_send_event_errors +{failed:.0f}; {rules}): it drops a failed event and does not retry "
            "(pkg/exporter/channel_registry.go), so the probe will not arrive; its loki receiver's url is not a Loki "
            "that answers (its log names the error at debug level)")


def exporter_stopped(kube: KubeAccess, namespace: str, deployment: str) -> str | None:
    """Why no exporter can see the probe: no exporter pod exists and its Deployment asks for none (scaled to 0) or is
    gone, so nothing in the cluster starts one; None when a pod exists, one is due, or the API server cannot tell."""
    try:
        pods = kube.call("list the event exporter's pods", kube.core().list_namespaced_pod, namespace,
                         label_selector=EXPORTER_SELECTOR).items
        if any(not (p.status and p.status.phase in ("Succeeded", "Failed")) for p in pods):
            return None
        apps = kubernetes.client.AppsV1Api(kube.api_client)
        found = kube.call(f"read Deployment {namespace}/{deployment}", apps.read_namespaced_deployment, deployment,
                          namespace, ok=(404,))
    except (ServiceError, ValueError):
        return None
    where = f"no pod labelled {EXPORTER_SELECTOR} exists in namespace {namespace}"
    if found is None:
        return f"{where} and the Deployment {namespace}/{deployment} is gone: nothing in the cluster starts an exporter"
    if found.spec is not None and found.spec.replicas == 0:
        return (f"{where} and its Deployment {namespace}/{deployment} is scaled to 0 replicas: nothing in the cluster "
                "starts an exporter")
    return None  # the Deployment wants a pod: the ReplicaSet may be creating it


def max_event_age(config: dict) -> float:
    """The exporter's maxEventAgeSeconds as it applies its config (pkg/exporter/config.go
    validateMaxEventAgeSeconds): the deprecated throttlePeriod when only that is set, 5 s when neither is."""
    age, throttle = config.get("maxEventAgeSeconds") or 0, config.get("throttlePeriod") or 0
    return float(age or throttle or 5)


def exporter_max_age(kube: KubeAccess, namespace: str) -> tuple[float, str] | None:
    """The maxEventAgeSeconds of the exporter's pods' config (the ConfigMap they mount), with where it was read;
    None when no pod's config can be read or the pods' configs disagree."""
    try:
        pods = kube.call("list the event exporter's pods", kube.core().list_namespaced_pod, namespace,
                         label_selector=EXPORTER_SELECTOR).items
        configs = [c for c in (exporter_config(kube, p) for p in pods) if c is not None]
    except (ServiceError, ValueError):
        return None
    ages = {max_event_age(doc) for doc, _ in configs}
    return (ages.pop(), configs[0][1]) if len(ages) == 1 else None


def event_age(probe: ProbeEvent, now: float) -> float:
    """The probe's age as the exporter measures it: from its lastTimestamp, stamped in whole seconds."""
    return now - int(probe.created_at)


def exporter_crash_loop(kube: KubeAccess, namespace: str, until: float) -> str | None:
    """Why no exporter can take the probe before `until` (epoch seconds, when it grows too old to be sent): every
    exporter pod's container waits in CrashLoopBackOff and the kubelet starts it again only after that; else None.

    The kubelet does not start a container whose last run finished less than its back-off ago, and says so in the
    waiting state: "back-off 5m0s restarting failed container=... pod=..." (pkg/kubelet/kuberuntime/
    kuberuntime_manager.go doBackOff)."""
    try:
        pods = kube.call("list the event exporter's pods", kube.core().list_namespaced_pod, namespace,
                         label_selector=EXPORTER_SELECTOR).items
    except (ServiceError, ValueError):
        return None
    whys = []
    for pod in pods:
        looping = []
        for c in (pod.status.container_statuses or []) if pod.status else []:
            waiting, last = c.state.waiting if c.state else None, c.last_state.terminated if c.last_state else None
            m = re.match(r"back-off (\S+) restarting", (waiting.message or "") if waiting else "")
            if waiting and waiting.reason == "CrashLoopBackOff" and m and last and last.finished_at:
                looping.append((c, last, m.group(1), last.finished_at.timestamp() + parse_duration(m.group(1))))
        if not looping or min(at for *_, at in looping) <= until:
            return None  # running, starting, a state this cannot time, or back within the probe's age: the wait decides
        c, last, backoff, at = looping[0]
        exit_ = f"{last.reason or 'exit'} (code {last.exit_code})"
        whys.append(f"pod {namespace}/{pod.metadata.name} container {c.name} is in CrashLoopBackOff ({c.restart_count} "
                    f"restarts, last {exit_}): the kubelet starts it again only {at - time.time():.0f} s from now "
                    f"(back-off {backoff})")
    return "; ".join(whys) or None
