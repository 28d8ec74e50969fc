"""alerting (optional part): rules evaluate on every cluster, Watchdog fires and reaches the primary's Alertmanager."""

from __future__ import annotations

import time

import pytest

from conformance.probes.alerting.alerts import (
    ALERTING_SETTING, REMOTE_ALERTING_SETTING, WATCHDOG, alerts_sent_nowhere, config_state, delivery_hopeless,
    describe_rules, persistent_errors, rule_report, rules_not_configured, watchdog_clusters, watchdog_not_loaded,
    watchdog_state, why_not_delivered, why_watchdog_is_not_firing,
)
from conformance.clients.alertmanager import AlertmanagerClient
from conformance.clients.prometheus import PrometheusClient
from conformance.core import timing
from conformance.core.eventually import NotYet, eventually
from conformance.core.hops import hop
from conformance.core.outcomes import Failed, NotApplicable, PreconditionUnmet
from conformance.probes.metrics.series_label import series_label
from conformance.core.timefmt import rfc3339_seconds
from fixtures.clients import endpoint_or_skip

pytestmark = [pytest.mark.alerting, pytest.mark.part("alerting")]

# The stack's Prometheus evaluates every 30 s (no evaluationInterval in stack/values: the operator's default).
RULES_WAIT = timing.rules_evaluated()
# Watchdog (expr vector(1), no `for`) fires at its group's first evaluation; Prometheus sends a firing alert
# at once and then every resend delay (1 m). A send before the notifier has discovered the Alertmanager
# reaches no send loop (notifier/alertmanagerset.go send at v3.14.0) and is lost, so after a restart the
# first delivery can be one resend delay plus an interval late.
WATCHDOG_WAIT = timing.alert_delivered()
READY_WAIT = timing.ready()


@pytest.fixture(scope="session")
def alertmanager(access, primary) -> AlertmanagerClient:
    """The primary's Alertmanager, where every cluster that sends alerts sends them."""
    return AlertmanagerClient(endpoint_or_skip(access, primary, "alertmanager").http)



def require_rules_configured(prometheus: PrometheusClient, hop_name: str) -> None:
    """Fail at once when the loaded configuration has no rule files: no wait brings a rule group."""
    why = rules_not_configured(prometheus)
    if why:
        raise PreconditionUnmet(hop_name, why)


@pytest.mark.requirement("must")
def test_rule_groups_evaluate_without_errors(cluster, primary, prometheus, record_property):
    """Every rule group of the cluster's Prometheus evaluated after the check began, every rule healthy."""
    name = hop("rules", cluster, primary)
    started = time.time()
    require_rules_configured(prometheus, name)

    failing: dict[str, float] = {}

    def probe():
        groups = prometheus.rule_groups()
        if repeated := persistent_errors(failing, groups):
            raise Failed(name, "failed at two evaluations in a row, so the next will fail alike: " + "; ".join(repeated[:5]))
        report = rule_report(groups, since=started)
        if not report.clean:
            raise NotYet(describe_rules(report))
        return report

    report = eventually(probe, hop=name, what="rule groups not all evaluated without errors", wait=RULES_WAIT,
                        diagnose=lambda: describe_rules(rule_report(prometheus.rule_groups(), since=started)))
    record_property("rule_groups", report.groups)
    record_property("rules", report.rules)


@pytest.mark.hop("watchdog[{cluster}]")
@pytest.mark.requirement("must")
def test_watchdog_fires_in_prometheus(cluster, primary, prometheus, record_property):
    """The always-firing Watchdog alert is firing in the cluster's Prometheus."""
    name = hop("rules", cluster, primary)
    require_rules_configured(prometheus, name)
    began = time.time()

    def probe():
        state = watchdog_state(prometheus)
        if state != "firing":
            if why := watchdog_not_loaded(prometheus, since=began):
                raise PreconditionUnmet(name, why)
            raise NotYet(f"{WATCHDOG} is {state or 'not active'} in the {prometheus.name}")
        return state

    started = time.monotonic()
    eventually(probe, hop=name, what=f"{WATCHDOG} not firing", wait=WATCHDOG_WAIT,
               diagnose=lambda: why_watchdog_is_not_firing(prometheus))
    record_property("watchdog_firing_wait_seconds", round(time.monotonic() - started, 2))


