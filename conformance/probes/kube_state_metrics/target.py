"""What the kube-state-metrics checks read: its scrape target, the canary pod's series, and why they are missing.

kube-state-metrics v2.20.0 (internal/store/pod.go) describes every pod it watches with kube_pod_info
{namespace, pod, ...} and kube_pod_status_ready{condition="true"|"false"|"unknown"} (1 for the pod's Ready
condition status). kube-prometheus-stack 88.5.3 scrapes it through the subchart's ServiceMonitor
(kube-state-metrics 8.4.0 templates/servicemonitor.yaml: port http, jobLabel app.kubernetes.io/name, honorLabels
true from the parent's values), so the series keep ksm's namespace and pod labels, not the target's.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from conformance.core.access import Access, ServiceAbsent
from conformance.clients.prometheus import PrometheusClient
from conformance.core.http import ServiceError
from conformance.probes.metrics.remote_write.config import parse_duration
from conformance.probes.platform.scrape_jobs import RequiredJob
from conformance.probes.platform.targets import ScrapeTarget, Seen
from conformance.core.stack import StackService, stack_services
from conformance.core.topology import Cluster

JOB = "kube-state-metrics"  # the subchart Service's app.kubernetes.io/name (its ServiceMonitor's jobLabel)
# The chart values that decide what the ServiceMonitor scrapes and what ksm watches, for diagnoses.
MONITOR_SETTING = "kubeStateMetrics.enabled and kube-state-metrics.prometheus.monitor.enabled (both true by default)"
HONOR_SETTING = "honorLabels: true on the ServiceMonitor endpoint: kube-state-metrics.prometheus.monitor.http.honorLabels"
NAMESPACES_SETTING = "kube-state-metrics.namespaces / releaseNamespace / namespacesDenylist (--namespaces, --namespaces-denylist)"


def ksm_job(spec: StackService | None = None) -> RequiredJob:
    """The chart's kube-state-metrics ServiceMonitor (the scrape pool it owns): named as its Service, in its namespace
    (kube-state-metrics 8.4.0 templates/servicemonitor.yaml); `spec` is where the Service was found, else the bring-up's."""
    spec = spec or stack_services()["kube-state-metrics"]
    return RequiredJob(JOB, f"serviceMonitor/{spec.namespace}/{spec.service}",
                       "kube-prometheus-stack values (kube-state-metrics subchart)")


def cluster_ksm_job(access: Access, cluster: Cluster) -> RequiredJob:
    """The scrape pool of the cluster's kube-state-metrics as found there; the bring-up's name where it cannot be looked
    for or is not found (then the target check says no such pool). Two candidates stop the check, not observed."""
    try:
        return ksm_job(access.located(cluster, "kube-state-metrics").spec)
    except ServiceAbsent:
        return ksm_job()


@dataclass(frozen=True)
class TargetState:
    """The kube-state-metrics targets of one Prometheus: how many, which are down and why."""

    count: int
    down: list[str]  # "url: health: lastError"
    dropped: int  # targets of the pool that relabelling dropped

    @property
    def up(self) -> bool:
        return self.count > 0 and not self.down


def target_state(prom: PrometheusClient, job: RequiredJob | None = None) -> TargetState:
    job = job or ksm_job()
    data = prom.targets("any")
    active = [t for t in data.get("activeTargets") or [] if job.owns(t)]
    dropped = [t for t in data.get("droppedTargets") or [] if str(t.get("discoveredLabels", {}).get("job", "")).startswith(job.monitor)]
    down = [f"{t.get('scrapeUrl')}: {t.get('health')}: {t.get('lastError') or '(not scraped yet)'}"
            for t in active if t.get("health") != "up"]
    return TargetState(len(active), down, len(dropped))


def describe_targets(state: TargetState, prom_name: str, job: RequiredJob | None = None) -> str:
    """The target's state, for a wait's last observation and a diagnosis."""
    job = job or ksm_job()
    if state.count == 0:
        extra = f" ({state.dropped} dropped by relabelling)" if state.dropped else ""
        return (f"the {prom_name} has no {JOB} target (scrape pool {job.monitor}/0){extra}: is kube-state-metrics "
                f"installed and its ServiceMonitor selected? ({MONITOR_SETTING})")
    if state.down:
        return f"{len(state.down)} of {state.count} {JOB} targets of the {prom_name} down: " + "; ".join(state.down[:3])
    return f"{state.count} {JOB} target(s) of the {prom_name} up"


