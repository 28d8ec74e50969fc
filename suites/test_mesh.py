"""mesh: Envoy sidecars and istiod are scraped in every cluster, and mesh traffic is measured across clusters."""

from __future__ import annotations

from contextlib import nullcontext

import pytest

from conformance.core.access import DeclaredAbsent, service_title
from conformance.core import timing
from conformance.core.eventually import NotYet, eventually
from conformance.core.manifests import traffic_generator
from conformance.probes.mesh.monitors import ENVOY, ISTIOD
from conformance.probes.mesh.scrape_pools import (
    SCRAPE_WAIT, mesh_pools, not_selected, require_an_injected_pod, require_monitor, require_pool_up,
)
from conformance.core.outcomes import Failed
from conformance.probes.metrics.promql import on_primary
from conformance.probes.metrics.series_label import series_label
from conformance.probes.mesh.traffic import AppMissing, sample_crossing, traffic_running

pytestmark = pytest.mark.mesh

# istio_requests_total exists only after traffic; two more scrape intervals than a forwarded series
# (docs/troubleshooting.md#no-request-metrics-before-traffic).
TRAFFIC_WAIT = timing.after_traffic()


@pytest.mark.requirement("must")
@pytest.mark.hop("envoy[{cluster}]")
def test_envoy_sidecars_are_scraped(cluster, prometheus, access, record_property):
    """The Envoy PodMonitor's scrape pool (without one, a pool of the cluster's own scraping /stats/prometheus) exists
    in the cluster's Prometheus and its targets are up."""
    hop = f"{cluster.name} Envoy → {service_title(cluster, 'prometheus')}"
    monitor = require_monitor(access, cluster, ENVOY, hop, record_property)
    pools, monitor = mesh_pools(prometheus, ENVOY, monitor, record_property)
    why = not_selected(access, cluster, ENVOY, monitor)
    targets = [t for pool in pools for t in require_pool_up(prometheus, pool, hop, why,
                                                            precheck=lambda: require_an_injected_pod(access, cluster, hop))]
    record_property("envoy_targets", len(targets))


# A remote's Envoy series travel its remote-write hop (metrics[...] covers a disabled receiver too); no check
# judges metrics[<primary>] or sender[<primary>], so for the primary only its Prometheus counts.
@pytest.mark.hop(needs=["prometheus[{primary}]", "metrics[{cluster}]", "sender[{cluster}]"])
@pytest.mark.requirement("must")
@pytest.mark.hop(needs=["envoy[{cluster}]"])
def test_envoy_series_are_queryable_on_the_primary(cluster, primary, primary_prometheus, access, record_property):
    """Envoy series from the cluster are on the primary (the remote's through remote write)."""
    via = "" if cluster.is_primary else " (remote_write)"
    hop = f"{cluster.name} Envoy → {primary.name} Prometheus{via}"
    label = series_label(access, cluster)
    record_property("cluster_label", str(label))
    query = f"count(envoy_server_uptime{{{on_primary(cluster, label.name)}}})"

    def probe():
        result = primary_prometheus.query(query)
        if not result:
            require_an_injected_pod(access, cluster, hop)
            raise NotYet(f"{query} is empty on the primary")
        return int(float(result[0]["value"][1]))

    count = eventually(probe, hop=hop, what=f"no Envoy series of {cluster.name}", wait=SCRAPE_WAIT)
    record_property("envoy_series", count)


@pytest.mark.hop(needs=["prometheus[{primary}]"])
@pytest.mark.requirement("must")
def test_istiod_is_scraped_with_its_metrics(primary, primary_prometheus, access, record_property):
    """istiod's ServiceMonitor target is up, and pilot_xds_pushes and istio_build are present."""
    hop = f"{primary.name} istiod → {primary.name} Prometheus"
    monitor = require_monitor(access, primary, ISTIOD, hop, record_property)
    pools, monitor = mesh_pools(primary_prometheus, ISTIOD, monitor, record_property)
    why = not_selected(access, primary, ISTIOD, monitor)
    targets = [t for pool in pools for t in require_pool_up(primary_prometheus, pool, hop, why)]
    # The job its targets carry (the Service's name, or its jobLabel's value: `pilot` under Istio's sample monitor).
    jobs = "|".join(sorted({(t.get("labels") or {}).get("job", "") for t in targets} - {""})) or ".*istiod.*"
    missing = []
    for metric in ("pilot_xds_pushes", "istio_build"):
        result = primary_prometheus.query(f'count({metric}{{job=~"{jobs}"}}) or count({metric}{{component="pilot"}})')
        if not result:
            missing.append(metric)
    record_property("istiod_metrics_missing", len(missing))
    if missing:
        raise Failed(hop, f"istiod is scraped but {', '.join(missing)} is missing",
                     "istiod exports pilot_xds_pushes and istio_build on http-monitoring (15014)")


