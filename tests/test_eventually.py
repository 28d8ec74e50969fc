"""The eventual-assertion helper: converge, time out with the last state, abort early, scale."""

from __future__ import annotations

import time

import pytest

from conformance.core import eventually as ev
from conformance.core.eventually import NotYet, Wait, eventually
from conformance.core.http import APIError, HTTPService, RetryPolicy, Unreachable
from conformance.core.outcomes import Failed, PreconditionUnmet, TimedOut
from tests.fakes.server import FakeServer, Response
from tests.proving_ground import free_port

FAST = Wait(timeout=1.0, delay=0.01, max_delay=0.05)


class Counter:
    """A probe that fails `until` times, then returns its call count."""

    def __init__(self, until: int = 0, state: str = "not yet"):
        self.calls = 0
        self.until = until
        self.state = state

    def __call__(self) -> int:
        self.calls += 1
        if self.calls <= self.until:
            raise NotYet(f"{self.state} #{self.calls}")
        return self.calls


def test_returns_the_value_once_the_probe_holds():
    assert eventually(Counter(until=3), hop="a → b", what="no value", wait=FAST) == 4


def test_converge_needs_n_successes_in_a_row():
    flaky = iter([1, None, 1, 1, 1])

    def probe():
        if next(flaky) is None:
            raise NotYet("flapped")
        return "ok"

    # The None resets the streak, so it takes all five attempts to see three in a row.
    assert eventually(probe, hop="h", what="w", wait=FAST.with_(converge=3)) == "ok"


def test_timeout_reports_hop_what_elapsed_and_last_state():
    probe = Counter(until=10**6, state="stream count 0")
    started = time.monotonic()
    with pytest.raises(TimedOut) as e:
        # Attempts at 0 and 0.45 s; the next backoff (0.9 s) would end at 1.35 s: it is cut to end at the deadline.
        eventually(probe, hop="remote Promtail → primary Loki", what="no canary line", wait=Wait(timeout=0.5, delay=0.45, max_delay=10))
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 1.3  # the last attempt happens at the deadline, not a backoff later
    assert e.value.kind == "timed_out"
    assert e.value.headline.startswith("remote Promtail → primary Loki: no canary line after ")
    assert f"stream count 0 #{probe.calls}" in e.value.evidence
    assert f"({probe.calls} attempts)" in e.value.evidence


def test_diagnose_adds_a_clause_to_the_headline():
    with pytest.raises(TimedOut) as e:
        eventually(Counter(until=10**6), hop="h", what="no canary line", wait=Wait(timeout=0.1, delay=0.01),
                   diagnose=lambda: "Loki has no stream with cluster=workstation in the last 5 min")
    assert e.value.headline.endswith("; Loki has no stream with cluster=workstation in the last 5 min")


def test_a_failing_diagnosis_does_not_hide_the_timeout():
    def broken():
        raise RuntimeError("boom")

    with pytest.raises(TimedOut, match="diagnosis failed: RuntimeError: boom"):
        eventually(Counter(until=10**6), hop="h", what="w", wait=Wait(timeout=0.1, delay=0.01), diagnose=broken)


@pytest.mark.parametrize("outcome", [Failed("h", "wrong cluster label"), PreconditionUnmet("h", "receiver disabled")])
def test_failed_and_precondition_abort_at_once(outcome):
    calls = []

    def probe():
        calls.append(1)
        raise outcome

    started = time.monotonic()
    with pytest.raises(type(outcome)):
        eventually(probe, hop="h", what="w", wait=Wait(timeout=30))
    assert len(calls) == 1
    assert time.monotonic() - started < 10  # not the 30 s wait, whatever the load


def test_a_404_is_a_precondition_at_once_with_the_server_body():
    def probe():
        raise APIError("oke Prometheus", "POST", "http://x/api/v1/write", 404,
                       "remote write receiver needs to be enabled with --web.enable-remote-write-receiver")

    with pytest.raises(PreconditionUnmet) as e:
        eventually(probe, hop="remote Prometheus → primary Prometheus", what="no remote series", wait=Wait(timeout=30))
    assert e.value.kind == "precondition"
    assert "answered 404: remote write receiver needs to be enabled" in e.value.headline


