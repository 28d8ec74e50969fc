"""kube-state-metrics (optional part): scraped on every cluster, and describing the canary pod on the primary."""

from __future__ import annotations

import time
import warnings
from typing import Iterator

import pytest

from conformance.clients.prometheus import PrometheusClient
from conformance.core import timing
from conformance.probes.metrics.remote_write.config import scrape_interval_of
from conformance.core.eventually import NotYet, eventually
from conformance.core.hops import hop
from conformance.probes.kube_state_metrics.target import (
    JOB, NAMESPACES_SETTING, ArgsVerdict, cluster_ksm_job, configured_away, labels_renamed, primary_matcher, ready_values,
    scrape_target, why_not_described,
)
from conformance.probes.platform.targets import require_scraped
from conformance.core.outcomes import Failed, PreconditionUnmet
from conformance.probes.metrics.series_label import series_label
from conformance.core.stack import canary_spec
from conformance.probes.kube_state_metrics.state_canary import StateCanary

pytestmark = [pytest.mark.kube_state_metrics, pytest.mark.part("kube-state-metrics")]

# Both waits follow the scrape interval the cluster's Prometheus loaded (the stack's own where it cannot be read): a
# target is listed and scraped within a few intervals; ksm sees the pod through its watch at once, then one scrape and,
# for a remote, one remote-write batch put it on the primary.


@pytest.fixture
def state_canary(cluster, access) -> Iterator[StateCanary]:
    """A running pod on the cluster (not applicable where its provider has no API server), its namespace deleted
    after the check (also when it fails)."""
    made = StateCanary(access.kube(cluster), canary_spec())
    yield made
    made.cleanup()


@pytest.mark.hop("ksm_scrape[{cluster}]")
@pytest.mark.requirement("must")
def test_kube_state_metrics_is_scraped(cluster, primary, prometheus, access, record_property):
    """The cluster's Prometheus has the chart's kube-state-metrics target (its ServiceMonitor named as the Service
    found), and it is up."""
    name = hop("kube-state-metrics", cluster, primary)
    wait = timing.scraped(scrape_interval_of(prometheus))
    row = scrape_target(cluster_ksm_job(access, cluster), access.kube_or_none(cluster), time.time() + wait.scaled())
    record_property("ksm_scrape_pool", row.pool)
    record_property("ksm_target_wait_seconds", wait.timeout)
    record_property("ksm_targets", require_scraped(prometheus, row, name, wait).found.count)


@pytest.mark.writes
@pytest.mark.hop(needs=["ksm_scrape[{cluster}]", "metrics[{cluster}]"])  # not scraped, or not forwarded: said there
@pytest.mark.requirement("must")
def test_the_canary_pod_is_described_on_the_primary(cluster, primary, primary_prometheus, access, state_canary,
                                                      record_property):
    """kube_pod_info and kube_pod_status_ready{condition="true"} == 1 for the canary, on the primary, as <cluster>'s."""
    name = hop("kube-state-metrics", cluster, primary)
    canary = state_canary.start()
    series = series_label(access, cluster)
    record_property("cluster_label", str(series))
    labels = primary_matcher(canary, cluster.is_primary, series.name)  # for the message: what a dashboard would select
    started = time.monotonic()

    own = access.client_or_none(cluster, "prometheus", PrometheusClient)
    job = cluster_ksm_job(access, cluster)
    args = (configured_away(access.kube(cluster), own, canary.namespace, job) if own is not None else
            ArgsVerdict(unread=f"the {cluster.name} Prometheus is not reachable to name the {JOB} targets"))
    if args.never:
        # Its arguments change only with a new rollout: no wait brings the canary's series.
        raise Failed(name, f"kube-state-metrics never describes the canary pod {canary.namespace}/{canary.pod}: "
                           f"{args.never} ({NAMESPACES_SETTING}; kube-state-metrics.collectors)")
    unread = f"kube-state-metrics' arguments were not read ({args.unread}), so this waited" if args.unread else ""
    series_wait = timing.forwarded(scrape_interval_of(own))

    def described():
        found = primary_prometheus.query(canary.selector("kube_pod_info"))
        if not found:
            if own is not None and (why := labels_renamed(own, canary)):
                raise Failed(name, why)
            raise NotYet(f"no {canary.selector('kube_pod_info', **labels)} on the primary")
        carried = {s["metric"].get(series.name) for s in found}
        allowed = {cluster.name} if not cluster.is_primary else {cluster.name, None}
        if not carried <= allowed:
            raise Failed(name, f"the canary's kube_pod_info is on the primary with {series.name}="
                               f"{', '.join(sorted(str(c) for c in carried))}, not {cluster.name}")
        return carried

    carried = eventually(described, hop=name, what=f"the canary pod {canary.namespace}/{canary.pod} not described",
                         wait=series_wait, diagnose=lambda: "; ".join(x for x in (why_not_described(
                             own, primary_prometheus, canary, cluster.is_primary, job, series.name), unread) if x))
    record_property("ksm_describe_wait_seconds", round(time.monotonic() - started, 2))
    record_property("canary_cluster_label", ", ".join(sorted(c or "(none)" for c in carried)))
    if cluster.is_primary and None in carried:
        # The primary's own series carry its external label only where they leave it (remote_write, alerts).
        warnings.warn(f"{name}: the primary's own kube-state-metrics series carry no {series.name} label ({series.name}="
                      f"{cluster.name} is an external label); dashboards filtering {series.name}=\"{cluster.name}\" miss them",
                      stacklevel=1)

    def ready():
        values = ready_values(primary_prometheus, canary)
        if values.get("true") != 1.0:
            if values.get("false") == 1.0 and (in_api := state_canary.not_ready_while_running(canary)):
                # Running and not Ready is its node's doing, and kube-state-metrics reports it faithfully: the hop works.
                raise PreconditionUnmet(name, f"the canary pod is not Ready in the {cluster.name} API server "
                                              f"(Ready={in_api}), and kube-state-metrics reports it as it is ({values}): "
                                              "the pod, not the metrics, is at fault: a running pod without a readiness "
                                              "probe that is not Ready (its node's kubelet and events say why)")
            raise NotYet(f"kube_pod_status_ready for the canary: {values or 'no series'}")
        return values

    def why_not_ready() -> str:
        seen = ready_values(primary_prometheus, canary)
        in_api = state_canary.ready_condition(canary)
        if in_api != "True":
            return (f"the canary pod is not Ready in the {cluster.name} API server either (Ready={in_api}); "
                    f"kube-state-metrics reports it as it is ({seen}): the pod, not the metrics, is at fault")
        return (f"the {cluster.name} API server has the canary Ready, but kube_pod_status_ready on the primary says "
                f"{seen}: kube-state-metrics' watch or the scrape lags")

    eventually(ready, hop=name, what=f'kube_pod_status_ready{{condition="true"}} is not 1 for the canary pod '
                                     f"{canary.namespace}/{canary.pod}", wait=series_wait, diagnose=why_not_ready)
    record_property("ksm_ready_wait_seconds", round(time.monotonic() - started, 2))