def scrape_target(job: RequiredJob, kube, until: float) -> ScrapeTarget:
    """kube-state-metrics' row of "scraped on every cluster": its targets by the pool `job` owns (not judged from the
    loaded configuration), final when its pod's crash-loop back-off (read through `kube`, where given) outlasts
    `until` (epoch seconds, the wait's end)."""

    def read(prometheus: PrometheusClient) -> Seen:
        state = target_state(prometheus, job)
        return Seen(state.up, describe_targets(state, prometheus.name, job), state)

    def hopeless(prometheus: PrometheusClient, seen: Seen) -> str | None:
        if seen.found.down and kube is not None and (why := crash_loop(kube, prometheus, until, job)):
            return f"{JOB} not scraped: {seen.said}; {why}"
        return None

    return ScrapeTarget(job.pool_prefix + "0", f"{JOB} not scraped", read, hopeless=hopeless,
                        diagnose=lambda prometheus: describe_targets(target_state(prometheus, job), prometheus.name, job))


@dataclass(frozen=True)
class Canary:
    """The pod the check made on a cluster, for kube-state-metrics to describe."""

    cluster: str
    namespace: str
    pod: str

    def selector(self, metric: str, **more: str) -> str:
        labels = {"namespace": self.namespace, "pod": self.pod, **more}
        return metric + "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def primary_matcher(canary: Canary, is_primary: bool, label: str = "cluster") -> dict[str, str]:
    """The cluster label the canary's series carry on the primary.

    A remote's series arrive through remote_write, which adds its external label `label` (conformance/probes/metrics/series_label.py).
    The primary's own series are stored as scraped: its external labels apply to what leaves it (remote_write, alerts,
    federation), never to its own queries, so there they carry no cluster label unless a relabelling adds one.
    """
    return {label: canary.cluster} if not is_primary else {}


def labels_renamed(prom: PrometheusClient, canary: Canary) -> str | None:
    """Why the canary's own namespace and pod labels never arrive: the scrape renamed them exported_*, or None.

    Without honor_labels every scrape keeps the target's namespace and pod and renames kube-state-metrics' own
    (scrape/target.go), so no wait brings kube_pod_info{namespace=<canary's>, pod=<canary's>}."""
    exported = f'kube_pod_info{{exported_namespace="{canary.namespace}", exported_pod="{canary.pod}"}}'
    if not prom.query(exported):
        return None
    return (f"the {prom.name} has the canary as {exported}: its scrape does not honor labels, so the "
            f"target's namespace and pod replaced kube-state-metrics' own ({HONOR_SETTING})")


def why_not_described(cluster_prom: PrometheusClient | None, primary_prom: PrometheusClient, canary: Canary,
                      is_primary: bool, job: RequiredJob | None = None, label: str = "cluster") -> str:
    """Which hop loses the canary's kube_pod_info: the target, kube-state-metrics itself, or remote_write."""
    local = cluster_prom or (primary_prom if is_primary else None)
    try:
        elsewhere = [s["metric"].get(label, "(none)") for s in primary_prom.query(canary.selector("kube_pod_info"))]
        if elsewhere:
            return (f"the primary has kube_pod_info for the canary with {label}={', '.join(sorted(set(elsewhere)))}, "
                    f"not {canary.cluster}: whose external label is that?")
        if local is None:
            return ""
        state = target_state(local, job)
        if not state.up:
            return describe_targets(state, local.name, job)
        if why := labels_renamed(local, canary):
            return why
        if local.query(canary.selector("kube_pod_info")):
            return (f"the {local.name} has the canary's kube_pod_info but the primary has not: the remote_write hop "
                    f"loses it (see the metrics checks for {canary.cluster})")
        namespaces = sorted(s["metric"].get("namespace", "") for s in local.query("count by (namespace) (kube_pod_info)"))
        if not namespaces:
            return (f"its {JOB} target is up but the {local.name} has no kube_pod_info at all: kube-state-metrics "
                    f"describes no pod (--resources without pods, {NAMESPACES_SETTING} naming namespaces without "
                    "pods, or RBAC that cannot list pods)")
        return (f"the canary pod {canary.namespace}/{canary.pod} exists in the API server, but kube-state-metrics "
                f"does not describe it: it describes pods in namespaces {', '.join(namespaces)} only "
                f"({NAMESPACES_SETTING})")
    except ServiceError as e:
        return f"(could not be asked: {e.headline})"


def ksm_pods(prom: PrometheusClient, job: RequiredJob | None = None) -> list[tuple[str, str]]:
    """(namespace, pod) of each kube-state-metrics target: the target labels the operator's endpoints discovery adds."""
    job = job or ksm_job()
    return sorted({(t["labels"]["namespace"], t["labels"]["pod"]) for t in prom.active_targets()
                   if job.owns(t) and t.get("labels", {}).get("namespace") and t.get("labels", {}).get("pod")})


def flags(args: list[str]) -> dict[str, str]:
    """--name=value arguments of a container, by name (the chart renders each as one --name=value)."""
    return dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)