@pytest.mark.hop(needs=["watchdog[{cluster}]", "alertmanager[{primary}]"])  # not firing, or no Alertmanager: nothing to deliver
@pytest.mark.requirement("must")
def test_watchdog_reaches_the_alertmanager(cluster, primary, topology, access, alertmanager, record_property):
    """Watchdog with <label>=<name> (the external label of its Prometheus resource) is in the primary's Alertmanager,
    for every cluster that sends it there."""
    if not cluster.is_primary and topology.parts["alerting"].options["remote_alerts"] == "none":
        raise NotApplicable(f"the topology sends {cluster.name}'s alerts nowhere (parts.alerting.remote_alerts: none)")
    name = hop("alerting", cluster, primary)
    setting = ALERTING_SETTING if cluster.is_primary else REMOTE_ALERTING_SETTING
    sender = access.client_or_none(cluster, "prometheus", PrometheusClient)
    label = series_label(access, cluster)  # alerts leave with every external label, the primary's own too
    record_property("cluster_label", str(label))
    if sender is not None and (why := alerts_sent_nowhere(sender, setting)):
        raise PreconditionUnmet(name, why)

    def probe():
        seen = watchdog_clusters(alertmanager, label.name)
        if cluster.name not in seen:
            if sender is not None and (why := delivery_hopeless(sender)):
                raise PreconditionUnmet(name, why,
                                        f"{WATCHDOG} in the {alertmanager.name} from {label.name} values {sorted(seen)}")
            raise NotYet(f"{WATCHDOG} in the {alertmanager.name} from {label.name} values {sorted(seen)}")
        return seen[cluster.name]

    started = time.monotonic()
    state = eventually(probe, hop=name, what=f"no {WATCHDOG} with {label.name}={cluster.name} in the {alertmanager.name}",
                       wait=WATCHDOG_WAIT,
                       diagnose=lambda: why_not_delivered(sender, cluster.name, setting, label.name))
    record_property("watchdog_delivery_wait_seconds", round(time.monotonic() - started, 2))
    record_property("watchdog_alertmanager_state", state)


@pytest.mark.hop("alertmanager[{primary}]")
@pytest.mark.requirement("must")
def test_alertmanager_is_ready_with_its_configuration(primary, alertmanager, record_property):
    """The primary's Alertmanager is ready, and runs the configuration it was last given."""
    name = hop("alertmanager", primary, primary)

    def probe():
        ready, body = alertmanager.ready()
        if not ready:
            raise NotYet(f"/-/ready answers 503: {body}")
        status = alertmanager.status()
        cluster_state = (status.get("cluster") or {}).get("status")
        if cluster_state == "settling":
            raise NotYet("its cluster is still settling (/api/v2/status cluster.status)")
        return status

    status = eventually(probe, hop=name, what="not ready", wait=READY_WAIT)
    record_property("alertmanager_version", (status.get("versionInfo") or {}).get("version", ""))
    if not (status.get("config") or {}).get("original", "").strip():
        raise Failed(name, "/api/v2/status shows no loaded configuration (config.original is empty)")
    state = config_state(alertmanager)
    if state.last_reload_ok is False:
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(state.last_success)) if state.last_success else "never"
        raise Failed(name, "it refused its latest configuration (alertmanager_config_last_reload_successful 0); "
                           f"it still runs the one it loaded at {since} (hash {state.config_hash}); its log says why",
                     f"uptime since {status.get('uptime')}; cluster {status.get('cluster', {}).get('status')}")
    record_property("alertmanager_cluster_status", (status.get("cluster") or {}).get("status", ""))
    record_property("alertmanager_uptime_seconds", round(time.time() - rfc3339_seconds(status.get("uptime", "")), 1))
