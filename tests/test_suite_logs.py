"""The logs suite against FakeLoki and FakePromtail (endpoints provider): healthy, and each broken hop."""

from __future__ import annotations

import pytest

from conformance.http import USER_AGENT
from tests.proving_stack import GRAFANA_PASSWORD, GRAFANA_PASSWORD_ENV, start_stack
from tests.suite_runner import run_suites

CANARY = "suites.test_logs::test_log_canary_reaches_the_primary_loki[{}]"
LABELS = "suites.test_logs::test_loki_cluster_label_lists_every_cluster"
DISCARDS = "suites.test_logs::test_loki_discards_nothing"
ENV = {GRAFANA_PASSWORD_ENV: GRAFANA_PASSWORD}


@pytest.fixture
def stack(tmp_path, prometheus_pair):
    s = start_stack(tmp_path, prometheus_pair)
    yield s
    s.stop()


def run(stack, *args, topology=None):
    topology = topology or stack.topology()
    return run_suites(stack.folder, "--topology", str(topology), "-m", "logs", *args, env=ENV)


def test_healthy_logs_pass_and_record_propagation(stack):
    result = run(stack)
    assert result.code == 0, result.output
    for cluster in ("oke", "workstation"):
        seconds = float(result.properties(CANARY.format(cluster))["log_propagation_seconds"])
        assert 0 <= seconds < 2.5  # agent: file read <= 0.2 s + batchwait 1 s (real 1.07-1.30 s); polls <= 1 s apart
    assert result.properties(LABELS)["loki_cluster_values"] == "oke,workstation"
    assert result.properties(DISCARDS)["loki_discarded_samples"] == "0"
    assert result.seconds < 30


def test_verdict_comes_within_two_seconds_of_visibility(stack):
    stack.loki.visibility_delay_seconds = 3.0  # the line exists in Loki but is not queryable for 3 s
    result = run(stack, "-k", "canary and workstation")
    assert result.code == 0, result.output
    seconds = float(result.properties(CANARY.format("workstation"))["log_propagation_seconds"])
    assert 3.0 <= seconds < 3.0 + 2.0


@pytest.mark.parametrize("labels,carried", [
    ({"cluster": "oke"}, "cluster=oke"),   # external_labels copied from the primary's values
    ({}, "no cluster label"),              # external_labels set under `client:` but `clients:` used (failure-modes 6)
])
def test_remote_line_under_the_wrong_label_fails_at_once_naming_its_labels(tmp_path, prometheus_pair, labels, carried):
    with start_stack(tmp_path, prometheus_pair, promtail_labels={"workstation": labels}) as stack:
        result = run(stack, "-k", "canary and workstation")
    failure = result.failure(CANARY.format("workstation"))
    assert f"remote workstation Promtail → oke Loki: the canary line arrived with {carried}, not cluster=workstation" in failure
    assert "its labels: {" in failure and "'filename'" in failure
    assert result.properties(CANARY.format("workstation"))["outcome"] == "failed"
    assert result.seconds < 10


def test_agent_shipping_nothing_times_out_with_what_loki_has(tmp_path, prometheus_pair):
    with start_stack(tmp_path, prometheus_pair, silent_agents=("workstation",)) as stack:  # Running, offsets never move (5)
        result = run(stack, "-k", "canary and workstation", "--timeout-scale", "0.05")
    failure = result.failure(CANARY.format("workstation"))
    assert "remote workstation Promtail → oke Loki: no canary line after 3 s; Loki has no stream with cluster=workstation in the last 5 min" in failure
    assert "last observed" in failure and 'no line matching {cluster="workstation"} |= "conformance-canary-workstation-' in failure
    assert result.properties(CANARY.format("workstation"))["outcome"] == "timed_out"


def test_unreachable_loki_fails_within_ten_seconds(stack):
    topology = stack.topology()
    stack.loki.stop()
    result = run(stack, "-k", "canary and oke", topology=topology)
    failure = result.failure(CANARY.format("oke"))
    assert "oke Loki unreachable at http://127.0.0.1:" in failure
    assert result.properties(CANARY.format("oke"))["outcome"] == "precondition"
    assert result.seconds < 10 + 5


def test_missing_cluster_value_names_the_hop(tmp_path, prometheus_pair):
    with start_stack(tmp_path, prometheus_pair, silent_agents=("workstation",)) as stack:
        result = run(stack, "-k", "cluster_label", "--timeout-scale", "0.05")
    failure = result.failure(LABELS)
    assert "every Promtail → oke Loki: cluster label values incomplete after 3 s; missing: remote workstation Promtail → oke Loki" in failure
    assert "last observed (" in failure and "cluster values ['oke']" in failure


def test_rate_limited_pushes_show_as_discards(stack):
    stack.loki.rate_limited = True  # 429 'Ingestion rate limit exceeded' (failure-modes 3)
    result = run(stack, "-k", "(canary and workstation) or discards", "--timeout-scale", "0.1")
    failure = result.failure(DISCARDS)
    assert "Loki discarded samples during the run (rate_limited: " in failure
    assert result.properties(DISCARDS)["requirement"] == "should"


def test_read_only_writes_no_line_and_skips_the_canary(stack):
    result = run(stack, "--read-only")
    skipped = result.cases()[CANARY.format("workstation")].find("skipped")
    assert "--read-only: this check writes" in skipped.get("message")
    assert [w.path for w in stack.loki.writes() if w.user_agent == USER_AGENT] == []  # the agents push; the suite does not
    assert not any("conformance-canary" in stack.log_file(c).read_text() for c in ("oke", "workstation"))
