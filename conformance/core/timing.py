"""Every wait's budget in one table, each derived from what the stack is configured to do, the reason beside it.

A budget is a function of the intervals it depends on. Checks pass what the cluster says (the metrics probe's
scrape_interval_of reads its Prometheus's loaded configuration), else the stack's own values (STACK, from stack/values).
"""

from __future__ import annotations

from dataclasses import dataclass

from conformance.core.eventually import Wait


@dataclass(frozen=True)
class Intervals:
    """What the stack is configured to do, in seconds; the defaults are the stack's own values."""

    scrape: float = 15.0  # stack/values/kube-prometheus-stack{,-remote}.yaml prometheusSpec.scrapeInterval
    evaluation: float = 30.0  # the stack sets no evaluationInterval: prometheus-operator's default, 30s
    send_deadline: float = 5.0  # remote_write queue_config.batch_send_deadline, Prometheus's default
    resend_delay: float = 60.0  # Prometheus --rules.alert.resend-delay default: a firing alert is re-sent every 1m
    reload: float = 15.0  # a monitor seen: operator renders, config-reloader reloads, first service discovery
    grafana_rescan: float = 30.0  # Grafana's file provider updateIntervalSeconds (the chart's default)
    envoy_flush: float = 5.0  # Envoy's zipkin tracer flush_interval_ms default (5000)
    agent_backoff: float = 0.5  # Promtail's / Alloy's first retry back-off (min_period 500ms, doubling)


STACK = Intervals()
OPERATOR_SCRAPE = 30.0  # what a Prometheus resource without spec.scrapeInterval scrapes at (prometheus-operator)
PROMETHEUS_SCRAPE = 60.0  # a loaded configuration without global.scrape_interval: Prometheus's own default, 1m
COLD_AGENT = 60.0  # a minute: a cold log agent's first read and its back-off's first six steps (31.5 s), about twice
EVENT_IN_FLIGHT = 1.0  # an event the exporter accepted just in time: its involved object's lookup and one push
MARGIN = 10.0  # a loaded machine's slack on one round: a slow scrape, a slow query, a slow reload


def _poll(budget: float, interval: float = 5.0, first: float = 0.5) -> Wait:
    """A wait of `budget` s looking again no less often than the state can change (every interval, at most 5 s)."""
    return Wait(timeout=budget, delay=min(first, interval), max_delay=max(min(5.0, interval), min(first, interval)))


def answers() -> Wait:
    """A running service answers at once; a few seconds bound the retries of refused connections."""
    return Wait(timeout=3.0, delay=0.25, max_delay=1.0)


def ready() -> Wait:
    """A service pod that is starting passes its readiness probe (kubelet's default period 10 s, thrice)."""
    return Wait(timeout=3 * 10.0, delay=0.5, max_delay=3.0)


def scraped(scrape: float = STACK.scrape, rounds: int = 3) -> Wait:
    """A target listed (one reload) and up: scraped within one interval, two more for a slow first scrape."""
    return _poll(STACK.reload + rounds * scrape, scrape)


def forwarded(scrape: float = STACK.scrape, send_deadline: float = STACK.send_deadline) -> Wait:
    """A series on the primary: its target scraped (above), one more scrape and one send deadline, and a margin."""
    return _poll(scraped(scrape).timeout + scrape + send_deadline + MARGIN, scrape)


def after_traffic(scrape: float = STACK.scrape, send_deadline: float = STACK.send_deadline) -> Wait:
    """A request metric exists only after traffic: forwarded (above) plus two scrapes of the proxy that served it."""
    return _poll(forwarded(scrape, send_deadline).timeout + 2 * scrape, scrape, first=1.0)


def rules_evaluated(evaluation: float = STACK.evaluation) -> Wait:
    """Every rule group evaluates within one interval of the check's start; two more cover a slow first round."""
    return _poll(3 * evaluation + MARGIN)


