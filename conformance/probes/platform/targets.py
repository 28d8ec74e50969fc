"""What the target checks read of /api/v1/targets: a target in a line, the required job that owns it, when it was
last scraped; and the one check of "this job is scraped on every cluster", a row per job (ScrapeTarget), as
kube-prometheus's tests/e2e judges its table of queries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from conformance.clients.prometheus import PrometheusClient
from conformance.core.eventually import NotYet, Wait, eventually
from conformance.core.outcomes import Failed, PreconditionUnmet
from conformance.core.timefmt import rfc3339_seconds
from conformance.probes.platform.scrape_jobs import RequiredJob


def describe_target(t: dict) -> str:
    """A target in one line: its job and pool, URL, health and last error."""
    job = (t.get("labels") or {}).get("job", "")
    return (f"job {job} ({t.get('scrapePool')}) {t.get('scrapeUrl')}: {t.get('health')} "
            f"({t.get('lastError') or 'no error'})")


def owner(target: dict, required: tuple[RequiredJob, ...]) -> RequiredJob | None:
    """The required job whose pool the target is in, or None (a user's own monitor)."""
    return next((j for j in required if j.owns(target)), None)


def scraped_at(target: dict) -> float:
    """When the target was last scraped (epoch seconds; 0 when never)."""
    return rfc3339_seconds(target.get("lastScrape") or "")


@dataclass(frozen=True)
class Seen:
    """A job's targets at one look: up or not, what the Prometheus shows in words, and what was read."""

    up: bool
    said: str
    found: Any = None


@dataclass(frozen=True)
class ScrapeTarget:
    """A row of "this job is scraped on every cluster": its scrape pool, how its targets are read and diagnosed, what
    to say when the loaded configuration lacks the pool (None: not judged from it), and why no wait helps (or None)."""

    pool: str
    what: str  # the timeout's headline: what is missing
    read: Callable[[PrometheusClient], Seen]
    not_configured: str | None = None
    hopeless: Callable[[PrometheusClient, Seen], str | None] = lambda prometheus, seen: None
    diagnose: Callable[[PrometheusClient], str] | None = None


def require_scraped(prometheus: PrometheusClient, row: ScrapeTarget, hop: str, wait: Wait) -> Seen:
    """The row's targets up on the Prometheus: a precondition at once when the configuration it loaded has no such pool
    (the operator renders one for every monitor it selects: no wait brings it), a failure at once when the row says no
    wait helps, else waited for (its last look, or the row's diagnosis, naming why)."""
    jobs = prometheus.configured_jobs() if row.not_configured is not None else None
    if jobs is not None and row.pool not in jobs:
        raise PreconditionUnmet(hop, f"the configuration the {prometheus.name} loaded has no scrape job {row.pool}: "
                                     f"{row.not_configured}")

    def probe() -> Seen:
        seen = row.read(prometheus)
        if not seen.up:
            if why := row.hopeless(prometheus, seen):
                raise Failed(hop, why, final=True)
            raise NotYet(seen.said)
        return seen

    diagnose = (lambda: row.diagnose(prometheus)) if row.diagnose else None
    return eventually(probe, hop=hop, what=row.what, wait=wait, diagnose=diagnose)
