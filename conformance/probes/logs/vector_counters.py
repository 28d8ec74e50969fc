"""What Vector's own counters say about its elasticsearch sink (the vector-opensearch profile's agent).

Read from the `prometheus_exporter` sink fed by `internal_metrics` (namespace "vector"), at Vector 0.56.0's names
(lib/vector-common/src/internal_event/metric_name.rs) and labels (component_id, component_kind, component_type, host);
what grows when is in docs/real-stack.md "Vector's elasticsearch sink". Only the elasticsearch sink's series count.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from conformance.core.exposition import parse_samples

SINK_TYPE = "elasticsearch"  # component_type of the sink that writes to OpenSearch
SENT = "vector_component_sent_events_total"
ERRORS = "vector_component_errors_total"  # {error_type, stage}: a rejected request is request_failed/sending
DISCARDED = "vector_component_discarded_events_total"  # {intentional}
RESPONSES = "vector_http_client_responses_total"  # {status}: every HTTP answer, retried ones too
NO_ANSWER = "vector_http_client_errors_total"  # {error_kind}: a request that got no answer (refused, reset, timeout)
BUFFERED = "vector_buffer_events"  # gauge: events waiting in the sink's buffer
# Connection errors since the canary before Vector counts as unable to reach OpenSearch: the first try and two
# retries, which its Fibonacci backoff from 1 s (full jitter) makes within 3 s of the batch (retries.rs advance).
HOPELESS_ATTEMPTS = 3


@dataclass(frozen=True)
class Counters:
    """One reading of the elasticsearch sink's counters, summed over its components."""

    sent: float = 0.0
    errors: dict[str, float] = field(default_factory=dict)  # "error_type/stage" -> count
    discarded: float = 0.0
    responses: dict[str, float] = field(default_factory=dict)  # status -> answers
    no_answer: dict[str, float] = field(default_factory=dict)  # error_kind -> requests
    buffered: float = 0.0

    @classmethod
    def parse(cls, text: str) -> "Counters":
        sent = discarded = buffered = 0.0
        errors: dict[str, float] = {}
        responses: dict[str, float] = {}
        no_answer: dict[str, float] = {}
        for s in parse_samples(text):
            if s.labels.get("component_type") != SINK_TYPE:
                continue
            if s.name == SENT:
                sent += s.value
            elif s.name == ERRORS:
                key = f"{s.labels.get('error_type', '')}/{s.labels.get('stage', '')}"
                errors[key] = errors.get(key, 0.0) + s.value
            elif s.name == DISCARDED:
                discarded += s.value
            elif s.name == RESPONSES:
                responses[s.labels.get("status", "")] = responses.get(s.labels.get("status", ""), 0.0) + s.value
            elif s.name == NO_ANSWER:
                kind = s.labels.get("error_kind", "")
                no_answer[kind] = no_answer.get(kind, 0.0) + s.value
            elif s.name == BUFFERED:
                buffered += s.value
        return cls(sent, errors, discarded, responses, no_answer, buffered)

    def since(self, earlier: "Counters | None") -> "Counters":
        """What grew after `earlier` (the buffer as it is now)."""
        if earlier is None:
            return self
        grown = lambda now, then: {k: v - then.get(k, 0.0) for k, v in now.items() if v > then.get(k, 0.0)}  # noqa: E731
        return Counters(max(0.0, self.sent - earlier.sent), grown(self.errors, earlier.errors),
                        max(0.0, self.discarded - earlier.discarded), grown(self.responses, earlier.responses),
                        grown(self.no_answer, earlier.no_answer), self.buffered)


def _n(x: float) -> str:
    return f"{x:.0f}"


def _answers(c: Counters) -> str:
    return ", ".join(f"{_n(n)}× {status}" for status, n in sorted(c.responses.items()))


def rejected(grown: Counters, where: str) -> str:
    """The clause for requests OpenSearch refused (a 4xx, or 200 with `errors: true`): Vector drops them at once."""
    failed = grown.errors.get("request_failed/sending", 0.0)
    return (f"OpenSearch rejects Vector's bulk requests to {where}: {_n(failed)} failed as component_errors_total"
            f"{{error_type=\"request_failed\",stage=\"sending\"}} since the canary was written ({_n(grown.discarded)} "
            f"events discarded; HTTP answers {_answers(grown) or 'none'}); Vector drops a rejected request without "
            f"retrying (an answer of 200 with \"errors\":true included), so the next line is refused alike")


def unreachable(grown: Counters, now: Counters) -> str:
    """Requests without an answer, said as counted (Vector's counters name no endpoint: the sink's, whatever it is)."""
    kinds = "; ".join(sorted(grown.no_answer))
    since, in_all = sum(grown.no_answer.values()), sum(now.no_answer.values())
    counted = f"{_n(since)} bulk requests since the canary" + (f" and {_n(in_all)} in all" if in_all > since else "")
    return (f"Vector cannot connect to its sink's endpoint ({counted} got no answer: {kinds}; none answered); "
            f"Vector retries them without end, backing off up to 30 s, and holds {_n(now.buffered)} events in its buffer")


def hopeless(now: Counters, before: Counters | None, where: str) -> str | None:
    """Why waiting cannot help, from what the sink's counters did since the canary; None while it might."""
    if before is None:
        return None
    grown = now.since(before)
    if grown.sent:
        return None
    if grown.errors.get("request_failed/sending"):
        return rejected(grown, where)
    since, in_all = sum(grown.no_answer.values()), sum(now.no_answer.values())
    # A Vector refused for a while waits up to 30 s between tries: one since the canary is enough when it has had
    # HOPELESS_ATTEMPTS in all and never had an answer.
    never = not now.sent and not now.responses
    if not grown.responses and (since >= HOPELESS_ATTEMPTS or (since and never and in_all >= HOPELESS_ATTEMPTS)):
        return (f"{unreachable(grown, now)}, and the primary OpenSearch answers at {where} (its health check), so the "
                f"endpoint Vector ships to is wrong: waiting will not help")
    return None


def cause(now: Counters, before: Counters | None, where: str, source: str) -> str:
    """One clause naming why nothing arrived, for the timeout."""
    grown = now.since(before)
    if grown.sent:
        return f"Vector's sink delivered {_n(grown.sent)} events to {where} since the canary was written"
    if grown.errors.get("request_failed/sending"):
        return rejected(grown, where)
    if grown.no_answer:
        return unreachable(grown, now)
    retried = {s: n for s, n in grown.responses.items() if s == "429" or s.startswith("5")}
    if retried:
        return (f"OpenSearch fails Vector's bulk requests to {where} (answers {_answers(grown)} since the canary); "
                f"Vector retries them without end, backing off up to 30 s")
    return f"Vector's sink sent nothing since the canary was written: it read nothing from {source}"
