"""What a Promtail's own counters say about its pushes to Loki, read from its /metrics and /config.

The series are declared here and nowhere else, with their labels as Promtail exports them
(grafana/loki v3.5.1 clients/pkg/promtail/client/client.go NewMetrics and targets/file/metrics.go;
the same names and labels at v2.9.3). A status_code of -1 is a push that got no HTTP answer.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

import yaml

from conformance.exposition import parse_samples
from conformance.http import HTTPService, ServiceError

REQUESTS = "promtail_request_duration_seconds_count"  # {status_code, host}: push attempts by answer
DROPPED = "promtail_dropped_entries_total"  # {host, tenant, reason}: entries given up on
RETRIES = "promtail_batch_retries_total"  # {host, tenant}: batches sent again after a recoverable error
SENT = "promtail_sent_entries_total"  # {host}: entries Loki accepted
READ_LINES = "promtail_read_lines_total"  # {path}: lines the file targets read
NO_ANSWER = "-1"  # the status_code of a push whose connection failed (client.send returns -1)
CONFIG_PRE = re.compile(r'<pre id="config_yaml">(.*?)</pre>', re.S)  # server/ui/templates/config.html


@dataclass(frozen=True)
class Counters:
    """One reading of an agent's push counters, summed over its clients and tenants."""

    requests: dict[str, float] = field(default_factory=dict)  # status_code -> push attempts
    dropped: dict[str, float] = field(default_factory=dict)  # reason -> entries
    retries: float = 0.0
    sent: float = 0.0
    read_lines: dict[str, float] = field(default_factory=dict)  # path -> lines
    hosts: tuple[str, ...] = ()  # the `host` label: each client URL's host:port

    @classmethod
    def parse(cls, text: str) -> "Counters":
        requests: dict[str, float] = {}
        dropped: dict[str, float] = {}
        read: dict[str, float] = {}
        retries = sent = 0.0
        hosts: set[str] = set()
        for s in parse_samples(text):
            if s.name == REQUESTS:
                code = s.labels.get("status_code", "")
                requests[code] = requests.get(code, 0.0) + s.value
            elif s.name == DROPPED:
                reason = s.labels.get("reason", "")
                dropped[reason] = dropped.get(reason, 0.0) + s.value
            elif s.name == RETRIES:
                retries += s.value
            elif s.name == SENT:
                sent += s.value
            elif s.name == READ_LINES:
                read[s.labels.get("path", "")] = read.get(s.labels.get("path", ""), 0.0) + s.value
            else:
                continue
            if "host" in s.labels:
                hosts.add(s.labels["host"])
        return cls(requests, dropped, retries, sent, read, tuple(sorted(hosts)))

    def since(self, earlier: "Counters | None") -> "Counters":
        """What grew after `earlier` (the reading itself when there is none)."""
        if earlier is None:
            return self
        grown = lambda now, then: {k: v - then.get(k, 0.0) for k, v in now.items() if v > then.get(k, 0.0)}  # noqa: E731
        return Counters(grown(self.requests, earlier.requests), grown(self.dropped, earlier.dropped),
                        max(0.0, self.retries - earlier.retries), max(0.0, self.sent - earlier.sent),
                        grown(self.read_lines, earlier.read_lines), self.hosts)

    def answered(self, predicate) -> float:
        return sum(n for code, n in self.requests.items() if code.lstrip("-").isdigit() and predicate(int(code)))


@dataclass
class Agent:
    """One Promtail reached over HTTP: its counters, and the client URLs it runs with."""

    http: HTTPService

    @property
    def name(self) -> str:
        return self.http.name

    def counters(self) -> Counters:
        return Counters.parse(self.http.request("GET", "/metrics").text)

    def client_urls(self) -> list[str]:
        """The `clients[].url` of the running config (Promtail's /config page, v2.9.3 and v3.5.1 alike)."""
        page = self.http.request("GET", "/config").text
        found = CONFIG_PRE.search(page)
        doc = yaml.safe_load(html.unescape(found.group(1) if found else page)) or {}
        clients = doc.get("clients") or [doc.get("client") or {}]
        return [c["url"] for c in clients if isinstance(c, dict) and c.get("url")]


def _n(x: float) -> str:
    return f"{x:.0f}"


def cause(grown: Counters, urls: list[str], source: str) -> str:
    """One clause naming why nothing arrived, from what the counters did while the canary waited.

    `urls` are the client URLs (or the hosts when the config is not readable); `source` says where
    the canary line was written (a file, a pod's log), for the case where the agent read nothing.
    """
    where = ", ".join(urls) or "its Loki"
    failed = grown.requests.get(NO_ANSWER, 0.0)
    limited = grown.requests.get("429", 0.0)
    rejected = grown.answered(lambda c: 400 <= c < 500 and c != 429)
    server = grown.answered(lambda c: c >= 500)
    dropped = ", ".join(f"{r}: {_n(n)}" for r, n in sorted(grown.dropped.items()))
    dropped = f"; dropped entries ({dropped})" if dropped else ""
    retried = f", {_n(grown.retries)} batch retries" if grown.retries else ""
    if failed and not grown.sent:
        return f"Promtail cannot connect to {where} ({_n(failed)} pushes got no answer{retried}{dropped})"
    if limited and not grown.sent:
        return f"Loki rate-limits Promtail: {_n(limited)} pushes to {where} answered 429{retried}{dropped}"
    if rejected and not grown.sent:
        codes = ", ".join(c for c in sorted(grown.requests) if c.isdigit() and 400 <= int(c) < 500 and c != "429")
        return f"Loki rejects Promtail's pushes to {where}: {_n(rejected)} answered {codes}{dropped}"
    if server and not grown.sent:
        return f"Loki fails Promtail's pushes to {where}: {_n(server)} answered 5xx{retried}{dropped}"
    if not grown.requests and not grown.sent:
        return f"Promtail pushed nothing since the canary was written: it read nothing from {source}"
    return f"Promtail sent {_n(grown.sent)} entries to {where} since the canary was written{dropped}"


@dataclass
class Watch:
    """An agent's counters from before the canary, to say at the timeout what its pushes did since."""

    agent: Agent
    before: Counters | None = None
    error: str = ""

    @classmethod
    def start(cls, agent: Agent) -> "Watch":
        watch = cls(agent)
        try:
            watch.before = agent.counters()
        except ServiceError as e:
            watch.error = e.headline
        return watch

    def cause(self, source: str) -> str:
        """The clause for the timeout; says so when the agent's counters cannot be read."""
        try:
            now = self.agent.counters()
        except ServiceError as e:
            return f"{self.agent.name}'s counters are not readable ({e.headline})"
        try:
            urls = self.agent.client_urls()
        except (ServiceError, yaml.YAMLError, AttributeError):
            urls = [f"host {h}" for h in now.hosts]
        return cause(now.since(self.before), urls, source)

