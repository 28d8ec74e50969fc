"""What the kubebench checks read: kube-bench's per-node totals as pushed, their push times, which nodes have none.

Shapes: kube-bench v0.15.6 `--json` (check/controls.go Summary: Totals.total_pass/fail/warn/info), Pushgateway
v1.11.0 (push_time_seconds set by the Pushgateway per group, storage/diskmetricstore.go; honor_labels keeps the
pushed job and instance, else Prometheus renames them exported_*), and the push step of stack/manifests/kube-bench.yaml.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import yaml

from conformance.core import yamltext
from conformance.core.stack import STACK_DIR, StackService, stack_services

MANIFEST = STACK_DIR / "manifests" / "kube-bench.yaml"
# The totals the issue asks for on every node; info is pushed too but not required.
CHECKED = ("pass", "fail", "warn")
PUSH_TIME = "push_time_seconds"
# parts.kube-bench.interval -> (seconds, the CronJob schedule that runs once per interval).
INTERVALS: dict[str, tuple[int, str]] = {
    "1h": (3600, "0 * * * *"), "15m": (900, "*/15 * * * *"), "6h": (21600, "0 */6 * * *"), "24h": (86400, "0 0 * * *"),
}
HONOR_LABELS_SETTING = "serviceMonitor.honorLabels: true (prometheus-pushgateway chart; honor_labels in the scrape config)"


def metric(result: str) -> str:
    """The gauge the push step writes for one total (totals.jq): kube_bench_total_pass, ..."""
    return f"kube_bench_total_{result}"


@cache
def _docs() -> tuple[dict, dict]:
    config_map, cron_job = yamltext.parse_all(MANIFEST.read_text())
    return config_map, cron_job


def push_program() -> str:
    """The jq program of the push step (ConfigMap kube-bench-push, totals.jq)."""
    return _docs()[0]["data"]["totals.jq"]


def _push_container() -> dict:
    return next(c for c in _docs()[1]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"] if c["name"] == "push")


@cache
def push_path_template() -> str:
    """The push step's URL path with $NODE in it: /metrics/job/kube-bench/instance/$NODE/node/$NODE."""
    m = re.search(r'\$PUSHGATEWAY(/metrics/[^"\s]+)', _push_container()["command"][-1])
    if not m:
        raise ValueError(f"{MANIFEST}: the push container's command has no $PUSHGATEWAY/metrics/... URL")
    return m.group(1)


def push_path(node: str) -> str:
    return push_path_template().replace("$NODE", node)


def grouping(node: str) -> dict[str, str]:
    """The grouping labels of a node's push, read from the push path: {job: kube-bench, instance: node, node: node}."""
    parts = push_path(node).removeprefix("/metrics/").split("/")
    return dict(zip(parts[0::2], parts[1::2]))


def push_job() -> str:
    return grouping("x")["job"]


def run_allowance() -> int:
    """How late a run may push: the CronJob's startingDeadlineSeconds plus its Job's activeDeadlineSeconds."""
    spec = _docs()[1]["spec"]
    return int(spec["startingDeadlineSeconds"]) + int(spec["jobTemplate"]["spec"]["activeDeadlineSeconds"])


def max_age(interval: str) -> int:
    """The oldest a healthy node's last push can be: one interval plus one run's allowance."""
    return INTERVALS[interval][0] + run_allowance()


# Each container's image pin (stack/versions.yaml apps:); the manifest names the repository only.
IMAGE_PINS = {"kube-bench": "kube-bench", "totals": "kube-bench", "push": "curl"}


def images(apps: dict[str, str]) -> dict[str, str]:
    """Container name -> the manifest's image repository tagged with its pin."""
    pod = _docs()[1]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return {c["name"]: f"{c['image']}:{apps[IMAGE_PINS[c['name']]]}" for c in pod["initContainers"] + pod["containers"]}


def render_node_manifests(nodes: list[str], interval: str, images: dict[str, str], pushgateway_url: str,
                          namespace: str) -> str:
    """The ConfigMap, and per node a CronJob kube-bench-<node> and its first-run Job, as one YAML stream.

    images: container name -> image with tag (kube-bench, totals, push), from stack/versions.yaml.
    """
    config_map, template = copy.deepcopy(_docs())
    config_map["metadata"]["namespace"] = namespace
    out: list[Any] = [config_map]
    for node in nodes:
        cron = copy.deepcopy(template)
        cron["metadata"].update(name=f"kube-bench-{node}", namespace=namespace)
        cron["spec"]["schedule"] = INTERVALS[interval][1]
        pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        pod["nodeName"] = node
        for c in pod["initContainers"] + pod["containers"]:
            c["image"] = images[c["name"]]
            for env in c.get("env") or []:
                if env["name"] == "PUSHGATEWAY":
                    env["value"] = pushgateway_url
        job = {"apiVersion": "batch/v1", "kind": "Job",
               "metadata": {"name": f"kube-bench-{node}-first", "namespace": namespace, "labels": {
                   **cron["metadata"]["labels"], "monitoring-conformance/run": "first"}},
               "spec": copy.deepcopy(cron["spec"]["jobTemplate"]["spec"])}
        out += [cron, job]
    return yaml.safe_dump_all(out, sort_keys=False)