def alert_delivered(evaluation: float = STACK.evaluation, resend: float = STACK.resend_delay) -> Wait:
    """A send before the notifier found the Alertmanager is lost: the next comes a resend delay later, plus a round."""
    return _poll(resend + evaluation + MARGIN)


def log_delivered() -> Wait:
    """A line through a log agent: its batch (1 s) and, for a cold agent, its first read of a new file and its
    back-off's first six steps (agent_backoff doubling: 31.5 s), with as much again for a loaded machine."""
    return Wait(timeout=COLD_AGENT, delay=0.25, max_delay=1.0)


def labels_listed() -> Wait:
    """Loki's label values include a stream once its first line is in (as log_delivered), polled less often."""
    return log_delivered().with_(delay=1.0, max_delay=5.0)


def event_delivered() -> Wait:
    """An Event: the exporter's watch hands it over at once and its Loki sink pushes it; as a log line, a resync."""
    return log_delivered().with_(delay=0.5, max_delay=2.0)


def event_fresh(max_age: float, age: float) -> Wait:
    """An Event the exporter has not sent yet: it drops one older than its maxEventAgeSeconds when it sees it
    (pkg/kube/watcher.go isEventDiscarded), a restarted one re-lists and sends any younger; so until the probe's age
    (`age` now) reaches max_age, and one push the age check let through (one request per event, no batching)."""
    return event_delivered().with_(timeout=max(0.0, max_age - age) + EVENT_IN_FLIGHT)


def spans_stored(flush: float = STACK.envoy_flush) -> Wait:
    """A request's spans in Jaeger: each sidecar reports within one flush interval of the request's end and gives the
    report as long again (Envoy does not resend a lost one); Jaeger's pipeline (its 200 ms batch, a storage's 1 s
    refresh) within one more; a slow first report twice that, and a margin."""
    return _poll(4 * flush + MARGIN, flush, first=1.0)


def spans_follow(flush: float = STACK.envoy_flush) -> Wait:
    """Once one sidecar's span of a request is in Jaeger, the other's: each sidecar sends within one flush interval of
    the request's end (the client's span ends with the answer, after the server's), twice, and a margin."""
    return _poll(2 * flush + MARGIN, flush, first=1.0)


def kiali_cached() -> Wait:
    """Kiali refreshes its namespace and workload caches on a short interval; a minute covers a cold cache."""
    return _poll(60.0)


def dashboards_provisioned(rescan: float = STACK.grafana_rescan) -> Wait:
    """The sidecar writes the file on the API server's event; Grafana's provider rescans every interval: three."""
    return _poll(3 * rescan)


def dashboard_removed(sidecar_delay: float, rescan: float) -> Wait:
    """A deleted ConfigMap's dashboard gone: the sidecar removes the file when it sees the deletion (a watch event at
    once, a SLEEP pass every SLEEP_TIME) and asks Grafana to reload; should that request fail, the provider's next
    rescan (updateIntervalSeconds); and a margin (the sidecar's 5 s error throttle, a slow reload)."""
    return _poll(sidecar_delay + rescan + MARGIN)


def pods_settled() -> Wait:
    """Pods of a freshly installed stack settle within a couple of minutes: image pulls, then readiness probes."""
    return Wait(timeout=180.0, delay=1.0, max_delay=10.0)


def pod_started() -> Wait:
    """A pod the check creates: scheduled, a small image pulled on a cold node, started."""
    return Wait(timeout=120.0, delay=0.25, max_delay=2.0)


def namespace_gone() -> Wait:
    """The namespace controller's pace: finalizers, then purge of every resource in it."""
    return Wait(timeout=60.0, delay=0.5, max_delay=2.0)


def restarted() -> Wait:
    """Components restart during an upgrade: a pod's grace period (30 s), its image pull and readiness, twice."""
    return Wait(timeout=120.0, delay=1.0, max_delay=5.0)


def back_to_back() -> Wait:
    """No pause between looks: each look blocks on a stream itself (a websocket's tail)."""
    return Wait(delay=0.0, max_delay=0.0)
