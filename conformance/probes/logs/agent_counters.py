"""What a log agent's own counters say about its pushes to Loki: Promtail's, or Alloy's (the stack profile's).

The series are declared here and nowhere else, with their labels as each agent exports them:
Promtail (grafana/loki v3.5.1 clients/pkg/promtail/client/client.go NewMetrics and targets/file/metrics.go;
the same names and labels at v2.9.3), read from its /metrics and /config; Alloy v1.18.1 (grafana/alloy
internal/component/common/loki/client/metrics.go newMetrics, loki.write's; internal/component/loki/source/
file/metrics.go, loki.source.file's), read from its /metrics (Alloy serves no /config page). Both clients
share the same send loop (shards.go sendBatch in Alloy): a status_code of -1 is a push that got no HTTP answer.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

import yaml

from conformance.core import yamltext
from conformance.core.exposition import parse_samples
from conformance.core.access import Access, ServiceAbsent
from conformance.core.http import HTTPService, ServiceError, single_attempts
from conformance.core.topology import Cluster



@dataclass(frozen=True)
class Series:
    """The names of one agent's push and read counters."""

    agent: str  # how messages name the agent
    requests: str  # {status_code, host, ...}: push attempts by answer (a histogram's _count)
    dropped: str  # {host, tenant, reason}: entries given up on
    retries: str  # {host, tenant}: batches sent again after a recoverable error
    sent: str  # {host, ...}: entries Loki accepted
    read_lines: str  # {path}: lines the file targets read
    config_path: str | None  # the page with the running config's client URLs, if the agent has one
    # How it gives a failing batch up, and the one log line that shows it (empty: not recorded for this agent).
    backoff: str = "it retries with a backoff growing to minutes and then drops the batch"
    give_up_line: str = ""

    def gives_up(self, reason: str) -> str:
        """What the agent does with a batch it cannot deliver, as the drop `reason` counts it."""
        if not self.give_up_line:
            return self.backoff
        return f"{self.backoff} as {reason}, with one line at level=error: {self.give_up_line}"


PROMTAIL = Series("Promtail", "promtail_request_duration_seconds_count", "promtail_dropped_entries_total",
                  "promtail_batch_retries_total", "promtail_sent_entries_total", "promtail_read_lines_total", "/config")
# Alloy adds component_id and component_path to each (a component's registerer); they are summed over here.
# What a real Alloy 1.18.1 did (../shared/contracts/alloy-1.18.1/README.md (a), (b)): a batch is tried 10 times
# (max_backoff_retries), 0.5 s doubling to 5 min with jitter, so dropped 4-8.5 min after it was read (402 and 418 s
# seen); each retry is logged at debug level only, so at info its log is silent until the drop's one error line.
ALLOY = Series("Alloy", "loki_write_request_duration_seconds_count", "loki_write_dropped_entries_total",
               "loki_write_batch_retries_total", "loki_write_sent_entries_total", "loki_source_file_read_lines_total", None,
               backoff="Alloy tries a batch 10 times over 4-8.5 min, logging nothing at info level, then drops it",
               give_up_line='msg="final error sending batch, no retries left, dropping data"')
SERIES = {"Promtail": PROMTAIL, "Alloy": ALLOY}  # by conformance/core/profiles.py Profile.agent
REQUESTS, DROPPED, RETRIES, SENT, READ_LINES = (PROMTAIL.requests, PROMTAIL.dropped, PROMTAIL.retries, PROMTAIL.sent,
                                                PROMTAIL.read_lines)
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
    def parse(cls, text: str, series: Series = PROMTAIL) -> "Counters":
        requests: dict[str, float] = {}
        dropped: dict[str, float] = {}
        read: dict[str, float] = {}
        retries = sent = 0.0
        hosts: set[str] = set()
        for s in parse_samples(text):
            if s.name == series.requests:
                code = s.labels.get("status_code", "")
                requests[code] = requests.get(code, 0.0) + s.value
            elif s.name == series.dropped:
                reason = s.labels.get("reason", "")
                dropped[reason] = dropped.get(reason, 0.0) + s.value
            elif s.name == series.retries:
                retries += s.value
            elif s.name == series.sent:
                sent += s.value
            elif s.name == series.read_lines:
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
    """One log agent reached over HTTP: its counters, and the client URLs it runs with."""

    http: HTTPService
    series: Series = PROMTAIL

    @property
    def name(self) -> str:
        return self.http.name

    def counters(self) -> Counters:
        return Counters.parse(self.http.request("GET", "/metrics").text, self.series)

    def client_urls(self) -> list[str]:
        """The `clients[].url` of the running config (Promtail's /config page, v2.9.3 and v3.5.1 alike).

        AttributeError where the agent has no such page (Alloy): the counters' `host` labels name the endpoints.
        """
        if self.series.config_path is None:
            raise AttributeError(f"{self.series.agent} shows no running config")
        page = self.http.request("GET", self.series.config_path).text
        found = CONFIG_PRE.search(page)
        doc = yamltext.parse(html.unescape(found.group(1) if found else page)) or {}
        clients = doc.get("clients") or [doc.get("client") or {}]
        return [c["url"] for c in clients if isinstance(c, dict) and c.get("url")]


