"""app-metrics (optional part): the sample app's own metrics are scraped on every cluster and reach the primary."""

from __future__ import annotations

import time

import pytest

from conformance.probes.app_metrics.series import (
    MONITOR_FILE, app_metrics, own_prometheus, role, scrape_target, why_not_on_primary,
)
from conformance.probes.platform.targets import require_scraped
from conformance.core import timing
from conformance.probes.metrics.remote_write.config import scrape_interval_of
from conformance.core.eventually import NotYet, eventually
from conformance.core.hops import hop
from conformance.probes.metrics.monitor_selection import require_monitor_selected
from conformance.probes.metrics.promql import on_primary
from conformance.probes.metrics.series_label import series_label

pytestmark = [pytest.mark.app_metrics, pytest.mark.part("app-metrics")]

# The ServiceMonitor scrapes at the stack's interval (stack/app/example-app-servicemonitor.yaml: 15 s, as the
# Prometheus's global one): the target and series waits follow the interval the cluster's Prometheus loaded.


@pytest.mark.hop("app_scrape[{cluster}]")
@pytest.mark.requirement("must")
def test_app_target_is_up(cluster, primary, prometheus, access, record_property):
    """The cluster's Prometheus scrapes the app through its ServiceMonitor, and the target is up."""
    name = hop("app_scrape", cluster, primary)
    require_monitor_selected(access, cluster, MONITOR_FILE, name, record_property)
    started = time.monotonic()
    wait = timing.scraped(scrape_interval_of(prometheus))
    record_property("app_target", require_scraped(prometheus, scrape_target(role(cluster)), name, wait).said)
    record_property("app_target_wait_seconds", round(time.monotonic() - started, 2))


@pytest.mark.requirement("must")
# A primary Prometheus known down, or a remote's remote_write known broken (the metrics checks), stops this at once;
# the primary's own series need neither the receiver nor remote_write, and metrics[<primary>] is never judged.
# Not scraped on its own cluster (app_scrape): nothing to forward either, the target check said why.
@pytest.mark.hop(needs=["prometheus[{primary}]", "metrics[{cluster}]", "app_scrape[{cluster}]"])
def test_app_series_reach_the_primary(cluster, primary, access, primary_prometheus, record_property):
    """The app's named series is on the primary with the cluster's label (remote_write for a remote)."""
    name, app = hop("app_series", cluster, primary), app_metrics()
    label = series_label(access, cluster)
    record_property("cluster_label", str(label))
    selector = app.selector_with(on_primary(cluster, label.name))

    def probe():
        found = primary_prometheus.query(selector)
        if not found:
            raise NotYet(f"no {selector} on the primary")
        return found

    own = own_prometheus(access, cluster)
    started = time.monotonic()
    found = eventually(probe, hop=name, what=f"no {selector} on the {primary_prometheus.name}",
                       wait=timing.forwarded(scrape_interval_of(own)),
                       diagnose=lambda: why_not_on_primary(own, primary_prometheus, cluster.name, cluster.is_primary,
                                                           role(cluster), label.name))
    record_property("app_series", len(found))
    record_property("app_version", found[0]["metric"].get("version", ""))
    record_property("app_series_wait_seconds", round(time.monotonic() - started, 2))
