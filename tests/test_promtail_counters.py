"""What Promtail's counters say, table-driven: each answer Promtail got names one cause."""

from __future__ import annotations

import pytest

from conformance.core.errors import ConfigError
from conformance.probes.logs.agent_counters import Counters, cause
from conformance.core.topology import load_topology
from tests.suite_runner import write_topology

URL = ["http://loki:3100/loki/api/v1/push"]


def exposition(requests: dict[str, int] = {}, sent: int = 0, retries: int = 0, dropped: dict[str, int] = {},
               read: dict[str, int] = {}) -> str:
    """Promtail's /metrics as client_golang prints it (labels as in client.go NewMetrics)."""
    lines = [f'promtail_sent_entries_total{{host="loki:3100"}} {sent}',
             f'promtail_batch_retries_total{{host="loki:3100",tenant=""}} {retries}']
    lines += [f'promtail_request_duration_seconds_count{{host="loki:3100",status_code="{c}"}} {n}' for c, n in requests.items()]
    lines += [f'promtail_dropped_entries_total{{host="loki:3100",reason="{r}",tenant=""}} {n}' for r, n in dropped.items()]
    lines += [f'promtail_read_lines_total{{path="{p}"}} {n}' for p, n in read.items()]
    return "\n".join(lines) + "\n"


BEFORE = Counters.parse(exposition({"204": 5}, sent=7, read={"/var/log/canary.log": 3}))


@pytest.mark.parametrize("now,expected", [
    # -1 is client.send's status when the request got no answer (connection refused, DNS, timeout)
    (exposition({"204": 5, "-1": 3}, sent=7, retries=2),
     "Promtail cannot connect to http://loki:3100/loki/api/v1/push (3 pushes got no answer since the canary was written, 2 batch retries)"),
    (exposition({"204": 5, "429": 2}, sent=7, retries=2),
     "Loki rate-limits Promtail: 2 pushes to http://loki:3100/loki/api/v1/push answered 429 since the canary was written, 2 batch retries"),
    (exposition({"204": 5, "400": 1}, sent=7, dropped={"ingester_error": 4}),  # 4xx other than 429: dropped at once
     "Loki rejects Promtail's pushes to http://loki:3100/loki/api/v1/push: 1 answered 400 since the canary was written; dropped entries (ingester_error: 4)"),
    (exposition({"204": 5, "503": 1}, sent=7, retries=1),
     "Loki fails Promtail's pushes to http://loki:3100/loki/api/v1/push: 1 answered 5xx since the canary was written, 1 batch retries"),
    (exposition({"204": 5}, sent=7, read={"/var/log/canary.log": 3}),
     "Promtail pushed nothing since the canary was written: it read nothing from /var/log/canary.log"),
    (exposition({"204": 5}, sent=7, read={"/var/log/canary.log": 4}),
     "Promtail read 1 lines from /var/log/canary.log but has pushed nothing since"),
    (exposition({"204": 6}, sent=8),  # delivered: the line went somewhere else (another Loki, another tenant)
     "Promtail sent 1 entries to http://loki:3100/loki/api/v1/push since the canary was written"),
])
def test_each_answer_names_its_cause(now, expected):
    assert cause(Counters.parse(now), BEFORE, URL, "/var/log/canary.log") == expected


def test_a_batch_in_backoff_is_named_by_the_answers_before_the_canary():
    """Promtail's backoff grows to minutes: no attempt in the wait, so the earlier answers say why."""
    stuck = Counters.parse(exposition({"-1": 9}, retries=8))
    assert cause(stuck, stuck, URL, "x").startswith(
        "Promtail cannot connect to http://loki:3100/loki/api/v1/push (9 pushes got no answer in all")


def test_topology_takes_a_promtail_url_on_any_cluster(tmp_path):
    path = write_topology(tmp_path, [
        {"name": "oke", "role": "primary", "provider": "endpoints",
         "services": {"loki": "http://127.0.0.1:3100", "promtail": "http://127.0.0.1:3101"}},
        {"name": "workstation", "role": "remote", "provider": "endpoints",
         "services": {"prometheus": "http://127.0.0.1:9090", "promtail": "http://127.0.0.1:3102/"}}])
    topology = load_topology(path)
    assert topology.cluster("workstation").services["promtail"].url == "http://127.0.0.1:3102"


def test_a_bad_promtail_url_is_one_line_naming_the_key(tmp_path):
    path = write_topology(tmp_path, [{"name": "oke", "role": "primary", "provider": "endpoints",
                                      "services": {"loki": "http://127.0.0.1:3100", "promtail": "127.0.0.1:3101"}}])
    with pytest.raises(ConfigError) as e:
        load_topology(path)
    assert str(e.value) == (f"topology {path}: clusters[0] (oke).services.promtail.url: URL '127.0.0.1:3101' does not "
                            "parse: expected http(s)://host[:port][/path]")
