"""What the mesh checks read of a cluster's scrape pools: the mesh monitor's pool in the configuration Prometheus
loaded and its targets, why a pool is missing (the monitor's selection), and whether any pod carries Istio's sidecar."""

from __future__ import annotations

from dataclasses import replace

from conformance.core import timing
from conformance.core.access import ServiceAbsent
from conformance.core.eventually import NotYet, eventually
from conformance.core.outcomes import Failed, PreconditionUnmet, TimedOut
from conformance.core.pods import SIDECAR, is_injected
from conformance.probes.mesh.monitors import MeshMonitor, MonitorRule, mesh_monitor
from conformance.probes.metrics.monitor_selection import monitor_not_selected_words, not_selected_words, require_selected

# The monitors scrape at the stack's interval; the operator needs a reload after a monitor changes: five rounds.
SCRAPE_WAIT = timing.scraped(rounds=5)
NO_SIDECAR = (f"no pod there has an {SIDECAR} container, so there is no Envoy to scrape; the bring-up keeps "
              "an injected sample/sleep (one replica) on every remote, and the traffic generator runs only during the mesh check")


def injected_pods(access, cluster) -> list | None:
    """The pods carrying Istio's sidecar on the cluster; None when this run cannot list its pods."""
    try:
        kube = access.kube(cluster)
    except ServiceAbsent:
        return None
    pods = kube.call(f"list pods on {cluster.name}", kube.core().list_pod_for_all_namespaces).items
    return [p for p in pods if is_injected(p)]


def require_an_injected_pod(access, cluster, hop: str) -> None:
    """Fail at once, saying so, when no injected pod runs on the cluster: no wait can make an Envoy appear."""
    if injected_pods(access, cluster) == []:
        raise Failed(hop, f"no injected pod runs on {cluster.name}", NO_SIDECAR)


def pool_targets(prometheus, pool: str) -> list[dict]:
    return [t for t in prometheus.active_targets() if t.get("scrapePool") == pool]


def not_selected(access, cluster, rule: MonitorRule, monitor: MeshMonitor) -> str:
    """Why the monitor's pool is missing (what the Prometheus resource selects), and, for a monitor other than this
    project's own, how it was found or what was looked for (the bring-up's name assumed)."""
    if monitor.how.startswith("bring-up name"):  # this project's monitor, found or assumed: its labels are known
        words = not_selected_words(access, cluster, rule.manifest)
    else:
        words = monitor_not_selected_words(access, cluster, monitor.kind, monitor.namespace, monitor.name, "was found")
    return words if monitor.how == "bring-up name" else f"{words}; monitor: {monitor} ({monitor.how})"


def require_monitor(access, cluster, rule: MonitorRule, hop: str, record_property) -> MeshMonitor:
    """The cluster's mesh monitor for `rule` (recorded with how it was found), failing at once when not selected."""
    monitor = mesh_monitor(access, cluster, rule)
    record_property("monitor", f"{monitor} ({monitor.how})")
    if not monitor.how.startswith("bring-up name;"):  # a monitor the cluster has: judge its selection
        require_selected(access, cluster, monitor.kind, monitor.namespace, monitor.name, hop, record_property)
    return monitor


def pools_scraping(prometheus, rule: MonitorRule) -> list[str]:
    """The scrape pools whose active targets scrape what the rule's monitor would (a job of the user's own)."""
    return sorted({t.get("scrapePool", "") for t in prometheus.active_targets() if rule.scrapes(t)})


def mesh_pools(prometheus, rule: MonitorRule, monitor: MeshMonitor, record_property) -> tuple[list[str], MeshMonitor]:
    """The pools to judge: the monitor's; where no monitor was found and the loaded configuration lacks the pool
    assumed, the pools of its own that scrape the same endpoints (recorded), else the one assumed, its search said."""
    jobs = prometheus.configured_jobs()
    if not monitor.how.startswith("bring-up name;") or jobs is None or monitor.pool in jobs:
        return [monitor.pool], monitor
    if pools := pools_scraping(prometheus, rule):
        record_property("monitor", f"none: scrape pool {', '.join(pools)} scrapes {rule.scraping} ({monitor.how})")
        return pools, monitor
    return [monitor.pool], replace(monitor, how=f"{monitor.how}; no target of {prometheus.name} scrapes {rule.scraping}")


def require_pool_configured(prometheus, pool: str, hop: str, not_selected: str) -> None:
    """Fail at once when the configuration Prometheus has loaded has no such scrape job: the operator renders one
    for every monitor it selects, so none means none selected, and no wait turns up its targets."""
    jobs = prometheus.configured_jobs()
    if jobs is not None and pool not in jobs:
        loaded = prometheus.runtimeinfo().get("lastConfigTime", "")
        raise PreconditionUnmet(hop, f"the configuration {prometheus.name} loaded has no scrape pool {pool}: {not_selected}",
                                f"scrape jobs of the configuration loaded at {loaded or 'an unknown time'}: {sorted(jobs)}")


def require_pool_up(prometheus, pool: str, hop: str, not_selected: str, precheck=lambda: None) -> list[dict]:
    """Wait for the scrape pool to have targets; fail at once, listing them, when any is down.

    precheck() runs while the pool is empty and may fail at once (no pod the monitor could select)."""
    require_pool_configured(prometheus, pool, hop, not_selected)

    def probe():
        targets = pool_targets(prometheus, pool)
        if not targets:
            precheck()
            pools = sorted({t.get("scrapePool", "") for t in prometheus.active_targets()})
            raise NotYet(f"no scrape pool {pool}; pools: {pools}")
        if any(t.get("health") == "unknown" for t in targets):
            raise NotYet(f"{pool}: targets not scraped yet")
        return targets

    try:
        targets = eventually(probe, hop=hop, what=f"no targets in scrape pool {pool}", wait=SCRAPE_WAIT,
                             diagnose=lambda: not_selected)
    except TimedOut as e:
        # The wait covered the operator's reload: no pool in this run, so the checks that need its series stop
        # at once (the hop board) instead of waiting as long again for series nothing scrapes.
        raise TimedOut(e.hop, e.diagnosis, e.evidence, final=True) from None
    down = [t for t in targets if t.get("health") != "up"]
    if down:
        raise Failed(hop, f"{len(down)} of {len(targets)} targets in {pool} are down",
                     "\n".join(f"{t.get('scrapeUrl')}: {t.get('lastError')}" for t in down))
    return targets
