"""The HTTP layer: bounded retries of transient failures, server error bodies kept, secrets masked."""

from __future__ import annotations

import threading
import time

import pytest

from conformance.core.http import USER_AGENT, APIError, HTTPService, RetryPolicy, Unreachable, single_attempts
from conformance.core.redact import redact, register_secret
from tests.fakes.server import FakeServer, Response
from tests.proving_ground import free_port

QUICK = RetryPolicy(attempts=4, delay=0.01, max_delay=0.02, budget=2)


def scripted(*answers: Response) -> FakeServer:
    """A server answering GET /x with the given responses in turn (the last one repeats)."""
    queue = list(answers)
    server = FakeServer()
    server.route("GET", "/x", lambda r: queue.pop(0) if len(queue) > 1 else queue[0])
    return server


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_transient_statuses_are_retried_then_succeed(status):
    with scripted(Response(status, "busy"), Response(200, {"ok": True})) as s:
        assert HTTPService("svc", s.url, retry=QUICK).get_json("/x") == {"ok": True}
        assert len(s.requests) == 2


def test_retries_are_bounded_and_keep_the_last_body():
    with scripted(Response(503, "no endpoints available for service \"loki-stack\"")) as s:
        with pytest.raises(APIError) as e:
            HTTPService("oke Loki", s.url, retry=QUICK).get_json("/x")
        assert len(s.requests) == QUICK.attempts
        assert e.value.status == 503
        assert e.value.headline == 'oke Loki GET /x answered 503: no endpoints available for service "loki-stack"'


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_other_errors_raise_at_once_with_status_and_body(status):
    body = '{"status":"error","errorType":"bad_data","error":"parse error at char 4"}'
    with scripted(Response(status, body)) as s:
        with pytest.raises(APIError) as e:
            HTTPService("oke Prometheus", s.url, retry=QUICK).get_json("/x")
        assert len(s.requests) == 1
        assert e.value.status == status and not e.value.transient
        assert "parse error at char 4" in str(e.value)


def test_connection_refused_becomes_unreachable_within_the_budget():
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    with pytest.raises(Unreachable, match=r"oke Loki unreachable at http://127\.0\.0\.1:\d+/ready: connection refused"):
        HTTPService("oke Loki", url, retry=QUICK).request("GET", "/ready")
    assert time.monotonic() - started < QUICK.budget + 1


def test_every_call_has_a_timeout():
    released = threading.Event()

    def slow(_):
        released.wait(30)  # without a client timeout the call would hang this long
        return Response(200, "late")

    server = FakeServer()
    server.route("GET", "/slow", slow)
    with server:
        service = HTTPService("svc", server.url, timeout=0.2, retry=RetryPolicy(attempts=1))
        started = time.monotonic()
        try:
            with pytest.raises(Unreachable, match="read timed out"):
                service.request("GET", "/slow")
        finally:
            released.set()
        assert time.monotonic() - started < 15  # the 0.2 s timeout, far from the server's 30 s, whatever the load


def slow_once(seconds: float) -> FakeServer:
    """A server whose first answer to GET /slow comes after `seconds`, the others at once."""
    calls = []

    def handler(_):
        calls.append(1)
        if len(calls) == 1:
            time.sleep(seconds)
        return Response(200, {"ok": True})

    server = FakeServer()
    server.route("GET", "/slow", handler)
    return server


def test_the_default_budget_leaves_room_for_a_retry_after_a_read_timeout():
    # Was 10 s, the same as the request timeout: one read timeout used the whole budget.
    assert RetryPolicy().budget >= 2 * HTTPService("svc", "http://127.0.0.1:1").timeout


def test_one_read_timeout_outside_a_wait_is_retried():
    with slow_once(1.0) as server:
        service = HTTPService("svc", server.url, timeout=0.3, retry=RetryPolicy(delay=0.01, budget=2))
        assert service.get_json("/slow") == {"ok": True}
        assert len(server.requests) == 2


def test_inside_a_wait_a_call_tries_once():
    with slow_once(1.0) as server:
        service = HTTPService("svc", server.url, timeout=0.3, retry=RetryPolicy(delay=0.01, budget=2))
        with single_attempts(), pytest.raises(Unreachable, match="read timed out"):
            service.get_json("/slow")
        assert len(server.requests) == 1


def test_every_request_names_the_suite_in_its_user_agent():
    with scripted(Response(200, {"ok": True})) as s:
        HTTPService("svc", s.url, headers={"X-Other": "1"}).get_json("/x")
    assert USER_AGENT.startswith("monitoring-conformance/")
    assert s.requests[0].headers["User-Agent"] == USER_AGENT


def test_an_unreachable_service_is_an_http_error_not_a_check_outcome():
    from conformance.core.outcomes import CheckFailure

    error = Unreachable("oke Loki", "http://127.0.0.1:1/ready", "ConnectError: refused")
    assert error.transient and not isinstance(error, CheckFailure)


def test_secrets_in_error_bodies_and_urls_are_masked():
    register_secret("hunter2-grafana-pw")
    with scripted(Response(400, "login failed for admin:hunter2-grafana-pw, token=abcdefghijkl")) as s:
        with pytest.raises(APIError) as e:
            HTTPService("svc", s.url, retry=QUICK).get_json("/x")
    text = e.value.detail
    assert "hunter2-grafana-pw" not in text and "abcdefghijkl" not in text
    assert "***" in text


@pytest.mark.parametrize("text,secret", [
    ("Authorization: Bearer abc.def.ghi-jkl", "abc.def.ghi-jkl"),
    ("token: eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJrdWJlcm5ldGVzIn0.c2lnbmF0dXJl", "eyJhbGciOiJSUzI1NiJ9"),
    ("https://admin:pa55word@grafana.example.com/api", "pa55word"),
    ('{"client-key-data": "LS0tLS1CRUdJTi"}', "LS0tLS1CRUdJTi"),
    ("password=prom-operator", "prom-operator"),
])
def test_redact_masks_credential_shaped_text(text, secret):
    assert secret not in redact(text)
