"""The log canary through the API servers' service proxy (provider existing): the tail through the proxy's
upgrade, the fallback to polling, and each cause the timeout names from the agent's counters, on both stack
profiles (promtail: Promtail and Loki 2.9.3; alloy: Alloy and Loki 3.7.6 behind the Loki and Alloy charts' Services)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import pytest

from conformance.core.stack import stack_services
from tests.proving_ground import PrometheusPair, closed_port
from tests.proving_kube import KubeStack, stack_prometheus_pair, start_kube_stack
from tests.suite_runner import SuiteRun, run_suites

# One ground for the module: its tests stay on one worker (pytest-xdist --dist loadgroup), so it starts once.
pytestmark = pytest.mark.xdist_group("logs-kube")

CANARY = "suites.test_logs::test_log_canary_reaches_the_primary_loki[{}]"
TOO_MANY_LABELS = {"cluster": "workstation", **{f"l{i}": "x" for i in range(30)}}  # 31 > max_label_names_per_series 30
AGENT = {"promtail": ("Promtail", "promtail"), "alloy": ("Alloy", "alloy")}  # Profile.agent, its services.yaml key


@pytest.fixture(params=["promtail", "alloy"])
def profile(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def stack_pair(tmp_path_factory) -> Iterator[PrometheusPair]:
    with stack_prometheus_pair(tmp_path_factory.mktemp("stack-prometheus")) as pair:
        yield pair


def run(stack: KubeStack, *args: str) -> SuiteRun:
    return run_suites(stack.folder, "--topology", str(stack.topology()), "-m", "logs", "-k", "canary and workstation",
                      *args)




@pytest.mark.parametrize("refused", [False, True], ids=["tail", "fallback"])
def test_canary_follows_the_tail_through_the_service_proxy(tmp_path: Path, stack_pair, profile, refused):
    stack = start_kube_stack(tmp_path / "stack", stack_pair, profile=profile)
    try:
        stack.loki.tail_not_upgraded = refused  # as if a proxy on the way dropped the Upgrade header
        result = run(stack)
    finally:
        stack.stop()
    assert result.code == 0, result.output
    props = result.properties(CANARY.format("workstation"))
    assert props["log_canary_follow"] == ("poll" if refused else "tail")
    assert props.get("log_canary_tail") == ("tail refused (400: Bad Request)" if refused else None)
    loki = stack_services(profile=profile)["loki"]  # the profile's Loki Service: loki-stack, or the Loki chart's loki
    tails = [r for r in stack.apis["oke"].requests if r.path == loki.proxy_path() + "/loki/api/v1/tail"]
    assert len(tails) == 1 and tails[0].headers.get("Upgrade") == "websocket"  # it went through the API server


ENDPOINT = {"promtail": "{url}/loki/api/v1/push", "alloy": "host {host}"}  # Alloy has no /config: its host label


@pytest.mark.parametrize("fault,cause", [
    ("refused", "{agent} cannot connect to {refused} ("),
    ("rejected", "Loki rejects {agent}'s pushes to {loki}: "),
    ("rate_limited", "Loki rate-limits {agent}: "),
    ("silent", "{agent} pushed nothing since the canary was written: it read nothing from the log of pod "
               "conformance-canary/canary-"),
])
def test_canary_timeout_names_the_cause_read_through_the_service_proxy(tmp_path: Path, stack_pair, profile, fault, cause):
    port = closed_port()
    options = {"refused": {"promtail_urls": {"workstation": f"http://127.0.0.1:{port}/loki/api/v1/push"}},
               "rejected": {"promtail_labels": {"workstation": TOO_MANY_LABELS}}}.get(fault, {})
    stack = start_kube_stack(tmp_path / "stack", stack_pair, profile=profile, **options)
    try:
        stack.loki.rate_limited = fault == "rate_limited"
        if fault == "silent":
            stack.apis["workstation"].on_pod_started = None  # the agent never sees the canary pod's log
        result = run(stack, "--timeout-scale", "0.05")
        endpoint = ENDPOINT[profile]
        expected = cause.format(agent=AGENT[profile][0],
                                refused=endpoint.format(url=f"http://127.0.0.1:{port}", host=f"127.0.0.1:{port}"),
                                loki=endpoint.format(url=stack.loki.url, host=stack.loki.url.removeprefix("http://")))
    finally:
        stack.stop()
    failure = result.failure(CANARY.format("workstation"))
    headline = failure.splitlines()[0]
    # A rejection cannot clear by waiting: said at once, from the agent's counters read while the canary waits.
    # Refused pushes too once enough were counted (conformance/probes/logs/agent_counters.py _unanswered): within the 3 s or at its end.
    after, kind = {"rejected": (r"[0-3]", {"precondition"}),
                   "refused": (r"[0-3]", {"precondition", "timed_out"})}.get(fault, ("3", {"timed_out"}))
    assert re.match(rf"remote workstation {AGENT[profile][0]} → oke Loki: no canary line after {after} s; ", headline), failure
    assert expected in headline, failure
    assert result.properties(CANARY.format("workstation"))["outcome"] in kind
    agent = stack_services(profile=profile)[AGENT[profile][1]]
    metrics = [r for r in stack.apis["workstation"].requests if r.path == agent.proxy_path() + "/metrics"]
    assert len(metrics) >= 2  # before the line, while it is awaited (every 2 s), and at the timeout
    assert all(r.method == "GET" for r in metrics)
