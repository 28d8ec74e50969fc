"""What a real Alloy 1.18.1's counters say to the canary, table-driven: one row per case of
../shared/contracts/alloy-1.18.1/README.md, with the series and labels it recorded (loki.write's, summed over
component_id/component_path, host and tenant)."""

from __future__ import annotations

import pytest

from conformance.probes.logs.agent_counters import ALLOY, Counters, cause, hopeless

HOSTS = ["host 127.0.0.1:31400"]
WRITE = 'component_id="loki.write.default",component_path="/",host="127.0.0.1:31400"'
GIVE_UP = 'msg="final error sending batch, no retries left, dropping data"'


def exposition(requests: dict[str, int] = {}, sent: int = 0, retries: int = 0, dropped: dict[str, int] = {}) -> str:
    """Alloy's /metrics as the recording shows it: every drop reason at 0 from the first entry on."""
    lines = [f'loki_write_sent_entries_total{{{WRITE},tenant=""}} {sent}',
             f'loki_write_batch_retries_total{{{WRITE},tenant=""}} {retries}']
    lines += [f'loki_write_request_duration_seconds_count{{{WRITE},status_code="{c}",tenant=""}} {n}'
              for c, n in requests.items()]
    lines += [f'loki_write_dropped_entries_total{{{WRITE},reason="{r}",tenant=""}} {dropped.get(r, 0)}'
              for r in ("ingester_error", "rate_limited", "stream_limited", "line_too_long", "queue_is_full")]
    return "\n".join(lines) + "\n"


def counters(**kwargs) -> Counters:
    return Counters.parse(exposition(**kwargs), ALLOY)


HEALTHY = counters(requests={"204": 5}, sent=7)  # before the canary: delivering
REFUSING = counters(requests={"-1": 7}, retries=7)  # before the canary: a batch 7 tries into its 10, never delivered
CANNOT = "Alloy cannot connect to host 127.0.0.1:31400 ("
QUIET = ("Alloy tries a batch 10 times over 4-8.5 min, logging nothing at info level, then drops it as ingester_error, "
         f"with one line at level=error: {GIVE_UP}, and the primary Loki answers (its readiness check), so the URL "
         "Alloy pushes to is wrong: waiting will not help")


@pytest.mark.parametrize("before,now,expected", [
    # (a) closed port / Loki stopped: the first try and two retries (0.5-1 s, then 1-2 s apart) since the canary.
    (HEALTHY, counters(requests={"204": 5, "-1": 3}, sent=7, retries=3),
     f"{CANNOT}3 pushes since the canary got no answer, none accepted); {QUIET}"),
    # ... two are not enough from an agent that delivered before (Loki may have restarted under it).
    (HEALTHY, counters(requests={"204": 5, "-1": 2}, sent=7, retries=2), None),
    # (a) a batch deep in its backoff (tries 8-10 come 1-4 min apart): one try since the canary is enough from an
    # agent that never delivered anything and had three or more refused in all.
    (REFUSING, counters(requests={"-1": 8}, retries=8),
     f"{CANNOT}1 pushes since the canary and 8 in all got no answer, none ever accepted); {QUIET}"),
    # ... but no try at all since the canary says nothing about now (those refusals may predate Loki's start).
    (REFUSING, REFUSING, None),
    # (b) 400: not retried, dropped at once as ingester_error: the first look says so.
    (HEALTHY, counters(requests={"204": 5, "400": 1}, sent=7, dropped={"ingester_error": 1}),
     "Loki rejects Alloy's pushes to host 127.0.0.1:31400: 1 answered 400 since the canary was written, none accepted; "
     f"Alloy drops a rejected batch without retrying (dropped entries: ingester_error: 1) and logs Loki's answer at "
     f"level=error: {GIVE_UP}, and a line with the same labels is rejected alike"),
    # (b) 429: retried, and Loki's limit may clear: not hopeless, even after the drop as rate_limited.
    (HEALTHY, counters(requests={"204": 5, "429": 10}, sent=7, retries=10, dropped={"rate_limited": 1}), None),
    # (c) a wrong label: Alloy sees success (sent and 204s rise); nothing here to give up on.
    (HEALTHY, counters(requests={"204": 6}, sent=8), None),
])
def test_hopeless_reads_the_recorded_series(before, now, expected):
    assert hopeless(now, before, HOSTS, "Alloy") == expected


@pytest.mark.parametrize("now,expected", [
    # (b) 429 at the timeout: the answers and retries since the canary, the drop reason, and what Alloy does next.
    (counters(requests={"204": 5, "429": 4}, sent=7, retries=4),
     "Loki rate-limits Alloy: 4 pushes to host 127.0.0.1:31400 answered 429 since the canary was written, 4 batch "
     "retries; Alloy tries a batch 10 times over 4-8.5 min, logging nothing at info level, then drops it as "
     f"rate_limited, with one line at level=error: {GIVE_UP}"),
    (counters(requests={"204": 5, "429": 10}, sent=7, retries=10, dropped={"rate_limited": 1}),
     "Loki rate-limits Alloy: 10 pushes to host 127.0.0.1:31400 answered 429 since the canary was written, 10 batch "
     "retries; dropped entries (rate_limited: 1); Alloy tries a batch"),
    # (a) at the timeout, refused pushes since the canary, and what Alloy does next.
    (counters(requests={"204": 5, "-1": 3}, sent=7, retries=3),
     "Alloy cannot connect to host 127.0.0.1:31400 (3 pushes got no answer since the canary was written, 3 batch "
     "retries); Alloy tries a batch"),
    # (c) a wrong label at the timeout (the line went under labels the canary's queries do not match): delivered.
    (counters(requests={"204": 6}, sent=8), "Alloy sent 1 entries to host 127.0.0.1:31400 since the canary was written"),
])
def test_the_timeout_names_the_cause_from_the_recorded_series(now, expected):
    assert cause(now, HEALTHY, HOSTS, "/var/log/pods/x.log", "Alloy").startswith(expected)


def test_a_batch_in_backoff_with_no_try_since_the_canary_is_named_by_the_answers_in_all():
    """(a) A real Alloy's tries 8-10 come 1-4 min apart: the canary's minute can see none."""
    assert cause(REFUSING, REFUSING, HOSTS, "x", "Alloy").startswith(
        "Alloy cannot connect to host 127.0.0.1:31400 (7 pushes got no answer in all); Alloy tries a batch 10 times")