def age_text(seconds: float) -> str:
    """E.g. 7260 -> '2 h 1 min', 95 -> '1 min 35 s', 900 -> '15 min'."""
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60} min"
    if s >= 60:
        return f"{s // 60} min" + (f" {s % 60} s" if s % 60 else "")
    return f"{s} s"


@dataclass(frozen=True)
class Totals:
    """One cluster's kube-bench totals on the primary: node -> result -> value."""

    by_node: dict[str, dict[str, float]]

    def nodes_with_all(self) -> list[str]:
        return sorted(n for n, r in self.by_node.items() if all(k in r for k in CHECKED))

    def incomplete(self) -> dict[str, list[str]]:
        """node -> the totals it lacks."""
        return {n: [k for k in CHECKED if k not in r] for n, r in sorted(self.by_node.items())
                if any(k not in r for k in CHECKED)}


def totals_from(results: dict[str, list[dict]]) -> Totals:
    """result -> instant-query vector of kube_bench_total_<result>, grouped by the pushed `node` label."""
    by_node: dict[str, dict[str, float]] = {}
    for result, vector in results.items():
        for s in vector:
            by_node.setdefault(s["metric"].get("node", ""), {})[result] = float(s["value"][1])
    return Totals(by_node)


def stale(ages: dict[str, float], limit: float) -> dict[str, float]:
    """node -> age of each group older than limit."""
    return {n: a for n, a in sorted(ages.items()) if a > limit}


def pushgateway_pool(spec: StackService | None = None) -> str:
    """The scrape pool the operator makes of the Pushgateway chart's ServiceMonitor: named as its Service (the chart's
    fullname, templates/servicemonitor.yaml), in its namespace, endpoint 0 (promcfg.go); `spec` is where the Service
    was found, else the bring-up's."""
    spec = spec or stack_services()["pushgateway"]
    return f"serviceMonitor/{spec.namespace}/{spec.service}/0"


def renamed_labels(series: list[dict], job: str) -> str | None:
    """Why the pushed job label is never on these series: the scrape renamed it (no honor_labels), or None.

    Without honor_labels Prometheus keeps the target's job and instance and renames the pushed ones exported_*
    (scrape/target.go); every later scrape does the same, so waiting will not bring job=<pushed job>."""
    renamed = [s for s in series if s.get("exported_job") == job]
    if not renamed:
        return None
    s = renamed[0]
    return (f"the kube-bench series are there but their pushed labels were renamed: job={s.get('job')}, "
            f"exported_job={job}, exported_instance={s.get('exported_instance')}: the Pushgateway is scraped "
            f"without honor_labels; set {HONOR_LABELS_SETTING}")


def why_no_totals(on_primary: list[dict], on_cluster: list[dict] | None, groups: list[dict[str, str]] | None,
                  cluster: str, primary: str, job: str, label: str = "cluster") -> str:
    """Why the primary has no kube-bench totals with <label>=<cluster>, from what each hop holds.

    on_primary / on_cluster: series of kube_bench_total_* with <label>=<cluster> (any job) on the primary and on the
    cluster's own Prometheus (None when it cannot be asked); groups: the cluster's Pushgateway's grouping labels;
    label: the external label the cluster's Prometheus resource names it by (conformance/probes/metrics/series_label.py).
    """
    if why := renamed_labels((on_cluster or []) + on_primary, job):
        return why
    if on_cluster:
        return (f"the {cluster} Prometheus has {len(on_cluster)} kube-bench series but the {primary} Prometheus none "
                f"with {label}={cluster}: its remote_write does not carry them")
    if groups is None:
        return ""
    mine = sorted(g.get("node", g.get("instance", "")) for g in groups if g.get("job") == job)
    if mine:
        return (f"the {cluster} Pushgateway holds job={job} groups for {', '.join(mine)}, but its Prometheus has no "
                "kube_bench_* series: is the Pushgateway scraped (its ServiceMonitor labelled for the stack's selector)?")
    return (f"the {cluster} Pushgateway holds no job={job} group: no kube-bench run pushed (CronJobs kube-bench-<node> "
            "in the stack namespace; the push container's log of their last Job says why)")


def never_pushed(nodes: list[str], groups: list[dict[str, str]], job: str) -> list[str]:
    """The nodes the Pushgateway holds no group of `job` for: only that node's own run can add one."""
    pushed = {g.get("node", g.get("instance", "")) for g in groups if g.get("job") == job}
    return [n for n in nodes if n not in pushed]


def no_group_words(cluster: str, never: list[str]) -> str:
    """Why the nodes' totals cannot come within a wait: nothing of theirs was ever pushed to the Pushgateway."""
    cronjobs = ", ".join(f"kube-bench-{n}" for n in never)
    return (f"the {cluster} Pushgateway holds no group for {', '.join(never)}: "
            f"{'its' if len(never) == 1 else 'their'} CronJob {cronjobs} has not pushed")


def why_nodes_missing(missing: list[str], groups: list[dict[str, str]], cluster: str, job: str) -> str:
    """Where the missing nodes' totals stopped: never pushed, or held by the Pushgateway and not on the primary."""
    never = never_pushed(missing, groups, job)
    held = [n for n in missing if n not in never]
    words = [no_group_words(cluster, never)] if never else []
    if held:
        words.append(f"the {cluster} Pushgateway holds {', '.join(held)} but the primary does not")
    return "; ".join(words)