def _n(x: float) -> str:
    return f"{x:.0f}"


def cause(now: Counters, before: Counters | None, urls: list[str], source: str, agent: str = "Promtail") -> str:
    """One clause naming why nothing arrived, from what the counters did while the canary waited.

    A batch that keeps failing is retried with a backoff that grows to minutes, so a wait can see
    no attempt at all: then the answers the agent got before the canary say why. `urls` are the
    client URLs (or hosts); `source` is where the canary was written (a file, a pod's log).
    """
    grown = now.since(before)
    where = ", ".join(urls) or "its Loki"
    dropped = ", ".join(f"{r}: {_n(n)}" for r, n in sorted(grown.dropped.items()))
    dropped = f"; dropped entries ({dropped})" if dropped else ""
    retried = f", {_n(grown.retries)} batch retries" if grown.retries else ""
    if grown.sent:
        return f"{agent} sent {_n(grown.sent)} entries to {where} since the canary was written{dropped}"
    answers, when = (grown, "since the canary was written") if grown.requests else (now, "in all")
    failed = answers.requests.get(NO_ANSWER, 0.0)
    limited = answers.requests.get("429", 0.0)
    rejected = answers.answered(lambda c: 400 <= c < 500 and c != 429)
    server = answers.answered(lambda c: c >= 500)
    series = SERIES.get(agent, PROMTAIL)
    recorded = series.give_up_line != ""  # what the agent does next, where its real give-up was recorded
    if failed:
        then = f"; {series.gives_up('ingester_error')}" if recorded else ""
        return f"{agent} cannot connect to {where} ({_n(failed)} pushes got no answer {when}{retried}{dropped}){then}"
    if limited:
        then = f"; {series.gives_up('rate_limited')}" if recorded else ""
        return f"Loki rate-limits {agent}: {_n(limited)} pushes to {where} answered 429 {when}{retried}{dropped}{then}"
    if rejected:
        codes = ", ".join(c for c in sorted(answers.requests) if c.isdigit() and 400 <= int(c) < 500 and c != "429")
        return f"Loki rejects {agent}'s pushes to {where}: {_n(rejected)} answered {codes} {when}{dropped}"
    if server:
        return f"Loki fails {agent}'s pushes to {where}: {_n(server)} answered 5xx {when}{retried}{dropped}"
    read = sum(n for path, n in grown.read_lines.items() if path and path in source)
    if read:
        return f"{agent} read {_n(read)} lines from {source} but has pushed nothing since"
    return f"{agent} pushed nothing since the canary was written: it read nothing from {source}"


# Pushes that got no answer, since the canary, before the agent counts as unable to recover on its own: the first
# send and two retries. Both agents retry with backoff from 500 ms (Promtail 3.5.1 clients/pkg/promtail/client
# config.go, Alloy 1.18.1 loki/write: min_backoff_period), so these come within a few seconds of the batch wait:
# the third try 2.5-4 s after the line is read, and a real Alloy's counters showed 3 by the first reading, at 5 s
# (alloy-1.18.1/README.md (a): batch_retries_total and request_duration_seconds_count{status_code="-1"} in step).
HOPELESS_ATTEMPTS = 3