@pytest.mark.writes
@pytest.mark.hop(needs=["prometheus[{primary}]", "receiver[{primary}]", "metrics[{remote}]", "sender[{remote}]"])
@pytest.mark.requirement("must")
@pytest.mark.hop(needs=["envoy[{remote}]", "envoy[{primary}]"])  # the client's sidecar reports source, the server's destination
def test_mesh_requests_cross_from_the_remote_to_the_primary(remote, primary, primary_prometheus, access, record_property):
    """With the sample app's traffic, istio_requests_total shows its 2xx request from the remote to the primary."""
    hop = f"{remote.name} sample client → {primary.name} sample server (mesh)"
    crossing_request = sample_crossing(remote.name)
    by = "sum by (destination_cluster, reporter, response_code)"
    query = f"{by} (istio_requests_total{{{crossing_request.selector()}}})"
    any_code = f"{by} (istio_requests_total{{{crossing_request.selector(response_code=None)}}})"

    def crossing_series(promql: str) -> list[dict]:
        return [s["metric"] for s in primary_prometheus.query(promql) if s["metric"].get("destination_cluster") == primary.name]

    # Only requests made while the check runs count: a series left by earlier traffic stays queryable until it goes
    # stale (a stopped pod's, minutes on a remote), so each series (every label, the pod's too) must be new or grow.
    raw = f"istio_requests_total{{{crossing_request.selector()}}}"

    def counts() -> dict[frozenset, float]:
        return {frozenset(s["metric"].items()): float(s["value"][1]) for s in primary_prometheus.query(raw)
                if s["metric"].get("destination_cluster") == primary.name}

    before = counts()

    def grown_since_start() -> list[dict]:
        return [dict(m) for m, n in counts().items() if n > before.get(m, -1.0)]

    def probe():
        grown = grown_since_start()
        if not grown:
            seen = [s["metric"] for s in primary_prometheus.query(any_code)]
            raise NotYet(f"2xx requests from {remote.name} since the check began ({crossing_request.selector()}): none; "
                         f"any code, any time: {seen or 'none'}")
        # The server's sidecar is scraped on the primary itself; the client's arrives later, through
        # remote write: wait for both instead of judging the first half that shows up.
        reporters = sorted({p.get("reporter") for p in grown})
        if reporters != ["destination", "source"]:
            raise NotYet(f"the crossing request is reported by {reporters} only; series: {grown}")
        return grown

    def diagnose() -> str:
        codes = sorted({p.get("response_code", "") for p in crossing_series(any_code)} - {""})
        if codes and not any(c.startswith("2") for c in codes):
            return f"requests cross but answer response_code {', '.join(codes)} only, never 2xx"
        if before and not grown_since_start():
            return (f"{len(before)} series of earlier 2xx requests are there, but none grew while the check ran: "
                    "no request crossed during it")
        reporters = sorted({p.get("reporter") for p in crossing_series(query)})
        return f"reported by {reporters} only; both sidecars should report it" if reporters else ""

    try:
        traffic = traffic_running(access.kube(remote), traffic_generator())
    except DeclaredAbsent:  # no API server to start the generator with: traffic already flowing can still be seen
        traffic = None
    if traffic is None and not primary_prometheus.query(any_code):
        pytest.skip(f"no mesh traffic from {remote.name} to observe, and this run cannot start the sample app's "
                    f"traffic generator (no Kubernetes access)")
    try:
        with traffic or nullcontext():
            crossing = eventually(probe, hop=hop, what=f"no istio_requests_total from {remote.name} to {primary.name}",
                                  wait=TRAFFIC_WAIT, diagnose=diagnose)
    except AppMissing as e:
        pytest.skip(f"the sample mesh app is not deployed ({e}); `nox -s up` deploys it from stack/app/")
    record_property("cross_cluster_series", len({(p.get("reporter"), p.get("response_code")) for p in crossing}))