def test_a_slow_answer_inside_a_wait_is_not_an_outage():
    """The first answer comes after the request timeout, the next at once: the wait converges."""
    calls = []

    def handler(_):
        calls.append(1)
        if len(calls) == 1:
            time.sleep(1.0)
        return Response(200, {"status": "success"})

    server = FakeServer()
    server.route("GET", "/api/v1/query", handler)
    with server:
        service = HTTPService("oke Prometheus", server.url, timeout=0.3, retry=RetryPolicy(attempts=1))
        got = eventually(lambda: service.get_json("/api/v1/query"), hop="h", what="w", wait=FAST.with_(timeout=5))
    assert got == {"status": "success"}
    assert len(calls) == 2


def test_a_service_refused_for_the_whole_wait_is_reported_unreachable_at_the_end():
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    service = HTTPService("oke Loki", url, retry=RetryPolicy(delay=0.01, max_delay=0.02, budget=5))
    calls = []

    def probe():
        calls.append(1)
        return service.get_json("/loki/api/v1/labels")

    started = time.monotonic()
    with pytest.raises(TimedOut) as e:
        eventually(probe, hop="remote Promtail → primary Loki", what="no canary line",
                   wait=Wait(timeout=2.0, delay=0.05, max_delay=0.1))
    assert time.monotonic() - started >= 2.0  # at the wait's end, not at once
    assert len(calls) >= 2  # retried: a refused connection is not final (how often depends on the machine's speed)
    assert e.value.kind == "timed_out"
    assert e.value.headline.startswith("conformance → oke Loki: oke Loki still unreachable when the wait ended after ")
    assert "connection refused" in e.value.headline
    assert "while waiting for: no canary line (remote Promtail → primary Loki)" in e.value.evidence
    assert f"at {url}/loki/api/v1/labels" in e.value.evidence


def test_an_outage_that_heals_before_the_end_is_not_reported_unreachable():
    answers = iter([Unreachable("oke Loki", "http://x/ready", "ConnectError: refused")])

    def probe():
        err = next(answers, None)
        if err is not None:
            raise err
        raise NotYet("no line yet")

    with pytest.raises(TimedOut) as e:
        eventually(probe, hop="h", what="no canary line", wait=Wait(timeout=0.2, delay=0.01))
    assert e.value.headline.startswith("h: no canary line after ")


def test_a_503_is_transient_and_waited_out():
    answers = iter([503, 503, 200])

    def probe():
        status = next(answers)
        if status != 200:
            raise APIError("oke Loki", "GET", "http://x/ready", status, "Ingester not ready: waiting for 15s after being ready")
        return "ready"

    assert eventually(probe, hop="h", what="w", wait=FAST) == "ready"


def test_timeout_scale_stretches_every_wait(monkeypatch):
    monkeypatch.setattr(ev, "_timeout_scale", 3.0)
    assert Wait(timeout=10).scaled() == 30
    started = time.monotonic()
    with pytest.raises(TimedOut):
        eventually(Counter(until=10**6), hop="h", what="w", wait=Wait(timeout=0.1, delay=0.01, max_delay=0.02))
    assert time.monotonic() - started >= 0.3


def test_backoff_grows_but_stays_under_the_cap():
    stamps: list[float] = []

    def probe():
        stamps.append(time.monotonic())
        raise NotYet("x")

    with pytest.raises(TimedOut):
        eventually(probe, hop="h", what="w", wait=Wait(timeout=0.6, delay=0.02, max_delay=0.1))
    # The last pause is cut to end at the deadline (it may be ~0 when a slow attempt ran close to it): leave it out.
    paused = [b - a for a, b in zip(stamps, stamps[1:])][:-1]
    gaps = sorted(paused)
    # A sleep never runs short, only long under load: so check lower bounds, and the median for the cap.
    assert paused[0] >= 0.02  # the first pause
    assert gaps[-1] >= 0.08  # it backs off: 0.02, 0.04, 0.08, then the cap
    assert gaps[len(gaps) // 2] < 0.1 + 0.05  # most pauses sit at the cap, not past it


def test_set_timeout_scale_refuses_nonsense():
    with pytest.raises(ValueError):
        ev.set_timeout_scale(0)