def hopeless(now: Counters, before: Counters | None, urls: list[str], agent: str = "Promtail") -> str | None:
    """Why the agent's pushes cannot succeed by waiting, from what its counters did since the canary; None while
    they might (nothing tried yet, something delivered, or only 429s and 5xx, which it retries and Loki may clear)."""
    grown = now.since(before)
    if before is None or grown.sent or grown.answered(lambda c: 200 <= c < 300):
        return None
    where = ", ".join(urls) or "its Loki"
    series = SERIES.get(agent, PROMTAIL)
    rejected = grown.answered(lambda c: 400 <= c < 500 and c != 429)
    if rejected:
        codes = ", ".join(c for c in sorted(grown.requests) if c.isdigit() and 400 <= int(c) < 500 and c != "429")
        return (f"Loki rejects {agent}'s pushes to {where}: {_n(rejected)} answered {codes} since the canary was "
                f"written, none accepted; {agent} drops a rejected batch without retrying{_dropped(grown)}"
                f"{_logged(series)}, and a line with the same labels is rejected alike")
    failed = grown.requests.get(NO_ANSWER, 0.0)
    if not failed or len(grown.requests) != 1:
        return None
    seen = _unanswered(now, failed)
    if not seen:
        return None
    return (f"{agent} cannot connect to {where} ({seen}); {series.gives_up('ingester_error')}, and the primary Loki "
            f"answers (its readiness check), so the URL {agent} pushes to is wrong: waiting will not help")


def _unanswered(now: Counters, failed: float) -> str:
    """Enough pushes without an answer to call the agent unable to reach Loki, said as counted; '' while too few.

    Since the canary (after Loki answered ready) HOPELESS_ATTEMPTS of them; or fewer, from an agent that has never
    delivered anything and had HOPELESS_ATTEMPTS in all: its batch is deep in a backoff of minutes (a real Alloy or
    Promtail running for a while with a wrong URL tries the batch in hand once in 1-4 min), so its next try after
    the canary may be a minute away, or two.
    """
    if failed >= HOPELESS_ATTEMPTS:
        return f"{_n(failed)} pushes since the canary got no answer, none accepted"
    in_all = now.requests.get(NO_ANSWER, 0.0)
    never = not now.sent and not now.answered(lambda c: 200 <= c < 300)
    if never and in_all >= HOPELESS_ATTEMPTS:
        return f"{_n(failed)} pushes since the canary and {_n(in_all)} in all got no answer, none ever accepted"
    return ""


def _dropped(grown: Counters) -> str:
    """' (dropped entries: ingester_error: 1)' for the drop reasons that grew, or ''."""
    reasons = ", ".join(f"{r}: {_n(n)}" for r, n in sorted(grown.dropped.items()) if n)
    return f" (dropped entries: {reasons})" if reasons else ""


def _logged(series: Series) -> str:
    """Where the agent's log shows a dropped batch, when its real give-up was recorded."""
    return f" and logs Loki's answer at level=error: {series.give_up_line}" if series.give_up_line else ""


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

    def hopeless(self) -> str | None:
        """Why waiting for the canary cannot help, from the agent's counters now; None while it might (or unreadable)."""
        try:
            now = self.agent.counters()
        except ServiceError:
            return None
        return hopeless(now, self.before, self.urls(now), self.agent.series.agent)

    def urls(self, now: Counters) -> list[str]:
        """Where the agent pushes: its running config's client URLs, else the hosts its counters name."""
        try:
            return self.agent.client_urls()
        except (ServiceError, yaml.YAMLError, AttributeError):
            return [f"host {h}" for h in now.hosts]

    def cause(self, source: str) -> str:
        """The clause for the timeout; says so when the agent's counters cannot be read."""
        try:
            now = self.agent.counters()
        except ServiceError as e:
            return f"{self.agent.name}'s counters are not readable ({e.headline})"
        return cause(now, self.before, self.urls(now), source, self.agent.series.agent)



def watch(access: Access, cluster: Cluster) -> Watch | None:
    """The cluster's log agent's counters (the stack profile's agent) from now on; None when the topology
    gives no way to reach it."""
    profile = access.topology.stack_profile
    try:
        endpoint = access.endpoint(cluster, profile.agent_service)
    except ServiceAbsent:
        return None
    with single_attempts():  # one look: an agent that does not answer must not delay the canary
        return Watch.start(Agent(endpoint.http, SERIES[profile.agent]))
