"""The eventual-assertion helper: converge, time out with the last state, abort early, scale."""

from __future__ import annotations

import time

import pytest

from conformance import eventually as ev
from conformance.eventually import NotYet, Wait, eventually
from conformance.http import APIError, Unreachable
from conformance.outcomes import Failed, PreconditionUnmet, TimedOut

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
        eventually(probe, hop="remote Promtail → primary Loki", what="no canary line", wait=Wait(timeout=0.5, delay=0.01, max_delay=0.1))
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 1.0  # the last attempt happens at the deadline, not a backoff later
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
    assert time.monotonic() - started < 0.5


def test_a_404_is_a_precondition_at_once_with_the_server_body():
    def probe():
        raise APIError("oke Prometheus", "POST", "http://x/api/v1/write", 404,
                       "remote write receiver needs to be enabled with --web.enable-remote-write-receiver")

    with pytest.raises(PreconditionUnmet) as e:
        eventually(probe, hop="remote Prometheus → primary Prometheus", what="no remote series", wait=Wait(timeout=30))
    assert e.value.kind == "precondition"
    assert "answered 404: remote write receiver needs to be enabled" in e.value.headline


def test_an_unreachable_service_is_a_precondition_at_once():
    def probe():
        raise Unreachable("oke Loki", "http://127.0.0.1:1/ready", "ConnectError: refused")

    with pytest.raises(PreconditionUnmet, match="oke Loki unreachable"):
        eventually(probe, hop="h", what="w", wait=Wait(timeout=30))


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
    gaps = sorted(b - a for a, b in zip(stamps, stamps[1:]))
    # A sleep never runs short, only long under load: so check lower bounds, and the median for the cap.
    assert gaps[0] >= 0.02  # the first pause
    assert gaps[-1] >= 0.08  # it backs off: 0.02, 0.04, 0.08, then the cap
    assert gaps[len(gaps) // 2] < 0.1 + 0.05  # most pauses sit at the cap, not past it


def test_set_timeout_scale_refuses_nonsense():
    with pytest.raises(ValueError):
        ev.set_timeout_scale(0)