def restriction(args: list[str], namespace: str) -> str | None:
    """Why a kube-state-metrics run with these arguments never describes a pod of `namespace`, or None.

    kube-state-metrics v2.20.0 (pkg/options/options.go, types.go): --resources lists the stores it builds (every
    default one when absent), --namespaces the namespaces it watches (all when absent), --namespaces-denylist the
    ones it leaves out (a field selector on every namespace's watch); a --config file overrides the flags: then None."""
    given = flags(args)
    if given.get("config"):
        return None  # the options file decides, and it is not in the pod spec (configured_away says so)
    if given.get("custom-resource-state-only") == "true":
        return "it runs with --custom-resource-state-only=true: it describes no pod at all"
    resources = [r for r in given.get("resources", "").split(",") if r]
    if resources and "pods" not in resources:
        return f"its --resources={given['resources']} has no pods: it describes no pod at all"
    namespaces = [n for n in given.get("namespaces", "").split(",") if n]
    if namespaces and namespace not in namespaces:
        return f"it watches --namespaces={given['namespaces']} only, not {namespace}"
    denied = [n for n in given.get("namespaces-denylist", "").split(",") if n]
    if namespace in denied:
        return f"its --namespaces-denylist={given['namespaces-denylist']} leaves {namespace} out"
    return None


@dataclass(frozen=True)
class ArgsVerdict:
    """What kube-state-metrics' own arguments say about a namespace."""

    never: str | None = None  # why no pod of the namespace is ever described
    unread: str = ""  # why the arguments could not be judged ("" when they were)


def configured_away(kube, prom: PrometheusClient, namespace: str, job: RequiredJob | None = None) -> ArgsVerdict:
    """Whether the kube-state-metrics the Prometheus scrapes can describe a pod of `namespace`, from its pods'
    arguments in the API server; when they cannot be read, why (then the wait decides)."""
    whys = []
    try:
        pods = ksm_pods(prom, job)
        for ns, name in pods:
            pod = kube.call("read the kube-state-metrics pod", kube.core().read_namespaced_pod, name, ns, ok=(404,))
            if pod is None:
                return ArgsVerdict(unread=f"its target's pod {ns}/{name} is not in the API server")
            mine = [c for c in pod.spec.containers if c.name == JOB] or [c for c in pod.spec.containers if JOB in (c.image or "")]
            if not mine:
                return ArgsVerdict(unread=f"pod {ns}/{name} has no {JOB} container")
            args = list(mine[0].args or [])
            if flags(args).get("config"):
                return ArgsVerdict(unread=f"pod {ns}/{name} reads an options file (--config), which overrides its flags")
            why = restriction(args, namespace)
            if why is None:
                return ArgsVerdict()  # one of them describes it
            whys.append(f"pod {ns}/{name}: {why}")
    except ServiceError as e:
        return ArgsVerdict(unread=e.headline)
    return ArgsVerdict(never="; ".join(whys)) if whys else ArgsVerdict(unread=f"the {prom.name} has no {JOB} target to read the pod of")


def crash_loop(kube, prom: PrometheusClient, until: float, job: RequiredJob | None = None) -> str | None:
    """Why no kube-state-metrics target of the Prometheus can be up before `until` (epoch seconds): its container
    waits in CrashLoopBackOff and the kubelet's back-off starts it again only after that; else None.

    The kubelet does not start a container whose last run finished less than its back-off ago, and says so in the
    waiting state: "back-off 5m0s restarting failed container=... pod=..." (pkg/kubelet/kuberuntime/
    kuberuntime_manager.go doBackOff)."""
    whys = []
    try:
        for ns, name in ksm_pods(prom, job):
            pod = kube.call("read the kube-state-metrics pod", kube.core().read_namespaced_pod, name, ns, ok=(404,))
            statuses = [c for c in (pod.status.container_statuses or []) if c.name == JOB] if pod else []
            if not statuses:
                return None
            c = statuses[0]
            waiting, last = c.state.waiting if c.state else None, c.last_state.terminated if c.last_state else None
            m = re.match(r"back-off (\S+) restarting", (waiting.message or "") if waiting else "")
            if not (waiting and waiting.reason == "CrashLoopBackOff" and m and last and last.finished_at):
                return None  # running, starting, or a state this cannot time: the wait decides
            restart_at = last.finished_at.timestamp() + parse_duration(m.group(1))
            if restart_at <= until:
                return None  # it starts again within the wait: it may come up
            exit_ = f"{last.reason or 'exit'} (code {last.exit_code})" + (f": {last.message.strip()[:200]}" if last.message else "")
            whys.append(f"pod {ns}/{name} is in CrashLoopBackOff ({c.restart_count} restarts, last {exit_}): the kubelet "
                        f"starts it again only {restart_at - time.time():.0f} s from now (back-off {m.group(1)}), after "
                        "this wait; its log says why it exits")
    except ServiceError:
        return None
    return "; ".join(whys) or None


def ready_values(prom: PrometheusClient, canary: Canary) -> dict[str, float]:
    """condition -> value of the canary's kube_pod_status_ready series (the pod's name is the run's own)."""
    return {s["metric"].get("condition", ""): float(s["value"][1])
            for s in prom.query(canary.selector("kube_pod_status_ready"))}
