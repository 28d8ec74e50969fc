"""The alerting suite against the real Prometheus 3.14 pair and a real Alertmanager 0.34, healthy and with each fault."""

from __future__ import annotations

import time

import pytest
import yaml

from tests import web
from tests.proving_alertmanager import (
    BROKEN_RULES, REFUSED_CONFIG, WATCHDOG_RULES, AlertmanagerProcess, start_alertmanager,
)
from tests.proving_ground import PrometheusPair, free_port, start_pair, start_prometheus
from tests.suite_runner import run_suites


def settle(condition, what: str, timeout: float = 100.0) -> None:
    """Wait until the fault's evidence exists (one rule evaluation and one notifier send, slower on a loaded
    machine), so the check's short wait judges the fault, not the machine's pace.

    100 s, as the check's own wait: an alert sent before the notifier has discovered the Alertmanager is lost
    (notifier/alertmanagerset.go send at v3.14.0: no send loop yet) and resent one resend delay (1 m) later."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"proving ground: {what} after {timeout:.0f} s")
        time.sleep(0.5)


def alertmanager_holds_watchdog_of(am_url: str, cluster: str) -> bool:
    alerts = web.get(f"{am_url}/api/v2/alerts", timeout=5).json()
    return any(a["labels"].get("alertname") == "Watchdog" and a["labels"].get("cluster") == cluster for a in alerts)


def notifier_errors(prometheus_url: str) -> float:
    text = web.get(f"{prometheus_url}/metrics", timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("prometheus_notifications_errors_total"))

RULES = "suites.test_alerting::test_rule_groups_evaluate_without_errors[{}]"
FIRES = "suites.test_alerting::test_watchdog_fires_in_prometheus[{}]"
REACHES = "suites.test_alerting::test_watchdog_reaches_the_alertmanager[{}]"
READY = "suites.test_alerting::test_alertmanager_is_ready_with_its_configuration"


def topology(folder, primary_url: str, remote_url: str, am_url: str | None, parts=None):
    """An endpoints topology with the alerting part (unless parts={}); remote_alerts from parts."""
    primary = {"prometheus": primary_url, **({"alertmanager": am_url} if am_url else {})}
    doc = {"clusters": [
        {"name": "oke", "role": "primary", "provider": "endpoints", "services": primary},
        {"name": "workstation", "role": "remote", "provider": "endpoints", "services": {"prometheus": remote_url}},
    ]}
    parts = {"alerting": {"remote_alerts": "primary"}} if parts is None else parts
    if parts:
        doc["parts"] = parts
    path = folder / "topology.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture
def am(tmp_path) -> AlertmanagerProcess:
    a = start_alertmanager(tmp_path / "am")
    yield a
    a.stop()


@pytest.fixture
def alerting_pair(tmp_path, am) -> PrometheusPair:
    """Both Prometheus evaluate the Watchdog rules and send to the one Alertmanager."""
    p = start_pair(tmp_path / "prom", rule_files=[WATCHDOG_RULES], primary_alertmanagers=[am.target],
                   remote_alertmanagers=[am.target])
    yield p
    p.stop()


def test_healthy_stack_passes_every_alerting_check(tmp_path, am, alerting_pair):
    topo = topology(tmp_path, alerting_pair.primary.url, alerting_pair.remote.url, am.url)
    run = run_suites(tmp_path, "--topology", str(topo), "-m", "alerting")
    assert run.code == 0, run.output
    for cluster in ("oke", "workstation"):
        assert run.properties(RULES.format(cluster))["outcome"] == "passed"
        assert run.properties(RULES.format(cluster))["rule_groups"] == "1"
        assert run.properties(FIRES.format(cluster))["outcome"] == "passed"
        # The default route sends Watchdog to the 'null' receiver: active, not suppressed.
        assert run.properties(REACHES.format(cluster))["watchdog_alertmanager_state"] == "active"
    ready = run.properties(READY)
    assert ready["alertmanager_version"] == "0.34.0"  # the pin, stamped in by the build
    assert ready["alertmanager_cluster_status"] == "disabled"  # one replica, gossip off
    assert "optional parts: alerting (remote_alerts: primary)" in run.output


def test_remote_alerts_nowhere_skips_the_remotes_delivery_but_still_checks_its_rules(tmp_path, am):
    pair = start_pair(tmp_path / "prom", rule_files=[WATCHDOG_RULES], primary_alertmanagers=[am.target])
    try:
        topo = topology(tmp_path, pair.primary.url, pair.remote.url, am.url, parts={"alerting": {"remote_alerts": "none"}})
        run = run_suites(tmp_path, "--topology", str(topo), "-m", "alerting", "-rs")
    finally:
        pair.stop()
    assert run.code == 0, run.output
    assert run.properties(REACHES.format("workstation"))["outcome"] == "not_applicable"  # the topology says so
    assert "the topology sends workstation's alerts nowhere (parts.alerting.remote_alerts: none)" in run.output
    assert run.properties(RULES.format("workstation"))["outcome"] == "passed"
    assert run.properties(REACHES.format("oke"))["outcome"] == "passed"


def test_a_stack_without_the_part_skips_every_alerting_check_with_the_reason(tmp_path, prometheus_pair):
    topo = topology(tmp_path, prometheus_pair.primary.url, prometheus_pair.remote.url, None, parts={})
    run = run_suites(tmp_path, "--topology", str(topo), "-m", "alerting", "-rs")
    assert run.code == 5, run.output  # nothing else was selected: no check ran (INCOMPLETE), none failed
    for case in (RULES.format("oke"), FIRES.format("workstation"), REACHES.format("oke"), READY):
        assert run.properties(case)["outcome"] == "not_applicable"
    assert f"alerting is not a part of this stack (topology {topo} lists it under parts: when it is)" in run.output


def test_with_option_adds_the_part_for_the_run(tmp_path, am, alerting_pair):
    topo = topology(tmp_path, alerting_pair.primary.url, alerting_pair.remote.url, am.url, parts={})
    run = run_suites(tmp_path, "--topology", str(topo), "--with", "alerting", "-m", "alerting", "-k", "oke")
    assert run.code == 0, run.output
    assert run.properties(REACHES.format("oke"))["outcome"] == "passed"


def test_prometheus_without_an_alertmanager_is_named(tmp_path, am):
    pair = start_pair(tmp_path / "prom", rule_files=[WATCHDOG_RULES], remote_alertmanagers=[am.target])
    try:
        topo = topology(tmp_path, pair.primary.url, pair.remote.url, am.url)
        settle(lambda: alertmanager_holds_watchdog_of(am.url, "workstation"), "no workstation Watchdog in Alertmanager")
        run = run_suites(tmp_path, "--topology", str(topo), "-k", "reaches and oke", "--timeout-scale", "0.05")
    finally:
        pair.stop()
    # The loaded configuration sends alerts nowhere: no wait brings them, so it is said at the first look.
    failure = run.failure(REACHES.format("oke"))
    assert failure.startswith("oke Prometheus → oke Alertmanager: the configuration the oke Prometheus loaded has no "
                              "alerting.alertmanagers: it sends its alerts nowhere; set alertmanager.enabled: true"), failure
    assert run.properties(REACHES.format("oke"))["outcome"] == "precondition"


def test_a_remote_pointing_at_a_closed_port_is_named_with_its_errors(tmp_path, am):
    closed = f"127.0.0.1:{free_port()}"
    pair = start_pair(tmp_path / "prom", rule_files=[WATCHDOG_RULES], primary_alertmanagers=[am.target],
                      remote_alertmanagers=[closed])
    try:
        topo = topology(tmp_path, pair.primary.url, pair.remote.url, am.url)
        settle(lambda: notifier_errors(pair.remote.url) > 0, "the remote's notifier has no send error yet")
        run = run_suites(tmp_path, "--topology", str(topo), "-k", "reaches and workstation", "--timeout-scale", "0.05")
    finally:
        pair.stop()
    failure = run.failure(REACHES.format("workstation"))
    if run.properties(REACHES.format("workstation"))["outcome"] == "precondition":
        # A loaded machine reached the first look after two resend rounds: the verdict at once (the next test's path).
        assert failure.startswith(f"workstation Prometheus → oke Alertmanager: every alert the workstation Prometheus "
                                  f"sent failed (http://{closed}/api/v2/alerts: "), failure
        return
    assert "workstation Prometheus → oke Alertmanager: no Watchdog with cluster=workstation in the oke Alertmanager" in failure
    assert f"the workstation Prometheus fails to send to its Alertmanager (http://{closed}/api/v2/alerts: " in failure
    assert "prometheus_notifications_errors_total" in failure


def test_a_remote_whose_every_send_failed_for_two_rounds_is_named_at_once(tmp_path, am):
    """Past two resend rounds with every send refused, waiting will not bring the alert: said at the first look."""
    closed = f"127.0.0.1:{free_port()}"
    primary = start_prometheus("primary", tmp_path / "p", cluster="oke", rule_files=[WATCHDOG_RULES],
                               alertmanagers=[am.target])
    remote = start_prometheus("remote", tmp_path / "r", cluster="workstation", rule_files=[WATCHDOG_RULES],
                              alertmanagers=[closed], resend_delay="2s")
    try:
        topo = topology(tmp_path, primary.url, remote.url, am.url)
        # The evidence a running stack has: sends failed, and the Prometheus has been up for two rounds (2 s + 2 x 1 s).
        settle(lambda: notifier_errors(remote.url) > 1 and uptime(remote.url) > 4.5, "two failed send rounds")
        run = run_suites(tmp_path, "--topology", str(topo), "-k", "reaches and workstation")
    finally:
        remote.stop()
        primary.stop()
    failure = run.failure(REACHES.format("workstation"))
    assert run.properties(REACHES.format("workstation"))["outcome"] == "precondition", failure
    assert failure.startswith(f"workstation Prometheus → oke Alertmanager: every alert the workstation Prometheus sent "
                              f"failed (http://{closed}/api/v2/alerts: "), failure
    assert "none sent in " in failure and "it drops a failed batch and resends only every 2 s, so waiting will not " \
        "help" in failure  # the precondition outcome is the "at once": no wall-clock bound, which a busy machine breaks


def uptime(prometheus_url: str) -> float:
    from conformance.core.timefmt import rfc3339_seconds

    started = web.get(f"{prometheus_url}/api/v1/status/runtimeinfo", timeout=5).json()["data"]["startTime"]
    return time.time() - rfc3339_seconds(started)


def test_a_rule_group_with_an_evaluation_error_is_named(tmp_path):
    prom = start_prometheus("primary", tmp_path / "p", cluster="oke", rule_files=[WATCHDOG_RULES, BROKEN_RULES])
    try:
        topo = topology(tmp_path, prom.url, prom.url, None)
        run = run_suites(tmp_path, "--topology", str(topo), "-k", "rule_groups and oke")
    finally:
        prom.stop()
    # The same error at two evaluations in a row: the rule's own query, said at once rather than after 100 s.
    failure = run.failure(RULES.format("oke"))
    assert failure.startswith("oke Prometheus rule evaluation: failed at two evaluations in a row, so the next will "
                              f"fail alike: group broken.rules (file {BROKEN_RULES}): rule conformance:duplicate_match: "
                              "health err: "), failure
    assert "found duplicate series for the match group" in failure
    assert "general.rules" not in failure  # the healthy group is not blamed
    assert run.properties(RULES.format("oke"))["outcome"] == "failed"


def test_no_rule_files_in_the_loaded_configuration_fail_at_once(tmp_path):
    """The operator lists no rule file (no PrometheusRule selected): every rule check says so at once, not after 100 s."""
    prom = start_prometheus("primary", tmp_path / "p", cluster="oke")
    try:
        topo = topology(tmp_path, prom.url, prom.url, None)
        run = run_suites(tmp_path, "--topology", str(topo), "-k", "(rule_groups or fires) and oke")
    finally:
        prom.stop()
    for case in (RULES.format("oke"), FIRES.format("oke")):
        assert run.properties(case)["outcome"] == "precondition", run.failure(case)
        assert ("oke Prometheus rule evaluation: the configuration the oke Prometheus loaded has no rule_files: its "
                "Prometheus resource has no ruleSelector, so it loads no PrometheusRule") in run.failure(case)


def test_rules_without_a_watchdog_say_so(tmp_path):
    prom = start_prometheus("primary", tmp_path / "p", cluster="oke", rule_files=[BROKEN_RULES])
    try:
        topo = topology(tmp_path, prom.url, prom.url, None)
        run = run_suites(tmp_path, "--topology", str(topo), "-k", "fires and oke")
    finally:
        prom.stop()
    # Every group evaluated once and none holds Watchdog: only new rule files bring it, said after one round.
    failure = run.failure(FIRES.format("oke"))
    assert failure.startswith("oke Prometheus rule evaluation: none of the 1 rule groups the oke Prometheus evaluates "
                              "holds an alerting rule Watchdog"), failure
    assert run.properties(FIRES.format("oke"))["outcome"] == "precondition"


def test_an_alertmanager_that_refused_its_configuration_is_named(tmp_path, am, prometheus_pair):
    answer = am.reload(REFUSED_CONFIG)
    assert answer.status_code == 500 and 'undefined receiver "nobody"' in answer.text  # the real server refused it
    topo = topology(tmp_path, prometheus_pair.primary.url, prometheus_pair.remote.url, am.url)
    run = run_suites(tmp_path, "--topology", str(topo), "-k", "ready_with")
    failure = run.failure(READY)
    assert "oke Alertmanager: it refused its latest configuration (alertmanager_config_last_reload_successful 0); " \
           "it still runs the one it loaded at " in failure
    assert run.properties(READY)["outcome"] == "failed"


def test_every_check_passes_through_the_api_servers_service_proxy(tmp_path, am):
    """The chart's Services (stack/services.yaml rows) behind a Kubernetes API server's service proxy."""
    from tests.fakes.kubeapi import FakeKubeAPI

    prom = start_prometheus("primary", tmp_path / "p", cluster="oke", rule_files=[WATCHDOG_RULES],
                            alertmanagers=[am.target])
    try:
        with FakeKubeAPI("oke") as api:
            api.add_stack_services(prometheus=prom.url)
            # kube-prometheus-stack 88.5.3 templates/alertmanager/service.yaml: port 9093 named http-web.
            api.add_service("monitoring", "kube-prometheus-stack-alertmanager", am.url, port=9093, port_name="http-web")
            kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
            topo = tmp_path / "topology.yaml"
            topo.write_text(yaml.safe_dump({"clusters": [{"name": "oke", "role": "primary", "provider": "existing",
                                                          "context": "kind-oke", "kubeconfig": str(kubeconfig)}],
                                            "parts": ["alerting"]}))
            run = run_suites(tmp_path, "--topology", str(topo), "-m", "alerting")
            proxied = {r.path.split("/proxy")[0] for r in api.requests if "/proxy/" in r.path}
    finally:
        prom.stop()
    assert run.code == 0, run.output
    assert run.properties(READY)["alertmanager_version"] == "0.34.0"
    assert "/api/v1/namespaces/monitoring/services/http:kube-prometheus-stack-alertmanager:9093" in proxied
